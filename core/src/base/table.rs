//! A fixed-capacity hash map for the thread and fd tables: capacity chosen by
//! the caller at start, all memory reserved once, never grown. Entries live in
//! a dense slab (only pages actually used become resident) addressed through
//! a linear-probing index with backward-shift deletion, so there are no
//! tombstones and lookups stay short at any churn. The index holds slab
//! position + 1 so that empty is zero: it comes from zeroed pages and only
//! the pages probed become resident.

const EMPTY: u32 = 0;

pub struct FixedMap<V> {
    /// Open-addressing index: slab position + 1, or EMPTY; length a power of two.
    index: Box<[u32]>,
    keys: Vec<u64>,
    vals: Vec<V>,
    /// For each slab position, where its index entry is (for O(1) unlink).
    home: Vec<u32>,
    free: Vec<u32>,
    len: usize,
    capacity: usize,
}

#[derive(Debug, PartialEq, Eq)]
pub struct Full;

fn hash(key: u64, mask: usize) -> usize {
    // Fibonacci hashing: spreads sequential tids and (pid, fd) keys.
    (key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) as usize & mask
}

impl<V> FixedMap<V> {
    pub fn with_capacity(capacity: usize) -> Self {
        let slots = (capacity.max(1) * 2).next_power_of_two();
        FixedMap {
            // Zeroed: large sizes come as untouched zero pages from the allocator.
            index: vec![EMPTY; slots].into_boxed_slice(),
            keys: Vec::with_capacity(capacity),
            vals: Vec::with_capacity(capacity),
            home: Vec::with_capacity(capacity),
            free: Vec::with_capacity(capacity),
            len: 0,
            capacity,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Bytes reserved per entry, index share included.
    pub fn bytes_per_entry() -> usize {
        core::mem::size_of::<V>() + 8 + 4 + 4 + 2 * 4
    }

    /// The lookups are hinted inline: the crate is built for size (opt-level
    /// "s"), whose inliner otherwise calls each one out of line, per event.
    #[inline]
    fn find(&self, key: u64) -> Option<(usize, u32)> {
        let mask = self.index.len() - 1;
        let mut i = hash(key, mask);
        loop {
            let slot = self.index[i];
            if slot == EMPTY {
                return None;
            }
            let pos = slot - 1;
            if self.keys[pos as usize] == key {
                return Some((i, pos));
            }
            i = (i + 1) & mask;
        }
    }

    /// Slab position of `key`, stable until the key is removed.
    #[inline]
    pub fn position(&self, key: u64) -> Option<u32> {
        self.find(key).map(|(_, p)| p)
    }

    #[inline]
    pub fn get(&self, key: u64) -> Option<&V> {
        self.find(key).map(|(_, p)| &self.vals[p as usize])
    }

    #[inline]
    pub fn get_mut(&mut self, key: u64) -> Option<&mut V> {
        self.find(key).map(|(_, p)| &mut self.vals[p as usize])
    }

    #[inline]
    pub fn at_mut(&mut self, pos: u32) -> &mut V {
        &mut self.vals[pos as usize]
    }

    /// Whether slab position `p` (< keys.len()) is live: its home index
    /// slot still points back at it (slot = position + 1).
    #[inline]
    fn live(&self, p: usize) -> bool {
        self.index[self.home[p] as usize] as usize == p + 1
    }

    /// Whether slab position `pos` still holds `key`.
    #[inline]
    pub fn holds(&self, pos: u32, key: u64) -> bool {
        let p = pos as usize;
        p < self.keys.len() && self.keys[p] == key && self.live(p)
    }

    /// Inserts or replaces. Ok(true) when the key is new.
    pub fn insert(&mut self, key: u64, val: V) -> Result<bool, Full> {
        if let Some((_, p)) = self.find(key) {
            self.vals[p as usize] = val;
            return Ok(false);
        }
        if self.len >= self.capacity {
            return Err(Full);
        }
        let pos = match self.free.pop() {
            Some(p) => {
                self.keys[p as usize] = key;
                self.vals[p as usize] = val;
                p
            }
            None => {
                self.keys.push(key);
                self.vals.push(val);
                self.home.push(0);
                (self.keys.len() - 1) as u32
            }
        };
        let mask = self.index.len() - 1;
        let mut i = hash(key, mask);
        while self.index[i] != EMPTY {
            i = (i + 1) & mask;
        }
        self.index[i] = pos + 1;
        self.home[pos as usize] = i as u32;
        self.len += 1;
        Ok(true)
    }

    pub fn remove(&mut self, key: u64) -> bool {
        let Some((mut i, pos)) = self.find(key) else {
            return false;
        };
        self.free.push(pos);
        self.len -= 1;
        // Backward-shift: pull later entries of the probe run into the hole.
        let mask = self.index.len() - 1;
        let mut j = i;
        loop {
            j = (j + 1) & mask;
            let slot = self.index[j];
            if slot == EMPTY {
                break;
            }
            let p = slot - 1;
            let ideal = hash(self.keys[p as usize], mask);
            // Move p back if its ideal slot is not cyclically within (i, j].
            let in_range = if i <= j {
                i < ideal && ideal <= j
            } else {
                i < ideal || ideal <= j
            };
            if !in_range {
                self.index[i] = slot;
                self.home[p as usize] = i as u32;
                i = j;
            }
        }
        self.index[i] = EMPTY;
        true
    }

    /// Removes every entry for which `drop` says so; returns how many.
    pub fn remove_where(&mut self, mut drop: impl FnMut(u64, &V) -> bool) -> usize {
        let mut n = 0;
        let mut p = 0;
        while p < self.keys.len() {
            let key = self.keys[p];
            if self.live(p) && drop(key, &self.vals[p]) {
                self.remove(key);
                n += 1;
            }
            p += 1;
        }
        n
    }

    /// Number of slab positions ever used; positions below it may be free.
    pub fn slab_len(&self) -> usize {
        self.keys.len()
    }

    /// The live entry at slab position `p`, if any (free slots are None).
    pub fn entry_at(&self, p: usize) -> Option<(u64, &V)> {
        (p < self.keys.len() && self.live(p)).then(|| (self.keys[p], &self.vals[p]))
    }

    /// Visits every live entry mutably, in slab order.
    pub fn for_each_mut(&mut self, mut f: impl FnMut(u64, &mut V)) {
        for p in 0..self.keys.len() {
            if self.live(p) {
                f(self.keys[p], &mut self.vals[p]);
            }
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (u64, &V)> {
        self.index
            .iter()
            .filter(|&&s| s != EMPTY)
            .map(|&s| (self.keys[s as usize - 1], &self.vals[s as usize - 1]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_get_remove_under_churn() {
        let mut m = FixedMap::with_capacity(100);
        let mut shadow = std::collections::HashMap::new();
        let mut x: u64 = 12345;
        for _ in 0..200_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let key = x % 300;
            if x & 1 == 0 {
                let r = m.insert(key, x);
                if shadow.contains_key(&key) || shadow.len() < 100 {
                    assert_eq!(r, Ok(!shadow.contains_key(&key)));
                    shadow.insert(key, x);
                } else {
                    assert_eq!(r, Err(Full));
                }
            } else {
                assert_eq!(m.remove(key), shadow.remove(&key).is_some());
            }
            assert_eq!(m.len(), shadow.len());
        }
        for (k, v) in &shadow {
            assert_eq!(m.get(*k), Some(v));
        }
        assert_eq!(m.iter().count(), shadow.len());
    }

    #[test]
    fn full_table_refuses_and_recovers() {
        let mut m = FixedMap::with_capacity(2);
        assert_eq!(m.insert(1, ()), Ok(true));
        assert_eq!(m.insert(2, ()), Ok(true));
        assert_eq!(m.insert(3, ()), Err(Full));
        assert_eq!(m.insert(2, ()), Ok(false), "replacing needs no room");
        assert!(m.remove(1));
        assert_eq!(m.insert(3, ()), Ok(true));
    }

    #[test]
    fn remove_where_and_positions() {
        let mut m = FixedMap::with_capacity(16);
        for k in 0..16 {
            m.insert(k, k * 10).unwrap();
        }
        let p = m.position(5).unwrap();
        assert!(m.holds(p, 5));
        assert_eq!(*m.at_mut(p), 50);
        assert_eq!(m.remove_where(|k, _| k % 2 == 0), 8);
        assert_eq!(m.len(), 8);
        assert!(m.get(4).is_none());
        assert_eq!(m.get(5), Some(&50));
        m.remove(5);
        assert!(!m.holds(p, 5));
    }
}
