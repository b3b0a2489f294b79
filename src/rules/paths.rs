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
/// `/`: `join_normalized` would return it unchanged. One pass over the bytes
/// (one compare each but after a `/`); Some(position of the last `/`).
pub fn scan(p: &[u8]) -> Option<usize> {
    if p == b"/" {
        return Some(0);
    }
    if p.first() != Some(&b'/') || p.last() == Some(&b'/') {
        return None;
    }
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
