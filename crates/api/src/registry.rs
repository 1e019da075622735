//! The resource registry: every kind the API server serves, with the facts discovery, routing,
//! storage and validation need about it.
//!
//! One static table is the single source of truth, so discovery documents, OpenAPI paths and the
//! router can never disagree about what exists.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Subresources a resource may offer. Each is routed as `.../{name}/{subresource}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subresource {
    Status,
    Scale,
    Binding,
    Log,
    Eviction,
    Exec,
    Attach,
    PortForward,
    Proxy,
    Token,
    EphemeralContainers,
}

impl Subresource {
    pub const fn name(self) -> &'static str {
        match self {
            Subresource::Status => "status",
            Subresource::Scale => "scale",
            Subresource::Binding => "binding",
            Subresource::Log => "log",
            Subresource::Eviction => "eviction",
            Subresource::Exec => "exec",
            Subresource::Attach => "attach",
            Subresource::PortForward => "portforward",
            Subresource::Proxy => "proxy",
            Subresource::Token => "token",
            Subresource::EphemeralContainers => "ephemeralcontainers",
        }
    }

    /// The kind a subresource speaks, as discovery reports it.
    pub const fn kind(
        self,
        owner_kind: &'static str,
    ) -> (&'static str, &'static str, &'static str) {
        // (group, version, kind); empty group/version means "same as the owner".
        match self {
            Subresource::Status | Subresource::EphemeralContainers => ("", "", owner_kind),
            Subresource::Scale => ("autoscaling", "v1", "Scale"),
            Subresource::Binding => ("", "", "Binding"),
            Subresource::Log | Subresource::Exec | Subresource::Attach => ("", "", "Pod"),
            Subresource::PortForward | Subresource::Proxy => ("", "", owner_kind),
            Subresource::Eviction => ("policy", "v1", "Eviction"),
            Subresource::Token => ("authentication.k8s.io", "v1", "TokenRequest"),
        }
    }

    pub const fn verbs(self) -> &'static [&'static str] {
        match self {
            Subresource::Status | Subresource::Scale | Subresource::EphemeralContainers => {
                &["get", "patch", "update"]
            }
            Subresource::Binding | Subresource::Eviction | Subresource::Token => &["create"],
            Subresource::Log => &["get"],
            Subresource::Exec | Subresource::Attach | Subresource::PortForward => {
                &["create", "get"]
            }
            Subresource::Proxy => &["create", "delete", "get", "patch", "update"],
        }
    }
}

/// Converts a JSON object through its typed k8s-openapi form: rejects values of the wrong shape and
/// drops fields the type does not know. Comparing input and output finds unknown fields.
pub type TypedRoundTrip = fn(&Value) -> Result<Value, serde_json::Error>;

fn round_trip<T: DeserializeOwned + Serialize>(value: &Value) -> Result<Value, serde_json::Error> {
    let typed: T = serde_json::from_value(value.clone())?;
    serde_json::to_value(typed)
}

/// Adds a kind's JSON schema (and every schema it references) to an OpenAPI generator's
/// definitions and returns a `$ref` to it, so OpenAPI documents come from the same types the
/// server decodes with.
pub type SchemaFn = fn(&mut schemars::SchemaGenerator) -> schemars::Schema;

fn schema_ref<T: schemars::JsonSchema>(
    generator: &mut schemars::SchemaGenerator,
) -> schemars::Schema {
    generator.subschema_for::<T>()
}

/// Everything the server knows about one resource.
#[derive(Debug, Clone, Copy)]
pub struct ResourceInfo {
    pub group: &'static str,
    pub version: &'static str,
    /// Plural, lower-case: the URL segment.
    pub resource: &'static str,
    pub singular: &'static str,
    pub kind: &'static str,
    pub namespaced: bool,
    pub short_names: &'static [&'static str],
    pub categories: &'static [&'static str],
    pub subresources: &'static [Subresource],
    /// The k8s-openapi / OpenAPI definition name, e.g. `io.k8s.api.core.v1.Pod`.
    pub definition: &'static str,
    pub round_trip: TypedRoundTrip,
    pub schema: SchemaFn,
    /// Resources a user may only create (e.g. bindings) are not listable or watchable.
    pub create_only: bool,
}

pub const STANDARD_VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

/// Namespaces, as Kubernetes serves them: no `deletecollection` (one request must never take
/// every namespace with it).
pub const NAMESPACE_VERBS: &[&str] = &[
    "create", "delete", "get", "list", "patch", "update", "watch",
];

/// The namespaces every cluster needs, which Kubernetes' NamespaceLifecycle admission keeps
/// from being deleted.
pub const PROTECTED_NAMESPACES: &[&str] =
    &["default", "kube-system", "kube-public", "kube-node-lease"];

impl ResourceInfo {
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `deployments.apps`, `pods`: how Kubernetes names a group-resource in messages.
    pub fn group_resource(&self) -> String {
        if self.group.is_empty() {
            self.resource.to_string()
        } else {
            format!("{}.{}", self.resource, self.group)
        }
    }

    pub fn verbs(&self) -> &'static [&'static str] {
        if self.create_only {
            &["create"]
        } else if self.group.is_empty() && self.resource == "namespaces" {
            NAMESPACE_VERBS
        } else {
            STANDARD_VERBS
        }
    }

    pub fn has_subresource(&self, sub: Subresource) -> bool {
        self.subresources.contains(&sub)
    }

    pub fn has_status(&self) -> bool {
        self.has_subresource(Subresource::Status)
    }

    /// The storage key prefix for this resource, optionally narrowed to one namespace.
    /// Keys end with `/` so that `pods/default/` never matches `pods/default-2/...`.
    pub fn key_prefix(&self, namespace: Option<&str>) -> String {
        let group = if self.group.is_empty() {
            "core"
        } else {
            self.group
        };
        match namespace {
            Some(ns) if self.namespaced => format!("/registry/{group}/{}/{ns}/", self.resource),
            _ => format!("/registry/{group}/{}/", self.resource),
        }
    }

    pub fn key(&self, namespace: Option<&str>, name: &str) -> String {
        format!("{}{name}", self.key_prefix(namespace))
    }
}

macro_rules! res {
    ($group:expr, $version:expr, $resource:expr, $singular:expr, $kind:expr, $namespaced:expr,
     $ty:ty, $def:expr, short = [$($short:expr),*], cat = [$($cat:expr),*], sub = [$($sub:ident),*]) => {
        ResourceInfo {
            group: $group,
            version: $version,
            resource: $resource,
            singular: $singular,
            kind: $kind,
            namespaced: $namespaced,
            short_names: &[$($short),*],
            categories: &[$($cat),*],
            subresources: &[$(Subresource::$sub),*],
            definition: $def,
            round_trip: round_trip::<$ty>,
            schema: schema_ref::<$ty>,
            create_only: false,
        }
    };
}

use k8s_openapi::api::{
    apps::v1 as apps, autoscaling::v2 as autoscaling, batch::v1 as batch,
    coordination::v1 as coordination, core::v1 as core, discovery::v1 as discovery,
    events::v1 as events, networking::v1 as networking, node::v1 as node, policy::v1 as policy,
    rbac::v1 as rbac, scheduling::v1 as scheduling, storage::v1 as storage,
};

/// Every resource served, in the order discovery lists them.
pub static RESOURCES: &[ResourceInfo] = &[
    res!(
        "",
        "v1",
        "namespaces",
        "namespace",
        "Namespace",
        false,
        core::Namespace,
        "io.k8s.api.core.v1.Namespace",
        short = ["ns"],
        cat = [],
        sub = [Status]
    ),
    res!(
        "",
        "v1",
        "pods",
        "pod",
        "Pod",
        true,
        core::Pod,
        "io.k8s.api.core.v1.Pod",
        short = ["po"],
        cat = ["all"],
        sub = [
            Status,
            Binding,
            Log,
            Eviction,
            Exec,
            Attach,
            PortForward,
            Proxy,
            EphemeralContainers
        ]
    ),
    res!(
        "",
        "v1",
        "services",
        "service",
        "Service",
        true,
        core::Service,
        "io.k8s.api.core.v1.Service",
        short = ["svc"],
        cat = ["all"],
        sub = [Status, Proxy]
    ),
    res!(
        "",
        "v1",
        "endpoints",
        "endpoints",
        "Endpoints",
        true,
        core::Endpoints,
        "io.k8s.api.core.v1.Endpoints",
        short = ["ep"],
        cat = [],
        sub = []
    ),
    res!(
        "",
        "v1",
        "configmaps",
        "configmap",
        "ConfigMap",
        true,
        core::ConfigMap,
        "io.k8s.api.core.v1.ConfigMap",
        short = ["cm"],
        cat = [],
        sub = []
    ),
    res!(
        "",
        "v1",
        "secrets",
        "secret",
        "Secret",
        true,
        core::Secret,
        "io.k8s.api.core.v1.Secret",
        short = [],
        cat = [],
        sub = []
    ),
    res!(
        "",
        "v1",
        "serviceaccounts",
        "serviceaccount",
        "ServiceAccount",
        true,
        core::ServiceAccount,
        "io.k8s.api.core.v1.ServiceAccount",
        short = ["sa"],
        cat = [],
        sub = [Token]
    ),
    res!(
        "",
        "v1",
        "events",
        "event",
        "Event",
        true,
        core::Event,
        "io.k8s.api.core.v1.Event",
        short = ["ev"],
        cat = [],
        sub = []
    ),
    res!(
        "",
        "v1",
        "nodes",
        "node",
        "Node",
        false,
        core::Node,
        "io.k8s.api.core.v1.Node",
        short = ["no"],
        cat = [],
        sub = [Status, Proxy]
    ),
    res!(
        "",
        "v1",
        "persistentvolumes",
        "persistentvolume",
        "PersistentVolume",
        false,
        core::PersistentVolume,
        "io.k8s.api.core.v1.PersistentVolume",
        short = ["pv"],
        cat = [],
        sub = [Status]
    ),
    res!(
        "",
        "v1",
        "persistentvolumeclaims",
        "persistentvolumeclaim",
        "PersistentVolumeClaim",
        true,
        core::PersistentVolumeClaim,
        "io.k8s.api.core.v1.PersistentVolumeClaim",
        short = ["pvc"],
        cat = [],
        sub = [Status]
    ),
    res!(
        "",
        "v1",
        "resourcequotas",
        "resourcequota",
        "ResourceQuota",
        true,
        core::ResourceQuota,
        "io.k8s.api.core.v1.ResourceQuota",
        short = ["quota"],
        cat = [],
        sub = [Status]
    ),
    res!(
        "",
        "v1",
        "limitranges",
        "limitrange",
        "LimitRange",
        true,
        core::LimitRange,
        "io.k8s.api.core.v1.LimitRange",
        short = ["limits"],
        cat = [],
        sub = []
    ),
    res!(
        "",
        "v1",
        "podtemplates",
        "podtemplate",
        "PodTemplate",
        true,
        core::PodTemplate,
        "io.k8s.api.core.v1.PodTemplate",
        short = [],
        cat = [],
        sub = []
    ),
    res!(
        "apps",
        "v1",
        "deployments",
        "deployment",
        "Deployment",
        true,
        apps::Deployment,
        "io.k8s.api.apps.v1.Deployment",
        short = ["deploy"],
        cat = ["all"],
        sub = [Status, Scale]
    ),
    res!(
        "apps",
        "v1",
        "replicasets",
        "replicaset",
        "ReplicaSet",
        true,
        apps::ReplicaSet,
        "io.k8s.api.apps.v1.ReplicaSet",
        short = ["rs"],
        cat = ["all"],
        sub = [Status, Scale]
    ),
    res!(
        "apps",
        "v1",
        "daemonsets",
        "daemonset",
        "DaemonSet",
        true,
        apps::DaemonSet,
        "io.k8s.api.apps.v1.DaemonSet",
        short = ["ds"],
        cat = ["all"],
        sub = [Status]
    ),
    res!(
        "apps",
        "v1",
        "statefulsets",
        "statefulset",
        "StatefulSet",
        true,
        apps::StatefulSet,
        "io.k8s.api.apps.v1.StatefulSet",
        short = ["sts"],
        cat = ["all"],
        sub = [Status, Scale]
    ),
    res!(
        "apps",
        "v1",
        "controllerrevisions",
        "controllerrevision",
        "ControllerRevision",
        true,
        apps::ControllerRevision,
        "io.k8s.api.apps.v1.ControllerRevision",
        short = [],
        cat = [],
        sub = []
    ),
    res!(
        "batch",
        "v1",
        "jobs",
        "job",
        "Job",
        true,
        batch::Job,
        "io.k8s.api.batch.v1.Job",
        short = [],
        cat = ["all"],
        sub = [Status]
    ),
    res!(
        "batch",
        "v1",
        "cronjobs",
        "cronjob",
        "CronJob",
        true,
        batch::CronJob,
        "io.k8s.api.batch.v1.CronJob",
        short = ["cj"],
        cat = ["all"],
        sub = [Status]
    ),
    res!(
        "networking.k8s.io",
        "v1",
        "ingresses",
        "ingress",
        "Ingress",
        true,
        networking::Ingress,
        "io.k8s.api.networking.v1.Ingress",
        short = ["ing"],
        cat = [],
        sub = [Status]
    ),
    res!(
        "networking.k8s.io",
        "v1",
        "ingressclasses",
        "ingressclass",
        "IngressClass",
        false,
        networking::IngressClass,
        "io.k8s.api.networking.v1.IngressClass",
        short = [],
        cat = [],
        sub = []
    ),
    res!(
        "networking.k8s.io",
        "v1",
        "networkpolicies",
        "networkpolicy",
        "NetworkPolicy",
        true,
        networking::NetworkPolicy,
        "io.k8s.api.networking.v1.NetworkPolicy",
        short = ["netpol"],
        cat = [],
        sub = []
    ),
    res!(
        "coordination.k8s.io",
        "v1",
        "leases",
        "lease",
        "Lease",
        true,
        coordination::Lease,
        "io.k8s.api.coordination.v1.Lease",
        short = [],
        cat = [],
        sub = []
    ),
    res!(
        "node.k8s.io",
        "v1",
        "runtimeclasses",
        "runtimeclass",
        "RuntimeClass",
        false,
        node::RuntimeClass,
        "io.k8s.api.node.v1.RuntimeClass",
        short = [],
        cat = [],
        sub = []
    ),
    res!(
        "discovery.k8s.io",
        "v1",
        "endpointslices",
        "endpointslice",
        "EndpointSlice",
        true,
        discovery::EndpointSlice,
        "io.k8s.api.discovery.v1.EndpointSlice",
        short = [],
        cat = [],
        sub = []
    ),
    res!(
        "autoscaling",
        "v2",
        "horizontalpodautoscalers",
        "horizontalpodautoscaler",
        "HorizontalPodAutoscaler",
        true,
        autoscaling::HorizontalPodAutoscaler,
        "io.k8s.api.autoscaling.v2.HorizontalPodAutoscaler",
        short = ["hpa"],
        cat = ["all"],
        sub = [Status]
    ),
    res!(
        "policy",
        "v1",
        "poddisruptionbudgets",
        "poddisruptionbudget",
        "PodDisruptionBudget",
        true,
        policy::PodDisruptionBudget,
        "io.k8s.api.policy.v1.PodDisruptionBudget",
        short = ["pdb"],
        cat = [],
        sub = [Status]
    ),
    res!(
        "rbac.authorization.k8s.io",
        "v1",
        "roles",
        "role",
        "Role",
        true,
        rbac::Role,
        "io.k8s.api.rbac.v1.Role",
        short = [],
        cat = [],
        sub = []
    ),
    res!(
        "rbac.authorization.k8s.io",
        "v1",
        "rolebindings",
        "rolebinding",
        "RoleBinding",
        true,
        rbac::RoleBinding,
        "io.k8s.api.rbac.v1.RoleBinding",
        short = [],
        cat = [],
        sub = []
    ),
    res!(
        "rbac.authorization.k8s.io",
        "v1",
        "clusterroles",
        "clusterrole",
        "ClusterRole",
        false,
        rbac::ClusterRole,
        "io.k8s.api.rbac.v1.ClusterRole",
        short = [],
        cat = [],
        sub = []
    ),
    res!(
        "rbac.authorization.k8s.io",
        "v1",
        "clusterrolebindings",
        "clusterrolebinding",
        "ClusterRoleBinding",
        false,
        rbac::ClusterRoleBinding,
        "io.k8s.api.rbac.v1.ClusterRoleBinding",
        short = [],
        cat = [],
        sub = []
    ),
    res!(
        "events.k8s.io",
        "v1",
        "events",
        "event",
        "Event",
        true,
        events::Event,
        "io.k8s.api.events.v1.Event",
        short = ["ev"],
        cat = [],
        sub = []
    ),
    res!(
        "storage.k8s.io",
        "v1",
        "storageclasses",
        "storageclass",
        "StorageClass",
        false,
        storage::StorageClass,
        "io.k8s.api.storage.v1.StorageClass",
        short = ["sc"],
        cat = [],
        sub = []
    ),
    res!(
        "scheduling.k8s.io",
        "v1",
        "priorityclasses",
        "priorityclass",
        "PriorityClass",
        false,
        scheduling::PriorityClass,
        "io.k8s.api.scheduling.v1.PriorityClass",
        short = ["pc"],
        cat = [],
        sub = []
    ),
];

/// Group/versions in the order `/apis` lists them (the core group is served at `/api`).
pub fn group_versions() -> Vec<(&'static str, &'static str)> {
    let mut out: Vec<(&'static str, &'static str)> = Vec::new();
    for r in RESOURCES {
        if !r.group.is_empty() && !out.contains(&(r.group, r.version)) {
            out.push((r.group, r.version));
        }
    }
    out
}

/// Looks a resource up by group, version and plural name, as a URL names it.
pub fn lookup(group: &str, version: &str, resource: &str) -> Option<&'static ResourceInfo> {
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.version == version && r.resource == resource)
}

/// Looks a resource up by apiVersion and kind, as a manifest names it.
pub fn lookup_kind(api_version: &str, kind: &str) -> Option<&'static ResourceInfo> {
    let (group, version) = match api_version.split_once('/') {
        Some((g, v)) => (g, v),
        None => ("", api_version),
    };
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.version == version && r.kind == kind)
}

pub fn resources_in(group: &str, version: &str) -> impl Iterator<Item = &'static ResourceInfo> {
    let group = group.to_string();
    let version = version.to_string();
    RESOURCES
        .iter()
        .filter(move |r| r.group == group && r.version == version)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_agree() {
        for r in RESOURCES {
            assert!(std::ptr::eq(
                lookup(r.group, r.version, r.resource).expect("by resource"),
                r
            ));
            assert!(std::ptr::eq(
                lookup_kind(&r.api_version(), r.kind).expect("by kind"),
                r
            ));
        }
    }

    #[test]
    fn round_trip_drops_unknown_and_rejects_wrong_shape() {
        let pods = lookup("", "v1", "pods").expect("pods");
        let v = serde_json::json!({"apiVersion":"v1","kind":"Pod","metadata":{"name":"a"},
            "spec":{"containers":[{"name":"c","image":"i","bogus":1}]}});
        let out = (pods.round_trip)(&v).expect("valid pod");
        assert!(out["spec"]["containers"][0].get("bogus").is_none());
        let bad = serde_json::json!({"metadata":{"name":"a"},"spec":{"containers":"nope"}});
        assert!((pods.round_trip)(&bad).is_err());
    }

    #[test]
    fn keys_do_not_overlap_between_namespaces() {
        let pods = lookup("", "v1", "pods").expect("pods");
        let a = pods.key_prefix(Some("default"));
        let b = pods.key(Some("default-2"), "x");
        assert!(!b.starts_with(&a));
    }
}
