//! Builders of well-formed records, for tests and the replay benchmark.

use super::*;

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

fn comm(name: &str) -> [i8; 16] {
    let mut c = [0i8; 16];
    for (d, s) in c.iter_mut().zip(name.bytes().take(15)) {
        *d = s as i8;
    }
    c
}

pub fn task(ppid: u32, name: &str) -> kestrel_task {
    kestrel_task {
        ppid,
        comm: comm(name),
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

fn with_path<R: Copy>(rec: &R, fixed: usize, path: &str) -> Vec<u8> {
    let mut v = bytes(rec);
    v.truncate(fixed);
    v.extend_from_slice(path.as_bytes());
    v.push(0);
    let len = v.len() as u16;
    v[offset_of!(kestrel_hdr, len)..][..2].copy_from_slice(&len.to_ne_bytes());
    v
}

pub fn exec(tid: u32, pid: u32, old_tid: u32, path: &str) -> Vec<u8> {
    let mut r = kestrel_exec {
        hdr: hdr(T::KR_EXECVE, tid, pid, -1, 0, 0),
        task: task(1, path.rsplit('/').next().unwrap_or(path)),
        path_len: (path.len() + 1) as u16,
        ..Default::default()
    };
    r.task.old_tid = old_tid;
    with_path(&r, offset_of!(kestrel_exec, path), path)
}

pub fn open(tid: u32, pid: u32, ret: i64, flags: u32, path: &str) -> Vec<u8> {
    let mut h = hdr(T::KR_OPEN, tid, pid, 257, ret, 0);
    if flags & 0o2000000 != 0 {
        h.flags |= F::KF_CLOEXEC.0 as u16;
    }
    let r = kestrel_open {
        hdr: h,
        flags,
        path_len: (path.len() + 1) as u16,
        ..Default::default()
    };
    with_path(&r, offset_of!(kestrel_open, path), path)
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

pub fn sockaddr(t: T, tid: u32, pid: u32, fd: i64, ret: i64) -> Vec<u8> {
    bytes(&kestrel_sockaddr {
        hdr: hdr(t, tid, pid, 42, ret, size_of::<kestrel_sockaddr>()),
        fd,
        family: 2,
        port: 80,
        addr: [127, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
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
