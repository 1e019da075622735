//! The cluster's certificate authority and the API server's serving certificate.
//!
//! Both are made on first start (rcgen) and kept in the data directory, so kubeconfigs written
//! once stay valid across restarts. The serving certificate is re-issued (by the same CA) when
//! the addresses it must cover change.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("reading or writing {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("generating certificates")]
    Generate(#[from] rcgen::Error),
    #[error("building the TLS configuration")]
    Rustls(#[from] rustls::Error),
    #[error("the stored certificate or key in {0} is not valid PEM")]
    Pem(PathBuf),
}

/// The PEM files of the cluster CA and the serving certificate.
pub struct ClusterTls {
    pub ca_pem: String,
    pub server_config: Arc<rustls::ServerConfig>,
}

fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "wasmkube-server-ca");
    dn.push(DnType::OrganizationName, "wasmkube");
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.not_before = rcgen::date_time_ymd(2024, 1, 1);
    params.not_after = rcgen::date_time_ymd(2124, 1, 1);
    params
}

fn read(path: &Path) -> Result<Option<String>, TlsError> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(TlsError::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}

fn write_private(path: &Path, contents: &str) -> Result<(), TlsError> {
    write_private_file(path, contents.as_bytes()).map_err(|source| TlsError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Writes a secret file: created with mode 0600 (never readable by others, not even for a
/// moment), synced, and renamed into place, so a crash never leaves half a key.
pub(crate) fn write_private_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let tmp = path.with_extension("tmp");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)
}

/// Loads the CA and serving certificate from `dir`, creating whatever is missing. `names` are
/// the DNS names and IP addresses the serving certificate must cover.
/// The cluster CA in `dir` (its PEM certificate and key), made if it is not there yet.
pub fn load_or_create_ca(dir: &Path) -> Result<(String, KeyPair), TlsError> {
    std::fs::create_dir_all(dir).map_err(|source| TlsError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let ca_cert_path = dir.join("server-ca.crt");
    let ca_key_path = dir.join("server-ca.key");
    Ok(match (read(&ca_cert_path)?, read(&ca_key_path)?) {
        (Some(cert), Some(key)) => (
            cert,
            KeyPair::from_pem(&key).map_err(|_| TlsError::Pem(ca_key_path.clone()))?,
        ),
        _ => {
            let key = KeyPair::generate()?;
            let cert = ca_params().self_signed(&key)?;
            write_private(&ca_key_path, &key.serialize_pem())?;
            write_private(&ca_cert_path, &cert.pem())?;
            (cert.pem(), key)
        }
    })
}

pub fn load_or_create(dir: &Path, names: &[String]) -> Result<ClusterTls, TlsError> {
    let (ca_pem, ca_key) = load_or_create_ca(dir)?;

    let cert_path = dir.join("serving-kube-apiserver.crt");
    let key_path = dir.join("serving-kube-apiserver.key");
    let names_path = dir.join("serving-kube-apiserver.names");
    let wanted_names = names.join(",");
    let (cert_pem, key_pem) = match (read(&cert_path)?, read(&key_path)?, read(&names_path)?) {
        (Some(c), Some(k), Some(n)) if n == wanted_names => (c, k),
        _ => {
            let key = KeyPair::generate()?;
            let mut params = CertificateParams::default();
            let mut dn = DistinguishedName::new();
            dn.push(DnType::CommonName, "kube-apiserver");
            params.distinguished_name = dn;
            params.subject_alt_names = names
                .iter()
                .map(|n| match n.parse::<IpAddr>() {
                    Ok(ip) => Ok(SanType::IpAddress(ip)),
                    Err(_) => n.clone().try_into().map(SanType::DnsName),
                })
                .collect::<Result<_, _>>()?;
            params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
            params.key_usages = vec![
                KeyUsagePurpose::DigitalSignature,
                KeyUsagePurpose::KeyEncipherment,
            ];
            params.not_before = rcgen::date_time_ymd(2024, 1, 1);
            params.not_after = rcgen::date_time_ymd(2124, 1, 1);
            // The issuer is rebuilt from the same parameters and key as the stored CA, so the
            // names and key identifiers in the new certificate chain to it.
            let issuer = Issuer::new(ca_params(), &ca_key);
            let cert = params.signed_by(&key, &issuer)?;
            let chain = format!("{}{}", cert.pem(), ca_pem);
            write_private(&key_path, &key.serialize_pem())?;
            write_private(&cert_path, &chain)?;
            write_private(&names_path, &wanted_names)?;
            (chain, key.serialize_pem())
        }
    };

    let certs = rustls_pemfile::certs(&mut cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| TlsError::Pem(cert_path.clone()))?;
    let key = rustls_pemfile::private_key(&mut key_pem.as_bytes())
        .map_err(|_| TlsError::Pem(key_path.clone()))?
        .ok_or_else(|| TlsError::Pem(key_path.clone()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(ClusterTls {
        ca_pem,
        server_config: Arc::new(config),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_then_reuses() {
        let dir = tempfile::tempdir().expect("tempdir");
        let names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
        let a = load_or_create(dir.path(), &names).expect("create");
        let b = load_or_create(dir.path(), &names).expect("reload");
        assert_eq!(a.ca_pem, b.ca_pem, "the CA survives a restart");
        let served =
            std::fs::read_to_string(dir.path().join("serving-kube-apiserver.crt")).expect("cert");
        let more = vec!["localhost".to_string(), "127.0.0.2".to_string()];
        load_or_create(dir.path(), &more).expect("reissue");
        let reissued =
            std::fs::read_to_string(dir.path().join("serving-kube-apiserver.crt")).expect("cert");
        assert_ne!(served, reissued, "new names get a new certificate");
    }
}
