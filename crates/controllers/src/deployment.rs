//! The Deployment controller (apps/v1), after Kubernetes' deployment controller: a Deployment
//! owns one ReplicaSet per pod template it has had, named `<deployment>-<pod-template-hash>`,
//! and moves replicas from the old ones to the one of its current template.
//!
//! - **RollingUpdate** grows the new ReplicaSet within `maxSurge` and shrinks old ones only
//!   as far as `maxUnavailable` allows, counting the new ReplicaSet's available pods
//!   ([`rolling`] holds the arithmetic).
//! - **Recreate** scales every old ReplicaSet to zero, waits for their pods to be gone, then
//!   scales the new one up.
//! - A resize mid-rollout is spread proportionally; `spec.paused` stops rollouts (resizes still
//!   apply); old ReplicaSets beyond `revisionHistoryLimit` are deleted once empty.
//! - A template equal to an older ReplicaSet's (`kubectl rollout undo`) makes that ReplicaSet
//!   the new one again, with the next revision number.
//! - The status carries the counters and the `Available` / `Progressing` conditions that
//!   `kubectl rollout status` reads, including `ProgressDeadlineExceeded`.
//!
//! Writes are conditional on the cached resourceVersion, so a sync working from a stale cache
//! fails with a conflict and is retried rather than undoing newer changes.

pub mod rolling;
pub mod util;

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentCondition, DeploymentStatus, ReplicaSet, ReplicaSetSpec,
};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
    LabelSelector as LabelSelectorSpec, ObjectMeta,
};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::Resource;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher;
use serde_json::json;
use tokio_util::sync::CancellationToken;
use wasmkube_api::selector::{LabelSelector, SelectorError};

use crate::events::Recorder;
use crate::informer::{self, Change, key_of, split_key};
use crate::owner::{self, controller_of};
use crate::queue::WorkQueue;
use util::{
    AVAILABLE, FAILED_RS_CREATE, FOUND_NEW_RS, MINIMUM_REPLICAS_AVAILABLE,
    MINIMUM_REPLICAS_UNAVAILABLE, NEW_RS_AVAILABLE, NEW_RS_CREATED, PAUSED, POD_TEMPLATE_HASH,
    PROGRESSING, REPLICA_FAILURE, RESUMED, REVISION, RS_UPDATED, TIMED_OUT,
};

/// The event source component, as in Kubernetes.
pub const COMPONENT: &str = "deployment-controller";
/// Deployments synced at once (Kubernetes' `--concurrent-deployment-syncs` default).
const WORKERS: usize = 5;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("deployment {0} has an invalid selector")]
    Selector(String, #[source] SelectorError),
    #[error("claiming replica sets for deployment {0}")]
    Claim(String, #[source] Box<owner::Error>),
    #[error("creating replica set {0}")]
    CreateReplicaSet(String, #[source] kube::Error),
    #[error("reading replica set {0}")]
    GetReplicaSet(String, #[source] kube::Error),
    #[error("replica set {0} already exists with another template; collisionCount raised")]
    HashCollision(String),
    #[error("updating replica set {0}")]
    UpdateReplicaSet(String, #[source] kube::Error),
    #[error("deleting replica set {0}")]
    DeleteReplicaSet(String, #[source] kube::Error),
    #[error("updating deployment {0}")]
    UpdateDeployment(String, #[source] kube::Error),
    #[error("updating the status of deployment {0}")]
    Status(String, #[source] kube::Error),
}

struct Ctx {
    client: kube::Client,
    deployments: Store<Deployment>,
    replicasets: Store<ReplicaSet>,
    pods: Store<Pod>,
    queue: Arc<WorkQueue>,
    recorder: Recorder,
}

/// Runs the controller until `shutdown` is cancelled.
pub async fn run(client: kube::Client, shutdown: CancellationToken) {
    let (d_store, d_writer) = reflector::store::<Deployment>();
    let (rs_store, rs_writer) = reflector::store::<ReplicaSet>();
    let (pod_store, pod_writer) = reflector::store::<Pod>();
    let queue = WorkQueue::new(shutdown.clone());

    let d_informer = tokio::spawn(informer::run(
        Api::<Deployment>::all(client.clone()),
        watcher::Config::default(),
        d_writer,
        shutdown.clone(),
        {
            let queue = queue.clone();
            move |change| match change {
                Change::Added(d) | Change::Updated { new: d, .. } | Change::Deleted(d) => {
                    queue.add(key_of(&*d))
                }
            }
        },
    ));
    let rs_informer = tokio::spawn(informer::run(
        Api::<ReplicaSet>::all(client.clone()),
        watcher::Config::default(),
        rs_writer,
        shutdown.clone(),
        {
            let queue = queue.clone();
            let deployments = d_store.clone();
            move |change| on_rs_change(&queue, &deployments, change)
        },
    ));
    let pod_informer = tokio::spawn(informer::run(
        Api::<Pod>::all(client.clone()),
        watcher::Config::default(),
        pod_writer,
        shutdown.clone(),
        {
            let queue = queue.clone();
            let deployments = d_store.clone();
            let replicasets = rs_store.clone();
            move |change| {
                // Only Recreate waits on pods: the last old pod going lets it scale up.
                if let Change::Deleted(pod) = change
                    && let Some(d) = deployment_of_pod(&replicasets, &deployments, &pod)
                    && util::is_recreate(&d)
                {
                    queue.add(key_of(&*d));
                }
            }
        },
    ));

    let ready = async {
        let _ = d_store.wait_until_ready().await;
        let _ = rs_store.wait_until_ready().await;
        let _ = pod_store.wait_until_ready().await;
    };
    let started = tokio::select! {
        _ = ready => true,
        _ = shutdown.cancelled() => false,
    };
    if started {
        let ctx = Arc::new(Ctx {
            recorder: Recorder::new(client.clone(), COMPONENT, shutdown.clone()),
            client,
            deployments: d_store,
            replicasets: rs_store,
            pods: pod_store,
            queue,
        });
        let workers: Vec<_> = (0..WORKERS)
            .map(|_| tokio::spawn(worker(ctx.clone())))
            .collect();
        for w in workers {
            let _ = w.await;
        }
    }
    let _ = d_informer.await;
    let _ = rs_informer.await;
    let _ = pod_informer.await;
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
                crate::log_error(&e, "deployment", &key);
                ctx.queue.add_rate_limited(&key);
            }
        }
        ctx.queue.done(&key);
    }
}

/// The cached Deployment a controller reference points at.
fn resolve(
    deployments: &Store<Deployment>,
    ns: &str,
    r: &k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference,
) -> Option<Arc<Deployment>> {
    if r.kind != "Deployment" {
        return None;
    }
    let d = informer::get(deployments, ns, &r.name)?;
    (d.metadata.uid.as_deref() == Some(r.uid.as_str())).then_some(d)
}

fn deployment_of_pod(
    replicasets: &Store<ReplicaSet>,
    deployments: &Store<Deployment>,
    pod: &Pod,
) -> Option<Arc<Deployment>> {
    let ns = pod.metadata.namespace.as_deref().unwrap_or("");
    let r = controller_of(&pod.metadata).filter(|r| r.kind == "ReplicaSet")?;
    let rs = informer::get(replicasets, ns, &r.name)?;
    if rs.metadata.uid.as_deref() != Some(r.uid.as_str()) {
        return None;
    }
    resolve(deployments, ns, controller_of(&rs.metadata)?)
}

/// Queues the Deployments a ReplicaSet change concerns: its controller (old and new), or for
/// an orphan every Deployment that could adopt it.
fn on_rs_change(queue: &WorkQueue, deployments: &Store<Deployment>, change: Change<ReplicaSet>) {
    let (old, new) = match change {
        Change::Added(rs) | Change::Deleted(rs) => (None, rs),
        Change::Updated { old, new } => {
            if old.metadata.resource_version == new.metadata.resource_version {
                return;
            }
            (Some(old), new)
        }
    };
    let ns = new.metadata.namespace.as_deref().unwrap_or("");
    let new_ref = controller_of(&new.metadata);
    if let Some(old) = &old
        && let Some(r) = controller_of(&old.metadata)
        && new_ref.map(|n| &n.uid) != Some(&r.uid)
        && let Some(d) = resolve(deployments, ns, r)
    {
        queue.add(key_of(&*d));
    }
    if let Some(r) = new_ref {
        if let Some(d) = resolve(deployments, ns, r) {
            queue.add(key_of(&*d));
        }
        return;
    }
    let labels_changed = old
        .as_ref()
        .is_none_or(|o| o.metadata.labels != new.metadata.labels);
    if !labels_changed {
        return;
    }
    for d in deployments.state() {
        if d.metadata.namespace.as_deref() != Some(ns) {
            continue;
        }
        if let Ok(sel) = LabelSelector::try_from(&d.spec.selector)
            && !sel.is_everything()
            && sel.matches_opt(new.metadata.labels.as_ref())
        {
            queue.add(key_of(&*d));
        }
    }
}

async fn sync(ctx: &Ctx, key: &str) -> Result<Option<Duration>, Error> {
    let (ns, name) = split_key(key);
    let Some(cached) = informer::get(&ctx.deployments, ns, name) else {
        return Ok(None);
    };
    let selector = LabelSelector::try_from(&cached.spec.selector)
        .map_err(|e| Error::Selector(key.to_string(), e))?;
    let mut s = Sync {
        ctx,
        key: key.to_string(),
        name: name.to_string(),
        d: (*cached).clone(),
        rs_api: Api::namespaced(ctx.client.clone(), ns),
        d_api: Api::namespaced(ctx.client.clone(), ns),
    };
    if selector.is_everything() {
        // Validation refuses this; a Deployment selecting every pod would fight every other.
        if s.d.metadata.generation > s.d.status.as_ref().and_then(|st| st.observed_generation) {
            ctx.recorder.warning(
                s.d.object_ref(&()),
                "SelectingAll",
                "This deployment is selecting all pods. A non-empty selector is required."
                    .to_string(),
            );
            let mut status = s.d.status.clone().unwrap_or_default();
            status.observed_generation = s.d.metadata.generation;
            s.write_status(status).await?;
        }
        return Ok(None);
    }
    let rs_list = s.claim_replica_sets(&selector).await?;
    // Computed once per sync: every step below works on (and updates) these copies, so no
    // step repeats a write another already made from the same cached objects.
    let sets = s.sets(rs_list).await?;
    if s.d.metadata.deletion_timestamp.is_some() {
        let status = s.calculate_status(&sets);
        s.write_status(status).await?;
        return Ok(None);
    }
    s.check_paused_conditions().await?;
    if util::is_paused(&s.d) || s.is_scaling_event(&sets) {
        return s.sync_scale(sets).await;
    }
    if util::is_recreate(&s.d) {
        s.rollout_recreate(sets).await
    } else {
        s.rollout_rolling(sets).await
    }
}

/// One sync of one Deployment. `d` is a working copy: annotation and status changes made
/// during the sync are written through and kept here so later steps see them.
struct Sync<'a> {
    ctx: &'a Ctx,
    key: String,
    name: String,
    d: Deployment,
    rs_api: Api<ReplicaSet>,
    d_api: Api<Deployment>,
}

/// The new ReplicaSet (of the current template), if any, and all the others.
struct Sets {
    new: Option<ReplicaSet>,
    old: Vec<ReplicaSet>,
}

impl Sets {
    fn all(&self) -> Vec<&ReplicaSet> {
        self.old.iter().chain(self.new.iter()).collect()
    }
}

impl Sync<'_> {
    fn desired(&self) -> i32 {
        util::desired_replicas(&self.d)
    }

    fn template(&self) -> k8s_openapi::api::core::v1::PodTemplateSpec {
        self.d.spec.template.clone()
    }

    fn status(&self) -> DeploymentStatus {
        self.d.status.clone().unwrap_or_default()
    }

    /// The Deployment's ReplicaSets: owned ones it still selects plus adopted orphans.
    async fn claim_replica_sets(&self, selector: &LabelSelector) -> Result<Vec<ReplicaSet>, Error> {
        let ns = self.d.metadata.namespace.clone().unwrap_or_default();
        let candidates = self
            .ctx
            .replicasets
            .state_filter(|rs| rs.metadata.namespace.as_deref() == Some(ns.as_str()));
        let d = &self.d;
        let claimed = owner::claim(&self.rs_api, d, selector, candidates, async || {
            owner::recheck_owner(&self.d_api, d).await
        })
        .await
        .map_err(|e| Error::Claim(self.key.clone(), Box::new(e)))?;
        Ok(claimed.into_iter().map(|rs| (*rs).clone()).collect())
    }

    /// Splits into the new ReplicaSet (the oldest one whose template equals the Deployment's,
    /// ignoring the hash label) and the old ones.
    fn split(&self, mut rs_list: Vec<ReplicaSet>) -> Sets {
        rs_list.sort_by(util::by_creation);
        let template = self.template();
        let new_idx = rs_list.iter().position(|rs| {
            rs.spec
                .template
                .as_ref()
                .is_some_and(|t| util::equal_ignore_hash(t, &template))
        });
        let new = new_idx.map(|i| rs_list.remove(i));
        Sets { new, old: rs_list }
    }

    /// Kubernetes' `getAllReplicaSetsAndSyncRevision` without creating: finds the new
    /// ReplicaSet and brings its revision (and the Deployment's) up to date.
    async fn sets(&mut self, rs_list: Vec<ReplicaSet>) -> Result<Sets, Error> {
        let mut sets = self.split(rs_list);
        if let Some(existing) = sets.new.take() {
            let new_revision = util::max_revision(&sets.old) + 1;
            sets.new = Some(self.sync_existing_new_rs(existing, new_revision).await?);
        }
        Ok(sets)
    }

    /// Creates the new ReplicaSet if there is none yet.
    async fn ensure_new(&mut self, sets: &mut Sets) -> Result<(), Error> {
        if sets.new.is_none() {
            let new_revision = util::max_revision(&sets.old) + 1;
            sets.new = self.create_new_rs(&sets.old, new_revision).await?;
        }
        Ok(())
    }

    async fn sync_existing_new_rs(
        &mut self,
        rs: ReplicaSet,
        new_revision: i64,
    ) -> Result<ReplicaSet, Error> {
        let mut next = rs.clone();
        let annotations_changed =
            util::set_new_rs_annotations(&self.d, &mut next, new_revision, true);
        let min_ready = self.d.spec.min_ready_seconds;
        let min_ready_changed = next.spec.min_ready_seconds != min_ready;
        let rs = if annotations_changed || min_ready_changed {
            next.spec.min_ready_seconds = min_ready;
            let rs_name = next.metadata.name.clone().unwrap_or_default();
            self.rs_api
                .replace(&rs_name, &PostParams::default(), &next)
                .await
                .map_err(|e| Error::UpdateReplicaSet(rs_name, e))?
        } else {
            rs
        };
        let revision = rs
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(REVISION))
            .cloned()
            .unwrap_or_default();
        self.set_deployment_revision(&revision).await?;
        let mut status = self.status();
        if util::progress_deadline(&self.d).is_some()
            && util::condition(&status, PROGRESSING).is_none()
        {
            let msg = format!(
                "Found new replica set {:?}",
                rs.metadata.name.as_deref().unwrap_or("")
            );
            util::set_condition(
                &mut status,
                util::new_condition(PROGRESSING, "True", FOUND_NEW_RS, msg),
            );
            self.write_status(status).await?;
        }
        Ok(rs)
    }

    async fn create_new_rs(
        &mut self,
        old: &[ReplicaSet],
        new_revision: i64,
    ) -> Result<Option<ReplicaSet>, Error> {
        let d_template = self.template();
        let collision_count = self.status().collision_count;
        let hash = util::compute_hash(&d_template, collision_count);
        let mut template = d_template.clone();
        let meta = template.metadata.get_or_insert_with(ObjectMeta::default);
        meta.labels
            .get_or_insert_with(Default::default)
            .insert(POD_TEMPLATE_HASH.to_string(), hash.clone());
        let labels = meta.labels.clone();
        let mut selector: LabelSelectorSpec = self.d.spec.selector.clone();
        selector
            .match_labels
            .get_or_insert_with(Default::default)
            .insert(POD_TEMPLATE_HASH.to_string(), hash.clone());
        let rs_name = format!("{}-{hash}", self.name);
        let mut new_rs = ReplicaSet {
            metadata: ObjectMeta {
                name: Some(rs_name.clone()),
                namespace: self.d.metadata.namespace.clone(),
                labels,
                owner_references: Some(vec![owner::controller_ref(&self.d)]),
                ..ObjectMeta::default()
            },
            spec: ReplicaSetSpec {
                replicas: Some(0),
                min_ready_seconds: self.d.spec.min_ready_seconds,
                selector,
                template: Some(template),
            },
            status: None,
        };
        let replicas = {
            let total: i32 = old.iter().map(util::spec_replicas).sum();
            if util::is_recreate(&self.d) {
                self.desired()
            } else {
                rolling::new_rs_replicas(self.desired(), util::max_surge(&self.d), total, 0)
            }
        };
        new_rs.spec.replicas = Some(replicas);
        util::set_new_rs_annotations(&self.d, &mut new_rs, new_revision, false);

        let (created, already_existed) = match self
            .rs_api
            .create(&PostParams::default(), &new_rs)
            .await
        {
            Ok(rs) => (rs, false),
            Err(kube::Error::Api(e)) if e.code == 409 => {
                let existing = self
                    .rs_api
                    .get(&rs_name)
                    .await
                    .map_err(|e| Error::GetReplicaSet(rs_name.clone(), e))?;
                let ours = owner::controlled_by(
                    &existing.metadata,
                    self.d.metadata.uid.as_deref().unwrap_or(""),
                );
                let same = existing
                    .spec
                    .template
                    .as_ref()
                    .is_some_and(|t| util::equal_ignore_hash(t, &d_template));
                if ours && same {
                    // Our own create whose answer we missed, or a cache that had not caught up.
                    (existing, true)
                } else {
                    // A true hash collision: a different template hashed to the same name. Raise
                    // collisionCount so the next attempt gets another hash.
                    let mut status = self.status();
                    status.collision_count = Some(collision_count.unwrap_or(0).saturating_add(1));
                    self.write_status(status).await?;
                    return Err(Error::HashCollision(rs_name));
                }
            }
            Err(kube::Error::Api(e)) if e.code == 403 && e.message.contains("being terminated") => {
                return Ok(None);
            }
            Err(e) => {
                let message = format!("Failed to create new replica set {rs_name:?}: {e}");
                let mut status = self.status();
                util::set_condition(
                    &mut status,
                    util::new_condition(PROGRESSING, "False", FAILED_RS_CREATE, message.clone()),
                );
                self.write_status(status).await?;
                self.ctx
                    .recorder
                    .warning(self.d.object_ref(&()), "FailedCreate", message);
                return Err(Error::CreateReplicaSet(rs_name, e));
            }
        };
        if !already_existed && replicas > 0 {
            self.ctx.recorder.normal(
                self.d.object_ref(&()),
                "ScalingReplicaSet",
                format!("Scaled up replica set {rs_name} from 0 to {replicas}"),
            );
        }
        self.set_deployment_revision(&new_revision.to_string())
            .await?;
        if !already_existed && util::progress_deadline(&self.d).is_some() {
            let mut status = self.status();
            util::set_condition(
                &mut status,
                util::new_condition(
                    PROGRESSING,
                    "True",
                    NEW_RS_CREATED,
                    format!("Created new replica set {rs_name:?}"),
                ),
            );
            self.write_status(status).await?;
        }
        Ok(Some(created))
    }

    /// Records the revision of the new ReplicaSet on the Deployment.
    async fn set_deployment_revision(&mut self, revision: &str) -> Result<(), Error> {
        let current = self
            .d
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(REVISION))
            .map(String::as_str);
        if revision.is_empty() || current == Some(revision) {
            return Ok(());
        }
        // Kubernetes writes this through the status subresource (whose strategy keeps
        // annotations); ours keeps metadata from the main resource only, so patch that.
        let patch = json!({"metadata": {"annotations": {REVISION: revision}}});
        let updated = self
            .d_api
            .patch(&self.name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(|e| Error::UpdateDeployment(self.key.clone(), e))?;
        self.d.metadata.annotations = updated.metadata.annotations;
        Ok(())
    }

    /// Replaces the status. Unconditional: the controller is the status' only writer.
    async fn write_status(&mut self, status: DeploymentStatus) -> Result<(), Error> {
        if self.d.status.as_ref() == Some(&status) {
            return Ok(());
        }
        match crate::status_subresource::replace_status(&self.d_api, &self.name, &status).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(e) => return Err(Error::Status(self.key.clone(), e)),
        }
        self.d.status = Some(status);
        Ok(())
    }

    /// Sets a ReplicaSet's size and replica annotations; whether the size changed.
    async fn scale(&self, rs: &mut ReplicaSet, replicas: i32) -> Result<bool, Error> {
        let old = util::spec_replicas(rs);
        let desired = self.desired();
        let max = desired + util::max_surge(&self.d);
        if old == replicas && !util::replicas_annotations_need_update(rs, desired, max) {
            return Ok(false);
        }
        let mut next = rs.clone();
        next.spec.replicas = Some(replicas);
        util::set_replicas_annotations(&mut next, desired, max);
        let rs_name = next.metadata.name.clone().unwrap_or_default();
        *rs = self
            .rs_api
            .replace(&rs_name, &PostParams::default(), &next)
            .await
            .map_err(|e| Error::UpdateReplicaSet(rs_name.clone(), e))?;
        if old == replicas {
            return Ok(false);
        }
        let direction = if old < replicas { "up" } else { "down" };
        self.ctx.recorder.normal(
            self.d.object_ref(&()),
            "ScalingReplicaSet",
            format!("Scaled {direction} replica set {rs_name} from {old} to {replicas}"),
        );
        Ok(true)
    }

    /// Scales only when the size differs (Kubernetes' `scaleReplicaSetAndRecordEvent`).
    async fn scale_if_needed(&self, rs: &mut ReplicaSet, replicas: i32) -> Result<bool, Error> {
        if util::spec_replicas(rs) == replicas {
            return Ok(false);
        }
        self.scale(rs, replicas).await
    }

    async fn rollout_rolling(&mut self, mut sets: Sets) -> Result<Option<Duration>, Error> {
        self.ensure_new(&mut sets).await?;
        let desired = self.desired();
        // Grow (or shrink) the new ReplicaSet.
        if let Some(new) = sets.new.as_mut() {
            let current = util::spec_replicas(new);
            let target = if current > desired {
                desired
            } else {
                let total: i32 = sets.old.iter().map(util::spec_replicas).sum::<i32>() + current;
                rolling::new_rs_replicas(desired, util::max_surge(&self.d), total, current)
            };
            if self.scale_if_needed(new, target).await? {
                return self.sync_rollout_status(&sets).await;
            }
        }
        // Shrink old ones as far as availability allows.
        let mut active: Vec<usize> = (0..sets.old.len())
            .filter(|&i| util::spec_replicas(&sets.old[i]) > 0)
            .collect();
        active.sort_by(|&a, &b| util::by_creation(&sets.old[a], &sets.old[b]));
        if let Some(new) = sets.new.as_ref() {
            let old_counts: Vec<rolling::Counts> =
                active.iter().map(|&i| util::counts(&sets.old[i])).collect();
            let targets = rolling::scale_down_old(
                desired,
                util::max_unavailable(&self.d),
                util::counts(new),
                &old_counts,
            );
            let mut scaled = false;
            for (&i, target) in active.iter().zip(targets) {
                scaled |= self.scale_if_needed(&mut sets.old[i], target).await?;
            }
            if scaled {
                return self.sync_rollout_status(&sets).await;
            }
        }
        if util::deployment_complete(&self.d, &self.status()) {
            self.cleanup(&sets.old).await?;
        }
        self.sync_rollout_status(&sets).await
    }

    async fn rollout_recreate(&mut self, mut sets: Sets) -> Result<Option<Duration>, Error> {
        let mut scaled = false;
        for rs in sets.old.iter_mut() {
            if util::spec_replicas(rs) != 0 {
                scaled |= self.scale_if_needed(rs, 0).await?;
            }
        }
        if scaled {
            return self.sync_rollout_status(&sets).await;
        }
        if self.old_pods_running(&sets) {
            return self.sync_rollout_status(&sets).await;
        }
        self.ensure_new(&mut sets).await?;
        let desired = self.desired();
        if let Some(new) = sets.new.as_mut() {
            self.scale_if_needed(new, desired).await?;
        }
        if util::deployment_complete(&self.d, &self.status()) {
            self.cleanup(&sets.old).await?;
        }
        self.sync_rollout_status(&sets).await
    }

    /// Whether any pod of an old ReplicaSet may still run: Recreate must not start new pods
    /// beside old ones.
    fn old_pods_running(&self, sets: &Sets) -> bool {
        if sets.old.iter().map(util::status_replicas).sum::<i32>() > 0 {
            return true;
        }
        let old_uids: Vec<&str> = sets
            .old
            .iter()
            .filter_map(|rs| rs.metadata.uid.as_deref())
            .collect();
        let ns = self.d.metadata.namespace.as_deref();
        !self
            .ctx
            .pods
            .state_filter(|p| {
                p.metadata.namespace.as_deref() == ns
                    && !crate::pods::is_terminal(p)
                    && controller_of(&p.metadata)
                        .is_some_and(|r| old_uids.contains(&r.uid.as_str()))
            })
            .is_empty()
    }

    /// Whether `spec.replicas` changed since the active ReplicaSets were sized.
    fn is_scaling_event(&self, sets: &Sets) -> bool {
        let desired = self.desired();
        sets.all()
            .into_iter()
            .filter(|rs| util::spec_replicas(rs) > 0)
            .filter_map(util::desired_annotation)
            .any(|d| d != desired)
    }

    /// A resize (or a paused Deployment): no rollout progress, only sizes.
    async fn sync_scale(&mut self, mut sets: Sets) -> Result<Option<Duration>, Error> {
        self.scale_proportionally(&mut sets).await?;
        if util::is_paused(&self.d) {
            self.cleanup(&sets.old).await?;
        }
        let status = self.calculate_status(&sets);
        self.write_status(status).await?;
        Ok(None)
    }

    /// Kubernetes' `scale`: a single active ReplicaSet takes the new size; a saturated new one
    /// means old ones go to zero; otherwise the change is spread proportionally.
    async fn scale_proportionally(&self, sets: &mut Sets) -> Result<(), Error> {
        let desired = self.desired();
        let active_count = sets
            .all()
            .iter()
            .filter(|rs| util::spec_replicas(rs) > 0)
            .count();
        if active_count <= 1 {
            // The single active ReplicaSet, or else the new one, or else the newest old one,
            // takes the whole size. `scale` (not `scale_if_needed`) also refreshes the replica
            // annotations, or a stale desired-replicas would read as a resize forever.
            let target = if active_count == 1 {
                sets.old
                    .iter_mut()
                    .chain(sets.new.iter_mut())
                    .find(|rs| util::spec_replicas(rs) > 0)
            } else if sets.new.is_some() {
                sets.new.as_mut()
            } else {
                sets.old.iter_mut().max_by(|a, b| util::by_creation(a, b))
            };
            if let Some(rs) = target {
                self.scale(rs, desired).await?;
            }
            return Ok(());
        }
        let new_saturated = sets.new.as_ref().is_some_and(|rs| {
            util::desired_annotation(rs) == Some(desired)
                && util::available_replicas(rs) == desired
                && util::spec_replicas(rs) == desired
        });
        if new_saturated {
            for rs in sets.old.iter_mut().filter(|rs| util::spec_replicas(rs) > 0) {
                self.scale_if_needed(rs, 0).await?;
            }
            return Ok(());
        }
        if util::is_recreate(&self.d) {
            return Ok(());
        }
        let status_replicas = self.status().replicas.unwrap_or(0);
        let max_surge = util::max_surge(&self.d);
        let mut active: Vec<&mut ReplicaSet> = sets
            .old
            .iter_mut()
            .chain(sets.new.iter_mut())
            .filter(|rs| util::spec_replicas(rs) > 0)
            .collect();
        let mut by_age: Vec<usize> = (0..active.len()).collect();
        by_age.sort_by(|&a, &b| util::by_creation(active[a], active[b]));
        let sized: Vec<rolling::Sized> = (0..active.len())
            .map(|i| rolling::Sized {
                replicas: util::spec_replicas(active[i]),
                max_replicas: util::max_replicas_annotation(active[i]),
                age_rank: by_age.iter().position(|&j| j == i).unwrap_or(0),
            })
            .collect();
        let sizes = rolling::proportional_sizes(&sized, desired, max_surge, status_replicas);
        for (rs, size) in active.iter_mut().zip(sizes) {
            // Also refreshes the replica annotations of ReplicaSets whose size stays.
            self.scale(rs, size).await?;
        }
        Ok(())
    }

    /// Deletes the oldest empty ReplicaSets beyond `revisionHistoryLimit`.
    async fn cleanup(&self, old: &[ReplicaSet]) -> Result<(), Error> {
        let Some(limit) = self.d.spec.revision_history_limit else {
            return Ok(());
        };
        let mut alive: Vec<&ReplicaSet> = old
            .iter()
            .filter(|rs| rs.metadata.deletion_timestamp.is_none())
            .collect();
        let excess = alive
            .len()
            .saturating_sub(usize::try_from(limit).unwrap_or(0));
        if excess == 0 {
            return Ok(());
        }
        alive.sort_by(|a, b| util::by_revision(a, b));
        for rs in alive.into_iter().take(excess) {
            let settled =
                rs.status.as_ref().and_then(|s| s.observed_generation) >= rs.metadata.generation;
            if util::status_replicas(rs) != 0 || util::spec_replicas(rs) != 0 || !settled {
                continue;
            }
            let rs_name = rs.metadata.name.clone().unwrap_or_default();
            match self.rs_api.delete(&rs_name, &DeleteParams::default()).await {
                Ok(_) => {}
                Err(kube::Error::Api(e)) if e.code == 404 => {}
                Err(e) => return Err(Error::DeleteReplicaSet(rs_name, e)),
            }
        }
        Ok(())
    }

    /// Kubernetes' `calculateStatus`.
    fn calculate_status(&self, sets: &Sets) -> DeploymentStatus {
        let all = sets.all();
        let available: i32 = all.iter().map(|rs| util::available_replicas(rs)).sum();
        let total: i32 = all.iter().map(|rs| util::spec_replicas(rs)).sum();
        let nz = |n: i32| (n != 0).then_some(n);
        let mut status = DeploymentStatus {
            observed_generation: self.d.metadata.generation,
            replicas: nz(all.iter().map(|rs| util::status_replicas(rs)).sum()),
            updated_replicas: nz(sets.new.as_ref().map(util::status_replicas).unwrap_or(0)),
            ready_replicas: nz(all.iter().map(|rs| util::ready_replicas(rs)).sum()),
            available_replicas: nz(available),
            unavailable_replicas: nz((total - available).max(0)),
            collision_count: self.status().collision_count,
            conditions: self.status().conditions,
            terminating_replicas: None,
        };
        let min_available = self.desired() - util::max_unavailable(&self.d);
        let cond = if available >= min_available {
            util::new_condition(
                AVAILABLE,
                "True",
                MINIMUM_REPLICAS_AVAILABLE,
                "Deployment has minimum availability.".into(),
            )
        } else {
            util::new_condition(
                AVAILABLE,
                "False",
                MINIMUM_REPLICAS_UNAVAILABLE,
                "Deployment does not have minimum availability.".into(),
            )
        };
        util::set_condition(&mut status, cond);
        status
    }

    /// Kubernetes' `syncRolloutStatus`: the status plus the Progressing condition, and when
    /// to look again for the progress deadline.
    async fn sync_rollout_status(&mut self, sets: &Sets) -> Result<Option<Duration>, Error> {
        let mut status = self.calculate_status(sets);
        let deadline = util::progress_deadline(&self.d);
        if deadline.is_none() {
            util::remove_condition(&mut status, PROGRESSING);
        }
        let old_status = self.status();
        let current = util::condition(&old_status, PROGRESSING).cloned();
        let complete = status.replicas == status.updated_replicas
            && current.as_ref().and_then(|c| c.reason.as_deref()) == Some(NEW_RS_AVAILABLE);
        let new_name = sets.new.as_ref().and_then(|rs| rs.metadata.name.clone());
        if deadline.is_some() && !complete {
            if util::deployment_complete(&self.d, &status) {
                let msg = match &new_name {
                    Some(n) => format!("ReplicaSet {n:?} has successfully progressed."),
                    None => "Deployment has successfully progressed.".to_string(),
                };
                util::set_condition(
                    &mut status,
                    util::new_condition(PROGRESSING, "True", NEW_RS_AVAILABLE, msg),
                );
            } else if util::deployment_progressing(&self.d, &status) {
                let msg = match &new_name {
                    Some(n) => format!("ReplicaSet {n:?} is progressing."),
                    None => "Deployment is progressing.".to_string(),
                };
                let mut cond = util::new_condition(PROGRESSING, "True", RS_UPDATED, msg);
                // Progress refreshes lastUpdateTime (the deadline's base) even when the reason
                // stays the same, which `set_condition` alone would not.
                if let Some(c) = &current
                    && c.status.as_deref() == Some("True")
                {
                    cond.last_transition_time = c.last_transition_time.clone();
                }
                util::remove_condition(&mut status, PROGRESSING);
                util::set_condition(&mut status, cond);
            } else if timed_out(&self.d, &status) {
                let msg = match &new_name {
                    Some(n) => format!("ReplicaSet {n:?} has timed out progressing."),
                    None => "Deployment has timed out progressing.".to_string(),
                };
                util::set_condition(
                    &mut status,
                    util::new_condition(PROGRESSING, "False", TIMED_OUT, msg),
                );
            }
        }
        match replica_failure(sets) {
            Some(c) => util::set_condition(&mut status, c),
            None => util::remove_condition(&mut status, REPLICA_FAILURE),
        }
        let requeue = self.requeue_stuck(&status);
        self.write_status(status).await?;
        Ok(requeue)
    }

    /// When to look again so that a stalled rollout is marked ProgressDeadlineExceeded.
    fn requeue_stuck(&self, status: &DeploymentStatus) -> Option<Duration> {
        let deadline = util::progress_deadline(&self.d)?;
        let cond = util::condition(status, PROGRESSING)?;
        if util::deployment_complete(&self.d, status) || cond.reason.as_deref() == Some(TIMED_OUT) {
            return None;
        }
        let from = cond.last_update_time.as_ref()?.0;
        let due = from
            .checked_add(SignedDuration::from_secs(i64::from(deadline)))
            .ok()?;
        let wait = Timestamp::now().duration_until(due);
        // One second late: the deadline must have passed, at second resolution.
        let wait = (wait + SignedDuration::from_secs(1)).max(SignedDuration::from_millis(100));
        Duration::try_from(wait).ok()
    }

    /// Kubernetes' `checkPausedConditions`: Progressing says when a rollout is paused or
    /// resumed (so the deadline does not run out while paused).
    async fn check_paused_conditions(&mut self) -> Result<(), Error> {
        if util::progress_deadline(&self.d).is_none() {
            return Ok(());
        }
        let mut status = self.status();
        let reason = util::condition(&status, PROGRESSING).and_then(|c| c.reason.clone());
        if reason.as_deref() == Some(TIMED_OUT) {
            return Ok(());
        }
        let paused_cond = reason.as_deref() == Some(PAUSED);
        let paused = util::is_paused(&self.d);
        let cond = if paused && !paused_cond {
            util::new_condition(
                PROGRESSING,
                "Unknown",
                PAUSED,
                "Deployment is paused".into(),
            )
        } else if !paused && paused_cond {
            util::new_condition(
                PROGRESSING,
                "Unknown",
                RESUMED,
                "Deployment is resumed".into(),
            )
        } else {
            return Ok(());
        };
        util::set_condition(&mut status, cond);
        self.write_status(status).await
    }
}

/// The Progressing condition has not moved for `progressDeadlineSeconds`.
fn timed_out(d: &Deployment, status: &DeploymentStatus) -> bool {
    let Some(deadline) = util::progress_deadline(d) else {
        return false;
    };
    let Some(cond) = util::condition(status, PROGRESSING) else {
        return false;
    };
    match cond.reason.as_deref() {
        Some(NEW_RS_AVAILABLE) => return false,
        Some(TIMED_OUT) => return true,
        _ => {}
    }
    let Some(from) = cond.last_update_time.as_ref().map(|t| t.0) else {
        return false;
    };
    from.checked_add(SignedDuration::from_secs(i64::from(deadline)))
        .is_ok_and(|due| due < Timestamp::now())
}

/// The ReplicaFailure condition of the new ReplicaSet, else of any other, as a Deployment
/// condition.
fn replica_failure(sets: &Sets) -> Option<DeploymentCondition> {
    let of = |rs: &ReplicaSet| {
        rs.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .and_then(|cs| {
                cs.iter()
                    .find(|c| c.type_.as_deref() == Some(REPLICA_FAILURE))
            })
            .map(|c| DeploymentCondition {
                type_: c.type_.clone(),
                status: c.status.clone(),
                reason: c.reason.clone(),
                message: c.message.clone(),
                last_update_time: c.last_transition_time.clone(),
                last_transition_time: c.last_transition_time.clone(),
            })
    };
    sets.new
        .as_ref()
        .and_then(of)
        .or_else(|| sets.old.iter().find_map(of))
}
