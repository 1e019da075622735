//! Recording core/v1 Events about objects, as client-go's event recorder does: callers hand
//! events over without waiting, one background task writes them, and repeats of the same
//! event (same object, reason and message) bump `count` and `lastTimestamp` of the first
//! instead of piling up new objects.
//!
//! Events are advisory: when the queue is full or the API refuses one, it is dropped (logged)
//! and the controller carries on, again like client-go.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Events waiting to be written (client-go's `maxQueuedEvents`).
const QUEUE: usize = 1000;
/// Distinct events remembered for aggregation before the memory is cleared.
const REMEMBERED: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Normal,
    Warning,
}

impl EventType {
    fn as_str(self) -> &'static str {
        match self {
            EventType::Normal => "Normal",
            EventType::Warning => "Warning",
        }
    }
}

struct Pending {
    regarding: ObjectReference,
    kind: EventType,
    reason: &'static str,
    message: String,
}

/// Hands events to the writer task; cheap to clone.
#[derive(Clone)]
pub struct Recorder {
    tx: mpsc::Sender<Pending>,
}

impl Recorder {
    /// Starts the writer task for events from `component` (e.g. `replicaset-controller`).
    pub fn new(client: kube::Client, component: &'static str, shutdown: CancellationToken) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(write_events(client, component, rx, shutdown));
        Recorder { tx }
    }

    pub fn publish(
        &self,
        regarding: ObjectReference,
        kind: EventType,
        reason: &'static str,
        message: String,
    ) {
        let pending = Pending {
            regarding,
            kind,
            reason,
            message,
        };
        if let Err(e) = self.tx.try_send(pending) {
            tracing::debug!(error = %e, "event dropped");
        }
    }

    pub fn normal(&self, regarding: ObjectReference, reason: &'static str, message: String) {
        self.publish(regarding, EventType::Normal, reason, message);
    }

    pub fn warning(&self, regarding: ObjectReference, reason: &'static str, message: String) {
        self.publish(regarding, EventType::Warning, reason, message);
    }
}

/// A name no other event of the object has: client-go uses `<object>.<unix nanos in hex>`;
/// the counter keeps two events in one nanosecond apart.
fn event_name(object: &str) -> String {
    static LAST: AtomicU64 = AtomicU64::new(0);
    let now = u64::try_from(Timestamp::now().as_nanosecond()).unwrap_or(0);
    let mut prev = LAST.load(Ordering::Relaxed);
    let unique = loop {
        let next = now.max(prev + 1);
        match LAST.compare_exchange_weak(prev, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => break next,
            Err(actual) => prev = actual,
        }
    };
    format!("{object}.{unique:x}")
}

/// Second precision, as the API stores `Time`: keeps timestamps we compare equal to what we
/// read back.
pub fn now_time() -> Time {
    Time(Timestamp::from_second(Timestamp::now().as_second()).unwrap_or_else(|_| Timestamp::now()))
}

async fn write_events(
    client: kube::Client,
    component: &'static str,
    mut rx: mpsc::Receiver<Pending>,
    shutdown: CancellationToken,
) {
    // (object uid, reason, message) → (namespace, event name, count) of the event to bump.
    let mut seen: HashMap<(String, &'static str, String), (String, String, i32)> = HashMap::new();
    loop {
        let pending = tokio::select! {
            p = rx.recv() => p,
            _ = shutdown.cancelled() => return,
        };
        let Some(p) = pending else { return };
        let ns = p
            .regarding
            .namespace
            .clone()
            .unwrap_or_else(|| "default".to_string());
        let api: Api<Event> = Api::namespaced(client.clone(), &ns);
        let now = now_time();
        let uid = p.regarding.uid.clone().unwrap_or_default();
        let agg_key = (uid, p.reason, p.message.clone());
        if let Some((ens, name, count)) = seen.get_mut(&agg_key)
            && *ens == ns
        {
            let next = *count + 1;
            let patch = json!({"count": next, "lastTimestamp": now});
            match api
                .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => {
                    *count = next;
                    continue;
                }
                // Gone (expired or deleted): record it afresh below.
                Err(e) => tracing::debug!(error = %e, "bumping an event failed"),
            }
        }
        let object = p.regarding.name.clone().unwrap_or_default();
        let name = event_name(&object);
        let event = Event {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(ns.clone()),
                ..ObjectMeta::default()
            },
            involved_object: p.regarding,
            reason: Some(p.reason.to_string()),
            message: Some(p.message),
            type_: Some(p.kind.as_str().to_string()),
            source: Some(EventSource {
                component: Some(component.to_string()),
                host: None,
            }),
            first_timestamp: Some(now.clone()),
            last_timestamp: Some(now),
            count: Some(1),
            event_time: None::<MicroTime>,
            reporting_component: Some(component.to_string()),
            reporting_instance: Some(component.to_string()),
            ..Event::default()
        };
        match api.create(&PostParams::default(), &event).await {
            Ok(_) => {
                if seen.len() >= REMEMBERED {
                    seen.clear();
                }
                seen.insert(agg_key, (ns, name, 1));
            }
            Err(e) => tracing::debug!(error = %e, "recording an event failed"),
        }
    }
}
