//! Scheduler integration tests: the real API server over an in-memory store, reached through
//! an in-process kube-rs client (no sockets), with the scheduler running against it as it
//! runs in `wasmkube server`. Nodes are plain API objects here (no kubelet): their status is
//! written through the status subresource, as a kubelet would.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Event, Node, Pod};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use wasmkube_apiserver::{ApiState, admission::Admission};
use wasmkube_scheduler::SchedulerConfig;
use wasmkube_store::{MemoryStore, Store};

/// Upper bound for anything a test waits for.
const WAIT: Duration = Duration::from_secs(30);

const PREEMPTION_3: &str =
    "preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling.";

/// An API server and a scheduler; both stop when this is dropped.
struct Cluster {
    client: kube::Client,
    shutdown: CancellationToken,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

impl Cluster {
    async fn start() -> Cluster {
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
        tokio::spawn(wasmkube_scheduler::run(
            client.clone(),
            SchedulerConfig::default(),
            shutdown.clone(),
        ));
        Cluster { client, shutdown }
    }

    fn pods(&self) -> Api<Pod> {
        Api::namespaced(self.client.clone(), "default")
    }

    fn nodes(&self) -> Api<Node> {
        Api::all(self.client.clone())
    }

    /// A Ready node with the given allocatable resources, runtime handlers and extra fields
    /// (merged into the manifest: labels, taints).
    async fn add_node(&self, name: &str, cpu: &str, memory: &str, handlers: &[&str], extra: Value) {
        let mut manifest = json!({"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}}, "spec": {}});
        merge(&mut manifest, extra);
        let node: Node = serde_json::from_value(manifest).expect("node manifest");
        self.nodes()
            .create(&PostParams::default(), &node)
            .await
            .expect("create node");
        let resources = json!({"cpu": cpu, "memory": memory, "pods": "110"});
        let status = json!({"status": {
            "capacity": resources,
            "allocatable": resources,
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                "message": "kubelet is posting ready status"}],
            "runtimeHandlers": handlers.iter().map(|h| json!({"name": h})).collect::<Vec<_>>(),
        }});
        self.nodes()
            .patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
            .await
            .expect("node status");
    }

    async fn add_pod(&self, name: &str, extra: Value) -> Pod {
        let mut manifest = json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"containers": [{"name": "app", "image": "example/app:1"}]}});
        merge(&mut manifest, extra);
        let pod: Pod = serde_json::from_value(manifest).expect("pod manifest");
        self.pods()
            .create(&PostParams::default(), &pod)
            .await
            .expect("create pod")
    }

    /// Waits for the pod to be bound and returns its node.
    async fn node_of(&self, pod: &str) -> String {
        let api = self.pods();
        wait_for(&format!("pod {pod} to be bound"), || {
            let api = api.clone();
            async move {
                let p = api.get(pod).await.ok()?;
                p.spec?.node_name.filter(|n| !n.is_empty())
            }
        })
        .await
    }

    /// Waits for the pod's PodScheduled=False condition and returns its message.
    async fn unschedulable_message(&self, pod: &str) -> String {
        let api = self.pods();
        wait_for(&format!("pod {pod} to be marked unschedulable"), || {
            let api = api.clone();
            async move {
                let p = api.get(pod).await.ok()?;
                let c = p
                    .status?
                    .conditions?
                    .into_iter()
                    .find(|c| c.type_ == "PodScheduled")?;
                (c.status == "False" && c.reason.as_deref() == Some("Unschedulable"))
                    .then_some(c.message)
                    .flatten()
            }
        })
        .await
    }

    /// Events about a pod with a given reason.
    async fn events(&self, pod: &str, reason: &str) -> Vec<Event> {
        let api: Api<Event> = Api::namespaced(self.client.clone(), "default");
        api.list(&ListParams::default())
            .await
            .expect("list events")
            .items
            .into_iter()
            .filter(|e| {
                e.involved_object.name.as_deref() == Some(pod)
                    && e.reason.as_deref() == Some(reason)
            })
            .collect()
    }
}

fn merge(base: &mut Value, extra: Value) {
    match (base, extra) {
        (Value::Object(b), Value::Object(e)) => {
            for (k, v) in e {
                merge(b.entry(k).or_insert(Value::Null), v);
            }
        }
        (b, e) => *b = e,
    }
}

/// Polls `check` until it gives a value, failing the test after [`WAIT`].
async fn wait_for<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let poll = async {
        loop {
            if let Some(v) = check().await {
                return v;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    match tokio::time::timeout(WAIT, poll).await {
        Ok(v) => v,
        Err(_) => panic!("timed out after {WAIT:?} waiting for {what}"),
    }
}

fn requests(cpu: &str, memory: &str) -> Value {
    json!({"spec": {"containers": [{"name": "app", "image": "example/app:1",
        "resources": {"requests": {"cpu": cpu, "memory": memory}}}]}})
}

#[tokio::test]
async fn pods_are_bound_to_nodes_that_fit() {
    let c = Cluster::start().await;
    c.add_node("small", "1", "1Gi", &["runc"], json!({})).await;
    c.add_node("big", "8", "16Gi", &["runc"], json!({})).await;
    c.add_pod("needs-cpu", requests("2", "100Mi")).await;
    c.add_pod("needs-memory", requests("100m", "4Gi")).await;
    assert_eq!(c.node_of("needs-cpu").await, "big");
    assert_eq!(c.node_of("needs-memory").await, "big");

    let events = wait_for("the Scheduled event", || async {
        let e = c.events("needs-cpu", "Scheduled").await;
        (!e.is_empty()).then_some(e)
    })
    .await;
    assert_eq!(events.len(), 1);
    let e = &events[0];
    assert_eq!(
        e.message.as_deref(),
        Some("Successfully assigned default/needs-cpu to big")
    );
    assert_eq!(e.type_.as_deref(), Some("Normal"));
    assert_eq!(
        e.source.as_ref().and_then(|s| s.component.as_deref()),
        Some("default-scheduler")
    );
    assert_eq!(e.reporting_component.as_deref(), Some("default-scheduler"));
    assert_eq!(e.involved_object.kind.as_deref(), Some("Pod"));
}

#[tokio::test]
async fn wasm_pods_land_only_on_nodes_offering_the_handler() {
    let c = Cluster::start().await;
    // The bigger, emptier node would win on score; only the handler rules it out.
    c.add_node("containers", "16", "32Gi", &["runc"], json!({}))
        .await;
    c.add_node("wasm", "2", "2Gi", &["runc", "wasmtime"], json!({}))
        .await;
    for i in 0..3 {
        c.add_pod(
            &format!("wasm-{i}"),
            json!({"spec": {"runtimeClassName": "wasmtime"}}),
        )
        .await;
    }
    c.add_pod("oci", json!({})).await;
    for i in 0..3 {
        assert_eq!(c.node_of(&format!("wasm-{i}")).await, "wasm");
    }
    assert_eq!(c.node_of("oci").await, "containers");

    c.add_pod(
        "unknown-class",
        json!({"spec": {"runtimeClassName": "gvisor"}}),
    )
    .await;
    assert_eq!(
        c.unschedulable_message("unknown-class").await,
        "0/2 nodes are available: runtimeclass.node.k8s.io \"gvisor\" not found. preemption: \
         0/2 nodes are available: 2 Preemption is not helpful for scheduling."
    );
}

#[tokio::test]
async fn unschedulable_pod_is_reported_then_scheduled_when_a_node_fits() {
    let c = Cluster::start().await;
    let control_plane = json!({"spec": {"taints": [
        {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}]}});
    c.add_node("cp-1", "4", "8Gi", &["runc"], control_plane.clone())
        .await;
    c.add_node("cp-2", "4", "8Gi", &["runc"], control_plane)
        .await;
    c.add_node("tiny", "4", "512Mi", &["runc"], json!({})).await;
    c.add_pod("hungry", requests("100m", "1Gi")).await;

    let expected = format!(
        "0/3 nodes are available: 1 Insufficient memory, 2 node(s) had untolerated taint \
         {{node-role.kubernetes.io/control-plane: }}. {PREEMPTION_3}"
    );
    assert_eq!(c.unschedulable_message("hungry").await, expected);
    let events = wait_for("the FailedScheduling event", || async {
        let e = c.events("hungry", "FailedScheduling").await;
        (!e.is_empty()).then_some(e)
    })
    .await;
    assert_eq!(events[0].message.as_deref(), Some(expected.as_str()));
    assert_eq!(events[0].type_.as_deref(), Some("Warning"));

    // A node change retries the pod (after its back-off); the same failure bumps the
    // existing event's count instead of writing a new event.
    let label = json!({"metadata": {"labels": {"touched": "yes"}}});
    c.nodes()
        .patch("tiny", &PatchParams::default(), &Patch::Merge(&label))
        .await
        .expect("label node");
    let repeated = wait_for("the FailedScheduling event to repeat", || async {
        let e = c.events("hungry", "FailedScheduling").await;
        e.iter().any(|e| e.count.unwrap_or(0) >= 2).then_some(e)
    })
    .await;
    assert_eq!(repeated.len(), 1, "one event, counted: {repeated:?}");

    c.add_node("roomy", "4", "8Gi", &["runc"], json!({})).await;
    assert_eq!(c.node_of("hungry").await, "roomy");
}

#[tokio::test]
async fn replicas_of_one_owner_spread_over_nodes() {
    let c = Cluster::start().await;
    // Unequal nodes: resource scores alone would favour the big one.
    c.add_node("big", "64", "128Gi", &["runc"], json!({})).await;
    c.add_node("small", "4", "8Gi", &["runc"], json!({})).await;
    let owner = json!({"metadata": {"labels": {"app": "web"}, "ownerReferences": [{
        "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-5d4f",
        "uid": "7d0e6c1a-3a55-4c3e-9d8e-0c1b2a3f4e5d", "controller": true,
        "blockOwnerDeletion": true}]}});
    for i in 0..4 {
        c.add_pod(&format!("web-{i}"), owner.clone()).await;
    }
    let mut per_node = BTreeMap::<String, usize>::new();
    for i in 0..4 {
        *per_node
            .entry(c.node_of(&format!("web-{i}")).await)
            .or_insert(0) += 1;
    }
    assert_eq!(
        per_node,
        [("big".to_string(), 2), ("small".to_string(), 2)].into()
    );
}

#[tokio::test]
async fn pods_for_other_schedulers_are_left_alone() {
    let c = Cluster::start().await;
    c.add_node("n1", "4", "8Gi", &["runc"], json!({})).await;
    c.add_pod("theirs", json!({"spec": {"schedulerName": "someone-else"}}))
        .await;
    c.add_pod("ours", json!({})).await;
    assert_eq!(c.node_of("ours").await, "n1");
    // Give the scheduler a moment more in case it wrongly picked the other pod up later.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let theirs = c.pods().get("theirs").await.expect("get pod");
    assert!(theirs.spec.and_then(|s| s.node_name).is_none());
    assert!(c.events("theirs", "FailedScheduling").await.is_empty());
}
