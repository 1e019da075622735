//! The garbage collector: deletes objects whose owners are all gone, and carries out the
//! `Foreground` and `Orphan` deletion propagation policies, with Kubernetes' semantics.
//!
//! - An object whose `metadata.ownerReferences` name only owners that no longer exist (no
//!   object with that uid) is deleted in the background. References to vanished owners beside
//!   a living one are just removed.
//! - An owner deleted with `propagationPolicy: Foreground` carries the `foregroundDeletion`
//!   finalizer (the API server adds it): its dependents are deleted, and once none whose
//!   reference has `blockOwnerDeletion: true` is left, the finalizer is removed and the owner
//!   goes. Dependents that have dependents of their own are deleted in the foreground too.
//! - An owner deleted with `propagationPolicy: Orphan` carries the `orphan` finalizer: its
//!   dependents lose their reference to it, then the finalizer is removed.
//!
//! Watches on the resource kinds that carry owner references in practice feed a uid → object
//! [`graph`]; every change queues the uids it affects on a [`WorkQueue`], and workers decide
//! and act per uid. An owner the graph does not know (its kind is not watched, or its watch
//! event has not arrived yet) is looked up through the API before anything is deleted for its
//! absence, exactly as Kubernetes does.

pub mod graph;

use std::collections::HashSet;
use std::sync::{Arc, Mutex, MutexGuard};

use futures::StreamExt;
use kube::api::{
    Api, DeleteParams, DynamicObject, Patch, PatchParams, Preconditions, PropagationPolicy,
};
use kube::discovery::ApiResource;
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::json;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use wasmkube_api::registry::{self, ResourceInfo};

use crate::queue::WorkQueue;
use graph::{Decision, Graph, Node, OwnerPlan, OwnerState, Propagation};

/// Uids processed at once (Kubernetes' `--concurrent-gc-syncs` default).
const WORKERS: usize = 20;
/// Owners known to be gone are remembered up to this many, sparing repeated lookups.
const ABSENT_CACHE: usize = 4096;

/// The kinds whose objects the collector follows, as (group, version, resource).
pub const WATCHED: &[(&str, &str, &str)] = &[
    ("", "v1", "pods"),
    ("", "v1", "configmaps"),
    ("", "v1", "secrets"),
    ("", "v1", "services"),
    ("", "v1", "endpoints"),
    ("", "v1", "persistentvolumeclaims"),
    ("", "v1", "serviceaccounts"),
    ("apps", "v1", "replicasets"),
    ("apps", "v1", "deployments"),
    ("apps", "v1", "daemonsets"),
    ("apps", "v1", "statefulsets"),
    ("apps", "v1", "controllerrevisions"),
    ("batch", "v1", "jobs"),
    ("batch", "v1", "cronjobs"),
    ("discovery.k8s.io", "v1", "endpointslices"),
];

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("looking up owner {kind} {name} of {dependent}")]
    Owner {
        kind: String,
        name: String,
        dependent: String,
        #[source]
        source: kube::Error,
    },
    #[error("reading {0}")]
    Read(String, #[source] kube::Error),
    #[error("deleting {0}")]
    Delete(String, #[source] kube::Error),
    #[error("removing owner references from {0}")]
    Release(String, #[source] kube::Error),
    #[error("removing finalizer {finalizer} from {object}")]
    Finalizer {
        finalizer: &'static str,
        object: String,
        #[source]
        source: kube::Error,
    },
}

fn api_resource(info: &ResourceInfo) -> ApiResource {
    ApiResource {
        group: info.group.to_string(),
        version: info.version.to_string(),
        api_version: info.api_version(),
        kind: info.kind.to_string(),
        plural: info.resource.to_string(),
    }
}

struct Ctx {
    client: kube::Client,
    graph: Mutex<Graph>,
    queue: Arc<WorkQueue>,
    /// Uids of owners the API said are gone.
    absent: Mutex<HashSet<String>>,
}

impl Ctx {
    fn graph(&self) -> MutexGuard<'_, Graph> {
        self.graph.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn absent(&self) -> MutexGuard<'_, HashSet<String>> {
        self.absent.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn enqueue(&self, uids: Vec<String>) {
        for uid in uids {
            self.queue.add(uid);
        }
    }

    /// The API of the kind a node (or owner reference) names, in `namespace` when namespaced.
    fn api_for(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
    ) -> Option<(Api<DynamicObject>, &'static ResourceInfo)> {
        let info = registry::lookup_kind(api_version, kind)?;
        let ar = api_resource(info);
        let api = match (info.namespaced, namespace) {
            (true, Some(ns)) => Api::namespaced_with(self.client.clone(), ns, &ar),
            (true, None) => return None,
            (false, _) => Api::all_with(self.client.clone(), &ar),
        };
        Some((api, info))
    }
}

/// Runs the collector until `shutdown` is cancelled.
pub async fn run(client: kube::Client, shutdown: CancellationToken) {
    let ctx = Arc::new(Ctx {
        client,
        graph: Mutex::new(Graph::new()),
        queue: WorkQueue::new(shutdown.clone()),
        absent: Mutex::new(HashSet::new()),
    });
    let kinds: Vec<&'static ResourceInfo> = WATCHED
        .iter()
        .filter_map(|(g, v, r)| registry::lookup(g, v, r))
        .collect();
    let (synced_tx, mut synced_rx) = mpsc::channel::<()>(kinds.len().max(1));
    let watchers: Vec<_> = kinds
        .iter()
        .map(|info| {
            tokio::spawn(watch_kind(
                ctx.clone(),
                info,
                synced_tx.clone(),
                shutdown.clone(),
            ))
        })
        .collect();
    drop(synced_tx);
    // Deciding that an owner is gone from a graph still being filled would delete objects
    // whose owners simply have not been listed yet.
    let mut synced = 0;
    while synced < kinds.len() {
        let got = tokio::select! {
            got = synced_rx.recv() => got,
            _ = shutdown.cancelled() => None,
        };
        if got.is_none() {
            break;
        }
        synced += 1;
    }
    if synced == kinds.len() {
        let workers: Vec<_> = (0..WORKERS)
            .map(|_| tokio::spawn(worker(ctx.clone())))
            .collect();
        for w in workers {
            let _ = w.await;
        }
    }
    for w in watchers {
        let _ = w.await;
    }
}

/// Follows one kind into the graph. A re-list (after a watch expired) removes the objects of
/// this kind that vanished meanwhile.
async fn watch_kind(
    ctx: Arc<Ctx>,
    info: &'static ResourceInfo,
    synced: mpsc::Sender<()>,
    shutdown: CancellationToken,
) {
    let ar = api_resource(info);
    let api: Api<DynamicObject> = Api::all_with(ctx.client.clone(), &ar);
    let api_version = info.api_version();
    let stream = watcher(api, watcher::Config::default()).default_backoff();
    futures::pin_mut!(stream);
    let mut known: HashSet<String> = HashSet::new();
    let mut listed: HashSet<String> = HashSet::new();
    let mut signalled = false;
    loop {
        let event = tokio::select! {
            ev = stream.next() => ev,
            _ = shutdown.cancelled() => return,
        };
        let Some(event) = event else { return };
        let event = match event {
            Ok(event) => event,
            Err(e) => {
                tracing::debug!(resource = info.resource, error = %e, "watch error; the watcher retries");
                continue;
            }
        };
        match event {
            watcher::Event::Apply(obj) | watcher::Event::InitApply(obj) => {
                let Some(node) = Node::new(&api_version, info.kind, &obj.metadata) else {
                    continue;
                };
                known.insert(node.uid.clone());
                listed.insert(node.uid.clone());
                let todo = ctx.graph().upsert(node);
                ctx.enqueue(todo);
            }
            watcher::Event::Delete(obj) => {
                let Some(uid) = obj.metadata.uid else {
                    continue;
                };
                known.remove(&uid);
                let todo = ctx.graph().remove(&uid);
                ctx.enqueue(todo);
            }
            watcher::Event::Init => listed.clear(),
            watcher::Event::InitDone => {
                let gone: Vec<String> = known.difference(&listed).cloned().collect();
                for uid in gone {
                    known.remove(&uid);
                    let todo = ctx.graph().remove(&uid);
                    ctx.enqueue(todo);
                }
                if !signalled {
                    signalled = true;
                    let _ = synced.send(()).await;
                }
            }
        }
    }
}

async fn worker(ctx: Arc<Ctx>) {
    while let Some(uid) = ctx.queue.get().await {
        match process(&ctx, &uid).await {
            Ok(()) => ctx.queue.forget(&uid),
            Err(e) => {
                crate::log_error(&e, "garbage-collector", &uid);
                ctx.queue.add_rate_limited(&uid);
            }
        }
        ctx.queue.done(&uid);
    }
}

fn describe(node: &Node) -> String {
    match &node.namespace {
        Some(ns) => format!("{} {ns}/{}", node.kind, node.name),
        None => format!("{} {}", node.kind, node.name),
    }
}

fn gone_or_replaced(e: &kube::Error) -> bool {
    // 409: the uid precondition failed, i.e. the object was replaced by a namesake.
    matches!(e, kube::Error::Api(s) if s.code == 404 || s.code == 409)
}

/// Looks at one object: as an owner being deleted, or as a dependent whose owners may be
/// gone.
async fn process(ctx: &Ctx, uid: &str) -> Result<(), Error> {
    let (node, plan, has_dependents) = {
        let graph = ctx.graph();
        let Some(node) = graph.get(uid).cloned() else {
            return Ok(());
        };
        let plan = graph::plan_owner(&graph, &node);
        let has_dependents = graph.has_dependents(uid);
        (node, plan, has_dependents)
    };
    match plan {
        OwnerPlan::Orphan(dependents) => {
            for dep in dependents {
                let dep_node = ctx.graph().get(&dep).cloned();
                if let Some(dep_node) = dep_node {
                    remove_owner_refs(ctx, &dep_node, std::slice::from_ref(&node.uid)).await?;
                }
            }
            return remove_finalizer(ctx, &node, graph::ORPHAN_FINALIZER).await;
        }
        OwnerPlan::WaitFor(dependents) => {
            // Each dependent decides with this owner counted as waiting; their deletions
            // wake this owner again.
            ctx.enqueue(dependents);
            return Ok(());
        }
        OwnerPlan::RemoveFinalizer(f) => return remove_finalizer(ctx, &node, f).await,
        OwnerPlan::Nothing => {}
    }
    if node.deleting || node.owners.is_empty() {
        return Ok(());
    }
    // The graph may be behind: an orphaning owner drops its references from dependents
    // before it goes, and a dependent whose update has not arrived yet would look dangling.
    // Kubernetes decides on the object as the API has it now, and so does this.
    let Some(node) = live_node(ctx, &node).await? else {
        return Ok(());
    };
    if node.deleting || node.owners.is_empty() {
        return Ok(());
    }
    let mut states = Vec::with_capacity(node.owners.len());
    for r in &node.owners {
        states.push((r.uid.clone(), owner_state(ctx, &node, r).await?));
    }
    match graph::decide(&node, &states, has_dependents) {
        Decision::Nothing => Ok(()),
        Decision::RemoveOwnerRefs(uids) => remove_owner_refs(ctx, &node, &uids).await,
        Decision::Delete(policy) => delete(ctx, &node, policy).await,
    }
}

/// The object a node stands for, read from the API; `None` if it is gone or was replaced.
async fn live_node(ctx: &Ctx, node: &Node) -> Result<Option<Node>, Error> {
    let Some((api, _)) = ctx.api_for(&node.api_version, &node.kind, node.namespace.as_deref())
    else {
        return Ok(None);
    };
    let live = api
        .get_opt(&node.name)
        .await
        .map_err(|e| Error::Read(describe(node), e))?;
    Ok(live
        .and_then(|obj| Node::new(&node.api_version, &node.kind, &obj.metadata))
        .filter(|n| n.uid == node.uid))
}

/// Whether an owner still exists, from the graph or else from the API.
async fn owner_state(
    ctx: &Ctx,
    dependent: &Node,
    r: &k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference,
) -> Result<OwnerState, Error> {
    if let Some(owner) = ctx.graph().get(&r.uid) {
        return Ok(if owner.deleting_dependents() {
            OwnerState::Waiting
        } else {
            OwnerState::Solid
        });
    }
    if ctx.absent().contains(&r.uid) {
        return Ok(OwnerState::Dangling);
    }
    let Some(info) = registry::lookup_kind(&r.api_version, &r.kind) else {
        // A kind this cluster does not serve cannot be checked: never delete on a guess.
        tracing::debug!(kind = %r.kind, api_version = %r.api_version, "owner of unknown kind");
        return Ok(OwnerState::Solid);
    };
    if info.namespaced && dependent.namespace.is_none() {
        // A cluster-scoped object cannot be owned by a namespaced one: Kubernetes treats
        // the reference as pointing nowhere.
        return Ok(OwnerState::Dangling);
    }
    let Some((api, _)) = ctx.api_for(&r.api_version, &r.kind, dependent.namespace.as_deref())
    else {
        return Ok(OwnerState::Solid);
    };
    let live = api.get_opt(&r.name).await.map_err(|source| Error::Owner {
        kind: r.kind.clone(),
        name: r.name.clone(),
        dependent: describe(dependent),
        source,
    })?;
    match live {
        Some(owner) if owner.metadata.uid.as_deref() == Some(r.uid.as_str()) => {
            let foreground = owner.metadata.deletion_timestamp.is_some()
                && owner
                    .metadata
                    .finalizers
                    .iter()
                    .flatten()
                    .any(|f| f == graph::FOREGROUND_FINALIZER);
            Ok(if foreground {
                OwnerState::Waiting
            } else {
                OwnerState::Solid
            })
        }
        _ => {
            let mut absent = ctx.absent();
            if absent.len() >= ABSENT_CACHE {
                absent.clear();
            }
            absent.insert(r.uid.clone());
            Ok(OwnerState::Dangling)
        }
    }
}

async fn delete(ctx: &Ctx, node: &Node, policy: Propagation) -> Result<(), Error> {
    let Some((api, _)) = ctx.api_for(&node.api_version, &node.kind, node.namespace.as_deref())
    else {
        return Ok(());
    };
    let dp = DeleteParams {
        propagation_policy: Some(match policy {
            Propagation::Background => PropagationPolicy::Background,
            Propagation::Foreground => PropagationPolicy::Foreground,
            Propagation::Orphan => PropagationPolicy::Orphan,
        }),
        // Never the namesake that may have replaced it meanwhile.
        preconditions: Some(Preconditions {
            uid: Some(node.uid.clone()),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    tracing::debug!(object = %describe(node), ?policy, "garbage collecting");
    match api.delete(&node.name, &dp).await {
        Ok(_) => Ok(()),
        Err(e) if gone_or_replaced(&e) => Ok(()),
        Err(e) => Err(Error::Delete(describe(node), e)),
    }
}

async fn remove_owner_refs(ctx: &Ctx, node: &Node, owners: &[String]) -> Result<(), Error> {
    let Some((api, _)) = ctx.api_for(&node.api_version, &node.kind, node.namespace.as_deref())
    else {
        return Ok(());
    };
    let refs: Vec<serde_json::Value> = owners
        .iter()
        .map(|uid| json!({"$patch": "delete", "uid": uid}))
        .collect();
    // The uid is a precondition in Kubernetes: the patch must not land on a namesake.
    let patch = json!({"metadata": {"ownerReferences": refs, "uid": node.uid}});
    match api
        .patch(
            &node.name,
            &PatchParams::default(),
            &Patch::Strategic(&patch),
        )
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if gone_or_replaced(&e) => Ok(()),
        Err(e) => Err(Error::Release(describe(node), e)),
    }
}

async fn remove_finalizer(ctx: &Ctx, node: &Node, finalizer: &'static str) -> Result<(), Error> {
    let Some((api, _)) = ctx.api_for(&node.api_version, &node.kind, node.namespace.as_deref())
    else {
        return Ok(());
    };
    let patch = json!({"metadata": {
        "$deleteFromPrimitiveList/finalizers": [finalizer],
        "uid": node.uid,
    }});
    match api
        .patch(
            &node.name,
            &PatchParams::default(),
            &Patch::Strategic(&patch),
        )
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if gone_or_replaced(&e) => Ok(()),
        Err(source) => Err(Error::Finalizer {
            finalizer,
            object: describe(node),
            source,
        }),
    }
}
