//! Which pods a ReplicaSet deletes first when it scales down: Kubernetes'
//! `ActivePodsWithRanks` order, so the pods that cost least to lose go first.
//!
//! 1. unscheduled before scheduled;
//! 2. Pending before Unknown before Running;
//! 3. not ready before ready;
//! 4. lower `controller.kubernetes.io/pod-deletion-cost` first;
//! 5. pods sharing their node with more related pods first (spreading what stays);
//! 6. ready for less time first;
//! 7. more container restarts first;
//! 8. newer first.
//!
//! Kubernetes compares the ages in 6 and 8 on a logarithmic scale with a random tie-break
//! (`LogarithmicScaleDown`); plain newest-first is the same order for pods of clearly different
//! ages and keeps the choice deterministic.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;

use crate::pods;

const DELETION_COST: &str = "controller.kubernetes.io/pod-deletion-cost";

fn phase_ordinal(pod: &Pod) -> u8 {
    match pods::phase(pod) {
        "Unknown" => 1,
        "Running" => 2,
        // Pending and anything unexpected rank lowest, as in Kubernetes' map lookup.
        _ => 0,
    }
}

fn deletion_cost(pod: &Pod) -> i32 {
    pod.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(DELETION_COST))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Orders two optional times so that a missing one comes first, then the later one
/// (Kubernetes' `afterOrZero`). `None` when they are equal.
fn later_or_missing_first(a: Option<Timestamp>, b: Option<Timestamp>) -> Option<Ordering> {
    if a == b {
        return None;
    }
    Some(match (a, b) {
        (None, _) => Ordering::Less,
        (_, None) => Ordering::Greater,
        (Some(a), Some(b)) => b.cmp(&a),
    })
}

/// `Less` means `a` is deleted before `b`. `rank_*` is the number of related active pods on
/// the pod's node.
pub fn compare(a: &Pod, rank_a: usize, b: &Pod, rank_b: usize) -> Ordering {
    let (node_a, node_b) = (pods::node_name(a), pods::node_name(b));
    if node_a != node_b && (node_a.is_empty() || node_b.is_empty()) {
        return if node_a.is_empty() {
            Ordering::Less
        } else {
            Ordering::Greater
        };
    }
    let (pa, pb) = (phase_ordinal(a), phase_ordinal(b));
    if pa != pb {
        return pa.cmp(&pb);
    }
    let (ready_a, ready_b) = (pods::ready_since(a), pods::ready_since(b));
    if ready_a.is_some() != ready_b.is_some() {
        return if ready_a.is_none() {
            Ordering::Less
        } else {
            Ordering::Greater
        };
    }
    let (ca, cb) = (deletion_cost(a), deletion_cost(b));
    if ca != cb {
        return ca.cmp(&cb);
    }
    if rank_a != rank_b {
        return rank_b.cmp(&rank_a);
    }
    if let (Some(ta), Some(tb)) = (ready_a, ready_b)
        && let Some(o) = later_or_missing_first(ta, tb)
    {
        return o;
    }
    let (ra, rb) = (pods::max_restarts(a), pods::max_restarts(b));
    if ra != rb {
        return rb.cmp(&ra);
    }
    let created = |p: &Pod| p.metadata.creation_timestamp.as_ref().map(|t| t.0);
    later_or_missing_first(created(a), created(b)).unwrap_or(Ordering::Equal)
}

/// The `n` pods of `owned` to delete first. `related` are the active pods of this ReplicaSet
/// and its siblings (same owning Deployment), used to find doubled-up nodes.
pub fn pods_to_delete(owned: &[Arc<Pod>], related: &[Arc<Pod>], n: usize) -> Vec<Arc<Pod>> {
    if n >= owned.len() {
        return owned.to_vec();
    }
    let mut on_node: HashMap<&str, usize> = HashMap::new();
    for pod in related.iter().filter(|p| pods::is_active(p)) {
        *on_node.entry(pods::node_name(pod)).or_default() += 1;
    }
    let mut ranked: Vec<(usize, &Arc<Pod>)> = owned
        .iter()
        .map(|p| (on_node.get(pods::node_name(p)).copied().unwrap_or(0), p))
        .collect();
    ranked.sort_by(|(ra, a), (rb, b)| compare(a, *ra, b, *rb));
    ranked.into_iter().take(n).map(|(_, p)| p.clone()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{ContainerStatus, PodCondition, PodSpec, PodStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
    use proptest::prelude::*;

    #[derive(Clone, Debug)]
    struct P {
        node: Option<&'static str>,
        phase: &'static str,
        ready_at: Option<i64>,
        restarts: i32,
        created: i64,
        cost: i32,
    }

    fn t(s: i64) -> Time {
        Time(Timestamp::from_second(1_700_000_000 + s).unwrap_or(Timestamp::UNIX_EPOCH))
    }

    fn pod(name: &str, p: &P) -> Arc<Pod> {
        let mut annotations = std::collections::BTreeMap::new();
        if p.cost != 0 {
            annotations.insert(DELETION_COST.to_string(), p.cost.to_string());
        }
        Arc::new(Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                creation_timestamp: Some(t(p.created)),
                annotations: Some(annotations),
                ..ObjectMeta::default()
            },
            spec: Some(PodSpec {
                node_name: p.node.map(str::to_string),
                ..PodSpec::default()
            }),
            status: Some(PodStatus {
                phase: Some(p.phase.into()),
                conditions: p.ready_at.map(|at| {
                    vec![PodCondition {
                        type_: "Ready".into(),
                        status: "True".into(),
                        last_transition_time: Some(t(at)),
                        ..PodCondition::default()
                    }]
                }),
                container_statuses: Some(vec![ContainerStatus {
                    name: "c".into(),
                    restart_count: p.restarts,
                    ..ContainerStatus::default()
                }]),
                ..PodStatus::default()
            }),
        })
    }

    fn base() -> P {
        P {
            node: Some("n1"),
            phase: "Running",
            ready_at: Some(100),
            restarts: 0,
            created: 0,
            cost: 0,
        }
    }

    fn first(pods: &[Arc<Pod>]) -> String {
        pods_to_delete(pods, pods, 1)[0]
            .metadata
            .name
            .clone()
            .unwrap_or_default()
    }

    #[test]
    fn each_rule_in_turn() {
        let ready = pod("ready", &base());
        let unscheduled = pod(
            "unscheduled",
            &P {
                node: None,
                phase: "Pending",
                ready_at: None,
                ..base()
            },
        );
        let pending = pod(
            "pending",
            &P {
                phase: "Pending",
                ready_at: None,
                ..base()
            },
        );
        let not_ready = pod(
            "not-ready",
            &P {
                ready_at: None,
                ..base()
            },
        );
        let restarted = pod(
            "restarted",
            &P {
                restarts: 3,
                ..base()
            },
        );
        let newer = pod(
            "newer",
            &P {
                created: 50,
                ..base()
            },
        );
        let recently_ready = pod(
            "recently-ready",
            &P {
                ready_at: Some(200),
                ..base()
            },
        );
        let cheap = pod(
            "cheap",
            &P {
                cost: -10,
                ..base()
            },
        );
        assert_eq!(
            first(&[ready.clone(), unscheduled.clone(), pending.clone()]),
            "unscheduled"
        );
        assert_eq!(
            first(&[ready.clone(), not_ready.clone(), pending.clone()]),
            "pending"
        );
        assert_eq!(first(&[ready.clone(), not_ready.clone()]), "not-ready");
        assert_eq!(
            first(&[ready.clone(), cheap.clone(), not_ready.clone()]),
            "not-ready"
        );
        assert_eq!(first(&[ready.clone(), cheap.clone()]), "cheap");
        assert_eq!(
            first(&[ready.clone(), recently_ready.clone(), restarted.clone()]),
            "recently-ready"
        );
        assert_eq!(
            first(&[ready.clone(), restarted.clone(), newer.clone()]),
            "restarted"
        );
        assert_eq!(first(&[ready.clone(), newer.clone()]), "newer");
    }

    #[test]
    fn doubled_up_nodes_go_first() {
        let a = pod("a", &base());
        let b = pod(
            "b",
            &P {
                node: Some("n2"),
                ..base()
            },
        );
        let c = pod(
            "c",
            &P {
                node: Some("n2"),
                created: -5,
                ..base()
            },
        );
        // n2 holds two related pods, n1 one: the doubled-up n2 gives one up first.
        let owned = vec![a.clone(), b.clone(), c.clone()];
        let victims = pods_to_delete(&owned, &owned, 1);
        assert_eq!(victims[0].metadata.name.as_deref(), Some("b"));
    }

    #[test]
    fn deleting_everything_needs_no_order() {
        let owned = vec![pod("a", &base()), pod("b", &base())];
        assert_eq!(pods_to_delete(&owned, &owned, 5).len(), 2);
    }

    fn arb_pod() -> impl Strategy<Value = P> {
        (
            prop::option::of(prop_oneof![Just("n1"), Just("n2")]),
            prop_oneof![Just("Pending"), Just("Running"), Just("Unknown")],
            prop::option::of(0i64..5),
            0i32..3,
            0i64..5,
            -1i32..2,
        )
            .prop_map(|(node, phase, ready_at, restarts, created, cost)| P {
                node,
                phase,
                ready_at,
                restarts,
                created,
                cost,
            })
    }

    proptest! {
        /// The order is a total preorder (so sorting is well defined), and a not-ready pod is
        /// never kept while a ready pod of the same node placement and phase goes.
        #[test]
        fn order_is_consistent(ps in prop::collection::vec(arb_pod(), 1..8), n in 0usize..8) {
            let owned: Vec<Arc<Pod>> = ps.iter().enumerate().map(|(i, p)| pod(&format!("p{i}"), p)).collect();
            for a in &owned {
                prop_assert_eq!(compare(a, 0, a, 0), Ordering::Equal);
                for b in &owned {
                    prop_assert_eq!(compare(a, 0, b, 0), compare(b, 0, a, 0).reverse());
                    for c in &owned {
                        if compare(a, 0, b, 0) != Ordering::Greater && compare(b, 0, c, 0) != Ordering::Greater {
                            prop_assert_ne!(compare(a, 0, c, 0), Ordering::Greater);
                        }
                    }
                }
            }
            let victims = pods_to_delete(&owned, &[], n);
            prop_assert_eq!(victims.len(), n.min(owned.len()));
            for kept in owned.iter().filter(|p| !victims.iter().any(|v| Arc::ptr_eq(v, p))) {
                for v in &victims {
                    prop_assert_ne!(compare(kept, 0, v, 0), Ordering::Less);
                }
            }
        }
    }
}
