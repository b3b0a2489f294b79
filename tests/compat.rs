//! 32-bit tasks on a 64-bit kernel: a static i386 worker (tests/compat/
//! worker32.c) forks, execs and opens known numbers of times while the real
//! probe runs, on both attach paths. Its syscalls must be decoded with the
//! i386 table, counted exactly, flagged as compat, and never read as the
//! 64-bit syscalls that share their numbers. Needs root and the host gcc
//! (the worker is freestanding); x86_64 only, the arm64 twin runs an armhf
//! busybox in the QEMU guests.
#![cfg(target_arch = "x86_64")]

use std::collections::HashSet;
use std::process::Command;

use kestrel::capture::btf::AttachMode;
use kestrel::capture::record::{decode, Record};
use kestrel::capture::skel::types::kestrel_flags as F;
use kestrel::capture::ProbeConfig;
use kestrel::state::{State, Thread};

mod common;
use common::{capture, probe_lock, tmp, unbatched};

const FORKS: usize = 12;
const EXECS: usize = 6;
const OPENS: usize = 40;

/// Every record delivered at once (no batching), on the given attach path.
fn probe_on(attach: AttachMode) -> ProbeConfig {
    ProbeConfig {
        attach,
        ..unbatched()
    }
}

/// One root-only test per attach path, both running `body(path)`.
macro_rules! on_both_paths {
    ($tp_btf:ident, $raw_tp:ident, $body:ident) => {
        #[test]
        #[cfg_attr(not(kestrel_ci), ignore = "needs root: loads the probe")]
        fn $tp_btf() {
            $body(AttachMode::TpBtf);
        }

        #[test]
        #[cfg_attr(not(kestrel_ci), ignore = "needs root: loads the probe")]
        fn $raw_tp() {
            $body(AttachMode::RawTp);
        }
    };
}

/// How many of `recs` close one of `fds`.
fn closes_of(recs: &[&Record<'_>], fds: &HashSet<i64>) -> usize {
    recs.iter()
        .filter(|r| matches!(r, Record::Close { fd, .. } if fds.contains(fd)))
        .count()
}

fn build_worker() -> String {
    let bin = tmp("worker32");
    let st = Command::new("gcc")
        .args(["-m32", "-nostdlib", "-static", "-ffreestanding", "-fno-pic"])
        .args(["-fno-stack-protector", "-O2", "-o", &bin])
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/compat/worker32.c"
        ))
        .status()
        .expect("gcc runs");
    assert!(st.success(), "gcc -m32 -nostdlib failed");
    bin
}

on_both_paths!(
    i386_tasks_are_decoded_with_their_own_table_on_tp_btf,
    i386_tasks_are_decoded_with_their_own_table_on_raw_tp,
    i386_worker_is_seen_exactly
);

fn i386_worker_is_seen_exactly(attach: AttachMode) {
    let _g = probe_lock();
    let bin = build_worker();
    let file = tmp("compat-file");
    std::fs::write(&file, b"x").unwrap();
    let mut worker = 0u32;
    let (raw, counters) = capture(probe_on(attach), true, || {
        let mut child = Command::new(&bin)
            .args([
                &file,
                &FORKS.to_string(),
                &EXECS.to_string(),
                &OPENS.to_string(),
            ])
            .spawn()
            .unwrap();
        worker = child.id();
        assert!(child.wait().unwrap().success(), "worker32 failed");
    });
    let _ = std::fs::remove_file(&file);
    let _ = std::fs::remove_file(&bin);
    assert_eq!(counters.n_drops(), 0, "no drops at this rate");

    let recs: Vec<Record<'_>> = raw.iter().map(|r| decode(r).unwrap()).collect();
    let mine = |r: &&Record<'_>| r.hdr().pid == worker;
    let syscall_rec = |r: &&Record<'_>| r.hdr().nr >= 0;
    // Everything before the worker's exec came from the 64-bit test process.
    let after_exec = |r: &&Record<'_>| {
        !matches!(r, Record::Exec { .. }) && !matches!(r, Record::ProcExit { .. })
    };
    let worker_calls: Vec<&Record<'_>> = recs
        .iter()
        .filter(mine)
        .filter(syscall_rec)
        .filter(after_exec)
        .filter(|r| r.has_flag(F::KF_COMPAT))
        .collect();

    let opens: Vec<i64> = worker_calls
        .iter()
        .filter_map(|r| match r {
            Record::Open { hdr, path, .. } if *path == file.as_bytes() => Some(hdr.ret),
            _ => None,
        })
        .collect();
    assert_eq!(opens.len(), OPENS, "every 32-bit open, decoded as openat");
    assert!(opens.iter().all(|&fd| fd >= 0));
    let fds: HashSet<i64> = opens.iter().copied().collect();
    assert_eq!(
        closes_of(&worker_calls, &fds),
        OPENS,
        "one close per open; no read taken for a close"
    );
    let parent_clones: Vec<u32> = worker_calls
        .iter()
        .filter_map(|r| match r {
            Record::Clone {
                child_side: false,
                hdr,
                ..
            } => Some(hdr.ret as u32),
            _ => None,
        })
        .collect();
    assert_eq!(
        parent_clones.len(),
        FORKS + EXECS,
        "every fork; no setpgid taken for a fork"
    );
    let children: HashSet<u32> = parent_clones.iter().copied().collect();
    let child_sides = recs
        .iter()
        .filter(|r| {
            matches!(
                r,
                Record::Clone {
                    child_side: true,
                    ..
                }
            )
        })
        .filter(|r| children.contains(&r.hdr().tid) && r.has_flag(F::KF_COMPAT))
        .count();
    assert_eq!(
        child_sides,
        FORKS + EXECS,
        "child side of every 32-bit fork"
    );
    let execs = recs
        .iter()
        .filter(|r| matches!(r, Record::Exec { path, .. } if *path == b"/proc/self/exe"))
        .filter(|r| children.contains(&r.hdr().pid))
        .count();
    assert_eq!(execs, EXECS, "every exec of the 32-bit worker");

    // Through the state tables: the worker's fds come and go exactly.
    let mut state = State::new(64, 64, u32::MAX, false);
    state.seed_thread(Thread::new(worker, worker));
    for r in recs.iter().filter(mine).filter(after_exec) {
        if r.hdr().tid == worker {
            state.apply(r);
        }
    }
    let c = state.counters;
    assert_eq!(c.n_added_fds as usize, OPENS, "fds added");
    assert_eq!(c.n_removed_fds as usize, OPENS, "fds removed");
    assert_eq!(c.n_failed_fd_lookups, 0, "no close of an fd never opened");
    // ... and its children's threads too.
    let mut tree = State::new(64, 64, u32::MAX, false);
    for r in recs.iter().filter(|r| children.contains(&r.hdr().pid)) {
        tree.apply(r);
    }
    assert_eq!(tree.counters.n_added_threads as usize, FORKS + EXECS);
    assert_eq!(tree.counters.n_removed_threads as usize, FORKS + EXECS);
}

/// i386 syscalls through int 0x80 from this 64-bit process: its code
/// segment stays 64-bit, so only TS_COMPAT tells the probe the ABI.
fn int80(nr: u32, a: u32, b: u32, c: u32) -> i32 {
    let ret: i32;
    // SAFETY: a plain ia32 syscall; arguments are 32-bit values the callers
    // chose (addresses from a MAP_32BIT mapping).
    unsafe {
        // rbx is LLVM's: swap the first argument in and out around the trap.
        std::arch::asm!(
            "xchg {a:r}, rbx",
            "int 0x80",
            "xchg {a:r}, rbx",
            a = inout(reg) u64::from(a) => _,
            inlateout("eax") nr as i32 => ret,
            in("ecx") b,
            in("edx") c,
        );
    }
    ret
}

fn int80_from_64bit_is_decoded_as_i386(attach: AttachMode) {
    let _g = probe_lock();
    const ROUNDS: usize = 20;
    let file = tmp("int80-file");
    std::fs::write(&file, b"x").unwrap();
    // SAFETY: a fresh private anonymous mapping below 4 GiB, unmapped below.
    let low = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            4096,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_32BIT,
            -1,
            0,
        )
    };
    assert_ne!(low, libc::MAP_FAILED);
    let buf = low as *mut u8;
    // SAFETY: the path plus its NUL fits the 4 KiB mapping.
    unsafe {
        std::ptr::copy_nonoverlapping(file.as_ptr(), buf, file.len());
        *buf.add(file.len()) = 0;
    }
    let (addr, scratch) = (buf as usize as u32, buf as usize as u32 + 2048);
    let mut tid = 0u32;
    let (raw, counters) = capture(probe_on(attach), true, || {
        tid = rustix::thread::gettid().as_raw_nonzero().get() as u32;
        for _ in 0..ROUNDS {
            let fd = int80(5, addr, 0, 0); // i386 open
            assert!(fd >= 0, "int 0x80 open: {fd}");
            for _ in 0..3 {
                assert!(int80(3, fd as u32, scratch, 1) >= 0); // i386 read = x86_64 close
            }
            assert_eq!(int80(6, fd as u32, 0, 0), 0); // i386 close
        }
    });
    // SAFETY: unmapping the mapping made above.
    unsafe { libc::munmap(low, 4096) };
    let _ = std::fs::remove_file(&file);
    assert_eq!(counters.n_drops(), 0);
    let recs: Vec<Record<'_>> = raw.iter().map(|r| decode(r).unwrap()).collect();
    let mine: Vec<&Record<'_>> = recs.iter().filter(|r| r.hdr().tid == tid).collect();
    let opens: HashSet<i64> = mine
        .iter()
        .filter_map(|r| match r {
            Record::Open { hdr, path, .. } if *path == file.as_bytes() => {
                assert!(r.has_flag(F::KF_COMPAT), "int 0x80 open flagged compat");
                Some(hdr.ret)
            }
            _ => None,
        })
        .collect();
    let n_opens = mine
        .iter()
        .filter(|r| matches!(r, Record::Open { path, .. } if *path == file.as_bytes()))
        .count();
    assert_eq!(
        n_opens, ROUNDS,
        "every int 0x80 open decoded with the i386 table"
    );
    assert_eq!(
        closes_of(&mine, &opens),
        ROUNDS,
        "one close per round: no i386 read taken for a close"
    );
}

on_both_paths!(
    int80_from_a_64bit_task_is_decoded_as_i386_on_tp_btf,
    int80_from_a_64bit_task_is_decoded_as_i386_on_raw_tp,
    int80_from_64bit_is_decoded_as_i386
);
