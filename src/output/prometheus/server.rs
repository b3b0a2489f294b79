//! The `/metrics` endpoint as a handful of non-blocking sockets in the
//! agent's own mio loop. Every connection has a fixed 4 KiB request buffer,
//! taken at its first read (idle connections hold none),
//! and a deadline; the response is one shared, pre-rendered buffer (an `Rc`,
//! so a slow reader keeps its generation alive without a copy). Work per
//! wakeup is capped (accepts, requests, discarded bytes) and re-armed through
//! epoll instead of looping, so no client can hold the loop away from the
//! ring buffer or the snapshot timer. At capacity the oldest connection still
//! waiting for a request is evicted: idle or trickling clients cannot lock a
//! well-behaved scraper out.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::rc::Rc;

use mio::net::{TcpListener, TcpStream};
use mio::{Interest, Registry, Token};

use super::http::{self, Parsed, Status, MAX_REQUEST};
use super::render::{ServerStats, STATUS_CODES};

/// Concurrent connections; Prometheus needs one, a few people with curl a few more.
pub const MAX_CONNECTIONS: usize = 32;
/// A connection waiting for its first request byte is closed after this.
const IDLE_NS: u64 = 15_000_000_000;
/// Once a request has started, all of it must arrive within this.
const REQUEST_NS: u64 = 5_000_000_000;
/// A response must make progress within this.
const WRITE_NS: u64 = 10_000_000_000;
/// After an error response, input is discarded this long before closing.
const LINGER_NS: u64 = 1_000_000_000;
/// Per wakeup: connections accepted, requests served per connection, bytes
/// discarded per lingering connection.
const ACCEPTS_PER_WAKEUP: usize = 64;
const REQUESTS_PER_WAKEUP: usize = 4;
const DISCARD_PER_WAKEUP: usize = 64 * 1024;

enum Phase {
    /// Waiting for (the rest of) a request since `since`.
    Reading,
    Writing {
        data: Rc<[u8]>,
        pos: usize,
        end: usize,
        keep: bool,
    },
    Error {
        msg: &'static [u8],
        pos: usize,
    },
    /// Write side shut after an error; input discarded until EOF or deadline.
    Lingering,
}

struct Conn {
    sock: TcpStream,
    /// Allocated at the first read: an idle connection holds no buffer.
    buf: Option<Box<[u8; MAX_REQUEST]>>,
    len: usize,
    since: u64,
    phase: Phase,
}

impl Conn {
    fn deadline(&self) -> u64 {
        match self.phase {
            Phase::Reading if self.len == 0 => self.since + IDLE_NS,
            Phase::Reading => self.since + REQUEST_NS,
            Phase::Writing { .. } | Phase::Error { .. } => self.since + WRITE_NS,
            Phase::Lingering => self.since + LINGER_NS,
        }
    }
}

enum Step {
    /// Wait for the next readiness event.
    Wait,
    /// Budget spent with work left: re-arm so epoll reports it again.
    Rearm,
    Close,
}

pub struct Server {
    listener: TcpListener,
    base: usize,
    conns: Vec<Option<Conn>>,
    /// Slots in use at most: fewer than MAX_CONNECTIONS when RLIMIT_NOFILE
    /// leaves less, so clients never take the fds the rest of the agent needs.
    cap: usize,
    /// accept(2) ran out of fds with nobody to evict: re-armed on the tick.
    starved: bool,
    /// The whole 200 response (headers + body); `head` bytes of it for HEAD.
    response: Option<(Rc<[u8]>, usize)>,
    pub stats: ServerStats,
}

fn count(stats: &mut ServerStats, code: u16) {
    if let Some(i) = STATUS_CODES.iter().position(|&c| c == code) {
        stats.responses[i] += 1;
    }
}

impl Server {
    /// Takes a bound listener (bound early, before privileges are dropped).
    pub fn new(listener: std::net::TcpListener) -> io::Result<Server> {
        listener.set_nonblocking(true)?;
        Ok(Server {
            listener: TcpListener::from_std(listener),
            base: 0,
            conns: (0..MAX_CONNECTIONS).map(|_| None).collect(),
            cap: MAX_CONNECTIONS,
            starved: false,
            response: None,
            stats: ServerStats::default(),
        })
    }

    /// Registers the listener as `Token(base)`; connections use the next
    /// MAX_CONNECTIONS tokens.
    pub fn register(&mut self, registry: &Registry, base: usize) -> io::Result<()> {
        self.base = base;
        // Registered once the start's fds are open: what is left is the clients'.
        if let Some(limit) = crate::fdlimit::soft_limit() {
            let used = crate::fdlimit::open_now(limit) + crate::fdlimit::HEADROOM;
            let free = usize::try_from(limit.saturating_sub(used)).unwrap_or(usize::MAX);
            self.cap = free.clamp(1, MAX_CONNECTIONS);
        }
        registry.register(&mut self.listener, Token(base), Interest::READABLE)
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    pub fn owns(&self, t: Token) -> bool {
        (self.base..=self.base + MAX_CONNECTIONS).contains(&t.0)
    }

    /// Installs a freshly rendered body; requests from now on get it.
    pub fn publish(&mut self, body: &[u8]) {
        let mut r = Vec::with_capacity(body.len() + 128);
        let _ = write!(
            r,
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        let head = r.len();
        r.extend_from_slice(body);
        self.response = Some((Rc::from(r), head));
    }

    pub fn on_event(&mut self, registry: &Registry, t: Token, now: u64) {
        if t.0 == self.base {
            self.accept(registry, now);
            return;
        }
        self.step(registry, t.0 - self.base - 1, now);
        self.stats.open_connections = self.conns.iter().flatten().count() as u64;
    }

    /// Drives connection `i` and acts on the outcome.
    fn step(&mut self, registry: &Registry, i: usize, now: u64) {
        let t = Token(self.base + 1 + i);
        let Some(c) = self.conns[i].as_mut() else {
            return;
        };
        match drive(c, &self.response, &mut self.stats, now) {
            Step::Wait => {}
            Step::Rearm => {
                let interest = Interest::READABLE | Interest::WRITABLE;
                if registry.reregister(&mut c.sock, t, interest).is_err() {
                    self.close(registry, i);
                }
            }
            Step::Close => self.close(registry, i),
        }
    }

    /// Closes connections past their deadline; called on the drain tick.
    pub fn sweep(&mut self, registry: &Registry, now: u64) {
        if std::mem::take(&mut self.starved) {
            let _ = registry.reregister(&mut self.listener, Token(self.base), Interest::READABLE);
        }
        for i in 0..self.conns.len() {
            if self.conns[i].as_ref().is_some_and(|c| now > c.deadline()) {
                self.close(registry, i);
            }
        }
        self.stats.open_connections = self.conns.iter().flatten().count() as u64;
    }

    fn close(&mut self, registry: &Registry, i: usize) {
        if let Some(mut c) = self.conns[i].take() {
            let _ = registry.deregister(&mut c.sock);
        }
    }

    fn accept(&mut self, registry: &Registry, now: u64) {
        let mut budget = ACCEPTS_PER_WAKEUP;
        while budget > 0 {
            budget -= 1;
            let mut sock = match self.listener.accept() {
                Ok((s, _)) => s,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // Out of fds: an idle client's goes to the newcomer, as at capacity.
                Err(e) if matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE)) => {
                    let Some(i) = self.evictable() else {
                        self.starved = true;
                        break;
                    };
                    self.close(registry, i);
                    continue;
                }
                // WouldBlock: the rest waits in the backlog.
                Err(_) => break,
            };
            let slot = match self.conns[..self.cap].iter().position(Option::is_none) {
                Some(s) => Some(s),
                None => self.evictable().inspect(|&s| self.close(registry, s)),
            };
            let Some(slot) = slot else {
                // Everyone is being answered: refuse this one. 75 bytes fit
                // any fresh socket's send buffer, so one write either goes or fails.
                let _ = sock.write(Status::Unavailable.response());
                let _ = sock.shutdown(Shutdown::Both);
                count(&mut self.stats, 503);
                continue;
            };
            let t = Token(self.base + 1 + slot);
            if registry
                .register(&mut sock, t, Interest::READABLE | Interest::WRITABLE)
                .is_err()
            {
                continue;
            }
            self.conns[slot] = Some(Conn {
                sock,
                buf: None,
                len: 0,
                since: now,
                phase: Phase::Reading,
            });
            // The request usually came with the handshake: serve it now, so
            // a connection holding a slot has really been waiting.
            self.step(registry, slot, now);
        }
        if budget == 0 {
            // MOD re-checks the backlog and reports it again if non-empty.
            let _ = registry.reregister(&mut self.listener, Token(self.base), Interest::READABLE);
        }
        self.stats.open_connections = self.conns.iter().flatten().count() as u64;
    }

    /// The connection to give up for a newcomer: a silent one first, then
    /// one with half a request, then one lingering after its answer (closing
    /// that may reset the answer in flight); oldest first. None while every
    /// slot is mid-response.
    fn evictable(&self) -> Option<usize> {
        self.conns
            .iter()
            .enumerate()
            .filter_map(|(i, c)| {
                let rank = match c.as_ref()?.phase {
                    Phase::Reading if c.as_ref()?.len == 0 => 0,
                    Phase::Reading => 1,
                    Phase::Lingering => 2,
                    Phase::Writing { .. } | Phase::Error { .. } => return None,
                };
                Some((i, (rank, c.as_ref()?.since)))
            })
            .min_by_key(|&(_, key)| key)
            .map(|(i, _)| i)
    }
}

/// Reads what is there into the request buffer. Err(()) on EOF or error.
fn fill(c: &mut Conn) -> Result<(), ()> {
    while c.len < MAX_REQUEST {
        let read = match c.buf.as_deref_mut() {
            Some(b) => c.sock.read(&mut b[c.len..]),
            // No buffer until the client sends something.
            None => {
                let mut first = [0u8; 512];
                let r = c.sock.read(&mut first);
                if let Ok(n @ 1..) = r {
                    let mut b = Box::new([0u8; MAX_REQUEST]);
                    b[..n].copy_from_slice(&first[..n]);
                    c.buf = Some(b);
                }
                r
            }
        };
        match read {
            Ok(0) => return Err(()),
            Ok(n) => c.len += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return Err(()),
        }
    }
    Ok(())
}

/// Writes `data[*pos..end]`; true when all of it went.
fn flush(sock: &mut TcpStream, data: &[u8], pos: &mut usize) -> Result<bool, ()> {
    while *pos < data.len() {
        match sock.write(&data[*pos..]) {
            Ok(0) => return Err(()),
            Ok(n) => *pos += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return Err(()),
        }
    }
    Ok(true)
}

/// Advances one connection as far as its sockets and the budget allow.
fn drive(
    c: &mut Conn,
    response: &Option<(Rc<[u8]>, usize)>,
    stats: &mut ServerStats,
    now: u64,
) -> Step {
    let mut served = 0;
    loop {
        match &mut c.phase {
            Phase::Reading => {
                let eof = fill(c).is_err();
                let req_bytes = c.buf.as_deref().map_or(&[][..], |b| &b[..c.len]);
                match http::parse(req_bytes) {
                    Parsed::Partial if eof => return Step::Close,
                    Parsed::Partial => return Step::Wait,
                    Parsed::Reject(s) => {
                        count(stats, s.code());
                        c.phase = Phase::Error {
                            msg: s.response(),
                            pos: 0,
                        };
                    }
                    Parsed::Done(req) => {
                        if served == REQUESTS_PER_WAKEUP {
                            return Step::Rearm;
                        }
                        served += 1;
                        // Drop the request; pipelined bytes after it stay.
                        if let Some(b) = c.buf.as_deref_mut() {
                            b.copy_within(req.len..c.len, 0);
                        }
                        c.len -= req.len;
                        c.phase = match response {
                            Some((data, head)) => {
                                count(stats, 200);
                                Phase::Writing {
                                    data: Rc::clone(data),
                                    pos: 0,
                                    end: if req.head { *head } else { data.len() },
                                    keep: req.keep_alive && !eof,
                                }
                            }
                            None => {
                                count(stats, 503);
                                Phase::Error {
                                    msg: Status::Unavailable.response(),
                                    pos: 0,
                                }
                            }
                        };
                    }
                }
                c.since = now;
            }
            Phase::Writing {
                data,
                pos,
                end,
                keep,
            } => {
                let before = *pos;
                match flush(&mut c.sock, &data[..*end], pos) {
                    Err(()) => return Step::Close,
                    Ok(false) => {
                        if *pos > before {
                            c.since = now;
                        }
                        return Step::Wait;
                    }
                    Ok(true) if *keep => c.phase = Phase::Reading,
                    Ok(true) => {
                        let _ = c.sock.shutdown(Shutdown::Write);
                        c.phase = Phase::Lingering;
                    }
                }
                c.since = now;
            }
            Phase::Error { msg, pos } => {
                match flush(&mut c.sock, msg, pos) {
                    Err(()) => return Step::Close,
                    Ok(false) => return Step::Wait,
                    Ok(true) => {
                        let _ = c.sock.shutdown(Shutdown::Write);
                        c.phase = Phase::Lingering;
                    }
                }
                c.since = now;
            }
            Phase::Lingering => {
                // Reading the client's leftovers lets our response arrive
                // instead of being cut by a reset.
                let mut discarded = 0;
                let mut sink = [0u8; 1024];
                while discarded < DISCARD_PER_WAKEUP {
                    match c.sock.read(&mut sink) {
                        Ok(0) => return Step::Close,
                        Ok(n) => discarded += n,
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Step::Wait,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(_) => return Step::Close,
                    }
                }
                // Still sending: carry on next wakeup, until the linger deadline.
                return Step::Rearm;
            }
        }
    }
}

#[cfg(test)]
#[path = "server_tests.rs"]
mod tests;
