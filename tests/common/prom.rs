//! Helpers for the Prometheus tests: the agent with `--prometheus`, a raw
//! HTTP/1.0 client, a paced workload and a guard that kills what it started.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The binary under test: `KESTREL_TEST_BIN` (scripts/test.sh points it at
/// the static musl release build, the one the 4 MB goal is about) or cargo's.
pub fn bin() -> String {
    std::env::var("KESTREL_TEST_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_kestrel").into())
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Kills and reaps the child when dropped, so a failed assert leaks nothing.
pub struct Guard(pub Child);

impl Guard {
    pub fn pid(&self) -> u32 {
        self.0.id()
    }
    /// SIGTERM and wait: the agent writes its final snapshot.
    pub fn term(mut self) -> std::process::ExitStatus {
        // SAFETY: kill(2) on our own child.
        unsafe { libc::kill(self.0.id() as i32, libc::SIGTERM) };
        self.0.wait().unwrap()
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

pub fn spawn_agent(port: u16, args: &[&str]) -> Guard {
    let child = Command::new(bin())
        .args(["run", "--prometheus", &port.to_string()])
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    Guard(child)
}

/// One HTTP/1.0 request (the server closes after it): (status, body).
pub fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).ok()?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head.split(' ').nth(1)?.parse().ok()?;
    Some((status, body.to_string()))
}

/// Waits until /metrics answers 200 and returns the body.
pub fn wait_scrape(port: u16, limit: Duration) -> String {
    let t = Instant::now();
    loop {
        if let Some((200, body)) = http_get(port, "/metrics") {
            return body;
        }
        assert!(t.elapsed() < limit, "no /metrics answer within {limit:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The value of an unlabelled series in exposition text.
pub fn series(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

/// A paced syscall loop on another thread, until stopped.
pub struct Workload {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<u64>>,
}

impl Workload {
    /// open+close of one file, `per_sec` pairs a second.
    pub fn start(path: String, per_sec: u64) -> Workload {
        std::fs::write(&path, b"x").unwrap();
        Self::paced(per_sec, move || drop(std::fs::File::open(&path).unwrap()))
    }

    /// fchmod of one open file, `per_sec` calls a second: with `--syscalls
    /// fchmod` the ring then carries this workload alone, not the rest of
    /// the machine (other sessions' builds, the test's own sockets).
    pub fn fchmod(path: String, per_sec: u64) -> Workload {
        std::fs::write(&path, b"x").unwrap();
        let f = std::fs::File::open(&path).unwrap();
        Self::paced(per_sec, move || {
            // SAFETY: fchmod(2) on a descriptor this closure owns.
            assert_eq!(
                unsafe { libc::fchmod(std::os::fd::AsRawFd::as_raw_fd(&f), 0o644) },
                0
            );
        })
    }

    fn paced(per_sec: u64, mut op: impl FnMut() + Send + 'static) -> Workload {
        let stop = Arc::new(AtomicBool::new(false));
        let s = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let t = Instant::now();
            let mut n = 0u64;
            while !s.load(Ordering::Relaxed) {
                op();
                n += 1;
                let due = Duration::from_secs_f64(n as f64 / per_sec as f64);
                if let Some(ahead) = due.checked_sub(t.elapsed()) {
                    std::thread::sleep(ahead);
                }
            }
            n
        });
        Workload {
            stop,
            thread: Some(thread),
        }
    }

    /// Stops it; returns the open/close pairs made.
    pub fn stop(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().map_or(0, |t| t.join().unwrap())
    }
}

impl Drop for Workload {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// VmRSS and VmHWM of a process, kB.
pub fn rss_kb(pid: u32) -> (u64, u64) {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let get = |k: &str| {
        s.lines()
            .find_map(|l| l.strip_prefix(k))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    };
    (get("VmRSS:"), get("VmHWM:"))
}
