//! One container of a pod as the worker tracks it: its Kubernetes state, its running instance,
//! its restart back-off, and the resolution of its spec into a runtime [`ContainerConfig`].

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use k8s_openapi::api::core::v1::{Container as ContainerSpec, Pod};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::backoff::Backoff;
use crate::env::{self, Sources};
use crate::runtime::{
    Container, ContainerConfig, ExitStatus, LogSink, Port, PulledImage, Resources, Security,
};
use crate::volumes::{self, PodVolumes};

/// The annotation listing the outbound HTTP hosts a Wasm guest may call, comma separated
/// (`host`, `host:port`, `*.suffix`, `*`).
pub const ALLOWED_OUTBOUND_HOSTS: &str = "wasmkube.io/allowed-outbound-hosts";

/// A container's state as `containerStatuses[].state` reports it.
#[derive(Debug, Clone)]
pub enum State {
    Waiting {
        reason: String,
        message: Option<String>,
    },
    Running {
        since: SystemTime,
    },
    Terminated(Terminated),
}

/// How an instance ended, with the id it had.
#[derive(Debug, Clone)]
pub struct Terminated {
    pub status: ExitStatus,
    pub container_id: String,
}

/// A running instance of a container.
pub struct Instance {
    pub handle: Arc<dyn Container>,
    /// The restart count it started with; log file and probe messages are tagged with it.
    pub number: u32,
    pub container_id: String,
    /// Cancelled when it ends: stops its probers and ends `logs -f` of it.
    pub done: CancellationToken,
    pub started: Instant,
}

/// Everything the worker knows of one container.
pub struct Record {
    pub spec: ContainerSpec,
    pub init: bool,
    pub image: Option<PulledImage>,
    pub restart_count: u32,
    pub state: State,
    pub last_terminated: Option<Terminated>,
    pub backoff: Backoff,
    pub pull_backoff: Backoff,
    /// When a back-off (crash or pull) ends and the next attempt may run.
    pub retry_at: Option<Instant>,
    /// Whether any instance of it ever started in this pod (so the next one is a restart).
    pub ever_started: bool,
    pub ready: bool,
    /// The startup probe passed (or there is none) for the running instance.
    pub started: bool,
    pub instance: Option<Instance>,
    /// The runtime that runs it (chosen once per pod worker).
    pub runtime: Option<Arc<dyn crate::runtime::Runtime>>,
}

impl Record {
    pub fn new(spec: ContainerSpec, init: bool) -> Record {
        Record {
            spec,
            init,
            image: None,
            runtime: None,
            restart_count: 0,
            state: State::Waiting {
                reason: "ContainerCreating".into(),
                message: None,
            },
            last_terminated: None,
            backoff: Backoff::default(),
            pull_backoff: Backoff::default(),
            retry_at: None,
            ever_started: false,
            ready: false,
            started: false,
            instance: None,
        }
    }

    pub fn name(&self) -> &str {
        &self.spec.name
    }

    pub fn set_waiting(&mut self, reason: &str, message: Option<String>) {
        self.state = State::Waiting {
            reason: reason.to_string(),
            message,
        };
    }

    pub fn is_running(&self) -> bool {
        self.instance.is_some()
    }

    /// The exit status if the container has ended and is not (yet) restarted.
    pub fn terminated(&self) -> Option<&ExitStatus> {
        match &self.state {
            State::Terminated(t) => Some(&t.status),
            _ => None,
        }
    }

    /// The named TCP ports of the container, for probes.
    pub fn named_ports(&self) -> Vec<(String, u16)> {
        self.spec
            .ports
            .iter()
            .flatten()
            .filter_map(|p| Some((p.name.clone()?, u16::try_from(p.container_port).ok()?)))
            .collect()
    }
}

/// Why a container's config could not be resolved (`CreateContainerConfigError`).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(transparent)]
    Env(#[from] env::EnvError),
    #[error(transparent)]
    Volume(#[from] volumes::VolumeError),
    #[error("invalid {field}: {message}")]
    Resource { field: String, message: String },
}

fn quantity(
    map: Option<&BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>>,
    key: &str,
    field: &str,
) -> Result<Option<i128>, ConfigError> {
    let Some(q) = map.and_then(|m| m.get(key)) else {
        return Ok(None);
    };
    let parsed =
        wasmkube_api::quantity::Quantity::parse(&q.0).map_err(|e| ConfigError::Resource {
            field: format!("{field}.{key}"),
            message: e.to_string(),
        })?;
    Ok(parsed.to_milli())
}

/// The container's resources in bytes and millicores.
pub fn resources(spec: &ContainerSpec) -> Result<Resources, ConfigError> {
    let r = spec.resources.as_ref();
    let limits = r.and_then(|r| r.limits.as_ref());
    let requests = r.and_then(|r| r.requests.as_ref());
    let bytes = |m: Option<i128>| m.map(|m| (m / 1000).clamp(0, u64::MAX as i128) as u64);
    let millis = |m: Option<i128>| m.map(|m| m.clamp(0, u64::MAX as i128) as u64);
    Ok(Resources {
        memory_limit_bytes: bytes(quantity(limits, "memory", "resources.limits")?),
        cpu_limit_millis: millis(quantity(limits, "cpu", "resources.limits")?),
        memory_request_bytes: bytes(quantity(requests, "memory", "resources.requests")?),
        cpu_request_millis: millis(quantity(requests, "cpu", "resources.requests")?),
    })
}

/// Resolves everything a runtime needs to start `spec` (env from the API, mounts, `$(VAR)`
/// expansion, limits, the log file of this instance).
#[allow(clippy::too_many_arguments)]
pub async fn config(
    client: &kube::Client,
    pod: &Pod,
    spec: &ContainerSpec,
    image: PulledImage,
    volumes: &PodVolumes,
    pod_dir: &Path,
    instance: u32,
    log_max_bytes: u64,
) -> Result<ContainerConfig, ConfigError> {
    let ns = pod.metadata.namespace.clone().unwrap_or_default();
    let mut sources = Sources::new(client.clone(), &ns);
    let mut env = env::resolve(&mut sources, pod, spec).await?;
    // Container runtimes set HOSTNAME to the pod's hostname; programs expect it.
    if !env.iter().any(|(k, _)| k == "HOSTNAME") {
        let hostname = pod
            .spec
            .as_ref()
            .and_then(|s| s.hostname.clone())
            .or_else(|| pod.metadata.name.clone())
            .unwrap_or_default();
        env.insert(0, ("HOSTNAME".to_string(), hostname));
    }
    let vars: BTreeMap<String, String> = env.iter().cloned().collect();
    let expand = |v: &Option<Vec<String>>| -> Vec<String> {
        v.iter().flatten().map(|s| env::expand(s, &vars)).collect()
    };
    let mounts = volumes::mounts(volumes, spec)?;
    let ports = spec
        .ports
        .iter()
        .flatten()
        .filter_map(|p| {
            Some(Port {
                name: p.name.clone(),
                container_port: u16::try_from(p.container_port).ok()?,
                protocol: p.protocol.clone().unwrap_or_else(|| "TCP".into()),
            })
        })
        .collect();
    let allowed_outbound_hosts = pod
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(ALLOWED_OUTBOUND_HOSTS))
        .map(|v| {
            v.split(',')
                .map(|h| h.trim().to_string())
                .filter(|h| !h.is_empty())
                .collect()
        })
        .unwrap_or_default();
    Ok(ContainerConfig {
        name: spec.name.clone(),
        image,
        command: expand(&spec.command),
        args: expand(&spec.args),
        env,
        working_dir: spec.working_dir.clone().filter(|w| !w.is_empty()),
        mounts,
        ports,
        resources: resources(spec)?,
        log: LogSink {
            path: crate::logs::log_path(pod_dir, &spec.name, instance),
            max_bytes: log_max_bytes,
        },
        allowed_outbound_hosts,
        security: security(pod, spec),
    })
}

/// The pod's and the container's securityContext merged (the container's fields win).
pub fn security(pod: &Pod, spec: &ContainerSpec) -> Security {
    let psc = pod.spec.as_ref().and_then(|s| s.security_context.as_ref());
    let csc = spec.security_context.as_ref();
    let caps = csc.and_then(|c| c.capabilities.as_ref());
    Security {
        run_as_user: csc
            .and_then(|c| c.run_as_user)
            .or_else(|| psc.and_then(|p| p.run_as_user)),
        run_as_group: csc
            .and_then(|c| c.run_as_group)
            .or_else(|| psc.and_then(|p| p.run_as_group)),
        read_only_root_filesystem: csc
            .and_then(|c| c.read_only_root_filesystem)
            .unwrap_or(false),
        privileged: csc.and_then(|c| c.privileged).unwrap_or(false),
        allow_privilege_escalation: csc.and_then(|c| c.allow_privilege_escalation),
        capabilities_add: caps.and_then(|c| c.add.clone()).unwrap_or_default(),
        capabilities_drop: caps.and_then(|c| c.drop.clone()).unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ResourceRequirements;
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

    #[test]
    fn parses_resources() {
        let q = |s: &str| Quantity(s.to_string());
        let spec = ContainerSpec {
            name: "c".into(),
            resources: Some(ResourceRequirements {
                limits: Some(
                    [
                        ("memory".to_string(), q("64Mi")),
                        ("cpu".to_string(), q("250m")),
                    ]
                    .into_iter()
                    .collect(),
                ),
                requests: Some([("cpu".to_string(), q("1"))].into_iter().collect()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let r = resources(&spec).expect("valid");
        assert_eq!(r.memory_limit_bytes, Some(64 * 1024 * 1024));
        assert_eq!(r.cpu_limit_millis, Some(250));
        assert_eq!(r.cpu_request_millis, Some(1000));
        assert_eq!(r.memory_request_bytes, None);
    }
}
