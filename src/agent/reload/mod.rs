//! SIGHUP: the configuration read again, without a restart. Falco restarts
//! its whole engine on a change and loses its state; here the tables,
//! counters, rates and the ring keep going. What can change live changes:
//! the snapshot interval (the next snapshot comes no later than the old
//! interval would have), the outputs (outputs.rs: unchanged ones keep
//! their queue and connection, removed ones deliver what they hold), the
//! Prometheus exporter (address, names, web config read again, on or off),
//! the rules with their priority, rate limit and matching (rules.rs: the
//! counters of rules that stay go on), the metrics knobs and schema, the
//! drop-alert settings, the culprit list lengths, the purge settings, rule
//! counters. What is fixed at load (the probe: syscalls, ring, enter
//! events, attach, BTF, culprit counters; the table sizes; the user,
//! pidfile and duration) keeps its running value, and one line names each
//! key that would need a restart. A file that does not parse, or rules that
//! do not load, change nothing and say so in one line; an output or an
//! exporter setting that cannot be opened keeps the running one, one line.
//! Runs on the signal, never per event.

mod outputs;
mod rules;

use rustix::time::{timerfd_gettime, timerfd_settime, Itimerspec, TimerfdTimerFlags, Timespec};

use super::build::RestartKeys;
use super::serve::Agent;
use super::AgentConfig;
use crate::capture::syscalls::Selection;
use crate::metrics::culprits::CulpritConfig;

/// What start fixed, as a reload compares it, and the interval the
/// snapshot timer runs at.
pub(super) struct Running {
    pub tokens: Option<Vec<String>>,
    pub interval_ns: u64,
    keys: RestartKeys,
    /// The probe's syscall selection (with the start's rules).
    selection: Selection,
    /// The probe copies failed opens' paths (loaded with rules).
    failed_open_paths: bool,
    /// The rule engine's settings now (rate limit, matching).
    engine: crate::rules::engine::EngineConfig,
}

impl Running {
    pub fn of(cfg: &AgentConfig) -> Running {
        Running {
            tokens: cfg.reload_tokens.clone(),
            interval_ns: cfg.interval_ns,
            keys: cfg.restart_keys.clone(),
            selection: cfg.probe.selection.clone(),
            failed_open_paths: cfg.probe.failed_open_paths,
            engine: cfg.engine.clone(),
        }
    }

    /// The restart-only keys whose value `new` changes.
    fn changed(&self, new: &RestartKeys) -> Vec<&'static str> {
        self.keys
            .iter()
            .zip(new)
            .filter(|(a, b)| a.1 != b.1)
            .map(|(a, _)| a.0)
            .collect()
    }
}

/// Re-arms the snapshot timer at `ns`, its next expiry no later than it was.
/// True when an expiry was pending: setting the timer clears it, so the
/// caller takes that snapshot now.
fn rearm(fd: &rustix::fd::OwnedFd, ns: u64) -> bool {
    let mut b = [0u8; 8];
    let pending = rustix::io::read(fd, &mut b).is_ok_and(|n| n == 8 && u64::from_ne_bytes(b) > 0);
    let ts = |ns: u64| Timespec {
        tv_sec: (ns / 1_000_000_000) as i64,
        tv_nsec: (ns % 1_000_000_000) as i64,
    };
    let left = timerfd_gettime(fd).map_or(ns, |c| {
        c.it_value.tv_sec as u64 * 1_000_000_000 + c.it_value.tv_nsec as u64
    });
    let spec = Itimerspec {
        it_interval: ts(ns),
        it_value: ts(left.min(ns).max(1)),
    };
    let _ = timerfd_settime(fd, TimerfdTimerFlags::empty(), &spec);
    pending
}

impl Agent<'_> {
    /// SIGHUP's second half (outputs were reopened): the configuration again.
    pub(super) fn reload(&mut self) {
        let Some(tokens) = self.running.tokens.as_ref() else {
            return;
        };
        if !tokens
            .iter()
            .any(|t| t == "--config" || t.starts_with("--config="))
        {
            return;
        }
        let t0 = crate::base::time::monotonic_ns();
        let (mut new, fixed) = match super::build::for_reload(tokens) {
            Ok(c) => c,
            Err(e) => {
                crate::log_line!("config reload: {e}; the running configuration stays");
                return;
            }
        };
        let keys = self.running.changed(&fixed);
        if !keys.is_empty() {
            crate::log_line!(
                "config reload: {} changed, which needs a restart; the running value stays",
                keys.join(", ")
            );
        }
        self.snapshots
            .snap
            .set_reload_ts(crate::base::time::realtime_ns());
        self.reload_outputs(&new);
        self.reload_prometheus(&new);
        let set = std::mem::replace(&mut new.rules, crate::rules::RuleSet::empty());
        self.reload_rules(set, &new.engine);
        self.apply(&new);
        crate::log_line!(
            "config reload: applied in {} ms (interval {} ms, schema {}, {} outputs, {} rules)",
            (crate::base::time::monotonic_ns() - t0) / 1_000_000,
            new.interval_ns / 1_000_000,
            new.metrics.schema.name(),
            self.outputs.outputs().len(),
            self.pipeline
                .borrow()
                .rules
                .as_ref()
                .map_or(0, |e| e.set.rules.len())
        );
    }

    fn apply(&mut self, new: &AgentConfig) {
        let mut due = false;
        if new.interval_ns != self.running.interval_ns {
            due = rearm(&self.sources.snapshot, new.interval_ns);
            self.running.interval_ns = new.interval_ns;
        }
        let snap = &mut self.snapshots.snap;
        if snap.cfg.schema != new.metrics.schema {
            // Another event unit (metrics::units): no rate across the change.
            snap.restart_window();
        }
        snap.cfg = new.metrics;
        if let Some(c) = self.snapshots.culprits.as_mut() {
            c.cfg = CulpritConfig {
                top_syscalls: new.culprits.top_syscalls,
                top_procs: new.culprits.top_procs,
                ..c.cfg
            };
        }
        self.drops
            .reconfigure(new.drops.clone(), new.metrics.schema);
        self.purge_every = super::ticks_in(new.thread_purge_interval_ns).max(1);
        self.timeout_ticks = super::ticks_in(new.thread_timeout_ns).min(u64::from(u32::MAX)) as u32;
        self.rules_counters = new.rules_counters;
        if due {
            self.take_snapshot();
        }
    }
}
