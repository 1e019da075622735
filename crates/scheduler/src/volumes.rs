//! PersistentVolume binding rules, shared by the scheduler's VolumeBinding filter and the
//! PersistentVolume controller (which depends on this crate), so both agree on which volume
//! may serve which claim on which node.
//!
//! As in Kubernetes: a claim is served by a volume of the same storage class and volume mode,
//! with every access mode the claim asks for, at least the capacity it requests, labels that
//! its selector matches, and no claim of its own (or a `claimRef` naming this very claim, the
//! "pre-bound" case). Of the volumes that qualify, a pre-bound one wins, then the smallest.

use k8s_openapi::api::core::v1::{Node, PersistentVolume, PersistentVolumeClaim, Pod};
use k8s_openapi::api::storage::v1::StorageClass;
use wasmkube_api::quantity::Quantity;
use wasmkube_api::selector::LabelSelector;

use crate::cache::Cache;
use crate::filters::{Filtered, Unfit, node_selector_term_matches};

/// kube-scheduler's VolumeBinding reasons.
pub const REASON_VOLUME_NODE_CONFLICT: &str = "node(s) had volume node affinity conflict";
pub const REASON_NO_VOLUME: &str = "node(s) didn't find available persistent volumes to bind";
pub const REASON_UNBOUND_IMMEDIATE: &str = "pod has unbound immediate PersistentVolumeClaims";

pub use wasmkube_api::storage::*;

/// The claim's `spec.storageClassName`, `""` when unset.
pub fn claim_class(claim: &PersistentVolumeClaim) -> &str {
    claim
        .spec
        .as_ref()
        .and_then(|s| s.storage_class_name.as_deref())
        .unwrap_or("")
}

/// The volume's `spec.storageClassName`, `""` when unset.
pub fn volume_class(pv: &PersistentVolume) -> &str {
    pv.spec
        .as_ref()
        .and_then(|s| s.storage_class_name.as_deref())
        .unwrap_or("")
}

/// The volume the claim is bound to (`spec.volumeName`), if any.
pub fn bound_volume(claim: &PersistentVolumeClaim) -> Option<&str> {
    claim
        .spec
        .as_ref()
        .and_then(|s| s.volume_name.as_deref())
        .filter(|n| !n.is_empty())
}

/// Whether the class binds only once a pod uses the claim.
pub fn waits_for_first_consumer(class: &StorageClass) -> bool {
    class.volume_binding_mode.as_deref() == Some("WaitForFirstConsumer")
}

/// Whether the class is marked as the cluster's default.
pub fn is_default_class(class: &StorageClass) -> bool {
    class.metadata.annotations.as_ref().is_some_and(|a| {
        [DEFAULT_CLASS, DEFAULT_CLASS_BETA]
            .iter()
            .any(|k| a.get(*k).is_some_and(|v| v == "true"))
    })
}

/// The cluster's default class: of several marked default, the newest (then the last by
/// name), as Kubernetes picks it.
pub fn default_class<'a>(
    classes: impl IntoIterator<Item = &'a StorageClass>,
) -> Option<&'a StorageClass> {
    classes
        .into_iter()
        .filter(|c| is_default_class(c))
        .max_by_key(|c| {
            (
                c.metadata.creation_timestamp.as_ref().map(|t| t.0),
                c.metadata.name.as_deref(),
            )
        })
}

/// The claim's requested storage in bytes (0 when it names none).
pub fn requested_bytes(claim: &PersistentVolumeClaim) -> i128 {
    claim
        .spec
        .as_ref()
        .and_then(|s| s.resources.as_ref())
        .and_then(|r| r.requests.as_ref())
        .and_then(|r| r.get("storage"))
        .and_then(|q| Quantity::parse(&q.0).ok())
        .and_then(|q| q.value())
        .unwrap_or(0)
}

/// The volume's capacity in bytes (0 when it has none).
pub fn capacity_bytes(pv: &PersistentVolume) -> i128 {
    pv.spec
        .as_ref()
        .and_then(|s| s.capacity.as_ref())
        .and_then(|c| c.get("storage"))
        .and_then(|q| Quantity::parse(&q.0).ok())
        .and_then(|q| q.value())
        .unwrap_or(0)
}

fn volume_mode(mode: Option<&String>) -> &str {
    mode.map(String::as_str).unwrap_or("Filesystem")
}

/// Whether the volume's `claimRef` names this claim (by namespace and name, and by uid when
/// the reference has one).
pub fn refers_to(pv: &PersistentVolume, claim: &PersistentVolumeClaim) -> bool {
    let Some(r) = pv.spec.as_ref().and_then(|s| s.claim_ref.as_ref()) else {
        return false;
    };
    r.namespace == claim.metadata.namespace
        && r.name == claim.metadata.name
        && (r.uid.as_deref().is_none_or(str::is_empty) || r.uid == claim.metadata.uid)
}

/// Whether `pv` can serve `claim` (ignoring nodes).
pub fn volume_fits_claim(pv: &PersistentVolume, claim: &PersistentVolumeClaim) -> bool {
    let (Some(pv_spec), Some(spec)) = (pv.spec.as_ref(), claim.spec.as_ref()) else {
        return false;
    };
    if pv.metadata.deletion_timestamp.is_some() {
        return false;
    }
    let free = pv_spec.claim_ref.is_none();
    if !free && !refers_to(pv, claim) {
        return false;
    }
    // A volume already released by an earlier claim is not handed to a new one.
    if free
        && pv
            .status
            .as_ref()
            .and_then(|s| s.phase.as_deref())
            .is_some_and(|p| p == "Released" || p == "Failed")
    {
        return false;
    }
    if volume_class(pv) != claim_class(claim) {
        return false;
    }
    if volume_mode(pv_spec.volume_mode.as_ref()) != volume_mode(spec.volume_mode.as_ref()) {
        return false;
    }
    let offered = pv_spec.access_modes.as_deref().unwrap_or(&[]);
    if !spec
        .access_modes
        .iter()
        .flatten()
        .all(|m| offered.contains(m))
    {
        return false;
    }
    if capacity_bytes(pv) < requested_bytes(claim) {
        return false;
    }
    // A claim without a selector takes any volume.
    match spec.selector.as_ref().map(LabelSelector::try_from) {
        None => true,
        Some(Ok(sel)) => sel.matches_opt(pv.metadata.labels.as_ref()),
        Some(Err(_)) => false,
    }
}

/// Whether the volume may be used on `node`: its required node affinity, if it has one.
pub fn volume_on_node(pv: &PersistentVolume, node: &Node) -> bool {
    pv.spec
        .as_ref()
        .and_then(|s| s.node_affinity.as_ref())
        .and_then(|a| a.required.as_ref())
        .is_none_or(|r| {
            r.node_selector_terms
                .iter()
                .any(|t| node_selector_term_matches(t, node))
        })
}

/// The best volume for `claim` among `volumes` (on `node`, when given): a pre-bound one, else
/// the smallest that fits.
pub fn best_volume<'a>(
    volumes: impl IntoIterator<Item = &'a PersistentVolume>,
    claim: &PersistentVolumeClaim,
    node: Option<&Node>,
) -> Option<&'a PersistentVolume> {
    volumes
        .into_iter()
        .filter(|pv| volume_fits_claim(pv, claim))
        .filter(|pv| node.is_none_or(|n| volume_on_node(pv, n)))
        .min_by_key(|pv| {
            (
                !refers_to(pv, claim),
                capacity_bytes(pv),
                pv.metadata.name.clone(),
            )
        })
}

/// Names of the claims a pod's volumes use.
pub fn pod_claims(pod: &Pod) -> impl Iterator<Item = &str> {
    pod.spec
        .iter()
        .flat_map(|s| s.volumes.iter().flatten())
        .filter_map(|v| v.persistent_volume_claim.as_ref())
        .map(|c| c.claim_name.as_str())
}

/// What a pod's claims require of a node, worked out once per scheduling cycle (the
/// VolumeBinding plugin's PreFilter).
#[derive(Debug, Default)]
pub struct PodVolumes {
    /// Volumes of claims already bound: their node affinity must hold.
    pub bound: Vec<PersistentVolume>,
    /// Unbound claims of WaitForFirstConsumer classes: the node must have a free volume
    /// for each, or the class must be able to provision one there.
    pub delayed: Vec<(PersistentVolumeClaim, Option<StorageClass>)>,
}

impl PodVolumes {
    /// Reads the pod's claims from the cache; `Err` is a reason that rules out every node.
    pub fn compute(pod: &Pod, cache: &Cache) -> Result<PodVolumes, String> {
        let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
        let mut out = PodVolumes::default();
        for name in pod_claims(pod) {
            let claim = cache
                .claims
                .get(ns, name)
                .ok_or_else(|| format!("persistentvolumeclaim \"{name}\" not found"))?;
            if claim.metadata.deletion_timestamp.is_some() {
                return Err(format!("persistentvolumeclaim \"{name}\" is being deleted"));
            }
            if let Some(volume) = bound_volume(claim) {
                let pv = cache.volumes.get("", volume).ok_or_else(|| {
                    "node(s) unavailable due to one or more pvc(s) bound to non-existent pv(s)"
                        .to_string()
                })?;
                out.bound.push(pv.clone());
                continue;
            }
            // A claim with no class yet gets the default one from the PersistentVolume
            // controller any moment now; judge it by that class rather than back off.
            let unset = claim
                .spec
                .as_ref()
                .is_none_or(|s| s.storage_class_name.is_none());
            let class = if unset {
                default_class(cache.storage_classes.iter()).cloned()
            } else {
                cache.storage_classes.get("", claim_class(claim)).cloned()
            };
            if !class.as_ref().is_some_and(waits_for_first_consumer) {
                return Err(REASON_UNBOUND_IMMEDIATE.to_string());
            }
            out.delayed.push((claim.clone(), class));
        }
        Ok(out)
    }

    /// The VolumeBinding filter for one node.
    pub fn filter(&self, node: &Node, cache: &Cache) -> Filtered {
        if !self.bound.iter().all(|pv| volume_on_node(pv, node)) {
            return Err(Unfit(vec![REASON_VOLUME_NODE_CONFLICT.to_string()]));
        }
        for (claim, class) in &self.delayed {
            let static_volume = best_volume(cache.volumes.iter(), claim, Some(node)).is_some();
            // A class without a provisioner (`kubernetes.io/no-provisioner`) only has the
            // volumes an administrator made.
            let provisions = class
                .as_ref()
                .is_some_and(|c| c.provisioner != "kubernetes.io/no-provisioner");
            if !static_volume && !provisions {
                return Err(Unfit(vec![REASON_NO_VOLUME.to_string()]));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn pv(v: Value) -> PersistentVolume {
        serde_json::from_value(v).expect("pv")
    }

    fn claim(v: Value) -> PersistentVolumeClaim {
        serde_json::from_value(v).expect("claim")
    }

    fn volume(name: &str, size: &str, extra: Value) -> PersistentVolume {
        let mut v = json!({"metadata": {"name": name, "labels": {"tier": "fast"}},
            "spec": {"capacity": {"storage": size}, "accessModes": ["ReadWriteOnce"],
                "storageClassName": "manual", "local": {"path": "/x"},
                "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                    {"key": "kubernetes.io/hostname", "operator": "In", "values": ["n1"]}]}]}}}});
        if let (Some(spec), Some(extra)) = (v["spec"].as_object_mut(), extra.as_object()) {
            spec.extend(extra.clone());
        }
        pv(v)
    }

    fn node(name: &str) -> Node {
        serde_json::from_value(json!({"metadata": {"name": name,
            "labels": {"kubernetes.io/hostname": name}}}))
        .expect("node")
    }

    fn data_claim(size: &str) -> PersistentVolumeClaim {
        claim(
            json!({"metadata": {"name": "data", "namespace": "default", "uid": "u1"},
            "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "manual",
                "resources": {"requests": {"storage": size}}}}),
        )
    }

    #[test]
    fn smallest_fitting_volume_wins() {
        let vols = [
            volume("big", "10Gi", json!({})),
            volume("small", "1Gi", json!({})),
            volume("tiny", "10Mi", json!({})),
        ];
        let c = data_claim("100Mi");
        let best = best_volume(&vols, &c, None).expect("a volume fits");
        assert_eq!(best.metadata.name.as_deref(), Some("small"));
        assert!(best_volume(&vols, &data_claim("20Gi"), None).is_none());
    }

    #[test]
    fn class_modes_selector_and_claims_must_agree() {
        let c = data_claim("1Mi");
        assert!(!volume_fits_claim(
            &volume("a", "1Gi", json!({"storageClassName": "other"})),
            &c
        ));
        assert!(!volume_fits_claim(
            &volume("a", "1Gi", json!({"accessModes": ["ReadOnlyMany"]})),
            &c
        ));
        assert!(!volume_fits_claim(
            &volume("a", "1Gi", json!({"volumeMode": "Block"})),
            &c
        ));
        let taken = volume(
            "a",
            "1Gi",
            json!({"claimRef": {"namespace": "default", "name": "other"}}),
        );
        assert!(!volume_fits_claim(&taken, &c));
        let pre_bound = volume(
            "b",
            "5Gi",
            json!({"claimRef": {"namespace": "default", "name": "data"}}),
        );
        let vols = [volume("a", "1Gi", json!({})), pre_bound];
        assert_eq!(
            best_volume(&vols, &c, None).and_then(|v| v.metadata.name.as_deref()),
            Some("b")
        );
        let mut picky = data_claim("1Mi");
        if let Some(spec) = picky.spec.as_mut() {
            spec.selector = Some(
                serde_json::from_value(json!({"matchLabels": {"tier": "slow"}})).expect("sel"),
            );
        }
        assert!(!volume_fits_claim(&volume("a", "1Gi", json!({})), &picky));
    }

    #[test]
    fn node_affinity_limits_where_a_volume_is_used() {
        let v = volume("a", "1Gi", json!({}));
        assert!(volume_on_node(&v, &node("n1")));
        assert!(!volume_on_node(&v, &node("n2")));
        let c = data_claim("1Mi");
        assert!(best_volume([&v], &c, Some(&node("n2"))).is_none());
        assert!(best_volume([&v], &c, Some(&node("n1"))).is_some());
    }

    fn pod_using(claims: &[&str]) -> Pod {
        let volumes: Vec<Value> = claims
            .iter()
            .map(|c| json!({"name": c, "persistentVolumeClaim": {"claimName": c}}))
            .collect();
        serde_json::from_value(json!({"metadata": {"name": "p", "namespace": "default"},
            "spec": {"containers": [{"name": "c"}], "volumes": volumes}}))
        .expect("pod")
    }

    #[test]
    fn volume_binding_filter() {
        let mut cache = Cache::new();
        let err = PodVolumes::compute(&pod_using(&["nope"]), &cache).expect_err("missing");
        assert_eq!(err, "persistentvolumeclaim \"nope\" not found");

        cache.claims.upsert(claim(
            json!({"metadata": {"name": "bound", "namespace": "default"},
            "spec": {"volumeName": "a"}}),
        ));
        cache.volumes.upsert(volume("a", "1Gi", json!({})));
        let state = PodVolumes::compute(&pod_using(&["bound"]), &cache).expect("bound claim");
        assert!(state.filter(&node("n1"), &cache).is_ok());
        let Err(Unfit(reasons)) = state.filter(&node("n2"), &cache) else {
            panic!("n2 is not where the volume is");
        };
        assert_eq!(reasons, [REASON_VOLUME_NODE_CONFLICT]);

        cache.claims.upsert(claim(
            json!({"metadata": {"name": "now", "namespace": "default"},
            "spec": {"storageClassName": "manual"}}),
        ));
        let err = PodVolumes::compute(&pod_using(&["now"]), &cache).expect_err("immediate");
        assert_eq!(err, REASON_UNBOUND_IMMEDIATE);

        cache.storage_classes.upsert(
            serde_json::from_value(json!({"metadata": {"name": "local-path"},
                "provisioner": LOCAL_PATH_PROVISIONER, "volumeBindingMode": "WaitForFirstConsumer"}))
            .expect("class"),
        );
        cache.storage_classes.upsert(
            serde_json::from_value(json!({"metadata": {"name": "manual-wait"},
                "provisioner": "kubernetes.io/no-provisioner",
                "volumeBindingMode": "WaitForFirstConsumer"}))
            .expect("class"),
        );
        cache.claims.upsert(claim(
            json!({"metadata": {"name": "later", "namespace": "default"},
            "spec": {"storageClassName": "local-path", "accessModes": ["ReadWriteOnce"]}}),
        ));
        let state = PodVolumes::compute(&pod_using(&["later"]), &cache).expect("delayed");
        assert!(
            state.filter(&node("n2"), &cache).is_ok(),
            "provisioned anywhere"
        );

        cache.claims.upsert(claim(
            json!({"metadata": {"name": "static", "namespace": "default"},
            "spec": {"storageClassName": "manual-wait", "accessModes": ["ReadWriteOnce"]}}),
        ));
        cache.volumes.upsert(volume(
            "s",
            "1Gi",
            json!({"storageClassName": "manual-wait"}),
        ));
        let state = PodVolumes::compute(&pod_using(&["static"]), &cache).expect("delayed");
        assert!(
            state.filter(&node("n1"), &cache).is_ok(),
            "a free volume on n1"
        );
        let Err(Unfit(reasons)) = state.filter(&node("n2"), &cache) else {
            panic!("no volume on n2 and no provisioner");
        };
        assert_eq!(reasons, [REASON_NO_VOLUME]);
    }
}
