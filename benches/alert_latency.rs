//! Alert latency: from just before a real attack action to its alert line
//! arriving at a real rsyslog receiver over UDP, with the built-in rules at
//! the default settings, while the rig's syscall mix runs on another thread.
//! `cargo bench --bench alert_latency` as root (needs rsyslogd); prints the
//! median and p99 over KESTREL_BENCH_ALERTS actions (default 150), one at a
//! time (each waits for its line, so every line is matched to its action).

#[path = "mix.rs"]
mod mix;

use std::ffi::CString;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_kestrel");

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn lines(path: &str) -> usize {
    std::fs::read_to_string(path).map_or(0, |s| s.matches('\n').count())
}

fn rsyslog(dir: &str, port: u16) -> (Killed, String) {
    let out = format!("{dir}/received");
    let conf = format!("{dir}/rsyslog.conf");
    std::fs::write(
        &conf,
        format!(
            "global(workDirectory=\"{dir}\" maxMessageSize=\"64k\")\nmodule(load=\"imudp\")\n\
             template(name=\"m\" type=\"string\" string=\"%msg%\\n\")\n\
             ruleset(name=\"k\") {{ action(type=\"omfile\" file=\"{out}\" template=\"m\") }}\n\
             input(type=\"imudp\" address=\"127.0.0.1\" port=\"{port}\" ruleset=\"k\")\n"
        ),
    )
    .unwrap();
    let child = Command::new("rsyslogd")
        .args(["-n", "-f", &conf, "-i", &format!("{dir}/pid")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("rsyslogd (Debian's rsyslog)");
    let t = Instant::now();
    while std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok() {
        assert!(t.elapsed() < Duration::from_secs(10), "rsyslogd did not bind");
        std::thread::sleep(Duration::from_millis(10));
    }
    (Killed(child), out)
}

fn main() {
    if !rustix::process::geteuid().is_root() {
        eprintln!("alert_latency: run as root (it loads the probe)");
        return;
    }
    let n: usize = std::env::var("KESTREL_BENCH_ALERTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(150);
    let dir = format!("/tmp/kestrel-latency-{}", std::process::id());
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let port = std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let (_rs, received) = rsyslog(&dir, port);
    let snap = format!("{dir}/snapshots.json");
    let agent = Killed(
        Command::new(BIN)
            .args(["run", "--interval", "1h", "--output", &format!("file:{snap}")])
            .args(["--output", &format!("syslog://127.0.0.1:{port}")])
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let t = Instant::now();
    while lines(&snap) == 0 {
        assert!(t.elapsed() < Duration::from_secs(30), "agent did not start");
        std::thread::sleep(Duration::from_millis(10));
    }
    // The first snapshot reached syslog too.
    let t = Instant::now();
    while lines(&received) == 0 && t.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(5));
    }
    let stop = AtomicBool::new(false);
    let mut lat = Vec::with_capacity(n);
    std::thread::scope(|s| {
        s.spawn(|| {
            let path = CString::new(format!("{dir}/mixfile")).unwrap();
            std::fs::write(path.to_str().unwrap(), b"x").unwrap();
            while !stop.load(Ordering::Relaxed) {
                mix::mix(20_000, &path);
            }
        });
        for _ in 0..n {
            let before = lines(&received);
            let t0 = Instant::now();
            // Read sensitive file untrusted: cat opens /etc/shadow.
            let _ = Command::new("/bin/cat")
                .arg("/etc/shadow")
                .stdout(Stdio::null())
                .status();
            while lines(&received) == before {
                assert!(t0.elapsed() < Duration::from_secs(5), "no alert within 5 s");
                std::thread::sleep(Duration::from_micros(500));
            }
            lat.push(t0.elapsed().as_secs_f64() * 1e3);
            // Stay under the default limit (10/s, burst 100).
            std::thread::sleep(Duration::from_millis(100));
        }
        stop.store(true, Ordering::Relaxed);
    });
    drop(agent);
    lat.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let q = |p: f64| lat[((lat.len() as f64 * p).ceil() as usize).clamp(1, lat.len()) - 1];
    println!(
        "alert latency (cat /etc/shadow -> line at rsyslog over UDP, {} alerts, rig mix running): median {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        lat.len(),
        q(0.5),
        q(0.99),
        lat[lat.len() - 1]
    );
    let _ = std::fs::remove_dir_all(&dir);
}
