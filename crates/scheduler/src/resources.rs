//! What a pod asks of a node: resource requests as kube-scheduler adds them up
//! (`resourcehelper.PodRequests`), and the host ports it wants.
//!
//! Every amount is kept in thousandths (`Quantity::to_milli`), whatever the resource: CPU in
//! millicores, memory in milli-bytes. One unit for all keeps the arithmetic uniform and exact,
//! and `i128` leaves room for any real node.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, Node, Pod};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity as ApiQuantity;
use wasmkube_api::quantity::Quantity;

/// `cpu`.
pub const CPU: &str = "cpu";
/// `memory`.
pub const MEMORY: &str = "memory";
/// `pods`: the allocatable pod count, not a request.
pub const PODS: &str = "pods";
/// `ephemeral-storage`.
pub const EPHEMERAL_STORAGE: &str = "ephemeral-storage";

/// The request kube-scheduler assumes for scoring when a container states no CPU request
/// (`DefaultMilliCPURequest`), so a node full of request-less pods does not look empty.
pub const DEFAULT_MILLI_CPU: i128 = 100;
/// Likewise for memory (`DefaultMemoryRequest`, 200 MiB), in milli-bytes.
pub const DEFAULT_MILLI_MEMORY: i128 = 200 * 1024 * 1024 * 1000;

/// Amounts per resource name, in thousandths of the resource's unit.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Resources(BTreeMap<String, i128>);

impl Resources {
    /// No resources.
    pub fn new() -> Self {
        Resources::default()
    }

    /// From `(name, milli)` pairs.
    pub fn from_milli<'a>(items: impl IntoIterator<Item = (&'a str, i128)>) -> Self {
        let mut r = Resources::new();
        for (name, milli) in items {
            r.add_one(name, milli);
        }
        r
    }

    /// Parses a Kubernetes resource list. Quantities that do not parse count as zero: the API
    /// server validated them, so this only guards against a foreign server.
    pub fn from_list(list: Option<&BTreeMap<String, ApiQuantity>>) -> Self {
        let mut r = Resources::new();
        for (name, q) in list.into_iter().flatten() {
            if let Some(milli) = Quantity::parse(&q.0).ok().and_then(|q| q.to_milli()) {
                r.0.insert(name.clone(), milli);
            }
        }
        r
    }

    /// The amount of `name` (zero when absent).
    pub fn get(&self, name: &str) -> i128 {
        self.0.get(name).copied().unwrap_or(0)
    }

    /// Sets `name` to `milli`.
    pub fn set(&mut self, name: &str, milli: i128) {
        self.0.insert(name.to_string(), milli);
    }

    /// Every `(name, milli)`, sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, i128)> {
        self.0.iter().map(|(k, v)| (k.as_str(), *v))
    }

    /// Whether every amount is zero.
    pub fn is_zero(&self) -> bool {
        self.0.values().all(|v| *v == 0)
    }

    fn add_one(&mut self, name: &str, milli: i128) {
        let slot = self.0.entry(name.to_string()).or_insert(0);
        *slot = slot.saturating_add(milli);
    }

    /// `self += other`.
    pub fn add(&mut self, other: &Resources) {
        for (name, milli) in other.iter() {
            self.add_one(name, milli);
        }
    }

    /// `self -= other`.
    pub fn sub(&mut self, other: &Resources) {
        for (name, milli) in other.iter() {
            self.add_one(name, milli.saturating_neg());
        }
    }

    /// Per resource, the larger of `self` and `other`.
    pub fn max_with(&mut self, other: &Resources) {
        for (name, milli) in other.iter() {
            let slot = self.0.entry(name.to_string()).or_insert(milli);
            *slot = (*slot).max(milli);
        }
    }
}

/// One container's requests; a resource with a limit but no request requests its limit, as
/// the API server defaults it (so objects from servers that skip defaulting agree).
fn container_requests(c: &Container, non_zero: bool) -> Resources {
    let res = c.resources.as_ref();
    let mut r = Resources::from_list(res.and_then(|r| r.limits.as_ref()));
    // Requests win over the limits they were defaulted from.
    for (name, milli) in Resources::from_list(res.and_then(|r| r.requests.as_ref())).iter() {
        r.set(name, milli);
    }
    if non_zero {
        if !r.0.contains_key(CPU) {
            r.set(CPU, DEFAULT_MILLI_CPU);
        }
        if !r.0.contains_key(MEMORY) {
            r.set(MEMORY, DEFAULT_MILLI_MEMORY);
        }
    }
    r
}

fn is_sidecar(c: &Container) -> bool {
    c.restart_policy.as_deref() == Some("Always")
}

/// What the pod occupies on a node while it runs: the sum of its containers, or the largest
/// init-container step if that is more (each init container runs alone, beside the sidecars
/// started before it), plus pod-level requests where given, plus the RuntimeClass overhead.
///
/// With `non_zero`, containers without a CPU or memory request count the scheduler's default
/// (used for scoring only, like kube-scheduler's `NonMissingContainerRequests`).
pub fn pod_requests(pod: &Pod, non_zero: bool) -> Resources {
    let Some(spec) = pod.spec.as_ref() else {
        return Resources::new();
    };
    let mut total = Resources::new();
    for c in &spec.containers {
        total.add(&container_requests(c, non_zero));
    }
    let mut init_peak = Resources::new();
    let mut sidecars = Resources::new();
    for c in spec.init_containers.iter().flatten() {
        let req = container_requests(c, non_zero);
        if is_sidecar(c) {
            // A sidecar keeps running next to the app containers, so it adds to the total.
            total.add(&req);
            sidecars.add(&req);
            init_peak.max_with(&sidecars);
        } else {
            let mut step = req;
            step.add(&sidecars);
            init_peak.max_with(&step);
        }
    }
    total.max_with(&init_peak);
    // Pod-level resources (PodLevelResources) replace the container sum for what they name.
    let pod_level = Resources::from_list(spec.resources.as_ref().and_then(|r| r.requests.as_ref()));
    for (name, milli) in pod_level.iter() {
        if name == CPU || name == MEMORY {
            total.set(name, milli);
        }
    }
    total.add(&Resources::from_list(spec.overhead.as_ref()));
    total
}

/// A node's `status.allocatable`.
pub fn allocatable(node: &Node) -> Resources {
    Resources::from_list(node.status.as_ref().and_then(|s| s.allocatable.as_ref()))
}

/// A host port a pod binds on its node.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct HostPort {
    /// `""` or `0.0.0.0` for every address.
    pub ip: String,
    /// `TCP`, `UDP` or `SCTP`.
    pub protocol: String,
    pub port: i32,
}

impl HostPort {
    fn is_wildcard(&self) -> bool {
        self.ip.is_empty() || self.ip == "0.0.0.0" || self.ip == "::"
    }

    /// Whether two ports cannot both be bound on one node.
    pub fn conflicts(&self, other: &HostPort) -> bool {
        self.port == other.port
            && self.protocol == other.protocol
            && (self.ip == other.ip || self.is_wildcard() || other.is_wildcard())
    }
}

/// The host ports a pod binds: every container port with a `hostPort` (in `hostNetwork` pods
/// the container port is the host port).
pub fn host_ports(pod: &Pod) -> Vec<HostPort> {
    let Some(spec) = pod.spec.as_ref() else {
        return Vec::new();
    };
    let host_network = spec.host_network.unwrap_or(false);
    let sidecars = spec
        .init_containers
        .iter()
        .flatten()
        .filter(|c| is_sidecar(c));
    spec.containers
        .iter()
        .chain(sidecars)
        .flat_map(|c| c.ports.iter().flatten())
        .filter_map(|p| {
            let port = match p.host_port {
                Some(h) if h > 0 => h,
                _ if host_network => p.container_port,
                _ => return None,
            };
            Some(HostPort {
                ip: p.host_ip.clone().unwrap_or_default(),
                protocol: p.protocol.clone().unwrap_or_else(|| "TCP".to_string()),
                port,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(spec: serde_json::Value) -> Pod {
        serde_json::from_value(json!({"metadata": {"name": "p"}, "spec": spec})).expect("pod")
    }

    #[test]
    fn containers_add_up() {
        let p = pod(json!({"containers": [
            {"name": "a", "resources": {"requests": {"cpu": "250m", "memory": "64Mi"}}},
            {"name": "b", "resources": {"requests": {"cpu": "1"}, "limits": {"memory": "1Gi"}}},
        ]}));
        let r = pod_requests(&p, false);
        assert_eq!(r.get(CPU), 1250);
        assert_eq!(r.get(MEMORY), (64 + 1024) * 1024 * 1024 * 1000);
    }

    #[test]
    fn init_containers_take_the_max() {
        let p = pod(json!({
            "initContainers": [
                {"name": "i1", "resources": {"requests": {"cpu": "2"}}},
                {"name": "i2", "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}}},
            ],
            "containers": [{"name": "a", "resources": {"requests": {"cpu": "1", "memory": "100Mi"}}}],
        }));
        let r = pod_requests(&p, false);
        assert_eq!(r.get(CPU), 2000);
        assert_eq!(r.get(MEMORY), 1024 * 1024 * 1024 * 1000);
    }

    #[test]
    fn sidecars_add_to_the_total_and_to_later_init_steps() {
        let p = pod(json!({
            "initContainers": [
                {"name": "side", "restartPolicy": "Always", "resources": {"requests": {"cpu": "1"}}},
                {"name": "i", "resources": {"requests": {"cpu": "2"}}},
            ],
            "containers": [{"name": "a", "resources": {"requests": {"cpu": "500m"}}}],
        }));
        // Init step: side (1) + i (2) = 3 > running: a + side = 1.5.
        assert_eq!(pod_requests(&p, false).get(CPU), 3000);
    }

    #[test]
    fn overhead_is_added() {
        let p = pod(json!({
            "overhead": {"cpu": "100m", "memory": "10Mi"},
            "containers": [{"name": "a", "resources": {"requests": {"cpu": "1"}}}],
        }));
        let r = pod_requests(&p, false);
        assert_eq!(r.get(CPU), 1100);
        assert_eq!(r.get(MEMORY), 10 * 1024 * 1024 * 1000);
    }

    #[test]
    fn non_zero_defaults_for_scoring() {
        let p = pod(
            json!({"containers": [{"name": "a"}, {"name": "b", "resources": {"requests": {"cpu": "1"}}}]}),
        );
        let plain = pod_requests(&p, false);
        assert_eq!((plain.get(CPU), plain.get(MEMORY)), (1000, 0));
        let r = pod_requests(&p, true);
        assert_eq!(r.get(CPU), DEFAULT_MILLI_CPU + 1000);
        assert_eq!(r.get(MEMORY), 2 * DEFAULT_MILLI_MEMORY);
    }

    #[test]
    fn ports() {
        let p = pod(json!({"containers": [{"name": "a", "ports": [
            {"containerPort": 80, "hostPort": 8080},
            {"containerPort": 81},
            {"containerPort": 53, "hostPort": 53, "protocol": "UDP", "hostIP": "127.0.0.1"},
        ]}]}));
        let ports = host_ports(&p);
        assert_eq!(ports.len(), 2);
        let tcp = |ip: &str, port| HostPort {
            ip: ip.into(),
            protocol: "TCP".into(),
            port,
        };
        assert!(ports[0].conflicts(&tcp("127.0.0.5", 8080)));
        assert!(!ports[0].conflicts(&tcp("", 8081)));
        assert!(!ports[1].conflicts(&tcp("127.0.0.1", 53)));
        assert!(tcp("127.0.0.1", 1).conflicts(&tcp("127.0.0.1", 1)));
        assert!(!tcp("127.0.0.1", 1).conflicts(&tcp("127.0.0.2", 1)));
    }
}
