//! Syslog over TCP (`syslog+tcp://HOST:PORT`) and TLS (`syslog+tls://`,
//! RFC 5425): the UDP output's header and options, each message framed by
//! octet counting (`LEN SP MSG`, RFC 6587 3.4.1 / RFC 5425 4.3), so a JSON
//! line never needs escaping. Same bounded store as MQTT (oldest dropped
//! first, counted), reconnect with backoff. A message leaves the store once
//! the connection took all of it; one cut by a broken connection is sent
//! again whole on the next.

use std::os::fd::BorrowedFd;

use super::conn::{Conn, Endpoint, Event, RateLog};
use super::store::Store;
use super::syslog::{Framer, SyslogSpec};
use super::tls::TlsOptions;
use super::{Sink, Wrote};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamSpec {
    pub syslog: SyslogSpec,
    pub tls: Option<TlsOptions>,
}

impl StreamSpec {
    /// `rest` follows `syslog+tcp://` (tls false) or `syslog+tls://`.
    pub fn parse(rest: &str, tls: bool) -> Result<StreamSpec, String> {
        let (addr, query) = rest.split_once('?').unwrap_or((rest, ""));
        let mut t = TlsOptions::default();
        let mut others = Vec::new();
        for kv in query.split('&').filter(|kv| !kv.is_empty()) {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            if !t.take(k, v).map_err(|e| format!("syslog option {e}"))? {
                others.push(kv);
            }
        }
        if !tls && t.is_set() {
            return Err("ca=, cert=, key= and insecure= need syslog+tls://".into());
        }
        let syslog = SyslogSpec::parse(&format!("{addr}?{}", others.join("&")))?;
        Ok(StreamSpec {
            syslog,
            tls: tls.then_some(t),
        })
    }
}

pub struct StreamSink {
    name: String,
    framer: Framer,
    conn: Conn,
    store: Store,
    /// The front message, framed, and how much of it the connection took.
    out: Vec<u8>,
    sent: usize,
    dropped: u64,
    failed: bool,
    log: RateLog,
    uplog: RateLog,
}

impl StreamSink {
    pub fn open(spec: &StreamSpec, hostname: &str) -> Result<StreamSink, (String, bool)> {
        let s = &spec.syslog;
        let scheme = if spec.tls.is_some() {
            "syslog+tls"
        } else {
            "syslog+tcp"
        };
        let name = format!("{scheme}://{}:{}", s.host, s.port);
        let tls = match &spec.tls {
            Some(t) => {
                let cfg = t.client_config(&name).map_err(|e| (e, true))?;
                let sni =
                    super::tls::server_name(&s.host).map_err(|e| (format!("{name}: {e}"), true))?;
                Some((cfg, sni))
            }
            None => None,
        };
        Ok(StreamSink {
            framer: Framer::new(s, hostname),
            conn: Conn::new(Endpoint {
                host: s.host.clone(),
                port: s.port,
                tls,
            }),
            store: Store::new(),
            out: Vec::with_capacity(s.max_bytes + 8),
            sent: 0,
            dropped: 0,
            failed: false,
            log: RateLog::default(),
            uplog: RateLog::default(),
            name,
        })
    }

    fn drive(&mut self, now: u64) {
        match self.conn.poll(now) {
            Event::Up => {
                if self.failed {
                    self.uplog.line(format_args!("{}: connected", self.name));
                }
                self.failed = false;
            }
            Event::Down(why) => self.down(&why),
            Event::Nothing => {}
        }
        if !self.conn.is_up() {
            return;
        }
        if let Err(why) = self.pump() {
            let d = self.conn.close(now);
            self.down(&format!("{why}; next attempt in {:.1} s", d as f64 / 1e9));
        }
    }

    fn down(&mut self, why: &str) {
        self.log.line(format_args!("{}: {why}", self.name));
        self.failed = true;
        self.out.clear();
        self.sent = 0;
    }

    fn pump(&mut self) -> Result<(), String> {
        // The collector sends nothing: a read sees only its close or a TLS alert.
        let mut b = [0u8; 256];
        loop {
            match self.conn.read(&mut b) {
                Ok(0) => return Err("the collector closed the connection".into()),
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(format!("read: {e}")),
            }
        }
        loop {
            if self.out.is_empty() {
                let Some(m) = self.store.get(0) else { break };
                use std::io::Write;
                let _ = write!(self.out, "{} ", m.data.len());
                self.out.extend_from_slice(&m.data);
                self.sent = 0;
            }
            match self.conn.write(&self.out[self.sent..]) {
                Ok(0) => break,
                Ok(n) => self.sent += n,
                Err(e) => return Err(format!("write: {e}")),
            }
            if self.sent == self.out.len() {
                self.store.remove(0);
                self.out.clear();
                self.sent = 0;
            }
        }
        self.conn.flush().map_err(|e| format!("write: {e}"))
    }
}

impl Sink for StreamSink {
    fn name(&self) -> &str {
        &self.name
    }

    fn encode<'a>(&'a mut self, line: &'a [u8], time: &str) -> Result<&'a [u8], &'static str> {
        self.framer.encode(line, time, None)
    }

    fn encode_alert<'a>(
        &'a mut self,
        line: &'a [u8],
        time: &str,
        sev: u8,
    ) -> Result<&'a [u8], &'static str> {
        self.framer.encode(line, time, Some(sev))
    }

    fn write(&mut self, data: &[u8], _done: usize) -> Wrote {
        // The front message may be half sent: it is never the one dropped.
        let pinned = usize::from(!self.out.is_empty());
        self.dropped += self.store.push_keeping(pinned, 0, data);
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
        self.conn.is_up() && !(self.store.is_empty() && self.conn.drained())
    }

    fn poll_fd(&self) -> Option<BorrowedFd<'_>> {
        self.conn.fd()
    }

    fn shutdown(&mut self) {
        self.dropped += self.store.len() as u64;
        self.store.drain(|_| {});
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_tls_and_syslog_options() {
        let s =
            StreamSpec::parse("c.lan:6514?ca=/ca.pem&format=3164&cert=/c&key=/k", true).unwrap();
        assert_eq!((s.syslog.host.as_str(), s.syslog.port), ("c.lan", 6514));
        assert_eq!(s.tls.unwrap().cert, Some("/c".into()));
        assert!(StreamSpec::parse("c:514?ca=/x", false).is_err());
        assert!(StreamSpec::parse("c:514?bogus=1", false).is_err());
        assert!(StreamSpec::parse("c", false).is_err());
    }
}
