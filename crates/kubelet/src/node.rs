//! The Node object and its heartbeats.
//!
//! Registration creates (or adopts) the Node with its capacity, addresses, system info and the
//! runtime handlers the node offers. Two heartbeats keep it alive, as in Kubernetes: the Lease in
//! `kube-node-lease` is renewed every few seconds (cheap, what the node lifecycle controller
//! watches), and the Node status (Ready condition, capacity) is refreshed less often.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

/// What the node reports about itself.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    pub name: String,
    pub ip: IpAddr,
    pub labels: BTreeMap<String, String>,
    /// Set on the Node at registration, e.g. the kubelet's serving certificate
    /// ([`crate::server::SERVING_CERT_ANNOTATION`]). Other annotations on an adopted Node stay.
    pub annotations: BTreeMap<String, String>,
    /// RuntimeClass handlers offered (`wasmtime`, `runc`).
    pub runtime_handlers: Vec<String>,
    /// The runtime's name and version for `nodeInfo.containerRuntimeVersion`.
    pub runtime_version: String,
    pub max_pods: u32,
    /// The port the node serves logs, exec and port-forward on.
    pub kubelet_port: u16,
    pub lease_duration: Duration,
    pub lease_renew_interval: Duration,
    pub status_update_interval: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("registering node {name}")]
    Register {
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("updating node {name} status")]
    Status {
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("renewing the lease of node {name}")]
    Lease {
        name: String,
        #[source]
        source: kube::Error,
    },
}

/// Total memory and CPUs of this machine, read from the OS.
pub fn machine_capacity() -> (u64, u32) {
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get() as u32)
        .unwrap_or(1);
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map(|kb| kb * 1024)
        .unwrap_or(0);
    (mem, cpus)
}

fn kernel_version() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

fn os_image() -> String {
    std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("PRETTY_NAME="))
                .map(|v| v.trim_matches('"').to_string())
        })
        .unwrap_or_else(|| "Linux".into())
}

fn now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

fn micro_now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string()
}

/// The node's status as the kubelet reports it.
pub fn node_status(cfg: &NodeConfig, ready: bool, transition: &str) -> Value {
    let (mem, cpus) = machine_capacity();
    let capacity = json!({
        "cpu": cpus.to_string(),
        "memory": format!("{}Ki", mem / 1024),
        "pods": cfg.max_pods.to_string(),
        "ephemeral-storage": "10Gi",
    });
    // Kubernetes reserves some of the machine for the system; keep a little memory back so a
    // node full of pods still has room for itself.
    let reserved = (mem / 20).min(512 * 1024 * 1024);
    let allocatable = json!({
        "cpu": cpus.to_string(),
        "memory": format!("{}Ki", mem.saturating_sub(reserved) / 1024),
        "pods": cfg.max_pods.to_string(),
        "ephemeral-storage": "10Gi",
    });
    let stamp = now();
    let condition = |ty: &str, status: &str, reason: &str, message: &str| {
        json!({"type": ty, "status": status, "reason": reason, "message": message,
            "lastHeartbeatTime": stamp, "lastTransitionTime": transition})
    };
    json!({
        "capacity": capacity,
        "allocatable": allocatable,
        "phase": "Running",
        "conditions": [
            condition("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
            condition("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
            condition("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
            if ready {
                condition("Ready", "True", "KubeletReady", "kubelet is posting ready status")
            } else {
                condition("Ready", "False", "KubeletNotReady", "kubelet is starting")
            },
        ],
        "addresses": [
            {"type": "InternalIP", "address": cfg.ip.to_string()},
            {"type": "Hostname", "address": cfg.name},
        ],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": cfg.kubelet_port}},
        "nodeInfo": {
            "machineID": "",
            "systemUUID": "",
            "bootID": "",
            "kernelVersion": kernel_version(),
            "osImage": os_image(),
            "containerRuntimeVersion": cfg.runtime_version,
            "kubeletVersion": "v1.37.0-wasmkube",
            "kubeProxyVersion": "v1.37.0-wasmkube",
            "operatingSystem": "linux",
            "architecture": goarch(),
        },
        "runtimeHandlers": cfg.runtime_handlers.iter().map(|h| json!({"name": h, "features": {"recursiveReadOnlyMounts": false, "userNamespaces": false}})).collect::<Vec<_>>(),
    })
}

fn goarch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

fn labels(cfg: &NodeConfig) -> BTreeMap<String, String> {
    let mut l = cfg.labels.clone();
    l.insert("kubernetes.io/hostname".into(), cfg.name.clone());
    l.insert("kubernetes.io/os".into(), "linux".into());
    l.insert("kubernetes.io/arch".into(), goarch().into());
    l.insert("beta.kubernetes.io/os".into(), "linux".into());
    l.insert("beta.kubernetes.io/arch".into(), goarch().into());
    for h in &cfg.runtime_handlers {
        l.insert(format!("wasmkube.io/runtime-{h}"), "true".into());
    }
    l
}

/// Creates the Node, or adopts an existing one of the same name (a restarted kubelet), and
/// sets its labels and status.
pub async fn register(client: &kube::Client, cfg: &NodeConfig) -> Result<Node, NodeError> {
    let api: Api<Node> = Api::all(client.clone());
    let err = |source| NodeError::Register {
        name: cfg.name.clone(),
        source,
    };
    let existing = api.get_opt(&cfg.name).await.map_err(err)?;
    if existing.is_none() {
        let node: Node = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": cfg.name, "labels": labels(cfg), "annotations": cfg.annotations},
            "spec": {},
        }))
        .map_err(|e| err(kube::Error::SerdeError(e)))?;
        match api.create(&PostParams::default(), &node).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 409 => {}
            Err(e) => return Err(err(e)),
        }
    } else {
        let patch = json!({"metadata": {"labels": labels(cfg), "annotations": cfg.annotations}});
        api.patch(&cfg.name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(err)?;
    }
    let status = json!({"status": node_status(cfg, true, &now())});
    api.patch_status(&cfg.name, &PatchParams::default(), &Patch::Merge(&status))
        .await
        .map_err(|source| NodeError::Status {
            name: cfg.name.clone(),
            source,
        })
}

/// Renews (creating if needed) the node's Lease.
pub async fn renew_lease(
    client: &kube::Client,
    cfg: &NodeConfig,
    uid: &str,
) -> Result<(), NodeError> {
    let api: Api<Lease> = Api::namespaced(client.clone(), "kube-node-lease");
    let err = |source| NodeError::Lease {
        name: cfg.name.clone(),
        source,
    };
    let spec = json!({
        "holderIdentity": cfg.name,
        "leaseDurationSeconds": cfg.lease_duration.as_secs(),
        "renewTime": micro_now(),
    });
    match api.get_opt(&cfg.name).await.map_err(err)? {
        Some(_) => {
            api.patch(
                &cfg.name,
                &PatchParams::default(),
                &Patch::Merge(&json!({"spec": spec})),
            )
            .await
            .map_err(err)?;
        }
        None => {
            let lease: Lease = serde_json::from_value(json!({
                "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": cfg.name, "namespace": "kube-node-lease",
                    "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": cfg.name, "uid": uid}]},
                "spec": spec,
            }))
            .map_err(|e| err(kube::Error::SerdeError(e)))?;
            match api.create(&PostParams::default(), &lease).await {
                Ok(_) => {}
                Err(kube::Error::Api(e)) if e.code == 409 => {}
                Err(e) => return Err(err(e)),
            }
        }
    }
    Ok(())
}

/// Keeps the Lease and the Node status fresh until `shutdown`. Errors are logged and retried
/// on the next beat: a transient API failure must not stop the heartbeat.
pub async fn heartbeat(
    client: kube::Client,
    cfg: NodeConfig,
    uid: String,
    shutdown: CancellationToken,
) {
    let api: Api<Node> = Api::all(client.clone());
    let mut lease_tick = tokio::time::interval(cfg.lease_renew_interval);
    let mut status_tick = tokio::time::interval(cfg.status_update_interval);
    let transition = now();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = lease_tick.tick() => {
                if let Err(e) = renew_lease(&client, &cfg, &uid).await {
                    tracing::warn!(error = %e, "lease renewal failed");
                }
            }
            _ = status_tick.tick() => {
                let status = json!({"status": node_status(&cfg, true, &transition)});
                if let Err(e) = api.patch_status(&cfg.name, &PatchParams::default(), &Patch::Merge(&status)).await {
                    tracing::warn!(error = %e, "node status update failed");
                }
            }
        }
    }
}
