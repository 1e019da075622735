//! The EndpointSlice controller (discovery.k8s.io/v1), as Kubernetes' endpointslice
//! controller: for every Service with a selector, slices of at most [`MAX_ENDPOINTS`]
//! endpoints, one set of slices per set of resolved ports, each endpoint with its
//! `ready` / `serving` / `terminating` conditions, labelled `kubernetes.io/service-name` and
//! `endpointslice.kubernetes.io/managed-by`, and owned by the Service. A Service with no
//! endpoints keeps one empty placeholder slice, as upstream does.
//!
//! Informers on Services, Pods and the managed slices feed a [`WorkQueue`] keyed by Service.
//! Slices have generated names, so a sync reads the Service's current slices from the API
//! (not a cache that may not have seen the last sync's creates yet) before it writes: two
//! syncs of one Service never run at once (the queue guarantees it), so it never makes
//! duplicates.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher;
use tokio_util::sync::CancellationToken;

use crate::endpoints::{self as ep, derived_labels, selector_of};
use crate::informer::{self, Change, key_of, split_key};
use crate::owner;
use crate::pods;
use crate::queue::WorkQueue;

/// Services synced at once (Kubernetes' `--concurrent-service-endpoint-syncs` default).
const WORKERS: usize = 5;
/// Endpoints per slice (Kubernetes' `--max-endpoints-per-slice` default).
pub const MAX_ENDPOINTS: usize = 100;
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
pub const MANAGED_BY_LABEL: &str = "endpointslice.kubernetes.io/managed-by";
/// The `managed-by` value of this controller's slices, as in Kubernetes.
pub const CONTROLLER_NAME: &str = "endpointslice-controller.k8s.io";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("listing endpoint slices of service {0}")]
    List(String, #[source] kube::Error),
    #[error("creating an endpoint slice for service {0}")]
    Create(String, #[source] kube::Error),
    #[error("updating endpoint slice {1} of service {0}")]
    Update(String, String, #[source] kube::Error),
    #[error("deleting endpoint slice {1} of service {0}")]
    Delete(String, String, #[source] kube::Error),
}

struct Ctx {
    client: kube::Client,
    services: Store<Service>,
    pods: Store<Pod>,
    queue: Arc<WorkQueue>,
}

fn managed_selector() -> String {
    format!("{MANAGED_BY_LABEL}={CONTROLLER_NAME}")
}

/// Runs the controller until `shutdown` is cancelled.
pub async fn run(client: kube::Client, shutdown: CancellationToken) {
    let (svc_store, svc_writer) = reflector::store::<Service>();
    let (pod_store, pod_writer) = reflector::store::<Pod>();
    let (slice_store, slice_writer) = reflector::store::<EndpointSlice>();
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
            move |change| ep::enqueue_for_pod(&queue, &services, change)
        },
    ));
    let slice_informer = tokio::spawn(informer::run(
        Api::<EndpointSlice>::all(client.clone()),
        watcher::Config::default().labels(&managed_selector()),
        slice_writer,
        shutdown.clone(),
        {
            let queue = queue.clone();
            // A slice changed or deleted by someone else: its Service puts it right.
            move |change| {
                let slice = match change {
                    Change::Updated { new, .. } => new,
                    Change::Deleted(s) => s,
                    Change::Added(_) => return,
                };
                let svc = slice
                    .metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get(SERVICE_NAME_LABEL));
                if let (Some(ns), Some(svc)) = (slice.metadata.namespace.as_deref(), svc) {
                    queue.add(format!("{ns}/{svc}"));
                }
            }
        },
    ));

    let ready = async {
        let _ = svc_store.wait_until_ready().await;
        let _ = pod_store.wait_until_ready().await;
        let _ = slice_store.wait_until_ready().await;
    };
    let started = tokio::select! {
        _ = ready => true,
        _ = shutdown.cancelled() => false,
    };
    if started {
        let ctx = Arc::new(Ctx {
            client,
            services: svc_store,
            pods: pod_store,
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
    let _ = slice_informer.await;
}

async fn worker(ctx: Arc<Ctx>) {
    while let Some(key) = ctx.queue.get().await {
        match sync(&ctx, &key).await {
            Ok(()) => ctx.queue.forget(&key),
            Err(e) => {
                crate::log_error(&e, "endpointslice", &key);
                ctx.queue.add_rate_limited(&key);
            }
        }
        ctx.queue.done(&key);
    }
}

/// The endpoint a pod contributes (upstream's `podToEndpoint`).
pub fn endpoint_of(pod: &Pod, svc: &Service) -> Endpoint {
    let publish = ep::publishes_not_ready(svc);
    let serving = publish || pods::is_ready(pod);
    let terminating = pod.metadata.deletion_timestamp.is_some();
    // Kept for compatibility: `ready` is never true for a terminating pod unless the
    // Service publishes not-ready addresses.
    let ready = publish || (serving && !terminating);
    Endpoint {
        addresses: vec![ep::pod_ip(pod).to_string()],
        conditions: Some(EndpointConditions {
            ready: Some(ready),
            serving: Some(serving),
            terminating: Some(terminating),
        }),
        hostname: ep::hostname_for(pod, svc),
        node_name: Some(pods::node_name(pod).to_string()).filter(|n| !n.is_empty()),
        target_ref: Some(ep::pod_reference(pod)),
        ..Default::default()
    }
}

/// The slices a Service should have, as (ports, endpoints) chunks: endpoints grouped by
/// resolved ports, sorted by address, at most [`MAX_ENDPOINTS`] per chunk; one empty
/// placeholder if there are none.
pub fn desired(svc: &Service, selected: &[Arc<Pod>]) -> Vec<(Vec<EndpointPort>, Vec<Endpoint>)> {
    let ports = svc
        .spec
        .as_ref()
        .and_then(|s| s.ports.clone())
        .unwrap_or_default();
    // Keyed by the resolved ports as (name, port, protocol): pods whose named ports resolve
    // alike share a slice.
    type PortsKey = Vec<(String, i32, String)>;
    let mut groups: BTreeMap<PortsKey, (Vec<EndpointPort>, Vec<Endpoint>)> = BTreeMap::new();
    for pod in selected {
        // Terminating pods stay in slices, with their conditions saying so.
        if !ep::pod_included(pod, true) {
            continue;
        }
        let mut resolved: Vec<EndpointPort> = ports
            .iter()
            .filter_map(|p| {
                ep::resolve_port(pod, p).map(|n| EndpointPort {
                    name: Some(p.name.clone().unwrap_or_default()),
                    port: Some(n),
                    protocol: Some(p.protocol.clone().unwrap_or_else(|| "TCP".into())),
                    app_protocol: p.app_protocol.clone(),
                })
            })
            .collect();
        if resolved.is_empty() && !(ports.is_empty() && ep::is_headless(svc)) {
            continue;
        }
        resolved.sort_by(|a, b| (&a.name, a.port).cmp(&(&b.name, b.port)));
        let key = resolved
            .iter()
            .map(|p| {
                (
                    p.name.clone().unwrap_or_default(),
                    p.port.unwrap_or(0),
                    p.protocol.clone().unwrap_or_default(),
                )
            })
            .collect();
        groups
            .entry(key)
            .or_insert_with(|| (resolved, Vec::new()))
            .1
            .push(endpoint_of(pod, svc));
    }
    let mut out = Vec::new();
    for (_, (ports, mut endpoints)) in groups {
        endpoints.sort_by(|a, b| a.addresses.cmp(&b.addresses));
        for chunk in endpoints.chunks(MAX_ENDPOINTS) {
            out.push((ports.clone(), chunk.to_vec()));
        }
    }
    if out.is_empty() {
        out.push((Vec::new(), Vec::new()));
    }
    out
}

fn ports_key(ports: Option<&Vec<EndpointPort>>) -> Vec<(String, i32, String)> {
    let mut key: Vec<_> = ports
        .into_iter()
        .flatten()
        .map(|p| {
            (
                p.name.clone().unwrap_or_default(),
                p.port.unwrap_or(0),
                p.protocol.clone().unwrap_or_else(|| "TCP".into()),
            )
        })
        .collect();
    key.sort();
    key
}

async fn sync(ctx: &Ctx, key: &str) -> Result<(), Error> {
    let (ns, name) = split_key(key);
    let api: Api<EndpointSlice> = Api::namespaced(ctx.client.clone(), ns);
    let selector = format!("{SERVICE_NAME_LABEL}={name},{}", managed_selector());
    let existing = api
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(|e| Error::List(key.to_string(), e))?
        .items;
    let svc = informer::get(&ctx.services, ns, name);
    let svc_uid = svc.as_ref().and_then(|s| s.metadata.uid.clone());
    let Some(svc) = svc.filter(|s| selector_of(s).is_some()) else {
        // Gone, or its endpoints are now someone else's: our slices go.
        for slice in existing {
            delete(&api, key, &slice).await?;
        }
        return Ok(());
    };
    let selected = match selector_of(&svc) {
        Some(sel) => ep::selected_pods(&ctx.pods, &svc, sel),
        None => Vec::new(),
    };
    let want = desired(&svc, &selected);
    let mut labels = derived_labels(&svc, &[SERVICE_NAME_LABEL, MANAGED_BY_LABEL]);
    labels.insert(SERVICE_NAME_LABEL.into(), name.to_string());
    labels.insert(MANAGED_BY_LABEL.into(), CONTROLLER_NAME.into());
    let address_type = match svc
        .spec
        .as_ref()
        .and_then(|s| s.ip_families.as_ref())
        .and_then(|f| f.first())
        .map(String::as_str)
    {
        Some("IPv6") => "IPv6",
        _ => "IPv4",
    };

    // Reusable slices per port set, oldest name first; slices of an earlier Service of the
    // same name (another uid) or another address type are deleted.
    let mut reusable: BTreeMap<Vec<(String, i32, String)>, Vec<EndpointSlice>> = BTreeMap::new();
    let mut stale = Vec::new();
    for slice in existing {
        let ours = svc_uid
            .as_deref()
            .is_some_and(|uid| owner::controlled_by(&slice.metadata, uid));
        if ours && slice.address_type == address_type {
            reusable
                .entry(ports_key(slice.ports.as_ref()))
                .or_default()
                .push(slice);
        } else {
            stale.push(slice);
        }
    }
    for list in reusable.values_mut() {
        list.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
        list.reverse();
    }
    for (ports, endpoints) in want {
        let slot = reusable
            .get_mut(&ports_key(Some(&ports)))
            .and_then(Vec::pop);
        let ports = Some(ports).filter(|p| !p.is_empty());
        match slot {
            Some(current) => {
                let same = current.endpoints.clone().unwrap_or_default() == endpoints
                    && current.ports.clone().filter(|p| !p.is_empty()) == ports
                    && current.metadata.labels.as_ref() == Some(&labels);
                if same {
                    continue;
                }
                let slice_name = current.metadata.name.clone().unwrap_or_default();
                let mut next = current;
                next.endpoints = Some(endpoints);
                next.ports = ports;
                next.metadata.labels = Some(labels.clone());
                next.metadata.managed_fields = None;
                api.replace(&slice_name, &PostParams::default(), &next)
                    .await
                    .map_err(|e| Error::Update(key.to_string(), slice_name, e))?;
            }
            None => {
                let slice = EndpointSlice {
                    metadata: ObjectMeta {
                        generate_name: Some(format!("{name}-")),
                        namespace: Some(ns.to_string()),
                        labels: Some(labels.clone()),
                        owner_references: Some(vec![owner::controller_ref(&*svc)]),
                        ..Default::default()
                    },
                    address_type: address_type.into(),
                    endpoints: Some(endpoints),
                    ports,
                };
                api.create(&PostParams::default(), &slice)
                    .await
                    .map_err(|e| Error::Create(key.to_string(), e))?;
            }
        }
    }
    for slice in reusable.into_values().flatten().chain(stale) {
        delete(&api, key, &slice).await?;
    }
    Ok(())
}

async fn delete(api: &Api<EndpointSlice>, key: &str, slice: &EndpointSlice) -> Result<(), Error> {
    let slice_name = slice.metadata.name.clone().unwrap_or_default();
    match api.delete(&slice_name, &DeleteParams::default()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(e) => Err(Error::Delete(key.to_string(), slice_name, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(name: &str, ip: &str, ready: bool, deleting: bool) -> Arc<Pod> {
        let mut meta = json!({"name": name, "namespace": "default", "uid": format!("uid-{name}"),
            "labels": {"app": "web"}});
        if deleting {
            meta["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
        }
        Arc::new(
            serde_json::from_value(json!({
                "metadata": meta,
                "spec": {"nodeName": "n1", "containers": [{"name": "c"}]},
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
    fn conditions_of_ready_unready_and_terminating_pods() {
        let svc = service(json!({"selector": {"app": "web"}, "ports": [{"port": 80}]}));
        let out = desired(
            &svc,
            &[
                pod("a", "127.64.0.1", true, false),
                pod("b", "127.64.0.2", false, false),
                pod("c", "127.64.0.3", true, true),
            ],
        );
        assert_eq!(out.len(), 1);
        let conds: Vec<(bool, bool, bool)> = out[0]
            .1
            .iter()
            .map(|e| {
                let c = e.conditions.clone().expect("conditions");
                (
                    c.ready.expect("ready"),
                    c.serving.expect("serving"),
                    c.terminating.expect("terminating"),
                )
            })
            .collect();
        assert_eq!(
            conds,
            vec![
                (true, true, false),
                (false, false, false),
                (false, true, true)
            ]
        );
        assert_eq!(out[0].0[0].port, Some(80));
    }

    #[test]
    fn chunks_and_placeholder() {
        let svc = service(json!({"selector": {"app": "web"}, "ports": [{"port": 80}]}));
        let many: Vec<Arc<Pod>> = (0..150)
            .map(|i| pod(&format!("p{i}"), &format!("127.64.1.{i}"), true, false))
            .collect();
        let out = desired(&svc, &many);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].1.len(), MAX_ENDPOINTS);
        assert_eq!(out[1].1.len(), 50);
        let none = desired(&svc, &[]);
        assert_eq!(none.len(), 1);
        assert!(none[0].0.is_empty() && none[0].1.is_empty());
    }
}
