//! Field values for one event: the decoded record, the thread and fd
//! tables (after the record was applied, as libsinsp filters after its
//! parsers run) and the user database. Meanings follow libs
//! sinsp_filtercheck_{event,thread,fd,user,group}.cpp `extract_single`;
//! where Kestrel lacks a value the field is missing, never invented.

use std::cell::{Cell, OnceCell};

use super::eval::Source;
use super::events::name_of;
use super::fields::Field;
use super::names;

use super::users::Users;
use super::value::{Buf, V};
use crate::capture::record::Record;
use crate::capture::skel::types::kestrel_hdr;
use crate::state::{State, Thread};

/// What the host answers for container fields (the container plugin's
/// values outside containers).
#[derive(Clone, Copy, Debug, Default)]
pub struct HostFacts {
    /// Start of the host's pid 1, ns since the epoch (container.start_ts).
    pub init_start_ns: i64,
}

pub struct EventView<'a> {
    pub rec: &'a Record<'a>,
    /// `rec.hdr()`, taken once.
    pub hdr: &'a kestrel_hdr,
    pub state: &'a State,
    pub users: &'a Users,
    pub host: &'a HostFacts,
    pub code: u16,
    /// evt.num: records seen, from 1.
    pub num: u64,
    /// Clocks and the thread, read once and only when a field needs them.
    pub lazy: Lazy<'a>,
}

/// What an event's fields may need more than once, read on first use.
#[derive(Default)]
pub struct Lazy<'a> {
    time_ns: Cell<u64>,
    mono_ns: Cell<u64>,
    thread: Cell<Option<Option<&'a Thread>>>,
    parent: Cell<Option<Option<&'a Thread>>>,
    /// The fd the event is about, with its socket's ends (extract_fd).
    pub(super) subject: OnceCell<Option<super::extract_fd::Subject<'a>>>,
    /// An open's path: its last slash when it needs no normalising.
    pub(super) open_scan: Cell<Option<Option<usize>>>,
}

fn comm(c: &crate::capture::abi::Comm) -> &[u8] {
    let n = c.iter().position(|&b| b == 0).unwrap_or(c.len());
    &c[..n]
}

fn nonempty(s: &[u8]) -> V<'_> {
    if s.is_empty() {
        V::Missing
    } else {
        V::Str(s)
    }
}

/// argv[i] of a NUL-separated argument block.
fn argv(args: &[u8], i: usize) -> Option<&[u8]> {
    let a = args.strip_suffix(&[0]).unwrap_or(args);
    if a.is_empty() {
        return None;
    }
    a.split(|&b| b == 0).nth(i)
}

fn push(buf: &mut Buf, s: &[u8]) {
    let room = buf.capacity() - buf.len();
    let _ = buf.extend_from_slice(&s[..s.len().min(room)]);
}

/// argv[1..] joined by spaces (proc.args), after `lead` when given
/// (proc.cmdline: the comm, then the args).
fn joined<'b>(t: &Thread, lead: Option<&[u8]>, buf: &'b mut Buf) -> V<'b> {
    buf.clear();
    if let Some(l) = lead {
        push(buf, l);
    }
    let mut i = 1;
    while let Some(a) = argv(&t.args, i) {
        if !buf.is_empty() {
            push(buf, b" ");
        }
        push(buf, a);
        i += 1;
    }
    V::Str(&buf[..])
}

impl<'a> EventView<'a> {
    pub(super) fn thread(&self) -> Option<&'a Thread> {
        if let Some(t) = self.lazy.thread.get() {
            return t;
        }
        let t = self.state.thread(self.hdr.tid);
        self.lazy.thread.set(Some(t));
        t
    }

    fn parent(&self) -> Option<&'a Thread> {
        if let Some(p) = self.lazy.parent.get() {
            return p;
        }
        let p = self
            .thread()
            .filter(|t| t.ppid != 0 && t.ppid != t.pid)
            .and_then(|t| self.state.thread(t.ppid));
        self.lazy.parent.set(Some(p));
        p
    }

    /// Wall clock at the first use in this event, ns since the epoch.
    pub fn time_ns(&self) -> u64 {
        if self.lazy.time_ns.get() == 0 {
            self.lazy.time_ns.set(crate::base::time::realtime_ns());
        }
        self.lazy.time_ns.get()
    }

    fn mono_ns(&self) -> u64 {
        if self.lazy.mono_ns.get() == 0 {
            self.lazy.mono_ns.set(crate::base::time::monotonic_ns());
        }
        self.lazy.mono_ns.get()
    }

    /// The process `n` generations up (0: the event's own thread).
    fn ancestor(&self, n: u32) -> Option<&'a Thread> {
        if n == 1 {
            return self.parent();
        }
        let mut t = self.thread()?;
        for _ in 0..n {
            if t.ppid == 0 || t.ppid == t.pid {
                return None;
            }
            t = self.state.thread(t.ppid)?;
        }
        Some(t)
    }

    fn proc_value<'b>(&'b self, f: Field, arg: Option<u32>, buf: &'b mut Buf) -> V<'b> {
        let Some(t) = self.thread() else {
            return V::Missing;
        };
        let parent = || self.ancestor(1);
        match f {
            Field::ProcName => V::Str(comm(&t.comm)),
            Field::ProcExe => exe(t),
            Field::ProcExepath => nonempty(&t.exepath),
            Field::ProcArgs => match arg {
                Some(i) => argv(&t.args, i as usize + 1).map_or(V::Missing, V::Str),
                None => joined(t, None, buf),
            },
            Field::ProcCmdline => joined(t, Some(comm(&t.comm)), buf),
            Field::ProcPid => V::Int(i64::from(t.pid)),
            Field::ProcPpid => V::Int(i64::from(t.ppid)),
            Field::ProcSid => V::Int(i64::from(t.sid)),
            Field::ProcPname => parent().map_or(V::Missing, |p| V::Str(comm(&p.comm))),
            Field::ProcPexe => parent().map_or(V::Missing, exe),
            Field::ProcPexepath => parent().map_or(V::Missing, |p| nonempty(&p.exepath)),
            Field::ProcPcmdline => match parent() {
                Some(p) => joined(p, Some(comm(&p.comm)), buf),
                None => V::Missing,
            },
            Field::ProcAname => match arg {
                Some(n) => self
                    .ancestor(n)
                    .map_or(V::Missing, |p| V::Str(comm(&p.comm))),
                // Output form: every ancestor's name, parent first.
                None => {
                    buf.clear();
                    for n in 1..=super::eval::MAX_ANCESTORS {
                        let Some(p) = self.ancestor(n) else { break };
                        if !buf.is_empty() {
                            push(buf, b" ");
                        }
                        push(buf, comm(&p.comm));
                    }
                    V::Str(&buf[..])
                }
            },
            Field::ProcAexepath => self
                .ancestor(arg.unwrap_or(0))
                .map_or(V::Missing, |p| nonempty(&p.exepath)),
            Field::ProcTty => V::Int(i64::from(t.tty)),
            Field::ProcCwd => {
                if t.cwd.is_empty() {
                    return V::Missing;
                }
                buf.clear();
                push(buf, &t.cwd);
                if !buf.ends_with(b"/") {
                    push(buf, b"/");
                }
                V::Str(&buf[..])
            }
            Field::ProcSname => match self.state.thread(t.sid) {
                Some(s) if t.sid != 0 => V::Str(comm(&s.comm)),
                _ => V::Missing,
            },
            Field::ProcDuration if t.start_ns > 0 => {
                V::Int(self.mono_ns().saturating_sub(t.start_ns) as i64)
            }
            Field::ProcIsExeFromMemfd => V::Bool(t.exe_flags & crate::state::EXE_FROM_MEMFD != 0),
            Field::UserUid => V::Int(i64::from(t.uid)),
            Field::UserName => V::Str(self.users.user(t.uid).as_bytes()),
            Field::UserLoginuid => V::Int(loginuid(t.loginuid)),
            Field::UserLoginname if t.loginuid != u32::MAX => {
                V::Str(self.users.user(t.loginuid).as_bytes())
            }
            Field::GroupGid => V::Int(i64::from(t.gid)),
            Field::GroupName => V::Str(self.users.group(t.gid).as_bytes()),
            _ => V::Missing,
        }
    }
}

fn loginuid(l: u32) -> i64 {
    if l == u32::MAX {
        -1
    } else {
        i64::from(l)
    }
}

/// proc.exe: argv[0] as passed (libsinsp m_exe), else the exec filename.
fn exe(t: &Thread) -> V<'_> {
    match argv(&t.args, 0) {
        Some(a) => V::Str(a),
        None => nonempty(&t.exe),
    }
}

impl Source for EventView<'_> {
    fn code(&self) -> Option<u16> {
        Some(self.code)
    }

    #[inline]
    fn plain_str(&self, f: Field) -> Option<&[u8]> {
        match f {
            Field::FdName | Field::FdDirectory | Field::FdFilename => self.open_path_part(f),
            Field::ProcName => self.thread().map(|t| comm(&t.comm)),
            Field::FdTypechar => self.open_typechar(),
            // As proc_value: an empty value is missing, which `value` says.
            Field::ProcExe => self.thread().and_then(|t| exe(t).str()),
            Field::ProcExepath => self.thread().and_then(|t| nonempty(&t.exepath).str()),
            Field::ProcPname => self.parent().map(|p| comm(&p.comm)),
            Field::ProcPexe => self.parent().and_then(|p| exe(p).str()),
            Field::ProcPexepath => self.parent().and_then(|p| nonempty(&p.exepath).str()),
            _ => None,
        }
    }

    #[inline]
    fn plain_num(&self, f: Field) -> Option<Option<i64>> {
        use Field::*;
        let open = match self.rec {
            Record::Open { flags, .. } => Some(*flags),
            _ => None,
        };
        match f {
            EvtNum => Some(Some(self.num as i64)),
            EvtRawres => Some(self.ret()),
            ThreadTid => Some(Some(i64::from(self.hdr.tid))),
            // As arg_value: false on every event but an open.
            EvtIsOpenRead => Some(Some(open.is_some_and(names::is_read).into())),
            EvtIsOpenWrite => Some(Some(open.is_some_and(names::is_write).into())),
            FdNum if open.is_some() => Some(Some(self.hdr.ret.max(-1))),
            ProcPid | ProcPpid | ProcSid | ProcTty | UserUid | UserLoginuid | GroupGid
            | ProcIsExeFromMemfd => {
                let t = self.thread()?;
                Some(Some(match f {
                    ProcPid => i64::from(t.pid),
                    ProcPpid => i64::from(t.ppid),
                    ProcSid => i64::from(t.sid),
                    ProcTty => i64::from(t.tty),
                    UserUid => i64::from(t.uid),
                    UserLoginuid => loginuid(t.loginuid),
                    GroupGid => i64::from(t.gid),
                    _ => (t.exe_flags & crate::state::EXE_FROM_MEMFD != 0).into(),
                }))
            }
            _ => None,
        }
    }

    #[inline]
    fn value<'b>(&'b self, f: Field, arg: Option<u32>, buf: &'b mut Buf) -> V<'b> {
        use Field::*;
        match f {
            EvtType => V::Str(name_of(self.code).as_bytes()),
            EvtDir => V::Str(b"<"),
            EvtNum => V::Int(self.num as i64),
            EvtTime => V::Int(self.time_ns() as i64),
            EvtTimeIso => {
                let mut b = [0u8; 40];
                let s = crate::base::time::rfc3339_nanos(self.time_ns(), &mut b);
                buf.clear();
                push(buf, s.trim_end_matches('Z').as_bytes());
                push(buf, b"+0000");
                V::Str(&buf[..])
            }
            EvtRes | EvtRawres => match self.ret() {
                None => V::Missing,
                Some(r) if f == EvtRawres => V::Int(r),
                Some(r) => {
                    buf.clear();
                    names::write_res(r, buf);
                    V::Str(&buf[..])
                }
            },
            ThreadTid => V::Int(i64::from(self.hdr.tid)),
            ContainerId | ContainerName => V::Str(b"host"),
            ContainerImageRepository => V::Str(b""),
            ContainerStartTs => V::Int(self.host.init_start_ns),
            f if is_proc(f) => self.proc_value(f, arg, buf),
            f if is_fd(f) => self.fd_value(f, buf),
            _ => self.arg_value(f, buf),
        }
    }
}

fn is_proc(f: Field) -> bool {
    use Field::*;
    matches!(
        f,
        ProcName
            | ProcExe
            | ProcExepath
            | ProcArgs
            | ProcCmdline
            | ProcPid
            | ProcPpid
            | ProcSid
            | ProcPname
            | ProcPexe
            | ProcPexepath
            | ProcPcmdline
            | ProcAname
            | ProcAexepath
            | ProcTty
            | ProcCwd
            | ProcSname
            | ProcDuration
            | ProcIsExeFromMemfd
            | UserUid
            | UserName
            | UserLoginuid
            | UserLoginname
            | GroupGid
            | GroupName
    )
}

fn is_fd(f: Field) -> bool {
    use Field::*;
    matches!(
        f,
        FdNum
            | FdName
            | FdNameraw
            | FdDirectory
            | FdFilename
            | FdType
            | FdTypechar
            | FdL4proto
            | FdSip
            | FdRip
            | FdCip
            | FdLip
            | FdSport
            | FdRport
            | FdCport
            | FdLport
            | FdConnected
            | FdNameChanged
            | FdIp
            | FdNet
            | FdSnet
            | FdCnet
    )
}

impl<'a> EventView<'a> {
    /// The return value, for records that have one.
    fn ret(&self) -> Option<i64> {
        match self.rec {
            Record::ProcExit { .. } => None,
            r => Some(r.hdr().ret),
        }
    }

    pub(super) fn syscall_name(&self) -> &'static str {
        name_of(self.code)
    }
}
