//! Strategic-merge-patch metadata of the built-in Kubernetes types.
//!
//! Kubernetes declares patch strategies in Go struct tags (`patchStrategy:"merge"
//! patchMergeKey:"name"`), which the OpenAPI documents that k8s-openapi is generated from do not
//! carry. [`PATCH_STRATEGIES`] restates those tags, keyed by the OpenAPI name of the type and the
//! JSON name of the field. Which type sits at which path (`spec.template.spec.containers` of a
//! Deployment is a list of `io.k8s.api.core.v1.Container`) comes from the JSON schemas
//! k8s-openapi generates with its `schemars` feature: they name every object type by that same
//! OpenAPI name, so following `$ref`s from a kind's root schema gives the type at each step.
//!
//! [`PatchSchema`] is the resulting [`LookupPatchMeta`]; [`patch_extensions`] gives the OpenAPI
//! generator the `x-kubernetes-patch-strategy` / `x-kubernetes-patch-merge-key` values.

use std::collections::HashMap;
use std::fmt;
use std::sync::{LazyLock, Mutex};

use schemars::{JsonSchema, SchemaGenerator};
use serde_json::{Map, Value};

use crate::patch::{FieldPatchMeta, LookupPatchMeta};

type Object = Map<String, Value>;

/// `(type, field, patchStrategy, patchMergeKey)` exactly as the Go struct tags of Kubernetes
/// declare them. Fields not listed have no tag: maps merge, lists are atomic.
#[rustfmt::skip]
pub const PATCH_STRATEGIES: &[(&str, &str, &str, Option<&str>)] = &[
    // meta/v1
    ("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta", "finalizers", "merge", None),
    ("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta", "ownerReferences", "merge", Some("uid")),
    // core/v1 PodSpec
    ("io.k8s.api.core.v1.PodSpec", "volumes", "merge,retainKeys", Some("name")),
    ("io.k8s.api.core.v1.PodSpec", "initContainers", "merge", Some("name")),
    ("io.k8s.api.core.v1.PodSpec", "containers", "merge", Some("name")),
    ("io.k8s.api.core.v1.PodSpec", "ephemeralContainers", "merge", Some("name")),
    ("io.k8s.api.core.v1.PodSpec", "imagePullSecrets", "merge", Some("name")),
    ("io.k8s.api.core.v1.PodSpec", "hostAliases", "merge", Some("ip")),
    ("io.k8s.api.core.v1.PodSpec", "topologySpreadConstraints", "merge", Some("topologyKey")),
    ("io.k8s.api.core.v1.PodSpec", "schedulingGates", "merge", Some("name")),
    ("io.k8s.api.core.v1.PodSpec", "resourceClaims", "merge,retainKeys", Some("name")),
    // core/v1 Container and EphemeralContainer (k8s-openapi inlines EphemeralContainerCommon)
    ("io.k8s.api.core.v1.Container", "ports", "merge", Some("containerPort")),
    ("io.k8s.api.core.v1.Container", "env", "merge", Some("name")),
    ("io.k8s.api.core.v1.Container", "volumeMounts", "merge", Some("mountPath")),
    ("io.k8s.api.core.v1.Container", "volumeDevices", "merge", Some("devicePath")),
    ("io.k8s.api.core.v1.EphemeralContainer", "ports", "merge", Some("containerPort")),
    ("io.k8s.api.core.v1.EphemeralContainer", "env", "merge", Some("name")),
    ("io.k8s.api.core.v1.EphemeralContainer", "volumeMounts", "merge", Some("mountPath")),
    ("io.k8s.api.core.v1.EphemeralContainer", "volumeDevices", "merge", Some("devicePath")),
    // core/v1 statuses
    ("io.k8s.api.core.v1.PodStatus", "conditions", "merge", Some("type")),
    ("io.k8s.api.core.v1.PodStatus", "podIPs", "merge", Some("ip")),
    ("io.k8s.api.core.v1.PodStatus", "hostIPs", "merge", Some("ip")),
    ("io.k8s.api.core.v1.PodStatus", "resourceClaimStatuses", "merge,retainKeys", Some("name")),
    ("io.k8s.api.core.v1.ContainerStatus", "volumeMounts", "merge", Some("mountPath")),
    ("io.k8s.api.core.v1.ContainerStatus", "allocatedResourcesStatus", "merge", Some("name")),
    ("io.k8s.api.core.v1.NodeSpec", "podCIDRs", "merge", None),
    ("io.k8s.api.core.v1.NodeStatus", "conditions", "merge", Some("type")),
    ("io.k8s.api.core.v1.NodeStatus", "addresses", "merge", Some("type")),
    ("io.k8s.api.core.v1.NamespaceStatus", "conditions", "merge", Some("type")),
    ("io.k8s.api.core.v1.PersistentVolumeClaimStatus", "conditions", "merge", Some("type")),
    ("io.k8s.api.core.v1.ReplicationControllerStatus", "conditions", "merge", Some("type")),
    ("io.k8s.api.core.v1.ComponentStatus", "conditions", "merge", Some("type")),
    ("io.k8s.api.core.v1.ServiceSpec", "ports", "merge", Some("port")),
    ("io.k8s.api.core.v1.ServiceStatus", "conditions", "merge", Some("type")),
    ("io.k8s.api.core.v1.ServiceAccount", "secrets", "merge", Some("name")),
    // apps/v1
    ("io.k8s.api.apps.v1.DeploymentSpec", "strategy", "retainKeys", None),
    ("io.k8s.api.apps.v1.DeploymentStatus", "conditions", "merge", Some("type")),
    ("io.k8s.api.apps.v1.ReplicaSetStatus", "conditions", "merge", Some("type")),
    ("io.k8s.api.apps.v1.DaemonSetStatus", "conditions", "merge", Some("type")),
    ("io.k8s.api.apps.v1.StatefulSetStatus", "conditions", "merge", Some("type")),
    // batch/v1
    ("io.k8s.api.batch.v1.JobStatus", "conditions", "merge", Some("type")),
    // autoscaling/v2
    ("io.k8s.api.autoscaling.v2.HorizontalPodAutoscalerStatus", "conditions", "merge", Some("type")),
    // policy/v1
    ("io.k8s.api.policy.v1.PodDisruptionBudgetStatus", "conditions", "merge", Some("type")),
    // networking/v1
    ("io.k8s.api.networking.v1.ServiceCIDRStatus", "conditions", "merge", Some("type")),
    // flowcontrol/v1
    ("io.k8s.api.flowcontrol.v1.FlowSchemaStatus", "conditions", "merge", Some("type")),
    ("io.k8s.api.flowcontrol.v1.PriorityLevelConfigurationStatus", "conditions", "merge", Some("type")),
    // storage/v1
    ("io.k8s.api.storage.v1.CSINodeSpec", "drivers", "merge", Some("name")),
    // resource/v1
    ("io.k8s.api.resource.v1.ResourceClaimStatus", "reservedFor", "merge", Some("uid")),
    // apiregistration/v1
    ("io.k8s.kube-aggregator.pkg.apis.apiregistration.v1.APIServiceStatus", "conditions", "merge", Some("type")),
];

/// `(patchStrategy, patchMergeKey)` of one field.
pub type Tags = (&'static str, Option<&'static str>);

/// [`PATCH_STRATEGIES`] indexed by `(type, field)`.
static TAGS: LazyLock<HashMap<(&'static str, &'static str), Tags>> = LazyLock::new(|| {
    PATCH_STRATEGIES
        .iter()
        .map(|(ty, field, strategy, key)| ((*ty, *field), (*strategy, *key)))
        .collect()
});

/// The `x-kubernetes-patch-strategy` and `x-kubernetes-patch-merge-key` values of a field, as
/// Kubernetes publishes them in its OpenAPI documents; `None` for fields without a strategy.
///
/// `type_name` is the OpenAPI name (`io.k8s.api.core.v1.PodSpec`), `field` the JSON name.
pub fn patch_extensions(type_name: &str, field: &str) -> Option<Tags> {
    TAGS.get(&(type_name, field)).copied()
}

/// The patch metadata of a field of a built-in type.
pub fn field_patch_meta(type_name: &str, field: &str) -> FieldPatchMeta {
    match patch_extensions(type_name, field) {
        Some((strategy, key)) => FieldPatchMeta::from_tags(strategy, key),
        None => FieldPatchMeta::default(),
    }
}

/// Generates the schema of every type reachable from `T` into `generator`.
fn add<T: JsonSchema>(generator: &mut SchemaGenerator) {
    generator.subschema_for::<T>();
}

/// The JSON schemas of every type reachable from the kinds wasmkube serves, keyed by OpenAPI
/// name. Built once: every strategic merge patch navigates them.
static DEFINITIONS: LazyLock<Object> = LazyLock::new(|| {
    use k8s_openapi::api::{
        apps::v1 as apps, autoscaling::v1 as autoscaling_v1, autoscaling::v2 as autoscaling_v2,
        batch::v1 as batch, certificates::v1 as certificates, coordination::v1 as coordination,
        core::v1 as core, discovery::v1 as discovery, events::v1 as events,
        flowcontrol::v1 as flowcontrol, networking::v1 as networking, node::v1 as node,
        policy::v1 as policy, rbac::v1 as rbac, resource::v1 as resource, storage::v1 as storage,
    };
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1 as apiextensions;
    use k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1 as apiregistration;

    let mut g = SchemaGenerator::default();
    add::<core::Binding>(&mut g);
    add::<core::ComponentStatus>(&mut g);
    add::<core::ConfigMap>(&mut g);
    add::<core::Endpoints>(&mut g);
    add::<core::Event>(&mut g);
    add::<core::LimitRange>(&mut g);
    add::<core::Namespace>(&mut g);
    add::<core::Node>(&mut g);
    add::<core::PersistentVolume>(&mut g);
    add::<core::PersistentVolumeClaim>(&mut g);
    add::<core::Pod>(&mut g);
    add::<core::PodTemplate>(&mut g);
    add::<core::ReplicationController>(&mut g);
    add::<core::ResourceQuota>(&mut g);
    add::<core::Secret>(&mut g);
    add::<core::Service>(&mut g);
    add::<core::ServiceAccount>(&mut g);
    add::<apps::ControllerRevision>(&mut g);
    add::<apps::DaemonSet>(&mut g);
    add::<apps::Deployment>(&mut g);
    add::<apps::ReplicaSet>(&mut g);
    add::<apps::StatefulSet>(&mut g);
    add::<autoscaling_v1::HorizontalPodAutoscaler>(&mut g);
    add::<autoscaling_v1::Scale>(&mut g);
    add::<autoscaling_v2::HorizontalPodAutoscaler>(&mut g);
    add::<batch::CronJob>(&mut g);
    add::<batch::Job>(&mut g);
    add::<certificates::CertificateSigningRequest>(&mut g);
    add::<coordination::Lease>(&mut g);
    add::<discovery::EndpointSlice>(&mut g);
    add::<events::Event>(&mut g);
    add::<flowcontrol::FlowSchema>(&mut g);
    add::<flowcontrol::PriorityLevelConfiguration>(&mut g);
    add::<networking::Ingress>(&mut g);
    add::<networking::IngressClass>(&mut g);
    add::<networking::NetworkPolicy>(&mut g);
    add::<networking::ServiceCIDR>(&mut g);
    add::<networking::IPAddress>(&mut g);
    add::<node::RuntimeClass>(&mut g);
    add::<policy::Eviction>(&mut g);
    add::<policy::PodDisruptionBudget>(&mut g);
    add::<rbac::ClusterRole>(&mut g);
    add::<rbac::ClusterRoleBinding>(&mut g);
    add::<rbac::Role>(&mut g);
    add::<rbac::RoleBinding>(&mut g);
    add::<resource::ResourceClaim>(&mut g);
    add::<storage::CSIDriver>(&mut g);
    add::<storage::CSINode>(&mut g);
    add::<storage::StorageClass>(&mut g);
    add::<storage::VolumeAttachment>(&mut g);
    add::<apiextensions::CustomResourceDefinition>(&mut g);
    add::<apiregistration::APIService>(&mut g);
    compact(g.take_definitions(false))
});

/// Schemas of types outside [`DEFINITIONS`], generated on first use and kept for the process's
/// life (one per type, so the leak is bounded).
static EXTRA_DEFINITIONS: LazyLock<Mutex<HashMap<String, &'static Object>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// Drops descriptions, which are most of the schemas' size and none of their structure.
fn compact(mut definitions: Object) -> Object {
    fn strip(value: &mut Value) {
        match value {
            Value::Object(map) => {
                map.shift_remove("description");
                map.values_mut().for_each(strip);
            }
            Value::Array(items) => items.iter_mut().for_each(strip),
            _ => {}
        }
    }
    definitions.values_mut().for_each(strip);
    definitions
}

/// The object schema a lookup is positioned at.
#[derive(Clone, Copy)]
struct Node {
    /// The OpenAPI name, for named types (table lookups); `None` for maps with arbitrary keys.
    type_name: Option<&'static str>,
    schema: &'static Value,
}

/// The patch metadata of a built-in Kubernetes type, positioned at one type in the object tree.
///
/// ```
/// use k8s_openapi::api::apps::v1::Deployment;
/// use wasmkube_api::patch::{LookupPatchMeta, PatchSchema, PatchStrategy};
///
/// let deployment = PatchSchema::for_kind::<Deployment>();
/// let (_, spec) = deployment.lookup("spec");
/// let (_, template) = spec.lookup("template");
/// let (_, pod_spec) = template.lookup("spec");
/// let (meta, container) = pod_spec.lookup("containers");
/// assert_eq!(meta.strategy, PatchStrategy::MergeByKey("name".into()));
/// assert_eq!(container.type_name(), Some("io.k8s.api.core.v1.Container"));
/// ```
#[derive(Clone, Copy)]
pub struct PatchSchema {
    definitions: &'static Object,
    node: Option<Node>,
}

impl fmt::Debug for PatchSchema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PatchSchema")
            .field("type_name", &self.type_name())
            .finish()
    }
}

impl PatchSchema {
    /// The schema of a k8s-openapi type, e.g. `PatchSchema::for_kind::<Deployment>()`.
    pub fn for_kind<K: JsonSchema>() -> Self {
        let name = K::schema_name();
        if let Some(schema) = PatchSchema::for_type(&name) {
            return schema;
        }
        let definitions = {
            let mut extra = EXTRA_DEFINITIONS
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            *extra.entry(name.to_string()).or_insert_with(|| {
                let mut g = SchemaGenerator::default();
                add::<K>(&mut g);
                Box::leak(Box::new(compact(g.take_definitions(false))))
            })
        };
        PatchSchema::in_definitions(definitions, &name).unwrap_or(PatchSchema {
            definitions,
            node: None,
        })
    }

    /// The schema of a built-in type by OpenAPI name (`io.k8s.api.apps.v1.Deployment`).
    pub fn for_type(type_name: &str) -> Option<Self> {
        PatchSchema::in_definitions(&DEFINITIONS, type_name)
    }

    /// A schema that knows nothing: maps merge and lists are replaced, like
    /// [`Unstructured`](crate::patch::Unstructured).
    pub fn unstructured() -> Self {
        PatchSchema {
            definitions: &DEFINITIONS,
            node: None,
        }
    }

    fn in_definitions(definitions: &'static Object, type_name: &str) -> Option<Self> {
        let (name, schema) = definitions.get_key_value(type_name)?;
        Some(PatchSchema {
            definitions,
            node: Some(Node {
                type_name: Some(name.as_str()),
                schema,
            }),
        })
    }

    /// The OpenAPI name of the type this schema is positioned at, if it is a named type.
    pub fn type_name(&self) -> Option<&'static str> {
        self.node.and_then(|n| n.type_name)
    }

    /// The object schema a property schema leads to: through `$ref`s and array items; `None`
    /// for scalars.
    fn resolve(&self, schema: &'static Value) -> Option<Node> {
        if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
            let name = decode_ref(reference.strip_prefix("#/$defs/")?);
            let (name, schema) = self.definitions.get_key_value(name.as_str())?;
            // Named scalars (Quantity, Time, IntOrString) have no fields to look up.
            return is_object_schema(schema).then_some(Node {
                type_name: Some(name.as_str()),
                schema,
            });
        }
        if let Some(items) = schema.get("items") {
            return self.resolve(items);
        }
        is_object_schema(schema).then_some(Node {
            type_name: None,
            schema,
        })
    }
}

fn is_object_schema(schema: &Value) -> bool {
    schema.get("properties").is_some() || schema.get("additionalProperties").is_some()
}

/// Undoes schemars' JSON-pointer and percent encoding of a definition name.
fn decode_ref(encoded: &str) -> String {
    let mut bytes = Vec::with_capacity(encoded.len());
    let mut rest = encoded.as_bytes();
    while let Some((&b, tail)) = rest.split_first() {
        rest = tail;
        match b {
            b'~' => match rest.split_first() {
                Some((b'1', tail)) => {
                    bytes.push(b'/');
                    rest = tail;
                }
                Some((b'0', tail)) => {
                    bytes.push(b'~');
                    rest = tail;
                }
                _ => bytes.push(b'~'),
            },
            b'%' => {
                let hex = rest
                    .get(..2)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(decoded) => {
                        bytes.push(decoded);
                        rest = rest.get(2..).unwrap_or_default();
                    }
                    None => bytes.push(b'%'),
                }
            }
            other => bytes.push(other),
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

impl LookupPatchMeta for PatchSchema {
    fn lookup(&self, field: &str) -> (FieldPatchMeta, Self) {
        let Some(node) = self.node else {
            return (FieldPatchMeta::default(), *self);
        };
        let property = node.schema.get("properties").and_then(|p| p.get(field));
        let (meta, property) = match property {
            Some(property) => {
                let meta = node
                    .type_name
                    .map(|ty| field_patch_meta(ty, field))
                    .unwrap_or_default();
                (meta, Some(property))
            }
            // A map with arbitrary keys: every key has the value schema and no strategy.
            None => (
                FieldPatchMeta::default(),
                node.schema
                    .get("additionalProperties")
                    .filter(|v| v.is_object()),
            ),
        };
        let child = PatchSchema {
            definitions: self.definitions,
            node: property.and_then(|p| self.resolve(p)),
        };
        (meta, child)
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::apps::v1::Deployment;
    use k8s_openapi::api::core::v1::{Node as K8sNode, Pod, Service};
    use serde_json::json;

    use super::*;
    use crate::patch::{
        PatchStrategy, apply_strategic_merge_patch, create_three_way_merge_patch,
        create_two_way_merge_patch,
    };

    /// Walks a dotted path of field names from a kind's root.
    fn walk(schema: PatchSchema, path: &str) -> (FieldPatchMeta, PatchSchema) {
        let mut current = schema;
        let mut meta = FieldPatchMeta::default();
        for step in path.split('.') {
            (meta, current) = current.lookup(step);
        }
        (meta, current)
    }

    #[test]
    fn navigates_kinds_to_merge_keys() {
        let deployment = PatchSchema::for_kind::<Deployment>();
        let pod = PatchSchema::for_kind::<Pod>();
        let by_key = |k: &'static str| FieldPatchMeta::merge_by_key(k);
        let cases = [
            (deployment, "spec.template.spec.containers", by_key("name")),
            (
                deployment,
                "spec.template.spec.initContainers",
                by_key("name"),
            ),
            (
                deployment,
                "spec.template.spec.containers.env",
                by_key("name"),
            ),
            (
                deployment,
                "spec.template.spec.containers.ports",
                by_key("containerPort"),
            ),
            (
                deployment,
                "spec.template.spec.containers.volumeMounts",
                by_key("mountPath"),
            ),
            (
                deployment,
                "spec.template.spec.containers.volumeDevices",
                by_key("devicePath"),
            ),
            (
                deployment,
                "spec.template.spec.volumes",
                by_key("name").with_retain_keys(),
            ),
            (deployment, "spec.template.spec.hostAliases", by_key("ip")),
            (
                deployment,
                "spec.template.spec.topologySpreadConstraints",
                by_key("topologyKey"),
            ),
            (
                deployment,
                "spec.template.spec.imagePullSecrets",
                by_key("name"),
            ),
            (
                deployment,
                "spec.strategy",
                FieldPatchMeta::default().with_retain_keys(),
            ),
            (deployment, "status.conditions", by_key("type")),
            (deployment, "metadata.ownerReferences", by_key("uid")),
            (
                deployment,
                "metadata.finalizers",
                FieldPatchMeta::merge_primitive(),
            ),
            (
                deployment,
                "spec.template.metadata.finalizers",
                FieldPatchMeta::merge_primitive(),
            ),
            (
                deployment,
                "spec.template.spec.tolerations",
                FieldPatchMeta::default(),
            ),
            (
                deployment,
                "spec.template.spec.containers.args",
                FieldPatchMeta::default(),
            ),
            (deployment, "metadata.labels", FieldPatchMeta::default()),
            (deployment, "metadata.labels.app", FieldPatchMeta::default()),
            (pod, "spec.ephemeralContainers.env", by_key("name")),
            (pod, "status.conditions", by_key("type")),
            (pod, "status.podIPs", by_key("ip")),
            (pod, "status.containerStatuses", FieldPatchMeta::default()),
            (
                pod,
                "spec.containers.resources.limits",
                FieldPatchMeta::default(),
            ),
            (
                PatchSchema::for_kind::<Service>(),
                "spec.ports",
                by_key("port"),
            ),
            (
                PatchSchema::for_kind::<K8sNode>(),
                "status.addresses",
                by_key("type"),
            ),
            (
                PatchSchema::for_kind::<K8sNode>(),
                "status.images",
                FieldPatchMeta::default(),
            ),
            (
                PatchSchema::for_kind::<K8sNode>(),
                "spec.podCIDRs",
                FieldPatchMeta::merge_primitive(),
            ),
            (deployment, "no.such.field", FieldPatchMeta::default()),
        ];
        for (schema, path, want) in cases {
            assert_eq!(walk(schema, path).0, want, "{path}");
        }
        assert_eq!(
            walk(deployment, "spec.template.spec.containers")
                .1
                .type_name(),
            Some("io.k8s.api.core.v1.Container")
        );
        assert_eq!(
            walk(deployment, "spec.template.spec").1.type_name(),
            Some("io.k8s.api.core.v1.PodSpec")
        );
        assert_eq!(walk(deployment, "metadata.labels").1.type_name(), None);
        assert_eq!(
            walk(pod, "spec.containers.resources.limits.cpu")
                .1
                .type_name(),
            None
        );
        assert!(PatchSchema::for_type("io.k8s.api.core.v1.PodSpec").is_some());
        assert!(PatchSchema::for_type("io.example.Nope").is_none());
        assert_eq!(
            PatchSchema::unstructured().lookup("containers").0,
            FieldPatchMeta::default()
        );
    }

    #[test]
    fn types_outside_the_builtin_list_are_generated() {
        use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
        let schema = PatchSchema::for_kind::<ValidatingWebhookConfiguration>();
        assert_eq!(
            schema.type_name(),
            Some("io.k8s.api.admissionregistration.v1.ValidatingWebhookConfiguration")
        );
        assert_eq!(
            walk(schema, "metadata.ownerReferences").0,
            FieldPatchMeta::merge_by_key("uid")
        );
        // The second call reuses the cached definitions.
        assert_eq!(
            PatchSchema::for_kind::<ValidatingWebhookConfiguration>().type_name(),
            schema.type_name()
        );
    }

    #[test]
    fn every_table_entry_names_a_real_field() {
        for (type_name, field, strategy, key) in PATCH_STRATEGIES {
            let schema = PatchSchema::for_type(type_name)
                .unwrap_or_else(|| panic!("{type_name} is not among the generated definitions"));
            let node = schema.node.expect("named types have a schema");
            let property = node.schema.get("properties").and_then(|p| p.get(*field));
            let property = property.unwrap_or_else(|| panic!("{type_name} has no field {field}"));
            let is_list = property.get("type").and_then(Value::as_str) == Some("array");
            if strategy.contains("merge") {
                assert!(is_list, "{type_name}.{field} merges but is not a list");
            }
            if let Some(key) = key {
                let (_, item) = schema.lookup(field);
                let item = item.node.expect("merge-keyed lists hold objects");
                assert!(
                    item.schema
                        .get("properties")
                        .and_then(|p| p.get(*key))
                        .is_some(),
                    "{type_name}.{field} items have no merge key {key}"
                );
            }
        }
    }

    #[test]
    fn openapi_extensions() {
        assert_eq!(
            patch_extensions("io.k8s.api.core.v1.PodSpec", "containers"),
            Some(("merge", Some("name")))
        );
        assert_eq!(
            patch_extensions("io.k8s.api.core.v1.PodSpec", "volumes"),
            Some(("merge,retainKeys", Some("name")))
        );
        assert_eq!(
            patch_extensions(
                "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
                "finalizers"
            ),
            Some(("merge", None))
        );
        assert_eq!(
            patch_extensions("io.k8s.api.apps.v1.DeploymentSpec", "strategy"),
            Some(("retainKeys", None))
        );
        assert_eq!(
            patch_extensions("io.k8s.api.core.v1.PodSpec", "tolerations"),
            None
        );
        assert_eq!(
            field_patch_meta("io.k8s.api.core.v1.PodSpec", "containers").strategy,
            PatchStrategy::MergeByKey("name".into())
        );
    }

    #[test]
    fn decodes_ref_names() {
        assert_eq!(
            decode_ref("io.k8s.api.core.v1.Pod"),
            "io.k8s.api.core.v1.Pod"
        );
        assert_eq!(decode_ref("a~1b~0c%20d"), "a/b~c d");
        assert_eq!(decode_ref("bad%zz~"), "bad%zz~");
    }

    fn deployment(containers: Value, strategy: Value, volumes: Value) -> Value {
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web", "labels": {"app": "web"}},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "web"}},
                "strategy": strategy,
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": containers, "volumes": volumes}
                }
            }
        })
    }

    /// `kubectl apply` of a Deployment that drops its sidecar and reorders an env list: the
    /// patch deletes the container by key and carries `$setElementOrder` for both lists, and the
    /// server keeps what others added (an injected env var, the live replica count).
    #[test]
    fn apply_deployment_removing_a_container_and_reordering_env() {
        let schema = PatchSchema::for_kind::<Deployment>();
        let rolling = json!({"type": "RollingUpdate"});
        let last_applied = deployment(
            json!([
                {"name": "web", "image": "web:1", "env": [
                    {"name": "A", "value": "1"}, {"name": "B", "value": "2"}, {"name": "C", "value": "3"}
                ]},
                {"name": "sidecar", "image": "proxy:1"}
            ]),
            rolling.clone(),
            json!([]),
        );
        let modified = deployment(
            json!([
                {"name": "web", "image": "web:2", "env": [
                    {"name": "C", "value": "3"}, {"name": "A", "value": "1"}, {"name": "B", "value": "2"}
                ]}
            ]),
            rolling.clone(),
            json!([]),
        );
        let mut current = last_applied.clone();
        current["spec"]["replicas"] = json!(5);
        current["spec"]["template"]["spec"]["containers"][0]["env"]
            .as_array_mut()
            .expect("env list")
            .push(json!({"name": "INJECTED", "value": "x"}));
        current["spec"]["template"]["spec"]["containers"][0]["terminationMessagePath"] =
            json!("/dev/termination-log");

        let patch = create_three_way_merge_patch(&last_applied, &modified, &current, &schema)
            .expect("patch");
        assert_eq!(
            patch,
            json!({
                "spec": {
                    "replicas": 2,
                    "template": {"spec": {
                        "$setElementOrder/containers": [{"name": "web"}],
                        "containers": [
                            {
                                "name": "web",
                                "image": "web:2",
                                "$setElementOrder/env": [{"name": "C"}, {"name": "A"}, {"name": "B"}]
                            },
                            {"name": "sidecar", "$patch": "delete"}
                        ]
                    }}
                }
            })
        );

        let result = apply_strategic_merge_patch(&current, &patch, &schema).expect("applies");
        assert_eq!(result["spec"]["replicas"], json!(2));
        assert_eq!(
            result["spec"]["template"]["spec"]["containers"],
            json!([{
                "name": "web",
                "image": "web:2",
                "env": [
                    {"name": "C", "value": "3"},
                    {"name": "A", "value": "1"},
                    {"name": "B", "value": "2"},
                    {"name": "INJECTED", "value": "x"}
                ],
                "terminationMessagePath": "/dev/termination-log"
            }])
        );

        // The two-way patch from the last-applied configuration gives the same containers.
        let two_way = create_two_way_merge_patch(&last_applied, &modified, &schema).expect("patch");
        let applied =
            apply_strategic_merge_patch(&last_applied, &two_way, &schema).expect("applies");
        assert_eq!(applied, modified);
    }

    #[test]
    fn delete_a_volume_with_patch_delete() {
        let schema = PatchSchema::for_kind::<Deployment>();
        let current = deployment(
            json!([{"name": "web", "image": "web:1"}]),
            json!({"type": "RollingUpdate"}),
            json!([
                {"name": "config", "configMap": {"name": "web-config"}},
                {"name": "cache", "emptyDir": {}},
                {"name": "data", "persistentVolumeClaim": {"claimName": "data"}}
            ]),
        );
        let patch = json!({"spec": {"template": {"spec": {"volumes": [
            {"$patch": "delete", "name": "cache"}
        ]}}}});
        let result = apply_strategic_merge_patch(&current, &patch, &schema).expect("applies");
        assert_eq!(
            result["spec"]["template"]["spec"]["volumes"],
            json!([
                {"name": "config", "configMap": {"name": "web-config"}},
                {"name": "data", "persistentVolumeClaim": {"claimName": "data"}}
            ])
        );
        // Everything else is untouched.
        assert_eq!(
            result["spec"]["template"]["spec"]["containers"],
            current["spec"]["template"]["spec"]["containers"]
        );
    }

    /// Switching RollingUpdate → Recreate: `rollingUpdate` must go away, or the server rejects
    /// the Deployment. The computed patch says so with `$retainKeys`, even though the user's
    /// configuration never mentioned `rollingUpdate` (the server defaulted it).
    #[test]
    fn retain_keys_when_switching_strategy_to_recreate() {
        let schema = PatchSchema::for_kind::<Deployment>();
        let containers = json!([{"name": "web", "image": "web:1"}]);
        let last_applied = deployment(
            containers.clone(),
            json!({"type": "RollingUpdate"}),
            json!([]),
        );
        let modified = deployment(containers.clone(), json!({"type": "Recreate"}), json!([]));
        let current = deployment(
            containers.clone(),
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}}),
            json!([]),
        );
        let patch = create_three_way_merge_patch(&last_applied, &modified, &current, &schema)
            .expect("patch");
        assert_eq!(
            patch,
            json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}})
        );
        let result = apply_strategic_merge_patch(&current, &patch, &schema).expect("applies");
        assert_eq!(result["spec"]["strategy"], json!({"type": "Recreate"}));

        // A volume switching its source keeps only the new source the same way.
        let current = deployment(
            containers.clone(),
            json!({"type": "Recreate"}),
            json!([{"name": "v", "emptyDir": {}}]),
        );
        let modified = deployment(
            containers,
            json!({"type": "Recreate"}),
            json!([{"name": "v", "configMap": {"name": "cm"}}]),
        );
        let patch = create_two_way_merge_patch(&current, &modified, &schema).expect("patch");
        assert_eq!(
            patch["spec"]["template"]["spec"]["volumes"],
            json!([{"$retainKeys": ["configMap", "name"], "name": "v", "configMap": {"name": "cm"}, "emptyDir": null}])
        );
        let result = apply_strategic_merge_patch(&current, &patch, &schema).expect("applies");
        assert_eq!(
            result["spec"]["template"]["spec"]["volumes"],
            json!([{"name": "v", "configMap": {"name": "cm"}}])
        );
    }

    #[test]
    fn finalizers_and_conditions() {
        let schema = PatchSchema::for_kind::<Pod>();
        let pod = json!({
            "metadata": {"name": "p", "finalizers": ["a", "b"]},
            "status": {"conditions": [
                {"type": "Ready", "status": "False"},
                {"type": "PodScheduled", "status": "True"}
            ]}
        });
        let patch = json!({
            "metadata": {"$deleteFromPrimitiveList/finalizers": ["a"], "finalizers": ["c"]},
            "status": {"conditions": [{"type": "Ready", "status": "True"}]}
        });
        let result = apply_strategic_merge_patch(&pod, &patch, &schema).expect("applies");
        assert_eq!(result["metadata"]["finalizers"], json!(["c", "b"]));
        assert_eq!(
            result["status"]["conditions"],
            json!([
                {"type": "Ready", "status": "True"},
                {"type": "PodScheduled", "status": "True"}
            ])
        );
    }
}
