//! Applying one decoded record to the tables: which lookups each record
//! makes and how each counter moves, after libsinsp's parsers.cpp (reset()
//! for the thread lookup of every event, the parse_* functions for the rest).
//! The per-event path: no allocation, no formatting, /proc only through the
//! bounded fallback in `State::get_thread`.

use super::{bounded, resolve, set_bytes, Fd, FdKind, State, Thread};
use super::{EXE_FROM_MEMFD, EXE_UPPER_LAYER, PROC_PATH_MAX};
use crate::capture::record::{Record, SockAddr};
use crate::capture::skel::types::{kestrel_flags as F, kestrel_hdr, kestrel_task};
use crate::capture::{Comm, COMM_LEN};

/// What a successful exec record says about the new image.
struct Image<'a> {
    path: &'a [u8],
    args: &'a [u8],
    exepath: &'a [u8],
    cwd: &'a [u8],
    flags: u32,
}

/// A string the probe flagged as incomplete is kept as unknown (empty).
fn unless(flags: u32, f: F, s: &[u8]) -> &[u8] {
    if flags & f.0 != 0 {
        &[]
    } else {
        s
    }
}

fn comm_bytes(c: &[i8; COMM_LEN]) -> Comm {
    c.map(|b| b as u8)
}

impl State {
    pub(super) fn thread_from_task(tid: u32, pid: u32, task: &kestrel_task) -> Thread {
        Thread {
            tid,
            pid,
            ppid: task.ppid,
            uid: task.uid,
            gid: task.gid,
            start_ns: task.start_ns,
            comm: comm_bytes(&task.comm),
            loginuid: task.loginuid,
            tty: task.tty,
            sid: task.sid,
            ..Thread::default()
        }
    }

    /// The child side of a clone: the one record that adds the child. A
    /// thread takes the image and cwd from its group leader; a new process
    /// takes them and a copy of the fd table from its parent
    /// (parse_clone_exit_child).
    fn clone_child(&mut self, tid: u32, pid: u32, task: &kestrel_task, thread: bool) {
        // Only this record adds a new tid, so an entry already there is a
        // dead thread whose exit was lost: parse_clone_exit_child removes it.
        if self.threads.get(u64::from(tid)).is_some() {
            self.remove_thread(tid);
        }
        if !thread {
            self.release_fds(pid, false);
        }
        let mut t = Self::thread_from_task(tid, pid, task);
        let from = if thread { pid } else { task.ppid };
        if let Some(p) = self.threads.get(u64::from(from)) {
            t.inherit(p);
        }
        if self.add_thread(t) && !thread {
            self.inherit_fds(task.ppid, pid);
        }
    }

    /// Applies one record. Never allocates.
    pub fn apply(&mut self, rec: &Record<'_>) {
        let hdr = *rec.hdr();
        let (tid, pid) = (hdr.tid, hdr.pid);
        // Only the record right after an open can be its close tail.
        let closed_fd = self.closed_fd.take();
        // A child's first record has no enter on the child to pair with:
        // libsinsp never retrieves an enter for the child's clone exit.
        let child = matches!(
            rec,
            Record::Clone {
                child_side: true,
                ..
            }
        );
        if self.pairing && hdr.nr >= 0 && !child && !matches!(rec, Record::Enter { .. }) {
            self.retrieve_enter(tid, hdr.nr);
        }
        match *rec {
            Record::Enter { .. } => self.store_enter(tid, pid, hdr.nr),
            Record::Clone {
                task, child_side, ..
            } => {
                if child_side {
                    self.clone_child(tid, pid, &task, rec.has_flag(F::KF_CLONE_THREAD));
                    return;
                }
                // The parent's return can reach the ring after the child has
                // already run and exited on another CPU, so only the child's
                // own record adds it. Clone exits never query /proc and a
                // miss is not a failure (parsers.cpp reset()).
                self.find_thread(tid, false);
            }
            Record::Exec { task: None, .. } => {
                self.get_thread(tid, pid);
            }
            Record::Exec {
                task: Some(task),
                path,
                args,
                exepath,
                cwd,
                ..
            } => {
                let img = Image {
                    path,
                    args,
                    exepath,
                    cwd,
                    flags: u32::from(hdr.flags),
                };
                self.exec(tid, pid, &task, &img);
            }
            Record::ProcExit { .. } => {
                // reset() looks the thread up without /proc (it is dead); a
                // miss is its one failed lookup: parse_thread_exit returns
                // without setting m_tid_to_remove, so remove_thread never runs
                // (parsers.cpp, libs 0.14.2). Its fd table still goes.
                if self.find_thread(tid, true).is_some() {
                    self.remove_thread(tid);
                }
                if rec.has_flag(F::KF_GROUP_DEAD) {
                    self.release_fds(pid, false);
                }
            }
            Record::Open { path, .. } => {
                self.new_fd(rec, FdKind::File, path, SockAddr::default(), 0);
            }
            Record::Close { fd, .. } => {
                self.get_thread(tid, pid);
                // A failed close removed nothing, and libsinsp takes its
                // failed lookup back (parse_close_exit).
                if hdr.ret == 0 {
                    self.remove_fd(pid, fd, closed_fd);
                }
            }
            Record::Dup { old_fd, .. } => {
                self.get_thread(tid, pid);
                if hdr.ret >= 0 {
                    self.dup(pid, old_fd, hdr.ret, rec.has_flag(F::KF_CLOEXEC));
                }
            }
            Record::Socket {
                domain, sock_type, ..
            } => {
                let sock = SockAddr {
                    family: domain as u16,
                    ..SockAddr::default()
                };
                // The low bits are the type; SOCK_NONBLOCK/CLOEXEC sit above.
                self.new_fd(rec, FdKind::Socket, &[], sock, (sock_type & 0xf) as u8);
            }
            Record::Connect { addr, .. } => {
                self.get_thread(tid, pid);
                // A failed connect leaves the fd as it was (parse_connect_exit).
                let ok = hdr.ret == 0 || hdr.ret == -115;
                if self.lookup_fd(pid, addr.fd) && ok {
                    if let Some(f) = self.fds.get_mut(super::fd_key(pid, addr.fd)) {
                        f.sock = addr;
                    }
                }
            }
            Record::Accept { addr, .. } => {
                // Only connection-oriented sockets accept: TCP's SOCK_STREAM.
                self.new_fd(rec, FdKind::Socket, &[], addr, 1);
            }
            Record::Generic { .. } => {
                self.get_thread(tid, pid);
            }
            Record::Syscall { s0, .. } => self.syscall(&hdr, s0),
        }
    }

    /// The thread lookup; a successful chdir or fchdir moves the cwd of the
    /// caller and of its leader (libsinsp keeps the cwd on the main thread;
    /// other threads of the process are not visited, to stay O(1)).
    fn syscall(&mut self, hdr: &kestrel_hdr, path: &[u8]) {
        let (tid, pid) = (hdr.tid, hdr.pid);
        let compat = u32::from(hdr.flags) & F::KF_COMPAT.0 != 0;
        let pick = |nrs: (i16, i16)| if compat { nrs.1 } else { nrs.0 };
        let chdir = hdr.nr == pick(self.chdir_nr);
        let fchdir = hdr.nr == pick(self.fchdir_nr);
        if self.get_thread(tid, pid).is_none() || hdr.ret != 0 || !(chdir || fchdir) {
            return;
        }
        if self.from_proc {
            // Read from /proc after the call: already the new cwd.
            return;
        }
        let unreadable = u32::from(hdr.flags) & (F::KF_PATH_FAULT.0 | F::KF_PATH_TRUNC.0) != 0;
        // Where an fd points is not kept whole: fchdir leaves it unknown.
        let cwd = match self.threads.get(u64::from(tid)) {
            Some(t) if chdir && !unreadable => resolve::<PROC_PATH_MAX>(&t.cwd, path),
            _ => None,
        };
        let cwd = cwd.as_deref().unwrap_or_default();
        for id in [tid, pid] {
            if let Some(t) = self.threads.get_mut(u64::from(id)) {
                set_bytes(&mut t.cwd, cwd);
            }
        }
    }

    /// store_event: no thread to save the enter on is a store drop.
    fn store_enter(&mut self, tid: u32, pid: u32, nr: i16) {
        match self.get_thread(tid, pid) {
            Some(t) => {
                t.pending_enter = nr;
                self.counters.n_stored_evts += 1;
            }
            None => self.counters.n_store_evts_drops += 1,
        }
    }

    /// A successful execve: the thread takes the new image (added if it was
    /// unknown), a de-threading exec drops the old leader's tid, and the
    /// close-on-exec fds go.
    fn exec(&mut self, tid: u32, pid: u32, task: &kestrel_task, img: &Image<'_>) {
        // The success record comes from sched_process_exec (nr -1): it is
        // the exit the saved execve enter pairs with.
        if self.pairing {
            self.retrieve_enter(tid, -1);
        }
        if task.old_tid != 0 && task.old_tid != tid {
            self.remove_thread(task.old_tid);
        }
        let added = match self.get_thread(tid, pid) {
            Some(t) => {
                t.comm = comm_bytes(&task.comm);
                t.ppid = task.ppid;
                t.uid = task.uid;
                t.gid = task.gid;
                t.loginuid = task.loginuid;
                t.tty = task.tty;
                t.sid = task.sid;
                set_image(t, img);
                true
            }
            None => false,
        };
        if !added {
            let mut t = Self::thread_from_task(tid, pid, task);
            set_image(&mut t, img);
            self.add_thread(t);
        }
        self.release_fds(pid, true);
    }

    /// dup/dup2/dup3 that succeeded: the new fd copies the old one's entry.
    fn dup(&mut self, pid: u32, old_fd: i64, new_fd: i64, cloexec: bool) {
        let src = if self.lookup_fd(pid, old_fd) {
            self.fds.get(super::fd_key(pid, old_fd)).cloned()
        } else {
            None
        };
        if let Some(mut entry) = src {
            entry.cloexec = cloexec;
            self.add_fd(pid, new_fd, entry);
        }
    }

    /// Open, socket and accept: the thread lookup, then on success a new fd
    /// that inherits nothing (only files keep a path).
    // Inlined: out of line it cost replay 3 % (the open path is the hot one).
    #[inline(always)]
    fn new_fd(
        &mut self,
        rec: &Record<'_>,
        kind: FdKind,
        path: &[u8],
        sock: SockAddr,
        sock_type: u8,
    ) {
        let hdr = rec.hdr();
        self.get_thread(hdr.tid, hdr.pid);
        if hdr.ret >= 0
            && !(rec.has_flag(F::KF_CLOSE_FOLLOWS) && self.add_closed_fd(hdr.pid, hdr.ret))
        {
            let entry = Fd {
                kind,
                cloexec: rec.has_flag(F::KF_CLOEXEC),
                path: bounded(path),
                sock,
                server: matches!(rec, Record::Accept { .. }),
                sock_type,
            };
            self.add_fd(hdr.pid, hdr.ret, entry);
        }
    }

    /// retrieve_enter_event: a saved enter of another syscall, or none, is a
    /// retrieve drop; without a thread libsinsp returns before counting.
    /// `nr` -1 accepts any saved enter (exec success, see above).
    fn retrieve_enter(&mut self, tid: u32, nr: i16) {
        if let Some(t) = self.threads.get_mut(u64::from(tid)) {
            let ok = t.pending_enter >= 0 && (nr < 0 || t.pending_enter == nr);
            t.pending_enter = -1;
            if ok {
                self.counters.n_retrieved_evts += 1;
            } else {
                self.counters.n_retrieve_evts_drops += 1;
            }
        }
    }
}

fn set_image(t: &mut Thread, img: &Image<'_>) {
    let f = img.flags;
    set_bytes(&mut t.exe, img.path);
    set_bytes(&mut t.args, img.args);
    t.args_trunc = f & F::KF_ARGS_TRUNC.0 != 0;
    set_bytes(&mut t.exepath, unless(f, F::KF_EXEPATH_TRUNC, img.exepath));
    set_bytes(&mut t.cwd, unless(f, F::KF_CWD_TRUNC, img.cwd));
    t.exe_flags = 0;
    if f & F::KF_EXE_MEMFD.0 != 0 {
        t.exe_flags |= EXE_FROM_MEMFD;
    }
    if f & F::KF_EXE_UPPER_LAYER.0 != 0 {
        t.exe_flags |= EXE_UPPER_LAYER;
    }
}
