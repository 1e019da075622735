//! Node IPAM: gives every Node its own pod range, `spec.podCIDR`, as Kubernetes' node IPAM
//! controller does. On one machine all ranges are /16s of loopback (127.N.0.0/16, N from 64),
//! so each node's pods get addresses no other node hands out and that never leave the host.

use std::collections::BTreeSet;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::json;
use tokio_util::sync::CancellationToken;

/// The first and last second octet handed out.
const FIRST: u8 = 64;
const LAST: u8 = 254;

/// `127.N.0.0/16` → N.
pub fn octet_of(cidr: &str) -> Option<u8> {
    let (addr, len) = cidr.split_once('/')?;
    if len != "16" {
        return None;
    }
    let mut parts = addr.split('.');
    (parts.next()? == "127").then_some(())?;
    parts.next()?.parse().ok()
}

/// The lowest free range given the ones in use.
pub fn next_free(used: &BTreeSet<u8>) -> Option<String> {
    (FIRST..=LAST)
        .find(|n| !used.contains(n))
        .map(|n| format!("127.{n}.0.0/16"))
}

pub async fn run(client: kube::Client, shutdown: CancellationToken) {
    let api: Api<Node> = Api::all(client.clone());
    let stream = watcher(api.clone(), watcher::Config::default())
        .default_backoff()
        .applied_objects();
    futures::pin_mut!(stream);
    loop {
        let node = tokio::select! {
            n = stream.next() => n,
            _ = shutdown.cancelled() => return,
        };
        let Some(node) = node else { return };
        let Ok(node) = node else { continue };
        if node
            .spec
            .as_ref()
            .and_then(|s| s.pod_cidr.as_ref())
            .is_some_and(|c| !c.is_empty())
        {
            continue;
        }
        let Some(name) = node.metadata.name.clone() else {
            continue;
        };
        // Read every node afresh: ranges are allocated one at a time and each write is
        // conditional on the node's resourceVersion, so two allocations never collide.
        let used: BTreeSet<u8> = match api.list(&Default::default()).await {
            Ok(list) => list
                .items
                .iter()
                .filter_map(|n| n.spec.as_ref()?.pod_cidr.as_deref())
                .filter_map(octet_of)
                .collect(),
            Err(e) => {
                tracing::warn!(error = %e, "listing nodes for IPAM");
                continue;
            }
        };
        let Some(cidr) = next_free(&used) else {
            tracing::error!(node = %name, "no free pod range left");
            continue;
        };
        let patch = json!({
            "metadata": {"resourceVersion": node.metadata.resource_version},
            "spec": {"podCIDR": cidr, "podCIDRs": [cidr]},
        });
        match api
            .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => tracing::info!(node = %name, %cidr, "allocated pod range"),
            Err(e) => {
                tracing::debug!(node = %name, error = %e, "pod range allocation raced; retrying on the next event")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(octet_of("127.64.0.0/16"), Some(64));
        assert_eq!(octet_of("10.0.0.0/16"), None);
        assert_eq!(octet_of("127.64.0.0/24"), None);
        let used: BTreeSet<u8> = [64, 65, 67].into_iter().collect();
        assert_eq!(next_free(&used).as_deref(), Some("127.66.0.0/16"));
    }
}
