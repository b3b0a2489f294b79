//! KESTREL_BENCH_ONLY=side (issue 22): the mix alone, under the bare attach (nothing
//! selected), under Kestrel's defaults (rules and culprit counters on) and under Falco's
//! capture floor, falcosecurity/libs' `scap-open --modern_bpf` (KESTREL_BENCH_SCAP_OPEN=path,
//! built by scripts/build-scap-open.sh), interleaved over the repetitions; medians, and
//! Kestrel's overhead as a ratio to the other two in the same run. Without
//! KESTREL_BENCH_SCAP_OPEN the scap-open row is left out (and said so).

use std::ffi::CString;
use std::fs::File;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use super::interval::goal_line;
use super::mix::mix;
use super::{median, tmp, Agent};

/// ns a process's threads have run on a CPU (schedstat, summed over /proc/PID/task).
fn cpu_ns(pid: u32) -> u64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

/// scap-open, started and waited for until it says its capture is live.
struct ScapOpen {
    child: Child,
    out: String,
}

impl ScapOpen {
    fn start(bin: &str) -> ScapOpen {
        let out = tmp("scap-open");
        let file = File::create(&out).expect("scap-open output file");
        // stdout to a file is block-buffered: line buffering makes the start line visible.
        let child = super::place(&mut Command::new("stdbuf"))
            .args(["-oL", bin, "--modern_bpf"])
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .expect("start scap-open (stdbuf from coreutils)");
        let mut s = ScapOpen { child, out };
        let t = Instant::now();
        loop {
            let text = std::fs::read_to_string(&s.out).unwrap_or_default();
            if text.contains("Live capture in progress") {
                break;
            }
            if let Ok(Some(st)) = s.child.try_wait() {
                panic!("scap-open exited ({st}) before its capture started:\n{text}");
            }
            assert!(
                t.elapsed() < Duration::from_secs(60),
                "scap-open did not start:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        s
    }

    /// SIGINT (scap-open prints its stats and exits); returns its kernel-side event count.
    fn stop(mut self) -> u64 {
        // SAFETY: kill(2) on our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        self.child.wait().unwrap();
        let text = std::fs::read_to_string(&self.out).unwrap_or_default();
        let _ = std::fs::remove_file(&self.out);
        text.lines()
            .find_map(|l| l.strip_prefix("Seen by driver (kernel side events): "))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or(0)
    }
}

pub fn table(reps: usize, iters: usize, path: &CString) {
    let scap = std::env::var("KESTREL_BENCH_SCAP_OPEN").ok();
    println!(
        "\n## side by side: slowdown of the mix (BPF stats off), medians of {reps} interleaved runs"
    );
    if scap.is_none() {
        println!("(KESTREL_BENCH_SCAP_OPEN unset: no scap-open row; scripts/build-scap-open.sh)");
    }
    let (mut alone, mut bare, mut default, mut falco) = (vec![], vec![], vec![], vec![]);
    let mut scap_evts = vec![];
    // CPU the agent (or scap-open) spent during the mix, ms, all threads: it competes with the mix.
    let (mut cpu_bare, mut cpu_default, mut cpu_falco) = (vec![], vec![], vec![]);
    let ms = |a: u64, b: u64| (b - a) as f64 / 1e6;
    for _ in 0..reps {
        alone.push(mix(iters, path));
        let a = Agent::start("none", false);
        let c = cpu_ns(a.child.id());
        bare.push(mix(iters, path));
        cpu_bare.push(ms(c, cpu_ns(a.child.id())));
        a.stop();
        let a = Agent::start("default", false);
        let c = cpu_ns(a.child.id());
        default.push(mix(iters, path));
        cpu_default.push(ms(c, cpu_ns(a.child.id())));
        a.stop();
        if let Some(bin) = &scap {
            let s = ScapOpen::start(bin);
            let c = cpu_ns(s.child.id());
            falco.push(mix(iters, path));
            cpu_falco.push(ms(c, cpu_ns(s.child.id())));
            scap_evts.push(s.stop() as f64);
        }
    }
    // Per repetition, each setup's time over that repetition's alone (the four ran within
    // seconds of each other, so a load that drifts between repetitions cancels), then medians.
    let per_rep = |v: &[f64]| median(v.iter().zip(&alone).map(|(t, a)| t / a).collect());
    let (rb, rd) = (per_rep(&bare), per_rep(&default));
    let mut goals = vec![goal_line(
        "kestrel defaults' overhead / bare attach's, from the medians",
        1.5,
        &alone,
        &default,
        &bare,
    )];
    if !falco.is_empty() {
        goals.push(goal_line(
            "kestrel defaults' overhead / scap-open's, from the medians",
            0.3,
            &alone,
            &default,
            &falco,
        ));
    }
    let ma = median(alone.clone());
    let (mb, md) = (median(bare), median(default));
    println!("| setup | median s | ratio of medians | median of per-rep ratios | its CPU during the mix, ms |");
    println!("|---|---|---|---|---|");
    let row = |name: &str, m: f64, r: f64, c: String| {
        println!("| {name} | {m:.3} | {:.3} | {r:.3} | {c} |", m / ma)
    };
    let cpu = |v: Vec<f64>| format!("{:.1}", median(v));
    row("alone", ma, 1.0, "-".into());
    row(
        "kestrel, nothing selected (the bare attach)",
        mb,
        rb,
        cpu(cpu_bare),
    );
    row(
        "kestrel defaults (rules, culprit counters on)",
        md,
        rd,
        cpu(cpu_default),
    );
    let mut line = format!(
        "\nkestrel defaults' overhead / bare attach's, from the per-rep ratios: {:.2}",
        (rd - 1.0) / (rb - 1.0)
    );
    if !falco.is_empty() {
        let (mf, rf) = (median(falco.clone()), per_rep(&falco));
        row(
            "scap-open --modern_bpf (all syscalls)",
            mf,
            rf,
            cpu(cpu_falco),
        );
        line += &format!(
            "\nkestrel defaults' overhead / scap-open's, from the per-rep ratios: {:.2}; scap-open kernel events per run, median {:.0}",
            (rd - 1.0) / (rf - 1.0),
            median(scap_evts)
        );
    }
    println!("{line}");
    for g in goals {
        println!("{g}");
    }
}
