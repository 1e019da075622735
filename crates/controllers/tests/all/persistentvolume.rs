//! The PersistentVolume controller against the real API server (with its bootstrap objects,
//! so the default `local-path` class exists), the test playing the scheduler and the node's
//! provisioner where they would act.

use std::time::Duration;

use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim, Pod};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

use crate::api_only::{ApiServer, events, until};

const WAIT: Duration = Duration::from_secs(20);

async fn start() -> ApiServer {
    let server = ApiServer::start().await;
    server.spawn(wasmkube_controllers::persistentvolume::run);
    server
}

fn claim(name: &str, spec: Value) -> PersistentVolumeClaim {
    let mut s = json!({"accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": "100Mi"}}});
    if let (Some(dst), Value::Object(extra)) = (s.as_object_mut(), spec) {
        dst.extend(extra);
    }
    serde_json::from_value(json!({"metadata": {"name": name, "namespace": "default"}, "spec": s}))
        .expect("claim manifest")
}

fn volume(name: &str, size: &str, spec: Value) -> PersistentVolume {
    let mut s = json!({"capacity": {"storage": size}, "accessModes": ["ReadWriteOnce"],
        "storageClassName": "manual", "persistentVolumeReclaimPolicy": "Retain",
        "hostPath": {"path": "/tmp"}});
    if let (Some(dst), Value::Object(extra)) = (s.as_object_mut(), spec) {
        dst.extend(extra);
    }
    serde_json::from_value(json!({"metadata": {"name": name}, "spec": s})).expect("pv manifest")
}

async fn claim_phase(api: &Api<PersistentVolumeClaim>, name: &str) -> Option<String> {
    api.get(name).await.ok()?.status?.phase
}

async fn volume_phase(api: &Api<PersistentVolume>, name: &str) -> Option<String> {
    api.get_opt(name).await.ok()??.status?.phase
}

#[tokio::test]
async fn static_volumes_bind_by_fit_and_are_released_on_claim_deletion() {
    let server = start().await;
    let claims: Api<PersistentVolumeClaim> = server.api();
    let volumes: Api<PersistentVolume> = Api::all(server.client.clone());
    let pp = PostParams::default();
    for pv in [
        volume("small", "50Mi", json!({})),
        volume("right", "1Gi", json!({})),
        volume("big", "10Gi", json!({})),
        volume("other-class", "1Gi", json!({"storageClassName": "fast"})),
    ] {
        volumes.create(&pp, &pv).await.expect("create pv");
    }
    until("volumes Available", WAIT, || async {
        (volume_phase(&volumes, "right").await.as_deref() == Some("Available")).then_some(())
    })
    .await;
    claims
        .create(&pp, &claim("data", json!({"storageClassName": "manual"})))
        .await
        .expect("create claim");
    let bound = until("claim bound", WAIT, || async {
        let c = claims.get("data").await.ok()?;
        (c.status.as_ref()?.phase.as_deref() == Some("Bound")).then_some(c)
    })
    .await;
    // The smallest volume that holds the request, not the first or the biggest.
    assert_eq!(
        bound.spec.as_ref().and_then(|s| s.volume_name.as_deref()),
        Some("right")
    );
    let status = bound.status.clone().unwrap_or_default();
    assert_eq!(
        status.capacity.and_then(|c| c.get("storage").cloned()),
        Some(k8s_openapi::apimachinery::pkg::api::resource::Quantity(
            "1Gi".into()
        ))
    );
    let finalizers = bound.metadata.finalizers.clone().unwrap_or_default();
    assert_eq!(finalizers, ["kubernetes.io/pvc-protection"]);
    let pv = until("volume bound", WAIT, || async {
        let v = volumes.get("right").await.ok()?;
        (v.status.as_ref()?.phase.as_deref() == Some("Bound")).then_some(v)
    })
    .await;
    let claim_ref = pv.spec.and_then(|s| s.claim_ref).expect("claimRef");
    assert_eq!(claim_ref.name.as_deref(), Some("data"));
    assert_eq!(claim_ref.uid, bound.metadata.uid);

    // A claim in use by a pod that has not finished waits for it.
    let pods: Api<Pod> = server.api();
    let pod: Pod = serde_json::from_value(json!({"metadata": {"name": "user"},
        "spec": {"containers": [{"name": "c", "image": "x"}],
            "volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "data"}}]}}))
    .expect("pod");
    pods.create(&pp, &pod).await.expect("create pod");
    claims
        .delete("data", &DeleteParams::default())
        .await
        .expect("delete claim");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let terminating = claims.get("data").await.expect("claim still there");
    assert!(terminating.metadata.deletion_timestamp.is_some());
    pods.delete("user", &DeleteParams::default())
        .await
        .expect("delete pod");
    until("claim gone", WAIT, || async {
        claims.get_opt("data").await.ok()?.is_none().then_some(())
    })
    .await;
    // Retain: the volume stays, Released, and is not handed to the next claim.
    until("volume released", WAIT, || async {
        (volume_phase(&volumes, "right").await.as_deref() == Some("Released")).then_some(())
    })
    .await;
    claims
        .create(&pp, &claim("again", json!({"storageClassName": "manual"})))
        .await
        .expect("create second claim");
    let again = until("second claim bound", WAIT, || async {
        let c = claims.get("again").await.ok()?;
        (c.status.as_ref()?.phase.as_deref() == Some("Bound")).then_some(c)
    })
    .await;
    assert_eq!(
        again.spec.and_then(|s| s.volume_name).as_deref(),
        Some("big")
    );
}

#[tokio::test]
async fn claims_get_the_default_class_and_wait_for_their_first_consumer() {
    let server = start().await;
    let claims: Api<PersistentVolumeClaim> = server.api();
    let volumes: Api<PersistentVolume> = Api::all(server.client.clone());
    let pp = PostParams::default();
    claims
        .create(&pp, &claim("data", json!({})))
        .await
        .expect("create claim");
    let c = until("default class", WAIT, || async {
        let c = claims.get("data").await.ok()?;
        c.spec.as_ref()?.storage_class_name.is_some().then_some(c)
    })
    .await;
    assert_eq!(
        c.spec.and_then(|s| s.storage_class_name).as_deref(),
        Some("local-path")
    );
    until("pending, waiting for a consumer", WAIT, || async {
        let reasons = events(&server.client, "data", "WaitForFirstConsumer").await;
        (!reasons.is_empty() && claim_phase(&claims, "data").await.as_deref() == Some("Pending"))
            .then_some(())
    })
    .await;
    // The scheduler picks a node; the claim is handed to the local-path provisioner.
    claims
        .patch(
            "data",
            &PatchParams::default(),
            &Patch::Merge(&json!({"metadata": {"annotations": {
                "volume.kubernetes.io/selected-node": "n1"}}})),
        )
        .await
        .expect("select node");
    let c = until("handed to the provisioner", WAIT, || async {
        let c = claims.get("data").await.ok()?;
        let a = c.metadata.annotations.clone()?;
        (a.get("volume.kubernetes.io/storage-provisioner")
            .map(String::as_str)
            == Some("wasmkube.io/local-path"))
        .then_some(c)
    })
    .await;
    // The provisioner's volume, pre-bound to the claim, is bound.
    let pv = volume(
        "pvc-made",
        "100Mi",
        json!({"storageClassName": "local-path", "persistentVolumeReclaimPolicy": "Delete",
            "claimRef": {"namespace": "default", "name": "data", "uid": c.metadata.uid}}),
    );
    volumes.create(&pp, &pv).await.expect("provisioned pv");
    until("bound to the provisioned volume", WAIT, || async {
        let c = claims.get("data").await.ok()?;
        (c.status.as_ref()?.phase.as_deref() == Some("Bound")
            && c.spec.as_ref()?.volume_name.as_deref() == Some("pvc-made"))
        .then_some(())
    })
    .await;
    // Delete reclaim: the volume goes with its claim.
    claims
        .delete("data", &DeleteParams::default())
        .await
        .expect("delete claim");
    until("volume deleted", WAIT, || async {
        volumes
            .get_opt("pvc-made")
            .await
            .ok()?
            .is_none()
            .then_some(())
    })
    .await;
}
