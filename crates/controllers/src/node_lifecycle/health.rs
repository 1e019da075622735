//! A node's health as the node lifecycle controller writes it: the conditions it sets to
//! `Unknown` when the kubelet went silent, and the not-ready / unreachable taints that follow
//! the Ready condition (Kubernetes' `tryUpdateNodeHealth` and `doNoExecuteTaintingPass`).

use k8s_openapi::api::core::v1::{Node, NodeCondition, Taint};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

/// Taint of a node whose Ready condition is False.
pub const TAINT_NOT_READY: &str = "node.kubernetes.io/not-ready";
/// Taint of a node whose Ready condition is Unknown.
pub const TAINT_UNREACHABLE: &str = "node.kubernetes.io/unreachable";

/// The conditions the kubelet posts and the controller declares Unknown when it stops.
const KUBELET_CONDITIONS: [&str; 4] = ["Ready", "MemoryPressure", "DiskPressure", "PIDPressure"];

/// The Ready condition's status (`True`, `False`, `Unknown`), if the node has one.
pub fn ready_status(node: &Node) -> Option<&str> {
    node.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready")
        .map(|c| c.status.as_str())
}

/// The node's conditions with every kubelet condition `Unknown`; `None` when they already
/// are. Heartbeat times stay as the kubelet last posted them: they are what tells the
/// kubelet's last word from now.
pub fn unknown_conditions(node: &Node, now: &Time) -> Option<Vec<NodeCondition>> {
    let mut conditions = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default();
    let mut changed = false;
    for ty in KUBELET_CONDITIONS {
        match conditions.iter_mut().find(|c| c.type_ == ty) {
            Some(c) if c.status == "Unknown" => {}
            Some(c) => {
                c.status = "Unknown".into();
                c.reason = Some("NodeStatusUnknown".into());
                c.message = Some("Kubelet stopped posting node status.".into());
                c.last_transition_time = Some(now.clone());
                changed = true;
            }
            None => {
                conditions.push(NodeCondition {
                    type_: ty.into(),
                    status: "Unknown".into(),
                    reason: Some("NodeStatusNeverUpdated".into()),
                    message: Some("Kubelet never posted node status.".into()),
                    last_heartbeat_time: node.metadata.creation_timestamp.clone(),
                    last_transition_time: Some(now.clone()),
                });
                changed = true;
            }
        }
    }
    changed.then_some(conditions)
}

fn is_managed(t: &Taint) -> bool {
    (t.key == TAINT_NOT_READY || t.key == TAINT_UNREACHABLE)
        && (t.effect == "NoSchedule" || t.effect == "NoExecute")
}

/// The node's taints with the not-ready / unreachable ones matching a Ready condition of
/// `ready`; `None` when nothing changes (or, without a Ready condition, nothing is known
/// yet). Taints that stay keep their `timeAdded`; new ones get `now`.
pub fn desired_taints(current: &[Taint], ready: Option<&str>, now: &Time) -> Option<Vec<Taint>> {
    let key = match ready? {
        "True" => None,
        "False" => Some(TAINT_NOT_READY),
        _ => Some(TAINT_UNREACHABLE),
    };
    let wanted = |t: &Taint| Some(t.key.as_str()) == key;
    let mut next: Vec<Taint> = current
        .iter()
        .filter(|t| !is_managed(t) || wanted(t))
        .cloned()
        .collect();
    if let Some(key) = key {
        for effect in ["NoSchedule", "NoExecute"] {
            if !next.iter().any(|t| t.key == key && t.effect == effect) {
                next.push(Taint {
                    key: key.into(),
                    effect: effect.into(),
                    value: None,
                    time_added: Some(now.clone()),
                });
            }
        }
    }
    (next != current).then_some(next)
}

pub fn taints(node: &Node) -> &[Taint] {
    node.spec
        .as_ref()
        .and_then(|s| s.taints.as_deref())
        .unwrap_or(&[])
}

/// Whether the node carries the unreachable NoExecute taint: its kubelet is gone, so pods
/// deleted there will never be confirmed by it.
pub fn is_unreachable(node: &Node) -> bool {
    taints(node)
        .iter()
        .any(|t| t.key == TAINT_UNREACHABLE && t.effect == "NoExecute")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn now() -> Time {
        crate::events::now_time()
    }

    fn node(conditions: serde_json::Value) -> Node {
        serde_json::from_value(json!({
            "metadata": {"name": "n", "creationTimestamp": "2024-01-01T00:00:00Z"},
            "status": {"conditions": conditions},
        }))
        .expect("node")
    }

    #[test]
    fn silent_kubelet_makes_conditions_unknown() {
        let n = node(json!([
            {"type": "Ready", "status": "True", "reason": "KubeletReady",
                "lastHeartbeatTime": "2024-01-01T00:00:10Z"},
            {"type": "MemoryPressure", "status": "False"},
            {"type": "NetworkUnavailable", "status": "False"},
        ]));
        let c = unknown_conditions(&n, &now()).expect("changed");
        let ready = c.iter().find(|c| c.type_ == "Ready").expect("ready");
        assert_eq!(ready.status, "Unknown");
        assert_eq!(ready.reason.as_deref(), Some("NodeStatusUnknown"));
        assert_eq!(
            ready.message.as_deref(),
            Some("Kubelet stopped posting node status.")
        );
        // The last heartbeat stays.
        assert_eq!(
            ready.last_heartbeat_time.as_ref().map(|t| t.0.to_string()),
            Some("2024-01-01T00:00:10Z".to_string())
        );
        let disk = c.iter().find(|c| c.type_ == "DiskPressure").expect("added");
        assert_eq!(disk.reason.as_deref(), Some("NodeStatusNeverUpdated"));
        // Conditions the kubelet does not own are left alone.
        let net = c
            .iter()
            .find(|c| c.type_ == "NetworkUnavailable")
            .expect("kept");
        assert_eq!(net.status, "False");
        // Already unknown: nothing to write.
        let again = node(serde_json::to_value(&c).expect("json"));
        assert_eq!(unknown_conditions(&again, &now()), None);
    }

    #[test]
    fn taints_follow_ready() {
        let t = now();
        let unreachable = desired_taints(&[], Some("Unknown"), &t).expect("added");
        assert_eq!(unreachable.len(), 2);
        assert!(unreachable.iter().all(|x| x.key == TAINT_UNREACHABLE));
        assert!(unreachable.iter().all(|x| x.time_added.is_some()));
        assert_eq!(desired_taints(&unreachable, Some("Unknown"), &t), None);
        // Not ready swaps unreachable for not-ready.
        let not_ready = desired_taints(&unreachable, Some("False"), &t).expect("swapped");
        assert!(not_ready.iter().all(|x| x.key == TAINT_NOT_READY));
        // Ready clears them and keeps everything else.
        let mut with_user = not_ready.clone();
        with_user.push(Taint {
            key: "dedicated".into(),
            effect: "NoSchedule".into(),
            ..Taint::default()
        });
        let cleared = desired_taints(&with_user, Some("True"), &t).expect("cleared");
        assert_eq!(cleared.len(), 1);
        assert_eq!(cleared[0].key, "dedicated");
        assert_eq!(desired_taints(&cleared, Some("True"), &t), None);
        assert_eq!(desired_taints(&[], None, &t), None);
    }
}
