//! The agent: one mio loop over the ring buffer's epoll fd, a snapshot
//! timerfd, a drain timerfd, an optional stop timerfd and a signalfd. No
//! thread per source and no busy polling: the probe wakes the loop only when
//! the ring passes a fill threshold, and the drain timer collects the rest.

use std::cell::RefCell;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd};

use libbpf_rs::RingBufferBuilder;
use mio::{Events, Poll, Token};

use crate::alerts::{DropAlertConfig, DropMonitor};
use crate::capture::{Probe, ProbeConfig, ProgStats, StatsSource};
use crate::log::Key;
use crate::metrics::culprits::{CulpritConfig, Culprits};
use crate::metrics::resources::Resources;
use crate::metrics::{HostInfo, Inputs, MetricsConfig, Snapshotter};
use crate::output::prometheus::Prometheus;
use crate::output::{OpenOptions, OutputSpec, Outputs};
use crate::preflight::Checked;
use crate::state::activity::Activity;
use crate::state::pipeline::Pipeline;
use crate::state::{procfs, State};

mod events;
use events::{check_drops, drain_timer, read_signals, register, signal_fd, state_tick, timer};

const RING: Token = Token(0);
const SNAPSHOT: Token = Token(1);
const DRAIN: Token = Token(2);
const STOP: Token = Token(3);
const SIGNAL: Token = Token(4);
/// The Prometheus listener; its connections take the tokens after it.
const PROMETHEUS: usize = 8;
/// How often the loop drains the ring (and retries stalled outputs) when
/// nothing has woken it.
const DRAIN_NS: u64 = 100_000_000;
/// At exit, outputs get this long to take the final snapshot, so SIGTERM
/// ends the process well within a second whatever they do.
const FINISH_NS: u64 = 400_000_000;

pub struct AgentConfig {
    pub probe: ProbeConfig,
    pub metrics: MetricsConfig,
    pub outputs: Vec<OutputSpec>,
    pub interval_ns: u64,
    pub duration_ns: Option<u64>,
    pub thread_capacity: usize,
    pub fd_capacity: usize,
    pub allow_special_outputs: bool,
    pub verbose: bool,
    pub culprits: CulpritConfig,
    pub prometheus: crate::output::prometheus::PrometheusConfig,
    pub drops: DropAlertConfig,
    /// Purge threads idle this long and gone from /proc (libsinsp: 30 min).
    pub thread_timeout_ns: u64,
    /// How often the purge sweeps (libsinsp: 20 min).
    pub thread_purge_interval_ns: u64,
}

/// How the loop ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunEnd {
    /// SIGTERM, SIGINT or --duration: exit 0.
    Stopped,
    /// The `exit` drop action: exit with alerts::EXIT_ON_DROPS.
    DropExit,
}

/// What went wrong before the loop could start; main prints it and exits
/// with the status (2: bad input, 1: the environment).
#[derive(Debug)]
pub struct StartError(pub String, pub i32);

impl StartError {
    fn env(msg: String) -> StartError {
        StartError(msg, 1)
    }
}

pub fn run(cfg: AgentConfig, mut checked: Checked) -> Result<RunEnd, StartError> {
    // Signals are blocked before anything else so none is lost during load.
    let sigfd = signal_fd()?;
    let host = HostInfo::read();
    let opts = OpenOptions {
        allow_special: cfg.allow_special_outputs,
    };
    let mut outputs = Outputs::open(&cfg.outputs, &host.hostname, opts)
        .map_err(|e| StartError(e.msg, if e.bad_input { 2 } else { 1 }))?;
    // From here a failed start removes the output files it created.
    let fail = |outputs: &mut Outputs, e: StartError| {
        outputs.remove_created();
        e
    };
    let prom = RefCell::new(
        Prometheus::from_config(cfg.prometheus, &cfg.outputs)
            .map_err(|e| fail(&mut outputs, StartError::env(e)))?,
    );

    let own_pid = std::process::id();
    let state = State::new(
        cfg.thread_capacity,
        cfg.fd_capacity,
        own_pid,
        cfg.probe.enter_events,
    );
    // The /proc scan runs before the probe is attached, as Falco's runs
    // before capture starts: attached first, nothing would drain the ring
    // during the scan and a busy host would drop records from the start.
    // What starts in between is caught by the lookup fallback.
    let mut state = state.with_proc_fallback("/proc");
    let seeded = procfs::seed(&mut state, "/proc");

    let mut storage = MaybeUninit::uninit();
    let mut probe = Probe::load(&mut storage, &cfg.probe)
        .map_err(|e| fail(&mut outputs, StartError::env(e.to_string())))?;
    let stats = if cfg.metrics.libbpf_stats_enabled {
        probe.enable_stats()
    } else {
        StatsSource::Off
    };
    if let Some(p) = &mut checked.pidfile {
        p.write(std::process::id())
            .map_err(|e| fail(&mut outputs, StartError::env(e)))?;
    }
    let kept = crate::privilege::drop_after_attach(checked.user.as_ref()).map_err(|e| {
        if let Some(p) = &mut checked.pidfile {
            p.remove();
        }
        fail(&mut outputs, StartError::env(e))
    })?;
    let attached: Vec<&str> = probe.attached().collect();
    crate::log_line!(
        "v{}: probe attached via {} with {} ({}), {} syscalls selected, {} threads and {} fds seeded{}, bpf stats: {}, capabilities kept: {:?}{}",
        crate::metrics::VERSION,
        probe.attach_path().name(),
        probe.btf_source(),
        attached.join(", "),
        cfg.probe.selection.resolve().len(),
        seeded.threads,
        seeded.fds,
        if seeded.refused_threads > 0 {
            format!(
                " ({} more threads did not fit the table of {})",
                seeded.refused_threads, cfg.thread_capacity
            )
        } else {
            String::new()
        },
        match stats {
            StatsSource::Off => "off",
            StatsSource::Sysctl => "from kernel.bpf_stats_enabled",
            StatsSource::Agent => "enabled by the agent (BPF_ENABLE_STATS)",
        },
        kept,
        checked
            .user
            .as_ref()
            .map(|u| format!(", running as {} (uid {}, gid {})", u.name, u.uid, u.gid))
            .unwrap_or_default()
    );
    if cfg.verbose {
        crate::log_line!(
            "interval {} ms, ring buffer {} bytes, thread table {} ({} B/entry), fd table {} ({} B/entry)",
            cfg.interval_ns / 1_000_000,
            cfg.probe.ring_bytes,
            cfg.thread_capacity,
            State::bytes_per_thread(),
            cfg.fd_capacity,
            State::bytes_per_fd()
        );
    }

    let activity = cfg
        .culprits
        .enabled
        .then(|| Activity::with_capacity(cfg.culprits.capacity));
    let pipeline = RefCell::new(Pipeline::new(state, activity));
    let mut rb = RingBufferBuilder::new();
    rb.add(probe.events_map(), |data: &[u8]| {
        pipeline.borrow_mut().on_record(data);
        0
    })
    .map_err(|e| StartError::env(format!("ring buffer: {e}")))?;
    let ring = rb
        .build()
        .map_err(|e| StartError::env(format!("ring buffer: {e}")))?;

    let mut poll = Poll::new().map_err(|e| StartError::env(format!("epoll: {e}")))?;
    let snap_t = timer(cfg.interval_ns, true)?;
    let drain_t = timer(DRAIN_NS, true)?;
    let stop_t = cfg
        .duration_ns
        .map(|d| timer(d.max(1), false))
        .transpose()?;
    register(&poll, ring.epoll_fd(), RING)?;
    register(&poll, snap_t.as_fd().as_raw_fd(), SNAPSHOT)?;
    register(&poll, drain_t.as_fd().as_raw_fd(), DRAIN)?;
    register(&poll, sigfd.as_fd().as_raw_fd(), SIGNAL)?;
    if let Some(t) = &stop_t {
        register(&poll, t.as_fd().as_raw_fd(), STOP)?;
    }
    if let Some(p) = prom.borrow_mut().as_mut() {
        p.register(poll.registry(), PROMETHEUS)
            .map_err(|e| StartError::env(format!("epoll register: {e}")))?;
        if let Some(a) = p.local_addr() {
            eprintln!("kestrel: serving Prometheus metrics on http://{a}/metrics");
        }
    }

    // libsinsp's SINSP_AGENT_CGROUP_MEM_PATH_ENV_VAR names the memory file.
    let resources = match std::env::var("FALCO_CGROUP_MEM_PATH") {
        Ok(p) if !p.is_empty() => Resources::new("/").with_container_memory_file(p),
        _ => Resources::new("/"),
    };
    // From zero, not from now: drops while /proc was seeded (nothing drains
    // the ring then) are reported by the first check.
    let mut drops = DropMonitor::new(
        cfg.drops.clone(),
        cfg.metrics.schema,
        &host.hostname,
        Default::default(),
    );
    let mut snap = Snapshotter::new(cfg.metrics, host, resources);
    let timeout_ticks = (cfg.thread_timeout_ns / DRAIN_NS).min(u64::from(u32::MAX)) as u32;
    let purge_every = (cfg.thread_purge_interval_ns / DRAIN_NS).max(1);
    let mut ticks: u64 = 0;
    let mut end = RunEnd::Stopped;
    let mut progs: heapless::Vec<ProgStats, 8> = heapless::Vec::new();
    let mut culprits = cfg.culprits.enabled.then(|| Culprits::new(cfg.culprits));
    let mut last_drops = 0;
    // Snapshots that did not render (counted with the write errors).
    let mut render_errors = 0u64;
    let mut take_snapshot = |probe: &mut Probe<'_>, outputs: &mut Outputs| -> bool {
        let _ = ring.consume();
        probe.prog_stats(&mut progs);
        let kernel = probe.counters();
        if let (Some(cul), Some(act)) = (&mut culprits, &mut pipeline.borrow_mut().activity) {
            let unnumbered = probe.syscall_counts(cul.counts_mut());
            let interval_drops = kernel.n_drops().saturating_sub(last_drops);
            cul.update(unnumbered, |f| probe.drops_by_pid(f), interval_drops, act);
        }
        last_drops = kernel.n_drops();
        let p = pipeline.borrow();
        let inputs = Inputs {
            kestrel_n_fds: p.state.n_fds() as u64,
            num_evts: p.num_evts,
            num_compat_evts: p.num_compat_evts,
            attach: probe.attach_path().name(),
            outputs_queue_num_drops: outputs.queue_drops(),
            output_write_errors: outputs.write_errors()
                + render_errors
                + prom.borrow().as_ref().map_or(0, |p| p.write_errors),
            kernel,
            state: p.state.counters,
            n_threads: p.state.n_threads() as u64,
            n_fds: p.state.n_fds_falco(),
            progs: &progs,
            culprits: culprits.as_ref(),
        };
        let r = snap.render(&inputs);
        // An empty render is never written as a line.
        if r.line.len() <= 1 {
            render_errors += 1;
            crate::log_limited!(
                Key::Render,
                "a snapshot did not fit its buffer: not written"
            );
            return false;
        }
        outputs.write(r.line, r.time);
        if let Some(p) = prom.borrow_mut().as_mut() {
            p.publish(
                &snap.cfg,
                snap.host(),
                &inputs,
                snap.last_resources.as_ref(),
            );
        }
        true
    };

    // Falco takes the first snapshot right at start; one that cannot render
    // is an error now, not an empty line every interval.
    if !take_snapshot(&mut probe, &mut outputs) {
        if let Some(p) = &mut checked.pidfile {
            p.remove();
        }
        return Err(fail(
            &mut outputs,
            StartError(
                "the snapshot does not render (hostname too long?)".into(),
                2,
            ),
        ));
    }
    let mut events = Events::with_capacity(16);
    'run: loop {
        if let Err(e) = poll.poll(&mut events, None) {
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(StartError::env(format!("epoll_wait: {e}")));
        }
        for ev in events.iter() {
            match ev.token() {
                RING => {
                    let _ = ring.consume();
                }
                DRAIN => {
                    drain_timer(&drain_t);
                    let _ = ring.consume();
                    if let Some(p) = prom.borrow_mut().as_mut() {
                        p.tick(poll.registry());
                    }
                    outputs.flush();
                    ticks += 1;
                    let mut p = pipeline.borrow_mut();
                    state_tick(&mut p.state, ticks, purge_every, timeout_ticks);
                    if check_drops(&mut drops, &p.state, &mut probe, &mut outputs) {
                        end = RunEnd::DropExit;
                        break 'run;
                    }
                }
                SNAPSHOT => {
                    drain_timer(&snap_t);
                    take_snapshot(&mut probe, &mut outputs);
                }
                STOP => break 'run,
                SIGNAL => {
                    let (stop, hup) = read_signals(&sigfd);
                    if hup {
                        outputs.reopen();
                    }
                    if stop {
                        break 'run;
                    }
                }
                t => {
                    if let Some(p) = prom.borrow_mut().as_mut().filter(|p| p.owns(t)) {
                        p.on_event(poll.registry(), t);
                    }
                }
            }
        }
    }
    // Detach first so the final drain and counter read account for every record.
    probe.detach();
    let _ = ring.consume();
    // Drops of the last partial second are reported before the final snapshot.
    if end == RunEnd::Stopped {
        let o = drops.check(crate::metrics::time::monotonic_ns(), &probe.counters());
        if o.alert {
            outputs.write(drops.line(), drops.time());
        }
    }
    take_snapshot(&mut probe, &mut outputs);
    outputs.finish(FINISH_NS);
    outputs.log_summary();
    if let Some(p) = &mut checked.pidfile {
        p.remove();
    }
    Ok(end)
}
