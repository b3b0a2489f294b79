//! An open's path as the real probe reads it (bpf/emit.h read_user_str):
//! a short path in one fixed-size copy, anything else (longer, or too near
//! the end of its mapping for that copy) the exact way. Every length around
//! the copy's 64 bytes and the record's 256, a path that ends just before
//! an unreadable page, and an unreadable pointer; on tp_btf and raw_tp.

use std::ffi::CString;

use kestrel::capture::btf::AttachMode;
use kestrel::capture::record::{decode, Record};
use kestrel::capture::skel::types::{kestrel_flags as F, kestrel_open};
use kestrel::capture::syscalls::Selection;
use kestrel::capture::ProbeConfig;

mod common;
use common::{capture, probe_lock};

const LENGTHS: [usize; 16] = [
    1, 2, 7, 8, 9, 55, 56, 57, 62, 63, 64, 65, 127, 254, 256, 300,
];
/// Bytes the record keeps, the NUL included (kestrel.h, generated).
const KEPT: usize = kestrel::capture::abi::OPEN_PATH_MAX;

/// A path of `len` bytes that names nothing (each length its own bytes).
fn path_of(len: usize) -> Vec<u8> {
    (0..len).map(|i| b'a' + ((i + len) % 26) as u8).collect()
}

/// Two pages, the second unreadable: `s` and its NUL end at the first's
/// last byte, so a fixed 64-byte copy from `s` faults where the string
/// read does not.
struct EdgeOfMapping {
    map: *mut u8,
    page: usize,
    path: *const libc::c_char,
}

impl EdgeOfMapping {
    fn new(s: &[u8]) -> EdgeOfMapping {
        let page = rustix::param::page_size();
        // SAFETY: a fresh private anonymous mapping of two pages; the second
        // is made unreadable, the string is written inside the first.
        unsafe {
            let m = libc::mmap(
                core::ptr::null_mut(),
                2 * page,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            );
            assert_ne!(m, libc::MAP_FAILED, "mmap");
            let m = m.cast::<u8>();
            assert_eq!(libc::mprotect(m.add(page).cast(), page, libc::PROT_NONE), 0);
            let at = m.add(page - s.len() - 1);
            core::ptr::copy_nonoverlapping(s.as_ptr(), at, s.len());
            *at.add(s.len()) = 0;
            EdgeOfMapping {
                map: m,
                page,
                path: at.cast(),
            }
        }
    }
}

impl Drop for EdgeOfMapping {
    fn drop(&mut self) {
        // SAFETY: unmapping the two pages new() mapped.
        unsafe { libc::munmap(self.map.cast(), 2 * self.page) };
    }
}

fn open_at(path: *const libc::c_char) {
    // SAFETY: the kernel reads the pointer and fails the call when it
    // cannot; nothing by these names exists, so no fd is made.
    let fd = unsafe { libc::openat(libc::AT_FDCWD, path, libc::O_RDONLY) };
    assert!(fd < 0, "nothing by that name");
}

#[test]
#[cfg_attr(not(kestrel_ci), ignore = "needs root: loads the probe")]
fn open_paths_read_whole_at_every_length_and_near_an_unreadable_page() {
    let _g = probe_lock();
    let edge_len = 20;
    let edge = EdgeOfMapping::new(&path_of(edge_len));
    for attach in [AttachMode::TpBtf, AttachMode::RawTp] {
        let cfg = ProbeConfig {
            selection: Selection::parse("openat").unwrap(),
            attach,
            // Failed opens carry their path only with rules loaded.
            failed_open_paths: true,
            ..ProbeConfig::default()
        };
        let paths: Vec<CString> = LENGTHS
            .iter()
            .map(|&n| CString::new(path_of(n)).unwrap())
            .collect();
        let at_edge = edge.path as usize;
        let mut worker = 0;
        let (raw, counters) = capture(cfg, true, || {
            worker = rustix::thread::gettid().as_raw_nonzero().get() as u32;
            for p in &paths {
                open_at(p.as_ptr());
            }
            open_at(at_edge as *const libc::c_char);
            open_at(1 as *const libc::c_char);
        });
        assert_eq!(counters.n_drops(), 0, "{attach:?}: no record dropped");
        // The stored length (NUL included) too: the reader stops at a NUL
        // either way, but the record's size follows the stored length.
        let at = core::mem::offset_of!(kestrel_open, path_len);
        let opens: Vec<(Vec<u8>, u16)> = raw
            .iter()
            .filter_map(|r| match decode(r).unwrap() {
                Record::Open { hdr, path, .. } if hdr.tid == worker => {
                    let stored = u16::from_ne_bytes([r[at], r[at + 1]]);
                    let want = if path.is_empty() {
                        1
                    } else {
                        (path.len() + 1).min(KEPT)
                    };
                    assert_eq!(usize::from(stored), want, "{attach:?}: stored length");
                    Some((path.to_vec(), hdr.flags))
                }
                _ => None,
            })
            .collect();
        assert_eq!(opens.len(), LENGTHS.len() + 2, "{attach:?}: every open");
        let (trunc, fault) = (F::KF_PATH_TRUNC.0 as u16, F::KF_PATH_FAULT.0 as u16);
        for (&n, (path, flags)) in LENGTHS.iter().zip(&opens) {
            let want = &path_of(n)[..n.min(KEPT - 1)];
            assert_eq!(path, want, "{attach:?}: a {n}-byte path");
            assert_eq!(flags & fault, 0, "{attach:?}: a {n}-byte path read");
            if n >= KEPT {
                assert_ne!(flags & trunc, 0, "{attach:?}: {n} bytes are cut");
            } else if n < KEPT - 1 {
                assert_eq!(flags & trunc, 0, "{attach:?}: {n} bytes fit");
            }
        }
        let (path, flags) = &opens[LENGTHS.len()];
        assert_eq!(
            path,
            &path_of(edge_len),
            "{attach:?}: the path at a mapping's end"
        );
        assert_eq!(flags & (fault | trunc), 0, "{attach:?}: read whole");
        let (path, flags) = &opens[LENGTHS.len() + 1];
        assert!(path.is_empty(), "{attach:?}: no path from a bad pointer");
        assert_ne!(flags & fault, 0, "{attach:?}: a bad pointer is a fault");
    }
}
