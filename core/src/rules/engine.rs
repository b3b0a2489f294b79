//! The rules on the per-event path: one index lookup per record, the
//! candidate rules in load order until the first match (Falco's default
//! `rule_matching: first`, falco.yaml), a token bucket in front of the
//! alerts (Falco's `outputs.rate`/`outputs.max_burst` before 0.37,
//! process_events.cpp; libs token_bucket.cpp) with every suppressed alert
//! counted, and the rendered lines queued for the loop to hand to the
//! outputs right after the ring is drained. Nothing here allocates per
//! event: the queue and the render buffers are sized at start.

use super::alert::AlertWriter;
use super::eval::{eval, Scratch};
use super::events::{code_of, CodeMap, PROCEXIT};
use super::extract::{EventView, HostFacts};
use super::users::Users;
use super::RuleSet;
use crate::base::bucket::TokenBucket;
use crate::capture::record::Record;
use crate::capture::skel::types::kestrel_flags as KF;
use crate::state::State;

#[derive(Clone, Debug, PartialEq)]
pub struct EngineConfig {
    /// Alerts per second once the burst is spent; 0 turns the limit off.
    pub rate: f64,
    pub max_burst: f64,
    /// Every matching rule alerts (`rule_matching: all`), not just the first.
    pub match_all: bool,
    /// Bytes of rendered alerts held between two drains of the ring.
    pub queue_bytes: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            rate: 10.0,
            max_burst: 100.0,
            match_all: false,
            queue_bytes: 64 << 10,
        }
    }
}

/// Counters the snapshot and /metrics report.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RuleCounters {
    /// falco.rules.matches_total: every match, limited or not.
    pub matches_total: u64,
    /// Per rule, in `RuleSet::rules` order.
    pub by_rule: Vec<u64>,
    /// kestrel.alerts_rate_limited: matches the token bucket suppressed.
    pub rate_limited: u64,
    /// kestrel.alerts_queue_drops: alerts the full queue could not take.
    pub queue_drops: u64,
    /// kestrel.alerts_emitted: alert lines handed to the outputs.
    pub emitted: u64,
    /// kestrel.rules_evaluated: rule conditions evaluated.
    pub evaluated: u64,
}

/// Rendered alert lines between two drains: (severity, length) records
/// over one byte buffer, both fixed at start.
pub struct AlertQueue {
    bytes: Vec<u8>,
    lines: Vec<(u8, u32)>,
    cap: usize,
}

impl AlertQueue {
    fn new(cap: usize) -> AlertQueue {
        AlertQueue {
            bytes: Vec::with_capacity(cap),
            lines: Vec::with_capacity(cap / 256 + 1),
            cap,
        }
    }

    fn push(&mut self, severity: u8, line: &[u8]) -> bool {
        if self.bytes.len() + line.len() > self.cap || self.lines.len() == self.lines.capacity() {
            return false;
        }
        self.bytes.extend_from_slice(line);
        self.lines.push((severity, line.len() as u32));
        true
    }

    /// Hands every line to `f` (severity, line) and empties the queue.
    pub fn drain(&mut self, mut f: impl FnMut(u8, &[u8])) {
        let mut at = 0usize;
        for &(sev, len) in &self.lines {
            let end = at + len as usize;
            f(sev, &self.bytes[at..end]);
            at = end;
        }
        self.bytes.clear();
        self.lines.clear();
    }

    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }
}

pub struct Engine {
    pub set: RuleSet,
    /// `falco.rules.<name>` per rule (falco utils.cpp sanitize_rule_name).
    pub keys: Vec<String>,
    /// `tag_<tag>` label names per rule (falco_metrics.cpp, 0.44.1).
    pub tag_labels: Vec<Vec<String>>,
    pub counters: RuleCounters,
    pub queue: AlertQueue,
    pub users: Users,
    pub host: HostFacts,
    codes: CodeMap,
    execve: u16,
    clone: u16,
    scratch: Scratch,
    writer: AlertWriter,
    bucket: Option<TokenBucket>,
    match_all: bool,
}

impl Engine {
    pub fn new(
        set: RuleSet,
        cfg: &EngineConfig,
        hostname: &str,
        users: Users,
        host: HostFacts,
    ) -> Engine {
        let n = set.rules.len();
        let keys = set
            .rules
            .iter()
            .map(|r| {
                let mut k = format!("falco.rules.{}", sanitize_rule_name(&r.name));
                // The snapshot's keys are bounded; a longer name is cut at a char.
                while k.len() > crate::metrics::KEY_MAX {
                    k.pop();
                }
                k
            })
            .collect();
        let tag_labels = set
            .rules
            .iter()
            .map(|r| {
                r.tags
                    .iter()
                    .map(|t| format!("tag_{}", label_name(t)))
                    .collect()
            })
            .collect();
        Engine {
            keys,
            tag_labels,
            counters: RuleCounters {
                by_rule: vec![0; n],
                ..RuleCounters::default()
            },
            queue: AlertQueue::new(cfg.queue_bytes),
            users,
            host,
            codes: CodeMap::default(),
            execve: code_of("execve").unwrap_or(u16::MAX),
            clone: code_of("clone").unwrap_or(u16::MAX),
            scratch: Scratch::default(),
            writer: AlertWriter::new(hostname),
            bucket: (cfg.rate > 0.0).then(|| {
                TokenBucket::new(cfg.rate, cfg.max_burst, crate::base::time::monotonic_ns())
            }),
            match_all: cfg.match_all,
            set,
        }
    }

    /// The alert bucket, for the engine a reload makes (`keep_bucket`).
    pub fn take_bucket(&mut self) -> Option<TokenBucket> {
        self.bucket.take()
    }

    /// A reload at the same rate and burst: the running bucket goes on, so
    /// a SIGHUP never hands out a fresh burst.
    pub fn keep_bucket(&mut self, old: Option<TokenBucket>) {
        if self.bucket.is_some() && old.is_some() {
            self.bucket = old;
        }
    }

    /// The event code of a record (None: no rule can name it).
    #[inline]
    fn code(&self, rec: &Record<'_>) -> Option<u16> {
        let h = rec.hdr();
        match rec {
            Record::ProcExit { .. } => Some(PROCEXIT),
            // Every successful exec arrives as execve (sched_process_exec.bpf.c).
            Record::Exec { task: Some(_), .. } => Some(self.execve),
            _ if h.nr < 0 => Some(self.clone),
            _ => self.codes.syscall(h.nr, rec.has_flag(KF::KF_COMPAT)),
        }
    }

    /// Runs the rules that may match `rec`; `num` is evt.num.
    #[inline]
    pub fn on_record(&mut self, rec: &Record<'_>, state: &State, num: u64) {
        let Some(code) = self.code(rec) else { return };
        if self.set.candidates(code).is_empty() {
            return;
        }
        self.evaluate(rec, state, num, code);
    }

    #[inline(never)]
    fn evaluate(&mut self, rec: &Record<'_>, state: &State, num: u64, code: u16) {
        let view = EventView {
            rec,
            hdr: rec.hdr(),
            state,
            users: &self.users,
            host: &self.host,
            code,
            num,
            lazy: Default::default(),
        };
        for &id in self.set.candidates(code) {
            let rule = &self.set.rules[usize::from(id)];
            self.counters.evaluated += 1;
            if !eval(&rule.condition, &view, &mut self.scratch) {
                continue;
            }
            let out = Out {
                counters: &mut self.counters,
                bucket: &mut self.bucket,
                writer: &mut self.writer,
                queue: &mut self.queue,
            };
            out.on_match(rule, id, &view);
            if !self.match_all {
                break;
            }
        }
    }
}

/// What a match touches, apart from what the event view borrows.
struct Out<'e> {
    counters: &'e mut RuleCounters,
    bucket: &'e mut Option<TokenBucket>,
    writer: &'e mut AlertWriter,
    queue: &'e mut AlertQueue,
}

impl Out<'_> {
    /// Counts a match and renders its alert unless the bucket says no.
    /// Out of line: matches are rare, and the render's buffers would
    /// otherwise sit in every evaluation's frame.
    #[cold]
    #[inline(never)]
    fn on_match(self, rule: &super::Rule, id: u16, view: &EventView<'_>) {
        self.counters.matches_total += 1;
        if let Some(c) = self.counters.by_rule.get_mut(usize::from(id)) {
            *c += 1;
        }
        let allowed = match self.bucket {
            Some(b) => b.claim(crate::base::time::monotonic_ns()),
            None => true,
        };
        if !allowed {
            self.counters.rate_limited += 1;
            return;
        }
        let line = self.writer.render(rule, view, view.time_ns());
        if self.queue.push(rule.priority.severity(), line) {
            self.counters.emitted += 1;
        } else {
            self.counters.queue_drops += 1;
        }
    }
}

/// falco utils.cpp `sanitize_rule_name`: every character outside
/// `[a-zA-Z0-9_:]` becomes `_`, runs of `_` collapse, a trailing `_` goes.
pub fn sanitize_rule_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        let c = if c.is_ascii_alphanumeric() || c == ':' {
            c
        } else {
            '_'
        };
        if c == '_' && out.ends_with('_') {
            continue;
        }
        out.push(c);
    }
    if out.ends_with('_') {
        out.pop();
    }
    out
}

/// A Prometheus label name: `[a-zA-Z0-9_]`, anything else `_`.
fn label_name(t: &str) -> String {
    t.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}
