//! Decoding of ring-buffer records into borrowed views. Every record is
//! bounds-checked against its own length and its declared type before a
//! single field is read; anything short, oversized or of an unknown type is an
//! error, never a panic. Decoding copies only the fixed part of a record (at
//! most a few dozen bytes) and borrows paths from the ring buffer.

use core::mem::{offset_of, size_of};

use super::skel::types::{
    kestrel_clone, kestrel_exec, kestrel_exit, kestrel_fd, kestrel_flags as F, kestrel_generic,
    kestrel_hdr, kestrel_open, kestrel_record_type as T, kestrel_sockaddr, kestrel_socket,
    kestrel_task,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// Shorter than a header, or shorter than its type's fixed part.
    Truncated,
    /// hdr.len disagrees with the sample's length.
    LengthMismatch,
    /// A path length pointing past the record.
    BadPathLength,
    UnknownType(u16),
}

/// One decoded record. Paths exclude the trailing NUL.
#[derive(Clone, Copy, Debug)]
pub enum Record<'a> {
    Clone {
        hdr: kestrel_hdr,
        task: kestrel_task,
        child_side: bool,
    },
    Exec {
        hdr: kestrel_hdr,
        task: Option<kestrel_task>,
        path: &'a [u8],
    },
    ProcExit {
        hdr: kestrel_hdr,
    },
    Open {
        hdr: kestrel_hdr,
        flags: u32,
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
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SockAddr {
    pub fd: i64,
    pub family: u16,
    pub port: u16,
    pub addr: [u8; 16],
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
            | Record::Enter { hdr } => hdr,
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
fn read<R: Copy>(data: &[u8]) -> Result<R, DecodeError> {
    if data.len() < size_of::<R>() {
        return Err(DecodeError::Truncated);
    }
    // SAFETY: length checked above; R is a repr(C) struct of integers and
    // integer arrays, so any bytes form a valid value; read_unaligned copes
    // with the ring buffer's 8-byte alignment not matching R's.
    Ok(unsafe { core::ptr::read_unaligned(data.as_ptr().cast::<R>()) })
}

/// A path of `len` bytes (NUL included) at `off`, bounded by the record.
fn path_at(data: &[u8], off: usize, len: u16) -> Result<&[u8], DecodeError> {
    let len = usize::from(len);
    if len == 0 || off + len > data.len() {
        return Err(DecodeError::BadPathLength);
    }
    let p = &data[off..off + len];
    // Stop at the first NUL: the kernel's string reads always store one.
    let end = p.iter().position(|&b| b == 0).unwrap_or(p.len());
    Ok(&p[..end])
}

fn sockaddr(s: &kestrel_sockaddr) -> SockAddr {
    SockAddr {
        fd: s.fd,
        family: s.family,
        port: s.port,
        addr: s.addr,
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
            }
        }
        T::KR_EXECVE => {
            const FIXED: usize = offset_of!(kestrel_exec, path);
            let head: [u8; FIXED] = read(data)?;
            let task: kestrel_task = read(&head[offset_of!(kestrel_exec, task)..])?;
            let path_len: u16 = read(&head[offset_of!(kestrel_exec, path_len)..])?;
            Record::Exec {
                hdr,
                task: Some(task),
                path: path_at(data, FIXED, path_len)?,
            }
        }
        T::KR_PROC_EXIT => {
            let _: kestrel_exit = read(data)?;
            Record::ProcExit { hdr }
        }
        T::KR_OPEN => {
            const FIXED: usize = offset_of!(kestrel_open, path);
            let head: [u8; FIXED] = read(data)?;
            let flags: u32 = read(&head[offset_of!(kestrel_open, flags)..])?;
            let path_len: u16 = read(&head[offset_of!(kestrel_open, path_len)..])?;
            Record::Open {
                hdr,
                flags,
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
        _ => return Err(DecodeError::UnknownType(hdr.r#type)),
    })
}
pub mod synth;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_every_synthetic_record() {
        let open = synth::open(10, 10, 3, 0, "/etc/hosts");
        match decode(&open).unwrap() {
            Record::Open { path, hdr, .. } => {
                assert_eq!(path, b"/etc/hosts");
                assert_eq!(hdr.ret, 3);
            }
            r => panic!("wrong record {r:?}"),
        }
        match decode(&synth::exec(10, 10, 10, "/bin/true")).unwrap() {
            Record::Exec { path, task, .. } => {
                assert_eq!(path, b"/bin/true");
                assert!(task.is_some());
            }
            r => panic!("wrong record {r:?}"),
        }
        assert!(matches!(
            decode(&synth::clone(10, 10, 11, false, false)).unwrap(),
            Record::Clone {
                child_side: false,
                ..
            }
        ));
        assert!(matches!(
            decode(&synth::exit(10, 10, true)).unwrap(),
            Record::ProcExit { .. }
        ));
    }

    #[test]
    fn rejects_truncated_records_at_every_length() {
        for rec in [
            synth::open(1, 1, 3, 0, "/tmp/x"),
            synth::exec(1, 1, 1, "/bin/sh"),
            synth::clone(1, 1, 2, false, false),
            synth::fd(T::KR_CLOSE, 1, 1, 3, 0, false),
            synth::sockaddr(T::KR_CONNECT, 1, 1, 3, 0),
            synth::exit(1, 1, false),
        ] {
            for cut in 0..rec.len() {
                // Every prefix is rejected: either too short or its hdr.len
                // no longer matches.
                assert!(decode(&rec[..cut]).is_err(), "prefix {cut} accepted");
            }
        }
    }

    #[test]
    fn rejects_lying_lengths_and_types() {
        let mut rec = synth::open(1, 1, 3, 0, "/tmp/x");
        let pl = offset_of!(kestrel_open, path_len);
        rec[pl..pl + 2].copy_from_slice(&500u16.to_ne_bytes());
        assert_eq!(decode(&rec).unwrap_err(), DecodeError::BadPathLength);
        rec[pl..pl + 2].copy_from_slice(&0u16.to_ne_bytes());
        assert_eq!(decode(&rec).unwrap_err(), DecodeError::BadPathLength);

        let mut rec = synth::exit(1, 1, false);
        rec[offset_of!(kestrel_hdr, r#type)] = 200;
        assert_eq!(decode(&rec).unwrap_err(), DecodeError::UnknownType(200));

        let mut rec = synth::exit(1, 1, false);
        rec.push(0);
        assert_eq!(decode(&rec).unwrap_err(), DecodeError::LengthMismatch);
    }

    #[test]
    fn garbage_never_panics() {
        // A deterministic xorshift stream of random bytes and lengths.
        let mut x: u64 = 0x9e3779b97f4a7c15;
        let mut buf = [0u8; 512];
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let n = (x % 512) as usize;
            for b in buf.iter_mut() {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                *b = x as u8;
            }
            // Make some samples agree on length and type so deeper checks run.
            if n >= 32 {
                buf[18..20].copy_from_slice(&(n as u16).to_ne_bytes());
                buf[16] = (x % 14) as u8;
                buf[17] = 0;
            }
            let _ = decode(&buf[..n]);
        }
    }
}
