//! ring's suites and groups for every TLS end (the MQTT and syslog clients,
//! the /metrics server), trimmed for size: AES-GCM only (ChaCha20-Poly1305 costs ~50 KB of
//! x86_64 code), X25519 and P-256 key exchange (not P-384). Every TLS 1.3
//! server must take TLS_AES_128_GCM_SHA256; mosquitto, rsyslog (GnuTLS and
//! OpenSSL) and the cloud brokers offer X25519 or P-256.

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
        kx_groups: vec![ring::kx_group::X25519, ring::kx_group::SECP256R1],
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
            a::ED25519,
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
            (SignatureScheme::ED25519, &[a::ED25519]),
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
        ring::sign::any_supported_type(&key)
    }
}
