//! The cluster's controllers. Each talks to the API server only through the Kubernetes API
//! (a kube-rs `Client`), exactly as Kubernetes controllers do, so they work in-process beside
//! the API server or against any cluster.
//!
//! # Layout
//! - [`namespace`]: empties a namespace being deleted, then finalizes it.
//! - [`nodeipam`]: gives each Node its pod address range.

pub mod namespace;
pub mod nodeipam;

use tokio_util::sync::CancellationToken;

/// Runs every controller until `shutdown` is cancelled.
pub async fn run_all(client: kube::Client, shutdown: CancellationToken) {
    let ns = tokio::spawn(namespace::run(client.clone(), shutdown.clone()));
    let ipam = tokio::spawn(nodeipam::run(client.clone(), shutdown.clone()));
    let _ = ns.await;
    let _ = ipam.await;
}
