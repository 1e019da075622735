//! `pods/log` through the API server from a real kubelet server (HTTPS, pinned certificate,
//! bearer token) that serves CRI log files of a fake pod manager.

use std::collections::HashMap;
use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request};
use futures::future::BoxFuture;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;
use wasmkube_apiserver::node_proxy::{KUBELET_SERVING_CERT_ANNOTATION, NodeProxy};
use wasmkube_apiserver::{ApiState, Authenticator, UserInfo, admission::Admission};
use wasmkube_kubelet::logs::format_record;
use wasmkube_kubelet::server::{self, ContainerLog, LogLookupError, PodLogs};
use wasmkube_store::{MemoryStore, Store};

use crate::{Api, TOKEN, assert_status};

const KUBELET_TOKEN: &str = "kubelet-token-for-tests";
const PODS: &str = "/api/v1/namespaces/default/pods";

/// A container's current log, whether it has exited, and its previous instance's log.
struct Instance {
    path: PathBuf,
    exited: tokio::sync::watch::Receiver<bool>,
    previous: Option<PathBuf>,
}

/// The pod manager of the test node: pod name → container → instance.
struct FakePods(HashMap<String, HashMap<String, Instance>>);

impl PodLogs for FakePods {
    fn container_log(
        &self,
        _namespace: &str,
        pod: &str,
        container: &str,
        previous: bool,
    ) -> Result<ContainerLog, LogLookupError> {
        let instance = self
            .0
            .get(pod)
            .ok_or_else(|| LogLookupError::PodNotFound { pod: pod.into() })?
            .get(container)
            .ok_or_else(|| LogLookupError::ContainerNotFound {
                pod: pod.into(),
                container: container.into(),
            })?;
        if previous {
            let path =
                instance
                    .previous
                    .clone()
                    .ok_or_else(|| LogLookupError::PreviousNotFound {
                        pod: pod.into(),
                        container: container.into(),
                    })?;
            return Ok(ContainerLog {
                path,
                done: Box::pin(async {}),
            });
        }
        let mut exited = instance.exited.clone();
        let done: BoxFuture<'static, ()> = Box::pin(async move {
            let _ = exited.wait_for(|e| *e).await;
        });
        Ok(ContainerLog {
            path: instance.path.clone(),
            done,
        })
    }
}

struct Cluster {
    api: Api,
    _dir: tempfile::TempDir,
    tail_log: PathBuf,
    exit: tokio::sync::watch::Sender<bool>,
}

fn record(secs: i64, text: &str) -> String {
    let t = jiff::Timestamp::from_second(secs).expect("time");
    format_record(t, "stdout", true, text)
}

fn running(name: &str) -> Value {
    json!({"name": name, "image": "i:1", "imageID": "", "ready": true, "restartCount": 0,
        "state": {"running": {"startedAt": "2026-01-01T00:00:00Z"}}})
}

impl Cluster {
    async fn new() -> Cluster {
        let dir = tempfile::tempdir().expect("tempdir");
        let now = jiff::Timestamp::now().as_second();
        let app_log = dir.path().join("app.log");
        std::fs::write(
            &app_log,
            format!(
                "{}{}{}",
                record(now - 3600, "an hour ago"),
                record(now - 5, "five seconds ago"),
                record(now, "now")
            ),
        )
        .expect("write");
        let previous_log = dir.path().join("app-previous.log");
        std::fs::write(&previous_log, record(now - 7200, "before the crash")).expect("write");
        let tail_log = dir.path().join("tail.log");
        std::fs::write(&tail_log, record(now, "first")).expect("write");

        let (exit, exited) = tokio::sync::watch::channel(false);
        let (_, never) = tokio::sync::watch::channel(false);
        let instance = |path: &PathBuf, exited: &tokio::sync::watch::Receiver<bool>| Instance {
            path: path.clone(),
            exited: exited.clone(),
            previous: None,
        };
        let mut pods = HashMap::new();
        pods.insert(
            "p".to_string(),
            HashMap::from([
                (
                    "app".to_string(),
                    Instance {
                        previous: Some(previous_log),
                        ..instance(&app_log, &never)
                    },
                ),
                ("init".to_string(), instance(&app_log, &never)),
            ]),
        );
        pods.insert(
            "single".to_string(),
            HashMap::from([("tail".to_string(), instance(&tail_log, &exited))]),
        );
        let pods: Arc<dyn PodLogs> = Arc::new(FakePods(pods));

        let shutdown = CancellationToken::new();
        let ip: IpAddr = [127, 0, 0, 1].into();
        let cert = server::serving_cert(&dir.path().join("pki"), ip, "node-a").expect("cert");
        let kubelet = server::start(
            (ip, 0).into(),
            &cert,
            pods.clone(),
            Some(KUBELET_TOKEN.into()),
            shutdown.clone(),
        )
        .await
        .expect("kubelet");
        // A kubelet that does not accept the API server's token.
        let stranger = server::start(
            (ip, 0).into(),
            &cert,
            pods,
            Some("another-token".into()),
            shutdown.clone(),
        )
        .await
        .expect("kubelet");
        // A certificate for the same address that node-a does not serve.
        let impostor = server::serving_cert(&dir.path().join("other"), ip, "node-a").expect("cert");
        let gone: SocketAddr = {
            let l = std::net::TcpListener::bind((ip, 0)).expect("bind");
            l.local_addr().expect("addr")
        };

        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let state = Arc::new(ApiState {
            store: store.clone(),
            admission: Admission::new(),
            subresource_handler: Some(Arc::new(NodeProxy::with_shutdown(
                store.clone(),
                Some(KUBELET_TOKEN.into()),
                shutdown.clone(),
            ))),
            shutdown: shutdown.clone(),
            bookmark_interval: Duration::from_secs(30),
            token_issuer: None,
        });
        wasmkube_apiserver::bootstrap::ensure_defaults(&state)
            .await
            .expect("defaults");
        let auth = Arc::new(Authenticator::new());
        auth.add_token(
            TOKEN,
            UserInfo {
                username: "admin".into(),
                groups: vec!["system:masters".into()],
            },
        );
        let api = Api {
            router: wasmkube_apiserver::router(state.clone(), Some(auth), None),
            store,
            state,
            shutdown,
        };

        for (node, addr, cert_pem) in [
            ("node-a", Some(kubelet.local_addr()), Some(&cert.cert_pem)),
            (
                "node-stranger",
                Some(stranger.local_addr()),
                Some(&cert.cert_pem),
            ),
            (
                "node-impostor",
                Some(kubelet.local_addr()),
                Some(&impostor.cert_pem),
            ),
            ("node-gone", Some(gone), Some(&cert.cert_pem)),
            ("node-new", None, None),
        ] {
            add_node(&api, node, addr, cert_pem.map(String::as_str)).await;
        }

        add_pod(
            &api,
            json!({"metadata": {"name": "p"}, "spec": {"nodeName": "node-a",
                "initContainers": [{"name": "init", "image": "i:1"}],
                "containers": [{"name": "app", "image": "i:1"}, {"name": "side", "image": "i:1"},
                    {"name": "new", "image": "i:1"}]}}),
            json!({
                "initContainerStatuses": [{"name": "init", "image": "i:1", "imageID": "",
                    "ready": false, "restartCount": 0,
                    "state": {"terminated": {"exitCode": 0}}}],
                "containerStatuses": [running("app"),
                    {"name": "side", "image": "i:1", "imageID": "", "ready": false, "restartCount": 0,
                        "state": {"waiting": {"reason": "ImagePullBackOff"}}}],
            }),
        )
        .await;
        let single = |name: &str, node: Option<&str>, container: &str| {
            let mut pod = json!({"metadata": {"name": name},
                "spec": {"containers": [{"name": container, "image": "i:1"}]}});
            if let Some(node) = node {
                pod["spec"]["nodeName"] = json!(node);
            }
            pod
        };
        add_pod(
            &api,
            single("single", Some("node-a"), "tail"),
            json!({"containerStatuses": [running("tail")]}),
        )
        .await;
        add_pod(
            &api,
            single("unknown-to-kubelet", Some("node-a"), "app"),
            json!({"containerStatuses": [running("app")]}),
        )
        .await;
        add_pod(&api, single("pending", None, "app"), json!({})).await;
        for node in [
            "node-stranger",
            "node-impostor",
            "node-gone",
            "node-new",
            "node-missing",
        ] {
            add_pod(
                &api,
                single(&format!("on-{node}"), Some(node), "app"),
                json!({"containerStatuses": [running("app")]}),
            )
            .await;
        }

        Cluster {
            api,
            _dir: dir,
            tail_log,
            exit,
        }
    }

    async fn log(&self, pod: &str, query: &str) -> crate::Resp {
        self.api.get(&format!("{PODS}/{pod}/log?{query}")).await
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.api.shutdown.cancel();
    }
}

async fn add_node(api: &Api, name: &str, addr: Option<SocketAddr>, cert_pem: Option<&str>) {
    let mut node = json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}});
    if let Some(pem) = cert_pem {
        node["metadata"]["annotations"] = json!({KUBELET_SERVING_CERT_ANNOTATION: pem});
    }
    let r = api.post("/api/v1/nodes", node).await;
    assert_eq!(r.code, 201, "{}", r.text);
    if let Some(addr) = addr {
        let status = json!({"status": {
            "addresses": [{"type": "Hostname", "address": name},
                {"type": "InternalIP", "address": addr.ip().to_string()}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": addr.port()}},
        }});
        let r = api
            .patch(
                &format!("/api/v1/nodes/{name}/status"),
                "application/merge-patch+json",
                status,
            )
            .await;
        assert_eq!(r.code, 200, "{}", r.text);
    }
}

async fn add_pod(api: &Api, mut pod: Value, status: Value) {
    pod["apiVersion"] = json!("v1");
    pod["kind"] = json!("Pod");
    let name = pod["metadata"]["name"].as_str().expect("name").to_string();
    let r = api.post(PODS, pod).await;
    assert_eq!(r.code, 201, "{}", r.text);
    let r = api
        .patch(
            &format!("{PODS}/{name}/status"),
            "application/merge-patch+json",
            json!({"status": status}),
        )
        .await;
    assert_eq!(r.code, 200, "{}", r.text);
}

#[test]
fn the_annotation_is_the_kubelets() {
    assert_eq!(
        KUBELET_SERVING_CERT_ANNOTATION,
        server::SERVING_CERT_ANNOTATION
    );
}

#[tokio::test]
async fn logs_come_from_the_node() {
    let c = Cluster::new().await;
    let r = c.log("p", "container=app").await;
    assert_eq!(r.code, 200, "{}", r.text);
    assert!(
        r.headers["content-type"]
            .to_str()
            .is_ok_and(|t| t.starts_with("text/plain")),
        "{:?}",
        r.headers
    );
    assert_eq!(r.text, "an hour ago\nfive seconds ago\nnow\n");
    assert_eq!(
        c.log("p", "container=app&tailLines=2").await.text,
        "five seconds ago\nnow\n"
    );
    assert_eq!(
        c.log("p", "container=app&sinceSeconds=60").await.text,
        "five seconds ago\nnow\n"
    );
    let since = jiff::Timestamp::now() - jiff::SignedDuration::from_secs(60);
    assert_eq!(
        c.log("p", &format!("container=app&sinceTime={since}"))
            .await
            .text,
        "five seconds ago\nnow\n"
    );
    assert_eq!(
        c.log("p", "container=app&limitBytes=8").await.text,
        "an hour "
    );
    let r = c
        .log("p", "container=app&timestamps=true&tailLines=1")
        .await;
    let (stamp, line) = r.text.split_once(' ').expect("timestamped");
    assert!(stamp.parse::<jiff::Timestamp>().is_ok(), "{}", r.text);
    assert_eq!(line, "now\n");
    assert_eq!(
        c.log("p", "container=app&previous=true").await.text,
        "before the crash\n"
    );
    // An init container's log, and the only container chosen without being named.
    assert_eq!(c.log("p", "container=init&tailLines=1").await.text, "now\n");
    assert_eq!(c.log("single", "").await.text, "first\n");
}

#[tokio::test]
async fn follow_streams_until_the_container_exits() {
    let c = Cluster::new().await;
    let req = Request::builder()
        .method(Method::GET)
        .uri(format!("{PODS}/single/log?follow=true"))
        .header("authorization", format!("Bearer {TOKEN}"))
        .body(Body::empty())
        .expect("request");
    let resp = c.api.router.clone().oneshot(req).await.expect("infallible");
    assert_eq!(resp.status().as_u16(), 200);
    let mut body = resp.into_body();
    let mut received = String::new();
    let mut next = async |received: &mut String| -> bool {
        let frame = tokio::time::timeout(Duration::from_secs(10), body.frame())
            .await
            .expect("in time");
        match frame {
            Some(frame) => {
                if let Ok(data) = frame.expect("frame").into_data() {
                    received.push_str(&String::from_utf8_lossy(&data));
                }
                true
            }
            None => false,
        }
    };
    while received != "first\n" {
        assert!(next(&mut received).await, "ended early: {received:?}");
    }
    {
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&c.tail_log)
            .expect("open");
        f.write_all(record(jiff::Timestamp::now().as_second(), "second").as_bytes())
            .expect("append");
    }
    while received != "first\nsecond\n" {
        assert!(next(&mut received).await, "ended early: {received:?}");
    }
    c.exit.send_replace(true);
    while next(&mut received).await {}
    assert_eq!(received, "first\nsecond\n");
}

#[tokio::test]
async fn requests_are_checked_like_kubernetes() {
    let c = Cluster::new().await;
    let r = c.log("absent", "").await;
    assert_status(&r, 404, "NotFound");
    assert_eq!(r.body["message"], "pods \"absent\" not found");

    let r = c.log("p", "").await;
    assert_status(&r, 400, "BadRequest");
    assert_eq!(
        r.body["message"],
        "a container name must be specified for pod p, choose one of: [app side new] or one of the init containers: [init]"
    );
    let r = c.log("p", "container=nope").await;
    assert_status(&r, 400, "BadRequest");
    assert_eq!(r.body["message"], "container nope is not valid for pod p");
    let r = c.log("p", "container=side").await;
    assert_status(&r, 400, "BadRequest");
    assert_eq!(
        r.body["message"],
        "container \"side\" in pod \"p\" is waiting to start: trying and failing to pull image"
    );
    let r = c.log("p", "container=new").await;
    assert_status(&r, 400, "BadRequest");
    assert_eq!(
        r.body["message"],
        "container \"new\" in pod \"p\" is waiting to start: ContainerCreating"
    );
    let r = c.log("pending", "").await;
    assert_status(&r, 400, "BadRequest");
    assert_eq!(
        r.body["message"],
        "container \"app\" in pod \"pending\" is waiting to start: ContainerCreating"
    );
    for (query, field) in [
        ("tailLines=-1", "tailLines"),
        ("tailLines=ten", "tailLines"),
        ("sinceSeconds=-5", "sinceSeconds"),
        ("limitBytes=x", "limitBytes"),
        ("sinceTime=yesterday", "sinceTime"),
    ] {
        let r = c.log("single", query).await;
        assert_status(&r, 400, "BadRequest");
        let message = r.body["message"].as_str().unwrap_or_default();
        assert!(message.starts_with(field), "{query}: {message}");
    }
}

#[tokio::test]
async fn kubelet_answers_and_failures_reach_the_client() {
    let c = Cluster::new().await;
    // The kubelet's own Status passes through.
    let r = c.log("single", "previous=true").await;
    assert_status(&r, 400, "BadRequest");
    assert_eq!(
        r.body["message"],
        "previous terminated container \"tail\" in pod \"single\" not found"
    );
    let r = c.log("unknown-to-kubelet", "").await;
    assert_status(&r, 404, "NotFound");
    assert_eq!(r.body["message"], "pods \"unknown-to-kubelet\" not found");

    let r = c.log("on-node-gone", "").await;
    assert_status(&r, 503, "ServiceUnavailable");
    let message = r.body["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with("node \"node-gone\" is unreachable"),
        "{message}"
    );
    // A kubelet serving a certificate other than the one its Node publishes is not trusted.
    let r = c.log("on-node-impostor", "").await;
    assert_status(&r, 503, "ServiceUnavailable");
    let message = r.body["message"].as_str().unwrap_or_default();
    assert!(message.contains("node-impostor"), "{message}");
    let r = c.log("on-node-stranger", "").await;
    assert_status(&r, 502, "BadGateway");
    let r = c.log("on-node-new", "").await;
    assert_status(&r, 503, "ServiceUnavailable");
    assert_eq!(
        r.body["message"],
        "node \"node-new\" does not report an InternalIP address"
    );
    let r = c.log("on-node-missing", "").await;
    assert_status(&r, 503, "ServiceUnavailable");
    assert_eq!(r.body["message"], "node \"node-missing\" is not registered");

    // The other node subresources are not offered.
    let r = c.api.get(&format!("{PODS}/single/exec?command=ls")).await;
    assert_status(&r, 503, "ServiceUnavailable");
    assert_eq!(
        r.body["message"],
        "the exec subresource is not available on this server"
    );
    let r = c.api.post(&format!("{PODS}/single/log"), json!({})).await;
    assert_status(&r, 405, "MethodNotAllowed");
}
