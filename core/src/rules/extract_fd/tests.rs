//! fd.* of IP sockets on decoded records applied to a State, as the engine
//! sees them: both ends, which is client and which server, IPv6 and
//! IPv4-mapped IPv6 (libs sinsp_filtercheck_fd.cpp, utils.cpp
//! sockinfo_to_str).

use std::net::SocketAddr;
use std::path::Path;

use super::super::eval::{eval, Scratch};
use super::super::events::code_of;
use super::super::extract::{EventView, HostFacts};
use super::super::fake;
use super::super::fields::lookup;
use super::super::users::Users;
use super::super::value::{Buf, V};
use crate::capture::record::{decode, synth};
use crate::capture::skel::types::kestrel_record_type as T;
use crate::state::State;

const PID: u32 = 100;

/// A process's fd table after `recs`, and the event to read fields on.
struct Ev {
    state: State,
    rec: Vec<u8>,
    code: u16,
}

impl Ev {
    fn new(setup: &[Vec<u8>], rec: Vec<u8>, syscall: &str) -> Ev {
        let mut state = State::new(8, 16, 0, false);
        for r in setup.iter().chain([&rec]) {
            state.apply(&decode(r).unwrap());
        }
        let code = code_of(syscall).unwrap();
        Ev { state, rec, code }
    }

    fn with<R>(&self, f: impl FnOnce(&EventView<'_>) -> R) -> R {
        let rec = decode(&self.rec).unwrap();
        let users = Users::new(Path::new("/nonexistent"));
        let host = HostFacts::default();
        let view = EventView {
            rec: &rec,
            hdr: rec.hdr(),
            state: &self.state,
            users: &users,
            host: &host,
            code: self.code,
            num: 1,
            lazy: Default::default(),
        };
        f(&view)
    }

    /// A field as an alert would print it; "<missing>" when it is.
    fn get(&self, name: &str) -> String {
        let field = lookup(name).unwrap().field;
        self.with(|v| {
            let mut buf = Buf::new();
            let mut ip = Buf::new();
            match v.fd_value(field, &mut buf) {
                V::Str(s) => String::from_utf8(s.to_vec()).unwrap(),
                V::Int(i) => i.to_string(),
                V::Bool(b) => b.to_string(),
                V::Ip(a) => {
                    a.write(&mut ip);
                    String::from_utf8(ip.to_vec()).unwrap()
                }
                V::Missing => "<missing>".into(),
            }
        })
    }

    fn check(&self, condition: &str) -> bool {
        let p = fake::condition(condition);
        self.with(|v| eval(&p, v, &mut Scratch::default()))
    }

    fn expect(&self, fields: &[(&str, &str)]) {
        for (name, want) in fields {
            assert_eq!(self.get(name), *want, "{name}");
        }
    }
}

fn a(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn connect(fd: i64, ret: i64, peer: &str, local: Option<&str>) -> Vec<u8> {
    synth::sockaddr_ends(T::KR_CONNECT, PID, PID, fd, ret, a(peer), local.map(a))
}

fn accept(listener: i64, fd: i64, peer: &str, local: &str) -> Vec<u8> {
    synth::sockaddr_ends(
        T::KR_ACCEPT,
        PID,
        PID,
        listener,
        fd,
        a(peer),
        Some(a(local)),
    )
}

fn dup(old: i64, new: i64) -> Vec<u8> {
    synth::fd(T::KR_DUP, PID, PID, old, new, false)
}

#[test]
fn connect_is_local_client_to_remote_server() {
    let sock = synth::socket(PID, PID, 4);
    let c = connect(4, 0, "10.0.0.9:443", Some("192.168.1.5:50000"));
    let ev = Ev::new(std::slice::from_ref(&sock), c.clone(), "connect");
    let fields = [
        ("fd.name", "192.168.1.5:50000->10.0.0.9:443"),
        ("fd.lip", "192.168.1.5"),
        ("fd.lport", "50000"),
        ("fd.rip", "10.0.0.9"),
        ("fd.rport", "443"),
        ("fd.cip", "192.168.1.5"),
        ("fd.cport", "50000"),
        ("fd.sip", "10.0.0.9"),
        ("fd.sport", "443"),
        ("fd.typechar", "4"),
        ("fd.type", "ipv4"),
        ("fd.l4proto", "tcp"),
        ("fd.connected", "true"),
    ];
    ev.expect(&fields);
    // A dup of it (the reverse shell's dup2) reads the same entry.
    let ev = Ev::new(&[sock, c], dup(4, 0), "dup2");
    ev.expect(&fields);
    assert!(ev.check("fd.ip = 192.168.1.5 and fd.ip = 10.0.0.9"));
    assert!(ev.check("fd.cnet = 192.168.0.0/16 and fd.snet = 10.0.0.0/8"));
    assert!(ev.check("fd.net = 192.168.1.0/24"));
    assert!(!ev.check("fd.ip != 192.168.1.5"));
    assert!(ev.check("fd.lport = 50000 and fd.rport = 443"));
}

#[test]
fn accept_is_remote_client_to_local_server_and_dup_keeps_the_role() {
    let acc = accept(3, 7, "10.0.0.9:40000", "192.168.1.5:8080");
    let fields = [
        ("fd.num", "7"),
        ("fd.name", "10.0.0.9:40000->192.168.1.5:8080"),
        ("fd.lip", "192.168.1.5"),
        ("fd.lport", "8080"),
        ("fd.rip", "10.0.0.9"),
        ("fd.rport", "40000"),
        ("fd.cip", "10.0.0.9"),
        ("fd.cport", "40000"),
        ("fd.sip", "192.168.1.5"),
        ("fd.sport", "8080"),
        ("fd.typechar", "4"),
        ("fd.l4proto", "tcp"),
    ];
    Ev::new(&[], acc.clone(), "accept4").expect(&fields);
    // A bind shell: the accepted socket onto stdin.
    let ev = Ev::new(&[acc], dup(7, 0), "dup2");
    ev.expect(&fields[1..]);
    assert!(ev.check("fd.snet = 192.168.1.0/24 and fd.cip = 10.0.0.9"));
}

#[test]
fn ipv6_ends_render_as_inet_ntop() {
    let c = connect(4, 0, "[2001:db8::1]:443", Some("[2001:db8::5]:50000"));
    let ev = Ev::new(&[synth::socket(PID, PID, 4)], c, "connect");
    ev.expect(&[
        ("fd.name", "2001:db8::5:50000->2001:db8::1:443"),
        ("fd.typechar", "6"),
        ("fd.type", "ipv6"),
        ("fd.lip", "2001:db8::5"),
        ("fd.sip", "2001:db8::1"),
    ]);
    assert!(ev.check("fd.ip = 2001:db8::5 and fd.snet = 2001:db8::/32"));
}

#[test]
fn ipv4_mapped_ends_make_an_ipv4_socket() {
    // A dual-stack listener accepting an IPv4 client: Falco types the fd
    // ipv4 and prints plain dotted quads when both ends are mapped.
    let acc = accept(3, 7, "[::ffff:127.0.0.1]:40000", "[::ffff:127.0.0.1]:8080");
    let ev = Ev::new(&[], acc, "accept");
    ev.expect(&[
        ("fd.name", "127.0.0.1:40000->127.0.0.1:8080"),
        ("fd.typechar", "4"),
        ("fd.type", "ipv4"),
        ("fd.sip", "127.0.0.1"),
        ("fd.lport", "8080"),
    ]);
    assert!(ev.check("fd.sip = 127.0.0.1 and fd.net = 127.0.0.0/8"));
    // One real IPv6 end keeps the socket IPv6, the mapped end as the kernel has it.
    let acc = accept(3, 7, "[2001:db8::1]:40000", "[::ffff:127.0.0.1]:8080");
    Ev::new(&[], acc, "accept").expect(&[
        ("fd.name", "2001:db8::1:40000->::ffff:127.0.0.1:8080"),
        ("fd.typechar", "6"),
    ]);
}

#[test]
fn an_unknown_local_end_stays_missing() {
    // A refused connect: the target is named, the local end never existed.
    let sock = synth::socket(PID, PID, 4);
    let c = connect(4, -111, "10.0.0.9:443", None);
    let ev = Ev::new(std::slice::from_ref(&sock), c.clone(), "connect");
    ev.expect(&[
        ("fd.name", "->10.0.0.9:443"),
        ("fd.sip", "10.0.0.9"),
        ("fd.lport", "<missing>"),
        ("fd.cip", "<missing>"),
        ("fd.connected", "false"),
    ]);
    // ... and leaves the table's entry as it was (parse_connect_exit).
    let ok = connect(4, 0, "10.0.0.8:80", Some("192.168.1.5:50000"));
    let ev = Ev::new(&[sock, ok, c], dup(4, 9), "dup");
    ev.expect(&[("fd.name", "192.168.1.5:50000->10.0.0.8:80")]);
}
