//! The DaemonSet controller against the real API server. No scheduler runs: pods stay
//! pinned to their node by affinity (which is how the controller asks for them), and the
//! test plays the kubelet by marking them ready.

use std::time::Duration;

use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use wasmkube_controllers::daemonset::nodes::target_node;

use crate::api_only::{ApiServer, events, pods, until};

const WAIT: Duration = Duration::from_secs(20);
const SELECTOR: &str = "app=agent";

async fn start() -> ApiServer {
    let server = ApiServer::start().await;
    server.spawn(wasmkube_controllers::daemonset::run);
    server
}

/// A Ready node with `extra` merged into its metadata/spec and `handlers` in its status.
pub async fn add_node(
    client: &kube::Client,
    name: &str,
    metadata: Value,
    spec: Value,
    handlers: &[&str],
) {
    let api: Api<Node> = Api::all(client.clone());
    let mut meta = json!({"name": name, "labels": {"kubernetes.io/hostname": name}});
    if let (Some(m), Value::Object(extra)) = (meta.as_object_mut(), metadata) {
        for (k, v) in extra {
            if k == "labels" {
                if let (Some(Value::Object(l)), Value::Object(add)) = (m.get_mut("labels"), v) {
                    l.extend(add);
                }
            } else {
                m.insert(k, v);
            }
        }
    }
    let node: Node = serde_json::from_value(json!({"apiVersion": "v1", "kind": "Node",
        "metadata": meta, "spec": spec}))
    .expect("node manifest");
    api.create(&PostParams::default(), &node)
        .await
        .expect("create node");
    let status = json!({"status": {
        "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}],
        "runtimeHandlers": handlers.iter().map(|h| json!({"name": h})).collect::<Vec<_>>(),
    }});
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
        .await
        .expect("node status");
}

fn daemonset(template_spec: Value, strategy: Value) -> DaemonSet {
    serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "DaemonSet",
        "metadata": {"name": "agent", "namespace": "default"},
        "spec": {
            "selector": {"matchLabels": {"app": "agent"}},
            "updateStrategy": strategy,
            "template": {"metadata": {"labels": {"app": "agent"}}, "spec": template_spec},
        },
    }))
    .expect("daemonset manifest")
}

fn containers(image: &str) -> Value {
    json!([{"name": "agent", "image": image}])
}

fn label<'a>(pod: &'a Pod, key: &str) -> &'a str {
    pod.metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(key))
        .map(String::as_str)
        .unwrap_or("")
}

fn node_of(pod: &Pod) -> String {
    target_node(pod).unwrap_or("").to_string()
}

/// Live pods (not being deleted), sorted by node.
async fn live(client: &kube::Client) -> Vec<Pod> {
    let mut p: Vec<Pod> = pods(client, SELECTOR)
        .await
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .collect();
    p.sort_by_key(node_of);
    p
}

async fn mark_ready(client: &kube::Client, pod: &Pod) {
    let api: Api<Pod> = Api::default_namespaced(client.clone());
    let name = pod.metadata.name.clone().unwrap_or_default();
    let patch = json!({"status": {"phase": "Running",
        "conditions": [{"type": "Ready", "status": "True"}]}});
    match api
        .patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        Ok(_) => {}
        Err(kube::Error::Api(e)) if e.code == 404 => {}
        Err(e) => panic!("marking {name} ready: {e}"),
    }
}

async fn ds_status(server: &ApiServer) -> k8s_openapi::api::apps::v1::DaemonSetStatus {
    server
        .api::<DaemonSet>()
        .get("agent")
        .await
        .expect("get daemonset")
        .status
        .unwrap_or_default()
}

#[tokio::test]
async fn one_pod_per_eligible_node() {
    let server = start().await;
    let client = &server.client;
    add_node(
        client,
        "a",
        json!({"labels": {"disk": "ssd"}}),
        json!({}),
        &[],
    )
    .await;
    add_node(
        client,
        "b",
        json!({"labels": {"disk": "ssd"}}),
        json!({"taints": [{"key": "dedicated", "value": "db", "effect": "NoSchedule"}]}),
        &[],
    )
    .await;
    add_node(client, "c", json!({}), json!({}), &[]).await;
    // Cordoned and unreachable-for-scheduling conditions are tolerated by every DaemonSet.
    add_node(
        client,
        "d",
        json!({"labels": {"disk": "ssd"}}),
        json!({"unschedulable": true,
            "taints": [{"key": "node.kubernetes.io/not-ready", "effect": "NoExecute"}]}),
        &[],
    )
    .await;
    server
        .api::<DaemonSet>()
        .create(
            &PostParams::default(),
            &daemonset(
                json!({"containers": containers("agent:1"), "nodeSelector": {"disk": "ssd"}}),
                json!({"type": "RollingUpdate"}),
            ),
        )
        .await
        .expect("create daemonset");

    let placed = until("pods on a and d", WAIT, || async {
        let p = live(client).await;
        (p.iter().map(node_of).collect::<Vec<_>>() == ["a", "d"]).then_some(p)
    })
    .await;
    let pod = &placed[0];
    assert_eq!(pod.metadata.generate_name.as_deref(), Some("agent-"));
    assert!(
        pod.spec
            .as_ref()
            .and_then(|s| s.node_name.as_ref())
            .is_none()
    );
    let owner = &pod.metadata.owner_references.clone().unwrap_or_default()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str(), owner.controller),
        ("DaemonSet", "agent", Some(true))
    );
    assert!(!label(pod, "controller-revision-hash").is_empty());
    assert_eq!(label(pod, "pod-template-generation"), "1");
    let tolerations = pod
        .spec
        .as_ref()
        .and_then(|s| s.tolerations.clone())
        .unwrap_or_default();
    for key in [
        "not-ready",
        "unreachable",
        "disk-pressure",
        "memory-pressure",
        "pid-pressure",
        "unschedulable",
    ] {
        assert!(
            tolerations
                .iter()
                .any(|t| t.key.as_deref() == Some(&format!("node.kubernetes.io/{key}"))),
            "toleration for {key}"
        );
    }
    let revisions: Api<ControllerRevision> = server.api();
    let revs = revisions
        .list(&ListParams::default())
        .await
        .expect("revisions")
        .items;
    assert_eq!(revs.len(), 1);
    assert_eq!(revs[0].revision, Some(1));
    assert_eq!(
        revs[0].metadata.name.as_deref(),
        Some(format!("agent-{}", label(pod, "controller-revision-hash")).as_str())
    );

    for p in &placed {
        mark_ready(client, p).await;
    }
    let status = until("ready status", WAIT, || async {
        let s = ds_status(&server).await;
        (s.number_ready == 2).then_some(s)
    })
    .await;
    assert_eq!(status.desired_number_scheduled, 2);
    assert_eq!(status.current_number_scheduled, 2);
    assert_eq!(status.number_misscheduled, 0);
    assert_eq!(status.number_available, Some(2));
    assert_eq!(status.number_unavailable, Some(0));
    assert_eq!(status.updated_number_scheduled, Some(2));
    assert_eq!(status.observed_generation, Some(1));

    // A node that starts matching gets a pod; one that stops matching loses it.
    let nodes: Api<Node> = Api::all(client.clone());
    nodes
        .patch(
            "c",
            &PatchParams::default(),
            &Patch::Merge(&json!({"metadata": {"labels": {"disk": "ssd"}}})),
        )
        .await
        .expect("label c");
    nodes
        .patch(
            "a",
            &PatchParams::default(),
            &Patch::Merge(&json!({"metadata": {"labels": {"disk": null}}})),
        )
        .await
        .expect("unlabel a");
    until("pods on c and d", WAIT, || async {
        let p = live(client).await;
        (p.iter().map(node_of).collect::<Vec<_>>() == ["c", "d"]).then_some(())
    })
    .await;
    assert_eq!(events(client, "agent", "SuccessfulCreate").await.len(), 3);
    let deleted = events(client, "agent", "SuccessfulDelete").await;
    assert_eq!(deleted.len(), 1);
    assert!(deleted[0].starts_with("Deleted pod: agent-"), "{deleted:?}");
}

#[tokio::test]
async fn runtime_class_handler_limits_nodes() {
    let server = start().await;
    let client = &server.client;
    add_node(client, "wasm", json!({}), json!({}), &["wasmtime"]).await;
    add_node(client, "plain", json!({}), json!({}), &["runc"]).await;
    server
        .api::<DaemonSet>()
        .create(
            &PostParams::default(),
            &daemonset(
                json!({"containers": containers("agent:1"), "runtimeClassName": "wasmtime"}),
                json!({"type": "RollingUpdate"}),
            ),
        )
        .await
        .expect("create daemonset");
    until("a pod on the wasm node only", WAIT, || async {
        let p = live(client).await;
        (p.iter().map(node_of).collect::<Vec<_>>() == ["wasm"]).then_some(())
    })
    .await;
    let status = until("status", WAIT, || async {
        let s = ds_status(&server).await;
        (s.current_number_scheduled == 1).then_some(s)
    })
    .await;
    assert_eq!(status.desired_number_scheduled, 1);
}

#[tokio::test]
async fn rolling_update_respects_max_unavailable() {
    let server = start().await;
    let client = &server.client;
    for n in ["a", "b", "c"] {
        add_node(client, n, json!({}), json!({}), &[]).await;
    }
    let ds_api = server.api::<DaemonSet>();
    ds_api
        .create(
            &PostParams::default(),
            &daemonset(
                json!({"containers": containers("agent:1")}),
                json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}}),
            ),
        )
        .await
        .expect("create daemonset");
    let first = until("three pods", WAIT, || async {
        let p = live(client).await;
        (p.len() == 3).then_some(p)
    })
    .await;
    for p in &first {
        mark_ready(client, p).await;
    }
    let old_hash = label(&first[0], "controller-revision-hash").to_string();
    until("ready", WAIT, || async {
        (ds_status(&server).await.number_ready == 3).then_some(())
    })
    .await;

    let patch = json!({"spec": {"template": {"spec": {"containers": containers("agent:2")}}}});
    ds_api
        .patch("agent", &PatchParams::default(), &Patch::Strategic(&patch))
        .await
        .expect("update template");

    let mut replaced: Vec<String> = Vec::new();
    for round in 1..=3 {
        // One node at a time: the next old pod goes only once the new one is ready.
        let fresh = until(&format!("new pod {round}"), WAIT, || async {
            let p = live(client).await;
            let new: Vec<Pod> = p
                .iter()
                .filter(|p| label(p, "controller-revision-hash") != old_hash)
                .cloned()
                .collect();
            (new.len() == round).then_some(new)
        })
        .await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let p = live(client).await;
        let old = p
            .iter()
            .filter(|p| label(p, "controller-revision-hash") == old_hash)
            .count();
        assert_eq!(
            old,
            3 - round,
            "round {round}: only one node may be unavailable"
        );
        for pod in fresh {
            if !replaced.contains(&node_of(&pod)) {
                replaced.push(node_of(&pod));
            }
            mark_ready(client, &pod).await;
        }
    }
    replaced.sort();
    assert_eq!(replaced, ["a", "b", "c"]);
    let status = until("rollout complete", WAIT, || async {
        let s = ds_status(&server).await;
        (s.updated_number_scheduled == Some(3) && s.number_available == Some(3)).then_some(s)
    })
    .await;
    assert_eq!(status.observed_generation, Some(2));
    let revisions: Api<ControllerRevision> = server.api();
    let mut numbers: Vec<i64> = revisions
        .list(&ListParams::default())
        .await
        .expect("revisions")
        .items
        .iter()
        .filter_map(|r| r.revision)
        .collect();
    numbers.sort();
    assert_eq!(numbers, [1, 2]);
}

#[tokio::test]
async fn on_delete_waits_for_deletions() {
    let server = start().await;
    let client = &server.client;
    for n in ["a", "b"] {
        add_node(client, n, json!({}), json!({}), &[]).await;
    }
    let ds_api = server.api::<DaemonSet>();
    ds_api
        .create(
            &PostParams::default(),
            &daemonset(
                json!({"containers": containers("agent:1")}),
                json!({"type": "OnDelete"}),
            ),
        )
        .await
        .expect("create daemonset");
    let first = until("two pods", WAIT, || async {
        let p = live(client).await;
        (p.len() == 2).then_some(p)
    })
    .await;
    let old_hash = label(&first[0], "controller-revision-hash").to_string();
    let patch = json!({"spec": {"template": {"spec": {"containers": containers("agent:2")}}}});
    ds_api
        .patch("agent", &PatchParams::default(), &Patch::Strategic(&patch))
        .await
        .expect("update template");
    until("new revision recorded", WAIT, || async {
        (ds_status(&server).await.observed_generation == Some(2)).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let p = live(client).await;
    assert!(
        p.iter()
            .all(|p| label(p, "controller-revision-hash") == old_hash)
    );

    let pod_api: Api<Pod> = server.api();
    let victim = first[0].metadata.name.clone().unwrap_or_default();
    pod_api
        .delete(&victim, &DeleteParams::default())
        .await
        .expect("delete pod");
    let p = until("replacement", WAIT, || async {
        let p = live(client).await;
        (p.len() == 2
            && p.iter()
                .all(|p| p.metadata.name.as_deref() != Some(victim.as_str())))
        .then_some(p)
    })
    .await;
    let updated = p
        .iter()
        .filter(|p| label(p, "controller-revision-hash") != old_hash)
        .count();
    assert_eq!(updated, 1);
}
