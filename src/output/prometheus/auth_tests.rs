//! Credentials, the verdict cache and the bcrypt budget, with cost-4 hashes
//! (htpasswd -B -C 4) so the worker answers in about a millisecond.

use super::*;
use std::time::{Duration, Instant};

const ALICE: &str = "$2y$04$4rOLfyz3fmcAne7h71W3geFHbpRO4.Ru6U8LFBzRbSmWt.1wavub.";

fn header(user: &str, pass: &str) -> Vec<u8> {
    let raw = format!("{user}:{pass}");
    let mut out = b"Basic ".to_vec();
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for c in raw.as_bytes().chunks(3) {
        let n = c
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | (b as u32) << (16 - 8 * i));
        for i in 0..4 {
            out.push(if i <= c.len() {
                A[(n >> (18 - 6 * i) & 63) as usize]
            } else {
                b'='
            });
        }
    }
    out
}

/// Waits for the worker's verdicts.
fn verdicts(a: &mut Auth, n: usize) -> Vec<(Ticket, bool)> {
    let t = Instant::now();
    let mut got = Vec::new();
    while got.len() < n {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "worker answered {got:?}"
        );
        got.extend(a.finished());
        std::thread::sleep(Duration::from_millis(1));
    }
    got
}

#[test]
fn base64_and_basic_headers() {
    assert_eq!(base64(b"YWxpY2U6c2VjcmV0").unwrap(), b"alice:secret");
    assert_eq!(base64(b"YQ==").unwrap(), b"a");
    assert_eq!(base64(b"YWI=").unwrap(), b"ab");
    for bad in [&b"YQ="[..], b"Y===", b"YQ==YQ==", b"YW!j"] {
        assert!(base64(bad).is_none(), "{bad:?}");
    }
    assert_eq!(header("alice", "secret"), b"Basic YWxpY2U6c2VjcmV0");
    let (u, p) = basic(b"bAsIc YWxpY2U6c2VjcmV0").unwrap();
    assert_eq!(
        (u.as_slice(), p.as_slice()),
        (&b"alice"[..], &b"secret"[..])
    );
    assert_eq!(
        basic(&header("a", "b:c")).unwrap().1,
        b"b:c",
        "split at the first colon"
    );
    assert!(basic(b"Bearer x").is_none() && basic(b"Basic YWxpY2U=").is_none());
}

#[test]
fn checks_on_the_worker_then_answers_from_the_cache() {
    let mut a = Auth::new(vec![("alice".into(), ALICE.into())], || {}).unwrap();
    let good = header("alice", "secret");
    assert_eq!(a.check(None, (0, 1), 0), Verdict::Deny, "no header");
    assert_eq!(a.check(Some(b"Basic !!"), (0, 1), 0), Verdict::Deny);
    assert_eq!(a.check(Some(&good), (0, 1), 0), Verdict::Pending);
    assert_eq!(verdicts(&mut a, 1), [((0, 1), true)]);
    assert_eq!(a.check(Some(&good), (0, 2), 0), Verdict::Allow, "cached");
    assert_eq!(
        a.check(Some(&header("alice", "wrong")), (1, 3), 0),
        Verdict::Pending
    );
    assert_eq!(
        a.check(Some(&header("mallory", "secret")), (2, 4), 0),
        Verdict::Pending
    );
    let mut v = verdicts(&mut a, 2);
    v.sort();
    assert_eq!(
        v,
        [((1, 3), false), ((2, 4), false)],
        "an unknown user is hashed, never let in"
    );
    assert_eq!(
        a.check(Some(&header("alice", "wrong")), (1, 5), 0),
        Verdict::Deny,
        "cached too"
    );
    assert_eq!(a.stats.bcrypt_checks, 3);
    assert_eq!(a.stats.cache_hits, 2);
}

#[test]
fn a_flood_of_new_passwords_is_refused_beyond_the_budget_and_cannot_evict_a_good_one() {
    let mut a = Auth::new(vec![("alice".into(), ALICE.into())], || {}).unwrap();
    let good = header("alice", "secret");
    assert_eq!(a.check(Some(&good), (0, 0), 0), Verdict::Pending);
    verdicts(&mut a, 1);
    let t0 = 10_000_000_000;
    let mut pending = 0;
    for i in 0..100 {
        match a.check(Some(&header("alice", &format!("guess{i}"))), (1, i), t0) {
            Verdict::Pending => pending += 1,
            Verdict::Busy => {}
            v => panic!("{v:?}"),
        }
    }
    // BURST tokens at most, fewer if the queue filled first.
    assert!(pending as u64 <= BURST && pending >= 1, "{pending}");
    assert!(a.stats.busy >= 100 - BURST);
    verdicts(&mut a, pending);
    // A second later: RATE more.
    let mut later = 0;
    for i in 0..100 {
        if a.check(
            Some(&header("bob", &format!("g{i}"))),
            (2, i),
            t0 + 1_000_000_000,
        ) == Verdict::Pending
        {
            later += 1;
            verdicts(&mut a, 1);
        }
    }
    assert_eq!(later, RATE, "refilled at RATE a second");
    // Many wrong verdicts cached: the good pair is still answered without bcrypt.
    let checks = a.stats.bcrypt_checks;
    assert_eq!(
        a.check(Some(&good), (3, 0), t0 + 1_000_000_000),
        Verdict::Allow
    );
    assert_eq!(a.stats.bcrypt_checks, checks);
}
