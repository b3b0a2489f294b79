//! One client of the endpoint: its socket (plain or TLS), request buffer,
//! phase and deadline, and `drive`, which moves it as far as its socket and
//! the per-wakeup budget allow. The server decides what a parsed request
//! gets (`Ctx::admit`): credentials first, then fresh or cached text.

use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::rc::Rc;

use mio::net::TcpStream;
use rustls::ServerConnection;

use super::auth::{Auth, Verdict};
use super::http::{self, Parsed, Status, MAX_REQUEST};
use super::render::{ServerStats, STATUS_CODES};
use super::tls;

/// A connection waiting for its first request byte is closed after this.
pub(super) const IDLE_NS: u64 = 15_000_000_000;
/// A TLS handshake must be over within this.
pub(super) const HANDSHAKE_NS: u64 = 5_000_000_000;
/// Once a request has started, all of it must arrive within this.
pub(super) const REQUEST_NS: u64 = 5_000_000_000;
/// A response must make progress within this (also: a bcrypt verdict or a render).
const WRITE_NS: u64 = 10_000_000_000;
/// After an error response, input is discarded this long before closing.
const LINGER_NS: u64 = 1_000_000_000;
/// Requests served per connection and bytes discarded per lingering
/// connection, per wakeup.
const REQUESTS_PER_WAKEUP: usize = 4;
const DISCARD_PER_WAKEUP: usize = 64 * 1024;

pub(super) enum Phase {
    /// Waiting for (the rest of) a request since `since`.
    Reading,
    /// Credentials with the bcrypt worker.
    Authorizing {
        head: bool,
        keep: bool,
    },
    /// Waiting for the text to be rendered afresh.
    Waiting {
        head: bool,
        keep: bool,
    },
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

pub(super) struct Conn {
    pub sock: TcpStream,
    /// The TLS session; None on a plain endpoint.
    pub tls: Option<Box<ServerConnection>>,
    /// Allocated at the first read: an idle connection holds no buffer.
    pub buf: Option<Box<[u8; MAX_REQUEST]>>,
    pub len: usize,
    pub since: u64,
    pub phase: Phase,
    /// Tells a bcrypt verdict for this connection from one for the slot's next.
    pub id: u64,
    /// Some byte (TLS or request) has come: the client is doing something.
    pub heard: bool,
}

impl Conn {
    pub fn deadline(&self) -> u64 {
        let handshaking = self.tls.as_ref().is_some_and(|t| t.is_handshaking());
        match self.phase {
            Phase::Reading if handshaking => self.since + HANDSHAKE_NS,
            Phase::Reading if self.len == 0 => self.since + IDLE_NS,
            Phase::Reading => self.since + REQUEST_NS,
            Phase::Lingering => self.since + LINGER_NS,
            _ => self.since + WRITE_NS,
        }
    }

    /// Who goes first when a newcomer needs a slot: a silent connection,
    /// then one lingering after its answer, then one mid-handshake or with
    /// half a request (cut by its own deadline anyway). A TLS scraper spends
    /// a few round trips in its handshake: evicting those before finished
    /// ones would let a connection flood starve it. None: being answered.
    pub fn rank(&self) -> Option<u8> {
        match self.phase {
            Phase::Reading if !self.heard && self.len == 0 => Some(0),
            Phase::Lingering => Some(1),
            Phase::Reading => Some(2),
            _ => None,
        }
    }

    /// False if a "silent" connection's bytes are waiting unread (its
    /// event not handled yet): closing it now would reset a real request.
    pub fn confirm_silent(&mut self) -> bool {
        if self.rank() != Some(0) {
            return true;
        }
        let waiting = matches!(self.sock.peek(&mut [0u8; 1]), Ok(n) if n > 0);
        self.heard |= waiting;
        !waiting
    }

    fn recv(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match &mut self.tls {
            Some(t) => tls::read(t, &mut self.sock, buf, &mut self.heard),
            None => {
                let r = self.sock.read(buf);
                self.heard |= matches!(r, Ok(1..));
                r
            }
        }
    }

    fn send(&mut self, data: &[u8]) -> io::Result<usize> {
        match &mut self.tls {
            Some(t) => tls::write(t, &mut self.sock, data),
            None => self.sock.write(data),
        }
    }

    fn shut_write(&mut self) {
        if let Some(t) = &mut self.tls {
            tls::close(t, &mut self.sock);
        }
        let _ = self.sock.shutdown(Shutdown::Write);
    }
}

pub(super) enum Step {
    /// Wait for the next readiness event.
    Wait,
    /// Budget spent with work left: re-arm so epoll reports it again.
    Rearm,
    Close,
}

/// The text being served and when it was rendered.
pub(super) struct Response {
    /// The whole 200 response; `head` bytes of it for HEAD.
    pub data: Rc<[u8]>,
    pub head: usize,
    pub at_ns: u64,
}

/// What `drive` needs from the server for one connection.
pub(super) struct Ctx<'a> {
    pub response: Option<&'a Response>,
    /// Text younger than this is served as it is; older is rendered again.
    pub fresh_ns: u64,
    pub stats: &'a mut ServerStats,
    pub auth: Option<&'a mut Auth>,
    pub now: u64,
    pub slot: usize,
    /// Set when a request waits for a render.
    pub render_wanted: bool,
}

pub(super) fn count(stats: &mut ServerStats, code: u16) {
    if let Some(i) = STATUS_CODES.iter().position(|&c| c == code) {
        stats.responses[i] += 1;
    }
}

fn error(stats: &mut ServerStats, s: Status) -> Phase {
    count(stats, s.code());
    Phase::Error {
        msg: s.response(),
        pos: 0,
    }
}

impl Ctx<'_> {
    /// A complete request: its credentials checked, then the text.
    fn admit(&mut self, id: u64, creds: Option<&[u8]>, head: bool, keep: bool) -> Phase {
        if let Some(a) = self.auth.as_deref_mut() {
            match a.check(creds, (self.slot, id), self.now) {
                Verdict::Allow => {}
                Verdict::Deny => return error(self.stats, Status::Unauthorized),
                Verdict::Busy => return error(self.stats, Status::TooMany),
                Verdict::Pending => return Phase::Authorizing { head, keep },
            }
        }
        self.serve(head, keep)
    }

    /// The text if it is fresh enough, else a wait for the next render.
    pub fn serve(&mut self, head: bool, keep: bool) -> Phase {
        match self.response {
            None => error(self.stats, Status::Unavailable),
            Some(r) if self.now.saturating_sub(r.at_ns) < self.fresh_ns => {
                count(self.stats, 200);
                Phase::Writing {
                    data: Rc::clone(&r.data),
                    pos: 0,
                    end: if head { r.head } else { r.data.len() },
                    keep,
                }
            }
            Some(_) => {
                self.render_wanted = true;
                Phase::Waiting { head, keep }
            }
        }
    }

    /// The bcrypt verdict for a connection that was waiting for it.
    pub fn verdict(&mut self, phase: &Phase, ok: bool) -> Option<Phase> {
        let Phase::Authorizing { head, keep } = *phase else {
            return None;
        };
        Some(if ok {
            self.serve(head, keep)
        } else {
            error(self.stats, Status::Unauthorized)
        })
    }
}

/// Reads what is there into the request buffer. Err(()) on EOF or error.
fn fill(c: &mut Conn) -> Result<(), ()> {
    while c.len < MAX_REQUEST {
        let read = match c.buf.take() {
            Some(mut b) => {
                let r = c.recv(&mut b[c.len..]);
                c.buf = Some(b);
                r
            }
            // No buffer until the client sends something.
            None => {
                let mut first = [0u8; 512];
                let r = c.recv(&mut first);
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

/// Writes `data[*pos..]`; true when all of it reached the socket.
fn flush(c: &mut Conn, data: &[u8], pos: &mut usize) -> Result<bool, ()> {
    while *pos < data.len() {
        match c.send(&data[*pos..]) {
            Ok(0) => return Err(()),
            Ok(n) => *pos += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return Err(()),
        }
    }
    match &mut c.tls {
        Some(t) => tls::drained(t, &mut c.sock).map_err(|_| ()),
        None => Ok(true),
    }
}

/// Advances one connection as far as its socket and the budget allow.
pub(super) fn drive(c: &mut Conn, ctx: &mut Ctx<'_>) -> Step {
    let mut served = 0;
    loop {
        match &mut c.phase {
            Phase::Reading => {
                let failed = fill(c).is_err();
                let req_bytes = c.buf.as_deref().map_or(&[][..], |b| &b[..c.len]);
                match http::parse(req_bytes) {
                    Parsed::Partial if failed => {
                        if c.tls.as_ref().is_some_and(|t| t.is_handshaking()) {
                            ctx.stats.tls_failures += 1;
                        }
                        return Step::Close;
                    }
                    Parsed::Partial => return Step::Wait,
                    Parsed::Reject(s) => c.phase = error(ctx.stats, s),
                    Parsed::Done(req) => {
                        if served == REQUESTS_PER_WAKEUP {
                            return Step::Rearm;
                        }
                        served += 1;
                        let creds = req.auth.map(|(a, b)| &req_bytes[a..b]);
                        let keep = req.keep_alive && !failed;
                        c.phase = ctx.admit(c.id, creds, req.head, keep);
                        // Drop the request; pipelined bytes after it stay.
                        if let Some(b) = c.buf.as_deref_mut() {
                            b.copy_within(req.len..c.len, 0);
                        }
                        c.len -= req.len;
                    }
                }
                c.since = ctx.now;
            }
            Phase::Authorizing { .. } | Phase::Waiting { .. } => return Step::Wait,
            Phase::Writing {
                data,
                pos,
                end,
                keep,
            } => {
                let (data, end, keep) = (Rc::clone(data), *end, *keep);
                let mut p = *pos;
                let r = flush(c, &data[..end], &mut p);
                if let Phase::Writing { pos, .. } = &mut c.phase {
                    if p > *pos {
                        c.since = ctx.now;
                    }
                    *pos = p;
                }
                match r {
                    Err(()) => return Step::Close,
                    Ok(false) => return Step::Wait,
                    Ok(true) if keep => c.phase = Phase::Reading,
                    Ok(true) => {
                        c.shut_write();
                        c.phase = Phase::Lingering;
                    }
                }
                c.since = ctx.now;
            }
            Phase::Error { msg, pos } => {
                let (msg, mut p) = (*msg, *pos);
                let r = flush(c, msg, &mut p);
                if let Phase::Error { pos, .. } = &mut c.phase {
                    *pos = p;
                }
                match r {
                    Err(()) => return Step::Close,
                    Ok(false) => return Step::Wait,
                    Ok(true) => {
                        c.shut_write();
                        c.phase = Phase::Lingering;
                    }
                }
                c.since = ctx.now;
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
