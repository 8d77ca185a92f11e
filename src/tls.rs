//! TLS client settings shared by the IMAP edge: the public web roots plus, when
//! configured, one extra CA (`ca_file`) for a firm's own or a test server's certificate.

use std::path::Path;
use std::sync::Arc;

use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read the CA file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("the CA file {path} holds no usable certificate")]
    Empty { path: String },
    #[error("cannot add a certificate from {path}: {source}")]
    Add { path: String, source: rustls::Error },
    #[error("cannot set up TLS: {0}")]
    Setup(rustls::Error),
}

/// The PEM certificates of a CA file.
pub fn read_ca_file(
    path: &Path,
) -> Result<Vec<rustls::pki_types::CertificateDer<'static>>, TlsError> {
    let pem = std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.display().to_string(),
        source,
    })?;
    let certs: Vec<_> = rustls_pemfile::certs(&mut pem.as_slice())
        .filter_map(|c| c.ok())
        .collect();
    if certs.is_empty() {
        return Err(TlsError::Empty {
            path: path.display().to_string(),
        });
    }
    Ok(certs)
}

/// A rustls client config (ring provider) trusting the web roots and `ca_file`.
pub fn client_config(ca_file: Option<&Path>) -> Result<Arc<ClientConfig>, TlsError> {
    let mut roots = RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = ca_file {
        for cert in read_ca_file(path)? {
            roots.add(cert).map_err(|source| TlsError::Add {
                path: path.display().to_string(),
                source,
            })?;
        }
    }
    let config =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(TlsError::Setup)?
            .with_root_certificates(roots)
            .with_no_client_auth();
    Ok(Arc::new(config))
}
