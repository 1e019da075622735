//! The containerd backend of the kubelet's [`Runtime`](wasmkube_kubelet::runtime::Runtime):
//! Linux container images run by containerd and runc, beside Wasm.
//!
//! Everything goes through containerd's gRPC API (the `containerd-client` bindings) in a
//! namespace of our own (`wasmkube`), so the images and containers of a node never mix with
//! anything else on a shared containerd:
//!
//! - **Images** are pulled client-side (containerd 1.6 has no transfer service) with the
//!   registry client the Wasm runtime uses (auth challenges, pull secrets, plain HTTP for
//!   loopback registries), written into the content store under a lease and unpacked into the
//!   overlayfs snapshotter, or `native` where overlay is unavailable.
//! - **Containers** get an OCI spec built from the image config and the kubelet's resolved
//!   container ([`spec`]): the pod's network namespace (made by the kubelet, see
//!   `wasmkube_kubelet::netns`), volume bind mounts, cgroup limits, securityContext.
//! - **Tasks** run under the runc v2 shim; stdout and stderr come back through FIFOs and are
//!   written to the kubelet's log file in the CRI format ([`logs`]). An exit is classified
//!   from the task's exit status and the cgroup's OOM counter ([`cgroups`]).
//! - **Cleanup**: a pod's containers, tasks and snapshots are removed with its sandbox; at
//!   start the runtime removes what an earlier run of the same node left.
//!
//! # Layout
//! - [`runtime`]: [`OciRuntime`] and its configuration.
//! - [`client`]: the containerd connection and the container/snapshot calls shared by the rest.
//! - [`pull`]: registry → content store → image → snapshots.
//! - [`spec`]: the OCI runtime spec of a container (pure; unit-tested).
//! - [`container`]: a started container: exit watching, stop, exec, usage.
//! - [`logs`]: FIFOs to CRI log records.
//! - [`cgroups`]: cgroup v1/v2 paths, OOM detection and usage.
//! - [`image`]: a busybox image built from the host's busybox-static, for tests and benchmarks.

pub mod cgroups;
pub mod client;
pub mod container;
pub mod image;
pub mod logs;
pub mod pull;
pub mod runtime;
pub mod spec;

pub use runtime::{OciRuntime, OciRuntimeConfig};

use std::path::PathBuf;

/// Errors talking to containerd and the registry.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("containerd socket {0} does not exist")]
    NoSocket(PathBuf),
    #[error("connecting to containerd at {socket}: {message}")]
    Connect { socket: PathBuf, message: String },
    #[error("timed out {0}")]
    Timeout(String),
    #[error("containerd: {what}: {}", .source.message())]
    Rpc {
        what: &'static str,
        #[source]
        source: tonic::Status,
    },
    #[error("invalid image reference")]
    Reference(#[source] wasmkube_runtime_wasm::oci::OciError),
    #[error(transparent)]
    Registry(wasmkube_runtime_wasm::oci::OciError),
    #[error("image is not present and the pull policy is Never: {0}")]
    NeverPull(String),
    #[error("image: {0}")]
    Image(String),
    #[error(transparent)]
    Spec(#[from] spec::SpecError),
    #[error("{path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl From<wasmkube_runtime_wasm::oci::OciError> for Error {
    fn from(e: wasmkube_runtime_wasm::oci::OciError) -> Error {
        match e {
            wasmkube_runtime_wasm::oci::OciError::InvalidReference(_) => Error::Reference(e),
            e => Error::Registry(e),
        }
    }
}

pub(crate) use wasmkube_kubelet::pod::error_chain;
