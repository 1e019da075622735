//! Service cluster IP and node port allocation: what a client sees on create, update and
//! delete, after a restart of the server over the same store, and under concurrent creates.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use wasmkube_apiserver::admission::Admission;
use wasmkube_apiserver::services::ServiceAllocator;
use wasmkube_store::{RedbStore, Store};

use crate::{Api, assert_status};

const SVCS: &str = "/api/v1/namespaces/default/services";

fn svc(name: &str, spec: Value) -> Value {
    let mut spec = spec;
    if spec.get("ports").is_none() {
        spec["ports"] = json!([{"port": 80, "targetPort": 8080}]);
    }
    json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name}, "spec": spec})
}

fn ip_of(body: &Value) -> Ipv4Addr {
    body["spec"]["clusterIP"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no cluster IP in {body}"))
}

async fn api_with_range(cidr: &str, ports: &str) -> Api {
    let admission = Admission {
        services: ServiceAllocator::new(
            cidr.parse().expect("cidr"),
            wasmkube_apiserver::services::parse_port_range(ports).expect("ports"),
        ),
        ..Admission::default()
    };
    let store: Arc<dyn Store> = Arc::new(wasmkube_store::MemoryStore::new());
    Api::with(store, admission, Duration::from_secs(30)).await
}

/// The first message of a 422, with its field.
fn cause(r: &crate::Resp) -> (String, String) {
    let c = &r.body["details"]["causes"][0];
    (
        c["field"].as_str().unwrap_or("").to_string(),
        c["message"].as_str().unwrap_or("").to_string(),
    )
}

#[tokio::test]
async fn cluster_ip_is_allocated_from_the_range_with_its_family_fields() {
    let api = Api::new().await;
    let r = api
        .post(SVCS, svc("web", json!({"selector": {"app": "web"}})))
        .await;
    assert_eq!(r.code, 201, "{}", r.text);
    let ip = ip_of(&r.body);
    let range: wasmkube_apiserver::services::ServiceCidr = "127.16.0.0/16".parse().expect("cidr");
    assert!(range.contains(ip), "{ip} outside the default range");
    assert_ne!(
        ip,
        range.first(),
        "the first address is the kubernetes Service's"
    );
    let spec = &r.body["spec"];
    assert_eq!(spec["clusterIPs"], json!([ip.to_string()]));
    assert_eq!(spec["ipFamilies"], json!(["IPv4"]));
    assert_eq!(spec["ipFamilyPolicy"], "SingleStack");
    assert_eq!(spec["type"], "ClusterIP");
    assert!(spec["ports"][0].get("nodePort").is_none());
    // What a GET returns is what was stored.
    let got = api.get(&format!("{SVCS}/web")).await;
    assert_eq!(got.body["spec"]["clusterIP"], ip.to_string());

    // Headless and ExternalName Services get no address.
    let r = api
        .post(
            SVCS,
            svc(
                "db",
                json!({"clusterIP": "None", "selector": {"app": "db"}}),
            ),
        )
        .await;
    assert_eq!(r.code, 201, "{}", r.text);
    assert_eq!(r.body["spec"]["clusterIP"], "None");
    assert_eq!(r.body["spec"]["clusterIPs"], json!(["None"]));
    let r = api
        .post(
            SVCS,
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "ext"},
                "spec": {"type": "ExternalName", "externalName": "example.com"}}),
        )
        .await;
    assert_eq!(r.code, 201, "{}", r.text);
    assert!(r.body["spec"].get("clusterIP").is_none(), "{}", r.text);
}

#[tokio::test]
async fn a_requested_cluster_ip_is_honoured_once_and_only_in_range() {
    let api = Api::new().await;
    let r = api
        .post(SVCS, svc("a", json!({"clusterIP": "127.16.3.4"})))
        .await;
    assert_eq!(r.code, 201, "{}", r.text);
    assert_eq!(r.body["spec"]["clusterIP"], "127.16.3.4");
    assert_eq!(r.body["spec"]["clusterIPs"], json!(["127.16.3.4"]));

    let r = api
        .post(SVCS, svc("b", json!({"clusterIP": "127.16.3.4"})))
        .await;
    assert_status(&r, 422, "Invalid");
    let (field, message) = cause(&r);
    assert_eq!(field, "spec.clusterIPs");
    assert!(
        message.contains("provided IP is already allocated"),
        "{message}"
    );
    assert!(
        r.body["message"]
            .as_str()
            .unwrap_or("")
            .starts_with("Service \"b\" is invalid")
    );

    let r = api
        .post(SVCS, svc("c", json!({"clusterIP": "127.99.0.1"})))
        .await;
    assert_status(&r, 422, "Invalid");
    let (field, message) = cause(&r);
    assert_eq!(field, "spec.clusterIPs");
    assert!(
        message.contains("is not in the valid range") && message.contains("127.16.0.0/16"),
        "{message}"
    );

    // Nothing was kept for the refused Services: "b" can be created with a free address.
    let r = api.post(SVCS, svc("b", json!({}))).await;
    assert_eq!(r.code, 201, "{}", r.text);
    // A dry run allocates nothing either.
    let r = api
        .post(
            &format!("{SVCS}?dryRun=All"),
            svc("dry", json!({"clusterIP": "127.16.9.9"})),
        )
        .await;
    assert_eq!(r.code, 201, "{}", r.text);
    let r = api
        .post(SVCS, svc("wet", json!({"clusterIP": "127.16.9.9"})))
        .await;
    assert_eq!(r.code, 201, "{}", r.text);
}

#[tokio::test]
async fn cluster_ip_is_immutable_and_released_on_delete() {
    let api = Api::new().await;
    let r = api
        .post(SVCS, svc("web", json!({"clusterIP": "127.16.7.7"})))
        .await;
    assert_eq!(r.code, 201, "{}", r.text);
    let mut changed = r.body.clone();
    changed["spec"]["clusterIP"] = json!("127.16.7.8");
    changed["spec"]["clusterIPs"] = json!(["127.16.7.8"]);
    let r = api.put(&format!("{SVCS}/web"), changed).await;
    assert_status(&r, 422, "Invalid");
    // Kubernetes' own wording for the primary address (ValidateServiceUpdate).
    let (field, message) = cause(&r);
    assert_eq!(field, "spec.clusterIPs[0]");
    assert!(message.contains("may not change once set"), "{message}");

    // A PUT that leaves the address out keeps it (as kubectl replace of a bare manifest does).
    let current = api.get(&format!("{SVCS}/web")).await.body;
    let mut bare = svc("web", json!({"ports": [{"port": 81}]}));
    bare["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"].clone();
    let r = api.put(&format!("{SVCS}/web"), bare).await;
    assert_eq!(r.code, 200, "{}", r.text);
    assert_eq!(r.body["spec"]["clusterIP"], "127.16.7.7");
    assert_eq!(r.body["spec"]["ports"][0]["port"], 81);

    // Still held: nobody else may take it.
    let r = api
        .post(SVCS, svc("other", json!({"clusterIP": "127.16.7.7"})))
        .await;
    assert_status(&r, 422, "Invalid");
    let r = api.delete(&format!("{SVCS}/web"), Value::Null).await;
    assert_eq!(r.code, 200, "{}", r.text);
    let r = api
        .post(SVCS, svc("other", json!({"clusterIP": "127.16.7.7"})))
        .await;
    assert_eq!(r.code, 201, "released on delete: {}", r.text);
}

#[tokio::test]
async fn a_finalizer_holds_the_address_until_the_service_is_gone() {
    let api = Api::new().await;
    let mut s = svc("lb", json!({"clusterIP": "127.16.8.8"}));
    s["metadata"]["finalizers"] = json!(["example.com/cleanup"]);
    let r = api.post(SVCS, s).await;
    assert_eq!(r.code, 201, "{}", r.text);
    let r = api.delete(&format!("{SVCS}/lb"), Value::Null).await;
    assert_eq!(r.code, 200, "{}", r.text);
    let r = api
        .post(SVCS, svc("next", json!({"clusterIP": "127.16.8.8"})))
        .await;
    assert_status(&r, 422, "Invalid");
    let r = api
        .patch(
            &format!("{SVCS}/lb"),
            "application/merge-patch+json",
            json!({"metadata": {"finalizers": null}}),
        )
        .await;
    assert_eq!(r.code, 200, "{}", r.text);
    assert_eq!(api.get(&format!("{SVCS}/lb")).await.code, 404);
    let r = api
        .post(SVCS, svc("next", json!({"clusterIP": "127.16.8.8"})))
        .await;
    assert_eq!(r.code, 201, "{}", r.text);
}

#[tokio::test]
async fn node_ports_are_allocated_requested_refused_and_released() {
    let api = Api::new().await;
    let r = api
        .post(
            SVCS,
            svc(
                "np",
                json!({"type": "NodePort", "ports": [{"name": "http", "port": 80}, {"name": "admin", "port": 81, "nodePort": 30081}]}),
            ),
        )
        .await;
    assert_eq!(r.code, 201, "{}", r.text);
    let ports = &r.body["spec"]["ports"];
    let allocated = ports[0]["nodePort"].as_u64().expect("node port");
    assert!((30000..=32767).contains(&allocated), "{allocated}");
    assert_eq!(ports[1]["nodePort"], 30081);
    assert_eq!(r.body["spec"]["externalTrafficPolicy"], "Cluster");

    let r = api
        .post(
            SVCS,
            svc(
                "np2",
                json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": 30081}]}),
            ),
        )
        .await;
    assert_status(&r, 422, "Invalid");
    let (field, message) = cause(&r);
    assert_eq!(field, "spec.ports[0].nodePort");
    assert!(
        message.contains("provided port is already allocated"),
        "{message}"
    );

    let r = api
        .post(
            SVCS,
            svc(
                "np3",
                json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": 8080}]}),
            ),
        )
        .await;
    assert_status(&r, 422, "Invalid");
    let (field, message) = cause(&r);
    assert_eq!(field, "spec.ports[0].nodePort");
    assert!(message.contains("30000-32767"), "{message}");

    // A LoadBalancer gets node ports too.
    let r = api
        .post(SVCS, svc("lb", json!({"type": "LoadBalancer"})))
        .await;
    assert_eq!(r.code, 201, "{}", r.text);
    let lb_port = r.body["spec"]["ports"][0]["nodePort"]
        .as_u64()
        .expect("lb node port");
    assert!((30000..=32767).contains(&lb_port));

    // NodePort → ClusterIP gives the node ports back; the cluster IP stays.
    let ip = r.body["spec"]["clusterIP"].clone();
    let r = api
        .patch(
            &format!("{SVCS}/np"),
            "application/merge-patch+json",
            json!({"spec": {"type": "ClusterIP"}}),
        )
        .await;
    assert_eq!(r.code, 200, "{}", r.text);
    assert!(
        r.body["spec"]["ports"][0].get("nodePort").is_none(),
        "{}",
        r.text
    );
    assert!(
        r.body["spec"]["ports"][1].get("nodePort").is_none(),
        "{}",
        r.text
    );
    let r = api
        .post(
            SVCS,
            svc(
                "np2",
                json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": 30081}]}),
            ),
        )
        .await;
    assert_eq!(r.code, 201, "released on type change: {}", r.text);

    // ClusterIP → NodePort allocates again.
    let r = api
        .patch(
            &format!("{SVCS}/np"),
            "application/merge-patch+json",
            json!({"spec": {"type": "NodePort"}}),
        )
        .await;
    assert_eq!(r.code, 200, "{}", r.text);
    let again = r.body["spec"]["ports"][0]["nodePort"]
        .as_u64()
        .expect("node port");
    assert!((30000..=32767).contains(&again));
    assert_ne!(
        r.body["spec"]["ports"][1]["nodePort"], 30081,
        "30081 is np2's now"
    );

    // Deleting the LoadBalancer frees its port.
    let r = api.delete(&format!("{SVCS}/lb"), Value::Null).await;
    assert_eq!(r.code, 200, "{}", r.text);
    let r = api
        .post(
            SVCS,
            svc(
                "np4",
                json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": lb_port}]}),
            ),
        )
        .await;
    assert_eq!(r.code, 201, "{}", r.text);
    let _ = ip;
}

#[tokio::test]
async fn external_name_to_cluster_ip_allocates_and_back_releases() {
    let api = api_with_range("127.201.0.0/28", "30000-30001").await;
    let r = api
        .post(
            SVCS,
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "ext"},
                "spec": {"type": "ExternalName", "externalName": "example.com",
                    "ports": [{"port": 80}]}}),
        )
        .await;
    assert_eq!(r.code, 201, "{}", r.text);
    let r = api
        .patch(
            &format!("{SVCS}/ext"),
            "application/merge-patch+json",
            json!({"spec": {"type": "ClusterIP", "externalName": null, "clusterIP": "127.201.0.5"}}),
        )
        .await;
    assert_eq!(r.code, 200, "{}", r.text);
    assert_eq!(r.body["spec"]["clusterIP"], "127.201.0.5");
    let r = api
        .post(SVCS, svc("dup", json!({"clusterIP": "127.201.0.5"})))
        .await;
    assert_status(&r, 422, "Invalid");
    let r = api
        .patch(
            &format!("{SVCS}/ext"),
            "application/merge-patch+json",
            json!({"spec": {"type": "ExternalName", "externalName": "example.org"}}),
        )
        .await;
    assert_eq!(r.code, 200, "{}", r.text);
    assert!(r.body["spec"].get("clusterIP").is_none(), "{}", r.text);
    let r = api
        .post(SVCS, svc("dup", json!({"clusterIP": "127.201.0.5"})))
        .await;
    assert_eq!(r.code, 201, "{}", r.text);
}

#[tokio::test]
async fn the_kubernetes_service_points_at_the_api_server() {
    let api = Api::new().await;
    let addr: std::net::SocketAddr = "127.0.0.1:6443".parse().expect("addr");
    wasmkube_apiserver::bootstrap::ensure_kubernetes_service(&api.state, addr)
        .await
        .expect("kubernetes service");
    let r = api.get(&format!("{SVCS}/kubernetes")).await;
    assert_eq!(r.code, 200, "{}", r.text);
    assert_eq!(r.body["spec"]["clusterIP"], "127.16.0.1");
    assert_eq!(r.body["spec"]["ports"][0]["port"], 443);
    assert_eq!(r.body["spec"]["ports"][0]["targetPort"], 6443);
    let ep = api
        .get("/api/v1/namespaces/default/endpoints/kubernetes")
        .await;
    assert_eq!(
        ep.body["subsets"][0]["addresses"][0]["ip"], "127.0.0.1",
        "{}",
        ep.text
    );
    assert_eq!(ep.body["subsets"][0]["ports"][0]["port"], 6443);
    let slice = api
        .get("/apis/discovery.k8s.io/v1/namespaces/default/endpointslices/kubernetes")
        .await;
    assert_eq!(
        slice.body["endpoints"][0]["addresses"][0], "127.0.0.1",
        "{}",
        slice.text
    );

    // A restart on another port brings the port up to date, keeping the address.
    let moved: std::net::SocketAddr = "127.0.0.1:7443".parse().expect("addr");
    wasmkube_apiserver::bootstrap::ensure_kubernetes_service(&api.state, moved)
        .await
        .expect("kubernetes service again");
    let r = api.get(&format!("{SVCS}/kubernetes")).await;
    assert_eq!(r.body["spec"]["clusterIP"], "127.16.0.1");
    assert_eq!(r.body["spec"]["ports"][0]["targetPort"], 7443);
    let ep = api
        .get("/api/v1/namespaces/default/endpoints/kubernetes")
        .await;
    assert_eq!(ep.body["subsets"][0]["ports"][0]["port"], 7443);
}

#[tokio::test]
async fn allocations_survive_a_restart_over_the_same_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("state.redb");
    let (ip, port) = {
        let store: Arc<dyn Store> = Arc::new(RedbStore::open(&path).expect("open"));
        let api = Api::with(store, Admission::new(), Duration::from_secs(30)).await;
        let r = api
            .post(SVCS, svc("web", json!({"type": "NodePort"})))
            .await;
        assert_eq!(r.code, 201, "{}", r.text);
        let ip = ip_of(&r.body);
        let port = r.body["spec"]["ports"][0]["nodePort"]
            .as_u64()
            .expect("port");
        api.shutdown.cancel();
        (ip, port)
    };
    // The first server's store (and its redb file lock) is gone with it.
    let store: Arc<dyn Store> = Arc::new(RedbStore::open(&path).expect("reopen"));
    let api = Api::with(store, Admission::new(), Duration::from_secs(30)).await;
    let r = api
        .post(SVCS, svc("copy", json!({"clusterIP": ip.to_string()})))
        .await;
    assert_status(&r, 422, "Invalid");
    assert!(
        r.text.contains("provided IP is already allocated"),
        "{}",
        r.text
    );
    let r = api
        .post(
            SVCS,
            svc(
                "copy",
                json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": port}]}),
            ),
        )
        .await;
    assert_status(&r, 422, "Invalid");
    assert!(
        r.text.contains("provided port is already allocated"),
        "{}",
        r.text
    );
    // And a delete after the restart frees them.
    let r = api.delete(&format!("{SVCS}/web"), Value::Null).await;
    assert_eq!(r.code, 200, "{}", r.text);
    let r = api
        .post(
            SVCS,
            svc(
                "copy",
                json!({"type": "NodePort", "clusterIP": ip.to_string(), "ports": [{"port": 80, "nodePort": port}]}),
            ),
        )
        .await;
    assert_eq!(r.code, 201, "{}", r.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_creates_never_share_an_address() {
    // A /28 has 14 usable addresses; the first is kept for `kubernetes`: 13 to hand out.
    let api = Arc::new(api_with_range("127.200.0.0/28", "30000-30009").await);
    let mut tasks = Vec::new();
    for i in 0..20 {
        let api = api.clone();
        tasks.push(tokio::spawn(async move {
            api.post(SVCS, svc(&format!("s{i}"), json!({"type": "NodePort"})))
                .await
        }));
    }
    let mut ips = BTreeSet::new();
    let mut ports = BTreeSet::new();
    let mut refused = 0;
    for t in tasks {
        let r = t.await.expect("task");
        match r.code {
            201 => {
                assert!(
                    ips.insert(ip_of(&r.body)),
                    "address handed out twice: {}",
                    r.text
                );
                let p = r.body["spec"]["ports"][0]["nodePort"]
                    .as_u64()
                    .expect("port");
                assert!(ports.insert(p), "node port handed out twice: {}", r.text);
            }
            500 => {
                assert!(r.text.contains("range is full"), "{}", r.text);
                refused += 1;
            }
            other => panic!("unexpected {other}: {}", r.text),
        }
    }
    // Node ports (10) run out before addresses (13).
    assert_eq!(ips.len(), 10, "{ips:?}");
    assert_eq!(refused, 10);
    assert!(!ips.contains(&Ipv4Addr::new(127, 200, 0, 1)));
    let list = api.get(SVCS).await;
    assert_eq!(list.body["items"].as_array().map(Vec::len), Some(10));

    // Without node ports, the addresses run out at 13.
    let mut tasks = Vec::new();
    for i in 0..8 {
        let api = api.clone();
        tasks.push(tokio::spawn(async move {
            api.post(SVCS, svc(&format!("c{i}"), json!({}))).await
        }));
    }
    let mut created = 0;
    for t in tasks {
        let r = t.await.expect("task");
        if r.code == 201 {
            assert!(
                ips.insert(ip_of(&r.body)),
                "address handed out twice: {}",
                r.text
            );
            created += 1;
        } else {
            assert_eq!(r.code, 500, "{}", r.text);
        }
    }
    assert_eq!(created, 3);
    assert_eq!(ips.len(), 13);
}

fn allocator(cidr: &str, ports: &str) -> Admission {
    Admission {
        services: ServiceAllocator::new(
            cidr.parse().expect("cidr"),
            wasmkube_apiserver::services::parse_port_range(ports).expect("ports"),
        ),
        ..Admission::default()
    }
}

/// Two API servers over one store (as over one etcd), each with its own allocator: racing
/// creates through both never share an address or a node port, and a full range is full for
/// both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_over_one_store_never_hand_out_one_address_twice() {
    let store: Arc<dyn Store> = Arc::new(wasmkube_store::MemoryStore::new());
    // 14 usable addresses, one kept for `kubernetes`: 13 Services fit; 20 node ports.
    let one = Arc::new(
        Api::with(
            store.clone(),
            allocator("127.30.0.0/28", "31000-31019"),
            Duration::from_secs(30),
        )
        .await,
    );
    let two = Arc::new(
        Api::with(
            store.clone(),
            allocator("127.30.0.0/28", "31000-31019"),
            Duration::from_secs(30),
        )
        .await,
    );
    let mut tasks = Vec::new();
    for i in 0..13 {
        let api = if i % 2 == 0 { one.clone() } else { two.clone() };
        tasks.push(tokio::spawn(async move {
            api.post(
                SVCS,
                svc(
                    &format!("s{i}"),
                    json!({"type": "NodePort", "selector": {"app": "x"}}),
                ),
            )
            .await
        }));
    }
    let mut ips = BTreeSet::new();
    let mut ports = BTreeSet::new();
    for task in tasks {
        let r = task.await.expect("task");
        assert_eq!(r.code, 201, "{}", r.text);
        assert!(
            ips.insert(ip_of(&r.body)),
            "an address was handed out twice"
        );
        let port = r.body["spec"]["ports"][0]["nodePort"]
            .as_u64()
            .expect("port");
        assert!(ports.insert(port), "a node port was handed out twice");
    }
    assert_eq!(ips.len(), 13);
    // The range is full for both servers, whatever each one has seen itself.
    for api in [&one, &two] {
        let r = api
            .post(SVCS, svc("extra", json!({"selector": {"app": "x"}})))
            .await;
        assert_eq!(r.code, 500, "{}", r.text);
        assert!(r.text.contains("range is full"), "{}", r.text);
    }
    // A requested address another server holds is refused as allocated.
    let taken = ips.iter().next().expect("an address").to_string();
    let r = one
        .post(
            SVCS,
            svc("dup", json!({"clusterIP": taken, "selector": {"app": "x"}})),
        )
        .await;
    assert_eq!(r.code, 422, "{}", r.text);
    assert!(
        r.text.contains("provided IP is already allocated"),
        "{}",
        r.text
    );

    // Deleted through one server, the address can be had through the other.
    let r = one.delete(&format!("{SVCS}/s0"), json!({})).await;
    assert_eq!(r.code, 200, "{}", r.text);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let r = two
            .post(SVCS, svc("again", json!({"selector": {"app": "x"}})))
            .await;
        if r.code == 201 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{}", r.text);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A claim whose Service was never written (its server died in between) is repaired by the
/// next start once it is old enough; a young one (a write in flight) is respected.
#[tokio::test]
async fn leaked_claims_are_repaired_on_start() {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    for (time, expect) in [(1, 201), (now, 500)] {
        let store: Arc<dyn Store> = Arc::new(wasmkube_store::MemoryStore::new());
        // Every address of the /28 but the kubernetes one (.1) is claimed by nobody's Service.
        for last in 2..=14 {
            store
                .create(
                    &format!("/registry/ranges/serviceips/127.30.0.{last}"),
                    format!(r#"{{"owner":"default/ghost","time":{time}}}"#).into(),
                )
                .await
                .expect("claim");
        }
        let api = Api::with(
            store.clone(),
            allocator("127.30.0.0/28", "31000-31001"),
            Duration::from_secs(30),
        )
        .await;
        let r = api
            .post(SVCS, svc("web", json!({"selector": {"app": "x"}})))
            .await;
        // Old claims are leaks and go; fresh ones are writes in flight elsewhere and stay.
        assert_eq!(r.code, expect, "claims from {time}: {}", r.text);
        if expect == 201 {
            let ip = ip_of(&r.body);
            let claim = store
                .get(&format!("/registry/ranges/serviceips/{ip}"))
                .await
                .expect("get")
                .expect("the claim is the new Service's");
            assert!(String::from_utf8_lossy(&claim.value).contains("default/web"));
            let left = store
                .list("/registry/ranges/serviceips/", None, None)
                .await
                .expect("list");
            assert_eq!(left.items.len(), 1, "the leaked claims were removed");
        }
    }
}
