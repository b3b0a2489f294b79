//! Live tests of the local end of sockets: a real TCP connect to a listener
//! and its accept, on IPv4 and IPv6 loopback, seen by the probe on this
//! kernel. The local ports the records carry are the kernel's own (the
//! ephemeral port getsockname reports), and the fd table keeps them.
//! Root only (#[ignore]d otherwise; scripts/test.sh includes them).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;

use kestrel::capture::btf::AttachMode;
use kestrel::capture::record::{decode, Record, SockAddr};
use kestrel::capture::ProbeConfig;
use kestrel::state::State;

mod common;
use common::{apply_where, capture, probe_lock, unbatched};
use kestrel::capture::record::synth::end;

fn peer(s: &SockAddr) -> (u16, u16, [u8; 16]) {
    (s.family, s.port, s.addr)
}

fn local(s: &SockAddr) -> (u16, u16, [u8; 16]) {
    (s.lfamily, s.lport, s.laddr)
}

/// What one connect and one accept of this process looked like, from both
/// sides of the socket API.
struct Pair {
    pid: u32,
    client_fd: i64,
    server_fd: i64,
    /// getsockname / getpeername of the client socket.
    client: SocketAddr,
    server: SocketAddr,
}

/// Connects to a listener on `ip` and accepts, under the probe.
fn connect_accept(attach: AttachMode, ip: IpAddr) -> (Vec<Vec<u8>>, Pair) {
    let cfg = ProbeConfig {
        attach,
        ..unbatched()
    };
    let (mut pair, mut keep) = (None, None);
    let (raw, _) = capture(cfg, true, || {
        let l = TcpListener::bind((ip, 0)).unwrap();
        let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (a, from) = l.accept().unwrap();
        assert_eq!(from, c.local_addr().unwrap());
        pair = Some(Pair {
            pid: std::process::id(),
            client_fd: i64::from(c.as_raw_fd()),
            server_fd: i64::from(a.as_raw_fd()),
            client: c.local_addr().unwrap(),
            server: c.peer_addr().unwrap(),
        });
        // Open until the probe has detached: the fd numbers stay ours.
        keep = Some((l, c, a));
    });
    drop(keep);
    (raw, pair.unwrap())
}

/// (return value, addresses) of each connect or accept record.
type Calls = Vec<(i64, SockAddr)>;

/// This process's connects and accepts.
fn sock_records(raw: &[Vec<u8>], pid: u32) -> (Calls, Calls) {
    let (mut connects, mut accepts) = (Vec::new(), Vec::new());
    for r in raw {
        match decode(r).unwrap() {
            Record::Connect { hdr, addr } if hdr.pid == pid => connects.push((hdr.ret, addr)),
            Record::Accept { hdr, addr } if hdr.pid == pid => accepts.push((hdr.ret, addr)),
            _ => {}
        }
    }
    (connects, accepts)
}

fn local_ends(attach: AttachMode, ip: IpAddr) {
    let _g = probe_lock();
    let (raw, p) = connect_accept(attach, ip);
    let (connects, accepts) = sock_records(&raw, p.pid);
    let connect = connects
        .iter()
        .find(|(_, a)| a.fd == p.client_fd)
        .unwrap_or_else(|| panic!("no connect of fd {}: {connects:?}", p.client_fd));
    assert_eq!(connect.0, 0);
    assert_eq!(peer(&connect.1), end(p.server), "destination");
    assert_eq!(
        local(&connect.1),
        end(p.client),
        "the kernel's ephemeral port"
    );
    assert_ne!(connect.1.lport, 0);

    let accept = accepts
        .iter()
        .find(|(ret, _)| *ret == p.server_fd)
        .unwrap_or_else(|| panic!("no accept of fd {}: {accepts:?}", p.server_fd));
    assert_eq!(peer(&accept.1), end(p.client), "the client");
    assert_eq!(local(&accept.1), end(p.server), "the listener's address");

    // The fd table keeps both ends, and which of them is the server.
    let mut s = State::new(64, 64, 0, false);
    apply_where(&mut s, &raw, |r| r.hdr().pid == p.pid);
    let c = s.fd(p.pid, p.client_fd).expect("client fd in the table");
    assert_eq!(
        (local(&c.sock), peer(&c.sock)),
        (end(p.client), end(p.server))
    );
    assert!(!c.server);
    let a = s.fd(p.pid, p.server_fd).expect("accepted fd in the table");
    assert_eq!(
        (local(&a.sock), peer(&a.sock)),
        (end(p.server), end(p.client))
    );
    assert!(a.server);
}

#[test]
#[cfg_attr(not(kestrel_ci), ignore = "needs root: loads the probe")]
fn connect_and_accept_carry_the_local_end_on_tp_btf() {
    local_ends(AttachMode::TpBtf, IpAddr::V4(Ipv4Addr::LOCALHOST));
}

#[test]
#[cfg_attr(not(kestrel_ci), ignore = "needs root: loads the probe")]
fn connect_and_accept_carry_the_local_end_on_raw_tp() {
    local_ends(AttachMode::RawTp, IpAddr::V4(Ipv4Addr::LOCALHOST));
}

#[test]
#[cfg_attr(not(kestrel_ci), ignore = "needs root: loads the probe")]
fn ipv6_connect_and_accept_carry_the_local_end() {
    if TcpListener::bind((Ipv6Addr::LOCALHOST, 0)).is_err() && common::skip("no IPv6 loopback") {
        return;
    }
    local_ends(AttachMode::TpBtf, IpAddr::V6(Ipv6Addr::LOCALHOST));
}

/// accept(fd, NULL, NULL): no buffer to read the peer from, so the probe
/// takes it from the kernel socket too.
#[test]
#[cfg_attr(not(kestrel_ci), ignore = "needs root: loads the probe")]
fn accept_without_an_address_buffer_still_names_the_peer() {
    let _g = probe_lock();
    let (mut got, mut keep) = (None, None);
    let (raw, _) = capture(unbatched(), true, || {
        let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        // SAFETY: accept on our own listening socket, no address buffer.
        let fd = unsafe { libc::accept(l.as_raw_fd(), std::ptr::null_mut(), std::ptr::null_mut()) };
        assert!(fd >= 0, "accept");
        got = Some((
            i64::from(fd),
            c.local_addr().unwrap(),
            c.peer_addr().unwrap(),
        ));
        keep = Some((l, c));
    });
    drop(keep);
    let (fd, client, server) = got.unwrap();
    let (_, accepts) = sock_records(&raw, std::process::id());
    let a = accepts
        .iter()
        .find(|(ret, _)| *ret == fd)
        .unwrap_or_else(|| panic!("no accept of fd {fd}: {accepts:?}"));
    assert_eq!(peer(&a.1), end(client));
    assert_eq!(local(&a.1), end(server));
    // SAFETY: our own fd, closed once.
    unsafe { libc::close(fd as i32) };
}

/// A failed connect names its target but has no local end.
#[test]
#[cfg_attr(not(kestrel_ci), ignore = "needs root: loads the probe")]
fn a_refused_connect_has_no_local_end() {
    let _g = probe_lock();
    // A port nobody listens on: bound, then closed.
    let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (raw, _) = capture(unbatched(), true, || {
        assert!(TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err());
    });
    let (connects, _) = sock_records(&raw, std::process::id());
    let c = connects
        .iter()
        .find(|(_, a)| a.port == port)
        .unwrap_or_else(|| panic!("no connect to {port}: {connects:?}"));
    assert_eq!(c.0, -111, "ECONNREFUSED");
    assert_eq!(local(&c.1), (0, 0, [0; 16]));
}
