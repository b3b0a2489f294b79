//! Remote syslog over UDP: RFC 5424 (default) or RFC 3164 framing around the
//! snapshot JSON. The socket is non-blocking and the destination is resolved
//! once at start, so a dead or slow collector never stalls the loop; a
//! datagram that cannot be sent is counted, not retried.
//!
//! A snapshot larger than `max_bytes` (default 8192, rsyslog's default
//! maxMessageSize) is dropped and counted rather than truncated: half a JSON
//! object is useless to every consumer.
//!
//! Loss accounting: the socket is connected and has IP_RECVERR, so every
//! ICMP error (port unreachable, host unreachable) is queued per datagram
//! on the socket's error queue. Each queued error is one datagram the kernel
//! knows did not arrive; they are counted before every send and at exit.
//! Without the error queue a connected UDP socket reports an ICMP error only
//! once, on some later send, which then fails too: half the losses vanish.

use std::net::{SocketAddr, ToSocketAddrs, UdpSocket};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

use super::{OutputError, Sink, Wrote};

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
                "app" => spec.app_name = header_field("app", v, 48)?,
                "hostname" => spec.hostname = Some(header_field("hostname", v, 255)?),
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

/// RFC 5424 section 6: HOSTNAME and APP-NAME are 1*255 / 1*48 PRINTUSASCII
/// (33..=126); a space would shift every later header field.
fn header_field(what: &str, v: &str, max: usize) -> Result<String, String> {
    if v.is_empty() || v.len() > max || !v.bytes().all(|b| (33..=126).contains(&b)) {
        return Err(format!(
            "syslog {what} '{}' must be 1 to {max} printable ASCII characters without spaces",
            crate::log::escape(v)
        ));
    }
    Ok(v.to_string())
}

/// The host's own name, made header-safe: bytes outside PRINTUSASCII become
/// '_', at most 255; empty becomes the NILVALUE "-".
pub fn sanitize_hostname(h: &str) -> String {
    let s: String = h
        .bytes()
        .take(255)
        .map(|b| {
            if (33..=126).contains(&b) {
                b as char
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() {
        "-".into()
    } else {
        s
    }
}

/// The syslog header around a message; shared by UDP, TCP and TLS.
pub struct Framer {
    spec: SyslogSpec,
    hostname: String,
    buf: Vec<u8>,
    pid: u32,
}

pub struct SyslogSink {
    framer: Framer,
    sock: UdpSocket,
    name: String,
    recverr: bool,
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
        let (level, opt) = if dest.is_ipv4() {
            (libc::IPPROTO_IP, libc::IP_RECVERR)
        } else {
            (libc::IPPROTO_IPV6, libc::IPV6_RECVERR)
        };
        let one: libc::c_int = 1;
        // SAFETY: setsockopt with a valid int option value.
        let recverr = unsafe {
            libc::setsockopt(
                sock.as_raw_fd(),
                level,
                opt,
                (&one as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        } == 0;
        Ok(SyslogSink {
            framer: Framer::new(spec, default_hostname),
            sock,
            name: format!("syslog://{}:{}", spec.host, spec.port),
            recverr,
        })
    }

    /// Datagrams the kernel reported lost since the last call: one per
    /// error-queue entry, plus a pending socket error without one.
    pub fn take_errors(&mut self) -> u64 {
        let fd = self.sock.as_raw_fd();
        let mut n = 0;
        if self.recverr {
            loop {
                let mut data = [0u8; 64];
                let mut ctl = [0u8; 256];
                let mut iov = libc::iovec {
                    iov_base: data.as_mut_ptr().cast(),
                    iov_len: data.len(),
                };
                // SAFETY: msghdr points at live local buffers.
                let r = unsafe {
                    let mut m: libc::msghdr = std::mem::zeroed();
                    m.msg_iov = &mut iov;
                    m.msg_iovlen = 1;
                    m.msg_control = ctl.as_mut_ptr().cast();
                    m.msg_controllen = ctl.len() as _;
                    libc::recvmsg(fd, &mut m, libc::MSG_ERRQUEUE | libc::MSG_DONTWAIT)
                };
                if r < 0 {
                    break;
                }
                n += 1;
            }
        }
        // Clears sk_err so the next send is not refused for an old error.
        let pending = self.sock.take_error().ok().flatten().is_some();
        if pending && !self.recverr {
            n += 1;
        }
        n
    }

    /// Frames `msg` into the reusable buffer.
    pub fn frame(&mut self, msg: &[u8], rfc3339: &str) -> &[u8] {
        self.framer.frame(msg, rfc3339)
    }
}

impl Framer {
    pub fn new(spec: &SyslogSpec, default_hostname: &str) -> Framer {
        Framer {
            spec: spec.clone(),
            hostname: spec
                .hostname
                .clone()
                .unwrap_or_else(|| sanitize_hostname(default_hostname)),
            buf: Vec::with_capacity(spec.max_bytes),
            pid: std::process::id(),
        }
    }

    /// A snapshot (severity None) or an alert, framed and checked against
    /// max_bytes: a message too large is dropped, never truncated.
    pub fn encode(
        &mut self,
        line: &[u8],
        time: &str,
        severity: Option<u8>,
    ) -> Result<&[u8], &'static str> {
        let msg = line.strip_suffix(b"\n").unwrap_or(line);
        let max = self.spec.max_bytes;
        let n = match severity {
            None => self.frame(msg, time).len(),
            Some(sev) => self.frame_as(msg, time, sev, "alert").len(),
        };
        if n > max {
            return Err(match severity {
                None => "snapshot exceeds the syslog max_bytes: dropped, not truncated",
                Some(_) => "alert exceeds the syslog max_bytes: dropped, not truncated",
            });
        }
        Ok(&self.buf)
    }

    /// Frames `msg` into the reusable buffer.
    pub fn frame(&mut self, msg: &[u8], rfc3339: &str) -> &[u8] {
        self.frame_as(msg, rfc3339, self.spec.severity, "metrics")
    }

    /// Frames with a severity and MSGID of its own (alerts: the rule's).
    pub fn frame_as(&mut self, msg: &[u8], rfc3339: &str, severity: u8, msgid: &str) -> &[u8] {
        use std::io::Write;
        let pri = u32::from(self.spec.facility) * 8 + u32::from(severity.min(7));
        self.buf.clear();
        let _ = match self.spec.format {
            Format::Rfc5424 => write!(
                self.buf,
                "<{pri}>1 {rfc3339} {} {} {} {msgid} - ",
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
}

impl Sink for SyslogSink {
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
        severity: u8,
    ) -> Result<&'a [u8], &'static str> {
        self.framer.encode(line, time, Some(severity))
    }

    fn write(&mut self, data: &[u8], _done: usize) -> Wrote {
        for _ in 0..2 {
            match self.sock.send(data) {
                Ok(_) => return Wrote::All,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Wrote::Blocked,
                // An old ICMP error surfaced on this send; it was counted by
                // take_errors (called before every write): send again.
                Err(e) if e.raw_os_error() == Some(libc::ECONNREFUSED) => continue,
                Err(_) => return Wrote::Lost("send failed"),
            }
        }
        Wrote::Lost("destination refused (ICMP)")
    }

    fn take_lost(&mut self) -> u64 {
        self.take_errors()
    }

    fn poll_fd(&self) -> Option<BorrowedFd<'_>> {
        Some(self.sock.as_fd())
    }

    fn async_losses(&self) -> bool {
        true
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
#[path = "syslog_tests.rs"]
mod tests;
