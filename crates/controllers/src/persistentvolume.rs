//! The PersistentVolume controller, as Kubernetes' persistentvolume-binder: it binds claims
//! to volumes and keeps both sides' phases true.
//!
//! - A claim without `storageClassName` gets the default StorageClass (Kubernetes'
//!   retroactive default class assignment), so the default class also applies to claims
//!   made before it existed.
//! - An unbound claim whose class binds immediately (or has no class object, the static
//!   case) is bound to the best free volume ([`wasmkube_scheduler::volumes::best_volume`]);
//!   one of a WaitForFirstConsumer class waits until the scheduler marks it with the node
//!   of its first pod (`volume.kubernetes.io/selected-node`), then is bound to a volume that
//!   may be used there.
//! - With no volume to bind, a class with a provisioner gets the claim annotated with
//!   `volume.kubernetes.io/storage-provisioner`; the provisioner (for `local-path`, the
//!   kubelet of the selected node) makes a volume pre-bound to the claim, which the next
//!   sync binds. Immediate classes of the local provisioner get a node chosen here.
//! - Binding is two writes, volume first (`spec.claimRef`), then claim (`spec.volumeName`):
//!   the claim's `volumeName` is the authoritative side, so a crash between them leaves a
//!   volume pre-bound to the claim, which the next sync finishes binding.
//! - A volume whose claim is gone becomes `Released`; with the `Delete` reclaim policy it is
//!   deleted (its provisioner's finalizer cleans up the storage), with `Retain` it stays.
//! - In-use protection (Kubernetes' pvc-protection and pv-protection controllers): a deleted
//!   claim keeps its `kubernetes.io/pvc-protection` finalizer while a pod that has not
//!   finished uses it, and a deleted volume its `kubernetes.io/pv-protection` one while it is
//!   bound, so deleting a claim under a running pod never pulls the data from under it.

use std::sync::Arc;

use k8s_openapi::api::core::v1::{
    Node, ObjectReference, PersistentVolume, PersistentVolumeClaim, PersistentVolumeClaimStatus,
    PersistentVolumeStatus, Pod,
};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::Resource;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher;
use serde_json::json;
use tokio_util::sync::CancellationToken;
use wasmkube_scheduler::volumes::{
    self, BIND_COMPLETED, BOUND_BY_CONTROLLER, LOCAL_PATH_PROVISIONER, PV_PROTECTION,
    PVC_PROTECTION, SELECTED_NODE, STORAGE_PROVISIONER,
};

use crate::events::Recorder;
use crate::informer::{self, Change, key_of, split_key};
use crate::queue::WorkQueue;
use crate::status_subresource::replace_status;

const COMPONENT: &str = "persistentvolume-controller";
const WORKERS: usize = 2;
/// Queue key prefixes: claims and volumes share one queue.
const CLAIM: &str = "claim:";
const VOLUME: &str = "volume:";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("writing persistentvolumeclaim {0}")]
    Claim(String, #[source] kube::Error),
    #[error("writing persistentvolume {0}")]
    Volume(String, #[source] kube::Error),
}

struct Ctx {
    client: kube::Client,
    claims: Store<PersistentVolumeClaim>,
    volumes: Store<PersistentVolume>,
    classes: Store<StorageClass>,
    nodes: Store<Node>,
    pods: Store<Pod>,
    queue: Arc<WorkQueue>,
    recorder: Recorder,
}

/// Runs the controller until `shutdown` is cancelled.
pub async fn run(client: kube::Client, shutdown: CancellationToken) {
    let (claim_store, claim_writer) = reflector::store::<PersistentVolumeClaim>();
    let (volume_store, volume_writer) = reflector::store::<PersistentVolume>();
    let (class_store, class_writer) = reflector::store::<StorageClass>();
    let (node_store, node_writer) = reflector::store::<Node>();
    let (pod_store, pod_writer) = reflector::store::<Pod>();
    let queue = WorkQueue::new(shutdown.clone());
    let mut tasks = vec![
        tokio::spawn(informer::run(
            Api::<PersistentVolumeClaim>::all(client.clone()),
            watcher::Config::default(),
            claim_writer,
            shutdown.clone(),
            {
                let queue = queue.clone();
                move |change| match change {
                    Change::Added(c) | Change::Updated { new: c, .. } => {
                        queue.add(format!("{CLAIM}{}", key_of(&*c)))
                    }
                    // Its volume is released.
                    Change::Deleted(c) => {
                        if let Some(v) = volumes::bound_volume(&c) {
                            queue.add(format!("{VOLUME}{v}"));
                        }
                    }
                }
            },
        )),
        tokio::spawn(informer::run(
            Api::<PersistentVolume>::all(client.clone()),
            watcher::Config::default(),
            volume_writer,
            shutdown.clone(),
            {
                let queue = queue.clone();
                move |change| {
                    if let Change::Added(v) | Change::Updated { new: v, .. } = change {
                        queue.add(format!("{VOLUME}{}", key_of(&*v)));
                        // A new volume (or one pre-bound to a claim) may serve a waiting claim.
                        if let Some(r) = v.spec.as_ref().and_then(|s| s.claim_ref.as_ref()) {
                            queue.add(format!(
                                "{CLAIM}{}/{}",
                                r.namespace.as_deref().unwrap_or(""),
                                r.name.as_deref().unwrap_or("")
                            ));
                        }
                    }
                }
            },
        )),
        tokio::spawn(informer::run(
            Api::<StorageClass>::all(client.clone()),
            watcher::Config::default(),
            class_writer,
            shutdown.clone(),
            |_| {},
        )),
        tokio::spawn(informer::run(
            Api::<Node>::all(client.clone()),
            watcher::Config::default(),
            node_writer,
            shutdown.clone(),
            |_| {},
        )),
        tokio::spawn(informer::run(
            Api::<Pod>::all(client.clone()),
            watcher::Config::default(),
            pod_writer,
            shutdown.clone(),
            {
                let queue = queue.clone();
                // A pod that finished or went may be what a deleted claim waits for.
                move |change| {
                    let pod = match change {
                        Change::Deleted(p) => p,
                        Change::Updated { new: p, .. }
                            if p.metadata.deletion_timestamp.is_some()
                                || matches!(
                                    p.status.as_ref().and_then(|s| s.phase.as_deref()),
                                    Some("Succeeded" | "Failed")
                                ) =>
                        {
                            p
                        }
                        _ => return,
                    };
                    let ns = pod.metadata.namespace.as_deref().unwrap_or("");
                    for claim in volumes::pod_claims(&pod) {
                        queue.add(format!("{CLAIM}{ns}/{claim}"));
                    }
                }
            },
        )),
    ];
    let ready = async {
        let _ = claim_store.wait_until_ready().await;
        let _ = volume_store.wait_until_ready().await;
        let _ = class_store.wait_until_ready().await;
        let _ = node_store.wait_until_ready().await;
        let _ = pod_store.wait_until_ready().await;
    };
    let started = tokio::select! {
        _ = ready => true,
        _ = shutdown.cancelled() => false,
    };
    if started {
        // Claims waiting for a class that appeared, and volumes whose claim went while the
        // controller was not watching.
        for c in claim_store.state() {
            queue.add(format!("{CLAIM}{}", key_of(&*c)));
        }
        for v in volume_store.state() {
            queue.add(format!("{VOLUME}{}", key_of(&*v)));
        }
        let ctx = Arc::new(Ctx {
            recorder: Recorder::new(client.clone(), COMPONENT, shutdown.clone()),
            client,
            claims: claim_store,
            volumes: volume_store,
            classes: class_store,
            nodes: node_store,
            pods: pod_store,
            queue,
        });
        tasks.extend((0..WORKERS).map(|_| tokio::spawn(worker(ctx.clone()))));
    }
    for t in tasks {
        let _ = t.await;
    }
}

async fn worker(ctx: Arc<Ctx>) {
    while let Some(key) = ctx.queue.get().await {
        let result = if let Some(claim) = key.strip_prefix(CLAIM) {
            let (ns, name) = split_key(claim);
            sync_claim(&ctx, ns, name).await
        } else if let Some(volume) = key.strip_prefix(VOLUME) {
            sync_volume(&ctx, volume).await
        } else {
            Ok(())
        };
        match result {
            Ok(()) => ctx.queue.forget(&key),
            Err(e) => {
                crate::log_error(&e, "persistentvolume", &key);
                ctx.queue.add_rate_limited(&key);
            }
        }
        ctx.queue.done(&key);
    }
}

fn phase_of_claim(claim: &PersistentVolumeClaim) -> Option<&str> {
    claim.status.as_ref().and_then(|s| s.phase.as_deref())
}

fn phase_of_volume(pv: &PersistentVolume) -> Option<&str> {
    pv.status.as_ref().and_then(|s| s.phase.as_deref())
}

fn annotation<'a>(obj: &'a impl Resource, key: &str) -> Option<&'a str> {
    obj.meta()
        .annotations
        .as_ref()
        .and_then(|a| a.get(key))
        .map(String::as_str)
}

async fn sync_claim(ctx: &Ctx, ns: &str, name: &str) -> Result<(), Error> {
    let Some(claim) = informer::get(&ctx.claims, ns, name) else {
        return Ok(());
    };
    let api: Api<PersistentVolumeClaim> = Api::namespaced(ctx.client.clone(), ns);
    let key = format!("{ns}/{name}");
    if claim.metadata.deletion_timestamp.is_some() {
        if has_finalizer(&*claim, PVC_PROTECTION) && !claim_in_use(ctx, ns, name).await? {
            remove_finalizer(&api, &*claim, PVC_PROTECTION)
                .await
                .map_err(|e| Error::Claim(key, e))?;
        }
        return Ok(());
    }
    let spec = claim.spec.clone().unwrap_or_default();
    if spec.storage_class_name.is_none()
        && spec.volume_name.as_deref().is_none_or(str::is_empty)
        && let Some(default) = volumes::default_class(ctx.classes.state().iter().map(|c| &**c))
            .and_then(|c| c.metadata.name.clone())
    {
        let patch = json!({"spec": {"storageClassName": default}});
        api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(|e| Error::Claim(key, e))?;
        // The update brings the claim back here.
        return Ok(());
    }
    if let Some(volume) = volumes::bound_volume(&claim) {
        return sync_bound_claim(ctx, &api, &claim, volume).await;
    }
    let class_name = volumes::claim_class(&claim);
    let class = ctx.classes.get(&reflector::ObjectRef::new(class_name));
    let delayed = class
        .as_deref()
        .is_some_and(volumes::waits_for_first_consumer);
    let selected = annotation(&*claim, SELECTED_NODE);
    if delayed && selected.is_none() {
        set_claim_pending(&api, &claim).await?;
        ctx.recorder.normal(
            claim.object_ref(&()),
            "WaitForFirstConsumer",
            "waiting for first consumer to be created before binding".into(),
        );
        return Ok(());
    }
    let node = selected.and_then(|n| ctx.nodes.get(&reflector::ObjectRef::new(n)));
    let all = ctx.volumes.state();
    if let Some(pv) = volumes::best_volume(all.iter().map(|v| &**v), &claim, node.as_deref()) {
        return bind(ctx, &api, &claim, pv).await;
    }
    set_claim_pending(&api, &claim).await?;
    let Some(class) = class.filter(|c| c.provisioner != "kubernetes.io/no-provisioner") else {
        let message = if class_name.is_empty() {
            "no persistent volumes available for this claim and no storage class is set".to_string()
        } else if ctx
            .classes
            .get(&reflector::ObjectRef::new(class_name))
            .is_none()
        {
            format!("storageclass.storage.k8s.io {class_name:?} not found")
        } else {
            "no persistent volumes available for this claim".to_string()
        };
        ctx.recorder
            .normal(claim.object_ref(&()), "FailedBinding", message);
        return Ok(());
    };
    let mut annotations = serde_json::Map::new();
    if annotation(&*claim, STORAGE_PROVISIONER) != Some(class.provisioner.as_str()) {
        annotations.insert(STORAGE_PROVISIONER.into(), json!(class.provisioner));
    }
    // The local provisioner makes volumes on the claim's node only; an Immediate claim has
    // no pod to choose one, so the controller does: the first ready node by name.
    if class.provisioner == LOCAL_PATH_PROVISIONER
        && selected.is_none()
        && let Some(node) = first_ready_node(&ctx.nodes)
    {
        annotations.insert(SELECTED_NODE.into(), json!(node));
    }
    if !annotations.is_empty() {
        let patch = json!({"metadata": {"annotations": annotations}});
        api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(|e| Error::Claim(key, e))?;
    }
    ctx.recorder.normal(
        claim.object_ref(&()),
        "ExternalProvisioning",
        format!(
            "Waiting for a volume to be created either by the external provisioner '{}' or \
             manually by the system administrator. If volume creation is delayed, please verify \
             that the provisioner is running and correctly registered.",
            class.provisioner
        ),
    );
    Ok(())
}

fn has_finalizer(obj: &impl Resource, finalizer: &str) -> bool {
    obj.meta()
        .finalizers
        .as_ref()
        .is_some_and(|f| f.iter().any(|f| f == finalizer))
}

/// Removes one finalizer, on the object's resourceVersion (a 409 retries from a fresh cache).
async fn remove_finalizer<K>(api: &Api<K>, obj: &K, finalizer: &str) -> kube::Result<()>
where
    K: Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let meta = obj.meta();
    let rest: Vec<&String> = meta
        .finalizers
        .iter()
        .flatten()
        .filter(|f| f.as_str() != finalizer)
        .collect();
    let patch = json!({"metadata": {"finalizers": rest, "resourceVersion": meta.resource_version}});
    match api
        .patch(
            meta.name.as_deref().unwrap_or(""),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(e),
    }
}

fn pod_uses(pod: &Pod, claim: &str) -> bool {
    let finished = matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    );
    !finished && volumes::pod_claims(pod).any(|c| c == claim)
}

/// Whether a pod that has not finished uses the claim. The cache may not show a pod created a
/// moment ago, so "unused" is confirmed with a live list, as Kubernetes' pvc-protection does.
async fn claim_in_use(ctx: &Ctx, ns: &str, claim: &str) -> Result<bool, Error> {
    let cached = ctx
        .pods
        .state()
        .into_iter()
        .any(|p| p.metadata.namespace.as_deref() == Some(ns) && pod_uses(&p, claim));
    if cached {
        return Ok(true);
    }
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), ns);
    let pods = api
        .list(&Default::default())
        .await
        .map_err(|e| Error::Claim(format!("{ns}/{claim}"), e))?;
    Ok(pods.items.iter().any(|p| pod_uses(p, claim)))
}

fn first_ready_node(nodes: &Store<Node>) -> Option<String> {
    let mut ready: Vec<String> = nodes
        .state()
        .into_iter()
        .filter(|n| {
            n.status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
                && !n
                    .spec
                    .as_ref()
                    .and_then(|s| s.unschedulable)
                    .unwrap_or(false)
        })
        .filter_map(|n| n.metadata.name.clone())
        .collect();
    ready.sort();
    ready.into_iter().next()
}

async fn set_claim_pending(
    api: &Api<PersistentVolumeClaim>,
    claim: &PersistentVolumeClaim,
) -> Result<(), Error> {
    if phase_of_claim(claim) == Some("Pending") {
        return Ok(());
    }
    let name = claim.metadata.name.clone().unwrap_or_default();
    let status = PersistentVolumeClaimStatus {
        phase: Some("Pending".into()),
        ..PersistentVolumeClaimStatus::default()
    };
    replace_status(api, &name, &status)
        .await
        .map(drop)
        .map_err(|e| Error::Claim(name, e))
}

fn claim_reference(claim: &PersistentVolumeClaim) -> ObjectReference {
    ObjectReference {
        api_version: Some("v1".into()),
        kind: Some("PersistentVolumeClaim".into()),
        namespace: claim.metadata.namespace.clone(),
        name: claim.metadata.name.clone(),
        uid: claim.metadata.uid.clone(),
        resource_version: claim.metadata.resource_version.clone(),
        ..ObjectReference::default()
    }
}

/// Binds an unbound claim to `pv`: the volume's claimRef first, then the claim's volumeName.
async fn bind(
    ctx: &Ctx,
    api: &Api<PersistentVolumeClaim>,
    claim: &PersistentVolumeClaim,
    pv: &PersistentVolume,
) -> Result<(), Error> {
    let pv_name = pv.metadata.name.clone().unwrap_or_default();
    let volumes_api: Api<PersistentVolume> = Api::all(ctx.client.clone());
    let has_uid = pv
        .spec
        .as_ref()
        .and_then(|s| s.claim_ref.as_ref())
        .and_then(|r| r.uid.as_deref())
        .is_some_and(|u| !u.is_empty());
    if !has_uid {
        let mut next = pv.clone();
        let pre_bound = next.spec.as_ref().is_some_and(|s| s.claim_ref.is_some());
        if let Some(spec) = next.spec.as_mut() {
            spec.claim_ref = Some(claim_reference(claim));
        }
        if !pre_bound {
            next.metadata
                .annotations
                .get_or_insert_with(Default::default)
                .insert(BOUND_BY_CONTROLLER.into(), "yes".into());
        }
        volumes_api
            .replace(&pv_name, &PostParams::default(), &next)
            .await
            .map_err(|e| Error::Volume(pv_name.clone(), e))?;
    }
    let name = claim.metadata.name.clone().unwrap_or_default();
    let key = format!(
        "{}/{name}",
        claim.metadata.namespace.as_deref().unwrap_or("")
    );
    let patch = json!({
        "metadata": {
            "resourceVersion": claim.metadata.resource_version,
            "annotations": {BIND_COMPLETED: "yes", BOUND_BY_CONTROLLER: "yes"},
        },
        "spec": {"volumeName": pv_name},
    });
    api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(|e| Error::Claim(key, e))?;
    // The claim's update brings it back to finish the statuses.
    Ok(())
}

/// Sets the claim's phase to Lost, with a warning event saying why.
async fn mark_lost(
    ctx: &Ctx,
    api: &Api<PersistentVolumeClaim>,
    claim: &PersistentVolumeClaim,
    reason: &'static str,
    message: &str,
) -> Result<(), Error> {
    let name = claim.metadata.name.clone().unwrap_or_default();
    let status = PersistentVolumeClaimStatus {
        phase: Some("Lost".into()),
        ..PersistentVolumeClaimStatus::default()
    };
    replace_status(api, &name, &status).await.map_err(|e| {
        let ns = claim.metadata.namespace.as_deref().unwrap_or("");
        Error::Claim(format!("{ns}/{name}"), e)
    })?;
    ctx.recorder
        .warning(claim.object_ref(&()), reason, message.to_string());
    Ok(())
}

/// A claim with `spec.volumeName`: make the volume point back at it and both phases Bound.
async fn sync_bound_claim(
    ctx: &Ctx,
    api: &Api<PersistentVolumeClaim>,
    claim: &PersistentVolumeClaim,
    volume: &str,
) -> Result<(), Error> {
    let name = claim.metadata.name.clone().unwrap_or_default();
    let key = format!(
        "{}/{name}",
        claim.metadata.namespace.as_deref().unwrap_or("")
    );
    let Some(pv) = ctx.volumes.get(&reflector::ObjectRef::new(volume)) else {
        if phase_of_claim(claim) == Some("Bound") {
            return mark_lost(
                ctx,
                api,
                claim,
                "ClaimLost",
                "Bound claim has lost its PersistentVolume. Data on the volume is lost!",
            )
            .await;
        }
        return Ok(());
    };
    let claim_ref = pv.spec.as_ref().and_then(|s| s.claim_ref.as_ref());
    match claim_ref {
        // Pre-bound by the user through the claim: the volume follows.
        None => return bind(ctx, api, claim, &pv).await,
        Some(_) if !volumes::refers_to(&pv, claim) => {
            if phase_of_claim(claim) != Some("Lost") {
                return mark_lost(
                    ctx,
                    api,
                    claim,
                    "ClaimMisbound",
                    "Two claims are bound to the same volume, this one is bound incorrectly",
                )
                .await;
            }
            return Ok(());
        }
        Some(r) if r.uid.as_deref().is_none_or(str::is_empty) => {
            return bind(ctx, api, claim, &pv).await;
        }
        Some(_) => {}
    }
    let pv_spec = pv.spec.clone().unwrap_or_default();
    let status = PersistentVolumeClaimStatus {
        phase: Some("Bound".into()),
        access_modes: pv_spec.access_modes.clone(),
        capacity: pv_spec.capacity.clone(),
        ..claim.status.clone().unwrap_or_default()
    };
    if claim.status.as_ref() != Some(&status) {
        replace_status(api, &name, &status)
            .await
            .map_err(|e| Error::Claim(key, e))?;
    }
    set_volume_phase(ctx, &pv, "Bound").await
}

async fn set_volume_phase(ctx: &Ctx, pv: &PersistentVolume, phase: &str) -> Result<(), Error> {
    if phase_of_volume(pv) == Some(phase) {
        return Ok(());
    }
    let name = pv.metadata.name.clone().unwrap_or_default();
    let api: Api<PersistentVolume> = Api::all(ctx.client.clone());
    let status = PersistentVolumeStatus {
        phase: Some(phase.into()),
        ..PersistentVolumeStatus::default()
    };
    replace_status(&api, &name, &status)
        .await
        .map(drop)
        .map_err(|e| Error::Volume(name, e))
}

async fn sync_volume(ctx: &Ctx, name: &str) -> Result<(), Error> {
    let Some(pv) = ctx.volumes.get(&reflector::ObjectRef::new(name)) else {
        return Ok(());
    };
    if pv.metadata.deletion_timestamp.is_some() {
        if has_finalizer(&*pv, PV_PROTECTION) && phase_of_volume(&pv) != Some("Bound") {
            let api: Api<PersistentVolume> = Api::all(ctx.client.clone());
            remove_finalizer(&api, &*pv, PV_PROTECTION)
                .await
                .map_err(|e| Error::Volume(name.to_string(), e))?;
        }
        return Ok(());
    }
    let Some(r) = pv.spec.as_ref().and_then(|s| s.claim_ref.clone()) else {
        return set_volume_phase(ctx, &pv, "Available").await;
    };
    let uid = r.uid.clone().filter(|u| !u.is_empty());
    let ns = r.namespace.clone().unwrap_or_default();
    let claim_name = r.name.clone().unwrap_or_default();
    let Some(uid) = uid else {
        // Pre-bound by the user to a claim that binds it in its own sync.
        return set_volume_phase(ctx, &pv, "Available").await;
    };
    let cached = informer::get(&ctx.claims, &ns, &claim_name)
        .filter(|c| c.metadata.uid.as_deref() == Some(uid.as_str()));
    let claim = match cached {
        Some(c) => Some(c),
        // The cache may be behind a claim made a moment ago: ask before releasing.
        None => {
            let api: Api<PersistentVolumeClaim> = Api::namespaced(ctx.client.clone(), &ns);
            api.get_opt(&claim_name)
                .await
                .map_err(|e| Error::Claim(format!("{ns}/{claim_name}"), e))?
                .filter(|c| c.metadata.uid.as_deref() == Some(uid.as_str()))
                .map(Arc::new)
        }
    };
    match claim {
        Some(c) if volumes::bound_volume(&c) == Some(name) => {
            set_volume_phase(ctx, &pv, "Bound").await
        }
        // Being bound: the claim's sync finishes it.
        Some(_) => Ok(()),
        None => {
            set_volume_phase(ctx, &pv, "Released").await?;
            let policy = pv
                .spec
                .as_ref()
                .and_then(|s| s.persistent_volume_reclaim_policy.as_deref())
                .unwrap_or("Retain");
            if policy == "Delete" {
                let api: Api<PersistentVolume> = Api::all(ctx.client.clone());
                match api.delete(name, &DeleteParams::default()).await {
                    Ok(_) => {}
                    Err(kube::Error::Api(s)) if s.code == 404 => {}
                    Err(e) => return Err(Error::Volume(name.to_string(), e)),
                }
            }
            Ok(())
        }
    }
}
