//! Snapshots: every key of a store at one revision, in one file that any backend can be
//! restored from (so a snapshot of a redb cluster restored into etcd moves it there).
//!
//! ```text
//! header:  "wasmkube-snapshot\0" | format u32 LE (1) | revision u64 LE
//! record:  key_len u32 LE | key | value_len u32 LE | value          (in key order)
//! trailer: u32::MAX | record count u64 LE | SHA-256 of everything before the trailer's hash
//! ```
//!
//! A snapshot is read page by page, every page at the first page's revision
//! ([`Store::list_at`]), so it is consistent while the store keeps taking writes. Restoring
//! checks the whole file (its hash and its shape) before it writes anything, and writes only
//! into an empty store. Revisions are not carried over: a restored cluster starts its own
//! history, as the resourceVersions of its objects show.

use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use futures::stream::{BoxStream, StreamExt};
use sha2::{Digest, Sha256};

use crate::{Error, Store};

const MAGIC: &[u8; 18] = b"wasmkube-snapshot\0";
const FORMAT: u32 = 1;
const END: u32 = u32::MAX;
/// Keys read per page while saving.
const PAGE: usize = 500;

/// Why a snapshot could not be restored.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("not a wasmkube snapshot")]
    NotASnapshot,
    #[error("snapshot format {0} is not supported (this build reads format {FORMAT})")]
    Format(u32),
    #[error("the snapshot is truncated or damaged ({0})")]
    Damaged(&'static str),
    #[error("the target store is not empty (it holds {0}): restore into a new one")]
    NotEmpty(String),
    #[error("the store failed")]
    Store(#[from] Error),
}

/// The keys of a parsed snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// The revision the snapshot was read at.
    pub revision: u64,
    /// Every key with its value, in key order.
    pub entries: Vec<(String, Bytes)>,
}

impl Snapshot {
    /// The value of `key`, if the snapshot has it.
    pub fn get(&self, key: &str) -> Option<&Bytes> {
        self.entries
            .binary_search_by(|(k, _)| k.as_str().cmp(key))
            .ok()
            .map(|i| &self.entries[i].1)
    }
}

/// Streams a snapshot of every key of `store` (keys start with `/`), plus `extra` entries
/// for keys the store does not hold (a redb server adds its bootstrap data this way).
pub fn save(
    store: Arc<dyn Store>,
    extra: Vec<(String, Bytes)>,
) -> BoxStream<'static, Result<Bytes, Error>> {
    let stream = async_stream::try_stream! {
        let mut hasher = Sha256::new();
        let first = store.list("/", None, Some(PAGE)).await?;
        let revision = first.revision;
        let mut header = BytesMut::new();
        header.put_slice(MAGIC);
        header.put_u32_le(FORMAT);
        header.put_u64_le(revision);
        hasher.update(&header);
        yield header.freeze();

        let mut extra = extra;
        extra.sort_by(|a, b| a.0.cmp(&b.0));
        let mut extra = extra.into_iter().peekable();
        let mut count = 0u64;
        let mut page = first;
        loop {
            let mut chunk = BytesMut::new();
            for kv in &page.items {
                // Extra keys interleave in key order; one the store holds itself wins.
                while let Some((key, value)) = extra.next_if(|(k, _)| k.as_str() < kv.key.as_str()) {
                    put_record(&mut chunk, &key, &value)?;
                    count += 1;
                }
                if extra.peek().is_some_and(|(k, _)| *k == kv.key) {
                    extra.next();
                }
                put_record(&mut chunk, &kv.key, &kv.value)?;
                count += 1;
            }
            if !page.more {
                for (key, value) in extra.by_ref() {
                    put_record(&mut chunk, &key, &value)?;
                    count += 1;
                }
            }
            hasher.update(&chunk);
            yield chunk.freeze();
            if !page.more {
                break;
            }
            let after = page.items.last().map(|kv| kv.key.clone());
            page = store.list_at("/", after.as_deref(), Some(PAGE), revision).await?;
        }
        let mut trailer = BytesMut::new();
        trailer.put_u32_le(END);
        trailer.put_u64_le(count);
        hasher.update(&trailer);
        trailer.put_slice(&hasher.finalize());
        yield trailer.freeze();
    };
    stream.boxed()
}

fn put_record(out: &mut BytesMut, key: &str, value: &[u8]) -> Result<(), Error> {
    let too_large = |len: usize| {
        Error::backend(
            "write a snapshot record",
            std::io::Error::other(format!("a record of {len} bytes is too large")),
        )
    };
    let key_len = u32::try_from(key.len())
        .ok()
        .filter(|l| *l != END)
        .ok_or_else(|| too_large(key.len()))?;
    let value_len = u32::try_from(value.len()).map_err(|_| too_large(value.len()))?;
    out.put_u32_le(key_len);
    out.put_slice(key.as_bytes());
    out.put_u32_le(value_len);
    out.put_slice(value);
    Ok(())
}

/// Parses and checks a whole snapshot file.
pub fn parse(bytes: &[u8]) -> Result<Snapshot, SnapshotError> {
    if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != MAGIC {
        return Err(SnapshotError::NotASnapshot);
    }
    let mut reader = Reader {
        bytes,
        at: MAGIC.len(),
    };
    let format = reader.u32()?;
    if format != FORMAT {
        return Err(SnapshotError::Format(format));
    }
    let revision = reader.u64()?;
    let mut entries: Vec<(String, Bytes)> = Vec::new();
    loop {
        let key_len = reader.u32()?;
        if key_len == END {
            break;
        }
        let key = std::str::from_utf8(reader.take(key_len as usize)?)
            .map_err(|_| SnapshotError::Damaged("a key is not UTF-8"))?
            .to_owned();
        let value_len = reader.u32()?;
        let value = Bytes::copy_from_slice(reader.take(value_len as usize)?);
        if entries.last().is_some_and(|(last, _)| *last >= key) {
            return Err(SnapshotError::Damaged("keys out of order"));
        }
        entries.push((key, value));
    }
    let count = reader.u64()?;
    let hashed = reader.at;
    let hash = reader.take(32)?;
    if reader.at != bytes.len() {
        return Err(SnapshotError::Damaged("bytes after the end"));
    }
    if u64::try_from(entries.len()).ok() != Some(count) {
        return Err(SnapshotError::Damaged("record count"));
    }
    if Sha256::digest(&bytes[..hashed]).as_slice() != hash {
        return Err(SnapshotError::Damaged("checksum"));
    }
    Ok(Snapshot { revision, entries })
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], SnapshotError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|end| *end <= self.bytes.len())
            .ok_or(SnapshotError::Damaged("it ends early"))?;
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }

    fn u32(&mut self) -> Result<u32, SnapshotError> {
        let mut b = [0u8; 4];
        b.copy_from_slice(self.take(4)?);
        Ok(u32::from_le_bytes(b))
    }

    fn u64(&mut self) -> Result<u64, SnapshotError> {
        let mut b = [0u8; 8];
        b.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(b))
    }
}

/// Writes every entry of `snapshot` into `store`, which must hold no key yet. Returns how many
/// keys were written.
pub async fn restore(store: &Arc<dyn Store>, snapshot: &Snapshot) -> Result<usize, SnapshotError> {
    if let Some(kv) = store.list("/", None, Some(1)).await?.items.first() {
        return Err(SnapshotError::NotEmpty(kv.key.clone()));
    }
    // Many creates in flight: etcd and redb both batch concurrent writes.
    let results: Vec<Result<(), Error>> = futures::stream::iter(snapshot.entries.iter())
        .map(|(key, value)| {
            let store = Arc::clone(store);
            async move { store.create(key, value.clone()).await.map(|_| ()) }
        })
        .buffer_unordered(64)
        .collect()
        .await;
    for result in results {
        result?;
    }
    Ok(snapshot.entries.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemoryStore;

    async fn saved(store: &Arc<dyn Store>, extra: Vec<(String, Bytes)>) -> Vec<u8> {
        let mut out = Vec::new();
        let mut stream = save(Arc::clone(store), extra);
        while let Some(chunk) = stream.next().await {
            out.extend_from_slice(&chunk.expect("chunk"));
        }
        out
    }

    #[tokio::test]
    async fn round_trip_with_extra_keys_and_many_pages() -> Result<(), Box<dyn std::error::Error>> {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        for i in 0..1200 {
            store
                .create(
                    &format!("/registry/configmaps/default/c{i:04}"),
                    Bytes::from(format!("v{i}")),
                )
                .await?;
        }
        let bytes = saved(
            &store,
            vec![
                ("/bootstrap/wasmkube".into(), Bytes::from("secret")),
                (
                    "/registry/configmaps/default/c0001".into(),
                    Bytes::from("shadowed"),
                ),
            ],
        )
        .await;
        let snapshot = parse(&bytes)?;
        assert_eq!(snapshot.entries.len(), 1201);
        assert_eq!(snapshot.revision, 1200);
        assert_eq!(
            snapshot.get("/bootstrap/wasmkube"),
            Some(&Bytes::from("secret"))
        );
        assert_eq!(
            snapshot.get("/registry/configmaps/default/c0001"),
            Some(&Bytes::from("v1")),
            "the store's own value wins over an extra one"
        );

        let target: Arc<dyn Store> = Arc::new(MemoryStore::new());
        assert_eq!(restore(&target, &snapshot).await?, 1201);
        let copied = target.list("/", None, None).await?;
        assert_eq!(copied.items.len(), 1201);
        // A second restore into the now full store changes nothing.
        assert!(matches!(
            restore(&target, &snapshot).await,
            Err(SnapshotError::NotEmpty(_))
        ));
        Ok(())
    }

    #[tokio::test]
    async fn damaged_snapshots_are_refused() -> Result<(), Box<dyn std::error::Error>> {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        store.create("/registry/a", Bytes::from("1")).await?;
        let bytes = saved(&store, Vec::new()).await;
        assert!(parse(&bytes).is_ok());
        for cut in [0, 10, bytes.len() / 2, bytes.len() - 1] {
            assert!(parse(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut flipped = bytes.clone();
        let middle = flipped.len() / 2;
        flipped[middle] ^= 1;
        assert!(parse(&flipped).is_err());
        assert!(matches!(
            parse(b"something else entirely"),
            Err(SnapshotError::NotASnapshot)
        ));
        Ok(())
    }
}
