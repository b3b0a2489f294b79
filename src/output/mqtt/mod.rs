//! The MQTT output: snapshots to PREFIX/HOST/metrics, alerts to
//! PREFIX/HOST/alerts, a retained `online` on PREFIX/HOST/status at every
//! connect and `offline` as the last will. MQTT 3.1.1, QoS 1 by default,
//! persistent session (clean_session=0), driven from the loop without
//! ever blocking it (see `conn`). Messages wait in a bounded store that
//! drops its oldest when full; with `spool=DIR` they go to disk instead
//! while the broker is unreachable, and come back in order after.

pub mod codec;
mod crc;
mod session;
pub mod spec;
pub mod spool;

use std::os::fd::BorrowedFd;

pub use spec::MqttSpec;

use super::conn::{Conn, Endpoint, RateLog};
use super::store::Store;
use super::{Sink, Wrote};
use spool::Spool;

enum Sess {
    Down,
    AwaitConnack { deadline: u64 },
    Ready { ping_sent: Option<u64> },
}

pub struct MqttSink {
    name: String,
    conn: Conn,
    /// "PREFIX/HOST/": the topics' common part.
    base: String,
    client_id: String,
    username: Option<String>,
    password: Option<Vec<u8>>,
    keepalive_s: u16,
    qos: u8,
    store: Store,
    spool: Option<Spool>,
    sess: Sess,
    /// Encoded packets not yet taken by the connection.
    out: Vec<u8>,
    /// Received bytes not yet decoded.
    inb: Vec<u8>,
    /// What `encode` hands the queue: kind byte, then the payload.
    enc: Vec<u8>,
    load: Vec<u8>,
    last_tx: u64,
    /// Since when QoS 1 messages have been in flight with no PUBACK.
    unacked_since: Option<u64>,
    next_pid: u16,
    /// Messages dropped (store or spool full) since the last take.
    dropped: u64,
    /// The last attempt failed: messages go to the spool, not memory.
    unreachable: bool,
    pub delivered: u64,
    log: RateLog,
    uplog: RateLog,
}

/// A topic level from the host name: no wildcards, separators or controls.
fn topic_safe(s: &str) -> String {
    let t: String = s
        .chars()
        .map(|c| {
            if c == '/' || c == '+' || c == '#' || c.is_control() {
                '_'
            } else {
                c
            }
        })
        .collect();
    if t.is_empty() {
        "unknown".into()
    } else {
        t
    }
}

impl MqttSink {
    /// Reads the files the URL names; Err((message, bad_input)).
    pub fn open(spec: &MqttSpec, hostname: &str) -> Result<MqttSink, (String, bool)> {
        let name = spec.shown.clone();
        let tls = match &spec.tls {
            Some(t) => {
                let cfg = t.client_config(&name).map_err(|e| (e, true))?;
                let sni = super::tls::server_name(&spec.host)
                    .map_err(|e| (format!("{name}: {e}"), true))?;
                Some((cfg, sni))
            }
            None => None,
        };
        let password = match &spec.password_file {
            Some(p) => {
                let mut v = std::fs::read(p).map_err(|e| {
                    (
                        format!("{name}: cannot read password_file {}: {e}", p.display()),
                        true,
                    )
                })?;
                while v.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                    v.pop();
                }
                Some(v)
            }
            None => None,
        };
        let spool = match &spec.spool {
            Some(dir) => {
                let (s, log) = Spool::open(dir, spec.spool_max)
                    .map_err(|e| (format!("{name}: {e}"), false))?;
                for l in log {
                    crate::log_line!("{name}: {l}");
                }
                if s.pending() > 0 {
                    crate::log_line!(
                        "{name}: {} spooled messages from an earlier run to deliver",
                        s.pending()
                    );
                }
                Some(s)
            }
            None => None,
        };
        let host = topic_safe(hostname);
        let client_id = spec.client_id.clone().unwrap_or_else(|| {
            let id: String = format!("kestrel-{hostname}")
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
                .take(23)
                .collect();
            id
        });
        Ok(MqttSink {
            conn: Conn::new(Endpoint {
                host: spec.host.clone(),
                port: spec.port,
                tls,
            }),
            base: format!("{}/{host}/", spec.prefix),
            client_id,
            username: spec.username.clone(),
            password,
            keepalive_s: spec.keepalive_s,
            qos: spec.qos,
            store: Store::new(),
            spool,
            sess: Sess::Down,
            out: Vec::with_capacity(session::OUT_HIGH + 1024),
            inb: Vec::with_capacity(1024),
            enc: Vec::with_capacity(4096),
            load: Vec::new(),
            last_tx: 0,
            unacked_since: None,
            next_pid: 0,
            dropped: 0,
            unreachable: false,
            delivered: 0,
            log: RateLog::default(),
            uplog: RateLog::default(),
            name,
        })
    }

    fn accept(&mut self, kind: u8, payload: &[u8]) {
        match &mut self.spool {
            Some(sp) if self.unreachable => {
                let (d, err) = sp.append(kind, payload);
                self.dropped += d;
                if let Some(e) = err {
                    self.log.line(format_args!("{}: {e}", self.name));
                }
            }
            _ => self.dropped += self.store.push(kind, payload),
        }
    }
}

impl Sink for MqttSink {
    fn name(&self) -> &str {
        &self.name
    }

    fn encode<'a>(&'a mut self, line: &'a [u8], _time: &str) -> Result<&'a [u8], &'static str> {
        self.enc.clear();
        self.enc.push(0);
        self.enc
            .extend_from_slice(line.strip_suffix(b"\n").unwrap_or(line));
        Ok(&self.enc)
    }

    fn encode_alert<'a>(
        &'a mut self,
        line: &'a [u8],
        t: &str,
        _sev: u8,
    ) -> Result<&'a [u8], &'static str> {
        self.encode(line, t)?;
        self.enc[0] = 1;
        Ok(&self.enc)
    }

    fn write(&mut self, data: &[u8], _done: usize) -> Wrote {
        if let Some((&kind, payload)) = data.split_first() {
            self.accept(kind, payload);
        }
        self.drive(crate::base::time::monotonic_ns());
        Wrote::All
    }

    fn tick(&mut self) {
        self.drive(crate::base::time::monotonic_ns());
    }

    fn take_dropped(&mut self) -> u64 {
        std::mem::take(&mut self.dropped)
    }

    fn busy(&self) -> bool {
        matches!(self.sess, Sess::Ready { .. }) && (!self.store.is_empty() || !self.out.is_empty())
    }

    fn poll_fd(&self) -> Option<BorrowedFd<'_>> {
        self.conn.fd()
    }

    fn shutdown(&mut self) {
        self.close_gracefully();
    }
}
