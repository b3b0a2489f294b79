//! Heap held by one TLS connection and by one whole MQTT/TLS output, against
//! a real mosquitto (TLS, client certificate): a global allocator counts
//! live bytes before and after. The figures go to BENCHMARKS.md:
//!   cargo test --release --test tls_memory -- --include-ignored --nocapture

mod common;
use common::peers::*;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering::Relaxed};
use std::time::Duration;

use kestrel::output::conn::{Conn, Endpoint, Event};
use kestrel::output::mqtt::{MqttSink, MqttSpec};
use kestrel::output::tls::{server_name, TlsOptions};
use kestrel::output::Sink;

struct Live;
static LIVE: AtomicIsize = AtomicIsize::new(0);
static PEAK: AtomicIsize = AtomicIsize::new(0);

fn grew(n: isize) {
    let now = LIVE.fetch_add(n, Relaxed) + n;
    PEAK.fetch_max(now, Relaxed);
}

// SAFETY: every call is passed on unchanged to System, which upholds the
// GlobalAlloc contract; counting touches only atomics.
unsafe impl GlobalAlloc for Live {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        grew(l.size() as isize);
        // SAFETY: the caller's contract, passed on.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size() as isize, Relaxed);
        // SAFETY: the caller's contract, passed on.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        grew(n as isize - l.size() as isize);
        // SAFETY: the caller's contract, passed on.
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static A: Live = Live;

/// The counts are process-wide: one test at a time.
static ONE: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn live() -> isize {
    LIVE.load(Relaxed)
}

#[test]
#[cfg_attr(
    not(kestrel_ci),
    ignore = "needs mosquitto and openssl (scripts/test.sh installs them)"
)]
fn heap_of_one_tls_connection_and_one_mqtts_output() {
    let _one = ONE.lock().unwrap_or_else(|e| e.into_inner());
    let d = TempDir::new("tls-memory");
    pki(&d.0);
    let port = free_tcp_port();
    let _broker = Mosquitto::start(&d.0, port);
    let opts = TlsOptions {
        ca: Some(d.path("ca.pem").into()),
        cert: Some(d.path("client.pem").into()),
        key: Some(d.path("client.key").into()),
        insecure: false,
    };
    let cfg = opts.client_config("test").unwrap();
    let before = live();
    PEAK.store(before, Relaxed);
    let mut c = Conn::new(Endpoint {
        host: "127.0.0.1".into(),
        port,
        tls: Some((cfg, server_name("localhost").unwrap())),
    });
    let ok = common::wait_until(Duration::from_secs(10), || {
        matches!(c.poll(kestrel::base::time::monotonic_ns()), Event::Up)
    });
    assert!(ok.is_some(), "TLS connection to mosquitto");
    assert_eq!(c.tls_version(), Some(rustls::ProtocolVersion::TLSv1_3));
    let conn = live() - before;
    let conn_peak = PEAK.load(Relaxed) - before;
    drop(c);

    let url = format!(
        "localhost:{port}/fleet?ca={0}/ca.pem&cert={0}/client.pem&key={0}/client.key",
        d.0
    );
    let spec = MqttSpec::parse(&url, true).unwrap();
    let before = live();
    PEAK.store(before, Relaxed);
    let mut sink = MqttSink::open(&spec, "gw").unwrap();
    let snap = vec![b'x'; 2500];
    for _ in 0..5 {
        let enc = sink.encode(&snap, "").unwrap().to_vec();
        sink.write(&enc, 0);
    }
    let ok = common::wait_until(Duration::from_secs(10), || {
        sink.tick();
        sink.delivered >= 5
    });
    assert!(ok.is_some(), "five messages acknowledged");
    let output = live() - before;
    let output_peak = PEAK.load(Relaxed) - before;
    eprintln!(
        "heap: one TLS 1.3 client connection (P-256 client certificate): {conn} B after the handshake, \
         {conn_peak} B peak during it; one mqtts output connected, 5 x 2.5 KB delivered (config, \
         store, buffers, connection): {output} B, {output_peak} B peak"
    );
    assert!(conn < 128 * 1024 && output < 256 * 1024);
}

#[test]
#[cfg_attr(not(kestrel_ci), ignore = "needs openssl")]
fn tls_1_2_server_is_reached_with_a_client_certificate() {
    let _one = ONE.lock().unwrap_or_else(|e| e.into_inner());
    let d = TempDir::new("tls-12");
    pki(&d.0);
    let port = free_tcp_port();
    // mosquitto's tls_version is a minimum: openssl's server is held to 1.2.
    let _server = common::Guard(
        std::process::Command::new("openssl")
            .args(["s_server", "-quiet", "-tls1_2", "-Verify", "1", "-accept"])
            .arg(port.to_string())
            .args([
                "-cert",
                &d.path("server.pem"),
                "-key",
                &d.path("server.key"),
            ])
            .args(["-CAfile", &d.path("ca.pem")])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let up = common::wait_until(Duration::from_secs(10), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    assert!(up.is_some(), "openssl s_server listens");
    let opts = TlsOptions {
        ca: Some(d.path("ca.pem").into()),
        cert: Some(d.path("client.pem").into()),
        key: Some(d.path("client.key").into()),
        insecure: false,
    };
    let mut c = Conn::new(Endpoint {
        host: "127.0.0.1".into(),
        port,
        tls: Some((
            opts.client_config("test").unwrap(),
            server_name("localhost").unwrap(),
        )),
    });
    let ok = common::wait_until(Duration::from_secs(10), || {
        matches!(c.poll(kestrel::base::time::monotonic_ns()), Event::Up)
    });
    assert!(ok.is_some(), "TLS 1.2 connection to mosquitto");
    assert_eq!(c.tls_version(), Some(rustls::ProtocolVersion::TLSv1_2));
}
