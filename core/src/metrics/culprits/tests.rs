use super::*;

fn cfg(k: usize, n: usize) -> CulpritConfig {
    CulpritConfig {
        enabled: true,
        top_syscalls: k,
        top_procs: n,
        capacity: 8,
        sample_period: CALLS_SAMPLE_PERIOD,
    }
}

fn no_drops(_: &mut dyn FnMut(u32, u64)) {}

#[test]
fn top_syscalls_are_interval_deltas_and_other_closes_the_sum() {
    let mut c = Culprits::new(cfg(2, 2));
    let mut act = Activity::with_capacity(4);
    c.counts_mut()[0][3] = 100;
    c.counts_mut()[0][5] = 50;
    c.counts_mut()[0][7] = 10;
    c.counts_mut()[1][3] = 70; // the same number under the 32-bit ABI is another syscall
    c.update(4, no_drops, 0, &mut act);
    let got: Vec<(bool, u16, u64)> = c
        .syscalls
        .iter()
        .map(|s| (s.compat, s.nr, s.count))
        .collect();
    assert_eq!(got, [(false, 3, 100), (true, 3, 70)]);
    assert_eq!(
        c.syscalls_other,
        50 + 10 + 4,
        "the rest, unnumbered exits included"
    );

    // Next interval: cumulative counts grow; only the growth counts.
    c.counts_mut()[0][3] = 101;
    c.counts_mut()[0][5] = 150;
    c.counts_mut()[0][7] = 10;
    c.counts_mut()[1][3] = 70;
    c.update(4, no_drops, 0, &mut act);
    let got: Vec<(u16, u64)> = c.syscalls.iter().map(|s| (s.nr, s.count)).collect();
    assert_eq!(got, [(5, 100), (3, 1)]);
    assert_eq!(c.syscalls_other, 0);
}

#[test]
fn processes_rank_by_events_and_by_drops_with_other() {
    let mut c = Culprits::new(cfg(1, 2));
    let mut act = Activity::with_capacity(8);
    let comm = |s: &str| {
        let mut b = [0u8; 16];
        b[..s.len()].copy_from_slice(s.as_bytes());
        b
    };
    for (pid, n, name) in [(10, 5, "a"), (20, 9, "b"), (30, 1, "c"), (40, 3, "d")] {
        for _ in 0..n {
            act.count(pid, || comm(name));
        }
    }
    let kernel = |f: &mut dyn FnMut(u32, u64)| {
        f(30, 7);
        f(50, 2);
    };
    c.update(0, kernel, 12, &mut act);
    let evts: Vec<(u32, &str, u64, u64)> = c
        .by_calls
        .iter()
        .map(|p| (p.pid, p.comm(), p.evts, p.drops))
        .collect();
    assert_eq!(evts, [(20, "b", 9, 0), (10, "a", 5, 0)]);
    assert_eq!(c.evts_other, 1 + 3);
    let drops: Vec<(u32, u64, u64)> = c
        .by_drops
        .iter()
        .map(|p| (p.pid, p.evts, p.drops))
        .collect();
    assert_eq!(drops, [(30, 1, 7), (50, 0, 2)]);
    assert_eq!(
        c.drops_other,
        12 - 9,
        "drops the kernel table could not name"
    );
    assert_eq!(act.total, 0, "the activity table starts a new interval");

    // Next interval: drops are deltas of the kernel's cumulative counts; a
    // pid whose count went down was evicted and re-added: all of it is new.
    let kernel = |f: &mut dyn FnMut(u32, u64)| {
        f(30, 10);
        f(50, 1);
    };
    c.update(0, kernel, 4, &mut act);
    let drops: Vec<(u32, u64)> = c.by_drops.iter().map(|p| (p.pid, p.drops)).collect();
    assert_eq!(drops, [(30, 3), (50, 1)]);
    assert_eq!(c.drops_other, 0);
    assert!(c.by_calls.is_empty());
}

#[test]
fn lists_serialize_bounded_with_an_other_entry() {
    let mut c = Culprits::new(cfg(2, 2));
    let mut act = Activity::with_capacity(4);
    let (openat, close) = if cfg!(target_arch = "x86_64") {
        (257, 3)
    } else {
        (56, 57)
    };
    c.counts_mut()[0][openat] = 9;
    c.counts_mut()[0][close] = 8;
    c.counts_mut()[0][500] = 1;
    act.count(7, || *b"worker\0\0\0\0\0\0\0\0\0\0");
    c.update(0, no_drops, 0, &mut act);
    let mut buf = [0u8; 512];
    let n = serde_json_core::to_slice(&c.top_syscalls(), &mut buf).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&buf[..n]).unwrap();
    assert_eq!(
        v,
        serde_json::json!([
            {"name": "openat", "nr": openat, "abi": "64", "count": 9},
            {"name": "close", "nr": close, "abi": "64", "count": 8},
            {"name": "other", "count": 1}
        ])
    );
    let n = serde_json_core::to_slice(&c.top_procs(false), &mut buf).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&buf[..n]).unwrap();
    assert_eq!(
        v,
        serde_json::json!([
            {"pid": 7, "comm": "worker", "evts": 1, "drops": 0,
             "syscalls": 0, "syscalls_per_sec": 0},
            {"pid": 0, "comm": "other", "evts": 0, "drops": 0,
             "syscalls": 18, "syscalls_per_sec": 0}
        ])
    );
}

/// The kernel's LRU table evicts pids; the last snapshot's view keeps only
/// what the table held then, so it never fills with dead pids and a
/// long-lived one is never charged its whole history again.
#[test]
fn evicted_pids_do_not_make_cumulative_counts_look_new() {
    let mut c = Culprits::new(CulpritConfig {
        capacity: 2,
        ..cfg(1, 4)
    });
    let mut act = Activity::with_capacity(4);
    let mut per_interval = Vec::new();
    // Pid 1 lives on; a new short-lived pid per interval evicts the last one.
    for (long, short_pid, short, total) in [
        (100, 10, 5, 105),
        (150, 11, 3, 53),
        (160, 12, 2, 12),
        (170, 13, 1, 11),
    ] {
        let kernel = move |f: &mut dyn FnMut(u32, u64)| {
            f(1, long);
            f(short_pid, short);
        };
        c.update(0, kernel, total, &mut act);
        let listed: Vec<(u32, u64)> = c.by_drops.iter().map(|p| (p.pid, p.drops)).collect();
        per_interval.push((listed, c.drops_other));
    }
    assert_eq!(
        per_interval,
        [
            (vec![(1, 100), (10, 5)], 0),
            (vec![(1, 50), (11, 3)], 0),
            (vec![(1, 10), (12, 2)], 0),
            (vec![(1, 10), (13, 1)], 0),
        ]
    );
}

/// The table is read after the drop total: it can be ahead of it, and the
/// list then claims at most the interval's drops.
#[test]
fn listed_drops_never_exceed_the_intervals() {
    let mut c = Culprits::new(cfg(1, 4));
    let mut act = Activity::with_capacity(4);
    c.update(
        0,
        |f| {
            f(1, 70);
            f(2, 40);
        },
        100,
        &mut act,
    );
    let listed: Vec<(u32, u64)> = c.by_drops.iter().map(|p| (p.pid, p.drops)).collect();
    assert_eq!(listed, [(1, 70), (2, 30)]);
    assert_eq!(c.drops_other, 0);
    c.update(
        0,
        |f| {
            f(1, 71);
            f(2, 40);
        },
        10,
        &mut act,
    );
    let listed: Vec<(u32, u64)> = c.by_drops.iter().map(|p| (p.pid, p.drops)).collect();
    assert_eq!((listed, c.drops_other), (vec![(1, 1)], 9));
}

#[test]
fn a_syscall_once_exported_stays_with_its_cumulative_count() {
    // A burst of getpid (nr 39) tops one interval, then stops: its counter
    // series must not vanish (rate() and series churn), and counts stay
    // cumulative per ABI and number.
    let mut c = Culprits::new(cfg(1, 1));
    let mut act = Activity::with_capacity(4);
    c.counts_mut()[0][39] = 1_000_000;
    c.counts_mut()[0][0] = 10;
    c.update(0, no_drops, 0, &mut act);
    let exported = |c: &Culprits| -> Vec<(bool, u16, u64)> {
        c.exported_syscalls()
            .map(|s| (s.compat, s.nr, s.count))
            .collect()
    };
    assert_eq!(exported(&c), [(false, 39, 1_000_000)]);
    c.counts_mut()[0][39] = 1_000_000;
    c.counts_mut()[0][0] = 500;
    c.counts_mut()[1][20] = 90;
    c.update(0, no_drops, 0, &mut act);
    assert_eq!(c.syscalls[0].nr, 0, "read tops this interval");
    assert_eq!(exported(&c), [(false, 0, 500), (false, 39, 1_000_000)]);
    c.counts_mut()[0][39] = 1_000_000;
    c.counts_mut()[0][0] = 500;
    c.counts_mut()[1][20] = 900;
    c.update(0, no_drops, 0, &mut act);
    assert_eq!(
        exported(&c),
        [(false, 0, 500), (false, 39, 1_000_000), (true, 20, 900)],
        "by ABI then number, none lost"
    );
}

/// Sampled syscalls rank the processes: one that makes only untraced calls
/// tops the list over one with traced events; estimates are samples x the
/// period, rates over the interval, and `other` closes the exact total.
#[test]
fn processes_rank_by_sampled_syscalls_untraced_included() {
    let p = u64::from(CALLS_SAMPLE_PERIOD);
    let mut c = Culprits::new(cfg(1, 2));
    let mut act = Activity::with_capacity(8);
    for _ in 0..40 {
        act.count(10, || *b"traced\0\0\0\0\0\0\0\0\0\0");
    }
    act.count(30, || *b"quiet\0\0\0\0\0\0\0\0\0\0\0");
    let storm = *b"getpid-storm\0\0\0\0";
    let other = *b"x\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0";
    c.counts_mut()[0][39] = 100 * p;
    c.read_calls(c.last_ns, |f| {
        f(20, 0, &storm);
        f(10, 0, &other);
    });
    c.update(0, no_drops, 0, &mut act);
    c.counts_mut()[0][39] = 100 * p + 2_000 * p;
    c.read_calls(c.last_ns + 2_000_000_000, |f| {
        f(20, 1_500, &storm);
        f(10, 3, &other);
    });
    for _ in 0..40 {
        act.count(10, || *b"traced\0\0\0\0\0\0\0\0\0\0");
    }
    c.update(0, no_drops, 0, &mut act);
    let got: Vec<(u32, &str, u64, u64)> = c
        .by_calls
        .iter()
        .map(|p| (p.pid, p.comm(), p.syscalls, p.evts))
        .collect();
    // pid 10's traced comm wins over the kernel's; its 40 events rank it
    // at least that high although its estimate says 3 x p.
    assert_eq!(
        got,
        [
            (20, "getpid-storm", 1_500 * p, 0),
            (10, "traced", 3 * p, 40)
        ]
    );
    assert_eq!(c.calls_other, 2_000 * p - 1_503 * p);
    let mut buf = [0u8; 512];
    let n = serde_json_core::to_slice(&c.top_procs(false), &mut buf).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&buf[..n]).unwrap();
    assert_eq!(v[0]["syscalls_per_sec"], 750 * p, "over the 2 s interval");
    assert_eq!(v[2]["syscalls"], 497 * p);
    let exported: Vec<(u32, u64)> = c.exported_procs().map(|(pid, _, n)| (pid, n)).collect();
    assert_eq!(exported.len(), 2);
    assert!(exported.contains(&(20, 1_500 * p)));

    // The storm ends: its series leaves once it makes no sampled call.
    c.read_calls(c.last_ns + 1_000_000_000, |f| {
        f(20, 1_500, &storm);
        f(10, 4, &other);
    });
    c.update(0, no_drops, 0, &mut act);
    let exported: Vec<u32> = c.exported_procs().map(|(pid, _, _)| pid).collect();
    assert_eq!(exported, [10]);
}
