//! HTTP Basic auth against the web config's bcrypt hashes, without letting
//! bcrypt stall the loop. One check costs tens of milliseconds at cost 10
//! (BENCHMARKS.md), longer than the ring's drain period, so it never runs
//! on the loop: it runs on one worker thread fed through a bounded queue,
//! whose verdict comes back through a mio Waker. In front of it:
//! - a cache of verified (user, SHA-256 of password) pairs, right and wrong
//!   kept apart so a flood of wrong ones cannot evict a scraper's entry;
//! - a token bucket: at most RATE checks a second (BURST at once); a request
//!   beyond it, or with the queue full, is answered 429 without hashing;
//! - the worker rests REST_FACTOR times each check's duration after it, so
//!   bcrypt takes at most a quarter of one core at any cost factor.
//!
//! A scraper that was verified once is answered from the cache, so a flood
//! of bad passwords costs it nothing; the flood itself costs at most a
//! quarter of one core on the worker, never loop time.

use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};

use ring::digest;

/// bcrypt checks started per second, and at once.
pub const RATE: u64 = 4;
pub const BURST: u64 = 4;
/// Checks waiting for the worker (beyond the one it runs).
const QUEUE: usize = 2;
/// Cached verdicts of each kind.
const CACHED: usize = 8;
/// The worker's stack: bcrypt's state is 4 KiB.
const STACK: usize = 64 * 1024;
/// After each check the worker rests this many times as long as the check
/// took: bcrypt uses at most a quarter of one core, whatever the cost factor
/// and the CPU (a cost-12 hash on a gateway core takes over a second).
const REST_FACTOR: u32 = 3;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    /// Missing, malformed or wrong credentials: 401.
    Deny,
    /// Not checked now: 429.
    Busy,
    /// Queued for the worker; the verdict comes with `ticket`.
    Pending,
}

/// Which connection a queued check belongs to: (slot, connection id).
pub type Ticket = (usize, u64);

struct Job {
    ticket: Ticket,
    key: [u8; 32],
    password: Vec<u8>,
    hash: String,
    /// Unknown user: hashed all the same (no timing tell), never allowed.
    known: bool,
}

#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub struct AuthStats {
    pub bcrypt_checks: u64,
    pub cache_hits: u64,
    pub busy: u64,
}

pub struct Auth {
    users: Vec<(String, String)>,
    jobs: Option<SyncSender<Job>>,
    done: Receiver<(Ticket, [u8; 32], bool)>,
    good: [Option<([u8; 32], u64)>; CACHED],
    bad: [Option<([u8; 32], u64)>; CACHED],
    uses: u64,
    tokens: u64,
    refilled_ns: u64,
    pub stats: AuthStats,
}

impl Auth {
    /// Starts the worker; `wake` is called after each verdict. Started once
    /// the agent has dropped its privileges, so the thread has none.
    pub fn new(
        users: Vec<(String, String)>,
        wake: impl Fn() + Send + 'static,
    ) -> std::io::Result<Auth> {
        let (jobs, rx) = mpsc::sync_channel::<Job>(QUEUE);
        let (tx, done) = mpsc::channel();
        std::thread::Builder::new()
            .name("kestrel-bcrypt".into())
            .stack_size(STACK)
            .spawn(move || {
                while let Ok(j) = rx.recv() {
                    let t = std::time::Instant::now();
                    let ok = bcrypt::verify(&j.password, &j.hash).unwrap_or(false) && j.known;
                    let took = t.elapsed();
                    if tx.send((j.ticket, j.key, ok)).is_err() {
                        break;
                    }
                    wake();
                    std::thread::sleep(took * REST_FACTOR);
                }
            })?;
        Ok(Auth {
            users,
            jobs: Some(jobs),
            done,
            good: [None; CACHED],
            bad: [None; CACHED],
            uses: 0,
            tokens: BURST,
            refilled_ns: 0,
            stats: AuthStats::default(),
        })
    }

    /// The verdict on an `Authorization` header value (None: no header).
    pub fn check(&mut self, header: Option<&[u8]>, ticket: Ticket, now_ns: u64) -> Verdict {
        let Some((user, password)) = header.and_then(basic) else {
            return Verdict::Deny;
        };
        let found = self
            .users
            .iter()
            .position(|(u, _)| u.as_bytes() == user.as_slice());
        let key = cache_key(&user, &password);
        self.uses += 1;
        if let Some(e) = self.good.iter_mut().flatten().find(|e| e.0 == key) {
            e.1 = self.uses;
            self.stats.cache_hits += 1;
            return Verdict::Allow;
        }
        if let Some(e) = self.bad.iter_mut().flatten().find(|e| e.0 == key) {
            e.1 = self.uses;
            self.stats.cache_hits += 1;
            return Verdict::Deny;
        }
        self.refill(now_ns);
        let (Some(jobs), true) = (&self.jobs, self.tokens > 0) else {
            self.stats.busy += 1;
            return Verdict::Busy;
        };
        let Some((_, first)) = self.users.first() else {
            return Verdict::Deny;
        };
        let hash = found.map_or(first, |i| &self.users[i].1).clone();
        let job = Job {
            ticket,
            key,
            password,
            hash,
            known: found.is_some(),
        };
        match jobs.try_send(job) {
            Ok(()) => {
                self.tokens -= 1;
                self.stats.bcrypt_checks += 1;
                Verdict::Pending
            }
            Err(TrySendError::Full(_)) => {
                self.stats.busy += 1;
                Verdict::Busy
            }
            Err(TrySendError::Disconnected(_)) => {
                self.jobs = None;
                self.stats.busy += 1;
                Verdict::Busy
            }
        }
    }

    /// Verdicts the worker has finished, each cached as it is handed out.
    pub fn finished(&mut self) -> Vec<(Ticket, bool)> {
        let mut out = Vec::new();
        while let Ok((ticket, key, ok)) = self.done.try_recv() {
            self.uses += 1;
            let pool = if ok { &mut self.good } else { &mut self.bad };
            // An empty slot, else the least recently used.
            let i = pool
                .iter()
                .position(Option::is_none)
                .or_else(|| (0..CACHED).min_by_key(|&i| pool[i].map_or(0, |e| e.1)))
                .unwrap_or(0);
            pool[i] = Some((key, self.uses));
            out.push((ticket, ok));
        }
        out
    }

    fn refill(&mut self, now_ns: u64) {
        let per = 1_000_000_000 / RATE;
        let add = now_ns.saturating_sub(self.refilled_ns) / per;
        if add > 0 {
            self.tokens = (self.tokens + add).min(BURST);
            self.refilled_ns = if self.tokens == BURST {
                now_ns
            } else {
                self.refilled_ns + add * per
            };
        }
    }
}

/// (user, password) of `Basic <base64>`; the scheme is case-insensitive.
fn basic(v: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    let (scheme, rest) = v.split_at_checked(6)?;
    if !scheme.eq_ignore_ascii_case(b"basic ") {
        return None;
    }
    let raw = base64(rest.trim_ascii())?;
    let colon = raw.iter().position(|&b| b == b':')?;
    Some((raw[..colon].to_vec(), raw[colon + 1..].to_vec()))
}

fn cache_key(user: &[u8], password: &[u8]) -> [u8; 32] {
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(&(user.len() as u64).to_le_bytes());
    ctx.update(user);
    ctx.update(password);
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

/// Standard base64 with padding (RFC 4648 §4), as Basic auth uses it.
pub fn base64(s: &[u8]) -> Option<Vec<u8>> {
    if s.len() % 4 != 0 {
        return None;
    }
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let mut out = Vec::with_capacity(s.len() / 4 * 3);
    for (i, q) in s.chunks(4).enumerate() {
        let last = i + 1 == s.len() / 4;
        let pad = q.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 || (pad > 0 && !last) {
            return None;
        }
        let mut n = 0u32;
        for &c in &q[..4 - pad] {
            n = (n << 6) | val(c)?;
        }
        n <<= 6 * pad as u32;
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&bytes[..3 - pad]);
    }
    Some(out)
}

#[cfg(test)]
#[path = "auth_tests.rs"]
mod tests;
