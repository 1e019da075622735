//! Which nodes a DaemonSet runs on, and the pod it creates for one: Kubernetes'
//! `NodeShouldRunDaemonPod`, `AddOrUpdateDaemonPodTolerations` and
//! `ReplaceDaemonSetPodNodeNameNodeAffinity`.
//!
//! Eligibility is judged on the pod as it will be created (template plus the default
//! DaemonSet tolerations), with the scheduler's own filters, so the controller never asks for
//! a pod the scheduler would refuse to place.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{
    Affinity, Node, NodeAffinity, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm, Pod,
    PodSpec, Taint, Toleration,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use wasmkube_scheduler::filters;

use crate::history::REVISION_HASH_LABEL;
use crate::owner;

/// The pod label holding the DaemonSet's template generation (deprecated upstream, still set).
pub const TEMPLATE_GENERATION_LABEL: &str = "pod-template-generation";
/// The annotation the API server of Kubernetes keeps the template generation in.
pub const TEMPLATE_GENERATION_ANNOTATION: &str = "deprecated.daemonset.template.generation";
/// Longest `generateName` prefix (the API appends five characters; pod names become
/// hostnames, so they must stay DNS labels).
const MAX_GENERATED_PREFIX: usize = 58;

/// Whether a DaemonSet pod belongs on a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Eligibility {
    /// A pod should be created there if none runs.
    pub should_run: bool,
    /// A pod already there may stay (it tolerates every NoExecute taint).
    pub should_continue_running: bool,
}

impl Eligibility {
    const NO: Eligibility = Eligibility {
        should_run: false,
        should_continue_running: false,
    };
    const YES: Eligibility = Eligibility {
        should_run: true,
        should_continue_running: true,
    };
}

fn toleration(key: &str, effect: &str) -> Toleration {
    Toleration {
        key: Some(key.to_string()),
        operator: Some("Exists".to_string()),
        effect: Some(effect.to_string()),
        ..Toleration::default()
    }
}

/// The tolerations Kubernetes gives every DaemonSet pod: a node agent has to keep running
/// through exactly the conditions that make other pods leave (not ready, unreachable,
/// pressure, cordoned), and a host-network one also before the pod network is up.
pub fn default_tolerations(host_network: bool) -> Vec<Toleration> {
    let mut t = vec![
        toleration("node.kubernetes.io/not-ready", "NoExecute"),
        toleration("node.kubernetes.io/unreachable", "NoExecute"),
        toleration("node.kubernetes.io/disk-pressure", "NoSchedule"),
        toleration("node.kubernetes.io/memory-pressure", "NoSchedule"),
        toleration("node.kubernetes.io/pid-pressure", "NoSchedule"),
        toleration("node.kubernetes.io/unschedulable", "NoSchedule"),
    ];
    if host_network {
        t.push(toleration(
            "node.kubernetes.io/network-unavailable",
            "NoSchedule",
        ));
    }
    t
}

/// Same key, operator, value and effect (`Toleration.MatchToleration`); the toleration
/// seconds do not count.
fn same_toleration(a: &Toleration, b: &Toleration) -> bool {
    a.key == b.key && a.operator == b.operator && a.value == b.value && a.effect == b.effect
}

/// Adds the default tolerations to `spec`, replacing equal ones (so a template's
/// `tolerationSeconds` on one of them does not make the pod leave after all).
pub fn add_default_tolerations(spec: &mut PodSpec) {
    let host_network = spec.host_network.unwrap_or(false);
    let tolerations = spec.tolerations.get_or_insert_with(Vec::new);
    for wanted in default_tolerations(host_network) {
        match tolerations.iter_mut().find(|t| same_toleration(t, &wanted)) {
            Some(existing) => *existing = wanted,
            None => tolerations.push(wanted),
        }
    }
}

/// The node a DaemonSet pod is for: its `spec.nodeName` once bound, before that the single
/// `metadata.name In [node]` requirement the controller put into its node affinity.
pub fn target_node(pod: &Pod) -> Option<&str> {
    let spec = pod.spec.as_ref()?;
    if let Some(n) = spec.node_name.as_deref().filter(|n| !n.is_empty()) {
        return Some(n);
    }
    let terms = &spec
        .affinity
        .as_ref()?
        .node_affinity
        .as_ref()?
        .required_during_scheduling_ignored_during_execution
        .as_ref()?
        .node_selector_terms;
    terms
        .iter()
        .flat_map(|t| t.match_fields.iter().flatten())
        .find(|r| r.key == "metadata.name" && r.operator == "In")
        .and_then(|r| match r.values.as_deref() {
            Some([one]) => Some(one.as_str()),
            _ => None,
        })
}

/// Pins `affinity` to one node: the required node selector becomes the single term
/// `metadata.name In [node]`. The template's own required terms were already checked by the
/// controller, and a pod on the node they chose must not be refused for them later.
pub fn pin_to_node(affinity: Option<Affinity>, node: &str) -> Affinity {
    let term = NodeSelectorTerm {
        match_fields: Some(vec![NodeSelectorRequirement {
            key: "metadata.name".to_string(),
            operator: "In".to_string(),
            values: Some(vec![node.to_string()]),
        }]),
        match_expressions: None,
    };
    let mut affinity = affinity.unwrap_or_default();
    let node_affinity = affinity
        .node_affinity
        .get_or_insert_with(NodeAffinity::default);
    node_affinity.required_during_scheduling_ignored_during_execution = Some(NodeSelector {
        node_selector_terms: vec![term],
    });
    affinity
}

/// The generation pods record in `pod-template-generation`: Kubernetes' API server keeps it
/// in an annotation; without one, the object's generation moves on template changes as well.
pub fn template_generation(ds: &DaemonSet) -> Option<i64> {
    ds.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(TEMPLATE_GENERATION_ANNOTATION))
        .and_then(|g| g.parse().ok())
        .or(ds.metadata.generation)
}

/// The pod the DaemonSet creates for `node` (or, with `None`, the pod used to judge
/// eligibility): the template with the default tolerations, the revision labels, the
/// controller reference, and the node affinity pinned to the node.
pub fn new_pod(ds: &DaemonSet, node: Option<&str>, hash: &str) -> Pod {
    let template = ds.spec.template.clone();
    let meta = template.metadata.unwrap_or_default();
    let mut spec = template.spec.unwrap_or_default();
    add_default_tolerations(&mut spec);
    let mut labels: BTreeMap<String, String> = meta.labels.unwrap_or_default();
    if let Some(g) = template_generation(ds) {
        labels.insert(TEMPLATE_GENERATION_LABEL.into(), g.to_string());
    }
    if !hash.is_empty() {
        labels.insert(REVISION_HASH_LABEL.into(), hash.to_string());
    }
    if let Some(node) = node {
        spec.affinity = Some(pin_to_node(spec.affinity.take(), node));
    }
    let mut prefix = format!("{}-", ds.metadata.name.as_deref().unwrap_or("daemon"));
    if prefix.len() > MAX_GENERATED_PREFIX {
        let mut cut = MAX_GENERATED_PREFIX;
        while !prefix.is_char_boundary(cut) {
            cut -= 1;
        }
        prefix.truncate(cut);
    }
    Pod {
        metadata: ObjectMeta {
            generate_name: Some(prefix),
            namespace: ds.metadata.namespace.clone(),
            labels: Some(labels),
            annotations: meta.annotations,
            finalizers: meta.finalizers,
            owner_references: Some(vec![owner::controller_ref(ds)]),
            ..ObjectMeta::default()
        },
        spec: Some(spec),
        status: None,
    }
}

/// Whether `pod` (from [`new_pod`] without a node) belongs on `node`. `handler` is the
/// handler of the pod's RuntimeClass: `Some(None)` when it names a RuntimeClass that does not
/// exist, which no node can run.
pub fn eligibility(pod: &Pod, node: &Node, handler: Option<Option<&str>>) -> Eligibility {
    let node_name = node.metadata.name.as_deref().unwrap_or("");
    let wanted_node = pod
        .spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .unwrap_or("");
    if !wanted_node.is_empty() && wanted_node != node_name {
        return Eligibility::NO;
    }
    if filters::node_affinity(pod, node).is_err() {
        return Eligibility::NO;
    }
    match handler {
        None => {}
        Some(None) => return Eligibility::NO,
        Some(Some(h)) if filters::runtime_handler(Some(h), node).is_err() => {
            return Eligibility::NO;
        }
        Some(Some(_)) => {}
    }
    let tolerations = pod
        .spec
        .as_ref()
        .and_then(|s| s.tolerations.as_deref())
        .unwrap_or(&[]);
    let taints: &[Taint] = node
        .spec
        .as_ref()
        .and_then(|s| s.taints.as_deref())
        .unwrap_or(&[]);
    let untolerated = |effects: &[&str]| {
        taints
            .iter()
            .filter(|t| effects.contains(&t.effect.as_str()))
            .any(|t| !filters::tolerated(tolerations, t))
    };
    if !untolerated(&["NoSchedule", "NoExecute"]) {
        return Eligibility::YES;
    }
    Eligibility {
        should_run: false,
        should_continue_running: !untolerated(&["NoExecute"]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn ds(spec: Value) -> DaemonSet {
        serde_json::from_value(json!({
            "metadata": {"name": "agent", "namespace": "kube-system", "uid": "u1", "generation": 3},
            "spec": {
                "selector": {"matchLabels": {"app": "agent"}},
                "template": {"metadata": {"labels": {"app": "agent"}}, "spec": spec},
            },
        }))
        .expect("daemonset")
    }

    fn node(name: &str, extra: Value) -> Node {
        let mut n = json!({"metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}}, "spec": {}, "status": {}});
        if let (Some(n), Value::Object(extra)) = (n.as_object_mut(), extra) {
            for (k, v) in extra {
                match (n.get_mut(&k), v) {
                    (Some(Value::Object(dst)), Value::Object(src)) => dst.extend(src),
                    (_, v) => {
                        n.insert(k, v);
                    }
                }
            }
        }
        serde_json::from_value(n).expect("node")
    }

    fn judge(spec: Value, node: &Node, handler: Option<Option<&str>>) -> Eligibility {
        eligibility(&new_pod(&ds(spec), None, "h"), node, handler)
    }

    fn containers() -> Value {
        json!([{"name": "c", "image": "i"}])
    }

    #[test]
    fn node_selector_and_affinity() {
        let plain = node("a", json!({}));
        let ssd = node("b", json!({"metadata": {"labels": {"disk": "ssd"}}}));
        let spec = json!({"containers": containers(), "nodeSelector": {"disk": "ssd"}});
        assert_eq!(judge(spec.clone(), &plain, None), Eligibility::NO);
        assert_eq!(judge(spec, &ssd, None), Eligibility::YES);
        let affinity = json!({"containers": containers(), "affinity": {"nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchExpressions": [{"key": "disk", "operator": "In", "values": ["ssd"]}]}]}}}});
        assert_eq!(judge(affinity.clone(), &plain, None), Eligibility::NO);
        assert_eq!(judge(affinity, &ssd, None), Eligibility::YES);
    }

    #[test]
    fn taints_and_default_tolerations() {
        let spec = json!({"containers": containers()});
        // The default tolerations cover a node that is not ready, unreachable or cordoned.
        for (key, effect) in [
            ("node.kubernetes.io/not-ready", "NoExecute"),
            ("node.kubernetes.io/unreachable", "NoExecute"),
            ("node.kubernetes.io/unreachable", "NoSchedule"),
            ("node.kubernetes.io/unschedulable", "NoSchedule"),
            ("node.kubernetes.io/memory-pressure", "NoSchedule"),
        ] {
            let n = node(
                "a",
                json!({"spec": {"taints": [{"key": key, "effect": effect}]}}),
            );
            // not-ready:NoSchedule aside, all of these are tolerated.
            if key == "node.kubernetes.io/unreachable" && effect == "NoSchedule" {
                assert_eq!(
                    judge(spec.clone(), &n, None),
                    Eligibility {
                        should_run: false,
                        should_continue_running: true
                    }
                );
            } else {
                assert_eq!(
                    judge(spec.clone(), &n, None),
                    Eligibility::YES,
                    "{key}:{effect}"
                );
            }
        }
        let no_schedule = node(
            "a",
            json!({"spec": {"taints": [{"key": "dedicated", "value": "db", "effect": "NoSchedule"}]}}),
        );
        assert_eq!(
            judge(spec.clone(), &no_schedule, None),
            Eligibility {
                should_run: false,
                should_continue_running: true
            }
        );
        let no_execute = node(
            "a",
            json!({"spec": {"taints": [{"key": "dedicated", "value": "db", "effect": "NoExecute"}]}}),
        );
        assert_eq!(judge(spec, &no_execute, None), Eligibility::NO);
        let tolerant = json!({"containers": containers(),
            "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "db"}]});
        assert_eq!(judge(tolerant, &no_execute, None), Eligibility::YES);
    }

    #[test]
    fn runtime_handlers() {
        let spec = json!({"containers": containers()});
        let wasm = node(
            "a",
            json!({"status": {"runtimeHandlers": [{"name": "wasmtime"}]}}),
        );
        let plain = node("b", json!({}));
        assert_eq!(
            judge(spec.clone(), &wasm, Some(Some("wasmtime"))),
            Eligibility::YES
        );
        assert_eq!(
            judge(spec.clone(), &plain, Some(Some("wasmtime"))),
            Eligibility::NO
        );
        assert_eq!(judge(spec.clone(), &wasm, Some(None)), Eligibility::NO);
        assert_eq!(judge(spec, &plain, None), Eligibility::YES);
    }

    #[test]
    fn pods_are_pinned_and_labelled() {
        let d = ds(json!({"containers": containers(),
            "tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists",
                "effect": "NoExecute", "tolerationSeconds": 300}],
            "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution":
                {"nodeSelectorTerms": [{"matchExpressions": [{"key": "x", "operator": "Exists"}]}]}}}}));
        let pod = new_pod(&d, Some("node-1"), "abc");
        assert_eq!(target_node(&pod), Some("node-1"));
        let labels = pod.metadata.labels.clone().unwrap_or_default();
        assert_eq!(
            labels.get("controller-revision-hash").map(String::as_str),
            Some("abc")
        );
        assert_eq!(
            labels.get("pod-template-generation").map(String::as_str),
            Some("3")
        );
        assert_eq!(labels.get("app").map(String::as_str), Some("agent"));
        assert_eq!(pod.metadata.generate_name.as_deref(), Some("agent-"));
        let tolerations = pod
            .spec
            .as_ref()
            .and_then(|s| s.tolerations.clone())
            .unwrap_or_default();
        assert_eq!(tolerations.len(), 6);
        // The template's 300 s toleration became a permanent one.
        assert!(tolerations.iter().all(|t| t.toleration_seconds.is_none()));
        let owner = pod.metadata.owner_references.unwrap_or_default();
        assert_eq!(owner[0].kind, "DaemonSet");
    }
}
