//! The wasmkube node agent (kubelet): registers its Node, keeps its Lease, and runs the pods bound
//! to it through a [`runtime::Runtime`] — wasmtime for WebAssembly, containerd for Linux images.
//!
//! # Pod sandboxes, and pods of two runtimes
//! Each container of a pod gets its runtime on its own: the pod's RuntimeClass decides for all
//! of them when it names one, else each image decides (the first runtime that recognizes it,
//! else the node's default, containerd's). A pod may so hold Wasm and Linux containers side by
//! side, and still has one sandbox, owned by the pod worker:
//!
//! 1. the worker takes the pod's IP;
//! 2. if any of the pod's runtimes [needs a network namespace](runtime::Runtime::needs_network_namespace)
//!    (runc does), the worker makes one ([`netns`]), brings `lo` up in it and forwards the pod
//!    IP's containerPorts into it; its path goes into the [`runtime::PodSandbox`];
//! 3. each distinct runtime's `create_sandbox` is called with that same `PodSandbox` (runc
//!    writes the pod's `/etc/hosts`; Wasm needs nothing);
//! 4. containers start, each through its own runtime: runc containers join the namespace by
//!    path, a Wasm HTTP container binds its ports inside it rather than on the pod IP, so the
//!    two reach each other on localhost; volumes are node directories both mount;
//! 5. when the pod ends, each runtime's `remove_sandbox` runs, then the forwarding stops and
//!    the namespace is unpinned, then the IP is released.
//!
//! A pod with only Wasm containers has no namespace: its listeners bind the pod IP directly.
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
//! - [`netns`]: pod network namespaces (pinned nsfs files) and the forwarding of a pod IP's
//!   ports into one.
//! - [`storage`]: the node's local-path provisioner (PersistentVolumes that are directories
//!   under `<data-dir>/storage`) and the clean-up of deleted ones.
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
pub mod netns;
pub mod node;
pub mod pod;
pub mod probes;
pub mod runtime;
pub mod server;
pub mod stats;
pub mod statuses;
pub mod storage;
pub mod streaming;
pub mod volumes;
