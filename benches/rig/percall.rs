//! The rig's per-call tables beside untraced.rs: the first step alternatives
//! (KESTREL_BENCH_ONLY=steps: issue 22's ways of learning the syscall number,
//! and the helpers a traced call makes, each beside the tp_btf no-op) and the
//! traced call (=traced: tp_btf, raw_tp and tp_btf through the perf buffer).

use std::mem::MaybeUninit;
use std::os::fd::{FromRawFd, OwnedFd};

use kestrel::capture::floor::{Floor, STEPS};
use kestrel::capture::ProgStats;

use super::untraced::agent_prog;
use super::{median, traced_only, untraced_only, Agent, BIN};

/// getppid `calls` times per run, `reps` runs: each alternative's ns/call
/// minus the no-op's, and its ratio to it.
pub fn steps(reps: usize, calls: usize) {
    println!(
        "\n## first step alternatives and a traced call's helpers (getppid), medians of {reps} runs of {calls} calls"
    );
    println!("| program | ns/call | minus floor | ratio to floor (runs) |");
    println!("|---|---|---|---|");
    // SAFETY: plain syscall wrapper; the fd keeps stats on until dropped.
    let stats_fd = unsafe {
        libbpf_rs::libbpf_sys::bpf_enable_stats(libbpf_rs::libbpf_sys::BPF_STATS_RUN_TIME)
    };
    assert!(stats_fd >= 0, "BPF_ENABLE_STATS failed");
    // SAFETY: fresh fd owned by nobody else.
    let _stats = unsafe { OwnedFd::from_raw_fd(stats_fd) };
    let mut storage = MaybeUninit::uninit();
    let floor = Floor::attach_steps(&mut storage).expect("attach the floor");
    let (floor_ns, got) = step_costs(&floor, reps, calls);
    println!(
        "| floor_sys_exit (tp_btf no-op) | {:.1} | 0 | 1 |",
        median(floor_ns.clone())
    );
    let fl = median(floor_ns);
    for (name, (ns, r)) in STEPS.iter().zip(got) {
        let m = median(ns);
        println!(
            "| {name} | {m:.1} | {:.1} | {:.3} ({:.2}-{:.2}) |",
            m - fl,
            median(r.clone()),
            r.iter().cloned().fold(f64::INFINITY, f64::min),
            r.iter().cloned().fold(0.0, f64::max)
        );
    }
    drop(_stats);
    drop(floor);
    attach_wall(reps, calls);
}

/// Per getppid, each run: the no-op's ns, and for each program in `STEPS`
/// its ns and its ratio to the no-op (0 for one not attached). BPF stats on.
type StepRuns = (Vec<f64>, Vec<(Vec<f64>, Vec<f64>)>);
fn step_costs(floor: &Floor, reps: usize, calls: usize) -> StepRuns {
    let per_call = |a: &ProgStats, b: &ProgStats| {
        (b.run_time_ns - a.run_time_ns) as f64 / (b.run_cnt - a.run_cnt).max(1) as f64
    };
    let mut floor_ns = Vec::new();
    let mut got = vec![(Vec::new(), Vec::new()); STEPS.len()];
    for _ in 0..reps {
        let (f0, s0) = (floor.stats(), floor.steps());
        untraced_only(calls);
        let (f1, s1) = (floor.stats(), floor.steps());
        let fl = per_call(&f0, &f1);
        floor_ns.push(fl);
        for (i, (a, b)) in s0.iter().zip(&s1).enumerate() {
            let ns = per_call(a, b);
            got[i].0.push(ns);
            got[i].1.push(ns / fl);
        }
    }
    (floor_ns, got)
}

/// What this machine charges today for the pieces every exact traced call
/// pays, each alone beside the no-op on getppid: the price of a helper call
/// and of the open's 64-byte user copy moves between days of one host
/// (BENCHMARKS.md, "The long side-by-side run"), so the traced table prints
/// them beside it. x86_64 only (the floor's helper programs).
fn helper_prices(reps: usize, calls: usize) {
    let mut storage = MaybeUninit::uninit();
    let floor = match Floor::attach_some(
        &mut storage,
        &["floor_sys_exit", "floor_ids", "floor_user64"],
    ) {
        Ok(f) => f,
        Err(e) => return println!("this machine's prices: not measured ({e})"),
    };
    let (floor_ns, got) = step_costs(&floor, reps, calls);
    let at = |name: &str| {
        STEPS
            .iter()
            .position(|s| *s == name)
            .map(|i| median(got[i].0.clone()))
    };
    let (Some(ids @ 0.1..), Some(copy @ 0.1..)) = (at("floor_ids"), at("floor_user64")) else {
        return println!(
            "this machine's prices: not measured (the floor's helper programs are x86_64's)"
        );
    };
    let fl = median(floor_ns);
    println!(
        "this machine's prices now, each alone on getppid ({reps} runs): the no-op {fl:.1} ns, one helper call (bpf_get_current_pid_tgid) +{:.1}, the 64-byte user copy +{:.1}; the no-op and the open's copy alone come to {:.1} ns a traced call",
        ids - fl,
        copy - fl,
        fl + (copy - fl) / 2.0
    );
}

/// Wall-clock ns per getppid with nothing attached and with each no-op
/// alone (the BPF stats of a classic tracepoint leave out the perf record
/// built before its program runs), interleaved, stats off.
pub fn attach_wall(reps: usize, calls: usize) {
    let setups = [
        "(none)",
        "floor_sys_exit",
        "floor_raw_noop",
        "floor_tp_noop",
    ];
    let mut got = vec![Vec::new(); setups.len()];
    for _ in 0..reps {
        for (i, name) in setups.iter().enumerate() {
            let mut storage = MaybeUninit::uninit();
            let _floor =
                (i > 0).then(|| Floor::attach_some(&mut storage, &[name]).expect("attach"));
            let t = std::time::Instant::now();
            untraced_only(calls);
            got[i].push(t.elapsed().as_nanos() as f64 / calls as f64);
        }
    }
    println!(
        "
## wall-clock ns per getppid, medians of {reps} interleaved runs (stats off)"
    );
    println!("| attached | ns/call | minus nothing |");
    println!("|---|---|---|");
    let none = median(got[0].clone());
    for (name, v) in setups.iter().zip(got) {
        let m = median(v);
        println!("| {name} | {m:.1} | {:.1} |", m - none);
    }
}

/// open/close `iters` pairs per run, `reps` runs, setups interleaved: the
/// agent's sys_exit ns/call, tp_btf and raw_tp (and an older build's with
/// KESTREL_BENCH_BASELINE), raw_tp over tp_btf in the same rep, and this
/// build's tp_btf with --event-buffer perf (the 5.4-5.7 path) over the ring.
pub fn traced(reps: usize, iters: usize, path: &std::ffi::CString) {
    println!("\n## traced call (open/close), medians of {reps} interleaved runs of {iters} pairs");
    println!("| build | tp_btf ns/call | raw_tp ns/call | raw_tp / tp_btf (runs) | tp_btf, perf buffer ns/call | perf / ring (runs) | stage senders, tp_btf ns/call |");
    println!("|---|---|---|---|---|---|---|");
    // SAFETY: plain syscall wrapper; the fd keeps stats on until dropped.
    let stats_fd = unsafe {
        libbpf_rs::libbpf_sys::bpf_enable_stats(libbpf_rs::libbpf_sys::BPF_STATS_RUN_TIME)
    };
    assert!(stats_fd >= 0, "BPF_ENABLE_STATS failed");
    // SAFETY: fresh fd owned by nobody else.
    let _stats = unsafe { OwnedFd::from_raw_fd(stats_fd) };
    let mut builds = vec![("this", BIN.to_string())];
    if let Ok(b) = std::env::var("KESTREL_BENCH_BASELINE") {
        builds.push(("baseline", b));
    }
    let mut got = vec![(Vec::new(), Vec::new(), Vec::new()); builds.len()];
    let mut senders = vec![Vec::new(); builds.len()];
    let mut perf = (Vec::new(), Vec::new());
    let setups: [(&str, &str, &[&str]); 3] = [
        ("tp_btf", "sys_exit", &[]),
        ("raw_tp", "raw_sys_exit", &[]),
        ("tp_btf", "sys_exit", &["--event-buffer", "perf"]),
    ];
    for _ in 0..reps {
        for (i, (_, bin)) in builds.iter().enumerate() {
            let mut ns = [0.0; 3];
            // The baseline build may predate --event-buffer.
            let n = if i == 0 { 3 } else { 2 };
            for (j, &(attach, prog, extra)) in setups.iter().take(n).enumerate() {
                let agent = Agent::start_with(bin, "default", true, attach, extra);
                let pid = agent.child.id();
                let a = agent_prog(pid, prog).expect("the agent's sys_exit");
                let sent0 = stage_senders_ns(pid);
                traced_only(iters, path);
                let b = agent_prog(pid, prog).expect("the agent's sys_exit");
                let sent = stage_senders_ns(pid) - sent0;
                agent.stop();
                let calls = (b.run_cnt - a.run_cnt).max(1) as f64;
                ns[j] = (b.run_time_ns - a.run_time_ns) as f64 / calls;
                if j == 0 {
                    senders[i].push(sent as f64 / calls);
                }
            }
            got[i].0.push(ns[0]);
            got[i].1.push(ns[1]);
            got[i].2.push(ns[1] / ns[0]);
            if i == 0 {
                perf.0.push(ns[2]);
                perf.1.push(ns[2] / ns[0]);
            }
        }
    }
    let range = |q: &[f64]| {
        format!(
            "{:.3} ({:.2}-{:.2})",
            median(q.to_vec()),
            q.iter().cloned().fold(f64::INFINITY, f64::min),
            q.iter().cloned().fold(0.0, f64::max)
        )
    };
    let got_tp: Vec<Vec<f64>> = got.iter().map(|g| g.0.clone()).collect();
    for (i, ((name, bin), (t, r, q))) in builds.iter().zip(got).enumerate() {
        let p = if i == 0 {
            format!("{:.1} | {}", median(perf.0.clone()), range(&perf.1))
        } else {
            "- | -".into()
        };
        println!(
            "| {name} ({bin}) | {:.1} | {:.1} | {} | {p} | {:.1} |",
            median(t),
            median(r),
            range(&q),
            median(senders[i].clone())
        );
    }
    if got_tp.len() > 1 {
        // Paired within a rep, so a drift between reps cancels.
        let q: Vec<f64> = got_tp[0]
            .iter()
            .zip(&got_tp[1])
            .map(|(t, b)| t / b)
            .collect();
        println!("this / baseline, tp_btf, per rep: {}", range(&q));
    }
    println!("(stage senders: the run time of sched_switch and hrtimer_expire, which send the CPUs' stages, per traced call; not in the tp_btf column)");
    helper_prices(reps, iters * 5);
}

/// Run time so far of the agent's programs that send staged records
/// (bpf/stage.h); 0 for a build without them.
fn stage_senders_ns(pid: u32) -> u64 {
    ["sched_switch", "hrtimer_expire"]
        .iter()
        .filter_map(|p| agent_prog(pid, p))
        .map(|s| s.run_time_ns)
        .sum()
}
