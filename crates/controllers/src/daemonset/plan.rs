//! What a DaemonSet sync does, decided from its caches without side effects: which nodes
//! need a pod, which pods go (Kubernetes' `podsShouldBeOnNode`), and which old-template pods
//! a rolling update replaces next (`rollingUpdate`), so both can be tested on their own.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::jiff::Timestamp;

use super::nodes::{Eligibility, TEMPLATE_GENERATION_LABEL};
use crate::history::REVISION_HASH_LABEL;
use crate::pods;

/// A DaemonSet's pods by the node they are for.
pub type NodePods = BTreeMap<String, Vec<Arc<Pod>>>;

/// Creates and deletes one sync asks for.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    pub create_on: Vec<String>,
    /// Names of pods to delete.
    pub delete: Vec<String>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.create_on.is_empty() && self.delete.is_empty()
    }
}

/// What identifies the current template on a pod.
#[derive(Clone, Copy, Debug)]
pub struct Current<'a> {
    pub hash: &'a str,
    pub generation: Option<i64>,
}

/// What every node's plan shares.
#[derive(Clone, Copy, Debug)]
pub struct Rollout<'a> {
    pub current: Current<'a>,
    /// Whether the strategy lets a new pod start beside an old one (`maxSurge` > 0).
    pub surge: bool,
    pub min_ready_seconds: i32,
    pub now: Timestamp,
}

fn label<'a>(pod: &'a Pod, key: &str) -> Option<&'a str> {
    pod.metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(key))
        .map(String::as_str)
}

/// Whether the pod was made from the current template (`IsPodUpdated`).
pub fn is_updated(pod: &Pod, current: Current<'_>) -> bool {
    let by_generation = current
        .generation
        .is_some_and(|g| label(pod, TEMPLATE_GENERATION_LABEL) == Some(g.to_string().as_str()));
    by_generation
        || (!current.hash.is_empty() && label(pod, REVISION_HASH_LABEL) == Some(current.hash))
}

/// Scheduled before unscheduled, then oldest first, then by name
/// (`podByCreationTimestampAndPhase`).
pub fn by_age(a: &Pod, b: &Pod) -> Ordering {
    let (sa, sb) = (pods::is_scheduled(a), pods::is_scheduled(b));
    if sa != sb {
        return sb.cmp(&sa);
    }
    let created = |p: &Pod| p.metadata.creation_timestamp.as_ref().map(|t| t.0);
    created(a)
        .cmp(&created(b))
        .then_with(|| a.metadata.name.cmp(&b.metadata.name))
}

fn name(pod: &Pod) -> String {
    pod.metadata.name.clone().unwrap_or_default()
}

/// Creates and deletes that bring one node to exactly the pods it should have.
pub fn node_plan(
    node: &str,
    eligibility: Eligibility,
    node_pods: &[Arc<Pod>],
    rollout: Rollout<'_>,
    plan: &mut Plan,
) {
    if eligibility.should_run && node_pods.is_empty() {
        plan.create_on.push(node.to_string());
        return;
    }
    if !eligibility.should_continue_running {
        plan.delete.extend(
            node_pods
                .iter()
                .filter(|p| p.metadata.deletion_timestamp.is_none())
                .map(|p| name(p)),
        );
        return;
    }
    // Failed pods are replaced; terminating ones are waited for.
    let mut running: Vec<&Arc<Pod>> = Vec::new();
    for pod in node_pods {
        if pod.metadata.deletion_timestamp.is_some() {
            continue;
        }
        if pods::phase(pod) == "Failed" {
            plan.delete.push(name(pod));
            continue;
        }
        running.push(pod);
    }
    if running.len() <= 1 {
        return;
    }
    running.sort_by(|a, b| by_age(a, b));
    if !rollout.surge {
        // One pod per node: the oldest stays.
        plan.delete.extend(running.iter().skip(1).map(|p| name(p)));
        return;
    }
    // With surge a node may hold one old pod beside one new one until the new one is
    // available; everything else goes.
    let mut oldest_new: Option<&Arc<Pod>> = None;
    let mut oldest_old: Option<&Arc<Pod>> = None;
    for pod in running {
        let slot = if is_updated(pod, rollout.current) {
            &mut oldest_new
        } else {
            &mut oldest_old
        };
        if slot.is_none() {
            *slot = Some(pod);
        } else {
            plan.delete.push(name(pod));
        }
    }
    if let (Some(new), Some(old)) = (oldest_new, oldest_old)
        && (!pods::is_ready(old) || pods::is_available(new, rollout.min_ready_seconds, rollout.now))
    {
        plan.delete.push(name(old));
    }
}

/// The pod of a node made from the current template, and the one made from an older one.
pub type UpdatedAndOld<'a> = (Option<&'a Arc<Pod>>, Option<&'a Arc<Pod>>);

/// The pod on a node made from the current template and the one made from an older one,
/// ignoring pods being deleted; `None` when either kind appears twice (the manage step sorts
/// such a node out first).
pub fn updated_and_old<'a>(
    node_pods: &'a [Arc<Pod>],
    current: Current<'_>,
) -> Option<UpdatedAndOld<'a>> {
    let (mut new, mut old) = (None, None);
    for pod in node_pods {
        if pod.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let slot = if is_updated(pod, current) {
            &mut new
        } else {
            &mut old
        };
        if slot.is_some() {
            return None;
        }
        *slot = Some(pod);
    }
    Some((new, old))
}

/// An int-or-percent of `total`, percentages rounded up (`GetScaledValueFromIntOrPercent`).
pub fn scaled(value: Option<&IntOrString>, total: usize, default: i32) -> usize {
    let v = match value {
        None => default,
        Some(IntOrString::Int(i)) => *i,
        Some(IntOrString::String(s)) => {
            let pct: i64 = s.trim_end_matches('%').parse().unwrap_or(0);
            let total = i64::try_from(total).unwrap_or(i64::MAX);
            i32::try_from((pct.saturating_mul(total) + 99) / 100).unwrap_or(i32::MAX)
        }
    };
    usize::try_from(v).unwrap_or(0)
}

/// The next step of a rolling update. `desired` are the nodes that should run a pod, each
/// listed in `node_pods` (possibly with no pods). Old pods are replaced so that at most
/// `max_unavailable` nodes lack an available pod; with `max_surge`, a new pod starts beside
/// the old one on up to `max_surge` nodes at a time instead, and the old one goes once the new
/// one is available.
pub fn rolling_update(
    node_pods: &NodePods,
    max_surge: usize,
    max_unavailable: usize,
    current: Current<'_>,
    min_ready_seconds: i32,
    now: Timestamp,
) -> Plan {
    let available = |p: &Pod| pods::is_available(p, min_ready_seconds, now);
    let mut plan = Plan::default();
    // Kubernetes falls back to one unavailable node for a strategy that allows no progress.
    let max_unavailable = if max_surge == 0 && max_unavailable == 0 {
        1
    } else {
        max_unavailable
    };
    if max_surge == 0 {
        let mut unavailable = 0usize;
        let mut replace_now: Vec<String> = Vec::new();
        let mut candidates: Vec<String> = Vec::new();
        for pods_on_node in node_pods.values() {
            let Some((new, old)) = updated_and_old(pods_on_node, current) else {
                unavailable += 1;
                continue;
            };
            match (new, old) {
                (None, None) | (Some(_), Some(_)) => unavailable += 1,
                (Some(new), None) => {
                    if !available(new) {
                        unavailable += 1;
                    }
                }
                (None, Some(old)) => {
                    if !available(old) {
                        // Replacing a pod that does not serve anyway costs nothing.
                        replace_now.push(name(old));
                    } else if unavailable < max_unavailable {
                        candidates.push(name(old));
                    }
                }
            }
        }
        let room = max_unavailable
            .saturating_sub(unavailable)
            .min(candidates.len());
        plan.delete = replace_now;
        plan.delete.extend(candidates.into_iter().take(room));
        return plan;
    }
    let mut surging = 0usize;
    let mut replace_now: Vec<String> = Vec::new();
    let mut candidates: Vec<String> = Vec::new();
    for (node, pods_on_node) in node_pods {
        let Some((new, old)) = updated_and_old(pods_on_node, current) else {
            continue;
        };
        match (new, old) {
            (_, None) => {}
            (None, Some(old)) => {
                if !available(old) {
                    replace_now.push(node.clone());
                } else if surging < max_surge {
                    candidates.push(node.clone());
                }
            }
            (Some(new), Some(old)) => {
                if available(new) {
                    plan.delete.push(name(old));
                } else {
                    surging += 1;
                }
            }
        }
    }
    let room = max_surge.saturating_sub(surging).min(candidates.len());
    plan.create_on = replace_now;
    plan.create_on.extend(candidates.into_iter().take(room));
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(name: &str, hash: &str, ready: bool, deleting: bool) -> Arc<Pod> {
        let mut p = json!({
            "metadata": {"name": name, "labels": {"controller-revision-hash": hash},
                "creationTimestamp": "2024-01-01T00:00:00Z"},
            "spec": {"nodeName": "n", "containers": []},
            "status": {"phase": "Running", "conditions": [
                {"type": "Ready", "status": if ready { "True" } else { "False" }}]},
        });
        if deleting {
            p["metadata"]["deletionTimestamp"] = json!("2024-01-01T00:01:00Z");
        }
        Arc::new(serde_json::from_value(p).expect("pod"))
    }

    const CUR: Current<'static> = Current {
        hash: "new",
        generation: None,
    };

    fn nodes(entries: Vec<(&str, Vec<Arc<Pod>>)>) -> NodePods {
        entries
            .into_iter()
            .map(|(n, p)| (n.to_string(), p))
            .collect()
    }

    #[test]
    fn max_unavailable_bounds_replacements() {
        let np = nodes(vec![
            ("a", vec![pod("a-old", "old", true, false)]),
            ("b", vec![pod("b-old", "old", true, false)]),
            ("c", vec![pod("c-old", "old", true, false)]),
        ]);
        let plan = rolling_update(&np, 0, 1, CUR, 0, Timestamp::now());
        assert_eq!(plan.delete, vec!["a-old".to_string()]);
        let plan = rolling_update(&np, 0, 2, CUR, 0, Timestamp::now());
        assert_eq!(plan.delete.len(), 2);
        // A node whose old pod is terminating (and whose new pod is not there yet) uses the
        // only unavailable slot.
        let np = nodes(vec![
            ("a", vec![pod("a-old", "old", true, true)]),
            ("b", vec![pod("b-old", "old", true, false)]),
        ]);
        assert!(rolling_update(&np, 0, 1, CUR, 0, Timestamp::now()).is_empty());
        // A new pod not ready yet also counts.
        let np = nodes(vec![
            ("a", vec![pod("a-new", "new", false, false)]),
            ("b", vec![pod("b-old", "old", true, false)]),
        ]);
        assert!(rolling_update(&np, 0, 1, CUR, 0, Timestamp::now()).is_empty());
        // Unavailable old pods are replaced regardless.
        let np = nodes(vec![
            ("a", vec![pod("a-new", "new", false, false)]),
            ("b", vec![pod("b-old", "old", false, false)]),
        ]);
        assert_eq!(
            rolling_update(&np, 0, 1, CUR, 0, Timestamp::now()).delete,
            vec!["b-old".to_string()]
        );
    }

    #[test]
    fn surge_creates_first_then_deletes() {
        let np = nodes(vec![
            ("a", vec![pod("a-old", "old", true, false)]),
            ("b", vec![pod("b-old", "old", true, false)]),
        ]);
        let plan = rolling_update(&np, 1, 0, CUR, 0, Timestamp::now());
        assert_eq!(plan.create_on, vec!["a".to_string()]);
        assert!(plan.delete.is_empty());
        let np = nodes(vec![
            (
                "a",
                vec![
                    pod("a-old", "old", true, false),
                    pod("a-new", "new", false, false),
                ],
            ),
            ("b", vec![pod("b-old", "old", true, false)]),
        ]);
        assert!(rolling_update(&np, 1, 0, CUR, 0, Timestamp::now()).is_empty());
        let np = nodes(vec![
            (
                "a",
                vec![
                    pod("a-old", "old", true, false),
                    pod("a-new", "new", true, false),
                ],
            ),
            ("b", vec![pod("b-old", "old", true, false)]),
        ]);
        let plan = rolling_update(&np, 1, 0, CUR, 0, Timestamp::now());
        assert_eq!(plan.delete, vec!["a-old".to_string()]);
        assert_eq!(plan.create_on, vec!["b".to_string()]);
    }

    #[test]
    fn percentages_round_up() {
        assert_eq!(scaled(Some(&IntOrString::String("10%".into())), 3, 1), 1);
        assert_eq!(scaled(Some(&IntOrString::String("50%".into())), 3, 1), 2);
        assert_eq!(scaled(Some(&IntOrString::Int(0)), 3, 1), 0);
        assert_eq!(scaled(None, 3, 1), 1);
    }

    #[test]
    fn nodes_keep_one_pod() {
        let yes = Eligibility {
            should_run: true,
            should_continue_running: true,
        };
        let one = Rollout {
            current: CUR,
            surge: false,
            min_ready_seconds: 0,
            now: Timestamp::now(),
        };
        let surge = Rollout { surge: true, ..one };
        let mut plan = Plan::default();
        node_plan("a", yes, &[], one, &mut plan);
        assert_eq!(plan.create_on, vec!["a".to_string()]);

        let mut plan = Plan::default();
        let two = vec![pod("x", "new", true, false), pod("y", "new", true, false)];
        node_plan("a", yes, &two, one, &mut plan);
        assert_eq!(plan.delete, vec!["y".to_string()]);

        let mut plan = Plan::default();
        let no = Eligibility {
            should_run: false,
            should_continue_running: false,
        };
        node_plan("a", no, &two, one, &mut plan);
        assert_eq!(plan.delete.len(), 2);

        // With surge: a ready old pod stays beside a new one that is not available yet.
        let mut plan = Plan::default();
        let pair = vec![
            pod("old", "old", true, false),
            pod("new", "new", false, false),
        ];
        node_plan("a", yes, &pair, surge, &mut plan);
        assert!(plan.is_empty());
        let mut plan = Plan::default();
        let pair = vec![
            pod("old", "old", true, false),
            pod("new", "new", true, false),
        ];
        node_plan("a", yes, &pair, surge, &mut plan);
        assert_eq!(plan.delete, vec!["old".to_string()]);

        // Terminating pods are waited for.
        let mut plan = Plan::default();
        node_plan("a", yes, &[pod("x", "old", true, true)], one, &mut plan);
        assert!(plan.is_empty());
    }
}
