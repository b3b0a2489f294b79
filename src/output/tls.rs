//! TLS client settings for the network outputs (MQTT, syslog over TLS):
//! rustls with the ring provider. Certificates and keys are read once at
//! start; an unreadable or unparsable file is bad input (exit 2). Without
//! `ca=` the system's PEM bundle is the trust store, read from
//! /etc/ssl/certs (no compiled-in root list: it would cost ~250 KB).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

/// Where Debian, Alpine, Buildroot and OpenWrt keep the bundle.
const SYSTEM_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/ssl/cert.pem",
    "/etc/pki/tls/certs/ca-bundle.crt",
];

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsOptions {
    pub ca: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub insecure: bool,
}

impl TlsOptions {
    /// Takes `ca`, `cert`, `key` and `insecure`; false for any other key.
    pub fn take(&mut self, k: &str, v: &str) -> Result<bool, String> {
        match k {
            "ca" => self.ca = Some(non_empty(k, v)?.into()),
            "cert" => self.cert = Some(non_empty(k, v)?.into()),
            "key" => self.key = Some(non_empty(k, v)?.into()),
            "insecure" => {
                self.insecure = match v {
                    "true" | "1" => true,
                    "false" | "0" => false,
                    _ => return Err(format!("insecure='{v}' is not true or false")),
                }
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    pub fn is_set(&self) -> bool {
        self.ca.is_some() || self.cert.is_some() || self.key.is_some() || self.insecure
    }

    /// The client configuration; the error names the file and the problem.
    pub fn client_config(&self, what: &str) -> Result<Arc<ClientConfig>, String> {
        let provider = Arc::new(super::tls_provider::provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| format!("{what}: TLS setup: {e}"))?;
        let builder = if self.insecure {
            crate::log_line!(
                "{what}: insecure=true: the server's certificate is NOT verified (anyone on the path can read and change this output)"
            );
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(NoVerify(provider)))
        } else {
            builder.with_root_certificates(self.roots(what)?)
        };
        let mut cfg = match (&self.cert, &self.key) {
            (Some(c), Some(k)) => {
                let chain = certs(c, what)?;
                let key = PrivateKeyDer::from_pem_file(k)
                    .map_err(|e| format!("{what}: cannot read the key {}: {e}", k.display()))?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| format!("{what}: client certificate {}: {e}", c.display()))?
            }
            (None, None) => builder.with_no_client_auth(),
            _ => return Err(format!("{what}: cert= and key= go together")),
        };
        // One peer: a few tickets for quick reconnects, not rustls's 256.
        cfg.resumption = rustls::client::Resumption::in_memory_sessions(4);
        Ok(Arc::new(cfg))
    }

    fn roots(&self, what: &str) -> Result<RootCertStore, String> {
        let mut store = RootCertStore::empty();
        let path = match &self.ca {
            Some(p) => p.clone(),
            None => SYSTEM_BUNDLES
                .iter()
                .map(PathBuf::from)
                .find(|p| p.exists())
                .ok_or_else(|| {
                    format!("{what}: no ca= given and no system CA bundle (/etc/ssl/certs/ca-certificates.crt)")
                })?,
        };
        let (added, _) = store.add_parsable_certificates(certs(&path, what)?);
        if added == 0 {
            return Err(format!(
                "{what}: no usable CA certificate in {}",
                path.display()
            ));
        }
        Ok(store)
    }
}

fn non_empty<'a>(k: &str, v: &'a str) -> Result<&'a str, String> {
    if v.is_empty() {
        return Err(format!("{k}= needs a file"));
    }
    Ok(v)
}

fn certs(p: &Path, what: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let v: Vec<_> = CertificateDer::pem_file_iter(p)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("{what}: cannot read certificates from {}: {e}", p.display()))?;
    if v.is_empty() {
        return Err(format!("{what}: no certificate in {}", p.display()));
    }
    Ok(v)
}

/// The SNI and verification name: a DNS name or an IP address.
pub fn server_name(host: &str) -> Result<ServerName<'static>, String> {
    ServerName::try_from(host.to_string())
        .map_err(|_| format!("'{host}' is not a valid TLS server name"))
}

/// insecure=true: accepts any certificate, still checks the handshake
/// signatures (so the session keys are the peer's).
#[derive(Debug)]
struct NoVerify(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(m, c, d, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(m, c, d, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
