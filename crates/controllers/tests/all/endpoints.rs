//! The Endpoints and EndpointSlice controllers against the real API server, the test playing
//! the kubelet (pod IPs and readiness).

use std::time::Duration;

use k8s_openapi::api::core::v1::{Endpoints, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

use crate::api_only::{ApiServer, until};

const WAIT: Duration = Duration::from_secs(20);

async fn server() -> ApiServer {
    let server = ApiServer::start().await;
    server.spawn(wasmkube_controllers::endpoints::run);
    server.spawn(wasmkube_controllers::endpointslice::run);
    server
}

async fn create_pod(server: &ApiServer, name: &str, labels: Value, spec_extra: Value) {
    let mut spec = json!({"nodeName": "node-a", "containers": [{"name": "c", "image": "hello",
        "ports": [{"name": "http", "containerPort": 8080}]}]});
    if let (Some(s), Some(extra)) = (spec.as_object_mut(), spec_extra.as_object()) {
        for (k, v) in extra {
            s.insert(k.clone(), v.clone());
        }
    }
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": name, "labels": labels}, "spec": spec}))
    .expect("pod");
    server
        .api::<Pod>()
        .create(&PostParams::default(), &pod)
        .await
        .unwrap_or_else(|e| panic!("creating pod {name}: {e}"));
}

/// What the kubelet reports: the pod runs at `ip`, ready or not.
async fn report(server: &ApiServer, name: &str, ip: &str, ready: bool) {
    let patch = json!({"status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
        "conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}}]}});
    server
        .api::<Pod>()
        .patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap_or_else(|e| panic!("reporting pod {name}: {e}"));
}

async fn create_service(server: &ApiServer, svc: Value) -> Service {
    let svc: Service = serde_json::from_value(svc).expect("service");
    server
        .api::<Service>()
        .create(&PostParams::default(), &svc)
        .await
        .expect("create service")
}

/// (port → (ready IPs, not-ready IPs)) of an Endpoints object.
fn addresses(ep: &Endpoints) -> Vec<(Vec<i32>, Vec<String>, Vec<String>)> {
    ep.subsets
        .iter()
        .flatten()
        .map(|s| {
            let ports = s.ports.iter().flatten().map(|p| p.port).collect();
            let ips = |a: &Option<Vec<k8s_openapi::api::core::v1::EndpointAddress>>| {
                a.iter().flatten().map(|a| a.ip.clone()).collect()
            };
            (ports, ips(&s.addresses), ips(&s.not_ready_addresses))
        })
        .collect()
}

async fn endpoints_where(
    server: &ApiServer,
    name: &str,
    what: &str,
    want: impl Fn(&Endpoints) -> bool,
) -> Endpoints {
    let api = server.api::<Endpoints>();
    until(what, WAIT, || async {
        api.get_opt(name).await.ok().flatten().filter(|ep| want(ep))
    })
    .await
}

async fn slices_of(server: &ApiServer, svc: &str) -> Vec<EndpointSlice> {
    server
        .api::<EndpointSlice>()
        .list(&ListParams::default().labels(&format!("kubernetes.io/service-name={svc}")))
        .await
        .expect("list slices")
        .items
}

/// (address, ready, serving, terminating) of every endpoint in a Service's slices.
async fn slice_endpoints(server: &ApiServer, svc: &str) -> Vec<(String, bool, bool, bool)> {
    let mut out: Vec<_> = slices_of(server, svc)
        .await
        .iter()
        .flat_map(|s| s.endpoints.clone().unwrap_or_default())
        .map(|e| {
            let c = e.conditions.unwrap_or_default();
            (
                e.addresses.join(","),
                c.ready.unwrap_or(false),
                c.serving.unwrap_or(false),
                c.terminating.unwrap_or(false),
            )
        })
        .collect();
    out.sort();
    out
}

#[tokio::test]
async fn endpoints_follow_readiness_named_ports_and_termination() {
    let server = server().await;
    let svc = create_service(
        &server,
        json!({"metadata": {"name": "web", "labels": {"team": "a"}},
            "spec": {"selector": {"app": "web"},
                "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}}),
    )
    .await;
    create_pod(&server, "a", json!({"app": "web"}), json!({})).await;
    // The same port name on another number: targetPort resolves per pod.
    create_pod(
        &server,
        "b",
        json!({"app": "web"}),
        json!({"containers": [{"name": "c", "image": "hello",
            "ports": [{"name": "http", "containerPort": 9090}]}]}),
    )
    .await;
    create_pod(&server, "other", json!({"app": "other"}), json!({})).await;
    report(&server, "a", "127.64.0.10", true).await;
    report(&server, "b", "127.64.0.11", false).await;
    report(&server, "other", "127.64.0.12", true).await;

    let ep = endpoints_where(&server, "web", "a ready and b not ready", |ep| {
        let mut got = addresses(ep);
        got.sort();
        got == vec![
            (vec![8080], vec!["127.64.0.10".into()], vec![]),
            (vec![9090], vec![], vec!["127.64.0.11".into()]),
        ]
    })
    .await;
    let a = ep
        .subsets
        .iter()
        .flatten()
        .flat_map(|s| s.addresses.iter().flatten())
        .next()
        .expect("address of a")
        .clone();
    assert_eq!(a.node_name.as_deref(), Some("node-a"));
    let target = a.target_ref.expect("targetRef");
    assert_eq!(target.kind.as_deref(), Some("Pod"));
    assert_eq!(target.name.as_deref(), Some("a"));
    assert!(target.uid.is_some());
    let port = &ep.subsets.as_ref().expect("subsets")[0]
        .ports
        .as_ref()
        .expect("ports")[0];
    assert_eq!(port.name.as_deref(), Some("http"));
    assert_eq!(port.protocol.as_deref(), Some("TCP"));
    assert_eq!(
        ep.metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("team"))
            .map(String::as_str),
        Some("a")
    );

    // The slices say the same, with conditions, labels and the Service as owner.
    until("slices of a and b", WAIT, || async {
        (slice_endpoints(&server, "web").await
            == vec![
                ("127.64.0.10".to_string(), true, true, false),
                ("127.64.0.11".to_string(), false, false, false),
            ])
        .then_some(())
    })
    .await;
    let slices = slices_of(&server, "web").await;
    assert_eq!(slices.len(), 2, "one slice per port set");
    for slice in &slices {
        let labels = slice.metadata.labels.clone().unwrap_or_default();
        assert_eq!(
            labels
                .get("endpointslice.kubernetes.io/managed-by")
                .map(String::as_str),
            Some("endpointslice-controller.k8s.io")
        );
        assert_eq!(labels.get("team").map(String::as_str), Some("a"));
        assert_eq!(slice.address_type, "IPv4");
        let owner = &slice.metadata.owner_references.as_ref().expect("owner")[0];
        assert_eq!(owner.kind, "Service");
        assert_eq!(Some(&owner.uid), svc.metadata.uid.as_ref());
        assert_eq!(owner.controller, Some(true));
        assert!(
            slice
                .metadata
                .name
                .as_deref()
                .is_some_and(|n| n.starts_with("web-"))
        );
    }

    // b becomes ready.
    report(&server, "b", "127.64.0.11", true).await;
    endpoints_where(&server, "web", "b ready", |ep| {
        addresses(ep)
            .iter()
            .any(|(p, ready, _)| p == &vec![9090] && ready == &vec!["127.64.0.11".to_string()])
    })
    .await;

    // a is being deleted (a bound pod stops gracefully): out of Endpoints, terminating in
    // the slices.
    server
        .api::<Pod>()
        .delete("a", &DeleteParams::default())
        .await
        .expect("delete a");
    endpoints_where(&server, "web", "a gone from endpoints", |ep| {
        addresses(ep) == vec![(vec![9090], vec!["127.64.0.11".into()], vec![])]
    })
    .await;
    until("a terminating in the slices", WAIT, || async {
        (slice_endpoints(&server, "web").await
            == vec![
                ("127.64.0.10".to_string(), false, true, true),
                ("127.64.0.11".to_string(), true, true, false),
            ])
        .then_some(())
    })
    .await;

    // b's labels stop matching: no endpoints at all, and one empty placeholder slice.
    server
        .api::<Pod>()
        .patch(
            "b",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"app": "moved"}}})),
        )
        .await
        .expect("relabel b");
    let _ = server
        .api::<Pod>()
        .delete("a", &DeleteParams::default().grace_period(0))
        .await;
    endpoints_where(&server, "web", "no addresses", |ep| {
        addresses(ep).is_empty()
    })
    .await;
    until("a single placeholder slice", WAIT, || async {
        let slices = slices_of(&server, "web").await;
        (slices.len() == 1 && slices[0].endpoints.as_ref().is_none_or(Vec::is_empty)).then_some(())
    })
    .await;

    // The Service goes: so do its Endpoints and slices.
    server
        .api::<Service>()
        .delete("web", &DeleteParams::default())
        .await
        .expect("delete service");
    until("endpoints and slices gone", WAIT, || async {
        let ep = server
            .api::<Endpoints>()
            .get_opt("web")
            .await
            .ok()
            .flatten();
        (ep.is_none() && slices_of(&server, "web").await.is_empty()).then_some(())
    })
    .await;
}

#[tokio::test]
async fn headless_publish_not_ready_and_selectorless_services() {
    let server = server().await;
    // A Service without a selector: its Endpoints are the user's, left alone.
    create_service(
        &server,
        json!({"metadata": {"name": "manual"}, "spec": {"ports": [{"port": 5432}]}}),
    )
    .await;
    let manual: Endpoints = serde_json::from_value(json!({"metadata": {"name": "manual"},
        "subsets": [{"addresses": [{"ip": "127.0.0.1"}], "ports": [{"port": 5432}]}]}))
    .expect("endpoints");
    server
        .api::<Endpoints>()
        .create(&PostParams::default(), &manual)
        .await
        .expect("create manual endpoints");

    create_service(
        &server,
        json!({"metadata": {"name": "db"}, "spec": {"selector": {"app": "db"},
            "clusterIP": "None", "publishNotReadyAddresses": true}}),
    )
    .await;
    create_pod(
        &server,
        "db-0",
        json!({"app": "db"}),
        json!({"hostname": "db-0", "subdomain": "db"}),
    )
    .await;
    report(&server, "db-0", "127.64.0.20", false).await;

    // Not ready, but published; headless with no ports: addresses only, with the hostname.
    let ep = endpoints_where(&server, "db", "db-0 published", |ep| {
        addresses(ep) == vec![(vec![], vec!["127.64.0.20".into()], vec![])]
    })
    .await;
    let address = &ep.subsets.as_ref().expect("subsets")[0]
        .addresses
        .as_ref()
        .expect("addresses")[0];
    assert_eq!(address.hostname.as_deref(), Some("db-0"));
    assert_eq!(
        ep.metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("service.kubernetes.io/headless"))
            .map(String::as_str),
        Some("")
    );
    until("db-0 ready in its slice", WAIT, || async {
        (slice_endpoints(&server, "db").await
            == vec![("127.64.0.20".to_string(), true, true, false)])
        .then_some(())
    })
    .await;
    let slice = &slices_of(&server, "db").await[0];
    let endpoints = slice.endpoints.clone().unwrap_or_default();
    assert_eq!(endpoints[0].hostname.as_deref(), Some("db-0"));
    assert!(slice.ports.as_ref().is_none_or(Vec::is_empty));

    // The selectorless Service was queued before "db": by now the controllers have seen it.
    let kept = server
        .api::<Endpoints>()
        .get("manual")
        .await
        .expect("manual endpoints");
    assert_eq!(
        addresses(&kept),
        vec![(vec![5432], vec!["127.0.0.1".into()], vec![])]
    );
    assert!(slices_of(&server, "manual").await.is_empty());
}
