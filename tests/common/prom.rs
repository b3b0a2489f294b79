//! Helpers for the Prometheus tests: the agent with `--prometheus`, a raw
//! HTTP/1.0 client and a paced workload.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Guard, SpawnGuarded};

/// One instant query to a Prometheus server's HTTP API: the first sample's
/// value. None while the server cannot take it (no listener yet, or 503
/// while it starts); any other answer but a 200 with JSON fails the test,
/// naming the query.
pub fn prom_query(port: u16, q: &str) -> Option<f64> {
    let enc: String = q
        .bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    let (status, body) = http_get(port, &format!("/api/v1/query?query={enc}"))?;
    if status == 503 {
        return None;
    }
    assert_eq!(status, 200, "query {q}: {body}");
    let v: serde_json::Value =
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("query {q}: {e}: {body}"));
    v["data"]["result"][0]["value"][1].as_str()?.parse().ok()
}

/// A missing peer is a setup failure, never a silent pass: `tool ARG` must
/// run (scripts/test.sh installs Debian's prometheus, apache2-utils, curl).
pub fn require_tool(tool: &str, arg: &str) {
    assert!(
        Command::new(tool).arg(arg).output().is_ok(),
        "{tool} not found (scripts/test.sh installs it)"
    );
}

/// `promtool check metrics` on `text`: (exit success, what it printed).
pub fn promtool(text: &str) -> (bool, String) {
    let mut p = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    p.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = p.wait_with_output().unwrap();
    let said =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), said)
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The agent serving /metrics on `port`.
pub fn spawn_exporter(port: u16, args: &[&str]) -> Guard {
    Command::new(super::bin())
        .args(["run", "--prometheus", &port.to_string()])
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn_guarded()
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
            let fd = std::os::fd::AsRawFd::as_raw_fd(&f);
            // SAFETY: fchmod(2) on a descriptor this closure owns.
            assert_eq!(unsafe { libc::fchmod(fd, 0o644) }, 0);
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
