//! /proc as libsinsp's scap proc scan uses it: at start every user thread and
//! every open fd is seeded into the tables (kernel threads skipped, as the
//! probe skips them); later, a thread-lookup miss reads one thread's entry
//! (`lookup`) and the purge sweep asks whether a thread still exists
//! (`thread_alive`). Those two run on the hot path or its timer, so they use
//! stack buffers only: no allocation, a fixed number of bounded reads. The
//! fields follow libscap's proc scan (userspace/libscap/linux/scap_procs.c,
//! libs 0.25.4): cmdline as argv, readlink of exe and cwd, loginuid, and
//! stat's session and tty_nr taken as they are (tty_nr already has the
//! encoding the probe gives proc.tty).

use std::fs;

use heapless::Vec as HVec;

use super::PROC_PATH_MAX;
use super::{bounded, Fd, FdKind, State, Thread, ARGS_MAX, EXE_FROM_MEMFD, FDS_PER_PROCESS_MAX};
use crate::capture::record::SockAddr;
use crate::capture::Comm;
use crate::procfs::{parse_u64, read_whole, stat_fields_after_comm};

const PF_KTHREAD: u64 = 0x0020_0000;
const O_CLOEXEC: u64 = 0o2000000;
/// The longest procfs root (HOST_ROOT plus "/proc") the agent takes: the
/// lookup fallback builds its paths on the stack. Checked at start.
pub const ROOT_MAX: usize = 200;
const PATH_MAX: usize = ROOT_MAX + 48;

/// A procfs mount point held inline, so paths below it build on the stack.
#[derive(Clone, Debug)]
pub struct ProcRoot {
    root: HVec<u8, ROOT_MAX>,
    /// clock ticks per second, for start times.
    ticks: u64,
}

impl ProcRoot {
    pub fn new(root: &str) -> Option<ProcRoot> {
        let root = HVec::from_slice(root.trim_end_matches('/').as_bytes()).ok()?;
        Some(ProcRoot {
            root,
            ticks: rustix::param::clock_ticks_per_second().max(1),
        })
    }

    /// The mount point, without a trailing '/'.
    pub fn dir(&self) -> &str {
        // Built from a &str with ASCII '/' trimmed: always UTF-8.
        core::str::from_utf8(&self.root).unwrap_or_default()
    }

    /// "<root>/<a>/task/<b>/<leaf>" (or without the task part) as a C string.
    fn path(&self, a: u32, b: Option<u32>, leaf: &str) -> HVec<u8, PATH_MAX> {
        let mut p: HVec<u8, PATH_MAX> = HVec::new();
        let _ = p.extend_from_slice(&self.root);
        push_num(&mut p, a);
        if let Some(b) = b {
            let _ = p.extend_from_slice(b"/task");
            push_num(&mut p, b);
        }
        if !leaf.is_empty() {
            let _ = p.push(b'/');
            let _ = p.extend_from_slice(leaf.as_bytes());
        }
        let _ = p.push(0);
        p
    }
}

fn push_num(p: &mut HVec<u8, PATH_MAX>, mut n: u32) {
    let mut digits = [0u8; 10];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    let _ = p.push(b'/');
    let _ = p.extend_from_slice(&digits[i..]);
}

fn cstr(p: &[u8]) -> Option<&core::ffi::CStr> {
    core::ffi::CStr::from_bytes_with_nul(p).ok()
}

/// Parsed fields of /proc/PID/task/TID/stat that the table keeps.
#[derive(Debug, PartialEq, Eq)]
pub struct TaskStat {
    pub comm: Comm,
    pub ppid: u32,
    pub session: u32,
    /// As printed (a signed int): new_encode_dev of the controlling tty.
    pub tty_nr: u32,
    pub flags: u64,
    pub start_ticks: u64,
}

/// A signed decimal as /proc prints an int, wrapped to u32.
fn parse_i32_bits(s: &[u8]) -> Option<u32> {
    match s.strip_prefix(b"-") {
        Some(d) => Some((parse_u64(d)? as u32).wrapping_neg()),
        None => u32::try_from(parse_u64(s)?).ok(),
    }
}

/// Parses a stat line: comm from between the first '(' and the last ')',
/// the rest through the shared /proc stat field reader.
pub fn parse_task_stat(line: &[u8]) -> Option<TaskStat> {
    let open = line.iter().position(|&b| b == b'(')?;
    let close = line.iter().rposition(|&b| b == b')')?;
    if close < open {
        return None;
    }
    let mut comm = [0u8; 16];
    for (d, s) in comm.iter_mut().zip(line[open + 1..close].iter().take(15)) {
        *d = *s;
    }
    // After comm: state(0) ppid(1) pgrp(2) session(3) tty_nr(4) ... flags(6)
    // ... starttime(19)
    let mut f = stat_fields_after_comm(line)?;
    let ppid = parse_u64(f.nth(1)?)?;
    let session = parse_i32_bits(f.nth(1)?)?;
    let tty_nr = parse_i32_bits(f.next()?)?;
    let flags = parse_u64(f.nth(1)?)?;
    let start_ticks = parse_u64(f.nth(12)?)?;
    Some(TaskStat {
        comm,
        ppid: u32::try_from(ppid).ok()?,
        session,
        tty_nr,
        flags,
        start_ticks,
    })
}

/// Real uid and gid from a status file's "Uid:" and "Gid:" lines.
pub fn parse_uid_gid(status: &[u8]) -> (u32, u32) {
    let field = |name: &[u8]| {
        status
            .split(|&b| b == b'\n')
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split(|b| b.is_ascii_whitespace()).find(|s| !s.is_empty()))
            .and_then(parse_u64)
            .map_or(0, |v| v as u32)
    };
    (field(b"Uid:"), field(b"Gid:"))
}

/// The readlink target of a path, into `buf`. No allocation.
fn readlink_into<'b>(path: &[u8], buf: &'b mut [u8]) -> Option<&'b [u8]> {
    let p = cstr(path)?;
    // SAFETY: p is NUL-terminated; buf is writable for buf.len() bytes.
    let n = unsafe { libc::readlink(p.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    (n >= 0).then(|| &buf[..n as usize])
}

/// A loginuid file: the number, u32::MAX (unset) when absent (no
/// CONFIG_AUDIT) or malformed, as scap_procs.c does.
pub fn parse_loginuid(s: &[u8]) -> u32 {
    parse_u64(s.trim_ascii()).map_or(u32::MAX, |v| v as u32)
}

/// A link that fits whole in a thread's path field; longer ones could be
/// cut, so unknown (empty).
fn whole(link: &[u8]) -> HVec<u8, PROC_PATH_MAX> {
    if link.len() <= PROC_PATH_MAX {
        bounded(link)
    } else {
        HVec::new()
    }
}

/// One thread from /proc for a lookup miss (get_thread_ref's scap_proc_get),
/// or None when it is gone or a kernel thread. Four small reads and three
/// readlinks into stack buffers; `pid` comes from the record.
pub fn lookup(root: &ProcRoot, tid: u32, pid: u32) -> Option<Thread> {
    let mut buf = [0u8; 1024];
    let st = parse_task_stat(read_whole(
        cstr(&root.path(pid, Some(tid), "stat"))?,
        &mut buf,
    )?)?;
    if st.flags & PF_KTHREAD != 0 {
        return None;
    }
    let mut status = [0u8; 2048];
    let (uid, gid) = read_whole(cstr(&root.path(pid, Some(tid), "status"))?, &mut status)
        .map_or((0, 0), parse_uid_gid);
    let mut t = Thread {
        tid,
        pid,
        ppid: st.ppid,
        uid,
        gid,
        start_ns: st.start_ticks * 1_000_000_000 / root.ticks,
        comm: st.comm,
        sid: st.session,
        tty: st.tty_nr,
        ..Thread::default()
    };
    let mut small = [0u8; 16];
    t.loginuid = read_whole(cstr(&root.path(pid, Some(tid), "loginuid"))?, &mut small)
        .map_or(u32::MAX, parse_loginuid);
    let mut link = [0u8; PROC_PATH_MAX + 1];
    let exe = readlink_into(&root.path(pid, None, "exe"), &mut link).unwrap_or(&[]);
    t.exe = bounded(exe);
    t.exepath = whole(exe);
    if exe.starts_with(b"/memfd:") {
        t.exe_flags |= EXE_FROM_MEMFD;
    }
    t.cwd = whole(readlink_into(&root.path(pid, None, "cwd"), &mut link).unwrap_or(&[]));
    let mut args = [0u8; ARGS_MAX + 1];
    let args = read_whole(cstr(&root.path(pid, None, "cmdline"))?, &mut args).unwrap_or(&[]);
    t.args = bounded(args);
    t.args_trunc = args.len() > ARGS_MAX;
    Some(t)
}

/// Whether /proc still has this thread (scap_is_thread_alive's question).
pub fn thread_alive(root: &ProcRoot, pid: u32, tid: u32) -> bool {
    cstr(&root.path(pid, Some(tid), ""))
        .is_some_and(|p| rustix::fs::access(p, rustix::fs::Access::EXISTS).is_ok())
}

/// Seeds the open fds of one process: files by path, sockets by kind.
/// Close-on-exec comes from fdinfo's flags. Returns how many were seeded.
fn seed_fds(state: &mut State, root: &str, pid: u32) -> usize {
    let Ok(dir) = fs::read_dir(format!("{root}/{pid}/fd")) else {
        return 0;
    };
    let mut n = 0;
    for ent in dir.flatten() {
        let Some(fd) = ent.file_name().to_str().and_then(|s| s.parse::<i64>().ok()) else {
            continue;
        };
        if fd >= i64::from(FDS_PER_PROCESS_MAX) {
            continue;
        }
        let Ok(target) = fs::read_link(ent.path()) else {
            continue;
        };
        let target = target.as_os_str().as_encoded_bytes();
        let flags = fs::read_to_string(format!("{root}/{pid}/fdinfo/{fd}"))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("flags:"))
                    .and_then(|v| u64::from_str_radix(v.trim(), 8).ok())
            })
            .unwrap_or(0);
        let socket = target.starts_with(b"socket:");
        state.seed_fd(
            pid,
            fd,
            Fd {
                kind: if socket { FdKind::Socket } else { FdKind::File },
                cloexec: flags & O_CLOEXEC != 0,
                path: if socket { HVec::new() } else { bounded(target) },
                sock: SockAddr::default(),
                server: false,
                sock_type: 0,
            },
        );
        n += 1;
    }
    n
}

/// What the start-up scan found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Seeded {
    pub threads: usize,
    pub fds: usize,
    /// User threads found that did not fit the table.
    pub refused_threads: usize,
}

/// Adds every user thread and every open fd under `root`, counted as
/// adds like libsinsp's proc scan. Runs once at start, so it may allocate.
pub fn seed(state: &mut State, root: &ProcRoot) -> Seeded {
    let mut out = Seeded::default();
    let proc_root = root.dir();
    let Ok(dir) = fs::read_dir(proc_root) else {
        return out;
    };
    for ent in dir.flatten() {
        let name = ent.file_name();
        let Some(pid) = name.to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(tasks) = fs::read_dir(format!("{proc_root}/{pid}/task")) else {
            continue;
        };
        let mut user = false;
        for t in tasks.flatten() {
            let Some(tid) = t.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            let Some(th) = lookup(root, tid, pid) else {
                continue;
            };
            user = true;
            if state.seed_thread(th) {
                out.threads += 1;
            } else {
                out.refused_threads += 1;
            }
        }
        if user {
            out.fds += seed_fds(state, proc_root, pid);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_hostile_comm() {
        let line = b"42 (a) (b c) S 7 42 42 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 12345 1000 10";
        let st = parse_task_stat(line).unwrap();
        assert_eq!(&st.comm[..7], b"a) (b c");
        assert_eq!(st.ppid, 7);
        assert_eq!((st.session, st.tty_nr), (42, 0));
        let neg = b"9 (x) S 1 9 9 -5 -1 64 0 0 0 0 0 0 0 0 20 0 1 0 5 0 0";
        assert_eq!(parse_task_stat(neg).unwrap().tty_nr, (-5i32) as u32);
        assert_eq!(parse_loginuid(b"4294967295\n"), u32::MAX);
        assert_eq!(parse_loginuid(b"1000"), 1000);
        assert_eq!(parse_loginuid(b"x"), u32::MAX);
        assert_eq!(st.flags, 4194560);
        assert_eq!(st.start_ticks, 12345);
        assert!(parse_task_stat(b"42 (x S 1").is_none());
        assert!(parse_task_stat(b"").is_none());
        assert_eq!(
            parse_uid_gid(b"Name:\tx\nUid:\t1000\t1000\t1000\t1000\nGid:\t27\t27\t27\t27\n"),
            (1000, 27)
        );
    }

    #[test]
    fn seeds_threads_and_fds_as_adds_and_skips_kthreads() {
        let mut s = State::new(65536, 65536, 0, false);
        let keep = std::fs::File::open("/proc/self/stat").unwrap();
        let n = seed(&mut s, &ProcRoot::new("/proc").unwrap());
        assert!(n.threads > 0 && n.fds > 0);
        assert_eq!(s.n_threads(), n.threads);
        assert_eq!(s.n_fds(), n.fds);
        // The proc scan adds through add_thread and sinsp_fdtable::add.
        assert_eq!(s.counters.n_added_threads as usize, n.threads);
        assert_eq!(s.counters.n_added_fds as usize, n.fds);
        let me = std::process::id();
        let t = s.thread(me).expect("own process seeded");
        assert_eq!(t.pid, me);
        assert!(!t.exe.is_empty());
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(&t.cwd[..], cwd.as_os_str().as_encoded_bytes());
        let exe = std::fs::read_link("/proc/self/exe").unwrap();
        assert_eq!(&t.exepath[..], exe.as_os_str().as_encoded_bytes());
        let argv0 = std::env::args_os().next().unwrap();
        assert!(t.args.starts_with(argv0.as_encoded_bytes()));
        let login = std::fs::read("/proc/self/loginuid").map_or(u32::MAX, |l| parse_loginuid(&l));
        assert_eq!(t.loginuid, login);
        assert!(s.thread(2).is_none(), "kthreadd must be skipped");
        use std::os::fd::AsRawFd;
        let f = s
            .fd(me, i64::from(keep.as_raw_fd()))
            .expect("open fd seeded");
        assert_eq!(&f.path[..], format!("/proc/{me}/stat").as_bytes());
        assert!(f.cloexec, "Rust opens with O_CLOEXEC");
    }

    #[test]
    fn seeds_session_image_and_cwd_from_a_fixture_proc() {
        let root = &crate::testing::repo_tests_path("fixtures/proc/threads/proc");
        let mut s = State::new(64, 64, 0, false);
        assert_eq!(
            seed(&mut s, &ProcRoot::new(root).unwrap()).threads,
            3,
            "kthreadd skipped"
        );
        let t = s.thread(4242).unwrap();
        assert_eq!(&t.comm[..9], b"my (prog)");
        assert_eq!((t.uid, t.gid, t.loginuid), (1000, 100, 1000));
        // stat's session and tty_nr as they are: /dev/pts/1 is 136 << 8 | 1.
        assert_eq!((t.sid, t.tty), (4100, 136 << 8 | 1));
        assert_eq!(&t.args[..], b"/usr/bin/prog\0--flag\0two words\0");
        assert!(!t.args_trunc);
        assert_eq!(&t.exepath[..], b"/memfd:evil (deleted)");
        assert_eq!(t.exe_flags, super::super::EXE_FROM_MEMFD);
        assert_eq!(&t.cwd[..], b"/home/user");
        let d = s.thread(4301).unwrap();
        assert_eq!((d.pid, d.loginuid, d.sid, d.tty), (4300, u32::MAX, 4300, 0));
        assert!(d.args_trunc && d.args.len() == ARGS_MAX);
        assert!(
            d.cwd.is_empty(),
            "a cwd longer than the field is unknown, not cut"
        );
        assert_eq!(&d.exepath[..], b"/usr/sbin/daemon");
        assert_eq!(d.exe_flags, 0);
    }

    #[test]
    fn lookup_and_alive_need_no_allocation_and_answer_for_real_threads() {
        let root = ProcRoot::new("/proc/").unwrap();
        let me = std::process::id();
        let t = lookup(&root, me, me).expect("own thread");
        assert_eq!(t.pid, me);
        assert!(!t.exe.is_empty());
        assert!(thread_alive(&root, me, me));
        assert!(!thread_alive(&root, me, u32::MAX - 1));
        assert!(lookup(&root, u32::MAX - 1, u32::MAX - 1).is_none());
        assert!(lookup(&root, 2, 2).is_none(), "kthreadd is a kernel thread");
        assert_eq!(
            &root.path(12, Some(345), "stat")[..],
            b"/proc/12/task/345/stat\0"
        );
        assert_eq!(&root.path(7, None, "")[..], b"/proc/7\0");
    }

    #[test]
    fn a_root_of_root_max_bytes_fits_and_its_deepest_path_too() {
        let at_max = format!("/{}", "p".repeat(ROOT_MAX - 1));
        let root = ProcRoot::new(&at_max).expect("ROOT_MAX bytes fit");
        assert!(ProcRoot::new(&format!("{at_max}p")).is_none());
        let p = root.path(u32::MAX, Some(u32::MAX), "loginuid");
        assert!(p.ends_with(b"/4294967295/task/4294967295/loginuid\0"));
    }
}
