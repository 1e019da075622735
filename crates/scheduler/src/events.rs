//! core/v1 Events about pods, as kube-scheduler records them (`Scheduled`,
//! `FailedScheduling`).
//!
//! A pod that stays unschedulable is retried many times with the same message; like
//! client-go's event correlator, the recorder then bumps `count` and `lastTimestamp` of the
//! event it already wrote instead of writing a new one each time.

use std::collections::HashMap;
use std::sync::Mutex;

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;

/// Errors writing events.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("creating event {name} in namespace {namespace}")]
    Create {
        namespace: String,
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("updating the count of event {name} in namespace {namespace}")]
    Update {
        namespace: String,
        name: String,
        #[source]
        source: kube::Error,
    },
}

/// `type` of an Event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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

/// An event already written, that a repeat updates.
#[derive(Clone, Debug)]
struct Series {
    name: String,
    count: i32,
}

/// `(pod uid, reason, message)`.
type SeriesKey = (String, String, String);

/// Writes events for one component.
pub struct EventRecorder {
    client: kube::Client,
    component: String,
    series: Mutex<HashMap<SeriesKey, Series>>,
}

impl std::fmt::Debug for EventRecorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventRecorder")
            .field("component", &self.component)
            .finish_non_exhaustive()
    }
}

fn reference(pod: &Pod) -> ObjectReference {
    ObjectReference {
        api_version: Some("v1".into()),
        kind: Some("Pod".into()),
        namespace: pod.metadata.namespace.clone(),
        name: pod.metadata.name.clone(),
        uid: pod.metadata.uid.clone(),
        resource_version: pod.metadata.resource_version.clone(),
        ..ObjectReference::default()
    }
}

impl EventRecorder {
    /// A recorder reporting as `component` (`default-scheduler`).
    pub fn new(client: kube::Client, component: impl Into<String>) -> Self {
        EventRecorder {
            client,
            component: component.into(),
            series: Mutex::new(HashMap::new()),
        }
    }

    fn series(&self) -> std::sync::MutexGuard<'_, HashMap<SeriesKey, Series>> {
        // The map is only a cache of event names; a poisoned one is still usable.
        self.series.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records an event about `pod`; a repeat of the same reason and message for the same
    /// pod updates the earlier event.
    pub async fn record(
        &self,
        pod: &Pod,
        type_: EventType,
        reason: &str,
        action: &str,
        message: &str,
    ) -> Result<(), Error> {
        let namespace = pod
            .metadata
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into());
        let api: Api<Event> = Api::namespaced(self.client.clone(), &namespace);
        let key: SeriesKey = (
            pod.metadata.uid.clone().unwrap_or_default(),
            reason.to_string(),
            message.to_string(),
        );
        let now = Time(Timestamp::now());
        let existing = self.series().get(&key).cloned();
        if let Some(series) = existing {
            let count = series.count.saturating_add(1);
            let patch = json!({"count": count, "lastTimestamp": now});
            match api
                .patch(&series.name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => {
                    self.series().insert(
                        key,
                        Series {
                            name: series.name,
                            count,
                        },
                    );
                    return Ok(());
                }
                // Events expire; start a new one.
                Err(kube::Error::Api(s)) if s.code == 404 => {}
                Err(source) => {
                    return Err(Error::Update {
                        namespace,
                        name: series.name,
                        source,
                    });
                }
            }
        }
        let pod_name = pod.metadata.name.clone().unwrap_or_default();
        // client-go's naming: the object's name and the time in hex nanoseconds.
        let name = format!("{pod_name}.{:x}", now.0.as_nanosecond());
        let event = Event {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(namespace.clone()),
                ..ObjectMeta::default()
            },
            involved_object: reference(pod),
            type_: Some(type_.as_str().into()),
            reason: Some(reason.into()),
            action: Some(action.into()),
            message: Some(message.into()),
            source: Some(EventSource {
                component: Some(self.component.clone()),
                host: None,
            }),
            reporting_component: Some(self.component.clone()),
            reporting_instance: Some(self.component.clone()),
            first_timestamp: Some(now.clone()),
            last_timestamp: Some(now),
            count: Some(1),
            ..Event::default()
        };
        api.create(&PostParams::default(), &event)
            .await
            .map_err(|source| Error::Create {
                namespace: namespace.clone(),
                name: name.clone(),
                source,
            })?;
        self.series().insert(key, Series { name, count: 1 });
        Ok(())
    }

    /// Forgets the events of a pod that is gone or scheduled, so the map stays small.
    pub fn forget(&self, pod_uid: &str) {
        self.series().retain(|(uid, _, _), _| uid != pod_uid);
    }
}
