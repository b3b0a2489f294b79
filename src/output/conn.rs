//! One outgoing stream connection for a network output (MQTT, syslog over
//! TCP or TLS), advanced by `poll` from the loop's drain tick and from every
//! write: nothing here blocks. Name resolution runs on a short-lived thread
//! (getaddrinfo cannot be made non-blocking), the TCP connect is
//! non-blocking, and the TLS handshake is stepped as bytes arrive. Every
//! phase has a deadline; a failure closes the socket and schedules the next
//! attempt with capped exponential backoff and jitter.

use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::sync::{Arc, Mutex};

use mio::net::TcpStream;
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection};

pub use super::netio::RateLog;
use super::netio::{connected, flush_tls, handshake};

const SEC: u64 = 1_000_000_000;
/// Name resolution, TCP connect, TLS handshake: each gets this long.
pub const PHASE_TIMEOUT_NS: u64 = 10 * SEC;
const BACKOFF_MIN_NS: u64 = SEC / 2;
const BACKOFF_MAX_NS: u64 = 30 * SEC;
/// Plaintext rustls holds before it refuses more (bounds its memory).
const TLS_BUFFER: usize = 32 * 1024;

pub struct Endpoint {
    pub host: String,
    pub port: u16,
    pub tls: Option<(Arc<ClientConfig>, ServerName<'static>)>,
}

type Answer = Arc<Mutex<Option<Result<Vec<SocketAddr>, String>>>>;

enum Phase {
    Idle {
        retry_at: u64,
    },
    Resolving {
        answer: Answer,
        deadline: u64,
    },
    Connecting {
        sock: TcpStream,
        addrs: Vec<SocketAddr>,
        next: usize,
        deadline: u64,
    },
    Handshaking {
        sock: TcpStream,
        tls: Box<ClientConnection>,
        deadline: u64,
    },
    Up {
        sock: TcpStream,
        tls: Option<Box<ClientConnection>>,
    },
}

/// What a `poll` changed.
pub enum Event {
    Nothing,
    /// Connected (and, with TLS, handshaken).
    Up,
    /// An attempt failed or the connection ended; the reason, for the log.
    Down(String),
}

pub struct Conn {
    ep: Endpoint,
    phase: Phase,
    failures: u32,
    rng: u64,
}

impl Conn {
    pub fn new(ep: Endpoint) -> Conn {
        let seed = crate::base::time::monotonic_ns() ^ (u64::from(std::process::id()) << 32);
        Conn {
            ep,
            phase: Phase::Idle { retry_at: 0 },
            failures: 0,
            rng: seed | 1,
        }
    }

    pub fn is_up(&self) -> bool {
        matches!(self.phase, Phase::Up { .. })
    }

    pub fn fd(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        use std::os::fd::AsFd;
        match &self.phase {
            Phase::Connecting { sock, .. }
            | Phase::Handshaking { sock, .. }
            | Phase::Up { sock, .. } => Some(sock.as_fd()),
            _ => None,
        }
    }

    /// The TLS version negotiated, once up over TLS.
    pub fn tls_version(&self) -> Option<rustls::ProtocolVersion> {
        match &self.phase {
            Phase::Up { tls: Some(t), .. } => t.protocol_version(),
            _ => None,
        }
    }

    /// A session on top came up properly: the next failure starts the
    /// backoff from its minimum again.
    pub fn reset_backoff(&mut self) {
        self.failures = 0;
    }

    /// Seconds until the next attempt after a failure now.
    fn backoff_ns(&mut self) -> u64 {
        let base = BACKOFF_MIN_NS
            .saturating_mul(1 << self.failures.min(10))
            .min(BACKOFF_MAX_NS);
        self.failures = self.failures.saturating_add(1);
        // xorshift: jitter of -25%..+25% so a fleet does not reconnect in step.
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        base - base / 4 + self.rng % (base / 2).max(1)
    }

    /// Closes the connection (a protocol timeout or error above) and
    /// schedules the next attempt; returns the delay, for the log line.
    pub fn close(&mut self, now: u64) -> u64 {
        let d = self.backoff_ns();
        self.phase = Phase::Idle { retry_at: now + d };
        d
    }

    fn fail(&mut self, now: u64, why: String) -> Event {
        let d = self.close(now);
        Event::Down(format!(
            "{why}; next attempt in {:.1} s",
            d as f64 / SEC as f64
        ))
    }

    /// Advances the connection as far as it goes without blocking.
    pub fn poll(&mut self, now: u64) -> Event {
        loop {
            let phase = std::mem::replace(&mut self.phase, Phase::Idle { retry_at: 0 });
            match phase {
                Phase::Idle { retry_at } if now < retry_at => {
                    self.phase = Phase::Idle { retry_at };
                    return Event::Nothing;
                }
                Phase::Idle { .. } => self.phase = self.resolve(now),
                Phase::Resolving { answer, deadline } => {
                    let got = answer.lock().map(|mut a| a.take()).unwrap_or(None);
                    match got {
                        None if now >= deadline => {
                            return self.fail(now, format!("resolving {} timed out", self.ep.host))
                        }
                        None => {
                            self.phase = Phase::Resolving { answer, deadline };
                            return Event::Nothing;
                        }
                        Some(Err(e)) => return self.fail(now, e),
                        Some(Ok(addrs)) => match self.start_connect(now, addrs, 0) {
                            Ok(p) => self.phase = p,
                            Err(e) => return self.fail(now, e),
                        },
                    }
                }
                Phase::Connecting {
                    sock,
                    addrs,
                    next,
                    deadline,
                } => match connected(&sock) {
                    Ok(false) if now < deadline => {
                        self.phase = Phase::Connecting {
                            sock,
                            addrs,
                            next,
                            deadline,
                        };
                        return Event::Nothing;
                    }
                    Ok(true) => match &self.ep.tls {
                        None => {
                            self.phase = Phase::Up { sock, tls: None };
                            return Event::Up;
                        }
                        Some((cfg, name)) => match ClientConnection::new(cfg.clone(), name.clone())
                        {
                            Ok(mut tls) => {
                                tls.set_buffer_limit(Some(TLS_BUFFER));
                                self.phase = Phase::Handshaking {
                                    sock,
                                    tls: Box::new(tls),
                                    deadline: now + PHASE_TIMEOUT_NS,
                                };
                            }
                            Err(e) => return self.fail(now, format!("TLS: {e}")),
                        },
                    },
                    r => {
                        let addr = addrs.get(next - 1).copied();
                        let why = match r {
                            Err(e) => e.to_string(),
                            _ => "timed out".to_string(),
                        };
                        if next < addrs.len() {
                            if let Ok(p) = self.start_connect(now, addrs, next) {
                                self.phase = p;
                                continue;
                            }
                        }
                        let shown = addr.map_or(self.ep.host.clone(), |a| a.to_string());
                        return self.fail(now, format!("connect to {shown}: {why}"));
                    }
                },
                Phase::Handshaking {
                    mut sock,
                    mut tls,
                    deadline,
                } => match handshake(&mut sock, &mut tls) {
                    Ok(true) => {
                        self.phase = Phase::Up {
                            sock,
                            tls: Some(tls),
                        };
                        return Event::Up;
                    }
                    Ok(false) if now < deadline => {
                        self.phase = Phase::Handshaking {
                            sock,
                            tls,
                            deadline,
                        };
                        return Event::Nothing;
                    }
                    Ok(false) => {
                        return self.fail(now, "TLS handshake not finished within 10 s".into())
                    }
                    Err(e) => return self.fail(now, format!("TLS handshake: {e}")),
                },
                up @ Phase::Up { .. } => {
                    self.phase = up;
                    return Event::Nothing;
                }
            }
        }
    }

    fn resolve(&mut self, now: u64) -> Phase {
        let answer: Answer = Arc::new(Mutex::new(None));
        if let Ok(ip) = self.ep.host.parse::<IpAddr>() {
            *answer.lock().unwrap_or_else(|e| e.into_inner()) =
                Some(Ok(vec![SocketAddr::new(ip, self.ep.port)]));
        } else {
            let (host, port, slot) = (self.ep.host.clone(), self.ep.port, answer.clone());
            let spawned = std::thread::Builder::new()
                .name("resolve".into())
                .stack_size(64 * 1024)
                .spawn(move || {
                    let r = (host.as_str(), port)
                        .to_socket_addrs()
                        .map(|a| a.collect::<Vec<_>>())
                        .map_err(|e| format!("cannot resolve {host}: {e}"))
                        .and_then(|v| {
                            if v.is_empty() {
                                Err(format!("{host} has no address"))
                            } else {
                                Ok(v)
                            }
                        });
                    if let Ok(mut a) = slot.lock() {
                        *a = Some(r);
                    }
                });
            if let Err(e) = spawned {
                *answer.lock().unwrap_or_else(|e| e.into_inner()) =
                    Some(Err(format!("cannot start the resolver: {e}")));
            }
        }
        Phase::Resolving {
            answer,
            deadline: now + PHASE_TIMEOUT_NS,
        }
    }

    fn start_connect(
        &mut self,
        now: u64,
        addrs: Vec<SocketAddr>,
        i: usize,
    ) -> Result<Phase, String> {
        let a = addrs[i];
        let sock = TcpStream::connect(a).map_err(|e| format!("connect to {a}: {e}"))?;
        let _ = sock.set_nodelay(true);
        Ok(Phase::Connecting {
            sock,
            addrs,
            next: i + 1,
            deadline: now + PHASE_TIMEOUT_NS,
        })
    }

    /// Reads decrypted bytes: Ok(0) is the end of the stream, WouldBlock
    /// that nothing more is there now.
    pub fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Phase::Up { sock, tls } = &mut self.phase else {
            return Err(io::ErrorKind::NotConnected.into());
        };
        let Some(tls) = tls else {
            return sock.read(buf);
        };
        loop {
            match tls.reader().read(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                r => return r,
            }
            if tls.read_tls(sock)? == 0 {
                return Ok(0);
            }
            tls.process_new_packets().map_err(io::Error::other)?;
        }
    }

    /// Writes as much of `data` as the socket (or TLS buffer) takes now.
    pub fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let Phase::Up { sock, tls } = &mut self.phase else {
            return Err(io::ErrorKind::NotConnected.into());
        };
        let Some(tls) = tls else {
            return match sock.write(data) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(0),
                r => r,
            };
        };
        let n = tls.writer().write(data)?;
        flush_tls(sock, tls)?;
        Ok(n)
    }

    /// Pushes out TLS records rustls still holds.
    pub fn flush(&mut self) -> io::Result<()> {
        match &mut self.phase {
            Phase::Up {
                sock,
                tls: Some(tls),
            } => flush_tls(sock, tls),
            _ => Ok(()),
        }
    }

    /// Whether nothing is left unsent below the caller's buffer.
    pub fn drained(&self) -> bool {
        match &self.phase {
            Phase::Up { tls: Some(tls), .. } => !tls.wants_write(),
            _ => true,
        }
    }
}
