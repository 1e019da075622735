//! The Endpoints controller (core/v1), as Kubernetes' endpoint controller: for every Service
//! with a selector, an Endpoints object of the same name listing the selected pods' addresses,
//! ready ones under `addresses` and the others under `notReadyAddresses`, one subset per set of
//! resolved ports. Services without a selector are left alone: their Endpoints are the user's.
//!
//! Informers on Services, Pods and Endpoints feed a [`WorkQueue`] keyed by Service; a pod
//! change queues the Services whose selectors match its old or new labels. A sync computes the
//! whole object from the caches and writes it only when it differs, so repeated syncs are
//! cheap and a stale cache costs a 409 and a retry, never a wrong object for long.
//!
//! The pod rules shared with [`crate::endpointslice`] live here: which pods count
//! ([`pod_included`]), how a `targetPort` resolves per pod ([`resolve_port`]), and which
//! Services select a pod ([`services_selecting`]).

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{
    EndpointAddress, EndpointPort, EndpointSubset, Endpoints, ObjectReference, Pod, Service,
    ServicePort,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{Api, DeleteParams, PostParams};
use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher;
use tokio_util::sync::CancellationToken;

use crate::informer::{self, Change, key_of, split_key};
use crate::pods;
use crate::queue::WorkQueue;

/// Services synced at once (Kubernetes' `--concurrent-endpoint-syncs` default).
const WORKERS: usize = 5;
/// The label Kubernetes puts on the Endpoints and EndpointSlices of a headless Service.
pub const HEADLESS_LABEL: &str = "service.kubernetes.io/headless";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("writing endpoints {0}")]
    Write(String, #[source] kube::Error),
    #[error("deleting endpoints {0}")]
    Delete(String, #[source] kube::Error),
}

struct Ctx {
    client: kube::Client,
    services: Store<Service>,
    pods: Store<Pod>,
    endpoints: Store<Endpoints>,
    queue: Arc<WorkQueue>,
}

/// Runs the controller until `shutdown` is cancelled.
pub async fn run(client: kube::Client, shutdown: CancellationToken) {
    let (svc_store, svc_writer) = reflector::store::<Service>();
    let (pod_store, pod_writer) = reflector::store::<Pod>();
    let (ep_store, ep_writer) = reflector::store::<Endpoints>();
    let queue = WorkQueue::new(shutdown.clone());

    let svc_informer = tokio::spawn(informer::run(
        Api::<Service>::all(client.clone()),
        watcher::Config::default(),
        svc_writer,
        shutdown.clone(),
        {
            let queue = queue.clone();
            move |change| match change {
                Change::Added(s) | Change::Updated { new: s, .. } | Change::Deleted(s) => {
                    queue.add(key_of(&*s))
                }
            }
        },
    ));
    let pod_informer = tokio::spawn(informer::run(
        Api::<Pod>::all(client.clone()),
        watcher::Config::default(),
        pod_writer,
        shutdown.clone(),
        {
            let queue = queue.clone();
            let services = svc_store.clone();
            move |change| enqueue_for_pod(&queue, &services, change)
        },
    ));
    let ep_informer = tokio::spawn(informer::run(
        Api::<Endpoints>::all(client.clone()),
        watcher::Config::default(),
        ep_writer,
        shutdown.clone(),
        {
            let queue = queue.clone();
            let services = svc_store.clone();
            // Someone else changed or deleted an Endpoints object a Service owns: put it back.
            move |change| match change {
                Change::Updated { new: ep, .. } | Change::Deleted(ep) => {
                    let key = key_of(&*ep);
                    let (ns, name) = split_key(&key);
                    if informer::get(&services, ns, name).is_some() {
                        queue.add(key);
                    }
                }
                Change::Added(_) => {}
            }
        },
    ));

    let ready = async {
        let _ = svc_store.wait_until_ready().await;
        let _ = pod_store.wait_until_ready().await;
        let _ = ep_store.wait_until_ready().await;
    };
    let started = tokio::select! {
        _ = ready => true,
        _ = shutdown.cancelled() => false,
    };
    if started {
        // Endpoints whose Service went while the controller was not watching are deleted by
        // their sync (upstream's checkLeftoverEndpoints).
        for ep in ep_store.state() {
            queue.add(key_of(&*ep));
        }
        let ctx = Arc::new(Ctx {
            client,
            services: svc_store,
            pods: pod_store,
            endpoints: ep_store,
            queue,
        });
        let workers: Vec<_> = (0..WORKERS)
            .map(|_| tokio::spawn(worker(ctx.clone())))
            .collect();
        for w in workers {
            let _ = w.await;
        }
    }
    let _ = svc_informer.await;
    let _ = pod_informer.await;
    let _ = ep_informer.await;
}

async fn worker(ctx: Arc<Ctx>) {
    while let Some(key) = ctx.queue.get().await {
        match sync(&ctx, &key).await {
            Ok(()) => ctx.queue.forget(&key),
            Err(e) => {
                crate::log_error(&e, "endpoints", &key);
                ctx.queue.add_rate_limited(&key);
            }
        }
        ctx.queue.done(&key);
    }
}

/// Queues the Services that selected the pod before the change or select it after.
pub(crate) fn enqueue_for_pod(queue: &WorkQueue, services: &Store<Service>, change: Change<Pod>) {
    let (old, new) = match change {
        Change::Added(p) | Change::Deleted(p) => (None, p),
        Change::Updated { old, new } => {
            if old.metadata.resource_version == new.metadata.resource_version {
                return;
            }
            (Some(old), new)
        }
    };
    let mut keys = services_selecting(services, &new);
    if let Some(old) = old
        && old.metadata.labels != new.metadata.labels
    {
        keys.extend(services_selecting(services, &old));
    }
    keys.sort();
    keys.dedup();
    for key in keys {
        queue.add(key);
    }
}

/// Keys of the cached Services in the pod's namespace whose selector matches it.
pub fn services_selecting(services: &Store<Service>, pod: &Pod) -> Vec<String> {
    let ns = pod.metadata.namespace.as_deref();
    let empty = BTreeMap::new();
    let labels = pod.metadata.labels.as_ref().unwrap_or(&empty);
    services
        .state()
        .into_iter()
        .filter(|s| s.metadata.namespace.as_deref() == ns)
        .filter(|s| selector_of(s).is_some_and(|sel| selects(sel, labels)))
        .map(|s| key_of(&*s))
        .collect()
}

/// A Service's selector, if it has a non-empty one (an empty selector means "no selector":
/// the Service's endpoints are managed by someone else).
pub fn selector_of(svc: &Service) -> Option<&BTreeMap<String, String>> {
    svc.spec
        .as_ref()
        .and_then(|s| s.selector.as_ref())
        .filter(|s| !s.is_empty())
}

fn selects(selector: &BTreeMap<String, String>, labels: &BTreeMap<String, String>) -> bool {
    selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// The pods of the Service's namespace its selector matches.
pub(crate) fn selected_pods(
    pods: &Store<Pod>,
    svc: &Service,
    selector: &BTreeMap<String, String>,
) -> Vec<Arc<Pod>> {
    let ns = svc.metadata.namespace.as_deref();
    let mut selected = pods.state_filter(|p| {
        p.metadata.namespace.as_deref() == ns
            && p.metadata
                .labels
                .as_ref()
                .is_some_and(|l| selects(selector, l))
    });
    selected.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    selected
}

/// Whether a pod belongs in a Service's endpoints at all: it has an IP, has not finished, and
/// is not being deleted unless `include_terminating` (upstream's `ShouldPodBeInEndpoints`).
pub fn pod_included(pod: &Pod, include_terminating: bool) -> bool {
    let has_ip = pod
        .status
        .as_ref()
        .and_then(|s| s.pod_ip.as_deref())
        .is_some_and(|ip| !ip.is_empty());
    has_ip
        && !pods::is_terminal(pod)
        && (include_terminating || pod.metadata.deletion_timestamp.is_none())
}

pub fn pod_ip(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|s| s.pod_ip.as_deref())
        .unwrap_or("")
}

/// The pod's port a Service port sends to: the number, or the container port of that name
/// and protocol (upstream's `podutil.FindPort`). `None` if this pod has no such named port.
pub fn resolve_port(pod: &Pod, port: &ServicePort) -> Option<i32> {
    let protocol = port.protocol.as_deref().unwrap_or("TCP");
    match &port.target_port {
        None => Some(port.port),
        Some(IntOrString::Int(n)) if *n == 0 => Some(port.port),
        Some(IntOrString::Int(n)) => Some(*n),
        Some(IntOrString::String(name)) => pod
            .spec
            .as_ref()?
            .containers
            .iter()
            .flat_map(|c| c.ports.iter().flatten())
            .find(|p| {
                p.name.as_deref() == Some(name.as_str())
                    && p.protocol.as_deref().unwrap_or("TCP") == protocol
            })
            .map(|p| p.container_port),
    }
}

/// The DNS hostname of a pod within a Service: only a pod that names both `hostname` and the
/// Service as its `subdomain` gets one.
pub fn hostname_for(pod: &Pod, svc: &Service) -> Option<String> {
    let spec = pod.spec.as_ref()?;
    let hostname = spec.hostname.as_deref().filter(|h| !h.is_empty())?;
    (spec.subdomain.as_deref() == svc.metadata.name.as_deref()
        && pod.metadata.namespace == svc.metadata.namespace)
        .then(|| hostname.to_string())
}

pub fn is_headless(svc: &Service) -> bool {
    svc.spec.as_ref().and_then(|s| s.cluster_ip.as_deref()) == Some("None")
}

pub fn publishes_not_ready(svc: &Service) -> bool {
    svc.spec
        .as_ref()
        .and_then(|s| s.publish_not_ready_addresses)
        .unwrap_or(false)
}

pub fn pod_reference(pod: &Pod) -> ObjectReference {
    ObjectReference {
        kind: Some("Pod".into()),
        namespace: pod.metadata.namespace.clone(),
        name: pod.metadata.name.clone(),
        uid: pod.metadata.uid.clone(),
        ..Default::default()
    }
}

/// The labels of the objects made for a Service: its own, plus the headless marker.
pub fn derived_labels(svc: &Service, reserved: &[&str]) -> BTreeMap<String, String> {
    let mut labels: BTreeMap<String, String> = svc
        .metadata
        .labels
        .clone()
        .unwrap_or_default()
        .into_iter()
        .filter(|(k, _)| k != HEADLESS_LABEL && !reserved.contains(&k.as_str()))
        .collect();
    if is_headless(svc) {
        labels.insert(HEADLESS_LABEL.into(), String::new());
    }
    labels
}

/// The subsets of a Service's Endpoints, packed as upstream's `RepackSubsets`: addresses with
/// the same resolved ports share one subset; addresses sorted by IP.
pub fn subsets(svc: &Service, selected: &[Arc<Pod>]) -> Vec<EndpointSubset> {
    let tolerate_unready = publishes_not_ready(svc);
    let ports = svc
        .spec
        .as_ref()
        .and_then(|s| s.ports.clone())
        .unwrap_or_default();
    // Resolved ports → (ready, not ready).
    type Group = (Vec<EndpointAddress>, Vec<EndpointAddress>);
    // Keyed by the resolved ports as (name, port, protocol): pods whose named ports resolve
    // alike share a subset.
    type PortsKey = Vec<(String, i32, String)>;
    let mut groups: BTreeMap<PortsKey, (Vec<EndpointPort>, Group)> = BTreeMap::new();
    for pod in selected {
        if !pod_included(pod, tolerate_unready) {
            continue;
        }
        let mut resolved: Vec<EndpointPort> = ports
            .iter()
            .filter_map(|p| {
                resolve_port(pod, p).map(|n| EndpointPort {
                    name: p.name.clone(),
                    port: n,
                    protocol: Some(p.protocol.clone().unwrap_or_else(|| "TCP".into())),
                    app_protocol: p.app_protocol.clone(),
                })
            })
            .collect();
        // A pod with none of the Service's ports is no endpoint, except of a headless
        // Service without ports (DNS only).
        if resolved.is_empty() && !(ports.is_empty() && is_headless(svc)) {
            continue;
        }
        resolved.sort_by(|a, b| (&a.name, a.port).cmp(&(&b.name, b.port)));
        let group_key = resolved
            .iter()
            .map(|p| {
                (
                    p.name.clone().unwrap_or_default(),
                    p.port,
                    p.protocol.clone().unwrap_or_default(),
                )
            })
            .collect();
        let address = EndpointAddress {
            ip: pod_ip(pod).to_string(),
            hostname: hostname_for(pod, svc),
            node_name: Some(pods::node_name(pod).to_string()).filter(|n| !n.is_empty()),
            target_ref: Some(pod_reference(pod)),
        };
        let entry = groups
            .entry(group_key)
            .or_insert_with(|| (resolved, (Vec::new(), Vec::new())));
        if tolerate_unready || pods::is_ready(pod) {
            entry.1.0.push(address);
        } else {
            entry.1.1.push(address);
        }
    }
    groups
        .into_values()
        .map(|(ports, (mut ready, mut not_ready))| {
            let order = |a: &EndpointAddress, b: &EndpointAddress| {
                (&a.ip, a.target_ref.as_ref().and_then(|r| r.uid.as_ref()))
                    .cmp(&(&b.ip, b.target_ref.as_ref().and_then(|r| r.uid.as_ref())))
            };
            ready.sort_by(order);
            not_ready.sort_by(order);
            EndpointSubset {
                addresses: Some(ready).filter(|a| !a.is_empty()),
                not_ready_addresses: Some(not_ready).filter(|a| !a.is_empty()),
                ports: Some(ports).filter(|p| !p.is_empty()),
            }
        })
        .collect()
}

/// Empty lists and absent ones read the same once stored.
fn normalized(subsets: Option<&Vec<EndpointSubset>>) -> Vec<EndpointSubset> {
    subsets
        .into_iter()
        .flatten()
        .map(|s| EndpointSubset {
            addresses: s.addresses.clone().filter(|a| !a.is_empty()),
            not_ready_addresses: s.not_ready_addresses.clone().filter(|a| !a.is_empty()),
            ports: s.ports.clone().filter(|p| !p.is_empty()),
        })
        .collect()
}

async fn sync(ctx: &Ctx, key: &str) -> Result<(), Error> {
    let (ns, name) = split_key(key);
    let api: Api<Endpoints> = Api::namespaced(ctx.client.clone(), ns);
    let Some(svc) = informer::get(&ctx.services, ns, name) else {
        // The Service is gone: so are its endpoints.
        return match api.delete(name, &DeleteParams::default()).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
            Err(e) => Err(Error::Delete(key.to_string(), e)),
        };
    };
    let Some(selector) = selector_of(&svc) else {
        return Ok(());
    };
    let selected = selected_pods(&ctx.pods, &svc, selector);
    let want = subsets(&svc, &selected);
    let labels = derived_labels(&svc, &[]);
    let existing = informer::get(&ctx.endpoints, ns, name);
    let result = match existing {
        Some(current) => {
            let same_labels = current.metadata.labels.clone().unwrap_or_default() == labels;
            if same_labels && normalized(current.subsets.as_ref()) == want {
                return Ok(());
            }
            let mut next = (*current).clone();
            next.metadata.labels = Some(labels);
            next.metadata.managed_fields = None;
            next.subsets = Some(want);
            api.replace(name, &PostParams::default(), &next).await
        }
        None => {
            let ep = Endpoints {
                metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                    name: Some(name.to_string()),
                    namespace: Some(ns.to_string()),
                    labels: Some(labels),
                    ..Default::default()
                },
                subsets: Some(want),
            };
            api.create(&PostParams::default(), &ep).await
        }
    };
    match result {
        Ok(_) => Ok(()),
        // Created meanwhile (the cache had not seen it) or the namespace is going: the next
        // sync sees the current state.
        Err(e) => Err(Error::Write(key.to_string(), e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(name: &str, ip: &str, ready: bool, ports: serde_json::Value) -> Arc<Pod> {
        Arc::new(
            serde_json::from_value(json!({
                "metadata": {"name": name, "namespace": "default", "uid": format!("uid-{name}"),
                    "labels": {"app": "web"}},
                "spec": {"nodeName": "n1", "containers": [{"name": "c", "ports": ports}]},
                "status": {"podIP": ip, "phase": "Running",
                    "conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}}]}
            }))
            .expect("pod"),
        )
    }

    fn service(spec: serde_json::Value) -> Service {
        serde_json::from_value(json!({"metadata": {"name": "web", "namespace": "default"},
            "spec": spec}))
        .expect("service")
    }

    #[test]
    fn named_ports_resolve_per_pod_and_group_subsets() {
        let svc = service(json!({"selector": {"app": "web"},
            "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}));
        let a = pod(
            "a",
            "127.64.0.3",
            true,
            json!([{"name": "http", "containerPort": 8080}]),
        );
        let b = pod(
            "b",
            "127.64.0.2",
            false,
            json!([{"name": "http", "containerPort": 9090}]),
        );
        let c = pod("c", "127.64.0.4", true, json!([]));
        let subsets = subsets(&svc, &[a, b, c]);
        assert_eq!(subsets.len(), 2, "{subsets:?}");
        let by_port: BTreeMap<i32, &EndpointSubset> = subsets
            .iter()
            .map(|s| (s.ports.as_ref().expect("ports")[0].port, s))
            .collect();
        let s8080 = by_port[&8080];
        assert_eq!(s8080.addresses.as_ref().expect("ready")[0].ip, "127.64.0.3");
        assert!(s8080.not_ready_addresses.is_none());
        let s9090 = by_port[&9090];
        assert!(s9090.addresses.is_none());
        assert_eq!(
            s9090.not_ready_addresses.as_ref().expect("not ready")[0].ip,
            "127.64.0.2"
        );
    }

    #[test]
    fn publish_not_ready_and_headless_without_ports() {
        let svc = service(json!({"selector": {"app": "web"}, "clusterIP": "None",
            "publishNotReadyAddresses": true}));
        let a = pod("a", "127.64.0.3", false, json!([]));
        let subsets = subsets(&svc, &[a]);
        assert_eq!(subsets.len(), 1);
        assert_eq!(
            subsets[0].addresses.as_ref().expect("ready")[0].ip,
            "127.64.0.3"
        );
        assert!(subsets[0].ports.is_none());
        assert_eq!(derived_labels(&svc, &[])[HEADLESS_LABEL], "");
    }
}
