//! The exporter under hostile clients while the probe runs a workload: 200
//! idle connections, a client sending one byte a second, a 1 MB header,
//! garbage and a request flood, all at once. Snapshots must keep coming at
//! the interval, the ring must keep draining without drops, memory must stay
//! within the goal, and a well-behaved scraper must still be answered.
//! Root is needed: #[ignore]d, run by scripts/test.sh.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::{sleep, spawn};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

mod common;
use common::prom::{free_port, http_get, rss_kb, series, spawn_exporter, wait_scrape, Workload};
use common::{field, probe_lock, snapshots, tmp};

const HOSTILE: Duration = Duration::from_secs(8);

fn connect(port: u16) -> Option<TcpStream> {
    let s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(3))).ok()?;
    Some(s)
}

/// Sends `req`, returns the status of whatever comes back (0: none).
fn send(port: u16, req: &[u8]) -> u16 {
    let Some(mut s) = connect(port) else { return 0 };
    let _ = s.write_all(req);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out)
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

#[test]
#[cfg_attr(not(kestrel_ci), ignore = "needs root: loads the probe")]
fn hostile_clients_do_not_delay_snapshots_or_draining() {
    let _g = probe_lock();
    let out = tmp("hostile.json");
    let port = free_port();
    // Only fchmod is traced: every ring record is this workload's, so a drop
    // is the agent failing to drain, not another session's burst.
    let wl = Workload::fchmod(tmp("hostile-wl"), 20_000);
    let agent = spawn_exporter(
        port,
        &[
            "--interval",
            "1s",
            "--syscalls",
            "fchmod",
            "--output",
            &format!("file:{out}"),
        ],
    );
    wait_scrape(port, Duration::from_secs(20));
    sleep(Duration::from_secs(2));
    let (rss_before, _) = rss_kb(agent.pid());
    let before = snapshots(&out).last().cloned().unwrap();
    let wall0 = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let t0 = Instant::now();
    let end = move || t0.elapsed() >= HOSTILE;

    let idle = spawn(move || {
        let held: Vec<TcpStream> = (0..200).filter_map(|_| connect(port)).collect();
        let n = held.len();
        while !end() {
            sleep(Duration::from_millis(50));
        }
        n
    });
    // One byte a second: cut by the server long before its request completes.
    let trickle = spawn(move || {
        let mut s = connect(port)?;
        s.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
        let started = Instant::now();
        for &b in b"GET /metrics HTTP/1.1\r\nHost: slow\r\n\r\n".iter() {
            if s.write_all(&[b]).is_err() {
                return Some(started.elapsed());
            }
            let mut buf = [0u8; 512];
            match s.read(&mut buf) {
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                // EOF, a reset, or an answer to half a request: cut either way.
                _ => return Some(started.elapsed()),
            }
            if end() {
                return None;
            }
        }
        None
    });
    let big = spawn(move || {
        let mut req = b"GET /metrics HTTP/1.1\r\nHost: big\r\nX-Big: ".to_vec();
        req.resize(1 << 20, b'a');
        send(port, &req)
    });
    let garbage = spawn(move || {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        (0..20)
            .map(|_| {
                let junk: Vec<u8> = (0..300)
                    .map(|_| {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        x as u8
                    })
                    .collect();
                send(port, &junk)
            })
            .collect::<Vec<u16>>()
    });
    let flooded = Arc::new(AtomicU64::new(0));
    let floods: Vec<_> = (0..2)
        .map(|_| {
            let n = Arc::clone(&flooded);
            spawn(move || {
                while !end() {
                    if send(port, b"GET /metrics HTTP/1.0\r\n\r\n") == 200 {
                        n.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    let sampling = Arc::new(AtomicBool::new(true));
    let sampler = {
        let (pid, on) = (agent.pid(), Arc::clone(&sampling));
        spawn(move || {
            let mut max = 0;
            while on.load(Ordering::Relaxed) {
                max = max.max(rss_kb(pid).0);
                sleep(Duration::from_millis(100));
            }
            max
        })
    };
    // The well-behaved scraper: every 500 ms, one retry allowed (a real
    // Prometheus would just miss that one scrape).
    let mut good = Vec::new();
    while !end() {
        let r = http_get(port, "/metrics").or_else(|| http_get(port, "/metrics"));
        good.push(r.is_some_and(|(s, b)| {
            s == 200 && series(&b, "falcosecurity_scap_n_evts_total").is_some()
        }));
        sleep(Duration::from_millis(500));
    }
    let held = idle.join().unwrap();
    let cut = trickle.join().unwrap();
    let big = big.join().unwrap();
    let garbage = garbage.join().unwrap();
    floods.into_iter().for_each(|h| h.join().unwrap());
    let after = wait_scrape(port, Duration::from_secs(5));
    sleep(Duration::from_millis(1500));
    sampling.store(false, Ordering::Relaxed);
    let rss_max = sampler.join().unwrap();
    let (_, hwm) = rss_kb(agent.pid());
    assert!(agent.term().success());
    wl.stop();

    let snaps = snapshots(&out);
    let during: Vec<&serde_json::Value> = snaps
        .iter()
        .filter(|s| field(s, "evt.time") >= wall0)
        .collect();
    let times: Vec<u64> = during.iter().map(|s| field(s, "evt.time")).collect();
    let gaps: Vec<u64> = times
        .windows(2)
        .map(|w| (w[1] - w[0]) / 1_000_000)
        .collect();
    let last = snaps.last().unwrap();
    eprintln!(
        "held {held} idle connections; trickler cut after {cut:?}; 1 MB header -> {big}; \
         garbage -> {garbage:?}; flood got {} x 200; good scrapes {good:?}; snapshot gaps (ms) {gaps:?}; \
         RSS before {rss_before} kB, max {rss_max} kB, HWM {hwm} kB; drops {} -> {}",
        flooded.load(Ordering::Relaxed),
        field(&before, "scap.n_drops"),
        field(last, "scap.n_drops"),
    );
    assert!(held >= 150, "idle connections were really held ({held})");
    assert!(
        flooded.load(Ordering::Relaxed) > 100,
        "the flood was served"
    );
    assert!(
        cut.is_some_and(|d| d < HOSTILE),
        "the one-byte-a-second client was cut: {cut:?}"
    );
    assert_eq!(big, 413, "1 MB header");
    assert!(
        garbage.iter().all(|&s| s == 400 || s == 0),
        "garbage: {garbage:?}"
    );
    assert!(
        garbage.iter().filter(|&&s| s == 400).count() >= 10,
        "garbage: {garbage:?}"
    );
    assert!(
        !good.is_empty() && good.iter().all(|&ok| ok),
        "well-behaved scrapes: {good:?}"
    );
    assert!(series(&after, "falcosecurity_scap_n_evts_total").is_some());
    // Snapshots kept their 1 s cadence: liveness, not a latency figure.
    assert!(times.len() >= 7, "{} snapshots in {HOSTILE:?}", times.len());
    assert!(gaps.iter().all(|&g| g < 2500), "snapshot gaps {gaps:?} ms");
    let evts: Vec<u64> = during.iter().map(|s| field(s, "falco.num_evts")).collect();
    assert!(
        evts.windows(2).all(|w| w[1] > w[0]),
        "the ring kept draining: {evts:?}"
    );
    assert_eq!(
        field(last, "scap.n_drops"),
        field(&before, "scap.n_drops"),
        "no drops under attack"
    );
    assert_eq!(
        field(last, "scap.n_evts"),
        field(last, "falco.num_evts") + field(last, "scap.n_drops")
    );
    if std::env::var_os("KESTREL_TEST_BIN").is_some() {
        // VmRSS is sampled, VmHWM synced lazily: take the larger as the peak.
        let peak = hwm.max(rss_max);
        // The shipped agent runs the built-in rules and links TLS: the 5 MB
        // goal of issues 18 and 19.
        assert!(peak <= 5000, "peak RSS {peak} kB (5 MB goal)");
    } else {
        // A debug glibc build is bigger than the shipped one; hold it to its own growth.
        assert!(
            rss_max <= rss_before + 1024,
            "RSS grew {rss_before} -> {rss_max} kB"
        );
    }
}
