//! Events about pods (`Pulled`, `Started`, `BackOff`, `Unhealthy`, `Killing`, ...), as the
//! kubelet writes them: core/v1 Events with `source.component: kubelet`.
//!
//! Recording never blocks a pod worker: events go through a bounded queue to one writer task,
//! and are dropped when it is full (an event is a hint, not state). A repeat of the same
//! reason and message for the same object within ten minutes bumps the existing event's
//! `count` instead of creating another, as Kubernetes' event correlator does.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Event, Pod};
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

const QUEUE: usize = 4096;
const AGGREGATE_WINDOW: Duration = Duration::from_secs(600);
const MAX_REMEMBERED: usize = 8192;

struct Request {
    namespace: String,
    name: String,
    uid: String,
    type_: &'static str,
    reason: String,
    message: String,
}

/// Hands events to the writer task. Cheap to clone.
#[derive(Clone)]
pub struct Recorder {
    tx: mpsc::Sender<Request>,
}

impl Recorder {
    /// Starts the writer for node `node`.
    pub fn start(client: kube::Client, node: String, shutdown: CancellationToken) -> Recorder {
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(write_loop(client, node, rx, shutdown));
        Recorder { tx }
    }

    fn record(&self, pod: &Pod, type_: &'static str, reason: &str, message: &str) {
        let _ = self.tx.try_send(Request {
            namespace: pod.metadata.namespace.clone().unwrap_or_default(),
            name: pod.metadata.name.clone().unwrap_or_default(),
            uid: pod.metadata.uid.clone().unwrap_or_default(),
            type_,
            reason: reason.to_string(),
            message: message.to_string(),
        });
    }

    pub fn normal(&self, pod: &Pod, reason: &str, message: &str) {
        self.record(pod, "Normal", reason, message);
    }

    pub fn warning(&self, pod: &Pod, reason: &str, message: &str) {
        self.record(pod, "Warning", reason, message);
    }
}

struct Seen {
    event: String,
    count: i32,
    at: Instant,
}

fn now_secs() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

async fn write_loop(
    client: kube::Client,
    node: String,
    mut rx: mpsc::Receiver<Request>,
    shutdown: CancellationToken,
) {
    let mut seen: HashMap<(String, String, String), Seen> = HashMap::new();
    let node = Arc::new(node);
    loop {
        let req = tokio::select! {
            _ = shutdown.cancelled() => return,
            r = rx.recv() => match r { Some(r) => r, None => return },
        };
        let api: Api<Event> = Api::namespaced(client.clone(), &req.namespace);
        let key = (req.uid.clone(), req.reason.clone(), req.message.clone());
        if let Some(s) = seen.get_mut(&key)
            && s.at.elapsed() < AGGREGATE_WINDOW
        {
            s.count += 1;
            s.at = Instant::now();
            let patch = json!({"count": s.count, "lastTimestamp": now_secs()});
            if api
                .patch(&s.event, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .is_ok()
            {
                continue;
            }
        }
        if seen.len() >= MAX_REMEMBERED {
            seen.retain(|_, s| s.at.elapsed() < AGGREGATE_WINDOW);
            if seen.len() >= MAX_REMEMBERED {
                seen.clear();
            }
        }
        let stamp = now_secs();
        let nanos = jiff::Timestamp::now().as_nanosecond();
        let name = format!("{}.{:x}", req.name, nanos);
        let event: Event = match serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": req.namespace},
            "involvedObject": {"apiVersion": "v1", "kind": "Pod", "name": req.name,
                "namespace": req.namespace, "uid": req.uid},
            "reason": req.reason,
            "message": req.message,
            "type": req.type_,
            "source": {"component": "kubelet", "host": node.as_str()},
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "eventTime": null,
            "count": 1,
            "reportingComponent": "kubelet",
            "reportingInstance": node.as_str(),
        })) {
            Ok(e) => e,
            Err(_) => continue,
        };
        match api.create(&PostParams::default(), &event).await {
            Ok(_) => {
                seen.insert(
                    key,
                    Seen {
                        event: name,
                        count: 1,
                        at: Instant::now(),
                    },
                );
            }
            Err(e) => tracing::debug!(error = %e, "recording an event failed"),
        }
    }
}
