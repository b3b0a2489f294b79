//! Remote syslog over UDP: RFC 5424 (default) or RFC 3164 framing around the
//! snapshot JSON. The socket is non-blocking and the destination is resolved
//! once at start, so a dead or slow collector never stalls the loop; a
//! datagram that cannot be sent is counted, not retried.
//!
//! A snapshot larger than `max_bytes` (default 8192, rsyslog's default
//! maxMessageSize) is dropped and counted rather than truncated: half a JSON
//! object is useless to every consumer.

use std::io;
use std::net::{SocketAddr, ToSocketAddrs, UdpSocket};

use super::OutputError;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Rfc5424,
    Rfc3164,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyslogSpec {
    pub host: String,
    pub port: u16,
    pub format: Format,
    pub facility: u8,
    pub severity: u8,
    pub app_name: String,
    pub hostname: Option<String>,
    pub max_bytes: usize,
}

const FACILITIES: &[(&str, u8)] = &[
    ("kern", 0),
    ("user", 1),
    ("daemon", 3),
    ("auth", 4),
    ("syslog", 5),
    ("local0", 16),
    ("local1", 17),
    ("local2", 18),
    ("local3", 19),
    ("local4", 20),
    ("local5", 21),
    ("local6", 22),
    ("local7", 23),
];
const SEVERITIES: &[&str] = &[
    "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug",
];

impl SyslogSpec {
    /// Parses `HOST:PORT[?key=value&...]` (after `syslog://`); keys: format
    /// (5424|3164), facility, severity, app, hostname, max_bytes. IPv6 hosts
    /// go in brackets.
    pub fn parse(s: &str) -> Result<SyslogSpec, String> {
        let (addr, query) = s.split_once('?').unwrap_or((s, ""));
        let (host, port) = if let Some(rest) = addr.strip_prefix('[') {
            let (h, p) = rest
                .split_once("]:")
                .ok_or_else(|| format!("syslog address '{addr}' needs [IPv6]:PORT"))?;
            (h, p)
        } else {
            addr.rsplit_once(':')
                .ok_or_else(|| format!("syslog address '{addr}' needs HOST:PORT"))?
        };
        let port: u16 = port
            .parse()
            .map_err(|_| format!("syslog port '{port}' is not a port number"))?;
        if host.is_empty() || port == 0 {
            return Err(format!("syslog address '{addr}' needs HOST:PORT"));
        }
        let mut spec = SyslogSpec {
            host: host.to_string(),
            port,
            format: Format::Rfc5424,
            facility: 16,
            severity: 6,
            app_name: "kestrel".into(),
            hostname: None,
            max_bytes: 8192,
        };
        for kv in query.split('&').filter(|kv| !kv.is_empty()) {
            let (k, v) = kv
                .split_once('=')
                .ok_or_else(|| format!("syslog option '{kv}' needs key=value"))?;
            match k {
                "format" => {
                    spec.format = match v {
                        "5424" | "rfc5424" => Format::Rfc5424,
                        "3164" | "rfc3164" => Format::Rfc3164,
                        _ => return Err(format!("syslog format '{v}' is not 5424 or 3164")),
                    }
                }
                "facility" => {
                    spec.facility = FACILITIES
                        .iter()
                        .find(|(n, _)| *n == v)
                        .map(|(_, c)| *c)
                        .ok_or_else(|| format!("unknown syslog facility '{v}'"))?
                }
                "severity" => {
                    spec.severity = SEVERITIES
                        .iter()
                        .position(|n| *n == v)
                        .ok_or_else(|| format!("unknown syslog severity '{v}'"))?
                        as u8
                }
                "app" => spec.app_name = v.chars().take(48).collect(),
                "hostname" => spec.hostname = Some(v.chars().take(255).collect()),
                "max_bytes" => {
                    spec.max_bytes = v
                        .parse()
                        .ok()
                        .filter(|n| (480..=65507).contains(n))
                        .ok_or_else(|| format!("syslog max_bytes '{v}' must be 480..65507"))?
                }
                _ => return Err(format!("unknown syslog option '{k}'")),
            }
        }
        Ok(spec)
    }
}

pub struct SyslogSink {
    spec: SyslogSpec,
    hostname: String,
    sock: UdpSocket,
    buf: Vec<u8>,
    pid: u32,
}

impl SyslogSink {
    pub fn open(spec: &SyslogSpec, default_hostname: &str) -> Result<SyslogSink, OutputError> {
        let dest = (spec.host.as_str(), spec.port)
            .to_socket_addrs()
            .map_err(|e| OutputError(format!("cannot resolve syslog host {}: {e}", spec.host)))?
            .next()
            .ok_or_else(|| OutputError(format!("syslog host {} has no address", spec.host)))?;
        let bind: SocketAddr = if dest.is_ipv4() {
            "0.0.0.0:0".parse().expect("literal")
        } else {
            "[::]:0".parse().expect("literal")
        };
        // Connected, so the kernel reports a refused port (ICMP) on the next
        // send and the loss is counted instead of silent.
        let sock = UdpSocket::bind(bind)
            .and_then(|s| s.connect(dest).map(|_| s))
            .and_then(|s| s.set_nonblocking(true).map(|_| s))
            .map_err(|e| OutputError(format!("cannot open a UDP socket for syslog: {e}")))?;
        Ok(SyslogSink {
            spec: spec.clone(),
            hostname: spec
                .hostname
                .clone()
                .unwrap_or_else(|| default_hostname.to_string()),
            sock,
            buf: Vec::with_capacity(65536),
            pid: std::process::id(),
        })
    }

    /// Frames `msg` into the reusable buffer.
    pub fn frame(&mut self, msg: &[u8], rfc3339: &str) -> &[u8] {
        use std::io::Write;
        let pri = u32::from(self.spec.facility) * 8 + u32::from(self.spec.severity);
        self.buf.clear();
        let _ = match self.spec.format {
            Format::Rfc5424 => write!(
                self.buf,
                "<{pri}>1 {rfc3339} {} {} {} metrics - ",
                self.hostname, self.spec.app_name, self.pid
            ),
            Format::Rfc3164 => {
                let ts = rfc3164_time(rfc3339);
                write!(
                    self.buf,
                    "<{pri}>{ts} {} {}[{}]: ",
                    self.hostname, self.spec.app_name, self.pid
                )
            }
        };
        self.buf.extend_from_slice(msg);
        &self.buf
    }

    pub fn send(&mut self, msg: &[u8], rfc3339: &str) -> io::Result<()> {
        let max = self.spec.max_bytes;
        let n = self.frame(msg, rfc3339).len();
        if n > max {
            return Err(io::Error::other(format!(
                "snapshot of {n} bytes exceeds the syslog limit of {max} bytes: dropped"
            )));
        }
        self.sock.send(&self.buf).map(|_| ())
    }
}

/// `2024-01-23T21:04:07...` to RFC 3164's `Jan 23 21:04:07`.
fn rfc3164_time(rfc3339: &str) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month = rfc3339
        .get(5..7)
        .and_then(|m| m.parse::<usize>().ok())
        .filter(|m| (1..=12).contains(m))
        .map_or("Jan", |m| MONTHS[m - 1]);
    let day: u32 = rfc3339.get(8..10).and_then(|d| d.parse().ok()).unwrap_or(1);
    let hms = rfc3339.get(11..19).unwrap_or("00:00:00");
    format!("{month} {day:>2} {hms}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_addresses_and_options() {
        let s = SyslogSpec::parse("127.0.0.1:514").unwrap();
        assert_eq!((s.port, s.facility, s.severity), (514, 16, 6));
        let s = SyslogSpec::parse("[::1]:5514?format=3164&facility=daemon&severity=warning&app=k")
            .unwrap();
        assert_eq!(s.host, "::1");
        assert_eq!(s.format, Format::Rfc3164);
        assert_eq!((s.facility, s.severity), (3, 4));
        assert!(SyslogSpec::parse("host").is_err());
        assert!(SyslogSpec::parse("host:99999").is_err());
        assert!(SyslogSpec::parse("h:514?facility=nope").is_err());
        assert!(SyslogSpec::parse("h:514?color=red").is_err());
    }

    #[test]
    fn frames_both_formats() {
        let spec = SyslogSpec::parse("127.0.0.1:9?hostname=gw1").unwrap();
        let mut s = SyslogSink::open(&spec, "x").unwrap();
        let f =
            String::from_utf8(s.frame(b"{}", "2024-01-23T21:04:07.488647460Z").to_vec()).unwrap();
        assert!(
            f.starts_with("<134>1 2024-01-23T21:04:07.488647460Z gw1 kestrel "),
            "{f}"
        );
        assert!(f.ends_with(" metrics - {}"));
        let spec = SyslogSpec::parse("127.0.0.1:9?format=3164").unwrap();
        let mut s = SyslogSink::open(&spec, "gw2").unwrap();
        let f = String::from_utf8(s.frame(b"{}", "2024-01-03T01:02:03.0Z").to_vec()).unwrap();
        assert!(f.starts_with("<134>Jan  3 01:02:03 gw2 kestrel["), "{f}");
    }

    #[test]
    fn oversized_snapshot_is_refused() {
        let spec = SyslogSpec::parse("127.0.0.1:9?max_bytes=480").unwrap();
        let mut s = SyslogSink::open(&spec, "h").unwrap();
        assert!(s.send(&[b'x'; 600], "2024-01-01T00:00:00Z").is_err());
    }
}
