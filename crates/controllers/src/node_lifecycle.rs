//! The node lifecycle controller: notices nodes whose kubelet went silent, taints nodes that
//! are not ready, and evicts pods from nodes with NoExecute taints, as Kubernetes' node
//! lifecycle and taint eviction controllers do.
//!
//! A kubelet proves it is alive by renewing its Lease in `kube-node-lease` and by posting the
//! node status (the Ready condition's `lastHeartbeatTime`). The controller notes *when it
//! saw* either change, by its own clock, so clock skew between machines does not matter; a
//! node not heard from for `node_monitor_grace_period` gets its kubelet conditions set to
//! `Unknown` ([`health`]). The not-ready / unreachable taints then follow the Ready
//! condition, and come off once the kubelet posts Ready again.
//!
//! Pods on a node with NoExecute taints are deleted once their tolerations run out
//! ([`eviction`]), after their Ready condition is set False (Services stop sending them
//! traffic at once). A pod being deleted on an unreachable node is then force-deleted: its
//! kubelet will never confirm the deletion, and its controller waits for the pod to be gone
//! before replacing it.
//!
//! The controller is level-triggered: one pass looks at every node and its pods. Passes run
//! every `node_monitor_period`, on node and relevant pod changes, and at the next moment a
//! node's grace period or a pod's toleration runs out.

pub mod eviction;
pub mod health;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Pod, PodCondition};
use k8s_openapi::jiff::Timestamp;
use kube::Resource;
use kube::api::{Api, DeleteParams, Patch, PatchParams, Preconditions};
use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher;
use serde_json::json;
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::events::{Recorder, now_time};
use crate::informer::{self, Change};
use crate::pods;

/// The event source component, as in Kubernetes.
pub const COMPONENT: &str = "node-controller";
/// Where kubelets keep their Leases.
pub const LEASE_NAMESPACE: &str = "kube-node-lease";

/// How the controller judges nodes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeLifecycleConfig {
    /// How long a node may go unheard before it is considered unreachable
    /// (`--node-monitor-grace-period`).
    pub node_monitor_grace_period: Duration,
    /// How often every node is looked at (`--node-monitor-period`).
    pub node_monitor_period: Duration,
    /// How long a pod without a not-ready / unreachable toleration stays on such a node.
    /// wasmkube's API server adds Kubernetes' 300 s tolerations to every pod it creates, so
    /// this only matters for pods that were created elsewhere or had them removed.
    pub default_toleration_seconds: Duration,
}

impl Default for NodeLifecycleConfig {
    fn default() -> Self {
        NodeLifecycleConfig {
            node_monitor_grace_period: Duration::from_secs(40),
            node_monitor_period: Duration::from_secs(5),
            default_toleration_seconds: Duration::from_secs(300),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("marking node {0} unknown")]
    NodeStatus(String, #[source] kube::Error),
    #[error("updating the taints of node {0}")]
    Taints(String, #[source] kube::Error),
    #[error("marking pod {0} not ready")]
    PodReady(String, #[source] kube::Error),
    #[error("evicting pod {0}")]
    Evict(String, #[source] kube::Error),
}

/// When the controller last heard from a node, and what it heard.
struct Probe {
    lease_renewed: Option<Timestamp>,
    heartbeat: Option<Timestamp>,
    observed: Instant,
}

/// Probe times of every node, shared by the informers that update them and the pass.
#[derive(Default)]
struct Probes {
    by_node: Mutex<HashMap<String, Probe>>,
}

impl Probes {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Probe>> {
        self.by_node.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn entry<'a>(map: &'a mut HashMap<String, Probe>, node: &str) -> &'a mut Probe {
        map.entry(node.to_string()).or_insert_with(|| Probe {
            lease_renewed: None,
            heartbeat: None,
            // A node first seen now (or at the controller's start) gets a full grace period.
            observed: Instant::now(),
        })
    }

    fn lease_seen(&self, node: &str, renewed: Option<Timestamp>) {
        let mut map = self.lock();
        let probe = Self::entry(&mut map, node);
        if renewed.is_some() && probe.lease_renewed != renewed {
            probe.lease_renewed = renewed;
            probe.observed = Instant::now();
        }
    }

    fn heartbeat_seen(&self, node: &str, heartbeat: Option<Timestamp>) {
        let mut map = self.lock();
        let probe = Self::entry(&mut map, node);
        if heartbeat.is_some() && probe.heartbeat != heartbeat {
            probe.heartbeat = heartbeat;
            probe.observed = Instant::now();
        }
    }

    fn observed(&self, node: &str) -> Instant {
        Self::entry(&mut self.lock(), node).observed
    }

    fn forget(&self, node: &str) {
        self.lock().remove(node);
    }
}

fn heartbeat(node: &Node) -> Option<Timestamp> {
    node.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready")?
        .last_heartbeat_time
        .as_ref()
        .map(|t| t.0)
}

struct Ctx {
    client: kube::Client,
    config: NodeLifecycleConfig,
    nodes: Store<Node>,
    pods: Store<Pod>,
    probes: Arc<Probes>,
    recorder: Recorder,
}

/// Runs the controller until `shutdown` is cancelled.
pub async fn run(client: kube::Client, config: NodeLifecycleConfig, shutdown: CancellationToken) {
    let (node_store, node_writer) = reflector::store::<Node>();
    let (lease_store, lease_writer) = reflector::store::<Lease>();
    let (pod_store, pod_writer) = reflector::store::<Pod>();
    let probes = Arc::new(Probes::default());
    let wake = Arc::new(Notify::new());

    let tasks = vec![
        tokio::spawn(informer::run(
            Api::<Node>::all(client.clone()),
            watcher::Config::default(),
            node_writer,
            shutdown.clone(),
            {
                let (probes, wake) = (probes.clone(), wake.clone());
                move |change| {
                    match change {
                        Change::Added(n) | Change::Updated { new: n, .. } => {
                            probes.heartbeat_seen(
                                n.metadata.name.as_deref().unwrap_or(""),
                                heartbeat(&n),
                            );
                        }
                        Change::Deleted(n) => {
                            probes.forget(n.metadata.name.as_deref().unwrap_or(""))
                        }
                    }
                    wake.notify_one();
                }
            },
        )),
        tokio::spawn(informer::run(
            Api::<Lease>::namespaced(client.clone(), LEASE_NAMESPACE),
            watcher::Config::default(),
            lease_writer,
            shutdown.clone(),
            {
                let probes = probes.clone();
                // A renewal alone changes nothing until the kubelet also posts Ready, which
                // wakes the pass through the node watch.
                move |change| {
                    if let Change::Added(l) | Change::Updated { new: l, .. } = change {
                        let renewed = l
                            .spec
                            .as_ref()
                            .and_then(|s| s.renew_time.as_ref())
                            .map(|t| t.0);
                        probes.lease_seen(l.metadata.name.as_deref().unwrap_or(""), renewed);
                    }
                }
            },
        )),
        tokio::spawn(informer::run(
            Api::<Pod>::all(client.clone()),
            watcher::Config::default(),
            pod_writer,
            shutdown.clone(),
            {
                let (nodes, wake) = (node_store.clone(), wake.clone());
                // Only pods on troubled nodes can need anything from this controller.
                move |change| {
                    let pod = match &change {
                        Change::Added(p) | Change::Updated { new: p, .. } => p,
                        Change::Deleted(_) => return,
                    };
                    let node = pods::node_name(pod);
                    if node.is_empty() {
                        return;
                    }
                    let troubled = nodes
                        .get(&reflector::ObjectRef::new(node))
                        .is_some_and(|n| {
                            eviction::has_no_execute(health::taints(&n))
                                || health::ready_status(&n) == Some("Unknown")
                        });
                    if troubled {
                        wake.notify_one();
                    }
                }
            },
        )),
    ];

    let ready = async {
        let _ = node_store.wait_until_ready().await;
        let _ = lease_store.wait_until_ready().await;
        let _ = pod_store.wait_until_ready().await;
    };
    let started = tokio::select! {
        _ = ready => true,
        _ = shutdown.cancelled() => false,
    };
    if started {
        let ctx = Ctx {
            recorder: Recorder::new(client.clone(), COMPONENT, shutdown.clone()),
            client,
            config,
            nodes: node_store,
            pods: pod_store,
            probes,
        };
        monitor(&ctx, &wake, &shutdown).await;
    }
    for t in tasks {
        let _ = t.await;
    }
}

async fn monitor(ctx: &Ctx, wake: &Notify, shutdown: &CancellationToken) {
    let mut eviction_clock: HashMap<String, Instant> = HashMap::new();
    let mut tick = tokio::time::interval(ctx.config.node_monitor_period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let next = pass(ctx, &mut eviction_clock).await;
        // A little past the deadline, so the pass that wakes for it sees it expired.
        let deadline = next.map(|d| d + Duration::from_millis(20));
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
            _ = wake.notified() => {}
            _ = sleep_until(deadline) => {}
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

fn earliest(a: Option<Instant>, b: Instant) -> Option<Instant> {
    Some(a.map_or(b, |a| a.min(b)))
}

/// One look at every node and its pods; returns when the next look is due at the latest.
/// `eviction_clock` holds when each pod (by uid) was first seen under NoExecute taints.
async fn pass(ctx: &Ctx, eviction_clock: &mut HashMap<String, Instant>) -> Option<Instant> {
    let now = Instant::now();
    let mut next: Option<Instant> = None;
    let mut under_taints: HashSet<String> = HashSet::new();
    for node in ctx.nodes.state() {
        let name = node.metadata.name.clone().unwrap_or_default();
        let node = match update_node(ctx, &node, now).await {
            Ok((node, due)) => {
                if let Some(due) = due {
                    next = earliest(next, due);
                }
                node
            }
            Err(e) => {
                crate::log_error(&e, "node-lifecycle", &name);
                // Look again soon rather than a whole period later.
                next = earliest(next, now + Duration::from_secs(1));
                continue;
            }
        };
        let due = handle_pods(ctx, &node, now, eviction_clock, &mut under_taints).await;
        if let Some(due) = due {
            next = earliest(next, due);
        }
    }
    eviction_clock.retain(|uid, _| under_taints.contains(uid));
    next
}

/// Declares a silent node Unknown and sets its taints; returns the node as written and when
/// it goes silent if it is not yet.
async fn update_node(
    ctx: &Ctx,
    node: &Arc<Node>,
    now: Instant,
) -> Result<(Arc<Node>, Option<Instant>), Error> {
    let name = node.metadata.name.clone().unwrap_or_default();
    let api: Api<Node> = Api::all(ctx.client.clone());
    let stamp = now_time();
    let silent_at = ctx.probes.observed(&name) + ctx.config.node_monitor_grace_period;
    let mut node = node.clone();
    let mut due = None;
    if now < silent_at {
        due = Some(silent_at);
    } else if let Some(conditions) = health::unknown_conditions(&node, &stamp) {
        let was_ready = health::ready_status(&node) == Some("True");
        // Conditional on the version judged: a status the kubelet posted meanwhile wins.
        let patch = json!({
            "metadata": {"resourceVersion": node.metadata.resource_version},
            "status": {"conditions": conditions},
        });
        let written = api
            .patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(|e| Error::NodeStatus(name.clone(), e))?;
        tracing::info!(node = %name, "node stopped posting status; marked Unknown");
        if was_ready {
            ctx.recorder.normal(
                node.object_ref(&()),
                "NodeNotReady",
                format!("Node {name} status is now: NodeNotReady"),
            );
        }
        node = Arc::new(written);
    }
    if let Some(taints) =
        health::desired_taints(health::taints(&node), health::ready_status(&node), &stamp)
    {
        let patch = json!({
            "metadata": {"resourceVersion": node.metadata.resource_version},
            "spec": {"taints": taints},
        });
        let written = api
            .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(|e| Error::Taints(name.clone(), e))?;
        node = Arc::new(written);
    }
    Ok((node, due))
}

/// Marks the pods of an unreachable node not ready and evicts the pods whose tolerations
/// ran out; returns when the next one runs out.
async fn handle_pods(
    ctx: &Ctx,
    node: &Node,
    now: Instant,
    eviction_clock: &mut HashMap<String, Instant>,
    under_taints: &mut HashSet<String>,
) -> Option<Instant> {
    let name = node.metadata.name.as_deref().unwrap_or("");
    let unknown = health::ready_status(node) == Some("Unknown");
    let unreachable = health::is_unreachable(node);
    let no_execute: Vec<_> = health::taints(node)
        .iter()
        .filter(|t| t.effect == "NoExecute")
        .cloned()
        .collect();
    if !unknown && no_execute.is_empty() {
        return None;
    }
    let mut next = None;
    for pod in ctx.pods.state_filter(|p| pods::node_name(p) == name) {
        let key = crate::informer::key_of(&*pod);
        if pod.metadata.deletion_timestamp.is_some() {
            if unreachable && let Err(e) = force_delete(ctx, &pod).await {
                crate::log_error(&e, "node-lifecycle", &key);
            }
            continue;
        }
        if unknown
            && pods::is_ready(&pod)
            && let Err(e) = mark_not_ready(ctx, &pod).await
        {
            crate::log_error(&e, "node-lifecycle", &key);
        }
        if no_execute.is_empty() || pods::is_terminal(&pod) {
            continue;
        }
        let tolerations = pod
            .spec
            .as_ref()
            .and_then(|s| s.tolerations.as_deref())
            .unwrap_or(&[]);
        let Some(stay) = eviction::allowed_stay(
            tolerations,
            &no_execute,
            ctx.config.default_toleration_seconds,
        ) else {
            continue;
        };
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        under_taints.insert(uid.clone());
        let deadline = *eviction_clock.entry(uid).or_insert(now) + stay;
        if deadline > now {
            next = earliest(next, deadline);
            continue;
        }
        if let Err(e) = evict(ctx, &pod, unreachable).await {
            crate::log_error(&e, "node-lifecycle", &key);
        }
    }
    next
}

/// Sets the pod's Ready condition False, as Kubernetes' `MarkPodsNotReady` does for pods of
/// a node that stopped reporting: nobody else will, and endpoints must drop the pod now.
async fn mark_not_ready(ctx: &Ctx, pod: &Pod) -> Result<(), Error> {
    let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
    let name = pod.metadata.name.clone().unwrap_or_default();
    let mut conditions: Vec<PodCondition> = pod
        .status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default();
    for c in conditions.iter_mut().filter(|c| c.type_ == "Ready") {
        c.status = "False".into();
        c.last_transition_time = Some(now_time());
    }
    let patch = json!({
        "metadata": {"resourceVersion": pod.metadata.resource_version},
        "status": {"conditions": conditions},
    });
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), ns);
    match api
        .patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        Ok(_) => {
            ctx.recorder.warning(
                pod.object_ref(&()),
                "NodeNotReady",
                "Node is not ready".into(),
            );
            Ok(())
        }
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(Error::PodReady(format!("{ns}/{name}"), e)),
    }
}

/// Deletes a pod whose tolerations ran out (taint manager eviction), and on an unreachable
/// node finishes the deletion at once.
async fn evict(ctx: &Ctx, pod: &Pod, unreachable: bool) -> Result<(), Error> {
    let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
    let name = pod.metadata.name.clone().unwrap_or_default();
    if pods::is_ready(pod) {
        mark_not_ready(ctx, pod).await?;
    }
    ctx.recorder.normal(
        pod.object_ref(&()),
        "TaintManagerEviction",
        format!("Marking for deletion Pod {ns}/{name}"),
    );
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), ns);
    let params = DeleteParams {
        preconditions: Some(Preconditions {
            uid: pod.metadata.uid.clone(),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    match api.delete(&name, &params).await {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => return Ok(()),
        Err(e) => return Err(Error::Evict(format!("{ns}/{name}"), e)),
    }
    tracing::info!(pod = %format!("{ns}/{name}"), "evicted pod from tainted node");
    if unreachable {
        force_delete(ctx, pod).await?;
    }
    Ok(())
}

/// Removes a pod being deleted on an unreachable node without waiting for its kubelet.
async fn force_delete(ctx: &Ctx, pod: &Pod) -> Result<(), Error> {
    let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
    let name = pod.metadata.name.clone().unwrap_or_default();
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), ns);
    // The uid keeps a replacement of the same name (a StatefulSet's) out of reach.
    let params = DeleteParams {
        grace_period_seconds: Some(0),
        preconditions: Some(Preconditions {
            uid: pod.metadata.uid.clone(),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    match api.delete(&name, &params).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => Ok(()),
        Err(e) => Err(Error::Evict(format!("{ns}/{name}"), e)),
    }
}
