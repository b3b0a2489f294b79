//! The `/metrics` endpoint as a handful of non-blocking sockets in the
//! agent's own mio loop, in plain HTTP or TLS (rustls). Every connection has
//! a fixed 4 KiB request buffer, taken at its first read (idle connections
//! hold none), and a deadline; the response is one shared buffer (an `Rc`,
//! so a slow reader keeps its generation alive without a copy). Text older
//! than `fresh_ns` is rendered again before it is served: the request waits
//! (`render_wanted`) until the agent calls `publish`. Work per wakeup is
//! capped (accepts, requests, discarded bytes) and re-armed through epoll
//! instead of looping, so no client can hold the loop away from the ring
//! buffer or the snapshot timer. At capacity the oldest connection still
//! waiting for a request is evicted: idle or trickling clients cannot lock a
//! well-behaved scraper out.

use std::io::{self, Write};
use std::net::{Shutdown, SocketAddr};
use std::rc::Rc;
use std::sync::Arc;

use mio::net::TcpListener;
use mio::{Interest, Registry, Token, Waker};

use super::auth::Auth;
use super::conn::{count, drive, Conn, Ctx, Phase, Response, Step};
use super::http::Status;
use super::render::ServerStats;

/// Concurrent connections; Prometheus needs one, a few people with curl a few more.
pub const MAX_CONNECTIONS: usize = 32;
/// With TLS: a session holds ~14 kB after a scrape and up to ~40 KiB with
/// rustls's buffers full (BENCHMARKS.md), so fewer are kept.
pub const MAX_TLS_CONNECTIONS: usize = 8;
/// Text younger than this is served as it is: at most one render per this.
pub const FRESH_NS: u64 = 250_000_000;
/// Connections accepted per wakeup.
const ACCEPTS_PER_WAKEUP: usize = 64;

pub struct Server {
    listener: TcpListener,
    base: usize,
    conns: Vec<Option<Conn>>,
    /// Slots in use at most: fewer than MAX_CONNECTIONS when RLIMIT_NOFILE
    /// leaves less, so clients never take the fds the rest of the agent needs.
    cap: usize,
    /// accept(2) ran out of fds with nobody to evict: re-armed on the tick.
    starved: bool,
    response: Option<Response>,
    pub fresh_ns: u64,
    tls: Option<Arc<rustls::ServerConfig>>,
    /// Basic auth users, started at `register` (the worker thread comes after
    /// the privilege drop).
    users: Vec<(String, String)>,
    auth: Option<Auth>,
    next_id: u64,
    render_wanted: bool,
    pub stats: ServerStats,
    /// bcrypt checks by the servers a reload replaced.
    bcrypt_before: u64,
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
            fresh_ns: FRESH_NS,
            tls: None,
            users: Vec::new(),
            auth: None,
            next_id: 0,
            render_wanted: false,
            stats: ServerStats::default(),
            bcrypt_before: 0,
        })
    }

    /// TLS on every connection from now on.
    pub fn with_tls(mut self, cfg: Arc<rustls::ServerConfig>) -> Server {
        self.tls = Some(cfg);
        self.cap = self.cap.min(MAX_TLS_CONNECTIONS);
        self
    }

    /// Basic auth against these (user, bcrypt hash) pairs.
    pub fn with_users(mut self, users: Vec<(String, String)>) -> Server {
        self.users = users;
        self
    }

    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// A request waits for fresh text: render and `publish`.
    pub fn render_wanted(&self) -> bool {
        self.render_wanted
    }

    fn waker_token(&self) -> Token {
        Token(self.base + MAX_CONNECTIONS + 1)
    }

    /// Registers the listener as `Token(base)`; connections use the next
    /// MAX_CONNECTIONS tokens.
    /// `waker` is the loop's one Waker (mio allows one per Poll, ever): made
    /// here the first time Basic auth needs it, kept by the caller for the
    /// servers a reload makes later.
    pub fn register(
        &mut self,
        registry: &Registry,
        base: usize,
        waker: &mut Option<Arc<Waker>>,
    ) -> io::Result<()> {
        self.base = base;
        // Registered once the start's fds are open: what is left is the clients'.
        if let Some(limit) = crate::fdlimit::soft_limit() {
            let used = crate::fdlimit::open_now(limit) + crate::fdlimit::HEADROOM;
            let free = usize::try_from(limit.saturating_sub(used)).unwrap_or(usize::MAX);
            self.cap = free.clamp(1, MAX_CONNECTIONS);
        }
        if let Some(cap) = self.tls.as_ref().map(|_| MAX_TLS_CONNECTIONS) {
            self.cap = self.cap.min(cap);
        }
        if !self.users.is_empty() {
            let waker = match waker {
                Some(w) => Arc::clone(w),
                None => {
                    Arc::clone(waker.insert(Arc::new(Waker::new(registry, self.waker_token())?)))
                }
            };
            let users = std::mem::take(&mut self.users);
            self.auth = Some(Auth::new(users, move || {
                let _ = waker.wake();
            })?);
        }
        registry.register(&mut self.listener, Token(base), Interest::READABLE)
    }

    /// A reload: the counters of the server this one replaces go on.
    pub fn carry(mut self, stats: ServerStats) -> Server {
        self.bcrypt_before = stats.bcrypt_checks;
        self.stats = ServerStats {
            open_connections: 0,
            ..stats
        };
        self
    }

    /// A reload ends this server: its connections close, everything leaves
    /// the poll, the bcrypt worker stops; the listener is handed back.
    pub fn close_all(mut self, registry: &Registry) -> (std::net::TcpListener, ServerStats) {
        for i in 0..self.conns.len() {
            self.close(registry, i);
        }
        let _ = registry.deregister(&mut self.listener);
        self.sync_stats();
        self.stats.open_connections = 0;
        (std::net::TcpListener::from(self.listener), self.stats)
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    pub fn owns(&self, t: Token) -> bool {
        (self.base..=self.base + MAX_CONNECTIONS + 1).contains(&t.0)
    }

    /// Installs a freshly rendered body and answers the requests waiting for it.
    pub fn publish(&mut self, registry: &Registry, body: &[u8], now: u64) {
        let mut r = Vec::with_capacity(body.len() + 128);
        let _ = write!(
            r,
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        let head = r.len();
        r.extend_from_slice(body);
        self.response = Some(Response {
            data: Rc::from(r),
            head,
            at_ns: now,
        });
        self.render_wanted = false;
        for i in 0..self.conns.len() {
            let waiting = self.conns[i].as_ref().and_then(|c| match c.phase {
                Phase::Waiting { head, keep } => Some((head, keep)),
                _ => None,
            });
            if let Some((head, keep)) = waiting {
                let phase = self.ctx(i, now).serve(head, keep);
                if let Some(c) = self.conns[i].as_mut() {
                    c.phase = phase;
                }
                self.step(registry, i, now);
            }
        }
    }

    fn ctx(&mut self, slot: usize, now: u64) -> Ctx<'_> {
        Ctx {
            response: self.response.as_ref(),
            fresh_ns: self.fresh_ns,
            stats: &mut self.stats,
            auth: self.auth.as_mut(),
            now,
            slot,
            render_wanted: false,
        }
    }

    /// The bcrypt worker's verdicts, to the connections waiting for them.
    fn verdicts(&mut self, registry: &Registry, now: u64) {
        let Some(a) = self.auth.as_mut() else { return };
        for ((slot, id), ok) in a.finished() {
            let Some(c) = self.conns.get_mut(slot).and_then(Option::take) else {
                continue;
            };
            let mut c = c;
            if c.id == id {
                let mut ctx = Ctx {
                    response: self.response.as_ref(),
                    fresh_ns: self.fresh_ns,
                    stats: &mut self.stats,
                    auth: None,
                    now,
                    slot,
                    render_wanted: false,
                };
                if let Some(p) = ctx.verdict(&c.phase, ok) {
                    c.phase = p;
                }
                self.render_wanted |= ctx.render_wanted;
            }
            self.conns[slot] = Some(c);
            if self.conns[slot].as_ref().is_some_and(|c| c.id == id) {
                self.step(registry, slot, now);
            }
        }
    }

    pub fn on_event(&mut self, registry: &Registry, t: Token, now: u64) {
        if t.0 == self.base {
            self.accept(registry, now);
            return;
        }
        if t == self.waker_token() {
            self.verdicts(registry, now);
            self.sync_stats();
            return;
        }
        self.step(registry, t.0 - self.base - 1, now);
        self.sync_stats();
    }

    fn sync_stats(&mut self) {
        self.stats.open_connections = self.conns.iter().flatten().count() as u64;
        if let Some(a) = &self.auth {
            self.stats.bcrypt_checks = self.bcrypt_before + a.stats.bcrypt_checks;
        }
    }

    /// Drives connection `i` and acts on the outcome.
    fn step(&mut self, registry: &Registry, i: usize, now: u64) {
        let t = Token(self.base + 1 + i);
        let Some(mut c) = self.conns[i].take() else {
            return;
        };
        let mut ctx = self.ctx(i, now);
        let step = drive(&mut c, &mut ctx);
        self.render_wanted |= ctx.render_wanted;
        self.conns[i] = Some(c);
        let Some(c) = self.conns[i].as_mut() else {
            return;
        };
        match step {
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
                // any fresh socket's send buffer, so one write either goes or
                // fails (a TLS client is just closed: it would read garbage).
                if self.tls.is_none() {
                    let _ = sock.write(Status::Unavailable.response());
                }
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
            let tls = match &self.tls {
                Some(cfg) => match super::tls::accept(cfg) {
                    Some(t) => Some(t),
                    None => continue,
                },
                None => None,
            };
            self.next_id += 1;
            self.conns[slot] = Some(Conn {
                sock,
                tls,
                id: self.next_id,
                heard: false,
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

    /// The connection to give up for a newcomer (`Conn::rank`), oldest
    /// first. None while every slot is mid-response.
    fn evictable(&mut self) -> Option<usize> {
        loop {
            let i = self
                .conns
                .iter()
                .enumerate()
                .filter_map(|(i, c)| Some((i, (c.as_ref()?.rank()?, c.as_ref()?.since))))
                .min_by_key(|&(_, key)| key)
                .map(|(i, _)| i)?;
            // Each pass hears at most one more: bounded by the slots.
            if self.conns[i].as_mut().is_some_and(|c| !c.confirm_silent()) {
                continue;
            }
            return Some(i);
        }
    }
}

#[cfg(test)]
#[path = "server_tests.rs"]
pub(super) mod tests;

#[cfg(test)]
#[path = "server_tls_tests.rs"]
mod tls_tests;
