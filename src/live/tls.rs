//! TLS for the live world: a self-signed certificate made at start for the HTTPS backends, and
//! a client configuration for HTTPS health checks that does not verify the certificate.
//!
//! ELB's HTTPS health check does not verify the backend's certificate (a backend behind a load
//! balancer commonly presents a self-signed or internal one), so the prober accepts any
//! certificate and checks only that the handshake completes. rustls's `ring` provider is used
//! explicitly, never the process default, so nothing depends on which provider another crate
//! in the build enabled.

use std::sync::Arc;
use tokio_rustls::rustls::{
    self,
    client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
    crypto::{ring, CryptoProvider},
    pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime},
    DigitallySignedStruct, SignatureScheme,
};

fn provider() -> Arc<CryptoProvider> {
    Arc::new(ring::default_provider())
}

/// A server configuration with a fresh self-signed certificate for `localhost`, 127.0.0.1,
/// ::1 and `extra_names` (the pool's `domain_name`, so a client that does verify would accept
/// the name it asked for).
pub fn server_config(extra_names: &[String]) -> Result<Arc<rustls::ServerConfig>, String> {
    let mut names = vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
    ];
    names.extend(extra_names.iter().cloned());
    let cert = rcgen::generate_simple_self_signed(names)
        .map_err(|e| format!("cannot make a self-signed certificate: {e}"))?;
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(cert.signing_key.serialize_der()));
    let config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS versions: {e}"))?
        .with_no_client_auth()
        .with_single_cert(vec![cert.cert.der().clone()], key)
        .map_err(|e| format!("TLS server configuration: {e}"))?;
    Ok(Arc::new(config))
}

/// The health check's client configuration: TLS 1.2 and 1.3, any certificate accepted, but the
/// handshake's signatures are still checked against the presented key (a broken handshake
/// must still fail).
pub fn client_config() -> Result<Arc<rustls::ClientConfig>, String> {
    let provider = provider();
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS versions: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Accepts every certificate, as ELB's HTTPS health check does.
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The name a health check presents: the domain name when the pool sets one (sent as SNI),
/// else the target's IP address (no SNI, as for any IP).
pub fn server_name(domain: Option<&str>, ip: std::net::IpAddr) -> ServerName<'static> {
    domain
        .and_then(|d| ServerName::try_from(d.to_string()).ok())
        .unwrap_or_else(|| ServerName::IpAddress(ip.into()))
}
