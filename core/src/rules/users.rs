//! user.name, user.loginname and group.name: a bounded cache of the host's
//! /etc/passwd and /etc/group, read at start and re-read by the loop's timer
//! when either file's modification time or size changes (never on the
//! per-event path). Falco reads the same databases (libsinsp user.cpp);
//! an unknown uid is `root` for 0 and `<NA>` otherwise, as it prints.

use std::path::{Path, PathBuf};

/// Entries kept per database; a gateway has a few dozen.
pub const MAX_ENTRIES: usize = 4096;
const MAX_FILE: u64 = 1 << 20;
const NAME_MAX: usize = 32;

type Name = heapless::String<NAME_MAX>;

#[derive(Default)]
struct Db {
    path: PathBuf,
    stamp: Option<(i64, i64, u64)>,
    /// Sorted by id; the first name wins for a shared id.
    entries: Vec<(u32, Name)>,
}

impl Db {
    fn new(path: PathBuf) -> Db {
        let mut d = Db {
            path,
            ..Db::default()
        };
        d.refresh();
        d
    }

    fn stamp(p: &Path) -> Option<(i64, i64, u64)> {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(p).ok()?;
        Some((m.mtime(), m.mtime_nsec(), m.size()))
    }

    /// Re-reads the file if it changed; true when it did.
    fn refresh(&mut self) -> bool {
        let s = Self::stamp(&self.path);
        if s == self.stamp {
            return false;
        }
        self.stamp = s;
        self.entries = read(&self.path);
        true
    }

    fn name(&self, id: u32) -> Option<&str> {
        self.entries
            .binary_search_by_key(&id, |e| e.0)
            .ok()
            .map(|i| self.entries[i].1.as_str())
    }
}

/// `name:x:id:...` lines; malformed lines and overlong names are skipped.
fn read(p: &Path) -> Vec<(u32, Name)> {
    use std::io::Read as _;
    let mut text = String::new();
    let ok = std::fs::File::open(p)
        .and_then(|f| f.take(MAX_FILE).read_to_string(&mut text))
        .is_ok();
    if !ok {
        return Vec::new();
    }
    let mut v: Vec<(u32, Name)> = text
        .lines()
        .filter_map(|l| {
            let mut it = l.split(':');
            let name = it.next()?;
            let id = it.nth(1)?.parse::<u32>().ok()?;
            (!name.is_empty() && !name.starts_with('#'))
                .then(|| Name::try_from(name).ok().map(|n| (id, n)))
                .flatten()
        })
        .take(MAX_ENTRIES)
        .collect();
    v.sort_by_key(|e| e.0);
    v.dedup_by_key(|e| e.0);
    v
}

pub struct Users {
    passwd: Db,
    group: Db,
}

impl Users {
    /// The databases under `root` (`/` on a host).
    pub fn new(root: &Path) -> Users {
        Users {
            passwd: Db::new(root.join("etc/passwd")),
            group: Db::new(root.join("etc/group")),
        }
    }

    /// From the loop's timer: re-reads what changed.
    pub fn refresh(&mut self) -> bool {
        let a = self.passwd.refresh();
        let b = self.group.refresh();
        a || b
    }

    pub fn user(&self, uid: u32) -> &str {
        match self.passwd.name(uid) {
            Some(n) => n,
            None if uid == 0 => "root",
            None => "<NA>",
        }
    }

    pub fn group(&self, gid: u32) -> &str {
        match self.group.name(gid) {
            Some(n) => n,
            None if gid == 0 => "root",
            None => "<NA>",
        }
    }

    pub fn len(&self) -> usize {
        self.passwd.entries.len() + self.group.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_reloads_on_change() {
        let dir = crate::testing::scratch("users");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("etc")).unwrap();
        std::fs::write(
            dir.join("etc/passwd"),
            "root:x:0:0::/root:/bin/sh\nbad line\nsvc:x:998:998::/:/bin/false\n",
        )
        .unwrap();
        std::fs::write(dir.join("etc/group"), "root:x:0:\nsvc:x:998:\n").unwrap();
        let mut u = Users::new(&dir);
        assert_eq!(u.user(998), "svc");
        assert_eq!(u.user(5), "<NA>");
        assert_eq!(u.group(998), "svc");
        assert!(!u.refresh());
        std::fs::write(
            dir.join("etc/passwd"),
            "root:x:0:0::/root:/bin/sh\nnewname:x:998:998::/:/bin/false\nmore:x:5:5::/:/bin/sh\n",
        )
        .unwrap();
        assert!(u.refresh());
        assert_eq!(u.user(998), "newname");
        assert_eq!(u.user(5), "more");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
