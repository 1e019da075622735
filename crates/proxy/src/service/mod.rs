//! The L4 service proxy: TCP from each Service port's ClusterIP, NodePort (on this node's
//! address) and, for `type: LoadBalancer`, the Service port on this node's address, to the
//! port's ready endpoints.
//!
//! Each time the caches change the proxy computes the [`Desired`] state (pure:
//! [`desired`]) and reconciles its listeners against it: new addresses get a listener, gone
//! ones are closed, the rest keep theirs and only see their balancer's endpoints updated in
//! place, so nothing established is dropped by a scale or a rollout.

pub mod listener;

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::Service;
use tokio_util::sync::CancellationToken;

use crate::balancer::{Balancer, DEFAULT_AFFINITY_TIMEOUT, SessionAffinity};
use crate::cache::Cache;
use crate::endpoints::SliceIndex;
use listener::{Listener, Target};

/// One Service port: `namespace/name:port-name`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PortKey {
    pub namespace: String,
    pub name: String,
    pub port: String,
}

impl std::fmt::Display for PortKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}:{}", self.namespace, self.name, self.port)
    }
}

/// What one Service port forwards to.
#[derive(Debug, PartialEq)]
pub struct PortSpec {
    pub endpoints: Vec<SocketAddr>,
    pub affinity: SessionAffinity,
}

/// What should be listening, and where each Service port forwards.
#[derive(Debug, Default, PartialEq)]
pub struct Desired {
    pub ports: BTreeMap<PortKey, PortSpec>,
    pub listeners: BTreeMap<SocketAddr, PortKey>,
}

/// The desired state for this node: its address is `node_ip`.
pub fn desired(services: &[Arc<Service>], slices: &SliceIndex, node_ip: IpAddr) -> Desired {
    let mut out = Desired::default();
    // Oldest first, so when two Services claim one node address the older keeps it.
    let mut services: Vec<&Arc<Service>> = services.iter().collect();
    services.sort_by(|a, b| {
        let ka = (
            &a.metadata.creation_timestamp,
            &a.metadata.namespace,
            &a.metadata.name,
        );
        let kb = (
            &b.metadata.creation_timestamp,
            &b.metadata.namespace,
            &b.metadata.name,
        );
        ka.partial_cmp(&kb).unwrap_or(std::cmp::Ordering::Equal)
    });
    for svc in services {
        let (Some(spec), Some(name)) = (svc.spec.as_ref(), svc.metadata.name.as_ref()) else {
            continue;
        };
        let namespace = svc.metadata.namespace.clone().unwrap_or_default();
        let kind = spec.type_.as_deref().unwrap_or("ClusterIP");
        if kind == "ExternalName" {
            continue;
        }
        let cluster_ip = spec
            .cluster_ip
            .as_deref()
            .and_then(|ip| ip.parse::<IpAddr>().ok());
        let affinity = affinity_of(svc);
        for port in spec.ports.iter().flatten() {
            if port.protocol.as_deref().unwrap_or("TCP") != "TCP" {
                continue;
            }
            let Ok(number) = u16::try_from(port.port) else {
                continue;
            };
            let key = PortKey {
                namespace: namespace.clone(),
                name: name.clone(),
                port: port.name.clone().unwrap_or_default(),
            };
            let mut addrs = Vec::new();
            if let Some(ip) = cluster_ip {
                addrs.push(SocketAddr::new(ip, number));
            }
            if matches!(kind, "NodePort" | "LoadBalancer")
                && let Some(np) = port.node_port.and_then(|n| u16::try_from(n).ok())
                && np != 0
            {
                addrs.push(SocketAddr::new(node_ip, np));
            }
            if kind == "LoadBalancer" {
                addrs.push(SocketAddr::new(node_ip, number));
            }
            if addrs.is_empty() {
                continue;
            }
            for addr in addrs {
                if let Some(holder) = out.listeners.get(&addr) {
                    if *holder != key {
                        tracing::warn!(%addr, service = %key, holder = %holder, "address already taken by another Service port");
                    }
                    continue;
                }
                out.listeners.insert(addr, key.clone());
            }
            out.ports.insert(
                key.clone(),
                PortSpec {
                    endpoints: slices.backends(&key.namespace, &key.name, &key.port),
                    affinity,
                },
            );
        }
    }
    out
}

fn affinity_of(svc: &Service) -> SessionAffinity {
    let Some(spec) = svc.spec.as_ref() else {
        return SessionAffinity::None;
    };
    if spec.session_affinity.as_deref() != Some("ClientIP") {
        return SessionAffinity::None;
    }
    let secs = spec
        .session_affinity_config
        .as_ref()
        .and_then(|c| c.client_ip.as_ref())
        .and_then(|c| c.timeout_seconds)
        .and_then(|s| u64::try_from(s).ok())
        .filter(|s| *s > 0);
    SessionAffinity::ClientIp {
        timeout: secs
            .map(Duration::from_secs)
            .unwrap_or(DEFAULT_AFFINITY_TIMEOUT),
    }
}

/// The running proxy: listeners by address and balancers by Service port.
struct Proxy {
    listeners: HashMap<SocketAddr, Listener>,
    balancers: HashMap<PortKey, Arc<Target>>,
    shutdown: CancellationToken,
}

impl Proxy {
    fn sync(&mut self, want: Desired) {
        self.balancers.retain(|k, _| want.ports.contains_key(k));
        for (key, spec) in want.ports {
            let target = self.balancers.entry(key.clone()).or_insert_with(|| {
                Arc::new(Target {
                    service: key.to_string(),
                    balancer: Arc::new(Mutex::new(Balancer::new(spec.affinity))),
                })
            });
            if let Ok(mut b) = target.balancer.lock() {
                b.set_affinity(spec.affinity);
                b.set_endpoints(spec.endpoints);
            }
        }
        self.listeners.retain(|addr, l| {
            let keep = want.listeners.contains_key(addr);
            if !keep {
                l.close();
            }
            keep
        });
        for (addr, key) in want.listeners {
            let Some(target) = self.balancers.get(&key).cloned() else {
                continue;
            };
            match self.listeners.get(&addr) {
                Some(l) => {
                    if l.target().is_none_or(|t| !Arc::ptr_eq(&t, &target)) {
                        l.retarget(target);
                    }
                }
                None => {
                    let l = Listener::start(
                        addr,
                        target,
                        self.shutdown.child_token(),
                        self.shutdown.clone(),
                    );
                    self.listeners.insert(addr, l);
                }
            }
        }
    }
}

/// Runs the service proxy for the node at `node_ip` until `shutdown`.
pub async fn run(cache: Cache, node_ip: IpAddr, shutdown: CancellationToken) {
    let mut changed = cache.subscribe();
    tokio::select! {
        _ = cache.ready() => {}
        _ = shutdown.cancelled() => return,
    }
    let mut proxy = Proxy {
        listeners: HashMap::new(),
        balancers: HashMap::new(),
        shutdown: shutdown.clone(),
    };
    loop {
        let slices = SliceIndex::new(cache.slices.state());
        proxy.sync(desired(&cache.services.state(), &slices, node_ip));
        tokio::select! {
            r = changed.changed() => if r.is_err() { break },
            _ = shutdown.cancelled() => break,
        }
        // Coalesce a burst of changes (a rollout touches many objects) into one sync.
        tokio::time::sleep(Duration::from_millis(10)).await;
        changed.borrow_and_update();
    }
    for l in proxy.listeners.values() {
        l.close();
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use k8s_openapi::api::discovery::v1::EndpointSlice;
    use serde_json::json;

    fn svc(v: serde_json::Value) -> Arc<Service> {
        Arc::new(serde_json::from_value(v).unwrap())
    }

    #[test]
    fn cluster_ip_node_port_and_load_balancer_addresses() {
        let node: IpAddr = "127.1.0.1".parse().unwrap();
        let services = vec![
            svc(json!({"metadata": {"name": "web", "namespace": "default"},
                "spec": {"type": "LoadBalancer", "clusterIP": "127.16.0.5",
                         "sessionAffinity": "ClientIP",
                         "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 30}},
                         "ports": [{"name": "http", "port": 80, "nodePort": 30080},
                                   {"name": "dns", "port": 53, "protocol": "UDP"}]}})),
            svc(json!({"metadata": {"name": "np", "namespace": "default"},
                "spec": {"type": "NodePort", "clusterIP": "127.16.0.6",
                         "ports": [{"port": 8080, "nodePort": 30081}]}})),
            svc(
                json!({"metadata": {"name": "headless", "namespace": "default"},
                "spec": {"clusterIP": "None", "ports": [{"port": 80}]}}),
            ),
            svc(json!({"metadata": {"name": "ext", "namespace": "default"},
                "spec": {"type": "ExternalName", "externalName": "example.com"}})),
        ];
        let slice: EndpointSlice = serde_json::from_value(json!({
            "metadata": {"name": "web-1", "namespace": "default",
                         "labels": {"kubernetes.io/service-name": "web"}},
            "addressType": "IPv4",
            "ports": [{"name": "http", "port": 8080}],
            "endpoints": [{"addresses": ["127.64.0.2"], "conditions": {"ready": true}}],
        }))
        .unwrap();
        let d = desired(&services, &SliceIndex::new(vec![Arc::new(slice)]), node);
        let addrs: Vec<String> = d.listeners.keys().map(|a| a.to_string()).collect();
        assert_eq!(
            addrs,
            vec![
                "127.1.0.1:80",
                "127.1.0.1:30080",
                "127.1.0.1:30081",
                "127.16.0.5:80",
                "127.16.0.6:8080"
            ]
        );
        let web = PortKey {
            namespace: "default".into(),
            name: "web".into(),
            port: "http".into(),
        };
        assert_eq!(
            d.ports[&web],
            PortSpec {
                endpoints: vec!["127.64.0.2:8080".parse().unwrap()],
                affinity: SessionAffinity::ClientIp {
                    timeout: Duration::from_secs(30)
                },
            }
        );
        let np = PortKey {
            namespace: "default".into(),
            name: "np".into(),
            port: String::new(),
        };
        assert_eq!(d.ports[&np].endpoints, vec![]);
        assert_eq!(d.ports[&np].affinity, SessionAffinity::None);
        assert_eq!(d.ports.len(), 2);
    }

    #[test]
    fn the_older_service_keeps_a_contested_node_address() {
        let node: IpAddr = "127.1.0.1".parse().unwrap();
        let services = vec![
            svc(
                json!({"metadata": {"name": "new", "namespace": "default", "creationTimestamp": "2026-01-02T00:00:00Z"},
                "spec": {"type": "LoadBalancer", "clusterIP": "127.16.0.7", "ports": [{"port": 80, "nodePort": 30001}]}}),
            ),
            svc(
                json!({"metadata": {"name": "old", "namespace": "default", "creationTimestamp": "2026-01-01T00:00:00Z"},
                "spec": {"type": "LoadBalancer", "clusterIP": "127.16.0.8", "ports": [{"port": 80, "nodePort": 30002}]}}),
            ),
        ];
        let d = desired(&services, &SliceIndex::default(), node);
        assert_eq!(d.listeners[&"127.1.0.1:80".parse().unwrap()].name, "old");
        assert_eq!(d.listeners[&"127.16.0.7:80".parse().unwrap()].name, "new");
    }
}
