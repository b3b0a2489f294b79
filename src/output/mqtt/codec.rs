//! MQTT 3.1.1 packets, written by hand: the client's side of CONNECT,
//! PUBLISH, PUBACK, PINGREQ and DISCONNECT, and a decoder for what a broker
//! sends. The decoder is bounds-checked throughout: garbage is an error,
//! never a panic or an allocation.

use std::fmt;

pub const CONNACK: u8 = 2;
pub const PUBLISH: u8 = 3;
pub const PUBACK: u8 = 4;
pub const PINGRESP: u8 = 13;

/// Largest packet accepted from the broker (it only sends small ones to a
/// client that subscribes to nothing).
pub const MAX_IN: usize = 64 * 1024;

pub struct Connect<'a> {
    pub client_id: &'a str,
    pub keepalive_s: u16,
    pub clean_session: bool,
    pub will_topic: &'a str,
    pub will_msg: &'a [u8],
    pub username: Option<&'a str>,
    pub password: Option<&'a [u8]>,
}

fn put_len(out: &mut Vec<u8>, mut n: usize) {
    loop {
        let mut b = (n % 128) as u8;
        n /= 128;
        if n > 0 {
            b |= 0x80;
        }
        out.push(b);
        if n == 0 {
            break;
        }
    }
}

fn put_str(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(&(s.len() as u16).to_be_bytes());
    out.extend_from_slice(s);
}

pub fn connect(out: &mut Vec<u8>, c: &Connect<'_>) {
    let mut flags = 0x04 | 0x08 | 0x20; // will, will QoS 1, will retain
    if c.clean_session {
        flags |= 0x02;
    }
    let mut len = 10 + 2 + c.client_id.len() + 2 + c.will_topic.len() + 2 + c.will_msg.len();
    if let Some(u) = c.username {
        flags |= 0x80;
        len += 2 + u.len();
    }
    if let Some(p) = c.password {
        flags |= 0x40;
        len += 2 + p.len();
    }
    out.push(0x10);
    put_len(out, len);
    put_str(out, b"MQTT");
    out.push(4);
    out.push(flags);
    out.extend_from_slice(&c.keepalive_s.to_be_bytes());
    put_str(out, c.client_id.as_bytes());
    put_str(out, c.will_topic.as_bytes());
    put_str(out, c.will_msg);
    if let Some(u) = c.username {
        put_str(out, u.as_bytes());
    }
    if let Some(p) = c.password {
        put_str(out, p);
    }
}

/// The length of a PUBLISH with this topic and payload.
pub fn publish_len(topic: &[&str], payload: usize, qos: u8) -> usize {
    let t: usize = topic.iter().map(|s| s.len()).sum();
    let body = 2 + t + if qos > 0 { 2 } else { 0 } + payload;
    let mut n = body;
    let mut hdr = 2;
    while n >= 128 {
        n /= 128;
        hdr += 1;
    }
    hdr + body
}

/// A PUBLISH; the topic is given in pieces (prefix, host, leaf) so nothing
/// is joined on the way.
pub fn publish(
    out: &mut Vec<u8>,
    topic: &[&str],
    payload: &[u8],
    qos: u8,
    pid: u16,
    dup: bool,
    retain: bool,
) {
    let t: usize = topic.iter().map(|s| s.len()).sum();
    let mut b0 = 0x30 | (qos << 1);
    if dup {
        b0 |= 0x08;
    }
    if retain {
        b0 |= 0x01;
    }
    out.push(b0);
    put_len(out, 2 + t + if qos > 0 { 2 } else { 0 } + payload.len());
    out.extend_from_slice(&(t as u16).to_be_bytes());
    for s in topic {
        out.extend_from_slice(s.as_bytes());
    }
    if qos > 0 {
        out.extend_from_slice(&pid.to_be_bytes());
    }
    out.extend_from_slice(payload);
}

pub fn pingreq(out: &mut Vec<u8>) {
    out.extend_from_slice(&[0xc0, 0]);
}

pub fn disconnect(out: &mut Vec<u8>) {
    out.extend_from_slice(&[0xe0, 0]);
}

pub fn puback(out: &mut Vec<u8>, pid: u16) {
    out.extend_from_slice(&[0x40, 2]);
    out.extend_from_slice(&pid.to_be_bytes());
}

/// A packet from the broker.
#[derive(Debug, PartialEq, Eq)]
pub enum Packet {
    ConnAck {
        session_present: bool,
        code: u8,
    },
    PubAck(u16),
    PingResp,
    /// A PUBLISH (only if something subscribed): acked if QoS 1, ignored.
    Publish {
        qos: u8,
        pid: u16,
    },
}

#[derive(Debug, PartialEq, Eq)]
pub enum DecodeError {
    BadLength,
    TooLarge(usize),
    Malformed(u8),
    Unexpected(u8),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::BadLength => f.write_str("malformed remaining length"),
            DecodeError::TooLarge(n) => write!(f, "packet of {n} bytes is too large"),
            DecodeError::Malformed(t) => write!(f, "malformed packet of type {t}"),
            DecodeError::Unexpected(t) => write!(f, "unexpected packet type {t}"),
        }
    }
}

/// Decodes one packet from the front of `buf`: Ok(None) when more bytes
/// are needed, else the packet and the bytes it took.
pub fn decode(buf: &[u8]) -> Result<Option<(Packet, usize)>, DecodeError> {
    let Some(&b0) = buf.first() else {
        return Ok(None);
    };
    // Judged on the first bytes, so garbage never waits for a body.
    let kind = b0 >> 4;
    if !matches!(kind, CONNACK | PUBACK | PINGRESP | PUBLISH) {
        return Err(DecodeError::Unexpected(kind));
    }
    let (mut len, mut mult, mut i) = (0usize, 1usize, 1usize);
    loop {
        let Some(&b) = buf.get(i) else {
            return Ok(None);
        };
        len += usize::from(b & 0x7f) * mult;
        i += 1;
        if b & 0x80 == 0 {
            break;
        }
        if i > 4 {
            return Err(DecodeError::BadLength);
        }
        mult *= 128;
    }
    if len > MAX_IN {
        return Err(DecodeError::TooLarge(len));
    }
    let fixed = match kind {
        CONNACK | PUBACK => Some(2),
        PINGRESP => Some(0),
        _ => None,
    };
    if fixed.is_some_and(|f| f != len) {
        return Err(DecodeError::Malformed(kind));
    }
    let Some(body) = buf.get(i..i + len) else {
        return Ok(None);
    };
    let flags = b0 & 0x0f;
    let pkt = match (kind, body) {
        (CONNACK, &[ack, code]) if flags == 0 && ack & 0xfe == 0 => Packet::ConnAck {
            session_present: ack & 1 == 1,
            code,
        },
        (PUBACK, &[a, b]) if flags == 0 => Packet::PubAck(u16::from_be_bytes([a, b])),
        (PINGRESP, &[]) if flags == 0 => Packet::PingResp,
        (PUBLISH, _) => {
            let qos = (flags >> 1) & 3;
            let tlen = body
                .get(..2)
                .map(|t| usize::from(u16::from_be_bytes([t[0], t[1]])))
                .ok_or(DecodeError::Malformed(kind))?;
            let pid = match qos {
                0 => 0,
                1 | 2 => body
                    .get(2 + tlen..4 + tlen)
                    .map(|p| u16::from_be_bytes([p[0], p[1]]))
                    .ok_or(DecodeError::Malformed(kind))?,
                _ => return Err(DecodeError::Malformed(kind)),
            };
            if body.len() < 2 + tlen {
                return Err(DecodeError::Malformed(kind));
            }
            Packet::Publish { qos, pid }
        }
        (CONNACK | PUBACK | PINGRESP, _) => return Err(DecodeError::Malformed(kind)),
        _ => return Err(DecodeError::Unexpected(kind)),
    };
    Ok(Some((pkt, i + len)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_bytes_match_the_spec() {
        let mut out = Vec::new();
        connect(
            &mut out,
            &Connect {
                client_id: "c",
                keepalive_s: 30,
                clean_session: false,
                will_topic: "t",
                will_msg: b"offline",
                username: Some("u"),
                password: Some(b"p"),
            },
        );
        let mut want = vec![0x10, 31, 0, 4, b'M', b'Q', b'T', b'T', 4, 0xec, 0, 30];
        want.extend_from_slice(&[0, 1, b'c', 0, 1, b't', 0, 7]);
        want.extend_from_slice(b"offline");
        want.extend_from_slice(&[0, 1, b'u', 0, 1, b'p']);
        assert_eq!(out, want);
    }

    #[test]
    fn publish_length_and_layout() {
        for size in [0, 100, 200, 20_000, 70_000] {
            let payload = vec![b'x'; size];
            let mut out = Vec::new();
            publish(
                &mut out,
                &["a/", "h", "/metrics"],
                &payload,
                1,
                7,
                true,
                false,
            );
            assert_eq!(out.len(), publish_len(&["a/", "h", "/metrics"], size, 1));
            assert_eq!(out[0], 0x3a);
            assert!(out.ends_with(&payload));
        }
    }

    #[test]
    fn decodes_broker_packets_and_partial_input() {
        let stream = [0x20, 2, 1, 0, 0x40, 2, 0, 9, 0xd0, 0];
        let (p, n) = decode(&stream).unwrap().unwrap();
        assert_eq!(
            (p, n),
            (
                Packet::ConnAck {
                    session_present: true,
                    code: 0
                },
                4
            )
        );
        assert_eq!(
            decode(&stream[4..]).unwrap().unwrap(),
            (Packet::PubAck(9), 4)
        );
        assert_eq!(
            decode(&stream[8..]).unwrap().unwrap(),
            (Packet::PingResp, 2)
        );
        for cut in 0..4 {
            assert_eq!(decode(&stream[..cut]).unwrap(), None);
        }
    }

    #[test]
    fn garbage_is_an_error_never_a_panic() {
        assert!(decode(&[0x20, 3, 0, 0, 0]).is_err());
        assert!(decode(&[0x40, 1, 0]).is_err());
        assert!(decode(&[0xff, 0xff, 0xff, 0xff, 0xff, 1]).is_err());
        assert!(decode(&[0x10, 0]).is_err());
        assert!(matches!(
            decode(&[0x30, 0xff, 0xff, 0x7f]),
            Err(DecodeError::TooLarge(_))
        ));
        // Every byte string up to 3 bytes, and pseudo-random longer ones.
        for a in 0..=255u8 {
            for b in 0..=255u8 {
                let _ = decode(&[a, b]);
                let _ = decode(&[a, 2, b]);
                let _ = decode(&[a, 3, b, 0, b]);
            }
        }
        let mut x = 0x1234_5678u32;
        for _ in 0..20_000 {
            let mut buf = [0u8; 12];
            for b in &mut buf {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                *b = x as u8;
            }
            buf[1] &= 0x0f;
            let _ = decode(&buf);
        }
    }
}
