//! TLS with a certificate verifier that records what it saw (subject, SANs, issuer, validity)
//! and the verification result against the configured trust anchors, so a bad certificate is
//! a finding in the report rather than an opaque handshake failure (RFC 5922 §7.2 for SIP).

use crate::{Error, Result, TlsInfo};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// Shared slot the verifier fills during the handshake.
pub(crate) type Captured = Arc<Mutex<Option<TlsInfo>>>;

#[derive(Debug)]
struct CapturingVerifier {
    inner: Option<Arc<WebPkiServerVerifier>>,
    provider: Arc<CryptoProvider>,
    insecure_continue: bool,
    captured: Captured,
}

fn describe(e: &rustls::Error) -> String {
    match e {
        rustls::Error::InvalidCertificate(c) => match c {
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                "certificate expired".to_owned()
            }
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                "certificate not valid yet".to_owned()
            }
            CertificateError::UnknownIssuer => "issuer not trusted (unknown CA)".to_owned(),
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                "certificate not valid for the server name".to_owned()
            }
            CertificateError::Revoked => "certificate revoked".to_owned(),
            CertificateError::BadSignature => "bad certificate signature".to_owned(),
            other => format!("invalid certificate: {other:?}"),
        },
        other => other.to_string(),
    }
}

fn decode(der: &CertificateDer<'_>) -> TlsInfo {
    let mut info = TlsInfo {
        subject: String::new(),
        issuer: String::new(),
        sans: Vec::new(),
        not_before: String::new(),
        not_after: String::new(),
        verified: false,
        error: None,
        protocol: None,
        cipher: None,
    };
    match x509_parser::parse_x509_certificate(der.as_ref()) {
        Ok((_, cert)) => {
            info.subject = cert.subject().to_string();
            info.issuer = cert.issuer().to_string();
            let v = cert.validity();
            info.not_before = rfc3339(v.not_before.timestamp());
            info.not_after = rfc3339(v.not_after.timestamp());
            if let Ok(Some(san)) = cert.subject_alternative_name() {
                for name in &san.value.general_names {
                    use x509_parser::extensions::GeneralName;
                    match name {
                        GeneralName::DNSName(d) => info.sans.push(format!("DNS:{d}")),
                        GeneralName::URI(u) => info.sans.push(format!("URI:{u}")),
                        GeneralName::IPAddress(ip) => {
                            let s = match ip.len() {
                                4 => {
                                    let a: [u8; 4] = [ip[0], ip[1], ip[2], ip[3]];
                                    std::net::Ipv4Addr::from(a).to_string()
                                }
                                16 => {
                                    let mut a = [0u8; 16];
                                    a.copy_from_slice(ip);
                                    std::net::Ipv6Addr::from(a).to_string()
                                }
                                _ => format!("{ip:?}"),
                            };
                            info.sans.push(format!("IP:{s}"));
                        }
                        _ => {}
                    }
                }
            }
        }
        Err(e) => info.error = Some(format!("certificate cannot be decoded: {e}")),
    }
    info
}

impl ServerCertVerifier for CapturingVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        let mut info = decode(end_entity);
        let result = match &self.inner {
            Some(v) => {
                v.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
            }
            None => Err(rustls::Error::InvalidCertificate(
                CertificateError::UnknownIssuer,
            )),
        };
        match &result {
            Ok(_) => info.verified = true,
            Err(e) => {
                info.verified = false;
                let mut text = describe(e);
                if self.inner.is_none() {
                    text.push_str("; no trust anchor configured");
                }
                info.error = Some(text);
            }
        }
        if let Ok(mut slot) = self.captured.lock() {
            *slot = Some(info);
        }
        match result {
            Ok(v) => Ok(v),
            Err(_) if self.insecure_continue => Ok(ServerCertVerified::assertion()),
            Err(e) => Err(e),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// Builds a client config that verifies against `trust` and records findings into `captured`.
pub(crate) fn client_config(
    trust: &[PathBuf],
    insecure_continue: bool,
    captured: Captured,
) -> Result<Arc<rustls::ClientConfig>> {
    // The ring provider is passed explicitly so no process-wide default is needed (see dependencies.md §3.4).
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    for path in trust {
        let shown = path.display().to_string();
        let iter = CertificateDer::pem_file_iter(path).map_err(|e| Error::TrustAnchor {
            path: shown.clone(),
            reason: e.to_string(),
        })?;
        let mut n = 0;
        for cert in iter {
            let cert = cert.map_err(|e| Error::TrustAnchor {
                path: shown.clone(),
                reason: e.to_string(),
            })?;
            roots.add(cert).map_err(|e| Error::TrustAnchor {
                path: shown.clone(),
                reason: e.to_string(),
            })?;
            n += 1;
        }
        if n == 0 {
            return Err(Error::TrustAnchor {
                path: shown,
                reason: "no certificate in file".to_owned(),
            });
        }
    }
    let inner = if roots.is_empty() {
        None
    } else {
        Some(
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .build()
                .map_err(|e| Error::TlsConfig(e.to_string()))?,
        )
    };
    let verifier = CapturingVerifier {
        inner,
        provider: provider.clone(),
        insecure_continue,
        captured,
    };
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::TlsConfig(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Formats a Unix timestamp as RFC 3339 UTC (empty when out of chrono's range).
pub(crate) fn rfc3339(ts: i64) -> String {
    chrono::DateTime::from_timestamp(ts, 0)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #[test]
    fn rfc3339_table() {
        for (ts, want) in [
            (0, "1970-01-01T00:00:00Z"),
            (1_580_515_200, "2020-02-01T00:00:00Z"),
            (951_782_400, "2000-02-29T00:00:00Z"),
            (4_102_444_799, "2099-12-31T23:59:59Z"),
        ] {
            assert_eq!(super::rfc3339(ts), want);
        }
    }
}
