//! Prometheus exposition of the snapshot: `--prometheus ADDR:PORT` serves
//! `GET /metrics` from the agent's mio loop (no async runtime; one helper
//! thread only for bcrypt), and `--output prometheus-textfile:PATH` writes
//! the same text for node_exporter at every snapshot. A scrape gets figures
//! read when it arrives, as Falco's webserver renders per request: text
//! older than `server::FRESH_NS` is rendered again (`render_wanted`, then
//! `serve_fresh`), so renders are at most one per FRESH_NS whatever the
//! scrape rate. `--prometheus-web-config` adds TLS and Basic auth.

mod auth;
mod conn;
mod families;
pub mod http;
mod reload;
pub mod render;
pub mod server;
pub mod textfile;
mod tls;
pub mod webconfig;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use mio::{Registry, Token};

use crate::base::time;
use crate::capture::syscall_names;
use crate::metrics::resources::ResourceSample;
use crate::metrics::{HostInfo, Inputs, MetricsConfig};
use core::fmt::Write as _;

use heapless::{String as HString, Vec as HVec};

use crate::metrics::culprits::{comm_str, MAX_EXPORTED, MAX_TOP};
use crate::output::OpenError;
use render::{Culprits, ProcessCalls, ProcessCount, SyscallCount, View};
use server::Server;
use textfile::Textfile;

/// The exporter's knobs (`--prometheus`, `--prometheus-names`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PrometheusConfig {
    pub listen: Option<SocketAddr>,
    /// Lint-clean names (promtool-silent) instead of Falco's exact ones.
    pub strict_names: bool,
    /// `--prometheus-web-config`: TLS and Basic auth (exporter-toolkit format).
    pub web_config: Option<PathBuf>,
}

/// Parses `--prometheus-names`.
pub fn parse_names(s: &str) -> Result<bool, String> {
    match s {
        "falco" => Ok(false),
        "strict" => Ok(true),
        _ => Err(format!("'{s}' is not falco or strict")),
    }
}

/// Parses `--prometheus`: `ADDR:PORT`, `[V6]:PORT`, `:PORT` or `PORT`; the
/// last two bind loopback only, so exposing the endpoint is a choice.
pub fn parse_listen(s: &str) -> Result<SocketAddr, String> {
    let loopback = |p: &str| {
        p.parse::<u16>()
            .map(|port| SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port))
            .map_err(|_| format!("bad port in --prometheus '{s}'"))
    };
    if let Some(p) = s.strip_prefix(':') {
        return loopback(p);
    }
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return loopback(s);
    }
    s.parse::<SocketAddr>().map_err(|_| {
        format!("bad --prometheus '{s}' (use PORT, :PORT, IP:PORT or [IPv6]:PORT; no host names)")
    })
}

/// The prometheus-textfile paths of an `--output` list.
pub fn textfile_paths(outputs: &[crate::output::OutputSpec]) -> Vec<PathBuf> {
    outputs
        .iter()
        .filter_map(|o| match o {
            crate::output::OutputSpec::PrometheusTextfile(p) => Some(p.clone()),
            _ => None,
        })
        .collect()
}

/// The endpoint's listener, bound now.
fn bind(a: SocketAddr) -> Result<Server, String> {
    std::net::TcpListener::bind(a)
        .and_then(Server::new)
        .map_err(|e| format!("cannot listen on {a} for --prometheus: {e}"))
}

/// The server with the web config's TLS and users.
fn server_with(
    s: Server,
    tls: Option<&std::sync::Arc<rustls::ServerConfig>>,
    web: Option<&webconfig::WebConfig>,
) -> Server {
    let s = match tls {
        Some(t) => s.with_tls(std::sync::Arc::clone(t)),
        None => s,
    };
    s.with_users(web.map(|w| w.users.clone()).unwrap_or_default())
}

/// What a render for a scrape reads (see `serve_fresh`).
pub struct Fresh<'a> {
    pub cfg: &'a MetricsConfig,
    pub host: &'a HostInfo,
    pub inputs: &'a Inputs<'a>,
    pub resources: Option<&'a ResourceSample>,
}

pub struct Prometheus {
    server: Option<Server>,
    textfiles: Vec<Textfile>,
    /// What it was opened with, for a reload to compare (reload.rs).
    cfg: PrometheusConfig,
    paths: Vec<PathBuf>,
    text: Vec<u8>,
    strict_names: bool,
    /// What the web config set up, for the start line.
    pub notes: String,
    /// Textfile writes that failed (added to kestrel.output_write_errors).
    pub write_errors: u64,
    /// The first textfile error of the last publish, and whether it was a
    /// permission refused (the start's hint names the uid then).
    pub last_error: Option<(String, bool)>,
    published: bool,
}

impl Prometheus {
    /// Checks the textfiles' paths and binds the endpoint now (before
    /// privileges are dropped, so a port below 1024 works). `None` when
    /// neither the endpoint nor a textfile is asked for.
    pub fn open(cfg: PrometheusConfig, textfiles: &[PathBuf]) -> Result<Option<Self>, OpenError> {
        let bad = |msg: String| OpenError {
            msg,
            bad_input: true,
        };
        if cfg.web_config.is_some() && cfg.listen.is_none() {
            return Err(bad("--prometheus-web-config needs --prometheus".into()));
        }
        if cfg.listen.is_none() && textfiles.is_empty() {
            return Ok(None);
        }
        let web = match &cfg.web_config {
            Some(p) => Some(webconfig::load(p).map_err(bad)?),
            None => None,
        };
        let tls = match web.as_ref().and_then(|w| w.tls.as_ref()) {
            Some(t) => Some(tls::server_config(t).map_err(|e| {
                bad(format!(
                    "web config {}: {e}",
                    cfg.web_config
                        .as_deref()
                        .unwrap_or(std::path::Path::new(""))
                        .display()
                ))
            })?),
            None => None,
        };
        let paths = textfiles.to_vec();
        let textfiles = textfiles
            .iter()
            .map(|p| Textfile::open(p))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| OpenError {
                msg: e.msg,
                bad_input: e.bad_input,
            })?;
        let server = cfg
            .listen
            .map(|a| {
                bind(a)
                    .map(|l| server_with(l, tls.as_ref(), web.as_ref()))
                    .map_err(|msg| OpenError {
                        msg,
                        bad_input: false,
                    })
            })
            .transpose()?;
        Ok(Some(Prometheus {
            server,
            textfiles,
            strict_names: cfg.strict_names,
            cfg,
            paths,
            text: Vec::with_capacity(16 * 1024),
            notes: web.map(|w| w.describe()).unwrap_or_default(),
            write_errors: 0,
            last_error: None,
            published: false,
        }))
    }

    /// `open` with the textfile paths taken from the `--output` list.
    pub fn from_config(
        cfg: PrometheusConfig,
        outputs: &[crate::output::OutputSpec],
    ) -> Result<Option<Self>, OpenError> {
        Self::open(cfg, &textfile_paths(outputs))
    }

    /// Served over TLS.
    pub fn is_tls(&self) -> bool {
        self.server.as_ref().is_some_and(|s| s.is_tls())
    }

    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.server.as_ref().and_then(|s| s.local_addr().ok())
    }

    /// Registers the listener as `Token(base)` and reserves the tokens after it.
    /// `waker`: see `Server::register`.
    pub fn register(
        &mut self,
        registry: &Registry,
        base: usize,
        waker: &mut Option<std::sync::Arc<mio::Waker>>,
    ) -> std::io::Result<()> {
        match &mut self.server {
            Some(s) => s.register(registry, base, waker),
            None => Ok(()),
        }
    }

    pub fn owns(&self, t: Token) -> bool {
        self.server.as_ref().is_some_and(|s| s.owns(t))
    }

    pub fn on_event(&mut self, registry: &Registry, t: Token) {
        if let Some(s) = &mut self.server {
            s.on_event(registry, t, time::monotonic_ns());
        }
    }

    /// Deadlines; call a few times a second.
    pub fn tick(&mut self, registry: &Registry) {
        if let Some(s) = &mut self.server {
            s.sweep(registry, time::monotonic_ns());
        }
    }

    /// SIGHUP: textfiles whose directory was deleted and made again follow it.
    pub fn reopen(&mut self) {
        for tf in &mut self.textfiles {
            if let Err(e) = tf.reopen() {
                crate::log_limited!(crate::log::Key::OutputReopen, "{e}");
            }
        }
    }

    /// A scrape waits for text rendered now (call `serve_fresh`).
    pub fn render_wanted(&self) -> bool {
        self.server.as_ref().is_some_and(|s| s.render_wanted())
    }

    /// Renders current figures for the endpoint only (textfiles follow
    /// snapshots); `started_ns` is when the caller began reading them.
    pub fn serve_fresh(&mut self, registry: &Registry, view: Fresh<'_>, started_ns: u64) {
        self.render(view.cfg, view.host, view.inputs, view.resources);
        let now = time::monotonic_ns();
        if let Some(s) = &mut self.server {
            s.stats.renders += 1;
            s.stats.render_ns += now.saturating_sub(started_ns);
            s.publish(registry, &self.text, now);
        }
    }

    /// Renders the snapshot's text and hands it to the endpoint and textfiles.
    pub fn publish(
        &mut self,
        registry: &Registry,
        cfg: &MetricsConfig,
        host: &HostInfo,
        inputs: &Inputs<'_>,
        resources: Option<&ResourceSample>,
    ) {
        self.render(cfg, host, inputs, resources);
        if let Some(s) = &mut self.server {
            s.publish(registry, &self.text, time::monotonic_ns());
        }
        self.last_error = None;
        for tf in &self.textfiles {
            if let Err(e) = tf.write(&self.text) {
                self.write_errors += 1;
                let msg = format!("prometheus-textfile {}: {e}", tf.shown());
                // The start reports the first publish's error itself.
                if self.published {
                    crate::log_limited!(crate::log::Key::OutputError, "{msg}");
                }
                let denied = e.kind() == std::io::ErrorKind::PermissionDenied;
                self.last_error.get_or_insert((msg, denied));
            }
        }
        self.published = true;
    }

    fn render(
        &mut self,
        cfg: &MetricsConfig,
        host: &HostInfo,
        inputs: &Inputs<'_>,
        resources: Option<&ResourceSample>,
    ) {
        // The culprit lists as labelled series: syscalls cumulative counters,
        // each kept once exported (bounded by the syscall tables), processes
        // per interval (gauges, bounded by MAX_TOP).
        let mut sys_names: HVec<HString<16>, MAX_EXPORTED> = HVec::new();
        let mut sys: HVec<SyscallCount<'_>, MAX_EXPORTED> = HVec::new();
        let mut procs: HVec<ProcessCount<'_>, MAX_TOP> = HVec::new();
        let mut proc_calls: HVec<ProcessCalls<'_>, MAX_TOP> = HVec::new();
        if let Some(c) = inputs.culprits {
            for t in c.exported_syscalls() {
                let mut n = HString::new();
                let _ = match t.name() {
                    Some(name) => n.push_str(name).map_err(|_| core::fmt::Error),
                    None => write!(n, "sys_{}", t.nr),
                };
                let _ = sys_names.push(n);
            }
            for (t, n) in c.exported_syscalls().zip(sys_names.iter()) {
                let _ = sys.push(SyscallCount {
                    name: n,
                    abi: syscall_names::abi_label(t.compat),
                    calls: t.count,
                });
            }
            for p in &c.by_calls {
                let _ = procs.push(ProcessCount {
                    pid: p.pid,
                    comm: p.comm(),
                    events: p.evts,
                    drops: p.drops,
                    syscalls: p.syscalls,
                });
            }
            for (pid, comm, calls) in c.exported_procs() {
                let _ = proc_calls.push(ProcessCalls {
                    pid,
                    comm: comm_str(comm),
                    calls,
                });
            }
        }
        let view_culprits = Culprits {
            syscalls: &sys,
            processes: &procs,
            process_calls: &proc_calls,
        };
        let view = View {
            cfg,
            host,
            inputs,
            resources,
            culprits: inputs.culprits.map(|_| &view_culprits),
            server: self.server.as_ref().map(|s| &s.stats),
            now_real_ns: time::realtime_ns(),
            strict_names: self.strict_names,
        };
        render::render(&view, &mut self.text);
    }
}

#[cfg(test)]
#[path = "mod_tests.rs"]
mod tests;
