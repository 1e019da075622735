//! The node-local image store: Wasm modules and components by content digest, plus an
//! index of `name:tag` → digest.
//!
//! On disk, under `<data_dir>/images/`:
//!
//! ```text
//! blobs/sha256/<hex>                the module bytes (binary Wasm; .wat is compiled on import)
//! index.json                        {"version":1,"images":{"name:tag":{...}}}
//! index.lock                        empty; writers hold an exclusive flock on it
//! compiled/<engine-hash>/<hex>.cwasm  compiled artifacts (see the compile module)
//! ```
//!
//! Every write goes to a temporary file first and is renamed into place, so a crash never
//! leaves a torn blob or index behind.
//!
//! Several processes share one store: the node's runtime and `wasmkube image import/rm`,
//! which runs beside it. Writers serialize on an advisory lock (`flock`) of `index.lock`
//! and do their read-modify-write of `index.json` under it, so no update is lost. Readers
//! take no lock (a rename-replaced file is always whole): each lookup `stat`s `index.json`
//! and re-reads it only when its identity (device, inode, length, mtime) changed, so a
//! running node sees images imported or removed by another process at the cost of one
//! `stat` per lookup.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::TryLockError;
use std::io::{Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

/// The four bytes every binary Wasm module and component starts with.
pub const WASM_MAGIC: &[u8; 4] = b"\0asm";

/// Errors of the image store.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("image store i/o on {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{what} is not WebAssembly (no \\0asm magic, and not valid .wat text)")]
    NotWasm {
        what: String,
        #[source]
        source: Option<wat::Error>,
    },
    #[error("unsupported wasm binary version {version:#x} in {what}")]
    UnsupportedVersion { what: String, version: u32 },
    #[error("invalid image name {0:?}")]
    InvalidName(String),
    #[error("invalid digest {0:?}: expected sha256:<64 hex digits>")]
    InvalidDigest(String),
    #[error("image {0:?} not found")]
    NotFound(String),
    #[error("image index {path} is corrupt")]
    CorruptIndex {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("timed out after {waited:?} waiting for the image store lock {path}")]
    LockTimeout { path: PathBuf, waited: Duration },
}

/// How long a writer waits for another process's write to finish. Writes take milliseconds
/// (one blob and one small index, fsynced); this only bounds a wedged peer.
const LOCK_TIMEOUT: Duration = Duration::from_secs(30);

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> ImageError + '_ {
    move |source| ImageError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A content digest, always `sha256:<64 lowercase hex>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Digest(String);

impl Digest {
    /// The sha256 digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Digest {
        Digest(format!("sha256:{}", hex::encode(Sha256::digest(bytes))))
    }

    /// Parses `sha256:<hex>`.
    pub fn parse(s: &str) -> Result<Digest, ImageError> {
        let ok = s.strip_prefix("sha256:").is_some_and(|h| {
            h.len() == 64
                && h.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        });
        if ok {
            Ok(Digest(s.to_string()))
        } else {
            Err(ImageError::InvalidDigest(s.to_string()))
        }
    }

    /// The hex part, used in file names.
    pub fn hex(&self) -> &str {
        &self.0["sha256:".len()..]
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for Digest {
    type Error = ImageError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Digest::parse(&s)
    }
}

impl From<Digest> for String {
    fn from(d: Digest) -> String {
        d.0
    }
}

/// What kind of Wasm binary a blob is, from its 8-byte header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WasmKind {
    /// A core module (`\0asm` version 1).
    Module,
    /// A component (`\0asm` version 0x0d, layer 1).
    Component,
}

/// Classifies `bytes` by their header without parsing further.
pub fn wasm_kind(bytes: &[u8], what: &str) -> Result<WasmKind, ImageError> {
    if bytes.len() < 8 || &bytes[..4] != WASM_MAGIC {
        return Err(ImageError::NotWasm {
            what: what.to_string(),
            source: None,
        });
    }
    match [bytes[4], bytes[5], bytes[6], bytes[7]] {
        [1, 0, 0, 0] => Ok(WasmKind::Module),
        [0x0d, 0, 1, 0] => Ok(WasmKind::Component),
        [a, b, c, d] => Err(ImageError::UnsupportedVersion {
            what: what.to_string(),
            version: u32::from_le_bytes([a, b, c, d]),
        }),
    }
}

/// One tagged image in the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageInfo {
    /// `name:tag` (or `name@sha256:...` when pulled by digest).
    pub name: String,
    pub digest: Digest,
    pub size: u64,
    /// Seconds since the Unix epoch when the tag was (last) set.
    pub created: u64,
    /// Where it came from: `import`, or the registry reference it was pulled from.
    pub source: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct IndexFile {
    /// Stored-format version, bumped on incompatible changes.
    version: u32,
    images: BTreeMap<String, ImageInfo>,
}

const INDEX_VERSION: u32 = 1;

/// Normalizes a reference for the index: a bare `name` means `name:latest`.
pub fn normalize_name(reference: &str) -> Result<String, ImageError> {
    let r = reference.trim();
    if r.is_empty() || r.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(ImageError::InvalidName(reference.to_string()));
    }
    if r.contains('@') {
        return Ok(r.to_string());
    }
    let last = r.rsplit('/').next().unwrap_or(r);
    if last.is_empty() {
        return Err(ImageError::InvalidName(reference.to_string()));
    }
    if last.contains(':') {
        Ok(r.to_string())
    } else {
        Ok(format!("{r}:latest"))
    }
}

/// Identity of `index.json` as last read. Writers replace the file by rename, which gives it a
/// new inode; length and the nanosecond mtime catch an inode number being reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    len: u64,
    mtime_ns: i128,
}

impl Stamp {
    fn of(m: &std::fs::Metadata) -> Stamp {
        Stamp {
            dev: m.dev(),
            ino: m.ino(),
            len: m.len(),
            mtime_ns: i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
        }
    }
}

/// The in-memory copy of `index.json` and the identity of the file it was read from
/// (`None`: there was no file).
#[derive(Debug)]
struct Cached {
    index: IndexFile,
    stamp: Option<Stamp>,
}

/// The node-local image store. Cheap to share by reference; all methods are thread-safe, and
/// several processes may open the same root (see the module docs).
#[derive(Debug)]
pub struct ImageStore {
    root: PathBuf,
    /// The index as last read or written.
    cached: Mutex<Cached>,
}

/// An exclusive `flock` on `index.lock`, released when the file is closed (dropped).
struct WriteLock {
    _file: std::fs::File,
}

impl ImageStore {
    /// Opens (creating if needed) the store rooted at `root`: for a node,
    /// [`image_store_dir`](crate::image_store_dir) of its data directory.
    pub fn open(root: impl Into<PathBuf>) -> Result<ImageStore, ImageError> {
        let root = root.into();
        let blobs = root.join("blobs").join("sha256");
        std::fs::create_dir_all(&blobs).map_err(io_err(&blobs))?;
        let (index, stamp) = read_index(&root.join("index.json"))?;
        Ok(ImageStore {
            root,
            cached: Mutex::new(Cached { index, stamp }),
        })
    }

    /// The store's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the blob of `digest` lives (whether or not it exists).
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root.join("blobs").join("sha256").join(digest.hex())
    }

    /// Whether the blob of `digest` is present.
    pub fn has_blob(&self, digest: &Digest) -> bool {
        self.blob_path(digest).is_file()
    }

    /// Imports a `.wasm` or `.wat` file under `name` (`name` alone means `name:latest`).
    pub fn import(&self, file: impl AsRef<Path>, name: &str) -> Result<Digest, ImageError> {
        let file = file.as_ref();
        let bytes = std::fs::read(file).map_err(io_err(file))?;
        self.import_bytes(&bytes, name, &file.display().to_string())
    }

    /// Imports Wasm binary or text (`what` names it in errors).
    pub fn import_bytes(&self, bytes: &[u8], name: &str, what: &str) -> Result<Digest, ImageError> {
        let binary;
        let bytes = if bytes.starts_with(WASM_MAGIC) {
            bytes
        } else {
            // Not binary: accept WebAssembly text, which is how small test and example
            // modules are written.
            binary = wat::parse_bytes(bytes)
                .map_err(|e| ImageError::NotWasm {
                    what: what.to_string(),
                    source: Some(e),
                })?
                .into_owned();
            &binary
        };
        wasm_kind(bytes, what)?;
        self.insert(bytes, name, "import")
    }

    /// Stores `bytes` (already checked to be Wasm) as a blob and tags it `name`.
    pub(crate) fn insert(
        &self,
        bytes: &[u8],
        name: &str,
        source: &str,
    ) -> Result<Digest, ImageError> {
        let name = normalize_name(name)?;
        let digest = Digest::of(bytes);
        let info = ImageInfo {
            name: name.clone(),
            digest: digest.clone(),
            size: bytes.len() as u64,
            created: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
            source: source.to_string(),
        };
        let path = self.blob_path(&digest);
        self.write(|index| {
            // Under the lock: a concurrent `remove` of the last tag of this digest deletes the
            // blob under the same lock, so it is either still there or written again here.
            if !path.is_file() {
                write_atomic(&path, bytes)?;
            }
            index.images.insert(name, info);
            Ok(((), None))
        })?;
        Ok(digest)
    }

    /// Every tagged image, sorted by name.
    pub fn list(&self) -> Vec<ImageInfo> {
        self.current().index.images.values().cloned().collect()
    }

    /// Looks up `reference`: `name:tag`, bare `name` (as `name:latest`), `name@sha256:...`
    /// or a bare `sha256:...` digest whose blob is present.
    pub fn resolve(&self, reference: &str) -> Option<ImageInfo> {
        let reference = reference.trim();
        if let Ok(digest) = Digest::parse(reference) {
            return self.by_digest(&digest, reference);
        }
        let name = normalize_name(reference).ok()?;
        if let Some(info) = self.current().index.images.get(&name) {
            return Some(info.clone());
        }
        // `name@sha256:...`: content-addressed, so any blob with that digest will do.
        let (_, digest) = name.rsplit_once('@')?;
        self.by_digest(&Digest::parse(digest).ok()?, &name)
    }

    fn by_digest(&self, digest: &Digest, name: &str) -> Option<ImageInfo> {
        let cached = self.current();
        if let Some(info) = cached.index.images.values().find(|i| &i.digest == digest) {
            return Some(info.clone());
        }
        drop(cached);
        let size = std::fs::metadata(self.blob_path(digest)).ok()?.len();
        Some(ImageInfo {
            name: name.to_string(),
            digest: digest.clone(),
            size,
            created: 0,
            source: "blob".into(),
        })
    }

    /// Removes the tag `name`; the blob and its compiled artifacts go too once no tag refers
    /// to them. Returns what was removed.
    pub fn remove(&self, name: &str) -> Result<ImageInfo, ImageError> {
        let key = normalize_name(name)?;
        self.write(|index| {
            let info = index
                .images
                .remove(&key)
                .ok_or_else(|| ImageError::NotFound(name.to_string()))?;
            let still_used = index.images.values().any(|i| i.digest == info.digest);
            let unused = (!still_used).then(|| info.digest.clone());
            Ok((info, unused))
        })
    }

    /// Reads the blob of `digest`.
    pub fn read_blob(&self, digest: &Digest) -> Result<Vec<u8>, ImageError> {
        let path = self.blob_path(digest);
        std::fs::read(&path).map_err(io_err(&path))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Cached> {
        // A panic while holding the lock can only come from a bug in this file; the cache
        // is replaced whole after a successful write, so it stays consistent: recover.
        self.cached.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The cached index, re-read first if another process (or store) replaced the file.
    fn current(&self) -> std::sync::MutexGuard<'_, Cached> {
        let mut cached = self.lock();
        let path = self.index_path();
        let stamp = std::fs::metadata(&path).ok().map(|m| Stamp::of(&m));
        if stamp != cached.stamp {
            match read_index(&path) {
                Ok((index, stamp)) => *cached = Cached { index, stamp },
                Err(e) => {
                    // Keep serving the last good index rather than losing every image; the
                    // next write (which re-reads strictly) reports the problem. Remember the
                    // stamp so the warning is not repeated on every lookup.
                    tracing::warn!(error = %error_chain(&e), "ignoring an unreadable image index");
                    cached.stamp = stamp;
                }
            }
        }
        cached
    }

    /// Runs a read-modify-write of the index under the cross-process file lock: `f` sees the
    /// index as on disk now, and what it leaves is persisted. A blob `f` returns as no longer
    /// tagged is deleted under the same lock. The cache mutex is taken only to install the
    /// result, so lookups never wait for another process's write or for a blob's fsync.
    fn write<R>(
        &self,
        f: impl FnOnce(&mut IndexFile) -> Result<(R, Option<Digest>), ImageError>,
    ) -> Result<R, ImageError> {
        // Threads of this process take the file lock through their own open file each, so
        // it serializes them as it does processes.
        let _file_lock = self.file_lock()?;
        let path = self.index_path();
        // Strict here: a corrupt index must be reported, not overwritten with a partial one.
        let (mut index, _) = read_index(&path)?;
        let (result, unused) = f(&mut index)?;
        self.persist(&index)?;
        let stamp = std::fs::metadata(&path).ok().map(|m| Stamp::of(&m));
        if let Some(digest) = unused {
            self.remove_blob(&digest);
        }
        // Still under the file lock, so no newer write can be overtaken.
        *self.lock() = Cached { index, stamp };
        Ok(result)
    }

    /// Deletes a blob no tag refers to, with its compiled artifacts. Best effort: a running
    /// container keeps its open mapping; a leftover file only costs disk space.
    fn remove_blob(&self, digest: &Digest) {
        let _ = std::fs::remove_file(self.blob_path(digest));
        if let Ok(dirs) = std::fs::read_dir(self.root.join("compiled")) {
            for dir in dirs.flatten() {
                let _ = std::fs::remove_file(dir.path().join(format!("{}.cwasm", digest.hex())));
            }
        }
    }

    /// Takes the exclusive advisory lock every writer of this root holds, waiting at most
    /// [`LOCK_TIMEOUT`]. `flock` locks belong to the open file, so two stores in one process
    /// exclude each other as two processes do.
    fn file_lock(&self) -> Result<WriteLock, ImageError> {
        let path = self.root.join("index.lock");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io_err(&path))?;
        let start = Instant::now();
        let mut pause = Duration::from_millis(1);
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(WriteLock { _file: file }),
                Err(TryLockError::WouldBlock) if start.elapsed() < LOCK_TIMEOUT => {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(50));
                }
                Err(TryLockError::WouldBlock) => {
                    return Err(ImageError::LockTimeout {
                        path,
                        waited: start.elapsed(),
                    });
                }
                Err(TryLockError::Error(e)) => return Err(io_err(&path)(e)),
            }
        }
    }

    fn index_path(&self) -> PathBuf {
        self.root.join("index.json")
    }

    fn persist(&self, index: &IndexFile) -> Result<(), ImageError> {
        let path = self.index_path();
        let bytes = serde_json::to_vec_pretty(&IndexFile {
            version: INDEX_VERSION,
            images: index.images.clone(),
        })
        .map_err(|source| ImageError::CorruptIndex {
            path: path.clone(),
            source,
        })?;
        write_atomic(&path, &bytes)
    }
}

/// Reads `index.json` and the identity of the file read (from the open file, so the two
/// always match even when a writer replaces it meanwhile). A missing file is an empty index.
fn read_index(path: &Path) -> Result<(IndexFile, Option<Stamp>), ImageError> {
    let mut file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok((
                IndexFile {
                    version: INDEX_VERSION,
                    ..Default::default()
                },
                None,
            ));
        }
        Err(e) => return Err(io_err(path)(e)),
    };
    let meta = file.metadata().map_err(io_err(path))?;
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.read_to_end(&mut bytes).map_err(io_err(path))?;
    let index =
        serde_json::from_slice::<IndexFile>(&bytes).map_err(|source| ImageError::CorruptIndex {
            path: path.to_path_buf(),
            source,
        })?;
    Ok((index, Some(Stamp::of(&meta))))
}

/// `error: cause: cause` on one line.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(c) = source {
        s.push_str(": ");
        s.push_str(&c.to_string());
        source = c.source();
    }
    s
}

/// Writes `bytes` to `path` through a temporary file in the same directory, fsynced and
/// renamed, so readers see the old content or the new, never a torn file.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ImageError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    let tmp = dir.join(format!(
        ".{}.{}.{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("blob"),
        std::process::id(),
        TMP_COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(io_err(path))
}

static TMP_COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;

    #[test]
    fn names_normalize() {
        assert_eq!(normalize_name("hello").unwrap(), "hello:latest");
        assert_eq!(normalize_name("hello:v1").unwrap(), "hello:v1");
        assert_eq!(
            normalize_name("127.0.0.1:5000/hello").unwrap(),
            "127.0.0.1:5000/hello:latest"
        );
        assert_eq!(
            normalize_name("r.io/a/b@sha256:00").unwrap(),
            "r.io/a/b@sha256:00"
        );
        assert!(normalize_name("").is_err());
        assert!(normalize_name("a b").is_err());
        assert!(normalize_name("reg/").is_err());
    }

    #[test]
    fn digests_parse() {
        let d = Digest::of(b"x");
        assert_eq!(Digest::parse(d.as_str()).unwrap(), d);
        assert!(Digest::parse("sha256:XYZ").is_err());
        assert!(Digest::parse("md5:00").is_err());
    }

    #[test]
    fn kinds() {
        assert_eq!(
            wasm_kind(b"\0asm\x01\0\0\0", "m").unwrap(),
            WasmKind::Module
        );
        assert_eq!(
            wasm_kind(b"\0asm\x0d\0\x01\0", "c").unwrap(),
            WasmKind::Component
        );
        assert!(wasm_kind(b"\0asm", "short").is_err());
        assert!(wasm_kind(b"\x7fELF\x02\x01\x01\0", "elf").is_err());
    }
}
