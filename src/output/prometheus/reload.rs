//! SIGHUP (agent::reload): the exporter takes a new configuration without
//! a restart. Everything that can fail comes first (the web config read
//! again, its TLS files, the textfiles' paths, the new address bound), so a
//! failure changes nothing; then a new listen address replaces the old one
//! (bound before the old one is dropped, so the port never goes quiet for a
//! scraper that follows), or the same listener takes the new TLS and users
//! (its connections closed; with no web config before or after, a server
//! that stays put is left alone).
//! The request and render counters go on. Falco restarts instead (its
//! webserver is set up once per start, app actions start_webserver).

use std::net::SocketAddr;
use std::path::PathBuf;

use std::sync::Arc;

use mio::{Registry, Waker};

use super::server::Server;
use super::textfile::Textfile;
use super::{bind, server_with, tls, webconfig, Prometheus, PrometheusConfig};

/// What changed, for the reload's line.
pub struct Reloaded {
    /// The endpoint now serves on this address (None: it did not move).
    pub moved_to: Option<SocketAddr>,
}

impl Prometheus {
    /// Was it opened with these?
    pub fn same(&self, cfg: &PrometheusConfig, textfiles: &[PathBuf]) -> bool {
        self.cfg == *cfg && self.paths == textfiles
    }

    /// Applies `cfg` and `textfiles`; the listener, if any, is registered
    /// at `base` as `register` does. Err: one line, nothing changed.
    pub fn reconfigure(
        &mut self,
        registry: &Registry,
        (base, waker): (usize, &mut Option<Arc<Waker>>),
        cfg: PrometheusConfig,
        textfiles: &[PathBuf],
    ) -> Result<Reloaded, String> {
        if cfg.web_config.is_some() && cfg.listen.is_none() {
            return Err("--prometheus-web-config needs --prometheus".into());
        }
        let web = cfg.web_config.as_deref().map(webconfig::load).transpose()?;
        let tls = match web.as_ref().and_then(|w| w.tls.as_ref()) {
            Some(t) => Some(tls::server_config(t).map_err(|e| {
                let shown = cfg.web_config.as_deref().unwrap_or("".as_ref()).display();
                format!("web config {shown}: {e}")
            })?),
            None => None,
        };
        let mut files = Vec::with_capacity(textfiles.len());
        for p in textfiles {
            match self.paths.iter().position(|q| q == p) {
                Some(i) => files.push(Err(i)),
                None => files.push(Ok(Textfile::open(p).map_err(|e| e.msg)?)),
            }
        }
        // Same address: the listener stays; another: bound now, before the
        // old one goes. The new server starts from the old one's counters.
        let moved = cfg.listen != self.cfg.listen;
        let fresh = match cfg.listen {
            Some(a) if moved || self.server.is_none() => Some(bind(a)?),
            _ => None,
        };
        // Without a web config before or now, a server that stays put keeps
        // its connections too.
        let rebuild = fresh.is_some() || cfg.web_config.is_some() || self.cfg.web_config.is_some();
        if rebuild || cfg.listen.is_none() {
            let old = self.server.take().map(|s| s.close_all(registry));
            let stats = old.as_ref().map(|o| o.1).unwrap_or_default();
            let server = match (cfg.listen, fresh, old) {
                (None, _, _) => None,
                (Some(_), Some(s), _) => Some(s),
                (Some(a), None, Some((listener, _))) => {
                    Some(Server::new(listener).map_err(|e| format!("{a}: {e}"))?)
                }
                (Some(_), None, None) => None,
            };
            self.server = server.map(|s| server_with(s, tls.as_ref(), web.as_ref()).carry(stats));
            if let Some(s) = &mut self.server {
                s.register(registry, base, waker)
                    .map_err(|e| format!("epoll register: {e}"))?;
            }
        }
        let mut old_files: Vec<Option<Textfile>> = self.textfiles.drain(..).map(Some).collect();
        self.textfiles = files
            .into_iter()
            .filter_map(|f| match f {
                Ok(t) => Some(t),
                Err(i) => old_files[i].take(),
            })
            .collect();
        self.paths = textfiles.to_vec();
        self.strict_names = cfg.strict_names;
        self.notes = web.map(|w| w.describe()).unwrap_or_default();
        self.cfg = cfg;
        Ok(Reloaded {
            moved_to: moved.then(|| self.local_addr()).flatten(),
        })
    }

    /// Whether it serves or writes anything.
    pub fn is_empty(&self) -> bool {
        self.server.is_none() && self.textfiles.is_empty()
    }

    /// A reload turned the exporter off: the endpoint closes.
    pub fn close(&mut self, registry: &Registry) {
        if let Some(s) = self.server.take() {
            s.close_all(registry);
        }
    }
}
