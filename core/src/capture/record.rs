//! Decoding of ring-buffer records into borrowed views. Every record is
//! bounds-checked against its own length and its declared type before a
//! single field is read; anything short, oversized or of an unknown type is an
//! error, never a panic. Decoding copies only the fixed part of a record (at
//! most a few dozen bytes) and borrows strings from the ring buffer.

use core::mem::{offset_of, size_of};

use super::skel::types::{
    kestrel_clone, kestrel_exec, kestrel_exit, kestrel_fd, kestrel_flags as F, kestrel_generic,
    kestrel_hdr, kestrel_open, kestrel_record_type as T, kestrel_sockaddr, kestrel_socket,
    kestrel_syscall, kestrel_task,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// Shorter than a header, or shorter than its type's fixed part.
    Truncated,
    /// hdr.len disagrees with the sample's length.
    LengthMismatch,
    /// A string length pointing past the record (or a required one 0).
    BadPathLength,
    UnknownType(u16),
}

/// One decoded record. Paths exclude the trailing NUL. `repr(C)` puts
/// every variant's leading `hdr` at one offset, so `hdr()` is one address.
#[derive(Clone, Copy, Debug)]
#[repr(C)]
pub enum Record<'a> {
    Clone {
        hdr: kestrel_hdr,
        task: kestrel_task,
        child_side: bool,
    },
    /// A failed execve has no task and empty strings.
    Exec {
        hdr: kestrel_hdr,
        task: Option<kestrel_task>,
        /// bprm->filename: the path as the caller passed it.
        path: &'a [u8],
        /// argv as in memory: NUL-separated, argv[0] first, the last NUL
        /// included unless KF_ARGS_TRUNC cut it off.
        args: &'a [u8],
        /// The executable resolved to an absolute path (memfd: its name);
        /// incomplete with KF_EXEPATH_TRUNC.
        exepath: &'a [u8],
        /// The cwd at exec; incomplete with KF_CWD_TRUNC.
        cwd: &'a [u8],
    },
    ProcExit {
        hdr: kestrel_hdr,
    },
    Open {
        hdr: kestrel_hdr,
        flags: u32,
        mode: u32,
        path: &'a [u8],
    },
    Close {
        hdr: kestrel_hdr,
        fd: i64,
    },
    Dup {
        hdr: kestrel_hdr,
        old_fd: i64,
    },
    Socket {
        hdr: kestrel_hdr,
        domain: u32,
        sock_type: u32,
    },
    Connect {
        hdr: kestrel_hdr,
        addr: SockAddr,
    },
    Accept {
        hdr: kestrel_hdr,
        addr: SockAddr,
    },
    Generic {
        hdr: kestrel_hdr,
    },
    Enter {
        hdr: kestrel_hdr,
    },
    /// A syscall the rules need: raw arguments (a 32-bit task's
    /// zero-extended) and the user strings its handler reads (empty when
    /// none, or unreadable: KF_PATH_FAULT / KF_PATH1_FAULT).
    Syscall {
        hdr: kestrel_hdr,
        args: [u64; 6],
        s0: &'a [u8],
        s1: &'a [u8],
    },
}

/// connect: `fd`, the peer (destination) and the socket's local end;
/// accept: the peer (client) and the new socket's local end. IPv4 sits in
/// the first 4 bytes of an address; ports are host order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SockAddr {
    pub fd: i64,
    pub family: u16,
    pub port: u16,
    pub addr: [u8; 16],
    /// The local end, from the kernel socket; `lfamily` 0 when unknown.
    pub lfamily: u16,
    pub lport: u16,
    pub laddr: [u8; 16],
}

impl Record<'_> {
    pub fn hdr(&self) -> &kestrel_hdr {
        match self {
            Record::Clone { hdr, .. }
            | Record::Exec { hdr, .. }
            | Record::ProcExit { hdr, .. }
            | Record::Open { hdr, .. }
            | Record::Close { hdr, .. }
            | Record::Dup { hdr, .. }
            | Record::Socket { hdr, .. }
            | Record::Connect { hdr, .. }
            | Record::Accept { hdr, .. }
            | Record::Generic { hdr }
            | Record::Enter { hdr }
            | Record::Syscall { hdr, .. } => hdr,
        }
    }

    pub fn has_flag(&self, f: F) -> bool {
        u32::from(self.hdr().flags) & f.0 != 0
    }
}

/// Copies the first `size_of::<R>()` bytes of `data` into an `R`.
///
/// Only instantiated with the skeleton's plain-integer `repr(C)` record types,
/// for which every bit pattern is valid.
pub(super) fn read<R: Copy>(data: &[u8]) -> Result<R, DecodeError> {
    if data.len() < size_of::<R>() {
        return Err(DecodeError::Truncated);
    }
    // SAFETY: length checked above; R is a repr(C) struct of integers and
    // integer arrays, so any bytes form a valid value; read_unaligned copes
    // with the ring buffer's 8-byte alignment not matching R's.
    Ok(unsafe { core::ptr::read_unaligned(data.as_ptr().cast::<R>()) })
}

/// `len` bytes at `off`, bounded by the record.
fn bytes_at(data: &[u8], off: usize, len: u16) -> Result<&[u8], DecodeError> {
    data.get(off..off + usize::from(len))
        .ok_or(DecodeError::BadPathLength)
}

/// A string of `len` bytes (NUL included; 0: empty) at `off`, bounded by
/// the record, cut at its first NUL.
fn str_at(data: &[u8], off: usize, len: u16) -> Result<&[u8], DecodeError> {
    let p = bytes_at(data, off, len)?;
    // Stop at the first NUL: the kernel's string reads always store one.
    let end = p.iter().position(|&b| b == 0).unwrap_or(p.len());
    Ok(&p[..end])
}

/// A path that is always present (at least its NUL).
fn path_at(data: &[u8], off: usize, len: u16) -> Result<&[u8], DecodeError> {
    if len == 0 {
        return Err(DecodeError::BadPathLength);
    }
    str_at(data, off, len)
}

/// A successful exec: the fixed part, then four strings back to back.
fn exec(data: &[u8], hdr: kestrel_hdr) -> Result<Record<'_>, DecodeError> {
    const FIXED: usize = offset_of!(kestrel_exec, data);
    let head: [u8; FIXED] = read(data)?;
    let task: kestrel_task = read(&head[offset_of!(kestrel_exec, task)..])?;
    let len = |at: usize| read::<u16>(&head[at..]);
    let (p, a, e, c) = (
        len(offset_of!(kestrel_exec, path_len))?,
        len(offset_of!(kestrel_exec, args_len))?,
        len(offset_of!(kestrel_exec, exepath_len))?,
        len(offset_of!(kestrel_exec, cwd_len))?,
    );
    let mut off = FIXED;
    let path = path_at(data, off, p)?;
    off += usize::from(p);
    let args = bytes_at(data, off, a)?;
    off += usize::from(a);
    let exepath = str_at(data, off, e)?;
    off += usize::from(e);
    Ok(Record::Exec {
        hdr,
        task: Some(task),
        path,
        args,
        exepath,
        cwd: str_at(data, off, c)?,
    })
}

/// KR_SYSCALL: the fixed part, then s0 and s1 back to back.
fn syscall(data: &[u8], hdr: kestrel_hdr) -> Result<Record<'_>, DecodeError> {
    const FIXED: usize = offset_of!(kestrel_syscall, data);
    let head: [u8; FIXED] = read(data)?;
    let args: [u64; 6] = read(&head[offset_of!(kestrel_syscall, args)..])?;
    let n0: u16 = read(&head[offset_of!(kestrel_syscall, s0_len)..])?;
    let n1: u16 = read(&head[offset_of!(kestrel_syscall, s1_len)..])?;
    Ok(Record::Syscall {
        hdr,
        args,
        s0: str_at(data, FIXED, n0)?,
        s1: str_at(data, FIXED + usize::from(n0), n1)?,
    })
}

fn sockaddr(s: &kestrel_sockaddr) -> SockAddr {
    SockAddr {
        fd: s.fd,
        family: s.family,
        port: s.port,
        addr: s.addr,
        lfamily: s.lfamily,
        lport: s.lport,
        laddr: s.laddr,
    }
}

pub fn decode(data: &[u8]) -> Result<Record<'_>, DecodeError> {
    let hdr: kestrel_hdr = read(data)?;
    if usize::from(hdr.len) != data.len() {
        return Err(DecodeError::LengthMismatch);
    }
    let t = T(u32::from(hdr.r#type));
    Ok(match t {
        T::KR_CLONE | T::KR_CLONE_CHILD => {
            let r: kestrel_clone = read(data)?;
            Record::Clone {
                hdr,
                task: r.task,
                child_side: t == T::KR_CLONE_CHILD,
            }
        }
        // A failed execve arrives as a generic record from sys_exit.
        T::KR_EXECVE if hdr.ret != 0 => {
            read::<kestrel_generic>(data)?;
            Record::Exec {
                hdr,
                task: None,
                path: &[],
                args: &[],
                exepath: &[],
                cwd: &[],
            }
        }
        T::KR_EXECVE => exec(data, hdr)?,
        T::KR_PROC_EXIT => {
            let _: kestrel_exit = read(data)?;
            Record::ProcExit { hdr }
        }
        T::KR_OPEN => {
            const FIXED: usize = offset_of!(kestrel_open, path);
            let head: [u8; FIXED] = read(data)?;
            let flags: u32 = read(&head[offset_of!(kestrel_open, flags)..])?;
            let mode: u32 = read(&head[offset_of!(kestrel_open, mode)..])?;
            let path_len: u16 = read(&head[offset_of!(kestrel_open, path_len)..])?;
            Record::Open {
                hdr,
                flags,
                mode,
                path: path_at(data, FIXED, path_len)?,
            }
        }
        T::KR_CLOSE => {
            let r: kestrel_fd = read(data)?;
            Record::Close { hdr, fd: r.fd }
        }
        T::KR_DUP => {
            let r: kestrel_fd = read(data)?;
            Record::Dup { hdr, old_fd: r.fd }
        }
        T::KR_SOCKET => {
            let r: kestrel_socket = read(data)?;
            Record::Socket {
                hdr,
                domain: r.domain,
                sock_type: r.r#type,
            }
        }
        T::KR_CONNECT => Record::Connect {
            hdr,
            addr: sockaddr(&read(data)?),
        },
        T::KR_ACCEPT => Record::Accept {
            hdr,
            addr: sockaddr(&read(data)?),
        },
        T::KR_GENERIC => {
            read::<kestrel_generic>(data)?;
            Record::Generic { hdr }
        }
        T::KR_ENTER => {
            read::<kestrel_generic>(data)?;
            Record::Enter { hdr }
        }
        T::KR_SYSCALL => syscall(data, hdr)?,
        _ => return Err(DecodeError::UnknownType(hdr.r#type)),
    })
}
#[cfg(any(test, feature = "testing"))]
pub mod synth;
#[cfg(test)]
mod tests;
