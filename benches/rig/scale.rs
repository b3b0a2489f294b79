//! The rig's growth rows (issue 22): the mix's slowdown alone
//! (KESTREL_BENCH_ONLY=mix, the goals row) and the agent at fixed event
//! rates (KESTREL_BENCH_ONLY=rates): CPU, drops and RSS.

use std::ffi::CString;
use std::time::Instant;

use super::interval::goal_line;
use super::{f, median, mix, paced, Agent, BIN};

/// VmRSS of a process in kB (0 when gone), by the agent's own parser.
fn rss_kb(pid: u32) -> u64 {
    let s = std::fs::read(format!("/proc/{pid}/status")).unwrap_or_default();
    kestrel::procfs::parse_status(&s).rss_kb.unwrap_or(0)
}

/// Extra rows from KESTREL_BENCH_MIX_ARGS: `;`-separated lists of agent
/// flags, each run in the same rounds as the fixed rows (A/B of a flag).
fn extra_setups() -> Vec<Vec<String>> {
    std::env::var("KESTREL_BENCH_MIX_ARGS")
        .unwrap_or_default()
        .split(';')
        .filter(|s| !s.trim().is_empty())
        .map(|s| s.split_whitespace().map(String::from).collect())
        .collect()
}

/// The mix alone and under the agent, interleaved; medians.
pub fn slowdown(reps: usize, iters: usize, path: &CString) {
    println!("\n## slowdown of the mix (BPF stats off), medians of {reps} interleaved runs");
    let extra = extra_setups();
    let mut extra_runs = vec![Vec::new(); extra.len()];
    let mut alone = Vec::new();
    let mut default = Vec::new();
    let mut no_culprits = Vec::new();
    let mut none = Vec::new();
    let mut perf = Vec::new();
    let mut unstaged = Vec::new();
    // KESTREL_BENCH_BASELINE: an older build's defaults and bare attach in the
    // same rounds, so a change's effect on the goal is read in one run.
    let baseline = std::env::var("KESTREL_BENCH_BASELINE").ok();
    let (mut base_default, mut base_none) = (Vec::new(), Vec::new());
    for _ in 0..reps {
        alone.push(mix(iters, path));
        let a = Agent::start("default", false);
        default.push(mix(iters, path));
        a.stop();
        let a = Agent::start_with(BIN, "default", false, "auto", &["--culprits", "false"]);
        no_culprits.push(mix(iters, path));
        a.stop();
        let a = Agent::start("none", false);
        none.push(mix(iters, path));
        a.stop();
        // The 5.4-5.7 path, forced: its cost beside the ring's (issue 21).
        let a = Agent::start_with(BIN, "default", false, "auto", &["--event-buffer", "perf"]);
        perf.push(mix(iters, path));
        a.stop();
        let a = Agent::start_with(BIN, "default", false, "auto", &["--stage-records", "false"]);
        unstaged.push(mix(iters, path));
        a.stop();
        if let Some(b) = &baseline {
            let a = Agent::start_bin(b, "default", false, "auto");
            base_default.push(mix(iters, path));
            a.stop();
            let a = Agent::start_bin(b, "none", false, "auto");
            base_none.push(mix(iters, path));
            a.stop();
        }
        for (args, runs) in extra.iter().zip(&mut extra_runs) {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let a = Agent::start_with(BIN, "default", false, "auto", &args);
            runs.push(mix(iters, path));
            a.stop();
        }
    }
    let goal = goal_line(
        "overhead with defaults / bare attach's",
        1.5,
        &alone,
        &default,
        &none,
    );
    let base_goal = baseline.as_ref().map(|_| {
        goal_line(
            "baseline: overhead with defaults / its bare attach's",
            1.5,
            &alone,
            &base_default,
            &base_none,
        )
    });
    let (ma, md, mn) = (median(alone), median(default), median(none));
    let (mc, mp, mu) = (median(no_culprits), median(perf), median(unstaged));
    println!("| setup | median s | ratio to alone |");
    println!("|---|---|---|");
    println!("| alone | {ma:.3} | 1.00 |");
    println!(
        "| kestrel, default set (culprit counters on) | {md:.3} | {:.2} |",
        md / ma
    );
    println!(
        "| kestrel, default set, --culprits false | {mc:.3} | {:.2} |",
        mc / ma
    );
    println!(
        "| kestrel, default set, --event-buffer perf | {mp:.3} | {:.2} |",
        mp / ma
    );
    println!(
        "| kestrel, default set, --stage-records false | {mu:.3} | {:.2} |",
        mu / ma
    );
    println!("| kestrel, nothing selected | {mn:.3} | {:.2} |", mn / ma);
    for (args, runs) in extra.iter().zip(extra_runs) {
        let m = median(runs);
        let over = (m - ma) / (mn - ma);
        println!(
            "| kestrel, default set, {} | {m:.3} | {:.2} | overhead / bare {over:.2} |",
            args.join(" "),
            m / ma
        );
    }
    if let Some(b) = &baseline {
        let (bd, bn) = (median(base_default), median(base_none));
        println!("| baseline ({b}), default set | {bd:.3} | {:.2} |", bd / ma);
        println!("| baseline, nothing selected | {bn:.3} | {:.2} |", bn / ma);
    }
    if let Some(line) = base_goal {
        println!("{line}");
    }
    println!("{goal}");
    println!(
        "overhead through perf buffers / through the ring: {:.2}",
        (mp - ma) / (md - ma)
    );
    println!(
        "overhead without staging / bare attach's: {:.2}",
        (mu - ma) / (mn - ma)
    );
}

/// Agent CPU (% of one core), drops and RSS at paced open/close rates.
pub fn rates(path: &CString) {
    println!("\n## agent at fixed event rates (5 s each, default set + rules)");
    println!("| events/s asked | made | agent CPU % of one core | drops | RSS start / end kB |");
    println!("|---|---|---|---|---|");
    for (rate, threads) in [(10_000u64, 1usize), (100_000, 1), (1_000_000, 2)] {
        let a = Agent::start("default", false);
        let pid = a.child.id();
        let r0 = rss_kb(pid);
        let c0 = a.cpu_ns();
        let t = Instant::now();
        let made = paced(rate, 5.0, path, threads);
        let secs = t.elapsed().as_secs_f64();
        let c1 = a.cpu_ns();
        let r1 = rss_kb(pid);
        let v = a.stop();
        println!(
            "| {rate} | {:.0} | {:.2} | {} | {r0} / {r1} |",
            made as f64 / secs,
            (c1 - c0) as f64 / 1e9 / secs * 100.0,
            f(&v, "scap.n_drops")
        );
    }
}
