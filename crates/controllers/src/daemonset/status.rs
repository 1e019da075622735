//! A DaemonSet's status, counted per node as Kubernetes' `updateDaemonSetStatus` does:
//! what `kubectl rollout status daemonset` and `kubectl get ds` read.

use std::time::Duration;

use k8s_openapi::api::apps::v1::{DaemonSet, DaemonSetStatus};
use k8s_openapi::jiff::Timestamp;

use super::nodes::Eligibility;
use super::plan::{Current, NodePods, by_age, is_updated};
use crate::pods;

fn count(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// The status for nodes judged `nodes` (name, eligibility) and the DaemonSet's pods on them.
/// The oldest pod of a node speaks for it, as in Kubernetes.
pub fn calculate(
    ds: &DaemonSet,
    nodes: &[(String, Eligibility)],
    node_pods: &NodePods,
    current: Current<'_>,
    collision_count: Option<i32>,
    now: Timestamp,
) -> DaemonSetStatus {
    let min_ready = ds.spec.min_ready_seconds.unwrap_or(0);
    let (mut desired, mut scheduled, mut misscheduled) = (0, 0, 0);
    let (mut ready, mut available, mut updated) = (0, 0, 0);
    for (node, eligibility) in nodes {
        let on_node = node_pods.get(node).filter(|p| !p.is_empty());
        if !eligibility.should_run {
            if on_node.is_some() {
                misscheduled += 1;
            }
            continue;
        }
        desired += 1;
        let Some(on_node) = on_node else { continue };
        scheduled += 1;
        let Some(pod) = on_node.iter().min_by(|a, b| by_age(a, b)) else {
            continue;
        };
        if pods::is_ready(pod) {
            ready += 1;
            if pods::is_available(pod, min_ready, now) {
                available += 1;
            }
        }
        if is_updated(pod, current) {
            updated += 1;
        }
    }
    DaemonSetStatus {
        collision_count,
        conditions: ds.status.as_ref().and_then(|s| s.conditions.clone()),
        current_number_scheduled: count(scheduled),
        desired_number_scheduled: count(desired),
        number_available: Some(count(available)),
        number_misscheduled: count(misscheduled),
        number_ready: count(ready),
        number_unavailable: Some(count(desired.saturating_sub(available))),
        observed_generation: ds.metadata.generation,
        updated_number_scheduled: Some(count(updated)),
    }
}

/// When a ready pod that is not yet available (within `minReadySeconds`) becomes available:
/// the status must be recounted then, since no event marks that moment.
pub fn next_availability_check(
    min_ready_seconds: i32,
    node_pods: &NodePods,
    now: Timestamp,
) -> Option<Duration> {
    if min_ready_seconds <= 0 {
        return None;
    }
    node_pods
        .values()
        .flatten()
        .filter_map(|p| pods::available_at(p, min_ready_seconds))
        .filter(|at| *at > now)
        .min()
        .and_then(|at| Duration::try_from(at.duration_since(now)).ok())
        .map(|d| d + Duration::from_millis(100))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::sync::Arc;

    #[test]
    fn counts_per_node() {
        let ds: DaemonSet = serde_json::from_value(json!({
            "metadata": {"name": "d", "generation": 2},
            "spec": {"selector": {}, "template": {}},
        }))
        .expect("ds");
        let pod = |name: &str, hash: &str, ready: bool| -> Arc<k8s_openapi::api::core::v1::Pod> {
            Arc::new(
                serde_json::from_value(json!({
                    "metadata": {"name": name, "labels": {"controller-revision-hash": hash}},
                    "status": {"conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}}]},
                }))
                .expect("pod"),
            )
        };
        let yes = Eligibility {
            should_run: true,
            should_continue_running: true,
        };
        let no = Eligibility {
            should_run: false,
            should_continue_running: false,
        };
        let nodes = vec![
            ("a".to_string(), yes),
            ("b".to_string(), yes),
            ("c".to_string(), yes),
            ("d".to_string(), no),
        ];
        let mut node_pods = NodePods::new();
        node_pods.insert("a".into(), vec![pod("pa", "new", true)]);
        node_pods.insert("b".into(), vec![pod("pb", "old", false)]);
        node_pods.insert("d".into(), vec![pod("pd", "new", true)]);
        let current = Current {
            hash: "new",
            generation: None,
        };
        let s = calculate(&ds, &nodes, &node_pods, current, None, Timestamp::now());
        assert_eq!(s.desired_number_scheduled, 3);
        assert_eq!(s.current_number_scheduled, 2);
        assert_eq!(s.number_misscheduled, 1);
        assert_eq!(s.number_ready, 1);
        assert_eq!(s.number_available, Some(1));
        assert_eq!(s.number_unavailable, Some(2));
        assert_eq!(s.updated_number_scheduled, Some(1));
        assert_eq!(s.observed_generation, Some(2));
    }
}
