//! ring's suites and groups for every TLS end (the MQTT and syslog clients,
//! the /metrics server), trimmed for the 2.0 MB binary:
//! - AES-GCM only (ChaCha20-Poly1305 costs ~50 KB of x86_64 code); every
//!   TLS 1.3 server must take TLS_AES_128_GCM_SHA256.
//! - P-256 key exchange only: RFC 8446 section 9.1 makes secp256r1 the one
//!   group a TLS 1.3 end MUST implement (X25519 is a SHOULD); mosquitto,
//!   rsyslog (GnuTLS, OpenSSL), Go's Prometheus and the cloud brokers offer
//!   it. X25519 and Ed25519 signing would add ~41 KB (ring's curve25519
//!   tables and code), Ed25519 certificate checks ~12 KB more.
//! - Our own key (client certificate, /metrics server): RSA or ECDSA
//!   (P-256, P-384); an Ed25519 key is refused at start with one line.
//! - Peer certificates: RSA (PKCS#1, PSS) and ECDSA P-256/P-384, what public
//!   and IoT CAs issue; no public CA issues Ed25519 certificates.

use std::sync::Arc;

use rustls::crypto::{ring, WebPkiSupportedAlgorithms};
use rustls::pki_types::PrivateKeyDer;
use rustls::SignatureScheme;

pub fn provider() -> rustls::crypto::CryptoProvider {
    use ring::cipher_suite as cs;
    // Not `..default_provider()`: that would link every suite it lists.
    rustls::crypto::CryptoProvider {
        cipher_suites: vec![
            cs::TLS13_AES_128_GCM_SHA256,
            cs::TLS13_AES_256_GCM_SHA384,
            cs::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
            cs::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
            cs::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
            cs::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        ],
        kx_groups: vec![ring::kx_group::SECP256R1],
        signature_verification_algorithms: SIG_ALGS,
        secure_random: &Keys,
        key_provider: &Keys,
    }
}

/// Peer-certificate signatures checked: rustls's ring list.
static SIG_ALGS: WebPkiSupportedAlgorithms = {
    use webpki::ring as a;
    WebPkiSupportedAlgorithms {
        all: &[
            a::ECDSA_P256_SHA256,
            a::ECDSA_P256_SHA384,
            a::ECDSA_P384_SHA256,
            a::ECDSA_P384_SHA384,
            a::RSA_PSS_2048_8192_SHA256_LEGACY_KEY,
            a::RSA_PSS_2048_8192_SHA384_LEGACY_KEY,
            a::RSA_PSS_2048_8192_SHA512_LEGACY_KEY,
            a::RSA_PKCS1_2048_8192_SHA256,
            a::RSA_PKCS1_2048_8192_SHA384,
            a::RSA_PKCS1_2048_8192_SHA512,
        ],
        mapping: &[
            (
                SignatureScheme::ECDSA_NISTP384_SHA384,
                &[a::ECDSA_P384_SHA384, a::ECDSA_P256_SHA384],
            ),
            (
                SignatureScheme::ECDSA_NISTP256_SHA256,
                &[a::ECDSA_P256_SHA256, a::ECDSA_P384_SHA256],
            ),
            (
                SignatureScheme::RSA_PSS_SHA512,
                &[a::RSA_PSS_2048_8192_SHA512_LEGACY_KEY],
            ),
            (
                SignatureScheme::RSA_PSS_SHA384,
                &[a::RSA_PSS_2048_8192_SHA384_LEGACY_KEY],
            ),
            (
                SignatureScheme::RSA_PSS_SHA256,
                &[a::RSA_PSS_2048_8192_SHA256_LEGACY_KEY],
            ),
            (
                SignatureScheme::RSA_PKCS1_SHA512,
                &[a::RSA_PKCS1_2048_8192_SHA512],
            ),
            (
                SignatureScheme::RSA_PKCS1_SHA384,
                &[a::RSA_PKCS1_2048_8192_SHA384],
            ),
            (
                SignatureScheme::RSA_PKCS1_SHA256,
                &[a::RSA_PKCS1_2048_8192_SHA256],
            ),
        ],
    }
};

/// ring's randomness and key loading, as rustls's ring provider has them.
#[derive(Debug)]
struct Keys;

impl rustls::crypto::SecureRandom for Keys {
    fn fill(&self, buf: &mut [u8]) -> Result<(), rustls::crypto::GetRandomFailed> {
        use ::ring::rand::SecureRandom as _;
        ::ring::rand::SystemRandom::new()
            .fill(buf)
            .map_err(|_| rustls::crypto::GetRandomFailed)
    }
}

impl rustls::crypto::KeyProvider for Keys {
    fn load_private_key(
        &self,
        key: PrivateKeyDer<'static>,
    ) -> Result<Arc<dyn rustls::sign::SigningKey>, rustls::Error> {
        if let Ok(rsa) = ring::sign::RsaSigningKey::new(&key) {
            return Ok(Arc::new(rsa));
        }
        ring::sign::any_ecdsa_type(&key).map_err(|_| {
            rustls::Error::General(
                "key is not RSA or ECDSA P-256/P-384 (Ed25519 keys are not supported)".into(),
            )
        })
    }
}
