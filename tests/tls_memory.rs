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

unsafe impl GlobalAlloc for Live {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        grew(l.size() as isize);
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size() as isize, Relaxed);
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        grew(n as isize - l.size() as isize);
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static A: Live = Live;

fn live() -> isize {
    LIVE.load(Relaxed)
}

#[test]
#[ignore = "needs mosquitto and openssl (scripts/test.sh installs them)"]
fn heap_of_one_tls_connection_and_one_mqtts_output() {
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
        matches!(c.poll(kestrel::log::now_ns()), Event::Up)
    });
    assert!(ok.is_some(), "TLS connection to mosquitto");
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
