//! Filters: whether a pod may run on a node at all. One pure function per filter, each
//! answering with kube-scheduler's own reason strings, so the `0/N nodes are available: ...`
//! message reads exactly as Kubernetes users know it.
//!
//! Inter-pod affinity looks at the whole cluster, so it is split like kube-scheduler's
//! plugin: [`PodAffinityState::compute`] reads every pod once per scheduling cycle, and
//! [`inter_pod_affinity`] then answers per node from that state.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use k8s_openapi::api::core::v1::{
    Node, NodeSelectorRequirement, NodeSelectorTerm, Pod, PodAffinityTerm, Taint, Toleration,
};
use wasmkube_api::selector::LabelSelector;

use crate::resources::{CPU, EPHEMERAL_STORAGE, HostPort, MEMORY, PODS, Resources};

/// `spec.unschedulable` (NodeUnschedulable plugin).
pub const REASON_UNSCHEDULABLE: &str = "node(s) were unschedulable";
/// nodeSelector or required node affinity (NodeAffinity plugin).
pub const REASON_NODE_AFFINITY: &str = "node(s) didn't match Pod's node affinity/selector";
/// Host port in use (NodePorts plugin).
pub const REASON_NODE_PORTS: &str = "node(s) didn't have free ports for the requested pod ports";
/// Required pod affinity (InterPodAffinity plugin).
pub const REASON_POD_AFFINITY: &str = "node(s) didn't match pod affinity rules";
/// Required pod anti-affinity of the pod being scheduled.
pub const REASON_POD_ANTI_AFFINITY: &str = "node(s) didn't match pod anti-affinity rules";
/// Required pod anti-affinity of a pod already running.
pub const REASON_EXISTING_ANTI_AFFINITY: &str =
    "node(s) didn't satisfy existing pods anti-affinity rules";
/// Pod count at `allocatable.pods` (NodeResourcesFit plugin).
pub const REASON_TOO_MANY_PODS: &str = "Too many pods";

/// The taint kube's node lifecycle controller puts on a node whose Ready condition is False.
pub const TAINT_NOT_READY: &str = "node.kubernetes.io/not-ready";
/// ... and on one whose Ready condition is Unknown.
pub const TAINT_UNREACHABLE: &str = "node.kubernetes.io/unreachable";
/// ... and on a cordoned node.
pub const TAINT_UNSCHEDULABLE: &str = "node.kubernetes.io/unschedulable";

/// `Insufficient cpu`, `Insufficient memory`, ...
pub fn reason_insufficient(resource: &str) -> String {
    format!("Insufficient {resource}")
}

/// `node(s) had untolerated taint {key: value}`.
pub fn reason_untolerated_taint(key: &str, value: &str) -> String {
    format!("node(s) had untolerated taint {{{key}: {value}}}")
}

/// The node does not run the RuntimeClass's handler (no kube-scheduler counterpart: there
/// RuntimeClass scheduling is done with labels by admission).
pub fn reason_runtime_handler(handler: &str) -> String {
    format!("node(s) didn't offer runtime handler {handler}")
}

/// Why a node does not fit: one or more reasons.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unfit(pub Vec<String>);

impl Unfit {
    fn one(reason: impl Into<String>) -> Self {
        Unfit(vec![reason.into()])
    }
}

/// What every filter returns.
pub type Filtered = Result<(), Unfit>;

fn tolerations(pod: &Pod) -> &[Toleration] {
    pod.spec
        .as_ref()
        .and_then(|s| s.tolerations.as_deref())
        .unwrap_or(&[])
}

fn labels(node: &Node) -> &BTreeMap<String, String> {
    static EMPTY: BTreeMap<String, String> = BTreeMap::new();
    node.metadata.labels.as_ref().unwrap_or(&EMPTY)
}

/// Whether one toleration tolerates a taint (`v1.Toleration.ToleratesTaint`).
pub fn toleration_matches(t: &Toleration, taint: &Taint) -> bool {
    if let Some(effect) = t.effect.as_deref().filter(|e| !e.is_empty())
        && effect != taint.effect
    {
        return false;
    }
    let key = t.key.as_deref().unwrap_or("");
    let op = t.operator.as_deref().unwrap_or("Equal");
    // An empty key with Exists tolerates everything.
    if !key.is_empty() && key != taint.key {
        return false;
    }
    match op {
        "Exists" => true,
        "Equal" | "" => t.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or(""),
        _ => false,
    }
}

/// Whether any toleration tolerates the taint.
pub fn tolerated(tolerations: &[Toleration], taint: &Taint) -> bool {
    tolerations.iter().any(|t| toleration_matches(t, taint))
}

fn taint(key: &str, effect: &str) -> Taint {
    Taint {
        key: key.to_string(),
        effect: effect.to_string(),
        ..Taint::default()
    }
}

/// NodeUnschedulable: a cordoned node takes only pods that tolerate its cordon taint.
pub fn node_unschedulable(pod: &Pod, node: &Node) -> Filtered {
    let cordoned = node
        .spec
        .as_ref()
        .and_then(|s| s.unschedulable)
        .unwrap_or(false);
    if cordoned && !tolerated(tolerations(pod), &taint(TAINT_UNSCHEDULABLE, "NoSchedule")) {
        return Err(Unfit::one(REASON_UNSCHEDULABLE));
    }
    Ok(())
}

/// TaintToleration: every NoSchedule and NoExecute taint must be tolerated; the first one
/// that is not is the reason.
pub fn taint_toleration(pod: &Pod, node: &Node) -> Filtered {
    let tols = tolerations(pod);
    let taints = node
        .spec
        .as_ref()
        .and_then(|s| s.taints.as_deref())
        .unwrap_or(&[]);
    match taints
        .iter()
        .filter(|t| t.effect == "NoSchedule" || t.effect == "NoExecute")
        .find(|t| !tolerated(tols, t))
    {
        Some(t) => Err(Unfit::one(reason_untolerated_taint(
            &t.key,
            t.value.as_deref().unwrap_or(""),
        ))),
        None => Ok(()),
    }
}

/// The node's Ready condition must be True. Kubernetes expresses this as the not-ready or
/// unreachable NoSchedule taint (TaintNodesByCondition), which nothing here may have put on
/// the node yet, so the filter reads the condition and answers as that taint would: a pod
/// that tolerates the taint (a DaemonSet's) may still go there.
pub fn node_ready(pod: &Pod, node: &Node) -> Filtered {
    let status = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "Ready"))
        .map(|c| c.status.as_str());
    let key = match status {
        Some("True") => return Ok(()),
        Some("Unknown") => TAINT_UNREACHABLE,
        _ => TAINT_NOT_READY,
    };
    if tolerated(tolerations(pod), &taint(key, "NoSchedule")) {
        return Ok(());
    }
    Err(Unfit::one(reason_untolerated_taint(key, "")))
}

fn requirement_matches(req: &NodeSelectorRequirement, value: Option<&str>) -> bool {
    let values = req.values.as_deref().unwrap_or(&[]);
    let int = |s: &str| s.parse::<i64>().ok();
    match req.operator.as_str() {
        "In" => value.is_some_and(|v| values.iter().any(|x| x == v)),
        "NotIn" => value.is_none_or(|v| !values.iter().any(|x| x == v)),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        "Gt" | "Lt" => {
            let (Some(have), [want]) = (value.and_then(int), values) else {
                return false;
            };
            let Some(want) = int(want) else {
                return false;
            };
            if req.operator == "Gt" {
                have > want
            } else {
                have < want
            }
        }
        _ => false,
    }
}

/// Whether a node matches one node selector term: every `matchExpressions` requirement on its
/// labels and every `matchFields` requirement (only `metadata.name` exists). A term with no
/// requirement matches nothing, as in Kubernetes.
pub fn node_selector_term_matches(term: &NodeSelectorTerm, node: &Node) -> bool {
    let exprs = term.match_expressions.as_deref().unwrap_or(&[]);
    let fields = term.match_fields.as_deref().unwrap_or(&[]);
    if exprs.is_empty() && fields.is_empty() {
        return false;
    }
    let labels = labels(node);
    exprs
        .iter()
        .all(|r| requirement_matches(r, labels.get(&r.key).map(String::as_str)))
        && fields.iter().all(|r| {
            r.key == "metadata.name"
                && matches!(r.operator.as_str(), "In" | "NotIn")
                && requirement_matches(r, node.metadata.name.as_deref())
        })
}

/// NodeAffinity: `spec.nodeSelector` labels, and at least one term of the required node
/// affinity.
pub fn node_affinity(pod: &Pod, node: &Node) -> Filtered {
    let Some(spec) = pod.spec.as_ref() else {
        return Ok(());
    };
    let labels = labels(node);
    let selector_ok = spec
        .node_selector
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v));
    let required = spec
        .affinity
        .as_ref()
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|a| {
            a.required_during_scheduling_ignored_during_execution
                .as_ref()
        });
    let affinity_ok = required.is_none_or(|r| {
        r.node_selector_terms
            .iter()
            .any(|t| node_selector_term_matches(t, node))
    });
    if selector_ok && affinity_ok {
        Ok(())
    } else {
        Err(Unfit::one(REASON_NODE_AFFINITY))
    }
}

/// NodePorts: none of the pod's host ports may be in use on the node.
pub fn node_ports<'a>(
    wanted: &[HostPort],
    existing: impl IntoIterator<Item = &'a Pod>,
) -> Filtered {
    if wanted.is_empty() {
        return Ok(());
    }
    let used: Vec<HostPort> = existing
        .into_iter()
        .flat_map(crate::resources::host_ports)
        .collect();
    if wanted.iter().any(|w| used.iter().any(|u| w.conflicts(u))) {
        return Err(Unfit::one(REASON_NODE_PORTS));
    }
    Ok(())
}

/// NodeResourcesFit: the pod's requests fit in `allocatable` minus what the node's pods
/// already request, and one more pod fits under `allocatable.pods`. Every short resource is a
/// reason of its own.
pub fn resources_fit(
    requests: &Resources,
    allocatable: &Resources,
    requested: &Resources,
    pod_count: usize,
) -> Filtered {
    let mut reasons = Vec::new();
    let allowed_pods = allocatable.get(PODS) / 1000;
    if i128::try_from(pod_count)
        .unwrap_or(i128::MAX)
        .saturating_add(1)
        > allowed_pods
    {
        reasons.push(REASON_TOO_MANY_PODS.to_string());
    }
    // kube-scheduler checks cpu, memory and ephemeral storage first, then extended resources.
    let standard = [CPU, MEMORY, EPHEMERAL_STORAGE];
    let others = requests
        .iter()
        .map(|(name, _)| name)
        .filter(|n| !standard.contains(n) && *n != PODS);
    for name in standard.into_iter().chain(others) {
        let want = requests.get(name);
        if want > 0 && want > allocatable.get(name) - requested.get(name) {
            reasons.push(reason_insufficient(name));
        }
    }
    if reasons.is_empty() {
        Ok(())
    } else {
        Err(Unfit(reasons))
    }
}

/// RuntimeClass: the node must offer the handler of the pod's RuntimeClass in
/// `status.runtimeHandlers`.
pub fn runtime_handler(handler: Option<&str>, node: &Node) -> Filtered {
    let Some(handler) = handler else {
        return Ok(());
    };
    let offered = node
        .status
        .as_ref()
        .and_then(|s| s.runtime_handlers.as_ref())
        .is_some_and(|hs| hs.iter().any(|h| h.name.as_deref() == Some(handler)));
    if offered {
        Ok(())
    } else {
        Err(Unfit::one(reason_runtime_handler(handler)))
    }
}

/// A pod affinity term resolved against the namespace of the pod that declares it.
#[derive(Clone, Debug)]
pub struct AffinityTerm {
    namespaces: BTreeSet<String>,
    namespace_selector: Option<LabelSelector>,
    selector: LabelSelector,
    /// The node label that defines the topology domain.
    pub topology_key: String,
}

impl AffinityTerm {
    /// Resolves `term` for a pod in namespace `own`: no `namespaces` and no
    /// `namespaceSelector` means the pod's own namespace. A selector that does not parse
    /// selects nothing.
    pub fn new(term: &PodAffinityTerm, own: &str) -> Self {
        let mut namespaces: BTreeSet<String> = term.namespaces.iter().flatten().cloned().collect();
        let namespace_selector = term
            .namespace_selector
            .as_ref()
            .map(|s| LabelSelector::try_from(s).unwrap_or_else(|_| LabelSelector::nothing()));
        if namespaces.is_empty() && namespace_selector.is_none() {
            namespaces.insert(own.to_string());
        }
        AffinityTerm {
            namespaces,
            namespace_selector,
            selector: LabelSelector::from_optional(term.label_selector.as_ref())
                .unwrap_or_else(|_| LabelSelector::nothing()),
            topology_key: term.topology_key.clone(),
        }
    }

    /// Whether `pod` is one of the pods the term selects.
    pub fn matches(
        &self,
        pod: &Pod,
        namespaces: &HashMap<String, BTreeMap<String, String>>,
    ) -> bool {
        let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
        let ns_ok = self.namespaces.contains(ns)
            || self
                .namespace_selector
                .as_ref()
                .is_some_and(|s| s.matches_opt(namespaces.get(ns)));
        ns_ok && self.selector.matches_opt(pod.metadata.labels.as_ref())
    }

    /// The node's value of the topology key, if it has one.
    pub fn domain<'a>(&self, node: &'a Node) -> Option<&'a str> {
        labels(node).get(&self.topology_key).map(String::as_str)
    }
}

fn namespace(pod: &Pod) -> &str {
    pod.metadata.namespace.as_deref().unwrap_or("default")
}

/// A pod's required affinity and anti-affinity terms.
pub fn required_terms(pod: &Pod) -> (Vec<AffinityTerm>, Vec<AffinityTerm>) {
    let affinity = pod.spec.as_ref().and_then(|s| s.affinity.as_ref());
    let ns = namespace(pod);
    let resolve = |terms: Option<&Vec<PodAffinityTerm>>| -> Vec<AffinityTerm> {
        terms
            .into_iter()
            .flatten()
            .map(|t| AffinityTerm::new(t, ns))
            .collect()
    };
    (
        resolve(
            affinity
                .and_then(|a| a.pod_affinity.as_ref())
                .and_then(|a| {
                    a.required_during_scheduling_ignored_during_execution
                        .as_ref()
                }),
        ),
        resolve(
            affinity
                .and_then(|a| a.pod_anti_affinity.as_ref())
                .and_then(|a| {
                    a.required_during_scheduling_ignored_during_execution
                        .as_ref()
                }),
        ),
    )
}

type Domain = (String, String);

/// What inter-pod affinity needs to know about the cluster for one pod, computed once per
/// scheduling cycle (kube-scheduler's InterPodAffinity PreFilter).
#[derive(Clone, Debug, Default)]
pub struct PodAffinityState {
    affinity: Vec<AffinityTerm>,
    anti_affinity: Vec<AffinityTerm>,
    /// Topology domains holding a pod that matches every affinity term.
    affinity_domains: BTreeSet<Domain>,
    /// Topology domains holding a pod that matches an anti-affinity term.
    anti_affinity_domains: BTreeSet<Domain>,
    /// Topology domains where a running pod's anti-affinity forbids this pod.
    existing_anti_affinity_domains: BTreeSet<Domain>,
    /// The pod matches its own affinity terms (it may be the first of its group).
    matches_own_affinity: bool,
}

impl PodAffinityState {
    /// Reads every node and its pods.
    pub fn compute<'a>(
        pod: &Pod,
        cluster: impl IntoIterator<Item = (&'a Node, Vec<&'a Pod>)>,
        namespaces: &HashMap<String, BTreeMap<String, String>>,
    ) -> Self {
        let (affinity, anti_affinity) = required_terms(pod);
        let mut state = PodAffinityState {
            matches_own_affinity: affinity.iter().all(|t| t.matches(pod, namespaces)),
            ..PodAffinityState::default()
        };
        for (node, pods) in cluster {
            for existing in pods {
                if !affinity.is_empty() && affinity.iter().all(|t| t.matches(existing, namespaces))
                {
                    for t in &affinity {
                        if let Some(v) = t.domain(node) {
                            state
                                .affinity_domains
                                .insert((t.topology_key.clone(), v.to_string()));
                        }
                    }
                }
                for t in anti_affinity
                    .iter()
                    .filter(|t| t.matches(existing, namespaces))
                {
                    if let Some(v) = t.domain(node) {
                        state
                            .anti_affinity_domains
                            .insert((t.topology_key.clone(), v.to_string()));
                    }
                }
                let (_, theirs) = required_terms(existing);
                for t in theirs.iter().filter(|t| t.matches(pod, namespaces)) {
                    if let Some(v) = t.domain(node) {
                        state
                            .existing_anti_affinity_domains
                            .insert((t.topology_key.clone(), v.to_string()));
                    }
                }
            }
        }
        state.affinity = affinity;
        state.anti_affinity = anti_affinity;
        state
    }
}

/// InterPodAffinity: the node must be in a topology domain with pods the required affinity
/// selects (or no such pod exists yet and the pod would select itself), in none with pods
/// the required anti-affinity selects, and in none where a running pod's anti-affinity
/// rejects this pod.
pub fn inter_pod_affinity(state: &PodAffinityState, node: &Node) -> Filtered {
    let labels = labels(node);
    if !state.affinity.is_empty() {
        let mut all_present = true;
        for t in &state.affinity {
            let Some(v) = t.domain(node) else {
                return Err(Unfit::one(REASON_POD_AFFINITY));
            };
            if !state
                .affinity_domains
                .contains(&(t.topology_key.clone(), v.to_string()))
            {
                all_present = false;
            }
        }
        let first_of_its_kind = state.affinity_domains.is_empty() && state.matches_own_affinity;
        if !all_present && !first_of_its_kind {
            return Err(Unfit::one(REASON_POD_AFFINITY));
        }
    }
    for t in &state.anti_affinity {
        if let Some(v) = t.domain(node)
            && state
                .anti_affinity_domains
                .contains(&(t.topology_key.clone(), v.to_string()))
        {
            return Err(Unfit::one(REASON_POD_ANTI_AFFINITY));
        }
    }
    if labels.iter().any(|(k, v)| {
        state
            .existing_anti_affinity_domains
            .contains(&(k.clone(), v.clone()))
    }) {
        return Err(Unfit::one(REASON_EXISTING_ANTI_AFFINITY));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn node(v: Value) -> Node {
        serde_json::from_value(v).expect("node")
    }

    fn pod(v: Value) -> Pod {
        serde_json::from_value(v).expect("pod")
    }

    fn ready_node(name: &str, labels: Value) -> Node {
        node(json!({"metadata": {"name": name, "labels": labels},
            "status": {"conditions": [{"type": "Ready", "status": "True"}]}}))
    }

    fn plain_pod() -> Pod {
        pod(
            json!({"metadata": {"name": "p", "namespace": "default"}, "spec": {"containers": [{"name": "c"}]}}),
        )
    }

    fn reasons(f: Filtered) -> Vec<String> {
        f.err().map(|u| u.0).unwrap_or_default()
    }

    #[test]
    fn unschedulable_nodes() {
        let cordoned = node(json!({"metadata": {"name": "n"}, "spec": {"unschedulable": true}}));
        assert_eq!(
            reasons(node_unschedulable(&plain_pod(), &cordoned)),
            [REASON_UNSCHEDULABLE]
        );
        assert!(node_unschedulable(&plain_pod(), &ready_node("n", json!({}))).is_ok());
        let tolerant = pod(json!({"metadata": {"name": "p"}, "spec": {"containers": [],
            "tolerations": [{"key": TAINT_UNSCHEDULABLE, "operator": "Exists", "effect": "NoSchedule"}]}}));
        assert!(node_unschedulable(&tolerant, &cordoned).is_ok());
    }

    #[test]
    fn taints() {
        let n = node(json!({"metadata": {"name": "n"}, "spec": {"taints": [
            {"key": "soft", "effect": "PreferNoSchedule"},
            {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"},
            {"key": "dedicated", "value": "gpu", "effect": "NoExecute"},
        ]}}));
        assert_eq!(
            reasons(taint_toleration(&plain_pod(), &n)),
            ["node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }"]
        );
        let some = pod(
            json!({"metadata": {"name": "p"}, "spec": {"containers": [], "tolerations": [
                {"key": "node-role.kubernetes.io/control-plane", "operator": "Exists"},
            ]}}),
        );
        assert_eq!(
            reasons(taint_toleration(&some, &n)),
            ["node(s) had untolerated taint {dedicated: gpu}"]
        );
        let wrong_value = pod(
            json!({"metadata": {"name": "p"}, "spec": {"containers": [], "tolerations": [
                {"key": "node-role.kubernetes.io/control-plane", "operator": "Exists"},
                {"key": "dedicated", "operator": "Equal", "value": "cpu"},
            ]}}),
        );
        assert!(taint_toleration(&wrong_value, &n).is_err());
        let all = pod(
            json!({"metadata": {"name": "p"}, "spec": {"containers": [], "tolerations": [
                {"operator": "Exists"},
            ]}}),
        );
        assert!(taint_toleration(&all, &n).is_ok());
        let right = pod(
            json!({"metadata": {"name": "p"}, "spec": {"containers": [], "tolerations": [
                {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule", "operator": "Exists"},
                {"key": "dedicated", "value": "gpu", "effect": "NoExecute"},
            ]}}),
        );
        assert!(taint_toleration(&right, &n).is_ok());
    }

    #[test]
    fn toleration_effects_must_match() {
        let t: Toleration = serde_json::from_value(
            json!({"key": "k", "operator": "Exists", "effect": "NoExecute"}),
        )
        .expect("toleration");
        assert!(!toleration_matches(&t, &taint("k", "NoSchedule")));
        assert!(toleration_matches(&t, &taint("k", "NoExecute")));
        let valued: Toleration =
            serde_json::from_value(json!({"key": "k", "value": "v"})).expect("toleration");
        assert!(!toleration_matches(&valued, &taint("k", "NoSchedule")));
    }

    #[test]
    fn readiness() {
        let p = plain_pod();
        assert!(node_ready(&p, &ready_node("n", json!({}))).is_ok());
        let not_ready = node(json!({"metadata": {"name": "n"},
            "status": {"conditions": [{"type": "Ready", "status": "False"}]}}));
        assert_eq!(
            reasons(node_ready(&p, &not_ready)),
            ["node(s) had untolerated taint {node.kubernetes.io/not-ready: }"]
        );
        let unknown = node(json!({"metadata": {"name": "n"},
            "status": {"conditions": [{"type": "Ready", "status": "Unknown"}]}}));
        assert_eq!(
            reasons(node_ready(&p, &unknown)),
            ["node(s) had untolerated taint {node.kubernetes.io/unreachable: }"]
        );
        let fresh = node(json!({"metadata": {"name": "n"}}));
        assert!(node_ready(&p, &fresh).is_err());
        let daemon = pod(
            json!({"metadata": {"name": "p"}, "spec": {"containers": [], "tolerations": [
                {"key": TAINT_NOT_READY, "operator": "Exists", "effect": "NoExecute"},
                {"key": TAINT_NOT_READY, "operator": "Exists", "effect": "NoSchedule"},
            ]}}),
        );
        assert!(node_ready(&daemon, &not_ready).is_ok());
    }

    #[test]
    fn node_selector_and_required_affinity() {
        let n = ready_node("n1", json!({"disk": "ssd", "zone": "a", "cores": "8"}));
        let with = |spec: Value| pod(json!({"metadata": {"name": "p"}, "spec": spec}));
        assert!(
            node_affinity(
                &with(json!({"containers": [], "nodeSelector": {"disk": "ssd"}})),
                &n
            )
            .is_ok()
        );
        assert_eq!(
            reasons(node_affinity(
                &with(json!({"containers": [], "nodeSelector": {"disk": "hdd"}})),
                &n
            )),
            [REASON_NODE_AFFINITY]
        );
        let required = |exprs: Value, fields: Value| {
            with(json!({"containers": [], "affinity": {"nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                    {"matchExpressions": exprs, "matchFields": fields}]}}}}))
        };
        let cases = [
            (
                json!([{"key": "zone", "operator": "In", "values": ["a", "b"]}]),
                json!([]),
                true,
            ),
            (
                json!([{"key": "zone", "operator": "In", "values": ["b"]}]),
                json!([]),
                false,
            ),
            (
                json!([{"key": "zone", "operator": "NotIn", "values": ["b"]}]),
                json!([]),
                true,
            ),
            (
                json!([{"key": "gpu", "operator": "NotIn", "values": ["x"]}]),
                json!([]),
                true,
            ),
            (
                json!([{"key": "disk", "operator": "Exists"}]),
                json!([]),
                true,
            ),
            (
                json!([{"key": "gpu", "operator": "Exists"}]),
                json!([]),
                false,
            ),
            (
                json!([{"key": "gpu", "operator": "DoesNotExist"}]),
                json!([]),
                true,
            ),
            (
                json!([{"key": "disk", "operator": "DoesNotExist"}]),
                json!([]),
                false,
            ),
            (
                json!([{"key": "cores", "operator": "Gt", "values": ["4"]}]),
                json!([]),
                true,
            ),
            (
                json!([{"key": "cores", "operator": "Gt", "values": ["8"]}]),
                json!([]),
                false,
            ),
            (
                json!([{"key": "cores", "operator": "Lt", "values": ["16"]}]),
                json!([]),
                true,
            ),
            (
                json!([{"key": "zone", "operator": "Lt", "values": ["16"]}]),
                json!([]),
                false,
            ),
            (
                json!([]),
                json!([{"key": "metadata.name", "operator": "In", "values": ["n1"]}]),
                true,
            ),
            (
                json!([]),
                json!([{"key": "metadata.name", "operator": "NotIn", "values": ["n1"]}]),
                false,
            ),
            (json!([]), json!([]), false),
            (
                json!([{"key": "zone", "operator": "In", "values": ["a"]}, {"key": "disk", "operator": "In", "values": ["hdd"]}]),
                json!([]),
                false,
            ),
        ];
        for (exprs, fields, fits) in cases {
            let p = required(exprs.clone(), fields.clone());
            assert_eq!(node_affinity(&p, &n).is_ok(), fits, "{exprs} {fields}");
        }
        // Terms are ORed.
        let either = with(json!({"containers": [], "affinity": {"nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["z"]}]},
                {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}]}}}}));
        assert!(node_affinity(&either, &n).is_ok());
    }

    #[test]
    fn ports_conflict() {
        let web = pod(
            json!({"metadata": {"name": "w"}, "spec": {"containers": [{"name": "c",
            "ports": [{"containerPort": 80, "hostPort": 8080}]}]}}),
        );
        let wanted = crate::resources::host_ports(&web);
        assert_eq!(reasons(node_ports(&wanted, [&web])), [REASON_NODE_PORTS]);
        assert!(node_ports(&wanted, [&plain_pod()]).is_ok());
        assert!(node_ports(&[], [&web]).is_ok());
    }

    #[test]
    fn resources() {
        let gi = 1024 * 1024 * 1024 * 1000;
        let alloc = Resources::from_milli([(CPU, 2000), (MEMORY, 4 * gi), (PODS, 3000)]);
        let used = Resources::from_milli([(CPU, 1500), (MEMORY, gi)]);
        let small = Resources::from_milli([(CPU, 500), (MEMORY, gi)]);
        assert!(resources_fit(&small, &alloc, &used, 2).is_ok());
        assert_eq!(
            reasons(resources_fit(&small, &alloc, &used, 3)),
            [REASON_TOO_MANY_PODS]
        );
        let big = Resources::from_milli([(CPU, 1000), (MEMORY, 4 * gi), ("example.com/gpu", 1000)]);
        assert_eq!(
            reasons(resources_fit(&big, &alloc, &used, 0)),
            [
                "Insufficient cpu",
                "Insufficient memory",
                "Insufficient example.com/gpu"
            ]
        );
        // Without requests only the pod count matters.
        assert!(
            resources_fit(
                &Resources::new(),
                &Resources::from_milli([(PODS, 1000)]),
                &used,
                0
            )
            .is_ok()
        );
        assert_eq!(
            reasons(resources_fit(
                &Resources::new(),
                &Resources::new(),
                &used,
                0
            )),
            [REASON_TOO_MANY_PODS]
        );
    }

    #[test]
    fn runtime_handlers() {
        let n = node(json!({"metadata": {"name": "n"},
            "status": {"runtimeHandlers": [{"name": "runc"}, {"name": "wasmtime"}]}}));
        let bare = ready_node("b", json!({}));
        assert!(runtime_handler(None, &bare).is_ok());
        assert!(runtime_handler(Some("wasmtime"), &n).is_ok());
        assert_eq!(
            reasons(runtime_handler(Some("wasmtime"), &bare)),
            ["node(s) didn't offer runtime handler wasmtime"]
        );
    }

    fn labelled(name: &str, ns: &str, labels: Value, affinity: Value) -> Pod {
        pod(
            json!({"metadata": {"name": name, "namespace": ns, "labels": labels},
            "spec": {"containers": [], "affinity": affinity}}),
        )
    }

    #[test]
    fn inter_pod_affinity_rules() {
        let n1 = ready_node("n1", json!({"zone": "a", "kubernetes.io/hostname": "n1"}));
        let n2 = ready_node("n2", json!({"zone": "a", "kubernetes.io/hostname": "n2"}));
        let n3 = ready_node("n3", json!({"zone": "b", "kubernetes.io/hostname": "n3"}));
        let n4 = ready_node("n4", json!({}));
        let db = labelled("db", "default", json!({"app": "db"}), json!(null));
        let cluster = || {
            vec![
                (&n1, vec![&db]),
                (&n2, vec![]),
                (&n3, vec![]),
                (&n4, vec![]),
            ]
        };
        let ns = HashMap::new();

        let near_db = labelled(
            "web",
            "default",
            json!({"app": "web"}),
            json!({"podAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [
                {"labelSelector": {"matchLabels": {"app": "db"}}, "topologyKey": "zone"}]}}),
        );
        let s = PodAffinityState::compute(&near_db, cluster(), &ns);
        assert!(inter_pod_affinity(&s, &n1).is_ok());
        assert!(inter_pod_affinity(&s, &n2).is_ok());
        assert_eq!(reasons(inter_pod_affinity(&s, &n3)), [REASON_POD_AFFINITY]);
        assert_eq!(reasons(inter_pod_affinity(&s, &n4)), [REASON_POD_AFFINITY]);

        // Other namespaces are not looked at unless named.
        let elsewhere = labelled(
            "web",
            "other",
            json!({}),
            json!({"podAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [
                {"labelSelector": {"matchLabels": {"app": "db"}}, "topologyKey": "zone"}]}}),
        );
        let s = PodAffinityState::compute(&elsewhere, cluster(), &ns);
        assert!(inter_pod_affinity(&s, &n1).is_err());
        let everywhere = labelled(
            "web",
            "other",
            json!({}),
            json!({"podAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [
                {"labelSelector": {"matchLabels": {"app": "db"}}, "topologyKey": "zone", "namespaceSelector": {}}]}}),
        );
        let s = PodAffinityState::compute(&everywhere, cluster(), &ns);
        assert!(inter_pod_affinity(&s, &n1).is_ok());

        // The first pod of a self-affine group may go anywhere with the topology label.
        let first = labelled(
            "c0",
            "default",
            json!({"app": "cache"}),
            json!({"podAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [
                {"labelSelector": {"matchLabels": {"app": "cache"}}, "topologyKey": "zone"}]}}),
        );
        let s = PodAffinityState::compute(&first, cluster(), &ns);
        assert!(inter_pod_affinity(&s, &n3).is_ok());
        assert!(inter_pod_affinity(&s, &n4).is_err());

        let away_from_db = labelled(
            "w",
            "default",
            json!({}),
            json!({"podAntiAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [
                {"labelSelector": {"matchLabels": {"app": "db"}}, "topologyKey": "kubernetes.io/hostname"}]}}),
        );
        let s = PodAffinityState::compute(&away_from_db, cluster(), &ns);
        assert_eq!(
            reasons(inter_pod_affinity(&s, &n1)),
            [REASON_POD_ANTI_AFFINITY]
        );
        assert!(inter_pod_affinity(&s, &n2).is_ok());
        assert!(inter_pod_affinity(&s, &n4).is_ok());

        // A running pod's anti-affinity keeps matching pods out of its zone.
        let loner = labelled(
            "loner",
            "default",
            json!({}),
            json!({"podAntiAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [
                {"labelSelector": {"matchLabels": {"app": "web"}}, "topologyKey": "zone"}]}}),
        );
        let web = labelled("web", "default", json!({"app": "web"}), json!(null));
        let s = PodAffinityState::compute(&web, vec![(&n1, vec![&loner]), (&n3, vec![])], &ns);
        assert_eq!(
            reasons(inter_pod_affinity(&s, &n2)),
            [REASON_EXISTING_ANTI_AFFINITY]
        );
        assert!(inter_pod_affinity(&s, &n3).is_ok());
    }
}
