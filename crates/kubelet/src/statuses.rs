//! The status manager: writes pod statuses to the API server, newest first and only the newest.
//!
//! Workers hand over a pod's whole status whenever it changes; a pod whose status changes
//! again before it is written is written once, with the latest. Several writes run at a time,
//! which lets the store group-commit them: a node starting hundreds of pods at once is not held
//! up by one fsync per status.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, Patch, PatchParams};
use serde_json::{Value, json};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// How many status writes are in flight at once.
const CONCURRENCY: usize = 32;

struct Pending {
    namespace: String,
    name: String,
    status: Value,
}

/// Collects the newest status of each pod until it is written.
#[derive(Default)]
pub struct StatusManager {
    pending: Mutex<HashMap<String, Pending>>,
    notify: Notify,
}

impl StatusManager {
    pub fn new() -> Arc<StatusManager> {
        Arc::new(StatusManager::default())
    }

    /// Queues `status` as the pod's newest.
    pub fn set(&self, uid: &str, namespace: &str, name: &str, status: Value) {
        self.lock().insert(
            uid.to_string(),
            Pending {
                namespace: namespace.to_string(),
                name: name.to_string(),
                status,
            },
        );
        self.notify.notify_one();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Pending>> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Writes queued statuses until `shutdown`.
    pub async fn run(self: Arc<Self>, client: kube::Client, shutdown: CancellationToken) {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = self.notify.notified() => {}
            }
            loop {
                let batch: Vec<(String, Pending)> = self.lock().drain().collect();
                if batch.is_empty() {
                    break;
                }
                let results: Vec<(String, Pending, bool)> = futures::stream::iter(batch)
                    .map(|(uid, p)| {
                        let client = client.clone();
                        async move {
                            let ok = write(&client, &uid, &p).await;
                            (uid, p, ok)
                        }
                    })
                    .buffer_unordered(CONCURRENCY)
                    .collect()
                    .await;
                let mut retry = false;
                for (uid, p, ok) in results {
                    if !ok {
                        // Requeue unless a newer status arrived meanwhile.
                        self.lock().entry(uid).or_insert(p);
                        retry = true;
                    }
                }
                if retry {
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    }
                }
            }
        }
    }
}

/// Writes one status; false if it should be retried.
async fn write(client: &kube::Client, uid: &str, p: &Pending) -> bool {
    let api: Api<Pod> = Api::namespaced(client.clone(), &p.namespace);
    // The uid makes the patch a precondition: a newer pod of the same name is never touched.
    let patch = json!({"metadata": {"uid": uid}, "status": p.status});
    match api
        .patch_status(&p.name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        Ok(_) => true,
        // Gone, or replaced by a pod of the same name: nothing to report to.
        Err(kube::Error::Api(e)) if matches!(e.code, 404 | 409 | 422) => true,
        Err(e) => {
            tracing::warn!(pod = %p.name, namespace = %p.namespace, error = %e, "writing pod status failed");
            false
        }
    }
}
