//! An API server with no controllers, for tests of one controller at a time (the Job,
//! CronJob and garbage collector tests): each test starts its own server and exactly the
//! controller it is about, so nothing else acts on its objects, and plays the kubelet itself
//! by writing pod status.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Event, Pod};
use kube::api::{Api, ListParams, Patch, PatchParams};
use serde_json::json;
use tokio_util::sync::CancellationToken;
use wasmkube_apiserver::{ApiState, admission::Admission};
use wasmkube_store::{MemoryStore, Store};

/// The server (and whatever was started on it) stops when this is dropped.
pub struct ApiServer {
    pub client: kube::Client,
    pub shutdown: CancellationToken,
}

impl ApiServer {
    pub async fn start() -> ApiServer {
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
        ApiServer { client, shutdown }
    }

    /// Runs a controller (`run(client, shutdown)`) against this server.
    pub fn spawn<F, Fut>(&self, run: F)
    where
        F: FnOnce(kube::Client, CancellationToken) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        tokio::spawn(run(self.client.clone(), self.shutdown.clone()));
    }

    pub fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        <K as kube::Resource>::DynamicType: Default,
    {
        Api::default_namespaced(self.client.clone())
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Polls `check` until it returns `Some`, failing the test after `timeout`.
pub async fn until<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
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
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// What a kubelet reports when a pod's only container ended: phase Succeeded (exit 0) or
/// Failed (exit 1), with a terminated container status.
pub async fn finish_pod(client: &kube::Client, name: &str, succeeded: bool) {
    let api: Api<Pod> = Api::default_namespaced(client.clone());
    let (phase, code, reason) = if succeeded {
        ("Succeeded", 0, "Completed")
    } else {
        ("Failed", 1, "Error")
    };
    let patch = json!({"status": {
        "phase": phase,
        "containerStatuses": [{
            "name": "main",
            "image": "busybox",
            "imageID": "",
            "ready": false,
            "restartCount": 0,
            "state": {"terminated": {"exitCode": code, "reason": reason}},
        }],
    }});
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap_or_else(|e| panic!("finishing pod {name}: {e}"));
}

/// Pods with `selector`, in name order.
pub async fn pods(client: &kube::Client, selector: &str) -> Vec<Pod> {
    let api: Api<Pod> = Api::default_namespaced(client.clone());
    let mut pods = api
        .list(&ListParams::default().labels(selector))
        .await
        .expect("list pods")
        .items;
    pods.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    pods
}

/// Messages of the events with `reason` about the object named `name`.
pub async fn events(client: &kube::Client, name: &str, reason: &str) -> Vec<String> {
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
