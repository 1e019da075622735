//! The ReplicaSet controller (apps/v1): keeps `spec.replicas` active pods that match
//! `spec.selector`, made from `spec.template`, as Kubernetes' replicaset controller does.
//!
//! Informers on ReplicaSets and Pods feed a [`WorkQueue`] keyed by ReplicaSet; workers sync
//! one ReplicaSet at a time each. A sync claims pods (adopting matching orphans, releasing
//! owned pods that stopped matching), creates or deletes the difference, and writes the
//! status. After asking for creates or deletes it records [`Expectations`] and does not act on
//! the pod cache again until the cache has shown them, so a burst of events can never make it
//! over-create.
//!
//! Creates run in slow-start batches (1, 2, 4, … up to [`MAX_BATCH`] at a time): a template
//! the API refuses fails once, not a thousand times, and a good one still fills a large
//! ReplicaSet quickly.

mod ranking;
mod status;

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::jiff::Timestamp;
use kube::Resource;
use kube::api::{Api, DeleteParams, PostParams};
use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher;
use tokio_util::sync::CancellationToken;
use wasmkube_api::selector::{LabelSelector, SelectorError};

use crate::events::Recorder;
use crate::expectations::Expectations;
use crate::informer::{self, Change, key_of, split_key};
use crate::owner::{self, controller_of};
use crate::pods;
use crate::queue::WorkQueue;

pub use ranking::{compare as compare_for_deletion, pods_to_delete};
pub use status::{REPLICA_FAILURE, calculate as calculate_status};

/// The event source component, as in Kubernetes.
pub const COMPONENT: &str = "replicaset-controller";
/// ReplicaSets synced at once (Kubernetes' `--concurrent-replicaset-syncs` default).
const WORKERS: usize = 5;
/// At most this many creates or deletes per sync (Kubernetes' `BurstReplicas`); the next sync
/// continues once the cache has seen them.
pub const BURST_REPLICAS: usize = 500;
/// The largest slow-start batch of concurrent creates.
pub const MAX_BATCH: usize = 50;
/// Deletes in flight at once.
const DELETE_CONCURRENCY: usize = 50;
/// Longest `generateName` prefix: the API appends five characters and names must stay valid
/// DNS labels for the pod's hostname.
const MAX_GENERATED_PREFIX: usize = 58;
/// How many times a create whose generated name clashed is retried with a new name.
const NAME_CLASH_RETRIES: usize = 3;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("replica set {0} has an invalid selector")]
    Selector(String, #[source] SelectorError),
    #[error("claiming pods for replica set {0}")]
    Claim(String, #[source] Box<owner::Error>),
    #[error("creating pods for replica set {0}")]
    Create(String, #[source] kube::Error),
    #[error("deleting pods of replica set {0}")]
    Delete(String, #[source] kube::Error),
    #[error("updating the status of replica set {0}")]
    Status(String, #[source] kube::Error),
}

struct Ctx {
    client: kube::Client,
    pods: Store<Pod>,
    replicasets: Store<ReplicaSet>,
    queue: Arc<WorkQueue>,
    expectations: Arc<Expectations>,
    recorder: Recorder,
}

/// Runs the controller until `shutdown` is cancelled.
pub async fn run(client: kube::Client, shutdown: CancellationToken) {
    let (pod_store, pod_writer) = reflector::store::<Pod>();
    let (rs_store, rs_writer) = reflector::store::<ReplicaSet>();
    let queue = WorkQueue::new(shutdown.clone());
    let expectations = Arc::new(Expectations::new());

    let rs_informer = tokio::spawn(informer::run(
        Api::<ReplicaSet>::all(client.clone()),
        watcher::Config::default(),
        rs_writer,
        shutdown.clone(),
        {
            let queue = queue.clone();
            let expectations = expectations.clone();
            move |change| match change {
                Change::Added(rs) | Change::Updated { new: rs, .. } => queue.add(key_of(&*rs)),
                Change::Deleted(rs) => expectations.delete(&key_of(&*rs)),
            }
        },
    ));
    let pod_informer = tokio::spawn(informer::run(
        Api::<Pod>::all(client.clone()),
        watcher::Config::default(),
        pod_writer,
        shutdown.clone(),
        {
            let handlers = PodHandlers {
                queue: queue.clone(),
                expectations: expectations.clone(),
                replicasets: rs_store.clone(),
            };
            move |change| handlers.on_change(change)
        },
    ));

    // Acting on a cache that is still empty would create every replica a second time.
    let ready = async {
        let _ = pod_store.wait_until_ready().await;
        let _ = rs_store.wait_until_ready().await;
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
            replicasets: rs_store,
            queue,
            expectations,
        });
        let workers: Vec<_> = (0..WORKERS)
            .map(|_| tokio::spawn(worker(ctx.clone())))
            .collect();
        for w in workers {
            let _ = w.await;
        }
    }
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
                crate::log_error(&e, "replicaset", &key);
                ctx.queue.add_rate_limited(&key);
            }
        }
        ctx.queue.done(&key);
    }
}

/// Maps pod changes to the ReplicaSets that must look at them, and settles expectations.
struct PodHandlers {
    queue: Arc<WorkQueue>,
    expectations: Arc<Expectations>,
    replicasets: Store<ReplicaSet>,
}

impl PodHandlers {
    fn on_change(&self, change: Change<Pod>) {
        match change {
            Change::Added(pod) => {
                if pod.metadata.deletion_timestamp.is_some() {
                    // Seen for the first time already being deleted (e.g. after a re-list).
                    self.deleted(&pod);
                    return;
                }
                if let Some(r) = controller_of(&pod.metadata) {
                    if let Some(key) = self.resolve(&pod, r) {
                        self.expectations.creation_observed(&key);
                        self.queue.add(key);
                    }
                    return;
                }
                self.enqueue_matching(&pod);
            }
            Change::Updated { old, new } => {
                if old.metadata.resource_version == new.metadata.resource_version {
                    return;
                }
                let labels_changed = old.metadata.labels != new.metadata.labels;
                if new.metadata.deletion_timestamp.is_some() {
                    // A graceful delete has begun: Kubernetes counts the deletion as observed
                    // now, since the pod no longer counts as active.
                    self.deleted(&new);
                    if labels_changed {
                        self.deleted(&old);
                    }
                    return;
                }
                let new_ref = controller_of(&new.metadata);
                let old_ref = controller_of(&old.metadata);
                let ref_changed = new_ref.map(|r| &r.uid) != old_ref.map(|r| &r.uid);
                if ref_changed
                    && let Some(r) = old_ref
                    && let Some(key) = self.resolve(&old, r)
                {
                    self.queue.add(key);
                }
                if let Some(r) = new_ref {
                    if let Some(key) = self.resolve(&new, r) {
                        self.queue.add(key);
                    }
                    return;
                }
                if labels_changed || ref_changed {
                    self.enqueue_matching(&new);
                }
            }
            Change::Deleted(pod) => self.deleted(&pod),
        }
    }

    fn deleted(&self, pod: &Pod) {
        if let Some(r) = controller_of(&pod.metadata)
            && let Some(key) = self.resolve(pod, r)
        {
            self.expectations.deletion_observed(&key, &key_of(pod));
            self.queue.add(key);
        }
    }

    /// The key of the cached ReplicaSet a controller reference points at.
    fn resolve(&self, pod: &Pod, r: &OwnerReference) -> Option<String> {
        if r.kind != "ReplicaSet" {
            return None;
        }
        let ns = pod.metadata.namespace.as_deref().unwrap_or("");
        let rs = informer::get(&self.replicasets, ns, &r.name)?;
        (rs.metadata.uid.as_deref() == Some(r.uid.as_str())).then(|| key_of(&*rs))
    }

    /// Queues every ReplicaSet that could adopt this orphan.
    fn enqueue_matching(&self, pod: &Pod) {
        let ns = pod.metadata.namespace.as_deref();
        for rs in self.replicasets.state() {
            if rs.metadata.namespace.as_deref() != ns {
                continue;
            }
            let Ok(selector) = LabelSelector::try_from(&rs.spec.selector) else {
                continue;
            };
            if !selector.is_everything() && selector.matches_opt(pod.metadata.labels.as_ref()) {
                self.queue.add(key_of(&*rs));
            }
        }
    }
}

/// Brings one ReplicaSet to its desired state; `Ok(Some(d))` asks for another look after `d`
/// (a pod becoming available once `minReadySeconds` have passed).
async fn sync(ctx: &Ctx, key: &str) -> Result<Option<Duration>, Error> {
    let (ns, name) = split_key(key);
    let Some(rs) = informer::get(&ctx.replicasets, ns, name) else {
        ctx.expectations.delete(key);
        return Ok(None);
    };
    let selector = LabelSelector::try_from(&rs.spec.selector)
        .map_err(|e| Error::Selector(key.to_string(), e))?;
    // Read before looking at the cache: an expectation met after this point only delays the
    // next sync, never lets this one act on a cache that has not caught up.
    let needs_sync = ctx.expectations.satisfied(key);
    let candidates = ctx
        .pods
        .state_filter(|p| p.metadata.namespace.as_deref() == Some(ns) && pods::is_active(p));
    let pods_api: Api<Pod> = Api::namespaced(ctx.client.clone(), ns);
    let rs_api: Api<ReplicaSet> = Api::namespaced(ctx.client.clone(), ns);
    let owned = owner::claim(&pods_api, &*rs, &selector, candidates, async || {
        owner::recheck_owner(&rs_api, &*rs).await
    })
    .await
    .map_err(|e| Error::Claim(key.to_string(), Box::new(e)))?;

    let manage_error = if needs_sync && rs.metadata.deletion_timestamp.is_none() {
        manage_replicas(ctx, &rs, key, &owned).await.err()
    } else {
        None
    };
    let now = Timestamp::now();
    let new_status = status::calculate(
        &rs,
        &owned,
        manage_error.as_ref().map(crate::error_chain),
        now,
    );
    if rs.status.as_ref() != Some(&new_status) {
        // Unconditional: this controller is the only writer of the status.
        match crate::status_subresource::replace_status(&rs_api, name, &new_status).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 404 => return Ok(None),
            Err(e) => return Err(Error::Status(key.to_string(), e)),
        }
    }
    match manage_error {
        Some(e) => Err(e),
        None => Ok(status::next_availability_check(&rs, &owned, now)),
    }
}

/// Creates or deletes pods so that `owned` becomes `spec.replicas` long.
async fn manage_replicas(
    ctx: &Ctx,
    rs: &ReplicaSet,
    key: &str,
    owned: &[Arc<Pod>],
) -> Result<(), Error> {
    let (ns, _) = split_key(key);
    let want = usize::try_from(rs.spec.replicas.unwrap_or(1)).unwrap_or(0);
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), ns);
    if owned.len() < want {
        let n = (want - owned.len()).min(BURST_REPLICAS);
        ctx.expectations.expect_creations(key, n);
        let template = pod_for(rs);
        let (created, error) =
            slow_start_batch(n, MAX_BATCH, || create_pod(ctx, &api, &template, rs)).await;
        // What was not created will never be observed.
        if created < n {
            ctx.expectations.lower_creations(key, n - created);
        }
        return error.map_or(Ok(()), |e| Err(Error::Create(key.to_string(), e)));
    }
    if owned.len() > want {
        let n = (owned.len() - want).min(BURST_REPLICAS);
        let related = related_pods(ctx, rs);
        let victims = ranking::pods_to_delete(owned, &related, n);
        ctx.expectations
            .expect_deletions(key, victims.iter().map(|p| key_of(&**p)));
        let errors: Vec<kube::Error> = futures::stream::iter(victims)
            .map(|pod| {
                let api = api.clone();
                async move {
                    let pod_name = pod.metadata.name.clone().unwrap_or_default();
                    match api.delete(&pod_name, &DeleteParams::default()).await {
                        Ok(_) => {
                            ctx.recorder.normal(
                                rs.object_ref(&()),
                                "SuccessfulDelete",
                                format!("Deleted pod: {pod_name}"),
                            );
                            None
                        }
                        Err(e) => {
                            // The cache will never see this deletion.
                            ctx.expectations.deletion_observed(key, &key_of(&*pod));
                            match e {
                                kube::Error::Api(s) if s.code == 404 => None,
                                e => {
                                    ctx.recorder.warning(
                                        rs.object_ref(&()),
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
        if let Some(e) = errors.into_iter().next() {
            return Err(Error::Delete(key.to_string(), e));
        }
    }
    Ok(())
}

/// Active pods of this ReplicaSet and of its siblings (ReplicaSets with the same controller,
/// i.e. of one Deployment): scaling down prefers nodes these crowd.
fn related_pods(ctx: &Ctx, rs: &ReplicaSet) -> Vec<Arc<Pod>> {
    let ns = rs.metadata.namespace.as_deref();
    let mut uids: Vec<String> = vec![rs.metadata.uid.clone().unwrap_or_default()];
    if let Some(parent) = controller_of(&rs.metadata) {
        uids.extend(
            ctx.replicasets
                .state()
                .iter()
                .filter(|s| s.metadata.namespace.as_deref() == ns)
                .filter(|s| owner::controlled_by(&s.metadata, &parent.uid))
                .filter_map(|s| s.metadata.uid.clone()),
        );
    }
    ctx.pods.state_filter(|p| {
        p.metadata.namespace.as_deref() == ns
            && pods::is_active(p)
            && controller_of(&p.metadata).is_some_and(|r| uids.contains(&r.uid))
    })
}

/// The pod a ReplicaSet creates: its template, named `<rs>-<random>` by the API server
/// (`generateName`), controlled by the ReplicaSet.
fn pod_for(rs: &ReplicaSet) -> Pod {
    let template = rs.spec.template.clone().unwrap_or_default();
    let meta = template.metadata.unwrap_or_default();
    let mut prefix = format!("{}-", rs.metadata.name.as_deref().unwrap_or("pod"));
    if prefix.len() > MAX_GENERATED_PREFIX {
        let mut cut = MAX_GENERATED_PREFIX;
        while !prefix.is_char_boundary(cut) {
            cut -= 1;
        }
        prefix.truncate(cut);
    }
    Pod {
        metadata: ObjectMeta {
            generate_name: Some(prefix),
            namespace: rs.metadata.namespace.clone(),
            labels: meta.labels,
            annotations: meta.annotations,
            finalizers: meta.finalizers,
            owner_references: Some(vec![owner::controller_ref(rs)]),
            ..ObjectMeta::default()
        },
        spec: template.spec,
        status: None,
    }
}

/// Whether the API refused a create because the namespace is going away: nothing to report,
/// the ReplicaSet is about to be deleted with it.
fn namespace_terminating(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 403 && s.message.contains("being terminated"))
}

/// Creates one pod; `Ok(false)` when it was not created but that is not a failure.
async fn create_pod(
    ctx: &Ctx,
    api: &Api<Pod>,
    pod: &Pod,
    rs: &ReplicaSet,
) -> Result<bool, kube::Error> {
    let mut attempt = 0;
    loop {
        match api.create(&PostParams::default(), pod).await {
            Ok(created) => {
                let name = created.metadata.name.unwrap_or_default();
                ctx.recorder.normal(
                    rs.object_ref(&()),
                    "SuccessfulCreate",
                    format!("Created pod: {name}"),
                );
                return Ok(true);
            }
            // A generated name that clashed with an existing pod: another random name will do.
            Err(kube::Error::Api(s))
                if s.code == 409 && s.reason == "AlreadyExists" && attempt < NAME_CLASH_RETRIES =>
            {
                attempt += 1;
            }
            Err(e) if namespace_terminating(&e) => return Ok(false),
            Err(e) => {
                ctx.recorder.warning(
                    rs.object_ref(&()),
                    "FailedCreate",
                    format!("Error creating: {e}"),
                );
                return Err(e);
            }
        }
    }
}

/// Runs `count` calls of `f` in batches that double from 1 up to `max_batch`, all calls of a
/// batch concurrently, stopping after the first batch with a failure. Returns how many calls
/// succeeded (`Ok(true)`) and the first error. Kubernetes' `slowStartBatch`.
pub async fn slow_start_batch<F, Fut, E>(count: usize, max_batch: usize, f: F) -> (usize, Option<E>)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<bool, E>>,
{
    let mut remaining = count;
    let mut successes = 0;
    let mut batch = remaining.min(1);
    while batch > 0 {
        let results = futures::future::join_all((0..batch).map(|_| f())).await;
        let mut first_error = None;
        for r in results {
            match r {
                Ok(true) => successes += 1,
                Ok(false) => {}
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        if first_error.is_some() {
            return (successes, first_error);
        }
        remaining -= batch;
        batch = (batch * 2).min(remaining).min(max_batch.max(1));
    }
    (successes, None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn slow_start_doubles_up_to_the_cap() {
        let in_flight = AtomicUsize::new(0);
        let batches = Mutex::new(Vec::new());
        let (ok, err) = slow_start_batch(200, 50, || async {
            in_flight.fetch_add(1, Ordering::SeqCst);
            tokio::task::yield_now().await;
            // Every call of a batch has started before the first one finishes.
            let seen = in_flight.load(Ordering::SeqCst);
            tokio::task::yield_now().await;
            in_flight.fetch_sub(1, Ordering::SeqCst);
            if let Ok(mut b) = batches.lock() {
                b.push(seen);
            }
            Ok::<bool, ()>(true)
        })
        .await;
        assert_eq!((ok, err), (200, None));
        let seen = batches.lock().map(|b| b.clone()).unwrap_or_default();
        assert_eq!(seen.iter().copied().max(), Some(50));
        assert_eq!(seen[0], 1);
    }

    #[tokio::test]
    async fn slow_start_stops_after_a_failing_batch() {
        let calls = AtomicUsize::new(0);
        let (ok, err) = slow_start_batch(100, 50, || async {
            let n = calls.fetch_add(1, Ordering::SeqCst);
            // The fourth call (in the batch of 4, after 1 + 2) fails.
            if n == 3 { Err("quota") } else { Ok(true) }
        })
        .await;
        assert_eq!(err, Some("quota"));
        assert_eq!(calls.load(Ordering::SeqCst), 7);
        assert_eq!(ok, 6);
    }

    #[test]
    fn pods_get_a_prefix_and_a_controller() {
        let rs = ReplicaSet {
            metadata: ObjectMeta {
                name: Some("x".repeat(70)),
                namespace: Some("ns".into()),
                uid: Some("u1".into()),
                ..ObjectMeta::default()
            },
            ..ReplicaSet::default()
        };
        let pod = pod_for(&rs);
        assert_eq!(
            pod.metadata.generate_name.as_ref().map(String::len),
            Some(58)
        );
        let owner = pod.metadata.owner_references.unwrap_or_default();
        assert_eq!(owner.len(), 1);
        assert_eq!(owner[0].kind, "ReplicaSet");
        assert_eq!(owner[0].uid, "u1");
        assert_eq!(owner[0].controller, Some(true));
        assert_eq!(owner[0].block_owner_deletion, Some(true));
    }
}
