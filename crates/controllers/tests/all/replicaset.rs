//! The ReplicaSet controller against the real API server.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;

use crate::{Cluster, active_pods, event_messages, eventually, mark_ready};

const WAIT: Duration = Duration::from_secs(20);

fn replica_set(name: &str, app: &str, replicas: i32) -> ReplicaSet {
    serde_json::from_value(json!({
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": app}},
            "template": {
                "metadata": {"labels": {"app": app}},
                "spec": {"containers": [{"name": "main", "image": "example/app:v1"}]},
            },
        },
    }))
    .expect("replica set manifest")
}

fn names(pods: &[Pod]) -> BTreeSet<String> {
    pods.iter()
        .filter_map(|p| p.metadata.name.clone())
        .collect()
}

async fn rs_status(
    api: &Api<ReplicaSet>,
    name: &str,
) -> k8s_openapi::api::apps::v1::ReplicaSetStatus {
    api.get(name)
        .await
        .expect("get replica set")
        .status
        .unwrap_or_default()
}

#[tokio::test]
async fn creates_pods_replaces_deleted_ones_and_reports_status() {
    let cluster = Cluster::start().await;
    let rs_api: Api<ReplicaSet> = cluster.api();
    let pod_api: Api<Pod> = cluster.api();
    let rs = rs_api
        .create(&PostParams::default(), &replica_set("web", "web", 3))
        .await
        .expect("create replica set");
    let uid = rs.metadata.uid.clone().expect("uid");

    let pods = eventually("3 pods", WAIT, || async {
        let pods = active_pods(&cluster.client, "app=web").await;
        (pods.len() == 3).then_some(pods)
    })
    .await;
    for pod in &pods {
        let name = pod.metadata.name.clone().unwrap_or_default();
        let suffix = name
            .strip_prefix("web-")
            .expect("named after the replica set");
        assert_eq!(suffix.len(), 5, "{name}");
        assert!(
            suffix
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        );
        let refs = pod.metadata.owner_references.clone().unwrap_or_default();
        assert_eq!(refs.len(), 1);
        assert_eq!(refs[0].uid, uid);
        assert_eq!(refs[0].kind, "ReplicaSet");
        assert_eq!(refs[0].controller, Some(true));
        assert_eq!(refs[0].block_owner_deletion, Some(true));
    }

    // A deleted pod is replaced.
    let victim = pods[0].metadata.name.clone().expect("name");
    pod_api
        .delete(&victim, &DeleteParams::default())
        .await
        .expect("delete pod");
    let after = eventually("a replacement pod", WAIT, || async {
        let pods = active_pods(&cluster.client, "app=web").await;
        (pods.len() == 3 && !names(&pods).contains(&victim)).then_some(pods)
    })
    .await;

    // The kubelet reports them ready: the status follows.
    for pod in &after {
        mark_ready(&cluster.client, pod.metadata.name.as_deref().unwrap_or("")).await;
    }
    let status = eventually("status of 3 ready pods", WAIT, || async {
        let s = rs_status(&rs_api, "web").await;
        (s.available_replicas == Some(3)).then_some(s)
    })
    .await;
    assert_eq!(status.replicas, 3);
    assert_eq!(status.ready_replicas, Some(3));
    assert_eq!(status.fully_labeled_replicas, Some(3));
    assert_eq!(status.observed_generation, rs.metadata.generation);
    assert_eq!(status.conditions, None);

    let created = eventually("SuccessfulCreate events", WAIT, || async {
        let m = event_messages(&cluster.client, "web", "SuccessfulCreate").await;
        (m.len() >= 4).then_some(m)
    })
    .await;
    assert!(
        created.iter().all(|m| m.starts_with("Created pod: web-")),
        "{created:?}"
    );
    // Nothing more was created than needed (three, then one replacement).
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(active_pods(&cluster.client, "app=web").await.len(), 3);
}

#[tokio::test]
async fn scale_down_deletes_the_not_ready_pod_first() {
    let cluster = Cluster::start().await;
    let rs_api: Api<ReplicaSet> = cluster.api();
    rs_api
        .create(&PostParams::default(), &replica_set("api", "api", 3))
        .await
        .expect("create replica set");
    let pods = eventually("3 pods", WAIT, || async {
        let pods = active_pods(&cluster.client, "app=api").await;
        (pods.len() == 3).then_some(pods)
    })
    .await;
    let mut ready: BTreeSet<String> = BTreeSet::new();
    for pod in &pods[..2] {
        let name = pod.metadata.name.clone().expect("name");
        mark_ready(&cluster.client, &name).await;
        ready.insert(name);
    }
    eventually("2 ready in status", WAIT, || async {
        (rs_status(&rs_api, "api").await.ready_replicas == Some(2)).then_some(())
    })
    .await;

    rs_api
        .patch(
            "api",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 2}})),
        )
        .await
        .expect("scale down");
    let left = eventually("2 pods", WAIT, || async {
        let pods = active_pods(&cluster.client, "app=api").await;
        (pods.len() == 2).then_some(pods)
    })
    .await;
    assert_eq!(names(&left), ready, "the ready pods stay");
    let deleted = eventually("a SuccessfulDelete event", WAIT, || async {
        let m = event_messages(&cluster.client, "api", "SuccessfulDelete").await;
        (!m.is_empty()).then_some(m)
    })
    .await;
    assert!(deleted[0].starts_with("Deleted pod: api-"), "{deleted:?}");
}

#[tokio::test]
async fn adopts_matching_orphans_and_releases_pods_that_stop_matching() {
    let cluster = Cluster::start().await;
    let rs_api: Api<ReplicaSet> = cluster.api();
    let pod_api: Api<Pod> = cluster.api();
    let orphan: Pod = serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "orphan", "labels": {"app": "db"}},
        "spec": {"containers": [{"name": "main", "image": "example/app:v1"}]},
    }))
    .expect("pod manifest");
    pod_api
        .create(&PostParams::default(), &orphan)
        .await
        .expect("create orphan");
    let rs = rs_api
        .create(&PostParams::default(), &replica_set("db", "db", 2))
        .await
        .expect("create replica set");
    let uid = rs.metadata.uid.clone().expect("uid");

    let pods = eventually("the orphan adopted plus one new pod", WAIT, || async {
        let pods = active_pods(&cluster.client, "app=db").await;
        let owned = pods
            .iter()
            .filter(|p| {
                wasmkube_controllers::owner::controller_of(&p.metadata)
                    .is_some_and(|r| r.uid == uid)
            })
            .count();
        (pods.len() == 2 && owned == 2).then_some(pods)
    })
    .await;
    assert!(names(&pods).contains("orphan"));

    // Relabelled out of the selector: released (no longer owned), and replaced.
    pod_api
        .patch(
            "orphan",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"app": "elsewhere"}}})),
        )
        .await
        .expect("relabel");
    eventually("the pod released", WAIT, || async {
        let pod = pod_api.get("orphan").await.expect("get pod");
        wasmkube_controllers::owner::controller_of(&pod.metadata)
            .is_none()
            .then_some(())
    })
    .await;
    eventually("a replacement", WAIT, || async {
        (active_pods(&cluster.client, "app=db").await.len() == 2).then_some(())
    })
    .await;
}

#[tokio::test]
async fn min_ready_seconds_delays_availability() {
    let cluster = Cluster::start().await;
    let rs_api: Api<ReplicaSet> = cluster.api();
    let mut rs = replica_set("slow", "slow", 1);
    rs.spec.min_ready_seconds = Some(2);
    rs_api
        .create(&PostParams::default(), &rs)
        .await
        .expect("create replica set");
    let pod = eventually("a pod", WAIT, || async {
        active_pods(&cluster.client, "app=slow")
            .await
            .into_iter()
            .next()
    })
    .await;
    mark_ready(&cluster.client, pod.metadata.name.as_deref().unwrap_or("")).await;
    let status = eventually("ready in status", WAIT, || async {
        let s = rs_status(&rs_api, "slow").await;
        (s.ready_replicas == Some(1)).then_some(s)
    })
    .await;
    assert_eq!(
        status.available_replicas, None,
        "not available before minReadySeconds"
    );
    eventually("available after minReadySeconds", WAIT, || async {
        (rs_status(&rs_api, "slow").await.available_replicas == Some(1)).then_some(())
    })
    .await;
}

/// A thousand replicas: created concurrently (slow-start batches), exactly a thousand.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_replicas_fill_quickly_without_over_creating() {
    let cluster = Cluster::start().await;
    let rs_api: Api<ReplicaSet> = cluster.api();
    let started = Instant::now();
    rs_api
        .create(&PostParams::default(), &replica_set("big", "big", 1000))
        .await
        .expect("create replica set");
    // Polling the status (cheap) rather than listing a thousand pods keeps the test from
    // slowing down what it measures.
    eventually(
        "status of 1000 replicas",
        Duration::from_secs(120),
        || async { (rs_status(&rs_api, "big").await.replicas >= 1000).then_some(()) },
    )
    .await;
    let took = started.elapsed();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(active_pods(&cluster.client, "app=big").await.len(), 1000);
    eprintln!("1000 pods created in {took:?}");
}
