//! The endpoint against real sockets, driven by its own mio loop on this
//! thread while clients run on others. Deadlines are tested by handing
//! `sweep` a later clock rather than by sleeping.

use super::super::conn::{IDLE_NS, REQUEST_NS};
use super::*;
use std::io::{Read, Write};
use std::net::TcpStream as StdStream;
use std::time::{Duration, Instant};

pub(super) struct Rig {
    pub poll: mio::Poll,
    pub server: Server,
    pub addr: SocketAddr,
    /// Renders so far; each publishes `up N`.
    pub renders: u64,
}

impl Rig {
    pub fn new() -> Rig {
        Self::with(|s| s)
    }

    /// A rig whose server `setup` configured (TLS, users) before registering.
    pub fn with(setup: impl FnOnce(Server) -> Server) -> Rig {
        let poll = mio::Poll::new().unwrap();
        let server = Server::new(std::net::TcpListener::bind("127.0.0.1:0").unwrap()).unwrap();
        let mut server = setup(server);
        server.register(poll.registry(), 100, &mut None).unwrap();
        let addr = server.local_addr().unwrap();
        let mut rig = Rig {
            poll,
            server,
            addr,
            renders: 0,
        };
        rig.render();
        rig
    }

    /// What the agent does when a request wants fresh text.
    fn render(&mut self) {
        self.renders += 1;
        let body = format!("up {}\n", self.renders);
        let now = crate::base::time::monotonic_ns();
        self.server
            .publish(self.poll.registry(), body.as_bytes(), now);
    }

    /// One wakeup (or 10 ms without one), dispatched as the agent does.
    pub fn pump(&mut self) {
        let mut events = mio::Events::with_capacity(16);
        self.poll
            .poll(&mut events, Some(Duration::from_millis(10)))
            .unwrap();
        let now = crate::base::time::monotonic_ns();
        for ev in events.iter() {
            self.server.on_event(self.poll.registry(), ev.token(), now);
            if self.server.render_wanted() {
                self.render();
            }
        }
    }

    /// Runs the loop until `done` (checked between wakeups) or 10 s.
    pub fn run_until(&mut self, done: impl Fn() -> bool) {
        let t = Instant::now();
        while !done() {
            assert!(t.elapsed() < Duration::from_secs(10), "loop timed out");
            self.pump();
        }
    }

    fn open(&self) -> usize {
        self.server.conns.iter().flatten().count()
    }

    /// Serves while `client` runs on another thread; returns its result.
    pub fn serve<T: Send + 'static>(
        &mut self,
        client: impl FnOnce(SocketAddr) -> T + Send + 'static,
    ) -> T {
        let addr = self.addr;
        let h = std::thread::spawn(move || client(addr));
        self.run_until(|| h.is_finished());
        h.join().unwrap()
    }
}

pub(super) fn get(addr: SocketAddr, req: &[u8]) -> String {
    let mut s = StdStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(req).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

pub(super) const GET: &[u8] = b"GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";

#[test]
fn answers_get_head_keep_alive_and_pipelined_requests() {
    let mut rig = Rig::new();
    rig.server.fresh_ns = u64::MAX;
    let r = rig.serve(|a| get(a, GET));
    assert!(r.starts_with("HTTP/1.1 200 OK\r\n"), "{r}");
    assert!(r.contains("Content-Type: text/plain; version=0.0.4"));
    assert!(r.ends_with("\r\n\r\nup 1\n"), "{r}");
    let r = rig.serve(|a| get(a, b"HEAD /metrics HTTP/1.0\r\n\r\n"));
    assert!(r.ends_with("Content-Length: 5\r\n\r\n"), "{r}");
    // Ten pipelined requests on one connection, the last asking to close:
    // more than one wakeup's budget, so re-arming is exercised.
    let mut many = Vec::new();
    for _ in 0..9 {
        many.extend_from_slice(b"GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n");
    }
    many.extend_from_slice(GET);
    let r = rig.serve(move |a| get(a, &many));
    assert_eq!(r.matches("HTTP/1.1 200 OK").count(), 10, "{r}");
    assert_eq!(rig.server.stats.responses[0], 12);
}

#[test]
fn refuses_bad_requests_with_their_status_and_closes() {
    let mut rig = Rig::new();
    for (req, status) in [
        (&b"POST /metrics HTTP/1.1\r\nHost: t\r\n\r\n"[..], "405"),
        (b"GET /x HTTP/1.1\r\nHost: t\r\n\r\n", "404"),
        (b"\x16\x03\x01garbage", "400"),
    ] {
        let r = rig.serve(move |a| get(a, req));
        assert!(r.starts_with(&format!("HTTP/1.1 {status} ")), "{r}");
    }
    // A 1 MB header: refused at 4 KiB, the rest discarded, the answer arrives.
    let r = rig.serve(|a| {
        let mut s = StdStream::connect(a).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut req = b"GET /metrics HTTP/1.1\r\nHost: t\r\nX-Big: ".to_vec();
        req.resize(1 << 20, b'a');
        let _ = s.write_all(&req);
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    });
    assert!(r.starts_with("HTTP/1.1 413 "), "{r}");
    assert_eq!(rig.server.stats.responses, [0, 1, 0, 1, 1, 1, 0, 0]);
    let r = rig.serve(|a| get(a, GET));
    assert!(r.starts_with("HTTP/1.1 200 "), "still serving: {r}");
}

#[test]
fn idle_connections_cannot_lock_out_a_scraper() {
    let mut rig = Rig::new();
    let r = rig.serve(|a| {
        let idle: Vec<StdStream> = (0..200).map(|_| StdStream::connect(a).unwrap()).collect();
        std::thread::sleep(Duration::from_millis(200));
        let r = get(a, GET);
        drop(idle);
        r
    });
    assert!(r.starts_with("HTTP/1.1 200 "), "{r}");
    assert!(rig.open() <= MAX_CONNECTIONS, "{}", rig.open());
}

#[test]
fn a_request_not_yet_read_is_not_evicted_as_silent() {
    // CI saw the hostile test's 1 MB client get nothing back: it connected
    // with the 200 idle ones, and one accept wakeup evicted it as the oldest
    // silent connection before its request was read, resetting it.
    let mut rig = Rig::new();
    let mut first = StdStream::connect(rig.addr).unwrap();
    let t = Instant::now();
    while rig.open() < 1 {
        assert!(t.elapsed() < Duration::from_secs(5), "accepted");
        rig.pump();
    }
    first.write_all(GET).unwrap();
    let _idle: Vec<StdStream> = (0..MAX_CONNECTIONS + 8)
        .map(|_| StdStream::connect(rig.addr).unwrap())
        .collect();
    // The listener's event handled before the request's: the accepts need
    // slots while the oldest connection's bytes wait unread.
    let now = crate::base::time::monotonic_ns();
    rig.server.accept(rig.poll.registry(), now);
    assert_eq!(rig.server.conns[0].as_ref().map(|c| c.id), Some(1), "kept");
    first
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let r = rig.serve(move |_| {
        let mut out = Vec::new();
        let _ = first.read_to_end(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    });
    assert!(r.starts_with("HTTP/1.1 200 "), "{r:?}");
}

#[test]
fn deadlines_close_idle_and_trickling_clients() {
    let mut rig = Rig::new();
    let _idle = StdStream::connect(rig.addr).unwrap();
    let mut trickle = StdStream::connect(rig.addr).unwrap();
    trickle.write_all(b"GET /met").unwrap();
    let t = Instant::now();
    while rig.open() < 2 || rig.server.conns.iter().flatten().all(|c| c.len == 0) {
        assert!(t.elapsed() < Duration::from_secs(5), "both accepted");
        rig.pump();
    }
    let now = crate::base::time::monotonic_ns();
    rig.server.sweep(rig.poll.registry(), now + REQUEST_NS / 2);
    assert_eq!(rig.open(), 2, "nothing expires early");
    rig.server
        .sweep(rig.poll.registry(), now + REQUEST_NS + 1_000_000_000);
    assert_eq!(rig.open(), 1, "the half request is cut after REQUEST_NS");
    rig.server
        .sweep(rig.poll.registry(), now + IDLE_NS + 1_000_000_000);
    assert_eq!(rig.open(), 0, "the silent one after IDLE_NS");
    let mut b = [0u8; 1];
    trickle
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    assert_eq!(trickle.read(&mut b).unwrap_or(0), 0, "closed");
}

#[test]
fn text_older_than_fresh_ns_is_rendered_again_for_the_scrape() {
    let mut rig = Rig::new();
    rig.server.fresh_ns = 300_000_000;
    // Two scrapes at once share one render; one after FRESH_NS gets a new one.
    let (a, b) = rig.serve(|a| (get(a, GET), get(a, GET)));
    assert!(a.ends_with("up 1\n") && b.ends_with("up 1\n"), "{a} / {b}");
    let c = rig.serve(|a| {
        std::thread::sleep(Duration::from_millis(350));
        get(a, GET)
    });
    assert!(c.ends_with("up 2\n"), "{c}");
    // Keep-alive: the second request on one connection waits for its render too.
    let two = rig.serve(|a| {
        let mut s = StdStream::connect(a).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        std::thread::sleep(Duration::from_millis(350));
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
        std::thread::sleep(Duration::from_millis(350));
        s.write_all(GET).unwrap();
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    });
    assert_eq!(two.matches("HTTP/1.1 200 OK").count(), 2, "{two}");
    assert!(two.contains("up 3\n") && two.ends_with("up 4\n"), "{two}");
    assert_eq!(rig.renders, 4);
}
