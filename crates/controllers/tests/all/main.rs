//! Controller integration tests: the real API server in-process over an in-memory store, the
//! controllers running against it through a kube `Client` (no sockets), and the test itself
//! playing the kubelet where pods must become ready. Every wait is bounded.

mod api_only;
mod cronjob;
mod daemonset;
mod deployment;
mod endpoints;
mod garbage_collector;
mod job;
mod leader_election;
mod node_lifecycle;
mod persistentvolume;
mod replicaset;
mod statefulset;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Event, Pod};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ListParams, Patch, PatchParams};
use serde_json::json;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use wasmkube_apiserver::{ApiState, admission::Admission};
use wasmkube_store::{MemoryStore, Store};

/// An API server with the ReplicaSet and Deployment controllers running; all stop when it is
/// dropped.
pub struct Cluster {
    pub client: kube::Client,
    shutdown: CancellationToken,
}

impl Cluster {
    pub async fn start() -> Cluster {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_env("WASMKUBE_TEST_LOG")
                    .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
            )
            .with_test_writer()
            .try_init();
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let shutdown = CancellationToken::new();
        let state = Arc::new(ApiState {
            store,
            admission: Admission::new(),
            subresource_handler: None,
            shutdown: shutdown.clone(),
            bookmark_interval: Duration::from_secs(30),
            token_issuer: None,
        });
        wasmkube_apiserver::bootstrap::ensure_defaults(&state)
            .await
            .expect("default objects");
        let client = kube::Client::new(wasmkube_apiserver::router(state, None, None), "default");
        // Only the controllers under test: the others have their own tests, and nothing else
        // should act on these objects.
        tokio::spawn(wasmkube_controllers::replicaset::run(
            client.clone(),
            shutdown.clone(),
        ));
        tokio::spawn(wasmkube_controllers::deployment::run(
            client.clone(),
            shutdown.clone(),
        ));
        Cluster { client, shutdown }
    }

    pub fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        <K as kube::Resource>::DynamicType: Default,
    {
        Api::default_namespaced(self.client.clone())
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Polls `check` until it returns `Some`, failing the test after `timeout`.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Pods matching `selector` that count as replicas: not finished, not being deleted.
pub async fn active_pods(client: &kube::Client, selector: &str) -> Vec<Pod> {
    let api: Api<Pod> = Api::default_namespaced(client.clone());
    api.list(&ListParams::default().labels(selector))
        .await
        .expect("list pods")
        .items
        .into_iter()
        .filter(wasmkube_controllers::pods::is_active)
        .collect()
}

/// What a kubelet reports once a pod's containers run and pass readiness.
pub async fn mark_ready(client: &kube::Client, name: &str) {
    let api: Api<Pod> = Api::default_namespaced(client.clone());
    let now = Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
    let patch = json!({"status": {
        "phase": "Running",
        "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": now}],
    }});
    match api
        .patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        Ok(_) => {}
        // Deleted meanwhile by a controller scaling down: nothing to report.
        Err(kube::Error::Api(e)) if e.code == 404 => {}
        Err(e) => panic!("marking pod {name} ready: {e}"),
    }
}

/// A stand-in kubelet: every `tick` it marks up to `per_tick` not-yet-ready pods matching
/// `selector` ready. Stops when dropped.
pub struct Kubelet(JoinHandle<()>);

impl Kubelet {
    pub fn start(
        client: &kube::Client,
        selector: &str,
        per_tick: usize,
        tick: Duration,
    ) -> Kubelet {
        let client = client.clone();
        let selector = selector.to_string();
        Kubelet(tokio::spawn(async move {
            loop {
                let pending: Vec<String> = active_pods(&client, &selector)
                    .await
                    .into_iter()
                    .filter(|p| !wasmkube_controllers::pods::is_ready(p))
                    .filter_map(|p| p.metadata.name)
                    .take(per_tick)
                    .collect();
                for name in pending {
                    mark_ready(&client, &name).await;
                }
                tokio::time::sleep(tick).await;
            }
        }))
    }
}

impl Drop for Kubelet {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Messages of the events with `reason` about the object named `name`.
pub async fn event_messages(client: &kube::Client, name: &str, reason: &str) -> Vec<String> {
    let api: Api<Event> = Api::default_namespaced(client.clone());
    api.list(&ListParams::default())
        .await
        .expect("list events")
        .items
        .into_iter()
        .filter(|e| e.involved_object.name.as_deref() == Some(name))
        .filter(|e| e.reason.as_deref() == Some(reason))
        .filter_map(|e| e.message)
        .collect()
}
