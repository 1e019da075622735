//! The wasmtime backend of the kubelet's container [`Runtime`](wasmkube_kubelet::runtime::Runtime):
//! runs a pod's containers as WebAssembly modules and components.
//!
//! A node holds one [`WasmRuntime`]: one wasmtime `Engine` (async, pooling allocator,
//! copy-on-write memory images, epoch interruption driven by a ticker thread), one on-disk
//! [`ImageStore`] and one compiled-module cache. Containers come in two shapes:
//!
//! - **Commands** (a WASI preview1 core module exporting `_start`, or a WASI 0.2 component
//!   exporting `wasi:cli/run`) run like processes: argv is `command + args`, stdout/stderr go
//!   line by line to the container's CRI log file, the exit code is the container's (a
//!   component keeps any code it passes to `wasi:cli/exit.exit-with-code`; one built with the
//!   preview1 adapter exits 0 or 1, since the adapter maps `proc_exit(n)` to `exit(ok|err)`).
//! - **HTTP** containers (the container declares ports): a `wasi:http/proxy` component is served
//!   with wasmtime-wasi-http, a preview1 core module is served WAGI-style (CGI environment,
//!   request body on stdin, CGI response on stdout). Every request gets a fresh instance from an
//!   `InstancePre`/`ProxyPre`, so an idle HTTP pod holds only a listener.
//!
//! Limits: a `ResourceLimiter` enforces `resources.limits.memory` per instance (exceeding it
//! ends the guest as `OOMKilled`, exit code 137, like the kernel's OOM killer would);
//! `resources.limits.cpu` is enforced by a token bucket charged on every epoch tick, the guest
//! being suspended (not spinning) while it is over budget; stopping a container interrupts the
//! guest at its next epoch check or host call.
//!
//! # Layout
//! - [`config`]: [`WasmRuntimeConfig`] and the pooling-allocator sizes ([`PoolConfig`]).
//! - `engine`: builds the `Engine` and owns the epoch ticker thread.
//! - [`images`]: the node-local [`ImageStore`] (content-addressed blobs + a `name:tag` index),
//!   shared with `wasmkube image` in another process (flock-serialized writers, readers that
//!   re-read the index when the file changes).
//! - [`oci`]: image references, the OCI manifest/media-type rules for Wasm artifacts, and the
//!   registry v2 client (token and basic auth) used by `pull` and by [`oci::push_wasm`] /
//!   [`oci::push_image`] (CNCF Wasm OCI artifacts).
//! - `compile`: the compiled-module cache, on disk (`Module::serialize` keyed by digest and the
//!   engine's compatibility hash) and in memory (`InstancePre`/`CommandPre`/`ProxyPre` by digest).
//! - `guest`: per-store state: WASI contexts, the memory limiter, the CPU budget and the
//!   epoch callback that yields, throttles, and interrupts guests.
//! - `logs`: CRI-format log files: line assembly in the guest's output stream, one writer task
//!   per container with a bounded queue, size capping.
//! - `command`: running command containers and turning their end into an `ExitStatus`.
//! - `http`: the per-port listener, connection handling and graceful shutdown; `wagi` and
//!   `proxy` handle one request each.
//! - `container`: [`WasmContainer`], the `Container` handed to the kubelet.
//! - `exec`: `Container::exec`, a fresh instance of the container's image run as a command
//!   with captured, bounded output and a timeout (exec probes, `kubectl exec`).
//! - `resolve`: Service names for guests' outgoing HTTP, through the cluster DNS with the
//!   pod's search path.
//! - `runtime`: [`WasmRuntime`], the `Runtime` implementation tying it together.

pub mod config;
pub mod images;
pub mod oci;

mod command;
mod compile;
mod container;
mod engine;
mod exec;
mod guest;
mod http;
mod logs;
mod proxy;
mod resolve;
mod runtime;
mod wagi;

pub use config::{Allocation, PoolConfig, WasmRuntimeConfig, image_store_dir};
pub use container::WasmContainer;
pub use images::{Digest, ImageError, ImageInfo, ImageStore};
pub use runtime::{RuntimeStats, WasmRuntime};

/// Errors creating a [`WasmRuntime`].
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("configuring the wasmtime engine")]
    Engine(#[source] wasmtime::Error),
    #[error("opening the image store")]
    Images(#[from] ImageError),
    #[error("preparing the compiled-module cache in {path}")]
    Cache {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("starting the epoch ticker thread")]
    Ticker(#[source] std::io::Error),
    #[error("building the registry client")]
    Registry(#[source] oci::OciError),
}
