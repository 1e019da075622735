//! What `kubectl get` shows: the columns and cells of a `meta.k8s.io/v1` Table.
//!
//! The API server answers `Accept: application/json;as=Table;v=v1;g=meta.k8s.io` with a Table whose
//! columns and cells come from the Kubernetes printers (`pkg/printers/internalversion`). This module
//! reproduces those printers over untyped JSON so `kubectl get` output is indistinguishable from a
//! real cluster's. The server always prints the wide columns (priority 1) and lets the client hide
//! them, so [`row_cells`] returns every column [`columns`] lists, in the same order.
//!
//! Objects are read as the API server would see them after decoding: fields the versioned defaults
//! fill in (a Deployment's `replicas`, a Service's `type`, a PersistentVolume's `volumeMode` ...)
//! print their default when absent. Nothing here panics on a missing or oddly typed field: a
//! field of the wrong type reads as absent.

use jiff::{SignedDuration, Timestamp};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::defaults::qty::Quantity;
use crate::registry::ResourceInfo;

/// One column of a Table, as `meta.k8s.io/v1` `TableColumnDefinition` serializes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Column {
    /// Human-readable name, e.g. `Name`, `Ready`; kubectl upper-cases it for display.
    pub name: &'static str,
    /// OpenAPI type of the cells: `string`, `integer`, `number`, `boolean` or `date`.
    #[serde(rename = "type")]
    pub type_: &'static str,
    /// OpenAPI format hint; `name` marks the column holding the object's name.
    pub format: &'static str,
    pub description: &'static str,
    /// 0 for the default view, 1 for columns kubectl only shows with `-o wide`.
    pub priority: i32,
}

const fn col(name: &'static str, type_: &'static str, description: &'static str) -> Column {
    Column {
        name,
        type_,
        format: "",
        description,
        priority: 0,
    }
}

const fn wide(name: &'static str, type_: &'static str, description: &'static str) -> Column {
    Column {
        name,
        type_,
        format: "",
        description,
        priority: 1,
    }
}

const NAME: Column = Column {
    name: "Name",
    type_: "string",
    format: "name",
    description: doc::NAME,
    priority: 0,
};
const AGE: Column = col("Age", "string", doc::AGE);
const CONTAINERS: Column = wide(
    "Containers",
    "string",
    "Names of each container in the template.",
);
const IMAGES: Column = wide(
    "Images",
    "string",
    "Images referenced by each container in the template.",
);

/// The columns `kubectl get` shows for a resource, wide ones included.
pub fn columns(info: &ResourceInfo) -> Vec<Column> {
    Printer::for_resource(info).columns().to_vec()
}

/// The cells of one object's row, one per entry of [`columns`], computed as the Kubernetes API
/// server's printers compute them. `now` is the moment ages and durations are measured from.
pub fn row_cells(info: &ResourceInfo, obj: &Value, now: Timestamp) -> Vec<Value> {
    Printer::for_resource(info).cells(obj, now)
}

/// Kubernetes' `duration.HumanDuration`: a short age with 2–3 significant figures
/// (`45s`, `119s`, `2m30s`, `15m`, `3h20m`, `10h`, `3d4h`, `45d`, `2y30d`, `9y`).
///
/// Up to a second into the future still reads as `0s` to tolerate clock skew; anything further
/// ahead is `<invalid>`.
pub fn human_duration(d: SignedDuration) -> String {
    // Go truncates toward zero, as `as_secs` does.
    let seconds = d.as_secs();
    if seconds < -1 {
        return "<invalid>".to_string();
    }
    if seconds < 0 {
        return "0s".to_string();
    }
    if seconds < 60 * 2 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        let s = seconds % 60;
        if s == 0 {
            return format!("{minutes}m");
        }
        return format!("{minutes}m{s}s");
    }
    if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = seconds / 3600;
    if hours < 8 {
        let m = minutes % 60;
        if m == 0 {
            return format!("{hours}h");
        }
        return format!("{hours}h{m}m");
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        let h = hours % 24;
        if h == 0 {
            return format!("{}d", hours / 24);
        }
        return format!("{}d{h}h", hours / 24);
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        let dy = (hours / 24) % 365;
        if dy == 0 {
            return format!("{}y", hours / 24 / 365);
        }
        return format!("{}y{dy}d", hours / 24 / 365);
    }
    format!("{}y", hours / 24 / 365)
}

/// Which upstream printer handles a resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Printer {
    Pod,
    PodTemplate,
    PodDisruptionBudget,
    ReplicaSet,
    DaemonSet,
    Job,
    CronJob,
    Service,
    Ingress,
    IngressClass,
    StatefulSet,
    Endpoints,
    Node,
    /// Core and events.k8s.io Events share one storage and printer upstream; the flag says which
    /// field names the object uses.
    Event {
        events_api: bool,
    },
    Namespace,
    Secret,
    ServiceAccount,
    PersistentVolume,
    PersistentVolumeClaim,
    Deployment,
    HorizontalPodAutoscaler,
    ConfigMap,
    NetworkPolicy,
    RoleBinding,
    ClusterRoleBinding,
    Lease,
    StorageClass,
    ControllerRevision,
    ResourceQuota,
    PriorityClass,
    RuntimeClass,
    EndpointSlice,
    /// The apiserver's default table convertor, for kinds without a printer (Role, ClusterRole,
    /// LimitRange, ...): name and RFC 3339 creation time.
    Default,
}

impl Printer {
    fn for_resource(info: &ResourceInfo) -> Printer {
        match (info.group, info.kind) {
            ("", "Pod") => Printer::Pod,
            ("", "PodTemplate") => Printer::PodTemplate,
            ("policy", "PodDisruptionBudget") => Printer::PodDisruptionBudget,
            ("apps", "ReplicaSet") => Printer::ReplicaSet,
            ("apps", "DaemonSet") => Printer::DaemonSet,
            ("batch", "Job") => Printer::Job,
            ("batch", "CronJob") => Printer::CronJob,
            ("", "Service") => Printer::Service,
            ("networking.k8s.io", "Ingress") => Printer::Ingress,
            ("networking.k8s.io", "IngressClass") => Printer::IngressClass,
            ("apps", "StatefulSet") => Printer::StatefulSet,
            ("", "Endpoints") => Printer::Endpoints,
            ("", "Node") => Printer::Node,
            ("", "Event") => Printer::Event { events_api: false },
            ("events.k8s.io", "Event") => Printer::Event { events_api: true },
            ("", "Namespace") => Printer::Namespace,
            ("", "Secret") => Printer::Secret,
            ("", "ServiceAccount") => Printer::ServiceAccount,
            ("", "PersistentVolume") => Printer::PersistentVolume,
            ("", "PersistentVolumeClaim") => Printer::PersistentVolumeClaim,
            ("apps", "Deployment") => Printer::Deployment,
            ("autoscaling", "HorizontalPodAutoscaler") => Printer::HorizontalPodAutoscaler,
            ("", "ConfigMap") => Printer::ConfigMap,
            ("networking.k8s.io", "NetworkPolicy") => Printer::NetworkPolicy,
            ("rbac.authorization.k8s.io", "RoleBinding") => Printer::RoleBinding,
            ("rbac.authorization.k8s.io", "ClusterRoleBinding") => Printer::ClusterRoleBinding,
            ("coordination.k8s.io", "Lease") => Printer::Lease,
            ("storage.k8s.io", "StorageClass") => Printer::StorageClass,
            ("apps", "ControllerRevision") => Printer::ControllerRevision,
            ("", "ResourceQuota") => Printer::ResourceQuota,
            ("scheduling.k8s.io", "PriorityClass") => Printer::PriorityClass,
            ("node.k8s.io", "RuntimeClass") => Printer::RuntimeClass,
            ("discovery.k8s.io", "EndpointSlice") => Printer::EndpointSlice,
            _ => Printer::Default,
        }
    }

    // Each list is a named `const`: calls to `col`/`wide` are not promoted to `'static` on their
    // own, but in a const item they are evaluated at compile time.
    fn columns(self) -> &'static [Column] {
        match self {
            Printer::Pod => {
                const COLUMNS: &[Column] = &[
                    NAME,
                    col(
                        "Ready",
                        "string",
                        "The aggregate readiness state of this pod for accepting traffic.",
                    ),
                    col(
                        "Status",
                        "string",
                        "The aggregate status of the containers in this pod.",
                    ),
                    col(
                        "Restarts",
                        "string",
                        "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.",
                    ),
                    AGE,
                    wide("IP", "string", doc::POD_IP),
                    wide("Node", "string", doc::NODE_NAME),
                    wide("Nominated Node", "string", doc::NOMINATED),
                    wide("Readiness Gates", "string", doc::READINESS_GATES),
                ];
                COLUMNS
            }
            Printer::PodTemplate => {
                const COLUMNS: &[Column] = &[
                    NAME,
                    col(
                        "Containers",
                        "string",
                        "Names of each container in the template.",
                    ),
                    col(
                        "Images",
                        "string",
                        "Images referenced by each container in the template.",
                    ),
                    col("Pod Labels", "string", "The labels for the pod template."),
                ];
                COLUMNS
            }
            Printer::PodDisruptionBudget => {
                const COLUMNS: &[Column] = &[
                    NAME,
                    col(
                        "Min Available",
                        "string",
                        "The minimum number of pods that must be available.",
                    ),
                    col(
                        "Max Unavailable",
                        "string",
                        "The maximum number of pods that may be unavailable.",
                    ),
                    col(
                        "Allowed Disruptions",
                        "integer",
                        "Calculated number of pods that may be disrupted at this time.",
                    ),
                    AGE,
                ];
                COLUMNS
            }
            Printer::ReplicaSet => {
                const COLUMNS: &[Column] = &[
                    NAME,
                    col("Desired", "integer", doc::RS_REPLICAS),
                    col("Current", "integer", doc::RS_STATUS_REPLICAS),
                    col("Ready", "integer", doc::RS_READY),
                    AGE,
                    CONTAINERS,
                    IMAGES,
                    wide("Selector", "string", doc::RS_SELECTOR),
                ];
                COLUMNS
            }
            Printer::DaemonSet => {
                const COLUMNS: &[Column] = &[
                    NAME,
                    col("Desired", "integer", doc::DS_DESIRED),
                    col("Current", "integer", doc::DS_CURRENT),
                    col("Ready", "integer", doc::DS_READY),
                    col("Up-to-date", "integer", doc::DS_UPDATED),
                    col("Available", "integer", doc::DS_AVAILABLE),
                    col("Node Selector", "string", doc::NODE_SELECTOR),
                    AGE,
                    CONTAINERS,
                    IMAGES,
                    wide("Selector", "string", doc::DS_SELECTOR),
                ];
                COLUMNS
            }
            Printer::Job => {
                const COLUMNS: &[Column] = &[
                    NAME,
                    col("Status", "string", "Status of the job."),
                    col("Completions", "string", doc::JOB_SUCCEEDED),
                    col("Duration", "string", "Time required to complete the job."),
                    AGE,
                    CONTAINERS,
                    IMAGES,
                    wide("Selector", "string", doc::JOB_SELECTOR),
                ];
                COLUMNS
            }
            Printer::CronJob => {
                const COLUMNS: &[Column] = &[
                    NAME,
                    col("Schedule", "string", doc::CJ_SCHEDULE),
                    col("Timezone", "string", doc::CJ_TIMEZONE),
                    col("Suspend", "boolean", doc::CJ_SUSPEND),
                    col("Active", "integer", doc::CJ_ACTIVE),
                    col("Last Schedule", "string", doc::CJ_LAST),
                    AGE,
                    CONTAINERS,
                    IMAGES,
                    wide("Selector", "string", doc::JOB_SELECTOR),
                ];
                COLUMNS
            }
            Printer::Service => {
                const COLUMNS: &[Column] = &[
                    NAME,
                    col("Type", "string", doc::SVC_TYPE),
                    col("Cluster-IP", "string", doc::SVC_CLUSTER_IP),
                    col("External-IP", "string", doc::SVC_EXTERNAL_IPS),
                    col("Port(s)", "string", doc::SVC_PORTS),
                    AGE,
                    wide("Selector", "string", doc::SVC_SELECTOR),
                ];
                COLUMNS
            }
            Printer::Ingress => {
                const COLUMNS: &[Column] = &[
                    NAME,
                    col(
                        "Class",
                        "string",
                        "The name of the IngressClass resource that should be used for additional configuration",
                    ),
                    col(
                        "Hosts",
                        "string",
                        "Hosts that incoming requests are matched against before the ingress rule",
                    ),
                    col(
                        "Address",
                        "string",
                        "Address is a list containing ingress points for the load-balancer",
                    ),
                    col("Ports", "string", "Ports of TLS configurations that open"),
                    AGE,
                ];
                COLUMNS
            }
            Printer::IngressClass => {
                const COLUMNS: &[Column] = &[
                    NAME,
                    col(
                        "Controller",
                        "string",
                        "Controller that is responsible for handling this class",
                    ),
                    col(
                        "Parameters",
                        "string",
                        "A reference to a resource with additional parameters",
                    ),
                    AGE,
                ];
                COLUMNS
            }
            Printer::StatefulSet => {
                const COLUMNS: &[Column] = &[
                    NAME,
                    col("Ready", "string", "Number of the pod with ready state"),
                    AGE,
                    CONTAINERS,
                    IMAGES,
                ];
                COLUMNS
            }
            Printer::Endpoints => {
                const COLUMNS: &[Column] =
                    &[NAME, col("Endpoints", "string", doc::EP_SUBSETS), AGE];
                COLUMNS
            }
            Printer::Node => {
                const COLUMNS: &[Column] = &[
                    NAME,
                    col("Status", "string", "The status of the node"),
                    col("Roles", "string", "The roles of the node"),
                    AGE,
                    col("Version", "string", doc::KUBELET_VERSION),
                    wide("Internal-IP", "string", doc::NODE_ADDRESSES),
                    wide("External-IP", "string", doc::NODE_ADDRESSES),
                    wide("OS-Image", "string", doc::OS_IMAGE),
                    wide("Kernel-Version", "string", doc::KERNEL),
                    wide("Container-Runtime", "string", doc::RUNTIME),
                ];
                COLUMNS
            }
            Printer::Event { .. } => {
                const COLUMNS: &[Column] = &[
                    col("Last Seen", "string", doc::EV_LAST),
                    col("Type", "string", doc::EV_TYPE),
                    col("Reason", "string", doc::EV_REASON),
                    col("Object", "string", doc::EV_OBJECT),
                    wide("Subobject", "string", doc::EV_FIELD_PATH),
                    wide("Source", "string", doc::EV_SOURCE),
                    col("Message", "string", doc::EV_MESSAGE),
                    wide("First Seen", "string", doc::EV_FIRST),
                    wide("Count", "string", doc::EV_COUNT),
                    Column {
                        priority: 1,
                        ..NAME
                    },
                ];
                COLUMNS
            }
            Printer::Namespace => {
                const COLUMNS: &[Column] = &[
                    NAME,
                    col("Status", "string", "The status of the namespace"),
                    AGE,
                ];
                COLUMNS
            }
            Printer::Secret => {
                const COLUMNS: &[Column] = &[
                    NAME,
                    col("Type", "string", doc::SECRET_TYPE),
                    col("Data", "string", doc::SECRET_DATA),
                    AGE,
                ];
                COLUMNS
            }
            Printer::ServiceAccount => {
                const COLUMNS: &[Column] = &[NAME, col("Secrets", "string", doc::SA_SECRETS), AGE];
                COLUMNS
            }
            Printer::PersistentVolume => {
                const COLUMNS: &[Column] = &[
                    NAME,
                    col("Capacity", "string", doc::PV_CAPACITY),
                    col("Access Modes", "string", doc::PV_ACCESS),
                    col("Reclaim Policy", "string", doc::PV_RECLAIM),
                    col("Status", "string", doc::PV_PHASE),
                    col("Claim", "string", doc::PV_CLAIM),
                    col("StorageClass", "string", "StorageClass of the pv"),
                    col(
                        "VolumeAttributesClass",
                        "string",
                        "VolumeAttributesClass of the pv",
                    ),
                    col("Reason", "string", doc::PV_REASON),
                    AGE,
                    wide("VolumeMode", "string", doc::PV_MODE),
                ];
                COLUMNS
            }
            Printer::PersistentVolumeClaim => {
                const COLUMNS: &[Column] = &[
                    NAME,
                    col("Status", "string", doc::PVC_PHASE),
                    col("Volume", "string", doc::PVC_VOLUME),
                    col("Capacity", "string", doc::PVC_CAPACITY),
                    col("Access Modes", "string", doc::PVC_ACCESS),
                    col("StorageClass", "string", "StorageClass of the pvc"),
                    col(
                        "VolumeAttributesClass",
                        "string",
                        "VolumeAttributesClass of the pvc",
                    ),
                    AGE,
                    wide("VolumeMode", "string", doc::PVC_MODE),
                ];
                COLUMNS
            }
            Printer::Deployment => {
                const COLUMNS: &[Column] = &[
                    NAME,
                    col("Ready", "string", "Number of the pod with ready state"),
                    col("Up-to-date", "string", doc::DEPLOY_UPDATED),
                    col("Available", "string", doc::DEPLOY_AVAILABLE),
                    AGE,
                    CONTAINERS,
                    IMAGES,
                    wide("Selector", "string", doc::DEPLOY_SELECTOR),
                ];
                COLUMNS
            }
            Printer::HorizontalPodAutoscaler => {
                const COLUMNS: &[Column] = &[
                    NAME,
                    col("Reference", "string", doc::HPA_REF),
                    col("Targets", "string", doc::HPA_METRICS),
                    col("MinPods", "string", doc::HPA_MIN),
                    col("MaxPods", "string", doc::HPA_MAX),
                    col("Replicas", "string", doc::HPA_CURRENT),
                    AGE,
                ];
                COLUMNS
            }
            Printer::ConfigMap => {
                const COLUMNS: &[Column] = &[NAME, col("Data", "string", doc::CM_DATA), AGE];
                COLUMNS
            }
            Printer::NetworkPolicy => {
                const COLUMNS: &[Column] = &[
                    NAME,
                    col("Pod-Selector", "string", doc::NETPOL_SELECTOR),
                    AGE,
                ];
                COLUMNS
            }
            Printer::RoleBinding => {
                const COLUMNS: &[Column] = &[
                    NAME,
                    col("Role", "string", doc::RB_ROLE),
                    AGE,
                    wide("Users", "string", "Users in the roleBinding"),
                    wide("Groups", "string", "Groups in the roleBinding"),
                    wide(
                        "ServiceAccounts",
                        "string",
                        "ServiceAccounts in the roleBinding",
                    ),
                ];
                COLUMNS
            }
            Printer::ClusterRoleBinding => {
                const COLUMNS: &[Column] = &[
                    NAME,
                    col("Role", "string", doc::CRB_ROLE),
                    AGE,
                    wide("Users", "string", "Users in the clusterRoleBinding"),
                    wide("Groups", "string", "Groups in the clusterRoleBinding"),
                    wide(
                        "ServiceAccounts",
                        "string",
                        "ServiceAccounts in the clusterRoleBinding",
                    ),
                ];
                COLUMNS
            }
            Printer::Lease => {
                const COLUMNS: &[Column] = &[NAME, col("Holder", "string", doc::LEASE_HOLDER), AGE];
                COLUMNS
            }
            Printer::StorageClass => {
                const COLUMNS: &[Column] = &[
                    NAME,
                    col("Provisioner", "string", doc::SC_PROVISIONER),
                    col("ReclaimPolicy", "string", doc::SC_RECLAIM),
                    col("VolumeBindingMode", "string", doc::SC_BINDING),
                    col("AllowVolumeExpansion", "string", doc::SC_EXPANSION),
                    AGE,
                ];
                COLUMNS
            }
            Printer::ControllerRevision => {
                const COLUMNS: &[Column] = &[
                    NAME,
                    col("Controller", "string", "Controller of the object"),
                    col("Revision", "string", doc::CR_REVISION),
                    AGE,
                ];
                COLUMNS
            }
            Printer::ResourceQuota => {
                const COLUMNS: &[Column] = &[
                    NAME,
                    col(
                        "Request",
                        "string",
                        "Request represents a minimum amount of cpu/memory that a container may consume.",
                    ),
                    col(
                        "Limit",
                        "string",
                        "Limits control the maximum amount of cpu/memory that a container may use independent of contention on the node.",
                    ),
                    AGE,
                ];
                COLUMNS
            }
            Printer::PriorityClass => {
                const COLUMNS: &[Column] = &[
                    NAME,
                    col("Value", "integer", doc::PC_VALUE),
                    col("Global-Default", "boolean", doc::PC_DEFAULT),
                    AGE,
                    wide("PreemptionPolicy", "string", doc::PC_PREEMPTION),
                ];
                COLUMNS
            }
            // Upstream describes Handler with ObjectMeta's (missing) "handler" doc: an empty string.
            Printer::RuntimeClass => {
                const COLUMNS: &[Column] = &[NAME, col("Handler", "string", ""), AGE];
                COLUMNS
            }
            Printer::EndpointSlice => {
                const COLUMNS: &[Column] = &[
                    NAME,
                    col("AddressType", "string", doc::ES_ADDRESS_TYPE),
                    col("Ports", "string", doc::ES_PORTS),
                    col("Endpoints", "string", doc::ES_ENDPOINTS),
                    AGE,
                ];
                COLUMNS
            }
            Printer::Default => {
                const COLUMNS: &[Column] = &[NAME, col("Created At", "date", doc::AGE)];
                COLUMNS
            }
        }
    }

    fn cells(self, obj: &Value, now: Timestamp) -> Vec<Value> {
        match self {
            Printer::Pod => pod_cells(obj, now),
            Printer::PodTemplate => {
                let (names, images) = container_cells(obj, &["template", "spec", "containers"]);
                vec![
                    name(obj),
                    names.into(),
                    images.into(),
                    format_labels(map_at(obj, &["template", "metadata", "labels"])).into(),
                ]
            }
            Printer::PodDisruptionBudget => vec![
                name(obj),
                int_or_string(at(obj, &["spec", "minAvailable"])).into(),
                int_or_string(at(obj, &["spec", "maxUnavailable"])).into(),
                int_at(obj, &["status", "disruptionsAllowed"]).into(),
                age(obj, now),
            ],
            Printer::ReplicaSet => {
                let (names, images) =
                    container_cells(obj, &["spec", "template", "spec", "containers"]);
                vec![
                    name(obj),
                    replicas(obj).into(),
                    int_at(obj, &["status", "replicas"]).into(),
                    int_at(obj, &["status", "readyReplicas"]).into(),
                    age(obj, now),
                    names.into(),
                    images.into(),
                    format_label_selector(at(obj, &["spec", "selector"])).into(),
                ]
            }
            Printer::DaemonSet => {
                let (names, images) =
                    container_cells(obj, &["spec", "template", "spec", "containers"]);
                vec![
                    name(obj),
                    int_at(obj, &["status", "desiredNumberScheduled"]).into(),
                    int_at(obj, &["status", "currentNumberScheduled"]).into(),
                    int_at(obj, &["status", "numberReady"]).into(),
                    int_at(obj, &["status", "updatedNumberScheduled"]).into(),
                    int_at(obj, &["status", "numberAvailable"]).into(),
                    format_labels(map_at(obj, &["spec", "template", "spec", "nodeSelector"]))
                        .into(),
                    age(obj, now),
                    names.into(),
                    images.into(),
                    format_label_selector(at(obj, &["spec", "selector"])).into(),
                ]
            }
            Printer::Job => job_cells(obj, now),
            Printer::CronJob => {
                let last_schedule = match at(obj, &["status", "lastScheduleTime"]) {
                    None => "<none>".to_string(),
                    Some(t) => since(now, parse_time(t)),
                };
                let (names, images) = container_cells(
                    obj,
                    &[
                        "spec",
                        "jobTemplate",
                        "spec",
                        "template",
                        "spec",
                        "containers",
                    ],
                );
                vec![
                    name(obj),
                    str_at(obj, &["spec", "schedule"]).into(),
                    at(obj, &["spec", "timeZone"])
                        .and_then(Value::as_str)
                        .unwrap_or("<none>")
                        .into(),
                    // `suspend` defaults to false when decoded, so the upstream "<unset>" never shows.
                    go_bool(bool_at(obj, &["spec", "suspend"]).unwrap_or(false)).into(),
                    (list_at(obj, &["status", "active"]).len() as i64).into(),
                    last_schedule.into(),
                    age(obj, now),
                    names.into(),
                    images.into(),
                    format_label_selector(at(obj, &["spec", "jobTemplate", "spec", "selector"]))
                        .into(),
                ]
            }
            Printer::Service => service_cells(obj, now),
            Printer::Ingress => {
                let rules = list_at(obj, &["spec", "rules"]);
                let ports = if list_at(obj, &["spec", "tls"]).is_empty() {
                    "80"
                } else {
                    "80, 443"
                };
                vec![
                    name(obj),
                    at(obj, &["spec", "ingressClassName"])
                        .and_then(Value::as_str)
                        .unwrap_or("<none>")
                        .into(),
                    format_hosts(rules).into(),
                    load_balancer_addresses(list_at(obj, &["status", "loadBalancer", "ingress"]))
                        .join(",")
                        .into(),
                    ports.into(),
                    age(obj, now),
                ]
            }
            Printer::IngressClass => {
                let parameters = match at(obj, &["spec", "parameters"]) {
                    None => "<none>".to_string(),
                    Some(p) => {
                        let mut s = str_at(p, &["kind"]).to_string();
                        if let Some(group) = at(p, &["apiGroup"]).and_then(Value::as_str) {
                            s.push('.');
                            s.push_str(group);
                        }
                        s.push('/');
                        s.push_str(str_at(p, &["name"]));
                        s
                    }
                };
                vec![
                    name(obj),
                    str_at(obj, &["spec", "controller"]).into(),
                    parameters.into(),
                    age(obj, now),
                ]
            }
            Printer::StatefulSet => {
                let (names, images) =
                    container_cells(obj, &["spec", "template", "spec", "containers"]);
                vec![
                    name(obj),
                    format!(
                        "{}/{}",
                        int_at(obj, &["status", "readyReplicas"]),
                        replicas(obj)
                    )
                    .into(),
                    age(obj, now),
                    names.into(),
                    images.into(),
                ]
            }
            Printer::Endpoints => vec![name(obj), format_endpoints(obj).into(), age(obj, now)],
            Printer::Node => node_cells(obj, now),
            Printer::Event { events_api } => event_cells(obj, now, events_api),
            Printer::Namespace => vec![
                name(obj),
                // SetDefaults_NamespaceStatus makes a missing phase Active.
                non_empty_or(str_at(obj, &["status", "phase"]), "Active").into(),
                age(obj, now),
            ],
            Printer::Secret => {
                // The internal Secret merges stringData into data, so count the union of keys.
                let mut keys: Vec<&str> = Vec::new();
                for field in ["data", "stringData"] {
                    if let Some(m) = map_at(obj, &[field]) {
                        keys.extend(m.keys().map(String::as_str));
                    }
                }
                keys.sort_unstable();
                keys.dedup();
                vec![
                    name(obj),
                    non_empty_or(str_at(obj, &["type"]), "Opaque").into(),
                    (keys.len() as i64).into(),
                    age(obj, now),
                ]
            }
            Printer::ServiceAccount => vec![
                name(obj),
                (list_at(obj, &["secrets"]).len() as i64).into(),
                age(obj, now),
            ],
            Printer::PersistentVolume => pv_cells(obj, now),
            Printer::PersistentVolumeClaim => pvc_cells(obj, now),
            Printer::Deployment => {
                let (names, images) =
                    container_cells(obj, &["spec", "template", "spec", "containers"]);
                let selector = match label_selector_string(at(obj, &["spec", "selector"])) {
                    Ok(s) => s,
                    Err(()) => "<invalid>".to_string(),
                };
                vec![
                    name(obj),
                    format!(
                        "{}/{}",
                        int_at(obj, &["status", "readyReplicas"]),
                        replicas(obj)
                    )
                    .into(),
                    int_at(obj, &["status", "updatedReplicas"]).into(),
                    int_at(obj, &["status", "availableReplicas"]).into(),
                    age(obj, now),
                    names.into(),
                    images.into(),
                    selector.into(),
                ]
            }
            Printer::HorizontalPodAutoscaler => hpa_cells(obj, now),
            Printer::ConfigMap => vec![
                name(obj),
                (count_at(obj, &["data"]) + count_at(obj, &["binaryData"])).into(),
                age(obj, now),
            ],
            Printer::NetworkPolicy => vec![
                name(obj),
                // podSelector is not a pointer upstream: absent means the empty selector.
                format_label_selector(Some(
                    at(obj, &["spec", "podSelector"]).unwrap_or(&Value::Null),
                ))
                .into(),
                age(obj, now),
            ],
            Printer::RoleBinding | Printer::ClusterRoleBinding => {
                let (users, groups, service_accounts) = subjects(list_at(obj, &["subjects"]));
                vec![
                    name(obj),
                    format!(
                        "{}/{}",
                        str_at(obj, &["roleRef", "kind"]),
                        str_at(obj, &["roleRef", "name"])
                    )
                    .into(),
                    age(obj, now),
                    users.join(", ").into(),
                    groups.join(", ").into(),
                    service_accounts.join(", ").into(),
                ]
            }
            Printer::Lease => vec![
                name(obj),
                str_at(obj, &["spec", "holderIdentity"]).into(),
                age(obj, now),
            ],
            Printer::StorageClass => {
                let mut display = str_at(obj, &["metadata", "name"]).to_string();
                if is_default_storage_class(obj) {
                    display.push_str(" (default)");
                }
                vec![
                    display.into(),
                    str_at(obj, &["provisioner"]).into(),
                    non_empty_or(str_at(obj, &["reclaimPolicy"]), "Delete").into(),
                    non_empty_or(str_at(obj, &["volumeBindingMode"]), "Immediate").into(),
                    bool_at(obj, &["allowVolumeExpansion"])
                        .unwrap_or(false)
                        .into(),
                    age(obj, now),
                ]
            }
            Printer::ControllerRevision => vec![
                name(obj),
                controller_of(obj).into(),
                int_at(obj, &["revision"]).into(),
                age(obj, now),
            ],
            Printer::ResourceQuota => resource_quota_cells(obj, now),
            Printer::PriorityClass => vec![
                name(obj),
                int_at(obj, &["value"]).into(),
                bool_at(obj, &["globalDefault"]).unwrap_or(false).into(),
                age(obj, now),
                // SetDefaults_PriorityClass fills in PreemptLowerPriority.
                non_empty_or(str_at(obj, &["preemptionPolicy"]), "PreemptLowerPriority").into(),
            ],
            Printer::RuntimeClass => {
                vec![name(obj), str_at(obj, &["handler"]).into(), age(obj, now)]
            }
            Printer::EndpointSlice => vec![
                name(obj),
                str_at(obj, &["addressType"]).into(),
                format_discovery_ports(list_at(obj, &["ports"])).into(),
                format_discovery_endpoints(list_at(obj, &["endpoints"])).into(),
                age(obj, now),
            ],
            Printer::Default => {
                let created =
                    time_at(obj, &["metadata", "creationTimestamp"]).unwrap_or(GO_ZERO_TIME);
                vec![name(obj), rfc3339(created).into()]
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Per-kind printers too long to inline.

fn pod_cells(obj: &Value, now: Timestamp) -> Vec<Value> {
    let spec = at(obj, &["spec"]).unwrap_or(&Value::Null);
    let status = at(obj, &["status"]).unwrap_or(&Value::Null);
    let init_containers = list_at(spec, &["initContainers"]);

    let mut restarts: i64 = 0;
    let mut restartable_init_restarts: i64 = 0;
    let mut total_containers = list_at(spec, &["containers"]).len();
    let mut ready_containers: usize = 0;
    let mut last_restart: Option<Timestamp> = None;
    let mut last_restartable_init_restart: Option<Timestamp> = None;

    let phase = str_at(status, &["phase"]);
    let mut reason = non_empty_or(str_at(status, &["reason"]), phase).to_string();
    for condition in list_at(status, &["conditions"]) {
        if str_at(condition, &["type"]) == "PodScheduled"
            && str_at(condition, &["reason"]) == "SchedulingGated"
        {
            reason = "SchedulingGated".to_string();
        }
    }

    // Sidecars (init containers with restartPolicy Always) count as containers of the pod.
    let is_restartable = |container_name: &str| {
        init_containers
            .iter()
            .find(|c| str_at(c, &["name"]) == container_name)
            .is_some_and(|c| str_at(c, &["restartPolicy"]) == "Always")
    };
    total_containers += init_containers
        .iter()
        .filter(|c| str_at(c, &["restartPolicy"]) == "Always")
        .count();

    let mut initializing = false;
    for (i, container) in list_at(status, &["initContainerStatuses"])
        .iter()
        .enumerate()
    {
        let restart_count = int_at(container, &["restartCount"]);
        restarts += restart_count;
        let finished = last_termination(container);
        latest(&mut last_restart, finished);
        let restartable = is_restartable(str_at(container, &["name"]));
        if restartable {
            restartable_init_restarts += restart_count;
            latest(&mut last_restartable_init_restart, finished);
        }
        let terminated = at(container, &["state", "terminated"]);
        let waiting = at(container, &["state", "waiting"]);
        if terminated.is_some_and(|t| int_at(t, &["exitCode"]) == 0) {
            continue;
        }
        if restartable && bool_at(container, &["started"]) == Some(true) {
            if bool_at(container, &["ready"]) == Some(true) {
                ready_containers += 1;
            }
            continue;
        }
        if let Some(t) = terminated {
            // Initialization failed.
            let terminated_reason = str_at(t, &["reason"]);
            reason = if !terminated_reason.is_empty() {
                format!("Init:{terminated_reason}")
            } else if int_at(t, &["signal"]) != 0 {
                format!("Init:Signal:{}", int_at(t, &["signal"]))
            } else {
                format!("Init:ExitCode:{}", int_at(t, &["exitCode"]))
            };
        } else if let Some(w) = waiting.filter(|w| {
            let r = str_at(w, &["reason"]);
            !r.is_empty() && r != "PodInitializing"
        }) {
            reason = format!("Init:{}", str_at(w, &["reason"]));
        } else {
            reason = format!("Init:{i}/{}", init_containers.len());
        }
        initializing = true;
        break;
    }

    if !initializing || condition_is_true(status, "Initialized") {
        restarts = restartable_init_restarts;
        last_restart = last_restartable_init_restart;
        let mut has_running = false;
        for container in list_at(status, &["containerStatuses"]).iter().rev() {
            restarts += int_at(container, &["restartCount"]);
            latest(&mut last_restart, last_termination(container));
            let waiting_reason =
                at(container, &["state", "waiting"]).map(|w| str_at(w, &["reason"]));
            let terminated = at(container, &["state", "terminated"]);
            if let Some(r) = waiting_reason.filter(|r| !r.is_empty()) {
                reason = r.to_string();
            } else if let Some(t) = terminated {
                let terminated_reason = str_at(t, &["reason"]);
                reason = if !terminated_reason.is_empty() {
                    terminated_reason.to_string()
                } else if int_at(t, &["signal"]) != 0 {
                    format!("Signal:{}", int_at(t, &["signal"]))
                } else {
                    format!("ExitCode:{}", int_at(t, &["exitCode"]))
                };
            } else if bool_at(container, &["ready"]) == Some(true)
                && at(container, &["state", "running"]).is_some()
            {
                has_running = true;
                ready_containers += 1;
            }
        }
        // A pod whose last-listed container completed is still Running while another runs.
        if reason == "Completed" && has_running {
            reason = if condition_is_true(status, "Ready") {
                "Running".to_string()
            } else {
                "NotReady".to_string()
            };
        }
    }

    if at(obj, &["metadata", "deletionTimestamp"]).is_some() {
        if str_at(status, &["reason"]) == "NodeLost" {
            reason = "Unknown".to_string();
        } else if phase != "Succeeded" && phase != "Failed" {
            reason = "Terminating".to_string();
        }
    }

    let restarts_text = match last_restart {
        Some(t) if restarts != 0 => format!("{restarts} ({} ago)", since(now, Some(t))),
        _ => restarts.to_string(),
    };

    // The internal PodIPs start with podIP whenever podIP is set (it is authoritative).
    let pod_ip = non_empty_or(
        str_at(status, &["podIP"]),
        list_at(status, &["podIPs"])
            .first()
            .map(|p| str_at(p, &["ip"]))
            .unwrap_or(""),
    );
    let gates = list_at(spec, &["readinessGates"]);
    let readiness_gates = if gates.is_empty() {
        "<none>".to_string()
    } else {
        let conditions = list_at(status, &["conditions"]);
        let true_conditions = gates
            .iter()
            .filter(|gate| {
                let wanted = str_at(gate, &["conditionType"]);
                conditions
                    .iter()
                    .find(|c| str_at(c, &["type"]) == wanted)
                    .is_some_and(|c| str_at(c, &["status"]) == "True")
            })
            .count();
        format!("{true_conditions}/{}", gates.len())
    };

    vec![
        name(obj),
        format!("{ready_containers}/{total_containers}").into(),
        reason.into(),
        restarts_text.into(),
        age(obj, now),
        non_empty_or(pod_ip, "<none>").into(),
        non_empty_or(str_at(spec, &["nodeName"]), "<none>").into(),
        non_empty_or(str_at(status, &["nominatedNodeName"]), "<none>").into(),
        readiness_gates.into(),
    ]
}

/// When a container last terminated, if it ever did.
fn last_termination(container_status: &Value) -> Option<Timestamp> {
    at(container_status, &["lastState", "terminated"]).and_then(|t| time_at(t, &["finishedAt"]))
}

fn latest(current: &mut Option<Timestamp>, candidate: Option<Timestamp>) {
    if let Some(c) = candidate
        && current.is_none_or(|cur| cur < c)
    {
        *current = Some(c);
    }
}

/// Whether the first condition of this type has status True, as upstream's helpers check.
fn condition_is_true(status: &Value, condition_type: &str) -> bool {
    list_at(status, &["conditions"])
        .iter()
        .find(|c| str_at(c, &["type"]) == condition_type)
        .is_some_and(|c| str_at(c, &["status"]) == "True")
}

fn job_cells(obj: &Value, now: Timestamp) -> Vec<Value> {
    let succeeded = int_at(obj, &["status", "succeeded"]);
    let completions = match at(obj, &["spec", "completions"]).and_then(as_int) {
        Some(c) => format!("{succeeded}/{c}"),
        None => {
            // Decoding defaults parallelism to 1 when it is unset.
            let parallelism = at(obj, &["spec", "parallelism"])
                .and_then(as_int)
                .unwrap_or(1);
            if parallelism > 1 {
                format!("{succeeded}/1 of {parallelism}")
            } else {
                format!("{succeeded}/1")
            }
        }
    };
    let duration = match (
        at(obj, &["status", "startTime"]),
        at(obj, &["status", "completionTime"]),
    ) {
        (None, _) => String::new(),
        (Some(start), None) => since(now, parse_time(start)),
        (Some(start), Some(end)) => match (parse_time(start), parse_time(end)) {
            (Some(s), Some(e)) => human_duration(e.duration_since(s)),
            // Go's zero time makes the duration absurd rather than unknown; keep it readable.
            _ => "<unknown>".to_string(),
        },
    };
    let conditions = at(obj, &["status"]).unwrap_or(&Value::Null);
    let status = if condition_is_true(conditions, "Complete") {
        "Complete"
    } else if condition_is_true(conditions, "Failed") {
        "Failed"
    } else if at(obj, &["metadata", "deletionTimestamp"]).is_some() {
        "Terminating"
    } else if condition_is_true(conditions, "Suspended") {
        "Suspended"
    } else if condition_is_true(conditions, "FailureTarget") {
        "FailureTarget"
    } else {
        "Running"
    };
    let (names, images) = container_cells(obj, &["spec", "template", "spec", "containers"]);
    vec![
        name(obj),
        status.into(),
        completions.into(),
        duration.into(),
        age(obj, now),
        names.into(),
        images.into(),
        format_label_selector(at(obj, &["spec", "selector"])).into(),
    ]
}

fn service_cells(obj: &Value, now: Timestamp) -> Vec<Value> {
    let spec = at(obj, &["spec"]).unwrap_or(&Value::Null);
    // Decoding defaults the type to ClusterIP.
    let service_type = non_empty_or(str_at(spec, &["type"]), "ClusterIP");
    // The internal clusterIPs start with clusterIP whenever it is set.
    let cluster_ip = non_empty_or(
        str_at(spec, &["clusterIP"]),
        list_at(spec, &["clusterIPs"])
            .first()
            .and_then(Value::as_str)
            .unwrap_or(""),
    );
    let external_ips: Vec<&str> = list_at(spec, &["externalIPs"])
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let external_ip = match service_type {
        "ClusterIP" | "NodePort" => {
            if external_ips.is_empty() {
                "<none>".to_string()
            } else {
                external_ips.join(",")
            }
        }
        "LoadBalancer" => {
            let lb = load_balancer_addresses(list_at(obj, &["status", "loadBalancer", "ingress"]));
            if !external_ips.is_empty() {
                let mut all: Vec<&str> = lb.iter().map(String::as_str).collect();
                all.extend(&external_ips);
                all.join(",")
            } else if !lb.is_empty() {
                lb.join(",")
            } else {
                "<pending>".to_string()
            }
        }
        "ExternalName" => str_at(spec, &["externalName"]).to_string(),
        _ => "<unknown>".to_string(),
    };
    let ports: Vec<String> = list_at(spec, &["ports"])
        .iter()
        .map(|p| {
            let port = int_at(p, &["port"]);
            let protocol = non_empty_or(str_at(p, &["protocol"]), "TCP");
            let node_port = int_at(p, &["nodePort"]);
            if node_port > 0 {
                format!("{port}:{node_port}/{protocol}")
            } else {
                format!("{port}/{protocol}")
            }
        })
        .collect();
    let ports = if ports.is_empty() {
        "<none>".to_string()
    } else {
        ports.join(",")
    };
    vec![
        name(obj),
        service_type.into(),
        non_empty_or(cluster_ip, "<none>").into(),
        external_ip.into(),
        ports.into(),
        age(obj, now),
        format_labels(map_at(spec, &["selector"])).into(),
    ]
}

/// Load-balancer ingress points, IP preferred over hostname, sorted and de-duplicated.
fn load_balancer_addresses(ingress: &[Value]) -> Vec<String> {
    let mut out: Vec<String> = ingress
        .iter()
        .filter_map(|i| {
            let ip = str_at(i, &["ip"]);
            let host = str_at(i, &["hostname"]);
            if !ip.is_empty() {
                Some(ip.to_string())
            } else if !host.is_empty() {
                Some(host.to_string())
            } else {
                None
            }
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

fn format_hosts(rules: &[Value]) -> String {
    const MAX: usize = 3;
    let mut list: Vec<&str> = Vec::new();
    let mut more = false;
    for rule in rules {
        if list.len() == MAX {
            more = true;
        }
        let host = str_at(rule, &["host"]);
        if !more && !host.is_empty() {
            list.push(host);
        }
    }
    if list.is_empty() {
        return "*".to_string();
    }
    let joined = list.join(",");
    if more {
        return format!("{joined} + {} more...", rules.len().saturating_sub(MAX));
    }
    joined
}

fn format_endpoints(obj: &Value) -> String {
    const MAX: usize = 3;
    let subsets = list_at(obj, &["subsets"]);
    if subsets.is_empty() {
        return "<none>".to_string();
    }
    let mut list: Vec<String> = Vec::new();
    let mut more = false;
    let mut count = 0usize;
    for subset in subsets {
        let addresses = list_at(subset, &["addresses"]);
        let ports = list_at(subset, &["ports"]);
        if ports.is_empty() {
            // Headless services may have no ports.
            count += addresses.len();
            for address in addresses {
                if list.len() == MAX {
                    more = true;
                    break;
                }
                list.push(str_at(address, &["ip"]).to_string());
            }
            continue;
        }
        for port in ports {
            count += addresses.len();
            for address in addresses {
                if list.len() == MAX {
                    more = true;
                    break;
                }
                list.push(join_host_port(
                    str_at(address, &["ip"]),
                    int_at(port, &["port"]),
                ));
            }
        }
    }
    let joined = list.join(",");
    if more {
        return format!("{joined} + {} more...", count.saturating_sub(MAX));
    }
    joined
}

/// Go's `net.JoinHostPort`: IPv6 literals get brackets.
fn join_host_port(host: &str, port: i64) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

fn format_discovery_ports(ports: &[Value]) -> String {
    const MAX: usize = 3;
    let mut list = Vec::new();
    let mut more = false;
    for port in ports {
        if list.len() < MAX {
            let text = if let Some(n) = at(port, &["port"]).and_then(as_int) {
                n.to_string()
            } else if let Some(n) = at(port, &["name"]).and_then(Value::as_str) {
                n.to_string()
            } else {
                "*".to_string()
            };
            list.push(text);
        } else if list.len() == MAX {
            more = true;
        }
    }
    list_with_more(&list, more, ports.len(), MAX)
}

fn format_discovery_endpoints(endpoints: &[Value]) -> String {
    const MAX: usize = 3;
    let mut list = Vec::new();
    let mut more = false;
    let mut count = 0;
    for endpoint in endpoints {
        for address in list_at(endpoint, &["addresses"]) {
            if list.len() < MAX {
                list.push(address.as_str().unwrap_or("").to_string());
            } else if list.len() == MAX {
                more = true;
            }
            count += 1;
        }
    }
    list_with_more(&list, more, count, MAX)
}

fn list_with_more(list: &[String], more: bool, count: usize, max: usize) -> String {
    let joined = list.join(",");
    if more {
        return format!("{joined} + {} more...", count.saturating_sub(max));
    }
    if joined.is_empty() {
        return "<unset>".to_string();
    }
    joined
}

fn node_cells(obj: &Value, now: Timestamp) -> Vec<Value> {
    // Upstream keys conditions by type in a map, so the last Ready condition wins.
    let ready = list_at(obj, &["status", "conditions"])
        .iter()
        .rev()
        .find(|c| str_at(c, &["type"]) == "Ready");
    let mut status = vec![match ready {
        Some(c) if str_at(c, &["status"]) == "True" => "Ready",
        Some(_) => "NotReady",
        None => "Unknown",
    }];
    if bool_at(obj, &["spec", "unschedulable"]) == Some(true) {
        status.push("SchedulingDisabled");
    }

    let mut roles: Vec<&str> = Vec::new();
    if let Some(labels) = map_at(obj, &["metadata", "labels"]) {
        for (key, value) in labels {
            if let Some(role) = key.strip_prefix("node-role.kubernetes.io/") {
                if !role.is_empty() {
                    roles.push(role);
                }
            } else if key == "kubernetes.io/role"
                && let Some(v) = value.as_str().filter(|v| !v.is_empty())
            {
                roles.push(v);
            }
        }
    }
    roles.sort_unstable();
    roles.dedup();
    let roles = if roles.is_empty() {
        "<none>".to_string()
    } else {
        roles.join(",")
    };

    let address = |kind: &str| {
        list_at(obj, &["status", "addresses"])
            .iter()
            .find(|a| str_at(a, &["type"]) == kind)
            .map(|a| str_at(a, &["address"]).to_string())
            .unwrap_or_else(|| "<none>".to_string())
    };
    let info = |field: &str| non_empty_or(str_at(obj, &["status", "nodeInfo", field]), "<unknown>");
    vec![
        name(obj),
        status.join(",").into(),
        roles.into(),
        age(obj, now),
        str_at(obj, &["status", "nodeInfo", "kubeletVersion"]).into(),
        address("InternalIP").into(),
        address("ExternalIP").into(),
        info("osImage").into(),
        info("kernelVersion").into(),
        info("containerRuntimeVersion").into(),
    ]
}

fn event_cells(obj: &Value, now: Timestamp, events_api: bool) -> Vec<Value> {
    // events.k8s.io/v1 renames the core fields; upstream converts both to one internal Event.
    let field = |core: &'static str, events: &'static str| if events_api { events } else { core };
    let first_seen = match time_at(obj, &[field("firstTimestamp", "deprecatedFirstTimestamp")]) {
        Some(t) => since(now, Some(t)),
        None => since(now, time_at(obj, &["eventTime"])),
    };
    let mut last_seen = match time_at(obj, &[field("lastTimestamp", "deprecatedLastTimestamp")]) {
        Some(t) => since(now, Some(t)),
        None => first_seen.clone(),
    };
    let mut count = int_at(obj, &[field("count", "deprecatedCount")]);
    if let Some(series) = at(obj, &["series"]) {
        last_seen = since(now, time_at(series, &["lastObservedTime"]));
        count = int_at(series, &["count"]);
    } else if count == 0 {
        // Singleton events don't have a count set in the new API.
        count = 1;
    }
    let regarding = at(obj, &[field("involvedObject", "regarding")]).unwrap_or(&Value::Null);
    let kind = str_at(regarding, &["kind"]).to_lowercase();
    let target_name = str_at(regarding, &["name"]);
    let target = if target_name.is_empty() {
        kind
    } else {
        format!("{kind}/{target_name}")
    };
    let source = at(obj, &[field("source", "deprecatedSource")]).unwrap_or(&Value::Null);
    let component = non_empty_or(
        str_at(source, &["component"]),
        str_at(obj, &[field("reportingComponent", "reportingController")]),
    );
    let host = non_empty_or(
        str_at(source, &["host"]),
        str_at(obj, &["reportingInstance"]),
    );
    let source_text = if host.is_empty() {
        component.to_string()
    } else {
        format!("{component}, {host}")
    };
    vec![
        last_seen.into(),
        str_at(obj, &["type"]).into(),
        str_at(obj, &["reason"]).into(),
        target.into(),
        str_at(regarding, &["fieldPath"]).into(),
        source_text.into(),
        str_at(obj, &[field("message", "note")]).trim().into(),
        first_seen.into(),
        count.into(),
        name(obj),
    ]
}

fn pv_cells(obj: &Value, now: Timestamp) -> Vec<Value> {
    let spec = at(obj, &["spec"]).unwrap_or(&Value::Null);
    let claim = match at(spec, &["claimRef"]) {
        Some(c) => format!("{}/{}", str_at(c, &["namespace"]), str_at(c, &["name"])),
        None => String::new(),
    };
    let phase = if at(obj, &["metadata", "deletionTimestamp"]).is_some() {
        "Terminating"
    } else {
        // SetDefaults_PersistentVolume makes a missing phase Pending.
        non_empty_or(str_at(obj, &["status", "phase"]), "Pending")
    };
    let storage_class = annotation(obj, "volume.beta.kubernetes.io/storage-class")
        .unwrap_or_else(|| str_at(spec, &["storageClassName"]));
    vec![
        name(obj),
        quantity_text(at(spec, &["capacity", "storage"])).into(),
        access_modes(list_at(spec, &["accessModes"])).into(),
        non_empty_or(str_at(spec, &["persistentVolumeReclaimPolicy"]), "Retain").into(),
        phase.into(),
        claim.into(),
        storage_class.into(),
        at(spec, &["volumeAttributesClassName"])
            .and_then(Value::as_str)
            .unwrap_or("<unset>")
            .into(),
        str_at(obj, &["status", "reason"]).into(),
        age(obj, now),
        non_empty_or(str_at(spec, &["volumeMode"]), "Filesystem").into(),
    ]
}

fn pvc_cells(obj: &Value, now: Timestamp) -> Vec<Value> {
    let spec = at(obj, &["spec"]).unwrap_or(&Value::Null);
    let phase = if at(obj, &["metadata", "deletionTimestamp"]).is_some() {
        "Terminating"
    } else {
        non_empty_or(str_at(obj, &["status", "phase"]), "Pending")
    };
    let volume_name = str_at(spec, &["volumeName"]);
    // Capacity and access modes only mean something once the claim is bound to a volume.
    let (capacity, modes) = if volume_name.is_empty() {
        (String::new(), String::new())
    } else {
        (
            quantity_text(at(obj, &["status", "capacity", "storage"])),
            access_modes(list_at(obj, &["status", "accessModes"])),
        )
    };
    let storage_class = annotation(obj, "volume.beta.kubernetes.io/storage-class")
        .unwrap_or_else(|| str_at(spec, &["storageClassName"]));
    vec![
        name(obj),
        phase.into(),
        volume_name.into(),
        capacity.into(),
        modes.into(),
        storage_class.into(),
        at(spec, &["volumeAttributesClassName"])
            .and_then(Value::as_str)
            .unwrap_or("<unset>")
            .into(),
        age(obj, now),
        non_empty_or(str_at(spec, &["volumeMode"]), "Filesystem").into(),
    ]
}

/// `RWO,ROX,RWX,RWOP` in this fixed order, each at most once.
fn access_modes(modes: &[Value]) -> String {
    let has = |m: &str| modes.iter().any(|v| v.as_str() == Some(m));
    [
        ("ReadWriteOnce", "RWO"),
        ("ReadOnlyMany", "ROX"),
        ("ReadWriteMany", "RWX"),
        ("ReadWriteOncePod", "RWOP"),
    ]
    .iter()
    .filter(|(mode, _)| has(mode))
    .map(|(_, short)| *short)
    .collect::<Vec<_>>()
    .join(",")
}

fn hpa_cells(obj: &Value, now: Timestamp) -> Vec<Value> {
    let reference = format!(
        "{}/{}",
        str_at(obj, &["spec", "scaleTargetRef", "kind"]),
        str_at(obj, &["spec", "scaleTargetRef", "name"])
    );
    // Decoding defaults minReplicas to 1 and an empty metric list to 80% average CPU.
    let min_pods = at(obj, &["spec", "minReplicas"])
        .and_then(as_int)
        .unwrap_or(1)
        .to_string();
    let default_metrics = [serde_json::json!({
        "type": "Resource",
        "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}
    })];
    let specs = match list_at(obj, &["spec", "metrics"]) {
        [] => &default_metrics[..],
        specs => specs,
    };
    let statuses = list_at(obj, &["status", "currentMetrics"]);
    vec![
        name(obj),
        reference.into(),
        format_hpa_metrics(specs, statuses).into(),
        min_pods.into(),
        int_at(obj, &["spec", "maxReplicas"]).into(),
        int_at(obj, &["status", "currentReplicas"]).into(),
        age(obj, now),
    ]
}

fn format_hpa_metrics(specs: &[Value], statuses: &[Value]) -> String {
    const MAX: usize = 2;
    if specs.is_empty() {
        return "<none>".to_string();
    }
    let mut list: Vec<String> = Vec::new();
    for (i, spec) in specs.iter().enumerate() {
        // The status entry at the same index, if it is of the same source type.
        let status = |source: &str| statuses.get(i).and_then(|s| at(s, &[source]));
        let quantity = |v: Option<&Value>| quantity_or_nil(v);
        let text = match str_at(spec, &["type"]) {
            "External" | "Object" => {
                let source = if str_at(spec, &["type"]) == "External" {
                    "external"
                } else {
                    "object"
                };
                let target = at(spec, &[source, "target"]).unwrap_or(&Value::Null);
                let current = status(source);
                if let Some(avg) = at(target, &["averageValue"]) {
                    let cur = current
                        .and_then(|c| at(c, &["current", "averageValue"]))
                        .map(|q| quantity(Some(q)))
                        .unwrap_or_else(|| "<unknown>".to_string());
                    format!("{cur}/{} (avg)", quantity(Some(avg)))
                } else {
                    let cur = current
                        .map(|c| quantity(at(c, &["current", "value"])))
                        .unwrap_or_else(|| "<unknown>".to_string());
                    format!("{cur}/{}", quantity(at(target, &["value"])))
                }
            }
            "Pods" => {
                let cur = status("pods")
                    .map(|c| quantity(at(c, &["current", "averageValue"])))
                    .unwrap_or_else(|| "<unknown>".to_string());
                format!(
                    "{cur}/{}",
                    quantity(at(spec, &["pods", "target", "averageValue"]))
                )
            }
            "Resource" | "ContainerResource" => {
                let source = if str_at(spec, &["type"]) == "Resource" {
                    "resource"
                } else {
                    "containerResource"
                };
                let resource = str_at(spec, &[source, "name"]);
                let target = at(spec, &[source, "target"]).unwrap_or(&Value::Null);
                let current = status(source);
                if let Some(avg) = at(target, &["averageValue"]) {
                    let cur = current
                        .map(|c| quantity(at(c, &["current", "averageValue"])))
                        .unwrap_or_else(|| "<unknown>".to_string());
                    format!("{resource}: {cur}/{}", quantity(Some(avg)))
                } else {
                    let cur = current
                        .and_then(|c| at(c, &["current", "averageUtilization"]))
                        .and_then(as_int)
                        .map(|u| format!("{u}%"))
                        .unwrap_or_else(|| "<unknown>".to_string());
                    let goal = at(target, &["averageUtilization"])
                        .and_then(as_int)
                        .map(|u| format!("{u}%"))
                        .unwrap_or_else(|| "<auto>".to_string());
                    format!("{resource}: {cur}/{goal}")
                }
            }
            _ => "<unknown type>".to_string(),
        };
        list.push(text);
    }
    let count = list.len();
    if count > MAX {
        list.truncate(MAX);
        return format!("{} + {} more...", list.join(", "), count - MAX);
    }
    list.join(", ")
}

fn resource_quota_cells(obj: &Value, now: Timestamp) -> Vec<Value> {
    let mut requests: Vec<String> = Vec::new();
    let mut limits: Vec<String> = Vec::new();
    if let Some(hard) = map_at(obj, &["status", "hard"]) {
        let mut names: Vec<&String> = hard.keys().collect();
        names.sort();
        for resource in names {
            let used = quantity_text(at(obj, &["status", "used", resource]));
            let limit = quantity_text(hard.get(resource.as_str()));
            let text = format!("{resource}: {used}/{limit}");
            let mut pieces = resource.split('.');
            if pieces.next() == Some("limits") && pieces.next().is_some() {
                limits.push(text);
            } else {
                requests.push(text);
            }
        }
    }
    vec![
        name(obj),
        requests.join(", ").into(),
        limits.join(", ").into(),
        age(obj, now),
    ]
}

fn subjects(subjects: &[Value]) -> (Vec<String>, Vec<String>, Vec<String>) {
    let mut users = Vec::new();
    let mut groups = Vec::new();
    let mut service_accounts = Vec::new();
    for subject in subjects {
        let name = str_at(subject, &["name"]).to_string();
        match str_at(subject, &["kind"]) {
            "ServiceAccount" => {
                service_accounts.push(format!("{}/{}", str_at(subject, &["namespace"]), name))
            }
            "User" => users.push(name),
            "Group" => groups.push(name),
            _ => {}
        }
    }
    (users, groups, service_accounts)
}

fn is_default_storage_class(obj: &Value) -> bool {
    [
        crate::storage::DEFAULT_CLASS,
        crate::storage::DEFAULT_CLASS_BETA,
    ]
    .iter()
    .any(|key| annotation(obj, key) == Some("true"))
}

/// `daemonset.apps/name` for the controlling owner, `<none>` without one.
fn controller_of(obj: &Value) -> String {
    let Some(owner) = list_at(obj, &["metadata", "ownerReferences"])
        .iter()
        .find(|o| bool_at(o, &["controller"]) == Some(true))
    else {
        return "<none>".to_string();
    };
    let api_version = str_at(owner, &["apiVersion"]);
    let group = match api_version.split_once('/') {
        Some((group, _)) => group,
        None => "",
    };
    let kind = str_at(owner, &["kind"]);
    let owner_name = str_at(owner, &["name"]);
    if group.is_empty() && kind.is_empty() {
        return owner_name.to_string();
    }
    let group_kind = if group.is_empty() {
        kind.to_string()
    } else {
        format!("{kind}.{group}")
    };
    format!("{}/{owner_name}", group_kind.to_lowercase())
}

// ---------------------------------------------------------------------------------------------
// Formatting helpers shared by several printers.

fn name(obj: &Value) -> Value {
    str_at(obj, &["metadata", "name"]).into()
}

fn age(obj: &Value, now: Timestamp) -> Value {
    since(now, time_at(obj, &["metadata", "creationTimestamp"])).into()
}

/// `spec.replicas`, which decoding defaults to 1.
fn replicas(obj: &Value) -> i64 {
    at(obj, &["spec", "replicas"]).and_then(as_int).unwrap_or(1)
}

/// Upstream's `translateTimestampSince`: `<unknown>` for an unset time.
fn since(now: Timestamp, t: Option<Timestamp>) -> String {
    match t {
        Some(t) => human_duration(now.duration_since(t)),
        None => "<unknown>".to_string(),
    }
}

fn go_bool(b: bool) -> &'static str {
    if b { "True" } else { "False" }
}

fn non_empty_or<'a>(s: &'a str, fallback: &'a str) -> &'a str {
    if s.is_empty() { fallback } else { s }
}

/// Comma-separated container names and images of a pod template.
fn container_cells(obj: &Value, path: &[&str]) -> (String, String) {
    let containers = list_at(obj, path);
    let names: Vec<&str> = containers.iter().map(|c| str_at(c, &["name"])).collect();
    let images: Vec<&str> = containers.iter().map(|c| str_at(c, &["image"])).collect();
    (names.join(","), images.join(","))
}

/// `labels.FormatLabels`: sorted `k=v` pairs, `<none>` when empty.
fn format_labels(labels: Option<&Map<String, Value>>) -> String {
    let mut pairs: Vec<(&str, &str)> = labels
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.as_str(), v.as_str().unwrap_or("")))
                .collect()
        })
        .unwrap_or_default();
    if pairs.is_empty() {
        return "<none>".to_string();
    }
    pairs.sort_unstable();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// `metav1.FormatLabelSelector`: the selector's string form, `<none>` when it selects nothing or
/// everything, `<error>` when it is not a valid selector.
fn format_label_selector(selector: Option<&Value>) -> String {
    match label_selector_string(selector) {
        Ok(s) if s.is_empty() => "<none>".to_string(),
        Ok(s) => s,
        Err(()) => "<error>".to_string(),
    }
}

/// `LabelSelectorAsSelector(..).String()`: requirements sorted by key, set values sorted.
fn label_selector_string(selector: Option<&Value>) -> Result<String, ()> {
    let Some(selector) = selector.filter(|s| !s.is_null()) else {
        return Ok(String::new());
    };
    let Some(selector) = selector.as_object() else {
        return Err(());
    };
    let mut requirements: Vec<(String, String)> = Vec::new();
    if let Some(match_labels) = selector.get("matchLabels").filter(|v| !v.is_null()) {
        let match_labels = match_labels.as_object().ok_or(())?;
        for (key, value) in match_labels {
            let value = value.as_str().ok_or(())?;
            if !is_qualified_name(key) || !is_label_value(value) {
                return Err(());
            }
            requirements.push((key.clone(), format!("{key}={value}")));
        }
    }
    if let Some(expressions) = selector.get("matchExpressions").filter(|v| !v.is_null()) {
        for expression in expressions.as_array().ok_or(())? {
            let key = str_at(expression, &["key"]);
            let values: Vec<&str> = list_at(expression, &["values"])
                .iter()
                .map(|v| v.as_str().ok_or(()))
                .collect::<Result<_, _>>()?;
            if !is_qualified_name(key) || !values.iter().all(|v| is_label_value(v)) {
                return Err(());
            }
            let text = match str_at(expression, &["operator"]) {
                op @ ("In" | "NotIn") => {
                    if values.is_empty() {
                        return Err(());
                    }
                    let mut sorted = values.clone();
                    sorted.sort_unstable();
                    let word = if op == "In" { "in" } else { "notin" };
                    format!("{key} {word} ({})", sorted.join(","))
                }
                "Exists" if values.is_empty() => key.to_string(),
                "DoesNotExist" if values.is_empty() => format!("!{key}"),
                _ => return Err(()),
            };
            requirements.push((key.to_string(), text));
        }
    }
    // Stable, so equal keys keep matchLabels before matchExpressions.
    requirements.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(requirements
        .into_iter()
        .map(|(_, text)| text)
        .collect::<Vec<_>>()
        .join(","))
}

/// A label key: an optional DNS subdomain prefix and `/`, then a name of at most 63 characters.
fn is_qualified_name(key: &str) -> bool {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    if let Some(prefix) = prefix
        && !is_dns_subdomain(prefix)
    {
        return false;
    }
    !name.is_empty() && is_label_value(name)
}

/// A label value: empty, or at most 63 alphanumerics, `-`, `_`, `.`, starting and ending alphanumeric.
fn is_label_value(value: &str) -> bool {
    let bytes = value.as_bytes();
    if bytes.is_empty() {
        return true;
    }
    bytes.len() <= 63
        && bytes.first().is_some_and(u8::is_ascii_alphanumeric)
        && bytes.last().is_some_and(u8::is_ascii_alphanumeric)
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

fn is_dns_subdomain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            let b = label.as_bytes();
            !b.is_empty()
                && b.first()
                    .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
                && b.last()
                    .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
                && b.iter()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        })
}

/// An IntOrString as Go's `String()` prints it, `N/A` when unset.
fn int_or_string(v: Option<&Value>) -> String {
    match v {
        None => "N/A".to_string(),
        Some(Value::String(s)) => s.clone(),
        Some(v) => as_int(v).unwrap_or(0).to_string(),
    }
}

/// A quantity in canonical form, `0` when unset, as a non-pointer `Quantity` prints.
fn quantity_text(v: Option<&Value>) -> String {
    match v {
        None => "0".to_string(),
        Some(v) => canonical_quantity(v),
    }
}

/// A quantity in canonical form, `<nil>` when unset, as a nil `*Quantity` prints.
fn quantity_or_nil(v: Option<&Value>) -> String {
    match v {
        None => "<nil>".to_string(),
        Some(v) => canonical_quantity(v),
    }
}

fn canonical_quantity(v: &Value) -> String {
    match Quantity::from_json(v) {
        Some(q) => q.canonical(),
        // Not a quantity: show it as given rather than guess.
        None => match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        },
    }
}

fn annotation<'a>(obj: &'a Value, key: &str) -> Option<&'a str> {
    map_at(obj, &["metadata", "annotations"])
        .and_then(|m| m.get(key))
        .and_then(Value::as_str)
}

/// Go's zero `time.Time`, which upstream treats as "unset".
const GO_ZERO_TIME: Timestamp = Timestamp::constant(-62_135_596_800, 0);

/// RFC 3339 in UTC to the second, as Go's `time.RFC3339` layout prints it.
fn rfc3339(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

// ---------------------------------------------------------------------------------------------
// Reading untyped JSON: a missing field, a null and a field of the wrong type all read as unset.

fn at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    let mut cur = v;
    for key in path {
        cur = cur.as_object()?.get(*key)?;
    }
    if cur.is_null() { None } else { Some(cur) }
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> &'a str {
    at(v, path).and_then(Value::as_str).unwrap_or("")
}

fn int_at(v: &Value, path: &[&str]) -> i64 {
    at(v, path).and_then(as_int).unwrap_or(0)
}

fn bool_at(v: &Value, path: &[&str]) -> Option<bool> {
    at(v, path).and_then(Value::as_bool)
}

fn list_at<'a>(v: &'a Value, path: &[&str]) -> &'a [Value] {
    at(v, path)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

fn map_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Map<String, Value>> {
    at(v, path).and_then(Value::as_object)
}

fn count_at(v: &Value, path: &[&str]) -> i64 {
    let n = match at(v, path) {
        Some(Value::Object(m)) => m.len(),
        Some(Value::Array(a)) => a.len(),
        _ => 0,
    };
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn as_int(v: &Value) -> Option<i64> {
    v.as_i64()
        .or_else(|| v.as_u64().map(|u| i64::try_from(u).unwrap_or(i64::MAX)))
        // Whole numbers written as floats (`3.0`) still count; Go would have decoded them.
        .or_else(|| v.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64))
}

fn time_at(v: &Value, path: &[&str]) -> Option<Timestamp> {
    at(v, path).and_then(parse_time)
}

/// An RFC 3339 time, or `None` when it is unset, malformed or Go's zero time.
fn parse_time(v: &Value) -> Option<Timestamp> {
    v.as_str()
        .and_then(|s| s.parse::<Timestamp>().ok())
        .filter(|t| *t != GO_ZERO_TIME)
}

/// Column descriptions upstream takes from the API types' field documentation.
mod doc {
    pub(super) const NAME: &str = "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names";
    pub(super) const AGE: &str = "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";
    pub(super) const POD_IP: &str = "podIP address allocated to the pod. Routable at least within the cluster. Empty if not yet allocated.";
    pub(super) const NODE_NAME: &str = "NodeName indicates in which node this pod is scheduled. If empty, this pod is a candidate for scheduling by the scheduler defined in schedulerName. Once this field is set, the kubelet for this node becomes responsible for the lifecycle of this pod. This field should not be used to express a desire for the pod to be scheduled on a specific node. https://kubernetes.io/docs/concepts/scheduling-eviction/assign-pod-node/#nodename";
    pub(super) const NOMINATED: &str = "nominatedNodeName is set only when this pod preempts other pods on the node, but it cannot be scheduled right away as preemption victims receive their graceful termination periods. This field does not guarantee that the pod will be scheduled on this node. Scheduler may decide to place the pod elsewhere if other nodes become available sooner. Scheduler may also decide to give the resources on this node to a higher priority pod that is created after preemption. As a result, this field may be different than PodSpec.nodeName when the pod is scheduled.";
    pub(super) const READINESS_GATES: &str = "If specified, all readiness gates will be evaluated for pod readiness. A pod is ready when all its containers are ready AND all conditions specified in the readiness gates have status equal to \"True\" More info: https://git.k8s.io/enhancements/keps/sig-network/580-pod-readiness-gates";
    pub(super) const RS_REPLICAS: &str = "Replicas is the number of desired pods. This is a pointer to distinguish between explicit zero and unspecified. Defaults to 1. More info: https://kubernetes.io/docs/concepts/workloads/controllers/replicaset";
    pub(super) const RS_STATUS_REPLICAS: &str = "Replicas is the most recently observed number of non-terminating pods. More info: https://kubernetes.io/docs/concepts/workloads/controllers/replicaset";
    pub(super) const RS_READY: &str =
        "The number of non-terminating pods targeted by this ReplicaSet with a Ready Condition.";
    pub(super) const RS_SELECTOR: &str = "Selector is a label query over pods that should match the replica count. Label keys and values that must match in order to be controlled by this replica set. It must match the pod template's labels. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors";
    pub(super) const DS_DESIRED: &str = "The total number of nodes that should be running the daemon pod (including nodes correctly running the daemon pod). More info: https://kubernetes.io/docs/concepts/workloads/controllers/daemonset/";
    pub(super) const DS_CURRENT: &str = "The number of nodes that are running at least 1 daemon pod and are supposed to run the daemon pod. More info: https://kubernetes.io/docs/concepts/workloads/controllers/daemonset/";
    pub(super) const DS_READY: &str = "numberReady is the number of nodes that should be running the daemon pod and have one or more of the daemon pod running with a Ready Condition.";
    pub(super) const DS_UPDATED: &str =
        "The total number of nodes that are running updated daemon pod";
    pub(super) const DS_AVAILABLE: &str = "The number of nodes that should be running the daemon pod and have one or more of the daemon pod running and available (ready for at least spec.minReadySeconds)";
    pub(super) const NODE_SELECTOR: &str = "NodeSelector is a selector which must be true for the pod to fit on a node. Selector which must match a node's labels for the pod to be scheduled on that node. More info: https://kubernetes.io/docs/concepts/configuration/assign-pod-node/";
    pub(super) const DS_SELECTOR: &str = "A label query over pods that are managed by the daemon set. Must match in order to be controlled. It must match the pod template's labels. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors";
    pub(super) const JOB_SUCCEEDED: &str = "The number of pods which reached phase Succeeded. The value increases monotonically for a given spec. However, it may decrease in reaction to scale down of elastic indexed jobs.";
    pub(super) const JOB_SELECTOR: &str = "A label query over pods that should match the pod count. Normally, the system sets this field for you. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors";
    pub(super) const CJ_SCHEDULE: &str =
        "The schedule in Cron format, see https://en.wikipedia.org/wiki/Cron.";
    pub(super) const CJ_TIMEZONE: &str = "The time zone name for the given schedule, see https://en.wikipedia.org/wiki/List_of_tz_database_time_zones. If not specified, this will default to the time zone of the kube-controller-manager process. The set of valid time zone names and the time zone offset is loaded from the system-wide time zone database by the API server during CronJob validation and the controller manager during execution. If no system-wide time zone database can be found a bundled version of the database is used instead. If the time zone name becomes invalid during the lifetime of a CronJob or due to a change in host configuration, the controller will stop creating new new Jobs and will create a system event with the reason UnknownTimeZone. More information can be found in https://kubernetes.io/docs/concepts/workloads/controllers/cron-jobs/#time-zones";
    pub(super) const CJ_SUSPEND: &str = "This flag tells the controller to suspend subsequent executions, it does not apply to already started executions.  Defaults to false.";
    pub(super) const CJ_ACTIVE: &str = "A list of pointers to currently running jobs.";
    pub(super) const CJ_LAST: &str =
        "Information when was the last time the job was successfully scheduled.";
    pub(super) const SVC_TYPE: &str = "type determines how the Service is exposed. Defaults to ClusterIP. Valid options are ExternalName, ClusterIP, NodePort, and LoadBalancer. \"ClusterIP\" allocates a cluster-internal IP address for load-balancing to endpoints. Endpoints are determined by the selector or if that is not specified, by manual construction of an Endpoints object or EndpointSlice objects. If clusterIP is \"None\", no virtual IP is allocated and the endpoints are published as a set of endpoints rather than a virtual IP. \"NodePort\" builds on ClusterIP and allocates a port on every node which routes to the same endpoints as the clusterIP. \"LoadBalancer\" builds on NodePort and creates an external load-balancer (if supported in the current cloud) which routes to the same endpoints as the clusterIP. \"ExternalName\" aliases this service to the specified externalName. Several other fields do not apply to ExternalName services. More info: https://kubernetes.io/docs/concepts/services-networking/service/#publishing-services-service-types";
    pub(super) const SVC_CLUSTER_IP: &str = "clusterIP is the IP address of the service and is usually assigned randomly. If an address is specified manually, is in-range (as per system configuration), and is not in use, it will be allocated to the service; otherwise creation of the service will fail. This field may not be changed through updates unless the type field is also being changed to ExternalName (which requires this field to be blank) or the type field is being changed from ExternalName (in which case this field may optionally be specified, as describe above).  Valid values are \"None\", empty string (\"\"), or a valid IP address. Setting this to \"None\" makes a \"headless service\" (no virtual IP), which is useful when direct endpoint connections are preferred and proxying is not required.  Only applies to types ClusterIP, NodePort, and LoadBalancer. If this field is specified when creating a Service of type ExternalName, creation will fail. This field will be wiped when updating a Service to type ExternalName. More info: https://kubernetes.io/docs/concepts/services-networking/service/#virtual-ips-and-service-proxies";
    pub(super) const SVC_EXTERNAL_IPS: &str = "externalIPs is a list of IP addresses for which nodes in the cluster will also accept traffic for this service.  These IPs are not managed by Kubernetes.  The user is responsible for ensuring that traffic arrives at a node with this IP.  A common example is external load-balancers that are not part of the Kubernetes system.";
    pub(super) const SVC_PORTS: &str = "The list of ports that are exposed by this service. More info: https://kubernetes.io/docs/concepts/services-networking/service/#virtual-ips-and-service-proxies";
    pub(super) const SVC_SELECTOR: &str = "Route service traffic to pods with label keys and values matching this selector. If empty or not present, the service is assumed to have an external process managing its endpoints, which Kubernetes will not modify. Only applies to types ClusterIP, NodePort, and LoadBalancer. Ignored if type is ExternalName. More info: https://kubernetes.io/docs/concepts/services-networking/service/";
    pub(super) const EP_SUBSETS: &str = "The set of all endpoints is the union of all subsets. Addresses are placed into subsets according to the IPs they share. A single address with multiple ports, some of which are ready and some of which are not (because they come from different containers) will result in the address being displayed in different subsets for the different ports. No address will appear in both Addresses and NotReadyAddresses in the same subset. Sets of addresses and ports that comprise a service.";
    pub(super) const KUBELET_VERSION: &str = "Kubelet Version reported by the node.";
    pub(super) const NODE_ADDRESSES: &str = "List of addresses reachable to the node. Queried from cloud provider, if available. More info: https://kubernetes.io/docs/reference/node/node-status/#addresses Note: This field is declared as mergeable, but the merge key is not sufficiently unique, which can cause data corruption when it is merged. Callers should instead use a full-replacement patch. See https://pr.k8s.io/79391 for an example. Consumers should assume that addresses can change during the lifetime of a Node. However, there are some exceptions where this may not be possible, such as Pods that inherit a Node's address in its own status or consumers of the downward API (status.hostIP).";
    pub(super) const OS_IMAGE: &str =
        "OS Image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 (wheezy)).";
    pub(super) const KERNEL: &str =
        "Kernel Version reported by the node from 'uname -r' (e.g. 3.16.0-0.bpo.4-amd64).";
    pub(super) const RUNTIME: &str = "ContainerRuntime Version reported by the node through runtime remote API (e.g. containerd://1.4.2).";
    pub(super) const EV_LAST: &str =
        "The time at which the most recent occurrence of this event was recorded.";
    pub(super) const EV_TYPE: &str =
        "Type of this event (Normal, Warning), new types could be added in the future";
    pub(super) const EV_REASON: &str = "This should be a short, machine understandable string that gives the reason for the transition into the object's current status.";
    pub(super) const EV_OBJECT: &str = "The object that this event is about.";
    pub(super) const EV_FIELD_PATH: &str = "If referring to a piece of an object instead of an entire object, this string should contain a valid JSON/Go field access statement, such as desiredState.manifest.containers\\[2\\]. For example, if the object reference is to a container within a pod, this would take on a value like: \"spec.containers{name}\" (where \"name\" refers to the name of the container that triggered the event) or if no container name is specified \"spec.containers\\[2\\]\" (container with index 2 in this pod). This syntax is chosen only to have some well-defined way of referencing a part of an object.";
    pub(super) const EV_SOURCE: &str =
        "The component reporting this event. Should be a short machine understandable string.";
    pub(super) const EV_MESSAGE: &str =
        "A human-readable description of the status of this operation.";
    pub(super) const EV_FIRST: &str =
        "The time at which the event was first recorded. (Time of server receipt is in TypeMeta.)";
    pub(super) const EV_COUNT: &str = "The number of times this event has occurred.";
    pub(super) const SECRET_TYPE: &str = "Used to facilitate programmatic handling of secret data. More info: https://kubernetes.io/docs/concepts/configuration/secret/#secret-types";
    pub(super) const SECRET_DATA: &str = "Data contains the secret data. Each key must consist of alphanumeric characters, '-', '_' or '.'. The serialized form of the secret data is a base64 encoded string, representing the arbitrary (possibly non-string) data value here. Described in https://tools.ietf.org/html/rfc4648#section-4";
    pub(super) const SA_SECRETS: &str = "Secrets is a list of the secrets in the same namespace that pods running using this ServiceAccount are allowed to use. Pods are only limited to this list if this service account has a \"kubernetes.io/enforce-mountable-secrets\" annotation set to \"true\". The \"kubernetes.io/enforce-mountable-secrets\" annotation is deprecated since v1.32. Prefer separate namespaces to isolate access to mounted secrets. This field should not be used to find auto-generated service account token secrets for use outside of pods. Instead, tokens can be requested directly using the TokenRequest API, or service account token secrets can be manually created. More info: https://kubernetes.io/docs/concepts/configuration/secret";
    pub(super) const PV_CAPACITY: &str = "capacity is the description of the persistent volume's resources and capacity. More info: https://kubernetes.io/docs/concepts/storage/persistent-volumes#capacity";
    pub(super) const PV_ACCESS: &str = "accessModes contains all ways the volume can be mounted. More info: https://kubernetes.io/docs/concepts/storage/persistent-volumes#access-modes";
    pub(super) const PV_RECLAIM: &str = "persistentVolumeReclaimPolicy defines what happens to a persistent volume when released from its claim. Valid options are Retain (default for manually created PersistentVolumes), Delete (default for dynamically provisioned PersistentVolumes), and Recycle (deprecated). Recycle must be supported by the volume plugin underlying this PersistentVolume. More info: https://kubernetes.io/docs/concepts/storage/persistent-volumes#reclaiming";
    pub(super) const PV_PHASE: &str = "phase indicates if a volume is available, bound to a claim, or released by a claim. More info: https://kubernetes.io/docs/concepts/storage/persistent-volumes#phase";
    pub(super) const PV_CLAIM: &str = "claimRef is part of a bi-directional binding between PersistentVolume and PersistentVolumeClaim. Expected to be non-nil when bound. claim.VolumeName is the authoritative bind between PV and PVC. More info: https://kubernetes.io/docs/concepts/storage/persistent-volumes#binding";
    pub(super) const PV_REASON: &str = "reason is a brief CamelCase string that describes any failure and is meant for machine parsing and tidy display in the CLI.";
    pub(super) const PV_MODE: &str = "volumeMode defines if a volume is intended to be used with a formatted filesystem or to remain in raw block state. Value of Filesystem is implied when not included in spec.";
    pub(super) const PVC_PHASE: &str =
        "phase represents the current phase of PersistentVolumeClaim.";
    pub(super) const PVC_VOLUME: &str =
        "volumeName is the binding reference to the PersistentVolume backing this claim.";
    pub(super) const PVC_CAPACITY: &str =
        "capacity represents the actual resources of the underlying volume.";
    pub(super) const PVC_ACCESS: &str = "accessModes contains the actual access modes the volume backing the PVC has. More info: https://kubernetes.io/docs/concepts/storage/persistent-volumes#access-modes-1";
    pub(super) const PVC_MODE: &str = "volumeMode defines what type of volume is required by the claim. Value of Filesystem is implied when not included in claim spec.";
    pub(super) const DEPLOY_UPDATED: &str = "Total number of non-terminating pods targeted by this deployment that have the desired template spec.";
    pub(super) const DEPLOY_AVAILABLE: &str = "Total number of available non-terminating pods (ready for at least minReadySeconds) targeted by this deployment.";
    pub(super) const DEPLOY_SELECTOR: &str = "Label selector for pods. Existing ReplicaSets whose pods are selected by this will be the ones affected by this deployment. It must match the pod template's labels.";
    pub(super) const HPA_REF: &str = "scaleTargetRef points to the target resource to scale, and is used to the pods for which metrics should be collected, as well as to actually change the replica count.";
    pub(super) const HPA_METRICS: &str = "metrics contains the specifications for which to use to calculate the desired replica count (the maximum replica count across all metrics will be used).  The desired replica count is calculated multiplying the ratio between the target value and the current value by the current number of pods.  Ergo, metrics used must decrease as the pod count is increased, and vice-versa.  See the individual metric source types for more information about how each type of metric must respond. If not set, the default metric will be set to 80% average CPU utilization.";
    pub(super) const HPA_MIN: &str = "minReplicas is the lower limit for the number of replicas to which the autoscaler can scale down.  It defaults to 1 pod.  minReplicas is allowed to be 0 if the alpha feature gate HPAScaleToZero is enabled and at least one Object or External metric is configured.  Scaling is active as long as at least one metric value is available.";
    pub(super) const HPA_MAX: &str = "maxReplicas is the upper limit for the number of replicas to which the autoscaler can scale up. It cannot be less that minReplicas.";
    pub(super) const HPA_CURRENT: &str = "currentReplicas is current number of replicas of pods managed by this autoscaler, as last seen by the autoscaler.";
    pub(super) const CM_DATA: &str = "Data contains the configuration data. Each key must consist of alphanumeric characters, '-', '_' or '.'. Values with non-UTF-8 byte sequences must use the BinaryData field. The keys stored in Data must not overlap with the keys in the BinaryData field, this is enforced during validation process.";
    pub(super) const NETPOL_SELECTOR: &str = "podSelector selects the pods to which this NetworkPolicy object applies. The array of rules is applied to any pods selected by this field. An empty selector matches all pods in the policy's namespace. Multiple network policies can select the same set of pods. In this case, the ingress rules for each are combined additively. This field is optional. If it is not specified, it defaults to an empty selector.";
    pub(super) const RB_ROLE: &str = "roleRef can reference a Role in the current namespace or a ClusterRole in the global namespace. If the RoleRef cannot be resolved, the Authorizer must return an error. This field is immutable.";
    pub(super) const CRB_ROLE: &str = "roleRef can only reference a ClusterRole in the global namespace. If the RoleRef cannot be resolved, the Authorizer must return an error. This field is immutable.";
    pub(super) const LEASE_HOLDER: &str = "holderIdentity contains the identity of the holder of a current lease. If Coordinated Leader Election is used, the holder identity must be equal to the elected LeaseCandidate.metadata.name field.";
    pub(super) const SC_PROVISIONER: &str = "provisioner indicates the type of the provisioner.";
    pub(super) const SC_RECLAIM: &str = "reclaimPolicy controls the reclaimPolicy for dynamically provisioned PersistentVolumes of this storage class. Defaults to Delete.";
    pub(super) const SC_BINDING: &str = "volumeBindingMode indicates how PersistentVolumeClaims should be provisioned and bound.  When unset, VolumeBindingImmediate is used. This field is only honored by servers that enable the VolumeScheduling feature.";
    pub(super) const SC_EXPANSION: &str =
        "allowVolumeExpansion shows whether the storage class allow volume expand.";
    pub(super) const CR_REVISION: &str =
        "Revision indicates the revision of the state represented by Data.";
    pub(super) const PC_VALUE: &str = "value represents the integer value of this priority class. This is the actual priority that pods receive when they have the name of this class in their pod spec.";
    pub(super) const PC_DEFAULT: &str = "globalDefault specifies whether this PriorityClass should be considered as the default priority for pods that do not have any priority class. Only one PriorityClass can be marked as `globalDefault`. However, if more than one PriorityClasses exists with their `globalDefault` field set to true, the smallest value of such global default PriorityClasses will be used as the default priority.";
    pub(super) const PC_PREEMPTION: &str = "preemptionPolicy is the Policy for preempting pods with lower priority. One of Never, PreemptLowerPriority. Defaults to PreemptLowerPriority if unset.";
    pub(super) const ES_ADDRESS_TYPE: &str = "addressType specifies the type of address carried by this EndpointSlice. All addresses in this slice must be the same type. This field is immutable after creation. The following address types are currently supported: * IPv4: Represents an IPv4 Address. * IPv6: Represents an IPv6 Address. * FQDN: Represents a Fully Qualified Domain Name. (Deprecated) The EndpointSlice controller only generates, and kube-proxy only processes, slices of addressType \"IPv4\" and \"IPv6\". No semantics are defined for the \"FQDN\" type.";
    pub(super) const ES_PORTS: &str = "ports specifies the list of network ports exposed by each endpoint in this slice. Each port must have a unique name. Each slice may include a maximum of 100 ports. Services always have at least 1 port, so EndpointSlices generated by the EndpointSlice controller will likewise always have at least 1 port. EndpointSlices used for other purposes may have an empty ports list.";
    pub(super) const ES_ENDPOINTS: &str = "endpoints is a list of unique endpoints in this slice. Each slice may include a maximum of 1000 endpoints.";
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::RESOURCES;
    use serde_json::json;

    fn info(group: &str, kind: &str) -> &'static ResourceInfo {
        RESOURCES
            .iter()
            .find(|r| r.group == group && r.kind == kind)
            .expect("kind is registered")
    }

    fn now() -> Timestamp {
        "2024-06-01T12:00:00Z".parse().expect("valid time")
    }

    /// The RFC 3339 time `seconds` before [`now`].
    fn ago(seconds: i64) -> String {
        rfc3339(
            now()
                .checked_sub(SignedDuration::from_secs(seconds))
                .expect("in range"),
        )
    }

    fn cells(group: &str, kind: &str, obj: Value) -> Vec<Value> {
        row_cells(info(group, kind), &obj, now())
    }

    fn column_names(group: &str, kind: &str) -> Vec<&'static str> {
        columns(info(group, kind)).iter().map(|c| c.name).collect()
    }

    #[test]
    fn human_duration_matches_upstream() {
        let cases: &[(i64, &str)] = &[
            (-3, "<invalid>"),
            (-1, "0s"),
            (0, "0s"),
            (1, "1s"),
            (70, "70s"),
            (119, "119s"),
            (120, "2m"),
            (150, "2m30s"),
            (190, "3m10s"),
            (599, "9m59s"),
            (600, "10m"),
            (70 * 60, "70m"),
            (179 * 60, "179m"),
            (180 * 60, "3h"),
            (200 * 60, "3h20m"),
            (8 * 3600, "8h"),
            (47 * 3600, "47h"),
            (49 * 3600, "2d1h"),
            (72 * 3600, "3d"),
            ((8 * 24 + 2) * 3600, "8d"),
            (367 * 24 * 3600, "367d"),
            ((365 * 2 * 24 + 25) * 3600, "2y1d"),
            (365 * 2 * 24 * 3600, "2y"),
            ((365 * 8 * 24 + 2) * 3600, "8y"),
        ];
        for (seconds, want) in cases {
            assert_eq!(
                human_duration(SignedDuration::from_secs(*seconds)),
                *want,
                "{seconds}s"
            );
        }
        // Sub-second skew into the future truncates to zero, as Go's int(d.Seconds()) does.
        assert_eq!(human_duration(SignedDuration::from_millis(-1500)), "0s");
    }

    #[test]
    fn every_kind_prints_one_cell_per_column_without_panicking() {
        let odd_objects = [
            json!(null),
            json!("pod"),
            json!([]),
            json!({}),
            json!({"metadata": 5, "spec": "x", "status": []}),
            json!({"metadata": {"name": 7, "creationTimestamp": "yesterday", "labels": [1]},
                "spec": {"containers": [null, 1, {"name": 5}], "ports": {"a": 1}, "selector": "x",
                    "replicas": "3", "metrics": [{"type": "Resource"}, {"type": "External"},
                    {"type": "Pods"}, {"type": "Object"}, {"type": "ContainerResource"}, 1]},
                "status": {"conditions": "x", "containerStatuses": [{"state": {"terminated": 1}}],
                    "initContainerStatuses": [{"state": {"waiting": {"reason": 5}}}],
                    "hard": {"cpu": {}}, "loadBalancer": {"ingress": [{"ip": 1}]}},
                "subsets": [{"ports": [1], "addresses": [2]}], "endpoints": [{"addresses": [1]}],
                "involvedObject": 3, "series": {"count": "x"}, "roleRef": [], "subjects": [1]}),
        ];
        for resource in RESOURCES {
            let columns = columns(resource);
            assert!(!columns.is_empty(), "{}", resource.kind);
            for obj in &odd_objects {
                let cells = row_cells(resource, obj, now());
                assert_eq!(cells.len(), columns.len(), "{} {obj}", resource.kind);
            }
        }
    }

    #[test]
    fn columns_serialize_as_table_column_definitions() {
        let pod = columns(info("", "Pod"));
        let first = serde_json::to_value(pod[0]).expect("serializes");
        assert_eq!(
            first,
            json!({"name": "Name", "type": "string", "format": "name",
                "description": doc::NAME, "priority": 0})
        );
        assert_eq!(
            pod.iter().map(|c| c.name).collect::<Vec<_>>(),
            [
                "Name",
                "Ready",
                "Status",
                "Restarts",
                "Age",
                "IP",
                "Node",
                "Nominated Node",
                "Readiness Gates"
            ]
        );
        assert!(pod[5..].iter().all(|c| c.priority == 1));
        assert!(pod[..5].iter().all(|c| c.priority == 0));
    }

    fn running_pod() -> Value {
        json!({
            "metadata": {"name": "web-1", "creationTimestamp": ago(300)},
            "spec": {"nodeName": "node-a", "containers": [{"name": "app", "image": "nginx"}]},
            "status": {
                "phase": "Running",
                "podIP": "10.0.0.7",
                "conditions": [{"type": "Ready", "status": "True"}],
                "containerStatuses": [{
                    "name": "app", "ready": true, "restartCount": 0,
                    "state": {"running": {"startedAt": ago(290)}}
                }]
            }
        })
    }

    #[test]
    fn pod_running() {
        assert_eq!(
            cells("", "Pod", running_pod()),
            [
                json!("web-1"),
                json!("1/1"),
                json!("Running"),
                json!("0"),
                json!("5m"),
                json!("10.0.0.7"),
                json!("node-a"),
                json!("<none>"),
                json!("<none>")
            ]
        );
    }

    #[test]
    fn pod_crash_loop_shows_reason_and_last_restart() {
        let mut pod = running_pod();
        pod["status"]["containerStatuses"][0] = json!({
            "name": "app", "ready": false, "restartCount": 3,
            "state": {"waiting": {"reason": "CrashLoopBackOff"}},
            "lastState": {"terminated": {"exitCode": 1, "finishedAt": ago(300)}}
        });
        let c = cells("", "Pod", pod);
        assert_eq!(c[1], json!("0/1"));
        assert_eq!(c[2], json!("CrashLoopBackOff"));
        assert_eq!(c[3], json!("3 (5m ago)"));
    }

    #[test]
    fn pod_status_reasons() {
        let with_status = |container_status: Value, phase: &str| {
            let mut pod = running_pod();
            pod["status"]["phase"] = json!(phase);
            pod["status"]["containerStatuses"] = json!([container_status]);
            cells("", "Pod", pod)[2].clone()
        };
        assert_eq!(
            with_status(
                json!({"state": {"terminated": {"reason": "Completed", "exitCode": 0}}}),
                "Succeeded"
            ),
            json!("Completed")
        );
        assert_eq!(
            with_status(
                json!({"state": {"waiting": {"reason": "ContainerCreating"}}}),
                "Pending"
            ),
            json!("ContainerCreating")
        );
        assert_eq!(
            with_status(
                json!({"state": {"terminated": {"exitCode": 137}}}),
                "Failed"
            ),
            json!("ExitCode:137")
        );
        assert_eq!(
            with_status(
                json!({"state": {"terminated": {"exitCode": 0, "signal": 9}}}),
                "Failed"
            ),
            json!("Signal:9")
        );
        // Nothing reported yet: the phase.
        let mut pod = running_pod();
        pod["status"] = json!({"phase": "Pending"});
        assert_eq!(cells("", "Pod", pod)[2], json!("Pending"));
        // A pod-level reason wins over the phase.
        let mut pod = running_pod();
        pod["status"] = json!({"phase": "Failed", "reason": "Evicted"});
        assert_eq!(cells("", "Pod", pod)[2], json!("Evicted"));
    }

    #[test]
    fn pod_init_containers() {
        let mut pod = running_pod();
        pod["spec"]["initContainers"] = json!([{"name": "setup"}, {"name": "migrate"}]);
        pod["status"] = json!({
            "phase": "Pending",
            "initContainerStatuses": [
                {"name": "setup", "state": {"terminated": {"exitCode": 0}}},
                {"name": "migrate", "state": {"running": {}}}
            ],
            "containerStatuses": [{"name": "app", "state": {"waiting": {"reason": "PodInitializing"}}}]
        });
        assert_eq!(cells("", "Pod", pod.clone())[2], json!("Init:1/2"));

        pod["status"]["initContainerStatuses"][1] = json!({
            "name": "migrate", "restartCount": 2,
            "state": {"waiting": {"reason": "CrashLoopBackOff"}}
        });
        let c = cells("", "Pod", pod.clone());
        assert_eq!(c[2], json!("Init:CrashLoopBackOff"));
        assert_eq!(c[3], json!("2"));

        pod["status"]["initContainerStatuses"][1] =
            json!({"name": "migrate", "state": {"terminated": {"exitCode": 2}}});
        assert_eq!(cells("", "Pod", pod)[2], json!("Init:ExitCode:2"));
    }

    #[test]
    fn pod_sidecars_count_as_containers() {
        let mut pod = running_pod();
        pod["spec"]["initContainers"] = json!([{"name": "proxy", "restartPolicy": "Always"}]);
        pod["status"]["initContainerStatuses"] = json!([{
            "name": "proxy", "started": true, "ready": true, "restartCount": 1,
            "state": {"running": {}},
            "lastState": {"terminated": {"exitCode": 1, "finishedAt": ago(60)}}
        }]);
        let c = cells("", "Pod", pod);
        assert_eq!(c[1], json!("2/2"));
        assert_eq!(c[2], json!("Running"));
        assert_eq!(c[3], json!("1 (60s ago)"));
    }

    #[test]
    fn pod_terminating_and_node_lost() {
        let mut pod = running_pod();
        pod["metadata"]["deletionTimestamp"] = json!(ago(1));
        assert_eq!(cells("", "Pod", pod.clone())[2], json!("Terminating"));
        pod["status"]["reason"] = json!("NodeLost");
        assert_eq!(cells("", "Pod", pod.clone())[2], json!("Unknown"));
        // A finished pod keeps its final status while being deleted.
        pod["status"] = json!({"phase": "Succeeded"});
        assert_eq!(cells("", "Pod", pod)[2], json!("Succeeded"));
    }

    #[test]
    fn pod_completed_container_while_another_runs() {
        let mut pod = running_pod();
        pod["status"]["containerStatuses"] = json!([
            {"name": "a", "ready": true, "state": {"running": {}}},
            {"name": "b", "state": {"terminated": {"reason": "Completed", "exitCode": 0}}}
        ]);
        assert_eq!(cells("", "Pod", pod.clone())[2], json!("Running"));
        pod["status"]["conditions"] = json!([]);
        assert_eq!(cells("", "Pod", pod)[2], json!("NotReady"));
    }

    #[test]
    fn pod_scheduling_gated_and_readiness_gates() {
        let mut pod = running_pod();
        pod["spec"]["readinessGates"] = json!([{"conditionType": "a"}, {"conditionType": "b"}]);
        pod["status"]["conditions"] = json!([
            {"type": "a", "status": "True"},
            {"type": "b", "status": "False"}
        ]);
        assert_eq!(cells("", "Pod", pod)[8], json!("1/2"));

        let gated = json!({"metadata": {"name": "p"}, "status": {"phase": "Pending",
            "conditions": [{"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}]}});
        let c = cells("", "Pod", gated);
        assert_eq!(c[2], json!("SchedulingGated"));
        assert_eq!(c[4], json!("<unknown>"));
    }

    #[test]
    fn deployment_row() {
        let d = json!({
            "metadata": {"name": "web", "creationTimestamp": ago(3 * 86400)},
            "spec": {
                "replicas": 3,
                "selector": {"matchLabels": {"app": "web", "tier": "fe"}},
                "template": {"spec": {"containers": [
                    {"name": "nginx", "image": "nginx:1.25"},
                    {"name": "log", "image": "busybox"}
                ]}}
            },
            "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2}
        });
        assert_eq!(
            column_names("apps", "Deployment"),
            [
                "Name",
                "Ready",
                "Up-to-date",
                "Available",
                "Age",
                "Containers",
                "Images",
                "Selector"
            ]
        );
        assert_eq!(
            cells("apps", "Deployment", d),
            [
                json!("web"),
                json!("2/3"),
                json!(3),
                json!(2),
                json!("3d"),
                json!("nginx,log"),
                json!("nginx:1.25,busybox"),
                json!("app=web,tier=fe")
            ]
        );
        // Unset replicas read as the default, 1; an unset selector prints empty.
        let bare = cells("apps", "Deployment", json!({"metadata": {"name": "x"}}));
        assert_eq!(bare[1], json!("0/1"));
        assert_eq!(bare[7], json!(""));
    }

    #[test]
    fn label_selectors() {
        let selector = json!({
            "matchLabels": {"z": "1"},
            "matchExpressions": [
                {"key": "env", "operator": "In", "values": ["prod", "dev"]},
                {"key": "tier", "operator": "NotIn", "values": ["cache"]},
                {"key": "canary", "operator": "DoesNotExist"},
                {"key": "app", "operator": "Exists"}
            ]
        });
        assert_eq!(
            format_label_selector(Some(&selector)),
            "app,!canary,env in (dev,prod),tier notin (cache),z=1"
        );
        assert_eq!(format_label_selector(None), "<none>");
        assert_eq!(format_label_selector(Some(&json!({}))), "<none>");
        let bad = json!({"matchExpressions": [{"key": "a", "operator": "In", "values": []}]});
        assert_eq!(format_label_selector(Some(&bad)), "<error>");
        let bad_key = json!({"matchLabels": {"-a": "b"}});
        assert_eq!(format_label_selector(Some(&bad_key)), "<error>");
        assert_eq!(
            cells(
                "apps",
                "Deployment",
                json!({"spec": {"selector": {"matchLabels": {"a": "b c"}}}})
            )[7],
            json!("<invalid>")
        );
    }

    #[test]
    fn replica_daemon_and_stateful_sets() {
        let rs = json!({"metadata": {"name": "rs"}, "spec": {"replicas": 2,
            "selector": {"matchLabels": {"app": "a"}}}, "status": {"replicas": 2, "readyReplicas": 1}});
        assert_eq!(
            cells("apps", "ReplicaSet", rs)[1..4],
            [json!(2), json!(2), json!(1)]
        );
        let ds = json!({"metadata": {"name": "ds"}, "spec": {"template": {"spec": {
            "nodeSelector": {"kubernetes.io/os": "linux"}}}},
            "status": {"desiredNumberScheduled": 3, "currentNumberScheduled": 3, "numberReady": 2,
                "updatedNumberScheduled": 3, "numberAvailable": 2}});
        let c = cells("apps", "DaemonSet", ds);
        assert_eq!(c[1..6], [json!(3), json!(3), json!(2), json!(3), json!(2)]);
        assert_eq!(c[6], json!("kubernetes.io/os=linux"));
        assert_eq!(c[10], json!("<none>"));
        let sts = json!({"metadata": {"name": "db"}, "spec": {"replicas": 3}, "status": {"readyReplicas": 3}});
        assert_eq!(cells("apps", "StatefulSet", sts)[1], json!("3/3"));
    }

    #[test]
    fn service_rows() {
        let svc = |spec: Value, status: Value| {
            cells(
                "",
                "Service",
                json!({"metadata": {"name": "s"}, "spec": spec, "status": status}),
            )
        };
        let c = svc(
            json!({"type": "ClusterIP", "clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"],
                "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}],
                "selector": {"k8s-app": "kube-dns"}}),
            json!({}),
        );
        assert_eq!(
            c[1..5],
            [
                json!("ClusterIP"),
                json!("10.96.0.10"),
                json!("<none>"),
                json!("53/UDP,53/TCP")
            ]
        );
        assert_eq!(c[6], json!("k8s-app=kube-dns"));

        let c = svc(
            json!({"type": "NodePort", "clusterIPs": ["10.96.1.1"],
                "ports": [{"port": 80, "nodePort": 30080, "protocol": "TCP"}]}),
            json!({}),
        );
        assert_eq!(
            c[2..5],
            [json!("10.96.1.1"), json!("<none>"), json!("80:30080/TCP")]
        );
        assert_eq!(c[6], json!("<none>"));

        let lb = svc(json!({"type": "LoadBalancer", "ports": []}), json!({}));
        assert_eq!(
            lb[2..5],
            [json!("<none>"), json!("<pending>"), json!("<none>")]
        );
        let lb = svc(
            json!({"type": "LoadBalancer", "externalIPs": ["1.2.3.4"]}),
            json!({"loadBalancer": {"ingress": [{"hostname": "lb.example.com"}, {"ip": "5.6.7.8"}]}}),
        );
        assert_eq!(lb[3], json!("5.6.7.8,lb.example.com,1.2.3.4"));
        let external = svc(
            json!({"type": "ExternalName", "externalName": "db.example.com"}),
            json!({}),
        );
        assert_eq!(external[3], json!("db.example.com"));
    }

    #[test]
    fn node_rows() {
        let node = json!({
            "metadata": {"name": "n1", "creationTimestamp": ago(10 * 86400), "labels": {
                "node-role.kubernetes.io/control-plane": "", "kubernetes.io/role": "master"}},
            "spec": {"unschedulable": true},
            "status": {
                "conditions": [{"type": "MemoryPressure", "status": "False"},
                    {"type": "Ready", "status": "True"}],
                "addresses": [{"type": "InternalIP", "address": "192.168.1.10"},
                    {"type": "Hostname", "address": "n1"}],
                "nodeInfo": {"kubeletVersion": "v1.33.0", "osImage": "Ubuntu 24.04",
                    "kernelVersion": "6.8.0", "containerRuntimeVersion": "containerd://2.0.0"}
            }
        });
        assert_eq!(
            cells("", "Node", node),
            [
                json!("n1"),
                json!("Ready,SchedulingDisabled"),
                json!("control-plane,master"),
                json!("10d"),
                json!("v1.33.0"),
                json!("192.168.1.10"),
                json!("<none>"),
                json!("Ubuntu 24.04"),
                json!("6.8.0"),
                json!("containerd://2.0.0")
            ]
        );
        let not_ready = json!({"status": {"conditions": [{"type": "Ready", "status": "Unknown"}]}});
        let c = cells("", "Node", not_ready);
        assert_eq!(c[1], json!("NotReady"));
        assert_eq!(c[2], json!("<none>"));
        assert_eq!(c[7], json!("<unknown>"));
        assert_eq!(cells("", "Node", json!({}))[1], json!("Unknown"));
    }

    #[test]
    fn simple_core_kinds() {
        assert_eq!(
            cells(
                "",
                "Namespace",
                json!({"metadata": {"name": "default", "creationTimestamp": ago(45)},
                "status": {"phase": "Active"}})
            ),
            [json!("default"), json!("Active"), json!("45s")]
        );
        assert_eq!(
            cells(
                "",
                "ConfigMap",
                json!({"metadata": {"name": "c"},
                "data": {"a": "1", "b": "2"}, "binaryData": {"c": "AA=="}})
            )[1],
            json!(3)
        );
        assert_eq!(
            cells(
                "",
                "Secret",
                json!({"metadata": {"name": "s"},
                "type": "kubernetes.io/tls", "data": {"tls.crt": "", "tls.key": ""}})
            )[1..3],
            [json!("kubernetes.io/tls"), json!(2)]
        );
        assert_eq!(
            cells(
                "",
                "ServiceAccount",
                json!({"metadata": {"name": "default"}})
            )[1],
            json!(0)
        );
        assert_eq!(column_names("", "Secret"), ["Name", "Type", "Data", "Age"]);
    }

    #[test]
    fn endpoints_and_slices() {
        let ep = json!({"metadata": {"name": "e"}, "subsets": [{
            "addresses": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}, {"ip": "fd00::3"}],
            "ports": [{"port": 80}, {"port": 443}]
        }]});
        assert_eq!(
            cells("", "Endpoints", ep)[1],
            json!("10.0.0.1:80,10.0.0.2:80,[fd00::3]:80 + 3 more...")
        );
        assert_eq!(
            cells("", "Endpoints", json!({"metadata": {"name": "e"}}))[1],
            json!("<none>")
        );
        let slice = json!({"metadata": {"name": "s"}, "addressType": "IPv4",
            "ports": [{"port": 80, "name": "http"}, {"name": "dns"}],
            "endpoints": [{"addresses": ["10.0.0.1"]}, {"addresses": ["10.0.0.2"]}]});
        assert_eq!(
            cells("discovery.k8s.io", "EndpointSlice", slice)[1..4],
            [json!("IPv4"), json!("80,dns"), json!("10.0.0.1,10.0.0.2")]
        );
        let empty = cells(
            "discovery.k8s.io",
            "EndpointSlice",
            json!({"addressType": "IPv4"}),
        );
        assert_eq!(empty[2..4], [json!("<unset>"), json!("<unset>")]);
    }

    #[test]
    fn job_and_cron_job_rows() {
        let job = json!({
            "metadata": {"name": "pi", "creationTimestamp": ago(120)},
            "spec": {"completions": 1, "parallelism": 1,
                "selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": "u1"}},
                "template": {"spec": {"containers": [{"name": "pi", "image": "perl"}]}}},
            "status": {"succeeded": 1, "startTime": ago(100), "completionTime": ago(55),
                "conditions": [{"type": "SuccessCriteriaMet", "status": "True"},
                    {"type": "Complete", "status": "True"}]}
        });
        assert_eq!(
            cells("batch", "Job", job),
            [
                json!("pi"),
                json!("Complete"),
                json!("1/1"),
                json!("45s"),
                json!("2m"),
                json!("pi"),
                json!("perl"),
                json!("batch.kubernetes.io/controller-uid=u1")
            ]
        );
        let queue = json!({"spec": {"parallelism": 3}, "status": {"startTime": ago(30)}});
        let c = cells("batch", "Job", queue);
        assert_eq!(c[1..4], [json!("Running"), json!("0/1 of 3"), json!("30s")]);
        let suspended =
            json!({"status": {"conditions": [{"type": "Suspended", "status": "True"}]}});
        let c = cells("batch", "Job", suspended);
        assert_eq!(c[1..4], [json!("Suspended"), json!("0/1"), json!("")]);

        assert_eq!(
            column_names("batch", "CronJob"),
            [
                "Name",
                "Schedule",
                "Timezone",
                "Suspend",
                "Active",
                "Last Schedule",
                "Age",
                "Containers",
                "Images",
                "Selector"
            ]
        );
        let cron = json!({"metadata": {"name": "hello", "creationTimestamp": ago(3600)},
            "spec": {"schedule": "*/5 * * * *", "jobTemplate": {"spec": {"template": {"spec": {
                "containers": [{"name": "hello", "image": "busybox"}]}}}}},
            "status": {"active": [{"name": "hello-1"}], "lastScheduleTime": ago(150)}});
        assert_eq!(
            cells("batch", "CronJob", cron)[..7],
            [
                json!("hello"),
                json!("*/5 * * * *"),
                json!("<none>"),
                json!("False"),
                json!(1),
                json!("2m30s"),
                json!("60m")
            ]
        );
        let never = cells(
            "batch",
            "CronJob",
            json!({"spec": {"timeZone": "Etc/UTC", "suspend": true}}),
        );
        assert_eq!(
            never[2..6],
            [json!("Etc/UTC"), json!("True"), json!(0), json!("<none>")]
        );
    }

    #[test]
    fn event_rows_for_both_apis() {
        let core = json!({
            "metadata": {"name": "web.17f"},
            "involvedObject": {"kind": "Pod", "name": "web", "fieldPath": "spec.containers{app}"},
            "reason": "Pulled", "type": "Normal", "message": " pulled image \n",
            "source": {"component": "kubelet", "host": "node-a"},
            "firstTimestamp": ago(600), "lastTimestamp": ago(30), "count": 4
        });
        assert_eq!(
            cells("", "Event", core),
            [
                json!("30s"),
                json!("Normal"),
                json!("Pulled"),
                json!("pod/web"),
                json!("spec.containers{app}"),
                json!("kubelet, node-a"),
                json!("pulled image"),
                json!("10m"),
                json!(4),
                json!("web.17f")
            ]
        );
        let new_api = json!({
            "metadata": {"name": "e2"},
            "regarding": {"kind": "Node", "name": "n1"},
            "reason": "Starting", "type": "Normal", "note": "Starting kubelet.",
            "reportingController": "kubelet", "reportingInstance": "n1",
            "eventTime": "2024-06-01T11:59:00.000000Z"
        });
        assert_eq!(
            cells("events.k8s.io", "Event", new_api),
            [
                json!("60s"),
                json!("Normal"),
                json!("Starting"),
                json!("node/n1"),
                json!(""),
                json!("kubelet, n1"),
                json!("Starting kubelet."),
                json!("60s"),
                json!(1),
                json!("e2")
            ]
        );
        let series = json!({"involvedObject": {"kind": "Pod"}, "eventTime": ago(300),
            "series": {"count": 7, "lastObservedTime": "2024-06-01T11:59:50.000000Z"}});
        let c = cells("", "Event", series);
        assert_eq!(c[0], json!("10s"));
        assert_eq!(c[3], json!("pod"));
        assert_eq!(c[8], json!(7));
        assert_eq!(
            column_names("", "Event"),
            [
                "Last Seen",
                "Type",
                "Reason",
                "Object",
                "Subobject",
                "Source",
                "Message",
                "First Seen",
                "Count",
                "Name"
            ]
        );
    }

    #[test]
    fn storage_rows() {
        let pv = json!({"metadata": {"name": "pv1", "annotations": {
                "volume.beta.kubernetes.io/storage-class": "slow"}},
            "spec": {"capacity": {"storage": "1024Mi"}, "accessModes": ["ReadWriteMany", "ReadWriteOnce"],
                "claimRef": {"namespace": "default", "name": "data"},
                "persistentVolumeReclaimPolicy": "Delete", "storageClassName": "fast"},
            "status": {"phase": "Bound"}});
        assert_eq!(
            cells("", "PersistentVolume", pv),
            [
                json!("pv1"),
                json!("1Gi"),
                json!("RWO,RWX"),
                json!("Delete"),
                json!("Bound"),
                json!("default/data"),
                json!("slow"),
                json!("<unset>"),
                json!(""),
                json!("<unknown>"),
                json!("Filesystem")
            ]
        );
        let pending = json!({"metadata": {"name": "data"},
            "spec": {"resources": {"requests": {"storage": "1Gi"}}, "storageClassName": "fast"}});
        assert_eq!(
            cells("", "PersistentVolumeClaim", pending)[1..6],
            [
                json!("Pending"),
                json!(""),
                json!(""),
                json!(""),
                json!("fast")
            ]
        );
        let bound = json!({"metadata": {"name": "data"},
            "spec": {"volumeName": "pv1", "volumeMode": "Block"},
            "status": {"phase": "Bound", "capacity": {"storage": "0.5Gi"}, "accessModes": ["ReadWriteOnce"]}});
        let c = cells("", "PersistentVolumeClaim", bound);
        assert_eq!(
            c[1..5],
            [json!("Bound"), json!("pv1"), json!("512Mi"), json!("RWO")]
        );
        assert_eq!(c[8], json!("Block"));

        let sc = json!({"metadata": {"name": "standard", "annotations": {
                "storageclass.kubernetes.io/is-default-class": "true"}},
            "provisioner": "rancher.io/local-path", "volumeBindingMode": "WaitForFirstConsumer"});
        assert_eq!(
            cells("storage.k8s.io", "StorageClass", sc)[..5],
            [
                json!("standard (default)"),
                json!("rancher.io/local-path"),
                json!("Delete"),
                json!("WaitForFirstConsumer"),
                json!(false)
            ]
        );
    }

    #[test]
    fn quota_hpa_and_pdb_rows() {
        let quota = json!({"metadata": {"name": "q"}, "status": {
            "hard": {"requests.cpu": "1", "limits.memory": "2Gi", "pods": "10", "limits.cpu": "2"},
            "used": {"requests.cpu": "0.5", "limits.memory": "1073741824", "limits.cpu": "0"}}});
        assert_eq!(
            cells("", "ResourceQuota", quota)[1..3],
            [
                json!("pods: 0/10, requests.cpu: 500m/1"),
                json!("limits.cpu: 0/2, limits.memory: 1073741824/2Gi")
            ]
        );

        let hpa = json!({"metadata": {"name": "web"}, "spec": {
            "scaleTargetRef": {"kind": "Deployment", "name": "web"}, "maxReplicas": 10,
            "metrics": [
                {"type": "Resource", "resource": {"name": "cpu",
                    "target": {"type": "Utilization", "averageUtilization": 80}}},
                {"type": "Resource", "resource": {"name": "memory",
                    "target": {"type": "AverageValue", "averageValue": "1024Mi"}}},
                {"type": "Pods", "pods": {"metric": {"name": "qps"},
                    "target": {"type": "AverageValue", "averageValue": "1k"}}}
            ]},
        "status": {"currentReplicas": 2, "currentMetrics": [
            {"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 50}}}
        ]}});
        assert_eq!(
            cells("autoscaling", "HorizontalPodAutoscaler", hpa)[1..6],
            [
                json!("Deployment/web"),
                json!("cpu: 50%/80%, memory: <unknown>/1Gi + 1 more..."),
                json!("1"),
                json!(10),
                json!(2)
            ]
        );
        let defaulted = cells(
            "autoscaling",
            "HorizontalPodAutoscaler",
            json!({"spec": {"minReplicas": 2}}),
        );
        assert_eq!(defaulted[2..4], [json!("cpu: <unknown>/80%"), json!("2")]);

        let pdb = json!({"metadata": {"name": "p"}, "spec": {"minAvailable": "50%"},
            "status": {"disruptionsAllowed": 1}});
        assert_eq!(
            cells("policy", "PodDisruptionBudget", pdb)[1..4],
            [json!("50%"), json!("N/A"), json!(1)]
        );
    }

    #[test]
    fn networking_rbac_and_misc_rows() {
        let ingress = json!({"metadata": {"name": "i"}, "spec": {"ingressClassName": "nginx",
                "rules": [{"host": "a.example.com"}, {}, {"host": "b.example.com"},
                    {"host": "c.example.com"}, {"host": "d.example.com"}],
                "tls": [{"hosts": ["a.example.com"]}]},
            "status": {"loadBalancer": {"ingress": [{"ip": "192.168.49.2"}]}}});
        assert_eq!(
            cells("networking.k8s.io", "Ingress", ingress)[1..5],
            [
                json!("nginx"),
                json!("a.example.com,b.example.com,c.example.com + 2 more..."),
                json!("192.168.49.2"),
                json!("80, 443")
            ]
        );
        let plain = cells(
            "networking.k8s.io",
            "Ingress",
            json!({"spec": {"rules": [{}]}}),
        );
        assert_eq!(
            plain[1..5],
            [json!("<none>"), json!("*"), json!(""), json!("80")]
        );

        let class = json!({"metadata": {"name": "nginx"}, "spec": {"controller": "k8s.io/ingress-nginx",
            "parameters": {"apiGroup": "k8s.example.com", "kind": "IngressParameters", "name": "p"}}});
        assert_eq!(
            cells("networking.k8s.io", "IngressClass", class)[2],
            json!("IngressParameters.k8s.example.com/p")
        );
        let policy = json!({"metadata": {"name": "deny"}, "spec": {"podSelector": {}}});
        assert_eq!(
            cells("networking.k8s.io", "NetworkPolicy", policy)[1],
            json!("<none>")
        );

        let binding = json!({"metadata": {"name": "b"},
            "roleRef": {"kind": "ClusterRole", "name": "view", "apiGroup": "rbac.authorization.k8s.io"},
            "subjects": [{"kind": "User", "name": "alice"}, {"kind": "Group", "name": "devs"},
                {"kind": "ServiceAccount", "namespace": "ci", "name": "bot"},
                {"kind": "User", "name": "bob"}]});
        let c = cells("rbac.authorization.k8s.io", "RoleBinding", binding);
        assert_eq!(c[1], json!("ClusterRole/view"));
        assert_eq!(
            c[3..6],
            [json!("alice, bob"), json!("devs"), json!("ci/bot")]
        );

        let revision = json!({"metadata": {"name": "ds-7f", "ownerReferences": [
                {"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "ds", "controller": true}]},
            "revision": 3});
        assert_eq!(
            cells("apps", "ControllerRevision", revision)[1..3],
            [json!("daemonset.apps/ds"), json!(3)]
        );
        let lease = json!({"metadata": {"name": "l"}, "spec": {"holderIdentity": "node-a"}});
        assert_eq!(
            cells("coordination.k8s.io", "Lease", lease)[1],
            json!("node-a")
        );
        let pc = json!({"metadata": {"name": "high"}, "value": 1000, "globalDefault": true});
        assert_eq!(
            cells("scheduling.k8s.io", "PriorityClass", pc)[1..5],
            [
                json!(1000),
                json!(true),
                json!("<unknown>"),
                json!("PreemptLowerPriority")
            ]
        );
        let rc = json!({"metadata": {"name": "wasm"}, "handler": "wasmtime"});
        assert_eq!(
            cells("node.k8s.io", "RuntimeClass", rc)[1],
            json!("wasmtime")
        );
        let template = json!({"metadata": {"name": "t"}, "template": {
            "metadata": {"labels": {"b": "2", "a": "1"}},
            "spec": {"containers": [{"name": "c", "image": "i"}]}}});
        assert_eq!(
            cells("", "PodTemplate", template)[1..4],
            [json!("c"), json!("i"), json!("a=1,b=2")]
        );
    }

    #[test]
    fn kinds_without_printer_use_the_default_table() {
        for (group, kind) in [
            ("rbac.authorization.k8s.io", "Role"),
            ("rbac.authorization.k8s.io", "ClusterRole"),
            ("", "LimitRange"),
        ] {
            assert_eq!(column_names(group, kind), ["Name", "Created At"]);
            assert_eq!(columns(info(group, kind))[1].type_, "date");
        }
        let role =
            json!({"metadata": {"name": "reader", "creationTimestamp": "2024-01-02T03:04:05Z"}});
        assert_eq!(
            cells("rbac.authorization.k8s.io", "Role", role),
            [json!("reader"), json!("2024-01-02T03:04:05Z")]
        );
        assert_eq!(
            cells("", "LimitRange", json!({}))[1],
            json!("0001-01-01T00:00:00Z")
        );
    }
}
