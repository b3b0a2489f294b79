//! The pidfile, written as root: checked before anything is created, then
//! created with O_CREAT|O_EXCL|O_NOFOLLOW inside a directory opened without
//! symlinks, so neither a planted symlink nor an existing file (a root-owned
//! target) is ever truncated. A stale pidfile (ours, its pid gone, after a
//! kill -9) is removed first; a live one is an error.

use std::path::Path;

use rustix::fs::{FileType, Mode, OFlags};
use rustix::io::Errno;

use crate::base::path::{self, PathError, SafeDir};

pub struct Pidfile {
    dir: SafeDir,
    written: bool,
}

fn bad(msg: String) -> PathError {
    PathError {
        msg,
        bad_input: true,
    }
}

/// Whether an existing pidfile names a pid that is gone.
fn stale(dir: &SafeDir) -> Result<bool, Errno> {
    let fd = path::open_in(dir, OFlags::RDONLY | OFlags::NONBLOCK, Mode::empty())?;
    let st = rustix::fs::fstat(&fd)?;
    if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile
        || st.st_uid != rustix::process::geteuid().as_raw()
    {
        return Ok(false);
    }
    let mut buf = [0u8; 32];
    let n = rustix::io::read(&fd, &mut buf)?;
    let pid = std::str::from_utf8(&buf[..n])
        .ok()
        .and_then(|s| s.trim().parse::<i32>().ok())
        .filter(|&p| p > 0);
    // SAFETY: kill with signal 0 only checks for existence.
    Ok(pid.is_some_and(|p| unsafe { libc::kill(p, 0) } != 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH)))
}

impl Pidfile {
    /// Validates the path without creating anything.
    pub fn check(p: &Path) -> Result<Pidfile, PathError> {
        let dir = path::open_parent(p).map_err(|mut e| {
            e.msg = format!("pidfile {}", e.msg);
            e
        })?;
        let shown = dir.shown.clone();
        match path::kind_at(&dir) {
            Ok(None) => {}
            Ok(Some(FileType::RegularFile)) if stale(&dir) == Ok(true) => {}
            Ok(Some(FileType::Symlink)) => {
                return Err(bad(format!("pidfile {shown} is a symlink: refusing it")))
            }
            Ok(Some(FileType::RegularFile)) => {
                return Err(bad(format!(
                    "pidfile {shown} exists and is not a stale pidfile of ours: \
                     is another kestrel running?"
                )))
            }
            Ok(Some(_)) => return Err(bad(format!("pidfile {shown} is not a regular file"))),
            Err(e) => {
                return Err(PathError {
                    msg: format!("pidfile {shown}: {e}"),
                    bad_input: false,
                })
            }
        }
        Ok(Pidfile {
            dir,
            written: false,
        })
    }

    /// Creates it exclusively and writes the pid.
    pub fn write(&mut self, pid: u32) -> Result<(), String> {
        let shown = self.dir.shown.clone();
        if path::kind_at(&self.dir) == Ok(Some(FileType::RegularFile))
            && stale(&self.dir) == Ok(true)
        {
            let _ = path::unlink_in(&self.dir);
        }
        let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL;
        let fd = path::open_in(&self.dir, flags, Mode::from(0o644))
            .map_err(|e| format!("cannot create pidfile {shown}: {e}"))?;
        self.written = true;
        let text = format!("{pid}\n");
        match rustix::io::write(&fd, text.as_bytes()) {
            Ok(n) if n == text.len() => Ok(()),
            _ => {
                self.remove();
                Err(format!("cannot write pidfile {shown}"))
            }
        }
    }

    /// Removes it at exit (only if this run created it).
    pub fn remove(&mut self) {
        if std::mem::take(&mut self.written) {
            if let Err(e) = path::unlink_in(&self.dir) {
                crate::log_line!("cannot remove pidfile {}: {e}", self.dir.shown);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> std::path::PathBuf {
        let d = crate::testing::scratch(&format!("pid-{name}"));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn symlink_and_live_pidfiles_are_refused_and_targets_untouched() {
        let d = dir("link");
        std::fs::write(d.join("victim"), "precious").unwrap();
        std::os::unix::fs::symlink(d.join("victim"), d.join("k.pid")).unwrap();
        let e = Pidfile::check(&d.join("k.pid")).err().unwrap();
        assert!(e.bad_input && e.msg.contains("symlink"), "{}", e.msg);
        assert_eq!(
            std::fs::read_to_string(d.join("victim")).unwrap(),
            "precious"
        );
        // Our own live pid: refused.
        std::fs::write(d.join("live.pid"), format!("{}\n", std::process::id())).unwrap();
        assert!(Pidfile::check(&d.join("live.pid")).is_err());
    }

    #[test]
    fn stale_pidfile_is_replaced_and_removed_at_exit() {
        let d = dir("stale");
        // A pid far above pid_max is never running.
        std::fs::write(d.join("k.pid"), "2147483646\n").unwrap();
        let mut p = Pidfile::check(&d.join("k.pid")).unwrap();
        p.write(42).unwrap();
        assert_eq!(std::fs::read_to_string(d.join("k.pid")).unwrap(), "42\n");
        p.remove();
        assert!(!d.join("k.pid").exists());
    }
}
