//! Log lines on stderr that can never stop or kill the agent. stderr may be a
//! closed pipe (EPIPE), a closed fd (EBADF), or a pipe nobody reads; a line
//! is written whole, without blocking, or counted as lost. Lines are built
//! in a fixed buffer (no allocation, so the per-event path may log), control
//! characters are escaped so one message is always one line, and a repeated
//! message is rate-limited per key: at most one line per window, the next
//! one saying how many were suppressed.

use std::cell::RefCell;
use std::fmt::{self, Write as _};
use std::os::fd::{AsFd, BorrowedFd, FromRawFd, OwnedFd};

/// Longest line written; longer messages are cut with "...".
const LINE_MAX: usize = 1024;
/// A rate-limited key logs at most once per window.
pub const WINDOW_NS: u64 = 10_000_000_000;

/// Messages that can repeat; each is rate-limited on its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Key {
    ThreadTableFull = 0,
    OutputError = 1,
    OutputReopen = 2,
    Render = 3,
    KernelRead = 4,
    FieldsFull = 5,
}
const KEYS: usize = 6;

#[derive(Clone, Copy, Default)]
struct Limit {
    last_ns: u64,
    logged: bool,
    suppressed: u64,
}

struct Logger {
    /// A non-blocking descriptor of stderr's target, when it has one.
    fd: Option<OwnedFd>,
    /// stderr is a socket (journald): written with MSG_DONTWAIT.
    socket: bool,
    lost: u64,
    limits: [Limit; KEYS],
    buf: Line,
}

/// A fixed buffer that escapes control characters as it is written.
struct Line {
    b: [u8; LINE_MAX],
    n: usize,
    cut: bool,
}

impl fmt::Write for Line {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for &c in s.as_bytes() {
            let hex = b"0123456789abcdef";
            let esc = [
                b'\\',
                b'x',
                hex[usize::from(c >> 4)],
                hex[usize::from(c & 15)],
            ];
            let bytes: &[u8] = if c < 0x20 || c == 0x7f {
                &esc
            } else {
                std::slice::from_ref(&c)
            };
            // Room is kept for "...\n".
            if self.n + bytes.len() > LINE_MAX - 4 {
                self.cut = true;
                return Ok(());
            }
            self.b[self.n..self.n + bytes.len()].copy_from_slice(bytes);
            self.n += bytes.len();
        }
        Ok(())
    }
}

/// Escapes control characters (newlines included) for an error line.
pub fn escape(s: &str) -> String {
    let mut l = Line {
        b: [0; LINE_MAX],
        n: 0,
        cut: false,
    };
    let _ = l.write_str(s);
    let mut out = String::from_utf8_lossy(&l.b[..l.n]).into_owned();
    if l.cut {
        out.push_str("...");
    }
    out
}

thread_local! {
    static LOG: RefCell<Logger> = const { RefCell::new(Logger {
        fd: None,
        socket: false,
        lost: 0,
        limits: [Limit { last_ns: 0, logged: false, suppressed: 0 }; KEYS],
        buf: Line { b: [0; LINE_MAX], n: 0, cut: false },
    }) };
}

/// Makes fds 0-2 safe and stderr non-blocking. A closed 0, 1 or 2 gets
/// /dev/null, so no file the agent opens later (a BPF map, an output) can
/// land on it and receive log lines. A pipe or terminal is reopened through
/// /proc/self/fd/2: a new open file description, so O_NONBLOCK does not leak
/// to the shell or service manager that shares the original.
pub fn init() {
    for fd in 0..3 {
        // SAFETY: fcntl(F_GETFD) only inspects the descriptor.
        if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
            // SAFETY: open returns a new fd; the lowest free one is `fd`.
            unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDWR) };
        }
    }
    let fd = nonblocking_dup(2);
    let socket = is_socket(2);
    LOG.with(|l| {
        let mut l = l.borrow_mut();
        l.fd = fd;
        l.socket = socket;
    });
}

/// Whether fd 0-2 `fd` is a socket (reopening through /proc fails for one).
pub fn is_socket(fd: i32) -> bool {
    // SAFETY: fd 0-2 stay open for the process's lifetime (see init).
    let b = unsafe { BorrowedFd::borrow_raw(fd) };
    rustix::fs::fstat(b).is_ok_and(|st| {
        rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::Socket
    })
}

/// A non-blocking descriptor for `fd`'s target (None: use `fd` as it is).
pub fn nonblocking_dup(fd: i32) -> Option<OwnedFd> {
    // SAFETY: fd 0-2 stay open for the process's lifetime (see init).
    let b = unsafe { BorrowedFd::borrow_raw(fd) };
    let st = rustix::fs::fstat(b).ok()?;
    let ft = rustix::fs::FileType::from_raw_mode(st.st_mode);
    if ft == rustix::fs::FileType::RegularFile {
        return None;
    }
    let path = format!("/proc/self/fd/{fd}\0");
    // SAFETY: NUL-terminated path; the result is checked.
    let nfd = unsafe {
        libc::open(
            path.as_ptr().cast(),
            libc::O_WRONLY | libc::O_NONBLOCK | libc::O_CLOEXEC | libc::O_NOCTTY,
        )
    };
    // SAFETY: a fresh descriptor we own.
    (nfd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(nfd) })
}

impl Logger {
    fn emit(&mut self, args: fmt::Arguments<'_>, suppressed: u64) {
        self.buf.n = 0;
        self.buf.cut = false;
        let _ = self.buf.write_str("kestrel: ");
        let _ = self.buf.write_fmt(args);
        if suppressed > 0 {
            let _ = write!(self.buf, " ({suppressed} similar lines suppressed)");
        }
        let mut n = self.buf.n;
        if self.buf.cut {
            self.buf.b[n..n + 3].copy_from_slice(b"...");
            n += 3;
        }
        self.buf.b[n] = b'\n';
        n += 1;
        let line = &self.buf.b[..n];
        // SAFETY: fd 2 stays open (init gives it /dev/null if it was closed).
        let fd = self
            .fd
            .as_ref()
            .map_or(unsafe { BorrowedFd::borrow_raw(2) }, |f| f.as_fd());
        let r = if self.socket && self.fd.is_none() {
            use rustix::net::SendFlags;
            rustix::net::send(fd, line, SendFlags::DONTWAIT | SendFlags::NOSIGNAL)
        } else {
            rustix::io::write(fd, line)
        };
        match r {
            Ok(w) if w == n => {}
            // A short write to a pipe cannot happen below PIPE_BUF; any other
            // outcome (EAGAIN, EPIPE, EBADF) loses the line, counted.
            _ => self.lost += 1,
        }
    }
}

/// Writes one line now (start-up and exit messages).
pub fn line(args: fmt::Arguments<'_>) {
    LOG.with(|l| {
        if let Ok(mut l) = l.try_borrow_mut() {
            l.emit(args, 0);
        }
    });
}

/// Writes one line unless `key` logged within the last window; what is
/// suppressed is counted and reported on the next line of that key.
pub fn limited(key: Key, now_ns: u64, args: fmt::Arguments<'_>) {
    LOG.with(|l| {
        let Ok(mut l) = l.try_borrow_mut() else {
            return;
        };
        let lim = l.limits[key as usize];
        if lim.logged && now_ns.saturating_sub(lim.last_ns) < WINDOW_NS {
            l.limits[key as usize].suppressed += 1;
            return;
        }
        l.limits[key as usize] = Limit {
            last_ns: now_ns,
            logged: true,
            suppressed: 0,
        };
        l.emit(args, lim.suppressed);
    });
}

/// Log lines that could not be written (EAGAIN, EPIPE, EBADF).
pub fn lost() -> u64 {
    LOG.with(|l| l.try_borrow().map_or(0, |l| l.lost))
}

/// `log::line` with format arguments.
#[macro_export]
macro_rules! log_line {
    ($($t:tt)*) => { $crate::log::line(format_args!($($t)*)) };
}

/// `log::limited` with format arguments.
#[macro_export]
macro_rules! log_limited {
    ($key:expr, $($t:tt)*) => {
        $crate::log::limited($key, $crate::base::time::monotonic_ns(), format_args!($($t)*))
    };
}

/// A pipe (read end, write end) for tests.
#[cfg(any(test, feature = "testing"))]
pub fn test_pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills two fds we then own.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: fresh descriptors.
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_control_characters() {
        assert_eq!(escape("a\nb\x1b[0m\x7f"), "a\\x0ab\\x1b[0m\\x7f");
        let long = "x".repeat(5000);
        let e = escape(&long);
        assert!(e.len() < 1100 && e.ends_with("..."), "{}", e.len());
    }

    #[test]
    fn rate_limit_counts_what_it_suppresses() {
        // Through a pipe we read back: fd 2 of the test process is left alone.
        let (r, w) = crate::log::test_pipe();
        LOG.with(|l| l.borrow_mut().fd = Some(w));
        for i in 0..100 {
            limited(Key::Render, 1_000 + i, format_args!("bad {i}"));
        }
        limited(Key::Render, 1_000 + WINDOW_NS, format_args!("bad again"));
        limited(Key::OutputError, 5, format_args!("other key"));
        LOG.with(|l| l.borrow_mut().fd = None);
        let mut buf = [0u8; 4096];
        let n = rustix::io::read(&r, &mut buf).unwrap();
        let text = std::str::from_utf8(&buf[..n]).unwrap();
        assert_eq!(
            text,
            "kestrel: bad 0\nkestrel: bad again (99 similar lines suppressed)\nkestrel: other key\n"
        );
    }

    #[test]
    fn a_closed_pipe_loses_lines_without_failing() {
        let (r, w) = crate::log::test_pipe();
        drop(r);
        LOG.with(|l| l.borrow_mut().fd = Some(w));
        let before = lost();
        line(format_args!("nobody reads this"));
        assert_eq!(lost(), before + 1);
        LOG.with(|l| l.borrow_mut().fd = None);
    }
}
