//! The pod manager: watches the pods bound to this node and gives each its worker.
//!
//! It owns what workers share: the node's IP allocator, the status manager, the event
//! recorder, the probe HTTP client, and the table `pods/log` is answered from.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use kube::runtime::watcher;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::backoff::BackoffPolicy;
use crate::events::Recorder;
use crate::ipam::Ipam;
use crate::pod::Worker;
use crate::runtime::Runtime;
use crate::server::{ContainerLog, LogLookupError, PodLogs};
use crate::statuses::StatusManager;

/// Tunables of the pod workers.
#[derive(Debug, Clone)]
pub struct PodConfig {
    pub backoff: BackoffPolicy,
    /// A container's log file is capped at this size.
    pub log_max_bytes: u64,
}

impl Default for PodConfig {
    fn default() -> Self {
        PodConfig {
            backoff: BackoffPolicy::default(),
            log_max_bytes: 10 * 1024 * 1024,
        }
    }
}

/// Which log files hold a container's current and previous instance, and the running
/// instance itself (for resource usage).
#[derive(Clone, Default)]
pub struct LogEntry {
    /// Restart number of the newest instance that started.
    pub current: Option<u32>,
    pub previous: Option<u32>,
    /// Cancelled when the running instance ends; None when none runs.
    pub running: Option<CancellationToken>,
    /// Why the container never started yet.
    pub waiting: Option<String>,
    /// The running instance, for its resource usage.
    pub handle: Option<Arc<dyn crate::runtime::Container>>,
}

/// A pod's log table, written by its worker.
pub struct PodLogState {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub dir: PathBuf,
    pub containers: Mutex<HashMap<String, LogEntry>>,
    /// The pod's IP once it has one (port forwarding connects there).
    pub ip: Mutex<Option<IpAddr>>,
}

/// The node's pod table: (namespace, name) → the pod's log state and running containers.
/// The kubelet server answers `pods/log` and `/stats/summary` from it; workers fill it.
#[derive(Default)]
pub struct LogTable {
    pods: Mutex<HashMap<(String, String), Arc<PodLogState>>>,
    /// The latest resource usage summary (see [`crate::stats`]).
    pub summary: Mutex<serde_json::Value>,
}

impl LogTable {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), Arc<PodLogState>>> {
        self.pods.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every pod's state.
    pub fn all(&self) -> Vec<Arc<PodLogState>> {
        self.lock().values().cloned().collect()
    }

    /// The log state of a pod on this node.
    pub fn pod(&self, namespace: &str, name: &str) -> Option<Arc<PodLogState>> {
        self.lock()
            .get(&(namespace.to_string(), name.to_string()))
            .cloned()
    }
}

impl PodLogs for LogTable {
    fn pod_address(&self, namespace: &str, pod: &str) -> Option<(IpAddr, String)> {
        let state = self.pod(namespace, pod)?;
        let ip = *state.ip.lock().unwrap_or_else(|p| p.into_inner());
        ip.map(|ip| (ip, state.uid.clone()))
    }

    fn running_container(
        &self,
        namespace: &str,
        pod: &str,
        container: &str,
    ) -> Result<Arc<dyn crate::runtime::Container>, LogLookupError> {
        let state = self
            .pod(namespace, pod)
            .ok_or_else(|| LogLookupError::PodNotFound {
                pod: pod.to_string(),
            })?;
        let entries = state.containers.lock().unwrap_or_else(|p| p.into_inner());
        let entry = entries
            .get(container)
            .ok_or_else(|| LogLookupError::ContainerNotFound {
                pod: pod.to_string(),
                container: container.to_string(),
            })?;
        entry
            .handle
            .clone()
            .filter(|_| entry.running.is_some())
            .ok_or_else(|| LogLookupError::NotRunning {
                pod: pod.to_string(),
                container: container.to_string(),
            })
    }

    fn summary(&self) -> serde_json::Value {
        self.summary
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn container_log(
        &self,
        namespace: &str,
        pod: &str,
        container: &str,
        previous: bool,
    ) -> Result<ContainerLog, LogLookupError> {
        let state = self
            .pod(namespace, pod)
            .ok_or_else(|| LogLookupError::PodNotFound {
                pod: pod.to_string(),
            })?;
        let entries = state.containers.lock().unwrap_or_else(|p| p.into_inner());
        let e = entries
            .get(container)
            .ok_or_else(|| LogLookupError::ContainerNotFound {
                pod: pod.to_string(),
                container: container.to_string(),
            })?;
        let ended: futures::future::BoxFuture<'static, ()> = Box::pin(async {});
        if previous {
            let n = e.previous.ok_or_else(|| LogLookupError::PreviousNotFound {
                pod: pod.to_string(),
                container: container.to_string(),
            })?;
            return Ok(ContainerLog {
                path: crate::logs::log_path(&state.dir, container, n),
                done: ended,
            });
        }
        let n = e.current.ok_or_else(|| LogLookupError::Waiting {
            pod: pod.to_string(),
            container: container.to_string(),
            reason: e
                .waiting
                .clone()
                .unwrap_or_else(|| "ContainerCreating".into()),
        })?;
        Ok(ContainerLog {
            path: crate::logs::log_path(&state.dir, container, n),
            done: match &e.running {
                Some(token) => Box::pin(token.clone().cancelled_owned()),
                None => ended,
            },
        })
    }
}

/// What every worker of the node shares.
pub struct NodeContext {
    pub client: kube::Client,
    pub node_name: String,
    pub node_ip: IpAddr,
    pub pods_dir: PathBuf,
    pub runtimes: Vec<Arc<dyn Runtime>>,
    pub config: PodConfig,
    pub events: Recorder,
    pub statuses: Arc<StatusManager>,
    pub probe_http: reqwest::Client,
    ipam: tokio::sync::Mutex<Ipam>,
    /// Addresses pods already had when the node started, by pod uid.
    preassigned: Mutex<HashMap<String, Ipv4Addr>>,
    /// `pods/log` lookups.
    pub logs: Arc<LogTable>,
}

impl NodeContext {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        client: kube::Client,
        node_name: String,
        node_ip: IpAddr,
        pods_dir: PathBuf,
        runtimes: Vec<Arc<dyn Runtime>>,
        config: PodConfig,
        events: Recorder,
        statuses: Arc<StatusManager>,
        ipam: Ipam,
        logs: Arc<LogTable>,
    ) -> NodeContext {
        // Probes talk to the node's own pods; kube-probe does not verify certificates either.
        let probe_http = reqwest::Client::builder()
            .danger_accept_invalid_certs(true)
            .no_proxy()
            .pool_max_idle_per_host(1)
            .build()
            .unwrap_or_default();
        NodeContext {
            client,
            node_name,
            node_ip,
            pods_dir,
            runtimes,
            config,
            events,
            statuses,
            probe_http,
            ipam: tokio::sync::Mutex::new(ipam),
            preassigned: Mutex::new(HashMap::new()),
            logs,
        }
    }

    /// A pod's directory: volumes and logs.
    pub fn pod_dir(&self, namespace: &str, name: &str, uid: &str) -> PathBuf {
        self.pods_dir.join(format!("{namespace}_{name}_{uid}"))
    }

    /// The pod's IP: the one it had before a restart, or a new one.
    pub async fn take_ip(&self, uid: &str) -> Result<Ipv4Addr, String> {
        if let Some(ip) = self
            .preassigned
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(uid)
        {
            return Ok(ip);
        }
        self.ipam
            .lock()
            .await
            .allocate()
            .map_err(|e| format!("Failed to create pod sandbox: {e}"))
    }

    pub async fn release_ip(&self, ip: Ipv4Addr) {
        self.ipam.lock().await.release(ip);
    }

    pub async fn ips_in_use(&self) -> usize {
        self.ipam.lock().await.in_use()
    }

    fn log_state(&self, pod: &Pod) -> Arc<PodLogState> {
        let ns = pod.metadata.namespace.clone().unwrap_or_default();
        let name = pod.metadata.name.clone().unwrap_or_default();
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let state = Arc::new(PodLogState {
            dir: self.pod_dir(&ns, &name, &uid),
            namespace: ns.clone(),
            name: name.clone(),
            uid,
            containers: Mutex::new(HashMap::new()),
            ip: Mutex::new(None),
        });
        self.logs.lock().insert((ns, name), state.clone());
        state
    }

    pub(crate) fn forget_logs(&self, namespace: &str, name: &str, uid: &str) {
        let mut logs = self.logs.lock();
        let key = (namespace.to_string(), name.to_string());
        if logs.get(&key).is_some_and(|s| s.uid == uid) {
            logs.remove(&key);
        }
    }
}

struct Handle {
    tx: watch::Sender<Option<Arc<Pod>>>,
}

fn uid(pod: &Pod) -> String {
    pod.metadata.uid.clone().unwrap_or_default()
}

fn is_terminal(pod: &Pod) -> bool {
    matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    )
}

/// Reserves the addresses of the pods the node already runs and removes the directories of
/// pods that no longer exist. Runs once, before any worker starts.
pub async fn recover(ctx: &NodeContext) -> Result<(), kube::Error> {
    let api: Api<Pod> = Api::all(ctx.client.clone());
    let params = ListParams::default().fields(&format!("spec.nodeName={}", ctx.node_name));
    let pods = api.list(&params).await?;
    let mut known: HashSet<String> = HashSet::new();
    {
        let mut ipam = ctx.ipam.lock().await;
        let mut pre = ctx.preassigned.lock().unwrap_or_else(|p| p.into_inner());
        for pod in &pods.items {
            let ns = pod.metadata.namespace.clone().unwrap_or_default();
            let name = pod.metadata.name.clone().unwrap_or_default();
            known.insert(format!("{ns}_{name}_{}", uid(pod)));
            if is_terminal(pod) {
                continue;
            }
            let ip = pod
                .status
                .as_ref()
                .and_then(|s| s.pod_ip.as_deref())
                .and_then(|s| s.parse::<Ipv4Addr>().ok());
            if let Some(ip) = ip
                && ipam.reserve(ip)
            {
                pre.insert(uid(pod), ip);
            }
        }
    }
    remove_orphans(&ctx.pods_dir, &known);
    Ok(())
}

/// Removes pod directories (volumes, logs) of pods that are gone.
fn remove_orphans(pods_dir: &Path, known: &HashSet<String>) {
    let Ok(entries) = std::fs::read_dir(pods_dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        if !known.contains(&name) {
            tracing::info!(dir = %name, "removing the directory of a pod that no longer exists");
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// Watches the node's pods and runs a worker for each until `shutdown`; then waits for the
/// workers to stop their containers.
pub async fn run(ctx: Arc<NodeContext>, shutdown: CancellationToken) {
    let api: Api<Pod> = Api::all(ctx.client.clone());
    let config = watcher::Config::default().fields(&format!("spec.nodeName={}", ctx.node_name));
    let mut stream = watcher(api, config).boxed();
    let mut workers: HashMap<String, Handle> = HashMap::new();
    let tracker = TaskTracker::new();
    let (ended_tx, mut ended_rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    // Pods seen during a relist: those missing from it were deleted while we were away.
    let mut relisted: Option<HashSet<String>> = None;
    loop {
        let ev = tokio::select! {
            _ = shutdown.cancelled() => break,
            Some(uid) = ended_rx.recv() => {
                if workers.get(&uid).is_some_and(|h| h.tx.receiver_count() == 0) {
                    workers.remove(&uid);
                }
                continue;
            }
            ev = stream.next() => ev,
        };
        let Some(ev) = ev else { break };
        let ev = match ev {
            Ok(ev) => ev,
            Err(e) => {
                tracing::warn!(error = %e, "watching the node's pods failed; retrying");
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                continue;
            }
        };
        match ev {
            watcher::Event::Init => relisted = Some(HashSet::new()),
            watcher::Event::InitApply(pod) | watcher::Event::Apply(pod) => {
                let id = uid(&pod);
                if let Some(seen) = relisted.as_mut() {
                    seen.insert(id.clone());
                }
                let pod = Arc::new(pod);
                match workers.get(&id) {
                    Some(h) if h.tx.receiver_count() > 0 => {
                        let _ = h.tx.send(Some(pod));
                    }
                    _ => {
                        let (tx, rx) = watch::channel(Some(pod.clone()));
                        let logs = ctx.log_state(&pod);
                        let worker = Worker::new(ctx.clone(), pod, logs);
                        let stop = shutdown.clone();
                        let ended = ended_tx.clone();
                        let id2 = id.clone();
                        tracker.spawn(async move {
                            worker.run(rx, stop).await;
                            let _ = ended.send(id2);
                        });
                        workers.insert(id, Handle { tx });
                    }
                }
            }
            watcher::Event::Delete(pod) => {
                if let Some(h) = workers.get(&uid(&pod)) {
                    let _ = h.tx.send(None);
                }
            }
            watcher::Event::InitDone => {
                if let Some(seen) = relisted.take() {
                    for (id, h) in &workers {
                        if !seen.contains(id) {
                            let _ = h.tx.send(None);
                        }
                    }
                }
            }
        }
    }
    tracker.close();
    // Workers see the same shutdown token and stop their containers.
    let _ = tokio::time::timeout(std::time::Duration::from_secs(10), tracker.wait()).await;
}
