//! The benchmark rig (issue 6): `cargo bench --features bench --bench rig` as root. Prints one
//! table of Kestrel's costs on this machine, every figure measured in this run and, where the
//! machine is noisy, as a ratio to a baseline taken side by side. Knobs: KESTREL_BENCH_REPS
//! (default 5), KESTREL_BENCH_ITERS (default 200000 iterations of the syscall mix),
//! KESTREL_BENCH_BASELINE (an older kestrel binary whose kernel cost rows, and in the mix
//! table its defaults and bare attach, are measured beside this one's), KESTREL_BENCH_ONLY=untraced|traced|steps|side|mix|rates (one table alone:
//! rig/untraced.rs, rig/percall.rs, rig/side.rs with KESTREL_BENCH_SCAP_OPEN, rig/scale.rs;
//! KESTREL_BENCH_MIX_ARGS="--flag value;--other" adds rows to the mix table; KESTREL_BENCH_CPU=n
//! runs everything on CPU n alone, as on a one-core gateway; KESTREL_BENCH_AGENT_CPU=m then puts
//! the agents and scap-open on CPU m instead: the workload and its observer apart, in a fixed
//! placement rather than the scheduler's).

use std::ffi::CString;
use std::mem::MaybeUninit;
use std::os::fd::{FromRawFd, OwnedFd};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use kestrel::capture::floor::Floor;
use kestrel::capture::ProgStats;

#[path = "rig/interval.rs"]
mod interval;
#[path = "mix.rs"]
mod mix;
#[path = "rig/percall.rs"]
mod percall;
#[path = "replay_core.rs"]
mod replay_core;
#[path = "rig/scale.rs"]
mod scale;
#[path = "rig/side.rs"]
mod side;
#[path = "rig/untraced.rs"]
mod untraced;
use mix::mix;

const BIN: &str = env!("CARGO_BIN_EXE_kestrel");

fn env_num(k: &str, d: usize) -> usize {
    std::env::var(k)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(d)
}

fn tmp(name: &str) -> String {
    let p = format!("/tmp/kestrel-bench-{}-{name}", std::process::id());
    let _ = std::fs::remove_file(&p);
    p
}

struct Agent {
    child: Child,
    out: String,
}

impl Agent {
    fn start(syscalls: &str, stats: bool) -> Agent {
        Agent::start_bin(BIN, syscalls, stats, "auto")
    }

    fn start_bin(bin: &str, syscalls: &str, stats: bool, attach: &str) -> Agent {
        Agent::start_with(bin, syscalls, stats, attach, &[])
    }

    fn start_with(bin: &str, syscalls: &str, stats: bool, attach: &str, extra: &[&str]) -> Agent {
        let out = tmp(&format!("agent-{syscalls}"));
        let child = place(&mut Command::new(bin))
            .args(["run", "--interval", "1h", "--syscalls", syscalls])
            .args(["--attach", attach])
            .args(extra)
            .args(["--output", &format!("file:{out}")])
            .args([
                "--libbpf-stats-enabled",
                if stats { "true" } else { "false" },
            ])
            .args(["--convert-memory-to-mb", "false"])
            .stderr(Stdio::null())
            .spawn()
            .expect("start kestrel");
        let t = Instant::now();
        while std::fs::read_to_string(&out).map_or(true, |s| s.is_empty()) {
            assert!(t.elapsed() < Duration::from_secs(30), "agent did not start");
            std::thread::sleep(Duration::from_millis(10));
        }
        Agent { child, out }
    }

    /// ns the agent has run on a CPU (schedstat: finer than clock ticks).
    fn cpu_ns(&self) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/schedstat", self.child.id()))
            .ok()
            .and_then(|s| s.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    }

    /// Stops the agent; returns its final snapshot's output_fields.
    fn stop(mut self) -> serde_json::Value {
        // SAFETY: kill(2) on our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        self.child.wait().unwrap();
        let text = std::fs::read_to_string(&self.out).unwrap();
        let last = text.lines().last().unwrap();
        let v: serde_json::Value = serde_json::from_str(last).unwrap();
        let _ = std::fs::remove_file(&self.out);
        v["output_fields"].clone()
    }
}

fn f(v: &serde_json::Value, k: &str) -> u64 {
    v[k].as_u64().unwrap_or(0)
}

/// Only traced syscalls: open/close pairs. Returns events made.
fn traced_only(iters: usize, path: &CString) -> u64 {
    for _ in 0..iters {
        // SAFETY: as above.
        unsafe { libc::close(libc::open(path.as_ptr(), libc::O_RDONLY)) };
    }
    2 * iters as u64
}

/// Only untraced syscalls.
fn untraced_only(iters: usize) {
    for _ in 0..iters {
        // SAFETY: no arguments.
        unsafe { libc::getppid() };
    }
}

/// open/close pairs paced to `rate` events/s for `secs`, over `threads`.
fn paced(rate: u64, secs: f64, path: &CString, threads: usize) -> u64 {
    std::thread::scope(|s| {
        let hs: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(move || {
                    let per_thread = rate / threads as u64;
                    let t = Instant::now();
                    let mut made = 0u64;
                    while t.elapsed().as_secs_f64() < secs {
                        let due = (t.elapsed().as_secs_f64() * per_thread as f64) as u64;
                        if made < due {
                            for _ in 0..((due - made) / 2).min(512) {
                                // SAFETY: as above.
                                unsafe { libc::close(libc::open(path.as_ptr(), libc::O_RDONLY)) };
                                made += 2;
                            }
                        } else {
                            std::thread::sleep(Duration::from_micros(500));
                        }
                    }
                    made
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).sum()
    })
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// The CPU an environment variable names; one line and exit 2 when it is not
/// a CPU number a cpu_set_t can hold (CPU_SET would panic, in a forked child
/// for `place`).
fn cpu_of(var: &str) -> Option<usize> {
    let v = std::env::var(var).ok()?;
    match v.parse::<usize>() {
        Ok(n) if n < libc::CPU_SETSIZE as usize => Some(n),
        _ => {
            eprintln!("{var}={v}: not a CPU number");
            std::process::exit(2);
        }
    }
}

/// Binds the calling thread (and what it starts from now on) to CPU `n`.
fn bind_to_cpu(n: usize) -> std::io::Result<()> {
    // SAFETY: a zeroed cpu_set_t is an empty set; CPU_SET bounds-checks n.
    let ok = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(n, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) == 0
    };
    if ok {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

fn pin_to_cpu(var: &str, n: usize) {
    if let Err(e) = bind_to_cpu(n) {
        eprintln!("{var}={n}: cannot run there ({e})");
        std::process::exit(2);
    }
}

/// KESTREL_BENCH_AGENT_CPU, read once.
fn agent_cpu() -> Option<usize> {
    static AGENT_CPU: std::sync::OnceLock<Option<usize>> = std::sync::OnceLock::new();
    *AGENT_CPU.get_or_init(|| cpu_of("KESTREL_BENCH_AGENT_CPU"))
}

/// An observer (agent or scap-open) about to be started: on
/// KESTREL_BENCH_AGENT_CPU when it is set, bound in the child before exec so
/// that none of its threads starts anywhere else.
fn place(cmd: &mut Command) -> &mut Command {
    use std::os::unix::process::CommandExt;
    if let Some(n) = agent_cpu() {
        // SAFETY: the closure makes one syscall and allocates nothing, as
        // the time between fork and exec allows.
        unsafe { cmd.pre_exec(move || bind_to_cpu(n)) };
    }
    cmd
}

fn main() {
    if !rustix::process::geteuid().is_root() {
        eprintln!("the rig loads BPF programs: run it as root");
        std::process::exit(1);
    }
    // KESTREL_BENCH_CPU=n: the rig, and so every agent and workload it starts,
    // on CPU n alone: a one-core gateway, where the agent's own CPU adds to
    // the workload's time (on more cores it runs beside it).
    if let Some(n) = cpu_of("KESTREL_BENCH_CPU") {
        pin_to_cpu("KESTREL_BENCH_CPU", n);
    }
    let reps = env_num("KESTREL_BENCH_REPS", 5);
    let iters = env_num("KESTREL_BENCH_ITERS", 200_000);
    let file = tmp("target");
    std::fs::write(&file, b"x").unwrap();
    let path = CString::new(file.clone()).unwrap();
    let u = rustix::system::uname();
    println!(
        "# Kestrel bench rig: {} {} {}, {} CPUs, {} reps, {} mix iterations",
        u.machine().to_string_lossy(),
        u.release().to_string_lossy(),
        kestrel::base::time::rfc3339_nanos(kestrel::base::time::realtime_ns(), &mut [0; 40])
            .get(..10)
            .unwrap_or(""),
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        reps,
        iters
    );
    if let Some(n) = agent_cpu() {
        println!(
            "(agents and scap-open on CPU {n}; the workload on KESTREL_BENCH_CPU, or anywhere)"
        );
    }
    if let Ok(only) = std::env::var("KESTREL_BENCH_ONLY") {
        match only.as_str() {
            "steps" => percall::steps(reps, iters * 5),
            "untraced" => untraced::table(reps, iters * 5),
            "traced" => percall::traced(reps, iters, &path),
            "side" => side::table(reps, iters, &path),
            "mix" => scale::slowdown(reps, iters, &path),
            "rates" => scale::rates(&path),
            _ => eprintln!("KESTREL_BENCH_ONLY: untraced, traced, steps, side, mix or rates"),
        }
        return std::fs::remove_file(&file).unwrap_or(());
    }

    // 1. Kernel-side cost per call, beside the no-op floor on the same tracepoint.
    println!("\n## kernel cost per call (BPF run-time stats), floor = no-op on sys_exit");
    println!("| attach | selection | workload | program | ns/call | floor ns/call | ratio |");
    println!("|---|---|---|---|---|---|---|");
    {
        let _stats = run_time_stats();
        let mut storage = MaybeUninit::uninit();
        let floor = Floor::attach(&mut storage).expect("attach the floor");
        type Work<'a> = Box<dyn Fn() + 'a>;
        let works: Vec<(&str, Work)> = vec![
            (
                "mix",
                Box::new(|| {
                    let _ = mix(iters, &path);
                }),
            ),
            (
                "open/close",
                Box::new(|| {
                    let _ = traced_only(iters, &path);
                }),
            ),
            ("getppid", Box::new(|| untraced_only(iters * 5))),
        ];
        let per_call = |a: ProgStats, b: ProgStats| {
            (b.run_time_ns - a.run_time_ns) as f64 / (b.run_cnt - a.run_cnt).max(1) as f64
        };
        let mut steps = (Vec::new(), Vec::new());
        // KESTREL_BENCH_BASELINE=path/to/older/kestrel adds its tp_btf rows,
        // measured in the same run, to compare a change step by step.
        let baseline = std::env::var("KESTREL_BENCH_BASELINE").ok();
        let culprits_off: &[&str] = &["--culprits", "false"];
        let mut rows: Vec<(&str, &str, &str, &str, &[&str])> = vec![
            ("tp_btf", BIN, "tp_btf", "default", &[]),
            ("raw_tp", BIN, "raw_tp", "default", &[]),
            ("tp_btf", BIN, "tp_btf", "none", &[]),
            ("tp_btf, culprits off", BIN, "tp_btf", "none", culprits_off),
            ("raw_tp", BIN, "raw_tp", "none", &[]),
        ];
        if let Some(b) = &baseline {
            rows.insert(1, ("baseline tp_btf", b.as_str(), "tp_btf", "default", &[]));
            rows.insert(3, ("baseline raw_tp", b.as_str(), "raw_tp", "default", &[]));
        }
        for (attach, bin, mode, sel, extra) in rows {
            for (name, work) in &works {
                let agent = Agent::start_with(bin, sel, true, mode, extra);
                let (f0, [t0, r0]) = (floor.stats(), floor.step_stats());
                work();
                let (f1, [t1, r1]) = (floor.stats(), floor.step_stats());
                let v = agent.stop();
                let floor_ns = per_call(f0, f1);
                steps.0.push(per_call(t0, t1) - floor_ns);
                steps.1.push(per_call(r0, r1) - floor_ns);
                for prog in ["sys_exit", "sched_p_exec", "sched_proc_exit"] {
                    let cnt = f(&v, &format!("scap.{prog}.run_cnt"));
                    if cnt == 0 {
                        continue;
                    }
                    let ns = f(&v, &format!("scap.{prog}.run_time_ns")) as f64 / cnt as f64;
                    let ratio = if prog == "sys_exit" {
                        format!("{:.2}", ns / floor_ns)
                    } else {
                        "-".into()
                    };
                    println!(
                        "| {attach} | {sel} | {name} | {prog} | {ns:.0} | {floor_ns:.0} | {ratio} |"
                    );
                }
            }
        }
        if let Some(b) = &baseline {
            println!("\nbaseline: {b}");
        }
        println!(
            "\nfirst step on every syscall (number + 32-bit check; floor + step minus floor), medians of {} runs: tp_btf {:.1} ns/call, raw_tp {:.1} ns/call",
            steps.0.len(),
            median(steps.0.clone()),
            median(steps.1.clone())
        );
        if Command::new("stress-ng").arg("--version").output().is_ok() {
            let agent = Agent::start("default", true);
            let f0 = floor.stats();
            let _ = Command::new("stress-ng")
                .args(["--open", "1", "--open-ops", "20000", "--quiet"])
                .status();
            let f1 = floor.stats();
            let v = agent.stop();
            let floor_ns =
                (f1.run_time_ns - f0.run_time_ns) as f64 / (f1.run_cnt - f0.run_cnt).max(1) as f64;
            let ns = f(&v, "scap.sys_exit.run_time_ns") as f64
                / f(&v, "scap.sys_exit.run_cnt").max(1) as f64;
            println!(
                "| tp_btf | default | stress-ng --open 1 --open-ops 20000 | sys_exit | {ns:.0} | {floor_ns:.0} | {:.2} |",
                ns / floor_ns
            );
        }
    }

    // 2. Slowdown of the mix, BPF stats off, interleaved repetitions.
    scale::slowdown(reps, iters, &path);

    // 3. User space replay.
    println!("\n## user space: decode + state update, one core");
    let (best, n) = replay_core::best_of(5, 200);
    println!(
        "replay: {:.2} M events/s (best of 5, {n} records per round)",
        best / 1e6
    );

    // 4. Memory and size.
    // Measured on the shipped static binary when it is built (glibc's malloc
    // arenas make the bench build's figure larger).
    let musl = format!(
        "{}/target/x86_64-unknown-linux-musl/release/kestrel",
        env!("CARGO_MANIFEST_DIR")
    );
    let mem_bin = if std::path::Path::new(&musl).exists() {
        musl.as_str()
    } else {
        BIN
    };
    println!("\n## memory at default capacities, after the mix ({mem_bin})");
    let a = Agent::start_bin(mem_bin, "default", false, "auto");
    mix(iters / 4, &path);
    let v = a.stop();
    println!(
        "RSS {} kB, PSS {} kB, VSZ {} kB (the 1 MiB ring, mapped once, is 1 MB of the RSS)",
        f(&v, "falco.memory_rss"),
        f(&v, "falco.memory_pss"),
        f(&v, "falco.memory_vsz")
    );
    for t in ["x86_64-unknown-linux-musl", "aarch64-unknown-linux-musl"] {
        let p = format!("{}/target/{t}/release/kestrel", env!("CARGO_MANIFEST_DIR"));
        match std::fs::metadata(&p) {
            Ok(m) => println!("binary {t}: {} bytes (release profile strips)", m.len()),
            Err(_) => println!("binary {t}: not built"),
        }
    }

    // 5. The agent at fixed event rates.
    scale::rates(&path);

    // 6. Highest rate this machine generates, and drops at it.
    println!("\n## highest generated rate, default ring buffer");
    for threads in [1usize, 2] {
        let a = Agent::start("default", false);
        let t = Instant::now();
        let made = paced(u64::MAX / 4, 3.0, &path, threads);
        let secs = t.elapsed().as_secs_f64();
        let v = a.stop();
        println!(
            "{threads} generator thread(s): {:.0} events/s, kernel n_evts {}, drops {}",
            made as f64 / secs,
            f(&v, "scap.n_evts"),
            f(&v, "scap.n_drops")
        );
    }
    let _ = std::fs::remove_file(&file);
}

/// BPF run-time stats on for as long as the returned fd lives.
fn run_time_stats() -> OwnedFd {
    // SAFETY: plain syscall wrapper; the fd keeps stats on until dropped.
    let stats_fd = unsafe {
        libbpf_rs::libbpf_sys::bpf_enable_stats(libbpf_rs::libbpf_sys::BPF_STATS_RUN_TIME)
    };
    assert!(stats_fd >= 0, "BPF_ENABLE_STATS failed");
    // SAFETY: fresh fd owned by nobody else.
    unsafe { OwnedFd::from_raw_fd(stats_fd) }
}
