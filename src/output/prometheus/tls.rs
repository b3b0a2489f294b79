//! The rustls side of the endpoint: a `ServerConfig` from the web config's
//! `tls_server_config`, and non-blocking reads and writes through a
//! `ServerConnection` over the connection's socket. rustls runs on the ring
//! provider (small, builds static for both musl targets), without logging.

use std::io::{self, Read, Write};
use std::sync::Arc;

use mio::net::TcpStream;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ServerSessionMemoryCache, WebPkiClientVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, ServerConfig, ServerConnection};
use rustls::{RootCertStore, SignatureScheme};

use super::webconfig::{ClientAuth, TlsSettings, Version};

/// Plaintext and TLS bytes rustls may hold per connection on the way out;
/// a slow reader stalls at this instead of growing it.
pub const BUFFER_LIMIT: usize = 16 * 1024;
/// TLS sessions kept for resumption (a Prometheus reconnecting skips a full handshake).
const SESSIONS: usize = 16;
/// TLS reads per call before the connection is given up: a peer that keeps
/// the socket full without ever completing a request byte is not served.
const READS_PER_CALL: usize = 64;

/// Builds the server's TLS configuration; errors are one line.
pub fn server_config(t: &TlsSettings) -> Result<Arc<ServerConfig>, String> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&t.cert_file)
        .and_then(|it| it.collect::<Result<_, _>>())
        .map_err(|e| format!("cert_file {}: {e}", t.cert_file.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "cert_file {}: no certificate in it",
            t.cert_file.display()
        ));
    }
    let key = PrivateKeyDer::from_pem_file(&t.key_file)
        .map_err(|e| format!("key_file {}: {e}", t.key_file.display()))?;
    let mut provider = crate::output::tls_provider::provider();
    if !t.cipher_suites.is_empty() {
        // Go applies the list to TLS 1.2 only; 1.3's suites stay.
        provider.cipher_suites.retain(|s| {
            s.version() == &rustls::version::TLS13
                || t.cipher_suites
                    .iter()
                    .any(|n| go_suite(n) == Some(s.suite()))
        });
        if !provider
            .cipher_suites
            .iter()
            .any(|s| s.version() == &rustls::version::TLS12)
            && t.max_version == Version::Tls12
        {
            return Err(
                "none of cipher_suites is one Kestrel has (TLS 1.2: ECDHE with AES-GCM)".into(),
            );
        }
    }
    if !t.curves.is_empty() {
        provider
            .kx_groups
            .retain(|g| t.curves.iter().any(|c| same_curve(c, g.name())));
        if provider.kx_groups.is_empty() {
            return Err("none of curve_preferences is one Kestrel has (CurveP256)".into());
        }
    }
    let versions: &[&rustls::SupportedProtocolVersion] = match (t.min_version, t.max_version) {
        (Version::Tls13, Version::Tls12) => return Err("min_version is above max_version".into()),
        (Version::Tls13, _) => &[&rustls::version::TLS13],
        (_, Version::Tls12) => &[&rustls::version::TLS12],
        _ => &[&rustls::version::TLS13, &rustls::version::TLS12],
    };
    let provider = Arc::new(provider);
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(versions)
        .map_err(|e| format!("tls_server_config: {e}"))?;
    let algs = provider.signature_verification_algorithms;
    let verifier: Arc<dyn ClientCertVerifier> = match t.client_auth {
        ClientAuth::NoClientCert => WebPkiClientVerifier::no_client_auth(),
        ClientAuth::RequestClientCert | ClientAuth::RequireAnyClientCert => Arc::new(AnyCert {
            mandatory: t.client_auth == ClientAuth::RequireAnyClientCert,
            algs,
        }),
        ClientAuth::VerifyClientCertIfGiven | ClientAuth::RequireAndVerifyClientCert => {
            let mut roots = RootCertStore::empty();
            let path = t
                .client_ca_file
                .as_deref()
                .unwrap_or(std::path::Path::new(""));
            let cas = CertificateDer::pem_file_iter(path)
                .and_then(|it| it.collect::<Result<Vec<_>, _>>())
                .map_err(|e| format!("client_ca_file {}: {e}", path.display()))?;
            let (added, _) = roots.add_parsable_certificates(cas);
            if added == 0 {
                return Err(format!(
                    "client_ca_file {}: no usable CA certificate in it",
                    path.display()
                ));
            }
            let b = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let b = if t.client_auth == ClientAuth::VerifyClientCertIfGiven {
                b.allow_unauthenticated()
            } else {
                b
            };
            b.build()
                .map_err(|e| format!("client_ca_file {}: {e}", path.display()))?
        }
    };
    let mut cfg = builder
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs, key)
        .map_err(|e| {
            format!(
                "cert_file {} / key_file {}: {e}",
                t.cert_file.display(),
                t.key_file.display()
            )
        })?;
    cfg.ignore_client_order = t.prefer_server_cipher_suites;
    cfg.session_storage = ServerSessionMemoryCache::new(SESSIONS);
    Ok(Arc::new(cfg))
}

/// Go's names (crypto/tls) of the TLS 1.2 suites Kestrel has; other names
/// select nothing here.
fn go_suite(go: &str) -> Option<rustls::CipherSuite> {
    use rustls::CipherSuite as C;
    Some(match go {
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256" => C::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384" => C::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256" => C::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384" => C::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        _ => return None,
    })
}

fn same_curve(go: &str, g: rustls::NamedGroup) -> bool {
    matches!(
        (go, g),
        ("X25519", rustls::NamedGroup::X25519) | ("CurveP256", rustls::NamedGroup::secp256r1)
    )
}

/// RequestClientCert / RequireAnyClientCert: a certificate is asked for (or
/// required) and its signature over the handshake checked, but its chain is
/// not, as Go does for those two types.
#[derive(Debug)]
struct AnyCert {
    mandatory: bool,
    algs: WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for AnyCert {
    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algs)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algs)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algs.supported_schemes()
    }
}

/// A new server side for an accepted socket.
pub fn accept(cfg: &Arc<ServerConfig>) -> Option<Box<ServerConnection>> {
    let mut c = ServerConnection::new(Arc::clone(cfg)).ok()?;
    c.set_buffer_limit(Some(BUFFER_LIMIT));
    Some(Box::new(c))
}

/// Sends what rustls has queued, until done or the socket would block.
fn push(tls: &mut ServerConnection, sock: &mut TcpStream) -> io::Result<()> {
    while tls.wants_write() {
        match tls.write_tls(sock) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Plaintext from the peer, as `Read::read` would give it: Ok(0) at the
/// end, WouldBlock when nothing more is there yet. Drives the handshake;
/// `heard` is set once any TLS byte has come.
pub fn read(
    tls: &mut ServerConnection,
    sock: &mut TcpStream,
    buf: &mut [u8],
    heard: &mut bool,
) -> io::Result<usize> {
    for _ in 0..READS_PER_CALL {
        match tls.reader().read(buf) {
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
        match tls.read_tls(sock) {
            Ok(0) => return Ok(0),
            Ok(_) => {
                *heard = true;
                if let Err(e) = tls.process_new_packets() {
                    // The alert saying why, best effort.
                    let _ = push(tls, sock);
                    return Err(io::Error::new(io::ErrorKind::InvalidData, e));
                }
                // Handshake replies go out as soon as they exist.
                match push(tls, sock) {
                    Err(e) if e.kind() != io::ErrorKind::WouldBlock => return Err(e),
                    _ => {}
                }
            }
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::other("TLS records without progress"))
}

/// Takes up to `data.len()` plaintext bytes for sending; WouldBlock when
/// rustls's buffer is full and the socket takes nothing.
pub fn write(tls: &mut ServerConnection, sock: &mut TcpStream, data: &[u8]) -> io::Result<usize> {
    push(tls, sock).or_else(|e| match e.kind() {
        io::ErrorKind::WouldBlock => Ok(()),
        _ => Err(e),
    })?;
    let n = tls.writer().write(data)?;
    match push(tls, sock) {
        Err(e) if e.kind() != io::ErrorKind::WouldBlock => return Err(e),
        _ => {}
    }
    if n == 0 {
        return Err(io::ErrorKind::WouldBlock.into());
    }
    Ok(n)
}

/// True once everything handed to `write` has reached the socket.
pub fn drained(tls: &mut ServerConnection, sock: &mut TcpStream) -> io::Result<bool> {
    match push(tls, sock) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(false),
        Err(e) => Err(e),
    }
}

/// close_notify, best effort (the socket's write side is shut after it).
pub fn close(tls: &mut ServerConnection, sock: &mut TcpStream) {
    tls.send_close_notify();
    let _ = push(tls, sock);
}
