//! TLS pieces both ends of the wire share: the certificate fingerprint an operator pins
//! (SHA-256 of the certificate's DER, like `openssl x509 -fingerprint -sha256`), the
//! rustls crypto provider, and the ALPN both ends speak.

use std::fmt;

/// gRPC runs over HTTP/2; both ends announce it so the handshake fails fast against a
/// server that speaks something else.
pub const ALPN_H2: &[u8] = b"h2";

/// The one crypto provider both ends use (ring: no C toolchain beyond what the build has).
pub fn provider() -> std::sync::Arc<rustls::crypto::CryptoProvider> {
    std::sync::Arc::new(rustls::crypto::ring::default_provider())
}

/// The handshake-signature half of a certificate verifier that decides trust itself (by
/// pinned fingerprint): signatures are checked with the provider's algorithms, as
/// rustls's own verifiers do. Both the console's `AgentVerifier` and the members'
/// `MemberVerifier` delegate to it.
pub mod signatures {
    use rustls::DigitallySignedStruct;
    use rustls::SignatureScheme;
    use rustls::client::danger::HandshakeSignatureValid;
    use rustls::crypto::CryptoProvider;
    use rustls::pki_types::CertificateDer;

    pub fn tls12(
        p: &CryptoProvider,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &p.signature_verification_algorithms,
        )
    }

    pub fn tls13(
        p: &CryptoProvider,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &p.signature_verification_algorithms,
        )
    }

    pub fn schemes(p: &CryptoProvider) -> Vec<SignatureScheme> {
        p.signature_verification_algorithms.supported_schemes()
    }
}

/// SHA-256 of a certificate's DER encoding.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint(pub [u8; 32]);

impl Fingerprint {
    pub fn of_der(der: &[u8]) -> Self {
        let d = ring::digest::digest(&ring::digest::SHA256, der);
        let mut out = [0u8; 32];
        out.copy_from_slice(d.as_ref());
        Fingerprint(out)
    }

    /// Accepts `sha256:` followed by 64 hex digits, with or without `:` between bytes
    /// (so the output of `openssl x509 -noout -fingerprint -sha256` pastes as is).
    pub fn parse(s: &str) -> Result<Self, String> {
        let t = s.trim();
        let body = t
            .strip_prefix("sha256:")
            .or_else(|| t.strip_prefix("SHA256:"))
            .or_else(|| t.strip_prefix("sha256 Fingerprint="))
            .or_else(|| t.strip_prefix("SHA256 Fingerprint="))
            .unwrap_or(t);
        let hex: String = body.chars().filter(|c| *c != ':').collect();
        if hex.len() != 64 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(format!(
                "`{s}` is not a certificate fingerprint: expected sha256: and 64 hex digits \
                 (the agent prints its own at start and writes it to <state-dir>/tls/cert.fingerprint)"
            ));
        }
        let mut out = [0u8; 32];
        for (i, b) in out.iter_mut().enumerate() {
            *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|e| e.to_string())?;
        }
        Ok(Fingerprint(out))
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("sha256:")?;
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_round_trip_and_accept_openssl_form() {
        let fp = Fingerprint::of_der(b"not really a certificate");
        let s = fp.to_string();
        assert!(s.starts_with("sha256:") && s.len() == 7 + 64, "{s}");
        assert_eq!(Fingerprint::parse(&s).unwrap(), fp);
        let openssl: Vec<String> = fp.0.iter().map(|b| format!("{b:02X}")).collect();
        let openssl = format!("sha256 Fingerprint={}", openssl.join(":"));
        assert_eq!(Fingerprint::parse(&openssl).unwrap(), fp);
        let e = Fingerprint::parse("sha256:abcd").unwrap_err();
        assert!(e.contains("64 hex digits"), "{e}");
    }
}
