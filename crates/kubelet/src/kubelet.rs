//! [`run`]: a whole node agent: registration, heartbeats, the pods bound to the node.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Node;
use kube::api::Api;
use tokio_util::sync::CancellationToken;

use crate::events::Recorder;
use crate::ipam::Ipam;
use crate::manager::{self, LogTable, NodeContext, PodConfig};
use crate::node::{self, NodeConfig};
use crate::runtime::Runtime;
use crate::server;
use crate::statuses::StatusManager;

/// How a node agent runs.
#[derive(Debug, Clone)]
pub struct KubeletConfig {
    pub node_name: String,
    /// The node's address: `InternalIP`, where its kubelet port and NodePorts listen.
    pub node_ip: IpAddr,
    /// Pod directories (volumes, logs) live under `<data_dir>/pods`.
    pub data_dir: PathBuf,
    pub max_pods: u32,
    pub labels: BTreeMap<String, String>,
    pub pods: PodConfig,
    pub lease_duration: Duration,
    pub lease_renew_interval: Duration,
    pub status_update_interval: Duration,
    /// Extra annotations on the Node.
    pub annotations: BTreeMap<String, String>,
    /// The port the node serves `pods/log` on (0: any free port).
    pub kubelet_port: u16,
    /// The bearer token the API server presents to the kubelet port; None accepts anyone
    /// (the cluster's insecure dev mode).
    pub kubelet_token: Option<String>,
    /// How often resource usage is sampled (the window of `kubectl top`).
    pub stats_period: Duration,
}

impl KubeletConfig {
    pub fn new(node_name: String, node_ip: IpAddr, data_dir: PathBuf) -> KubeletConfig {
        KubeletConfig {
            node_name,
            node_ip,
            data_dir,
            max_pods: 2000,
            labels: BTreeMap::new(),
            pods: PodConfig::default(),
            lease_duration: Duration::from_secs(40),
            lease_renew_interval: Duration::from_secs(4),
            status_update_interval: Duration::from_secs(10),
            annotations: BTreeMap::new(),
            kubelet_port: 10250,
            kubelet_token: None,
            stats_period: Duration::from_secs(5),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KubeletError {
    #[error(transparent)]
    Node(#[from] node::NodeError),
    #[error("reading node {name}")]
    ReadNode {
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("node {name} has an invalid podCIDR")]
    Cidr {
        name: String,
        #[source]
        source: crate::ipam::IpamError,
    },
    #[error("listing the pods of node {name}")]
    Recover {
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("starting the kubelet server")]
    Server(#[from] crate::server::ServerError),
    #[error("creating {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// A node agent that has registered and runs its pods.
pub struct Kubelet {
    pub context: Arc<NodeContext>,
    /// Where the kubelet server listens.
    pub server_addr: std::net::SocketAddr,
    task: tokio::task::JoinHandle<()>,
    server: crate::server::KubeletServer,
}

impl Kubelet {
    /// Registers the node, waits for its pod CIDR, recovers what it ran before, and starts
    /// the heartbeats, the status writer and the pod workers. Returns once pods are being
    /// watched; everything stops with `shutdown`.
    pub async fn start(
        config: KubeletConfig,
        client: kube::Client,
        runtimes: Vec<Arc<dyn Runtime>>,
        shutdown: CancellationToken,
    ) -> Result<Kubelet, KubeletError> {
        let pods_dir = config.data_dir.join("pods");
        std::fs::create_dir_all(&pods_dir).map_err(|source| KubeletError::Io {
            path: pods_dir.clone(),
            source,
        })?;
        // The kubelet server first: its port and certificate go into the Node object.
        let cert_dir = config.data_dir.join("kubelet");
        std::fs::create_dir_all(&cert_dir).map_err(|source| KubeletError::Io {
            path: cert_dir.clone(),
            source,
        })?;
        let cert = server::serving_cert(&cert_dir, config.node_ip, &config.node_name)?;
        let logs = Arc::new(LogTable::default());
        let server = server::start(
            SocketAddr::new(config.node_ip, config.kubelet_port),
            &cert,
            logs.clone(),
            config.kubelet_token.clone(),
            shutdown.clone(),
        )
        .await?;
        let server_addr = server.local_addr();
        tokio::spawn(crate::stats::run(
            logs.clone(),
            config.node_name.clone(),
            config.stats_period,
            shutdown.clone(),
        ));
        let mut annotations = config.annotations.clone();
        annotations.insert(
            server::SERVING_CERT_ANNOTATION.to_string(),
            cert.cert_pem.clone(),
        );
        let node_cfg = NodeConfig {
            name: config.node_name.clone(),
            ip: config.node_ip,
            labels: config.labels.clone(),
            annotations,
            runtime_handlers: runtimes.iter().map(|r| r.handler().to_string()).collect(),
            runtime_version: runtimes
                .first()
                .map(|r| format!("{}://{}", r.handler(), r.version()))
                .unwrap_or_default(),
            max_pods: config.max_pods,
            kubelet_port: server_addr.port(),
            lease_duration: config.lease_duration,
            lease_renew_interval: config.lease_renew_interval,
            status_update_interval: config.status_update_interval,
        };
        let node = node::register(&client, &node_cfg).await?;
        let node_uid = node.metadata.uid.clone().unwrap_or_default();
        tokio::spawn(node::heartbeat(
            client.clone(),
            node_cfg,
            node_uid,
            shutdown.clone(),
        ));
        let storage_root = config.data_dir.join("storage");
        std::fs::create_dir_all(&storage_root).map_err(|source| KubeletError::Io {
            path: storage_root.clone(),
            source,
        })?;
        tokio::spawn(
            crate::storage::LocalPath {
                client: client.clone(),
                node: config.node_name.clone(),
                root: storage_root,
            }
            .run(shutdown.clone()),
        );
        let cidr = wait_for_cidr(&client, &config.node_name, &shutdown).await?;
        let ipam = Ipam::new(&cidr).map_err(|source| KubeletError::Cidr {
            name: config.node_name.clone(),
            source,
        })?;
        let statuses = StatusManager::new();
        tokio::spawn(statuses.clone().run(client.clone(), shutdown.clone()));
        let events = Recorder::start(client.clone(), config.node_name.clone(), shutdown.clone());
        let ctx = Arc::new(NodeContext::new(
            client,
            config.node_name.clone(),
            config.node_ip,
            pods_dir,
            runtimes,
            config.pods.clone(),
            events,
            statuses,
            ipam,
            logs,
        ));
        manager::recover(&ctx)
            .await
            .map_err(|source| KubeletError::Recover {
                name: config.node_name.clone(),
                source,
            })?;
        let task = tokio::spawn(manager::run(ctx.clone(), shutdown));
        Ok(Kubelet {
            context: ctx,
            server_addr,
            task,
            server,
        })
    }

    /// Waits until the pod workers and the kubelet server have stopped (after `shutdown`).
    pub async fn wait(self) {
        let _ = self.task.await;
        self.server.stopped().await;
    }
}

/// Waits for the node IPAM controller to give the node its `spec.podCIDR`.
async fn wait_for_cidr(
    client: &kube::Client,
    name: &str,
    shutdown: &CancellationToken,
) -> Result<String, KubeletError> {
    let api: Api<Node> = Api::all(client.clone());
    let started = std::time::Instant::now();
    let mut warned = false;
    loop {
        let node = api
            .get(name)
            .await
            .map_err(|source| KubeletError::ReadNode {
                name: name.to_string(),
                source,
            })?;
        if let Some(cidr) = node.spec.and_then(|s| s.pod_cidr).filter(|c| !c.is_empty()) {
            return Ok(cidr);
        }
        if !warned && started.elapsed() > Duration::from_secs(10) {
            warned = true;
            tracing::warn!(
                node = name,
                "still waiting for the node's podCIDR (is the node IPAM controller running?)"
            );
        }
        tokio::select! {
            _ = shutdown.cancelled() => {
                return Err(KubeletError::ReadNode {
                    name: name.to_string(),
                    source: kube::Error::Service("shutting down".into()),
                });
            }
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
        }
    }
}
