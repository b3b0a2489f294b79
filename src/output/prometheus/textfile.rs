//! `--output prometheus-textfile:PATH`: the exporter's text written for
//! node_exporter's textfile collector. Each interval the whole text goes to a
//! temporary file in the same directory, which is then renamed over PATH, so
//! the collector never reads half a file. The temporary name does not end in
//! `.prom`, so the collector never picks it up either. No fsync: a crash
//! loses at most one interval, and flash on a gateway wears.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

pub struct Textfile {
    path: PathBuf,
    tmp: PathBuf,
}

impl Textfile {
    pub fn new(path: &Path) -> Textfile {
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(format!(".{}.tmp", std::process::id()));
        Textfile {
            path: path.to_owned(),
            tmp: tmp.into(),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Replaces the file's content with `text` in one rename.
    pub fn write(&self, text: &[u8]) -> std::io::Result<()> {
        let r = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            // node_exporter runs as its own user and must read it.
            .mode(0o644)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&self.tmp)
            .and_then(|mut f| f.write_all(text))
            .and_then(|()| std::fs::rename(&self.tmp, &self.path));
        if r.is_err() {
            let _ = std::fs::remove_file(&self.tmp);
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_atomically_and_leaves_no_temporary() {
        let dir = crate::testing::scratch("textfile");
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("kestrel.prom");
        let tf = Textfile::new(&p);
        tf.write(b"a 1\n").unwrap();
        // A reader holding the old file keeps the old content: a rename, not a rewrite.
        let old = std::fs::File::open(&p).unwrap();
        tf.write(b"a 2\n").unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "a 2\n");
        let mut s = String::new();
        std::io::Read::read_to_string(&mut &old, &mut s).unwrap();
        assert_eq!(s, "a 1\n");
        let names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("kestrel.prom")]);
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o644
        );
        assert!(Textfile::new(&dir.join("no/such/dir.prom"))
            .write(b"x")
            .is_err());
    }
}
