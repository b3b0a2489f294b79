//! The web config as node_exporter's documentation writes it, and each
//! mistake named by its line.

use super::*;

const ALICE: &str = "$2y$04$4rOLfyz3fmcAne7h71W3geFHbpRO4.Ru6U8LFBzRbSmWt.1wavub.";

fn ok(text: &str) -> WebConfig {
    parse(text.as_bytes(), Path::new("/etc/kestrel")).unwrap_or_else(|e| panic!("{text}: {e:?}"))
}

fn err(text: &str) -> (u32, String) {
    match parse(text.as_bytes(), Path::new("/etc/kestrel")) {
        Ok(w) => panic!("{text}: accepted as {w:?}"),
        Err(e) => e,
    }
}

#[test]
fn reads_exporter_toolkit_files() {
    let w = ok(&format!(
        "# node_exporter's\ntls_server_config:\n  cert_file: server.crt\n  key_file: /k/server.key\n  \
         client_auth_type: \"RequireAndVerifyClientCert\"\n  client_ca_file: ca.crt\n  \
         min_version: TLS13\n  cipher_suites: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256]\n  \
         curve_preferences:\n    - X25519\n  prefer_server_cipher_suites: false\n\
         http_server_config:\n  http2: false\nbasic_auth_users:\n  alice: '{ALICE}'\n"
    ));
    let t = w.tls.unwrap();
    assert_eq!(
        t.cert_file,
        Path::new("/etc/kestrel/server.crt"),
        "relative to the file"
    );
    assert_eq!(t.key_file, Path::new("/k/server.key"));
    assert_eq!(
        t.client_ca_file.as_deref(),
        Some(Path::new("/etc/kestrel/ca.crt"))
    );
    assert_eq!(t.client_auth, ClientAuth::RequireAndVerifyClientCert);
    assert_eq!(
        (t.min_version, t.max_version),
        (Version::Tls13, Version::Tls13)
    );
    assert_eq!(t.curves, ["X25519"]);
    assert!(!t.prefer_server_cipher_suites);
    assert_eq!(w.users, [("alice".to_string(), ALICE.to_string())]);
    assert_eq!(w.notes.len(), 1, "{:?}", w.notes);
    // Basic auth alone (plain HTTP), an empty file, and an empty TLS block.
    let w = ok(&format!("basic_auth_users:\n  alice: {ALICE}\n"));
    assert!(w.tls.is_none() && w.users.len() == 1);
    assert_eq!(ok("# nothing\n"), WebConfig::default());
    assert!(ok("tls_server_config:\n").tls.is_none());
    let w = ok("tls_server_config:\n  cert_file: a\n  key_file: b\n  min_version: TLS10\n");
    assert_eq!(
        w.tls.unwrap().min_version,
        Version::Tls12,
        "1.0/1.1 mean 1.2 here"
    );
}

#[test]
fn names_the_line_of_each_mistake() {
    for (text, line, says) in [
        ("tls_server_config:\n  cert_file: a\n  keyfile: b\n", 3, "unknown key 'keyfile'"),
        ("tls_server_config:\n  cert_file: a\n", 2, "missing key_file"),
        ("tls_server_config:\n  key_file: a\n", 2, "missing cert_file"),
        (
            "tls_server_config:\n  cert_file: a\n  key_file: b\n  client_auth_type: Always\n",
            4,
            "invalid client_auth_type 'Always'",
        ),
        (
            "tls_server_config:\n  cert_file: a\n  key_file: b\n  client_auth_type: RequireAndVerifyClientCert\n",
            2,
            "client_ca_file is not set",
        ),
        (
            "tls_server_config:\n  cert_file: a\n  key_file: b\n  client_ca_file: c\n",
            2,
            "without a client_auth_type",
        ),
        ("tls_server_config:\n  cert_file: a\n  key_file: b\n  max_version: TLS14\n", 4, "unknown TLS version"),
        ("basic_auth_users:\n  alice: plaintext\n", 2, "not a bcrypt hash"),
        ("basic_auth_users:\n  alice:\n", 2, "no password hash"),
        ("basic_auth_users:\n  - alice\n", 2, "expected a map"),
        ("users:\n  alice: x\n", 2, "unknown key 'users'"),
        ("tls_server_config:\n  cert: '-----BEGIN'\n", 2, "not supported"),
        ("http_server_config:\n  headers:\n    X: y\n", 3, "not supported"),
        ("a: 1\n---\nb: 2\n", 3, "more than one YAML document"),
        ("tls_server_config: [\n", 1, ""),
    ] {
        let (l, msg) = err(text);
        assert_eq!(l, line, "{text:?}: {msg}");
        assert!(msg.contains(says), "{text:?}: {msg}");
    }
}

#[test]
fn load_refuses_what_is_not_a_small_regular_file() {
    let dir = crate::testing::scratch("webcfg");
    std::fs::create_dir_all(&dir).unwrap();
    let e = load(&dir).unwrap_err();
    assert!(
        e.contains("not a regular file") && e.starts_with("web config "),
        "{e}"
    );
    let big = dir.join("big.yml");
    std::fs::write(&big, vec![b'#'; 70_000]).unwrap();
    assert!(load(&big).unwrap_err().contains("larger than"));
    let bad = dir.join("bad.yml");
    std::fs::write(&bad, "tls_server_config:\n  nope: 1\n").unwrap();
    let e = load(&bad).unwrap_err();
    assert!(
        e.ends_with("bad.yml: line 2: tls_server_config: unknown key 'nope'"),
        "{e}"
    );
    assert!(!e.contains('\n'));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn mutated_files_never_panic() {
    let good = format!(
        "tls_server_config:\n  cert_file: a\n  key_file: b\n  client_auth_type: RequireAndVerifyClientCert\n  \
         client_ca_file: c\n  cipher_suites: [x, y]\nbasic_auth_users:\n  alice: {ALICE}\n"
    );
    let mut rng = crate::testing::Rng(0x5eed_0019);
    for _ in 0..20_000 {
        let mut b = good.clone().into_bytes();
        for _ in 0..1 + rng.below(4) {
            let i = rng.below(b.len());
            match rng.below(3) {
                0 => b[i] = rng.next() as u8,
                1 => {
                    b.remove(i);
                }
                _ => b.insert(i, b"\n :-[]{}$'\"#\t"[rng.below(13)]),
            }
        }
        let _ = parse(&b, Path::new("/x"));
    }
    // Hashes that parse at load must also be checkable without a panic.
    for h in [
        ALICE,
        "$2y$04$",
        "$2y$99$4rOLfyz3fmcAne7h71W3geFHbpRO4.Ru6U8LFBzRbSmWt.1wavub.",
    ] {
        if h.parse::<bcrypt::HashParts>().is_ok() {
            let _ = bcrypt::verify([0xffu8; 100], h);
        }
    }
}
