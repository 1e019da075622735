//! [`WasmRuntime`]: the kubelet's `Runtime` for WebAssembly.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use tokio_util::task::TaskTracker;
use wasmkube_kubelet::runtime::{
    Container, ContainerConfig, PodSandbox, PullPolicy, PullProgress, PulledImage, RegistryAuth,
    Runtime, RuntimeError,
};
use wasmtime::Engine;

use crate::compile::{CompiledCache, Prepared};
use crate::config::WasmRuntimeConfig;
use crate::container::{Control, GuestSpec};
use crate::engine::{EpochTicker, build_engine};
use crate::exec::ExecContext;
use crate::guest::{CpuBudget, OutboundPolicy, UsageCounters};
use crate::http::HttpShared;
use crate::images::{Digest, ImageInfo, ImageStore};
use crate::oci::{Reference, RegistryClient, credentials_for};

/// The RuntimeClass handler name this backend serves.
pub const HANDLER: &str = "wasmtime";

/// The wasmtime release the workspace pins (`=48.0.8` in the root Cargo.toml), reported as
/// the node's container runtime version; wasmtime exports no version constant of its own.
const WASMTIME_VERSION: &str = "48.0.8";

/// How long a negative `recognizes` answer for a remote reference is remembered.
const NEGATIVE_RECOGNITION_TTL: Duration = Duration::from_secs(60);

/// A node's WebAssembly runtime. Cloning is cheap and shares everything.
#[derive(Clone)]
pub struct WasmRuntime {
    inner: Arc<Inner>,
}

struct Inner {
    config: WasmRuntimeConfig,
    engine: Engine,
    images: ImageStore,
    cache: Arc<CompiledCache>,
    registry: RegistryClient,
    /// `recognizes` answers for remote references: (answer, when).
    recognized: Mutex<HashMap<String, (bool, Instant)>>,
    // Last: stops the ticker thread when the runtime goes away.
    _ticker: EpochTicker,
}

/// Counters of the compiled-module cache.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RuntimeStats {
    /// Modules and components compiled with Cranelift (cache misses).
    pub compilations: u64,
    /// Compiled artifacts loaded from disk.
    pub disk_cache_hits: u64,
    /// Starts served from the in-memory `InstancePre` cache.
    pub memory_cache_hits: u64,
}

impl WasmRuntime {
    /// Builds the engine, opens the image store under `config.data_dir` and starts the epoch
    /// ticker. Needs no tokio runtime; containers are started on the caller's.
    pub fn new(config: WasmRuntimeConfig) -> Result<WasmRuntime, crate::Error> {
        let engine = build_engine(&config).map_err(crate::Error::Engine)?;
        let images = ImageStore::open(config.image_store_dir())?;
        let cache = Arc::new(CompiledCache::new(&engine, images.root())?);
        let registry =
            RegistryClient::new(config.registry_timeout, config.insecure_registries.clone())
                .map_err(crate::Error::Registry)?;
        let ticker =
            EpochTicker::start(&engine, config.epoch_tick).map_err(crate::Error::Ticker)?;
        Ok(WasmRuntime {
            inner: Arc::new(Inner {
                config,
                engine,
                images,
                cache,
                registry,
                recognized: Mutex::new(HashMap::new()),
                _ticker: ticker,
            }),
        })
    }

    /// The node-local image store (`wasmkube image import/ls/rm`).
    pub fn images(&self) -> &ImageStore {
        &self.inner.images
    }

    /// The shared engine.
    pub fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    pub fn config(&self) -> &WasmRuntimeConfig {
        &self.inner.config
    }

    /// Compiled-module cache counters.
    pub fn stats(&self) -> RuntimeStats {
        let c = &self.inner.cache.counters;
        RuntimeStats {
            compilations: c.compilations.load(Ordering::Relaxed),
            disk_cache_hits: c.disk_hits.load(Ordering::Relaxed),
            memory_cache_hits: c.memory_hits.load(Ordering::Relaxed),
        }
    }

    /// Compiles (or loads from the disk cache) an image ahead of its first start.
    pub async fn precompile(&self, image: &str) -> Result<(), RuntimeError> {
        let info = self
            .local(image)
            .ok_or_else(|| RuntimeError::ImageNotFound {
                image: image.to_string(),
            })?;
        self.prepare(&info, image).await.map(|_| ())
    }

    fn local(&self, image: &str) -> Option<ImageInfo> {
        self.inner
            .images
            .resolve(image)
            .filter(|i| self.inner.images.has_blob(&i.digest))
    }

    fn pulled(reference: &str, info: &ImageInfo) -> PulledImage {
        let name = reference.split('@').next().unwrap_or(reference);
        let name = match name.rsplit_once(':') {
            Some((n, tag)) if !tag.contains('/') => n,
            _ => name,
        };
        PulledImage {
            reference: reference.to_string(),
            image_id: format!("{name}@{}", info.digest),
        }
    }

    async fn pull_remote(
        &self,
        image: &str,
        auth: &[RegistryAuth],
        progress: &PullProgress,
    ) -> Result<PulledImage, RuntimeError> {
        let reference = Reference::parse(image).map_err(|e| RuntimeError::InvalidImage {
            image: image.to_string(),
            message: e.to_string(),
        })?;
        let creds = credentials_for(auth, &reference.registry);
        let blob = self
            .inner
            .registry
            .pull(
                &reference,
                creds,
                self.inner.config.max_image_bytes,
                progress,
            )
            .await
            .map_err(|e| pull_error(image, e))?;
        crate::images::wasm_kind(&blob.bytes, image).map_err(|e| RuntimeError::InvalidImage {
            image: image.to_string(),
            message: e.to_string(),
        })?;
        let (inner, bytes, name, source) = (
            self.inner.clone(),
            blob.bytes,
            image.to_string(),
            reference.name(),
        );
        // Blob and index writes fsync: keep them off the async workers.
        let digest =
            tokio::task::spawn_blocking(move || inner.images.insert(&bytes, &name, &source))
                .await
                .map_err(|e| RuntimeError::ImagePull {
                    image: image.to_string(),
                    message: e.to_string(),
                })?
                .map_err(|e| RuntimeError::ImagePull {
                    image: image.to_string(),
                    message: error_chain(&e),
                })?;
        debug_assert_eq!(digest, blob.digest);
        let info = self
            .inner
            .images
            .resolve(image)
            .ok_or_else(|| RuntimeError::ImageNotFound {
                image: image.to_string(),
            })?;
        Ok(Self::pulled(image, &info))
    }

    async fn prepare(&self, info: &ImageInfo, image: &str) -> Result<Arc<Prepared>, RuntimeError> {
        let blob = self.inner.images.blob_path(&info.digest);
        self.inner
            .cache
            .prepare(&info.digest, &blob)
            .await
            .map_err(|e| RuntimeError::InvalidImage {
                image: image.to_string(),
                message: error_chain(&e),
            })
    }

    /// The image a container config refers to: by the digest in `imageID` if present.
    fn image_for(&self, config: &ContainerConfig) -> Option<ImageInfo> {
        let by_id = config
            .image
            .image_id
            .rsplit_once('@')
            .and_then(|(_, d)| Digest::parse(d).ok())
            .and_then(|d| self.inner.images.resolve(d.as_str()));
        by_id.or_else(|| self.local(&config.image.reference))
    }

    async fn start_container(
        &self,
        pod: &PodSandbox,
        config: ContainerConfig,
    ) -> Result<Box<dyn Container>, RuntimeError> {
        let image = config.image.reference.clone();
        let info = self
            .image_for(&config)
            .ok_or_else(|| RuntimeError::ImageNotFound {
                image: image.clone(),
            })?;
        let prepared = self.prepare(&info, &image).await?;
        let create_err = |message: String| RuntimeError::Create {
            container: config.name.clone(),
            message,
        };
        for m in &config.mounts {
            if !m.host_path.is_dir() {
                return Err(create_err(format!(
                    "mount {} at {}: only directories can be mounted into a wasm guest",
                    m.host_path.display(),
                    m.container_path
                )));
            }
        }
        let argv = if config.command.is_empty() {
            std::iter::once(config.name.clone())
                .chain(config.args.iter().cloned())
                .collect()
        } else {
            config
                .command
                .iter()
                .chain(config.args.iter())
                .cloned()
                .collect()
        };
        let memory_limit = match (
            &self.inner.config.allocation,
            config.resources.memory_limit_bytes,
        ) {
            // The pool caps every memory anyway; a higher limit just means "the pool's".
            (crate::config::Allocation::Pooling(p), Some(l)) => {
                Some(l.min(p.max_memory_size as u64))
            }
            (_, l) => l,
        };
        let spec = GuestSpec {
            argv,
            env: config.env.clone(),
            cwd: config.working_dir.clone(),
            mounts: config.mounts.clone(),
            memory_limit,
            outbound: OutboundPolicy {
                allowed: Arc::new(config.allowed_outbound_hosts.clone()),
                resolver: self.inner.config.cluster_dns.map(|dns| {
                    Arc::new(crate::resolve::ClusterResolver::for_pod(
                        dns,
                        &pod.namespace,
                        &self.inner.config.cluster_domain,
                    ))
                }),
            },
        };
        let cfg = &self.inner.config;
        let exec = ExecContext {
            engine: self.inner.engine.clone(),
            prepared: prepared.clone(),
            spec: spec.clone(),
            cpu_limit_millis: config.resources.cpu_limit_millis,
            tick: cfg.epoch_tick,
        };
        let ports: Vec<u16> = config
            .ports
            .iter()
            .filter(|p| p.protocol.is_empty() || p.protocol.eq_ignore_ascii_case("TCP"))
            .map(|p| p.container_port)
            .collect();

        if ports.is_empty() {
            let (log_tx, log_writer) = crate::logs::spawn_writer(&config.log, cfg.log_queue_chunks);
            let params = crate::command::CommandParams {
                spec,
                cpu_limit_millis: config.resources.cpu_limit_millis,
                tick: cfg.epoch_tick,
                log_tx,
                log_writer,
            };
            let c = crate::command::start(&self.inner.engine, prepared, params)
                .await
                .map_err(|e| create_err(e.to_string()))?;
            return Ok(Box::new(c.with_exec(exec)));
        }

        // An HTTP container: decide the shape before binding anything.
        enum Shape {
            Wagi(wasmtime::InstancePre<crate::guest::P1Host>),
            Proxy(wasmtime_wasi_http::p2::bindings::ProxyPre<crate::guest::P2Host>),
        }
        let shape = match &*prepared {
            Prepared::Core(core) if core.has_start => Shape::Wagi(core.pre.clone()),
            Prepared::Core(_) => {
                return Err(create_err(
                    "the module exports no `_start` to serve WAGI requests with".into(),
                ));
            }
            Prepared::Component { proxy: Some(p), .. } => Shape::Proxy(p.clone()),
            Prepared::Component { .. } => {
                return Err(create_err(
                    "the container declares ports but the component does not export wasi:http/incoming-handler".into(),
                ));
            }
        };
        let listeners = crate::http::bind(pod, &ports)
            .await
            .map_err(|e| create_err(e.to_string()))?;
        let (log_tx, log_writer) = crate::logs::spawn_writer(&config.log, cfg.log_queue_chunks);
        let usage = Arc::new(UsageCounters::default());
        let shared = Arc::new(HttpShared {
            engine: self.inner.engine.clone(),
            spec,
            usage: usage.clone(),
            budget: Arc::new(CpuBudget::new(config.resources.cpu_limit_millis, usage)),
            control: Control::new(),
            log_tx,
            tick: cfg.epoch_tick,
            request_timeout: cfg.default_request_timeout,
            max_request_body: cfg.max_request_body_bytes,
            max_response: cfg.max_response_bytes,
            tracker: TaskTracker::new(),
        });
        let handler: Arc<dyn crate::http::Handler> = match shape {
            Shape::Wagi(pre) => Arc::new(crate::wagi::WagiHandler {
                pre,
                shared: shared.clone(),
            }),
            Shape::Proxy(pre) => Arc::new(crate::proxy::ProxyHandler {
                pre,
                shared: shared.clone(),
            }),
        };
        Ok(Box::new(
            crate::http::serve(listeners, handler, shared, log_writer).with_exec(exec),
        ))
    }

    async fn recognizes_image(&self, image: &str) -> bool {
        if self.local(image).is_some() {
            return true;
        }
        let Ok(reference) = Reference::parse(image) else {
            return false;
        };
        if let Some((answer, at)) = self
            .inner
            .recognized
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(image)
            && (*answer || at.elapsed() < NEGATIVE_RECOGNITION_TTL)
        {
            return *answer;
        }
        // One manifest round trip, bounded so scheduling a Linux pod is never held up long.
        let answer = matches!(
            tokio::time::timeout(
                Duration::from_secs(5),
                self.inner.registry.is_wasm(&reference, None)
            )
            .await,
            Ok(Ok(true))
        );
        self.inner
            .recognized
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(image.to_string(), (answer, Instant::now()));
        answer
    }

    async fn pull_image(
        &self,
        image: &str,
        policy: PullPolicy,
        auth: &[RegistryAuth],
        progress: &PullProgress,
    ) -> Result<PulledImage, RuntimeError> {
        let local = self.local(image);
        match (policy, local) {
            (PullPolicy::Never | PullPolicy::IfNotPresent, Some(info)) => {
                Ok(Self::pulled(image, &info))
            }
            (PullPolicy::Never, None) => Err(RuntimeError::ImageNeverPull {
                image: image.to_string(),
            }),
            (PullPolicy::Always, Some(info)) => {
                // An unqualified name that is present locally was imported into this node's
                // store, which is its registry: there is nowhere else to refresh it from.
                let qualified = Reference::parse(image)
                    .map(|r| r.explicit_registry)
                    .unwrap_or(false);
                if qualified {
                    self.pull_remote(image, auth, progress).await
                } else {
                    Ok(Self::pulled(image, &info))
                }
            }
            (_, None) => self.pull_remote(image, auth, progress).await,
        }
    }
}

fn pull_error(image: &str, e: crate::oci::OciError) -> RuntimeError {
    use crate::oci::OciError;
    match e {
        OciError::Status { status: 404, .. } => RuntimeError::ImageNotFound {
            image: image.to_string(),
        },
        OciError::NotWasm(_) | OciError::InvalidReference(_) => RuntimeError::InvalidImage {
            image: image.to_string(),
            message: error_chain(&e),
        },
        e => RuntimeError::ImagePull {
            image: image.to_string(),
            message: error_chain(&e),
        },
    }
}

/// `error: cause: cause` on one line, for status messages.
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

impl Runtime for WasmRuntime {
    fn handler(&self) -> &'static str {
        HANDLER
    }

    fn version(&self) -> String {
        WASMTIME_VERSION.to_string()
    }

    fn recognizes(&self, image: &str) -> BoxFuture<'_, bool> {
        let image = image.to_string();
        Box::pin(async move { self.recognizes_image(&image).await })
    }

    fn pull_with_progress<'a>(
        &'a self,
        image: &'a str,
        policy: PullPolicy,
        auth: &'a [RegistryAuth],
        progress: &'a PullProgress,
    ) -> BoxFuture<'a, Result<PulledImage, RuntimeError>> {
        Box::pin(self.pull_image(image, policy, auth, progress))
    }

    fn start<'a>(
        &'a self,
        pod: &'a PodSandbox,
        config: ContainerConfig,
    ) -> BoxFuture<'a, Result<Box<dyn Container>, RuntimeError>> {
        Box::pin(self.start_container(pod, config))
    }
}
