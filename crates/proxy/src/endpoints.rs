//! From Services and EndpointSlices to the addresses traffic goes to: the one resolution the
//! service proxy, the Ingress controller and the cluster DNS share.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Service, ServicePort};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointSlice};

/// The label an EndpointSlice names its Service with.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// EndpointSlices grouped by their Service (`namespace`, `name`).
#[derive(Default)]
pub struct SliceIndex {
    by_service: HashMap<(String, String), Vec<Arc<EndpointSlice>>>,
}

impl SliceIndex {
    pub fn new(slices: Vec<Arc<EndpointSlice>>) -> SliceIndex {
        let mut by_service: HashMap<(String, String), Vec<Arc<EndpointSlice>>> = HashMap::new();
        for s in slices {
            let Some(svc) = s
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(SERVICE_NAME_LABEL))
            else {
                continue;
            };
            let ns = s.metadata.namespace.clone().unwrap_or_default();
            by_service.entry((ns, svc.clone())).or_default().push(s);
        }
        SliceIndex { by_service }
    }

    pub fn slices(&self, namespace: &str, service: &str) -> &[Arc<EndpointSlice>] {
        self.by_service
            .get(&(namespace.to_string(), service.to_string()))
            .map(Vec::as_slice)
            .unwrap_or_default()
    }

    /// Where connections to the Service port named `port_name` ("" for an unnamed port) go:
    /// the ready endpoints; when there are none, the ones still serving while they terminate
    /// (kube-proxy does the same, so a Service whose every pod is being replaced keeps
    /// answering rather than refusing).
    pub fn backends(&self, namespace: &str, service: &str, port_name: &str) -> Vec<SocketAddr> {
        let mut ready = Vec::new();
        let mut terminating = Vec::new();
        for slice in self.slices(namespace, service) {
            let Some(port) = slice_port(slice, port_name) else {
                continue;
            };
            for ep in slice.endpoints.iter().flatten() {
                let state = condition(ep);
                let list = match state {
                    EndpointState::Ready => &mut ready,
                    EndpointState::ServingTerminating => &mut terminating,
                    EndpointState::NotServing => continue,
                };
                list.extend(
                    ep.addresses
                        .iter()
                        .filter_map(|a| a.parse::<IpAddr>().ok())
                        .map(|ip| SocketAddr::new(ip, port)),
                );
            }
        }
        let mut out = if ready.is_empty() { terminating } else { ready };
        out.sort();
        out.dedup();
        out
    }

    /// The ready addresses of a Service's pods with their hostnames (for headless DNS).
    pub fn ready_addresses(&self, namespace: &str, service: &str) -> Vec<(IpAddr, Option<String>)> {
        let mut out: Vec<(IpAddr, Option<String>)> = Vec::new();
        for slice in self.slices(namespace, service) {
            for ep in slice.endpoints.iter().flatten() {
                if condition(ep) != EndpointState::Ready {
                    continue;
                }
                for a in &ep.addresses {
                    if let Ok(ip) = a.parse::<IpAddr>()
                        && !out.iter().any(|(o, _)| *o == ip)
                    {
                        out.push((ip, ep.hostname.clone()));
                    }
                }
            }
        }
        out.sort();
        out
    }
}

#[derive(Debug, PartialEq, Eq)]
enum EndpointState {
    Ready,
    ServingTerminating,
    NotServing,
}

/// An endpoint's conditions as consumers must read them: an unset `ready` means ready, and
/// an unset `serving` follows `ready`.
fn condition(ep: &Endpoint) -> EndpointState {
    let c = ep.conditions.as_ref();
    let ready = c.and_then(|c| c.ready).unwrap_or(true);
    let terminating = c.and_then(|c| c.terminating).unwrap_or(false);
    let serving = c.and_then(|c| c.serving).unwrap_or(ready);
    if ready && !terminating {
        EndpointState::Ready
    } else if serving && terminating {
        EndpointState::ServingTerminating
    } else {
        EndpointState::NotServing
    }
}

/// The port number behind Service port `name` in this slice (TCP only).
fn slice_port(slice: &EndpointSlice, name: &str) -> Option<u16> {
    slice.ports.as_ref()?.iter().find_map(|p| {
        let pname = p.name.as_deref().unwrap_or("");
        let tcp = p.protocol.as_deref().unwrap_or("TCP") == "TCP";
        if pname == name && tcp {
            p.port.and_then(|n| u16::try_from(n).ok())
        } else {
            None
        }
    })
}

/// The Service port a reference by number or by name (an Ingress backend's) means.
pub fn service_port<'a>(
    svc: &'a Service,
    number: Option<i32>,
    name: Option<&str>,
) -> Option<&'a ServicePort> {
    let ports = svc.spec.as_ref()?.ports.as_ref()?;
    ports.iter().find(|p| match (number, name) {
        (Some(n), _) if n != 0 => p.port == n,
        (_, Some(name)) if !name.is_empty() => p.name.as_deref() == Some(name),
        _ => ports.len() == 1,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn slice(name: &str, svc: &str, eps: serde_json::Value) -> Arc<EndpointSlice> {
        Arc::new(
            serde_json::from_value(json!({
                "metadata": {"name": name, "namespace": "default",
                             "labels": {SERVICE_NAME_LABEL: svc}},
                "addressType": "IPv4",
                "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
                "endpoints": eps,
            }))
            .unwrap(),
        )
    }

    #[test]
    fn ready_endpoints_across_slices_and_the_terminating_fallback() {
        let idx = SliceIndex::new(vec![
            slice(
                "a-1",
                "a",
                json!([
                    {"addresses": ["127.64.0.2"], "conditions": {"ready": true}},
                    {"addresses": ["127.64.0.3"], "conditions": {"ready": false}},
                    {"addresses": ["127.64.0.4"]},
                ]),
            ),
            slice(
                "a-2",
                "a",
                json!([
                    {"addresses": ["127.64.0.5"], "conditions": {"ready": false, "serving": true, "terminating": true}},
                    {"addresses": ["127.64.0.2"], "conditions": {"ready": true}},
                ]),
            ),
            slice(
                "b-1",
                "b",
                json!([
                    {"addresses": ["127.64.0.5"], "conditions": {"ready": false, "serving": true, "terminating": true}},
                    {"addresses": ["127.64.0.6"], "conditions": {"ready": false, "serving": false, "terminating": true}},
                ]),
            ),
        ]);
        let addrs = |v: &[&str]| -> Vec<SocketAddr> {
            v.iter()
                .map(|a| format!("{a}:8080").parse().unwrap())
                .collect()
        };
        assert_eq!(
            idx.backends("default", "a", "http"),
            addrs(&["127.64.0.2", "127.64.0.4"])
        );
        // Nothing ready: the serving terminating endpoints carry the traffic.
        assert_eq!(idx.backends("default", "b", "http"), addrs(&["127.64.0.5"]));
        assert!(idx.backends("default", "a", "other").is_empty());
        assert!(idx.backends("other", "a", "http").is_empty());
    }

    #[test]
    fn ingress_backends_name_ports_by_number_or_name() {
        let svc: Service = serde_json::from_value(json!({
            "metadata": {"name": "s"},
            "spec": {"ports": [{"name": "http", "port": 80}, {"name": "admin", "port": 9000}]},
        }))
        .unwrap();
        assert_eq!(
            service_port(&svc, Some(9000), None)
                .unwrap()
                .name
                .as_deref(),
            Some("admin")
        );
        assert_eq!(service_port(&svc, None, Some("http")).unwrap().port, 80);
        assert!(service_port(&svc, Some(81), None).is_none());
        assert!(service_port(&svc, None, None).is_none());
    }
}
