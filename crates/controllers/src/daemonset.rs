//! The DaemonSet controller (apps/v1): one pod of `spec.template` on every eligible node, as
//! Kubernetes' daemonset controller does.
//!
//! A node is eligible when the pod's node selector and required node affinity match it, it
//! offers the handler of the pod's RuntimeClass, and the pod (with the tolerations every
//! DaemonSet pod gets) tolerates its NoSchedule and NoExecute taints ([`nodes`]). Pods are
//! created with their node affinity pinned to `metadata.name In [node]` and left to the
//! scheduler to bind, as in Kubernetes since 1.12, so node resources and ports are accounted
//! in one place.
//!
//! Templates are recorded in ControllerRevisions ([`crate::history`]); pods carry the hash of
//! theirs. A sync first fixes what each node has ([`plan::node_plan`]), then, once the cache
//! shows those changes, takes the next rolling-update step ([`plan::rolling_update`]):
//! old-template pods are replaced node by node within `maxUnavailable` (or, with `maxSurge`,
//! new pods start beside old ones). `OnDelete` replaces a pod only after someone deleted it.

pub mod nodes;
pub mod plan;
pub mod status;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet};
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::api::node::v1::RuntimeClass;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use k8s_openapi::jiff::Timestamp;
use kube::Resource;
use kube::api::{Api, DeleteParams, PostParams};
use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher;
use tokio_util::sync::CancellationToken;
use wasmkube_api::selector::{LabelSelector, SelectorError};

use crate::events::Recorder;
use crate::expectations::Expectations;
use crate::history;
use crate::informer::{self, Change, key_of, split_key};
use crate::owner::{self, controller_of};
use crate::pods;
use crate::queue::WorkQueue;
use crate::replicaset::slow_start_batch;
use plan::{Current, NodePods, Plan, Rollout};

/// The event source component, as in Kubernetes.
pub const COMPONENT: &str = "daemonset-controller";
/// DaemonSets synced at once (Kubernetes' `--concurrent-daemonset-syncs` default).
const WORKERS: usize = 2;
/// At most this many creates or deletes per sync (Kubernetes' `BurstReplicas`).
const BURST_REPLICAS: usize = 250;
/// The largest slow-start batch of concurrent creates.
const MAX_BATCH: usize = 50;
/// Deletes in flight at once.
const DELETE_CONCURRENCY: usize = 50;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("daemon set {0} has an invalid selector")]
    Selector(String, #[source] SelectorError),
    #[error("claiming pods for daemon set {0}")]
    ClaimPods(String, #[source] owner::Error),
    #[error("claiming controller revisions for daemon set {0}")]
    ClaimRevisions(String, #[source] owner::Error),
    #[error("recording the template history of daemon set {0}")]
    History(String, #[source] history::Error),
    #[error("creating pods for daemon set {0}")]
    Create(String, #[source] kube::Error),
    #[error("deleting pods of daemon set {0}")]
    Delete(String, #[source] kube::Error),
    #[error("updating the status of daemon set {0}")]
    Status(String, #[source] kube::Error),
    #[error("encoding daemon set {0}")]
    Encode(String, #[source] serde_json::Error),
}

struct Ctx {
    client: kube::Client,
    pods: Store<Pod>,
    daemonsets: Store<DaemonSet>,
    nodes: Store<Node>,
    revisions: Store<ControllerRevision>,
    runtime_classes: Store<RuntimeClass>,
    queue: Arc<WorkQueue>,
    /// Creates and deletes are expected separately: one sync may ask for both (a new pod on
    /// one node, a misplaced one gone from another), and the shared [`Expectations`] holds
    /// one kind per key.
    creations: Arc<Expectations>,
    deletions: Arc<Expectations>,
    recorder: Recorder,
}

/// Runs the controller until `shutdown` is cancelled.
pub async fn run(client: kube::Client, shutdown: CancellationToken) {
    let (pod_store, pod_writer) = reflector::store::<Pod>();
    let (ds_store, ds_writer) = reflector::store::<DaemonSet>();
    let (node_store, node_writer) = reflector::store::<Node>();
    let (rev_store, rev_writer) = reflector::store::<ControllerRevision>();
    let (rc_store, rc_writer) = reflector::store::<RuntimeClass>();
    let queue = WorkQueue::new(shutdown.clone());
    let creations = Arc::new(Expectations::new());
    let deletions = Arc::new(Expectations::new());

    let enqueue_all = {
        let queue = queue.clone();
        let daemonsets = ds_store.clone();
        move || {
            for ds in daemonsets.state() {
                queue.add(key_of(&*ds));
            }
        }
    };
    let mut tasks = vec![
        tokio::spawn(informer::run(
            Api::<DaemonSet>::all(client.clone()),
            watcher::Config::default(),
            ds_writer,
            shutdown.clone(),
            {
                let queue = queue.clone();
                let (creations, deletions) = (creations.clone(), deletions.clone());
                move |change| match change {
                    Change::Added(ds) | Change::Updated { new: ds, .. } => queue.add(key_of(&*ds)),
                    Change::Deleted(ds) => {
                        creations.delete(&key_of(&*ds));
                        deletions.delete(&key_of(&*ds));
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
                let handlers = PodHandlers {
                    queue: queue.clone(),
                    creations: creations.clone(),
                    deletions: deletions.clone(),
                    daemonsets: ds_store.clone(),
                };
                move |change| handlers.on_change(change)
            },
        )),
        tokio::spawn(informer::run(
            Api::<Node>::all(client.clone()),
            watcher::Config::default(),
            node_writer,
            shutdown.clone(),
            {
                let enqueue_all = enqueue_all.clone();
                move |change| {
                    let relevant = match &change {
                        Change::Added(_) | Change::Deleted(_) => true,
                        Change::Updated { old, new } => node_changed(old, new),
                    };
                    if relevant {
                        enqueue_all();
                    }
                }
            },
        )),
        tokio::spawn(informer::run(
            Api::<ControllerRevision>::all(client.clone()),
            watcher::Config::default(),
            rev_writer,
            shutdown.clone(),
            {
                let queue = queue.clone();
                move |change| {
                    let rev = match &change {
                        Change::Added(r) | Change::Deleted(r) | Change::Updated { new: r, .. } => r,
                    };
                    if let Some(r) = controller_of(&rev.metadata)
                        && r.kind == "DaemonSet"
                    {
                        let ns = rev.metadata.namespace.as_deref().unwrap_or("");
                        queue.add(format!("{ns}/{}", r.name));
                    }
                }
            },
        )),
        tokio::spawn(informer::run(
            Api::<RuntimeClass>::all(client.clone()),
            watcher::Config::default(),
            rc_writer,
            shutdown.clone(),
            move |_| enqueue_all(),
        )),
    ];

    // Acting on caches that are still empty would create every pod a second time.
    let ready = async {
        let _ = pod_store.wait_until_ready().await;
        let _ = ds_store.wait_until_ready().await;
        let _ = node_store.wait_until_ready().await;
        let _ = rev_store.wait_until_ready().await;
        let _ = rc_store.wait_until_ready().await;
    };
    let started = tokio::select! {
        _ = ready => true,
        _ = shutdown.cancelled() => false,
    };
    if started {
        let ctx = Arc::new(Ctx {
            recorder: Recorder::new(client.clone(), COMPONENT, shutdown.clone()),
            client,
            pods: pod_store,
            daemonsets: ds_store,
            nodes: node_store,
            revisions: rev_store,
            runtime_classes: rc_store,
            queue,
            creations,
            deletions,
        });
        tasks.extend((0..WORKERS).map(|_| tokio::spawn(worker(ctx.clone()))));
    }
    for t in tasks {
        let _ = t.await;
    }
}

/// Whether a node changed in a way that can change where DaemonSet pods belong. Heartbeats
/// (a new `lastHeartbeatTime` every few seconds) do not.
fn node_changed(old: &Node, new: &Node) -> bool {
    let handlers = |n: &Node| n.status.as_ref().and_then(|s| s.runtime_handlers.clone());
    old.metadata.labels != new.metadata.labels
        || old.spec.as_ref().map(|s| (&s.taints, s.unschedulable))
            != new.spec.as_ref().map(|s| (&s.taints, s.unschedulable))
        || handlers(old) != handlers(new)
}

async fn worker(ctx: Arc<Ctx>) {
    while let Some(key) = ctx.queue.get().await {
        match sync(&ctx, &key).await {
            Ok(requeue) => {
                ctx.queue.forget(&key);
                if let Some(after) = requeue {
                    ctx.queue.add_after(key.clone(), after);
                }
            }
            Err(e) => {
                crate::log_error(&e, "daemonset", &key);
                ctx.queue.add_rate_limited(&key);
            }
        }
        ctx.queue.done(&key);
    }
}

/// Maps pod changes to the DaemonSets that must look at them, and settles expectations.
struct PodHandlers {
    queue: Arc<WorkQueue>,
    creations: Arc<Expectations>,
    deletions: Arc<Expectations>,
    daemonsets: Store<DaemonSet>,
}

impl PodHandlers {
    fn on_change(&self, change: Change<Pod>) {
        match change {
            Change::Added(pod) => {
                if pod.metadata.deletion_timestamp.is_some() {
                    self.deleted(&pod);
                    return;
                }
                match controller_of(&pod.metadata) {
                    Some(r) => {
                        if let Some(key) = self.resolve(&pod, r) {
                            self.creations.creation_observed(&key);
                            self.queue.add(key);
                        }
                    }
                    None => self.enqueue_matching(&pod),
                }
            }
            Change::Updated { old, new } => {
                if old.metadata.resource_version == new.metadata.resource_version {
                    return;
                }
                if new.metadata.deletion_timestamp.is_some() {
                    // A graceful delete has begun: the pod no longer counts as running.
                    self.deleted(&new);
                    return;
                }
                let (old_ref, new_ref) =
                    (controller_of(&old.metadata), controller_of(&new.metadata));
                if old_ref.map(|r| &r.uid) != new_ref.map(|r| &r.uid)
                    && let Some(r) = old_ref
                    && let Some(key) = self.resolve(&old, r)
                {
                    self.queue.add(key);
                }
                match new_ref {
                    Some(r) => {
                        if let Some(key) = self.resolve(&new, r) {
                            self.queue.add(key);
                        }
                    }
                    None => {
                        if old.metadata.labels != new.metadata.labels || old_ref.is_some() {
                            self.enqueue_matching(&new);
                        }
                    }
                }
            }
            Change::Deleted(pod) => self.deleted(&pod),
        }
    }

    fn deleted(&self, pod: &Pod) {
        if let Some(r) = controller_of(&pod.metadata)
            && let Some(key) = self.resolve(pod, r)
        {
            self.deletions.deletion_observed(&key, &key_of(pod));
            self.queue.add(key);
        }
    }

    fn resolve(&self, pod: &Pod, r: &OwnerReference) -> Option<String> {
        if r.kind != "DaemonSet" {
            return None;
        }
        let ns = pod.metadata.namespace.as_deref().unwrap_or("");
        let ds = informer::get(&self.daemonsets, ns, &r.name)?;
        (ds.metadata.uid.as_deref() == Some(r.uid.as_str())).then(|| key_of(&*ds))
    }

    /// Queues every DaemonSet that could adopt this orphan.
    fn enqueue_matching(&self, pod: &Pod) {
        let ns = pod.metadata.namespace.as_deref();
        for ds in self.daemonsets.state() {
            if ds.metadata.namespace.as_deref() != ns {
                continue;
            }
            let Ok(selector) = LabelSelector::try_from(&ds.spec.selector) else {
                continue;
            };
            if !selector.is_everything() && selector.matches_opt(pod.metadata.labels.as_ref()) {
                self.queue.add(key_of(&*ds));
            }
        }
    }
}

/// The revision of the DaemonSet's current template and its older ones.
struct Revisions {
    current: ControllerRevision,
    all: Vec<ControllerRevision>,
    collision_count: Option<i32>,
}

/// Finds (or records) the revision of the current template. A template that matches an older
/// revision (a rollback) makes that revision the newest again instead of adding one.
async fn construct_history(
    ctx: &Ctx,
    ds: &DaemonSet,
    key: &str,
    selector: &LabelSelector,
) -> Result<Revisions, Error> {
    let (ns, name) = split_key(key);
    let api: Api<ControllerRevision> = Api::namespaced(ctx.client.clone(), ns);
    let ds_api: Api<DaemonSet> = Api::namespaced(ctx.client.clone(), ns);
    let candidates = ctx
        .revisions
        .state_filter(|r| r.metadata.namespace.as_deref() == Some(ns));
    let owned = owner::claim(&api, ds, selector, candidates, async || {
        owner::recheck_owner(&ds_api, ds).await
    })
    .await
    .map_err(|e| Error::ClaimRevisions(key.to_string(), e))?;
    let mut all: Vec<ControllerRevision> = owned.iter().map(|r| (**r).clone()).collect();
    let template = &ds.spec.template;
    let data = history::template_data(template).map_err(|e| Error::Encode(key.to_string(), e))?;
    let recorded = ds.status.as_ref().and_then(|s| s.collision_count);
    let mut count = recorded.unwrap_or(0);
    let current = history::ensure(
        &api,
        &mut all,
        history::NewRevision {
            namespace: ns,
            owner_name: name,
            owner_ref: owner::controller_ref(ds),
            labels: template
                .metadata
                .as_ref()
                .and_then(|m| m.labels.clone())
                .unwrap_or_default(),
            data,
        },
        &mut count,
    )
    .await
    .map_err(|e| Error::History(key.to_string(), e))?;
    let collision_count = if count == recorded.unwrap_or(0) {
        recorded
    } else {
        Some(count)
    };
    Ok(Revisions {
        current,
        all,
        collision_count,
    })
}

/// The handler of the template's RuntimeClass: `None` without one, `Some(None)` when the
/// RuntimeClass does not exist.
fn runtime_handler(ctx: &Ctx, ds: &DaemonSet) -> Option<Option<String>> {
    let class = ds
        .spec
        .template
        .spec
        .as_ref()?
        .runtime_class_name
        .as_deref()?;
    let rc = ctx
        .runtime_classes
        .state()
        .into_iter()
        .find(|rc| rc.metadata.name.as_deref() == Some(class));
    Some(rc.map(|rc| rc.handler.clone()))
}

/// Brings one DaemonSet to its desired state; `Ok(Some(d))` asks for another look after `d`.
async fn sync(ctx: &Ctx, key: &str) -> Result<Option<Duration>, Error> {
    let (ns, name) = split_key(key);
    let Some(ds) = informer::get(&ctx.daemonsets, ns, name) else {
        ctx.creations.delete(key);
        ctx.deletions.delete(key);
        return Ok(None);
    };
    if ds.metadata.deletion_timestamp.is_some() {
        // The garbage collector removes its pods; creating more would only race it.
        return Ok(None);
    }
    let spec = &ds.spec;
    let selector =
        LabelSelector::try_from(&spec.selector).map_err(|e| Error::Selector(key.to_string(), e))?;
    if selector.is_everything() {
        // Kubernetes refuses to act on a selector that would claim every pod.
        ctx.recorder.warning(
            ds.object_ref(&()),
            "SelectingAll",
            "This daemon set is selecting all pods. A non-empty selector is required.".into(),
        );
        return Ok(None);
    }
    // Read before looking at the cache: an expectation met after this point only delays the
    // next sync, never lets this one act on a cache that has not caught up.
    let satisfied = ctx.creations.satisfied(key) && ctx.deletions.satisfied(key);
    let candidates = ctx
        .pods
        .state_filter(|p| p.metadata.namespace.as_deref() == Some(ns));
    let pods_api: Api<Pod> = Api::namespaced(ctx.client.clone(), ns);
    let ds_api: Api<DaemonSet> = Api::namespaced(ctx.client.clone(), ns);
    let owned = owner::claim(&pods_api, &*ds, &selector, candidates, async || {
        owner::recheck_owner(&ds_api, &*ds).await
    })
    .await
    .map_err(|e| Error::ClaimPods(key.to_string(), e))?;
    let revisions = construct_history(ctx, &ds, key, &selector).await?;
    let hash = history::hash_of(&revisions.current).to_string();
    let current = Current {
        hash: &hash,
        generation: nodes::template_generation(&ds),
    };

    // Pods by the node they are for; finished pods already being deleted count for nothing.
    let mut node_pods = NodePods::new();
    let mut unplaced: Vec<Arc<Pod>> = Vec::new();
    for pod in owned {
        if pod.metadata.deletion_timestamp.is_some() && pods::is_terminal(&pod) {
            continue;
        }
        match nodes::target_node(&pod) {
            Some(node) => node_pods.entry(node.to_string()).or_default().push(pod),
            None => unplaced.push(pod),
        }
    }
    let handler = runtime_handler(ctx, &ds);
    let probe = nodes::new_pod(&ds, None, &hash);
    let all_nodes = ctx.nodes.state();
    let judged: Vec<(String, nodes::Eligibility)> = all_nodes
        .iter()
        .map(|n| {
            let e = nodes::eligibility(&probe, n, handler.as_ref().map(|h| h.as_deref()));
            (n.metadata.name.clone().unwrap_or_default(), e)
        })
        .collect();

    let min_ready = spec.min_ready_seconds.unwrap_or(0);
    let now = Timestamp::now();
    let mut sync_error = None;
    if satisfied {
        let rolling = spec
            .update_strategy
            .as_ref()
            .and_then(|s| s.type_.as_deref())
            .unwrap_or("RollingUpdate")
            == "RollingUpdate";
        let rolling_params = spec
            .update_strategy
            .as_ref()
            .and_then(|s| s.rolling_update.as_ref());
        let desired = judged.iter().filter(|(_, e)| e.should_run).count();
        let max_surge = if rolling {
            plan::scaled(
                rolling_params.and_then(|r| r.max_surge.as_ref()),
                desired,
                0,
            )
        } else {
            0
        };
        let rollout = Rollout {
            current,
            surge: max_surge > 0,
            min_ready_seconds: min_ready,
            now,
        };
        let mut todo = Plan::default();
        for (node, eligibility) in &judged {
            let on_node = node_pods.get(node).map(Vec::as_slice).unwrap_or(&[]);
            plan::node_plan(node, *eligibility, on_node, rollout, &mut todo);
        }
        // Pods pinned to a node that no longer exists never get scheduled, and no pod
        // garbage collection cleans up a pod without a node: they are ours to delete.
        let known: HashSet<&str> = judged.iter().map(|(n, _)| n.as_str()).collect();
        for (node, on_node) in &node_pods {
            if known.contains(node.as_str()) {
                continue;
            }
            todo.delete.extend(
                on_node
                    .iter()
                    .filter(|p| !pods::is_scheduled(p) && p.metadata.deletion_timestamp.is_none())
                    .filter_map(|p| p.metadata.name.clone()),
            );
        }
        if todo.is_empty() && rolling {
            let mut wanted: NodePods = NodePods::new();
            for (node, e) in &judged {
                if e.should_run {
                    wanted.insert(
                        node.clone(),
                        node_pods.get(node).cloned().unwrap_or_default(),
                    );
                }
            }
            let max_unavailable = plan::scaled(
                rolling_params.and_then(|r| r.max_unavailable.as_ref()),
                desired,
                1,
            );
            todo =
                plan::rolling_update(&wanted, max_surge, max_unavailable, current, min_ready, now);
        }
        sync_error = sync_nodes(ctx, &ds, key, &hash, todo).await.err();
        if sync_error.is_none() {
            cleanup_history(ctx, &ds, &revisions, &node_pods).await?;
        }
    }

    let new_status = status::calculate(
        &ds,
        &judged,
        &node_pods,
        current,
        revisions.collision_count,
        now,
    );
    if ds.status.as_ref() != Some(&new_status) {
        // Unconditional: this controller is the only writer of the status.
        match crate::status_subresource::replace_status(&ds_api, name, &new_status).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 404 => return Ok(None),
            Err(e) => return Err(Error::Status(key.to_string(), e)),
        }
    }
    match sync_error {
        Some(e) => Err(e),
        None => Ok(status::next_availability_check(min_ready, &node_pods, now)),
    }
}

/// Creates pods on `plan.create_on` and deletes `plan.delete`, with expectations for both.
async fn sync_nodes(
    ctx: &Ctx,
    ds: &DaemonSet,
    key: &str,
    hash: &str,
    mut todo: Plan,
) -> Result<(), Error> {
    let (ns, _) = split_key(key);
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), ns);
    todo.create_on.truncate(BURST_REPLICAS);
    todo.delete.truncate(BURST_REPLICAS);
    ctx.creations.expect_creations(key, todo.create_on.len());
    ctx.deletions
        .expect_deletions(key, todo.delete.iter().map(|p| format!("{ns}/{p}")));

    let next = std::sync::Mutex::new(todo.create_on.iter());
    let (created, create_error) = slow_start_batch(todo.create_on.len(), MAX_BATCH, || {
        let node = next
            .lock()
            .ok()
            .and_then(|mut it| it.next().cloned())
            .unwrap_or_default();
        let api = api.clone();
        async move { create_pod(ctx, &api, ds, &node, hash).await }
    })
    .await;
    if created < todo.create_on.len() {
        // What was not created will never be observed.
        ctx.creations
            .lower_creations(key, todo.create_on.len() - created);
    }

    let delete_errors: Vec<kube::Error> = futures::stream::iter(todo.delete)
        .map(|pod_name| {
            let api = api.clone();
            async move {
                match api.delete(&pod_name, &DeleteParams::default()).await {
                    Ok(_) => {
                        ctx.recorder.normal(
                            ds.object_ref(&()),
                            "SuccessfulDelete",
                            format!("Deleted pod: {pod_name}"),
                        );
                        None
                    }
                    Err(e) => {
                        ctx.deletions
                            .deletion_observed(key, &format!("{ns}/{pod_name}"));
                        match e {
                            kube::Error::Api(s) if s.code == 404 => None,
                            e => {
                                ctx.recorder.warning(
                                    ds.object_ref(&()),
                                    "FailedDelete",
                                    format!("Error deleting: {e}"),
                                );
                                Some(e)
                            }
                        }
                    }
                }
            }
        })
        .buffer_unordered(DELETE_CONCURRENCY)
        .filter_map(|e| async move { e })
        .collect()
        .await;
    if let Some(e) = create_error {
        return Err(Error::Create(key.to_string(), e));
    }
    if let Some(e) = delete_errors.into_iter().next() {
        return Err(Error::Delete(key.to_string(), e));
    }
    Ok(())
}

/// Creates the pod for `node`; `Ok(false)` when it was not created but that is not a failure.
async fn create_pod(
    ctx: &Ctx,
    api: &Api<Pod>,
    ds: &DaemonSet,
    node: &str,
    hash: &str,
) -> Result<bool, kube::Error> {
    let pod = nodes::new_pod(ds, Some(node), hash);
    match api.create(&PostParams::default(), &pod).await {
        Ok(created) => {
            ctx.recorder.normal(
                ds.object_ref(&()),
                "SuccessfulCreate",
                format!("Created pod: {}", created.metadata.name.unwrap_or_default()),
            );
            Ok(true)
        }
        // The namespace is going away, and the DaemonSet with it.
        Err(kube::Error::Api(s)) if s.code == 403 && s.message.contains("being terminated") => {
            Ok(false)
        }
        Err(e) => {
            ctx.recorder.warning(
                ds.object_ref(&()),
                "FailedCreate",
                format!("Error creating: {e}"),
            );
            Err(e)
        }
    }
}

/// Deletes old revisions beyond `revisionHistoryLimit`, keeping the current one and those
/// live pods still carry.
async fn cleanup_history(
    ctx: &Ctx,
    ds: &DaemonSet,
    revisions: &Revisions,
    node_pods: &NodePods,
) -> Result<(), Error> {
    let ns = ds.metadata.namespace.as_deref().unwrap_or("");
    let limit = ds.spec.revision_history_limit.unwrap_or(10);
    let live_hashes: HashSet<&str> = node_pods
        .values()
        .flatten()
        .filter_map(|p| {
            p.metadata
                .labels
                .as_ref()?
                .get(history::REVISION_HASH_LABEL)
        })
        .map(String::as_str)
        .collect();
    let mut live: HashSet<String> = revisions
        .all
        .iter()
        .filter(|r| live_hashes.contains(history::hash_of(r)))
        .filter_map(|r| r.metadata.name.clone())
        .collect();
    live.extend(revisions.current.metadata.name.clone());
    let api: Api<ControllerRevision> = Api::namespaced(ctx.client.clone(), ns);
    history::truncate(
        &api,
        &revisions.all,
        &live,
        usize::try_from(limit).unwrap_or(0),
    )
    .await
    .map_err(|e| Error::History(key_of(ds), e))
}
