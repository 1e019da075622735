//! Scores: how good a feasible node is for a pod, each from 0 to [`MAX_SCORE`], as
//! kube-scheduler's score plugins compute them. The framework adds them up with
//! [`ScoreWeights`].
//!
//! Scores that only mean something relative to the other nodes (preferred affinity, taints,
//! spreading) come as raw counts from one function per node, then one of the normalizers
//! maps the raw values of every feasible node onto 0..=100.

use std::collections::{BTreeMap, HashMap};

use k8s_openapi::api::core::v1::{Node, Pod, WeightedPodAffinityTerm};

use crate::filters::{AffinityTerm, node_selector_term_matches, toleration_matches};
use crate::resources::{CPU, MEMORY, Resources};

/// The best score a plugin gives.
pub const MAX_SCORE: i64 = 100;

/// Weight of each score in the total; kube-scheduler's defaults.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScoreWeights {
    /// NodeResourcesFit, LeastAllocated strategy.
    pub least_allocated: i64,
    /// NodeResourcesBalancedAllocation.
    pub balanced_allocation: i64,
    /// NodeAffinity (preferred terms).
    pub node_affinity: i64,
    /// InterPodAffinity (preferred terms).
    pub inter_pod_affinity: i64,
    /// TaintToleration (PreferNoSchedule taints).
    pub taint_toleration: i64,
    /// Spreading of a controller's replicas over nodes (the weight of PodTopologySpread,
    /// which does this job in current Kubernetes).
    pub spreading: i64,
}

impl Default for ScoreWeights {
    fn default() -> Self {
        ScoreWeights {
            least_allocated: 1,
            balanced_allocation: 1,
            node_affinity: 2,
            inter_pod_affinity: 2,
            taint_toleration: 3,
            spreading: 2,
        }
    }
}

/// The resources the resource scores weigh, each with weight 1.
const SCORED: [&str; 2] = [CPU, MEMORY];

/// LeastAllocated: the share of CPU and memory left free once the pod is placed (with the
/// scoring defaults for request-less containers), averaged. Emptier nodes score higher.
pub fn least_allocated(requested: &Resources, allocatable: &Resources) -> i64 {
    let mut sum = 0i128;
    for name in SCORED {
        let cap = allocatable.get(name);
        let req = requested.get(name).max(0);
        if cap > 0 && req <= cap {
            sum += (cap - req) * i128::from(MAX_SCORE) / cap;
        }
    }
    i64::try_from(sum / SCORED.len() as i128).unwrap_or(0)
}

/// BalancedAllocation: nodes whose CPU and memory would be used in equal shares score
/// higher: `(1 - standard deviation of the shares) × 100`.
pub fn balanced_allocation(requested: &Resources, allocatable: &Resources) -> i64 {
    let shares: Vec<f64> = SCORED
        .iter()
        .filter_map(|name| {
            let cap = allocatable.get(name);
            (cap > 0).then(|| (requested.get(name).max(0) as f64 / cap as f64).min(1.0))
        })
        .collect();
    if shares.len() < 2 {
        return MAX_SCORE;
    }
    let mean = shares.iter().sum::<f64>() / shares.len() as f64;
    let variance = shares.iter().map(|s| (s - mean).powi(2)).sum::<f64>() / shares.len() as f64;
    let score = ((1.0 - variance.sqrt()) * MAX_SCORE as f64) as i64;
    score.clamp(0, MAX_SCORE)
}

/// NodeAffinity, raw: the summed weights of the preferred node affinity terms the node
/// matches.
pub fn node_affinity_raw(pod: &Pod, node: &Node) -> i64 {
    pod.spec
        .as_ref()
        .and_then(|s| s.affinity.as_ref())
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|a| {
            a.preferred_during_scheduling_ignored_during_execution
                .as_ref()
        })
        .into_iter()
        .flatten()
        .filter(|t| node_selector_term_matches(&t.preference, node))
        .map(|t| i64::from(t.weight))
        .sum()
}

/// TaintToleration, raw: how many PreferNoSchedule taints of the node the pod does not
/// tolerate.
pub fn taint_toleration_raw(pod: &Pod, node: &Node) -> i64 {
    let tolerations: Vec<_> = pod
        .spec
        .as_ref()
        .and_then(|s| s.tolerations.as_ref())
        .into_iter()
        .flatten()
        .filter(|t| matches!(t.effect.as_deref(), None | Some("" | "PreferNoSchedule")))
        .collect();
    let count = node
        .spec
        .as_ref()
        .and_then(|s| s.taints.as_ref())
        .into_iter()
        .flatten()
        .filter(|t| t.effect == "PreferNoSchedule")
        .filter(|t| !tolerations.iter().any(|tol| toleration_matches(tol, t)))
        .count();
    i64::try_from(count).unwrap_or(i64::MAX)
}

/// Whether two pods are replicas of one workload: the same controller owner, or (for pods
/// no controller owns) the same namespace and the same non-empty labels.
pub fn same_workload(a: &Pod, b: &Pod) -> bool {
    let controller = |p: &Pod| {
        p.metadata
            .owner_references
            .iter()
            .flatten()
            .find(|o| o.controller == Some(true))
            .map(|o| o.uid.clone())
    };
    match (controller(a), controller(b)) {
        (Some(x), Some(y)) => x == y,
        (None, None) => {
            a.metadata.namespace == b.metadata.namespace
                && a.metadata.labels.as_ref().is_some_and(|l| !l.is_empty())
                && a.metadata.labels == b.metadata.labels
        }
        _ => false,
    }
}

/// Spreading, raw: how many replicas of the pod's workload the node already runs.
pub fn spreading_raw<'a>(pod: &Pod, node_pods: impl IntoIterator<Item = &'a Pod>) -> i64 {
    let count = node_pods
        .into_iter()
        .filter(|p| p.metadata.uid != pod.metadata.uid || pod.metadata.uid.is_none())
        .filter(|p| same_workload(pod, p))
        .count();
    i64::try_from(count).unwrap_or(i64::MAX)
}

/// kube-scheduler's `DefaultNormalizeScore`: `raw × 100 / max(raw)`, inverted with
/// `reverse` (for counts where fewer is better). All zero maps to 0, or 100 when reversed.
pub fn normalize_max(raw: &[i64], reverse: bool) -> Vec<i64> {
    let max = raw.iter().copied().max().unwrap_or(0).max(0);
    raw.iter()
        .map(|&r| {
            let score = if max == 0 {
                0
            } else {
                i64::try_from(i128::from(r.clamp(0, max)) * i128::from(MAX_SCORE) / i128::from(max))
                    .unwrap_or(0)
            };
            if reverse { MAX_SCORE - score } else { score }
        })
        .collect()
}

/// Min-max normalization onto 0..=100 (InterPodAffinity's, whose raw values may be negative).
pub fn normalize_min_max(raw: &[i64]) -> Vec<i64> {
    let (Some(min), Some(max)) = (raw.iter().copied().min(), raw.iter().copied().max()) else {
        return Vec::new();
    };
    let span = i128::from(max) - i128::from(min);
    raw.iter()
        .map(|&r| {
            if span == 0 {
                0
            } else {
                i64::try_from((i128::from(r) - i128::from(min)) * i128::from(MAX_SCORE) / span)
                    .unwrap_or(0)
            }
        })
        .collect()
}

type Domain = (String, String);

/// Preferred inter-pod affinity, computed once per scheduling cycle: the weight each
/// topology domain earns from pods the incoming pod likes (or dislikes), and from running
/// pods that like (or dislike) it.
#[derive(Clone, Debug, Default)]
pub struct InterPodScoreState {
    domains: HashMap<Domain, i64>,
}

fn weighted(
    terms: Option<&Vec<WeightedPodAffinityTerm>>,
    ns: &str,
    sign: i64,
) -> Vec<(AffinityTerm, i64)> {
    terms
        .into_iter()
        .flatten()
        .map(|t| {
            (
                AffinityTerm::new(&t.pod_affinity_term, ns),
                sign * i64::from(t.weight),
            )
        })
        .collect()
}

fn preferred_terms(pod: &Pod) -> Vec<(AffinityTerm, i64)> {
    let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
    let affinity = pod.spec.as_ref().and_then(|s| s.affinity.as_ref());
    let mut terms = weighted(
        affinity
            .and_then(|a| a.pod_affinity.as_ref())
            .and_then(|a| {
                a.preferred_during_scheduling_ignored_during_execution
                    .as_ref()
            }),
        ns,
        1,
    );
    terms.extend(weighted(
        affinity
            .and_then(|a| a.pod_anti_affinity.as_ref())
            .and_then(|a| {
                a.preferred_during_scheduling_ignored_during_execution
                    .as_ref()
            }),
        ns,
        -1,
    ));
    terms
}

impl InterPodScoreState {
    /// Reads every node and its pods.
    pub fn compute<'a>(
        pod: &Pod,
        cluster: impl IntoIterator<Item = (&'a Node, Vec<&'a Pod>)>,
        namespaces: &HashMap<String, BTreeMap<String, String>>,
    ) -> Self {
        let mine = preferred_terms(pod);
        let mut domains: HashMap<Domain, i64> = HashMap::new();
        let mut credit = |term: &AffinityTerm, node: &Node, weight: i64| {
            if let Some(v) = term.domain(node) {
                *domains
                    .entry((term.topology_key.clone(), v.to_string()))
                    .or_insert(0) += weight;
            }
        };
        for (node, pods) in cluster {
            for existing in pods {
                for (term, weight) in &mine {
                    if term.matches(existing, namespaces) {
                        credit(term, node, *weight);
                    }
                }
                for (term, weight) in preferred_terms(existing) {
                    if term.matches(pod, namespaces) {
                        credit(&term, node, weight);
                    }
                }
            }
        }
        InterPodScoreState { domains }
    }

    /// Raw score of a node: the weights of every domain it belongs to.
    pub fn raw(&self, node: &Node) -> i64 {
        if self.domains.is_empty() {
            return 0;
        }
        node.metadata
            .labels
            .iter()
            .flatten()
            .filter_map(|(k, v)| self.domains.get(&(k.clone(), v.clone())))
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::{Value, json};

    const GI: i128 = 1024 * 1024 * 1024 * 1000;

    fn res(cpu: i128, mem: i128) -> Resources {
        Resources::from_milli([(CPU, cpu), (MEMORY, mem)])
    }

    fn node(v: Value) -> Node {
        serde_json::from_value(v).expect("node")
    }

    fn pod(v: Value) -> Pod {
        serde_json::from_value(v).expect("pod")
    }

    #[test]
    fn least_allocated_values() {
        assert_eq!(least_allocated(&res(0, 0), &res(4000, 8 * GI)), 100);
        assert_eq!(least_allocated(&res(2000, 4 * GI), &res(4000, 8 * GI)), 50);
        assert_eq!(least_allocated(&res(4000, 0), &res(4000, 8 * GI)), 50);
        assert_eq!(least_allocated(&res(5000, 9 * GI), &res(4000, 8 * GI)), 0);
        assert_eq!(least_allocated(&res(1, 1), &Resources::new()), 0);
    }

    #[test]
    fn balanced_allocation_values() {
        assert_eq!(
            balanced_allocation(&res(2000, 4 * GI), &res(4000, 8 * GI)),
            100
        );
        // Shares 1.0 and 0.0: deviation 0.5.
        assert_eq!(balanced_allocation(&res(4000, 0), &res(4000, 8 * GI)), 50);
        assert_eq!(balanced_allocation(&res(1, 1), &res(4000, 0)), 100);
    }

    #[test]
    fn preferred_node_affinity() {
        let p = pod(
            json!({"metadata": {"name": "p"}, "spec": {"containers": [], "affinity": {"nodeAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 10, "preference": {"matchExpressions": [{"key": "disk", "operator": "In", "values": ["ssd"]}]}},
                {"weight": 3, "preference": {"matchExpressions": [{"key": "zone", "operator": "Exists"}]}},
            ]}}}}),
        );
        let n = |labels: Value| node(json!({"metadata": {"name": "n", "labels": labels}}));
        assert_eq!(
            node_affinity_raw(&p, &n(json!({"disk": "ssd", "zone": "a"}))),
            13
        );
        assert_eq!(node_affinity_raw(&p, &n(json!({"zone": "a"}))), 3);
        assert_eq!(node_affinity_raw(&p, &n(json!({}))), 0);
        assert_eq!(normalize_max(&[13, 3, 0], false), [100, 23, 0]);
    }

    #[test]
    fn prefer_no_schedule_taints() {
        let n = node(json!({"metadata": {"name": "n"}, "spec": {"taints": [
            {"key": "a", "effect": "PreferNoSchedule"},
            {"key": "b", "effect": "PreferNoSchedule"},
            {"key": "c", "effect": "NoSchedule"},
        ]}}));
        let p = |tolerations: Value| {
            pod(
                json!({"metadata": {"name": "p"}, "spec": {"containers": [], "tolerations": tolerations}}),
            )
        };
        assert_eq!(taint_toleration_raw(&p(json!([])), &n), 2);
        assert_eq!(
            taint_toleration_raw(&p(json!([{"key": "a", "operator": "Exists"}])), &n),
            1
        );
        assert_eq!(
            taint_toleration_raw(
                &p(json!([{"key": "a", "operator": "Exists", "effect": "NoSchedule"}])),
                &n
            ),
            2
        );
        assert_eq!(normalize_max(&[2, 1, 0], true), [0, 50, 100]);
        assert_eq!(normalize_max(&[0, 0], true), [100, 100]);
    }

    fn replica(name: &str, owner: &str) -> Pod {
        pod(
            json!({"metadata": {"name": name, "namespace": "default", "uid": name, "labels": {"app": "x"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": owner, "uid": owner, "controller": true}]},
            "spec": {"containers": []}}),
        )
    }

    #[test]
    fn spreading_counts_replicas_of_the_same_controller() {
        let me = replica("me", "rs1");
        let node_pods = [
            replica("a", "rs1"),
            replica("b", "rs1"),
            replica("c", "rs2"),
        ];
        assert_eq!(spreading_raw(&me, node_pods.iter()), 2);
        // Without an owner, identical labels make replicas.
        let bare = |name: &str, app: &str| {
            pod(
                json!({"metadata": {"name": name, "namespace": "default", "uid": name, "labels": {"app": app}},
                "spec": {"containers": []}}),
            )
        };
        let others = [bare("a", "web"), bare("b", "db")];
        assert_eq!(spreading_raw(&bare("me", "web"), others.iter()), 1);
        assert_eq!(normalize_max(&[2, 0, 1], true), [0, 100, 50]);
    }

    #[test]
    fn preferred_inter_pod_affinity() {
        let n1 = node(json!({"metadata": {"name": "n1", "labels": {"zone": "a"}}}));
        let n2 = node(json!({"metadata": {"name": "n2", "labels": {"zone": "b"}}}));
        let db = pod(
            json!({"metadata": {"name": "db", "namespace": "default", "labels": {"app": "db"}}, "spec": {"containers": []}}),
        );
        let web = pod(
            json!({"metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}}, "spec": {"containers": [],
            "affinity": {"podAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 5, "podAffinityTerm": {"labelSelector": {"matchLabels": {"app": "db"}}, "topologyKey": "zone"}}]}}}}),
        );
        let s = InterPodScoreState::compute(
            &web,
            vec![(&n1, vec![&db]), (&n2, vec![])],
            &HashMap::new(),
        );
        assert_eq!((s.raw(&n1), s.raw(&n2)), (5, 0));
        // Symmetric: a running pod's preference counts for the incoming pod too; dislikes are
        // negative.
        let shy = pod(
            json!({"metadata": {"name": "shy", "namespace": "default"}, "spec": {"containers": [],
            "affinity": {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 7, "podAffinityTerm": {"labelSelector": {"matchLabels": {"app": "web"}}, "topologyKey": "zone"}}]}}}}),
        );
        let s = InterPodScoreState::compute(
            &web,
            vec![(&n1, vec![&db]), (&n2, vec![&shy])],
            &HashMap::new(),
        );
        assert_eq!((s.raw(&n1), s.raw(&n2)), (5, -7));
        assert_eq!(normalize_min_max(&[5, -7]), [100, 0]);
        assert_eq!(normalize_min_max(&[3, 3]), [0, 0]);
    }

    proptest! {
        #[test]
        fn resource_scores_stay_in_range(
            cpu in 0i128..1_000_000, mem in 0i128..(1i128 << 50),
            cap_cpu in 0i128..1_000_000, cap_mem in 0i128..(1i128 << 50),
        ) {
            let (r, a) = (res(cpu, mem), res(cap_cpu, cap_mem));
            prop_assert!((0..=MAX_SCORE).contains(&least_allocated(&r, &a)));
            prop_assert!((0..=MAX_SCORE).contains(&balanced_allocation(&r, &a)));
        }

        #[test]
        fn least_allocated_prefers_emptier_nodes(
            cap_cpu in 1i128..1_000_000, cap_mem in 1i128..(1i128 << 50),
            cpu in 0i128..1_000_000, mem in 0i128..(1i128 << 50),
            more_cpu in 0i128..1_000_000, more_mem in 0i128..(1i128 << 50),
        ) {
            let cap = res(cap_cpu, cap_mem);
            let emptier = least_allocated(&res(cpu, mem), &cap);
            let fuller = least_allocated(&res(cpu + more_cpu, mem + more_mem), &cap);
            prop_assert!(emptier >= fuller);
        }

        #[test]
        fn normalized_scores_stay_in_range(raw in proptest::collection::vec(-1000i64..1000, 0..20)) {
            for reverse in [false, true] {
                prop_assert!(normalize_max(&raw, reverse).iter().all(|s| (0..=MAX_SCORE).contains(s)));
            }
            prop_assert!(normalize_min_max(&raw).iter().all(|s| (0..=MAX_SCORE).contains(s)));
        }

        #[test]
        fn normalization_keeps_the_order(raw in proptest::collection::vec(0i64..1000, 1..20)) {
            let up = normalize_max(&raw, false);
            let down = normalize_max(&raw, true);
            let mm = normalize_min_max(&raw);
            for i in 0..raw.len() {
                for j in 0..raw.len() {
                    if raw[i] < raw[j] {
                        prop_assert!(up[i] <= up[j]);
                        prop_assert!(down[i] >= down[j]);
                        prop_assert!(mm[i] <= mm[j]);
                    }
                }
            }
        }

        #[test]
        fn spreading_never_prefers_the_node_with_more_replicas(
            counts in proptest::collection::vec(0usize..6, 1..6),
        ) {
            let me = replica("me", "rs");
            let nodes: Vec<Vec<Pod>> = counts
                .iter()
                .enumerate()
                .map(|(n, c)| (0..*c).map(|i| replica(&format!("r{n}-{i}"), "rs")).collect())
                .collect();
            let raw: Vec<i64> = nodes.iter().map(|pods| spreading_raw(&me, pods.iter())).collect();
            let scores = normalize_max(&raw, true);
            for i in 0..counts.len() {
                prop_assert_eq!(raw[i], counts[i] as i64);
                for j in 0..counts.len() {
                    if counts[i] > counts[j] {
                        prop_assert!(scores[i] <= scores[j]);
                    }
                }
            }
        }
    }
}
