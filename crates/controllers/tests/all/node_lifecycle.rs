//! The node lifecycle controller against the real API server with short periods. The test
//! plays the kubelets: it renews their Leases, posts node status and pod status.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Pod, Taint};
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use tokio::task::JoinHandle;
use wasmkube_controllers::node_lifecycle::{self, NodeLifecycleConfig};

use crate::api_only::{ApiServer, events, until};

const WAIT: Duration = Duration::from_secs(20);

fn config() -> NodeLifecycleConfig {
    NodeLifecycleConfig {
        node_monitor_grace_period: Duration::from_secs(2),
        node_monitor_period: Duration::from_millis(200),
        default_toleration_seconds: Duration::from_secs(300),
    }
}

async fn start() -> ApiServer {
    let server = ApiServer::start().await;
    server.spawn(|client, shutdown| node_lifecycle::run(client, config(), shutdown));
    server
}

fn micro_now() -> String {
    k8s_openapi::jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string()
}

fn now() -> String {
    k8s_openapi::jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// Posts the node status a kubelet posts, with a fresh heartbeat.
async fn post_status(client: &kube::Client, name: &str, ready: &str) {
    let nodes: Api<Node> = Api::all(client.clone());
    let stamp = now();
    let condition = |ty: &str, status: &str| {
        json!({"type": ty, "status": status, "reason": "Kubelet", "message": "posted",
            "lastHeartbeatTime": stamp, "lastTransitionTime": "2024-01-01T00:00:00Z"})
    };
    let status = json!({"status": {"conditions": [
        condition("MemoryPressure", "False"),
        condition("DiskPressure", "False"),
        condition("PIDPressure", "False"),
        condition("Ready", ready),
    ]}});
    nodes
        .patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
        .await
        .expect("node status");
}

async fn renew(client: &kube::Client, name: &str) {
    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-node-lease");
    let spec =
        json!({"holderIdentity": name, "leaseDurationSeconds": 40, "renewTime": micro_now()});
    if leases.get_opt(name).await.expect("get lease").is_some() {
        leases
            .patch(
                name,
                &PatchParams::default(),
                &Patch::Merge(&json!({"spec": spec})),
            )
            .await
            .expect("renew lease");
    } else {
        let lease: Lease = serde_json::from_value(json!({
            "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": name, "namespace": "kube-node-lease"}, "spec": spec}))
        .expect("lease");
        leases
            .create(&PostParams::default(), &lease)
            .await
            .expect("create lease");
    }
}

async fn add_node(client: &kube::Client, name: &str) {
    let nodes: Api<Node> = Api::all(client.clone());
    let node: Node = serde_json::from_value(json!({"apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name}, "spec": {}}))
    .expect("node");
    nodes
        .create(&PostParams::default(), &node)
        .await
        .expect("create node");
    post_status(client, name, "True").await;
    renew(client, name).await;
}

/// Renews the lease of `node` every 300 ms, and posts its status `ready` every second,
/// until dropped.
struct Heartbeat(JoinHandle<()>);

impl Heartbeat {
    fn start(client: &kube::Client, node: &str, ready: &'static str) -> Heartbeat {
        let (client, node) = (client.clone(), node.to_string());
        Heartbeat(tokio::spawn(async move {
            let mut beat = 0u32;
            loop {
                renew(&client, &node).await;
                if beat.is_multiple_of(3) {
                    post_status(&client, &node, ready).await;
                }
                beat += 1;
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        }))
    }
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A running, ready pod on `node` with extra tolerations.
async fn add_pod(client: &kube::Client, name: &str, node: &str, tolerations: Value) {
    let pods: Api<Pod> = Api::default_namespaced(client.clone());
    let pod: Pod = serde_json::from_value(json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"nodeName": node, "tolerations": tolerations,
            "containers": [{"name": "c", "image": "app:1"}]}}))
    .expect("pod");
    pods.create(&PostParams::default(), &pod)
        .await
        .expect("create pod");
    let status = json!({"status": {"phase": "Running",
        "conditions": [{"type": "Ready", "status": "True"}]}});
    pods.patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
        .await
        .expect("pod status");
}

fn unreachable_toleration(seconds: Option<i64>) -> Value {
    json!({"key": "node.kubernetes.io/unreachable", "operator": "Exists",
        "effect": "NoExecute", "tolerationSeconds": seconds})
}

fn taint_keys(node: &Node) -> Vec<(String, String)> {
    let mut keys: Vec<(String, String)> = node
        .spec
        .as_ref()
        .and_then(|s| s.taints.clone())
        .unwrap_or_default()
        .into_iter()
        .map(|t: Taint| (t.key, t.effect))
        .collect();
    keys.sort();
    keys
}

fn ready_condition(node: &Node) -> Option<k8s_openapi::api::core::v1::NodeCondition> {
    node.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready")
        .cloned()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[tokio::test]
async fn silent_node_is_tainted_evicted_and_recovers() {
    let server = start().await;
    let client = &server.client;
    add_node(client, "dead").await;
    add_node(client, "alive").await;
    let _alive = Heartbeat::start(client, "alive", "True");
    add_pod(
        client,
        "short",
        "dead",
        json!([unreachable_toleration(Some(1))]),
    )
    .await;
    add_pod(
        client,
        "forever",
        "dead",
        json!([unreachable_toleration(None)]),
    )
    .await;
    add_pod(
        client,
        "elsewhere",
        "alive",
        json!([unreachable_toleration(Some(1))]),
    )
    .await;

    let nodes: Api<Node> = Api::all(client.clone());
    let pods: Api<Pod> = server.api();
    let started = tokio::time::Instant::now();
    let dead = until("the silent node to be tainted", WAIT, || async {
        let n = nodes.get("dead").await.ok()?;
        (taint_keys(&n).len() == 2).then_some(n)
    })
    .await;
    assert!(
        started.elapsed() >= Duration::from_millis(1500),
        "tainted before the grace period ran out"
    );
    assert_eq!(
        taint_keys(&dead),
        pairs(&[
            ("node.kubernetes.io/unreachable", "NoExecute"),
            ("node.kubernetes.io/unreachable", "NoSchedule")
        ])
    );
    assert!(
        dead.spec
            .as_ref()
            .and_then(|s| s.taints.as_ref())
            .is_some_and(|t| t.iter().all(|t| t.time_added.is_some()))
    );
    let ready = ready_condition(&dead).expect("ready condition");
    assert_eq!(ready.status, "Unknown");
    assert_eq!(ready.reason.as_deref(), Some("NodeStatusUnknown"));
    assert_eq!(
        ready.message.as_deref(),
        Some("Kubelet stopped posting node status.")
    );
    let memory = dead
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "MemoryPressure"))
        .map(|c| c.status.clone());
    assert_eq!(memory.as_deref(), Some("Unknown"));
    let tainted_at = tokio::time::Instant::now();

    // The pod with a one-second toleration goes (force-deleted: its kubelet is gone).
    until("the short-toleration pod to be evicted", WAIT, || async {
        pods.get_opt("short").await.ok()?.is_none().then_some(())
    })
    .await;
    assert!(
        tainted_at.elapsed() >= Duration::from_millis(700),
        "evicted before its toleration ran out"
    );
    // The pod tolerating for ever stays, but no longer counts as ready.
    until("the remaining pod to be not ready", WAIT, || async {
        let p = pods.get("forever").await.ok()?;
        (!wasmkube_controllers::pods::is_ready(&p)).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(pods.get_opt("forever").await.expect("get").is_some());
    // Nothing happens on the healthy node.
    let alive = nodes.get("alive").await.expect("alive");
    assert!(taint_keys(&alive).is_empty());
    let elsewhere = pods.get("elsewhere").await.expect("elsewhere");
    assert!(wasmkube_controllers::pods::is_ready(&elsewhere));
    let default_events: Api<k8s_openapi::api::core::v1::Event> = server.api();
    let node_events: Vec<String> = default_events
        .list(&Default::default())
        .await
        .expect("events")
        .items
        .into_iter()
        .filter(|e| e.involved_object.name.as_deref() == Some("dead"))
        .filter(|e| e.reason.as_deref() == Some("NodeNotReady"))
        .filter_map(|e| e.message)
        .collect();
    assert_eq!(node_events, ["Node dead status is now: NodeNotReady"]);
    assert_eq!(
        events(client, "short", "TaintManagerEviction").await,
        ["Marking for deletion Pod default/short"]
    );

    // The kubelet comes back: lease renewals and a Ready status clear the taints.
    let _dead = Heartbeat::start(client, "dead", "True");
    until("the taints to come off", WAIT, || async {
        let n = nodes.get("dead").await.ok()?;
        (taint_keys(&n).is_empty() && ready_condition(&n)?.status == "True").then_some(())
    })
    .await;
}

#[tokio::test]
async fn not_ready_node_gets_not_ready_taints() {
    let server = start().await;
    let client = &server.client;
    add_node(client, "sick").await;
    let beat = Heartbeat::start(client, "sick", "False");
    let nodes: Api<Node> = Api::all(client.clone());
    until("not-ready taints", WAIT, || async {
        let n = nodes.get("sick").await.ok()?;
        (taint_keys(&n)
            == pairs(&[
                ("node.kubernetes.io/not-ready", "NoExecute"),
                ("node.kubernetes.io/not-ready", "NoSchedule"),
            ]))
        .then_some(())
    })
    .await;
    // The kubelet is alive (it reports NotReady itself): nothing becomes Unknown.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let n = nodes.get("sick").await.expect("node");
    assert_eq!(
        ready_condition(&n).map(|c| c.status).as_deref(),
        Some("False")
    );
    drop(beat);
    let _beat = Heartbeat::start(client, "sick", "True");
    until("taints gone", WAIT, || async {
        let n = nodes.get("sick").await.ok()?;
        taint_keys(&n).is_empty().then_some(())
    })
    .await;
}
