//! The argument fields (`evt.arg.*`, `evt.is_open_*`) of one event, from
//! its record: flags and enums by the names Falco prints (see `names`),
//! path parameters resolved as Falco resolves them.

use super::extract::EventView;
use super::fields::Field;
use super::names;
use super::paths;
use super::value::{Buf, V};
use crate::capture::record::Record;
use crate::capture::skel::types::kestrel_flags as KF;

impl<'a> EventView<'a> {
    pub(super) fn arg_value<'b>(&'b self, f: Field, buf: &'b mut Buf) -> V<'b> {
        use Field::*;
        match (f, self.rec) {
            (EvtIsOpenRead | EvtIsOpenWrite | EvtIsOpenExec, Record::Open { flags, mode, .. }) => {
                V::Bool(match f {
                    EvtIsOpenRead => names::is_read(*flags),
                    EvtIsOpenWrite => names::is_write(*flags),
                    // A file created with an execute bit (libs event.cpp).
                    _ => flags & 0o100 != 0 && mode & 0o111 != 0,
                })
            }
            (EvtIsOpenRead | EvtIsOpenWrite | EvtIsOpenExec, _) => V::Bool(false),
            (EvtArgFlags, Record::Open { flags, .. }) => {
                buf.clear();
                names::write_open_flags(names::open_flags(*flags, self.arm32()), buf);
                V::Str(&buf[..])
            }
            (EvtArgFlags, Record::Exec { hdr, .. }) => {
                let mut v = 0;
                if u32::from(hdr.flags) & KF::KF_EXE_MEMFD.0 != 0 {
                    v |= names::EXE_FROM_MEMFD;
                }
                buf.clear();
                names::write_flags(v, names::EXE_FLAGS, buf);
                V::Str(&buf[..])
            }
            (EvtArgRequest, Record::Syscall { args, .. }) if self.syscall_name() == "ptrace" => {
                names::ptrace_request(args[0])
                    .map_or(V::Int(args[0] as i64), |n| V::Str(n.as_bytes()))
            }
            (EvtArgPid, Record::Syscall { args, .. }) if self.syscall_name() == "ptrace" => {
                V::Int(args[1] as i32 as i64)
            }
            (EvtArgDomain, Record::Socket { domain, .. }) => {
                names::socket_family(u64::from(*domain))
                    .map_or(V::Int(i64::from(*domain)), |n| V::Str(n.as_bytes()))
            }
            (EvtArgUid, Record::Syscall { args, .. }) => V::Int(args[0] as u32 as i64),
            (EvtArgFd, Record::Syscall { args, .. }) => V::Int(args[0] as i32 as i64),
            (EvtArgFd, Record::Close { fd, .. }) => V::Int(*fd),
            (_, Record::Syscall { args, s0, s1, .. }) => self.path_arg(f, args, s0, s1, buf),
            _ => V::Missing,
        }
    }

    /// Path parameters by their Falco names (libs event_table.c): relative
    /// paths resolved against the cwd or the dirfd, symlink targets raw.
    fn path_arg<'b>(
        &'b self,
        f: Field,
        args: &[u64; 6],
        s0: &'b [u8],
        s1: &'b [u8],
        buf: &'b mut Buf,
    ) -> V<'b> {
        use Field::*;
        let name = self.syscall_name();
        // (raw string, dirfd for it) the field means for this syscall
        let pick: Option<(&[u8], Option<i64>, bool)> = match (f, name) {
            (EvtArgTarget, "symlink" | "symlinkat") => Some((s0, None, false)),
            (EvtArgLinkpath, "symlink") => Some((s1, None, true)),
            (EvtArgLinkpath, "symlinkat") => Some((s1, Some(args[1] as i32 as i64), true)),
            (EvtArgOldpath, "link" | "rename") => Some((s0, None, true)),
            (EvtArgNewpath, "link" | "rename") => Some((s1, None, true)),
            (EvtArgOldpath, "linkat" | "renameat" | "renameat2") => {
                Some((s0, Some(args[0] as i32 as i64), true))
            }
            (EvtArgNewpath, "linkat" | "renameat" | "renameat2") => {
                Some((s1, Some(args[2] as i32 as i64), true))
            }
            (EvtArgPath, "unlink" | "chdir" | "mkdir" | "rmdir") => Some((s0, None, true)),
            (EvtArgName, "unlinkat" | "mkdirat") => Some((s0, Some(args[0] as i32 as i64), true)),
            (EvtArgName, "memfd_create") => Some((s0, None, false)),
            _ => None,
        };
        let Some((raw, dirfd, resolve)) = pick else {
            return V::Missing;
        };
        if !resolve || raw.starts_with(b"/") {
            return V::Str(raw);
        }
        let base = self.base_dir(dirfd);
        match base {
            Some(b) => {
                paths::join_normalized(b, raw, buf);
                V::Str(&buf[..])
            }
            None => V::Str(raw),
        }
    }

    /// The directory a relative path is taken from: the cwd for AT_FDCWD
    /// (or no dirfd), else the dirfd's entry in the fd table.
    fn base_dir(&self, dirfd: Option<i64>) -> Option<&'a [u8]> {
        const AT_FDCWD: i64 = -100;
        match dirfd {
            None | Some(AT_FDCWD) => self.thread().map(|t| &t.cwd[..]).filter(|c| !c.is_empty()),
            Some(fd) => self
                .state
                .fd(self.hdr.pid, fd)
                .map(|f| &f.path[..])
                .filter(|p| !p.is_empty()),
        }
    }

    /// Whether the call took ARM's open flags: a 32-bit ARM kernel's, or an
    /// AArch32 task's on arm64.
    fn arm32(&self) -> bool {
        cfg!(target_arch = "arm")
            || cfg!(target_arch = "aarch64") && self.rec.has_flag(KF::KF_COMPAT)
    }
}
