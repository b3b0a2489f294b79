//! `--output prometheus-textfile:PATH`: the exporter's text written for
//! node_exporter's textfile collector. Each interval the whole text goes to a
//! temporary file in the same directory, which is then renamed over PATH, so
//! the collector never reads half a file. The temporary name does not end in
//! `.prom`, so the collector never picks it up either. No fsync: a crash
//! loses at most one interval, and flash on a gateway wears.

use std::ffi::CString;
use std::path::Path;

use rustix::fs::{FileType, Mode, OFlags};

use crate::base::path::{self, PathError, SafeDir};

/// Written as root into a directory node_exporter's admin (another user)
/// may own: every open, rename and unlink goes through the directory fd
/// taken at start, with `file:`'s rules (base::path): no symlink on the
/// path or at the name, a SIGHUP only looks the path up again once the
/// directory has been deleted.
pub struct Textfile {
    dir: SafeDir,
    /// `NAME.<pid>.tmp` in the same directory.
    tmp: CString,
}

fn bad(msg: String) -> PathError {
    PathError {
        msg,
        bad_input: true,
    }
}

impl Textfile {
    /// Checks the path now (one line, exit 2 at start): its directory exists
    /// without symlinks, the name is absent or a regular file, and a
    /// temporary can be created there.
    pub fn open(p: &Path) -> Result<Textfile, PathError> {
        let dir = path::open_parent(p).map_err(|mut e| {
            e.msg = format!("prometheus-textfile {}", e.msg);
            e
        })?;
        let shown = &dir.shown;
        match path::kind_at(&dir) {
            Ok(None | Some(FileType::RegularFile)) => {}
            Ok(Some(FileType::Directory)) => {
                return Err(bad(format!("prometheus-textfile {shown} is a directory")))
            }
            Ok(Some(FileType::Symlink)) => {
                return Err(bad(format!(
                    "prometheus-textfile {shown} is a symlink: refusing it"
                )))
            }
            Ok(Some(_)) => {
                return Err(bad(format!(
                    "prometheus-textfile {shown} is not a regular file"
                )))
            }
            Err(e) => {
                return Err(PathError {
                    msg: format!("prometheus-textfile {shown}: {e}"),
                    bad_input: false,
                })
            }
        }
        let mut tmp = dir.name.as_bytes().to_vec();
        tmp.extend_from_slice(format!(".{}.tmp", std::process::id()).as_bytes());
        let tf = Textfile {
            tmp: CString::new(tmp).map_err(|_| bad(format!("{shown}: NUL in path")))?,
            dir,
        };
        tf.create_tmp()
            .and_then(|_| tf.unlink_tmp())
            .map_err(|e| PathError {
                msg: format!(
                    "prometheus-textfile {}: cannot write there: {e}",
                    tf.dir.shown
                ),
                bad_input: false,
            })?;
        Ok(tf)
    }

    pub fn shown(&self) -> &str {
        &self.dir.shown
    }

    fn create_tmp(&self) -> rustix::io::Result<std::os::fd::OwnedFd> {
        let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::TRUNC;
        // node_exporter runs as its own user and must read it.
        path::open_named(&self.dir, &self.tmp, flags, Mode::from(0o644))
    }

    fn unlink_tmp(&self) -> rustix::io::Result<()> {
        rustix::fs::unlinkat(&self.dir.fd, &*self.tmp, rustix::fs::AtFlags::empty())
    }

    /// Replaces the file's content with `text` in one rename.
    pub fn write(&self, text: &[u8]) -> std::io::Result<()> {
        let r = self
            .create_tmp()
            .map(std::fs::File::from)
            .map_err(std::io::Error::from)
            .and_then(|mut f| std::io::Write::write_all(&mut f, text))
            .and_then(|()| {
                let d = &self.dir;
                Ok(rustix::fs::renameat(&d.fd, &*self.tmp, &d.fd, &*d.name)?)
            });
        if r.is_err() {
            let _ = self.unlink_tmp();
        }
        r
    }

    /// SIGHUP: follows a directory that was deleted and made again.
    pub fn reopen(&mut self) -> Result<(), String> {
        path::refresh(&mut self.dir)
            .map(|_| ())
            .map_err(|e| format!("prometheus-textfile: {}", e.msg))
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
        let tf = Textfile::open(&p).unwrap();
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
        let e = Textfile::open(&dir.join("no/such/dir.prom")).err().unwrap();
        assert!(e.bad_input && e.msg.contains("does not exist"), "{}", e.msg);
    }
}
