//! The compiled-module cache.
//!
//! Compiling a module with Cranelift takes milliseconds to seconds; instantiating a prepared
//! one takes microseconds. So compiled code is kept at two levels, both keyed by the image
//! digest (content-addressed, so an entry can never be stale):
//!
//! - on disk: `images/compiled/<engine-hash>/<hex>.cwasm`, the output of
//!   `Module::serialize`/`Component::serialize`; the engine hash (wasmtime version, target and
//!   engine settings) keeps incompatible artifacts apart, so a node restart or an upgrade
//!   never loads code compiled for another configuration;
//! - in memory: the linked `InstancePre`/`CommandPre`/`ProxyPre`, so the Nth container or
//!   request of an image skips type-checking and import resolution too.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::OnceCell;
use wasmtime::component::Component;
use wasmtime::{Engine, InstancePre, Linker, Module};
use wasmtime_wasi::p2::bindings::CommandPre;
use wasmtime_wasi_http::p2::bindings::ProxyPre;

use crate::guest::{P1Host, P2Host};
use crate::images::{Digest, WasmKind, wasm_kind};

/// Errors preparing an image for instantiation.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CompileError {
    #[error("reading {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the image is not a wasm module or component")]
    NotWasm(#[source] crate::images::ImageError),
    #[error("compiling the module")]
    Compile(#[source] wasmtime::Error),
    #[error("linking the module: {0}")]
    Link(String),
    #[error("component exports neither wasi:cli/run nor wasi:http/incoming-handler")]
    NoEntryPoint,
    #[error("the compile task failed")]
    Join(#[source] tokio::task::JoinError),
}

/// A core module linked against WASI preview1.
pub(crate) struct CorePre {
    pub(crate) pre: InstancePre<P1Host>,
    /// Whether it exports `_start: func()` (a command, or a WAGI handler).
    pub(crate) has_start: bool,
}

/// An image ready to instantiate.
pub(crate) enum Prepared {
    Core(CorePre),
    Component {
        /// Present if it exports `wasi:cli/run`.
        command: Option<CommandPre<P2Host>>,
        /// Present if it exports `wasi:http/incoming-handler`.
        proxy: Option<ProxyPre<P2Host>>,
    },
}

/// Counters of the cache, for tests and metrics.
#[derive(Debug, Default)]
pub(crate) struct CacheCounters {
    pub(crate) compilations: AtomicU64,
    pub(crate) disk_hits: AtomicU64,
    pub(crate) memory_hits: AtomicU64,
}

pub(crate) struct CompiledCache {
    engine: Engine,
    dir: PathBuf,
    p1: Linker<P1Host>,
    p2: wasmtime::component::Linker<P2Host>,
    /// One cell per digest: concurrent first starts of an image compile it once.
    memory: Mutex<HashMap<Digest, Arc<OnceCell<Arc<Prepared>>>>>,
    pub(crate) counters: CacheCounters,
}

/// A stable name for the engine's compatibility hash.
fn engine_hash(engine: &Engine) -> String {
    // FNV-1a over whatever the engine feeds: deterministic across processes, unlike
    // std's RandomState, so a restarted node finds its artifacts.
    struct Fnv(u64);
    impl Hasher for Fnv {
        fn finish(&self) -> u64 {
            self.0
        }
        fn write(&mut self, bytes: &[u8]) {
            for b in bytes {
                self.0 ^= u64::from(*b);
                self.0 = self.0.wrapping_mul(0x100_0000_01b3);
            }
        }
    }
    let mut h = Fnv(0xcbf2_9ce4_8422_2325);
    engine.precompile_compatibility_hash().hash(&mut h);
    format!("{:016x}", h.finish())
}

impl CompiledCache {
    pub(crate) fn new(engine: &Engine, images_root: &Path) -> Result<CompiledCache, crate::Error> {
        let dir = images_root.join("compiled").join(engine_hash(engine));
        std::fs::create_dir_all(&dir).map_err(|source| crate::Error::Cache {
            path: dir.clone(),
            source,
        })?;
        let mut p1 = Linker::new(engine);
        wasmtime_wasi::p1::add_to_linker_async(&mut p1, |h: &mut P1Host| &mut h.wasi)
            .map_err(crate::Error::Engine)?;
        let mut p2 = wasmtime::component::Linker::new(engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut p2).map_err(crate::Error::Engine)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut p2)
            .map_err(crate::Error::Engine)?;
        Ok(CompiledCache {
            engine: engine.clone(),
            dir,
            p1,
            p2,
            memory: Mutex::new(HashMap::new()),
            counters: CacheCounters::default(),
        })
    }

    /// The prepared form of the image `digest` whose bytes are at `blob`.
    pub(crate) async fn prepare(
        self: &Arc<Self>,
        digest: &Digest,
        blob: &Path,
    ) -> Result<Arc<Prepared>, CompileError> {
        let cell = self
            .memory
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(digest.clone())
            .or_insert_with(|| Arc::new(OnceCell::new()))
            .clone();
        if let Some(p) = cell.get() {
            self.counters.memory_hits.fetch_add(1, Ordering::Relaxed);
            return Ok(p.clone());
        }
        cell.get_or_try_init(|| {
            let this = self.clone();
            let (digest, blob) = (digest.clone(), blob.to_path_buf());
            async move {
                // Compiling and deserializing are CPU/IO heavy: keep them off the tokio
                // workers that serve requests.
                tokio::task::spawn_blocking(move || this.load(&digest, &blob))
                    .await
                    .map_err(CompileError::Join)?
                    .map(Arc::new)
            }
        })
        .await
        .cloned()
    }

    fn load(&self, digest: &Digest, blob: &Path) -> Result<Prepared, CompileError> {
        let bytes = std::fs::read(blob).map_err(|source| CompileError::Read {
            path: blob.to_path_buf(),
            source,
        })?;
        let kind = wasm_kind(&bytes, digest.as_str()).map_err(CompileError::NotWasm)?;
        let cached = self.dir.join(format!("{}.cwasm", digest.hex()));
        match kind {
            WasmKind::Module => {
                let module = match self.load_cached(&cached, deserialize_module) {
                    Some(m) => m,
                    None => {
                        let m = Module::from_binary(&self.engine, &bytes)
                            .map_err(CompileError::Compile)?;
                        self.counters.compilations.fetch_add(1, Ordering::Relaxed);
                        self.store_cached(&cached, m.serialize());
                        m
                    }
                };
                let has_start = module
                    .get_export("_start")
                    .and_then(|e| e.func().cloned())
                    .is_some_and(|f| f.params().len() == 0 && f.results().len() == 0);
                let pre = self
                    .p1
                    .instantiate_pre(&module)
                    .map_err(|e| CompileError::Link(format!("{e:#}")))?;
                Ok(Prepared::Core(CorePre { pre, has_start }))
            }
            WasmKind::Component => {
                let component = match self.load_cached(&cached, deserialize_component) {
                    Some(c) => c,
                    None => {
                        let c = Component::from_binary(&self.engine, &bytes)
                            .map_err(CompileError::Compile)?;
                        self.counters.compilations.fetch_add(1, Ordering::Relaxed);
                        self.store_cached(&cached, c.serialize());
                        c
                    }
                };
                let pre = self
                    .p2
                    .instantiate_pre(&component)
                    .map_err(|e| CompileError::Link(format!("{e:#}")))?;
                let command = CommandPre::new(pre.clone()).ok();
                let proxy = ProxyPre::new(pre).ok();
                if command.is_none() && proxy.is_none() {
                    return Err(CompileError::NoEntryPoint);
                }
                Ok(Prepared::Component { command, proxy })
            }
        }
    }

    fn load_cached<A>(
        &self,
        path: &Path,
        load: impl FnOnce(&Engine, &Path) -> wasmtime::Result<A>,
    ) -> Option<A> {
        if !path.is_file() {
            return None;
        }
        match load(&self.engine, path) {
            Ok(a) => {
                self.counters.disk_hits.fetch_add(1, Ordering::Relaxed);
                Some(a)
            }
            Err(e) => {
                // Corrupt or foreign: recompile and overwrite.
                tracing::warn!(path = %path.display(), error = %format!("{e:#}"), "ignoring unusable compiled module");
                None
            }
        }
    }

    fn store_cached(&self, path: &Path, serialized: wasmtime::Result<Vec<u8>>) {
        // Failing to cache only costs a recompile after restart.
        match serialized {
            Ok(bytes) => {
                if let Err(e) = crate::images::write_atomic(path, &bytes) {
                    tracing::warn!(error = %e, "caching compiled module");
                }
            }
            Err(e) => tracing::warn!(error = %format!("{e:#}"), "serializing compiled module"),
        }
    }
}

// SAFETY (both functions): `deserialize_file` trusts the file to be wasmtime's own output.
// Only this cache writes these files, atomically (temporary file + rename), under the node's
// data dir, in a directory named by the engine's compatibility hash; wasmtime also checks the
// header against the engine and refuses a mismatch, which `load_cached` turns into a recompile.
#[allow(unsafe_code)]
fn deserialize_module(engine: &Engine, path: &Path) -> wasmtime::Result<Module> {
    unsafe { Module::deserialize_file(engine, path) }
}

#[allow(unsafe_code)]
fn deserialize_component(engine: &Engine, path: &Path) -> wasmtime::Result<Component> {
    unsafe { Component::deserialize_file(engine, path) }
}
