//! The StatefulSet controller (apps/v1): pods with stable names, ordinals and storage, as
//! Kubernetes' statefulset controller runs them.
//!
//! Pod `<set>-<N>` for every ordinal N in range, with hostname `<set>-<N>` and subdomain
//! `spec.serviceName`, and for every `volumeClaimTemplates` entry a PersistentVolumeClaim
//! `<template>-<set>-<N>` that is created before the pod and outlives it (unless the
//! retention policy hands it to the set or the pod for the garbage collector)
//! ([`identity`]). Templates are recorded in ControllerRevisions ([`crate::history`]); each
//! pod's `controller-revision-hash` label names its revision.
//!
//! A sync computes its actions from the cache ([`plan`]) and executes them in order. Names
//! are fixed, so there are no expectations: a create the cache has not shown yet comes back
//! as AlreadyExists and a repeated delete as NotFound, both harmless, and `OrderedReady`
//! waits for the cache to show each step before taking the next.

pub mod identity;
pub mod plan;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{ControllerRevision, StatefulSet};
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod, PodTemplateSpec};
use k8s_openapi::jiff::Timestamp;
use kube::Resource;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher;
use serde_json::json;
use tokio_util::sync::CancellationToken;
use wasmkube_api::selector::{LabelSelector, SelectorError};

use crate::events::Recorder;
use crate::history;
use crate::informer::{self, Change, key_of, split_key};
use crate::owner::{self, controller_of};
use crate::pods;
use crate::queue::WorkQueue;
use plan::{Action, Revisions, Which};

/// The event source component, as in Kubernetes.
pub const COMPONENT: &str = "statefulset-controller";
/// StatefulSets synced at once (Kubernetes' `--concurrent-statefulset-syncs` default).
const WORKERS: usize = 5;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("stateful set {0} has an invalid selector")]
    Selector(String, #[source] SelectorError),
    #[error("claiming pods for stateful set {0}")]
    ClaimPods(String, #[source] owner::Error),
    #[error("claiming controller revisions for stateful set {0}")]
    ClaimRevisions(String, #[source] owner::Error),
    #[error("recording the template history of stateful set {0}")]
    History(String, #[source] history::Error),
    #[error("encoding stateful set {0}")]
    Encode(String, #[source] serde_json::Error),
    #[error("creating claim {0}")]
    CreateClaim(String, #[source] kube::Error),
    #[error("claim {0} is being deleted")]
    ClaimTerminating(String),
    #[error("updating the owners of claim {0}")]
    ClaimOwners(String, #[source] kube::Error),
    #[error("creating pod {0}")]
    Create(String, #[source] kube::Error),
    #[error("deleting pod {0}")]
    Delete(String, #[source] kube::Error),
    #[error("updating the identity of pod {0}")]
    Repair(String, #[source] kube::Error),
    #[error("updating the status of stateful set {0}")]
    Status(String, #[source] kube::Error),
}

struct Ctx {
    client: kube::Client,
    pods: Store<Pod>,
    sets: Store<StatefulSet>,
    revisions: Store<ControllerRevision>,
    claims: Store<PersistentVolumeClaim>,
    queue: Arc<WorkQueue>,
    recorder: Recorder,
}

/// Runs the controller until `shutdown` is cancelled.
pub async fn run(client: kube::Client, shutdown: CancellationToken) {
    let (pod_store, pod_writer) = reflector::store::<Pod>();
    let (set_store, set_writer) = reflector::store::<StatefulSet>();
    let (rev_store, rev_writer) = reflector::store::<ControllerRevision>();
    let (claim_store, claim_writer) = reflector::store::<PersistentVolumeClaim>();
    let queue = WorkQueue::new(shutdown.clone());

    let mut tasks = vec![
        tokio::spawn(informer::run(
            Api::<StatefulSet>::all(client.clone()),
            watcher::Config::default(),
            set_writer,
            shutdown.clone(),
            {
                let queue = queue.clone();
                move |change| {
                    if let Change::Added(set) | Change::Updated { new: set, .. } = change {
                        queue.add(key_of(&*set));
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
                let queue = queue.clone();
                let sets = set_store.clone();
                move |change| on_pod_change(&queue, &sets, change)
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
                        && r.kind == "StatefulSet"
                    {
                        let ns = rev.metadata.namespace.as_deref().unwrap_or("");
                        queue.add(format!("{ns}/{}", r.name));
                    }
                }
            },
        )),
        // Claims are only looked up (whether one exists, who owns it); their changes need
        // no sync.
        tokio::spawn(informer::run(
            Api::<PersistentVolumeClaim>::all(client.clone()),
            watcher::Config::default(),
            claim_writer,
            shutdown.clone(),
            |_| {},
        )),
    ];

    let ready = async {
        let _ = pod_store.wait_until_ready().await;
        let _ = set_store.wait_until_ready().await;
        let _ = rev_store.wait_until_ready().await;
        let _ = claim_store.wait_until_ready().await;
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
            sets: set_store,
            revisions: rev_store,
            claims: claim_store,
            queue,
        });
        tasks.extend((0..WORKERS).map(|_| tokio::spawn(worker(ctx.clone()))));
    }
    for t in tasks {
        let _ = t.await;
    }
}

/// Queues the set a changed pod belongs to, or, for an orphan, every set that could adopt
/// it.
fn on_pod_change(queue: &WorkQueue, sets: &Store<StatefulSet>, change: Change<Pod>) {
    let mut pods: Vec<Arc<Pod>> = Vec::with_capacity(2);
    match change {
        Change::Added(p) | Change::Deleted(p) => pods.push(p),
        Change::Updated { old, new } => {
            if old.metadata.resource_version == new.metadata.resource_version {
                return;
            }
            pods.push(old);
            pods.push(new);
        }
    }
    for pod in pods {
        let ns = pod.metadata.namespace.as_deref().unwrap_or("");
        match controller_of(&pod.metadata) {
            Some(r) if r.kind == "StatefulSet" => {
                if let Some(set) = informer::get(sets, ns, &r.name)
                    && set.metadata.uid.as_deref() == Some(r.uid.as_str())
                {
                    queue.add(key_of(&*set));
                }
            }
            Some(_) => {}
            None => {
                for set in sets.state() {
                    if set.metadata.namespace.as_deref() != Some(ns) {
                        continue;
                    }
                    let Ok(selector) = LabelSelector::try_from(&set.spec.selector) else {
                        continue;
                    };
                    if !selector.is_everything()
                        && selector.matches_opt(pod.metadata.labels.as_ref())
                    {
                        queue.add(key_of(&*set));
                    }
                }
            }
        }
    }
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
                crate::log_error(&e, "statefulset", &key);
                ctx.queue.add_rate_limited(&key);
            }
        }
        ctx.queue.done(&key);
    }
}

/// The set's two revisions: the one its pods ran when the last rollout completed
/// (`status.currentRevision`) and the one of its template now.
struct SetRevisions {
    current: ControllerRevision,
    update: ControllerRevision,
    all: Vec<ControllerRevision>,
    collision_count: Option<i32>,
}

async fn revisions(
    ctx: &Ctx,
    set: &StatefulSet,
    key: &str,
    selector: &LabelSelector,
) -> Result<SetRevisions, Error> {
    let (ns, name) = split_key(key);
    let api: Api<ControllerRevision> = Api::namespaced(ctx.client.clone(), ns);
    let set_api: Api<StatefulSet> = Api::namespaced(ctx.client.clone(), ns);
    let candidates = ctx
        .revisions
        .state_filter(|r| r.metadata.namespace.as_deref() == Some(ns));
    let owned = owner::claim(&api, set, selector, candidates, async || {
        owner::recheck_owner(&set_api, set).await
    })
    .await
    .map_err(|e| Error::ClaimRevisions(key.to_string(), e))?;
    let mut all: Vec<ControllerRevision> = owned.iter().map(|r| (**r).clone()).collect();
    let template = &set.spec.template;
    let data = history::template_data(template).map_err(|e| Error::Encode(key.to_string(), e))?;
    let recorded = set.status.as_ref().and_then(|s| s.collision_count);
    let mut count = recorded.unwrap_or(0);
    let update = history::ensure(
        &api,
        &mut all,
        history::NewRevision {
            namespace: ns,
            owner_name: name,
            owner_ref: owner::controller_ref(set),
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
    let wanted = set
        .status
        .as_ref()
        .and_then(|s| s.current_revision.as_deref());
    let current = all
        .iter()
        .find(|r| wanted.is_some() && r.metadata.name.as_deref() == wanted)
        .cloned()
        .unwrap_or_else(|| update.clone());
    Ok(SetRevisions {
        current,
        update,
        all,
        collision_count: if count == recorded.unwrap_or(0) {
            recorded
        } else {
            Some(count)
        },
    })
}

/// Brings one StatefulSet to its desired state; `Ok(Some(d))` asks for another look after `d`.
async fn sync(ctx: &Ctx, key: &str) -> Result<Option<Duration>, Error> {
    let (ns, name) = split_key(key);
    let Some(set) = informer::get(&ctx.sets, ns, name) else {
        return Ok(None);
    };
    let selector = LabelSelector::try_from(&set.spec.selector)
        .map_err(|e| Error::Selector(key.to_string(), e))?;
    if selector.is_everything() {
        return Ok(None);
    }
    // Only pods named after the set are its members; anything else it selects is left alone.
    let candidates = ctx.pods.state_filter(|p| {
        p.metadata.namespace.as_deref() == Some(ns) && identity::ordinal_of(&set, p).is_some()
    });
    let pods_api: Api<Pod> = Api::namespaced(ctx.client.clone(), ns);
    let set_api: Api<StatefulSet> = Api::namespaced(ctx.client.clone(), ns);
    let owned = owner::claim(&pods_api, &*set, &selector, candidates, async || {
        owner::recheck_owner(&set_api, &*set).await
    })
    .await
    .map_err(|e| Error::ClaimPods(key.to_string(), e))?;
    let revs = revisions(ctx, &set, key, &selector).await?;
    let current_name = revs.current.metadata.name.clone().unwrap_or_default();
    let update_name = revs.update.metadata.name.clone().unwrap_or_default();
    let names = Revisions {
        current: &current_name,
        update: &update_name,
    };
    let now = Timestamp::now();

    let mut result = Ok(());
    if set.metadata.deletion_timestamp.is_none() {
        result = reconcile_claim_owners(ctx, &set, &owned).await;
        if result.is_ok() {
            result = execute(
                ctx,
                &set,
                &revs,
                &owned,
                plan::plan(&set, &owned, names, now),
            )
            .await;
        }
        if result.is_ok() {
            result = cleanup_history(ctx, &set, &revs, &owned).await;
        }
    }

    let new_status = plan::status(&set, &owned, names, revs.collision_count, now);
    if set.status.as_ref() != Some(&new_status) {
        // Unconditional: this controller is the only writer of the status.
        match crate::status_subresource::replace_status(&set_api, name, &new_status).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 404 => return Ok(None),
            Err(e) => return Err(Error::Status(key.to_string(), e)),
        }
    }
    result?;
    let min_ready = set.spec.min_ready_seconds.unwrap_or(0);
    Ok(next_availability_check(min_ready, &owned, now))
}

/// When a ready pod becomes available after `minReadySeconds`, which no event announces.
fn next_availability_check(min_ready: i32, owned: &[Arc<Pod>], now: Timestamp) -> Option<Duration> {
    if min_ready <= 0 {
        return None;
    }
    owned
        .iter()
        .filter_map(|p| pods::available_at(p, min_ready))
        .filter(|at| *at > now)
        .min()
        .and_then(|at| Duration::try_from(at.duration_since(now)).ok())
        .map(|d| d + Duration::from_millis(100))
}

fn template_for(set: &StatefulSet, revs: &SetRevisions, which: Which) -> (PodTemplateSpec, String) {
    let rev = match which {
        Which::Current => &revs.current,
        Which::Update => &revs.update,
    };
    let template = history::template_of(rev).unwrap_or_else(|| set.spec.template.clone());
    (template, rev.metadata.name.clone().unwrap_or_default())
}

async fn execute(
    ctx: &Ctx,
    set: &StatefulSet,
    revs: &SetRevisions,
    owned: &[Arc<Pod>],
    actions: Vec<Action>,
) -> Result<(), Error> {
    let ns = set.metadata.namespace.as_deref().unwrap_or("");
    let set_name = set.metadata.name.as_deref().unwrap_or("");
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), ns);
    for action in actions {
        match action {
            Action::Create(ordinal, which) => {
                let (template, revision) = template_for(set, revs, which);
                let pod = identity::new_pod(set, &template, &revision, ordinal);
                let pod_name = pod.metadata.name.clone().unwrap_or_default();
                create_claims(ctx, set, &pod_name, ordinal).await?;
                match api.create(&PostParams::default(), &pod).await {
                    Ok(_) => ctx.recorder.normal(
                        set.object_ref(&()),
                        "SuccessfulCreate",
                        format!("create Pod {pod_name} in StatefulSet {set_name} successful"),
                    ),
                    // The cache has not shown it yet (or the old one is still going): the
                    // watch brings the set back here.
                    Err(kube::Error::Api(s)) if s.code == 409 => return Ok(()),
                    Err(kube::Error::Api(s))
                        if s.code == 403 && s.message.contains("being terminated") =>
                    {
                        return Ok(());
                    }
                    Err(e) => {
                        ctx.recorder.warning(
                            set.object_ref(&()),
                            "FailedCreate",
                            format!(
                                "create Pod {pod_name} in StatefulSet {set_name} failed error: {e}"
                            ),
                        );
                        return Err(Error::Create(pod_name, e));
                    }
                }
            }
            Action::Delete(pod_name) => match api.delete(&pod_name, &DeleteParams::default()).await
            {
                Ok(_) => ctx.recorder.normal(
                    set.object_ref(&()),
                    "SuccessfulDelete",
                    format!("delete Pod {pod_name} in StatefulSet {set_name} successful"),
                ),
                Err(kube::Error::Api(s)) if s.code == 404 => {}
                Err(e) => {
                    ctx.recorder.warning(
                        set.object_ref(&()),
                        "FailedDelete",
                        format!(
                            "delete Pod {pod_name} in StatefulSet {set_name} failed error: {e}"
                        ),
                    );
                    return Err(Error::Delete(pod_name, e));
                }
            },
            Action::Repair(ordinal) => {
                let pod_name = identity::pod_name(set_name, ordinal);
                let Some(pod) = owned
                    .iter()
                    .find(|p| p.metadata.name.as_deref() == Some(pod_name.as_str()))
                else {
                    continue;
                };
                create_claims(ctx, set, &pod_name, ordinal).await?;
                if !identity::identity_matches(set, pod, ordinal) {
                    let patch =
                        json!({"metadata": {"labels": identity::identity_labels(set, ordinal)}});
                    match api
                        .patch(&pod_name, &PatchParams::default(), &Patch::Merge(&patch))
                        .await
                    {
                        Ok(_) => ctx.recorder.normal(
                            set.object_ref(&()),
                            "SuccessfulUpdate",
                            format!("update Pod {pod_name} in StatefulSet {set_name} successful"),
                        ),
                        Err(kube::Error::Api(s)) if s.code == 404 => {}
                        Err(e) => return Err(Error::Repair(pod_name, e)),
                    }
                }
            }
        }
    }
    Ok(())
}

/// Creates the pod's claims that do not exist yet. A claim still being deleted (from an
/// earlier life of the set) must go first: a pod bound to it would lose its data.
async fn create_claims(
    ctx: &Ctx,
    set: &StatefulSet,
    pod_name: &str,
    ordinal: i32,
) -> Result<(), Error> {
    let ns = set.metadata.namespace.as_deref().unwrap_or("");
    let set_name = set.metadata.name.as_deref().unwrap_or("");
    let api: Api<PersistentVolumeClaim> = Api::namespaced(ctx.client.clone(), ns);
    let retention = identity::retention(set);
    for mut claim in identity::claims_for(set, ordinal) {
        let claim_name = claim.metadata.name.clone().unwrap_or_default();
        if let Some(existing) = informer::get(&ctx.claims, ns, &claim_name) {
            if existing.metadata.deletion_timestamp.is_some() {
                return Err(Error::ClaimTerminating(claim_name));
            }
            continue;
        }
        // The pod does not exist yet, so only the set can own the claim now; a scaled-down
        // pod gets its reference later.
        let (by_set, _) = identity::claim_owners(retention, true);
        if by_set {
            claim.metadata.owner_references = Some(vec![identity::owner_ref(set)]);
        }
        match api.create(&PostParams::default(), &claim).await {
            Ok(_) => ctx.recorder.normal(
                set.object_ref(&()),
                "SuccessfulCreate",
                format!(
                    "create Claim {claim_name} Pod {pod_name} in StatefulSet {set_name} success"
                ),
            ),
            Err(kube::Error::Api(s)) if s.code == 409 => {}
            Err(e) => {
                ctx.recorder.warning(
                    set.object_ref(&()),
                    "FailedCreate",
                    format!(
                        "create Claim {claim_name} for Pod {pod_name} in StatefulSet {set_name} failed error: {e}"
                    ),
                );
                return Err(Error::CreateClaim(claim_name, e));
            }
        }
    }
    Ok(())
}

/// Makes the owner references of every member pod's claims follow the retention policy, so
/// the garbage collector deletes exactly the claims the policy gives up.
async fn reconcile_claim_owners(
    ctx: &Ctx,
    set: &StatefulSet,
    owned: &[Arc<Pod>],
) -> Result<(), Error> {
    if set
        .spec
        .volume_claim_templates
        .as_ref()
        .is_none_or(Vec::is_empty)
    {
        return Ok(());
    }
    let ns = set.metadata.namespace.as_deref().unwrap_or("");
    let api: Api<PersistentVolumeClaim> = Api::namespaced(ctx.client.clone(), ns);
    let retention = identity::retention(set);
    for pod in owned {
        if pod.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let Some(ordinal) = identity::ordinal_of(set, pod) else {
            continue;
        };
        let in_range = identity::in_range(set, ordinal);
        for wanted in identity::claims_for(set, ordinal) {
            let claim_name = wanted.metadata.name.clone().unwrap_or_default();
            let Some(claim) = informer::get(&ctx.claims, ns, &claim_name) else {
                continue;
            };
            if claim.metadata.deletion_timestamp.is_some() {
                continue;
            }
            let Some(refs) = identity::claim_owner_refs(&claim, set, pod, retention, in_range)
            else {
                continue;
            };
            // Conditional on the cached version: a concurrent owner change is re-read.
            let patch = json!({"metadata": {
                "ownerReferences": refs,
                "resourceVersion": claim.metadata.resource_version,
            }});
            match api
                .patch(&claim_name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => {}
                Err(kube::Error::Api(s)) if s.code == 404 => {}
                Err(e) => return Err(Error::ClaimOwners(claim_name, e)),
            }
        }
    }
    Ok(())
}

/// Deletes revisions beyond `revisionHistoryLimit` that neither a pod nor the status uses.
async fn cleanup_history(
    ctx: &Ctx,
    set: &StatefulSet,
    revs: &SetRevisions,
    owned: &[Arc<Pod>],
) -> Result<(), Error> {
    let ns = set.metadata.namespace.as_deref().unwrap_or("");
    let mut live: HashSet<String> = owned
        .iter()
        .map(|p| identity::revision_of(p).to_string())
        .collect();
    live.extend(revs.current.metadata.name.clone());
    live.extend(revs.update.metadata.name.clone());
    let limit = usize::try_from(set.spec.revision_history_limit.unwrap_or(10)).unwrap_or(0);
    let api: Api<ControllerRevision> = Api::namespaced(ctx.client.clone(), ns);
    history::truncate(&api, &revs.all, &live, limit)
        .await
        .map_err(|e| Error::History(key_of(set), e))
}
