//! The rig's untraced-call table (KESTREL_BENCH_ONLY=untraced): culprit
//! sampling on, off, and culprits off, beside the floor in the same calls.

use std::mem::MaybeUninit;
use std::os::fd::{FromRawFd, OwnedFd};

use kestrel::capture::floor::Floor;
use kestrel::capture::ProgStats;

use super::{median, untraced_only, Agent, BIN};

/// Run-time stats of the agent's program `name`, found through the prog
/// ids in its fdinfo (other agents on the machine have their own).
pub fn agent_prog(pid: u32, name: &str) -> Option<ProgStats> {
    for e in std::fs::read_dir(format!("/proc/{pid}/fdinfo"))
        .ok()?
        .flatten()
    {
        let text = std::fs::read_to_string(e.path()).unwrap_or_default();
        let Some(id) = text
            .lines()
            .find_map(|l| l.strip_prefix("prog_id:"))
            .and_then(|v| v.trim().parse::<u32>().ok())
        else {
            continue;
        };
        // SAFETY: plain syscall wrapper; a non-negative result is ours.
        let fd = unsafe { libbpf_rs::libbpf_sys::bpf_prog_get_fd_by_id(id) };
        if fd < 0 {
            continue;
        }
        // SAFETY: fresh fd owned by nobody else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let mut info = libbpf_rs::libbpf_sys::bpf_prog_info::default();
        let mut len = std::mem::size_of::<libbpf_rs::libbpf_sys::bpf_prog_info>() as u32;
        // SAFETY: info is a zeroed bpf_prog_info and len its size.
        let rc = unsafe {
            libbpf_rs::libbpf_sys::bpf_prog_get_info_by_fd(
                std::os::fd::AsRawFd::as_raw_fd(&fd),
                &mut info,
                &mut len,
            )
        };
        let got: Vec<u8> = info
            .name
            .iter()
            .take_while(|&&c| c != 0)
            .map(|&c| c as u8)
            .collect();
        if rc == 0 && got == name.as_bytes() {
            return Some(ProgStats {
                name: "agent",
                run_cnt: info.run_cnt,
                run_time_ns: info.run_time_ns,
            });
        }
    }
    None
}

/// The untraced call (getppid) with culprit sampling on, off, and culprits
/// off, tp_btf and raw_tp, interleaved `reps` times: the agent's sys_exit
/// ns/call over the workload alone and the floor's in the same calls.
pub fn table(reps: usize, calls: usize) {
    println!("\n## untraced call (getppid), culprit sampling, medians of {reps} interleaved runs of {calls} calls");
    println!("| attach | setup | sys_exit ns/call | floor ns/call | ratio to floor |");
    println!("|---|---|---|---|---|");
    let _stats = super::run_time_stats();
    let mut storage = MaybeUninit::uninit();
    let floor = Floor::attach(&mut storage).expect("attach the floor");
    let mut setups: Vec<(&str, &str, &str, &[&str])> = vec![
        ("tp_btf", "sampling on (period 64)", BIN, &[]),
        (
            "tp_btf",
            "sampling on (period 256)",
            BIN,
            &["--culprit-sample-period", "256"],
        ),
        (
            "tp_btf",
            "sampling off (period 0)",
            BIN,
            &["--culprit-sample-period", "0"],
        ),
        ("tp_btf", "culprits off", BIN, &["--culprits", "false"]),
        ("raw_tp", "sampling on (period 64)", BIN, &[]),
        (
            "raw_tp",
            "sampling off (period 0)",
            BIN,
            &["--culprit-sample-period", "0"],
        ),
        ("raw_tp", "culprits off", BIN, &["--culprits", "false"]),
    ];
    // KESTREL_BENCH_BASELINE: an older build's culprit counters, same calls.
    let baseline = std::env::var("KESTREL_BENCH_BASELINE").ok();
    if let Some(b) = baseline.as_deref() {
        setups.insert(3, ("tp_btf", "baseline, culprits on", b, &[]));
        setups.push(("raw_tp", "baseline, culprits on", b, &[]));
    }
    let per_call = |a: ProgStats, b: ProgStats| {
        (b.run_time_ns - a.run_time_ns) as f64 / (b.run_cnt - a.run_cnt).max(1) as f64
    };
    let mut got = vec![(Vec::new(), Vec::new(), Vec::new()); setups.len()];
    for _ in 0..reps {
        for (i, (attach, _, bin, extra)) in setups.iter().enumerate() {
            let agent = Agent::start_with(bin, "default", true, attach, extra);
            let pid = agent.child.id();
            let prog = if *attach == "raw_tp" {
                "raw_sys_exit"
            } else {
                "sys_exit"
            };
            let a0 = agent_prog(pid, prog).expect("the agent's sys_exit");
            let f0 = floor.stats();
            untraced_only(calls);
            let f1 = floor.stats();
            let a1 = agent_prog(pid, prog).expect("the agent's sys_exit");
            agent.stop();
            let (ns, fl) = (per_call(a0, a1), per_call(f0, f1));
            got[i].0.push(ns);
            got[i].1.push(fl);
            got[i].2.push(ns / fl);
        }
    }
    for ((attach, setup, _, _), (ns, fl, r)) in setups.iter().zip(got) {
        println!(
            "| {attach} | {setup} | {:.1} | {:.1} | {:.3} (runs {:.2}-{:.2}) |",
            median(ns),
            median(fl),
            median(r.clone()),
            r.iter().cloned().fold(f64::INFINITY, f64::min),
            r.iter().cloned().fold(0.0, f64::max)
        );
    }
    if let Some(b) = baseline {
        println!("\nbaseline: {b}");
    }
}
