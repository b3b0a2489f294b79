//! The endpoint over TLS with Basic auth, against a rustls client on
//! another thread; certificates made by openssl (testing::Certs).

use super::tests::{Rig, GET};
use super::*;
use crate::output::prometheus::webconfig::{ClientAuth, TlsSettings, Version};
use crate::testing::Certs;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use std::io::{Read, Write};
use std::time::Duration;

const ALICE: &str = "$2y$04$4rOLfyz3fmcAne7h71W3geFHbpRO4.Ru6U8LFBzRbSmWt.1wavub.";

fn settings(c: &Certs, auth: ClientAuth) -> TlsSettings {
    TlsSettings {
        cert_file: c.path("server.crt").into(),
        key_file: c.path("server.key").into(),
        client_ca_file: (auth != ClientAuth::NoClientCert).then(|| c.path("ca.crt").into()),
        client_auth: auth,
        min_version: Version::Tls12,
        max_version: Version::Tls13,
        cipher_suites: Vec::new(),
        curves: Vec::new(),
        prefer_server_cipher_suites: true,
    }
}

fn rig(c: &Certs, auth: ClientAuth, users: bool) -> Rig {
    let cfg = super::super::tls::server_config(&settings(c, auth)).unwrap();
    Rig::with(|s| {
        let s = s.with_tls(cfg);
        if users {
            s.with_users(vec![("alice".into(), ALICE.into())])
        } else {
            s
        }
    })
}

/// A client trusting the test CA, with `cert` ("client", "rogue-client") if given.
fn client(c: &Certs, cert: Option<&str>) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_file(c.path("ca.crt")).unwrap())
        .unwrap();
    let b = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots);
    Arc::new(match cert {
        Some(n) => b
            .with_client_auth_cert(
                vec![CertificateDer::from_pem_file(c.path(&format!("{n}.crt"))).unwrap()],
                PrivateKeyDer::from_pem_file(c.path(&format!("{n}.key"))).unwrap(),
            )
            .unwrap(),
        None => b.with_no_client_auth(),
    })
}

/// One HTTPS request; Err is the TLS or I/O failure.
fn https(addr: SocketAddr, cfg: Arc<rustls::ClientConfig>, req: Vec<u8>) -> Result<String, String> {
    let name = ServerName::try_from("localhost").unwrap();
    let conn = rustls::ClientConnection::new(cfg, name).map_err(|e| e.to_string())?;
    let sock = std::net::TcpStream::connect(addr).map_err(|e| e.to_string())?;
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut s = rustls::StreamOwned::new(conn, sock);
    s.write_all(&req).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    match s.read_to_end(&mut out) {
        Ok(_) => Ok(String::from_utf8_lossy(&out).into_owned()),
        Err(e) if !out.is_empty() && e.kind() == std::io::ErrorKind::UnexpectedEof => {
            Ok(String::from_utf8_lossy(&out).into_owned())
        }
        Err(e) => Err(e.to_string()),
    }
}

fn with_auth(user: &str, pass: &str) -> Vec<u8> {
    let b64 = match (user, pass) {
        ("alice", "secret") => "YWxpY2U6c2VjcmV0",
        ("alice", "wrong") => "YWxpY2U6d3Jvbmc=",
        _ => unreachable!(),
    };
    format!("GET /metrics HTTP/1.1\r\nHost: t\r\nAuthorization: Basic {b64}\r\nConnection: close\r\n\r\n")
        .into_bytes()
}

#[test]
fn serves_over_tls_with_basic_auth() {
    let certs = Certs::make("tls-auth");
    let mut rig = rig(&certs, ClientAuth::NoClientCert, true);
    let cfg = client(&certs, None);
    let c = Arc::clone(&cfg);
    let r = rig
        .serve(move |a| https(a, c, with_auth("alice", "secret")))
        .unwrap();
    assert!(
        r.starts_with("HTTP/1.1 200 OK\r\n") && r.ends_with("up 1\n"),
        "{r}"
    );
    let c = Arc::clone(&cfg);
    let r = rig.serve(move |a| https(a, c, GET.to_vec())).unwrap();
    assert!(r.starts_with("HTTP/1.1 401 "), "{r}");
    assert!(
        r.contains("\r\nWWW-Authenticate: Basic realm=\"kestrel\""),
        "{r}"
    );
    let c = Arc::clone(&cfg);
    let r = rig
        .serve(move |a| https(a, c, with_auth("alice", "wrong")))
        .unwrap();
    assert!(r.starts_with("HTTP/1.1 401 "), "{r}");
    let c = Arc::clone(&cfg);
    let r = rig
        .serve(move |a| https(a, c, with_auth("alice", "secret")))
        .unwrap();
    assert!(r.starts_with("HTTP/1.1 200 OK\r\n"), "{r}");
    assert_eq!(
        rig.server.stats.bcrypt_checks, 2,
        "the second good scrape came from the cache"
    );
    // Plain HTTP to the TLS port: closed, nothing served, still serving after.
    let r = rig.serve(|a| super::tests::get(a, GET));
    assert!(!r.contains("200 OK"), "{r}");
    let r = rig
        .serve(move |a| https(a, cfg, with_auth("alice", "secret")))
        .unwrap();
    assert!(r.starts_with("HTTP/1.1 200 OK\r\n"), "{r}");
    assert!(rig.server.stats.tls_failures >= 1);
}

#[test]
fn require_and_verify_refuses_a_wrong_or_missing_client_certificate() {
    let certs = Certs::make("tls-mutual");
    let mut rig = rig(&certs, ClientAuth::RequireAndVerifyClientCert, false);
    let good = client(&certs, Some("client"));
    let r = rig.serve(move |a| https(a, good, GET.to_vec())).unwrap();
    assert!(r.starts_with("HTTP/1.1 200 OK\r\n"), "{r}");
    for cert in [Some("rogue-client"), None] {
        let c = client(&certs, cert);
        let r = rig.serve(move |a| https(a, c, GET.to_vec()));
        assert!(r.is_err(), "{cert:?} was served: {r:?}");
    }
    assert_eq!(rig.server.stats.responses[0], 1, "one 200 only");
    assert!(rig.server.stats.tls_failures >= 2, "{:?}", rig.server.stats);
    // VerifyClientCertIfGiven: none is fine, a wrong one is not.
    let mut rig = super::tls_tests::rig(&certs, ClientAuth::VerifyClientCertIfGiven, false);
    let none = client(&certs, None);
    let r = rig.serve(move |a| https(a, none, GET.to_vec())).unwrap();
    assert!(r.starts_with("HTTP/1.1 200 OK\r\n"), "{r}");
    let rogue = client(&certs, Some("rogue-client"));
    assert!(rig.serve(move |a| https(a, rogue, GET.to_vec())).is_err());
    // RequireAnyClientCert: any certificate, none refused.
    let mut rig = super::tls_tests::rig(&certs, ClientAuth::RequireAnyClientCert, false);
    let rogue = client(&certs, Some("rogue-client"));
    let r = rig.serve(move |a| https(a, rogue, GET.to_vec())).unwrap();
    assert!(r.starts_with("HTTP/1.1 200 OK\r\n"), "{r}");
    let none = client(&certs, None);
    assert!(rig.serve(move |a| https(a, none, GET.to_vec())).is_err());
}

#[test]
fn bad_tls_files_are_one_line_errors() {
    let certs = Certs::make("tls-bad");
    let mut s = settings(&certs, ClientAuth::NoClientCert);
    s.key_file = certs.path("client.key").into();
    let e = super::super::tls::server_config(&s).unwrap_err();
    assert!(e.contains("key_file") && !e.contains('\n'), "{e}");
    s.key_file = certs.path("missing.key").into();
    let e = super::super::tls::server_config(&s).unwrap_err();
    assert!(e.contains("missing.key"), "{e}");
    let mut s = settings(&certs, ClientAuth::RequireAndVerifyClientCert);
    s.client_ca_file = Some(certs.path("server.key").into());
    let e = super::super::tls::server_config(&s).unwrap_err();
    assert!(e.starts_with("client_ca_file"), "{e}");
}

#[test]
fn a_stalled_handshake_is_cut_after_handshake_ns() {
    use super::super::conn::{HANDSHAKE_NS, IDLE_NS};
    let certs = Certs::make("tls-stall");
    let mut rig = rig(&certs, ClientAuth::NoClientCert, false);
    // Half a ClientHello record header, then nothing.
    let mut s = std::net::TcpStream::connect(rig.addr).unwrap();
    s.write_all(&[0x16, 0x03, 0x01]).unwrap();
    let t = std::time::Instant::now();
    while rig.server.conns.iter().flatten().count() == 0 {
        assert!(t.elapsed() < Duration::from_secs(5), "accepted");
        rig.pump();
    }
    let now = crate::base::time::monotonic_ns();
    rig.server
        .sweep(rig.poll.registry(), now + HANDSHAKE_NS / 2);
    assert_eq!(rig.server.conns.iter().flatten().count(), 1, "not early");
    const { assert!(HANDSHAKE_NS + 1_000_000_000 < IDLE_NS) };
    rig.server
        .sweep(rig.poll.registry(), now + HANDSHAKE_NS + 1_000_000_000);
    assert_eq!(rig.server.conns.iter().flatten().count(), 0, "cut");
}

#[test]
fn garbage_on_the_tls_port_is_closed_and_serving_goes_on() {
    let certs = Certs::make("tls-garbage");
    let mut rig = rig(&certs, ClientAuth::NoClientCert, true);
    let answers = rig.serve(|a| {
        let mut rng = crate::testing::Rng(0x7157_0019);
        (0..200)
            .map(|i| {
                let mut b: Vec<u8> = (0..1 + rng.below(3000)).map(|_| rng.next() as u8).collect();
                if i % 2 == 0 {
                    // A plausible record header first: rustls parses further.
                    b.splice(
                        0..0,
                        [0x16, 0x03, 0x01, (b.len() >> 8) as u8, b.len() as u8],
                    );
                }
                super::tests::get(a, &b)
            })
            .collect::<Vec<String>>()
    });
    assert!(
        answers.iter().all(|r| !r.contains("HTTP/1.1")),
        "plaintext leaked"
    );
    let cfg = client(&certs, None);
    let r = rig
        .serve(move |a| https(a, cfg, with_auth("alice", "secret")))
        .unwrap();
    assert!(r.starts_with("HTTP/1.1 200 OK\r\n"), "{r}");
    assert!(
        rig.server.stats.tls_failures >= 100,
        "{:?}",
        rig.server.stats
    );
}
