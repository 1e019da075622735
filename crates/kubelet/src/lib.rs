//! The wasmkube node agent (kubelet): registers its Node, keeps its Lease, and runs the pods bound
//! to it through a [`runtime::Runtime`] — wasmtime for WebAssembly, containerd for Linux images.
//!
//! # Layout
//! - [`env`]: container environments (env, envFrom, downward API, $(VAR) expansion).
//! - [`logs`]: CRI-format container logs and the `pods/log` options.
//! - [`node`]: Node registration, status and the Lease heartbeat.
//! - [`runtime`]: the `Runtime` and `Container` traits every backend implements, and the
//!   runtime-neutral description of a container to start.
//! - [`volumes`]: pod volumes as node directories, and container mounts.

pub mod env;
pub mod logs;
pub mod node;
pub mod runtime;
pub mod volumes;
