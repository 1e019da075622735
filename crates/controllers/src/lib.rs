//! The cluster's controllers. Each talks to the API server only through the Kubernetes API
//! (a kube-rs `Client`), exactly as Kubernetes controllers do, so they work in-process beside
//! the API server or against any cluster.
//!
//! # Layout
//! - [`namespace`]: empties a namespace being deleted, then finalizes it.
//! - [`nodeipam`]: gives each Node its pod address range.
//! - [`replicaset`]: keeps a ReplicaSet's pods at `spec.replicas` (ranking for scale-down in
//!   `replicaset/ranking.rs`, status in `replicaset/status.rs`).
//! - [`deployment`]: rolls Deployments out through ReplicaSets; [`deployment::rolling`] is
//!   the pure rollout arithmetic, [`deployment::util`] hashes, annotations and conditions.
//!
//! - [`hpa`]: the horizontal pod autoscaler (autoscaling/v2, from `metrics.k8s.io`).
//! - [`job`]: runs Jobs' pods to completion (Indexed and NonIndexed, back-off, deadlines,
//!   suspend, TTL), counting finished pods through the `batch.kubernetes.io/job-tracking`
//!   finalizer; `job/indexes.rs` is `completedIndexes`, `job/status.rs` the pure rules.
//! - [`cronjob`]: starts Jobs on cron schedules in a time zone; [`cronjob::schedule`] is the
//!   pure cron parser and next-time arithmetic.
//! - [`garbage_collector`]: deletes objects whose owners are gone and carries out
//!   `Foreground` / `Orphan` propagation; [`garbage_collector::graph`] is the pure uid graph.
//! - [`daemonset`]: one pod per eligible node; [`daemonset::nodes`] is eligibility and the
//!   pod for a node, [`daemonset::plan`] the per-node and rolling-update steps,
//!   [`daemonset::status`] the counts.
//! - [`statefulset`]: pods with stable names, ordinals and claims; [`statefulset::identity`]
//!   is naming, claims and retention, [`statefulset::plan`] the ordered actions and status.
//! - [`node_lifecycle`]: marks silent nodes Unknown, keeps the not-ready / unreachable
//!   taints in step with Ready and evicts pods whose tolerations ran out;
//!   [`node_lifecycle::health`] and [`node_lifecycle::eviction`] are the pure rules.
//! - [`endpoints`] and [`endpointslice`]: the addresses of the pods each Service selects,
//!   as Endpoints and as EndpointSlices.
//! - [`serviceaccount`]: the `default` ServiceAccount of every namespace.
//! - [`persistentvolume`]: binds PersistentVolumeClaims to PersistentVolumes, assigns the
//!   default StorageClass, hands claims to their provisioner and reclaims released volumes.
//!
//! Shared machinery of the workload controllers, after client-go:
//! - [`informer`]: watch → reflector cache plus added / updated / deleted notifications.
//! - [`queue`]: the de-duplicating work queue with delays and back-off.
//! - [`expectations`]: creates and deletes a controller waits to see before acting again.
//! - [`owner`]: controller references; adopting and releasing objects.
//! - [`pods`]: pod predicates (active, ready, available).
//! - [`events`]: the core/v1 Event recorder.
//! - [`history`]: ControllerRevisions of pod templates (DaemonSets, StatefulSets).
//! - [`status_subresource`]: unconditional status writes that leave metadata alone.
//!
//! - [`leader_election`]: client-go-style leader election over `coordination.k8s.io/v1`
//!   Leases, so that of several servers over one store only the elected one runs the
//!   scheduler (Lease `kube-scheduler`) and the controllers (`kube-controller-manager`).

pub mod cronjob;
pub mod daemonset;
pub mod deployment;
pub mod endpoints;
pub mod endpointslice;
pub mod events;
pub mod expectations;
pub mod garbage_collector;
pub mod history;
pub mod hpa;
pub mod informer;
pub mod job;
pub mod leader_election;
pub mod namespace;
pub mod node_lifecycle;
pub mod nodeipam;
pub mod owner;
pub mod persistentvolume;
pub mod pods;
pub mod queue;
pub mod replicaset;
pub mod serviceaccount;
pub mod statefulset;
pub mod status_subresource;

use tokio_util::sync::CancellationToken;

/// Settings of the controllers that have any.
#[derive(Clone, Debug, Default)]
pub struct ControllersConfig {
    pub node_lifecycle: node_lifecycle::NodeLifecycleConfig,
    pub hpa: hpa::HpaConfig,
    pub cluster_cidr: nodeipam::ClusterCidr,
}

/// Runs every controller with Kubernetes' default settings until `shutdown` is cancelled.
pub async fn run_all(client: kube::Client, shutdown: CancellationToken) {
    run_all_with(client, ControllersConfig::default(), shutdown).await;
}

/// Runs every controller until `shutdown` is cancelled.
pub async fn run_all_with(
    client: kube::Client,
    config: ControllersConfig,
    shutdown: CancellationToken,
) {
    let ns = tokio::spawn(namespace::run(client.clone(), shutdown.clone()));
    let ipam = tokio::spawn(nodeipam::run(
        client.clone(),
        config.cluster_cidr,
        shutdown.clone(),
    ));
    let rs = tokio::spawn(replicaset::run(client.clone(), shutdown.clone()));
    let deploy = tokio::spawn(deployment::run(client.clone(), shutdown.clone()));
    let hpa = tokio::spawn(hpa::run(client.clone(), config.hpa, shutdown.clone()));
    let job = tokio::spawn(job::run(client.clone(), shutdown.clone()));
    let cron = tokio::spawn(cronjob::run(client.clone(), shutdown.clone()));
    let gc = tokio::spawn(garbage_collector::run(client.clone(), shutdown.clone()));
    let ds = tokio::spawn(daemonset::run(client.clone(), shutdown.clone()));
    let sts = tokio::spawn(statefulset::run(client.clone(), shutdown.clone()));
    let nodes = tokio::spawn(node_lifecycle::run(
        client.clone(),
        config.node_lifecycle,
        shutdown.clone(),
    ));
    let endpoints = tokio::spawn(endpoints::run(client.clone(), shutdown.clone()));
    let slices = tokio::spawn(endpointslice::run(client.clone(), shutdown.clone()));
    let accounts = tokio::spawn(serviceaccount::run(client.clone(), shutdown.clone()));
    let volumes = tokio::spawn(persistentvolume::run(client.clone(), shutdown.clone()));
    let _ = ns.await;
    let _ = ipam.await;
    let _ = rs.await;
    let _ = deploy.await;
    let _ = hpa.await;
    let _ = job.await;
    let _ = cron.await;
    let _ = gc.await;
    let _ = ds.await;
    let _ = sts.await;
    let _ = nodes.await;
    let _ = endpoints.await;
    let _ = slices.await;
    let _ = accounts.await;
    let _ = volumes.await;
}

/// An error with its chain of causes, `: `-separated, as Kubernetes prints wrapped errors.
pub fn error_chain(e: &impl std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// Logs a failed sync. Conflicts are routine (a write from a cache that was a moment
/// behind) and retried at once, so they stay at debug level.
pub(crate) fn log_error(e: &(impl std::error::Error + 'static), controller: &str, key: &str) {
    let conflict = std::iter::successors(Some(e as &(dyn std::error::Error + 'static)), |e| {
        e.source()
    })
    .any(|e| matches!(e.downcast_ref::<kube::Error>(), Some(kube::Error::Api(s)) if s.code == 409));
    let chain = error_chain(e);
    if conflict {
        tracing::debug!(controller, key, error = %chain, "sync conflicted; retrying");
    } else {
        tracing::warn!(controller, key, error = %chain, "sync failed; retrying");
    }
}
