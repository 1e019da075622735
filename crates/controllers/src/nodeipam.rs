//! Node IPAM: gives every Node its own pod range, `spec.podCIDR`, as Kubernetes' node IPAM
//! controller does. On one machine all ranges are /16s of loopback (127.N.0.0/16) out of the
//! cluster's range (`--cluster-cidr`, default 127.64.0.0/10: N from 64 to 127), so each node's
//! pods get addresses no other node hands out and that never leave the host. Two clusters on
//! one machine need disjoint cluster ranges.

use std::collections::BTreeSet;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::json;
use tokio_util::sync::CancellationToken;

/// The cluster's pod range: node ranges `127.N.0.0/16` for N in `first..=last`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClusterCidr {
    pub first: u8,
    pub last: u8,
}

impl Default for ClusterCidr {
    fn default() -> Self {
        ClusterCidr {
            first: 64,
            last: 127,
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "cluster CIDR {0:?} must be a loopback range 127.N.0.0/L with 8 < L <= 16, e.g. 127.64.0.0/10"
)]
pub struct CidrError(pub String);

impl std::str::FromStr for ClusterCidr {
    type Err = CidrError;

    fn from_str(s: &str) -> Result<Self, CidrError> {
        let bad = || CidrError(s.to_string());
        let (addr, len) = s.split_once('/').ok_or_else(bad)?;
        let len: u32 = len.parse().map_err(|_| bad())?;
        let octets: Vec<u8> = addr
            .split('.')
            .map(|o| o.parse::<u8>())
            .collect::<Result<_, _>>()
            .map_err(|_| bad())?;
        if octets.len() != 4 || octets[0] != 127 || !(9..=16).contains(&len) {
            return Err(bad());
        }
        let size = 1u32 << (16 - len);
        let first = (u32::from(octets[1]) / size) * size;
        // Never 127.0.x.x: that is where the nodes' own addresses live.
        let first = first.max(1);
        let last = ((first / size) * size + size - 1).min(254);
        Ok(ClusterCidr {
            first: first as u8,
            last: last as u8,
        })
    }
}

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
pub fn next_free(range: ClusterCidr, used: &BTreeSet<u8>) -> Option<String> {
    (range.first..=range.last)
        .find(|n| !used.contains(n))
        .map(|n| format!("127.{n}.0.0/16"))
}

pub async fn run(client: kube::Client, range: ClusterCidr, shutdown: CancellationToken) {
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
        let Some(cidr) = next_free(range, &used) else {
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
        assert_eq!(
            next_free(ClusterCidr::default(), &used).as_deref(),
            Some("127.66.0.0/16")
        );
        let small: ClusterCidr = "127.80.0.0/14".parse().expect("valid");
        assert_eq!(
            small,
            ClusterCidr {
                first: 80,
                last: 83
            }
        );
        assert_eq!(
            "127.64.0.0/10".parse::<ClusterCidr>(),
            Ok(ClusterCidr::default())
        );
        let full: BTreeSet<u8> = (80..=83).collect();
        assert_eq!(next_free(small, &full), None);
        for bad in ["10.0.0.0/16", "127.64.0.0/24", "127.64.0.0", "127.x.0.0/16"] {
            assert!(bad.parse::<ClusterCidr>().is_err(), "{bad}");
        }
    }
}
