//! Driving the `kestrel` binary from a test: the command, its output file
//! read back, waits with a limit, signals, pipes and a tiny tmpfs. One copy
//! for every suite that runs the agent.

use std::os::fd::{FromRawFd, OwnedFd};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use super::{json_lines, tmp, written_lines};

pub const SNAPSHOT_RULE: &str = "Falco internal: metrics snapshot";

/// The binary under test: `KESTREL_TEST_BIN` (scripts/test.sh points it at
/// the static musl release build where a goal is about that binary) or
/// cargo's.
pub fn bin() -> String {
    std::env::var("KESTREL_TEST_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_kestrel").into())
}

/// `kestrel run --output file:OUT ARGS...`, stderr discarded (a test that
/// reads it sets its own).
pub fn agent(out: &str, args: &[&str]) -> Command {
    let mut c = Command::new(bin());
    c.args(["run", "--output", &format!("file:{out}")])
        .args(args)
        .stderr(Stdio::null());
    c
}

/// Starts [`agent`].
pub fn spawn_agent(out: &str, args: &[&str]) -> Guard {
    agent(out, args).spawn_guarded()
}

/// Every child a test starts and does not wait for at once: owned by a
/// [`Guard`], so a failed assert leaves no agent attached.
pub trait SpawnGuarded {
    fn spawn_guarded(&mut self) -> Guard;
}

impl SpawnGuarded for Command {
    fn spawn_guarded(&mut self) -> Guard {
        Guard(self.spawn().unwrap())
    }
}

/// Kills and reaps the child when dropped, so a failed assert leaks nothing.
pub struct Guard(pub Child);

impl std::ops::Deref for Guard {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for Guard {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Guard {
    pub fn pid(&self) -> u32 {
        self.0.id()
    }
    /// SIGTERM and wait: the agent writes its final snapshot.
    pub fn term(mut self) -> ExitStatus {
        term(&mut self.0)
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

/// The snapshots in an output file; alerts sharing the output are skipped.
pub fn snapshots(path: &str) -> Vec<serde_json::Value> {
    json_lines(path)
        .into_iter()
        .filter(|v| v["rule"] == SNAPSHOT_RULE)
        .collect()
}

/// An unsigned output field; 0 when absent. Drop alerts carry their counts
/// as strings (Falco's), snapshots as numbers: both read.
pub fn field(v: &serde_json::Value, k: &str) -> u64 {
    let f = &v["output_fields"][k];
    f.as_u64()
        .or_else(|| f.as_str().and_then(|s| s.parse().ok()))
        .unwrap_or(0)
}

/// Polls `f` every 10 ms until it holds (Some(elapsed)) or `limit` passes.
pub fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> Option<Duration> {
    let t = Instant::now();
    while t.elapsed() < limit {
        if f() {
            return Some(t.elapsed());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    None
}

/// Waits for `n` complete lines in `path`; panics after `limit`.
pub fn wait_for_lines(path: &str, n: usize, limit: Duration) {
    let seen = wait_until(limit, || written_lines(path).len() >= n);
    assert!(seen.is_some(), "no {n} lines in {path} within {limit:?}");
}

/// Waits for `n` snapshots in `path`; panics after `limit`.
pub fn wait_for_snapshots(path: &str, n: usize, limit: Duration) {
    let seen = wait_until(limit, || snapshots(path).len() >= n);
    assert!(
        seen.is_some(),
        "no {n} snapshots in {path} within {limit:?}"
    );
}

pub fn signal(child: &Child, sig: i32) {
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(child.id() as i32, sig) };
}

/// SIGTERM and wait.
pub fn term(child: &mut Child) -> ExitStatus {
    signal(child, libc::SIGTERM);
    child.wait().unwrap()
}

/// A loopback UDP port nobody listens on right now.
pub fn free_udp_port() -> u16 {
    let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    s.local_addr().unwrap().port()
}

/// A close-on-exec pipe: (read end, write end).
pub fn pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills two fds that we then own.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: fresh descriptors.
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

/// open+close of one file in a loop for `d`; returns the syscalls made (two
/// traced ones per round).
pub fn open_close_for(path: &str, d: Duration) -> u64 {
    std::fs::write(path, b"x").unwrap();
    let t = Instant::now();
    let mut n = 0;
    while t.elapsed() < d {
        drop(std::fs::File::open(path).unwrap());
        n += 2;
    }
    n
}

/// A tmpfs of `size` mounted on a fresh directory, unmounted when dropped.
pub struct Tmpfs(pub String);

impl Tmpfs {
    pub fn mount(name: &str, size: &str) -> Tmpfs {
        let dir = tmp(name);
        std::fs::create_dir_all(&dir).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs", &dir])
            .status()
            .unwrap();
        assert!(ok.success(), "mount a {size} tmpfs on {dir}");
        Tmpfs(dir)
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}
