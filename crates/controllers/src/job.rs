//! The Job controller (batch/v1), after Kubernetes' job controller: it runs a Job's pods to
//! `spec.completions` successes (or, without completions, until one succeeds and the rest
//! have finished), `spec.parallelism` at a time, in NonIndexed or Indexed completion mode,
//! re-creating failed pods after an exponential back-off until `spec.backoffLimit` failures,
//! and enforces `activeDeadlineSeconds`, `suspend` and `ttlSecondsAfterFinished`.
//!
//! Counting finished pods never loses one: every pod is created with the
//! `batch.kubernetes.io/job-tracking` finalizer, so it cannot disappear before it is counted.
//! A finished pod's uid is first recorded in `status.uncountedTerminatedPods`, then its
//! finalizer is removed, then it moves into `status.succeeded` / `status.failed`; a crash
//! between the steps repeats a step, never counts twice. Finished pods themselves are kept,
//! as in Kubernetes.
//!
//! The end is reached in two steps, as in Kubernetes 1.31: the interim condition
//! `SuccessCriteriaMet` or `FailureTarget` once the outcome is decided, then `Complete` or
//! `Failed` once no pod of the Job is running or terminating any more.
//!
//! Informers on Jobs and Pods feed a [`WorkQueue`] keyed by Job; pods carrying the finalizer
//! whose Job is gone go through a second queue that only removes the finalizer.
//! [`Expectations`] keep a sync from acting on a pod cache that has not yet seen its own
//! creates and deletes.
//!
//! [`indexes`] is the `completedIndexes` set; [`status`] the pure rules.

pub mod indexes;
pub mod status;

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::batch::v1::{Job, JobStatus, UncountedTerminatedPods};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::Resource;
use kube::api::{
    Api, DeleteParams, Patch, PatchParams, PostParams, Preconditions, PropagationPolicy,
};
use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher;
use serde_json::json;
use tokio_util::sync::CancellationToken;
use wasmkube_api::selector::{LabelSelector, SelectorError};

use crate::events::{Recorder, now_time};
use crate::expectations::Expectations;
use crate::informer::{self, Change, key_of, split_key};
use crate::owner::{self, controller_of};
use crate::pods;
use crate::queue::WorkQueue;
use indexes::Indexes;
use status::Target;

/// The event source component, as in Kubernetes.
pub const COMPONENT: &str = "job-controller";
/// Keeps a pod until the controller has counted it.
pub const TRACKING_FINALIZER: &str = "batch.kubernetes.io/job-tracking";
pub const CONTROLLER_UID_LABEL: &str = "batch.kubernetes.io/controller-uid";
pub const JOB_NAME_LABEL: &str = "batch.kubernetes.io/job-name";
/// The unprefixed labels Kubernetes still sets for compatibility.
const LEGACY_CONTROLLER_UID_LABEL: &str = "controller-uid";
const LEGACY_JOB_NAME_LABEL: &str = "job-name";
/// Annotation and label holding an Indexed Job pod's index (the kubelet exposes it as
/// `JOB_COMPLETION_INDEX` through the downward API).
pub const COMPLETION_INDEX: &str = "batch.kubernetes.io/job-completion-index";
/// `spec.managedBy` of Jobs this controller runs; others belong to an external controller.
const MANAGED_BY_SELF: &str = "kubernetes.io/job-controller";
/// Jobs synced at once (Kubernetes' `--concurrent-job-syncs` default).
const WORKERS: usize = 5;
/// Creates or deletes per sync (Kubernetes' `MaxPodCreateDeletePerSync`).
const MAX_PODS_PER_SYNC: usize = 500;
/// The largest slow-start batch of concurrent creates.
const MAX_BATCH: usize = 50;
/// Pod writes in flight at once.
const CONCURRENCY: usize = 50;
/// Longest `generateName` prefix (the API appends five characters).
const MAX_GENERATED_PREFIX: usize = 58;
/// How long a removed finalizer that the cache still shows is trusted to be on its way.
const REMOVAL_TTL: Duration = Duration::from_secs(5 * 60);

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("job {0} has an invalid selector")]
    Selector(String, #[source] SelectorError),
    #[error("claiming pods for job {0}")]
    Claim(String, #[source] Box<owner::Error>),
    #[error("creating pods for job {0}")]
    Create(String, #[source] kube::Error),
    #[error("deleting pods of job {0}")]
    Delete(String, #[source] kube::Error),
    #[error("removing the tracking finalizer from pod {0}")]
    Finalizer(String, #[source] kube::Error),
    #[error("updating the status of job {0}")]
    Status(String, #[source] kube::Error),
    #[error("deleting finished job {0}")]
    Expire(String, #[source] kube::Error),
}

/// Tunables; the defaults are Kubernetes'.
#[derive(Debug, Clone)]
pub struct Config {
    /// The first delay before failed pods are replaced; doubles per consecutive failure.
    pub backoff_base: Duration,
    pub backoff_max: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            backoff_base: Duration::from_secs(10),
            backoff_max: Duration::from_secs(360),
        }
    }
}

/// Consecutive pod failures of one Job since its last success (Kubernetes keeps the same in
/// memory: after a restart the back-off simply starts afresh).
#[derive(Debug, Clone, Copy)]
struct BackoffRecord {
    failures: u32,
    last_failure: Instant,
}

/// Pods whose finalizer this controller removed while the cache may still show it, by uid:
/// counting them again from a stale cache would count them twice.
#[derive(Default)]
struct RemovedFinalizers {
    inner: Mutex<HashMap<String, Instant>>,
}

impl RemovedFinalizers {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Instant>> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn expect(&self, uid: &str) {
        self.lock().insert(uid.to_string(), Instant::now());
    }

    fn observed(&self, uid: &str) {
        self.lock().remove(uid);
    }

    fn pending(&self, uid: &str) -> bool {
        let mut map = self.lock();
        match map.get(uid) {
            Some(at) if at.elapsed() < REMOVAL_TTL => true,
            Some(_) => {
                map.remove(uid);
                false
            }
            None => false,
        }
    }
}

struct Ctx {
    client: kube::Client,
    pods: Store<Pod>,
    jobs: Store<Job>,
    queue: Arc<WorkQueue>,
    orphans: Arc<WorkQueue>,
    expectations: Arc<Expectations>,
    removed: Arc<RemovedFinalizers>,
    backoff: Mutex<HashMap<String, BackoffRecord>>,
    /// The last Job object this controller wrote, per key: newer than the cache until the
    /// watch delivers it, and decisions must not go back to older counts.
    written: Mutex<HashMap<String, Arc<Job>>>,
    recorder: Recorder,
    config: Config,
}

/// Runs the controller with Kubernetes' defaults until `shutdown` is cancelled.
pub async fn run(client: kube::Client, shutdown: CancellationToken) {
    run_with(client, shutdown, Config::default()).await;
}

/// Runs the controller with `config` until `shutdown` is cancelled.
pub async fn run_with(client: kube::Client, shutdown: CancellationToken, config: Config) {
    let (pod_store, pod_writer) = reflector::store::<Pod>();
    let (job_store, job_writer) = reflector::store::<Job>();
    let queue = WorkQueue::new(shutdown.clone());
    let orphans = WorkQueue::new(shutdown.clone());
    let expectations = Arc::new(Expectations::new());
    let removed = Arc::new(RemovedFinalizers::default());

    let job_informer = tokio::spawn(informer::run(
        Api::<Job>::all(client.clone()),
        watcher::Config::default(),
        job_writer,
        shutdown.clone(),
        {
            let queue = queue.clone();
            let expectations = expectations.clone();
            move |change| match change {
                Change::Added(job) | Change::Updated { new: job, .. } => queue.add(key_of(&*job)),
                Change::Deleted(job) => {
                    expectations.delete(&key_of(&*job));
                    // Its pods may still carry the finalizer.
                    queue.add(key_of(&*job));
                }
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
                orphans: orphans.clone(),
                expectations: expectations.clone(),
                removed: removed.clone(),
                jobs: job_store.clone(),
            };
            move |change| handlers.on_change(change)
        },
    ));

    // Acting on an empty pod cache would start every Job's pods a second time.
    let ready = async {
        let _ = pod_store.wait_until_ready().await;
        let _ = job_store.wait_until_ready().await;
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
            jobs: job_store,
            queue,
            orphans,
            expectations,
            removed,
            backoff: Mutex::new(HashMap::new()),
            written: Mutex::new(HashMap::new()),
            config,
        });
        let mut workers: Vec<_> = (0..WORKERS)
            .map(|_| tokio::spawn(worker(ctx.clone())))
            .collect();
        workers.push(tokio::spawn(orphan_worker(ctx.clone())));
        for w in workers {
            let _ = w.await;
        }
    }
    let _ = job_informer.await;
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
                crate::log_error(&e, "job", &key);
                ctx.queue.add_rate_limited(&key);
            }
        }
        ctx.queue.done(&key);
    }
}

async fn orphan_worker(ctx: Arc<Ctx>) {
    while let Some(key) = ctx.orphans.get().await {
        match release_orphan(&ctx, &key).await {
            Ok(()) => ctx.orphans.forget(&key),
            Err(e) => {
                crate::log_error(&e, "job", &key);
                ctx.orphans.add_rate_limited(&key);
            }
        }
        ctx.orphans.done(&key);
    }
}

fn has_finalizer(pod: &Pod) -> bool {
    pod.metadata
        .finalizers
        .iter()
        .flatten()
        .any(|f| f == TRACKING_FINALIZER)
}

/// Maps pod changes to the Jobs that must look at them, and settles expectations.
struct PodHandlers {
    queue: Arc<WorkQueue>,
    orphans: Arc<WorkQueue>,
    expectations: Arc<Expectations>,
    removed: Arc<RemovedFinalizers>,
    jobs: Store<Job>,
}

impl PodHandlers {
    fn on_change(&self, change: Change<Pod>) {
        match change {
            Change::Added(pod) => {
                self.note_finalizer(&pod);
                if pod.metadata.deletion_timestamp.is_some() {
                    self.deleted(&pod);
                    return;
                }
                match self.controller_key(&pod) {
                    Some(Some(key)) => {
                        self.expectations.creation_observed(&key);
                        self.queue.add(key);
                    }
                    Some(None) => self.maybe_orphan(&pod),
                    None => {
                        self.maybe_orphan(&pod);
                        self.enqueue_matching(&pod);
                    }
                }
            }
            Change::Updated { old, new } => {
                self.note_finalizer(&new);
                if old.metadata.resource_version == new.metadata.resource_version {
                    return;
                }
                if new.metadata.deletion_timestamp.is_some()
                    && old.metadata.deletion_timestamp.is_none()
                {
                    // A graceful delete has begun: the pod no longer counts as active.
                    self.deleted(&new);
                    return;
                }
                let old_key = self.controller_key(&old).flatten();
                match self.controller_key(&new) {
                    Some(Some(key)) => self.queue.add(key),
                    Some(None) => self.maybe_orphan(&new),
                    None => {
                        self.maybe_orphan(&new);
                        if old.metadata.labels != new.metadata.labels || old_key.is_some() {
                            self.enqueue_matching(&new);
                        }
                    }
                }
                if let Some(key) = old_key {
                    self.queue.add(key);
                }
            }
            Change::Deleted(pod) => {
                self.removed
                    .observed(pod.metadata.uid.as_deref().unwrap_or(""));
                self.deleted(&pod);
            }
        }
    }

    fn note_finalizer(&self, pod: &Pod) {
        if !has_finalizer(pod) {
            self.removed
                .observed(pod.metadata.uid.as_deref().unwrap_or(""));
        }
    }

    fn deleted(&self, pod: &Pod) {
        if let Some(Some(key)) = self.controller_key(pod) {
            self.expectations.deletion_observed(&key, &key_of(pod));
            self.queue.add(key);
        } else {
            self.maybe_orphan(pod);
        }
    }

    fn maybe_orphan(&self, pod: &Pod) {
        if has_finalizer(pod) {
            self.orphans.add(key_of(pod));
        }
    }

    /// `None`: no Job controls the pod. `Some(None)`: a Job that is not (or no longer) in
    /// the cache does. `Some(Some(key))`: the cached Job `key` does.
    fn controller_key(&self, pod: &Pod) -> Option<Option<String>> {
        let r = controller_of(&pod.metadata).filter(|r| r.kind == "Job")?;
        let ns = pod.metadata.namespace.as_deref().unwrap_or("");
        let job = informer::get(&self.jobs, ns, &r.name);
        Some(
            job.filter(|j| j.metadata.uid.as_deref() == Some(r.uid.as_str()))
                .map(|j| key_of(&*j)),
        )
    }

    /// Queues every Job that could adopt this orphan.
    fn enqueue_matching(&self, pod: &Pod) {
        let ns = pod.metadata.namespace.as_deref();
        for job in self.jobs.state() {
            if job.metadata.namespace.as_deref() != ns {
                continue;
            }
            let Ok(selector) = selector_of(&job) else {
                continue;
            };
            if !selector.is_everything() && selector.matches_opt(pod.metadata.labels.as_ref()) {
                self.queue.add(key_of(&*job));
            }
        }
    }
}

/// The Job's pod selector. Kubernetes' API server generates `spec.selector` from the Job's
/// uid on create; where it was not generated, the same selector is implied.
fn selector_of(job: &Job) -> Result<LabelSelector, SelectorError> {
    match job.spec.as_ref().and_then(|s| s.selector.as_ref()) {
        Some(sel) => LabelSelector::try_from(sel),
        None => {
            let uid = job.metadata.uid.as_deref().unwrap_or("");
            LabelSelector::parse(&format!("{CONTROLLER_UID_LABEL}={uid}"))
        }
    }
}

/// The completion index of an Indexed Job's pod, if valid for `completions`.
fn index_of(pod: &Pod, completions: i32) -> Option<i32> {
    let raw = pod
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(COMPLETION_INDEX))
        .or_else(|| {
            pod.metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(COMPLETION_INDEX))
        })?;
    raw.parse::<i32>()
        .ok()
        .filter(|i| *i >= 0 && *i < completions)
}

fn resource_version(job: &Job) -> Option<u64> {
    job.metadata.resource_version.as_deref()?.parse().ok()
}

fn is_not_found(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 404)
}

fn namespace_terminating(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 403 && s.message.contains("being terminated"))
}

impl Ctx {
    fn backoff(&self) -> MutexGuard<'_, HashMap<String, BackoffRecord>> {
        self.backoff.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn written(&self) -> MutexGuard<'_, HashMap<String, Arc<Job>>> {
        self.written.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The newer of the cached Job and the one this controller last wrote.
    fn freshest(&self, key: &str, cached: Arc<Job>) -> Arc<Job> {
        let mut written = self.written();
        if let Some(mine) = written.get(key)
            && mine.metadata.uid == cached.metadata.uid
            && resource_version(mine) > resource_version(&cached)
        {
            return mine.clone();
        }
        written.remove(key);
        cached
    }

    fn forget_job(&self, key: &str) {
        self.expectations.delete(key);
        self.backoff().remove(key);
        self.written().remove(key);
    }
}

/// Removes the tracking finalizer from a pod whose Job is gone (or is not its controller).
async fn release_orphan(ctx: &Ctx, key: &str) -> Result<(), Error> {
    let (ns, name) = split_key(key);
    let Some(pod) = informer::get(&ctx.pods, ns, name) else {
        return Ok(());
    };
    if !has_finalizer(&pod) {
        return Ok(());
    }
    if let Some(r) = controller_of(&pod.metadata).filter(|r| r.kind == "Job") {
        // The cache may simply not have the Job yet: only the API can say it is gone.
        let jobs: Api<Job> = Api::namespaced(ctx.client.clone(), ns);
        let live = jobs
            .get_opt(&r.name)
            .await
            .map_err(|e| Error::Finalizer(key.to_string(), e))?;
        if live.is_some_and(|j| j.metadata.uid.as_deref() == Some(r.uid.as_str())) {
            return Ok(());
        }
    }
    remove_finalizer(ctx, &pod).await
}

/// Removes the tracking finalizer from one pod (gone already counts as done).
async fn remove_finalizer(ctx: &Ctx, pod: &Pod) -> Result<(), Error> {
    let ns = pod.metadata.namespace.as_deref().unwrap_or("");
    let name = pod.metadata.name.as_deref().unwrap_or("");
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), ns);
    let patch = json!({"metadata": {"$deleteFromPrimitiveList/finalizers": [TRACKING_FINALIZER]}});
    match api
        .patch(name, &PatchParams::default(), &Patch::Strategic(&patch))
        .await
    {
        Ok(_) => {}
        Err(e) if is_not_found(&e) => {}
        Err(e) => return Err(Error::Finalizer(format!("{ns}/{name}"), e)),
    }
    if let Some(uid) = pod.metadata.uid.as_deref() {
        ctx.removed.expect(uid);
    }
    Ok(())
}

/// Removes the tracking finalizer from `pods`, concurrently; the uids done and the first
/// error.
async fn remove_finalizers(ctx: &Ctx, pods: &[Arc<Pod>]) -> (BTreeSet<String>, Option<Error>) {
    let results: Vec<(String, Result<(), Error>)> = futures::stream::iter(pods.iter().cloned())
        .map(|pod| async move {
            let uid = pod.metadata.uid.clone().unwrap_or_default();
            (uid, remove_finalizer(ctx, &pod).await)
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    let mut done = BTreeSet::new();
    let mut error = None;
    for (uid, r) in results {
        match r {
            Ok(()) => {
                done.insert(uid);
            }
            Err(e) => {
                error.get_or_insert(e);
            }
        }
    }
    (done, error)
}

/// What one sync found out about a Job's pods.
struct Observed {
    /// Running or pending, not being deleted.
    active: Vec<Arc<Pod>>,
    /// Being deleted but not finished yet.
    terminating: i32,
    /// Finished (or deleted) pods still carrying the finalizer.
    to_finalize: Vec<Arc<Pod>>,
    uncounted_succeeded: BTreeSet<String>,
    uncounted_failed: BTreeSet<String>,
    new_successes: u32,
    new_failures: u32,
    completed: Indexes,
}

/// Sorts out owned pods and records newly finished ones as uncounted.
fn observe(
    ctx: &Ctx,
    owned: &[Arc<Pod>],
    status: &JobStatus,
    completions: Option<i32>,
    indexed: bool,
) -> Observed {
    let uncounted = status.uncounted_terminated_pods.clone().unwrap_or_default();
    let mut obs = Observed {
        active: Vec::new(),
        terminating: 0,
        to_finalize: Vec::new(),
        uncounted_succeeded: uncounted
            .succeeded
            .unwrap_or_default()
            .into_iter()
            .collect(),
        uncounted_failed: uncounted.failed.unwrap_or_default().into_iter().collect(),
        new_successes: 0,
        new_failures: 0,
        completed: if indexed {
            Indexes::parse(
                status.completed_indexes.as_deref().unwrap_or(""),
                completions.unwrap_or(0),
            )
        } else {
            Indexes::default()
        },
    };
    for pod in owned {
        let terminal = pods::is_terminal(pod);
        let deleting = pod.metadata.deletion_timestamp.is_some();
        if !terminal && !deleting {
            obs.active.push(pod.clone());
            continue;
        }
        if deleting && !terminal {
            obs.terminating += 1;
        }
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        if !has_finalizer(pod) || ctx.removed.pending(&uid) {
            // Counted already.
            continue;
        }
        if pods::phase(pod) == "Succeeded" {
            if !obs.uncounted_failed.contains(&uid) && obs.uncounted_succeeded.insert(uid) {
                obs.new_successes += 1;
            }
            if indexed && let Some(i) = index_of(pod, completions.unwrap_or(0)) {
                obs.completed.insert(i);
            }
        } else {
            // Failed, or deleted before it could finish: Kubernetes counts that as a failure
            // (podReplacementPolicy TerminatingOrFailed).
            if !obs.uncounted_succeeded.contains(&uid) && obs.uncounted_failed.insert(uid) {
                obs.new_failures += 1;
            }
        }
        obs.to_finalize.push(pod.clone());
    }
    obs
}

/// Syncs one Job; `Ok(Some(d))` asks for another sync after `d`.
async fn sync(ctx: &Ctx, key: &str) -> Result<Option<Duration>, Error> {
    let (ns, name) = split_key(key);
    let Some(cached) = informer::get(&ctx.jobs, ns, name) else {
        ctx.forget_job(key);
        release_pods_of_missing_job(ctx, ns, name, None);
        return Ok(None);
    };
    let job = ctx.freshest(key, cached);
    let spec = job.spec.clone().unwrap_or_default();
    if spec
        .managed_by
        .as_deref()
        .is_some_and(|m| m != MANAGED_BY_SELF)
    {
        return Ok(None);
    }
    let uid = job.metadata.uid.clone().unwrap_or_default();
    // Pods of an earlier Job of the same name.
    release_pods_of_missing_job(ctx, ns, name, Some(&uid));
    if status::is_finished(&job) || job.metadata.deletion_timestamp.is_some() {
        let leftovers = ctx.pods.state_filter(|p| {
            p.metadata.namespace.as_deref() == Some(ns)
                && owner::controlled_by(&p.metadata, &uid)
                && has_finalizer(p)
        });
        if let (_, Some(e)) = remove_finalizers(ctx, &leftovers).await {
            return Err(e);
        }
        if status::is_finished(&job) {
            return expire(ctx, &job, key).await;
        }
        return Ok(None);
    }

    let selector = selector_of(&job).map_err(|e| Error::Selector(key.to_string(), e))?;
    // Read before looking at the cache, as the ReplicaSet controller does.
    let needs_sync = ctx.expectations.satisfied(key);
    let pods_api: Api<Pod> = Api::namespaced(ctx.client.clone(), ns);
    let jobs_api: Api<Job> = Api::namespaced(ctx.client.clone(), ns);
    let candidates = ctx
        .pods
        .state_filter(|p| p.metadata.namespace.as_deref() == Some(ns));
    let owned = owner::claim(&pods_api, &*job, &selector, candidates, async || {
        owner::recheck_owner(&jobs_api, &*job).await
    })
    .await
    .map_err(|e| Error::Claim(key.to_string(), Box::new(e)))?;

    let now = now_time();
    let indexed = spec.completion_mode.as_deref() == Some("Indexed");
    let completions = spec.completions;
    let parallelism = spec.parallelism.unwrap_or(1).max(0);
    let backoff_limit = spec.backoff_limit.unwrap_or(6);
    let suspended = spec.suspend == Some(true);
    let old_status = job.status.clone().unwrap_or_default();
    let mut st = old_status.clone();
    let mut conditions = st.conditions.take().unwrap_or_default();
    let mut obs = observe(ctx, &owned, &st, completions, indexed);

    {
        let mut backoff = ctx.backoff();
        if obs.new_successes > 0 {
            backoff.remove(key);
        }
        if obs.new_failures > 0 {
            let rec = backoff.entry(key.to_string()).or_insert(BackoffRecord {
                failures: 0,
                last_failure: Instant::now(),
            });
            rec.failures = rec.failures.saturating_add(obs.new_failures);
            rec.last_failure = Instant::now();
        }
    }

    let job_ref = job.object_ref(&());
    if suspended {
        if status::set_condition(
            &mut conditions,
            status::SUSPENDED,
            "True",
            "JobSuspended",
            "Job suspended",
            &now,
        ) {
            ctx.recorder
                .normal(job_ref.clone(), "Suspended", "Job suspended".to_string());
        }
    } else if status::set_condition(
        &mut conditions,
        status::SUSPENDED,
        "False",
        "JobResumed",
        "Job resumed",
        &now,
    ) {
        ctx.recorder
            .normal(job_ref.clone(), "Resumed", "Job resumed".to_string());
        // activeDeadlineSeconds counts the time a Job is continuously active.
        st.start_time = Some(now.clone());
    }
    if st.start_time.is_none() && !suspended {
        st.start_time = Some(now.clone());
    }

    let count = |i: Option<i32>| i.unwrap_or(0);
    let succeeded_so_far = |obs: &Observed| -> i32 {
        if indexed {
            i32::try_from(obs.completed.len()).unwrap_or(i32::MAX)
        } else {
            count(old_status.succeeded)
                .saturating_add(i32::try_from(obs.uncounted_succeeded.len()).unwrap_or(i32::MAX))
        }
    };
    let failed_so_far = count(old_status.failed)
        .saturating_add(i32::try_from(obs.uncounted_failed.len()).unwrap_or(i32::MAX));

    let mut requeue: Option<Duration> = None;
    let mut target = status::recorded_target(&conditions);
    if target.is_none() {
        let restart_policy = spec
            .template
            .spec
            .as_ref()
            .and_then(|s| s.restart_policy.as_deref());
        if failed_so_far > backoff_limit
            || status::past_backoff_limit_on_failure(restart_policy, backoff_limit, &obs.active)
        {
            target = Some(Target::failure(
                status::REASON_BACKOFF_LIMIT,
                status::MESSAGE_BACKOFF_LIMIT,
            ));
        } else if !suspended
            && let (Some(ads), Some(start)) = (spec.active_deadline_seconds, &st.start_time)
        {
            let deadline = start
                .0
                .checked_add(SignedDuration::from_secs(ads.max(0)))
                .unwrap_or(Timestamp::MAX);
            let now_ts = Timestamp::now();
            if now_ts >= deadline {
                target = Some(Target::failure(
                    status::REASON_DEADLINE,
                    status::MESSAGE_DEADLINE,
                ));
            } else {
                requeue =
                    Some(Duration::try_from(deadline.duration_since(now_ts)).unwrap_or_default());
            }
        }
    }

    // Pods deleted in this sync are terminating from now on.
    let mut deleted_now = 0usize;
    let mut manage_error = None;
    if target.is_some() || suspended {
        let victims = obs.active.clone();
        let (n, e) = delete_pods(ctx, &job, key, &victims).await;
        deleted_now += n;
        manage_error = e;
        obs.active
            .retain(|p| victims.iter().all(|v| v.metadata.uid != p.metadata.uid));
    } else if needs_sync {
        let succeeded = succeeded_so_far(&obs);
        match manage(
            ctx,
            &job,
            key,
            &mut obs,
            completions,
            parallelism,
            indexed,
            succeeded,
        )
        .await
        {
            Ok((n, after)) => {
                deleted_now += n;
                requeue = min_duration(requeue, after);
            }
            Err(e) => manage_error = Some(e),
        }
    }
    if target.is_none()
        && !suspended
        && status::succeeded_enough(
            completions,
            succeeded_so_far(&obs),
            i32::try_from(obs.active.len()).unwrap_or(i32::MAX),
        )
    {
        target = Some(Target::Success);
    }

    // Record newly finished pods before touching their finalizers, so a crash in between
    // leaves them listed as uncounted rather than lost.
    let uncounted_before = old_status
        .uncounted_terminated_pods
        .clone()
        .unwrap_or_default();
    let listed =
        |v: &Option<Vec<String>>| -> BTreeSet<String> { v.iter().flatten().cloned().collect() };
    let mut job = job;
    let mut counted_succeeded = count(old_status.succeeded);
    let mut counted_failed = count(old_status.failed);
    if obs.uncounted_succeeded != listed(&uncounted_before.succeeded)
        || obs.uncounted_failed != listed(&uncounted_before.failed)
    {
        let interim = build_status(
            &st,
            &conditions,
            &obs,
            (counted_succeeded, counted_failed),
            indexed,
            deleted_now,
        );
        job = write_status(ctx, key, &job, interim).await?;
    }
    let (done, finalizer_error) = remove_finalizers(ctx, &obs.to_finalize).await;
    // Uncounted pods whose finalizer is gone (now or in an earlier, interrupted sync) or that
    // are gone altogether are counted now.
    let still_held = |uid: &String| {
        !done.contains(uid)
            && owned
                .iter()
                .any(|p| p.metadata.uid.as_ref() == Some(uid) && has_finalizer(p))
            && !ctx.removed.pending(uid)
    };
    let (held_s, moved_s): (BTreeSet<String>, BTreeSet<String>) =
        std::mem::take(&mut obs.uncounted_succeeded)
            .into_iter()
            .partition(|u| still_held(u));
    let (held_f, moved_f): (BTreeSet<String>, BTreeSet<String>) =
        std::mem::take(&mut obs.uncounted_failed)
            .into_iter()
            .partition(|u| still_held(u));
    obs.uncounted_succeeded = held_s;
    obs.uncounted_failed = held_f;
    if !indexed {
        counted_succeeded =
            counted_succeeded.saturating_add(i32::try_from(moved_s.len()).unwrap_or(i32::MAX));
    }
    counted_failed =
        counted_failed.saturating_add(i32::try_from(moved_f.len()).unwrap_or(i32::MAX));

    // The final condition waits until nothing of the Job runs any more.
    let settled = obs.active.is_empty()
        && obs.terminating == 0
        && deleted_now == 0
        && obs.uncounted_succeeded.is_empty()
        && obs.uncounted_failed.is_empty();
    match &target {
        Some(Target::Failure { reason, message }) => {
            status::set_condition(
                &mut conditions,
                status::FAILURE_TARGET,
                "True",
                reason,
                message,
                &now,
            );
            if settled
                && status::set_condition(
                    &mut conditions,
                    status::FAILED,
                    "True",
                    reason,
                    message,
                    &now,
                )
            {
                ctx.recorder
                    .warning(job_ref.clone(), reason_str(reason), message.clone());
            }
        }
        Some(Target::Success) => {
            status::set_condition(
                &mut conditions,
                status::SUCCESS_CRITERIA_MET,
                "True",
                status::REASON_COMPLETIONS_REACHED,
                status::MESSAGE_COMPLETIONS_REACHED,
                &now,
            );
            if settled
                && status::set_condition(
                    &mut conditions,
                    status::COMPLETE,
                    "True",
                    status::REASON_COMPLETIONS_REACHED,
                    status::MESSAGE_COMPLETIONS_REACHED,
                    &now,
                )
            {
                st.completion_time = Some(now.clone());
                ctx.recorder
                    .normal(job_ref.clone(), "Completed", "Job completed".to_string());
            }
        }
        None => {}
    }
    let final_status = build_status(
        &st,
        &conditions,
        &obs,
        (counted_succeeded, counted_failed),
        indexed,
        deleted_now,
    );
    if job.status.as_ref() != Some(&final_status) {
        job = write_status(ctx, key, &job, final_status).await?;
    }
    if let Some(e) = finalizer_error.or(manage_error) {
        return Err(e);
    }
    if status::is_finished(&job) {
        return expire(ctx, &job, key).await;
    }
    Ok(requeue)
}

/// Event reasons are static strings; the failure reasons this controller sets are known.
fn reason_str(reason: &str) -> &'static str {
    match reason {
        status::REASON_BACKOFF_LIMIT => status::REASON_BACKOFF_LIMIT,
        status::REASON_DEADLINE => status::REASON_DEADLINE,
        _ => "JobFailed",
    }
}

fn min_duration(a: Option<Duration>, b: Option<Duration>) -> Option<Duration> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, None) => x,
        (None, y) => y,
    }
}

fn build_status(
    base: &JobStatus,
    conditions: &[k8s_openapi::api::batch::v1::JobCondition],
    obs: &Observed,
    (succeeded, failed): (i32, i32),
    indexed: bool,
    deleted_now: usize,
) -> JobStatus {
    let to_i32 = |n: usize| i32::try_from(n).unwrap_or(i32::MAX);
    let nonzero = |n: i32| (n != 0).then_some(n);
    let list = |s: &BTreeSet<String>| (!s.is_empty()).then(|| s.iter().cloned().collect());
    let succeeded = if indexed {
        to_i32(obs.completed.len())
    } else {
        succeeded
    };
    JobStatus {
        active: nonzero(to_i32(obs.active.len())),
        ready: Some(to_i32(
            obs.active.iter().filter(|p| pods::is_ready(p)).count(),
        )),
        terminating: Some(obs.terminating.saturating_add(to_i32(deleted_now))),
        succeeded: nonzero(succeeded),
        failed: nonzero(failed),
        start_time: base.start_time.clone(),
        completion_time: base.completion_time.clone(),
        conditions: (!conditions.is_empty()).then(|| conditions.to_vec()),
        completed_indexes: if indexed && !obs.completed.is_empty() {
            Some(obs.completed.to_string())
        } else {
            None
        },
        failed_indexes: base.failed_indexes.clone(),
        uncounted_terminated_pods: Some(UncountedTerminatedPods {
            succeeded: list(&obs.uncounted_succeeded),
            failed: list(&obs.uncounted_failed),
        }),
    }
}

/// Writes the status, conditional on the resourceVersion the sync read: a sync that worked
/// from an older Job must not overwrite newer counts.
async fn write_status(
    ctx: &Ctx,
    key: &str,
    job: &Job,
    status: JobStatus,
) -> Result<Arc<Job>, Error> {
    let (ns, name) = split_key(key);
    let api: Api<Job> = Api::namespaced(ctx.client.clone(), ns);
    let mut next = job.clone();
    next.status = Some(status);
    next.metadata.managed_fields = None;
    let written = api
        .replace_status(name, &PostParams::default(), &next)
        .await
        .map_err(|e| Error::Status(key.to_string(), e))?;
    let written = Arc::new(written);
    ctx.written().insert(key.to_string(), written.clone());
    Ok(written)
}

/// Deletes a finished Job once `ttlSecondsAfterFinished` has passed (Kubernetes'
/// TTL-after-finished controller), or says when to look again.
async fn expire(ctx: &Ctx, job: &Job, key: &str) -> Result<Option<Duration>, Error> {
    let Some(ttl) = job.spec.as_ref().and_then(|s| s.ttl_seconds_after_finished) else {
        return Ok(None);
    };
    let Some(finished) = status::finished_at(job) else {
        return Ok(None);
    };
    let expires = finished
        .0
        .checked_add(SignedDuration::from_secs(i64::from(ttl.max(0))))
        .unwrap_or(Timestamp::MAX);
    let now = Timestamp::now();
    if now < expires {
        return Ok(Some(
            Duration::try_from(expires.duration_since(now)).unwrap_or_default(),
        ));
    }
    let (ns, name) = split_key(key);
    let api: Api<Job> = Api::namespaced(ctx.client.clone(), ns);
    let dp = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Background),
        preconditions: job.metadata.uid.clone().map(|uid| Preconditions {
            uid: Some(uid),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    match api.delete(name, &dp).await {
        Ok(_) => Ok(None),
        Err(e) if is_not_found(&e) => Ok(None),
        Err(e) => Err(Error::Expire(key.to_string(), e)),
    }
}

/// Hands to the orphan worker the pods with the finalizer controlled by a Job named `name`
/// whose uid is not `current` (the Job is gone, or was re-created under the same name).
fn release_pods_of_missing_job(ctx: &Ctx, ns: &str, name: &str, current: Option<&str>) {
    let stale = ctx.pods.state_filter(|p| {
        p.metadata.namespace.as_deref() == Some(ns)
            && has_finalizer(p)
            && controller_of(&p.metadata).is_some_and(|r| {
                r.kind == "Job" && r.name == name && Some(r.uid.as_str()) != current
            })
    });
    for pod in stale {
        // The orphan worker checks the API before letting go.
        ctx.orphans.add(key_of(&*pod));
    }
}

/// Creates and deletes pods towards the wanted number; returns how many pods it deleted
/// and when to look again (the back-off after failures).
#[allow(clippy::too_many_arguments)]
async fn manage(
    ctx: &Ctx,
    job: &Job,
    key: &str,
    obs: &mut Observed,
    completions: Option<i32>,
    parallelism: i32,
    indexed: bool,
    succeeded: i32,
) -> Result<(usize, Option<Duration>), Error> {
    let active = i32::try_from(obs.active.len()).unwrap_or(i32::MAX);
    let want = status::want_active(completions, parallelism, succeeded, active);
    // Pods to delete: beyond the wanted number, or (Indexed) with a bad, duplicate or
    // already completed index.
    let mut victims: Vec<Arc<Pod>> = Vec::new();
    let mut to_create: VecDeque<Option<i32>> = VecDeque::new();
    if indexed {
        let completions = completions.unwrap_or(0);
        let mut seen = BTreeSet::new();
        let mut keep = Vec::new();
        for pod in sorted_for_keeping(&obs.active) {
            match index_of(&pod, completions) {
                Some(i) if !obs.completed.contains(i) && seen.insert(i) => keep.push(pod),
                _ => victims.push(pod),
            }
        }
        let excess = keep
            .len()
            .saturating_sub(usize::try_from(want).unwrap_or(0));
        victims.extend(keep.into_iter().rev().take(excess));
        let room = usize::try_from(want)
            .unwrap_or(0)
            .saturating_sub(seen.len().min(usize::try_from(want).unwrap_or(0)));
        to_create.extend(
            obs.completed
                .missing(completions)
                .filter(|i| !seen.contains(i))
                .take(room)
                .map(Some),
        );
    } else if active > want {
        let excess = usize::try_from(active - want).unwrap_or(0);
        victims.extend(
            sorted_for_keeping(&obs.active)
                .into_iter()
                .rev()
                .take(excess),
        );
    } else {
        to_create.extend(std::iter::repeat_n(
            None,
            usize::try_from(want - active).unwrap_or(0),
        ));
    }

    if !victims.is_empty() {
        victims.truncate(MAX_PODS_PER_SYNC);
        let (n, e) = delete_pods(ctx, job, key, &victims).await;
        obs.active
            .retain(|p| victims.iter().all(|v| v.metadata.uid != p.metadata.uid));
        // One kind of change per sync: the expectations hold either creates or deletes.
        return e.map_or(Ok((n, None)), Err);
    }
    if to_create.is_empty() {
        return Ok((0, None));
    }
    // Replacements for failed pods wait out the back-off.
    if let Some(rec) = ctx.backoff().get(key).copied() {
        let delay = status::backoff_delay(
            ctx.config.backoff_base,
            ctx.config.backoff_max,
            rec.failures,
        );
        let elapsed = rec.last_failure.elapsed();
        if elapsed < delay {
            return Ok((0, Some(delay - elapsed)));
        }
    }
    to_create.truncate(MAX_PODS_PER_SYNC);
    let n = to_create.len();
    ctx.expectations.expect_creations(key, n);
    let pending = Mutex::new(to_create);
    let api: Api<Pod> = Api::namespaced(
        ctx.client.clone(),
        job.metadata.namespace.as_deref().unwrap_or(""),
    );
    let (created, error) = crate::replicaset::slow_start_batch(n, MAX_BATCH, || {
        let index = pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop_front()
            .flatten();
        let pod = pod_for(job, index);
        let api = api.clone();
        async move { create_pod(ctx, &api, &pod, job).await }
    })
    .await;
    if created < n {
        ctx.expectations.lower_creations(key, n - created);
    }
    error.map_or(Ok((0, None)), |e| Err(Error::Create(key.to_string(), e)))
}

/// Active pods, the ones most worth keeping first: scheduled before unscheduled, ready
/// before not ready, older before newer (Kubernetes deletes from the other end).
fn sorted_for_keeping(active: &[Arc<Pod>]) -> Vec<Arc<Pod>> {
    let mut pods = active.to_vec();
    pods.sort_by(|a, b| {
        pods::is_scheduled(b)
            .cmp(&pods::is_scheduled(a))
            .then(pods::is_ready(b).cmp(&pods::is_ready(a)))
            .then(
                a.metadata
                    .creation_timestamp
                    .as_ref()
                    .map(|t| t.0)
                    .cmp(&b.metadata.creation_timestamp.as_ref().map(|t| t.0)),
            )
            .then(a.metadata.name.cmp(&b.metadata.name))
    });
    pods
}

/// Deletes `victims`; returns how many deletes the API accepted and the first error.
async fn delete_pods(
    ctx: &Ctx,
    job: &Job,
    key: &str,
    victims: &[Arc<Pod>],
) -> (usize, Option<Error>) {
    if victims.is_empty() {
        return (0, None);
    }
    let ns = job.metadata.namespace.as_deref().unwrap_or("");
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), ns);
    ctx.expectations
        .expect_deletions(key, victims.iter().map(|p| key_of(&**p)));
    let results: Vec<Result<bool, kube::Error>> = futures::stream::iter(victims.iter().cloned())
        .map(|pod| {
            let api = api.clone();
            async move {
                let name = pod.metadata.name.clone().unwrap_or_default();
                match api.delete(&name, &DeleteParams::default()).await {
                    Ok(_) => {
                        ctx.recorder.normal(
                            job.object_ref(&()),
                            "SuccessfulDelete",
                            format!("Deleted pod: {name}"),
                        );
                        Ok(true)
                    }
                    Err(e) => {
                        // The cache will never see this deletion.
                        ctx.expectations.deletion_observed(key, &key_of(&*pod));
                        if is_not_found(&e) {
                            return Ok(false);
                        }
                        ctx.recorder.warning(
                            job.object_ref(&()),
                            "FailedDelete",
                            format!("Error deleting: {e}"),
                        );
                        Err(e)
                    }
                }
            }
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    let mut deleted = 0;
    let mut error = None;
    for r in results {
        match r {
            Ok(true) => deleted += 1,
            Ok(false) => {}
            Err(e) => {
                error.get_or_insert(Error::Delete(key.to_string(), e));
            }
        }
    }
    (deleted, error)
}

async fn create_pod(ctx: &Ctx, api: &Api<Pod>, pod: &Pod, job: &Job) -> Result<bool, kube::Error> {
    match api.create(&PostParams::default(), pod).await {
        Ok(created) => {
            ctx.recorder.normal(
                job.object_ref(&()),
                "SuccessfulCreate",
                format!("Created pod: {}", created.metadata.name.unwrap_or_default()),
            );
            Ok(true)
        }
        Err(e) if namespace_terminating(&e) => Ok(false),
        Err(e) => {
            ctx.recorder.warning(
                job.object_ref(&()),
                "FailedCreate",
                format!("Error creating: {e}"),
            );
            Err(e)
        }
    }
}

fn truncated_prefix(mut prefix: String) -> String {
    if prefix.len() > MAX_GENERATED_PREFIX {
        let mut cut = MAX_GENERATED_PREFIX;
        while !prefix.is_char_boundary(cut) {
            cut -= 1;
        }
        prefix.truncate(cut);
    }
    prefix
}

/// The pod a Job creates (for `index` in Indexed mode): its template with the Job's
/// labels, the tracking finalizer and the Job as controller.
fn pod_for(job: &Job, index: Option<i32>) -> Pod {
    let job_name = job.metadata.name.clone().unwrap_or_default();
    let uid = job.metadata.uid.clone().unwrap_or_default();
    let template = job
        .spec
        .as_ref()
        .map(|s| s.template.clone())
        .unwrap_or_default();
    let meta = template.metadata.unwrap_or_default();
    let mut labels = meta.labels.unwrap_or_default();
    for (k, v) in [
        (CONTROLLER_UID_LABEL, &uid),
        (JOB_NAME_LABEL, &job_name),
        (LEGACY_CONTROLLER_UID_LABEL, &uid),
        (LEGACY_JOB_NAME_LABEL, &job_name),
    ] {
        labels.insert(k.to_string(), v.clone());
    }
    let mut annotations = meta.annotations.unwrap_or_default();
    let mut finalizers = meta.finalizers.unwrap_or_default();
    if !finalizers.iter().any(|f| f == TRACKING_FINALIZER) {
        finalizers.push(TRACKING_FINALIZER.to_string());
    }
    let mut spec = template.spec;
    let prefix = match index {
        Some(i) => {
            labels.insert(COMPLETION_INDEX.to_string(), i.to_string());
            annotations.insert(COMPLETION_INDEX.to_string(), i.to_string());
            if let Some(spec) = spec.as_mut()
                && spec.hostname.as_deref().is_none_or(str::is_empty)
            {
                spec.hostname = Some(format!("{job_name}-{i}"));
            }
            format!("{job_name}-{i}-")
        }
        None => format!("{job_name}-"),
    };
    let owner: OwnerReference = owner::controller_ref(job);
    Pod {
        metadata: ObjectMeta {
            generate_name: Some(truncated_prefix(prefix)),
            namespace: job.metadata.namespace.clone(),
            labels: Some(labels),
            annotations: (!annotations.is_empty()).then_some(annotations),
            finalizers: Some(finalizers),
            owner_references: Some(vec![owner]),
            ..ObjectMeta::default()
        },
        spec,
        status: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::batch::v1::JobSpec;
    use k8s_openapi::api::core::v1::{PodSpec, PodTemplateSpec};

    fn job(mode: &str) -> Job {
        Job {
            metadata: ObjectMeta {
                name: Some("pi".into()),
                namespace: Some("ns".into()),
                uid: Some("u1".into()),
                ..ObjectMeta::default()
            },
            spec: Some(JobSpec {
                completion_mode: Some(mode.into()),
                template: PodTemplateSpec {
                    metadata: Some(ObjectMeta {
                        labels: Some([("app".to_string(), "pi".to_string())].into()),
                        ..ObjectMeta::default()
                    }),
                    spec: Some(PodSpec::default()),
                },
                ..JobSpec::default()
            }),
            status: None,
        }
    }

    #[test]
    fn pods_are_labelled_tracked_and_owned() {
        let pod = pod_for(&job("NonIndexed"), None);
        let labels = pod.metadata.labels.clone().unwrap_or_default();
        assert_eq!(labels.get("app").map(String::as_str), Some("pi"));
        assert_eq!(
            labels.get(CONTROLLER_UID_LABEL).map(String::as_str),
            Some("u1")
        );
        assert_eq!(labels.get(JOB_NAME_LABEL).map(String::as_str), Some("pi"));
        assert_eq!(labels.get("controller-uid").map(String::as_str), Some("u1"));
        assert_eq!(labels.get("job-name").map(String::as_str), Some("pi"));
        assert!(has_finalizer(&pod));
        assert_eq!(pod.metadata.generate_name.as_deref(), Some("pi-"));
        let owners = pod.metadata.owner_references.clone().unwrap_or_default();
        assert_eq!(owners[0].kind, "Job");
        assert_eq!(owners[0].controller, Some(true));
        assert!(selector_of(&job("NonIndexed")).is_ok_and(|s| s.matches_opt(Some(&labels))));
        assert_eq!(index_of(&pod, 3), None);
    }

    #[test]
    fn indexed_pods_carry_their_index() {
        let pod = pod_for(&job("Indexed"), Some(2));
        assert_eq!(pod.metadata.generate_name.as_deref(), Some("pi-2-"));
        assert_eq!(
            pod.metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(COMPLETION_INDEX))
                .map(String::as_str),
            Some("2")
        );
        assert_eq!(
            pod.spec.as_ref().and_then(|s| s.hostname.as_deref()),
            Some("pi-2")
        );
        assert_eq!(index_of(&pod, 3), Some(2));
        assert_eq!(index_of(&pod, 2), None);
    }
}
