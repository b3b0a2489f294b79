//! Live tests of the KR_SYSCALL records (tests/live_fields.rs has the
//! exec side): the path family with its strings, ptrace with its raw
//! arguments, chdir and fchdir moving the cwd in the table; both attach
//! paths. Root only (#[ignore]d otherwise; scripts/test.sh includes them).

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;

use kestrel::capture::btf::AttachMode;
use kestrel::capture::record::{decode, Record};
use kestrel::capture::skel::types::kestrel_flags as F;
use kestrel::state::{proc_scan, State};

mod common;
use common::{capture, is_exit, probe_lock, reap, selecting, tmp};

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
#[cfg_attr(not(kestrel_ci), ignore = "needs root: loads the probe")]
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
    let (raw, _) = capture(selecting(attach, PATHS), true, || {
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
#[cfg_attr(not(kestrel_ci), ignore = "needs root: loads the probe")]
fn chdir_and_fchdir_move_the_cwd_in_the_table() {
    let _g = probe_lock();
    let me = std::process::id();
    let (tmp_dir, missing) = (c("/tmp"), c("kestrel-no-such-dir"));
    let (sub, up) = (c("./kestrel-cwd/."), c(".."));
    std::fs::create_dir_all("/tmp/kestrel-cwd").unwrap();
    let mut kids = [0u32; 2];
    let (raw, _) = capture(
        selecting(AttachMode::Auto, "default,chdir,fchdir"),
        true,
        || {
            // SAFETY: chdir of live C strings, in the forked child.
            let pre = || unsafe {
                libc::chdir(tmp_dir.as_ptr());
                libc::chdir(missing.as_ptr());
                libc::chdir(sub.as_ptr());
                libc::chdir(up.as_ptr());
            };
            kids[0] = fork_run(pre);
            // SAFETY: open of a live C string and fchdir, in the forked child.
            kids[1] = fork_run(|| unsafe {
                let fd = libc::open(tmp_dir.as_ptr(), libc::O_RDONLY | libc::O_DIRECTORY);
                libc::fchdir(fd);
            });
        },
    );
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
    let root = proc_scan::ProcRoot::new("/proc").unwrap();
    let mut s = State::new(64, 64, 0, false);
    s.seed_thread(proc_scan::lookup(&root, me, me).unwrap());
    let ours = std::env::current_dir().unwrap();
    assert_eq!(&s.thread(me).unwrap().cwd[..], ours.as_os_str().as_bytes());
    let mut seen = Vec::new();
    for r in &raw {
        let rec = decode(r).unwrap();
        let pid = rec.hdr().pid;
        if is_exit(&rec) || !kids.contains(&pid) {
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
        // SAFETY: the forked child ends here.
        unsafe { libc::_exit(0) };
    }
    reap(pid as u32);
    pid as u32
}
