//! The wasmkube scheduler: places pending pods on nodes, as kube-scheduler does, talking to
//! the API server only through the Kubernetes API (a kube-rs [`kube::Client`]). It works
//! in-process beside wasmkube's API server or against any Kubernetes cluster.
//!
//! Pods whose `spec.schedulerName` is this scheduler's name (`default-scheduler` unless
//! configured otherwise), that have no `spec.nodeName`, are not finished and not being
//! deleted, are queued. Each is filtered against every node, the nodes that fit are scored,
//! and the pod is bound to the best one through `pods/NAME/binding`. A pod that fits nowhere
//! gets `PodScheduled=False` with kube-scheduler's message and a `FailedScheduling` event,
//! and is retried with back-off when the cluster changes.
//!
//! ```no_run
//! # async fn demo(client: kube::Client) {
//! let shutdown = tokio_util::sync::CancellationToken::new();
//! let scheduler = tokio::spawn(wasmkube_scheduler::run(
//!     client,
//!     wasmkube_scheduler::SchedulerConfig::default(),
//!     shutdown.clone(),
//! ));
//! // ...
//! shutdown.cancel();
//! let _ = scheduler.await;
//! # }
//! ```
//!
//! # Layout
//! - [`scheduler`]: the event loop: watches into the cache and queue, scheduling cycles, and
//!   the binding / status / event calls that follow them.
//! - [`cache`]: nodes, their pods (assumed ones included) and request sums, RuntimeClasses and
//!   namespace labels, fed by the watches.
//! - [`queue`]: pending pods: active, back-off and unschedulable, with per-pod exponential
//!   back-off.
//! - [`framework`]: one scheduling cycle (filters, scores, choice) and kube-scheduler's
//!   failure message.
//! - [`filters`]: one pure function per filter.
//! - [`scores`]: one pure function per score, and the normalizers.
//! - [`resources`]: what a pod requests (init containers, sidecars, overhead) and the host
//!   ports it binds.
//! - [`events`]: core/v1 Events, with repeats folded into one event's `count`.
//! - [`volumes`]: PersistentVolume binding rules (which volume serves which claim where),
//!   the VolumeBinding filter, and the annotations binding uses; shared with the
//!   PersistentVolume controller.

pub mod cache;
pub mod events;
pub mod filters;
pub mod framework;
pub mod queue;
pub mod resources;
pub mod scheduler;
pub mod scores;
pub mod volumes;

use std::time::Duration;

pub use scheduler::run;
pub use scores::ScoreWeights;

/// The scheduler's settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SchedulerConfig {
    /// Pods whose `spec.schedulerName` is this are ours; others are left alone.
    pub scheduler_name: String,
    /// Back-off after a pod's first failed attempt (kube-scheduler's
    /// `podInitialBackoffSeconds`); it doubles with every further failure...
    pub pod_initial_backoff: Duration,
    /// ...up to this (`podMaxBackoffSeconds`).
    pub pod_max_backoff: Duration,
    /// An unschedulable pod that no cluster change woke is retried after this long anyway
    /// (`podMaxInUnschedulablePodsDuration`).
    pub pod_max_in_unschedulable: Duration,
    /// Weights of the scores.
    pub weights: ScoreWeights,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        SchedulerConfig {
            scheduler_name: "default-scheduler".to_string(),
            pod_initial_backoff: Duration::from_secs(1),
            pod_max_backoff: Duration::from_secs(10),
            pod_max_in_unschedulable: Duration::from_secs(5 * 60),
            weights: ScoreWeights::default(),
        }
    }
}

impl SchedulerConfig {
    /// The queue's back-off settings.
    pub fn backoff(&self) -> queue::BackoffConfig {
        queue::BackoffConfig {
            initial_backoff: self.pod_initial_backoff,
            max_backoff: self.pod_max_backoff.max(self.pod_initial_backoff),
            unschedulable_flush: self.pod_max_in_unschedulable,
        }
    }
}
