//! Live tests of what the rules read of a process: real execs (argv,
//! exepath, cwd), memfd and overlayfs executables, a pty session with a
//! login uid, seen by the real probe on this kernel and applied to a State.
//! Root only (#[ignore]d otherwise; scripts/test.sh includes them).
//! tests/live_syscalls.rs has the KR_SYSCALL records.

use std::ffi::{CStr, CString};
use std::os::unix::ffi::OsStrExt;
use std::process::Command;

use kestrel::capture::btf::AttachMode;
use kestrel::capture::record::{decode, Record};
use kestrel::capture::skel::types::{kestrel_flags as F, kestrel_task};
use kestrel::state::{proc_scan, State, EXE_FROM_MEMFD, EXE_UPPER_LAYER};

mod common;
use common::{apply_where, capture, is_exit, probe_lock, reap, selecting, tmp};

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

fn real(p: &str) -> Vec<u8> {
    std::fs::canonicalize(p)
        .unwrap()
        .as_os_str()
        .as_bytes()
        .to_vec()
}

/// Session fields of a live process as /proc shows them (the probe must agree).
fn proc_session(pid: u32) -> (u32, u32, u32) {
    let root = proc_scan::ProcRoot::new("/proc").unwrap();
    let t = proc_scan::lookup(&root, pid, pid).expect("process alive");
    (t.loginuid, t.tty, t.sid)
}

#[test]
#[cfg_attr(not(kestrel_ci), ignore = "needs root: loads the probe")]
fn exec_records_carry_argv_exepath_and_cwd_on_tp_btf() {
    exec_fields(AttachMode::TpBtf);
}

#[test]
#[cfg_attr(not(kestrel_ci), ignore = "needs root: loads the probe")]
fn exec_records_carry_argv_exepath_and_cwd_on_raw_tp() {
    exec_fields(AttachMode::RawTp);
}

fn exec_fields(attach: AttachMode) {
    let _g = probe_lock();
    let mut child = 0;
    let (raw, _) = capture(selecting(attach, "default"), true, || {
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
    apply_where(&mut s, &raw, |r| r.hdr().pid == child && !is_exit(r));
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
        // SAFETY: in the forked child: raw syscalls on live C strings, then _exit.
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

#[test]
#[cfg_attr(not(kestrel_ci), ignore = "needs root: loads the probe")]
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
    let (raw, _) = capture(selecting(AttachMode::Auto, "default"), true, || {
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
    apply_where(&mut s, &raw, |r| pids.contains(&r.hdr().pid) && !is_exit(r));
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
#[cfg_attr(not(kestrel_ci), ignore = "needs root: loads the probe")]
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
    let (raw, _) = capture(selecting(AttachMode::Auto, "default"), true, || {
        let sleep = c"/bin/sleep";
        // SAFETY: setsid and open of a live C string, in the forked child.
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
