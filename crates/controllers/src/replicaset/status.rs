//! A ReplicaSet's status from the pods it owns, as Kubernetes' `calculateStatus` computes it.

use std::sync::Arc;

use k8s_openapi::api::apps::v1::{ReplicaSet, ReplicaSetCondition, ReplicaSetStatus};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::{SignedDuration, Timestamp};

use crate::events::now_time;
use crate::pods;

/// The condition type a failed create or delete sets.
pub const REPLICA_FAILURE: &str = "ReplicaFailure";

/// Zero as absent, as Kubernetes serializes these `omitempty` counters.
fn nonzero(n: usize) -> Option<i32> {
    (n > 0).then(|| i32::try_from(n).unwrap_or(i32::MAX))
}

/// The status `rs` should have given the active pods it owns. `manage_error` is the failure
/// of this sync's creates or deletes, if any.
pub fn calculate(
    rs: &ReplicaSet,
    owned: &[Arc<Pod>],
    manage_error: Option<String>,
    now: Timestamp,
) -> ReplicaSetStatus {
    let min_ready = rs.spec.min_ready_seconds.unwrap_or(0);
    let template_labels = rs
        .spec
        .template
        .as_ref()
        .and_then(|t| t.metadata.as_ref())
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    let fully_labeled = owned
        .iter()
        .filter(|p| {
            let labels = p.metadata.labels.as_ref();
            template_labels
                .iter()
                .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
        })
        .count();
    let ready = owned.iter().filter(|p| pods::is_ready(p)).count();
    let available = owned
        .iter()
        .filter(|p| pods::is_available(p, min_ready, now))
        .count();

    let mut conditions = rs
        .status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default();
    let has_failure = conditions
        .iter()
        .any(|c| c.type_.as_deref() == Some(REPLICA_FAILURE));
    match manage_error {
        Some(message) if !has_failure => {
            let want = usize::try_from(rs.spec.replicas.unwrap_or(1)).unwrap_or(0);
            let reason = match owned.len().cmp(&want) {
                std::cmp::Ordering::Less => "FailedCreate",
                std::cmp::Ordering::Greater => "FailedDelete",
                std::cmp::Ordering::Equal => "",
            };
            conditions.push(ReplicaSetCondition {
                type_: Some(REPLICA_FAILURE.to_string()),
                status: Some("True".to_string()),
                reason: Some(reason.to_string()),
                message: Some(message),
                last_transition_time: Some(now_time()),
            });
        }
        None if has_failure => {
            conditions.retain(|c| c.type_.as_deref() != Some(REPLICA_FAILURE));
        }
        _ => {}
    }

    ReplicaSetStatus {
        replicas: i32::try_from(owned.len()).unwrap_or(i32::MAX),
        fully_labeled_replicas: nonzero(fully_labeled),
        ready_replicas: nonzero(ready),
        available_replicas: nonzero(available),
        observed_generation: rs.metadata.generation,
        conditions: (!conditions.is_empty()).then_some(conditions),
        terminating_replicas: None,
    }
}

/// How long until the next owned pod that is ready but not yet available becomes available
/// (plus a second: availability is "ready for longer than", at second resolution).
pub fn next_availability_check(
    rs: &ReplicaSet,
    owned: &[Arc<Pod>],
    now: Timestamp,
) -> Option<std::time::Duration> {
    let min_ready = rs.spec.min_ready_seconds.unwrap_or(0);
    if min_ready <= 0 {
        return None;
    }
    owned
        .iter()
        .filter(|p| !pods::is_available(p, min_ready, now))
        .filter_map(|p| pods::available_at(p, min_ready))
        .min()
        .map(|at| {
            let wait = now.duration_until(at) + SignedDuration::from_secs(1);
            std::time::Duration::try_from(wait).unwrap_or(std::time::Duration::from_secs(1))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::ReplicaSetSpec;
    use k8s_openapi::api::core::v1::{PodCondition, PodStatus, PodTemplateSpec};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};

    fn rs(min_ready: i32) -> ReplicaSet {
        ReplicaSet {
            metadata: ObjectMeta {
                generation: Some(3),
                ..ObjectMeta::default()
            },
            spec: ReplicaSetSpec {
                replicas: Some(3),
                min_ready_seconds: Some(min_ready),
                template: Some(PodTemplateSpec {
                    metadata: Some(ObjectMeta {
                        labels: Some([("app".to_string(), "x".to_string())].into()),
                        ..ObjectMeta::default()
                    }),
                    spec: None,
                }),
                ..ReplicaSetSpec::default()
            },
            status: None,
        }
    }

    fn pod(labelled: bool, ready_at: Option<Timestamp>) -> Arc<Pod> {
        Arc::new(Pod {
            metadata: ObjectMeta {
                labels: labelled.then(|| [("app".to_string(), "x".to_string())].into()),
                ..ObjectMeta::default()
            },
            spec: None,
            status: Some(PodStatus {
                conditions: ready_at.map(|t| {
                    vec![PodCondition {
                        type_: "Ready".into(),
                        status: "True".into(),
                        last_transition_time: Some(Time(t)),
                        ..PodCondition::default()
                    }]
                }),
                ..PodStatus::default()
            }),
        })
    }

    #[test]
    fn counts_and_min_ready_seconds() {
        let now = Timestamp::now();
        let long_ago = now - SignedDuration::from_secs(60);
        let just_now = now - SignedDuration::from_secs(2);
        let owned = vec![
            pod(true, Some(long_ago)),
            pod(false, Some(just_now)),
            pod(true, None),
        ];
        let s = calculate(&rs(10), &owned, None, now);
        assert_eq!(s.replicas, 3);
        assert_eq!(s.fully_labeled_replicas, Some(2));
        assert_eq!(s.ready_replicas, Some(2));
        assert_eq!(s.available_replicas, Some(1));
        assert_eq!(s.observed_generation, Some(3));
        let wait = next_availability_check(&rs(10), &owned, now).map(|d| d.as_secs());
        assert_eq!(wait, Some(9));
        let s0 = calculate(&rs(0), &owned, None, now);
        assert_eq!(s0.available_replicas, Some(2));
        assert_eq!(next_availability_check(&rs(0), &owned, now), None);
    }

    #[test]
    fn replica_failure_condition_comes_and_goes() {
        let now = Timestamp::now();
        let mut r = rs(0);
        let s = calculate(&r, &[], Some("quota".into()), now);
        let cond = &s.conditions.clone().unwrap_or_default()[0];
        assert_eq!(cond.reason.as_deref(), Some("FailedCreate"));
        assert_eq!(s.ready_replicas, None);
        r.status = Some(s);
        let s = calculate(&r, &[], None, now);
        assert_eq!(s.conditions, None);
    }
}
