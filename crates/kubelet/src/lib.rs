//! The wasmkube node agent (kubelet): registers its Node, keeps its Lease, and runs the pods bound
//! to it through a [`runtime::Runtime`] — wasmtime for WebAssembly, containerd for Linux images.
//!
//! # Layout
//! - [`runtime`]: the `Runtime` and `Container` traits every backend implements, and the
//!   runtime-neutral description of a container to start.

pub mod runtime;
