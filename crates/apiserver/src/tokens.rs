//! ServiceAccount tokens: JWTs the API server signs and later accepts as bearer tokens.
//!
//! Tokens are HS256 JWTs with the claims Kubernetes' bound tokens carry (`iss`, `sub`, `aud`,
//! `exp`, `iat`, `nbf`, and `kubernetes.io` naming the namespace and the ServiceAccount with its
//! uid). Only this server verifies them, so a symmetric key kept in the data directory is
//! enough; it never leaves the server. A token is accepted only while its ServiceAccount exists
//! with the same uid: deleting the account revokes every token issued for it, as in Kubernetes.
//!
//! `POST .../serviceaccounts/NAME/token` (a `TokenRequest`, what `kubectl create token` sends)
//! issues one.

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::hmac;
use serde::{Deserialize, Serialize};

/// The `iss` claim, and the audience a token gets when its request names none.
pub const ISSUER: &str = "https://kubernetes.default.svc.cluster.local";

/// Shortest and default lifetimes of a requested token, as Kubernetes validates them.
pub const MIN_EXPIRATION_SECONDS: i64 = 600;
pub const DEFAULT_EXPIRATION_SECONDS: i64 = 3600;
/// Longest lifetime handed out; longer requests get this (Kubernetes caps them too).
pub const MAX_EXPIRATION_SECONDS: i64 = 48 * 3600;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("reading or writing the token signing key {path}: {source}")]
    Key {
        path: String,
        source: std::io::Error,
    },
    #[error("the token signing key {path} is not 32 or more bytes")]
    ShortKey { path: String },
}

/// Who a token was issued to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub sub: String,
    pub aud: Vec<String>,
    pub exp: i64,
    pub iat: i64,
    pub nbf: i64,
    #[serde(rename = "kubernetes.io")]
    pub kubernetes: KubernetesClaims,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KubernetesClaims {
    pub namespace: String,
    pub serviceaccount: ObjectRef,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectRef {
    pub name: String,
    pub uid: String,
}

impl Claims {
    /// Claims for ServiceAccount `namespace/name` (with `uid`), valid from `now` for `seconds`.
    pub fn new(
        namespace: &str,
        name: &str,
        uid: &str,
        audiences: Vec<String>,
        now: i64,
        seconds: i64,
    ) -> Claims {
        Claims {
            iss: ISSUER.to_string(),
            sub: service_account_username(namespace, name),
            aud: if audiences.is_empty() {
                vec![ISSUER.to_string()]
            } else {
                audiences
            },
            exp: now + seconds,
            iat: now,
            nbf: now,
            kubernetes: KubernetesClaims {
                namespace: namespace.to_string(),
                serviceaccount: ObjectRef {
                    name: name.to_string(),
                    uid: uid.to_string(),
                },
            },
        }
    }
}

/// `system:serviceaccount:NS:NAME`, the user a ServiceAccount's token authenticates as.
pub fn service_account_username(namespace: &str, name: &str) -> String {
    format!("system:serviceaccount:{namespace}:{name}")
}

/// Signs and verifies tokens with the server's key.
pub struct TokenIssuer {
    key: hmac::Key,
}

impl std::fmt::Debug for TokenIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenIssuer")
    }
}

impl TokenIssuer {
    /// An issuer with `secret` as its key (tests; [`TokenIssuer::load_or_create`] otherwise).
    pub fn from_secret(secret: &[u8]) -> TokenIssuer {
        TokenIssuer {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
        }
    }

    /// The key at `path`, made (32 random bytes, mode 0600) on first start. Tokens survive
    /// restarts because the key does.
    pub fn load_or_create(path: &Path) -> Result<TokenIssuer, Error> {
        let err = |source| Error::Key {
            path: path.display().to_string(),
            source,
        };
        let secret = match std::fs::read(path) {
            Ok(s) => s,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                use rand::RngCore;
                use std::io::Write;
                use std::os::unix::fs::OpenOptionsExt;
                let mut secret = vec![0u8; 32];
                rand::rng().fill_bytes(&mut secret);
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir).map_err(err)?;
                }
                let mut f = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(path)
                    .map_err(err)?;
                f.write_all(&secret).map_err(err)?;
                f.sync_all().map_err(err)?;
                secret
            }
            Err(e) => return Err(err(e)),
        };
        if secret.len() < 32 {
            return Err(Error::ShortKey {
                path: path.display().to_string(),
            });
        }
        Ok(TokenIssuer::from_secret(&secret))
    }

    /// The signed token for `claims`.
    pub fn issue(&self, claims: &Claims) -> String {
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
        // Serializing plain strings and integers cannot fail.
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap_or_default());
        let signing_input = format!("{header}.{payload}");
        let tag = hmac::sign(&self.key, signing_input.as_bytes());
        format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
    }

    /// The claims of `token` if this server signed it, it is for the API server's audience
    /// and it is valid at `now`. Whether its ServiceAccount still exists is the caller's to
    /// check.
    pub fn verify(&self, token: &str, now: i64) -> Option<Claims> {
        let mut parts = token.split('.');
        let (header, payload, signature) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let signature = URL_SAFE_NO_PAD.decode(signature).ok()?;
        // ring compares in constant time.
        hmac::verify(
            &self.key,
            format!("{header}.{payload}").as_bytes(),
            &signature,
        )
        .ok()?;
        let header: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).ok()?).ok()?;
        if header.get("alg").and_then(|a| a.as_str()) != Some("HS256") {
            return None;
        }
        let claims: Claims = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
        let valid = claims.iss == ISSUER
            && claims.aud.iter().any(|a| a == ISSUER)
            && claims.nbf <= now + 60
            && now < claims.exp
            && claims.sub
                == service_account_username(
                    &claims.kubernetes.namespace,
                    &claims.kubernetes.serviceaccount.name,
                );
        valid.then_some(claims)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;

    #[test]
    fn tokens_verify_only_while_valid_and_untampered() {
        let issuer = TokenIssuer::from_secret(&[7u8; 32]);
        let claims = Claims::new("default", "viewer", "u1", vec![], 1_000, 600);
        let token = issuer.issue(&claims);
        assert_eq!(issuer.verify(&token, 1_000), Some(claims.clone()));
        assert_eq!(
            issuer.verify(&token, 1_599).map(|c| c.sub),
            Some(claims.sub)
        );
        assert!(issuer.verify(&token, 1_600).is_none(), "expired");
        let other = TokenIssuer::from_secret(&[8u8; 32]);
        assert!(
            other.verify(&token, 1_000).is_none(),
            "another server's key"
        );
        // A payload swapped for another account's keeps the old signature: refused.
        let forged = Claims::new("kube-system", "admin", "u2", vec![], 1_000, 600);
        let forged_payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged).unwrap());
        let mut parts: Vec<&str> = token.split('.').collect();
        parts[1] = &forged_payload;
        assert!(issuer.verify(&parts.join("."), 1_000).is_none());
        assert!(issuer.verify("not-a-jwt", 1_000).is_none());
        // Only for the API server's audience.
        let elsewhere = Claims::new("default", "viewer", "u1", vec!["vault".into()], 1_000, 600);
        assert!(issuer.verify(&issuer.issue(&elsewhere), 1_000).is_none());
    }

    #[test]
    fn the_key_is_made_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sa.key");
        let a = TokenIssuer::load_or_create(&path).unwrap();
        let token = a.issue(&Claims::new("default", "x", "u", vec![], 10, 600));
        let b = TokenIssuer::load_or_create(&path).unwrap();
        assert!(b.verify(&token, 10).is_some());
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
