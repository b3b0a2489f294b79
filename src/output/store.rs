//! The bounded in-memory queue of the network outputs. Unlike `LineQueue`
//! (which refuses the newest line when full, as Falco's outputs queue does),
//! a full store drops its oldest message: for a device catching up after an
//! outage the newest figures matter most. Buffers are kept and reused, so
//! after the first few messages nothing here allocates.

use std::collections::VecDeque;

use crate::output::mqtt::spool::Pos;

/// Messages held per output, and their bytes.
pub const STORE_MSGS: usize = 32;
pub const STORE_BYTES: usize = 64 * 1024;
const SPARE: usize = 4;

pub struct Msg {
    /// 0: snapshot, 1: alert.
    pub kind: u8,
    /// MQTT packet id once sent with QoS 1 (0: not sent yet).
    pub pid: u16,
    /// When it was last sent.
    pub sent_ns: u64,
    /// Loaded from the spool: its place there.
    pub spooled: Option<Pos>,
    pub data: Vec<u8>,
}

pub struct Store {
    msgs: VecDeque<Msg>,
    spare: Vec<Vec<u8>>,
    bytes: usize,
}

impl Default for Store {
    fn default() -> Self {
        Self::new()
    }
}

impl Store {
    pub fn new() -> Store {
        Store {
            msgs: VecDeque::with_capacity(STORE_MSGS),
            spare: Vec::with_capacity(SPARE),
            bytes: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.msgs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.msgs.is_empty()
    }

    pub fn fits(&self, n: usize) -> bool {
        self.msgs.len() < STORE_MSGS && self.bytes + n <= STORE_BYTES
    }

    fn make(&mut self, kind: u8, payload: &[u8], spooled: Option<Pos>) -> Msg {
        let mut data = self.spare.pop().unwrap_or_default();
        data.clear();
        data.extend_from_slice(payload);
        self.bytes += payload.len();
        Msg {
            kind,
            pid: 0,
            sent_ns: 0,
            spooled,
            data,
        }
    }

    /// Appends, dropping the oldest messages until it fits; returns how
    /// many were dropped (this one, if it can never fit).
    pub fn push(&mut self, kind: u8, payload: &[u8]) -> u64 {
        self.push_keeping(0, kind, payload)
    }

    /// `push`, never dropping the first `keep` messages (one half sent).
    pub fn push_keeping(&mut self, keep: usize, kind: u8, payload: &[u8]) -> u64 {
        if payload.len() > STORE_BYTES {
            return 1;
        }
        let mut dropped = 0;
        while !self.fits(payload.len()) {
            if self.remove(keep).is_none() {
                return dropped + 1;
            }
            dropped += 1;
        }
        let m = self.make(kind, payload, None);
        self.msgs.push_back(m);
        dropped
    }

    /// A spooled message goes after the spooled ones already loaded and
    /// before anything newer; false when there is no room.
    pub fn insert_spooled(&mut self, kind: u8, payload: &[u8], pos: Pos) -> bool {
        if !self.fits(payload.len()) {
            return false;
        }
        let at = self
            .msgs
            .iter()
            .position(|m| m.spooled.is_none())
            .unwrap_or(self.msgs.len());
        let m = self.make(kind, payload, Some(pos));
        self.msgs.insert(at, m);
        true
    }

    pub fn get(&self, i: usize) -> Option<&Msg> {
        self.msgs.get(i)
    }

    pub fn get_mut(&mut self, i: usize) -> Option<&mut Msg> {
        self.msgs.get_mut(i)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Msg> {
        self.msgs.iter()
    }

    pub fn position(&self, f: impl Fn(&Msg) -> bool) -> Option<usize> {
        self.msgs.iter().position(f)
    }

    /// Removes message `i`, keeping its buffer for reuse.
    pub fn remove(&mut self, i: usize) -> Option<(u8, Option<Pos>)> {
        let m = self.msgs.remove(i)?;
        self.bytes -= m.data.len();
        let r = (m.kind, m.spooled);
        // A few buffers are kept for reuse; the rest of a backlog is freed.
        if self.spare.len() < SPARE {
            self.spare.push(m.data);
        }
        Some(r)
    }

    /// Removes every message, oldest first, handing each to `f`.
    pub fn drain(&mut self, mut f: impl FnMut(&Msg)) {
        while let Some(m) = self.msgs.front() {
            f(m);
            self.remove(0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_store_drops_oldest_and_keeps_spooled_first() {
        let mut s = Store::new();
        let mut dropped = 0;
        for i in 0..100u8 {
            dropped += s.push(0, &[i; 1000]);
        }
        assert_eq!(dropped as usize + s.len(), 100);
        assert_eq!(s.get(0).unwrap().data[0] as usize, 100 - s.len());
        s.remove(0);
        s.remove(0);
        let p = |i| Pos {
            seg: 1,
            off: i,
            idx: i as u32,
        };
        assert!(s.insert_spooled(1, b"a", p(0)));
        assert!(s.insert_spooled(1, b"b", p(1)));
        assert_eq!(s.get(0).unwrap().data, b"a");
        assert_eq!(s.get(1).unwrap().data, b"b");
        assert_eq!(s.get(2).unwrap().spooled, None);
        assert!(s.push(0, &[0; STORE_BYTES + 1]) == 1);
    }
}
