//! The wasmkube node agent (kubelet): registers its Node, keeps its Lease, and runs the pods bound
//! to it through a [`runtime::Runtime`] — wasmtime for WebAssembly, containerd for Linux images.
//!
//! # Layout
//! - [`kubelet`]: [`kubelet::Kubelet::start`], the node agent as a whole.
//! - [`manager`]: watches the node's pods and runs a worker per pod; what workers share.
//! - [`pod`]: the pod worker, a state machine per pod (stages, containers, status).
//! - [`probes`]: startup, liveness and readiness probers.
//! - [`stats`]: resource usage sampling (`/stats/summary`, the source of `kubectl top`).
//! - [`statuses`]: writes pod statuses, coalesced and concurrent.
//! - [`events`]: the event recorder (core/v1 Events, aggregated).
//! - [`ipam`]: pod IPs out of the node's podCIDR.
//! - [`backoff`]: CrashLoopBackOff and ImagePullBackOff delays.
//! - [`env`]: container environments (env, envFrom, downward API, $(VAR) expansion).
//! - [`logs`]: CRI-format container logs and the `pods/log` options.
//! - [`node`]: Node registration, status and the Lease heartbeat.
//! - [`runtime`]: the `Runtime` and `Container` traits every backend implements, and the
//!   runtime-neutral description of a container to start.
//! - [`server`]: the kubelet's HTTPS endpoint (`containerLogs`, `healthz`), its self-signed
//!   serving certificate and the [`server::PodLogs`] trait the pod manager answers it through.
//! - [`volumes`]: pod volumes as node directories, and container mounts.
//! - [`streaming`]: `port-forward` (SPDY/3.1 over WebSocket) and `exec` (`channel.k8s.io`)
//!   sessions the kubelet server runs on upgraded connections.

pub mod backoff;
pub mod env;
pub mod events;
pub mod ipam;
pub mod kubelet;
pub mod logs;
pub mod manager;
pub mod node;
pub mod pod;
pub mod probes;
pub mod runtime;
pub mod server;
pub mod stats;
pub mod statuses;
pub mod streaming;
pub mod volumes;
