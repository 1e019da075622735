//! Proxy integration tests: the real API server in-process over an in-memory store, the proxy
//! running against it through a kube `Client`, the test creating the Services and
//! EndpointSlices (as the endpoint controllers would) and real TCP backends on loopback.
//! Every wait is bounded.
//!
//! Each test uses addresses of its own under 127.250.0.0/16 so tests (and e2e clusters) run
//! side by side.

mod dns;
mod service;

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, DeleteParams, PostParams};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use wasmkube_apiserver::{ApiState, admission::Admission};
use wasmkube_proxy::{Proxy, ProxyConfig};
use wasmkube_store::{MemoryStore, Store};

/// An API server with one node's proxy running; both stop when it is dropped.
pub struct Cluster {
    pub client: kube::Client,
    pub node_ip: IpAddr,
    shutdown: CancellationToken,
}

impl Cluster {
    /// `k` picks this test's addresses: node 127.250.k.1, DNS 127.250.k.53.
    pub async fn start(k: u8) -> Cluster {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_env("WASMKUBE_TEST_LOG")
                    .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
            )
            .with_test_writer()
            .try_init();
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let shutdown = CancellationToken::new();
        let state = Arc::new(ApiState {
            store,
            // The tests ask for their own ClusterIPs in 127.250.K.0/24.
            admission: Admission {
                services: wasmkube_apiserver::services::ServiceAllocator::new(
                    "127.250.0.0/16".parse().expect("service range"),
                    wasmkube_apiserver::services::DEFAULT_NODE_PORTS,
                ),
                ..Admission::default()
            },
            subresource_handler: None,
            shutdown: shutdown.clone(),
            bookmark_interval: Duration::from_secs(30),
            token_issuer: None,
        });
        wasmkube_apiserver::bootstrap::ensure_defaults(&state)
            .await
            .expect("default objects");
        let client = kube::Client::new(wasmkube_apiserver::router(state, None, None), "default");
        let node_ip: IpAddr = format!("127.250.{k}.1").parse().expect("ip");
        let config = ProxyConfig {
            node_ip,
            cluster_dns: Some(SocketAddr::new(
                format!("127.250.{k}.53").parse().expect("ip"),
                53,
            )),
            cluster_domain: "cluster.local".into(),
            ingress_http_port: None,
            ingress_https_port: None,
            write_status: true,
        };
        let proxy = Proxy::start(client.clone(), config, shutdown.clone());
        tokio::spawn(proxy.wait());
        Cluster {
            client,
            node_ip,
            shutdown,
        }
    }

    pub fn services(&self) -> Api<Service> {
        Api::default_namespaced(self.client.clone())
    }

    pub fn slices(&self) -> Api<EndpointSlice> {
        Api::default_namespaced(self.client.clone())
    }

    pub async fn create_service(&self, v: serde_json::Value) -> Service {
        let svc: Service = serde_json::from_value(v).expect("service");
        self.services()
            .create(&PostParams::default(), &svc)
            .await
            .expect("create service")
    }

    pub async fn delete_service(&self, name: &str) {
        self.services()
            .delete(name, &DeleteParams::default())
            .await
            .expect("delete service");
    }

    /// Creates or replaces the EndpointSlice `NAME-1` of Service `name`: `ready` and
    /// `not_ready` backends on the named port `http`.
    pub async fn set_endpoints(&self, name: &str, ready: &[SocketAddr], not_ready: &[SocketAddr]) {
        let port = ready
            .iter()
            .chain(not_ready)
            .map(|a| a.port())
            .next()
            .unwrap_or(8080);
        let mut eps = Vec::new();
        for a in ready {
            eps.push(json!({"addresses": [a.ip().to_string()], "conditions": {"ready": true}}));
        }
        for a in not_ready {
            eps.push(json!({"addresses": [a.ip().to_string()], "conditions": {"ready": false}}));
        }
        let slice = json!({
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": {"name": format!("{name}-1"), "labels": {"kubernetes.io/service-name": name}},
            "addressType": "IPv4",
            "ports": [{"name": "http", "port": port, "protocol": "TCP"}],
            "endpoints": eps,
        });
        let obj: EndpointSlice = serde_json::from_value(slice).expect("slice");
        match self
            .slices()
            .get_opt(&format!("{name}-1"))
            .await
            .expect("get slice")
        {
            Some(existing) => {
                let mut obj = obj;
                obj.metadata.resource_version = existing.metadata.resource_version;
                self.slices()
                    .replace(&format!("{name}-1"), &PostParams::default(), &obj)
                    .await
                    .expect("replace slice");
            }
            None => {
                self.slices()
                    .create(&PostParams::default(), &obj)
                    .await
                    .expect("create slice");
            }
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// A TCP backend that greets each connection with its name and a newline, then echoes.
pub struct Backend {
    pub addr: SocketAddr,
    pub name: String,
    stop: CancellationToken,
}

impl Backend {
    pub async fn start(addr: SocketAddr, name: &str) -> Backend {
        let listener = TcpListener::bind(addr).await.expect("bind backend");
        let stop = CancellationToken::new();
        let greeting = format!("{name}\n");
        let s = stop.clone();
        tokio::spawn(async move {
            loop {
                let (mut conn, _) = tokio::select! {
                    a = listener.accept() => match a { Ok(a) => a, Err(_) => continue },
                    _ = s.cancelled() => return,
                };
                let greeting = greeting.clone();
                tokio::spawn(async move {
                    if conn.write_all(greeting.as_bytes()).await.is_err() {
                        return;
                    }
                    let mut buf = [0u8; 1024];
                    loop {
                        match conn.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => {
                                if conn.write_all(&buf[..n]).await.is_err() {
                                    return;
                                }
                            }
                        }
                    }
                });
            }
        });
        Backend {
            addr,
            name: name.to_string(),
            stop,
        }
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// What a client sees on connecting to `addr`: the backend's greeting, or an error.
#[derive(Debug, PartialEq)]
pub enum Seen {
    Greeting(String),
    /// Refused, reset or closed without a greeting.
    Failed,
}

pub async fn connect_once(addr: SocketAddr) -> Seen {
    let attempt = async {
        let mut s = TcpStream::connect(addr).await.ok()?;
        read_line(&mut s).await
    };
    match tokio::time::timeout(Duration::from_secs(5), attempt).await {
        Ok(Some(line)) => Seen::Greeting(line),
        _ => Seen::Failed,
    }
}

pub async fn read_line(s: &mut TcpStream) -> Option<String> {
    let mut out = Vec::new();
    let mut b = [0u8; 1];
    loop {
        match s.read(&mut b).await {
            Ok(0) | Err(_) => return None,
            Ok(_) if b[0] == b'\n' => return String::from_utf8(out).ok(),
            Ok(_) => out.push(b[0]),
        }
    }
}

/// Polls `check` until it returns `Some`, failing the test after `timeout`.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

pub fn addr(s: &str) -> SocketAddr {
    s.parse().expect("socket address")
}
