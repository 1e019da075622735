//! The cluster's bootstrap secrets, shared by every server over one datastore (k3s'
//! "bootstrap data").
//!
//! A server over etcd is one of several that must present one cluster: the same CA (so a
//! kubeconfig or join token works against any of them), the same ServiceAccount signing key
//! (so a token issued by one is accepted by all) and the same admin token. The first server
//! to start writes those files into the datastore under [`BOOTSTRAP_KEY`], encrypted with a
//! key derived from the cluster token; every later server reads them back into its own data
//! directory before it loads its TLS and token files. Each server still issues its own
//! serving certificate (from the shared CA) for its own addresses.
//!
//! Encryption: PBKDF2-HMAC-SHA256 over the token with a random salt gives an AES-256-GCM key;
//! a wrong token fails authentication instead of yielding garbage.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine as _;
use bytes::Bytes;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use serde_json::{Value, json};
use wasmkube_store::Store;

/// Where the encrypted bootstrap data lives: outside `/registry/`, so no API lists it.
pub const BOOTSTRAP_KEY: &str = "/bootstrap/wasmkube";

/// The data-directory files every server of a cluster must share, relative to the data dir.
pub const SHARED_FILES: [&str; 4] = [
    "tls/server-ca.crt",
    "tls/server-ca.key",
    "tls/service-account.key",
    "token",
];

const PBKDF2_ROUNDS: u32 = 100_000;
const FORMAT: u64 = 1;

#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    #[error("reading or writing {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the datastore could not be read or written")]
    Store(#[from] wasmkube_store::Error),
    #[error(
        "the cluster's bootstrap data in the datastore could not be decrypted: this server's --token is not the cluster's token"
    )]
    WrongToken,
    #[error("the cluster's bootstrap data in the datastore is damaged: {0}")]
    Damaged(&'static str),
    #[error("no secure random numbers")]
    Random,
    #[error("creating this server's bootstrap files")]
    Local(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// What [`sync`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bootstrap {
    /// This server was first: its files are now the cluster's.
    Published,
    /// The cluster existed: this server's files were replaced by the cluster's.
    Joined,
}

/// Makes this server's shared files the cluster's ones.
///
/// `make_local` creates any missing shared file in `data_dir` (a new CA, a signing key); it is
/// called only when the datastore has no bootstrap data yet. Two servers starting at once
/// cannot both publish: the write is a create, and the loser joins the winner.
pub async fn sync(
    store: &Arc<dyn Store>,
    data_dir: &Path,
    token: &str,
    make_local: impl FnOnce() -> Result<(), Box<dyn std::error::Error + Send + Sync>>,
) -> Result<Bootstrap, BootstrapError> {
    if let Some(kv) = store.get(BOOTSTRAP_KEY).await? {
        write_files(data_dir, &decrypt(&kv.value, token)?)?;
        return Ok(Bootstrap::Joined);
    }
    make_local().map_err(BootstrapError::Local)?;
    let files = read_files(data_dir)?;
    match store
        .create(BOOTSTRAP_KEY, Bytes::from(encrypt(&files, token)?))
        .await
    {
        Ok(_) => Ok(Bootstrap::Published),
        Err(wasmkube_store::Error::AlreadyExists { .. }) => {
            let kv = store
                .get(BOOTSTRAP_KEY)
                .await?
                .ok_or(BootstrapError::Damaged("it vanished while being read"))?;
            write_files(data_dir, &decrypt(&kv.value, token)?)?;
            Ok(Bootstrap::Joined)
        }
        Err(other) => Err(other.into()),
    }
}

/// This server's shared files, sealed as the datastore keeps them: what a snapshot of a redb
/// server carries so that a restore brings back the same CA and tokens.
pub fn seal(data_dir: &Path, token: &str) -> Result<Bytes, BootstrapError> {
    Ok(Bytes::from(encrypt(&read_files(data_dir)?, token)?))
}

/// Writes sealed bootstrap data (from a datastore or a snapshot) into `data_dir`.
pub fn unseal_into(data_dir: &Path, sealed: &[u8], token: &str) -> Result<(), BootstrapError> {
    write_files(data_dir, &decrypt(sealed, token)?)
}

fn read_files(dir: &Path) -> Result<BTreeMap<String, Vec<u8>>, BootstrapError> {
    SHARED_FILES
        .iter()
        .map(|name| {
            let path = dir.join(name);
            std::fs::read(&path)
                .map(|bytes| ((*name).to_string(), bytes))
                .map_err(|source| BootstrapError::Io { path, source })
        })
        .collect()
}

fn write_files(dir: &Path, files: &BTreeMap<String, Vec<u8>>) -> Result<(), BootstrapError> {
    for name in SHARED_FILES {
        let Some(bytes) = files.get(name) else {
            return Err(BootstrapError::Damaged("a shared file is missing"));
        };
        let path = dir.join(name);
        crate::tls::write_private_file(&path, bytes)
            .map_err(|source| BootstrapError::Io { path, source })?;
    }
    // The serving certificate was issued by whatever CA was here before; have it re-issued.
    let _ = std::fs::remove_file(dir.join("tls/serving-kube-apiserver.names"));
    Ok(())
}

fn key_for(token: &str, salt: &[u8]) -> Result<LessSafeKey, BootstrapError> {
    let mut key = [0u8; 32];
    let rounds = std::num::NonZeroU32::new(PBKDF2_ROUNDS).ok_or(BootstrapError::Random)?;
    ring::pbkdf2::derive(
        ring::pbkdf2::PBKDF2_HMAC_SHA256,
        rounds,
        salt,
        token.as_bytes(),
        &mut key,
    );
    let unbound = UnboundKey::new(&AES_256_GCM, &key).map_err(|_| BootstrapError::Random)?;
    Ok(LessSafeKey::new(unbound))
}

fn encrypt(files: &BTreeMap<String, Vec<u8>>, token: &str) -> Result<Vec<u8>, BootstrapError> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let plain: BTreeMap<&str, String> = files
        .iter()
        .map(|(name, bytes)| (name.as_str(), b64.encode(bytes)))
        .collect();
    let mut data = serde_json::to_vec(&plain).map_err(|_| BootstrapError::Damaged("encoding"))?;
    let rng = SystemRandom::new();
    let mut salt = [0u8; 16];
    let mut nonce = [0u8; 12];
    rng.fill(&mut salt).map_err(|_| BootstrapError::Random)?;
    rng.fill(&mut nonce).map_err(|_| BootstrapError::Random)?;
    key_for(token, &salt)?
        .seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(BOOTSTRAP_KEY),
            &mut data,
        )
        .map_err(|_| BootstrapError::Random)?;
    let envelope = json!({
        "format": FORMAT,
        "salt": b64.encode(salt),
        "nonce": b64.encode(nonce),
        "data": b64.encode(&data),
    });
    Ok(envelope.to_string().into_bytes())
}

fn decrypt(stored: &[u8], token: &str) -> Result<BTreeMap<String, Vec<u8>>, BootstrapError> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let envelope: Value =
        serde_json::from_slice(stored).map_err(|_| BootstrapError::Damaged("not JSON"))?;
    if envelope.get("format").and_then(Value::as_u64) != Some(FORMAT) {
        return Err(BootstrapError::Damaged("unknown format"));
    }
    let field = |name: &'static str| {
        envelope
            .get(name)
            .and_then(Value::as_str)
            .and_then(|s| b64.decode(s).ok())
            .ok_or(BootstrapError::Damaged(name))
    };
    let salt = field("salt")?;
    let nonce: [u8; 12] = field("nonce")?
        .try_into()
        .map_err(|_| BootstrapError::Damaged("nonce"))?;
    let mut data = field("data")?;
    let plain = key_for(token, &salt)?
        .open_in_place(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(BOOTSTRAP_KEY),
            &mut data,
        )
        .map_err(|_| BootstrapError::WrongToken)?;
    let files: BTreeMap<String, String> =
        serde_json::from_slice(plain).map_err(|_| BootstrapError::Damaged("contents"))?;
    files
        .into_iter()
        .map(|(name, text)| {
            b64.decode(text)
                .map(|bytes| (name, bytes))
                .map_err(|_| BootstrapError::Damaged("a file's encoding"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmkube_store::MemoryStore;

    fn files(dir: &Path, marker: &str) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        for name in SHARED_FILES {
            crate::tls::write_private_file(&dir.join(name), format!("{marker}:{name}").as_bytes())?;
        }
        Ok(())
    }

    #[tokio::test]
    async fn first_server_publishes_later_ones_join_and_a_wrong_token_is_refused()
    -> Result<(), Box<dyn std::error::Error>> {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let (one, two, three) = (
            tempfile::tempdir()?,
            tempfile::tempdir()?,
            tempfile::tempdir()?,
        );
        let token = "0123456789abcdef-cluster";
        let first = sync(&store, one.path(), token, || files(one.path(), "one")).await?;
        assert_eq!(first, Bootstrap::Published);
        let stored = store.get(BOOTSTRAP_KEY).await?.ok_or("nothing stored")?;
        assert!(
            !String::from_utf8_lossy(&stored.value).contains("one:tls"),
            "stored encrypted"
        );

        let second = sync(&store, two.path(), token, || files(two.path(), "two")).await?;
        assert_eq!(second, Bootstrap::Joined);
        for name in SHARED_FILES {
            assert_eq!(
                std::fs::read(two.path().join(name))?,
                format!("one:{name}").into_bytes()
            );
        }

        let wrong = sync(&store, three.path(), "another-token-entirely", || {
            files(three.path(), "three")
        })
        .await;
        assert!(
            matches!(wrong, Err(BootstrapError::WrongToken)),
            "{wrong:?}"
        );
        Ok(())
    }
}
