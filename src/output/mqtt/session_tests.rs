//! The session against an in-process broker over plain TCP (no root, no
//! mosquitto): unacknowledged messages are sent again with DUP and their
//! packet ids after a reconnect, in order, garbage ends a connection, and a
//! broker that never acknowledges is left after a keepalive.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::*;
use crate::output::mqtt::MqttSpec;
use crate::output::Sink;

/// (dup, pid, topic, payload) of one PUBLISH.
type Pub = (bool, u16, String, Vec<u8>);

/// Reads one packet: (first byte, body).
fn packet(s: &mut TcpStream) -> Option<(u8, Vec<u8>)> {
    let mut b = [0u8; 1];
    s.read_exact(&mut b).ok()?;
    let (mut len, mut mult) = (0usize, 1usize);
    loop {
        let mut l = [0u8; 1];
        s.read_exact(&mut l).ok()?;
        len += usize::from(l[0] & 0x7f) * mult;
        mult *= 128;
        if l[0] & 0x80 == 0 {
            break;
        }
    }
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).ok()?;
    Some((b[0], body))
}

fn publish(b0: u8, body: &[u8]) -> Pub {
    let tl = usize::from(u16::from_be_bytes([body[0], body[1]]));
    let topic = String::from_utf8(body[2..2 + tl].to_vec()).unwrap();
    let pid = u16::from_be_bytes([body[2 + tl], body[3 + tl]]);
    (b0 & 0x08 != 0, pid, topic, body[4 + tl..].to_vec())
}

/// First connection: CONNACK, take `n` metrics PUBLISHes, ack none, close.
/// Second: CONNACK with a session, ack everything, report each PUBLISH.
fn broker(l: TcpListener, n: usize, tx: mpsc::Sender<(usize, Pub)>) {
    for round in 0..2 {
        let (mut s, _) = l.accept().unwrap();
        let (b0, _) = packet(&mut s).unwrap();
        assert_eq!(b0, 0x10, "CONNECT first");
        s.write_all(&[0x20, 2, round as u8, 0]).unwrap();
        let mut got = 0;
        while let Some((b0, body)) = packet(&mut s) {
            if b0 >> 4 != 3 {
                continue;
            }
            let p = publish(b0, &body);
            if round == 1 {
                s.write_all(&[0x40, 2, (p.1 >> 8) as u8, p.1 as u8])
                    .unwrap();
            }
            if p.2.ends_with("/metrics") {
                got += 1;
                let _ = tx.send((round, p));
                if round == 0 && got == n {
                    break;
                }
            }
        }
    }
}

fn until(sink: &mut MqttSink, mut f: impl FnMut(&MqttSink) -> bool) -> bool {
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(20) {
        sink.tick();
        if f(sink) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    false
}

fn sink_for(port: u16) -> MqttSink {
    let spec = MqttSpec::parse(&format!("127.0.0.1:{port}/t?keepalive=5"), false).unwrap();
    MqttSink::open(&spec, "h").unwrap()
}

fn send(sink: &mut MqttSink, i: u8) {
    let line = [b'm', b'0' + i, b'\n'];
    let enc = sink.encode(&line, "").unwrap().to_vec();
    sink.write(&enc, 0);
}

#[test]
fn unacknowledged_messages_are_sent_again_with_dup_and_their_ids() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel();
    let t = std::thread::spawn(move || broker(l, 3, tx));
    let mut sink = sink_for(port);
    for i in 0..3 {
        send(&mut sink, i);
    }
    let mut first: Vec<Pub> = Vec::new();
    assert!(until(&mut sink, |_| {
        first.extend(rx.try_iter().map(|r| r.1));
        first.len() == 3
    }));
    assert!(first.iter().all(|p| !p.0), "first sends carry no DUP");
    assert_eq!(first[0].2, "t/h/metrics");
    // The broker closed without acking: the same three again, then a new one.
    assert!(until(&mut sink, |s| s.unreachable), "the close is seen");
    send(&mut sink, 3);
    assert!(
        until(&mut sink, |s| s.delivered == 4),
        "all four acknowledged"
    );
    let mut second: Vec<Pub> = Vec::new();
    assert!(until(&mut sink, |_| {
        second.extend(rx.try_iter().map(|r| r.1));
        second.len() == 4
    }));
    for (a, b) in first.iter().zip(&second) {
        assert!(b.0, "resent with DUP");
        assert_eq!((a.1, &a.3), (b.1, &b.3), "same packet id and payload");
    }
    assert!(!second[3].0);
    assert_eq!(second[3].3, b"m3");
    assert_eq!(sink.take_dropped(), 0);
    drop(sink);
    t.join().unwrap();
}

/// A broker for one connection: reads the CONNECT, answers `reply`, then
/// reads until the agent closes. Returns its port.
fn one_shot_broker(reply: &'static [u8]) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        let _ = packet(&mut s);
        let _ = s.write_all(reply);
        while packet(&mut s).is_some() {}
    });
    port
}

#[test]
fn garbage_from_the_broker_ends_the_connection() {
    let port = one_shot_broker(&[0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0x02]);
    let mut sink = sink_for(port);
    send(&mut sink, 0);
    assert!(until(&mut sink, |s| s.unreachable));
    assert!(matches!(sink.sess, Sess::Down));
    assert_eq!(
        sink.store.len(),
        1,
        "the message waits for the next connection"
    );
}

/// The store holds one of these messages at a time, so each new one drops
/// the one in flight before it: the stall was timed from the oldest message
/// held, which was never a keepalive old, and a broker that acknowledged
/// nothing kept the session for ever (mqtt_hostile, with big snapshots).
#[test]
fn a_broker_that_never_acknowledges_is_left_when_the_store_turns_over() {
    // CONNACK, then never a PUBACK.
    let port = one_shot_broker(&[0x20, 2, 0, 0]);
    let spec = MqttSpec::parse(&format!("127.0.0.1:{port}/t?keepalive=5"), false).unwrap();
    let mut sink = MqttSink::open(&spec, "h").unwrap();
    let mut line = vec![b'x'; crate::output::store::STORE_BYTES * 5 / 8];
    line.push(b'\n');
    let started = Instant::now();
    let mut sent = 0;
    while !sink.unreachable && started.elapsed() < Duration::from_secs(15) {
        let enc = sink.encode(&line, "").unwrap().to_vec();
        sink.write(&enc, 0);
        sent += 1;
        std::thread::sleep(Duration::from_millis(50));
    }
    let took = started.elapsed();
    assert!(sink.unreachable, "still connected after {took:?}");
    assert!(
        sink.take_dropped() > 0,
        "the store turned over ({sent} sent)"
    );
    assert!(took < Duration::from_secs(8), "left after {took:?}");
}
