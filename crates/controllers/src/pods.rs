//! Pod predicates the workload controllers share, with Kubernetes' `podutil` meanings.

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::{SignedDuration, Timestamp};

/// Not finished and not being deleted: a pod that counts towards a replica count.
pub fn is_active(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_none() && !is_terminal(pod)
}

/// Succeeded or Failed: the pod will never run again.
pub fn is_terminal(pod: &Pod) -> bool {
    matches!(phase(pod), "Succeeded" | "Failed")
}

pub fn phase(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("")
}

/// The time the Ready condition last turned True, if it is True now. A Ready condition without
/// a transition time reads as "ready since forever".
pub fn ready_since(pod: &Pod) -> Option<Option<Timestamp>> {
    let cond = pod
        .status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready")?;
    (cond.status == "True").then(|| cond.last_transition_time.as_ref().map(|t| t.0))
}

pub fn is_ready(pod: &Pod) -> bool {
    ready_since(pod).is_some()
}

/// When a pod becomes available: `minReadySeconds` after it became ready. `None` if it is not
/// ready; a ready pod with no transition time is available at once.
pub fn available_at(pod: &Pod, min_ready_seconds: i32) -> Option<Timestamp> {
    let since = ready_since(pod)?;
    if min_ready_seconds <= 0 {
        return Some(Timestamp::MIN);
    }
    match since {
        None => Some(Timestamp::MIN),
        Some(t) => Some(
            t.checked_add(SignedDuration::from_secs(i64::from(min_ready_seconds)))
                .unwrap_or(Timestamp::MAX),
        ),
    }
}

/// Ready for at least `min_ready_seconds` at `now` (Kubernetes: strictly longer than).
pub fn is_available(pod: &Pod, min_ready_seconds: i32, now: Timestamp) -> bool {
    match available_at(pod, min_ready_seconds) {
        None => false,
        Some(at) if min_ready_seconds <= 0 || at == Timestamp::MIN => true,
        Some(at) => at < now,
    }
}

/// The highest restart count among the pod's containers.
pub fn max_restarts(pod: &Pod) -> i32 {
    pod.status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .map(|cs| cs.iter().map(|c| c.restart_count).max().unwrap_or(0))
        .unwrap_or(0)
}

/// Whether a pod was assigned to a node.
pub fn is_scheduled(pod: &Pod) -> bool {
    pod.spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .is_some_and(|n| !n.is_empty())
}

pub fn node_name(pod: &Pod) -> &str {
    pod.spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .unwrap_or("")
}
