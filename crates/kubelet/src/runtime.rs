//! The container runtime interface: what the kubelet asks of a backend.
//!
//! The kubelet does everything Kubernetes-specific (resolving env and volumes from the API,
//! restart policy and back-off, probes, status); a backend only pulls images, starts
//! containers in a pod's sandbox, and reports how they end. Backends: `runtime-wasm`
//! (wasmtime) and `runtime-oci` (containerd).

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use futures::future::BoxFuture;

/// Errors a backend reports. The reasons map onto the container statuses Kubernetes shows
/// (`ErrImagePull`, `CreateContainerError`, ...).
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("image {image:?} not found")]
    ImageNotFound { image: String },
    #[error("pulling image {image:?}: {message}")]
    ImagePull { image: String, message: String },
    #[error("image {image:?} is not present and the pull policy is Never")]
    ImageNeverPull { image: String },
    #[error("image {image:?} is not valid for this runtime: {message}")]
    InvalidImage { image: String, message: String },
    #[error("creating container {container:?}: {message}")]
    Create { container: String, message: String },
    #[error("{0} is not supported by this runtime")]
    Unsupported(&'static str),
    #[error("runtime i/o")]
    Io(#[from] std::io::Error),
}

impl RuntimeError {
    /// The waiting reason Kubernetes shows for this failure.
    pub fn reason(&self) -> &'static str {
        match self {
            RuntimeError::ImageNotFound { .. } | RuntimeError::ImagePull { .. } => "ErrImagePull",
            RuntimeError::ImageNeverPull { .. } => "ErrImageNeverPull",
            RuntimeError::InvalidImage { .. } => "InvalidImageName",
            RuntimeError::Create { .. } | RuntimeError::Io(_) => "CreateContainerError",
            RuntimeError::Unsupported(_) => "CreateContainerConfigError",
        }
    }
}

/// `imagePullPolicy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullPolicy {
    Always,
    IfNotPresent,
    Never,
}

/// Registry credentials from the pod's `imagePullSecrets` (dockerconfigjson), per registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryAuth {
    pub registry: String,
    pub username: String,
    pub password: String,
}

/// How far an image pull has come, in bytes: the backend adds what it will download and what
/// it has, the kubelet reads it while the pull lasts to report progress in the pod's events.
/// Clones share the counters.
#[derive(Debug, Clone, Default)]
pub struct PullProgress(Arc<PullCounters>);

#[derive(Debug, Default)]
struct PullCounters {
    total: AtomicU64,
    done: AtomicU64,
}

impl PullProgress {
    /// `bytes` more to download (a layer's size from its manifest).
    pub fn expect(&self, bytes: u64) {
        self.0.total.fetch_add(bytes, Ordering::Relaxed);
    }

    /// `bytes` more downloaded.
    pub fn downloaded(&self, bytes: u64) {
        self.0.done.fetch_add(bytes, Ordering::Relaxed);
    }

    /// `(downloaded, expected)` so far.
    pub fn get(&self) -> (u64, u64) {
        (
            self.0.done.load(Ordering::Relaxed),
            self.0.total.load(Ordering::Relaxed),
        )
    }
}

/// An image present on the node after a pull.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PulledImage {
    /// The reference as the pod named it.
    pub reference: String,
    /// What `containerStatuses[].imageID` reports, e.g. `docker.io/library/x@sha256:...`.
    pub image_id: String,
}

/// The pod-level context every container of a pod shares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodSandbox {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    /// The pod's own IP (127.x.y.z on this machine) that its containers listen on.
    pub ip: IpAddr,
    pub hostname: String,
    /// The pod's own network namespace (a pinned nsfs file, see [`crate::netns`]), when one
    /// of its runtimes [needs one](Runtime::needs_network_namespace). Every container of the
    /// pod, of any runtime, then lives in it: listeners bind inside it, and the kubelet
    /// forwards the pod IP's ports into it.
    pub network_namespace: Option<PathBuf>,
}

/// A directory made visible to a container at `container_path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub host_path: PathBuf,
    pub container_path: String,
    pub read_only: bool,
}

/// A port the container serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Port {
    pub name: Option<String>,
    pub container_port: u16,
    pub protocol: String,
}

/// Resource limits and requests, already parsed from quantities.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Resources {
    pub memory_limit_bytes: Option<u64>,
    pub cpu_limit_millis: Option<u64>,
    pub memory_request_bytes: Option<u64>,
    pub cpu_request_millis: Option<u64>,
}

/// The parts of `securityContext` (pod and container, merged) a runtime enforces.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Security {
    pub run_as_user: Option<i64>,
    pub run_as_group: Option<i64>,
    pub read_only_root_filesystem: bool,
    pub privileged: bool,
    /// `allowPrivilegeEscalation`; unset means allowed (Kubernetes' default), but a runtime
    /// may still set no-new-privileges for unprivileged containers.
    pub allow_privilege_escalation: Option<bool>,
    /// Capability names as written (`NET_ADMIN` or `CAP_NET_ADMIN`; `ALL` in drop).
    pub capabilities_add: Vec<String>,
    pub capabilities_drop: Vec<String>,
}

/// Where a container's stdout and stderr go: the kubelet serves `pods/log` from this file,
/// one line per record in the CRI log format (`<RFC3339Nano> stdout|stderr F <text>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSink {
    pub path: PathBuf,
    /// The file is truncated to its newest part past this size.
    pub max_bytes: u64,
}

/// Everything a backend needs to start one container, fully resolved by the kubelet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerConfig {
    pub name: String,
    pub image: PulledImage,
    /// `command` (the entrypoint override) and `args`, already expanded (`$(VAR)`).
    pub command: Vec<String>,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub working_dir: Option<String>,
    pub mounts: Vec<Mount>,
    pub ports: Vec<Port>,
    pub resources: Resources,
    pub log: LogSink,
    /// Outbound HTTP hosts a Wasm guest may call (from the pod's annotations).
    pub allowed_outbound_hosts: Vec<String>,
    pub security: Security,
}

/// How a container ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExitStatus {
    pub exit_code: i32,
    /// `Completed`, `Error`, `OOMKilled`, `DeadlineExceeded`, ...
    pub reason: String,
    pub message: Option<String>,
    pub started_at: SystemTime,
    pub finished_at: SystemTime,
}

/// A started container.
pub trait Container: Send + Sync {
    /// The runtime's id for it (`containerID` is reported as `<handler>://<id>`).
    fn id(&self) -> &str;

    /// When it started running.
    fn started_at(&self) -> SystemTime;

    /// Resolves when the container has exited, with how. May be awaited by several callers.
    fn wait(&self) -> BoxFuture<'_, ExitStatus>;

    /// Asks the container to stop, waits at most `grace`, then kills it; resolves once it
    /// has exited.
    fn stop(&self, grace: Duration) -> BoxFuture<'_, ExitStatus>;

    /// Runs a command inside the container with no input (exec probes, `kubectl exec`).
    fn exec(
        &self,
        command: Vec<String>,
        timeout: Duration,
    ) -> BoxFuture<'_, Result<ExecOutput, RuntimeError>> {
        self.exec_with_stdin(command, Vec::new(), timeout)
    }

    /// Runs a command inside the container with `stdin` as its standard input (`kubectl exec
    /// -i`), if the runtime can; what a backend implements.
    fn exec_with_stdin(
        &self,
        _command: Vec<String>,
        _stdin: Vec<u8>,
        _timeout: Duration,
    ) -> BoxFuture<'_, Result<ExecOutput, RuntimeError>> {
        Box::pin(async { Err(RuntimeError::Unsupported("exec")) })
    }

    /// Current resource usage, for the metrics API.
    fn usage(&self) -> Usage {
        Usage::default()
    }
}

/// The result of an exec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOutput {
    pub exit_code: i32,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

/// Resource usage of a running container.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub memory_bytes: u64,
    /// Cumulative CPU time used.
    pub cpu_nanos: u64,
}

/// A container runtime backend.
pub trait Runtime: Send + Sync + 'static {
    /// The RuntimeClass handler this backend serves (`wasmtime`, `runc`).
    fn handler(&self) -> &'static str;

    /// The runtime's version, for `nodeInfo.containerRuntimeVersion` (`<handler>://<version>`).
    fn version(&self) -> String {
        String::new()
    }

    /// Whether this backend's containers need the pod to have its own network namespace
    /// (Linux containers do; a Wasm guest binds the pod's IP directly, unless the pod has a
    /// namespace anyway because it also holds Linux containers).
    fn needs_network_namespace(&self) -> bool {
        false
    }

    /// Whether this backend can run `image` at all (e.g. a Wasm module vs a Linux image),
    /// for images that name no RuntimeClass.
    fn recognizes(&self, _image: &str) -> BoxFuture<'_, bool> {
        Box::pin(async { false })
    }

    /// Makes `image` present on the node according to `policy`, reporting the bytes it
    /// downloads into `progress`.
    fn pull_with_progress<'a>(
        &'a self,
        image: &'a str,
        policy: PullPolicy,
        auth: &'a [RegistryAuth],
        progress: &'a PullProgress,
    ) -> BoxFuture<'a, Result<PulledImage, RuntimeError>>;

    /// [`Runtime::pull_with_progress`] for a caller that does not watch the progress.
    fn pull<'a>(
        &'a self,
        image: &'a str,
        policy: PullPolicy,
        auth: &'a [RegistryAuth],
    ) -> BoxFuture<'a, Result<PulledImage, RuntimeError>> {
        Box::pin(async move {
            let progress = PullProgress::default();
            self.pull_with_progress(image, policy, auth, &progress)
                .await
        })
    }

    /// Prepares this backend's part of the pod-level sandbox before the pod's first container
    /// of this backend. In a pod whose containers use several backends, each is called with
    /// the same `pod` (one IP, one network namespace, made by the kubelet beforehand).
    fn create_sandbox<'a>(
        &'a self,
        _pod: &'a PodSandbox,
    ) -> BoxFuture<'a, Result<(), RuntimeError>> {
        Box::pin(async { Ok(()) })
    }

    /// Starts one container of `pod`.
    fn start<'a>(
        &'a self,
        pod: &'a PodSandbox,
        config: ContainerConfig,
    ) -> BoxFuture<'a, Result<Box<dyn Container>, RuntimeError>>;

    /// Releases the sandbox after the pod's last container has stopped.
    fn remove_sandbox<'a>(
        &'a self,
        _pod: &'a PodSandbox,
    ) -> BoxFuture<'a, Result<(), RuntimeError>> {
        Box::pin(async { Ok(()) })
    }
}
