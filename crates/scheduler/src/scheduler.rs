//! The scheduler's event loop: watches in, bindings and status updates out.
//!
//! One task owns the [`Cache`] and the [`SchedulingQueue`], so neither needs a lock. It
//! waits for whichever comes first: a watch event, the end of an API call it started, or the
//! moment a backed-off pod becomes ready; and whenever it has nothing else to do, it runs
//! one scheduling cycle. Cycles are pure and quick; the API calls that follow them (the
//! binding, or the status update and event of an unschedulable pod) run as separate tasks
//! while the pod stays "in flight" in the queue, so the loop never waits on the network and
//! a pod is never handled twice at once.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::{
    Binding, Namespace, Node, ObjectReference, PersistentVolume, PersistentVolumeClaim, Pod,
};
use k8s_openapi::api::node::v1::RuntimeClass;
use k8s_openapi::api::storage::v1::StorageClass;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde_json::json;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::SchedulerConfig;
use crate::cache::{Cache, Change, Objects, PodKey, bound_node, is_terminal, pod_key};
use crate::events::{EventRecorder, EventType};
use crate::framework;
use crate::queue::{Place, SchedulingQueue};
use crate::volumes;

/// How long PreBind waits for the claims it chose a node for to be bound (kube-scheduler's
/// VolumeBinding `bindTimeoutSeconds` is 600; node-local provisioning takes milliseconds).
const VOLUME_BIND_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

/// Errors of the API calls that follow a scheduling decision.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("updating persistentvolumeclaim {claim}")]
    Claim {
        claim: String,
        #[source]
        source: kube::Error,
    },
    #[error("watching persistentvolumeclaim {claim}")]
    ClaimWatch {
        claim: String,
        #[source]
        source: kube::runtime::wait::Error,
    },
    #[error("timed out waiting for persistentvolumeclaim {0} to be bound")]
    BindTimeout(String),
    #[error("binding pod {pod} to node {node}")]
    Bind {
        pod: PodKey,
        node: String,
        #[source]
        source: kube::Error,
    },
    #[error("updating the PodScheduled condition of pod {pod}")]
    Status {
        pod: PodKey,
        #[source]
        source: kube::Error,
    },
    #[error("recording an event for pod {pod}")]
    Event {
        pod: PodKey,
        #[source]
        source: crate::events::Error,
    },
}

/// One watch event, of any kind the scheduler watches (boxed: the objects are large and
/// of very different sizes).
enum Watched {
    Node(Box<watcher::Event<Node>>),
    Pod(Box<watcher::Event<Pod>>),
    RuntimeClass(Box<watcher::Event<RuntimeClass>>),
    Namespace(Box<watcher::Event<Namespace>>),
    Claim(Box<watcher::Event<PersistentVolumeClaim>>),
    Volume(Box<watcher::Event<PersistentVolume>>),
    StorageClass(Box<watcher::Event<StorageClass>>),
}

/// How the API calls after a scheduling cycle ended.
#[derive(Debug)]
enum Outcome {
    /// Bound: the pod leaves the queue.
    Bound,
    /// Fits nowhere; status and event written. `awaiting` when only a named object is
    /// missing from the cache (see [`SchedulingQueue::awaiting_object`]).
    Unschedulable { awaiting: bool },
    /// The pod is gone or was bound by someone else: drop it.
    Gone,
    /// An API error: retry after back-off.
    Failed,
}

/// Re-lists arrive as `Init`, `InitApply`..., `InitDone`; objects are buffered until the
/// list is complete and then replace the cache's copy in one go.
struct Relist<K> {
    buffer: Option<Vec<K>>,
    synced: bool,
}

impl<K> Default for Relist<K> {
    fn default() -> Self {
        Relist {
            buffer: None,
            synced: false,
        }
    }
}

impl<K> Relist<K> {
    /// Feeds one event; returns the full list when a re-list completes.
    fn feed(&mut self, event: &watcher::Event<K>) -> Option<Vec<K>>
    where
        K: Clone,
    {
        match event {
            watcher::Event::Init => self.buffer = Some(Vec::new()),
            watcher::Event::InitApply(k) => {
                self.buffer.get_or_insert_with(Vec::new).push(k.clone())
            }
            watcher::Event::InitDone => {
                self.synced = true;
                return Some(self.buffer.take().unwrap_or_default());
            }
            _ => {}
        }
        None
    }
}

fn watch<K>(api: Api<K>) -> impl Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    watcher(api, watcher::Config::default()).default_backoff()
}

struct Scheduler {
    client: kube::Client,
    config: SchedulerConfig,
    cache: Cache,
    queue: SchedulingQueue,
    recorder: Arc<EventRecorder>,
    rng: StdRng,
    tasks: JoinSet<Outcome>,
    /// Which pod (key and uid) each running task is for.
    task_pods: HashMap<tokio::task::Id, (PodKey, Option<String>)>,
    nodes: Relist<Node>,
    pods: Relist<Pod>,
    runtime_classes: Relist<RuntimeClass>,
    namespaces: Relist<Namespace>,
    claims: Relist<PersistentVolumeClaim>,
    volumes: Relist<PersistentVolume>,
    storage_classes: Relist<StorageClass>,
}

/// Feeds one event of a kind the cache keeps as plain [`Objects`].
fn apply_objects<K: Clone + kube::Resource>(
    relist: &mut Relist<K>,
    objects: &mut Objects<K>,
    event: watcher::Event<K>,
) -> Change {
    let mut change = Change::None;
    if let Some(all) = relist.feed(&event) {
        change = objects.replace(all);
    }
    match event {
        watcher::Event::Apply(o) => objects.upsert(o),
        watcher::Event::Delete(o) => {
            objects.remove(&o);
            change
        }
        _ => change,
    }
}

/// Runs the scheduler until `shutdown` is cancelled.
pub async fn run(client: kube::Client, config: SchedulerConfig, shutdown: CancellationToken) {
    let recorder = Arc::new(EventRecorder::new(
        client.clone(),
        config.scheduler_name.clone(),
    ));
    let mut s = Scheduler {
        queue: SchedulingQueue::new(config.backoff()),
        client: client.clone(),
        config,
        cache: Cache::new(),
        recorder,
        rng: StdRng::from_os_rng(),
        tasks: JoinSet::new(),
        task_pods: HashMap::new(),
        nodes: Relist::default(),
        pods: Relist::default(),
        runtime_classes: Relist::default(),
        namespaces: Relist::default(),
        claims: Relist::default(),
        volumes: Relist::default(),
        storage_classes: Relist::default(),
    };
    let streams: Vec<std::pin::Pin<Box<dyn Stream<Item = Watched> + Send>>> = vec![
        log_errors("nodes", watch(Api::<Node>::all(client.clone())))
            .map(|e| Watched::Node(Box::new(e)))
            .boxed(),
        log_errors("pods", watch(Api::<Pod>::all(client.clone())))
            .map(|e| Watched::Pod(Box::new(e)))
            .boxed(),
        log_errors(
            "runtimeclasses",
            watch(Api::<RuntimeClass>::all(client.clone())),
        )
        .map(|e| Watched::RuntimeClass(Box::new(e)))
        .boxed(),
        log_errors("namespaces", watch(Api::<Namespace>::all(client.clone())))
            .map(|e| Watched::Namespace(Box::new(e)))
            .boxed(),
        log_errors(
            "persistentvolumeclaims",
            watch(Api::<PersistentVolumeClaim>::all(client.clone())),
        )
        .map(|e| Watched::Claim(Box::new(e)))
        .boxed(),
        log_errors(
            "persistentvolumes",
            watch(Api::<PersistentVolume>::all(client.clone())),
        )
        .map(|e| Watched::Volume(Box::new(e)))
        .boxed(),
        log_errors("storageclasses", watch(Api::<StorageClass>::all(client)))
            .map(|e| Watched::StorageClass(Box::new(e)))
            .boxed(),
    ];
    let mut watched = futures::stream::select_all(streams);
    tracing::info!(name = %s.config.scheduler_name, "scheduler started");
    loop {
        let now = Instant::now();
        let ready = s.synced() && s.queue.has_ready(now);
        let wakeup = s
            .queue
            .next_wakeup()
            .unwrap_or(now + std::time::Duration::from_secs(3600));
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            event = watched.next() => match event {
                Some(event) => s.apply(event),
                None => break,
            },
            Some(done) = s.tasks.join_next_with_id(), if !s.tasks.is_empty() => s.finished(done),
            _ = std::future::ready(()), if ready => s.schedule_one(),
            _ = tokio::time::sleep_until(wakeup) => {}
        }
    }
    s.tasks.shutdown().await;
    tracing::info!("scheduler stopped");
}

/// Logs watch errors (the watcher retries by itself) and passes events on.
fn log_errors<K>(
    what: &'static str,
    stream: impl Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send,
) -> impl Stream<Item = watcher::Event<K>> + Send
where
    K: Send,
{
    stream.filter_map(move |r| async move {
        match r {
            Ok(e) => Some(e),
            Err(e) => {
                tracing::warn!(error = %e, "watching {what} failed; retrying");
                None
            }
        }
    })
}

impl Scheduler {
    /// Whether every watch has delivered its first full list: scheduling on a partial view
    /// would overcommit nodes whose pods have not been seen yet.
    fn synced(&self) -> bool {
        self.nodes.synced
            && self.pods.synced
            && self.runtime_classes.synced
            && self.claims.synced
            && self.volumes.synced
            && self.storage_classes.synced
            && self.namespaces.synced
    }

    /// Whether this scheduler is the one to place the pod now.
    fn wants(&self, pod: &Pod) -> bool {
        let Some(spec) = pod.spec.as_ref() else {
            return false;
        };
        let name = spec
            .scheduler_name
            .as_deref()
            .unwrap_or("default-scheduler");
        name == self.config.scheduler_name
            && bound_node(pod).is_none()
            && !is_terminal(pod)
            && pod.metadata.deletion_timestamp.is_none()
            && spec.scheduling_gates.as_ref().is_none_or(Vec::is_empty)
    }

    fn changed(&mut self, change: Change) {
        if change == Change::MayHelp {
            self.queue.cluster_changed(Instant::now());
        }
    }

    fn apply(&mut self, event: Watched) {
        match event {
            Watched::Node(e) => {
                let e = *e;
                if let Some(all) = self.nodes.feed(&e) {
                    let c = self.cache.replace_nodes(all);
                    self.changed(c);
                }
                match e {
                    watcher::Event::Apply(n) => {
                        let c = self.cache.upsert_node(n);
                        self.changed(c);
                    }
                    watcher::Event::Delete(n) => {
                        self.cache
                            .remove_node(n.metadata.name.as_deref().unwrap_or(""));
                    }
                    _ => {}
                }
            }
            Watched::Pod(e) => {
                let e = *e;
                if let Some(all) = self.pods.feed(&e) {
                    self.replace_pods(all);
                }
                match e {
                    watcher::Event::Apply(p) => self.upsert_pod(p),
                    watcher::Event::Delete(p) => self.delete_pod(&p),
                    _ => {}
                }
            }
            Watched::RuntimeClass(e) => {
                let e = *e;
                if let Some(all) = self.runtime_classes.feed(&e) {
                    let c = self.cache.replace_runtime_classes(all);
                    self.changed(c);
                }
                match e {
                    watcher::Event::Apply(rc) => {
                        let c = self.cache.upsert_runtime_class(rc);
                        self.changed(c);
                    }
                    watcher::Event::Delete(rc) => self
                        .cache
                        .remove_runtime_class(rc.metadata.name.as_deref().unwrap_or("")),
                    _ => {}
                }
            }
            Watched::Claim(e) => {
                let c = apply_objects(&mut self.claims, &mut self.cache.claims, *e);
                self.changed(c);
            }
            Watched::Volume(e) => {
                let c = apply_objects(&mut self.volumes, &mut self.cache.volumes, *e);
                self.changed(c);
            }
            Watched::StorageClass(e) => {
                let c = apply_objects(
                    &mut self.storage_classes,
                    &mut self.cache.storage_classes,
                    *e,
                );
                self.changed(c);
            }
            Watched::Namespace(e) => {
                let e = *e;
                let labels = |ns: &Namespace| -> (String, BTreeMap<String, String>) {
                    (
                        ns.metadata.name.clone().unwrap_or_default(),
                        ns.metadata.labels.clone().unwrap_or_default(),
                    )
                };
                if let Some(all) = self.namespaces.feed(&e) {
                    let c = self
                        .cache
                        .replace_namespaces(all.iter().map(labels).collect());
                    self.changed(c);
                }
                match e {
                    watcher::Event::Apply(ns) => {
                        let (name, l) = labels(&ns);
                        let c = self.cache.upsert_namespace(&name, l);
                        self.changed(c);
                    }
                    watcher::Event::Delete(ns) => self
                        .cache
                        .remove_namespace(ns.metadata.name.as_deref().unwrap_or("")),
                    _ => {}
                }
            }
        }
    }

    fn upsert_pod(&mut self, pod: Pod) {
        let key = pod_key(&pod);
        if self.wants(&pod) {
            // While our binding is in flight or unconfirmed, older unbound versions of the
            // pod are still arriving; they must not queue it again.
            if !self.cache.is_assumed(&key) {
                self.queue.add_or_update(pod, Instant::now());
            }
            return;
        }
        if self.queue.remove(&key).is_some() && bound_node(&pod).is_none() {
            tracing::debug!(pod = %key, "pod no longer waits for this scheduler");
        }
        let c = self.cache.upsert_pod(pod);
        self.changed(c);
    }

    fn delete_pod(&mut self, pod: &Pod) {
        self.queue.remove(&pod_key(pod));
        if let Some(uid) = pod.metadata.uid.as_deref() {
            self.recorder.forget(uid);
        }
        let c = self.cache.remove_pod(pod);
        self.changed(c);
    }

    fn replace_pods(&mut self, all: Vec<Pod>) {
        let c = self.cache.replace_pods(&all);
        let listed: std::collections::HashSet<PodKey> = all.iter().map(pod_key).collect();
        let gone: Vec<PodKey> = self
            .queue
            .keys()
            .filter(|k| !listed.contains(*k))
            .cloned()
            .collect();
        for key in gone {
            self.queue.remove(&key);
        }
        for pod in all {
            if self.wants(&pod) && !self.cache.is_assumed(&pod_key(&pod)) {
                self.queue.add_or_update(pod, Instant::now());
            } else {
                self.queue.remove(&pod_key(&pod));
            }
        }
        self.changed(c);
    }

    /// Runs one scheduling cycle for the next pod and starts the API calls that follow.
    fn schedule_one(&mut self) {
        let Some(pod) = self.queue.pop(Instant::now()) else {
            return;
        };
        let key = pod_key(&pod);
        let uid = pod.metadata.uid.clone();
        let api: Api<Pod> = Api::namespaced(
            self.client.clone(),
            pod.metadata.namespace.as_deref().unwrap_or("default"),
        );
        let recorder = self.recorder.clone();
        let handle = match framework::schedule(
            &pod,
            &self.cache,
            &self.config.weights,
            &mut self.rng,
        ) {
            Ok(node) => {
                tracing::debug!(pod = %key, %node, "scheduling decision");
                self.cache.assume(&pod, &node);
                let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
                let unbound: Vec<String> = volumes::pod_claims(&pod)
                    .filter(|c| {
                        self.cache
                            .claims
                            .get(ns, c)
                            .is_some_and(|c| volumes::bound_volume(c).is_none())
                    })
                    .map(str::to_string)
                    .collect();
                let claims = Api::namespaced(self.client.clone(), ns);
                self.tasks.spawn(async move {
                        if !unbound.is_empty()
                            && let Err(e) = bind_volumes(&claims, &unbound, &node).await
                        {
                            tracing::warn!(pod = %pod_key(&pod), error = %error_chain(&e), "volume binding failed; retrying after back-off");
                            return Outcome::Failed;
                        }
                        bind(api, recorder, pod, node).await
                    })
            }
            Err(fit) => {
                let message = fit.message();
                tracing::debug!(pod = %key, %message, "pod is unschedulable");
                let awaiting = fit.pre_filter.as_deref().is_some_and(|p| {
                    p.starts_with("persistentvolumeclaim ") && p.ends_with(" not found")
                });
                let report = report_unschedulable(api, recorder, pod, message);
                self.tasks.spawn(async move {
                    match report.await {
                        Outcome::Unschedulable { .. } => Outcome::Unschedulable { awaiting },
                        other => other,
                    }
                })
            }
        };
        self.task_pods.insert(handle.id(), (key, uid));
    }

    fn finished(&mut self, done: Result<(tokio::task::Id, Outcome), tokio::task::JoinError>) {
        let (id, outcome) = match done {
            Ok((id, outcome)) => (id, outcome),
            // A panicked task: treat it like an API error so the pod is retried.
            Err(e) => (e.id(), Outcome::Failed),
        };
        let Some((key, uid)) = self.task_pods.remove(&id) else {
            return;
        };
        // The pod may have been deleted and re-created under its name meanwhile; the outcome
        // is about the old one.
        let same_pod = self.queue.pod(&key).is_some_and(|p| p.metadata.uid == uid);
        let now = Instant::now();
        match outcome {
            Outcome::Bound => {
                if same_pod {
                    self.queue.done(&key);
                }
            }
            Outcome::Unschedulable { awaiting } => {
                if same_pod && awaiting {
                    self.queue.awaiting_object(&key, now);
                } else if same_pod {
                    self.queue.unschedulable(&key, now);
                }
            }
            Outcome::Gone => {
                self.cache.forget(&key);
                if same_pod && self.queue.place(&key) == Some(Place::InFlight) {
                    self.queue.remove(&key);
                }
            }
            Outcome::Failed => {
                self.cache.forget(&key);
                if same_pod {
                    self.queue.error(&key, now);
                }
            }
        }
    }
}

/// VolumeBinding's PreBind: marks each unbound (WaitForFirstConsumer) claim with the chosen
/// node, so the PersistentVolume controller binds it to a volume there or the node's
/// provisioner makes one, and waits until every claim is bound.
async fn bind_volumes(
    api: &Api<PersistentVolumeClaim>,
    claims: &[String],
    node: &str,
) -> Result<(), Error> {
    let patch = json!({"metadata": {"annotations": {volumes::SELECTED_NODE: node}}});
    for name in claims {
        api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(|source| Error::Claim {
                claim: name.clone(),
                source,
            })?;
    }
    // Watched, not polled: the pod is bound the moment its last claim is.
    let deadline = Instant::now() + VOLUME_BIND_TIMEOUT;
    for name in claims {
        let bound = |c: Option<&PersistentVolumeClaim>| {
            c.is_some_and(|c| {
                c.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Bound")
                    && volumes::bound_volume(c).is_some()
            })
        };
        let wait = kube::runtime::wait::await_condition(api.clone(), name, bound);
        match tokio::time::timeout_at(deadline, wait).await {
            Ok(Ok(_)) => {}
            Ok(Err(source)) => {
                return Err(Error::ClaimWatch {
                    claim: name.clone(),
                    source,
                });
            }
            Err(_) => return Err(Error::BindTimeout(name.clone())),
        }
    }
    Ok(())
}

/// POSTs the pod's Binding and records the `Scheduled` event.
async fn bind(api: Api<Pod>, recorder: Arc<EventRecorder>, pod: Arc<Pod>, node: String) -> Outcome {
    let key = pod_key(&pod);
    let name = pod.metadata.name.clone().unwrap_or_default();
    let binding = Binding {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            namespace: pod.metadata.namespace.clone(),
            // The binding is for this pod, not one re-created under the same name.
            uid: pod.metadata.uid.clone(),
            ..ObjectMeta::default()
        },
        target: ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Node".into()),
            name: Some(node.clone()),
            ..ObjectReference::default()
        },
    };
    let result = api
        .create_subresource::<_, serde_json::Value>(
            "binding",
            &name,
            &PostParams::default(),
            &binding,
        )
        .await;
    match result {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 409 || s.code == 404 => {
            tracing::info!(pod = %key, %node, message = %s.message, "pod was not bound: already bound or gone");
            return Outcome::Gone;
        }
        Err(source) => {
            let e = Error::Bind {
                pod: key,
                node,
                source,
            };
            tracing::warn!(error = %error_chain(&e), "binding failed; retrying after back-off");
            return Outcome::Failed;
        }
    }
    tracing::info!(pod = %key, %node, "bound pod");
    let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
    let message = format!("Successfully assigned {namespace}/{name} to {node}");
    if let Err(source) = recorder
        .record(&pod, EventType::Normal, "Scheduled", "Binding", &message)
        .await
    {
        let e = Error::Event { pod: key, source };
        tracing::warn!(error = %error_chain(&e), "recording the Scheduled event failed");
    }
    if let Some(uid) = pod.metadata.uid.as_deref() {
        recorder.forget(uid);
    }
    Outcome::Bound
}

/// Whether the pod already carries this exact PodScheduled=False condition.
fn has_condition(pod: &Pod, reason: &str, message: &str) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "PodScheduled"))
        .is_some_and(|c| {
            c.status == "False"
                && c.reason.as_deref() == Some(reason)
                && c.message.as_deref() == Some(message)
        })
}

/// Sets PodScheduled=False (reason Unschedulable) with the message, and records a
/// `FailedScheduling` event.
async fn report_unschedulable(
    api: Api<Pod>,
    recorder: Arc<EventRecorder>,
    pod: Arc<Pod>,
    message: String,
) -> Outcome {
    const REASON: &str = "Unschedulable";
    let key = pod_key(&pod);
    let name = pod.metadata.name.clone().unwrap_or_default();
    if !has_condition(&pod, REASON, &message) {
        let was_false = pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .and_then(|c| c.iter().find(|c| c.type_ == "PodScheduled"))
            .filter(|c| c.status == "False")
            .and_then(|c| c.last_transition_time.clone());
        // The condition's status did not change when only the message did.
        let transition = was_false.unwrap_or(Time(Timestamp::now()));
        // The order of the conditions after the merge, as the two-way patch of Kubernetes'
        // scheduler says it: the existing ones where they are, a new PodScheduled last.
        // Without it a strategic merge puts a new list item first.
        let mut order: Vec<serde_json::Value> = pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .map(|cs| cs.iter().map(|c| json!({"type": c.type_})).collect())
            .unwrap_or_default();
        if !order.iter().any(|c| c["type"] == "PodScheduled") {
            order.push(json!({"type": "PodScheduled"}));
        }
        let patch = json!({"status": {
            "$setElementOrder/conditions": order,
            "conditions": [{
                "type": "PodScheduled",
                "status": "False",
                "reason": REASON,
                "message": message,
                "lastProbeTime": null,
                "lastTransitionTime": transition,
            }],
        }});
        match api
            .patch_status(&name, &PatchParams::default(), &Patch::Strategic(&patch))
            .await
        {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => return Outcome::Gone,
            Err(source) => {
                let e = Error::Status {
                    pod: key.clone(),
                    source,
                };
                tracing::warn!(error = %error_chain(&e), "could not mark the pod unschedulable");
            }
        }
    }
    if let Err(source) = recorder
        .record(
            &pod,
            EventType::Warning,
            "FailedScheduling",
            "Scheduling",
            &message,
        )
        .await
    {
        let e = Error::Event { pod: key, source };
        tracing::warn!(error = %error_chain(&e), "recording the FailedScheduling event failed");
    }
    Outcome::Unschedulable { awaiting: false }
}

/// `error: cause: cause` on one line.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(c) = source {
        s.push_str(": ");
        s.push_str(&c.to_string());
        source = c.source();
    }
    s
}
