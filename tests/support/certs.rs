//! Test certificates that rustls accepts.
//!
//! rustls refuses a server certificate that is its own CA (`CaUsedAsEndEntity`), which is
//! what `openssl req -x509` makes. So this makes a small CA and a leaf it signs, with
//! `CA:FALSE`, `extendedKeyUsage=serverAuth` and `subjectAltName` `localhost` + `127.0.0.1`;
//! clients trust the CA. EC P-256 keys are generated in about a millisecond.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use tempfile::TempDir;
use tokio_rustls::rustls::pki_types::CertificateDer;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::{ClientConfig, RootCertStore};

/// A CA and a server certificate for `localhost` / `127.0.0.1`, as PEM files in `dir`:
/// `ca.pem` (trust this), `cert.pem` and `key.pem` (give these to the server).
#[derive(Debug)]
pub struct TestCa {
    pub dir: PathBuf,
    pub ca_pem: PathBuf,
    pub cert_pem: PathBuf,
    pub key_pem: PathBuf,
    /// Set when `new()` made its own directory; removed on drop.
    _tmp: Option<TempDir>,
}

impl TestCa {
    /// Makes the certificates in a fresh temporary directory.
    pub fn new() -> TestCa {
        let tmp = tempfile::Builder::new()
            .prefix("klachtpost-ca-")
            .tempdir()
            .expect("create a temp dir for the test CA");
        let mut ca = TestCa::in_dir(tmp.path());
        ca._tmp = Some(tmp);
        ca
    }

    /// Makes the certificates in `dir`, which must exist. The files are world-readable so a
    /// server that dropped privileges can read them (these are throw-away test keys).
    pub fn in_dir(dir: &Path) -> TestCa {
        let mut ca_params = CertificateParams::default();
        ca_params.distinguished_name = name("klachtpost test CA");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_key = KeyPair::generate().expect("generate the CA key");
        let ca_cert = ca_params.self_signed(&ca_key).expect("self-sign the CA");
        let issuer = Issuer::new(ca_params, ca_key);

        let mut leaf_params = CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()])
            .expect("valid subject alt names");
        leaf_params.distinguished_name = name("localhost");
        leaf_params.is_ca = IsCa::ExplicitNoCa;
        leaf_params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        leaf_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let leaf_key = KeyPair::generate().expect("generate the server key");
        let leaf_cert = leaf_params
            .signed_by(&leaf_key, &issuer)
            .expect("sign the server certificate");

        let ca = TestCa {
            dir: dir.to_owned(),
            ca_pem: dir.join("ca.pem"),
            cert_pem: dir.join("cert.pem"),
            key_pem: dir.join("key.pem"),
            _tmp: None,
        };
        write_public(&ca.ca_pem, ca_cert.pem().as_bytes());
        write_public(&ca.cert_pem, leaf_cert.pem().as_bytes());
        write_public(&ca.key_pem, leaf_key.serialize_pem().as_bytes());
        ca
    }

    /// The CA certificate as PEM, e.g. for lettre's `Certificate::from_pem`.
    pub fn ca_pem_bytes(&self) -> Vec<u8> {
        std::fs::read(&self.ca_pem).expect("read ca.pem")
    }

    /// A rustls client configuration (ring provider) that trusts only this CA.
    pub fn client_config(&self) -> Arc<ClientConfig> {
        client_config(&self.ca_pem)
    }
}

/// A rustls client configuration (ring provider) that trusts only the CA in `ca_pem`.
///
/// Built with an explicit provider instead of `ClientConfig::builder()`, which panics when
/// more than one crypto provider is compiled in and none is installed as the default.
pub fn client_config(ca_pem: &Path) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca_pem).expect("open the CA file") {
        roots
            .add(cert.expect("parse the CA file"))
            .expect("add the test CA");
    }
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(config)
}

fn name(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    dn
}

fn write_public(path: &Path, contents: &[u8]) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, contents).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
}
