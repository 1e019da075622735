//! The Deployment controller (with the ReplicaSet controller under it) against the real API
//! server, the test playing the kubelet.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentCondition, DeploymentStatus, ReplicaSet};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use wasmkube_controllers::deployment::util::{
    DESIRED_REPLICAS, MAX_REPLICAS, POD_TEMPLATE_HASH, REVISION, REVISION_HISTORY,
};

use crate::{Cluster, Kubelet, active_pods, event_messages, eventually};

const WAIT: Duration = Duration::from_secs(30);

fn deployment(name: &str, replicas: i32, strategy: Value) -> Deployment {
    serde_json::from_value(json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "strategy": strategy,
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "main", "image": "example/app:v1"}]},
            },
        },
    }))
    .expect("deployment manifest")
}

fn annotation(
    meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    key: &str,
) -> Option<String> {
    meta.annotations.as_ref()?.get(key).cloned()
}

fn condition(status: &DeploymentStatus, type_: &str) -> Option<DeploymentCondition> {
    status
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_.as_deref() == Some(type_))
        .cloned()
}

/// What `kubectl rollout status` checks before it reports success.
fn rollout_complete(d: &Deployment) -> bool {
    let Some(s) = d.status.as_ref() else {
        return false;
    };
    let want = d.spec.replicas.unwrap_or(1);
    s.observed_generation >= d.metadata.generation
        && s.updated_replicas.unwrap_or(0) >= want
        && s.replicas.unwrap_or(0) <= s.updated_replicas.unwrap_or(0)
        && s.available_replicas.unwrap_or(0) >= s.updated_replicas.unwrap_or(0)
        && condition(s, "Progressing")
            .and_then(|c| c.reason)
            .as_deref()
            != Some("ProgressDeadlineExceeded")
}

async fn wait_complete(api: &Api<Deployment>, name: &str) -> Deployment {
    eventually(&format!("deployment {name} rolled out"), WAIT, || async {
        let d = api.get(name).await.expect("get deployment");
        rollout_complete(&d).then_some(d)
    })
    .await
}

async fn replica_sets(client: &kube::Client, app: &str) -> Vec<ReplicaSet> {
    let api: Api<ReplicaSet> = Api::default_namespaced(client.clone());
    api.list(&ListParams::default().labels(&format!("app={app}")))
        .await
        .expect("list replica sets")
        .items
}

async fn set_image(api: &Api<Deployment>, name: &str, image: &str) {
    let patch =
        json!({"spec": {"template": {"spec": {"containers": [{"name": "main", "image": image}]}}}});
    api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("change the template");
}

fn image_of(rs: &ReplicaSet) -> String {
    rs.spec
        .template
        .as_ref()
        .and_then(|t| t.spec.as_ref())
        .and_then(|s| s.containers.first())
        .and_then(|c| c.image.clone())
        .unwrap_or_default()
}

#[tokio::test]
async fn creates_its_replica_set_and_reports_a_complete_rollout() {
    let cluster = Cluster::start().await;
    let api: Api<Deployment> = cluster.api();
    let _kubelet = Kubelet::start(&cluster.client, "app=web", 10, Duration::from_millis(50));
    api.create(&PostParams::default(), &deployment("web", 3, json!({})))
        .await
        .expect("create deployment");

    let d = wait_complete(&api, "web").await;
    let status = d.status.clone().unwrap_or_default();
    assert_eq!(status.replicas, Some(3));
    assert_eq!(status.updated_replicas, Some(3));
    assert_eq!(status.ready_replicas, Some(3));
    assert_eq!(status.available_replicas, Some(3));
    assert_eq!(status.unavailable_replicas, None);
    let available = condition(&status, "Available").expect("Available condition");
    assert_eq!(available.status.as_deref(), Some("True"));
    assert_eq!(
        available.reason.as_deref(),
        Some("MinimumReplicasAvailable")
    );
    let progressing = eventually("Progressing: NewReplicaSetAvailable", WAIT, || async {
        let d = api.get("web").await.expect("get deployment");
        condition(&d.status.unwrap_or_default(), "Progressing")
            .filter(|c| c.reason.as_deref() == Some("NewReplicaSetAvailable"))
    })
    .await;
    assert_eq!(progressing.status.as_deref(), Some("True"));
    assert_eq!(annotation(&d.metadata, REVISION).as_deref(), Some("1"));

    let rss = replica_sets(&cluster.client, "web").await;
    assert_eq!(rss.len(), 1);
    let rs = &rss[0];
    let rs_name = rs.metadata.name.clone().unwrap_or_default();
    let hash = rs
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(POD_TEMPLATE_HASH))
        .cloned()
        .expect("pod-template-hash label");
    assert_eq!(rs_name, format!("web-{hash}"));
    assert_eq!(
        rs.spec
            .selector
            .match_labels
            .as_ref()
            .and_then(|l| l.get(POD_TEMPLATE_HASH)),
        Some(&hash)
    );
    let template_labels = rs
        .spec
        .template
        .as_ref()
        .and_then(|t| t.metadata.as_ref())
        .and_then(|m| m.labels.clone());
    assert_eq!(
        template_labels.and_then(|l| l.get(POD_TEMPLATE_HASH).cloned()),
        Some(hash.clone())
    );
    assert_eq!(annotation(&rs.metadata, REVISION).as_deref(), Some("1"));
    assert_eq!(
        annotation(&rs.metadata, DESIRED_REPLICAS).as_deref(),
        Some("3")
    );
    // 25% surge of 3, rounded up.
    assert_eq!(annotation(&rs.metadata, MAX_REPLICAS).as_deref(), Some("4"));
    let pods = active_pods(&cluster.client, &format!("{POD_TEMPLATE_HASH}={hash}")).await;
    assert_eq!(pods.len(), 3);

    let scaled = event_messages(&cluster.client, "web", "ScalingReplicaSet").await;
    assert!(
        scaled.contains(&format!("Scaled up replica set {rs_name} from 0 to 3")),
        "{scaled:?}"
    );
}

/// A template change rolls out to a new ReplicaSet; at every observation there are never more
/// than replicas + maxSurge replicas and never fewer than replicas - maxUnavailable available
/// pods. Then a rollback (what `kubectl rollout undo` does) reuses the first ReplicaSet.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolling_update_keeps_availability_and_undo_reuses_the_old_replica_set() {
    let cluster = Cluster::start().await;
    let api: Api<Deployment> = cluster.api();
    let rolling =
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 1}});
    // A slow kubelet, so the rollout takes observable steps.
    let _kubelet = Kubelet::start(&cluster.client, "app=roll", 1, Duration::from_millis(150));
    api.create(&PostParams::default(), &deployment("roll", 4, rolling))
        .await
        .expect("create deployment");
    wait_complete(&api, "roll").await;
    let first = replica_sets(&cluster.client, "roll").await;
    assert_eq!(first.len(), 1);
    let first_name = first[0].metadata.name.clone().unwrap_or_default();

    // Watch the invariants from here on.
    let stop = Arc::new(AtomicBool::new(false));
    let monitor = {
        let client = cluster.client.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut observations = 0usize;
            while !stop.load(Ordering::SeqCst) {
                let ready = active_pods(&client, "app=roll")
                    .await
                    .iter()
                    .filter(|p| wasmkube_controllers::pods::is_ready(p))
                    .count();
                assert!(ready >= 3, "only {ready} available pods during the rollout");
                let total: i32 = replica_sets(&client, "roll")
                    .await
                    .iter()
                    .map(|rs| rs.spec.replicas.unwrap_or(0))
                    .sum();
                assert!(total <= 5, "{total} replicas wanted during the rollout");
                observations += 1;
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            observations
        })
    };

    set_image(&api, "roll", "example/app:v2").await;
    let d = wait_complete(&api, "roll").await;
    assert_eq!(annotation(&d.metadata, REVISION).as_deref(), Some("2"));
    let rss = replica_sets(&cluster.client, "roll").await;
    assert_eq!(rss.len(), 2);
    let new = rss
        .iter()
        .find(|rs| image_of(rs) == "example/app:v2")
        .expect("new replica set");
    let old = rss
        .iter()
        .find(|rs| image_of(rs) == "example/app:v1")
        .expect("old replica set");
    assert_eq!(new.spec.replicas, Some(4));
    assert_eq!(old.spec.replicas, Some(0));
    assert_eq!(annotation(&new.metadata, REVISION).as_deref(), Some("2"));
    let down = event_messages(&cluster.client, "roll", "ScalingReplicaSet").await;
    assert!(
        down.iter()
            .any(|m| m.starts_with(&format!("Scaled down replica set {first_name} from 4 to"))),
        "{down:?}"
    );

    // `kubectl rollout undo`: the template of the previous ReplicaSet, without its hash label,
    // written back into the Deployment.
    let mut template = old.spec.template.clone().expect("template");
    if let Some(labels) = template.metadata.as_mut().and_then(|m| m.labels.as_mut()) {
        labels.remove(POD_TEMPLATE_HASH);
    }
    let mut current = api.get("roll").await.expect("get deployment");
    current.spec.template = template;
    api.replace("roll", &PostParams::default(), &current)
        .await
        .expect("roll back");
    let d = wait_complete(&api, "roll").await;
    stop.store(true, Ordering::SeqCst);
    let observations = monitor.await.expect("the invariants held");
    assert!(observations > 10, "only {observations} observations");

    assert_eq!(annotation(&d.metadata, REVISION).as_deref(), Some("3"));
    let rss = replica_sets(&cluster.client, "roll").await;
    assert_eq!(
        rss.len(),
        2,
        "the old replica set was reused, not a third made"
    );
    let reused = rss
        .iter()
        .find(|rs| rs.metadata.name.as_deref() == Some(first_name.as_str()))
        .expect("first replica set");
    assert_eq!(reused.spec.replicas, Some(4));
    assert_eq!(annotation(&reused.metadata, REVISION).as_deref(), Some("3"));
    assert_eq!(
        annotation(&reused.metadata, REVISION_HISTORY).as_deref(),
        Some("1")
    );
}

/// Recreate: the old pods are all gone before any new one starts.
#[tokio::test]
async fn recreate_never_runs_old_and_new_pods_together() {
    let cluster = Cluster::start().await;
    let api: Api<Deployment> = cluster.api();
    let _kubelet = Kubelet::start(&cluster.client, "app=batch", 10, Duration::from_millis(50));
    api.create(
        &PostParams::default(),
        &deployment("batch", 3, json!({"type": "Recreate"})),
    )
    .await
    .expect("create deployment");
    wait_complete(&api, "batch").await;

    let stop = Arc::new(AtomicBool::new(false));
    let monitor = {
        let client = cluster.client.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                let hashes: std::collections::BTreeSet<String> = active_pods(&client, "app=batch")
                    .await
                    .iter()
                    .filter_map(|p| p.metadata.labels.as_ref()?.get(POD_TEMPLATE_HASH).cloned())
                    .collect();
                assert!(
                    hashes.len() <= 1,
                    "pods of two templates at once: {hashes:?}"
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
    };
    set_image(&api, "batch", "example/app:v2").await;
    eventually("the new template rolled out", WAIT, || async {
        let d = api.get("batch").await.expect("get deployment");
        (rollout_complete(&d) && annotation(&d.metadata, REVISION).as_deref() == Some("2"))
            .then_some(())
    })
    .await;
    stop.store(true, Ordering::SeqCst);
    monitor.await.expect("old and new pods never overlapped");
    let pods = active_pods(&cluster.client, "app=batch").await;
    assert_eq!(pods.len(), 3);
}

/// A paused Deployment does not roll out; resumed, it does.
#[tokio::test]
async fn paused_deployment_waits_until_resumed() {
    let cluster = Cluster::start().await;
    let api: Api<Deployment> = cluster.api();
    let _kubelet = Kubelet::start(&cluster.client, "app=hold", 10, Duration::from_millis(50));
    api.create(&PostParams::default(), &deployment("hold", 2, json!({})))
        .await
        .expect("create deployment");
    wait_complete(&api, "hold").await;
    api.patch(
        "hold",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"paused": true}})),
    )
    .await
    .expect("pause");
    set_image(&api, "hold", "example/app:v2").await;
    let reason = eventually("Progressing: DeploymentPaused", WAIT, || async {
        let d = api.get("hold").await.expect("get deployment");
        condition(&d.status.unwrap_or_default(), "Progressing")
            .and_then(|c| c.reason)
            .filter(|r| r == "DeploymentPaused")
    })
    .await;
    assert_eq!(reason, "DeploymentPaused");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        replica_sets(&cluster.client, "hold").await.len(),
        1,
        "no rollout while paused"
    );

    api.patch(
        "hold",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"paused": false}})),
    )
    .await
    .expect("resume");
    eventually("the rollout after resuming", WAIT, || async {
        let d = api.get("hold").await.expect("get deployment");
        (rollout_complete(&d) && annotation(&d.metadata, REVISION).as_deref() == Some("2"))
            .then_some(())
    })
    .await;
}

/// Pods that never become ready: after progressDeadlineSeconds the rollout is reported as
/// failed, the way `kubectl rollout status` detects it.
#[tokio::test]
async fn stalled_rollout_exceeds_its_progress_deadline() {
    let cluster = Cluster::start().await;
    let api: Api<Deployment> = cluster.api();
    let mut d = deployment("stuck", 2, json!({}));
    d.spec.progress_deadline_seconds = Some(1);
    api.create(&PostParams::default(), &d)
        .await
        .expect("create deployment");
    let cond = eventually("ProgressDeadlineExceeded", WAIT, || async {
        let d = api.get("stuck").await.expect("get deployment");
        condition(&d.status.unwrap_or_default(), "Progressing")
            .filter(|c| c.reason.as_deref() == Some("ProgressDeadlineExceeded"))
    })
    .await;
    assert_eq!(cond.status.as_deref(), Some("False"));
    let d = api.get("stuck").await.expect("get deployment");
    let available = condition(&d.status.unwrap_or_default(), "Available").expect("Available");
    assert_eq!(available.status.as_deref(), Some("False"));
    assert_eq!(
        available.reason.as_deref(),
        Some("MinimumReplicasUnavailable")
    );
}

/// Old, empty ReplicaSets beyond revisionHistoryLimit are deleted.
#[tokio::test]
async fn revision_history_limit_cleans_up_old_replica_sets() {
    let cluster = Cluster::start().await;
    let api: Api<Deployment> = cluster.api();
    let _kubelet = Kubelet::start(&cluster.client, "app=hist", 10, Duration::from_millis(50));
    let mut d = deployment("hist", 1, json!({}));
    d.spec.revision_history_limit = Some(1);
    api.create(&PostParams::default(), &d)
        .await
        .expect("create deployment");
    for (i, image) in ["v1", "v2", "v3", "v4"].iter().enumerate() {
        if i > 0 {
            set_image(&api, "hist", &format!("example/app:{image}")).await;
        }
        eventually(&format!("revision {}", i + 1), WAIT, || async {
            let d = api.get("hist").await.expect("get deployment");
            (rollout_complete(&d) && annotation(&d.metadata, REVISION) == Some((i + 1).to_string()))
                .then_some(())
        })
        .await;
    }
    let rss = eventually("one old replica set kept", WAIT, || async {
        let rss = replica_sets(&cluster.client, "hist").await;
        (rss.len() == 2).then_some(rss)
    })
    .await;
    let mut images: Vec<String> = rss.iter().map(image_of).collect();
    images.sort();
    assert_eq!(images, vec!["example/app:v3", "example/app:v4"]);
}

/// A resize while idle goes straight to the one active ReplicaSet and its annotations.
#[tokio::test]
async fn scaling_resizes_the_active_replica_set() {
    let cluster = Cluster::start().await;
    let api: Api<Deployment> = cluster.api();
    let _kubelet = Kubelet::start(&cluster.client, "app=grow", 10, Duration::from_millis(50));
    api.create(&PostParams::default(), &deployment("grow", 2, json!({})))
        .await
        .expect("create deployment");
    wait_complete(&api, "grow").await;
    api.patch(
        "grow",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": 5}})),
    )
    .await
    .expect("scale up");
    let d = wait_complete(&api, "grow").await;
    assert_eq!(d.status.and_then(|s| s.available_replicas), Some(5));
    let rss = replica_sets(&cluster.client, "grow").await;
    assert_eq!(rss.len(), 1);
    assert_eq!(
        annotation(&rss[0].metadata, DESIRED_REPLICAS).as_deref(),
        Some("5")
    );
    assert_eq!(active_pods(&cluster.client, "app=grow").await.len(), 5);
}
