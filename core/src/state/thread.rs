//! One thread-table entry, with what Falco's rule fields read of a process:
//! the image (argv, exepath, exe flags), the cwd and the session (loginuid,
//! tty, sid). The image and the cwd belong to the process: a new thread
//! copies its leader's, a forked child its parent's, and an exec replaces
//! them (libsinsp parsers.cpp parse_clone_exit_child, parse_execve_exit).

use heapless::Vec as HVec;

use super::set_bytes;
use crate::capture::skel::types::kestrel_limits as L;
use crate::capture::Comm;

pub const EXE_MAX: usize = 96;
/// argv bytes kept per thread: all the probe sends.
pub const ARGS_MAX: usize = L::KESTREL_ARGS_MAX.0 as usize;
/// exepath and cwd bytes kept per thread: all the probe sends, NUL excluded.
pub const PROC_PATH_MAX: usize = L::KESTREL_PATH_MAX.0 as usize - 1;

/// `Thread::exe_flags` bits.
pub const EXE_FROM_MEMFD: u8 = 0x1;
pub const EXE_UPPER_LAYER: u8 = 0x2;

#[derive(Clone, Debug)]
pub struct Thread {
    pub tid: u32,
    pub pid: u32,
    pub ppid: u32,
    pub uid: u32,
    pub gid: u32,
    pub start_ns: u64,
    pub comm: Comm,
    /// The exec'd path as passed (bprm->filename), or /proc's exe link.
    pub exe: HVec<u8, EXE_MAX>,
    /// argv as captured: NUL-separated, argv[0] first.
    pub args: HVec<u8, ARGS_MAX>,
    /// argv was longer than ARGS_MAX.
    pub args_trunc: bool,
    /// The executable's absolute path; empty when unknown.
    pub exepath: HVec<u8, PROC_PATH_MAX>,
    /// The process's cwd, without a trailing '/' (but "/"); empty when unknown.
    pub cwd: HVec<u8, PROC_PATH_MAX>,
    /// Audit login uid; u32::MAX when unset.
    pub loginuid: u32,
    /// Falco's proc.tty (the encoding of /proc's tty_nr); 0: none.
    pub tty: u32,
    /// Session id (initial pid namespace).
    pub sid: u32,
    /// EXE_FROM_MEMFD | EXE_UPPER_LAYER.
    pub exe_flags: u8,
    /// Tick of the last lookup (libsinsp's m_lastaccess_ts), for the purge.
    pub(super) last_tick: u32,
    /// Syscall number of the saved enter event, -1 when none.
    pub(super) pending_enter: i16,
}

impl Thread {
    pub fn new(tid: u32, pid: u32) -> Thread {
        Thread {
            tid,
            pid,
            ..Thread::default()
        }
    }

    /// Takes the process-wide fields of `from` (its leader or its parent).
    pub(super) fn inherit(&mut self, from: &Thread) {
        set_bytes(&mut self.exe, &from.exe);
        set_bytes(&mut self.args, &from.args);
        self.args_trunc = from.args_trunc;
        set_bytes(&mut self.exepath, &from.exepath);
        set_bytes(&mut self.cwd, &from.cwd);
        self.exe_flags = from.exe_flags;
    }
}

impl Default for Thread {
    fn default() -> Self {
        Thread {
            tid: 0,
            pid: 0,
            ppid: 0,
            uid: 0,
            gid: 0,
            start_ns: 0,
            comm: [0; 16],
            exe: HVec::new(),
            args: HVec::new(),
            args_trunc: false,
            exepath: HVec::new(),
            cwd: HVec::new(),
            loginuid: u32::MAX,
            tty: 0,
            sid: 0,
            exe_flags: 0,
            last_tick: 0,
            pending_enter: -1,
        }
    }
}

/// `rel` resolved lexically against the directory `base` (ignored when
/// `rel` is absolute): `.`, `..` and repeated `/` collapse, symlinks are not
/// followed, `..` stops at the root. None when a relative path has no base
/// or the result does not fit. No allocation.
pub fn resolve<const N: usize>(base: &[u8], rel: &[u8]) -> Option<HVec<u8, N>> {
    let mut out: HVec<u8, N> = HVec::new();
    let base = if rel.first() == Some(&b'/') {
        &b""[..]
    } else if base.first() == Some(&b'/') {
        base
    } else {
        return None;
    };
    for part in base.split(|&b| b == b'/').chain(rel.split(|&b| b == b'/')) {
        match part {
            b"" | b"." => {}
            b".." => {
                let cut = out.iter().rposition(|&b| b == b'/').unwrap_or(0);
                out.truncate(cut);
            }
            _ => {
                out.push(b'/').ok()?;
                out.extend_from_slice(part).ok()?;
            }
        }
    }
    if out.is_empty() {
        out.push(b'/').ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(base: &str, rel: &str) -> Option<String> {
        resolve::<32>(base.as_bytes(), rel.as_bytes())
            .map(|v| String::from_utf8(v.to_vec()).unwrap())
    }

    #[test]
    fn resolves_lexically_like_libsinsp_concatenate_paths() {
        assert_eq!(r("/tmp", "x").as_deref(), Some("/tmp/x"));
        assert_eq!(r("/tmp", "/etc//ssh/./").as_deref(), Some("/etc/ssh"));
        assert_eq!(r("/a/b", "../../..").as_deref(), Some("/"));
        assert_eq!(r("/a/b", "../c/./d/..").as_deref(), Some("/a/c"));
        assert_eq!(r("/", ".").as_deref(), Some("/"));
        assert_eq!(r("", "x"), None, "a relative path needs a base");
        assert_eq!(r("rel", "x"), None, "a base must be absolute");
        assert_eq!(r("", "/x").as_deref(), Some("/x"));
        assert_eq!(r("/", &"a/".repeat(20)), None, "too long for 32 bytes");
        assert_eq!(r("/", "..a/b..").as_deref(), Some("/..a/b.."));
    }
}
