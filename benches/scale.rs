//! How cost grows with the table sizes (issue 22): `cargo bench --bench scale`.
//! For each capacity (KESTREL_BENCH_TABLE_SIZE=n for one): resident memory
//! of a fresh State and of a full one (one process a size), ns per thread and fd lookup in the
//! full tables, and the replay's events/s through them. Not root.

mod replay_core;

use std::hint::black_box;
use std::time::Instant;

use kestrel::capture::record::{decode, synth};
use kestrel::state::State;

fn rss_kb() -> u64 {
    let s = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = s.split(' ').nth(1).unwrap().parse().unwrap();
    pages * 4
}

fn apply(st: &mut State, r: &[u8]) {
    if let Ok(rec) = decode(r) {
        st.apply(&rec);
    }
}

/// Spread ids far from the replay stream's (5000..5256).
fn tid(i: usize) -> u32 {
    1_000_000 + i as u32 * 7
}

fn row(n: usize) {
    let r0 = rss_kb();
    let mut st = State::new(n, n, 1, false);
    let fresh = rss_kb().saturating_sub(r0);
    // Full but for 512 slots a table (the replay runs one process at a time).
    let threads = n - 512;
    for i in 0..threads {
        let t = tid(i);
        apply(&mut st, &synth::clone(t, t, 0, true, false));
    }
    for i in 0..(n - 512) / 16 {
        let p = tid(i);
        for fd in 3..19 {
            apply(&mut st, &synth::open(p, p, fd, 0, "/var/lib/app/data/f.db"));
        }
    }
    let full = rss_kb().saturating_sub(r0);
    assert_eq!(st.n_threads(), threads);

    // Lookups of present keys in a scattered order.
    let k = 1 << 20;
    let mut x = 0x9E37_79B9u64;
    let mut pick = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x as usize
    };
    let keys: Vec<usize> = (0..k).map(|_| pick()).collect();
    let t = Instant::now();
    let mut hit = 0usize;
    for &r in &keys {
        hit += st.thread(tid(r % threads)).is_some() as usize;
    }
    let thr_ns = t.elapsed().as_nanos() as f64 / k as f64;
    let procs = st.n_fds() / 16;
    let t = Instant::now();
    for &r in &keys {
        hit += st.fd(tid(r % procs), 3 + (r >> 32) as i64 % 16).is_some() as usize;
    }
    let fd_ns = t.elapsed().as_nanos() as f64 / k as f64;
    assert_eq!(black_box(hit), 2 * k);

    let (best, _) = replay_core::best_of_state(3, 100, st);
    println!(
        "| {n} | {thr_ns:.1} | {fd_ns:.1} | {:.2} | {fresh} kB | {full} kB |",
        best / 1e6
    );
}

fn main() {
    let sizes: Vec<usize> = match std::env::var("KESTREL_BENCH_TABLE_SIZE") {
        Ok(v) => vec![v.parse().expect("KESTREL_BENCH_TABLE_SIZE")],
        Err(_) => vec![4096, 16384, 65536, 262144],
    };
    if std::env::var_os("KESTREL_BENCH_ROW_ONLY").is_some() {
        return row(sizes[0]);
    }
    println!(
        "bytes/thread entry {}, bytes/fd entry {}",
        State::bytes_per_thread(),
        State::bytes_per_fd()
    );
    println!("| entries (threads = fds) | thread lookup ns | fd lookup ns | replay M ev/s | resident at start | resident full |");
    println!("|---|---|---|---|---|---|");
    // One process a size: freed tables would be reused resident (glibc
    // raises its mmap threshold after a large free).
    for n in sizes {
        let ok = std::process::Command::new(std::env::current_exe().unwrap())
            .env("KESTREL_BENCH_TABLE_SIZE", n.to_string())
            .env("KESTREL_BENCH_ROW_ONLY", "1")
            .status()
            .unwrap()
            .success();
        assert!(ok, "row {n}");
    }
}
