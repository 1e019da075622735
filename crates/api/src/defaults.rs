//! Defaulting, as the Kubernetes API server applies it to every object it is asked to write.
//!
//! Upstream, defaults come from three places, and an object read back from a real cluster shows
//! all three; this module reproduces them over untyped JSON:
//! - the versioned `SetDefaults_*` functions (and `+default` markers) run when a request body is
//!   decoded: a Pod's `restartPolicy`, a Deployment's `strategy`, a container's
//!   `imagePullPolicy`, the same pod-template defaults inside every workload, and so on;
//! - registry strategies and the Service IP allocator on create: a new Pod's `status.phase` and
//!   `status.qosClass`, a Namespace's `kubernetes` finalizer, a Service's IP family fields;
//! - the default admission plugins: a Pod's service account and priority (the not-ready /
//!   unreachable tolerations are [`default_toleration_seconds`], which the API server's
//!   admission applies with its configured period).
//!
//! [`apply_defaults`] is idempotent and safe to run on every create, update and patch result: it
//! only fills fields that are unset (missing, `null`, or the empty value Go treats as unset), and
//! never overwrites a field of unexpected type — validation reports those. The one create-only
//! default, the Namespace finalizer, is only added to objects that look new (see
//! [`apply_defaults`]).
//!
//! Resource quantities are also rewritten in Kubernetes' canonical form (`0.5` → `500m`,
//! `1024Mi` → `1Gi`), rounded up to milli-units in resource lists, because that is what a
//! quantity looks like after a round trip through the real API server.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::registry::ResourceInfo;
use qty::Quantity;

type Object = Map<String, Value>;

const RBAC_GROUP: &str = "rbac.authorization.k8s.io";

/// Fills in the fields the Kubernetes API server defaults on write for `info`'s kind.
///
/// Kinds without defaults are left untouched, as is anything that is not a JSON object.
///
/// Server-side facts this pure function cannot know are left to the caller: a priority for a
/// `priorityClassName` other than the two built-in system classes (or a cluster-wide default
/// PriorityClass), the ServiceAccount token volume, a Job's generated selector (it needs the
/// object's uid), and cluster IP / node port allocation. Services are defaulted for a
/// single-stack IPv4 cluster.
///
/// A Namespace gets the `kubernetes` finalizer only when it has no `metadata.resourceVersion`
/// and no `metadata.deletionTimestamp`, i.e. on create: upstream adds it on create only, and
/// re-adding it on a later write would stop the namespace from ever finishing deletion.
pub fn apply_defaults(info: &ResourceInfo, obj: &mut Value) {
    let Some(root) = obj.as_object_mut() else {
        return;
    };
    match (info.group, info.kind) {
        ("", "Pod") => pod(root),
        ("", "PodTemplate") => pod_template(root, "template"),
        ("apps", "Deployment") => deployment(root),
        ("apps", "ReplicaSet") => replica_set(root),
        ("apps", "DaemonSet") => daemon_set(root),
        ("apps", "StatefulSet") => stateful_set(root),
        ("batch", "Job") => job(root),
        ("batch", "CronJob") => cron_job(root),
        ("", "Service") => service(root),
        ("", "Secret") => default_str(root, "type", "Opaque"),
        ("", "Namespace") => namespace(root),
        ("", "PersistentVolumeClaim") => persistent_volume_claim(root),
        ("", "PersistentVolume") => persistent_volume(root),
        ("", "Endpoints") => endpoints(root),
        ("", "Node") => node(root),
        ("", "LimitRange") => limit_range(root),
        ("", "ResourceQuota") => resource_quota(root),
        ("autoscaling", "HorizontalPodAutoscaler") => horizontal_pod_autoscaler(root),
        ("networking.k8s.io", "NetworkPolicy") => network_policy(root),
        ("networking.k8s.io", "IngressClass") => ingress_class(root),
        ("discovery.k8s.io", "EndpointSlice") => endpoint_slice(root),
        (RBAC_GROUP, "RoleBinding" | "ClusterRoleBinding") => role_binding(root),
        ("storage.k8s.io", "StorageClass") => storage_class(root),
        ("scheduling.k8s.io", "PriorityClass") => {
            default_value(root, "preemptionPolicy", "PreemptLowerPriority".into());
        }
        _ => {}
    }
}

// ---------------------------------------------------------------------------------------------
// Pods and pod templates.

fn pod(root: &mut Object) {
    let qos = {
        let Some(spec) = child_or_insert(root, "spec") else {
            return;
        };
        pod_spec(spec);

        // SetDefaults_Pod: only a Pod, not a pod template, gets these.
        for key in ["containers", "initContainers"] {
            for container in list(spec, key) {
                requests_from_limits(container);
            }
        }
        pod_level_resources(spec);
        default_value(spec, "enableServiceLinks", Value::Bool(true));
        if spec.get("hostNetwork") == Some(&Value::Bool(true)) {
            for key in ["containers", "initContainers"] {
                for container in list(spec, key) {
                    for port in list(container, "ports") {
                        host_port_from_container_port(port);
                    }
                }
            }
        }

        // Default admission plugins.
        service_account(spec);
        priority(spec);
        // DefaultTolerationSeconds is applied by the API server's admission, whose
        // toleration period is configurable: see [`default_toleration_seconds`].

        qos_class(spec)
    };

    // The pod registry strategy on create.
    if let Some(status) = child_or_insert(root, "status") {
        default_str(status, "phase", "Pending");
        default_str(status, "qosClass", qos);
    }
}

/// Defaults of a `PodTemplateSpec` held at `key` (a non-pointer field upstream, so it is created
/// when missing, as decoding would).
fn pod_template(parent: &mut Object, key: &str) {
    if let Some(template) = child_or_insert(parent, key)
        && let Some(spec) = child_or_insert(template, "spec")
    {
        pod_spec(spec);
    }
}

/// SetDefaults_PodSpec and the defaults of everything a PodSpec contains; shared by Pods and
/// every pod template.
fn pod_spec(spec: &mut Object) {
    default_str(spec, "dnsPolicy", "ClusterFirst");
    default_str(spec, "restartPolicy", "Always");
    child_or_insert(spec, "securityContext");
    default_value(spec, "terminationGracePeriodSeconds", json!(30));
    default_str(spec, "schedulerName", "default-scheduler");
    for key in ["containers", "initContainers", "ephemeralContainers"] {
        for c in list(spec, key) {
            container(c);
        }
    }
    for v in list(spec, "volumes") {
        volume(v);
    }
    if let Some(resources) = child(spec, "resources") {
        resource_requirements(resources);
    }
    if let Some(overhead) = child(spec, "overhead") {
        resource_list(overhead);
    }
}

fn container(c: &mut Object) {
    if is_unset_str(c.get("imagePullPolicy")) {
        let image = c.get("image").and_then(Value::as_str).unwrap_or("");
        let policy = image_pull_policy(image);
        c.insert("imagePullPolicy".into(), policy.into());
    }
    default_str(c, "terminationMessagePath", "/dev/termination-log");
    default_str(c, "terminationMessagePolicy", "File");
    for port in list(c, "ports") {
        default_str(port, "protocol", "TCP");
    }
    for env in list(c, "env") {
        if let Some(value_from) = child(env, "valueFrom") {
            field_ref(value_from);
        }
    }
    // `resources` is a non-pointer struct upstream: it always serializes, as `{}` when empty.
    if let Some(resources) = child_or_insert(c, "resources") {
        resource_requirements(resources);
    }
    for key in ["livenessProbe", "readinessProbe", "startupProbe"] {
        if let Some(p) = child(c, key) {
            probe(p);
        }
    }
    if let Some(lifecycle) = child(c, "lifecycle") {
        for key in ["postStart", "preStop"] {
            if let Some(handler) = child(lifecycle, key) {
                http_get(handler);
            }
        }
    }
}

fn probe(p: &mut Object) {
    http_get(p);
    if let Some(grpc) = child(p, "grpc") {
        default_value(grpc, "service", "".into());
    }
    // Non-pointer integers upstream: zero means unset.
    default_nonzero(p, "timeoutSeconds", 1);
    default_nonzero(p, "periodSeconds", 10);
    default_nonzero(p, "successThreshold", 1);
    default_nonzero(p, "failureThreshold", 3);
}

fn http_get(handler: &mut Object) {
    if let Some(get) = child(handler, "httpGet") {
        default_str(get, "path", "/");
        default_str(get, "scheme", "HTTP");
    }
}

/// A downward API `fieldRef` defaults its apiVersion to v1.
fn field_ref(holder: &mut Object) {
    if let Some(r) = child(holder, "fieldRef") {
        default_str(r, "apiVersion", "v1");
    }
}

/// Every volume source a Volume can name; a Volume naming none becomes an emptyDir.
const VOLUME_SOURCES: &[&str] = &[
    "hostPath",
    "emptyDir",
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "gitRepo",
    "secret",
    "nfs",
    "iscsi",
    "glusterfs",
    "persistentVolumeClaim",
    "rbd",
    "flexVolume",
    "cinder",
    "cephfs",
    "flocker",
    "downwardAPI",
    "fc",
    "azureFile",
    "configMap",
    "vsphereVolume",
    "quobyte",
    "azureDisk",
    "photonPersistentDisk",
    "projected",
    "portworxVolume",
    "scaleIO",
    "storageos",
    "csi",
    "ephemeral",
    "image",
];

/// Mode 0644, the default file mode of configMap, secret, downwardAPI and projected volumes.
const DEFAULT_FILE_MODE: i64 = 0o644;

fn volume(v: &mut Object) {
    if VOLUME_SOURCES.iter().all(|k| is_unset(v.get(*k))) {
        v.insert("emptyDir".into(), json!({}));
    }
    for key in ["secret", "configMap"] {
        if let Some(source) = child(v, key) {
            default_value(source, "defaultMode", json!(DEFAULT_FILE_MODE));
        }
    }
    if let Some(downward) = child(v, "downwardAPI") {
        default_value(downward, "defaultMode", json!(DEFAULT_FILE_MODE));
        for item in list(downward, "items") {
            field_ref(item);
        }
    }
    if let Some(projected) = child(v, "projected") {
        default_value(projected, "defaultMode", json!(DEFAULT_FILE_MODE));
        for source in list(projected, "sources") {
            if let Some(downward) = child(source, "downwardAPI") {
                for item in list(downward, "items") {
                    field_ref(item);
                }
            }
            if let Some(token) = child(source, "serviceAccountToken") {
                default_value(token, "expirationSeconds", json!(3600));
            }
        }
    }
    if let Some(empty_dir) = child(v, "emptyDir")
        && let Some(limit) = empty_dir.get_mut("sizeLimit")
    {
        canonicalize(limit, false);
    }
    if let Some(ephemeral) = child(v, "ephemeral")
        && let Some(template) = child(ephemeral, "volumeClaimTemplate")
        && let Some(spec) = child(template, "spec")
    {
        persistent_volume_claim_spec(spec);
    }
    if let Some(image) = child(v, "image")
        && is_unset_str(image.get("pullPolicy"))
    {
        let reference = image.get("reference").and_then(Value::as_str).unwrap_or("");
        let policy = image_pull_policy(reference);
        image.insert("pullPolicy".into(), policy.into());
    }
    volume_source(v);
}

/// Defaults of volume sources a Pod volume and a PersistentVolume share.
fn volume_source(source: &mut Object) {
    if let Some(host_path) = child(source, "hostPath") {
        default_value(host_path, "type", "".into());
    }
    if let Some(iscsi) = child(source, "iscsi") {
        default_str(iscsi, "iscsiInterface", "default");
    }
    if let Some(rbd) = child(source, "rbd") {
        default_str(rbd, "pool", "rbd");
        default_str(rbd, "user", "admin");
        default_str(rbd, "keyring", "/etc/ceph/keyring");
    }
    if let Some(azure) = child(source, "azureDisk") {
        default_value(azure, "cachingMode", "ReadWrite".into());
        default_value(azure, "fsType", "ext4".into());
        default_value(azure, "readOnly", Value::Bool(false));
        default_value(azure, "kind", "Shared".into());
    }
    if let Some(scale_io) = child(source, "scaleIO") {
        default_str(scale_io, "storageMode", "ThinProvisioned");
        default_str(scale_io, "fsType", "xfs");
    }
}

/// `Always` for a `latest` (or missing) tag without a digest, otherwise `IfNotPresent`, as
/// SetDefaults_Container decides from the parsed image reference. An image that does not parse
/// gets `IfNotPresent`, as upstream ignores the parse error.
fn image_pull_policy(image: &str) -> &'static str {
    match parse_image_reference(image) {
        Some(ImageReference {
            tag: Some("latest"),
            ..
        })
        | Some(ImageReference {
            tag: None,
            has_digest: false,
        }) => "Always",
        _ => "IfNotPresent",
    }
}

#[derive(Debug, PartialEq, Eq)]
struct ImageReference<'a> {
    tag: Option<&'a str>,
    has_digest: bool,
}

/// Parses `[domain/]path[:tag][@digest]` by the distribution reference grammar Kubernetes uses.
fn parse_image_reference(image: &str) -> Option<ImageReference<'_>> {
    // A bare 64-hex string is an image ID, which the parser refuses as a repository name.
    if image.len() == 64
        && image
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    {
        return None;
    }
    let (named, digest) = match image.split_once('@') {
        Some((named, digest)) => (named, Some(digest)),
        None => (image, None),
    };
    if let Some(digest) = digest
        && !is_digest(digest)
    {
        return None;
    }
    let (name, tag) = match named.rfind(':') {
        Some(i) if !named[i..].contains('/') => (&named[..i], Some(&named[i + 1..])),
        _ => (named, None),
    };
    if let Some(tag) = tag
        && !is_tag(tag)
    {
        return None;
    }
    if name.is_empty() || name.len() > 255 {
        return None;
    }
    let mut components = name.split('/');
    let first = components.next().unwrap_or("");
    let remote: Vec<&str> = if name.contains('/')
        && (first.contains(['.', ':'])
            || first == "localhost"
            || first.bytes().any(|b| b.is_ascii_uppercase()))
    {
        if !is_domain(first) {
            return None;
        }
        components.collect()
    } else {
        name.split('/').collect()
    };
    if remote.is_empty() || !remote.iter().all(|c| is_path_component(c)) {
        return None;
    }
    Some(ImageReference {
        tag,
        has_digest: digest.is_some(),
    })
}

/// `[a-z0-9]+` runs joined by `.`, `_`, `__` or runs of `-`.
fn is_path_component(c: &str) -> bool {
    let b = c.as_bytes();
    let mut i = 0;
    loop {
        let start = i;
        while b
            .get(i)
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        {
            i += 1;
        }
        if i == start {
            return false;
        }
        match b.get(i) {
            None => return true,
            Some(b'.') => i += 1,
            Some(b'_') => {
                i += 1;
                if b.get(i) == Some(&b'_') {
                    i += 1;
                }
            }
            Some(b'-') => {
                while b.get(i) == Some(&b'-') {
                    i += 1;
                }
            }
            Some(_) => return false,
        }
    }
}

/// A registry host: DNS-ish labels or a bracketed IPv6 literal, optionally `:port`.
fn is_domain(domain: &str) -> bool {
    let (host, port) = if let Some(rest) = domain.strip_prefix('[') {
        let Some((ipv6, after)) = rest.split_once(']') else {
            return false;
        };
        if ipv6.is_empty() || !ipv6.bytes().all(|b| b.is_ascii_hexdigit() || b == b':') {
            return false;
        }
        match after {
            "" => return true,
            _ => match after.strip_prefix(':') {
                Some(port) => ("", Some(port)),
                None => return false,
            },
        }
    } else {
        match domain.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (domain, None),
        }
    };
    if let Some(port) = port
        && (port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()))
    {
        return false;
    }
    (host.is_empty() && domain.starts_with('['))
        || host.split('.').all(|label| {
            let b = label.as_bytes();
            !b.is_empty()
                && b.first().is_some_and(u8::is_ascii_alphanumeric)
                && b.last().is_some_and(u8::is_ascii_alphanumeric)
                && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
        })
}

/// `[\w][\w.-]{0,127}`.
fn is_tag(tag: &str) -> bool {
    let word = |b: &u8| b.is_ascii_alphanumeric() || *b == b'_';
    let b = tag.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && b.first().is_some_and(word)
        && b.iter().all(|c| word(c) || *c == b'.' || *c == b'-')
}

/// `algorithm:hex` with at least 32 hex digits.
fn is_digest(digest: &str) -> bool {
    let Some((algorithm, hex)) = digest.split_once(':') else {
        return false;
    };
    let algorithm_ok = algorithm.split(['+', '.', '_', '-']).all(|part| {
        let b = part.as_bytes();
        b.first().is_some_and(u8::is_ascii_alphabetic) && b.iter().all(u8::is_ascii_alphanumeric)
    });
    algorithm_ok && hex.len() >= 32 && hex.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A Pod's containers request what they limit unless they say otherwise.
fn requests_from_limits(container: &mut Object) {
    let Some(resources) = child(container, "resources") else {
        return;
    };
    let Some(limits) = resources.get("limits").and_then(Value::as_object).cloned() else {
        return;
    };
    if limits.is_empty() {
        return;
    }
    if let Some(requests) = child_or_insert(resources, "requests") {
        for (name, value) in limits {
            requests.entry(name).or_insert(value);
        }
    }
}

fn host_port_from_container_port(port: &mut Object) {
    let container_port = port.get("containerPort").and_then(Value::as_i64);
    if let Some(container_port) = container_port.filter(|p| *p != 0)
        && is_unset_int(port.get("hostPort"))
    {
        port.insert("hostPort".into(), json!(container_port));
    }
}

/// The ServiceAccount admission plugin's `default` account; `serviceAccount` is the deprecated
/// alias the v1 API always mirrors from `serviceAccountName`.
fn service_account(spec: &mut Object) {
    let named = |key: &str| {
        spec.get(key)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let account = named("serviceAccountName")
        .or_else(|| named("serviceAccount"))
        .unwrap_or_else(|| "default".to_string());
    for key in ["serviceAccountName", "serviceAccount"] {
        if is_unset(spec.get(key)) || spec.get(key).is_some_and(Value::is_string) {
            spec.insert(key.into(), account.clone().into());
        }
    }
}

/// The Priority admission plugin, for pods without a class or with a built-in system class.
fn priority(spec: &mut Object) {
    let class = match spec.get("priorityClassName") {
        None | Some(Value::Null) => "",
        Some(Value::String(s)) => s.as_str(),
        Some(_) => return,
    };
    let value: i64 = match class {
        "" => 0,
        "system-node-critical" => 2_000_001_000,
        "system-cluster-critical" => 2_000_000_000,
        // Other classes are stored objects; resolving them is the server's job.
        _ => return,
    };
    default_value(spec, "priority", json!(value));
    default_value(spec, "preemptionPolicy", "PreemptLowerPriority".into());
}

/// The DefaultTolerationSeconds admission plugin: a pod tolerates not-ready and unreachable
/// nodes for `seconds` (Kubernetes: 300) unless it already tolerates them.
pub fn default_toleration_seconds(pod: &mut Value, seconds: i64) {
    if let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) {
        not_ready_tolerations(spec, seconds);
    }
}

fn not_ready_tolerations(spec: &mut Object, seconds: i64) {
    const TAINTS: [&str; 2] = [
        "node.kubernetes.io/not-ready",
        "node.kubernetes.io/unreachable",
    ];
    let slot = spec.entry("tolerations").or_insert(Value::Null);
    if slot.is_null() {
        *slot = Value::Array(Vec::new());
    }
    let Some(tolerations) = slot.as_array_mut() else {
        return;
    };
    for taint in TAINTS {
        let tolerated = tolerations.iter().any(|t| {
            let key = t.get("key").and_then(Value::as_str).unwrap_or("");
            let effect = t.get("effect").and_then(Value::as_str).unwrap_or("");
            (key == taint || key.is_empty()) && (effect == "NoExecute" || effect.is_empty())
        });
        if !tolerated {
            tolerations.push(json!({
                "key": taint,
                "operator": "Exists",
                "effect": "NoExecute",
                "tolerationSeconds": seconds
            }));
        }
    }
}

/// Guaranteed, Burstable or BestEffort (`ComputePodQOS`): pod-level resources decide when the
/// pod sets them; otherwise every container must be Guaranteed (or every one BestEffort) for
/// the pod to be, and anything mixed is Burstable.
fn qos_class(spec: &Object) -> &'static str {
    if let Some(pod_resources) = spec.get("resources").filter(|r| r.is_object()) {
        return requirements_qos(Some(pod_resources));
    }
    let mut pod_qos = None;
    for key in ["initContainers", "containers"] {
        let containers = spec.get(key).and_then(Value::as_array);
        for container in containers.into_iter().flatten() {
            let qos = requirements_qos(container.get("resources"));
            if qos == "Burstable" {
                return qos;
            }
            match pod_qos {
                None => pod_qos = Some(qos),
                Some(seen) if seen != qos => return "Burstable",
                Some(_) => {}
            }
        }
    }
    pod_qos.unwrap_or("BestEffort")
}

/// The QoS class of one set of requirements (`resourceQOS`): CPU and memory requests must equal
/// their limits, and be either both set or both unset.
fn requirements_qos(resources: Option<&Value>) -> &'static str {
    let list = |key: &str| {
        resources
            .and_then(|r| r.get(key))
            .and_then(Value::as_object)
    };
    let (requests, limits) = (list("requests"), list("limits"));
    if requests.is_none_or(Map::is_empty) && limits.is_none_or(Map::is_empty) {
        return "BestEffort";
    }
    let amount = |list: Option<&Object>, name: &str| {
        list.and_then(|l| l.get(name))
            .and_then(Quantity::from_json)
            .map_or(0, Quantity::nanos)
    };
    let mut qos = None;
    for name in ["cpu", "memory"] {
        let request = amount(requests, name);
        if request != amount(limits, name) {
            return "Burstable";
        }
        let best_effort = request == 0;
        match qos {
            None => qos = Some(best_effort),
            Some(seen) if seen != best_effort => return "Burstable",
            Some(_) => {}
        }
    }
    if qos == Some(false) {
        "Guaranteed"
    } else {
        "BestEffort"
    }
}

/// Pod-level resource defaults (PodLevelResources, on by default): hugepage limits and
/// requests from the containers' effective totals, and CPU/memory limits when every container
/// sets one. Only pods that already set `spec.resources` are touched.
fn pod_level_resources(spec: &mut Object) {
    if !spec.get("resources").is_some_and(Value::is_object) {
        return;
    }
    let container_requests = effective_container_resources(spec, "requests");
    let container_limits = effective_container_resources(spec, "limits");
    let all_containers_limit = |name: &str| {
        ["containers", "initContainers"].iter().all(|key| {
            spec.get(*key)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .all(|c| {
                    c.get("resources")
                        .and_then(|r| r.get("limits"))
                        .and_then(|l| l.get(name))
                        .is_some()
                })
        })
    };
    let limited_everywhere: Vec<String> = container_limits
        .keys()
        .filter(|name| all_containers_limit(name))
        .cloned()
        .collect();
    let Some(resources) = child(spec, "resources") else {
        return;
    };
    let is_pod_level = |name: &str| matches!(name, "cpu" | "memory") || is_hugepages(name);
    let non_empty = |r: &Object, key: &str| {
        r.get(key)
            .and_then(Value::as_object)
            .is_some_and(|m| !m.is_empty())
    };

    // defaultHugePagePodLimits
    if non_empty(resources, "limits") || non_empty(resources, "requests") {
        let requested: Vec<String> = keys(resources.get("requests"));
        let mut limits = object_or_empty(resources.get("limits"));
        for (name, q) in &container_limits {
            if is_hugepages(name) && !requested.contains(name) && !limits.contains_key(name) {
                limits.insert(name.clone(), q.to_json());
            }
        }
        if !limits.is_empty() && resources.get("limits").is_none_or(Value::is_object) {
            resources.insert("limits".into(), Value::Object(limits));
        }
    }

    // defaultPodRequests
    if non_empty(resources, "limits") {
        let mut requests = object_or_empty(resources.get("requests"));
        for (name, q) in &container_requests {
            if !requests.contains_key(name) && matches!(name.as_str(), "cpu" | "memory") {
                requests.insert(name.clone(), q.to_json());
            }
        }
        for (name, limit) in object_or_empty(resources.get("limits")) {
            if !requests.contains_key(&name) && is_pod_level(&name) {
                requests.insert(name, limit);
            }
        }
        if !requests.is_empty() && resources.get("requests").is_none_or(Value::is_object) {
            resources.insert("requests".into(), Value::Object(requests));
        }
    }

    // defaultPodLimits: only when requests are set and no supported limit is.
    let sets_supported = |key: &str| keys(resources.get(key)).iter().any(|n| is_pod_level(n));
    if !sets_supported("limits") && sets_supported("requests") {
        let mut limits = object_or_empty(resources.get("limits"));
        for name in &limited_everywhere {
            if let Some(q) = container_limits.get(name)
                && !limits.contains_key(name)
                && matches!(name.as_str(), "cpu" | "memory")
            {
                limits.insert(name.clone(), q.to_json());
            }
        }
        if !limits.is_empty() && resources.get("limits").is_none_or(Value::is_object) {
            resources.insert("limits".into(), Value::Object(limits));
        }
    }
}

fn is_hugepages(name: &str) -> bool {
    name.starts_with("hugepages-")
}

/// What the pod's containers need together (`AggregateContainerRequests` / `...Limits`): the
/// sum of app containers and sidecars, or the largest init container (plus the sidecars started
/// before it) if that is more.
fn effective_container_resources(spec: &Object, key: &str) -> BTreeMap<String, Quantity> {
    fn of(c: &Value, key: &str) -> BTreeMap<String, Quantity> {
        c.get("resources")
            .and_then(|r| r.get(key))
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .filter_map(|(n, q)| Some((n.clone(), Quantity::from_json(q)?)))
            .collect()
    }
    fn add(into: &mut BTreeMap<String, Quantity>, from: &BTreeMap<String, Quantity>) {
        for (name, q) in from {
            let sum = into.get(name).map_or(*q, |prev| prev.add(*q));
            into.insert(name.clone(), sum);
        }
    }
    fn max(into: &mut BTreeMap<String, Quantity>, from: &BTreeMap<String, Quantity>) {
        for (name, q) in from {
            if into.get(name).is_none_or(|prev| q.nanos() > prev.nanos()) {
                into.insert(name.clone(), *q);
            }
        }
    }
    let containers = |k: &str| spec.get(k).and_then(Value::as_array).into_iter().flatten();
    let mut total = BTreeMap::new();
    for c in containers("containers") {
        add(&mut total, &of(c, key));
    }
    let mut sidecars = BTreeMap::new();
    let mut init_peak = BTreeMap::new();
    for c in containers("initContainers") {
        let own = of(c, key);
        if c.get("restartPolicy").and_then(Value::as_str) == Some("Always") {
            add(&mut total, &own);
            add(&mut sidecars, &own);
            max(&mut init_peak, &sidecars);
        } else {
            let mut with_sidecars = own;
            add(&mut with_sidecars, &sidecars);
            max(&mut init_peak, &with_sidecars);
        }
    }
    max(&mut total, &init_peak);
    total
}

fn keys(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_object)
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

fn object_or_empty(v: Option<&Value>) -> Object {
    v.and_then(Value::as_object).cloned().unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// Workloads.

fn deployment(root: &mut Object) {
    let Some(spec) = child_or_insert(root, "spec") else {
        return;
    };
    default_value(spec, "replicas", json!(1));
    if let Some(strategy) = child_or_insert(spec, "strategy") {
        default_str(strategy, "type", "RollingUpdate");
        if strategy.get("type").and_then(Value::as_str) == Some("RollingUpdate")
            && let Some(rolling) = child_or_insert(strategy, "rollingUpdate")
        {
            default_value(rolling, "maxUnavailable", "25%".into());
            default_value(rolling, "maxSurge", "25%".into());
        }
    }
    default_value(spec, "revisionHistoryLimit", json!(10));
    default_value(spec, "progressDeadlineSeconds", json!(600));
    pod_template(spec, "template");
}

fn replica_set(root: &mut Object) {
    let Some(spec) = child_or_insert(root, "spec") else {
        return;
    };
    default_value(spec, "replicas", json!(1));
    pod_template(spec, "template");
}

fn daemon_set(root: &mut Object) {
    let Some(spec) = child_or_insert(root, "spec") else {
        return;
    };
    if let Some(strategy) = child_or_insert(spec, "updateStrategy") {
        default_str(strategy, "type", "RollingUpdate");
        if strategy.get("type").and_then(Value::as_str) == Some("RollingUpdate")
            && let Some(rolling) = child_or_insert(strategy, "rollingUpdate")
        {
            default_value(rolling, "maxUnavailable", json!(1));
            default_value(rolling, "maxSurge", json!(0));
        }
    }
    default_value(spec, "revisionHistoryLimit", json!(10));
    pod_template(spec, "template");
}

fn stateful_set(root: &mut Object) {
    let Some(spec) = child_or_insert(root, "spec") else {
        return;
    };
    default_str(spec, "podManagementPolicy", "OrderedReady");
    if let Some(strategy) = child_or_insert(spec, "updateStrategy") {
        // Upstream only creates rollingUpdate when it also had to choose the strategy type.
        if is_unset_str(strategy.get("type")) {
            strategy.insert("type".into(), "RollingUpdate".into());
            child_or_insert(strategy, "rollingUpdate");
        }
        if strategy.get("type").and_then(Value::as_str) == Some("RollingUpdate")
            && let Some(rolling) = child(strategy, "rollingUpdate")
        {
            default_value(rolling, "partition", json!(0));
            // MaxUnavailableStatefulSet, beta and on by default since 1.35.
            default_value(rolling, "maxUnavailable", json!(1));
        }
    }
    if let Some(retention) = child_or_insert(spec, "persistentVolumeClaimRetentionPolicy") {
        default_str(retention, "whenDeleted", "Retain");
        default_str(retention, "whenScaled", "Retain");
    }
    default_value(spec, "replicas", json!(1));
    default_value(spec, "revisionHistoryLimit", json!(10));
    pod_template(spec, "template");
    for claim in list(spec, "volumeClaimTemplates") {
        persistent_volume_claim(claim);
    }
}

fn job(root: &mut Object) {
    let template_labels = root
        .get("spec")
        .and_then(|s| s.get("template"))
        .and_then(|t| t.get("metadata"))
        .and_then(|m| m.get("labels"))
        .filter(|l| l.is_object())
        .cloned();
    let Some(spec) = child_or_insert(root, "spec") else {
        return;
    };
    job_spec(spec);
    pod_template(spec, "template");
    // A Job without labels of its own takes its pod template's.
    if let Some(labels) = template_labels
        && let Some(metadata) = child_or_insert(root, "metadata")
    {
        let has_own = match metadata.get("labels") {
            None | Some(Value::Null) => false,
            Some(Value::Object(own)) => !own.is_empty(),
            // Not a map: leave it for validation to reject.
            Some(_) => true,
        };
        if !has_own {
            metadata.insert("labels".into(), labels);
        }
    }
}

/// SetDefaults_Job's spec part. Not applied to a CronJob's jobTemplate: upstream defaults the
/// Job type, not the JobSpec.
fn job_spec(spec: &mut Object) {
    // Completions and parallelism both default to 1 only when neither is set; parallelism alone
    // means "work queue" mode with completions left unset.
    if is_unset(spec.get("completions")) && is_unset(spec.get("parallelism")) {
        spec.insert("completions".into(), json!(1));
    }
    default_value(spec, "parallelism", json!(1));
    let backoff = if is_unset(spec.get("backoffLimitPerIndex")) {
        6
    } else {
        i64::from(i32::MAX)
    };
    default_value(spec, "backoffLimit", json!(backoff));
    default_value(spec, "completionMode", "NonIndexed".into());
    default_value(spec, "suspend", Value::Bool(false));
    let has_failure_policy = !is_unset(spec.get("podFailurePolicy"));
    if let Some(policy) = child(spec, "podFailurePolicy") {
        for rule in list(policy, "rules") {
            for pattern in list(rule, "onPodConditions") {
                default_str(pattern, "status", "True");
            }
        }
    }
    let replacement = if has_failure_policy {
        "Failed"
    } else {
        "TerminatingOrFailed"
    };
    default_value(spec, "podReplacementPolicy", replacement.into());
    default_value(spec, "manualSelector", Value::Bool(false));
}

fn cron_job(root: &mut Object) {
    let Some(spec) = child_or_insert(root, "spec") else {
        return;
    };
    default_str(spec, "concurrencyPolicy", "Allow");
    default_value(spec, "suspend", Value::Bool(false));
    default_value(spec, "successfulJobsHistoryLimit", json!(3));
    default_value(spec, "failedJobsHistoryLimit", json!(1));
    if let Some(job_template) = child_or_insert(spec, "jobTemplate")
        && let Some(job_spec) = child_or_insert(job_template, "spec")
    {
        for pattern_holder in child(job_spec, "podFailurePolicy")
            .into_iter()
            .flat_map(|p| list(p, "rules"))
        {
            for pattern in list(pattern_holder, "onPodConditions") {
                default_str(pattern, "status", "True");
            }
        }
        pod_template(job_spec, "template");
    }
}

// ---------------------------------------------------------------------------------------------
// Services and networking.

fn service(root: &mut Object) {
    {
        let Some(spec) = child_or_insert(root, "spec") else {
            return;
        };
        default_str(spec, "sessionAffinity", "None");
        match spec.get("sessionAffinity").and_then(Value::as_str) {
            Some("None") => {
                spec.remove("sessionAffinityConfig");
            }
            Some("ClientIP") => {
                let has_timeout = spec
                    .get("sessionAffinityConfig")
                    .and_then(|c| c.get("clientIP"))
                    .and_then(|c| c.get("timeoutSeconds"))
                    .is_some_and(|t| !t.is_null());
                if !has_timeout {
                    spec.insert(
                        "sessionAffinityConfig".into(),
                        json!({"clientIP": {"timeoutSeconds": 10800}}),
                    );
                }
            }
            _ => {}
        }
        default_str(spec, "type", "ClusterIP");
        for port in list(spec, "ports") {
            default_str(port, "protocol", "TCP");
            let target_unset = match port.get("targetPort") {
                None | Some(Value::Null) => true,
                Some(Value::String(s)) => s.is_empty(),
                Some(Value::Number(n)) => n.as_i64() == Some(0),
                Some(_) => false,
            };
            if target_unset && let Some(number) = port.get("port").filter(|p| p.is_number()) {
                let number = number.clone();
                port.insert("targetPort".into(), number);
            }
        }
        let service_type = spec
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let has_external_ips = spec
            .get("externalIPs")
            .and_then(Value::as_array)
            .is_some_and(|a| !a.is_empty());
        let externally_accessible = matches!(service_type.as_str(), "LoadBalancer" | "NodePort")
            || (service_type == "ClusterIP" && has_external_ips);
        if externally_accessible {
            default_str(spec, "externalTrafficPolicy", "Cluster");
        }
        if matches!(
            service_type.as_str(),
            "NodePort" | "LoadBalancer" | "ClusterIP"
        ) {
            default_value(spec, "internalTrafficPolicy", "Cluster".into());
        }
        if service_type == "LoadBalancer" {
            default_value(spec, "allocateLoadBalancerNodePorts", Value::Bool(true));
        }
        if service_type != "ExternalName" {
            ip_families(spec);
        }
    }
    let is_load_balancer = root
        .get("spec")
        .and_then(|s| s.get("type"))
        .and_then(Value::as_str)
        == Some("LoadBalancer");
    if is_load_balancer
        && let Some(status) = child(root, "status")
        && let Some(load_balancer) = child(status, "loadBalancer")
    {
        for ingress in list(load_balancer, "ingress") {
            let has_ip = ingress
                .get("ip")
                .and_then(Value::as_str)
                .is_some_and(|ip| !ip.is_empty());
            if has_ip {
                default_value(ingress, "ipMode", "VIP".into());
            }
        }
    }
}

/// The Service REST layer's IP family defaults (`initIPFamilyFields`) for a single-stack IPv4
/// cluster, plus the `clusterIP` → `clusterIPs` mirroring old clients rely on.
fn ip_families(spec: &mut Object) {
    let cluster_ip = spec
        .get("clusterIP")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if !cluster_ip.is_empty()
        && spec
            .get("clusterIPs")
            .is_none_or(|v| v.is_null() || v.as_array().is_some_and(Vec::is_empty))
    {
        spec.insert("clusterIPs".into(), json!([cluster_ip]));
    }
    let headless_selectorless = cluster_ip == "None"
        && spec
            .get("selector")
            .and_then(Value::as_object)
            .is_none_or(Map::is_empty);
    let policy = if headless_selectorless {
        "RequireDualStack"
    } else {
        "SingleStack"
    };
    default_value(spec, "ipFamilyPolicy", policy.into());
    let single_stack = spec.get("ipFamilyPolicy").and_then(Value::as_str) == Some("SingleStack");

    let inferred: Vec<&'static str> = spec
        .get("clusterIPs")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|ip| ip.as_str().unwrap_or(""))
        .take_while(|ip| *ip != "None")
        .map(|ip| if ip.contains(':') { "IPv6" } else { "IPv4" })
        .collect();
    let slot = spec.entry("ipFamilies").or_insert(Value::Null);
    if slot.is_null() {
        *slot = Value::Array(Vec::new());
    }
    let Some(families) = slot.as_array_mut() else {
        return;
    };
    for family in inferred.iter().skip(families.len()) {
        families.push((*family).into());
    }
    if families.is_empty() {
        families.push("IPv4".into());
    }
    // Headless selectorless services may list both families even on a single-stack cluster.
    if headless_selectorless && families.len() < 2 && !single_stack {
        let other = if families.first().and_then(Value::as_str) == Some("IPv6") {
            "IPv4"
        } else {
            "IPv6"
        };
        families.push(other.into());
    }
}

fn endpoints(root: &mut Object) {
    for subset in list(root, "subsets") {
        for port in list(subset, "ports") {
            default_str(port, "protocol", "TCP");
        }
    }
}

fn endpoint_slice(root: &mut Object) {
    for port in list(root, "ports") {
        default_value(port, "name", "".into());
        default_value(port, "protocol", "TCP".into());
    }
}

fn network_policy(root: &mut Object) {
    let Some(spec) = child_or_insert(root, "spec") else {
        return;
    };
    for direction in ["ingress", "egress"] {
        for rule in list(spec, direction) {
            for port in list(rule, "ports") {
                default_value(port, "protocol", "TCP".into());
            }
        }
    }
    let no_types = spec
        .get("policyTypes")
        .is_none_or(|t| t.is_null() || t.as_array().is_some_and(Vec::is_empty));
    if no_types {
        // Any policy that does not name its types implies at least Ingress.
        let has_egress = spec
            .get("egress")
            .and_then(Value::as_array)
            .is_some_and(|e| !e.is_empty());
        let types = if has_egress {
            json!(["Ingress", "Egress"])
        } else {
            json!(["Ingress"])
        };
        spec.insert("policyTypes".into(), types);
    }
}

fn ingress_class(root: &mut Object) {
    if let Some(spec) = child(root, "spec")
        && let Some(parameters) = child(spec, "parameters")
    {
        default_value(parameters, "scope", "Cluster".into());
    }
}

// ---------------------------------------------------------------------------------------------
// Cluster objects.

fn namespace(root: &mut Object) {
    let name = root
        .get("metadata")
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .map(str::to_string);
    let metadata = child(root, "metadata");
    let is_new = metadata.as_ref().is_none_or(|m| {
        m.get("resourceVersion")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
            && is_unset(m.get("deletionTimestamp"))
    });
    if let Some(name) = name
        && let Some(metadata) = metadata
        && let Some(labels) = child_or_insert(metadata, "labels")
    {
        labels.insert("kubernetes.io/metadata.name".into(), name.into());
    }
    if let Some(status) = child_or_insert(root, "status") {
        default_str(status, "phase", "Active");
    }
    if is_new && let Some(spec) = child_or_insert(root, "spec") {
        let slot = spec.entry("finalizers").or_insert(Value::Null);
        if slot.is_null() {
            *slot = Value::Array(Vec::new());
        }
        if let Some(finalizers) = slot.as_array_mut()
            && !finalizers.iter().any(|f| f.as_str() == Some("kubernetes"))
        {
            finalizers.push("kubernetes".into());
        }
    }
}

fn node(root: &mut Object) {
    if let Some(status) = child(root, "status") {
        for key in ["capacity", "allocatable"] {
            if let Some(values) = child(status, key) {
                resource_list(values);
            }
        }
        if is_unset(status.get("allocatable"))
            && let Some(capacity) = status.get("capacity").filter(|c| c.is_object()).cloned()
        {
            status.insert("allocatable".into(), capacity);
        }
    }
}

fn persistent_volume(root: &mut Object) {
    if let Some(spec) = child_or_insert(root, "spec") {
        default_str(spec, "persistentVolumeReclaimPolicy", "Retain");
        default_value(spec, "volumeMode", "Filesystem".into());
        if let Some(capacity) = child(spec, "capacity") {
            resource_list(capacity);
        }
        volume_source(spec);
    }
    if let Some(status) = child_or_insert(root, "status") {
        default_str(status, "phase", "Pending");
    }
}

fn persistent_volume_claim(claim: &mut Object) {
    if let Some(spec) = child_or_insert(claim, "spec") {
        persistent_volume_claim_spec(spec);
    }
    if let Some(status) = child_or_insert(claim, "status") {
        default_str(status, "phase", "Pending");
        for key in ["capacity", "allocatedResources"] {
            if let Some(values) = child(status, key) {
                resource_list(values);
            }
        }
    }
}

fn persistent_volume_claim_spec(spec: &mut Object) {
    default_value(spec, "volumeMode", "Filesystem".into());
    if let Some(resources) = child(spec, "resources") {
        resource_requirements(resources);
    }
}

fn limit_range(root: &mut Object) {
    let Some(spec) = child(root, "spec") else {
        return;
    };
    for item in list(spec, "limits") {
        for key in [
            "max",
            "min",
            "default",
            "defaultRequest",
            "maxLimitRequestRatio",
        ] {
            if let Some(values) = child(item, key) {
                resource_list(values);
            }
        }
        if item.get("type").and_then(Value::as_str) != Some("Container") {
            continue;
        }
        // A default limit falls back to the max; a default request to the default limit, then
        // to the min.
        let max = object_or_empty(item.get("max"));
        let min = object_or_empty(item.get("min"));
        let mut default = object_or_empty(item.get("default"));
        for (name, q) in max {
            default.entry(name).or_insert(q);
        }
        let mut default_request = object_or_empty(item.get("defaultRequest"));
        for (name, q) in default.iter().chain(min.iter()) {
            default_request
                .entry(name.clone())
                .or_insert_with(|| q.clone());
        }
        for (key, values) in [("default", default), ("defaultRequest", default_request)] {
            if !values.is_empty() && item.get(key).is_none_or(|v| v.is_null() || v.is_object()) {
                item.insert(key.into(), Value::Object(values));
            }
        }
    }
}

fn resource_quota(root: &mut Object) {
    if let Some(spec) = child(root, "spec")
        && let Some(hard) = child(spec, "hard")
    {
        resource_list(hard);
    }
    if let Some(status) = child(root, "status") {
        for key in ["hard", "used"] {
            if let Some(values) = child(status, key) {
                resource_list(values);
            }
        }
    }
}

fn horizontal_pod_autoscaler(root: &mut Object) {
    let Some(spec) = child_or_insert(root, "spec") else {
        return;
    };
    default_value(spec, "minReplicas", json!(1));
    let no_metrics = spec
        .get("metrics")
        .is_none_or(|m| m.is_null() || m.as_array().is_some_and(Vec::is_empty));
    if no_metrics {
        spec.insert(
            "metrics".into(),
            json!([{
                "type": "Resource",
                "resource": {
                    "name": "cpu",
                    "target": {"type": "Utilization", "averageUtilization": 80}
                }
            }]),
        );
    }
    // A behavior, once given, is completed from the defaults field by field.
    if let Some(behavior) = child(spec, "behavior") {
        let scale_up = json!({
            "stabilizationWindowSeconds": 0,
            "selectPolicy": "Max",
            "policies": [
                {"type": "Pods", "value": 4, "periodSeconds": 15},
                {"type": "Percent", "value": 100, "periodSeconds": 15}
            ]
        });
        // The scale-down stabilization window is left to the controller's flag.
        let scale_down = json!({
            "selectPolicy": "Max",
            "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}]
        });
        for (key, mut rules) in [("scaleUp", scale_up), ("scaleDown", scale_down)] {
            match behavior.get(key) {
                None | Some(Value::Null) => {}
                Some(Value::Object(given)) => {
                    for field in [
                        "selectPolicy",
                        "stabilizationWindowSeconds",
                        "policies",
                        "tolerance",
                    ] {
                        if let Some(v) = given.get(field).filter(|v| !v.is_null())
                            && let Some(rules) = rules.as_object_mut()
                        {
                            rules.insert(field.into(), v.clone());
                        }
                    }
                }
                // Not an object: leave it for validation to reject.
                Some(_) => continue,
            }
            behavior.insert(key.into(), rules);
        }
    }
}

fn role_binding(root: &mut Object) {
    if let Some(role_ref) = child(root, "roleRef") {
        default_str(role_ref, "apiGroup", RBAC_GROUP);
    }
    for subject in list(root, "subjects") {
        if matches!(
            subject.get("kind").and_then(Value::as_str),
            Some("User" | "Group")
        ) {
            default_str(subject, "apiGroup", RBAC_GROUP);
        }
    }
}

fn storage_class(root: &mut Object) {
    default_value(root, "reclaimPolicy", "Delete".into());
    default_value(root, "volumeBindingMode", "Immediate".into());
}

// ---------------------------------------------------------------------------------------------
// Quantities.

fn resource_requirements(resources: &mut Object) {
    for key in ["limits", "requests"] {
        if let Some(values) = child(resources, key) {
            resource_list(values);
        }
    }
}

/// SetDefaults_ResourceList: every quantity rounded up to milli-units, in canonical form.
fn resource_list(list: &mut Object) {
    for value in list.values_mut() {
        canonicalize(value, true);
    }
}

/// Rewrites a quantity in canonical form; leaves anything that is not a quantity alone.
fn canonicalize(value: &mut Value, round_to_milli: bool) {
    if let Some(q) = Quantity::from_json(value) {
        let q = if round_to_milli {
            q.round_up_to_milli()
        } else {
            q
        };
        *value = q.to_json();
    }
}

// ---------------------------------------------------------------------------------------------
// Editing untyped JSON without clobbering fields of unexpected type.

/// The object at `key`, if there is one.
fn child<'a>(m: &'a mut Object, key: &str) -> Option<&'a mut Object> {
    m.get_mut(key)?.as_object_mut()
}

/// The object at `key`, created empty when missing or null; `None` when `key` holds something
/// else.
fn child_or_insert<'a>(m: &'a mut Object, key: &str) -> Option<&'a mut Object> {
    let slot = m.entry(key).or_insert(Value::Null);
    if slot.is_null() {
        *slot = Value::Object(Map::new());
    }
    slot.as_object_mut()
}

/// The objects of the array at `key`.
fn list<'a>(m: &'a mut Object, key: &str) -> impl Iterator<Item = &'a mut Object> + use<'a> {
    m.get_mut(key)
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object_mut)
}

fn is_unset(v: Option<&Value>) -> bool {
    v.is_none_or(Value::is_null)
}

fn is_unset_str(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => s.is_empty(),
        Some(_) => false,
    }
}

fn is_unset_int(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => true,
        Some(Value::Number(n)) => n.as_f64() == Some(0.0),
        Some(_) => false,
    }
}

/// Sets a pointer field upstream leaves nil: only a missing or null value is replaced.
fn default_value(m: &mut Object, key: &str, value: Value) {
    if is_unset(m.get(key)) {
        m.insert(key.into(), value);
    }
}

/// Sets a string field upstream treats as unset when empty.
fn default_str(m: &mut Object, key: &str, value: &str) {
    if is_unset_str(m.get(key)) {
        m.insert(key.into(), value.into());
    }
}

/// Sets an integer field upstream treats as unset when zero.
fn default_nonzero(m: &mut Object, key: &str, value: i64) {
    if is_unset_int(m.get(key)) {
        m.insert(key.into(), json!(value));
    }
}

/// Resource quantities, held exactly as Kubernetes holds them: to the nano-unit, with the
/// notation (decimal SI, binary SI or decimal exponent) that decides their canonical form.
pub(crate) mod qty {
    use serde_json::Value;

    const NANOS_PER_UNIT: i128 = 1_000_000_000;

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub(crate) enum Format {
        DecimalSi,
        BinarySi,
        DecimalExponent,
    }

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub(crate) struct Quantity {
        nanos: i128,
        format: Format,
    }

    impl Quantity {
        /// Parses `<sign><digits>[.<digits>]<suffix>` as `resource.ParseQuantity` does, rounding
        /// anything finer than a nano-unit up (away from zero). `None` when it is not a
        /// quantity or too large to hold exactly.
        pub(crate) fn parse(s: &str) -> Option<Quantity> {
            let s = s.trim();
            let (negative, unsigned) = match s.as_bytes().first() {
                Some(b'-') => (true, &s[1..]),
                Some(b'+') => (false, &s[1..]),
                _ => (false, s),
            };
            let number_end = unsigned
                .find(|c: char| !c.is_ascii_digit() && c != '.')
                .unwrap_or(unsigned.len());
            let (number, suffix) = unsigned.split_at(number_end);
            let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
            if (whole.is_empty() && fraction.is_empty()) || fraction.contains('.') {
                return None;
            }
            let (format, binary_exponent, decimal_exponent): (Format, u32, i64) = match suffix {
                "" => (Format::DecimalSi, 0, 0),
                "n" => (Format::DecimalSi, 0, -9),
                "u" => (Format::DecimalSi, 0, -6),
                "m" => (Format::DecimalSi, 0, -3),
                "k" => (Format::DecimalSi, 0, 3),
                "M" => (Format::DecimalSi, 0, 6),
                "G" => (Format::DecimalSi, 0, 9),
                "T" => (Format::DecimalSi, 0, 12),
                "P" => (Format::DecimalSi, 0, 15),
                "E" => (Format::DecimalSi, 0, 18),
                "Ki" => (Format::BinarySi, 10, 0),
                "Mi" => (Format::BinarySi, 20, 0),
                "Gi" => (Format::BinarySi, 30, 0),
                "Ti" => (Format::BinarySi, 40, 0),
                "Pi" => (Format::BinarySi, 50, 0),
                "Ei" => (Format::BinarySi, 60, 0),
                _ => {
                    let exponent = suffix.strip_prefix(['e', 'E'])?;
                    let digits = exponent.strip_prefix(['+', '-']).unwrap_or(exponent);
                    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                        return None;
                    }
                    (Format::DecimalExponent, 0, exponent.parse().ok()?)
                }
            };
            let digits = format!("{whole}{fraction}");
            let digits = digits.trim_start_matches('0');
            let mantissa: i128 = if digits.is_empty() {
                0
            } else {
                digits.parse().ok()?
            };
            let magnitude = if mantissa == 0 {
                0
            } else {
                let scaled = mantissa.checked_mul(1i128.checked_shl(binary_exponent)?)?;
                let fraction_len = i64::try_from(fraction.len()).ok()?;
                let power = decimal_exponent.checked_add(9)?.checked_sub(fraction_len)?;
                if power >= 0 {
                    scaled.checked_mul(10i128.checked_pow(u32::try_from(power).ok()?)?)?
                } else {
                    match u32::try_from(-power)
                        .ok()
                        .and_then(|p| 10i128.checked_pow(p))
                    {
                        // Finer than a nano-unit: round up to the smallest representable amount.
                        Some(divisor) => ceil_div(scaled, divisor),
                        None => 1,
                    }
                }
            };
            let mut format = format;
            // A binary amount below one unit cannot be written in binary notation.
            if format == Format::BinarySi && magnitude != 0 && magnitude < NANOS_PER_UNIT {
                format = Format::DecimalSi;
            }
            Some(Quantity {
                nanos: if negative { -magnitude } else { magnitude },
                format,
            })
        }

        /// A quantity written as a JSON string, or as a bare JSON number.
        pub(crate) fn from_json(v: &Value) -> Option<Quantity> {
            match v {
                Value::String(s) => Quantity::parse(s),
                Value::Number(n) => Quantity::parse(&n.to_string()),
                _ => None,
            }
        }

        pub(crate) fn nanos(self) -> i128 {
            self.nanos
        }

        /// The sum, saturating rather than overflowing, in this quantity's notation.
        pub(crate) fn add(self, other: Quantity) -> Quantity {
            Quantity {
                nanos: self.nanos.saturating_add(other.nanos),
                format: self.format,
            }
        }

        /// Rounds away from zero to a whole milli-unit, as resource lists are on write.
        pub(crate) fn round_up_to_milli(self) -> Quantity {
            const NANOS_PER_MILLI: i128 = 1_000_000;
            let remainder = self.nanos % NANOS_PER_MILLI;
            if remainder == 0 {
                return self;
            }
            let truncated = self.nanos - remainder;
            let step = if self.nanos < 0 {
                -NANOS_PER_MILLI
            } else {
                NANOS_PER_MILLI
            };
            Quantity {
                nanos: truncated.saturating_add(step),
                format: self.format,
            }
        }

        pub(crate) fn to_json(self) -> Value {
            Value::String(self.canonical())
        }

        /// The canonical text Kubernetes prints: the largest suffix that keeps the number whole
        /// (`1Gi`, `1536Mi`, `500m`, `1k`, `1e3`), binary notation only for whole amounts of at
        /// least 1024.
        pub(crate) fn canonical(self) -> String {
            if self.nanos == 0 {
                return "0".to_string();
            }
            let whole = self.nanos % NANOS_PER_UNIT == 0;
            if self.format == Format::BinarySi && whole && self.nanos.abs() >= 1024 * NANOS_PER_UNIT
            {
                const SUFFIXES: [&str; 7] = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"];
                let mut value = self.nanos / NANOS_PER_UNIT;
                let mut power = 0;
                while power < SUFFIXES.len() - 1 && value % 1024 == 0 {
                    value /= 1024;
                    power += 1;
                }
                return format!("{value}{}", SUFFIXES[power]);
            }
            let mut mantissa = self.nanos;
            let mut exponent: i64 = -9;
            while mantissa % 10 == 0 {
                mantissa /= 10;
                exponent += 1;
            }
            // Exponents move in steps of three; the mantissa absorbs the rest as zeros.
            let spare = exponent.rem_euclid(3);
            exponent -= spare;
            let mut digits = mantissa.to_string();
            if self.format == Format::DecimalExponent {
                digits.push_str(&"0".repeat(spare as usize));
                if exponent != 0 {
                    digits.push_str(&format!("e{exponent}"));
                }
                return digits;
            }
            // Beyond exa there is no SI suffix: keep the zeros.
            let extra = (exponent - 18).max(0);
            digits.push_str(&"0".repeat((spare + extra) as usize));
            let suffix = match exponent - extra {
                -9 => "n",
                -6 => "u",
                -3 => "m",
                3 => "k",
                6 => "M",
                9 => "G",
                12 => "T",
                15 => "P",
                18 => "E",
                _ => "",
            };
            digits.push_str(suffix);
            digits
        }
    }

    /// Division rounding away from zero, for a non-negative dividend and positive divisor.
    fn ceil_div(dividend: i128, divisor: i128) -> i128 {
        let quotient = dividend / divisor;
        if dividend % divisor == 0 {
            quotient
        } else {
            quotient + 1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::RESOURCES;

    fn defaulted(group: &str, kind: &str, mut obj: Value) -> Value {
        let info = RESOURCES
            .iter()
            .find(|r| r.group == group && r.kind == kind)
            .expect("kind is registered");
        apply_defaults(info, &mut obj);
        obj
    }

    #[test]
    fn minimal_pod_gets_what_a_real_cluster_adds() {
        let pod = defaulted(
            "",
            "Pod",
            json!({
                "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "nginx"},
                "spec": {"containers": [{"name": "nginx", "image": "nginx", "ports": [{"containerPort": 80}]}]}
            }),
        );
        assert_eq!(
            pod,
            json!({
                "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "nginx"},
                "spec": {
                    "containers": [{
                        "name": "nginx", "image": "nginx",
                        "ports": [{"containerPort": 80, "protocol": "TCP"}],
                        "imagePullPolicy": "Always",
                        "terminationMessagePath": "/dev/termination-log",
                        "terminationMessagePolicy": "File",
                        "resources": {}
                    }],
                    "dnsPolicy": "ClusterFirst",
                    "restartPolicy": "Always",
                    "securityContext": {},
                    "terminationGracePeriodSeconds": 30,
                    "schedulerName": "default-scheduler",
                    "enableServiceLinks": true,
                    "serviceAccountName": "default",
                    "serviceAccount": "default",
                    "priority": 0,
                    "preemptionPolicy": "PreemptLowerPriority"
                },
                "status": {"phase": "Pending", "qosClass": "BestEffort"}
            })
        );
    }

    #[test]
    fn defaults_never_overwrite_what_is_set() {
        let pod = defaulted(
            "",
            "Pod",
            json!({"spec": {
                "restartPolicy": "Never", "dnsPolicy": "Default", "schedulerName": "mine",
                "terminationGracePeriodSeconds": 0, "enableServiceLinks": false,
                "serviceAccountName": "builder", "securityContext": {"runAsUser": 1000},
                "tolerations": [{"operator": "Exists"}],
                "containers": [{"name": "c", "image": "c:latest", "imagePullPolicy": "Never",
                    "terminationMessagePolicy": "FallbackToLogsOnError"}]
            }, "status": {"phase": "Running", "qosClass": "Burstable"}}),
        );
        let spec = &pod["spec"];
        assert_eq!(spec["restartPolicy"], "Never");
        assert_eq!(spec["dnsPolicy"], "Default");
        assert_eq!(spec["schedulerName"], "mine");
        assert_eq!(spec["terminationGracePeriodSeconds"], 0);
        assert_eq!(spec["enableServiceLinks"], false);
        assert_eq!(spec["serviceAccountName"], "builder");
        assert_eq!(spec["serviceAccount"], "builder");
        assert_eq!(spec["securityContext"], json!({"runAsUser": 1000}));
        // An empty-key, empty-effect toleration already tolerates every taint.
        assert_eq!(spec["tolerations"], json!([{"operator": "Exists"}]));
        assert_eq!(spec["containers"][0]["imagePullPolicy"], "Never");
        assert_eq!(
            spec["containers"][0]["terminationMessagePolicy"],
            "FallbackToLogsOnError"
        );
        assert_eq!(pod["status"]["phase"], "Running");
        assert_eq!(pod["status"]["qosClass"], "Burstable");
    }

    #[test]
    fn image_pull_policy_follows_the_tag() {
        let digest = format!("sha256:{}", "a".repeat(64));
        let cases = [
            ("nginx".to_string(), "Always"),
            ("nginx:latest".to_string(), "Always"),
            ("nginx:1.25".to_string(), "IfNotPresent"),
            (format!("nginx@{digest}"), "IfNotPresent"),
            (format!("nginx:latest@{digest}"), "Always"),
            ("docker.io/library/nginx".to_string(), "Always"),
            ("localhost:5000/app".to_string(), "Always"),
            ("localhost:5000/app:v1".to_string(), "IfNotPresent"),
            (
                "registry.example.com:5000/team/app:1.0".to_string(),
                "IfNotPresent",
            ),
            ("[::1]:5000/app".to_string(), "Always"),
            ("ghcr.io/org/app_x-y.z:latest".to_string(), "Always"),
            // Unparseable references: upstream ignores the error and gets no tag.
            ("Nginx".to_string(), "IfNotPresent"),
            ("".to_string(), "IfNotPresent"),
            ("nginx:".to_string(), "IfNotPresent"),
            ("a".repeat(64), "IfNotPresent"),
            ("nginx@sha256:abc".to_string(), "IfNotPresent"),
        ];
        for (image, want) in cases {
            assert_eq!(image_pull_policy(&image), want, "{image}");
        }
    }

    #[test]
    fn probes_env_lifecycle_and_volumes() {
        let pod = defaulted(
            "",
            "Pod",
            json!({"spec": {
                "containers": [{
                    "name": "c", "image": "c:1",
                    "livenessProbe": {"httpGet": {"port": 8080}, "periodSeconds": 5},
                    "readinessProbe": {"grpc": {"port": 9000}, "timeoutSeconds": 0},
                    "env": [{"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}],
                    "lifecycle": {"preStop": {"httpGet": {"port": 80, "path": "/quit"}}}
                }],
                "volumes": [
                    {"name": "scratch"},
                    {"name": "cfg", "configMap": {"name": "cfg"}},
                    {"name": "sec", "secret": {"secretName": "s", "defaultMode": 256}},
                    {"name": "host", "hostPath": {"path": "/var"}},
                    {"name": "info", "downwardAPI": {"items": [
                        {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}]}},
                    {"name": "token", "projected": {"sources": [{"serviceAccountToken": {"path": "t"}}]}},
                    {"name": "cache", "emptyDir": {"sizeLimit": "1024Mi"}}
                ]
            }}),
        );
        let c = &pod["spec"]["containers"][0];
        assert_eq!(
            c["livenessProbe"],
            json!({"httpGet": {"port": 8080, "path": "/", "scheme": "HTTP"}, "periodSeconds": 5,
                "timeoutSeconds": 1, "successThreshold": 1, "failureThreshold": 3})
        );
        assert_eq!(
            c["readinessProbe"]["grpc"],
            json!({"port": 9000, "service": ""})
        );
        assert_eq!(c["readinessProbe"]["timeoutSeconds"], 1);
        assert_eq!(c["env"][0]["valueFrom"]["fieldRef"]["apiVersion"], "v1");
        assert_eq!(
            c["lifecycle"]["preStop"]["httpGet"],
            json!({"port": 80, "path": "/quit", "scheme": "HTTP"})
        );
        let v = &pod["spec"]["volumes"];
        assert_eq!(v[0], json!({"name": "scratch", "emptyDir": {}}));
        assert_eq!(v[1]["configMap"]["defaultMode"], 420);
        assert_eq!(v[2]["secret"]["defaultMode"], 256);
        assert_eq!(v[3]["hostPath"]["type"], "");
        assert_eq!(v[4]["downwardAPI"]["defaultMode"], 420);
        assert_eq!(
            v[4]["downwardAPI"]["items"][0]["fieldRef"]["apiVersion"],
            "v1"
        );
        assert_eq!(v[5]["projected"]["defaultMode"], 420);
        assert_eq!(
            v[5]["projected"]["sources"][0]["serviceAccountToken"]["expirationSeconds"],
            3600
        );
        assert_eq!(v[6]["emptyDir"]["sizeLimit"], "1Gi");
    }

    #[test]
    fn qos_classes() {
        let qos = |containers: Value| {
            defaulted("", "Pod", json!({"spec": {"containers": containers}}))["status"]["qosClass"]
                .clone()
        };
        // Limits alone become requests too, which makes the pod Guaranteed.
        let guaranteed = json!([{"name": "a", "image": "a",
            "resources": {"limits": {"cpu": "500m", "memory": "128Mi"}}}]);
        assert_eq!(qos(guaranteed.clone()), "Guaranteed");
        let pod = defaulted("", "Pod", json!({"spec": {"containers": guaranteed}}));
        assert_eq!(
            pod["spec"]["containers"][0]["resources"]["requests"],
            json!({"cpu": "500m", "memory": "128Mi"})
        );
        // Equal amounts written differently are equal.
        assert_eq!(
            qos(json!([{"name": "a", "resources": {
                "limits": {"cpu": "0.5", "memory": "134217728"},
                "requests": {"cpu": "500m", "memory": "128Mi"}}}])),
            "Guaranteed"
        );
        assert_eq!(
            qos(json!([{"name": "a", "resources": {"requests": {"cpu": "100m"}}}])),
            "Burstable"
        );
        assert_eq!(
            qos(json!([
                {"name": "a", "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}},
                {"name": "b"}
            ])),
            "Burstable"
        );
        assert_eq!(
            qos(json!([{"name": "a", "resources": {"requests": {"ephemeral-storage": "1Gi"}}}])),
            "BestEffort"
        );
        assert_eq!(qos(json!([{"name": "a"}])), "BestEffort");
    }

    #[test]
    fn pod_level_resources() {
        let pod = defaulted(
            "",
            "Pod",
            json!({"spec": {
                "resources": {"limits": {"cpu": "2", "memory": "1Gi"}},
                "containers": [
                    {"name": "a", "resources": {"requests": {"cpu": "500m"}}},
                    {"name": "b", "resources": {"requests": {"cpu": "250m"}}}
                ]
            }}),
        );
        // CPU requests come from the containers, memory from the pod-level limit.
        assert_eq!(
            pod["spec"]["resources"]["requests"],
            json!({"cpu": "750m", "memory": "1Gi"})
        );
        assert_eq!(pod["status"]["qosClass"], "Burstable");

        let pod = defaulted(
            "",
            "Pod",
            json!({"spec": {
                "resources": {"requests": {"cpu": "1"}},
                "containers": [
                    {"name": "a", "resources": {"limits": {"cpu": "1", "memory": "256Mi"}}},
                    {"name": "b", "resources": {"limits": {"cpu": "1"}}}
                ]
            }}),
        );
        // Every container limits CPU, not every one limits memory.
        assert_eq!(pod["spec"]["resources"]["limits"], json!({"cpu": "2"}));
    }

    #[test]
    fn host_network_pods_default_host_ports() {
        let pod = defaulted(
            "",
            "Pod",
            json!({"spec": {"hostNetwork": true, "containers": [{"name": "a",
                "ports": [{"containerPort": 53}, {"containerPort": 80, "hostPort": 8080}]}]}}),
        );
        let ports = &pod["spec"]["containers"][0]["ports"];
        assert_eq!(ports[0]["hostPort"], 53);
        assert_eq!(ports[1]["hostPort"], 8080);
    }

    #[test]
    fn priority_classes() {
        let critical = defaulted(
            "",
            "Pod",
            json!({"spec": {"priorityClassName": "system-node-critical"}}),
        );
        assert_eq!(critical["spec"]["priority"], 2_000_001_000);
        let custom = defaulted(
            "",
            "Pod",
            json!({"spec": {"priorityClassName": "batch-low"}}),
        );
        assert!(custom["spec"].get("priority").is_none());
        assert!(custom["spec"].get("preemptionPolicy").is_none());
    }

    #[test]
    fn pod_templates_get_pod_spec_defaults_but_not_pod_only_ones() {
        let deployment = defaulted(
            "apps",
            "Deployment",
            json!({"spec": {"selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "web", "image": "nginx:1.25",
                        "resources": {"limits": {"cpu": "1"}}}]}}}}),
        );
        let spec = &deployment["spec"];
        assert_eq!(spec["replicas"], 1);
        assert_eq!(
            spec["strategy"],
            json!({"type": "RollingUpdate",
                "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}})
        );
        assert_eq!(spec["revisionHistoryLimit"], 10);
        assert_eq!(spec["progressDeadlineSeconds"], 600);
        let pod_spec = &spec["template"]["spec"];
        assert_eq!(pod_spec["restartPolicy"], "Always");
        assert_eq!(pod_spec["terminationGracePeriodSeconds"], 30);
        assert_eq!(pod_spec["securityContext"], json!({}));
        assert_eq!(pod_spec["containers"][0]["imagePullPolicy"], "IfNotPresent");
        for pod_only in [
            "enableServiceLinks",
            "serviceAccountName",
            "priority",
            "tolerations",
        ] {
            assert!(pod_spec.get(pod_only).is_none(), "{pod_only}");
        }
        assert!(
            pod_spec["containers"][0]["resources"]
                .get("requests")
                .is_none()
        );
        assert!(deployment.get("status").is_none());

        let recreate = defaulted(
            "apps",
            "Deployment",
            json!({"spec": {"strategy": {"type": "Recreate"}}}),
        );
        assert_eq!(recreate["spec"]["strategy"], json!({"type": "Recreate"}));

        let template = defaulted(
            "",
            "PodTemplate",
            json!({"template": {"spec": {"containers": [{"name": "c", "image": "c"}]}}}),
        );
        assert_eq!(template["template"]["spec"]["dnsPolicy"], "ClusterFirst");
    }

    #[test]
    fn replica_daemon_and_stateful_sets() {
        let rs = defaulted("apps", "ReplicaSet", json!({"spec": {}}));
        assert_eq!(rs["spec"]["replicas"], 1);
        assert_eq!(
            rs["spec"]["template"]["spec"]["schedulerName"],
            "default-scheduler"
        );

        let ds = defaulted("apps", "DaemonSet", json!({}));
        assert_eq!(
            ds["spec"]["updateStrategy"],
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}})
        );
        assert_eq!(ds["spec"]["revisionHistoryLimit"], 10);

        let sts = defaulted(
            "apps",
            "StatefulSet",
            json!({"spec": {"volumeClaimTemplates": [{"metadata": {"name": "data"},
                "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]}}),
        );
        let spec = &sts["spec"];
        assert_eq!(spec["podManagementPolicy"], "OrderedReady");
        assert_eq!(
            spec["updateStrategy"],
            json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0, "maxUnavailable": 1}})
        );
        assert_eq!(
            spec["persistentVolumeClaimRetentionPolicy"],
            json!({"whenDeleted": "Retain", "whenScaled": "Retain"})
        );
        assert_eq!(spec["replicas"], 1);
        assert_eq!(spec["revisionHistoryLimit"], 10);
        assert_eq!(
            spec["volumeClaimTemplates"][0]["spec"]["volumeMode"],
            "Filesystem"
        );
        assert_eq!(
            spec["volumeClaimTemplates"][0]["status"],
            json!({"phase": "Pending"})
        );
        // A type given without rollingUpdate gets none.
        let explicit = defaulted(
            "apps",
            "StatefulSet",
            json!({"spec": {"updateStrategy": {"type": "RollingUpdate"}}}),
        );
        assert_eq!(
            explicit["spec"]["updateStrategy"],
            json!({"type": "RollingUpdate"})
        );
    }

    #[test]
    fn jobs_and_cron_jobs() {
        let job = defaulted(
            "batch",
            "Job",
            json!({"metadata": {"name": "pi"}, "spec": {"template": {
                "metadata": {"labels": {"app": "pi"}},
                "spec": {"restartPolicy": "Never", "containers": [{"name": "pi", "image": "perl"}]}}}}),
        );
        let spec = &job["spec"];
        assert_eq!(spec["completions"], 1);
        assert_eq!(spec["parallelism"], 1);
        assert_eq!(spec["backoffLimit"], 6);
        assert_eq!(spec["completionMode"], "NonIndexed");
        assert_eq!(spec["suspend"], false);
        assert_eq!(spec["manualSelector"], false);
        assert_eq!(spec["podReplacementPolicy"], "TerminatingOrFailed");
        assert_eq!(spec["template"]["spec"]["restartPolicy"], "Never");
        assert_eq!(job["metadata"]["labels"], json!({"app": "pi"}));

        // Parallelism alone means a work queue: completions stay unset.
        let queue = defaulted(
            "batch",
            "Job",
            json!({"metadata": {"labels": {"own": "x"}}, "spec": {"parallelism": 4,
                "backoffLimitPerIndex": 1, "podFailurePolicy": {"rules": [
                    {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]}]},
                "template": {"metadata": {"labels": {"app": "q"}}}}}),
        );
        assert!(queue["spec"].get("completions").is_none());
        assert_eq!(queue["spec"]["parallelism"], 4);
        assert_eq!(queue["spec"]["backoffLimit"], 2_147_483_647);
        assert_eq!(queue["spec"]["podReplacementPolicy"], "Failed");
        assert_eq!(
            queue["spec"]["podFailurePolicy"]["rules"][0]["onPodConditions"][0]["status"],
            "True"
        );
        assert_eq!(queue["metadata"]["labels"], json!({"own": "x"}));

        let cron = defaulted(
            "batch",
            "CronJob",
            json!({"spec": {"schedule": "@hourly", "jobTemplate": {"spec": {"template": {"spec": {
                "containers": [{"name": "c", "image": "busybox:1.36"}]}}}}}}),
        );
        let spec = &cron["spec"];
        assert_eq!(spec["concurrencyPolicy"], "Allow");
        assert_eq!(spec["suspend"], false);
        assert_eq!(spec["successfulJobsHistoryLimit"], 3);
        assert_eq!(spec["failedJobsHistoryLimit"], 1);
        let job_spec = &spec["jobTemplate"]["spec"];
        assert_eq!(job_spec["template"]["spec"]["dnsPolicy"], "ClusterFirst");
        assert_eq!(
            job_spec["template"]["spec"]["containers"][0]["imagePullPolicy"],
            "IfNotPresent"
        );
        // The Job defaults belong to the Job type, not to a CronJob's job template.
        assert!(job_spec.get("backoffLimit").is_none());
    }

    #[test]
    fn services() {
        let svc = defaulted(
            "",
            "Service",
            json!({"spec": {"selector": {"app": "web"}, "ports": [{"port": 80}, {"port": 443, "targetPort": "https"}]}}),
        );
        assert_eq!(
            svc["spec"],
            json!({
                "selector": {"app": "web"},
                "ports": [
                    {"port": 80, "protocol": "TCP", "targetPort": 80},
                    {"port": 443, "targetPort": "https", "protocol": "TCP"}
                ],
                "sessionAffinity": "None",
                "type": "ClusterIP",
                "internalTrafficPolicy": "Cluster",
                "ipFamilyPolicy": "SingleStack",
                "ipFamilies": ["IPv4"]
            })
        );

        let lb = defaulted(
            "",
            "Service",
            json!({"spec": {"type": "LoadBalancer", "sessionAffinity": "ClientIP",
                "clusterIP": "fd00::10", "ports": [{"port": 80, "targetPort": 0}]},
                "status": {"loadBalancer": {"ingress": [{"ip": "1.2.3.4"}, {"hostname": "lb"}]}}}),
        );
        let spec = &lb["spec"];
        assert_eq!(spec["externalTrafficPolicy"], "Cluster");
        assert_eq!(spec["allocateLoadBalancerNodePorts"], true);
        assert_eq!(
            spec["sessionAffinityConfig"],
            json!({"clientIP": {"timeoutSeconds": 10800}})
        );
        assert_eq!(spec["ports"][0]["targetPort"], 80);
        assert_eq!(spec["clusterIPs"], json!(["fd00::10"]));
        assert_eq!(spec["ipFamilies"], json!(["IPv6"]));
        assert_eq!(
            lb["status"]["loadBalancer"]["ingress"],
            json!([{"ip": "1.2.3.4", "ipMode": "VIP"}, {"hostname": "lb"}])
        );

        let headless = defaulted(
            "",
            "Service",
            json!({"spec": {"clusterIP": "None", "ports": [{"port": 5432}]}}),
        );
        assert_eq!(headless["spec"]["ipFamilyPolicy"], "RequireDualStack");
        assert_eq!(headless["spec"]["ipFamilies"], json!(["IPv4", "IPv6"]));
        assert_eq!(headless["spec"]["clusterIPs"], json!(["None"]));

        let external = defaulted(
            "",
            "Service",
            json!({"spec": {"type": "ExternalName", "externalName": "db.example.com"}}),
        );
        for absent in [
            "ipFamilyPolicy",
            "ipFamilies",
            "internalTrafficPolicy",
            "externalTrafficPolicy",
        ] {
            assert!(external["spec"].get(absent).is_none(), "{absent}");
        }
        let external_ips = defaulted("", "Service", json!({"spec": {"externalIPs": ["1.2.3.4"]}}));
        assert_eq!(external_ips["spec"]["externalTrafficPolicy"], "Cluster");
    }

    #[test]
    fn namespaces() {
        let ns = defaulted("", "Namespace", json!({"metadata": {"name": "team-a"}}));
        assert_eq!(
            ns,
            json!({"metadata": {"name": "team-a", "labels": {"kubernetes.io/metadata.name": "team-a"}},
                "status": {"phase": "Active"}, "spec": {"finalizers": ["kubernetes"]}})
        );
        // Once stored, the finalizer may be removed for good (that is how deletion finishes).
        let finalized = defaulted(
            "",
            "Namespace",
            json!({"metadata": {"name": "team-a", "resourceVersion": "42"},
                "status": {"phase": "Terminating"}}),
        );
        assert!(finalized.get("spec").is_none());
        assert_eq!(finalized["status"]["phase"], "Terminating");
    }

    #[test]
    fn simple_kinds() {
        assert_eq!(defaulted("", "Secret", json!({}))["type"], "Opaque");
        assert_eq!(
            defaulted("", "Secret", json!({"type": "kubernetes.io/tls"}))["type"],
            "kubernetes.io/tls"
        );
        let pvc = defaulted(
            "",
            "PersistentVolumeClaim",
            json!({"spec": {"resources": {"requests": {"storage": "1.5Gi"}}}}),
        );
        assert_eq!(pvc["spec"]["volumeMode"], "Filesystem");
        assert_eq!(pvc["spec"]["resources"]["requests"]["storage"], "1536Mi");
        assert_eq!(pvc["status"]["phase"], "Pending");
        let pv = defaulted(
            "",
            "PersistentVolume",
            json!({"spec": {"capacity": {"storage": "10G"}, "hostPath": {"path": "/d"}}}),
        );
        assert_eq!(pv["spec"]["persistentVolumeReclaimPolicy"], "Retain");
        assert_eq!(pv["spec"]["volumeMode"], "Filesystem");
        assert_eq!(pv["spec"]["hostPath"]["type"], "");
        assert_eq!(pv["status"]["phase"], "Pending");
        let node = defaulted(
            "",
            "Node",
            json!({"status": {"capacity": {"cpu": "4", "memory": "8Gi", "pods": "110"}}}),
        );
        assert_eq!(node["status"]["allocatable"], node["status"]["capacity"]);
        let ep = defaulted(
            "",
            "Endpoints",
            json!({"subsets": [{"ports": [{"port": 80}]}]}),
        );
        assert_eq!(ep["subsets"][0]["ports"][0]["protocol"], "TCP");
        let slice = defaulted(
            "discovery.k8s.io",
            "EndpointSlice",
            json!({"addressType": "IPv4", "ports": [{"port": 80}]}),
        );
        assert_eq!(
            slice["ports"][0],
            json!({"port": 80, "name": "", "protocol": "TCP"})
        );
        let sc = defaulted(
            "storage.k8s.io",
            "StorageClass",
            json!({"provisioner": "p"}),
        );
        assert_eq!(sc["reclaimPolicy"], "Delete");
        assert_eq!(sc["volumeBindingMode"], "Immediate");
        let pc = defaulted("scheduling.k8s.io", "PriorityClass", json!({"value": 5}));
        assert_eq!(pc["preemptionPolicy"], "PreemptLowerPriority");
        let class = defaulted(
            "networking.k8s.io",
            "IngressClass",
            json!({"spec": {"parameters": {"kind": "K", "name": "n"}}}),
        );
        assert_eq!(class["spec"]["parameters"]["scope"], "Cluster");
        // Kinds without defaults are left alone.
        for (group, kind) in [
            ("", "ConfigMap"),
            ("coordination.k8s.io", "Lease"),
            ("policy", "PodDisruptionBudget"),
            ("networking.k8s.io", "Ingress"),
        ] {
            assert_eq!(
                defaulted(group, kind, json!({"spec": {}})),
                json!({"spec": {}})
            );
        }
    }

    #[test]
    fn network_policies_rbac_limits_and_quotas() {
        let policy = defaulted(
            "networking.k8s.io",
            "NetworkPolicy",
            json!({"spec": {"podSelector": {}, "ingress": [{"ports": [{"port": 80}]}],
                "egress": [{"ports": [{"port": 53, "protocol": "UDP"}]}]}}),
        );
        assert_eq!(policy["spec"]["ingress"][0]["ports"][0]["protocol"], "TCP");
        assert_eq!(policy["spec"]["egress"][0]["ports"][0]["protocol"], "UDP");
        assert_eq!(policy["spec"]["policyTypes"], json!(["Ingress", "Egress"]));

        let binding = defaulted(
            "rbac.authorization.k8s.io",
            "RoleBinding",
            json!({"roleRef": {"kind": "Role", "name": "r"}, "subjects": [
                {"kind": "User", "name": "alice"}, {"kind": "ServiceAccount", "name": "default"}]}),
        );
        assert_eq!(binding["roleRef"]["apiGroup"], RBAC_GROUP);
        assert_eq!(binding["subjects"][0]["apiGroup"], RBAC_GROUP);
        assert!(binding["subjects"][1].get("apiGroup").is_none());

        let limits = defaulted(
            "",
            "LimitRange",
            json!({"spec": {"limits": [{"type": "Container",
                "max": {"cpu": "2", "memory": "1Gi"}, "default": {"cpu": "1"}, "min": {"memory": "0.5Gi"}}]}}),
        );
        let item = &limits["spec"]["limits"][0];
        assert_eq!(item["default"], json!({"cpu": "1", "memory": "1Gi"}));
        assert_eq!(item["defaultRequest"], json!({"cpu": "1", "memory": "1Gi"}));
        assert_eq!(item["min"], json!({"memory": "512Mi"}));

        let quota = defaulted(
            "",
            "ResourceQuota",
            json!({"spec": {"hard": {"requests.cpu": "0.5", "pods": "1000"}}}),
        );
        assert_eq!(
            quota["spec"]["hard"],
            json!({"requests.cpu": "500m", "pods": "1k"})
        );
    }

    #[test]
    fn horizontal_pod_autoscalers() {
        let hpa = defaulted(
            "autoscaling",
            "HorizontalPodAutoscaler",
            json!({"spec": {"maxReplicas": 5, "behavior": {"scaleDown": {"stabilizationWindowSeconds": 60}}}}),
        );
        let spec = &hpa["spec"];
        assert_eq!(spec["minReplicas"], 1);
        assert_eq!(
            spec["metrics"],
            json!([{"type": "Resource", "resource": {"name": "cpu",
                "target": {"type": "Utilization", "averageUtilization": 80}}}])
        );
        assert_eq!(
            spec["behavior"]["scaleDown"],
            json!({"selectPolicy": "Max", "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}],
                "stabilizationWindowSeconds": 60})
        );
        assert_eq!(spec["behavior"]["scaleUp"]["stabilizationWindowSeconds"], 0);
        assert_eq!(
            spec["behavior"]["scaleUp"]["policies"]
                .as_array()
                .map(Vec::len),
            Some(2)
        );
        let plain = defaulted(
            "autoscaling",
            "HorizontalPodAutoscaler",
            json!({"spec": {"maxReplicas": 5}}),
        );
        assert!(plain["spec"].get("behavior").is_none());
    }

    #[test]
    fn quantities_take_their_canonical_form() {
        let cases = [
            ("0.5", "500m"),
            ("500m", "500m"),
            ("1", "1"),
            ("1000", "1k"),
            ("1500m", "1500m"),
            ("1.5", "1500m"),
            ("1024Mi", "1Gi"),
            ("1.5Gi", "1536Mi"),
            ("0.5Gi", "512Mi"),
            ("0.5Ki", "512"),
            ("1000Mi", "1000Mi"),
            ("128974848", "128974848"),
            ("129e6", "129e6"),
            ("1e3", "1e3"),
            ("1e4", "10e3"),
            ("1E", "1E"),
            ("1000E", "1000E"),
            ("100u", "100u"),
            ("0", "0"),
            ("0Gi", "0"),
            ("-1", "-1"),
            ("+2k", "2k"),
            (".5", "500m"),
            ("5.", "5"),
            ("0.1n", "1n"),
        ];
        for (input, want) in cases {
            let q = Quantity::parse(input).expect(input);
            assert_eq!(q.canonical(), want, "{input}");
        }
        for bad in ["", "abc", "1.2.3", "1x", "Gi", "1 Gi", "--1", "1e", "1e1.5"] {
            assert!(Quantity::parse(bad).is_none(), "{bad:?}");
        }
        assert_eq!(
            Quantity::from_json(&json!(0.25)).map(Quantity::canonical),
            Some("250m".into())
        );
        let rounded = |s: &str| {
            Quantity::parse(s)
                .map(|q| q.round_up_to_milli().canonical())
                .expect(s)
        };
        assert_eq!(rounded("0.0001"), "1m");
        assert_eq!(rounded("1.0001"), "1001m");
        assert_eq!(rounded("2Gi"), "2Gi");
        let pod = defaulted(
            "",
            "Pod",
            json!({"spec": {"containers": [{"name": "a", "resources": {
                "requests": {"cpu": 0.1, "memory": "1024Mi", "example.com/odd": "x"}}}]}}),
        );
        assert_eq!(
            pod["spec"]["containers"][0]["resources"]["requests"],
            json!({"cpu": "100m", "memory": "1Gi", "example.com/odd": "x"})
        );
    }

    #[test]
    fn applying_twice_changes_nothing() {
        let samples = [
            (
                "",
                "Pod",
                json!({"metadata": {"name": "p"}, "spec": {"containers": [
                {"name": "a", "image": "a", "resources": {"limits": {"cpu": "1"}}}],
                "volumes": [{"name": "v"}]}}),
            ),
            (
                "",
                "Service",
                json!({"spec": {"clusterIP": "None", "ports": [{"port": 1}]}}),
            ),
            ("", "Namespace", json!({"metadata": {"name": "n"}})),
            ("apps", "StatefulSet", json!({"spec": {}})),
            ("batch", "CronJob", json!({"spec": {}})),
            (
                "autoscaling",
                "HorizontalPodAutoscaler",
                json!({"spec": {"behavior": {}}}),
            ),
            (
                "",
                "LimitRange",
                json!({"spec": {"limits": [{"type": "Container", "max": {"cpu": "1"}}]}}),
            ),
        ];
        for (group, kind, obj) in samples {
            let once = defaulted(group, kind, obj);
            let twice = defaulted(group, kind, once.clone());
            assert_eq!(once, twice, "{kind}");
        }
    }

    #[test]
    fn odd_shapes_never_panic() {
        let odd = [
            json!(null),
            json!(5),
            json!("x"),
            json!([]),
            json!({"spec": "x", "status": 1, "metadata": []}),
            json!({"metadata": {"name": 5, "labels": "x", "resourceVersion": 1},
                "spec": {"containers": "x", "initContainers": [null, 1, "x",
                    {"resources": 5, "ports": [1, {"containerPort": "x"}], "env": [{"valueFrom": 3}],
                     "livenessProbe": [], "lifecycle": {"preStop": 1}}],
                    "volumes": [1, {"configMap": 2, "projected": {"sources": [1]}}],
                    "tolerations": "x", "hostNetwork": true, "resources": {"limits": [1]},
                    "template": {"spec": 1}, "jobTemplate": [], "strategy": 1,
                    "updateStrategy": {"type": 3}, "ports": [{"port": "x", "targetPort": []}],
                    "metrics": 1, "behavior": {"scaleUp": 1}, "selector": 1, "clusterIPs": 1,
                    "ipFamilies": "x", "limits": [{"type": "Container", "max": 1, "default": 2}],
                    "hard": {"cpu": []}, "finalizers": "x", "parameters": 1, "ingress": 1,
                    "volumeClaimTemplates": [1, {"spec": 1, "status": 2}]},
                "status": {"capacity": 1, "loadBalancer": {"ingress": 1}},
                "subsets": [{"ports": 1}], "ports": [1], "roleRef": 1, "subjects": [1]}),
        ];
        for resource in RESOURCES {
            for obj in &odd {
                let mut obj = obj.clone();
                apply_defaults(resource, &mut obj);
            }
        }
    }
}
