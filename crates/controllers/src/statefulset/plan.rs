//! What one StatefulSet sync does, decided from the cache without side effects, after
//! Kubernetes' `updateStatefulSet`:
//!
//! 1. every ordinal in range gets its pod (failed ones are replaced); with `OrderedReady`
//!    the walk stops at the first pod that is missing, terminating or not yet Running and
//!    Ready, so ordinal N is created only once 0..N-1 serve;
//! 2. pods out of range are deleted from the highest ordinal down (one at a time, each
//!    waited for, with `OrderedReady`);
//! 3. with `RollingUpdate`, pods at or above the partition that run an old revision are
//!    deleted (so step 1 re-creates them from the update revision) from the highest ordinal
//!    down, no more than `maxUnavailable` replicas unavailable at once.
//!
//! The actions come out in the order they are to be executed; execution stops at the first
//! failure.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::apps::v1::{StatefulSet, StatefulSetStatus};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::jiff::Timestamp;

use super::identity::{self, ordinal_of};
use crate::pods;

/// Which of the set's two revisions a new pod is made from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Which {
    Current,
    Update,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Create the pod at this ordinal (and its claims first).
    Create(i32, Which),
    /// Delete this pod (by name).
    Delete(String),
    /// Give the existing pod at this ordinal its identity labels and claims.
    Repair(i32),
}

pub fn is_terminating(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_some()
}

/// Running with Ready True.
pub fn is_running_and_ready(pod: &Pod) -> bool {
    pods::phase(pod) == "Running" && pods::is_ready(pod)
}

/// Running, Ready for `minReadySeconds`, not terminating.
pub fn is_healthy(pod: &Pod, min_ready_seconds: i32, now: Timestamp) -> bool {
    is_running_and_ready(pod)
        && !is_terminating(pod)
        && pods::is_available(pod, min_ready_seconds, now)
}

/// The set's revisions by name.
#[derive(Clone, Copy, Debug)]
pub struct Revisions<'a> {
    pub current: &'a str,
    pub update: &'a str,
}

fn partition(set: &StatefulSet) -> Option<i32> {
    set.spec
        .update_strategy
        .as_ref()
        .and_then(|s| s.rolling_update.as_ref())
        .map(|r| r.partition.unwrap_or(0))
}

fn is_on_delete(set: &StatefulSet) -> bool {
    set.spec
        .update_strategy
        .as_ref()
        .and_then(|s| s.type_.as_deref())
        == Some("OnDelete")
}

/// The revision a pod created now at `ordinal` gets (`newVersionedStatefulSetPod`): below
/// the partition the current one, otherwise the update one.
pub fn revision_for(set: &StatefulSet, ordinal: i32) -> Which {
    let start = identity::start_ordinal(set);
    let current_replicas = set
        .status
        .as_ref()
        .and_then(|s| s.current_replicas)
        .unwrap_or(0);
    let below = match partition(set) {
        Some(p) => ordinal < start.saturating_add(p),
        // A RollingUpdate without parameters keeps the current revision for as many pods
        // as currently run it.
        None => !is_on_delete(set) && ordinal < start.saturating_add(current_replicas),
    };
    if below { Which::Current } else { Which::Update }
}

/// Most replicas unavailable at once during a rolling update (at least one).
fn max_unavailable(set: &StatefulSet) -> usize {
    let replicas = identity::replicas(set);
    let value = set
        .spec
        .update_strategy
        .as_ref()
        .and_then(|s| s.rolling_update.as_ref())
        .and_then(|r| r.max_unavailable.as_ref());
    let n = match value {
        None => 1,
        Some(IntOrString::Int(i)) => *i,
        Some(IntOrString::String(s)) => {
            let pct: i64 = s.trim_end_matches('%').parse().unwrap_or(0);
            i32::try_from((pct * i64::from(replicas) + 99) / 100).unwrap_or(i32::MAX)
        }
    };
    usize::try_from(n.max(1)).unwrap_or(1)
}

/// The pod of each ordinal in range, and the pods out of range (highest ordinal first).
type Split = (BTreeMap<i32, Arc<Pod>>, Vec<(i32, Arc<Pod>)>);

fn split(set: &StatefulSet, owned: &[Arc<Pod>]) -> Split {
    let mut replicas = BTreeMap::new();
    let mut condemned = Vec::new();
    for pod in owned {
        let Some(ordinal) = ordinal_of(set, pod) else {
            continue;
        };
        if identity::in_range(set, ordinal) {
            replicas.insert(ordinal, pod.clone());
        } else {
            condemned.push((ordinal, pod.clone()));
        }
    }
    condemned.sort_by_key(|c| std::cmp::Reverse(c.0));
    (replicas, condemned)
}

/// The actions of one sync over the set's pods `owned`.
pub fn plan(
    set: &StatefulSet,
    owned: &[Arc<Pod>],
    revisions: Revisions<'_>,
    now: Timestamp,
) -> Vec<Action> {
    let mut actions = Vec::new();
    if set.metadata.deletion_timestamp.is_some() {
        return actions;
    }
    let monotonic = set.spec.pod_management_policy.as_deref() != Some("Parallel");
    let min_ready = set.spec.min_ready_seconds.unwrap_or(0);
    let start = identity::start_ordinal(set);
    let end = start.saturating_add(identity::replicas(set));
    let (replicas, condemned) = split(set, owned);

    // The first unhealthy pod, in range from the lowest ordinal, then out of range from the
    // lowest: a set blocked on it may still delete it.
    let first_unhealthy = (start..end)
        .filter_map(|o| replicas.get(&o))
        .chain(condemned.iter().rev().map(|(_, p)| p))
        .find(|p| !is_healthy(p, min_ready, now))
        .and_then(|p| p.metadata.name.clone());

    for ordinal in start..end {
        let Some(pod) = replicas.get(&ordinal) else {
            actions.push(Action::Create(ordinal, revision_for(set, ordinal)));
            if monotonic {
                return actions;
            }
            continue;
        };
        if pods::is_terminal(pod) && !is_terminating(pod) {
            // A finished pod never runs again: replace it under the same name.
            actions.push(Action::Delete(
                pod.metadata.name.clone().unwrap_or_default(),
            ));
            actions.push(Action::Create(ordinal, revision_for(set, ordinal)));
            if monotonic {
                return actions;
            }
            continue;
        }
        if is_terminating(pod) || !is_running_and_ready(pod) {
            if monotonic {
                return actions;
            }
            continue;
        }
        if monotonic && !pods::is_available(pod, min_ready, now) {
            return actions;
        }
        if !identity::identity_matches(set, pod, ordinal)
            || !identity::storage_matches(set, pod, ordinal)
        {
            actions.push(Action::Repair(ordinal));
        }
    }

    for (_, pod) in &condemned {
        if is_terminating(pod) {
            if monotonic {
                return actions;
            }
            continue;
        }
        if monotonic && !is_running_and_ready(pod) && pod.metadata.name != first_unhealthy {
            return actions;
        }
        actions.push(Action::Delete(
            pod.metadata.name.clone().unwrap_or_default(),
        ));
        if monotonic {
            return actions;
        }
    }

    if is_on_delete(set) {
        return actions;
    }
    let unavailable = (start..end)
        .filter(|o| {
            replicas
                .get(o)
                .is_none_or(|p| !is_healthy(p, min_ready, now))
        })
        .count();
    let budget = max_unavailable(set).saturating_sub(unavailable);
    let update_min = start.saturating_add(partition(set).unwrap_or(0));
    let mut deleted = 0;
    for ordinal in (update_min..end).rev() {
        if deleted >= budget {
            break;
        }
        let Some(pod) = replicas.get(&ordinal) else {
            continue;
        };
        if identity::revision_of(pod) != revisions.update && !is_terminating(pod) {
            actions.push(Action::Delete(
                pod.metadata.name.clone().unwrap_or_default(),
            ));
            deleted += 1;
        }
    }
    actions
}

fn count(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// The status for the set's pods `owned`. Once every replica runs the update revision and
/// is ready, the update revision becomes the current one (`completeRollingUpdate`).
pub fn status(
    set: &StatefulSet,
    owned: &[Arc<Pod>],
    revisions: Revisions<'_>,
    collision_count: Option<i32>,
    now: Timestamp,
) -> StatefulSetStatus {
    let min_ready = set.spec.min_ready_seconds.unwrap_or(0);
    let members: Vec<&Arc<Pod>> = owned
        .iter()
        .filter(|p| ordinal_of(set, p).is_some())
        .collect();
    let ready: Vec<&&Arc<Pod>> = members.iter().filter(|p| is_running_and_ready(p)).collect();
    let live = || members.iter().filter(|p| !is_terminating(p));
    let current = live()
        .filter(|p| identity::revision_of(p) == revisions.current)
        .count();
    let updated = live()
        .filter(|p| identity::revision_of(p) == revisions.update)
        .count();
    let mut status = StatefulSetStatus {
        available_replicas: Some(count(
            ready
                .iter()
                .filter(|p| pods::is_available(p, min_ready, now))
                .count(),
        )),
        collision_count,
        conditions: set.status.as_ref().and_then(|s| s.conditions.clone()),
        current_replicas: Some(count(current)),
        current_revision: Some(revisions.current.to_string()),
        observed_generation: set.metadata.generation,
        ready_replicas: Some(count(ready.len())),
        replicas: count(members.len()),
        update_revision: Some(revisions.update.to_string()),
        updated_replicas: Some(count(updated)),
    };
    let want = identity::replicas(set);
    if !is_on_delete(set)
        && status.updated_replicas == Some(want)
        && status.ready_replicas == Some(want)
        && status.replicas == want
    {
        status.current_replicas = status.updated_replicas;
        status.current_revision = status.update_revision.clone();
    }
    status
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn set(extra: Value) -> StatefulSet {
        let mut s = json!({
            "metadata": {"name": "web", "namespace": "default", "uid": "u", "generation": 1},
            "spec": {
                "replicas": 3,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": []}},
                "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}},
            },
        });
        if let (Some(spec), Value::Object(extra)) = (s["spec"].as_object_mut(), extra) {
            spec.extend(extra);
        }
        serde_json::from_value(s).expect("set")
    }

    fn pod(ordinal: i32, revision: &str, ready: bool) -> Arc<Pod> {
        let name = format!("web-{ordinal}");
        Arc::new(
            serde_json::from_value(json!({
                "metadata": {"name": name, "namespace": "default", "labels": {
                    "app": "web", "controller-revision-hash": revision,
                    "statefulset.kubernetes.io/pod-name": name,
                    "apps.kubernetes.io/pod-index": ordinal.to_string()}},
                "spec": {"containers": []},
                "status": {"phase": "Running", "conditions": [
                    {"type": "Ready", "status": if ready { "True" } else { "False" }}]},
            }))
            .expect("pod"),
        )
    }

    fn deleting(p: Arc<Pod>) -> Arc<Pod> {
        let mut p = (*p).clone();
        p.metadata.deletion_timestamp = Some(crate::events::now_time());
        Arc::new(p)
    }

    const REV: Revisions<'static> = Revisions {
        current: "web-1",
        update: "web-1",
    };
    const UPDATE: Revisions<'static> = Revisions {
        current: "web-1",
        update: "web-2",
    };

    fn del(ordinal: i32) -> Action {
        Action::Delete(format!("web-{ordinal}"))
    }

    #[test]
    fn ordered_ready_creates_one_at_a_time() {
        let s = set(json!({}));
        let now = Timestamp::now();
        assert_eq!(
            plan(&s, &[], REV, now),
            vec![Action::Create(0, Which::Update)]
        );
        // web-0 exists but is not ready: wait.
        assert!(plan(&s, &[pod(0, "web-1", false)], REV, now).is_empty());
        assert_eq!(
            plan(&s, &[pod(0, "web-1", true)], REV, now),
            vec![Action::Create(1, Which::Update)]
        );
        // Parallel creates everything at once.
        let p = set(json!({"podManagementPolicy": "Parallel"}));
        assert_eq!(plan(&p, &[], REV, now).len(), 3);
    }

    #[test]
    fn ordered_scale_down_from_the_top() {
        let s = set(json!({"replicas": 1}));
        let now = Timestamp::now();
        let all = vec![
            pod(0, "web-1", true),
            pod(1, "web-1", true),
            pod(2, "web-1", true),
        ];
        assert_eq!(plan(&s, &all, REV, now), vec![del(2)]);
        let terminating = vec![
            pod(0, "web-1", true),
            pod(1, "web-1", true),
            deleting(pod(2, "web-1", true)),
        ];
        assert!(plan(&s, &terminating, REV, now).is_empty());
        let p = set(json!({"replicas": 1, "podManagementPolicy": "Parallel"}));
        assert_eq!(plan(&p, &all, REV, now), vec![del(2), del(1)]);
    }

    #[test]
    fn rolling_update_goes_down_to_the_partition() {
        let now = Timestamp::now();
        let s = set(json!({}));
        let old = vec![
            pod(0, "web-1", true),
            pod(1, "web-1", true),
            pod(2, "web-1", true),
        ];
        assert_eq!(plan(&s, &old, UPDATE, now), vec![del(2)]);
        // The updated top pod is not ready yet: nothing else goes.
        let mid = vec![
            pod(0, "web-1", true),
            pod(1, "web-1", true),
            pod(2, "web-2", false),
        ];
        assert!(plan(&s, &mid, UPDATE, now).is_empty());
        let mid = vec![
            pod(0, "web-1", true),
            pod(1, "web-1", true),
            pod(2, "web-2", true),
        ];
        assert_eq!(plan(&s, &mid, UPDATE, now), vec![del(1)]);
        // With a partition of 2 only web-2 is updated.
        let p = set(
            json!({"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 2}}}),
        );
        assert!(plan(&p, &mid, UPDATE, now).is_empty());
        assert_eq!(revision_for(&p, 1), Which::Current);
        assert_eq!(revision_for(&p, 2), Which::Update);
        // OnDelete never deletes for an update.
        let o = set(json!({"updateStrategy": {"type": "OnDelete"}}));
        assert!(plan(&o, &old, UPDATE, now).is_empty());
    }

    #[test]
    fn status_counts_and_completes() {
        let now = Timestamp::now();
        let s = set(json!({}));
        let mid = vec![
            pod(0, "web-1", true),
            pod(1, "web-2", true),
            pod(2, "web-2", false),
        ];
        let st = status(&s, &mid, UPDATE, None, now);
        assert_eq!(st.replicas, 3);
        assert_eq!(st.ready_replicas, Some(2));
        assert_eq!(st.current_replicas, Some(1));
        assert_eq!(st.updated_replicas, Some(2));
        assert_eq!(st.current_revision.as_deref(), Some("web-1"));
        let done = vec![
            pod(0, "web-2", true),
            pod(1, "web-2", true),
            pod(2, "web-2", true),
        ];
        let st = status(&s, &done, UPDATE, None, now);
        assert_eq!(st.current_revision.as_deref(), Some("web-2"));
        assert_eq!(st.current_replicas, Some(3));
    }
}
