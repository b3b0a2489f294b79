//! Builders of well-formed records, for tests and the replay benchmark.

use std::net::{IpAddr, SocketAddr};

use super::*;
use crate::capture::COMM_LEN;

pub fn hdr(t: T, tid: u32, pid: u32, nr: i16, ret: i64, len: usize) -> kestrel_hdr {
    kestrel_hdr {
        jiffies: 0,
        tid,
        pid,
        r#type: t.0 as u16,
        len: len as u16,
        nr,
        flags: 0,
        ret,
    }
}

fn bytes<R: Copy>(r: &R) -> Vec<u8> {
    // SAFETY: R is a repr(C) record type made only of integers.
    unsafe { core::slice::from_raw_parts((r as *const R).cast::<u8>(), size_of::<R>()) }.to_vec()
}

fn comm(name: &str) -> [i8; COMM_LEN] {
    let mut c = [0i8; COMM_LEN];
    for (d, s) in c.iter_mut().zip(name.bytes().take(15)) {
        *d = s as i8;
    }
    c
}

pub fn task(ppid: u32, name: &str) -> kestrel_task {
    kestrel_task {
        ppid,
        comm: comm(name),
        loginuid: u32::MAX,
        ..Default::default()
    }
}

/// Parent (`child_side` false, `ret` = child tid) or child side of a clone.
pub fn clone(tid: u32, pid: u32, ret: i64, child_side: bool, thread: bool) -> Vec<u8> {
    let t = if child_side {
        T::KR_CLONE_CHILD
    } else {
        T::KR_CLONE
    };
    let mut h = hdr(t, tid, pid, 56, ret, size_of::<kestrel_clone>());
    if thread {
        h.flags |= F::KF_CLONE_THREAD.0 as u16;
    }
    bytes(&kestrel_clone {
        hdr: h,
        task: task(1, "synth"),
    })
}

/// The fixed part of `rec`, then `strings` back to back; hdr.len set.
fn with_strings<R: Copy>(rec: &R, fixed: usize, strings: &[&[u8]]) -> Vec<u8> {
    let mut v = bytes(rec);
    v.truncate(fixed);
    for s in strings {
        v.extend_from_slice(s);
    }
    let len = v.len() as u16;
    v[offset_of!(kestrel_hdr, len)..][..2].copy_from_slice(&len.to_ne_bytes());
    v
}

fn with_path<R: Copy>(rec: &R, fixed: usize, path: &str) -> Vec<u8> {
    with_strings(rec, fixed, &[&nul(path)])
}

fn nul(s: &str) -> Vec<u8> {
    let mut v = s.as_bytes().to_vec();
    v.push(0);
    v
}

/// What an exec record carries beyond its ids.
#[derive(Clone, Debug, Default)]
pub struct Image<'a> {
    pub path: &'a str,
    pub argv: &'a [&'a str],
    pub exepath: &'a str,
    pub cwd: &'a str,
    /// kestrel_flags bits for hdr.flags.
    pub flags: u32,
}

/// A successful exec of `path` run as itself (argv[0] = path, exepath =
/// path, cwd /).
pub fn exec(tid: u32, pid: u32, old_tid: u32, path: &str) -> Vec<u8> {
    exec_image(
        tid,
        pid,
        old_tid,
        &Image {
            path,
            argv: &[path],
            exepath: path,
            cwd: "/",
            flags: 0,
        },
    )
}

pub fn exec_image(tid: u32, pid: u32, old_tid: u32, img: &Image<'_>) -> Vec<u8> {
    let mut args = Vec::new();
    for a in img.argv {
        args.extend_from_slice(&nul(a));
    }
    let (path, exepath, cwd) = (nul(img.path), nul(img.exepath), nul(img.cwd));
    let mut h = hdr(T::KR_EXECVE, tid, pid, -1, 0, 0);
    h.flags = img.flags as u16;
    let mut r = kestrel_exec {
        hdr: h,
        task: task(1, img.path.rsplit('/').next().unwrap_or(img.path)),
        path_len: path.len() as u16,
        args_len: args.len() as u16,
        exepath_len: exepath.len() as u16,
        cwd_len: cwd.len() as u16,
        ..Default::default()
    };
    r.task.old_tid = old_tid;
    with_strings(
        &r,
        offset_of!(kestrel_exec, data),
        &[&path, &args, &exepath, &cwd],
    )
}

/// A failed execve: sys_exit's generic record typed KR_EXECVE.
pub fn exec_failed(tid: u32, pid: u32, nr: i16, ret: i64) -> Vec<u8> {
    bytes(&kestrel_generic {
        hdr: hdr(
            T::KR_EXECVE,
            tid,
            pid,
            nr,
            ret,
            size_of::<kestrel_generic>(),
        ),
    })
}

/// A KR_SYSCALL record; `None` strings are not read (length 0).
pub fn syscall(
    tid: u32,
    pid: u32,
    nr: i16,
    ret: i64,
    args: [u64; 6],
    s0: Option<&str>,
    s1: Option<&str>,
) -> Vec<u8> {
    let (s0, s1) = (
        s0.map(nul).unwrap_or_default(),
        s1.map(nul).unwrap_or_default(),
    );
    let r = kestrel_syscall {
        hdr: hdr(T::KR_SYSCALL, tid, pid, nr, ret, 0),
        args,
        s0_len: s0.len() as u16,
        s1_len: s1.len() as u16,
        ..Default::default()
    };
    with_strings(&r, offset_of!(kestrel_syscall, data), &[&s0, &s1])
}

pub fn open(tid: u32, pid: u32, ret: i64, flags: u32, path: &str) -> Vec<u8> {
    open_mode(tid, pid, ret, flags, 0, path)
}

pub fn open_mode(tid: u32, pid: u32, ret: i64, flags: u32, mode: u32, path: &str) -> Vec<u8> {
    let mut h = hdr(T::KR_OPEN, tid, pid, 257, ret, 0);
    if flags & 0o2000000 != 0 {
        h.flags |= F::KF_CLOEXEC.0 as u16;
    }
    let r = kestrel_open {
        hdr: h,
        flags,
        mode,
        path_len: (path.len() + 1) as u16,
        ..Default::default()
    };
    with_path(&r, offset_of!(kestrel_open, path), path)
}

/// An open as split() hands it on when its successful close rode on it
/// as a tail (KF_CLOSE_FOLLOWS): the close record must come next.
pub fn with_close_tail(mut open: Vec<u8>) -> Vec<u8> {
    let at = offset_of!(kestrel_hdr, flags);
    let flags = u16::from_ne_bytes([open[at], open[at + 1]]) | F::KF_CLOSE_FOLLOWS.0 as u16;
    open[at..at + 2].copy_from_slice(&flags.to_ne_bytes());
    open
}

pub fn fd(t: T, tid: u32, pid: u32, fd: i64, ret: i64, cloexec: bool) -> Vec<u8> {
    let mut h = hdr(t, tid, pid, 3, ret, size_of::<kestrel_fd>());
    if cloexec {
        h.flags |= F::KF_CLOEXEC.0 as u16;
    }
    bytes(&kestrel_fd {
        hdr: h,
        fd,
        ..Default::default()
    })
}

pub fn socket(tid: u32, pid: u32, ret: i64) -> Vec<u8> {
    bytes(&kestrel_socket {
        hdr: hdr(T::KR_SOCKET, tid, pid, 41, ret, size_of::<kestrel_socket>()),
        domain: 2,
        r#type: 1,
        ..Default::default()
    })
}

/// A connect (`fd`) or accept (`ret` the new fd) to or from 127.0.0.1:80;
/// a successful one carries the local end 127.0.0.1:40000, as the probe's.
pub fn sockaddr(t: T, tid: u32, pid: u32, fd: i64, ret: i64) -> Vec<u8> {
    let ok = ret >= 0 || (t == T::KR_CONNECT && ret == -115);
    let local = ok.then(|| ([127, 0, 0, 1], 40000).into());
    sockaddr_ends(t, tid, pid, fd, ret, ([127, 0, 0, 1], 80).into(), local)
}

/// (family, port, address) as a record holds them.
pub fn end(a: SocketAddr) -> (u16, u16, [u8; 16]) {
    let mut addr = [0; 16];
    let family = match a.ip() {
        IpAddr::V4(ip) => {
            addr[..4].copy_from_slice(&ip.octets());
            2
        }
        IpAddr::V6(ip) => {
            addr = ip.octets();
            10
        }
    };
    (family, a.port(), addr)
}

/// A connect or accept record with the given peer and local end (None:
/// unknown, as after a failed call).
pub fn sockaddr_ends(
    t: T,
    tid: u32,
    pid: u32,
    fd: i64,
    ret: i64,
    peer: SocketAddr,
    local: Option<SocketAddr>,
) -> Vec<u8> {
    let (family, port, addr) = end(peer);
    let (lfamily, lport, laddr) = local.map_or((0, 0, [0; 16]), end);
    bytes(&kestrel_sockaddr {
        hdr: hdr(t, tid, pid, 42, ret, size_of::<kestrel_sockaddr>()),
        fd,
        family,
        port,
        addr,
        lfamily,
        lport,
        laddr,
        ..Default::default()
    })
}

pub fn exit(tid: u32, pid: u32, group_dead: bool) -> Vec<u8> {
    let mut h = hdr(T::KR_PROC_EXIT, tid, pid, -1, 0, size_of::<kestrel_exit>());
    if group_dead {
        h.flags |= F::KF_GROUP_DEAD.0 as u16;
    }
    bytes(&kestrel_exit { hdr: h })
}

pub fn enter(tid: u32, pid: u32, nr: i16) -> Vec<u8> {
    bytes(&kestrel_generic {
        hdr: hdr(T::KR_ENTER, tid, pid, nr, 0, size_of::<kestrel_generic>()),
    })
}
