//! Built-in admission: the per-kind rules Kubernetes applies between validation and storage
//! that are not about one object's shape (graceful pod deletion, namespace termination, the
//! in-use protection finalizers of claims and volumes).

use serde_json::{Value, json};
use wasmkube_api::registry::ResourceInfo;

use crate::services::ServiceAllocator;

/// Default grace period of a pod that does not name one.
const DEFAULT_POD_GRACE: i64 = 30;

/// Kubernetes' DefaultTolerationSeconds (`--default-not-ready-toleration-seconds`).
pub const DEFAULT_TOLERATION_SECONDS: i64 = 300;

#[derive(Debug)]
pub struct Admission {
    /// How long pods tolerate a not-ready or unreachable node by default.
    pub default_toleration_seconds: i64,
    /// The suffix `metadata.generateName` gets (Kubernetes' names.SimpleNameGenerator: five
    /// random characters). Replaceable so that tests can make generated names clash.
    pub name_suffix: fn() -> String,
    /// Cluster IPs and node ports of Services (`--service-cluster-ip-range`,
    /// `--service-node-port-range`).
    pub services: ServiceAllocator,
}

impl Default for Admission {
    fn default() -> Self {
        Admission {
            default_toleration_seconds: DEFAULT_TOLERATION_SECONDS,
            name_suffix: crate::objects::random_suffix,
            services: ServiceAllocator::default(),
        }
    }
}

impl Admission {
    pub fn new() -> Self {
        Self::default()
    }

    /// Mutations on create that depend on server configuration.
    pub fn on_create(&self, info: &ResourceInfo, obj: &mut Value) {
        if info.group.is_empty() && info.kind == "Pod" {
            wasmkube_api::defaults::default_toleration_seconds(
                obj,
                self.default_toleration_seconds,
            );
        }
        // StorageObjectInUseProtection: the PersistentVolume controller lifts these once no
        // pod uses the claim, or no claim is bound to the volume.
        let protection = match (info.group, info.kind) {
            ("", "PersistentVolumeClaim") => Some(wasmkube_api::storage::PVC_PROTECTION),
            ("", "PersistentVolume") => Some(wasmkube_api::storage::PV_PROTECTION),
            _ => None,
        };
        if let Some(finalizer) = protection
            && let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut)
        {
            let list = meta.entry("finalizers").or_insert_with(|| json!([]));
            if let Some(list) = list.as_array_mut()
                && !list.iter().any(|f| f == finalizer)
            {
                list.push(json!(finalizer));
            }
        }
    }

    /// How long a deleted object lingers for a graceful stop, or `None` to delete at once.
    /// Only pods that a node runs stop gracefully: an unscheduled or finished pod has nothing
    /// to stop, exactly as in Kubernetes.
    pub fn grace_period(
        &self,
        info: &ResourceInfo,
        obj: &Value,
        requested: Option<i64>,
    ) -> Option<i64> {
        if info.kind == "Namespace" {
            // Namespaces always wait for their contents to go (spec.finalizers).
            let pending = obj
                .pointer("/spec/finalizers")
                .and_then(Value::as_array)
                .is_some_and(|f| !f.is_empty());
            return pending.then_some(0);
        }
        if info.kind != "Pod" {
            return None;
        }
        let bound = obj
            .pointer("/spec/nodeName")
            .and_then(Value::as_str)
            .is_some_and(|n| !n.is_empty());
        let finished = matches!(
            obj.pointer("/status/phase").and_then(Value::as_str),
            Some("Succeeded" | "Failed")
        );
        if !bound || finished {
            return None;
        }
        let grace = requested.unwrap_or_else(|| {
            obj.pointer("/spec/terminationGracePeriodSeconds")
                .and_then(Value::as_i64)
                .unwrap_or(DEFAULT_POD_GRACE)
        });
        // Kubernetes turns an explicit 0 into 1 so that the kubelet still gets to stop the pod;
        // only `--force` (grace 0 plus immediate) removes it without the node.
        (grace > 0).then_some(grace)
    }

    /// Marks an object whose deletion has begun.
    pub fn on_delete_mark(&self, info: &ResourceInfo, obj: &mut Value) {
        if info.kind == "Namespace" {
            obj["status"] = json!({"phase": "Terminating"});
        }
    }
}
