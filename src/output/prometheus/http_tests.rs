//! Table tests of the request parser and a bounded fuzz run (fixed seed).

use super::*;
use crate::testing::Rng;

fn done(s: &str) -> Request {
    match parse(s.as_bytes()) {
        Parsed::Done(r) => r,
        other => panic!("{s:?}: {other:?}"),
    }
}

fn reject(s: &[u8]) -> Status {
    match parse(s) {
        Parsed::Reject(st) => st,
        other => panic!("{:?}: {other:?}", String::from_utf8_lossy(s)),
    }
}

#[test]
fn accepts_what_scrapers_send() {
    let prom = "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:9376\r\nUser-Agent: Prometheus/2.42.0\r\n\
                Accept: application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5\r\n\
                Accept-Encoding: gzip\r\nX-Prometheus-Scrape-Timeout-Seconds: 10\r\n\r\n";
    let r = done(prom);
    assert_eq!(
        r,
        Request {
            head: false,
            keep_alive: true,
            len: prom.len(),
            auth: None,
        }
    );
    let r = done("HEAD /metrics?x=1 HTTP/1.1\r\nhost: a\r\nConnection: Close\r\n\r\nGET");
    assert!(r.head && !r.keep_alive);
    assert_eq!(
        r.len,
        "HEAD /metrics?x=1 HTTP/1.1\r\nhost: a\r\nConnection: Close\r\n\r\n".len()
    );
    let r = done("GET /metrics HTTP/1.0\r\n\r\n");
    assert!(!r.keep_alive, "1.0 closes");
    done("GET /metrics HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n");
}

#[test]
fn waits_for_more_while_the_prefix_is_valid() {
    for s in [
        "",
        "G",
        "GET /metr",
        "GET /metrics HTTP/1.1\r",
        "GET /metrics HTTP/1.1\r\nHost: a\r\n",
        "GET /metrics HTTP/1.1\r\nHost: a\r\n\r",
    ] {
        assert_eq!(parse(s.as_bytes()), Parsed::Partial, "{s:?}");
    }
}

#[test]
fn refuses_everything_else() {
    use Status::*;
    let cases: &[(&[u8], Status)] = &[
        (
            b"POST /metrics HTTP/1.1\r\nHost: a\r\n\r\n",
            MethodNotAllowed,
        ),
        (b"DELETE / HTTP/1.1\r\n\r\n", MethodNotAllowed),
        (b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", NotFound),
        (b"GET /metricsx HTTP/1.1\r\nHost: a\r\n\r\n", NotFound),
        (b"GET /metrics HTTP/2.0\r\n\r\n", BadRequest),
        (b"GET  /metrics HTTP/1.1\r\n\r\n", BadRequest),
        (b"GET metrics HTTP/1.1\r\n\r\n", BadRequest),
        (b"GET /metrics HTTP/1.1\n\n", BadRequest),
        (b"GET /metrics HTTP/1.1\r\nHost a\r\n\r\n", BadRequest),
        (b"GET /metrics HTTP/1.1\r\n\r\n", BadRequest),
        (
            b"GET /metrics HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
            BadRequest,
        ),
        (
            b"GET /metrics HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n",
            BadRequest,
        ),
        (
            b"GET /metrics HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
            BadRequest,
        ),
        (
            b"GET /metrics HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n",
            TooLarge,
        ),
        (b"GET /metrics HTTP/1.1\r\nHost: a\x00\r\n\r\n", BadRequest),
        (b"\x16\x03\x01\x02\x00\x01", BadRequest),
        (b"\r\n", BadRequest),
    ];
    for (req, want) in cases {
        assert_eq!(reject(req), *want, "{:?}", String::from_utf8_lossy(req));
    }
}

#[test]
fn enforces_size_and_header_count() {
    let mut big = b"GET /metrics HTTP/1.1\r\nX: ".to_vec();
    big.resize(MAX_REQUEST + 10, b'a');
    assert_eq!(reject(&big), Status::TooLarge);
    let mut line = b"GET /".to_vec();
    line.resize(MAX_REQUEST, b'a');
    assert_eq!(reject(&line), Status::TooLarge);
    let mut many = b"GET /metrics HTTP/1.1\r\nHost: a\r\n".to_vec();
    for _ in 0..MAX_HEADERS {
        many.extend_from_slice(b"X: y\r\n");
    }
    assert_eq!(
        reject(&many),
        Status::TooLarge,
        "refused before the blank line"
    );
    let mut ok = b"GET /metrics HTTP/1.1\r\nHost: a\r\n".to_vec();
    for _ in 1..MAX_HEADERS {
        ok.extend_from_slice(b"X: y\r\n");
    }
    ok.extend_from_slice(b"\r\n");
    assert!(matches!(parse(&ok), Parsed::Done(_)));
}

/// Mutates valid requests (flip, insert, delete, splice tokens, truncate) and
/// checks invariants: no panic; `Done` only within the buffer and only for
/// input that really holds a blank line; every shorter prefix of an accepted
/// request is `Partial`; a `Reject` stays a reject when more bytes arrive.
#[test]
fn fuzz_parser_bounded() {
    let seeds: &[&[u8]] = &[
        b"GET /metrics HTTP/1.1\r\nHost: h\r\nAccept: */*\r\n\r\n",
        b"HEAD /metrics?a=b HTTP/1.0\r\nConnection: close, keep-alive\r\n\r\n",
        b"GET /metrics HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\nGET /metrics HTTP/1.1\r\n",
    ];
    let tokens: &[&[u8]] = &[
        b"\r\n",
        b"\n",
        b"\r",
        b":",
        b" ",
        b"\t",
        b"\x00",
        b"\xff",
        b"Host: x\r\n",
        b"Transfer-Encoding: chunked\r\n",
        b"Content-Length: 9\r\n",
        b"/metrics",
        b"HTTP/1.1",
    ];
    let mut rng = Rng(0x4b45_5354_5245_4c31);
    let mut buf = Vec::with_capacity(MAX_REQUEST * 2);
    let (mut dones, mut rejects) = (0, 0);
    for _ in 0..1_000_000 {
        buf.clear();
        buf.extend_from_slice(seeds[rng.below(seeds.len())]);
        for _ in 0..1 + rng.below(4) {
            let at = rng.below(buf.len() + 1);
            match rng.below(5) {
                0 if at < buf.len() => buf[at] ^= 1 << rng.below(8),
                1 => buf.insert(at, rng.next() as u8),
                2 if at < buf.len() => {
                    buf.remove(at);
                }
                3 => {
                    let t = tokens[rng.below(tokens.len())];
                    buf.splice(at..at, t.iter().copied());
                }
                _ => buf.truncate(at),
            }
        }
        if rng.below(50) == 0 {
            buf.resize(
                buf.len() + rng.below(MAX_REQUEST * 2),
                b'a' + rng.below(26) as u8,
            );
        }
        match parse(&buf) {
            Parsed::Done(r) => {
                dones += 1;
                assert!(r.len <= buf.len() && r.len <= MAX_REQUEST);
                assert!(buf[..r.len].ends_with(b"\r\n\r\n"), "{buf:?}");
                let cut = rng.below(r.len);
                assert_eq!(parse(&buf[..cut]), Parsed::Partial, "{buf:?} cut at {cut}");
                // Bytes after the request never change its verdict.
                let mut more = buf[..r.len].to_vec();
                more.extend_from_slice(b"\x00garbage");
                assert_eq!(parse(&more), Parsed::Done(r));
            }
            Parsed::Reject(s) => {
                rejects += 1;
                let mut more = buf.clone();
                more.extend_from_slice(b"\r\n\r\n");
                assert!(
                    matches!(parse(&more), Parsed::Reject(_)),
                    "{s:?} then accepted: {:?}",
                    String::from_utf8_lossy(&buf)
                );
            }
            Parsed::Partial => assert!(buf.len() < MAX_REQUEST),
        }
    }
    assert!(dones > 1000 && rejects > 1000, "{dones} {rejects}");
}

#[test]
fn finds_the_one_authorization_value() {
    let req = "GET /metrics HTTP/1.1\r\nHost: a\r\nAuthorization:  Basic dTpw \r\n\r\n";
    let r = done(req);
    let (a, b) = r.auth.unwrap();
    assert_eq!(&req[a..b], "Basic dTpw");
    assert_eq!(done("GET /metrics HTTP/1.0\r\n\r\n").auth, None);
    let two = b"GET /metrics HTTP/1.0\r\nAuthorization: Basic a\r\nauthorization: Basic b\r\n\r\n";
    assert_eq!(reject(two), Status::BadRequest);
}
