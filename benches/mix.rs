//! The rig's syscall mix, shared by the rig and the alert-latency bench.

use std::ffi::CString;
use std::process::Command;
use std::time::Instant;

/// The syscall mix: openat/read/close/getpid/getppid, and a
/// fork+exec of /bin/true every 2000 iterations. Returns seconds.
pub fn mix(iters: usize, path: &CString) -> f64 {
    let mut b = [0u8; 1];
    let t = Instant::now();
    for i in 0..iters {
        // SAFETY: plain syscalls on a valid C string and a local buffer.
        unsafe {
            let fd = libc::open(path.as_ptr(), libc::O_RDONLY);
            libc::read(fd, b.as_mut_ptr().cast(), 1);
            libc::close(fd);
            libc::getpid();
            libc::getppid();
        }
        if i % 2000 == 1999 {
            Command::new("/bin/true").status().unwrap();
        }
    }
    t.elapsed().as_secs_f64()
}

