//! Certificates for the HTTPS listener, chosen by SNI from the `kubernetes.io/tls` Secrets
//! named in the Ingresses' `spec.tls`. A client naming no known host (or none at all) gets a
//! self-signed default certificate made at start-up, like ingress-nginx's "fake
//! certificate", so the handshake completes and the failure is a clear certificate error.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::networking::v1::Ingress;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("secret {0} has no {1}")]
    Missing(String, &'static str),
    #[error("secret {secret}: {what} is not valid PEM")]
    Pem {
        secret: String,
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("secret {0}: tls.key holds no private key")]
    NoKey(String),
    #[error("secret {secret}: unsupported private key")]
    Key {
        secret: String,
        #[source]
        source: rustls::Error,
    },
    #[error("generating the default certificate")]
    Generate(#[from] rcgen::Error),
}

/// Certificates by host name.
#[derive(Debug, Default)]
pub struct CertTable {
    exact: HashMap<String, Arc<CertifiedKey>>,
    /// By suffix: `*.example.com` → `.example.com`.
    wildcard: HashMap<String, Arc<CertifiedKey>>,
}

impl CertTable {
    /// The certificates of `ingresses` (ours, oldest first), from `secrets`, looked up by
    /// (namespace, name). Secrets that are missing or broken are skipped with a warning.
    pub fn build(
        ingresses: &[Arc<Ingress>],
        secrets: &HashMap<(String, String), Arc<Secret>>,
    ) -> CertTable {
        let mut t = CertTable::default();
        for ing in ingresses {
            let ns = ing.metadata.namespace.clone().unwrap_or_default();
            for tls in ing.spec.iter().flat_map(|s| s.tls.iter().flatten()) {
                let Some(secret_name) = tls.secret_name.as_deref() else {
                    continue;
                };
                let Some(secret) = secrets.get(&(ns.clone(), secret_name.to_string())) else {
                    tracing::debug!(namespace = %ns, secret = secret_name, "TLS secret of an Ingress not found");
                    continue;
                };
                let key = match certified_key(secret) {
                    Ok(k) => Arc::new(k),
                    Err(e) => {
                        tracing::warn!(namespace = %ns, error = %e, "skipping an Ingress TLS secret");
                        continue;
                    }
                };
                for host in tls.hosts.iter().flatten() {
                    let host = host.to_ascii_lowercase();
                    match host.strip_prefix('*') {
                        Some(suffix) => {
                            t.wildcard.entry(suffix.to_string()).or_insert(key.clone());
                        }
                        None => {
                            t.exact.entry(host).or_insert(key.clone());
                        }
                    }
                }
            }
        }
        t
    }

    pub fn lookup(&self, sni: &str) -> Option<Arc<CertifiedKey>> {
        let sni = sni.to_ascii_lowercase();
        self.exact.get(&sni).cloned().or_else(|| {
            sni.find('.')
                .and_then(|dot| self.wildcard.get(&sni[dot..]))
                .cloned()
        })
    }
}

fn certified_key(secret: &Secret) -> Result<CertifiedKey, TlsError> {
    let name = secret.metadata.name.clone().unwrap_or_default();
    let data = secret.data.as_ref();
    let crt = data
        .and_then(|d| d.get("tls.crt"))
        .ok_or_else(|| TlsError::Missing(name.clone(), "tls.crt"))?;
    let key = data
        .and_then(|d| d.get("tls.key"))
        .ok_or_else(|| TlsError::Missing(name.clone(), "tls.key"))?;
    let certs = rustls_pemfile::certs(&mut crt.0.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| TlsError::Pem {
            secret: name.clone(),
            what: "tls.crt",
            source,
        })?;
    if certs.is_empty() {
        return Err(TlsError::Missing(name, "certificate in tls.crt"));
    }
    let key = rustls_pemfile::private_key(&mut key.0.as_slice())
        .map_err(|source| TlsError::Pem {
            secret: name.clone(),
            what: "tls.key",
            source,
        })?
        .ok_or_else(|| TlsError::NoKey(name.clone()))?;
    let signing =
        rustls::crypto::ring::sign::any_supported_type(&key).map_err(|source| TlsError::Key {
            secret: name,
            source,
        })?;
    Ok(CertifiedKey::new(certs, signing))
}

/// The resolver the HTTPS listener's rustls config uses; the Ingress controller swaps its
/// table as Ingresses and Secrets change.
#[derive(Debug)]
pub struct SniResolver {
    table: RwLock<Arc<CertTable>>,
    default: Arc<CertifiedKey>,
}

impl SniResolver {
    pub fn new() -> Result<SniResolver, TlsError> {
        let cert =
            rcgen::generate_simple_self_signed(vec!["wasmkube-ingress.invalid".to_string()])?;
        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(cert.signing_key.serialize_der().into());
        let signing = rustls::crypto::ring::sign::any_supported_type(&key).map_err(|source| {
            TlsError::Key {
                secret: "(default certificate)".into(),
                source,
            }
        })?;
        Ok(SniResolver {
            table: RwLock::new(Arc::new(CertTable::default())),
            default: Arc::new(CertifiedKey::new(vec![cert.cert.der().clone()], signing)),
        })
    }

    pub fn set(&self, table: CertTable) {
        if let Ok(mut t) = self.table.write() {
            *t = Arc::new(table);
        }
    }
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let found = hello
            .server_name()
            .and_then(|sni| self.table.read().ok().and_then(|t| t.lookup(sni)));
        Some(found.unwrap_or_else(|| self.default.clone()))
    }
}

/// The HTTPS listener's server config (HTTP/1.1 only).
pub fn server_config(resolver: Arc<SniResolver>) -> Result<rustls::ServerConfig, rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn tls_secret(name: &str, host: &str) -> Arc<Secret> {
        let cert = rcgen::generate_simple_self_signed(vec![host.to_string()]).unwrap();
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD;
        Arc::new(
            serde_json::from_value(json!({
                "metadata": {"name": name, "namespace": "default"},
                "type": "kubernetes.io/tls",
                "data": {"tls.crt": b64.encode(cert.cert.pem()),
                         "tls.key": b64.encode(cert.signing_key.serialize_pem())},
            }))
            .unwrap(),
        )
    }

    #[test]
    fn certificates_by_sni_exact_then_wildcard() {
        let ing: Arc<Ingress> = Arc::new(
            serde_json::from_value(json!({
                "metadata": {"name": "i", "namespace": "default"},
                "spec": {"tls": [{"hosts": ["a.example"], "secretName": "a"},
                                 {"hosts": ["*.wild.example"], "secretName": "w"},
                                 {"hosts": ["missing.example"], "secretName": "nope"}]},
            }))
            .unwrap(),
        );
        let mut secrets = HashMap::new();
        secrets.insert(
            ("default".to_string(), "a".to_string()),
            tls_secret("a", "a.example"),
        );
        secrets.insert(
            ("default".to_string(), "w".to_string()),
            tls_secret("w", "*.wild.example"),
        );
        let t = CertTable::build(&[ing], &secrets);
        let a = t.lookup("A.example").unwrap();
        let w = t.lookup("x.wild.example").unwrap();
        assert_ne!(a.cert[0], w.cert[0]);
        assert!(t.lookup("wild.example").is_none());
        assert!(t.lookup("missing.example").is_none());
    }
}
