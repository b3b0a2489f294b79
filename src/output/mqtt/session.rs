//! The MQTT session over a `Conn`: CONNECT/CONNACK, publishing in order
//! with a window of unacknowledged QoS 1 messages, PUBACK tracking,
//! keepalive, and what happens to queued messages when the broker goes.
//! Every wait has a deadline checked on the loop's ticks.

use super::codec::{self, Connect, Packet};
use super::{MqttSink, Sess};
use crate::output::conn::Event;

const SEC: u64 = 1_000_000_000;
const CONNACK_TIMEOUT_NS: u64 = 10 * SEC;
/// Unacknowledged messages at once (mosquitto's max_inflight_messages: 20).
const WINDOW: usize = 16;
/// No more packets are encoded while this much waits to go out.
pub(super) const OUT_HIGH: usize = 16 * 1024;

impl MqttSink {
    fn leaf(kind: u8) -> &'static str {
        if kind == 1 {
            "alerts"
        } else {
            "metrics"
        }
    }

    /// Advances connection and session as far as they go now.
    pub(super) fn drive(&mut self, now: u64) {
        match self.conn.poll(now) {
            Event::Up => self.on_up(now),
            Event::Down(why) => self.on_down(&why),
            Event::Nothing => {}
        }
        if !self.conn.is_up() {
            return;
        }
        let r = self
            .receive(now)
            .and_then(|_| self.timers(now))
            .map(|_| {
                if matches!(self.sess, Sess::Ready { .. }) {
                    self.load_spool();
                    self.send_pending(now);
                }
            })
            .and_then(|_| self.flush_out());
        if let Err(why) = r {
            let d = self.conn.close(now);
            self.on_down(&format!(
                "{why}; next attempt in {:.1} s",
                d as f64 / SEC as f64
            ));
        }
    }

    fn on_up(&mut self, now: u64) {
        self.out.clear();
        self.inb.clear();
        let status = format!("{}status", self.base);
        codec::connect(
            &mut self.out,
            &Connect {
                client_id: &self.client_id,
                keepalive_s: self.keepalive_s,
                clean_session: false,
                will_topic: &status,
                will_msg: b"offline",
                username: self.username.as_deref(),
                password: self.password.as_deref(),
            },
        );
        self.last_tx = now;
        self.sess = Sess::AwaitConnack {
            deadline: now + CONNACK_TIMEOUT_NS,
        };
    }

    /// The connection is gone (the attempt failed, or it broke).
    fn on_down(&mut self, why: &str) {
        self.log.line(format_args!("{}: {why}", self.name));
        self.sess = Sess::Down;
        self.unacked_since = None;
        self.out.clear();
        self.inb.clear();
        self.unreachable = true;
        let mut i = 0;
        while let Some(m) = self.store.get_mut(i) {
            m.sent_ns = 0;
            i += 1;
        }
        if let Some(sp) = &mut self.spool {
            // Spooled ones are still on disk; the rest joins them there.
            let mut dropped = 0;
            let mut err = None;
            self.store.drain(|m| {
                if m.spooled.is_none() {
                    let (d, e) = sp.append(m.kind, &m.data);
                    dropped += d;
                    err = err.take().or(e);
                }
            });
            sp.rewind();
            self.dropped += dropped;
            if let Some(e) = err {
                self.log.line(format_args!("{}: {e}", self.name));
            }
        }
    }

    fn receive(&mut self, now: u64) -> Result<(), String> {
        let mut buf = [0u8; 2048];
        loop {
            match self.conn.read(&mut buf) {
                Ok(0) => return Err("the broker closed the connection".into()),
                Ok(n) => self.inb.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(format!("read: {e}")),
            }
            self.decode_all(now)?;
        }
        self.decode_all(now)
    }

    fn decode_all(&mut self, now: u64) -> Result<(), String> {
        loop {
            let (pkt, n) = match codec::decode(&self.inb) {
                Ok(Some(p)) => p,
                Ok(None) => return Ok(()),
                Err(e) => return Err(format!("protocol error from the broker: {e}")),
            };
            self.inb.drain(..n);
            self.handle(pkt, now)?;
        }
    }

    fn handle(&mut self, pkt: Packet, now: u64) -> Result<(), String> {
        match (pkt, &self.sess) {
            (
                Packet::ConnAck {
                    code: 0,
                    session_present,
                },
                Sess::AwaitConnack { .. },
            ) => {
                self.sess = Sess::Ready { ping_sent: None };
                self.conn.reset_backoff();
                if self.unreachable {
                    let spooled = self.spool.as_ref().map_or(0, |s| s.pending());
                    self.uplog.line(format_args!(
                        "{}: connected (session present: {session_present}; {} queued, {spooled} spooled)",
                        self.name,
                        self.store.len()
                    ));
                }
                self.unreachable = false;
                let pid = self.alloc_pid();
                let status = [self.base.as_str(), "status"];
                codec::publish(&mut self.out, &status, b"online", 1, pid, false, true);
                self.unacked_since = Some(now);
            }
            (Packet::ConnAck { code, .. }, Sess::AwaitConnack { .. }) => {
                let why = match code {
                    1 => "unacceptable protocol version",
                    2 => "client identifier rejected",
                    3 => "server unavailable",
                    4 => "bad user name or password",
                    5 => "not authorized",
                    _ => "unknown reason",
                };
                return Err(format!(
                    "the broker refused the connection: {why} (code {code})"
                ));
            }
            (Packet::PubAck(pid), Sess::Ready { .. }) => {
                if let Some(i) = self.store.position(|m| m.pid == pid && m.sent_ns != 0) {
                    self.done(i);
                }
                // Any PUBACK is the broker moving; the clock restarts for
                // what is still in flight.
                let waiting = self.store.iter().any(|m| m.sent_ns != 0);
                self.unacked_since = waiting.then_some(now);
            }
            (Packet::PingResp, Sess::Ready { .. }) => self.sess = Sess::Ready { ping_sent: None },
            (Packet::Publish { qos, pid }, Sess::Ready { .. }) => {
                if qos == 1 {
                    codec::puback(&mut self.out, pid);
                }
            }
            (p, _) => return Err(format!("unexpected packet from the broker: {p:?}")),
        }
        Ok(())
    }

    /// Message `i` is delivered (PUBACK, or written with QoS 0).
    fn done(&mut self, i: usize) {
        if let Some((_, spooled)) = self.store.remove(i) {
            self.delivered += 1;
            if spooled.is_some() {
                if let Some(sp) = &mut self.spool {
                    let oldest = self.store.iter().filter_map(|m| m.spooled).min();
                    sp.ack_to(oldest.unwrap_or(sp.cursor()));
                }
            }
        }
    }

    fn timers(&mut self, now: u64) -> Result<(), String> {
        let ka = u64::from(self.keepalive_s) * SEC;
        match self.sess {
            Sess::AwaitConnack { deadline } if now >= deadline => {
                Err("no CONNACK from the broker within 10 s".into())
            }
            Sess::Ready { ping_sent: Some(t) } if now.saturating_sub(t) >= ka => Err(format!(
                "no PINGRESP within the keepalive ({} s)",
                self.keepalive_s
            )),
            Sess::Ready { ping_sent } => {
                // QoS 1 messages in flight for a keepalive with no PUBACK: a
                // stalled broker. Counted from the sends, not from the
                // messages held: a store that turns over faster than the
                // keepalive (big snapshots, an alert burst) drops the oldest
                // ones still in flight, and their clock went with them.
                let stalled = self
                    .unacked_since
                    .is_some_and(|t| now.saturating_sub(t) >= ka);
                if stalled {
                    return Err(format!(
                        "no PUBACK from the broker within {} s",
                        self.keepalive_s
                    ));
                }
                if ping_sent.is_none() && now.saturating_sub(self.last_tx) >= ka {
                    codec::pingreq(&mut self.out);
                    self.last_tx = now;
                    self.sess = Sess::Ready {
                        ping_sent: Some(now),
                    };
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    fn alloc_pid(&mut self) -> u16 {
        loop {
            self.next_pid = self.next_pid.wrapping_add(1).max(1);
            let pid = self.next_pid;
            if !self.store.iter().any(|m| m.pid == pid) {
                return pid;
            }
        }
    }

    /// Spooled messages into the store, ahead of newer ones, while the
    /// window has room for them.
    fn load_spool(&mut self) {
        let Some(sp) = &mut self.spool else { return };
        while !sp.drained() && self.store.iter().filter(|m| m.spooled.is_some()).count() < WINDOW {
            match sp.next(&mut self.load) {
                Some(Ok((kind, pos))) => {
                    if !self.store.insert_spooled(kind, &self.load, pos) {
                        sp.unread(pos);
                        break;
                    }
                }
                Some(Err(why)) => {
                    self.dropped += 1;
                    self.log.line(format_args!("{}: {why}", self.name));
                }
                None => break,
            }
        }
    }

    /// Publishes what is not yet in flight, in store order.
    fn send_pending(&mut self, now: u64) {
        let spool_left = self.spool.as_ref().is_some_and(|s| !s.drained());
        let mut inflight = self.store.iter().filter(|m| m.sent_ns != 0).count();
        let mut i = 0;
        while self.out.len() < OUT_HIGH {
            let Some(m) = self.store.get(i) else { break };
            if m.sent_ns != 0 {
                i += 1;
                continue;
            }
            // Older messages still on disk go first.
            if (m.spooled.is_none() && spool_left) || inflight >= WINDOW {
                break;
            }
            let resend = m.pid != 0;
            let pid = match (self.qos, resend) {
                (0, _) => 0,
                (_, true) => m.pid,
                _ => self.alloc_pid(),
            };
            let Some(m) = self.store.get_mut(i) else {
                break;
            };
            let topic = [self.base.as_str(), Self::leaf(m.kind)];
            codec::publish(&mut self.out, &topic, &m.data, self.qos, pid, resend, false);
            self.last_tx = now;
            if self.qos == 0 {
                self.done(i);
            } else {
                m.pid = pid;
                m.sent_ns = now;
                self.unacked_since.get_or_insert(now);
                inflight += 1;
                i += 1;
            }
        }
    }

    fn flush_out(&mut self) -> Result<(), String> {
        while !self.out.is_empty() {
            match self.conn.write(&self.out) {
                Ok(0) => break,
                Ok(n) => {
                    self.out.drain(..n);
                }
                Err(e) => return Err(format!("write: {e}")),
            }
        }
        self.conn.flush().map_err(|e| format!("write: {e}"))
    }

    /// Exit: `offline` (retained) and DISCONNECT if connected; what is
    /// left goes to the spool, or is counted as dropped.
    pub(super) fn close_gracefully(&mut self) {
        if matches!(self.sess, Sess::Ready { .. }) {
            let status = [self.base.as_str(), "status"];
            codec::publish(&mut self.out, &status, b"offline", 0, 0, false, true);
            codec::disconnect(&mut self.out);
            let _ = self.flush_out();
        }
        if self.spool.is_some() {
            self.unreachable = true;
            self.on_down_quiet();
        } else {
            self.dropped += self.store.len() as u64;
            self.store.drain(|_| {});
        }
    }

    fn on_down_quiet(&mut self) {
        let Some(sp) = &mut self.spool else { return };
        let mut dropped = 0;
        self.store.drain(|m| {
            if m.spooled.is_none() {
                dropped += sp.append(m.kind, &m.data).0;
            }
        });
        self.dropped += dropped;
    }
}

#[cfg(test)]
#[path = "session_tests.rs"]
mod tests;
