//! Shared by the integration tests that load the real probe.
#![allow(dead_code)]

use std::sync::{Mutex, MutexGuard};

/// Every probe sees every workload on the machine: one such test at a time.
static SERIAL: Mutex<()> = Mutex::new(());

pub fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Whether this process may load BPF. Under CI=true a missing privilege
/// fails the test; elsewhere the test skips with a loud message.
pub fn bpf_allowed() -> bool {
    if rustix::process::geteuid().is_root() {
        return true;
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("CI=true but not root: tests that load the probe must run in CI");
    }
    eprintln!("\n!!! SKIPPING: not root, so the probe cannot be loaded (run as root) !!!\n");
    false
}

/// A fresh path under /tmp unique to this test process.
pub fn tmp(name: &str) -> String {
    let p = format!("/tmp/kestrel-test-{}-{name}", std::process::id());
    let _ = std::fs::remove_file(&p);
    p
}

/// Creates `path`, then opens and closes it `n` times (one openat and one
/// close each).
pub fn open_close_n(path: &str, n: usize) {
    std::fs::write(path, b"x").unwrap();
    for _ in 0..n {
        drop(std::fs::File::open(path).unwrap());
    }
}
