//! The StatefulSet controller against the real API server, the test playing the kubelet
//! (pods are never bound, so deletions complete at once, as for a pod no node runs).

use std::time::Duration;

use k8s_openapi::api::apps::v1::{StatefulSet, StatefulSetStatus};
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use tokio::task::JoinHandle;

use crate::api_only::{ApiServer, events, pods, until};

const WAIT: Duration = Duration::from_secs(20);
const SELECTOR: &str = "app=web";

async fn start() -> ApiServer {
    let server = ApiServer::start().await;
    server.spawn(wasmkube_controllers::statefulset::run);
    server
}

fn stateful_set(spec: Value) -> StatefulSet {
    let mut s = json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {
            "replicas": 3,
            "serviceName": "nginx",
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "web:1"}]}},
        },
    });
    if let (Some(dst), Value::Object(extra)) = (s["spec"].as_object_mut(), spec) {
        dst.extend(extra);
    }
    serde_json::from_value(s).expect("statefulset manifest")
}

fn names(pods: &[Pod]) -> Vec<String> {
    pods.iter()
        .filter_map(|p| p.metadata.name.clone())
        .collect()
}

fn label<'a>(pod: &'a Pod, key: &str) -> &'a str {
    pod.metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(key))
        .map(String::as_str)
        .unwrap_or("")
}

async fn mark_ready(client: &kube::Client, name: &str) {
    let api: Api<Pod> = Api::default_namespaced(client.clone());
    let patch = json!({"status": {"phase": "Running",
        "conditions": [{"type": "Ready", "status": "True"}]}});
    match api
        .patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        Ok(_) => {}
        Err(kube::Error::Api(e)) if e.code == 404 => {}
        Err(e) => panic!("marking {name} ready: {e}"),
    }
}

/// Marks every pod of the set ready as soon as it appears; stops when dropped.
struct AutoKubelet(JoinHandle<()>);

impl AutoKubelet {
    fn start(client: &kube::Client) -> AutoKubelet {
        let client = client.clone();
        AutoKubelet(tokio::spawn(async move {
            loop {
                for pod in pods(&client, SELECTOR).await {
                    if !wasmkube_controllers::pods::is_ready(&pod) {
                        mark_ready(&client, pod.metadata.name.as_deref().unwrap_or("")).await;
                    }
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }))
    }
}

impl Drop for AutoKubelet {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn status(server: &ApiServer) -> StatefulSetStatus {
    server
        .api::<StatefulSet>()
        .get("web")
        .await
        .expect("get statefulset")
        .status
        .unwrap_or_default()
}

#[tokio::test]
async fn ordered_ready_creates_and_removes_one_at_a_time() {
    let server = start().await;
    let client = &server.client;
    server
        .api::<StatefulSet>()
        .create(
            &PostParams::default(),
            &stateful_set(
                json!({"volumeClaimTemplates": [{"metadata": {"name": "www"},
                "spec": {"accessModes": ["ReadWriteOnce"],
                    "resources": {"requests": {"storage": "1Gi"}}}}]}),
            ),
        )
        .await
        .expect("create statefulset");

    for ordinal in 0..3 {
        let name = format!("web-{ordinal}");
        let p = until(&name, WAIT, || async {
            let p = pods(client, SELECTOR).await;
            (p.len() == ordinal + 1).then_some(p)
        })
        .await;
        // The next ordinal waits for this one to be Running and Ready.
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(pods(client, SELECTOR).await.len(), ordinal + 1);
        let pod = p.last().expect("pod");
        assert_eq!(pod.metadata.name.as_deref(), Some(name.as_str()));
        assert_eq!(label(pod, "statefulset.kubernetes.io/pod-name"), name);
        assert_eq!(
            label(pod, "apps.kubernetes.io/pod-index"),
            ordinal.to_string()
        );
        assert!(label(pod, "controller-revision-hash").starts_with("web-"));
        let spec = pod.spec.clone().unwrap_or_default();
        assert_eq!(spec.hostname.as_deref(), Some(name.as_str()));
        assert_eq!(spec.subdomain.as_deref(), Some("nginx"));
        let claim = spec
            .volumes
            .unwrap_or_default()
            .into_iter()
            .find(|v| v.name == "www")
            .and_then(|v| v.persistent_volume_claim)
            .map(|c| c.claim_name);
        assert_eq!(claim, Some(format!("www-{name}")));
        mark_ready(client, &name).await;
    }
    let claims: Api<PersistentVolumeClaim> = server.api();
    let claim_names = |list: Vec<PersistentVolumeClaim>| -> Vec<String> {
        let mut n: Vec<String> = list.into_iter().filter_map(|c| c.metadata.name).collect();
        n.sort();
        n
    };
    assert_eq!(
        claim_names(
            claims
                .list(&ListParams::default())
                .await
                .expect("claims")
                .items
        ),
        ["www-web-0", "www-web-1", "www-web-2"]
    );
    let s = until("ready status", WAIT, || async {
        let s = status(&server).await;
        (s.ready_replicas == Some(3)).then_some(s)
    })
    .await;
    assert_eq!(s.replicas, 3);
    assert_eq!(s.current_replicas, Some(3));
    assert_eq!(s.updated_replicas, Some(3));
    assert_eq!(s.available_replicas, Some(3));
    assert_eq!(s.observed_generation, Some(1));
    assert!(s.current_revision.is_some());
    assert_eq!(s.current_revision, s.update_revision);
    let created = events(client, "web", "SuccessfulCreate").await;
    assert!(created.contains(&"create Pod web-0 in StatefulSet web successful".to_string()));
    assert!(
        created
            .contains(&"create Claim www-web-0 Pod web-0 in StatefulSet web success".to_string())
    );

    server
        .api::<StatefulSet>()
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"replicas": 1}})),
        )
        .await
        .expect("scale down");
    until("scaled to one", WAIT, || async {
        (names(&pods(client, SELECTOR).await) == ["web-0"]).then_some(())
    })
    .await;
    // Highest ordinal first; the claims stay (retention policy Retain).
    let deleted = until("two delete events", WAIT, || async {
        let d = events(client, "web", "SuccessfulDelete").await;
        (d.len() == 2).then_some(d)
    })
    .await;
    assert_eq!(
        deleted,
        [
            "delete Pod web-2 in StatefulSet web successful",
            "delete Pod web-1 in StatefulSet web successful"
        ]
    );
    assert_eq!(
        claims
            .list(&ListParams::default())
            .await
            .expect("claims")
            .items
            .len(),
        3
    );
}

#[tokio::test]
async fn parallel_creates_every_pod_at_once() {
    let server = start().await;
    let client = &server.client;
    server
        .api::<StatefulSet>()
        .create(
            &PostParams::default(),
            &stateful_set(json!({"podManagementPolicy": "Parallel"})),
        )
        .await
        .expect("create statefulset");
    until("three pods without any ready", WAIT, || async {
        (names(&pods(client, SELECTOR).await) == ["web-0", "web-1", "web-2"]).then_some(())
    })
    .await;
}

#[tokio::test]
async fn rolling_update_stops_at_the_partition() {
    let server = start().await;
    let client = &server.client;
    let _kubelet = AutoKubelet::start(client);
    let api = server.api::<StatefulSet>();
    api.create(
        &PostParams::default(),
        &stateful_set(json!({"updateStrategy": {"type": "RollingUpdate",
            "rollingUpdate": {"partition": 1}}})),
    )
    .await
    .expect("create statefulset");
    let first = until("three ready replicas", WAIT, || async {
        let s = status(&server).await;
        (s.ready_replicas == Some(3)).then_some(s)
    })
    .await;
    let old = first.current_revision.clone().unwrap_or_default();

    let patch = json!({"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "web:2"}]}}}});
    api.patch("web", &PatchParams::default(), &Patch::Strategic(&patch))
        .await
        .expect("update template");
    let s = until("two updated replicas", WAIT, || async {
        let s = status(&server).await;
        (s.updated_replicas == Some(2) && s.ready_replicas == Some(3)).then_some(s)
    })
    .await;
    let new = s.update_revision.clone().unwrap_or_default();
    assert_ne!(new, old);
    assert_eq!(s.current_revision.as_deref(), Some(old.as_str()));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let p = pods(client, SELECTOR).await;
    let revisions: Vec<&str> = p
        .iter()
        .map(|p| label(p, "controller-revision-hash"))
        .collect();
    assert_eq!(revisions, [old.as_str(), new.as_str(), new.as_str()]);

    // Lowering the partition finishes the rollout, and the update revision becomes current.
    api.patch(
        "web",
        &PatchParams::default(),
        &Patch::Merge(&json!({"spec": {"updateStrategy": {"rollingUpdate": {"partition": 0}}}})),
    )
    .await
    .expect("lower partition");
    let s = until("rollout complete", WAIT, || async {
        let s = status(&server).await;
        (s.current_revision.as_deref() == Some(new.as_str())).then_some(s)
    })
    .await;
    assert_eq!(s.updated_replicas, Some(3));
    assert_eq!(s.current_replicas, Some(3));
    let deleted = events(client, "web", "SuccessfulDelete").await;
    assert_eq!(
        deleted,
        [
            "delete Pod web-2 in StatefulSet web successful",
            "delete Pod web-1 in StatefulSet web successful",
            "delete Pod web-0 in StatefulSet web successful"
        ]
    );
}
