//! Lexical path normalisation as libsinsp's fd.name (utils.cpp
//! `concatenate_paths`): a relative path is taken from its base directory;
//! `.`, `..` and repeated `/` collapse; symlinks are not resolved. Into a
//! fixed buffer, without allocating; `..` never climbs above `/`.

use super::value::Buf;

/// `rel` (absolute, or relative to `base`) normalised into `out`.
pub fn join_normalized(base: &[u8], rel: &[u8], out: &mut Buf) {
    out.clear();
    let _ = out.push(b'/');
    let parts = if rel.starts_with(b"/") {
        [&b""[..], rel]
    } else {
        [base, rel]
    };
    for part in parts {
        for c in part.split(|&b| b == b'/') {
            match c {
                b"" | b"." => {}
                b".." => {
                    // Drop the last component, keeping the root.
                    while out.len() > 1 && out.pop() != Some(b'/') {}
                    if out.is_empty() {
                        let _ = out.push(b'/');
                    }
                }
                c => {
                    if out.len() > 1 {
                        let _ = out.push(b'/');
                    }
                    let room = out.capacity() - out.len();
                    let _ = out.extend_from_slice(&c[..c.len().min(room)]);
                }
            }
        }
    }
}

/// Absolute, without empty, `.` or `..` components and without a trailing
/// `/`: `join_normalized` would return it unchanged. Some(position of the
/// last `/`). Eight bytes at a time; a `/` followed by `.` (a hidden file,
/// or a real `.`/`..`) goes to the byte loop, which tells them apart.
#[inline]
pub fn scan(p: &[u8]) -> Option<usize> {
    if p == b"/" {
        return Some(0);
    }
    if p.first() != Some(&b'/') || p.last() == Some(&b'/') {
        return None;
    }
    scan_words(p).or_else(|| scan_bytes(p))
}

const ONES: u64 = 0x0101_0101_0101_0101;
const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;

/// 0x80 in every byte of `w` equal to `b`, exactly (no carry crosses bytes).
#[inline(always)]
fn bytes_equal(w: u64, b: u8) -> u64 {
    let t = w ^ (ONES * u64::from(b));
    !(((t & LOW7) + LOW7) | t | LOW7)
}

/// Some(last `/`) when no `/` is followed by `/` or `.`; None: unsure.
#[inline]
fn scan_words(p: &[u8]) -> Option<usize> {
    let mut last = 0;
    if p.len() < 8 {
        // Bytes past the end read as 0.
        let mut b = [0u8; 8];
        b[..p.len()].copy_from_slice(p);
        return word(0, u64::from_le_bytes(b), false, &mut last).map(|_| last);
    }
    let chunks = p.chunks_exact(8);
    let tail = !chunks.remainder().is_empty();
    let mut carry = false;
    for (k, c) in chunks.enumerate() {
        carry = word(k * 8, load(c), carry, &mut last)?;
    }
    // The last eight bytes, overlapping words already seen: every pair
    // across its start was inside one of them, so no carry.
    if tail {
        word(p.len() - 8, load(&p[p.len() - 8..]), false, &mut last)?;
    }
    Some(last)
}

/// One word at byte `at`: None if a `/` in it (or the one `carry` says
/// ended the word before) is followed by `/` or `.`; else whether its last
/// byte is a `/`. Moves `last` to its last `/`.
#[inline(always)]
fn word(at: usize, w: u64, carry: bool, last: &mut usize) -> Option<bool> {
    let slash = bytes_equal(w, b'/');
    let stop = slash | bytes_equal(w, b'.');
    if slash & (stop >> 8) != 0 || (carry && stop & 0x80 != 0) {
        return None;
    }
    if slash != 0 {
        *last = at + (63 - slash.leading_zeros() as usize) / 8;
    }
    Some(slash >> 63 != 0)
}

#[inline(always)]
fn load(c: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&c[..8]);
    u64::from_le_bytes(b)
}

/// The byte loop: one compare per byte but after a `/`.
fn scan_bytes(p: &[u8]) -> Option<usize> {
    let mut last = 0;
    let n = p.len();
    let mut i = 0;
    while i < n {
        if p[i] == b'/' {
            last = i;
            match p.get(i + 1) {
                Some(b'/') => return None,
                Some(b'.') => {
                    let rest = &p[i + 1..];
                    if rest == b"."
                        || rest == b".."
                        || rest.starts_with(b"./")
                        || rest.starts_with(b"../")
                    {
                        return None;
                    }
                }
                _ => {}
            }
        }
        i += 1;
    }
    Some(last)
}

/// `split` when the last `/` is known to be at `at`.
pub fn split_at_slash(name: &[u8], at: usize) -> (&[u8], &[u8]) {
    match at {
        0 => (b"/", name.get(1..).unwrap_or(b"")),
        i => (&name[..i.min(name.len())], name.get(i + 1..).unwrap_or(b"")),
    }
}

/// fd.directory and fd.filename: before and after the last `/`; the
/// directory is `/` when that slash is the first byte or there is none.
pub fn split(name: &[u8]) -> (&[u8], &[u8]) {
    match name.iter().rposition(|&b| b == b'/') {
        Some(0) => (b"/", &name[1..]),
        Some(i) => (&name[..i], &name[i + 1..]),
        None => (b"/", name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(base: &str, rel: &str) -> String {
        let mut b = Buf::new();
        join_normalized(base.as_bytes(), rel.as_bytes(), &mut b);
        String::from_utf8(b.to_vec()).unwrap()
    }

    #[test]
    fn normalises_like_libsinsp() {
        assert_eq!(norm("/tmp", "a/b"), "/tmp/a/b");
        assert_eq!(norm("/tmp/", "./a//b/../c"), "/tmp/a/c");
        assert_eq!(norm("/x", "/etc//shadow"), "/etc/shadow");
        assert_eq!(norm("/", "../../etc/passwd"), "/etc/passwd");
        assert_eq!(norm("/a/b", ".."), "/a");
        assert_eq!(norm("/a", "../.."), "/");
        assert_eq!(split(b"/etc/shadow"), (&b"/etc"[..], &b"shadow"[..]));
        assert_eq!(split(b"/shadow"), (&b"/"[..], &b"shadow"[..]));
        for p in [
            "/etc/shadow",
            "/",
            "/a/b.c/d..e",
            "/.ssh/x",
            "/a/.b",
            "/var/lib/app/data/file.db",
            "/abcdefghijklmnop/qrstuvwxyz0123456789/x",
        ] {
            assert!(scan(p.as_bytes()).is_some(), "{p}");
            assert_eq!(norm("/x", p), p);
            let at = scan(p.as_bytes()).unwrap();
            assert_eq!(split_at_slash(p.as_bytes(), at), split(p.as_bytes()), "{p}");
        }
        // The word scan agrees with the byte loop on every short path over
        // an alphabet of the bytes that matter.
        let alpha = b"/.a";
        for n in 1..=11u32 {
            for mut k in 0..3usize.pow(n) {
                let mut p = vec![b'/'];
                for _ in 1..n {
                    p.push(alpha[k % 3]);
                    k /= 3;
                }
                let slow = if p.last() == Some(&b'/') && p.len() > 1 {
                    None
                } else {
                    scan_bytes(&p)
                };
                assert_eq!(scan(&p), slow, "{}", String::from_utf8_lossy(&p));
            }
        }
        for p in [
            "etc",
            "/etc/",
            "/a//b",
            "/a/./b",
            "/a/../b",
            "/..",
            "/abcdefghijklmnop//x",
            "/abcdefghijklmnopqrstuvw/..",
        ] {
            assert!(scan(p.as_bytes()).is_none(), "{p}");
        }
    }
}
