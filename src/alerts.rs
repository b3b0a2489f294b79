//! Drop alerts as Falco's `syscall_event_drops` (falco userspace/falco/
//! event_drops.cpp, syscall_evt_drop_mgr): once a second the kernel counters
//! are compared with the previous check; new drops whose share of new events
//! is above `threshold` take one token from a bucket (libsinsp
//! token_bucket.cpp: `rate` tokens per second, at most `max_burst`) and, if
//! one was there, run the actions: ignore, log, alert (Falco's JSON, written
//! to the snapshot outputs) or exit (status `EXIT_ON_DROPS`). Kestrel checks
//! on its own 1 s timer rather than on event timestamps, so an alert follows
//! the first drop within about a second even when no event flows. A full
//! thread or fd table raises a separate, equally rate-limited alert.

use core::fmt::Write as _;

use heapless::String as HString;

use crate::base::time;
use crate::capture::{KernelCounters, KC_MAX};
use crate::metrics::rule_output::RuleOutput;
use crate::metrics::schema::CATEGORY_NAMES;
use crate::metrics::units;
use crate::metrics::Schema;

use crate::base::bucket::TokenBucket;

/// Exit status after an `exit` action, so an init watchdog can tell it apart
/// (1 is a start-up failure, 2 bad input).
pub const EXIT_ON_DROPS: i32 = 3;
/// Largest alert line.
pub const ALERT_MAX: usize = 4096;
const CHECK_NS: u64 = 1_000_000_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DropAction {
    Ignore,
    Log,
    Alert,
    Exit,
}

/// The knobs of falco.yaml's `syscall_event_drops:` (simulate_drops aside).
#[derive(Clone, Debug, PartialEq)]
pub struct DropAlertConfig {
    pub actions: Vec<DropAction>,
    pub threshold: f64,
    pub rate: f64,
    pub max_burst: f64,
}

impl Default for DropAlertConfig {
    /// falco.yaml's defaults.
    fn default() -> Self {
        DropAlertConfig {
            actions: vec![DropAction::Log, DropAction::Alert],
            threshold: 0.1,
            rate: 0.03333,
            max_burst: 1.0,
        }
    }
}

/// Parses Falco's action list (`log,alert`); `ignore` stands alone.
pub fn parse_actions(s: &str) -> Result<Vec<DropAction>, String> {
    let mut v = Vec::new();
    for a in s.split(',').map(str::trim).filter(|a| !a.is_empty()) {
        let act = match a {
            "ignore" => DropAction::Ignore,
            "log" => DropAction::Log,
            "alert" => DropAction::Alert,
            "exit" => DropAction::Exit,
            _ => {
                return Err(format!(
                    "unknown action '{a}' (use ignore, log, alert, exit)"
                ))
            }
        };
        if !v.contains(&act) {
            v.push(act);
        }
    }
    if v.is_empty() {
        return Err("empty action list".into());
    }
    if v.contains(&DropAction::Ignore) && v.len() > 1 {
        return Err("'ignore' cannot be combined with other actions".into());
    }
    Ok(v)
}

/// What a check decided: write `line()` to the outputs, and/or stop.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    pub alert: bool,
    pub exit: bool,
}

pub struct DropMonitor {
    cfg: DropAlertConfig,
    bucket: TokenBucket,
    table_bucket: TokenBucket,
    last: KernelCounters,
    last_full: (u64, u64),
    next_check_ns: u64,
    /// Falco's print_stats figures.
    pub n_detected: u64,
    pub n_actions: u64,
    buf: Box<[u8]>,
    len: usize,
    hostname: String,
    /// Which buckets Falco names in the alert (the snapshot's schema).
    schema: Schema,
    /// Enter records captured: records are already falco-0.37's events.
    enter_events: bool,
    /// The next check only takes its baseline (a reload changed the unit).
    rebase: bool,
    time_buf: [u8; 40],
    time_len: usize,
}

/// Counter growth since `prev`, field by field.
pub fn delta(cur: &KernelCounters, prev: &KernelCounters) -> KernelCounters {
    let mut d = KernelCounters {
        n_evts: cur.n_evts.saturating_sub(prev.n_evts),
        n_drops_buffer_total: cur
            .n_drops_buffer_total
            .saturating_sub(prev.n_drops_buffer_total),
        n_drops_scratch_map: cur
            .n_drops_scratch_map
            .saturating_sub(prev.n_drops_scratch_map),
        n_drops_page_faults: cur
            .n_drops_page_faults
            .saturating_sub(prev.n_drops_page_faults),
        n_drops_bug: cur.n_drops_bug.saturating_sub(prev.n_drops_bug),
        ..KernelCounters::default()
    };
    for (i, row) in d.n_drops_buffer.iter_mut().enumerate() {
        for (j, v) in row.iter_mut().enumerate() {
            *v = cur.n_drops_buffer[i][j].saturating_sub(prev.n_drops_buffer[i][j]);
        }
    }
    d
}

fn num(v: u64) -> HString<24> {
    let mut s = HString::new();
    let _ = write!(s, "{v}");
    s
}

impl DropMonitor {
    pub fn new(
        cfg: DropAlertConfig,
        schema: Schema,
        hostname: &str,
        start: KernelCounters,
    ) -> Self {
        let now = time::monotonic_ns();
        DropMonitor {
            bucket: TokenBucket::new(cfg.rate, cfg.max_burst, now),
            table_bucket: TokenBucket::new(cfg.rate, cfg.max_burst, now),
            cfg,
            last: start,
            last_full: (0, 0),
            next_check_ns: now + CHECK_NS,
            n_detected: 0,
            n_actions: 0,
            buf: vec![0u8; ALERT_MAX].into_boxed_slice(),
            len: 0,
            hostname: hostname.to_string(),
            schema,
            enter_events: false,
            rebase: false,
            time_buf: [0u8; 40],
            time_len: 0,
        }
    }

    /// Counts in the schema's event unit as the snapshot does
    /// (metrics::units): without enter capture, falco-0.37's alert counts a
    /// syscall record as its enter and exit, as 0.37 did.
    pub fn with_enter_events(mut self, on: bool) -> Self {
        self.enter_events = on;
        self
    }

    /// SIGHUP's new settings; the token buckets start full again.
    pub fn reconfigure(&mut self, cfg: DropAlertConfig, schema: Schema) {
        let now = time::monotonic_ns();
        self.bucket = TokenBucket::new(cfg.rate, cfg.max_burst, now);
        self.table_bucket = TokenBucket::new(cfg.rate, cfg.max_burst, now);
        self.cfg = cfg;
        self.rebase |= schema != self.schema;
        self.schema = schema;
    }

    /// Whether a second has passed since the last check.
    pub fn due(&self, now_ns: u64) -> bool {
        now_ns >= self.next_check_ns
    }

    /// The last alert line written by `check` or `check_tables`.
    pub fn line(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// That alert's time, RFC 3339 (syslog's header carries it).
    pub fn time(&self) -> &str {
        core::str::from_utf8(&self.time_buf[..self.time_len]).unwrap_or("")
    }

    /// syscall_evt_drop_mgr::process_event's once-a-second body.
    pub fn check(&mut self, now_ns: u64, k: &KernelCounters) -> Outcome {
        let k = &units::kernel_in_schema_unit(self.schema, self.enter_events, k);
        self.next_check_ns = now_ns + CHECK_NS;
        if std::mem::take(&mut self.rebase) {
            self.last = *k;
            return Outcome::default();
        }
        let d = delta(k, &self.last);
        self.last = *k;
        let drops = d.n_drops();
        if drops == 0 {
            return Outcome::default();
        }
        // n_evts always contains the drops.
        let ratio = drops as f64 / d.n_evts.max(1) as f64;
        if ratio <= self.cfg.threshold {
            return Outcome::default();
        }
        self.n_detected += 1;
        if !self.bucket.claim(now_ns) {
            return Outcome::default();
        }
        self.n_actions += 1;
        // perform_actions runs every listed action (Falco 0.38+; 0.37 stopped
        // after the first, so its default "log, alert" only logged).
        let mut out = Outcome::default();
        let msg_n = num(drops);
        let exits = self.cfg.actions.contains(&DropAction::Exit);
        for i in 0..self.cfg.actions.len() {
            match self.cfg.actions[i] {
                DropAction::Ignore => {}
                // The exit line says it once.
                DropAction::Log if exits => {}
                // log_line!, never eprintln!: a closed stderr must not panic.
                DropAction::Log => crate::log_line!(
                    "Falco internal: syscall event drop. {msg_n} system calls dropped in last second."
                ),
                DropAction::Alert => {
                    self.render_drop(&d);
                    out.alert = true;
                }
                DropAction::Exit => {
                    crate::log_line!(
                        "Falco internal: syscall event drop. {msg_n} system calls dropped in last second. Exiting with status {EXIT_ON_DROPS}."
                    );
                    out.exit = true;
                }
            }
        }
        out
    }

    /// A full thread or fd table: its own rule, the same token rules, never exit.
    pub fn check_tables(&mut self, now_ns: u64, full_threads: u64, full_fds: u64) -> Outcome {
        let (dt, df) = (
            full_threads.saturating_sub(self.last_full.0),
            full_fds.saturating_sub(self.last_full.1),
        );
        self.last_full = (full_threads, full_fds);
        if dt + df == 0 || self.cfg.actions == [DropAction::Ignore] {
            return Outcome::default();
        }
        if !self.table_bucket.claim(now_ns) {
            return Outcome::default();
        }
        let mut msg: HString<160> = HString::new();
        let _ = write!(
            msg,
            "Kestrel internal: state table full. {dt} threads and {df} fds refused in last second."
        );
        crate::log_line!("{msg}");
        if !self.cfg.actions.contains(&DropAction::Alert) {
            return Outcome::default();
        }
        let fields = [
            ("n_drops_full_fdtable", num(df)),
            ("n_drops_full_threadtable", num(dt)),
        ];
        self.render(
            &msg,
            "Warning",
            "Kestrel internal: state table full",
            &fields,
        );
        Outcome {
            alert: true,
            exit: false,
        }
    }

    fn render_drop(&mut self, d: &KernelCounters) {
        let mut names: heapless::Vec<(HString<48>, u64), 24> = heapless::Vec::new();
        let mut k = crate::metrics::fields::Key::new();
        for (cat, dirs) in d.n_drops_buffer.iter().enumerate().take(KC_MAX) {
            for (dir, v) in dirs.iter().enumerate() {
                if CATEGORY_NAMES[cat] == "proc_exit" && dir == 0 {
                    continue;
                }
                self.schema.bucket_name(cat, dir, &mut k);
                let mut n: HString<48> = HString::new();
                // Falco's alert names are the snapshot's without "scap.".
                let _ = n.push_str(k.strip_prefix("scap.").unwrap_or(&k));
                let _ = names.push((n, *v));
            }
        }
        let mut fields: heapless::Vec<(&str, HString<24>), 40> = heapless::Vec::new();
        for (n, v) in &names {
            let _ = fields.push((n.as_str(), num(*v)));
        }
        let mut one = |k: &'static str, v: u64| {
            let _ = fields.push((k, num(v)));
        };
        one("n_evts", d.n_evts);
        one("n_drops", d.n_drops());
        one("n_drops_buffer_total", d.n_drops_buffer_total);
        one("n_drops_scratch_map", d.n_drops_scratch_map);
        if self.schema.has_pf_and_bug() {
            one("n_drops_page_faults", 0);
        }
        one("n_drops_bug", d.n_drops_bug);
        one("ebpf_enabled", 1);
        fields.sort_unstable_by(|a, b| a.0.cmp(b.0));
        let mut msg: HString<128> = HString::new();
        let _ = write!(
            msg,
            "Falco internal: syscall event drop. {} system calls dropped in last second.",
            d.n_drops()
        );
        self.render(&msg, "Debug", "Falco internal: syscall event drop", &fields);
    }

    /// falco_outputs::handle_msg's JSON: keys in nlohmann's sorted order,
    /// every output field a string.
    fn render(&mut self, msg: &str, priority: &str, rule: &str, fields: &[(&str, HString<24>)]) {
        let mut tbuf = [0u8; 40];
        let t = time::rfc3339_nanos(time::realtime_ns(), &mut tbuf);
        let map = FieldMap(fields);
        let alert = RuleOutput {
            hostname: &self.hostname,
            output: msg,
            output_fields: &map,
            priority,
            rule,
            source: "internal",
            time: t,
        };
        self.len = alert.write_line(&mut self.buf);
        let tl = t.len().min(self.time_buf.len());
        self.time_buf[..tl].copy_from_slice(&t.as_bytes()[..tl]);
        self.time_len = tl;
    }
}

struct FieldMap<'a>(&'a [(&'a str, HString<24>)]);

impl serde::Serialize for FieldMap<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in self.0 {
            m.serialize_entry(k, v.as_str())?;
        }
        m.end()
    }
}

#[cfg(test)]
mod tests;
