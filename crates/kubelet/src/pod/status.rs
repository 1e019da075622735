//! The pod's `status` as Kubernetes reports it, computed from the worker's view.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::SystemTime;

use k8s_openapi::api::core::v1::Pod;
use serde_json::{Value, json};

use super::container::{Record, State, Terminated};

/// `status.phase`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Pending,
    Running,
    Succeeded,
    Failed,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Pending => "Pending",
            Phase::Running => "Running",
            Phase::Succeeded => "Succeeded",
            Phase::Failed => "Failed",
        }
    }

    pub fn is_terminal(self) -> bool {
        matches!(self, Phase::Succeeded | Phase::Failed)
    }
}

/// RFC 3339 with second precision, as Kubernetes timestamps are.
pub fn rfc3339(t: SystemTime) -> String {
    jiff::Timestamp::try_from(t)
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// What the status is computed from.
pub struct Snapshot<'a> {
    pub pod: &'a Pod,
    pub phase: Phase,
    /// Every init container has completed.
    pub initialized: bool,
    /// The sandbox exists (the pod has its IP).
    pub sandbox_ready: bool,
    pub pod_ip: Option<IpAddr>,
    pub host_ip: IpAddr,
    pub start_time: &'a str,
    pub init: &'a [Record],
    pub containers: &'a [Record],
    /// The runtime handler, for `containerID` (`wasmtime://<id>`).
    pub handler: &'a str,
    /// `status.reason` / `status.message` of a pod the node rejected or failed as a whole.
    pub reason: Option<&'a str>,
    pub message: Option<&'a str>,
}

/// Remembers when each condition last changed, so `lastTransitionTime` only moves on change.
#[derive(Debug, Default)]
pub struct Transitions {
    seen: BTreeMap<String, (String, String)>,
}

impl Transitions {
    /// Seeds from the conditions already on the object (a restarted kubelet).
    pub fn from_pod(pod: &Pod) -> Transitions {
        let mut t = Transitions::default();
        for c in pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .into_iter()
            .flatten()
        {
            if let Some(time) = &c.last_transition_time {
                t.seen.insert(
                    c.type_.clone(),
                    (c.status.clone(), rfc3339(SystemTime::from(time.0))),
                );
            }
        }
        t
    }

    fn time(&mut self, ty: &str, status: &str) -> String {
        match self.seen.get(ty) {
            Some((s, time)) if s == status => time.clone(),
            _ => {
                let now = rfc3339(SystemTime::now());
                self.seen
                    .insert(ty.to_string(), (status.to_string(), now.clone()));
                now
            }
        }
    }
}

fn terminated_json(t: &Terminated, handler: &str) -> Value {
    let mut v = json!({
        "exitCode": t.status.exit_code,
        "reason": t.status.reason,
        "startedAt": rfc3339(t.status.started_at),
        "finishedAt": rfc3339(t.status.finished_at),
        "containerID": format!("{handler}://{}", t.container_id),
    });
    if let Some(m) = &t.status.message {
        v["message"] = json!(m);
    }
    v
}

fn container_status(r: &Record, handler: &str) -> Value {
    let state = match &r.state {
        State::Waiting { reason, message } => {
            let mut w = json!({"reason": reason});
            if let Some(m) = message {
                w["message"] = json!(m);
            }
            json!({"waiting": w})
        }
        State::Running { since } => json!({"running": {"startedAt": rfc3339(*since)}}),
        State::Terminated(t) => json!({"terminated": terminated_json(t, handler)}),
    };
    let last = match &r.last_terminated {
        Some(t) => json!({"terminated": terminated_json(t, handler)}),
        None => json!({}),
    };
    let mut v = json!({
        "name": r.name(),
        "image": r.spec.image.clone().unwrap_or_default(),
        "imageID": r.image.as_ref().map(|i| i.image_id.clone()).unwrap_or_default(),
        "ready": r.ready,
        "started": r.instance.is_some() && r.started,
        "restartCount": r.restart_count,
        "state": state,
        "lastState": last,
    });
    let id = match (&r.instance, &r.state) {
        (Some(i), _) => Some(i.container_id.clone()),
        (None, State::Terminated(t)) => Some(t.container_id.clone()),
        _ => None,
    };
    if let Some(id) = id {
        v["containerID"] = json!(format!("{handler}://{id}"));
    }
    v
}

/// `Guaranteed`, `Burstable` or `BestEffort`, by Kubernetes' rules.
pub fn qos_class(pod: &Pod) -> &'static str {
    let Some(spec) = pod.spec.as_ref() else {
        return "BestEffort";
    };
    let all = spec
        .init_containers
        .iter()
        .flatten()
        .chain(spec.containers.iter());
    let mut any = false;
    let mut guaranteed = true;
    for c in all {
        let r = c.resources.as_ref();
        let limits = r.and_then(|r| r.limits.clone()).unwrap_or_default();
        let requests = r.and_then(|r| r.requests.clone()).unwrap_or_default();
        let relevant =
            |m: &BTreeMap<String, _>| m.keys().any(|k: &String| k == "cpu" || k == "memory");
        if relevant(&limits) || relevant(&requests) {
            any = true;
        }
        for res in ["cpu", "memory"] {
            match (limits.get(res), requests.get(res)) {
                (Some(l), Some(q)) if l != q => guaranteed = false,
                (Some(_), _) => {}
                (None, _) => guaranteed = false,
            }
        }
    }
    if !any {
        "BestEffort"
    } else if guaranteed {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

/// The `status` object.
pub fn build(s: &Snapshot<'_>, transitions: &mut Transitions) -> Value {
    let mut conditions = Vec::new();
    let mut condition = |ty: &str, ok: bool, reason: Option<&str>, message: Option<String>| {
        let status = if ok { "True" } else { "False" };
        let mut c = json!({
            "type": ty,
            "status": status,
            "lastProbeTime": null,
            "lastTransitionTime": transitions.time(ty, status),
        });
        if let Some(r) = reason {
            c["reason"] = json!(r);
        }
        if let Some(m) = message {
            c["message"] = json!(m);
        }
        conditions.push(c);
    };
    let completed = s.phase == Phase::Succeeded;
    condition("PodReadyToStartContainers", s.sandbox_ready, None, None);
    let incomplete: Vec<&str> = s
        .init
        .iter()
        .filter(|r| !matches!(r.terminated(), Some(t) if t.exit_code == 0))
        .map(Record::name)
        .collect();
    if s.initialized {
        let reason = completed.then_some("PodCompleted");
        condition("Initialized", true, reason, None);
    } else {
        condition(
            "Initialized",
            false,
            Some("ContainersNotInitialized"),
            Some(format!(
                "containers with incomplete status: [{}]",
                incomplete.join(" ")
            )),
        );
    }
    let unready: Vec<&str> = s
        .containers
        .iter()
        .filter(|r| !r.ready)
        .map(Record::name)
        .collect();
    for ty in ["Ready", "ContainersReady"] {
        if completed {
            condition(ty, false, Some("PodCompleted"), None);
        } else if unready.is_empty() {
            condition(ty, true, None, None);
        } else {
            condition(
                ty,
                false,
                Some("ContainersNotReady"),
                Some(format!(
                    "containers with unready status: [{}]",
                    unready.join(" ")
                )),
            );
        }
    }
    // PodScheduled belongs to the scheduler (or to whoever bound the pod): keep it.
    let scheduled = s
        .pod
        .status
        .as_ref()
        .and_then(|st| st.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == "PodScheduled"))
        .and_then(|c| serde_json::to_value(c).ok())
        .unwrap_or_else(|| {
            json!({"type": "PodScheduled", "status": "True", "lastProbeTime": null,
                "lastTransitionTime": s.start_time})
        });
    conditions.push(scheduled);

    let mut status = json!({
        "phase": s.phase.as_str(),
        "conditions": conditions,
        "hostIP": s.host_ip.to_string(),
        "hostIPs": [{"ip": s.host_ip.to_string()}],
        "startTime": s.start_time,
        "qosClass": qos_class(s.pod),
        "containerStatuses": s.containers.iter().map(|r| container_status(r, r.runtime.as_ref().map_or(s.handler, |rt| rt.handler()))).collect::<Vec<_>>(),
    });
    if !s.init.is_empty() {
        status["initContainerStatuses"] = s
            .init
            .iter()
            .map(|r| container_status(r, r.runtime.as_ref().map_or(s.handler, |rt| rt.handler())))
            .collect();
    }
    if let Some(ip) = s.pod_ip {
        status["podIP"] = json!(ip.to_string());
        status["podIPs"] = json!([{"ip": ip.to_string()}]);
    }
    if let Some(r) = s.reason {
        status["reason"] = json!(r);
    }
    if let Some(m) = s.message {
        status["message"] = json!(m);
    }
    status
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(yaml: serde_json::Value) -> Pod {
        serde_json::from_value(yaml).expect("pod")
    }

    #[test]
    fn qos_classes() {
        let be = pod(json!({"spec": {"containers": [{"name": "a"}]}}));
        assert_eq!(qos_class(&be), "BestEffort");
        let g = pod(json!({"spec": {"containers": [{"name": "a", "resources": {
            "limits": {"cpu": "1", "memory": "1Gi"}}}]}}));
        assert_eq!(qos_class(&g), "Guaranteed");
        let b = pod(json!({"spec": {"containers": [{"name": "a", "resources": {
            "requests": {"memory": "1Gi"}}}]}}));
        assert_eq!(qos_class(&b), "Burstable");
    }

    #[test]
    fn conditions_and_container_states() {
        let p = pod(
            json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "a", "image": "x"}, {"name": "b", "image": "y"}]}}),
        );
        let spec = p.spec.clone().expect("spec").containers;
        let mut a = Record::new(spec[0].clone(), false);
        a.ready = true;
        a.state = State::Running {
            since: SystemTime::now(),
        };
        let b = Record::new(spec[1].clone(), false);
        let containers = vec![a, b];
        let snap = Snapshot {
            pod: &p,
            phase: Phase::Pending,
            initialized: true,
            sandbox_ready: true,
            pod_ip: Some("127.64.0.2".parse().expect("ip")),
            host_ip: "127.0.0.1".parse().expect("ip"),
            start_time: "2026-01-01T00:00:00Z",
            init: &[],
            containers: &containers,
            handler: "wasmtime",
            reason: None,
            message: None,
        };
        let mut t = Transitions::default();
        let st = build(&snap, &mut t);
        assert_eq!(st["phase"], "Pending");
        assert_eq!(st["podIP"], "127.64.0.2");
        let ready = st["conditions"]
            .as_array()
            .expect("list")
            .iter()
            .find(|c| c["type"] == "Ready")
            .expect("ready")
            .clone();
        assert_eq!(ready["status"], "False");
        assert_eq!(ready["message"], "containers with unready status: [b]");
        assert_eq!(
            st["containerStatuses"][1]["state"]["waiting"]["reason"],
            "ContainerCreating"
        );
        assert!(st["containerStatuses"][0]["state"]["running"]["startedAt"].is_string());
        // The transition time is kept while the status is unchanged.
        let again = build(&snap, &mut t);
        assert_eq!(st["conditions"], again["conditions"]);
    }
}
