//! A StatefulSet pod's stable identity: its name `<set>-<ordinal>`, the labels that carry
//! name and ordinal, its hostname and subdomain, and its PersistentVolumeClaims
//! `<template>-<set>-<ordinal>`, as Kubernetes' `stateful_set_utils.go` builds them. Also who
//! owns a claim under the set's `persistentVolumeClaimRetentionPolicy`.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{
    PersistentVolumeClaim, PersistentVolumeClaimVolumeSource, Pod, PodTemplateSpec, Volume,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::Resource;

use crate::history::REVISION_HASH_LABEL;
use crate::owner;

/// The label holding the pod's own name (Services can select one replica by it).
pub const POD_NAME_LABEL: &str = "statefulset.kubernetes.io/pod-name";
/// The label holding the pod's ordinal.
pub const POD_INDEX_LABEL: &str = "apps.kubernetes.io/pod-index";

/// `<set>-<ordinal>`.
pub fn pod_name(set: &str, ordinal: i32) -> String {
    format!("{set}-{ordinal}")
}

/// `<template>-<set>-<ordinal>`.
pub fn claim_name(template: &str, set: &str, ordinal: i32) -> String {
    format!("{template}-{set}-{ordinal}")
}

/// Splits `<parent>-<ordinal>`; `None` for a name of another shape.
pub fn parent_and_ordinal(name: &str) -> Option<(&str, i32)> {
    let (parent, ordinal) = name.rsplit_once('-')?;
    if ordinal.is_empty() || !ordinal.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((parent, ordinal.parse().ok()?))
}

/// The ordinal of a pod of `set`, `None` if the pod's name does not make it one.
pub fn ordinal_of(set: &StatefulSet, pod: &Pod) -> Option<i32> {
    let (parent, ordinal) = parent_and_ordinal(pod.metadata.name.as_deref()?)?;
    (Some(parent) == set.metadata.name.as_deref()).then_some(ordinal)
}

/// The first ordinal (`spec.ordinals.start`, 0 by default).
pub fn start_ordinal(set: &StatefulSet) -> i32 {
    set.spec
        .ordinals
        .as_ref()
        .and_then(|o| o.start)
        .unwrap_or(0)
        .max(0)
}

pub fn replicas(set: &StatefulSet) -> i32 {
    set.spec.replicas.unwrap_or(1).max(0)
}

/// Whether `ordinal` is one the set should run.
pub fn in_range(set: &StatefulSet, ordinal: i32) -> bool {
    let start = start_ordinal(set);
    ordinal >= start && ordinal < start.saturating_add(replicas(set))
}

fn label<'a>(pod: &'a Pod, key: &str) -> Option<&'a str> {
    pod.metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(key))
        .map(String::as_str)
}

/// The revision (ControllerRevision name) a pod was made from.
pub fn revision_of(pod: &Pod) -> &str {
    label(pod, REVISION_HASH_LABEL).unwrap_or("")
}

/// The claims a pod of `set` at `ordinal` uses: one per `volumeClaimTemplates` entry, with
/// the selector's labels added so the set can find them again.
pub fn claims_for(set: &StatefulSet, ordinal: i32) -> Vec<PersistentVolumeClaim> {
    let set_name = set.metadata.name.as_deref().unwrap_or("");
    let selector_labels = set.spec.selector.match_labels.clone().unwrap_or_default();
    set.spec
        .volume_claim_templates
        .iter()
        .flatten()
        .map(|template| {
            let mut claim = template.clone();
            let template_name = template.metadata.name.as_deref().unwrap_or("");
            let mut labels = claim.metadata.labels.take().unwrap_or_default();
            labels.extend(selector_labels.clone());
            claim.metadata = ObjectMeta {
                name: Some(claim_name(template_name, set_name, ordinal)),
                namespace: set.metadata.namespace.clone(),
                labels: Some(labels),
                annotations: claim.metadata.annotations.take(),
                ..ObjectMeta::default()
            };
            claim.status = None;
            claim
        })
        .collect()
}

/// Points the pod's volumes named after claim templates at its claims (adding those
/// missing), as `updateStorage` does.
fn set_storage(set: &StatefulSet, pod: &mut Pod, ordinal: i32) {
    let set_name = set.metadata.name.as_deref().unwrap_or("");
    let Some(spec) = pod.spec.as_mut() else {
        return;
    };
    let volumes = spec.volumes.get_or_insert_with(Vec::new);
    for template in set.spec.volume_claim_templates.iter().flatten() {
        let template_name = template.metadata.name.clone().unwrap_or_default();
        let source = PersistentVolumeClaimVolumeSource {
            claim_name: claim_name(&template_name, set_name, ordinal),
            read_only: None,
        };
        match volumes.iter_mut().find(|v| v.name == template_name) {
            Some(v) => {
                *v = Volume {
                    name: template_name,
                    persistent_volume_claim: Some(source),
                    ..Volume::default()
                }
            }
            None => volumes.push(Volume {
                name: template_name,
                persistent_volume_claim: Some(source),
                ..Volume::default()
            }),
        }
    }
}

/// Whether every claim template's volume of the pod refers to its claim.
pub fn storage_matches(set: &StatefulSet, pod: &Pod, ordinal: i32) -> bool {
    let set_name = set.metadata.name.as_deref().unwrap_or("");
    let volumes = pod
        .spec
        .as_ref()
        .and_then(|s| s.volumes.as_deref())
        .unwrap_or(&[]);
    set.spec.volume_claim_templates.iter().flatten().all(|t| {
        let template_name = t.metadata.name.as_deref().unwrap_or("");
        volumes.iter().any(|v| {
            v.name == template_name
                && v.persistent_volume_claim
                    .as_ref()
                    .map(|c| c.claim_name.as_str())
                    == Some(claim_name(template_name, set_name, ordinal).as_str())
        })
    })
}

/// Whether the pod's name and identity labels are the ones of its ordinal.
pub fn identity_matches(set: &StatefulSet, pod: &Pod, ordinal: i32) -> bool {
    let name = pod_name(set.metadata.name.as_deref().unwrap_or(""), ordinal);
    pod.metadata.name.as_deref() == Some(name.as_str())
        && pod.metadata.namespace == set.metadata.namespace
        && label(pod, POD_NAME_LABEL) == Some(name.as_str())
        && label(pod, POD_INDEX_LABEL) == Some(ordinal.to_string().as_str())
}

/// The identity labels a pod at `ordinal` must carry.
pub fn identity_labels(set: &StatefulSet, ordinal: i32) -> BTreeMap<String, String> {
    let name = pod_name(set.metadata.name.as_deref().unwrap_or(""), ordinal);
    BTreeMap::from([
        (POD_NAME_LABEL.to_string(), name),
        (POD_INDEX_LABEL.to_string(), ordinal.to_string()),
    ])
}

/// The pod at `ordinal`, made from `template` (the one of the revision it belongs to) and
/// labelled with `revision`.
pub fn new_pod(set: &StatefulSet, template: &PodTemplateSpec, revision: &str, ordinal: i32) -> Pod {
    let set_name = set.metadata.name.clone().unwrap_or_default();
    let name = pod_name(&set_name, ordinal);
    let meta = template.metadata.clone().unwrap_or_default();
    let mut labels = meta.labels.unwrap_or_default();
    labels.extend(identity_labels(set, ordinal));
    if !revision.is_empty() {
        labels.insert(REVISION_HASH_LABEL.to_string(), revision.to_string());
    }
    let mut spec = template.spec.clone().unwrap_or_default();
    spec.hostname = Some(name.clone());
    spec.subdomain = set.spec.service_name.clone().filter(|s| !s.is_empty());
    let mut pod = Pod {
        metadata: ObjectMeta {
            name: Some(name),
            namespace: set.metadata.namespace.clone(),
            labels: Some(labels),
            annotations: meta.annotations,
            finalizers: meta.finalizers,
            owner_references: Some(vec![owner::controller_ref(set)]),
            ..ObjectMeta::default()
        },
        spec: Some(spec),
        status: None,
    };
    set_storage(set, &mut pod, ordinal);
    pod
}

/// `persistentVolumeClaimRetentionPolicy`: what happens to claims when the set is deleted
/// and when it is scaled down.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retention {
    pub delete_when_deleted: bool,
    pub delete_when_scaled: bool,
}

pub fn retention(set: &StatefulSet) -> Retention {
    let policy = set.spec.persistent_volume_claim_retention_policy.as_ref();
    let delete = |v: Option<&String>| v.is_some_and(|v| v == "Delete");
    Retention {
        delete_when_deleted: delete(policy.and_then(|p| p.when_deleted.as_ref())),
        delete_when_scaled: delete(policy.and_then(|p| p.when_scaled.as_ref())),
    }
}

/// Which owner references a claim of a pod should have, as `updateClaimOwnerRefForSetAndPod`
/// decides: the set owns it when it goes with a deleted set; the pod owns it when it goes with
/// a scaled-down pod and the pod is out of range. The garbage collector then deletes the
/// claim with its owner. Returns (owned by set, owned by pod).
pub fn claim_owners(retention: Retention, pod_in_range: bool) -> (bool, bool) {
    match (retention.delete_when_scaled, retention.delete_when_deleted) {
        (false, false) => (false, false),
        (false, true) => (true, false),
        (true, false) => (false, !pod_in_range),
        (true, true) => (pod_in_range, !pod_in_range),
    }
}

/// A plain (non-controller) owner reference, as the StatefulSet controller sets on claims.
pub fn owner_ref<K: Resource<DynamicType = ()>>(obj: &K) -> OwnerReference {
    OwnerReference {
        api_version: K::api_version(&()).to_string(),
        kind: K::kind(&()).to_string(),
        name: obj.meta().name.clone().unwrap_or_default(),
        uid: obj.meta().uid.clone().unwrap_or_default(),
        controller: None,
        block_owner_deletion: None,
    }
}

/// The claim's owner references made to follow the retention policy; `None` if they already
/// do.
pub fn claim_owner_refs(
    claim: &PersistentVolumeClaim,
    set: &StatefulSet,
    pod: &Pod,
    retention: Retention,
    pod_in_range: bool,
) -> Option<Vec<OwnerReference>> {
    let (by_set, by_pod) = claim_owners(retention, pod_in_range);
    let current = claim.metadata.owner_references.clone().unwrap_or_default();
    let mut next = current.clone();
    for (want, r) in [(by_set, owner_ref(set)), (by_pod, owner_ref(pod))] {
        if r.uid.is_empty() {
            continue;
        }
        let has = next.iter().any(|o| o.uid == r.uid);
        if want && !has {
            next.push(r);
        } else if !want && has {
            next.retain(|o| o.uid != r.uid);
        }
    }
    (next != current).then_some(next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn set() -> StatefulSet {
        serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "default", "uid": "set-uid"},
            "spec": {
                "replicas": 3,
                "serviceName": "nginx",
                "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "c", "image": "i"}],
                        "volumes": [{"name": "www", "emptyDir": {}}]}},
                "volumeClaimTemplates": [{"metadata": {"name": "www"},
                    "spec": {"accessModes": ["ReadWriteOnce"],
                        "resources": {"requests": {"storage": "1Gi"}}}}],
            },
        }))
        .expect("set")
    }

    #[test]
    fn names_and_ordinals() {
        assert_eq!(parent_and_ordinal("web-12"), Some(("web", 12)));
        assert_eq!(parent_and_ordinal("my-web-0"), Some(("my-web", 0)));
        assert_eq!(parent_and_ordinal("web-x"), None);
        assert_eq!(parent_and_ordinal("web-"), None);
        assert_eq!(parent_and_ordinal("web"), None);
        assert!(in_range(&set(), 2));
        assert!(!in_range(&set(), 3));
    }

    #[test]
    fn pods_have_identity_and_storage() {
        let s = set();
        let pod = new_pod(&s, &s.spec.template, "web-abc", 1);
        assert_eq!(pod.metadata.name.as_deref(), Some("web-1"));
        let labels = pod.metadata.labels.clone().unwrap_or_default();
        assert_eq!(
            labels.get(POD_NAME_LABEL).map(String::as_str),
            Some("web-1")
        );
        assert_eq!(labels.get(POD_INDEX_LABEL).map(String::as_str), Some("1"));
        assert_eq!(
            labels.get("controller-revision-hash").map(String::as_str),
            Some("web-abc")
        );
        let spec = pod.spec.clone().unwrap_or_default();
        assert_eq!(spec.hostname.as_deref(), Some("web-1"));
        assert_eq!(spec.subdomain.as_deref(), Some("nginx"));
        let volumes = spec.volumes.unwrap_or_default();
        assert_eq!(volumes.len(), 1);
        assert_eq!(
            volumes[0]
                .persistent_volume_claim
                .as_ref()
                .map(|c| c.claim_name.as_str()),
            Some("www-web-1")
        );
        assert!(identity_matches(&s, &pod, 1));
        assert!(storage_matches(&s, &pod, 1));
        assert!(!storage_matches(&s, &pod, 2));
        let claims = claims_for(&s, 1);
        assert_eq!(claims[0].metadata.name.as_deref(), Some("www-web-1"));
        assert_eq!(
            claims[0]
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get("app"))
                .map(String::as_str),
            Some("web")
        );
    }

    #[test]
    fn retention_owners() {
        let keep = Retention {
            delete_when_deleted: false,
            delete_when_scaled: false,
        };
        let both = Retention {
            delete_when_deleted: true,
            delete_when_scaled: true,
        };
        assert_eq!(claim_owners(keep, true), (false, false));
        assert_eq!(claim_owners(both, true), (true, false));
        assert_eq!(claim_owners(both, false), (false, true));
        let s = set();
        let mut pod = new_pod(&s, &s.spec.template, "r", 4);
        pod.metadata.uid = Some("pod-uid".into());
        let claim = claims_for(&s, 4).remove(0);
        let refs = claim_owner_refs(&claim, &s, &pod, both, false).unwrap_or_default();
        assert_eq!(refs.len(), 1);
        assert_eq!(refs[0].uid, "pod-uid");
        assert_eq!(claim_owner_refs(&claim, &s, &pod, keep, false), None);
    }
}
