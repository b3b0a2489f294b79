//! Byte-stream sinks: `file:PATH` and stdout. Everything is non-blocking.
//! A regular file takes each line in one write; a short write (full disk)
//! is rolled back with ftruncate to the line's start, so no fragment is ever
//! continued by a later line. A stream (pipe, terminal, FIFO, socket) may
//! take part of a line; the rest follows before anything else.
//!
//! `file:` refuses FIFOs, sockets and devices unless allowed: opening or
//! writing one can block or have side effects, and none of them is a log.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::fs::{FileType, Mode, OFlags};
use rustix::io::Errno;

use super::{Sink, Wrote};
use crate::base::path::{self, PathError, SafeDir};

enum Target {
    Stdout(Option<OwnedFd>),
    File(SafeDir, Option<OwnedFd>),
}

pub struct StreamSink {
    target: Target,
    name: String,
    /// A regular file: whole lines, rollback on a short write.
    regular: bool,
    socket: bool,
    allow_special: bool,
    pub created: bool,
}

fn kind_name(t: FileType) -> &'static str {
    match t {
        FileType::Fifo => "a FIFO",
        FileType::Socket => "a socket",
        FileType::CharacterDevice => "a character device",
        FileType::BlockDevice => "a block device",
        FileType::Directory => "a directory",
        FileType::Symlink => "a symlink",
        _ => "not a regular file",
    }
}

fn refused(shown: &str, t: FileType) -> PathError {
    PathError {
        msg: format!(
            "output file {shown} is {}: refusing it (outputs are regular files; \
             --allow-special-outputs to override)",
            kind_name(t)
        ),
        bad_input: true,
    }
}

fn io_err(shown: &str, e: Errno) -> PathError {
    PathError {
        msg: format!("cannot open output file {shown}: {e}"),
        bad_input: false,
    }
}

/// Opens for append, non-blocking (a FIFO without a reader fails with ENXIO
/// instead of hanging), mode 0640 when created. Returns (fd, created, kind).
fn open_file(dir: &SafeDir, allow_special: bool) -> Result<(OwnedFd, bool, FileType), PathError> {
    let shown = &dir.shown;
    let before = path::kind_at(dir).map_err(|e| io_err(shown, e))?;
    match before {
        Some(FileType::Symlink) => {
            return Err(PathError {
                msg: format!("output file {shown} is a symlink: refusing to follow it"),
                bad_input: true,
            })
        }
        Some(FileType::RegularFile) | None => {}
        Some(t) if !allow_special || t == FileType::Directory => return Err(refused(shown, t)),
        Some(_) => {}
    }
    let flags = OFlags::WRONLY | OFlags::APPEND | OFlags::NONBLOCK;
    let mode = Mode::from(0o640);
    let (fd, created) = match path::open_in(dir, flags | OFlags::CREATE | OFlags::EXCL, mode) {
        Ok(fd) => (fd, true),
        Err(Errno::EXIST) => (
            path::open_in(dir, flags, mode).map_err(|e| open_err(shown, e))?,
            false,
        ),
        Err(e) => return Err(open_err(shown, e)),
    };
    let st = rustix::fs::fstat(&fd).map_err(|e| io_err(shown, e))?;
    let kind = FileType::from_raw_mode(st.st_mode);
    if kind != FileType::RegularFile && !allow_special {
        // Swapped in between the check and the open.
        return Err(refused(shown, kind));
    }
    Ok((fd, created, kind))
}

fn open_err(shown: &str, e: Errno) -> PathError {
    match e {
        Errno::LOOP | Errno::XDEV => PathError {
            msg: format!("output file {shown} is a symlink: refusing to follow it"),
            bad_input: true,
        },
        Errno::NXIO => PathError {
            msg: format!("output file {shown}: a FIFO with no reader"),
            bad_input: false,
        },
        e => io_err(shown, e),
    }
}

impl StreamSink {
    pub fn file(p: &std::path::Path, allow_special: bool) -> Result<StreamSink, PathError> {
        let dir = path::open_parent(p)?;
        let (fd, created, kind) = open_file(&dir, allow_special)?;
        Ok(StreamSink {
            name: format!("file:{}", dir.shown),
            target: Target::File(dir, Some(fd)),
            regular: kind == FileType::RegularFile,
            socket: kind == FileType::Socket,
            allow_special,
            created,
        })
    }

    /// stdout may be anything; a pipe or terminal is written non-blocking
    /// through its own open file description (see log::nonblocking_dup).
    pub fn stdout() -> StreamSink {
        // SAFETY: fd 1 is open for the process's lifetime (log::init).
        let kind = rustix::fs::fstat(unsafe { BorrowedFd::borrow_raw(1) })
            .map(|st| FileType::from_raw_mode(st.st_mode))
            .unwrap_or(FileType::Unknown);
        StreamSink {
            target: Target::Stdout(crate::log::nonblocking_dup(1)),
            name: "stdout".into(),
            regular: kind == FileType::RegularFile,
            socket: kind == FileType::Socket,
            allow_special: true,
            created: false,
        }
    }

    fn fd(&self) -> Option<BorrowedFd<'_>> {
        match &self.target {
            Target::Stdout(Some(fd)) => Some(fd.as_fd()),
            // SAFETY: fd 1 stays open (log::init).
            Target::Stdout(None) => Some(unsafe { BorrowedFd::borrow_raw(1) }),
            Target::File(_, fd) => fd.as_ref().map(|f| f.as_fd()),
        }
    }

    /// A short write to a regular file: cut the fragment off again.
    fn roll_back(fd: BorrowedFd<'_>, n: usize) {
        let Ok(end) = rustix::fs::seek(fd, rustix::fs::SeekFrom::Current(0)) else {
            return;
        };
        let start = end.saturating_sub(n as u64);
        if rustix::fs::ftruncate(fd, start).is_err() {
            // Cannot cut it: end it, so the next line starts on its own.
            let _ = rustix::io::write(fd, b"\n");
        } else {
            let _ = rustix::fs::seek(fd, rustix::fs::SeekFrom::Start(start));
        }
    }
}

impl Sink for StreamSink {
    fn name(&self) -> &str {
        &self.name
    }

    fn write(&mut self, data: &[u8], done: usize) -> Wrote {
        let regular = self.regular;
        let socket = self.socket;
        let Some(fd) = self.fd() else {
            return Wrote::Lost("not open");
        };
        let rest = &data[done..];
        let r = if socket {
            rustix::net::send(
                fd,
                rest,
                rustix::net::SendFlags::DONTWAIT | rustix::net::SendFlags::NOSIGNAL,
            )
        } else {
            rustix::io::write(fd, rest)
        };
        match r {
            Ok(n) if n == rest.len() => Wrote::All,
            Ok(n) if regular => {
                Self::roll_back(fd, n);
                Wrote::Lost("short write (disk full?); rolled back")
            }
            // Nothing taken is "later", never a busy loop.
            Ok(0) => Wrote::Blocked,
            Ok(n) => Wrote::Some(n),
            Err(Errno::AGAIN) | Err(Errno::INTR) => Wrote::Blocked,
            Err(Errno::NOSPC) => Wrote::Lost("no space left on device"),
            Err(Errno::PIPE) => Wrote::Lost("broken pipe"),
            Err(_) => Wrote::Lost("write failed"),
        }
    }

    fn reopen(&mut self) -> Result<(), String> {
        let Target::File(dir, fd) = &mut self.target else {
            return Ok(());
        };
        if let Err(e) = path::refresh(dir) {
            *fd = None;
            return Err(e.msg);
        }
        // Through the directory fd taken at start, as the agent's (maybe
        // switched) uid: the kernel checks the permission.
        match open_file(dir, self.allow_special) {
            Ok((f, _, kind)) => {
                *fd = Some(f);
                self.regular = kind == FileType::RegularFile;
                Ok(())
            }
            Err(e) => {
                *fd = None;
                Err(e.msg)
            }
        }
    }

    fn poll_fd(&self) -> Option<BorrowedFd<'_>> {
        if self.regular {
            None
        } else {
            self.fd()
        }
    }

    fn remove_if_created(&mut self) {
        if let (Target::File(dir, _), true) = (&self.target, self.created) {
            let _ = path::unlink_in(dir);
        }
    }
}
