//! Optional TLS for a dashboard: a certificate chain and its private key,
//! PEM files the operator makes (with `openssl req -x509`, a site CA, or
//! ACME on another machine), read once at start. rustls with the ring
//! provider, TLS 1.2 and 1.3, HTTP/1.1 only.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

pub use tokio_rustls::TlsAcceptor;

/// The acceptor for the certificate chain in `certificate` and the key in
/// `key`. The error names the file and says what is wrong with it.
pub fn acceptor(certificate: &Path, key: &Path) -> Result<TlsAcceptor, String> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(certificate)
        .and_then(|certs| certs.collect::<Result<_, _>>())
        .map_err(|e| pem_error(certificate, "a certificate", &e))?;
    if chain.is_empty() {
        return Err(format!(
            "{}: no certificate in it; give a PEM file with a `BEGIN CERTIFICATE` block (the server's first, then its CA's)",
            certificate.display()
        ));
    }
    let private =
        PrivateKeyDer::from_pem_file(key).map_err(|e| pem_error(key, "a private key", &e))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS cannot be set up: {e}"))?
        .with_no_client_auth()
        .with_single_cert(chain, private)
        .map_err(|e| {
            format!(
                "{} and {}: the key does not fit the certificate, or is of a kind TLS cannot use ({e}); give the key the certificate was made for",
                certificate.display(),
                key.display()
            )
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

fn pem_error(path: &Path, what: &str, e: &rustls::pki_types::pem::Error) -> String {
    use rustls::pki_types::pem::Error;
    match e {
        Error::Io(io) => format!(
            "{}: cannot read it ({io}); check the path and that the service's user may read it",
            path.display()
        ),
        Error::NoItemsFound => format!(
            "{}: no {what} in it; give a PEM file (`-----BEGIN ...-----`)",
            path.display()
        ),
        other => format!(
            "{}: not a PEM file holding {what} ({other:?})",
            path.display()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_wrong_file_is_named_with_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "").unwrap();
        let e = acceptor(&missing, &empty).err().unwrap();
        assert!(
            e.contains("missing.pem") && e.contains("cannot read it"),
            "{e}"
        );
        let e = acceptor(&empty, &empty).err().unwrap();
        assert!(
            e.contains("empty.pem") && e.contains("no certificate"),
            "{e}"
        );
    }
}
