//! The rules on a reload: the new set (compiled by build::for_reload, so a
//! file that does not load never gets here) replaces the running one
//! between two drains of the ring. Alerts queued by the old rules go out
//! first. The totals (matches, suppressed, emitted, evaluated) go on, and a
//! rule that is in both sets keeps its count under its name, so the
//! cumulative series stay monotonic; a removed rule's series leaves the
//! snapshot and /metrics. The probe's syscall selection is in its .rodata,
//! frozen at load (bpf/maps.h call_table): a rule wanting a syscall the
//! running probe does not capture runs on its other event types, and one
//! line names them. Falco reloads rules by restarting (app actions'
//! restart on a changed rules file).

use std::os::fd::{AsFd, AsRawFd};

use super::super::events::{register, timer};
use super::super::serve::Agent;
use super::super::{host_facts, ALERT_DRAIN, ALERT_DRAIN_NS};
use crate::capture::syscalls::Selection;
use crate::rules::engine::{Engine, EngineConfig, RuleCounters};
use crate::rules::events::{name_of, PROCEXIT};
use crate::rules::users::Users;
use crate::rules::RuleSet;

impl Agent<'_> {
    /// Runs `set` from now on.
    pub(super) fn reload_rules(&mut self, set: RuleSet, cfg: &EngineConfig) {
        self.deliver_alerts();
        let mut p = self.pipeline.borrow_mut();
        if p.rules.is_none() && set.rules.is_empty() {
            return;
        }
        if let Some(l) = uncaptured_line(&set, &self.running.selection) {
            crate::log_line!("{l}");
        }
        if !self.running.failed_open_paths && !set.rules.is_empty() {
            crate::log_line!(
                "config reload: the probe was loaded without rules, so failed opens carry no path (fd.name) until a restart"
            );
        }
        super::super::log_rules(&set, p.rules.as_ref().map(|e| &e.set));
        let hostname = &self.snapshots.snap.host().hostname;
        let e = match p.rules.take() {
            Some(mut old) => {
                let bucket = old.take_bucket();
                let mut e = Engine::new(set, cfg, hostname, old.users, old.host);
                carry(&mut e, &old.set, &old.counters);
                let was = &self.running.engine;
                if (cfg.rate, cfg.max_burst) == (was.rate, was.max_burst) {
                    e.keep_bucket(bucket);
                }
                e
            }
            None => {
                let users = Users::new(&crate::procfs::host_dir());
                Engine::new(set, cfg, hostname, users, host_facts(&p.state))
            }
        };
        p.rules = Some(e);
        drop(p);
        self.running.engine = cfg.clone();
        if self.sources.alert_drain.is_none() {
            // Started without rules: the alert drain starts now.
            let t = timer(ALERT_DRAIN_NS, true);
            let t = t.and_then(|t| {
                register(&self.sources.poll, t.as_fd().as_raw_fd(), ALERT_DRAIN).map(|_| t)
            });
            match t {
                Ok(t) => self.sources.alert_drain = Some(t),
                Err(e) => {
                    crate::log_line!("config reload: {}; alerts wait for the next drain", e.0)
                }
            }
        }
    }
}

/// The old engine's counters into the new one: totals, and per rule by name.
fn carry(e: &mut Engine, old: &RuleSet, c: &RuleCounters) {
    let n = &mut e.counters;
    n.matches_total = c.matches_total;
    n.rate_limited = c.rate_limited;
    n.queue_drops = c.queue_drops;
    n.emitted = c.emitted;
    n.evaluated = c.evaluated;
    for (i, r) in e.set.rules.iter().enumerate() {
        if let Some(j) = old.rules.iter().position(|o| o.name == r.name) {
            n.by_rule[i] = c.by_rule.get(j).copied().unwrap_or(0);
        }
    }
}

/// One line naming the syscalls the new rules want that the running probe
/// does not capture, and the rules that want them; None when there are none.
pub(super) fn uncaptured_line(set: &RuleSet, running: &Selection) -> Option<String> {
    let have = running.resolve();
    let mut missing: Vec<&'static str> = Vec::new();
    let mut rules: Vec<&str> = Vec::new();
    for r in &set.rules {
        let mut wants = false;
        for code in r.codes.codes().filter(|&c| c != PROCEXIT) {
            let name = name_of(code);
            let exists = crate::capture::syscalls::by_name(name)
                .is_some_and(|s| s.nr.is_some() || s.compat_nr.is_some());
            if exists && !have.iter().any(|s| s.name == name) {
                wants = true;
                if !missing.contains(&name) {
                    missing.push(name);
                }
            }
        }
        if wants {
            rules.push(&r.name);
        }
    }
    if rules.is_empty() {
        return None;
    }
    Some(format!(
        "config reload: evt.type {} not captured by the running probe (its syscall selection is fixed at load; a restart adds it), for rules '{}'; they run on the other event types",
        missing.join(", "),
        rules.join("', '")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::{Priority, RuleFile};

    fn set(yaml: &str) -> RuleSet {
        let f = RuleFile {
            name: "t.yaml",
            text: yaml.as_bytes(),
        };
        crate::rules::load(&[f], Priority::Debug).unwrap()
    }

    #[test]
    fn names_the_syscalls_and_rules_the_probe_misses() {
        let s = set("- rule: mk\n  desc: d\n  condition: evt.type = mkdirat\n  output: o\n  priority: WARNING\n\
                     - rule: op\n  desc: d\n  condition: evt.type = openat\n  output: o\n  priority: WARNING\n");
        let l = uncaptured_line(&s, &Selection::Names(vec!["openat".into()])).unwrap();
        assert!(l.contains("evt.type mkdirat not captured"), "{l}");
        assert!(l.contains("for rules 'mk';"), "{l}");
        let all = Selection::Names(vec!["openat".into(), "mkdirat".into()]);
        assert_eq!(uncaptured_line(&s, &all), None);
    }

    #[test]
    fn counters_carry_by_rule_name() {
        let a = set("- rule: a\n  desc: d\n  condition: evt.type = openat\n  output: o\n  priority: WARNING\n\
                     - rule: b\n  desc: d\n  condition: evt.type = close\n  output: o\n  priority: WARNING\n");
        let c = RuleCounters {
            matches_total: 7,
            by_rule: vec![3, 4],
            emitted: 5,
            ..RuleCounters::default()
        };
        let b = set("- rule: c\n  desc: d\n  condition: evt.type = openat\n  output: o\n  priority: WARNING\n\
                     - rule: b\n  desc: d\n  condition: evt.type = close\n  output: o\n  priority: WARNING\n");
        let users = Users::new(std::path::Path::new("/"));
        let mut e = Engine::new(b, &EngineConfig::default(), "h", users, Default::default());
        carry(&mut e, &a, &c);
        assert_eq!(e.counters.by_rule, vec![0, 4]);
        assert_eq!((e.counters.matches_total, e.counters.emitted), (7, 5));
    }
}
