//! The agent: one mio loop over the event buffer's fds (the ring buffer's,
//! or one perf buffer's per CPU), a snapshot timerfd, a drain timerfd, an
//! optional stop timerfd and a signalfd. No thread per source and no busy
//! polling: the probe wakes the loop only when the buffer passes a fill
//! threshold, and the drain timer collects the rest.

use std::cell::RefCell;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use mio::{Poll, Token};

use crate::alerts::{DropAlertConfig, DropMonitor};
use crate::capture::source::Records;
use crate::capture::{Probe, ProbeConfig, StatsSource};
use crate::metrics::culprits::{CulpritConfig, Culprits};
use crate::metrics::resources::Resources;
use crate::metrics::{HostInfo, MetricsConfig, Snapshotter};
use crate::output::prometheus::Prometheus;
use crate::output::{OpenOptions, OutputSpec, Outputs};
use crate::preflight::Checked;
use crate::rules::engine::{Engine, EngineConfig};
use crate::rules::extract::HostFacts;
use crate::rules::users::Users;
use crate::rules::RuleSet;
use crate::state::activity::Activity;
use crate::state::pipeline::Pipeline;
use crate::state::{proc_scan, State};

pub mod build;
mod events;
mod reload;
mod serve;
mod start_lines;
use events::{register, signal_fd, timer};
use serve::{Agent, Snapshots, Sources};

const RING: Token = Token(0);
const SNAPSHOT: Token = Token(1);
const DRAIN: Token = Token(2);
const STOP: Token = Token(3);
const SIGNAL: Token = Token(4);
const ALERT_DRAIN: Token = Token(5);
/// With rules loaded the ring is also drained this often, so an alert
/// reaches the outputs within this long of its event (the p99 goal
/// is 100 ms); an empty drain costs a few microseconds.
const ALERT_DRAIN_NS: u64 = 25_000_000;
/// The Prometheus listener; its connections take the tokens after it.
const PROMETHEUS: usize = 8;
/// How often the loop drains the ring (and retries stalled outputs) when
/// nothing has woken it.
const DRAIN_NS: u64 = 100_000_000;
/// Drain ticks in `ns`, for the purge settings.
fn ticks_in(ns: u64) -> u64 {
    ns / DRAIN_NS
}

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
    /// The loaded rules (empty: none run).
    pub rules: RuleSet,
    pub engine: EngineConfig,
    /// metrics.rules_counters_enabled.
    pub rules_counters: bool,
    /// `run`'s command-line tokens: SIGHUP builds the configuration again
    /// from them and the config file they name (see reload.rs).
    pub reload_tokens: Option<Vec<String>>,
    /// The restart-only keys as started (build::restart_keys).
    pub restart_keys: build::RestartKeys,
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

/// Starts the agent and runs it until it is told to stop. A start that
/// fails removes what it created (output files, the pidfile).
pub fn run(mut cfg: AgentConfig, mut checked: Checked) -> Result<RunEnd, StartError> {
    crate::base::image::no_huge_pages();
    crate::fdlimit::check(&cfg, checked.pidfile.is_some())?;
    // Signals are blocked before anything else so none is lost during load.
    let signals = signal_fd()?;
    let proc_root = check_proc_root()?;
    let host = HostInfo::read();
    let opts = OpenOptions {
        allow_special: cfg.allow_special_outputs,
    };
    let open_err = |e: crate::output::OpenError| StartError(e.msg, if e.bad_input { 2 } else { 1 });
    // Textfile paths are checked, and the port bound, before any file is made.
    let mut prom =
        Prometheus::from_config(cfg.prometheus.clone(), &cfg.outputs).map_err(open_err)?;
    let mut outputs = Outputs::open(&cfg.outputs, &host.hostname, opts).map_err(open_err)?;
    let abort = |outputs: &mut Outputs, checked: &mut Checked, e: StartError| {
        outputs.remove_created();
        if let Some(p) = &mut checked.pidfile {
            p.remove();
        }
        e
    };
    let (state, seeded) = seeded_state(&cfg, proc_root);

    let mut storage = MaybeUninit::uninit();
    let mut probe = match Probe::load_detached(&mut storage, &cfg.probe) {
        Ok(p) => p,
        Err(e) => {
            return Err(abort(
                &mut outputs,
                &mut checked,
                StartError::env(e.to_string()),
            ))
        }
    };
    let stats = if cfg.metrics.libbpf_stats_enabled {
        probe.enable_stats()
    } else {
        StatsSource::Off
    };
    let used = (state.n_threads(), state.n_fds());
    let activity = cfg
        .culprits
        .enabled
        .then(|| Activity::with_capacity(cfg.culprits.capacity));
    let pipeline = RefCell::new(Pipeline::new(state, activity));
    // The buffer is open before the programs run (a perf buffer not yet
    // open loses its CPU's records), with the privileges perf_event_open
    // needs, before they are dropped. Nothing reads it before the loop,
    // so the engine is in place for the first record.
    let started = ring_buffer(&probe, &cfg.probe, &pipeline).and_then(|ring| {
        probe
            .attach_all()
            .map_err(|e| StartError::env(e.to_string()))?;
        start_lines::check_sys_exit(&mut probe)?;
        Ok((ring, settle_process(&mut checked)?))
    });
    let (ring, kept) = match started {
        Ok(r) => r,
        Err(e) => return Err(abort(&mut outputs, &mut checked, e)),
    };
    start_lines::log_start(&cfg, &probe, &seeded, stats, &kept, &checked);
    for l in start_lines::half_full_lines((used.0, cfg.thread_capacity), (used.1, cfg.fd_capacity))
    {
        crate::log_line!("{l}");
    }
    log_rules(&cfg.rules, None);
    // Before the engine takes the rules: what a reload compares against.
    let running = reload::Running::of(&cfg);
    let engine = engine(&mut cfg, &host.hostname, &pipeline.borrow().state);
    let rules = engine.is_some();
    pipeline.borrow_mut().rules = engine;
    let started = register_sources(&cfg, &ring, signals, prom.as_mut(), rules).map(|s| (ring, s));
    let (ring, sources) = match started {
        Ok(r) => r,
        Err(e) => return Err(abort(&mut outputs, &mut checked, e)),
    };
    // From zero, not from now: drops while /proc was seeded (nothing drains
    // the ring then) are reported by the first check.
    let drops = DropMonitor::new(
        cfg.drops.clone(),
        cfg.metrics.schema,
        &host.hostname,
        Default::default(),
    )
    .with_enter_events(cfg.probe.enter_events);
    let cpus = probe.possible_cpus();
    let mut agent = Agent {
        probe,
        ring,
        pipeline: &pipeline,
        outputs,
        prom,
        sources,
        snapshots: Snapshots {
            snap: Snapshotter::new(cfg.metrics, host, resources()),
            culprits: cfg.culprits.enabled.then(|| Culprits::new(cfg.culprits)),
            progs: heapless::Vec::new(),
            last_drops: 0,
            per_cpu: Vec::with_capacity(cpus),
            render_errors: 0,
        },
        drops,
        ticks: 0,
        purge_every: ticks_in(cfg.thread_purge_interval_ns).max(1),
        timeout_ticks: ticks_in(cfg.thread_timeout_ns).min(u64::from(u32::MAX)) as u32,
        rules_counters: cfg.rules_counters,
        running,
    };
    // Falco takes the first snapshot right at start; one that cannot render
    // is an error now, not an empty line every interval.
    if !agent.take_snapshot() {
        let e = StartError(
            "the snapshot does not render (hostname too long?)".into(),
            2,
        );
        return Err(abort(&mut agent.outputs, &mut checked, e));
    }
    // Written with the privileges the agent keeps: failing now, it would
    // fail every interval.
    if let Some((e, denied)) = agent.prom.as_mut().and_then(|p| p.last_error.take()) {
        let hint = if denied {
            " (the agent keeps only CAP_BPF: the directory must be writable by its uid)"
        } else {
            ""
        };
        let e = StartError::env(format!("{e}{hint}"));
        return Err(abort(&mut agent.outputs, &mut checked, e));
    }
    // Start is over: its code and the embedded probe need not stay resident.
    crate::base::image::release_startup_pages();
    let end = agent.serve()?;
    agent.finish(end, &mut checked);
    Ok(end)
}

/// The procfs root under HOST_ROOT. One too long for the lookup fallback's
/// stack paths is refused before anything is created.
fn check_proc_root() -> Result<proc_scan::ProcRoot, StartError> {
    let proc = crate::procfs::host_path("/proc");
    proc_scan::ProcRoot::new(&proc).ok_or_else(|| {
        StartError(
            format!(
                "HOST_ROOT is too long: {} bytes with \"/proc\", at most {}",
                proc.len(),
                proc_scan::ROOT_MAX
            ),
            2,
        )
    })
}

/// The state tables, seeded from /proc. The scan runs before the probe is
/// attached, as Falco's runs before capture starts: attached first, nothing
/// would drain the ring during the scan and a busy host would drop records
/// from the start. What starts in between is caught by the lookup fallback.
fn seeded_state(cfg: &AgentConfig, proc_root: proc_scan::ProcRoot) -> (State, proc_scan::Seeded) {
    let mut state = State::new(
        cfg.thread_capacity,
        cfg.fd_capacity,
        crate::procfs::host_pid(),
        cfg.probe.enter_events,
    );
    let seeded = proc_scan::seed(&mut state, &proc_root);
    (state.with_proc_fallback(proc_root), seeded)
}

/// What was loaded, and one line per rule left out with its reason. A
/// reload passes the running set: its lines were said at start and are not
/// repeated (a SIGHUP that changes nothing says one line).
fn log_rules(r: &RuleSet, running: Option<&RuleSet>) {
    let mut repeated = 0;
    for w in &r.warnings {
        if running.is_some_and(|o| o.warnings.contains(w)) {
            repeated += 1;
        } else {
            crate::log_line!("rules: {w}");
        }
    }
    for s in &r.skipped {
        if running.is_some_and(|o| {
            o.skipped
                .iter()
                .any(|p| p.rule == s.rule && p.reason == s.reason)
        }) {
            repeated += 1;
        } else {
            crate::log_line!("rules: skipped '{}': {}", s.rule, s.reason);
        }
    }
    let same = match repeated {
        0 => String::new(),
        n => format!(" ({n} warning and skip lines as before)"),
    };
    crate::log_line!(
        "rules: {} loaded, {} skipped, {} disabled, {} below the minimum priority{same}",
        r.rules.len(),
        r.skipped.len(),
        r.disabled,
        r.below_priority
    );
}

/// The rule engine over the loaded rules, or None when there are none. The
/// rules' names for the host's container fields come from the seeded table.
fn engine(cfg: &mut AgentConfig, hostname: &str, state: &State) -> Option<Engine> {
    if cfg.rules.rules.is_empty() {
        return None;
    }
    let set = std::mem::replace(&mut cfg.rules, RuleSet::empty());
    let users = Users::new(&crate::procfs::host_dir());
    Some(Engine::new(
        set,
        &cfg.engine,
        hostname,
        users,
        host_facts(state),
    ))
}

/// What the rules read of the host (container.start_ts: pid 1's start).
fn host_facts(state: &State) -> HostFacts {
    let boot_ns = crate::base::time::boot_ts_ns();
    HostFacts {
        init_start_ns: state.thread(1).map_or(0, |t| (boot_ns + t.start_ns) as i64),
    }
}

/// Once attached: the pidfile, then the switch to --user (or the drop of
/// every capability but those the loop needs). Returns the kept set.
fn settle_process(checked: &mut Checked) -> Result<String, StartError> {
    if let Some(p) = &mut checked.pidfile {
        p.write(std::process::id()).map_err(StartError::env)?;
    }
    crate::privilege::drop_after_attach(checked.user.as_ref())
        .map(crate::privilege::names)
        .map_err(StartError::env)
}

/// Where each record goes: the pipeline, from the buffer's callback.
fn ring_buffer<'a>(
    probe: &Probe<'a>,
    cfg: &ProbeConfig,
    pipeline: &'a RefCell<Pipeline>,
) -> Result<Records<'a>, StartError> {
    let deliver = |data: &[u8]| pipeline.borrow_mut().on_record(data);
    Records::open(probe, cfg, deliver)
        .map_err(|e| StartError::env(format!("{}: {e}", probe.buffer().0.name())))
}

/// The loop's sources: the ring, the snapshot, drain and stop timers, the
/// signalfd and the exporter's listener.
fn register_sources(
    cfg: &AgentConfig,
    ring: &Records<'_>,
    signals: OwnedFd,
    prom: Option<&mut Prometheus>,
    rules: bool,
) -> Result<Sources, StartError> {
    let poll = Poll::new().map_err(|e| StartError::env(format!("epoll: {e}")))?;
    let snapshot = timer(cfg.interval_ns, true)?;
    let drain = timer(DRAIN_NS, true)?;
    let stop = cfg
        .duration_ns
        .map(|d| timer(d.max(1), false))
        .transpose()?;
    let mut failed = None;
    ring.for_each_fd(|fd| {
        if failed.is_none() {
            failed = register(&poll, fd, RING).err();
        }
    });
    if let Some(e) = failed {
        return Err(e);
    }
    register(&poll, snapshot.as_fd().as_raw_fd(), SNAPSHOT)?;
    register(&poll, drain.as_fd().as_raw_fd(), DRAIN)?;
    register(&poll, signals.as_fd().as_raw_fd(), SIGNAL)?;
    if let Some(t) = &stop {
        register(&poll, t.as_fd().as_raw_fd(), STOP)?;
    }
    let alert_drain = rules.then(|| timer(ALERT_DRAIN_NS, true)).transpose()?;
    if let Some(t) = &alert_drain {
        register(&poll, t.as_fd().as_raw_fd(), ALERT_DRAIN)?;
    }
    let mut waker = None;
    if let Some(p) = prom {
        p.register(poll.registry(), PROMETHEUS, &mut waker)
            .map_err(|e| StartError::env(format!("epoll register: {e}")))?;
        if let Some(a) = p.local_addr() {
            let scheme = if p.is_tls() { "https" } else { "http" };
            let notes = if p.notes.is_empty() {
                String::new()
            } else {
                format!(" ({})", p.notes)
            };
            crate::log_line!("serving Prometheus metrics on {scheme}://{a}/metrics{notes}");
        }
    }
    Ok(Sources {
        poll,
        snapshot,
        drain,
        signals,
        _stop: stop,
        alert_drain,
        waker,
    })
}

/// The container memory file: libsinsp's SINSP_AGENT_CGROUP_MEM_PATH_ENV_VAR.
fn resources() -> Resources {
    match std::env::var("FALCO_CGROUP_MEM_PATH") {
        Ok(p) if !p.is_empty() => {
            Resources::on_host("/", crate::procfs::host_dir()).with_container_memory_file(p)
        }
        _ => Resources::on_host("/", crate::procfs::host_dir()),
    }
}
