//! One scheduling cycle: filter every node, score the ones that fit, pick the best. Pure: it
//! reads the [`Cache`] and returns a decision; binding and reporting are the caller's.
//!
//! The order of the filters is kube-scheduler's default plugin order, and each node stops at
//! its first failing filter, so the per-node reasons (and the message built from them) are
//! the ones Kubernetes would give.

use std::collections::BTreeMap;
use std::fmt;

use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::api::node::v1::RuntimeClass;
use rand::Rng;

use crate::cache::{Cache, NodeInfo};
use crate::filters::{self, Filtered, PodAffinityState, REASON_NODE_AFFINITY, Unfit};
use crate::resources::{Resources, allocatable, host_ports, pod_requests};
use crate::scores::{self, InterPodScoreState, ScoreWeights};
use crate::volumes::PodVolumes;

/// Why a pod fits no node, in the shape of kube-scheduler's `FitError`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FitError {
    /// Nodes considered.
    pub num_nodes: usize,
    /// A reason that applies before any node is looked at (a missing RuntimeClass).
    pub pre_filter: Option<String>,
    /// Per node, why it was rejected.
    pub node_reasons: BTreeMap<String, Vec<String>>,
}

impl FitError {
    /// kube-scheduler's message: `0/3 nodes are available: 1 Insufficient memory, 2 node(s)
    /// had untolerated taint {node-role.kubernetes.io/control-plane: }. preemption: 0/3 nodes
    /// are available: 3 Preemption is not helpful for scheduling.` Reasons are counted over
    /// nodes and the `count reason` strings sorted, as Go's `sort.Strings` sorts them. No
    /// preemption is attempted, so every node is one where it "is not helpful".
    pub fn message(&self) -> String {
        let n = self.num_nodes;
        if n == 0 {
            return "no nodes available to schedule pods".to_string();
        }
        let mut msg = format!("0/{n} nodes are available:");
        match &self.pre_filter {
            Some(pre) => msg.push_str(&format!(" {pre}.")),
            None => {
                let mut histogram: BTreeMap<&str, usize> = BTreeMap::new();
                for reason in self.node_reasons.values().flatten() {
                    *histogram.entry(reason).or_insert(0) += 1;
                }
                let mut parts: Vec<String> = histogram
                    .into_iter()
                    .map(|(reason, count)| format!("{count} {reason}"))
                    .collect();
                parts.sort();
                if !parts.is_empty() {
                    msg.push_str(&format!(" {}.", parts.join(", ")));
                }
            }
        }
        msg.push_str(&format!(
            " preemption: 0/{n} nodes are available: {n} Preemption is not helpful for scheduling."
        ));
        msg
    }
}

impl fmt::Display for FitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message())
    }
}

impl std::error::Error for FitError {}

/// The pod as the filters should see it: with its RuntimeClass's scheduling constraints
/// (node selector, tolerations) and overhead merged in, as Kubernetes' RuntimeClass
/// admission plugin would have done at creation.
struct Prepared {
    pod: Pod,
    handler: Option<String>,
    /// The RuntimeClass's node selector, which must hold besides the pod's own.
    class_selector: BTreeMap<String, String>,
    volumes: PodVolumes,
}

fn prepare(pod: &Pod, cache: &Cache) -> Result<Prepared, String> {
    let volumes = PodVolumes::compute(pod, cache)?;
    let class_name = pod
        .spec
        .as_ref()
        .and_then(|s| s.runtime_class_name.as_deref())
        .filter(|n| !n.is_empty());
    let Some(class_name) = class_name else {
        return Ok(Prepared {
            pod: pod.clone(),
            handler: None,
            class_selector: BTreeMap::new(),
            volumes,
        });
    };
    let rc: &RuntimeClass = cache
        .runtime_class(class_name)
        .ok_or_else(|| format!("runtimeclass.node.k8s.io \"{class_name}\" not found"))?;
    let mut pod = pod.clone();
    let scheduling = rc.scheduling.as_ref();
    if let Some(spec) = pod.spec.as_mut() {
        if let Some(extra) = scheduling.and_then(|s| s.tolerations.as_ref()) {
            spec.tolerations
                .get_or_insert_with(Vec::new)
                .extend(extra.iter().cloned());
        }
        if spec.overhead.is_none() {
            spec.overhead = rc.overhead.as_ref().and_then(|o| o.pod_fixed.clone());
        }
    }
    Ok(Prepared {
        pod,
        handler: Some(rc.handler.clone()),
        class_selector: scheduling
            .and_then(|s| s.node_selector.clone())
            .unwrap_or_default(),
        volumes,
    })
}

/// Runs the filters for one node, stopping at the first that fails.
fn filter_node(
    p: &Prepared,
    requests: &Resources,
    affinity: &PodAffinityState,
    node: &Node,
    info: &NodeInfo,
    cache: &Cache,
) -> Filtered {
    let pod = &p.pod;
    filters::node_unschedulable(pod, node)?;
    filters::taint_toleration(pod, node)?;
    filters::node_ready(pod, node)?;
    filters::node_affinity(pod, node)?;
    let labels = node.metadata.labels.as_ref();
    if !p
        .class_selector
        .iter()
        .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
    {
        return Err(Unfit(vec![REASON_NODE_AFFINITY.to_string()]));
    }
    filters::node_ports(&host_ports(pod), info.pod_objects())?;
    filters::resources_fit(
        requests,
        &allocatable(node),
        &info.requested,
        info.pods.len(),
    )?;
    p.volumes.filter(node, cache)?;
    filters::runtime_handler(p.handler.as_deref(), node)?;
    filters::inter_pod_affinity(affinity, node)?;
    Ok(())
}

fn cluster(cache: &Cache) -> impl Iterator<Item = (&Node, Vec<&Pod>)> {
    cache
        .nodes()
        .map(|(node, info)| (node, info.pod_objects().collect()))
}

/// Total weighted score of every feasible node, in the order given.
pub fn score_nodes(
    pod: &Pod,
    feasible: &[(&Node, &NodeInfo)],
    cache: &Cache,
    weights: &ScoreWeights,
) -> Vec<i64> {
    let non_zero = pod_requests(pod, true);
    let inter_pod = InterPodScoreState::compute(pod, cluster(cache), cache.namespace_labels());
    let raw = |f: &dyn Fn(&Node, &NodeInfo) -> i64| -> Vec<i64> {
        feasible.iter().map(|(n, i)| f(n, i)).collect()
    };
    let node_affinity =
        scores::normalize_max(&raw(&|n, _| scores::node_affinity_raw(pod, n)), false);
    let inter_pod = scores::normalize_min_max(&raw(&|n, _| inter_pod.raw(n)));
    let taints = scores::normalize_max(&raw(&|n, _| scores::taint_toleration_raw(pod, n)), true);
    let spreading = scores::normalize_max(
        &raw(&|_, i| scores::spreading_raw(pod, i.pod_objects())),
        true,
    );
    feasible
        .iter()
        .enumerate()
        .map(|(i, (node, info))| {
            let mut after = info.non_zero_requested.clone();
            after.add(&non_zero);
            let alloc = allocatable(node);
            weights.least_allocated * scores::least_allocated(&after, &alloc)
                + weights.balanced_allocation * scores::balanced_allocation(&after, &alloc)
                + weights.node_affinity * node_affinity[i]
                + weights.inter_pod_affinity * inter_pod[i]
                + weights.taint_toleration * taints[i]
                + weights.spreading * spreading[i]
        })
        .collect()
}

/// Picks the index of the highest score; ties are broken uniformly at random (reservoir
/// sampling, like kube-scheduler's `selectHost`), so equal nodes share the load.
pub fn select(scores: &[i64], rng: &mut impl Rng) -> Option<usize> {
    let mut best: Option<(usize, i64)> = None;
    let mut ties = 0u32;
    for (i, &s) in scores.iter().enumerate() {
        match best {
            Some((_, b)) if s < b => {}
            Some((_, b)) if s == b => {
                ties += 1;
                if rng.random_range(0..=ties) == 0 {
                    best = Some((i, s));
                }
            }
            _ => {
                best = Some((i, s));
                ties = 0;
            }
        }
    }
    best.map(|(i, _)| i)
}

/// Finds the node for `pod`, or why there is none.
pub fn schedule(
    pod: &Pod,
    cache: &Cache,
    weights: &ScoreWeights,
    rng: &mut impl Rng,
) -> Result<String, FitError> {
    let num_nodes = cache.node_count();
    let fit_error = |pre_filter, node_reasons| FitError {
        num_nodes,
        pre_filter,
        node_reasons,
    };
    if num_nodes == 0 {
        return Err(fit_error(None, BTreeMap::new()));
    }
    let prepared = prepare(pod, cache).map_err(|pre| fit_error(Some(pre), BTreeMap::new()))?;
    let requests = pod_requests(&prepared.pod, false);
    let affinity =
        PodAffinityState::compute(&prepared.pod, cluster(cache), cache.namespace_labels());
    let mut feasible = Vec::new();
    let mut rejected = BTreeMap::new();
    for (node, info) in cache.nodes() {
        match filter_node(&prepared, &requests, &affinity, node, info, cache) {
            Ok(()) => feasible.push((node, info)),
            Err(Unfit(reasons)) => {
                rejected.insert(node.metadata.name.clone().unwrap_or_default(), reasons);
            }
        }
    }
    let chosen = match feasible.len() {
        0 => return Err(fit_error(None, rejected)),
        1 => 0,
        _ => {
            let scores = score_nodes(&prepared.pod, &feasible, cache, weights);
            select(&scores, rng).unwrap_or(0)
        }
    };
    Ok(feasible[chosen].0.metadata.name.clone().unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;
    use serde_json::{Value, json};

    fn node(name: &str, cpu: &str, extra: Value) -> Node {
        let mut v = json!({"metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
            "spec": {},
            "status": {"allocatable": {"cpu": cpu, "memory": "4Gi", "pods": "110"},
                "conditions": [{"type": "Ready", "status": "True"}],
                "runtimeHandlers": [{"name": "runc"}]}});
        merge(&mut v, extra);
        serde_json::from_value(v).expect("node")
    }

    fn merge(base: &mut Value, extra: Value) {
        match (base, extra) {
            (Value::Object(b), Value::Object(e)) => {
                for (k, v) in e {
                    merge(b.entry(k).or_insert(Value::Null), v);
                }
            }
            (b, e) => *b = e,
        }
    }

    fn pod(name: &str, extra: Value) -> Pod {
        let mut v = json!({"metadata": {"name": name, "namespace": "default", "uid": name},
            "spec": {"containers": [{"name": "c"}]}});
        merge(&mut v, extra);
        serde_json::from_value(v).expect("pod")
    }

    fn rng() -> StdRng {
        StdRng::seed_from_u64(7)
    }

    #[test]
    fn message_format_matches_kube_scheduler() {
        let taint = "node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }";
        let e = FitError {
            num_nodes: 3,
            pre_filter: None,
            node_reasons: [
                ("a".into(), vec!["Insufficient memory".into()]),
                ("b".into(), vec![taint.into()]),
                ("c".into(), vec![taint.into()]),
            ]
            .into(),
        };
        assert_eq!(
            e.message(),
            "0/3 nodes are available: 1 Insufficient memory, 2 node(s) had untolerated taint \
             {node-role.kubernetes.io/control-plane: }. preemption: 0/3 nodes are available: 3 \
             Preemption is not helpful for scheduling."
        );
        // Sorted as strings, counts included, as Go does.
        let many = FitError {
            num_nodes: 12,
            pre_filter: None,
            node_reasons: (0..12)
                .map(|i| {
                    let r = if i < 10 { "b" } else { "a" };
                    (format!("n{i}"), vec![r.to_string()])
                })
                .collect(),
        };
        assert!(
            many.message()
                .starts_with("0/12 nodes are available: 10 b, 2 a.")
        );
        let pre = FitError {
            num_nodes: 2,
            pre_filter: Some("runtimeclass.node.k8s.io \"x\" not found".into()),
            node_reasons: BTreeMap::new(),
        };
        assert_eq!(
            pre.message(),
            "0/2 nodes are available: runtimeclass.node.k8s.io \"x\" not found. preemption: 0/2 \
             nodes are available: 2 Preemption is not helpful for scheduling."
        );
        let none = FitError {
            num_nodes: 0,
            pre_filter: None,
            node_reasons: BTreeMap::new(),
        };
        assert_eq!(none.message(), "no nodes available to schedule pods");
    }

    #[test]
    fn picks_a_node_that_fits_and_reports_the_others() {
        let mut cache = Cache::new();
        cache.upsert_node(node("small", "1", json!({})));
        cache.upsert_node(node("big", "8", json!({})));
        cache.upsert_node(node(
            "cp",
            "8",
            json!({"spec": {"taints": [{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}]}}),
        ));
        let p = pod(
            "p",
            json!({"spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": "2"}}}]}}),
        );
        assert_eq!(
            schedule(&p, &cache, &ScoreWeights::default(), &mut rng()).as_deref(),
            Ok("big")
        );
        let huge = pod(
            "h",
            json!({"spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": "16"}}}]}}),
        );
        let err = schedule(&huge, &cache, &ScoreWeights::default(), &mut rng()).expect_err("unfit");
        assert_eq!(
            err.message(),
            "0/3 nodes are available: 1 node(s) had untolerated taint \
             {node-role.kubernetes.io/control-plane: }, 2 Insufficient cpu. preemption: 0/3 \
             nodes are available: 3 Preemption is not helpful for scheduling."
        );
    }

    #[test]
    fn runtime_class_selects_nodes_by_handler() {
        let mut cache = Cache::new();
        cache.upsert_node(node("plain", "8", json!({})));
        cache.upsert_node(node(
            "wasm",
            "1",
            json!({"status": {"runtimeHandlers": [{"name": "runc"}, {"name": "wasmtime"}]}}),
        ));
        cache.upsert_runtime_class(
            serde_json::from_value(
                json!({"metadata": {"name": "wasmtime"}, "handler": "wasmtime",
                "overhead": {"podFixed": {"cpu": "250m"}}}),
            )
            .expect("rc"),
        );
        let p = pod("p", json!({"spec": {"runtimeClassName": "wasmtime"}}));
        for _ in 0..5 {
            assert_eq!(
                schedule(&p, &cache, &ScoreWeights::default(), &mut rng()).as_deref(),
                Ok("wasm")
            );
        }
        // The overhead counts against the node.
        let heavy = pod(
            "h",
            json!({"spec": {"runtimeClassName": "wasmtime", "containers": [{"name": "c", "resources": {"requests": {"cpu": "900m"}}}]}}),
        );
        let err =
            schedule(&heavy, &cache, &ScoreWeights::default(), &mut rng()).expect_err("unfit");
        assert!(
            err.message()
                .contains("1 Insufficient cpu, 1 node(s) didn't offer runtime handler wasmtime.")
        );
        let missing = pod("m", json!({"spec": {"runtimeClassName": "gvisor"}}));
        let err =
            schedule(&missing, &cache, &ScoreWeights::default(), &mut rng()).expect_err("unfit");
        assert_eq!(
            err.pre_filter.as_deref(),
            Some("runtimeclass.node.k8s.io \"gvisor\" not found")
        );
    }

    #[test]
    fn runtime_class_scheduling_constraints_apply() {
        let mut cache = Cache::new();
        cache.upsert_node(node(
            "a",
            "8",
            json!({"metadata": {"labels": {"pool": "wasm"}},
            "spec": {"taints": [{"key": "wasm-only", "effect": "NoSchedule"}]}}),
        ));
        cache.upsert_node(node("b", "8", json!({})));
        cache.upsert_runtime_class(
            serde_json::from_value(json!({"metadata": {"name": "runc"}, "handler": "runc",
                "scheduling": {"nodeSelector": {"pool": "wasm"},
                    "tolerations": [{"key": "wasm-only", "operator": "Exists"}]}}))
            .expect("rc"),
        );
        let p = pod("p", json!({"spec": {"runtimeClassName": "runc"}}));
        assert_eq!(
            schedule(&p, &cache, &ScoreWeights::default(), &mut rng()).as_deref(),
            Ok("a")
        );
    }

    #[test]
    fn assumed_replicas_spread_over_equal_nodes() {
        let mut cache = Cache::new();
        cache.upsert_node(node("a", "100", json!({})));
        cache.upsert_node(node("b", "4", json!({})));
        let owner = json!({"metadata": {"labels": {"app": "web"}, "ownerReferences": [
            {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web", "uid": "rs", "controller": true}]}});
        let mut placed = BTreeMap::<String, usize>::new();
        let mut r = rng();
        for i in 0..4 {
            let p = pod(&format!("web-{i}"), owner.clone());
            let n = schedule(&p, &cache, &ScoreWeights::default(), &mut r).expect("fits");
            cache.assume(&p, &n);
            *placed.entry(n).or_insert(0) += 1;
        }
        assert_eq!(placed, [("a".to_string(), 2), ("b".to_string(), 2)].into());
    }

    #[test]
    fn host_ports_and_pod_counts_use_the_node_pods() {
        let mut cache = Cache::new();
        cache.upsert_node(node(
            "a",
            "8",
            json!({"status": {"allocatable": {"pods": "1"}}}),
        ));
        cache.upsert_node(node("b", "8", json!({})));
        let web = |name: &str| {
            pod(
                name,
                json!({"spec": {"containers": [{"name": "c", "ports": [{"containerPort": 80, "hostPort": 80}]}]}}),
            )
        };
        cache.assume(&web("w0"), "b");
        assert_eq!(
            schedule(&web("w1"), &cache, &ScoreWeights::default(), &mut rng()).as_deref(),
            Ok("a")
        );
        cache.assume(&pod("x", json!({})), "a");
        let err =
            schedule(&web("w1"), &cache, &ScoreWeights::default(), &mut rng()).expect_err("unfit");
        assert!(
            err.message().starts_with(
                "0/2 nodes are available: 1 Too many pods, 1 node(s) didn't have free ports for the requested pod ports."
            ),
            "{}",
            err.message()
        );
    }

    #[test]
    fn preferences_win_when_nodes_are_otherwise_equal() {
        let mut cache = Cache::new();
        cache.upsert_node(node(
            "a",
            "8",
            json!({"metadata": {"labels": {"disk": "ssd"}}}),
        ));
        cache.upsert_node(node(
            "b",
            "8",
            json!({"spec": {"taints": [{"key": "meh", "effect": "PreferNoSchedule"}]}}),
        ));
        cache.upsert_node(node("c", "8", json!({})));
        let p = pod(
            "p",
            json!({"spec": {"affinity": {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 50, "preference": {"matchExpressions": [{"key": "disk", "operator": "In", "values": ["ssd"]}]}}]}}}}),
        );
        let mut r = rng();
        for _ in 0..10 {
            assert_eq!(
                schedule(&p, &cache, &ScoreWeights::default(), &mut r).as_deref(),
                Ok("a")
            );
        }
        // Without preferences the tainted node loses, and the others are chosen at random.
        let plain = pod("q", json!({}));
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..40 {
            seen.insert(schedule(&plain, &cache, &ScoreWeights::default(), &mut r).expect("fits"));
        }
        assert_eq!(seen, ["a".to_string(), "c".to_string()].into());
    }

    #[test]
    fn select_breaks_ties_among_the_best_only() {
        let mut r = rng();
        let mut seen = [0usize; 4];
        for _ in 0..200 {
            if let Some(i) = select(&[5, 9, 9, 1], &mut r) {
                seen[i] += 1;
            }
        }
        assert_eq!((seen[0], seen[3]), (0, 0));
        assert!(seen[1] > 50 && seen[2] > 50, "{seen:?}");
        assert_eq!(select(&[], &mut r), None);
    }
}
