//! The figures of the fresh, protected /metrics (BENCHMARKS.md): the cost of
//! one bcrypt check per cost factor; the agent's render per scrape; scrape
//! latency served from cache, rendered afresh, and under a flood of bad
//! passwords; snapshot timing under that flood; RSS and per-connection
//! memory of TLS sessions. Root (the agent loads the probe), openssl,
//! htpasswd:
//!   cargo build --release --target x86_64-unknown-linux-musl
//!   KESTREL_TEST_BIN=target/x86_64-unknown-linux-musl/release/kestrel \
//!     cargo bench --bench prom_tls

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kestrel::testing::Certs;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};

const PASSWORD: &str = "bench-pass";

struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() - 1) as f64 * p).round() as usize]
}

fn bcrypt_costs() {
    println!("## bcrypt::verify, one check on this CPU");
    for cost in [4u32, 8, 10, 12] {
        let hash = bcrypt::hash_with_salt(PASSWORD, cost, [7u8; 16])
            .unwrap()
            .to_string();
        let n = if cost >= 12 { 3 } else { 8 };
        let mut ms: Vec<f64> = (0..n)
            .map(|_| {
                let t = Instant::now();
                assert!(bcrypt::verify(PASSWORD, &hash).unwrap());
                t.elapsed().as_secs_f64() * 1e3
            })
            .collect();
        println!("cost {cost:2}: median {:.1} ms", median(&mut ms));
    }
}

fn client(c: &Certs) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_file(c.path("ca.crt")).unwrap())
        .unwrap();
    Arc::new(
        rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth(),
    )
}

fn b64(s: &str) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in s.as_bytes().chunks(3) {
        let n = c
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | (b as u32) << (16 - 8 * i));
        for i in 0..4 {
            out.push(if i <= c.len() {
                A[(n >> (18 - 6 * i) & 63) as usize] as char
            } else {
                '='
            });
        }
    }
    out
}

/// A TLS connection that has done one request (so rustls's buffers exist).
fn open(
    port: u16,
    cfg: &Arc<rustls::ClientConfig>,
    user: &str,
    keep: bool,
) -> (
    rustls::StreamOwned<rustls::ClientConnection, TcpStream>,
    u16,
    String,
) {
    let conn =
        rustls::ClientConnection::new(Arc::clone(cfg), ServerName::try_from("localhost").unwrap())
            .unwrap();
    let sock = TcpStream::connect(("127.0.0.1", port)).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut s = rustls::StreamOwned::new(conn, sock);
    let close = if keep { "" } else { "Connection: close\r\n" };
    let req = format!(
        "GET /metrics HTTP/1.1\r\nHost: b\r\nAuthorization: Basic {}\r\n{close}\r\n",
        b64(user)
    );
    s.write_all(req.as_bytes()).unwrap();
    // Headers, then Content-Length bytes.
    let mut raw = Vec::new();
    let mut buf = [0u8; 16384];
    let (status, body) = loop {
        let n = match s.read(&mut buf) {
            Ok(n) => n,
            Err(e) => {
                if user.starts_with("alice:bench") {
                    eprintln!("good scrape: {e} after {} bytes", raw.len());
                }
                0
            }
        };
        raw.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&raw).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let status = head
                .split(' ')
                .nth(1)
                .and_then(|c| c.parse().ok())
                .unwrap_or(0);
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("Content-Length: "))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            if body.len() >= len {
                break (status, body.to_string());
            }
        }
        if n == 0 {
            break (0, String::new());
        }
    };
    (s, status, body)
}

fn series(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(f64::NAN)
}

fn rss(pid: u32) -> (u64, u64) {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let get = |k: &str| {
        s.lines()
            .find_map(|l| l.strip_prefix(k))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    };
    (get("VmRSS:"), get("VmHWM:"))
}

/// utime + stime of a process, seconds.
fn cpu_secs(pid: u32) -> f64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest = s.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<f64> = rest
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    // Fields 14 and 15 of stat; `rest` starts at field 3 (state, not numeric).
    (f.get(10).copied().unwrap_or(0.0) + f.get(11).copied().unwrap_or(0.0)) / 100.0
}

fn main() {
    bcrypt_costs();
    let certs = Certs::make("bench-tls");
    let hash = Command::new("htpasswd")
        .args(["-nbB", "-C", "10", "alice", PASSWORD])
        .output()
        .unwrap();
    let hash = String::from_utf8(hash.stdout).unwrap();
    let web = certs.path("web.yml");
    std::fs::write(
        &web,
        format!("tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\nbasic_auth_users:\n  {}\n", hash.trim().replacen(':', ": ", 1)),
    )
    .unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let bin =
        std::env::var("KESTREL_TEST_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_kestrel").into());
    let out = certs.path("snap.json");
    let agent = Guard(
        Command::new(&bin)
            .args([
                "run",
                "--prometheus",
                &port.to_string(),
                "--prometheus-web-config",
                &web,
            ])
            .args(["--interval", "1s", "--output", &format!("file:{out}")])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create("/tmp/kestrel-prom-bench.log").unwrap())
            .spawn()
            .unwrap(),
    );
    let pid = agent.0.id();
    let cfg = client(&certs);
    let good = format!("alice:{PASSWORD}");
    let t = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "agent did not listen"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let (_, s, _) = open(port, &cfg, &good, false);
    assert_eq!(s, 200);
    let (rss_idle, _) = rss(pid);

    println!("\n## Scrapes over TLS 1.3 + Basic auth (verified pair cached), new connection each");
    let (mut fresh, mut cached) = (Vec::new(), Vec::new());
    for i in 0..40 {
        std::thread::sleep(Duration::from_millis(if i % 2 == 0 { 300 } else { 20 }));
        let t = Instant::now();
        let (_, s, _) = open(port, &cfg, &good, false);
        assert_eq!(s, 200);
        let ms = t.elapsed().as_secs_f64() * 1e3;
        if i % 2 == 0 {
            fresh.push(ms)
        } else {
            cached.push(ms)
        }
    }
    let (_, _, body) = open(port, &cfg, &good, false);
    let renders = series(&body, "kestrel_prometheus_renders_total");
    let spent = series(&body, "kestrel_prometheus_render_seconds_total");
    println!(
        "text older than 250 ms (rendered for the scrape): median {:.2} ms",
        median(&mut fresh)
    );
    println!(
        "text younger (served from the cached render):     median {:.2} ms",
        median(&mut cached)
    );
    println!("renders for scrapes: {renders}, mean render (counters read + text) {:.0} us, body {} bytes", spent / renders * 1e6, body.len());

    println!("\n## Memory of TLS sessions (VmRSS; agent at 1 s interval, idle host)");
    let held: Vec<_> = (0..8).map(|_| open(port, &cfg, &good, true).0).collect();
    std::thread::sleep(Duration::from_millis(300));
    let (rss8, _) = rss(pid);
    println!("before: {rss_idle} kB; with 8 kept-alive TLS sessions that each took a scrape: {rss8} kB ({:.1} kB per session)", (rss8 as f64 - rss_idle as f64) / 8.0);
    drop(held);

    println!("\n## A flood of bad passwords (4 threads, new TLS connection per request) for 8 s");
    let stop = Arc::new(AtomicBool::new(false));
    let codes = Arc::new([AtomicU64::new(0), AtomicU64::new(0)]);
    let floods: Vec<_> = (0..4)
        .map(|t| {
            let (stop, codes, cfg) = (Arc::clone(&stop), Arc::clone(&codes), Arc::clone(&cfg));
            std::thread::spawn(move || {
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    i += 1;
                    let (_, s, _) = open(port, &cfg, &format!("alice:bad-{t}-{i}"), false);
                    codes[usize::from(s == 429)].fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    let t0 = Instant::now();
    let cpu0 = cpu_secs(pid);
    let mut lat = Vec::new();
    let (mut hwm, mut failed) = (0, 0);
    while t0.elapsed() < Duration::from_secs(8) {
        let t = Instant::now();
        let (_, s, _) = open(port, &cfg, &good, false);
        if s != 200 {
            failed += 1;
        }
        lat.push(t.elapsed().as_secs_f64() * 1e3);
        hwm = hwm.max(rss(pid).0);
        std::thread::sleep(Duration::from_millis(100));
    }
    stop.store(true, Ordering::Relaxed);
    let cpu = (cpu_secs(pid) - cpu0) / t0.elapsed().as_secs_f64();
    floods.into_iter().for_each(|h| h.join().unwrap());
    let (_, _, after) = open(port, &cfg, &good, false);
    let snaps = std::fs::read_to_string(&out).unwrap_or_default();
    let times: Vec<u64> = snaps
        .lines()
        .filter_map(|l| {
            l.split("\"evt.time\":")
                .nth(1)?
                .split([',', '}'])
                .next()?
                .parse()
                .ok()
        })
        .collect();
    let recent: Vec<f64> = times
        .windows(2)
        .rev()
        .take(8)
        .map(|w| (w[1] - w[0]) as f64 / 1e6)
        .collect();
    let (_, peak) = rss(pid);
    println!(
        "good scrapes failed: {failed} of {}; 401: {}, 429: {}; bcrypt checks: {}; good scrape latency median {:.2} ms, p95 {:.2} ms, max {:.2} ms",
        lat.len(),
        codes[0].load(Ordering::Relaxed),
        codes[1].load(Ordering::Relaxed),
        series(&after, "kestrel_prometheus_bcrypt_checks_total"),
        median(&mut lat.clone()),
        pct(&mut lat.clone(), 0.95),
        pct(&mut lat, 1.0),
    );
    println!("snapshot gaps during the flood (ms, 1000 expected): {recent:.0?}");
    println!("RSS during the flood: max sampled {hwm} kB, VmHWM {peak} kB");
    println!(
        "agent CPU during the flood (loop: TLS handshakes; worker: bcrypt): {:.0} % of one core",
        cpu * 100.0
    );
}
