//! Values on both sides of a check. The left side is what an extractor
//! returns for one event (borrowed from the record, the tables or the
//! per-evaluation scratch buffer); the right side is parsed once, at load,
//! by the field's type, as libsinsp's value_parser.cpp does.

use super::fields::Ty;

/// Scratch space for fields that are composed (proc.cmdline, fd.name of a
/// socket, evt.arg.flags): fixed, reused for every check.
pub type Buf = heapless::Vec<u8, 4096>;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Ip {
    pub v6: bool,
    pub addr: [u8; 16],
}

impl Ip {
    pub fn v4(a: [u8; 4]) -> Ip {
        let mut addr = [0; 16];
        addr[..4].copy_from_slice(&a);
        Ip { v6: false, addr }
    }

    pub fn parse(s: &str) -> Option<Ip> {
        match s.parse::<std::net::IpAddr>().ok()? {
            std::net::IpAddr::V4(a) => Some(Ip::v4(a.octets())),
            std::net::IpAddr::V6(a) => Some(Ip {
                v6: true,
                addr: a.octets(),
            }),
        }
    }

    fn bytes(&self) -> &[u8] {
        if self.v6 {
            &self.addr
        } else {
            &self.addr[..4]
        }
    }

    pub fn write(&self, out: &mut Buf) {
        use core::fmt::Write as _;
        let mut s = heapless::String::<48>::new();
        let _ = if self.v6 {
            write!(s, "{}", std::net::Ipv6Addr::from(self.addr))
        } else {
            let a = self.addr;
            write!(s, "{}.{}.{}.{}", a[0], a[1], a[2], a[3])
        };
        let _ = out.extend_from_slice(s.as_bytes());
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    pub ip: Ip,
    pub bits: u8,
}

impl Cidr {
    pub fn parse(s: &str) -> Option<Cidr> {
        let (a, bits) = match s.split_once('/') {
            Some((a, b)) => (a, Some(b.parse::<u8>().ok()?)),
            None => (s, None),
        };
        let ip = Ip::parse(a)?;
        let max = if ip.v6 { 128 } else { 32 };
        let bits = bits.unwrap_or(max);
        (bits <= max).then_some(Cidr { ip, bits })
    }

    pub fn contains(&self, ip: &Ip) -> bool {
        if ip.v6 != self.ip.v6 {
            return false;
        }
        let (a, b) = (self.ip.bytes(), ip.bytes());
        let full = usize::from(self.bits / 8);
        if a[..full] != b[..full] {
            return false;
        }
        let rest = self.bits % 8;
        rest == 0 || {
            let mask = 0xffu8 << (8 - rest);
            a[full] & mask == b[full] & mask
        }
    }
}

/// One extracted value; `Missing` makes every check false (libsinsp
/// sinsp_filtercheck.cpp compare_nocache returns false when extract fails).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum V<'a> {
    Missing,
    Str(&'a [u8]),
    Int(i64),
    Bool(bool),
    Ip(Ip),
}

impl<'a> V<'a> {
    /// The string, if this is one.
    pub fn str(self) -> Option<&'a [u8]> {
        match self {
            V::Str(s) => Some(s),
            _ => None,
        }
    }
}

/// One pmatch path, as its components.
pub type PathPrefix = Box<[Box<[u8]>]>;

/// A right-hand side, parsed for the field's type.
#[derive(Clone, Debug, PartialEq)]
pub enum Rhs {
    None,
    Str(Box<[u8]>),
    Int(i64),
    Bool(bool),
    Ip(Ip),
    /// Sorted, for a binary search.
    StrSet(StrSet),
    IntSet(Box<[i64]>),
    BoolSet(Box<[bool]>),
    IpSet(Box<[Ip]>),
    Nets(Box<[Cidr]>),
    /// pmatch: paths split into components.
    Paths(Box<[PathPrefix]>),
}

/// A set of strings: sorted by `by_len` for a binary search, with a mask of
/// the lengths present so most values that cannot match are ruled out by
/// one bit test. Items of up to 16 bytes (process names, most file names)
/// are also kept as integer keys, grouped by length: a lookup searches only
/// the keys of its own length (often one or two) and compares words, never
/// calling memcmp (a byte loop in musl, the shipped binary's libc).
#[derive(Clone, Debug, PartialEq)]
pub struct StrSet {
    pub items: Box<[Box<[u8]>]>,
    /// Bit min(len, 63) for every item.
    lens: u64,
    /// `ShortKey` of every item of up to 16 bytes, by length, each length's sorted.
    short: Box<[ShortKey]>,
    /// `short[starts[n]..starts[n + 1]]` are the keys of length n. Boxed:
    /// inline it would grow every compiled check that holds a set.
    starts: Box<[u32; SHORT_MAX + 2]>,
}

/// The longest item kept as a `ShortKey`.
const SHORT_MAX: usize = 16;

/// A string of up to 16 bytes as (first word, last word), big-endian: up to
/// 8 bytes all in the first word, else the first and the last 8 bytes,
/// which overlap and together cover every byte. So two strings of one
/// length have one key only if they are equal, and keys of one length sort
/// as `by_len` sorts their strings: built in the items' order, each
/// length's keys are sorted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct ShortKey(u64, u64);

impl ShortKey {
    #[inline]
    fn of(s: &[u8]) -> Option<ShortKey> {
        let n = s.len();
        Some(match n {
            0..=8 => ShortKey(s.iter().fold(0, |w, &b| w << 8 | u64::from(b)), 0),
            9..=SHORT_MAX => ShortKey(word(s), word(&s[n - 8..])),
            _ => return None,
        })
    }
}

fn word(b: &[u8]) -> u64 {
    b.first_chunk::<8>().map_or(0, |w| u64::from_be_bytes(*w))
}

impl StrSet {
    /// Sorts and deduplicates here, so both searches can rely on it.
    pub fn new(mut items: Vec<Box<[u8]>>) -> StrSet {
        items.sort_by(|a, b| by_len(a, b));
        items.dedup();
        let lens = items.iter().fold(0u64, |m, i| m | 1 << i.len().min(63));
        // Sorted by `by_len`, so grouped by length, each group sorted, and
        // the short items are the first ones: a key's index is its item's.
        let short: Vec<ShortKey> = items.iter().map_while(|i| ShortKey::of(i)).collect();
        let starts = core::array::from_fn(|n| items.partition_point(|i| i.len() < n) as u32);
        debug_assert!((0..=SHORT_MAX)
            .all(|n| { short[starts[n] as usize..starts[n + 1] as usize].is_sorted() }));
        StrSet {
            items: items.into(),
            lens,
            short: short.into(),
            starts: Box::new(starts),
        }
    }

    /// The length test inline (it rules out most values), the search not.
    #[inline]
    pub fn contains(&self, s: &[u8]) -> bool {
        self.lens & (1 << s.len().min(63)) != 0 && self.search(s)
    }

    #[inline(never)]
    fn search(&self, s: &[u8]) -> bool {
        let Some(k) = ShortKey::of(s) else {
            return self.items.binary_search_by(|e| by_len(e, s)).is_ok();
        };
        let n = s.len();
        let (lo, hi) = (self.starts[n] as usize, self.starts[n + 1] as usize);
        self.short
            .get(lo..hi)
            .is_some_and(|keys| keys.binary_search(&k).is_ok())
    }

    pub fn iter(&self) -> impl Iterator<Item = &[u8]> {
        self.items.iter().map(|s| &s[..])
    }
}

/// The order of a string set: length first, so a lookup compares bytes only
/// with entries of the same length.
pub fn by_len(a: &[u8], b: &[u8]) -> core::cmp::Ordering {
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

/// Decimal, 0x hex, or a negative decimal (value_parser.cpp).
pub fn parse_int(s: &str) -> Option<i64> {
    let (neg, t) = match s.strip_prefix('-') {
        Some(t) => (true, t),
        None => (false, s),
    };
    let v = if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        u64::from_str_radix(h, 16).ok()? as i64
    } else {
        t.parse::<u64>().ok()? as i64
    };
    Some(if neg { v.wrapping_neg() } else { v })
}

fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

/// Falco's path split for pmatch (prefix_search.cpp): empty components dropped.
pub fn components(p: &[u8]) -> impl Iterator<Item = &[u8]> {
    p.split(|&b| b == b'/').filter(|c| !c.is_empty())
}

/// One value of type `ty`, or why it cannot be one.
pub fn parse_one(ty: Ty, s: &str) -> Result<Rhs, String> {
    let bad = |what: &str| format!("'{s}' is not {what}");
    Ok(match ty {
        Ty::Str => Rhs::Str(s.as_bytes().into()),
        Ty::Int => Rhs::Int(parse_int(s).ok_or_else(|| bad("an integer"))?),
        Ty::Bool => Rhs::Bool(parse_bool(s).ok_or_else(|| bad("true or false"))?),
        Ty::Ip => Rhs::Ip(Ip::parse(s).ok_or_else(|| bad("an IP address"))?),
        Ty::Net => Rhs::Nets(vec![Cidr::parse(s).ok_or_else(|| bad("a network"))?].into()),
    })
}

/// A list of values of type `ty`.
pub fn parse_list(ty: Ty, items: &[String]) -> Result<Rhs, String> {
    let mut strs = Vec::new();
    let (mut ints, mut bools, mut ips, mut nets) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for s in items {
        match parse_one(ty, s)? {
            Rhs::Str(b) => strs.push(b),
            Rhs::Int(i) => ints.push(i),
            Rhs::Bool(b) => bools.push(b),
            Rhs::Ip(i) => ips.push(i),
            Rhs::Nets(n) => nets.extend_from_slice(&n),
            _ => {}
        }
    }
    ints.sort_unstable();
    ips.sort();
    Ok(match ty {
        Ty::Str => Rhs::StrSet(StrSet::new(strs)),
        Ty::Int => Rhs::IntSet(ints.into()),
        Ty::Bool => Rhs::BoolSet(bools.into()),
        Ty::Ip => Rhs::IpSet(ips.into()),
        Ty::Net => Rhs::Nets(nets.into()),
    })
}

pub fn parse_paths(items: &[String]) -> Rhs {
    let paths: Vec<PathPrefix> = items
        .iter()
        .map(|p| components(p.as_bytes()).map(Box::from).collect())
        .collect();
    Rhs::Paths(paths.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lookups agree with a plain scan for every length around the short
    /// keys' edges (3/4, 7/8, 16/17), for near misses (one byte changed at
    /// each position, one byte more or less) and for NUL and 0xff bytes;
    /// lengths 5 and 12 hold many keys, the others a few.
    #[test]
    fn str_set_agrees_with_a_scan() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut byte = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            [0u8, 0xff, b'a', b'b', b'/'][(seed % 5) as usize]
        };
        let mut pool: Vec<Box<[u8]>> = Vec::new();
        for n in 0..=20 {
            let many = if n == 5 || n == 12 { 40 } else { 6 };
            for _ in 0..many {
                pool.push((0..n).map(|_| byte()).collect());
            }
        }
        let items: Vec<Box<[u8]>> = pool.iter().step_by(2).cloned().collect();
        let set = StrSet::new(items.clone());
        for n in [5, 12] {
            let keys = set.starts[n + 1] - set.starts[n];
            assert!(keys > 10, "{keys} keys of length {n}");
        }
        let mut queries = pool.clone();
        for q in &pool {
            for i in 0..q.len() {
                let mut m = q.to_vec();
                m[i] ^= 1;
                queries.push(m.into());
            }
            queries.push(q[..q.len().saturating_sub(1)].into());
            queries.push([&q[..], b"a"].concat().into());
        }
        let mut hits = 0;
        for q in &queries {
            let want = items.iter().any(|i| i == q);
            assert_eq!(set.contains(q), want, "{q:?}");
            hits += usize::from(want);
        }
        assert!(
            hits > 50 && hits < queries.len() / 2,
            "{hits} of {}",
            queries.len()
        );
    }
}
