//! Live tests of what the rules read: real execs, memfd and overlayfs
//! executables, a pty session with a login uid, and the syscalls KR_SYSCALL
//! carries, seen by the real probe on this kernel and applied to a State.
//! Root only (#[ignore]d otherwise; scripts/test.sh includes them).

use std::ffi::{CStr, CString};
use std::os::unix::ffi::OsStrExt;
use std::process::Command;

use kestrel::capture::btf::AttachMode;
use kestrel::capture::record::{decode, Record};
use kestrel::capture::skel::types::{kestrel_flags as F, kestrel_task};
use kestrel::capture::syscalls::Selection;
use kestrel::capture::ProbeConfig;
use kestrel::state::{procfs, State, EXE_FROM_MEMFD, EXE_UPPER_LAYER};

mod common;
use common::{apply_where, capture, probe_lock, tmp, unbatched};

/// One successful exec as decoded, owned.
#[derive(Debug, Clone)]
struct Exec {
    pid: u32,
    flags: u16,
    task: kestrel_task,
    path: Vec<u8>,
    args: Vec<u8>,
    exepath: Vec<u8>,
    cwd: Vec<u8>,
}

fn execs(raw: &[Vec<u8>]) -> Vec<Exec> {
    raw.iter()
        .filter_map(|r| match decode(r).unwrap() {
            Record::Exec {
                hdr,
                task: Some(task),
                path,
                args,
                exepath,
                cwd,
            } => Some(Exec {
                pid: hdr.pid,
                flags: hdr.flags,
                task,
                path: path.to_vec(),
                args: args.to_vec(),
                exepath: exepath.to_vec(),
                cwd: cwd.to_vec(),
            }),
            _ => None,
        })
        .collect()
}

/// Exits are left out where a test reads the table after the process ended.
fn exit(r: &Record<'_>) -> bool {
    matches!(r, Record::ProcExit { .. })
}

fn real(p: &str) -> Vec<u8> {
    std::fs::canonicalize(p)
        .unwrap()
        .as_os_str()
        .as_bytes()
        .to_vec()
}

fn cfg(attach: AttachMode, syscalls: &str) -> ProbeConfig {
    ProbeConfig {
        attach,
        selection: Selection::parse(syscalls).unwrap(),
        ..unbatched()
    }
}

/// Session fields of a live process as /proc shows them (the probe must agree).
fn proc_session(pid: u32) -> (u32, u32, u32) {
    let root = procfs::ProcRoot::new("/proc").unwrap();
    let t = procfs::lookup(&root, pid, pid).expect("process alive");
    (t.loginuid, t.tty, t.sid)
}

#[test]
#[ignore = "needs root: loads the probe (scripts/test.sh runs it with --include-ignored)"]
fn exec_records_carry_argv_exepath_and_cwd_on_tp_btf() {
    exec_fields(AttachMode::TpBtf);
}

#[test]
#[ignore = "needs root: loads the probe (scripts/test.sh runs it with --include-ignored)"]
fn exec_records_carry_argv_exepath_and_cwd_on_raw_tp() {
    exec_fields(AttachMode::RawTp);
}

fn exec_fields(attach: AttachMode) {
    let _g = probe_lock();
    let mut child = 0;
    let (raw, _) = capture(cfg(attach, "default"), true, || {
        let mut c = Command::new("/bin/sh")
            .args(["-c", "exec /bin/sleep 0.2", "kestrel-arg0", "two words"])
            .current_dir("/tmp")
            .spawn()
            .unwrap();
        child = c.id();
        assert!(c.wait().unwrap().success());
    });
    let mine: Vec<Exec> = execs(&raw).into_iter().filter(|e| e.pid == child).collect();
    assert_eq!(mine.len(), 2, "sh, then sleep: {mine:?}");
    let (sh, sleep) = (&mine[0], &mine[1]);
    assert_eq!(sh.path, b"/bin/sh");
    assert_eq!(
        sh.args,
        b"/bin/sh\0-c\0exec /bin/sleep 0.2\0kestrel-arg0\0two words\0"
    );
    assert_eq!(sh.exepath, real("/bin/sh"), "symlinks resolved");
    assert_eq!(sleep.path, b"/bin/sleep");
    assert_eq!(sleep.args, b"/bin/sleep\x000.2\0");
    assert_eq!(sleep.exepath, real("/bin/sleep"));
    assert!(sleep.exepath.starts_with(b"/usr/"), "merged /usr");
    for e in [sh, sleep] {
        assert_eq!(e.cwd, real("/tmp"));
        let none = F::KF_EXE_MEMFD.0
            | F::KF_EXE_UPPER_LAYER.0
            | F::KF_ARGS_TRUNC.0
            | F::KF_EXEPATH_TRUNC.0
            | F::KF_CWD_TRUNC.0
            | F::KF_PATH_FAULT.0
            | F::KF_ARGS_FAULT.0;
        assert_eq!(u32::from(e.flags) & none, 0, "{e:?}");
        // Inherited from this process: its login uid, tty and session.
        let me = std::process::id();
        let (loginuid, tty, sid) = proc_session(me);
        assert_eq!(
            (e.task.loginuid, e.task.tty, e.task.sid),
            (loginuid, tty, sid)
        );
    }

    // The thread table takes them from the records.
    let mut s = State::new(64, 64, 0, false);
    apply_where(&mut s, &raw, |r| r.hdr().pid == child && !exit(r));
    let t = s.thread(child).expect("the child is in the table");
    assert_eq!(&t.args[..], &sleep.args[..]);
    assert_eq!(&t.exepath[..], &sleep.exepath[..]);
    assert_eq!(&t.cwd[..], &real("/tmp")[..]);
    assert!(!t.args_trunc);
    assert_eq!(t.exe_flags, 0);
    assert_eq!((t.loginuid, t.sid), (sh.task.loginuid, sh.task.sid));
}

/// Forks a child that runs `pre` (async-signal-safe calls only: the test
/// harness is multi-threaded), then execveat(fd, path, argv, AT flags).
fn spawn_exec(fd: i32, path: &CStr, argv: &[&CStr], at: i32, pre: impl Fn()) -> u32 {
    let mut av: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    av.push(std::ptr::null());
    let env: [*const libc::c_char; 1] = [std::ptr::null()];
    // SAFETY: the child only makes raw syscalls and _exit.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        pre();
        unsafe {
            libc::syscall(
                libc::SYS_execveat,
                fd,
                path.as_ptr(),
                av.as_ptr(),
                env.as_ptr(),
                at,
            );
            libc::_exit(127);
        }
    }
    pid as u32
}

fn reap(pid: u32) -> i32 {
    let mut st = 0;
    // SAFETY: reaping our own child.
    unsafe { libc::waitpid(pid as i32, &mut st, 0) };
    st
}

#[test]
#[ignore = "needs root: loads the probe (scripts/test.sh runs it with --include-ignored)"]
fn memfd_and_overlay_upper_executables_are_flagged() {
    let _g = probe_lock();
    let name = c"kestrel-memfd";
    // SAFETY: a plain syscall; the fd is ours.
    let memfd = unsafe { libc::memfd_create(name.as_ptr(), 0) };
    assert!(memfd >= 0);
    let image = std::fs::read("/bin/true").unwrap();
    // SAFETY: writing our buffer to our fd.
    let n = unsafe { libc::write(memfd, image.as_ptr().cast(), image.len()) };
    assert_eq!(n, image.len() as isize);
    let ovl = Overlay::mount("ovl");
    let (upper, lower) = (ovl.exe("upper"), ovl.exe("lower"));
    let mut pids = [0u32; 3];
    let (raw, _) = capture(cfg(AttachMode::Auto, "default"), true, || {
        pids[0] = spawn_exec(memfd, c"", &[c"true"], libc::AT_EMPTY_PATH, || {});
        pids[1] = spawn_exec(libc::AT_FDCWD, &upper, &[&upper], 0, || {});
        pids[2] = spawn_exec(libc::AT_FDCWD, &lower, &[&lower], 0, || {});
        for p in pids {
            assert_eq!(reap(p), 0, "the exec'd true exits 0");
        }
    });
    // SAFETY: our fd.
    unsafe { libc::close(memfd) };
    let all = execs(&raw);
    let one = |pid: u32| {
        all.iter()
            .find(|e| e.pid == pid)
            .cloned()
            .expect("exec seen")
    };
    let (m, u, l) = (one(pids[0]), one(pids[1]), one(pids[2]));
    let flag = |e: &Exec, f: F| u32::from(e.flags) & f.0 != 0;
    assert!(flag(&m, F::KF_EXE_MEMFD), "{m:?}");
    assert!(m.exepath.starts_with(b"memfd:kestrel-memfd"), "{m:?}");
    assert!(!flag(&m, F::KF_EXE_UPPER_LAYER) && !flag(&u, F::KF_EXE_MEMFD));
    assert!(flag(&u, F::KF_EXE_UPPER_LAYER), "{u:?}");
    assert!(!flag(&l, F::KF_EXE_UPPER_LAYER), "{l:?}");
    assert_eq!(
        u.exepath,
        upper.to_bytes(),
        "a path through the overlay mount"
    );

    let mut s = State::new(64, 64, 0, false);
    apply_where(&mut s, &raw, |r| pids.contains(&r.hdr().pid) && !exit(r));
    assert_eq!(s.thread(pids[0]).unwrap().exe_flags, EXE_FROM_MEMFD);
    assert_eq!(s.thread(pids[1]).unwrap().exe_flags, EXE_UPPER_LAYER);
    assert_eq!(s.thread(pids[2]).unwrap().exe_flags, 0);
}

/// An overlayfs with one copy of /bin/true in each layer, unmounted on drop.
struct Overlay(String);

impl Overlay {
    fn mount(name: &str) -> Overlay {
        let dir = tmp(name);
        for d in ["l", "u", "w", "m"] {
            std::fs::create_dir_all(format!("{dir}/{d}")).unwrap();
        }
        std::fs::copy("/bin/true", format!("{dir}/l/lower")).unwrap();
        std::fs::copy("/bin/true", format!("{dir}/u/upper")).unwrap();
        let opts = format!("lowerdir={dir}/l,upperdir={dir}/u,workdir={dir}/w");
        let ok = Command::new("mount")
            .args(["-t", "overlay", "overlay", "-o", &opts, &format!("{dir}/m")])
            .status()
            .unwrap();
        assert!(ok.success(), "mount an overlayfs on {dir}/m");
        Overlay(dir)
    }

    fn exe(&self, name: &str) -> CString {
        let p = std::fs::canonicalize(format!("{}/m/{name}", self.0)).unwrap();
        CString::new(p.as_os_str().as_bytes()).unwrap()
    }
}

impl Drop for Overlay {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(format!("{}/m", self.0)).status();
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
#[ignore = "needs root: loads the probe (scripts/test.sh runs it with --include-ignored)"]
fn a_new_session_with_a_tty_and_login_uid_matches_proc() {
    let _g = probe_lock();
    // SAFETY: plain libc pty calls on our own fd.
    let (master, slave) = unsafe {
        let m = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY);
        assert!(m >= 0 && libc::grantpt(m) == 0 && libc::unlockpt(m) == 0);
        let mut buf = [0 as libc::c_char; 64];
        assert_eq!(libc::ptsname_r(m, buf.as_mut_ptr(), buf.len()), 0);
        (m, CStr::from_ptr(buf.as_ptr()).to_owned())
    };
    let mut child = 0;
    let mut from_proc = (0, 0, 0);
    let (raw, _) = capture(cfg(AttachMode::Auto, "default"), true, || {
        let sleep = c"/bin/sleep";
        child = spawn_exec(libc::AT_FDCWD, sleep, &[c"sleep", c"5"], 0, || unsafe {
            // A session leader opening a tty makes it its controlling one.
            libc::setsid();
            libc::open(slave.as_ptr(), libc::O_RDWR);
            let fd = libc::open(c"/proc/self/loginuid".as_ptr(), libc::O_WRONLY);
            libc::write(fd, b"4242".as_ptr().cast(), 4);
            libc::close(fd);
        });
        // Until the exec is done, /proc shows the fork, not sleep.
        let exe = format!("/proc/{child}/exe");
        let t = std::time::Instant::now();
        while std::fs::read_link(&exe).map_or(true, |p| !p.ends_with("sleep")) {
            assert!(t.elapsed().as_secs() < 5, "the child never exec'd");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        from_proc = proc_session(child);
        // SAFETY: our child.
        unsafe { libc::kill(child as i32, libc::SIGKILL) };
        reap(child);
    });
    // SAFETY: our fd.
    unsafe { libc::close(master) };
    let e = execs(&raw)
        .into_iter()
        .find(|e| e.pid == child)
        .expect("exec seen");
    assert_eq!(e.task.sid, child, "a session leader's sid is its pid");
    assert_eq!(e.task.loginuid, 4242);
    assert_ne!(e.task.tty, 0, "the pty is the controlling tty");
    // Falco's proc.tty from the probe is /proc's tty_nr, as libscap reads it.
    assert_eq!((e.task.loginuid, e.task.tty, e.task.sid), from_proc);
    let n: u32 = slave
        .to_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        e.task.tty,
        (n & 0xff) | (136 << 8) | ((n & !0xff) << 12),
        "pts major 136"
    );
}

/// The KR_SYSCALL records of one test, decoded and owned.
#[derive(Debug)]
struct Call {
    name: &'static str,
    pid: u32,
    ret: i64,
    flags: u16,
    args: [u64; 6],
    s0: Vec<u8>,
    s1: Vec<u8>,
}

fn calls(raw: &[Vec<u8>]) -> Vec<Call> {
    let names = kestrel::capture::syscalls::SYSCALLS;
    raw.iter()
        .filter_map(|r| match decode(r).unwrap() {
            Record::Syscall { hdr, args, s0, s1 } if u32::from(hdr.flags) & F::KF_COMPAT.0 == 0 => {
                let name = names
                    .iter()
                    .find(|s| s.nr.is_some_and(|n| n as i16 == hdr.nr))
                    .map_or("?", |s| s.name);
                Some(Call {
                    name,
                    pid: hdr.pid,
                    ret: hdr.ret,
                    flags: hdr.flags,
                    args,
                    s0: s0.to_vec(),
                    s1: s1.to_vec(),
                })
            }
            _ => None,
        })
        .collect()
}

const PATHS: &str = "unlink,unlinkat,rename,renameat,renameat2,symlink,symlinkat,\
                     mkdir,mkdirat,rmdir,ptrace,chdir,fchdir,memfd_create,setuid";

#[test]
#[ignore = "needs root: loads the probe (scripts/test.sh runs it with --include-ignored)"]
fn path_family_and_ptrace_records_carry_their_arguments() {
    for attach in [AttachMode::TpBtf, AttachMode::RawTp] {
        syscall_fields(attach);
    }
}

fn c(p: &str) -> CString {
    CString::new(p).unwrap()
}

fn syscall_fields(attach: AttachMode) {
    let _g = probe_lock();
    let dir = tmp("paths");
    std::fs::create_dir_all(&dir).unwrap();
    let (a, b, link, gone) = (
        format!("{dir}/a"),
        format!("{dir}/b"),
        format!("{dir}/link"),
        format!("{dir}/never-there"),
    );
    std::fs::write(&a, b"x").unwrap();
    let (ca, cb, clink, cgone) = (c(&a), c(&b), c(&link), c(&gone));
    let me = std::process::id();
    let mut traced = 0;
    let (raw, _) = capture(cfg(attach, PATHS), true, || {
        // SAFETY: plain libc calls on our own paths and child.
        unsafe {
            assert_eq!(libc::rename(ca.as_ptr(), cb.as_ptr()), 0);
            assert_eq!(libc::symlink(cb.as_ptr(), clink.as_ptr()), 0);
            assert_eq!(libc::unlink(clink.as_ptr()), 0);
            assert_eq!(libc::unlink(cgone.as_ptr()), -1, "a failed unlink");
            assert_eq!(libc::unlink(cb.as_ptr()), 0);
            assert!(libc::memfd_create(c"kestrel-named".as_ptr(), 0) >= 0);
            let pid = libc::fork();
            if pid == 0 {
                libc::pause();
                libc::_exit(0);
            }
            traced = pid as u32;
            assert_eq!(libc::ptrace(libc::PTRACE_ATTACH, pid, 0, 0), 0);
            reap_stopped(pid);
            assert_eq!(libc::ptrace(libc::PTRACE_DETACH, pid, 0, 0), 0);
            libc::kill(pid, libc::SIGKILL);
            reap(traced);
        }
    });
    let _ = std::fs::remove_dir_all(&dir);
    let all: Vec<Call> = calls(&raw).into_iter().filter(|c| c.pid == me).collect();
    let find = |names: &[&str], f: &dyn Fn(&Call) -> bool| {
        all.iter()
            .find(|c| names.contains(&c.name) && f(c))
            .unwrap_or_else(|| panic!("no {names:?} record among {all:?}"))
    };
    let r = find(&["rename", "renameat", "renameat2"], &|c| {
        c.s0 == a.as_bytes()
    });
    assert_eq!((r.ret, &r.s1[..]), (0, b.as_bytes()), "{r:?}");
    let s = find(&["symlink", "symlinkat"], &|c| c.s1 == link.as_bytes());
    assert_eq!(
        (s.ret, &s.s0[..]),
        (0, b.as_bytes()),
        "target, then linkpath: {s:?}"
    );
    find(&["unlink", "unlinkat"], &|c| {
        c.s0 == link.as_bytes() && c.ret == 0
    });
    let failed = find(&["unlink", "unlinkat"], &|c| c.s0 == gone.as_bytes());
    assert_eq!(
        failed.ret,
        -i64::from(libc::ENOENT),
        "a failed call still names its path"
    );
    assert_eq!(u32::from(failed.flags) & F::KF_PATH_FAULT.0, 0);
    let m = find(&["memfd_create"], &|c| c.ret >= 0);
    assert_eq!(m.s0, b"kestrel-named");
    let attach_req = u64::from(libc::PTRACE_ATTACH);
    let p = find(&["ptrace"], &|c| c.args[0] == attach_req);
    assert_eq!((p.args[1], p.ret), (u64::from(traced), 0), "{p:?}");
    assert!(p.s0.is_empty() && p.s1.is_empty());
    find(&["ptrace"], &|c| {
        c.args[0] == u64::from(libc::PTRACE_DETACH)
    });
}

fn reap_stopped(pid: i32) {
    let mut st = 0;
    // SAFETY: waiting for our traced child to stop.
    unsafe { libc::waitpid(pid, &mut st, 0) };
    assert!(libc::WIFSTOPPED(st));
}

#[test]
#[ignore = "needs root: loads the probe (scripts/test.sh runs it with --include-ignored)"]
fn chdir_and_fchdir_move_the_cwd_in_the_table() {
    let _g = probe_lock();
    let me = std::process::id();
    let (tmp_dir, missing) = (c("/tmp"), c("kestrel-no-such-dir"));
    let (sub, up) = (c("./kestrel-cwd/."), c(".."));
    std::fs::create_dir_all("/tmp/kestrel-cwd").unwrap();
    let mut kids = [0u32; 2];
    let (raw, _) = capture(cfg(AttachMode::Auto, "default,chdir,fchdir"), true, || {
        let pre = || unsafe {
            libc::chdir(tmp_dir.as_ptr());
            libc::chdir(missing.as_ptr());
            libc::chdir(sub.as_ptr());
            libc::chdir(up.as_ptr());
        };
        kids[0] = fork_run(pre);
        kids[1] = fork_run(|| unsafe {
            let fd = libc::open(tmp_dir.as_ptr(), libc::O_RDONLY | libc::O_DIRECTORY);
            libc::fchdir(fd);
        });
    });
    let chdirs: Vec<Call> = calls(&raw)
        .into_iter()
        .filter(|c| c.pid == kids[0])
        .collect();
    let paths: Vec<(&[u8], i64)> = chdirs.iter().map(|c| (&c.s0[..], c.ret)).collect();
    let enoent = -i64::from(libc::ENOENT);
    assert_eq!(
        paths,
        [
            (&b"/tmp"[..], 0),
            (&b"kestrel-no-such-dir"[..], enoent),
            (&b"./kestrel-cwd/."[..], 0),
            (&b".."[..], 0)
        ]
    );
    // This process seeds the table, as at start; the children copy its cwd.
    // Their exits would remove them: follow the cwd record by record.
    let root = procfs::ProcRoot::new("/proc").unwrap();
    let mut s = State::new(64, 64, 0, false);
    s.seed_thread(procfs::lookup(&root, me, me).unwrap());
    let ours = std::env::current_dir().unwrap();
    assert_eq!(&s.thread(me).unwrap().cwd[..], ours.as_os_str().as_bytes());
    let mut seen = Vec::new();
    for r in &raw {
        let rec = decode(r).unwrap();
        let pid = rec.hdr().pid;
        if exit(&rec) || !kids.contains(&pid) {
            continue;
        }
        s.apply(&rec);
        if let Record::Syscall { .. } = rec {
            seen.push(String::from_utf8(s.thread(pid).unwrap().cwd.to_vec()).unwrap());
        }
    }
    assert_eq!(
        seen,
        ["/tmp", "/tmp", "/tmp/kestrel-cwd", "/tmp", ""],
        "chdir resolves, a failed one keeps, fchdir forgets"
    );
    let _ = std::fs::remove_dir("/tmp/kestrel-cwd");
}

/// Forks a child that runs `f` (async-signal-safe calls only) and exits 0;
/// reaps it and returns its pid.
fn fork_run(f: impl Fn()) -> u32 {
    // SAFETY: the child runs `f` and _exit.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        f();
        unsafe { libc::_exit(0) };
    }
    reap(pid as u32);
    pid as u32
}
