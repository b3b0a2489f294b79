//! The running agent: what the loop owns once the probe is attached, the
//! loop itself, one snapshot, and the orderly end. `run` in mod.rs builds
//! it; nothing here starts or loads anything.

use std::cell::RefCell;
use std::os::fd::OwnedFd;

use mio::{Events, Poll};

use super::events::{check_drops, drain_timer, read_signals, state_tick};
use super::{RunEnd, StartError, ALERT_DRAIN, DRAIN, FINISH_NS, RING, SIGNAL, SNAPSHOT, STOP};
use crate::alerts::DropMonitor;
use crate::capture::source::Records;
use crate::capture::{Probe, ProgStats};
use crate::log::Key;
use crate::metrics::culprits::Culprits;
use crate::metrics::{Inputs, Snapshotter};
use crate::output::prometheus::{Fresh, Prometheus};
use crate::output::Outputs;
use crate::preflight::Checked;
use crate::state::pipeline::Pipeline;

/// Drains of the ring a snapshot makes at most to catch up with the
/// kernel's counters (settled_counters).
const SETTLE_TRIES: usize = 4;
/// Drain ticks between two checks of /etc/passwd and /etc/group (10 s).
const USERS_REFRESH_TICKS: u64 = 100;

/// The event sources the loop waits on, registered with `poll`.
pub(super) struct Sources {
    pub poll: Poll,
    pub snapshot: OwnedFd,
    pub drain: OwnedFd,
    pub signals: OwnedFd,
    /// --duration's one-shot timer; kept open while the loop runs.
    pub _stop: Option<OwnedFd>,
    /// With rules loaded: a shorter drain for alert latency (ALERT_DRAIN_NS).
    pub alert_drain: Option<OwnedFd>,
    /// The exporter's Waker (Basic auth), made once: mio allows one per Poll.
    pub waker: Option<std::sync::Arc<mio::Waker>>,
}

/// Snapshot assembly across intervals: the renderer, the culprit lists and
/// the figures carried from one snapshot to the next.
pub(super) struct Snapshots {
    pub snap: Snapshotter,
    pub culprits: Option<Culprits>,
    pub progs: heapless::Vec<ProgStats, 8>,
    pub last_drops: u64,
    /// (events, drops) per possible CPU, sized at start; filled only when
    /// kernel_event_counters_per_cpu_enabled.
    pub per_cpu: Vec<(u64, u64)>,
    /// Snapshots that did not render (counted with the write errors).
    pub render_errors: u64,
}

pub(super) struct Agent<'a> {
    pub probe: Probe<'a>,
    pub ring: Records<'a>,
    pub pipeline: &'a RefCell<Pipeline>,
    pub outputs: Outputs,
    pub prom: Option<Prometheus>,
    pub sources: Sources,
    pub snapshots: Snapshots,
    pub drops: DropMonitor,
    /// Drain ticks so far, and the purge cadence in ticks.
    pub ticks: u64,
    pub purge_every: u64,
    pub timeout_ticks: u32,
    /// metrics.rules_counters_enabled.
    pub rules_counters: bool,
    /// What start fixed, for SIGHUP's reload (reload.rs).
    pub running: super::reload::Running,
}

impl Agent<'_> {
    /// Drains the ring, reads the kernel counters and writes one snapshot to
    /// every output (and the exporter). False when it did not render.
    pub fn take_snapshot(&mut self) -> bool {
        let kernel = self.settled_counters();
        let s = &mut self.snapshots;
        self.probe.prog_stats(&mut s.progs);
        if s.snap.cfg.kernel_event_counters_per_cpu_enabled {
            self.probe.per_cpu(&mut s.per_cpu);
        }
        if let (Some(cul), Some(act)) = (&mut s.culprits, &mut self.pipeline.borrow_mut().activity)
        {
            let unnumbered = self.probe.syscall_counts(cul.counts_mut());
            let interval_drops = kernel.n_drops().saturating_sub(s.last_drops);
            let probe = &self.probe;
            cul.read_calls(crate::base::time::monotonic_ns(), |f| probe.calls_by_pid(f));
            cul.update(unnumbered, |f| probe.drops_by_pid(f), interval_drops, act);
        }
        s.last_drops = kernel.n_drops();
        let p = self.pipeline.borrow();
        let prom_errors = self.prom.as_ref().map_or(0, |p| p.write_errors);
        let inputs = inputs(
            &self.probe,
            &p,
            (&s.progs, s.culprits.as_ref(), &s.per_cpu),
            &self.outputs,
            s.render_errors + prom_errors,
            self.rules_counters,
            kernel,
        );
        let r = s.snap.render(&inputs);
        // An empty render is never written as a line.
        if r.line.len() <= 1 {
            s.render_errors += 1;
            crate::log_limited!(
                Key::Render,
                "a snapshot did not fit its buffer: not written"
            );
            return false;
        }
        self.outputs.write(r.line, r.time);
        if let Some(prom) = self.prom.as_mut() {
            let snap = &s.snap;
            prom.publish(
                self.sources.poll.registry(),
                &snap.cfg,
                snap.host(),
                &inputs,
                snap.last_resources.as_ref(),
            );
        }
        true
    }

    /// Drains the ring and reads the kernel's counters, again while they
    /// count records the drain has not taken yet (ones sent in between), a
    /// few times at most: a snapshot then accounts for every event,
    /// n_evts = num_evts + n_drops, even under load.
    fn settled_counters(&mut self) -> crate::capture::KernelCounters {
        let _ = self.ring.consume();
        let mut kernel = self.probe.counters();
        for _ in 0..SETTLE_TRIES {
            let took = self.pipeline.borrow().num_evts;
            if kernel.n_evts <= took + kernel.n_drops() {
                break;
            }
            let _ = self.ring.consume();
            kernel = self.probe.counters();
        }
        kernel
    }

    /// The loop: until a stop signal, --duration or the `exit` drop action.
    pub fn serve(&mut self) -> Result<RunEnd, StartError> {
        let mut events = Events::with_capacity(16);
        loop {
            if let Err(e) = self.sources.poll.poll(&mut events, None) {
                if e.kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(StartError::env(format!("epoll_wait: {e}")));
            }
            for ev in events.iter() {
                match ev.token() {
                    RING => {
                        let _ = self.ring.consume();
                        self.deliver_alerts();
                    }
                    ALERT_DRAIN => {
                        if let Some(t) = &self.sources.alert_drain {
                            drain_timer(t);
                        }
                        let _ = self.ring.consume();
                        self.deliver_alerts();
                    }
                    DRAIN => {
                        if self.on_drain_tick() {
                            return Ok(RunEnd::DropExit);
                        }
                    }
                    SNAPSHOT => {
                        drain_timer(&self.sources.snapshot);
                        self.take_snapshot();
                    }
                    STOP => return Ok(RunEnd::Stopped),
                    SIGNAL => {
                        let (stop, hup) = read_signals(&self.sources.signals);
                        if hup {
                            self.outputs.reopen();
                            if let Some(p) = self.prom.as_mut() {
                                p.reopen();
                            }
                            self.reload();
                        }
                        if stop {
                            return Ok(RunEnd::Stopped);
                        }
                    }
                    t => {
                        if let Some(p) = self.prom.as_mut().filter(|p| p.owns(t)) {
                            p.on_event(self.sources.poll.registry(), t);
                            if p.render_wanted() {
                                self.render_for_scrape();
                            }
                        }
                    }
                }
            }
        }
    }

    /// Every DRAIN_NS: drain, let the exporter and stalled outputs move,
    /// the state's housekeeping, Falco's drop check. True: the `exit` action.
    fn on_drain_tick(&mut self) -> bool {
        drain_timer(&self.sources.drain);
        let _ = self.ring.consume();
        self.deliver_alerts();
        if let Some(p) = self.prom.as_mut() {
            p.tick(self.sources.poll.registry());
        }
        self.outputs.flush();
        self.ticks += 1;
        let mut p = self.pipeline.borrow_mut();
        // user.name and group.name follow edits of /etc/passwd and /etc/group.
        if self.ticks % USERS_REFRESH_TICKS == 0 {
            if let Some(e) = p.rules.as_mut() {
                e.users.refresh();
            }
        }
        state_tick(
            &mut p.state,
            self.ticks,
            self.purge_every,
            self.timeout_ticks,
        );
        check_drops(
            &mut self.drops,
            &p.state,
            &mut self.probe,
            &mut self.outputs,
        )
    }

    /// Rendered alerts, from the pipeline's queue to every output, right
    /// after the ring was drained.
    pub(super) fn deliver_alerts(&mut self) {
        let mut p = self.pipeline.borrow_mut();
        let Some(e) = p.rules.as_mut() else { return };
        if e.queue.is_empty() {
            return;
        }
        let mut tb = [0u8; 40];
        let time = crate::base::time::rfc3339_nanos(crate::base::time::realtime_ns(), &mut tb);
        let outputs = &mut self.outputs;
        e.queue
            .drain(|sev, line| outputs.write_alert(line, time, sev));
    }

    /// A scrape found the text older than FRESH_NS: current figures, read
    /// now as Falco's webserver reads them per request. The ring is drained
    /// first so falco.num_evts keeps up with scap.n_evts; the culprit lists
    /// stay the last snapshot's (they are per-interval figures).
    pub(super) fn render_for_scrape(&mut self) {
        let started = crate::base::time::monotonic_ns();
        let _ = self.ring.consume();
        self.deliver_alerts();
        let s = &mut self.snapshots;
        self.probe.prog_stats(&mut s.progs);
        let kernel = self.probe.counters();
        let resources = s.snap.peek_resources();
        let p = self.pipeline.borrow();
        let Some(prom) = self.prom.as_mut() else {
            return;
        };
        let i = inputs(
            &self.probe,
            &p,
            (&s.progs, s.culprits.as_ref(), &s.per_cpu),
            &self.outputs,
            s.render_errors + prom.write_errors,
            self.rules_counters,
            kernel,
        );
        let view = Fresh {
            cfg: &s.snap.cfg,
            host: s.snap.host(),
            inputs: &i,
            resources: resources.as_ref(),
        };
        prom.serve_fresh(self.sources.poll.registry(), view, started);
    }

    /// Detach, drain what is left, the last drop check and the final
    /// snapshot, then give the outputs FINISH_NS to take it.
    pub fn finish(mut self, end: RunEnd, checked: &mut Checked) {
        // Detach first so the final drain and counter read account for every record.
        self.probe.detach();
        let _ = self.ring.consume();
        // Drops of the last partial second are reported before the final snapshot.
        if end == RunEnd::Stopped {
            let now = crate::base::time::monotonic_ns();
            let o = self.drops.check(now, &self.probe.counters());
            if o.alert {
                self.outputs.write(self.drops.line(), self.drops.time());
            }
        }
        self.take_snapshot();
        self.outputs.finish(FINISH_NS);
        self.outputs.log_summary();
        if let Some(lost) = self.ring.lost() {
            let drops = self.probe.counters().n_drops_buffer_total;
            crate::log_line!(
                "perf buffers: {lost} samples lost (perf's count), {drops} full-buffer drops (the probe's, in the drop buckets)"
            );
        }
        if let Some(p) = &mut checked.pidfile {
            p.remove();
        }
    }
}

/// What a snapshot or a render of /metrics reads, at this moment.
fn inputs<'a>(
    probe: &'a Probe<'_>,
    p: &'a Pipeline,
    (progs, culprits, per_cpu): (&'a [ProgStats], Option<&'a Culprits>, &'a [(u64, u64)]),
    outputs: &Outputs,
    other_errors: u64,
    rules_counters: bool,
    kernel: crate::capture::KernelCounters,
) -> Inputs<'a> {
    Inputs {
        kestrel_n_fds: p.state.n_fds() as u64,
        num_evts: p.num_evts,
        num_evts_no_enter: p.num_evts_no_enter,
        enter_events: p.enter_events(),
        num_compat_evts: p.num_compat_evts,
        attach: probe.attach_path().name(),
        outputs_queue_num_drops: outputs.queue_drops(),
        output_write_errors: outputs.write_errors() + other_errors,
        mqtt_drops: outputs.net_drops("mqtt"),
        syslog_stream_drops: outputs.net_drops("syslog+"),
        kernel,
        per_cpu,
        state: p.state.counters,
        n_threads: p.state.n_threads() as u64,
        n_fds: p.state.n_fds_falco(),
        progs,
        culprits,
        rules: p.rules.as_ref(),
        rules_counters,
    }
}
