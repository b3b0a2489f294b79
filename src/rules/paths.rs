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
/// `/`: `join_normalized` would return it unchanged. Only a `/` followed by
/// `/` or `.` needs a closer look, so most bytes cost one compare.
pub fn is_normal(p: &[u8]) -> bool {
    if p == b"/" {
        return true;
    }
    if p.first() != Some(&b'/') || p.last() == Some(&b'/') {
        return false;
    }
    let mut i = 0;
    while let Some(off) = p[i..].iter().position(|&b| b == b'/') {
        let at = i + off;
        let rest = &p[at + 1..];
        if rest.first() == Some(&b'/')
            || rest == b"."
            || rest == b".."
            || rest.starts_with(b"./")
            || rest.starts_with(b"../")
        {
            return false;
        }
        i = at + 1;
    }
    true
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
        for p in ["/etc/shadow", "/", "/a/b.c/d..e"] {
            assert!(is_normal(p.as_bytes()), "{p}");
            assert_eq!(norm("/x", p), p);
        }
        for p in ["etc", "/etc/", "/a//b", "/a/./b", "/a/../b", "/.."] {
            assert!(!is_normal(p.as_bytes()), "{p}");
        }
    }
}
