//! Fault injection on outputs, as root with the real probe: a stdout pipe
//! nobody reads, a FIFO reader that never reads, a full tmpfs, a closed pipe
//! and a closed stderr, an unreachable syslog collector, a flood of
//! thread-table-full events. The loop must keep its timers (snapshots keep
//! flowing to the healthy output), never tear a line, never panic.

use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::{require_root, serial, tmp};

const BIN: &str = env!("CARGO_BIN_EXE_kestrel");

fn lines(path: &str) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("torn line {l:?}: {e}")))
        .collect()
}

fn field(v: &serde_json::Value, k: &str) -> u64 {
    v["output_fields"][k].as_u64().unwrap_or(0)
}

fn wait_for_lines(path: &str, n: usize) {
    let t = Instant::now();
    while lines(path).len() < n {
        assert!(t.elapsed() < Duration::from_secs(30), "no {n} snapshots");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills two fds that we then own.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: fresh descriptors.
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

fn signal(child: &Child, sig: i32) {
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(child.id() as i32, sig) };
}

/// The exit summary of one output: (written, dropped, lost).
fn summary(stderr: &str, output: &str) -> (u64, u64, u64) {
    let l = stderr
        .lines()
        .find(|l| {
            l.starts_with(&format!("kestrel: output {output}: ")) && l.contains("lines written")
        })
        .unwrap_or_else(|| panic!("no summary for {output} in {stderr}"));
    let nums: Vec<u64> = l
        .rsplit(": ")
        .next()
        .unwrap()
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|s| s.parse().ok())
        .collect();
    (nums[0], nums[1], nums[2])
}

#[test]
#[ignore = "needs root: loads the probe (scripts/test.sh runs it with --include-ignored)"]
fn stdout_into_a_stalled_pipe_neither_stops_snapshots_nor_the_ring() {
    let _g = serial();
    require_root();
    let (r, w) = pipe();
    // One page: full after the first snapshot.
    // SAFETY: fcntl on a pipe we own.
    unsafe { libc::fcntl(r.as_raw_fd(), libc::F_SETPIPE_SZ, 4096) };
    let side = tmp("stall-side.json");
    let err = tmp("stall.err");
    let o = Command::new(BIN)
        .args([
            "run",
            "--output",
            "stdout",
            "--output",
            &format!("file:{side}"),
        ])
        .args(["--interval", "100ms", "--duration", "4s"])
        .stdout(Stdio::from(w))
        .stderr(std::fs::File::create(&err).unwrap())
        .status()
        .unwrap();
    assert!(o.success(), "{o}");
    let snaps = lines(&side);
    // ~41 at 100 ms; a blocked loop wrote 19 of 130 before the fix.
    assert!(
        snaps.len() >= 30,
        "{} snapshots on the healthy file",
        snaps.len()
    );
    let last = snaps.last().unwrap();
    assert!(field(last, "falco.outputs_queue_num_drops") > 0);
    assert_eq!(
        field(last, "scap.n_evts"),
        field(last, "falco.num_evts") + field(last, "scap.n_drops")
    );
    let (written, dropped, _) = summary(&std::fs::read_to_string(&err).unwrap(), "stdout");
    assert!(
        dropped > 0 && written >= 1,
        "stdout wrote {written}, dropped {dropped}"
    );
    // What reached the pipe is whole lines only.
    let mut buf = Vec::new();
    std::fs::File::from(r).read_to_end(&mut buf).unwrap();
    for l in String::from_utf8(buf).unwrap().lines() {
        serde_json::from_str::<serde_json::Value>(l).expect("whole line in the pipe");
    }
}

#[test]
#[ignore = "needs root: loads the probe (scripts/test.sh runs it with --include-ignored)"]
fn sigterm_ends_the_agent_while_a_fifo_reader_never_reads() {
    let _g = serial();
    require_root();
    let fifo = tmp("never-read.fifo");
    rustix::fs::mkfifoat(
        rustix::fs::CWD,
        fifo.as_str(),
        rustix::fs::Mode::from(0o600),
    )
    .unwrap();
    let reader: OwnedFd = rustix::fs::open(
        fifo.as_str(),
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::NONBLOCK,
        rustix::fs::Mode::empty(),
    )
    .unwrap();
    let side = tmp("fifo-side.json");
    let mut agent = Command::new(BIN)
        .args(["run", "--allow-special-outputs", "--interval", "100ms"])
        .args([
            "--output",
            &format!("file:{fifo}"),
            "--output",
            &format!("file:{side}"),
        ])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // 64 KiB of FIFO and 16 queued lines are full after ~40 snapshots.
    wait_for_lines(&side, 50);
    let before = lines(&side).len();
    let t = Instant::now();
    signal(&agent, libc::SIGTERM);
    let st = agent.wait().unwrap();
    // Structurally bounded: nothing blocks, and the final flush has 400 ms.
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    assert!(st.success());
    assert!(
        lines(&side).len() > before,
        "a final snapshot on the healthy file"
    );
    drop(reader);
}

#[test]
#[ignore = "needs root: loads the probe (scripts/test.sh runs it with --include-ignored)"]
fn full_tmpfs_never_leaves_a_torn_line() {
    let _g = serial();
    require_root();
    let dir = tmp("tmpfs16k");
    std::fs::create_dir_all(&dir).unwrap();
    let ok = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=16k", "tmpfs", &dir])
        .status()
        .unwrap();
    assert!(ok.success(), "mount a 16k tmpfs");
    // 4k left: room for one snapshot and part of the next.
    std::fs::write(format!("{dir}/filler"), vec![b'x'; 12 * 1024]).unwrap();
    let out = format!("{dir}/m.json");
    let err = tmp("tmpfs.err");
    let mut agent = Command::new(BIN)
        .args([
            "run",
            "--output",
            &format!("file:{out}"),
            "--interval",
            "100ms",
        ])
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(3));
    signal(&agent, libc::SIGTERM);
    let st = agent.wait().unwrap();
    let snaps = lines(&out); // panics on any line that does not parse
    let _ = Command::new("umount").arg(&dir).status();
    assert!(st.success());
    assert!(!snaps.is_empty(), "the first snapshot fitted");
    let (_, _, lost) = summary(
        &std::fs::read_to_string(&err).unwrap(),
        &format!("file:{out}"),
    );
    assert!(lost > 0, "rolled-back lines are counted");
}

#[test]
#[ignore = "needs root: loads the probe (scripts/test.sh runs it with --include-ignored)"]
fn a_closed_pipe_on_stdout_and_stderr_is_survived() {
    let _g = serial();
    require_root();
    // `kestrel run ... 2>&1 | head -1`
    let (r, w) = pipe();
    let w2 = w.try_clone().unwrap();
    let mut agent = Command::new(BIN)
        .args(["run", "--interval", "200ms", "--duration", "3s"])
        .stdout(Stdio::from(w))
        .stderr(Stdio::from(w2))
        .spawn()
        .unwrap();
    let mut f = std::fs::File::from(r);
    let mut b = [0u8; 1];
    while f.read(&mut b).unwrap() == 1 && b[0] != b'\n' {}
    drop(f);
    let st = agent.wait().unwrap();
    assert_eq!(st.code(), Some(0), "no abort on EPIPE: {st}");
}

#[test]
#[ignore = "needs root: loads the probe (scripts/test.sh runs it with --include-ignored)"]
fn a_closed_stderr_is_survived() {
    let _g = serial();
    require_root();
    let out = tmp("nostderr.json");
    let mut cmd = Command::new(BIN);
    cmd.args(["run", "--output", &format!("file:{out}")]).args([
        "--interval",
        "200ms",
        "--duration",
        "2s",
        "--thread-table-size",
        "4",
    ]);
    // SAFETY: close(2) between fork and exec touches no shared state.
    unsafe {
        cmd.pre_exec(|| {
            libc::close(2);
            Ok(())
        })
    };
    let st = cmd.status().unwrap();
    assert_eq!(st.code(), Some(0), "{st}");
    assert!(lines(&out).len() >= 5);
}

#[test]
#[ignore = "needs root: loads the probe (scripts/test.sh runs it with --include-ignored)"]
fn every_refused_syslog_datagram_is_counted() {
    let _g = serial();
    require_root();
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let err = tmp("udp.err");
    let st = Command::new(BIN)
        .args(["run", "--output", &format!("syslog://127.0.0.1:{port}")])
        .args(["--interval", "200ms", "--duration", "3s"])
        .stderr(std::fs::File::create(&err).unwrap())
        .status()
        .unwrap();
    assert!(st.success());
    let text = std::fs::read_to_string(&err).unwrap();
    let (written, dropped, lost) = summary(&text, &format!("syslog://127.0.0.1:{port}"));
    assert!(written >= 10, "{text}");
    assert_eq!(
        (lost, dropped),
        (written, 0),
        "every datagram refused: {text}"
    );
}

#[test]
#[ignore = "needs root: loads the probe (scripts/test.sh runs it with --include-ignored)"]
fn thread_table_full_logs_once_per_window_and_seeding_says_what_fit() {
    let _g = serial();
    require_root();
    let out = tmp("flood.json");
    let err = tmp("flood.err");
    let mut agent = Command::new(BIN)
        .args([
            "run",
            "--output",
            &format!("file:{out}"),
            "--interval",
            "300ms",
        ])
        .args(["--thread-table-size", "4"])
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .unwrap();
    wait_for_lines(&out, 1);
    for _ in 0..300 {
        Command::new("/bin/true").status().unwrap();
    }
    let n = lines(&out).len();
    wait_for_lines(&out, n + 1);
    signal(&agent, libc::SIGTERM);
    assert!(agent.wait().unwrap().success());
    let text = std::fs::read_to_string(&err).unwrap();
    let last = lines(&out).pop().unwrap();
    assert!(field(&last, "falco.n_drops_full_threadtable") >= 300);
    let full = text
        .lines()
        .filter(|l| l.contains("thread table full"))
        .count();
    // The run is shorter than the 10 s window.
    assert_eq!(full, 1, "{text}");
    assert!(text.contains("did not fit the table of 4"), "{text}");
}

/// stdout and stderr on a stream socket nobody reads (journald stalled):
/// written with MSG_DONTWAIT, so the loop goes on and drops are counted.
#[test]
#[ignore = "needs root: loads the probe (scripts/test.sh runs it with --include-ignored)"]
fn stdout_and_stderr_on_a_stalled_socket_never_block() {
    let _g = serial();
    require_root();
    let (ours, theirs) = std::os::unix::net::UnixStream::pair().unwrap();
    let small: libc::c_int = 4096;
    // SAFETY: setsockopt with an int value on a socket we own.
    unsafe {
        libc::setsockopt(
            theirs.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_SNDBUF,
            (&small as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    let side = tmp("sock-side.json");
    let theirs = OwnedFd::from(theirs);
    let st = Command::new(BIN)
        .args([
            "run",
            "--output",
            "stdout",
            "--output",
            &format!("file:{side}"),
        ])
        .args(["--interval", "100ms", "--duration", "3s"])
        .stdout(Stdio::from(theirs.try_clone().unwrap()))
        .stderr(Stdio::from(theirs))
        .status()
        .unwrap();
    assert!(st.success(), "{st}");
    let snaps = lines(&side);
    assert!(
        snaps.len() >= 20,
        "{} snapshots on the healthy file",
        snaps.len()
    );
    assert!(field(snaps.last().unwrap(), "falco.outputs_queue_num_drops") > 0);
    drop(ours);
}
