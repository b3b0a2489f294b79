//! The outputs and the exporter on a reload. The output set changes as a
//! whole or not at all (output::set): a new output that cannot be opened
//! keeps the running set, one line naming it. The exporter follows
//! output::prometheus::reload: a change that cannot be applied keeps the
//! running exporter, one line; turned off, its write errors stay counted.

use super::super::serve::Agent;
use super::super::{AgentConfig, PROMETHEUS};
use crate::output::prometheus::{textfile_paths, Prometheus};
use crate::output::OpenOptions;

impl Agent<'_> {
    pub(super) fn reload_outputs(&mut self, new: &AgentConfig) {
        let opts = OpenOptions {
            allow_special: new.allow_special_outputs,
        };
        let host = &self.snapshots.snap.host().hostname;
        match self.outputs.reconcile(&new.outputs, host, opts) {
            Ok(c) if c.added.is_empty() && c.removed.is_empty() => {}
            Ok(c) => crate::log_line!(
                "config reload: outputs: added [{}], removed [{}] (delivering what they hold)",
                c.added.join(", "),
                c.removed.join(", ")
            ),
            Err(e) => crate::log_line!("config reload: output: {e}; the running outputs stay"),
        }
    }

    pub(super) fn reload_prometheus(&mut self, new: &AgentConfig) {
        let files = textfile_paths(&new.outputs);
        let cfg = new.prometheus.clone();
        let registry = self.sources.poll.registry();
        let waker = &mut self.sources.waker;
        let wanted = cfg.listen.is_some() || !files.is_empty();
        let started = match self.prom.as_mut() {
            // The web config is read again even when its path is the same.
            Some(p) if p.same(&cfg, &files) && cfg.web_config.is_none() => return,
            Some(p) => match p.reconfigure(registry, (PROMETHEUS, waker), cfg, &files) {
                Ok(r) => r.moved_to.map(|a| (a, p.is_tls())),
                Err(e) => {
                    crate::log_line!("config reload: prometheus: {e}; the running exporter stays");
                    return;
                }
            },
            None if !wanted => return,
            None => match Prometheus::open(cfg, &files) {
                Ok(Some(mut p)) => {
                    if let Err(e) = p.register(registry, PROMETHEUS, waker) {
                        crate::log_line!("config reload: prometheus: epoll register: {e}");
                        return;
                    }
                    let a = p.local_addr().map(|a| (a, p.is_tls()));
                    self.prom = Some(p);
                    a
                }
                Ok(None) => None,
                Err(e) => {
                    crate::log_line!("config reload: prometheus: {}; not started", e.msg);
                    return;
                }
            },
        };
        if let Some((a, tls)) = started {
            let scheme = if tls { "https" } else { "http" };
            crate::log_line!("config reload: serving Prometheus metrics on {scheme}://{a}/metrics");
        }
        if self.prom.as_ref().is_some_and(Prometheus::is_empty) {
            if let Some(mut p) = self.prom.take() {
                p.close(registry);
                // kestrel.output_write_errors never goes back.
                self.snapshots.render_errors += p.write_errors;
                crate::log_line!("config reload: the Prometheus exporter is off");
            }
        }
        // A new server has no text yet: the current figures, now, rather
        // than a 503 until the next snapshot.
        self.render_for_scrape();
    }
}
