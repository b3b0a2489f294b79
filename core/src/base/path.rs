//! Paths the agent writes as root (outputs, pidfile) are opened relative to
//! a directory fd taken once at start, with no symlink anywhere on the path:
//! openat2(RESOLVE_NO_SYMLINKS) where the kernel has it (5.6+), else a walk
//! of O_NOFOLLOW opens, one component at a time. A later reopen (SIGHUP)
//! goes through the same directory fd and cannot leave it, so whoever owns a
//! directory on the path cannot redirect root's appends by swapping a
//! component for a symlink.

use std::ffi::{CStr, CString};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path};

use rustix::fs::{openat, openat2, Mode, OFlags, ResolveFlags, CWD};
use rustix::io::Errno;

/// Why a path cannot be used; `bad_input` ones are the user's to fix
/// (exit 2), the rest are the environment's (exit 1).
#[derive(Debug)]
pub struct PathError {
    pub msg: String,
    pub bad_input: bool,
}

fn bad(msg: String) -> PathError {
    PathError {
        msg,
        bad_input: true,
    }
}

/// The directory a file lives in, held open, plus the file's name in it.
pub struct SafeDir {
    pub fd: OwnedFd,
    pub name: CString,
    /// The path as given, for messages.
    pub shown: String,
    /// The path as given, to look it up again once the directory is deleted.
    given: std::path::PathBuf,
}

/// Whether to use openat2; tests force the fallback walk.
fn use_openat2() -> bool {
    std::env::var_os("KESTREL_NO_OPENAT2").is_none()
}

fn o_path_dir() -> OFlags {
    OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC
}

/// Opens the directory part of `path` (no symlinks, no `..`) and keeps the
/// last component's name.
pub fn open_parent(path: &Path) -> Result<SafeDir, PathError> {
    let shown = crate::log::escape(&path.display().to_string());
    let name = match path.components().next_back() {
        Some(Component::Normal(n)) => n,
        _ => return Err(bad(format!("{shown}: not a file path"))),
    };
    if path.components().any(|c| c == Component::ParentDir) {
        return Err(bad(format!("{shown}: '..' is not allowed in the path")));
    }
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty());
    let parent = parent.unwrap_or(Path::new("."));
    let fd = if use_openat2() {
        match openat2(
            CWD,
            parent,
            o_path_dir(),
            Mode::empty(),
            ResolveFlags::NO_SYMLINKS,
        ) {
            Err(Errno::NOSYS) | Err(Errno::PERM) => walk(parent),
            r => r,
        }
    } else {
        walk(parent)
    }
    .map_err(|e| dir_error(&shown, parent, e))?;
    Ok(SafeDir {
        fd,
        name: CString::new(name.as_bytes()).map_err(|_| bad(format!("{shown}: NUL in path")))?,
        shown,
        given: path.to_owned(),
    })
}

/// SIGHUP: a directory deleted since it was opened (rm -r, then mkdir) is
/// looked up again by its path, with the same rules as at start; one that
/// was only moved or replaced by a symlink is kept. True when it changed.
pub fn refresh(dir: &mut SafeDir) -> Result<bool, PathError> {
    match rustix::fs::fstat(&dir.fd) {
        Ok(st) if st.st_nlink == 0 => {
            *dir = open_parent(&dir.given)?;
            Ok(true)
        }
        _ => Ok(false),
    }
}

/// The fallback: every component opened O_NOFOLLOW relative to the last.
fn walk(dir: &Path) -> Result<OwnedFd, Errno> {
    let start = if dir.is_absolute() { "/" } else { "." };
    let mut fd = openat(CWD, start, o_path_dir(), Mode::empty())?;
    for c in dir.components() {
        if let Component::Normal(n) = c {
            fd = openat(&fd, n, o_path_dir() | OFlags::NOFOLLOW, Mode::empty()).map_err(
                // O_PATH|O_NOFOLLOW on a symlink with O_DIRECTORY: ENOTDIR.
                |e| {
                    if e == Errno::NOTDIR && is_symlink(&fd, n) {
                        Errno::LOOP
                    } else {
                        e
                    }
                },
            )?;
        }
    }
    Ok(fd)
}

fn is_symlink(dir: &OwnedFd, name: &std::ffi::OsStr) -> bool {
    rustix::fs::statat(dir, name, rustix::fs::AtFlags::SYMLINK_NOFOLLOW).is_ok_and(|st| {
        rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::Symlink
    })
}

fn dir_error(shown: &str, parent: &Path, e: Errno) -> PathError {
    let p = crate::log::escape(&parent.display().to_string());
    match e {
        Errno::LOOP | Errno::XDEV => bad(format!(
            "{shown}: a directory on the path is a symlink; give the path without symlinks \
             (e.g. from realpath {p})"
        )),
        Errno::NOENT => bad(format!("{shown}: directory {p} does not exist")),
        Errno::NOTDIR => bad(format!("{shown}: {p} is not a directory")),
        e => PathError {
            msg: format!("{shown}: cannot open directory {p}: {e}"),
            bad_input: false,
        },
    }
}

/// What is at the name now, without following a symlink (None: nothing).
pub fn kind_at(dir: &SafeDir) -> Result<Option<rustix::fs::FileType>, Errno> {
    match rustix::fs::statat(&dir.fd, &*dir.name, rustix::fs::AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(Some(rustix::fs::FileType::from_raw_mode(st.st_mode))),
        Err(Errno::NOENT) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Opens the name inside the directory: never through a symlink, never
/// outside the directory.
pub fn open_in(dir: &SafeDir, flags: OFlags, mode: Mode) -> Result<OwnedFd, Errno> {
    open_named(dir, &dir.name, flags, mode)
}

/// `open_in` for another name in the same directory (a temporary file).
pub fn open_named(dir: &SafeDir, name: &CStr, flags: OFlags, mode: Mode) -> Result<OwnedFd, Errno> {
    let flags = flags | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NOCTTY;
    // openat2 refuses a mode without O_CREAT.
    let mode = if flags.contains(OFlags::CREATE) {
        mode
    } else {
        Mode::empty()
    };
    if use_openat2() {
        let how = ResolveFlags::NO_SYMLINKS | ResolveFlags::BENEATH;
        match openat2(dir.fd.as_fd(), name, flags, mode, how) {
            Err(Errno::NOSYS) | Err(Errno::PERM) => {}
            r => return r,
        }
    }
    // The name has no '/', so O_NOFOLLOW covers the only component.
    openat(dir.fd.as_fd(), name, flags, mode)
}

/// Removes the name from the directory (a file we created, or the pidfile).
pub fn unlink_in(dir: &SafeDir) -> Result<(), Errno> {
    rustix::fs::unlinkat(&dir.fd, &*dir.name, rustix::fs::AtFlags::empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> std::path::PathBuf {
        let d = crate::testing::scratch(&format!("path-{name}"));
        std::fs::create_dir_all(d.join("real")).unwrap();
        std::os::unix::fs::symlink(d.join("real"), d.join("link")).unwrap();
        d
    }

    #[test]
    fn symlinked_directory_is_refused_both_ways() {
        let d = scratch("dir");
        let e = open_parent(&d.join("link/out.json")).err().unwrap();
        assert!(e.bad_input && e.msg.contains("symlink"), "{}", e.msg);
        let e = walk(&d.join("link")).unwrap_err();
        assert_eq!(e, Errno::LOOP);
        assert!(walk(&d.join("real")).is_ok());
        let e = open_parent(&d.join("real/../link/x")).err().unwrap();
        assert!(e.msg.contains(".."), "{}", e.msg);
    }

    #[test]
    fn opens_stay_inside_the_directory_after_it_moves() {
        let d = scratch("moved");
        let sd = open_parent(&d.join("real/out.json")).unwrap();
        // Whoever owns the parent moves the directory and plants a symlink.
        std::fs::rename(d.join("real"), d.join("moved")).unwrap();
        std::fs::create_dir(d.join("victim")).unwrap();
        std::os::unix::fs::symlink(d.join("victim"), d.join("real")).unwrap();
        let f = open_in(&sd, OFlags::WRONLY | OFlags::CREATE, Mode::from(0o600)).unwrap();
        drop(f);
        assert!(d.join("moved/out.json").exists());
        assert!(!d.join("victim/out.json").exists());
        // A symlink at the name itself is refused.
        std::os::unix::fs::symlink("/etc/passwd", d.join("moved/l")).unwrap();
        let sd2 = open_parent(&d.join("moved/l")).unwrap();
        assert_eq!(
            open_in(&sd2, OFlags::WRONLY, Mode::empty()).unwrap_err(),
            Errno::LOOP
        );
    }
}
