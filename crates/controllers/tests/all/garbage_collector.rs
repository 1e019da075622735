//! The garbage collector against a real API server, on ConfigMaps owning ConfigMaps (no
//! other controller is needed for owner references to mean something).

use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, PropagationPolicy};
use serde_json::json;
use wasmkube_controllers::garbage_collector;

use crate::api_only::{ApiServer, until};

const WAIT: Duration = Duration::from_secs(10);

async fn start() -> ApiServer {
    let server = ApiServer::start().await;
    server.spawn(garbage_collector::run);
    server
}

fn owned_by(owner: &ConfigMap, block: bool) -> OwnerReference {
    OwnerReference {
        api_version: "v1".into(),
        kind: "ConfigMap".into(),
        name: owner.metadata.name.clone().unwrap_or_default(),
        uid: owner.metadata.uid.clone().unwrap_or_default(),
        controller: None,
        block_owner_deletion: Some(block),
    }
}

async fn config_map(
    server: &ApiServer,
    name: &str,
    owners: Vec<OwnerReference>,
    finalizers: &[&str],
) -> ConfigMap {
    let cm: ConfigMap = serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "ownerReferences": owners, "finalizers": finalizers},
        "data": {"k": "v"},
    }))
    .expect("config map");
    let api: Api<ConfigMap> = server.api();
    api.create(&PostParams::default(), &cm)
        .await
        .expect("create config map")
}

async fn get(server: &ApiServer, name: &str) -> Option<ConfigMap> {
    let api: Api<ConfigMap> = server.api();
    api.get_opt(name).await.expect("get config map")
}

async fn gone(server: &ApiServer, name: &str) {
    until(&format!("{name} deleted"), WAIT, || async {
        get(server, name).await.is_none().then_some(())
    })
    .await;
}

/// Deletes with `policy`; returns the object as the delete left it (marked for deletion) if
/// it lingers.
async fn delete(server: &ApiServer, name: &str, policy: Option<PropagationPolicy>) -> ConfigMap {
    let api: Api<ConfigMap> = server.api();
    let dp = DeleteParams {
        propagation_policy: policy,
        ..DeleteParams::default()
    };
    api.delete(name, &dp)
        .await
        .expect("delete")
        .left()
        .unwrap_or_default()
}

fn finalizers(cm: &ConfigMap) -> Vec<String> {
    cm.metadata.finalizers.clone().unwrap_or_default()
}

#[tokio::test]
async fn background_deletion_collects_dependents() {
    let server = start().await;
    let owner = config_map(&server, "owner", vec![], &[]).await;
    let child = config_map(&server, "child", vec![owned_by(&owner, false)], &[]).await;
    config_map(&server, "grandchild", vec![owned_by(&child, false)], &[]).await;
    // Give the collector time to see everything; nothing must go while the owner lives.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(get(&server, "child").await.is_some());

    delete(&server, "owner", Some(PropagationPolicy::Background)).await;
    gone(&server, "owner").await;
    gone(&server, "child").await;
    gone(&server, "grandchild").await;
}

#[tokio::test]
async fn dangling_references_are_collected_or_dropped() {
    let server = start().await;
    let alive = config_map(&server, "alive", vec![], &[]).await;
    let ghost = OwnerReference {
        api_version: "v1".into(),
        kind: "ConfigMap".into(),
        name: "ghost".into(),
        uid: "00000000-0000-0000-0000-000000000000".into(),
        controller: None,
        block_owner_deletion: None,
    };
    // Only owner never existed: collected. A living owner beside it: only the reference goes.
    config_map(&server, "orphaned", vec![ghost.clone()], &[]).await;
    config_map(&server, "shared", vec![ghost, owned_by(&alive, false)], &[]).await;
    gone(&server, "orphaned").await;
    let shared = until("the dangling reference dropped", WAIT, || async {
        get(&server, "shared").await.filter(|c| {
            c.metadata
                .owner_references
                .as_ref()
                .is_some_and(|r| r.len() == 1)
        })
    })
    .await;
    let refs = shared.metadata.owner_references.unwrap_or_default();
    assert_eq!(refs[0].name, "alive");
}

#[tokio::test]
async fn foreground_deletion_waits_for_blocking_dependents() {
    let server = start().await;
    let owner = config_map(&server, "owner", vec![], &[]).await;
    // The blocking child cannot go before the test lets it (its own finalizer).
    let child = config_map(
        &server,
        "child",
        vec![owned_by(&owner, true)],
        &["test.wasmkube.dev/hold"],
    )
    .await;
    config_map(&server, "grandchild", vec![owned_by(&child, true)], &[]).await;
    config_map(&server, "bystander", vec![owned_by(&owner, false)], &[]).await;

    let marked = delete(&server, "owner", Some(PropagationPolicy::Foreground)).await;
    assert!(marked.metadata.deletion_timestamp.is_some());
    assert_eq!(finalizers(&marked), ["foregroundDeletion"]);

    // The child is deleted in the foreground too (it has a dependent): its grandchild goes,
    // its foreground finalizer with it, and the child itself waits for the test's finalizer.
    gone(&server, "grandchild").await;
    gone(&server, "bystander").await;
    until(
        "the child being deleted, held by the test only",
        WAIT,
        || async {
            get(&server, "child").await.filter(|c| {
                c.metadata.deletion_timestamp.is_some()
                    && finalizers(c) == ["test.wasmkube.dev/hold"]
            })
        },
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let still = get(&server, "owner")
        .await
        .expect("owner waits for its blocking child");
    assert_eq!(finalizers(&still), ["foregroundDeletion"]);

    let api: Api<ConfigMap> = server.api();
    api.patch(
        "child",
        &PatchParams::default(),
        &Patch::Merge(&json!({"metadata": {"finalizers": null}})),
    )
    .await
    .expect("release the child");
    gone(&server, "child").await;
    gone(&server, "owner").await;
}

#[tokio::test]
async fn orphan_deletion_keeps_dependents() {
    let server = start().await;
    let owner = config_map(&server, "owner", vec![], &[]).await;
    let other = config_map(&server, "other", vec![], &[]).await;
    config_map(&server, "kept", vec![owned_by(&owner, true)], &[]).await;
    config_map(
        &server,
        "co-owned",
        vec![owned_by(&owner, false), owned_by(&other, false)],
        &[],
    )
    .await;

    let marked = delete(&server, "owner", Some(PropagationPolicy::Orphan)).await;
    assert_eq!(finalizers(&marked), ["orphan"]);
    gone(&server, "owner").await;
    let kept = get(&server, "kept").await.expect("dependent kept");
    assert_eq!(kept.metadata.owner_references.unwrap_or_default(), vec![]);
    let co = get(&server, "co-owned").await.expect("co-owned kept");
    let refs = co.metadata.owner_references.unwrap_or_default();
    assert_eq!(refs.len(), 1);
    assert_eq!(refs[0].name, "other");
    // Orphans stay orphans.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(get(&server, "kept").await.is_some());
}
