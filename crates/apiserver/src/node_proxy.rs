//! The subresources that live on nodes, served by asking the node's kubelet: `pods/log` is
//! forwarded to `GET /containerLogs/...` on the node the pod is bound to; `pods/exec` and
//! `pods/portforward` are WebSocket upgrades, passed on to the kubelet's `/exec/...` and
//! `/portForward/...` and then spliced byte for byte, so the streaming protocols
//! (`channel.k8s.io`, SPDY tunnelled in WebSocket messages) are the kubelet's business alone.
//!
//! What the API server can check from stored objects it checks itself, with Kubernetes'
//! messages (which container, whether it has started, the log options); the rest (whether the
//! kubelet has that container instance) comes back from the kubelet as a `Status` and passes
//! through unchanged.
//!
//! Kubelets serve with self-signed certificates published on their Node object (annotation
//! [`KUBELET_SERVING_CERT_ANNOTATION`]), and the client for a node trusts exactly that
//! certificate. Only authenticated API clients can write Nodes, so the pin is as strong as the
//! API's own authentication. Clients are cached per node and certificate: a `kubectl logs -f`
//! storm must not rebuild a TLS configuration per request.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use futures::future::BoxFuture;
use serde_json::Value;
use tokio_util::sync::CancellationToken;
use wasmkube_api::registry::{self, Subresource};
use wasmkube_store::Store;

use crate::error::{ApiError, ApiResult};
use crate::objects;
use crate::request::{Query, ResourcePath};
use crate::state::SubresourceHandler;

/// The Node annotation holding the kubelet's serving certificate (PEM); the kubelet publishes
/// it under the same name.
pub const KUBELET_SERVING_CERT_ANNOTATION: &str = "wasmkube.io/kubelet-serving-cert";

/// How long connecting to a kubelet may take: an unreachable node should fail a request
/// quickly rather than hold it until the client gives up.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a node could not be asked.
#[derive(Debug, thiserror::Error)]
pub enum NodeProxyError {
    #[error("node \"{node}\" is not registered")]
    NodeNotFound { node: String },
    #[error("node \"{node}\" does not report {missing}")]
    NodeIncomplete { node: String, missing: &'static str },
    #[error("the serving certificate published by node \"{node}\" is not usable")]
    Certificate {
        node: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("node \"{node}\" is unreachable at {url}")]
    Unreachable {
        node: String,
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("the kubelet of node \"{node}\" rejected the API server's credentials")]
    Rejected { node: String },
}

impl From<NodeProxyError> for ApiError {
    fn from(e: NodeProxyError) -> Self {
        // The causes (refused connection, certificate mismatch) are what an operator needs to
        // fix the node, so they go into the message the client prints.
        let mut message = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(cause) = source {
            message.push_str(": ");
            message.push_str(&cause.to_string());
            source = cause.source();
        }
        match e {
            NodeProxyError::Rejected { .. } => ApiError::new(502, "BadGateway", message),
            _ => ApiError::new(503, "ServiceUnavailable", message),
        }
    }
}

/// Serves `pods/log` from kubelets; the other node subresources are not offered yet.
#[derive(Clone)]
pub struct NodeProxy {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn Store>,
    kubelet_token: Option<String>,
    shutdown: Option<CancellationToken>,
    /// node name → (pinned certificate PEM, client trusting it). One entry per node, so a
    /// re-issued certificate replaces the old client rather than adding to it.
    clients: Mutex<HashMap<String, (String, reqwest::Client)>>,
}

impl NodeProxy {
    /// `kubelet_token` is sent as the bearer token to every kubelet; `None` when kubelets run
    /// without authentication (insecure dev mode).
    pub fn new(store: Arc<dyn Store>, kubelet_token: Option<String>) -> Self {
        Self::build(store, kubelet_token, None)
    }

    /// Like [`NodeProxy::new`], ending streamed (following) responses when `shutdown` is
    /// cancelled, so they do not hold the server's shutdown up.
    pub fn with_shutdown(
        store: Arc<dyn Store>,
        kubelet_token: Option<String>,
        shutdown: CancellationToken,
    ) -> Self {
        Self::build(store, kubelet_token, Some(shutdown))
    }

    fn build(
        store: Arc<dyn Store>,
        kubelet_token: Option<String>,
        shutdown: Option<CancellationToken>,
    ) -> Self {
        NodeProxy {
            inner: Arc::new(Inner {
                store,
                kubelet_token,
                shutdown,
                clients: Mutex::new(HashMap::new()),
            }),
        }
    }
}

impl SubresourceHandler for NodeProxy {
    fn handle(
        &self,
        path: ResourcePath,
        name: String,
        subresource: Subresource,
        method: Method,
        uri: Uri,
        _headers: HeaderMap,
        _body: Bytes,
    ) -> BoxFuture<'static, ApiResult<Response>> {
        let inner = self.inner.clone();
        Box::pin(async move {
            match (subresource, method) {
                (Subresource::Log, Method::GET) => inner.log(path, name, uri).await,
                (Subresource::Log, method) => Err(ApiError::method_not_allowed(format!(
                    "the server does not allow this method ({method}) on the requested resource"
                ))),
                (other, _) => Err(ApiError::new(
                    503,
                    "ServiceUnavailable",
                    format!(
                        "the {} subresource is not available on this server",
                        other.name()
                    ),
                )),
            }
        })
    }

    fn upgrade(
        &self,
        path: ResourcePath,
        name: String,
        subresource: Subresource,
        req: axum::extract::Request,
    ) -> BoxFuture<'static, ApiResult<Response>> {
        let inner = self.inner.clone();
        Box::pin(async move { inner.upgrade(path, name, subresource, req).await })
    }

    fn node_summaries(&self) -> BoxFuture<'static, Vec<(String, Value)>> {
        let inner = self.inner.clone();
        Box::pin(async move { inner.summaries().await })
    }
}

/// How long one node gets to answer for its usage summary.
const SUMMARY_TIMEOUT: Duration = Duration::from_secs(3);

/// What a `pods/log` request asks for, validated.
#[derive(Debug, Default, PartialEq, Eq)]
struct LogQuery {
    container: Option<String>,
    previous: bool,
    /// The options for the kubelet, normalised.
    forward: Vec<(&'static str, String)>,
}

/// Kubernetes' query conversion: a present boolean is true unless it says false.
fn flag(value: &str) -> bool {
    !(value == "0" || value.eq_ignore_ascii_case("f") || value.eq_ignore_ascii_case("false"))
}

fn number(field: &str, value: &str, min: i64) -> ApiResult<i64> {
    let n: i64 = value.parse().map_err(|_| {
        ApiError::bad_request(format!(
            "{field}: Invalid value: {value:?}: must be an integer"
        ))
    })?;
    if n < min {
        let bound = if min == 0 {
            "must be greater than or equal to 0"
        } else {
            "must be greater than 0"
        };
        return Err(ApiError::bad_request(format!(
            "{field}: Invalid value: {n}: {bound}"
        )));
    }
    Ok(n)
}

/// Validates the options as Kubernetes validates `PodLogOptions`.
fn log_query(query: &Query) -> ApiResult<LogQuery> {
    let raw = |key: &str| query.0.get(key).map(String::as_str);
    let mut out = LogQuery {
        container: query.get("container").map(str::to_string),
        previous: raw("previous").is_some_and(flag),
        forward: Vec::new(),
    };
    for key in ["follow", "timestamps", "previous"] {
        if raw(key).is_some_and(flag) {
            out.forward.push((key, "true".into()));
        }
    }
    for (key, min) in [("tailLines", 0), ("sinceSeconds", 1), ("limitBytes", 1)] {
        if let Some(v) = query.get(key) {
            out.forward.push((key, number(key, v, min)?.to_string()));
        }
    }
    if let Some(v) = query.get("sinceTime") {
        let t: jiff::Timestamp = v.parse().map_err(|_| {
            ApiError::bad_request(format!(
                "sinceTime: Invalid value: {v:?}: must be an RFC3339 time"
            ))
        })?;
        if query.get("sinceSeconds").is_some() {
            return Err(ApiError::bad_request(
                "at most one of `sinceTime` or `sinceSeconds` may be specified",
            ));
        }
        out.forward.push(("sinceTime", t.to_string()));
    }
    Ok(out)
}

fn names(pod: &Value, list: &str) -> Vec<String> {
    pod["spec"][list]
        .as_array()
        .map(|cs| {
            cs.iter()
                .filter_map(|c| c["name"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// The container a request means: the one named, or the pod's only container.
fn choose_container(pod: &Value, pod_name: &str, requested: Option<&str>) -> ApiResult<String> {
    let containers = names(pod, "containers");
    let init = names(pod, "initContainers");
    match requested {
        Some(c) => {
            let known = containers
                .iter()
                .chain(&init)
                .chain(&names(pod, "ephemeralContainers"))
                .any(|n| n == c);
            if known {
                Ok(c.to_string())
            } else {
                Err(ApiError::bad_request(format!(
                    "container {c} is not valid for pod {pod_name}"
                )))
            }
        }
        None => match containers.as_slice() {
            [only] => Ok(only.clone()),
            [] => Err(ApiError::bad_request(format!(
                "a container name must be specified for pod {pod_name}"
            ))),
            several => {
                let mut message = format!(
                    "a container name must be specified for pod {pod_name}, choose one of: [{}]",
                    several.join(" ")
                );
                if !init.is_empty() {
                    message.push_str(&format!(
                        " or one of the init containers: [{}]",
                        init.join(" ")
                    ));
                }
                Err(ApiError::bad_request(message))
            }
        },
    }
}

fn waiting(pod: &str, container: &str, reason: &str) -> ApiError {
    // The kubelet's own wording for the common image failures.
    let why = match reason {
        "ErrImagePull" => "image can't be pulled",
        "ImagePullBackOff" => "trying and failing to pull image",
        other => other,
    };
    ApiError::bad_request(format!(
        "container \"{container}\" in pod \"{pod}\" is waiting to start: {why}"
    ))
}

/// Refuses a container that has no log yet. A container waiting to restart after a crash has
/// one (its last terminated instance, which the kubelet serves), and `previous` is only the
/// kubelet's to judge.
fn check_started(pod: &Value, pod_name: &str, container: &str, previous: bool) -> ApiResult<()> {
    if previous {
        return Ok(());
    }
    let status = [
        "containerStatuses",
        "initContainerStatuses",
        "ephemeralContainerStatuses",
    ]
    .iter()
    .filter_map(|list| pod["status"][*list].as_array())
    .flatten()
    .find(|s| s["name"] == container);
    let Some(status) = status else {
        return Err(waiting(pod_name, container, "ContainerCreating"));
    };
    let state = &status["state"];
    if state["running"].is_object()
        || state["terminated"].is_object()
        || status["lastState"]["terminated"].is_object()
    {
        return Ok(());
    }
    let reason = state["waiting"]["reason"]
        .as_str()
        .filter(|r| !r.is_empty())
        .unwrap_or("ContainerCreating");
    Err(waiting(pod_name, container, reason))
}

/// Where a node's kubelet listens and the certificate it serves.
struct Kubelet {
    addr: SocketAddr,
    cert_pem: String,
}

fn kubelet_of(node_name: &str, node: &Value) -> Result<Kubelet, NodeProxyError> {
    let incomplete = |missing| NodeProxyError::NodeIncomplete {
        node: node_name.to_string(),
        missing,
    };
    let addresses = node["status"]["addresses"].as_array();
    let address_of = |ty: &str| {
        addresses?
            .iter()
            .filter(|a| a["type"] == ty)
            .find_map(|a| a["address"].as_str()?.parse::<IpAddr>().ok())
    };
    let ip = address_of("InternalIP")
        .or_else(|| address_of("ExternalIP"))
        .ok_or_else(|| incomplete("an InternalIP address"))?;
    let port = node["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"]
        .as_u64()
        .and_then(|p| u16::try_from(p).ok())
        .filter(|p| *p != 0)
        .ok_or_else(|| incomplete("a kubelet port"))?;
    let cert_pem = node["metadata"]["annotations"][KUBELET_SERVING_CERT_ANNOTATION]
        .as_str()
        .filter(|c| !c.is_empty())
        .ok_or_else(|| incomplete("a kubelet serving certificate"))?
        .to_string();
    Ok(Kubelet {
        addr: SocketAddr::new(ip, port),
        cert_pem,
    })
}

impl Inner {
    /// Fetches `/stats/summary` from every node at once.
    async fn summaries(&self) -> Vec<(String, Value)> {
        let Some(nodes) = registry::lookup("", "v1", "nodes") else {
            return Vec::new();
        };
        let Ok(list) = self.store.list(&nodes.key_prefix(None), None, None).await else {
            return Vec::new();
        };
        let fetches = list.items.iter().filter_map(|kv| {
            let node = objects::decode(kv).ok()?;
            let name = node["metadata"]["name"].as_str()?.to_string();
            let kubelet = kubelet_of(&name, &node).ok()?;
            let client = self.client(&name, &kubelet.cert_pem).ok()?;
            let mut request = client
                .get(format!("https://{}/stats/summary", kubelet.addr))
                .timeout(SUMMARY_TIMEOUT);
            if let Some(token) = &self.kubelet_token {
                request = request.bearer_auth(token);
            }
            Some(async move {
                let resp = request.send().await.ok()?.error_for_status().ok()?;
                let summary: Value = resp.json().await.ok()?;
                Some((name, summary))
            })
        });
        futures::future::join_all(fetches)
            .await
            .into_iter()
            .flatten()
            .collect()
    }

    async fn log(&self, rp: ResourcePath, name: String, uri: Uri) -> ApiResult<Response> {
        let query = log_query(&Query::parse(uri.query()))?;
        let namespace = rp.namespace.clone().unwrap_or_default();
        let kv = self
            .store
            .get(&rp.info.key(Some(&namespace), &name))
            .await?
            .ok_or_else(|| ApiError::not_found(rp.info, &name))?;
        let pod = objects::decode(&kv)?;
        let container = choose_container(&pod, &name, query.container.as_deref())?;
        let Some(node_name) = pod["spec"]["nodeName"].as_str().filter(|n| !n.is_empty()) else {
            // Not scheduled yet: nothing has started anywhere.
            return Err(waiting(&name, &container, "ContainerCreating"));
        };
        check_started(&pod, &name, &container, query.previous)?;

        let (kubelet, client) = self.node_kubelet(node_name).await?;

        let mut url = format!(
            "https://{}/containerLogs/{}/{}/{}",
            kubelet.addr,
            urlencoding::encode(&namespace),
            urlencoding::encode(&name),
            urlencoding::encode(&container)
        );
        let forwarded: Vec<String> = query
            .forward
            .iter()
            .map(|(k, v)| format!("{k}={}", urlencoding::encode(v)))
            .collect();
        if !forwarded.is_empty() {
            url.push('?');
            url.push_str(&forwarded.join("&"));
        }
        let mut request = client.get(&url);
        if let Some(token) = &self.kubelet_token {
            request = request.bearer_auth(token);
        }
        let resp = request
            .send()
            .await
            .map_err(|source| NodeProxyError::Unreachable {
                node: node_name.to_string(),
                url: format!("https://{}", kubelet.addr),
                source,
            })?;
        if resp.status() == reqwest::StatusCode::UNAUTHORIZED {
            // Passing the 401 on would tell the client its own credentials are wrong.
            return Err(NodeProxyError::Rejected {
                node: node_name.to_string(),
            }
            .into());
        }
        let code = StatusCode::from_u16(resp.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
        let content_type = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("text/plain")
            .to_string();
        let stream = resp.bytes_stream();
        let body = match &self.shutdown {
            Some(shutdown) => {
                Body::from_stream(stream.take_until(shutdown.clone().cancelled_owned()))
            }
            None => Body::from_stream(stream),
        };
        Ok((code, [(header::CONTENT_TYPE, content_type)], body).into_response())
    }

    /// The node a pod runs on, with its kubelet's address and a client for it.
    async fn kubelet_for(
        &self,
        pod: &Value,
        pod_name: &str,
    ) -> ApiResult<(String, Kubelet, reqwest::Client)> {
        let Some(node_name) = pod["spec"]["nodeName"].as_str().filter(|n| !n.is_empty()) else {
            return Err(ApiError::bad_request(format!(
                "pod {pod_name} does not have a host assigned"
            )));
        };
        let (kubelet, client) = self.node_kubelet(node_name).await?;
        Ok((node_name.to_string(), kubelet, client))
    }

    /// The kubelet of node `node_name` (from its Node object) and a client pinned to its
    /// serving certificate.
    async fn node_kubelet(&self, node_name: &str) -> ApiResult<(Kubelet, reqwest::Client)> {
        let nodes = registry::lookup("", "v1", "nodes")
            .ok_or_else(|| ApiError::internal("the nodes resource is not registered"))?;
        let node = match self.store.get(&nodes.key(None, node_name)).await? {
            Some(kv) => objects::decode(&kv)?,
            None => {
                return Err(NodeProxyError::NodeNotFound {
                    node: node_name.to_string(),
                }
                .into());
            }
        };
        let kubelet = kubelet_of(node_name, &node)?;
        let client = self.client(node_name, &kubelet.cert_pem)?;
        Ok((kubelet, client))
    }

    /// `pods/exec` and `pods/portforward`: upgrades the client's connection to the kubelet's.
    async fn upgrade(
        &self,
        rp: ResourcePath,
        name: String,
        subresource: Subresource,
        mut req: axum::extract::Request,
    ) -> ApiResult<Response> {
        let namespace = rp.namespace.clone().unwrap_or_default();
        let kv = self
            .store
            .get(&rp.info.key(Some(&namespace), &name))
            .await?
            .ok_or_else(|| ApiError::not_found(rp.info, &name))?;
        let pod = objects::decode(&kv)?;
        let phase = pod["status"]["phase"].as_str().unwrap_or("");
        let query = req.uri().query().unwrap_or("").to_string();
        let (ns, pod_name) = (urlencoding::encode(&namespace), urlencoding::encode(&name));
        let target = match subresource {
            Subresource::Exec => {
                if matches!(phase, "Succeeded" | "Failed") {
                    return Err(ApiError::bad_request(format!(
                        "cannot exec into a container in a completed pod; current phase is {phase}"
                    )));
                }
                let parsed = Query::parse(Some(&query));
                let container = choose_container(&pod, &name, parsed.get("container"))?;
                format!(
                    "/exec/{ns}/{pod_name}/{}?{query}",
                    urlencoding::encode(&container)
                )
            }
            Subresource::PortForward => {
                if phase != "Running" {
                    return Err(ApiError::bad_request(format!(
                        "unable to forward port because pod is not running. Current status={phase}"
                    )));
                }
                format!("/portForward/{ns}/{pod_name}")
            }
            other => {
                return Err(ApiError::bad_request(format!(
                    "the {} subresource does not take a connection upgrade",
                    other.name()
                )));
            }
        };
        let (node_name, kubelet, client) = self.kubelet_for(&pod, &name).await?;
        let on_client_upgrade = hyper::upgrade::on(&mut req);
        let mut request = client.get(format!("https://{}{target}", kubelet.addr));
        // The WebSocket handshake passes through; the kubelet answers it (its accept key is
        // computed from the client's key, so it is the client's answer too). Extensions are
        // not offered: both ends would have to agree on them, and only bytes pass here.
        for name in [
            header::CONNECTION,
            header::UPGRADE,
            header::SEC_WEBSOCKET_KEY,
            header::SEC_WEBSOCKET_VERSION,
            header::SEC_WEBSOCKET_PROTOCOL,
        ] {
            for value in req.headers().get_all(&name) {
                request = request.header(name.clone(), value.clone());
            }
        }
        if let Some(token) = &self.kubelet_token {
            request = request.bearer_auth(token);
        }
        let resp = request
            .send()
            .await
            .map_err(|source| NodeProxyError::Unreachable {
                node: node_name.clone(),
                url: format!("https://{}", kubelet.addr),
                source,
            })?;
        let status = resp.status();
        if status == reqwest::StatusCode::UNAUTHORIZED {
            return Err(NodeProxyError::Rejected { node: node_name }.into());
        }
        if status != reqwest::StatusCode::SWITCHING_PROTOCOLS {
            // The kubelet's Status (pod or container not there) goes to the client as it is.
            let code = StatusCode::from_u16(status.as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
            let body = resp.bytes().await.unwrap_or_default();
            return Ok((code, [(header::CONTENT_TYPE, "application/json")], body).into_response());
        }
        let mut answer = Response::builder().status(StatusCode::SWITCHING_PROTOCOLS);
        for name in [
            header::CONNECTION,
            header::UPGRADE,
            header::SEC_WEBSOCKET_ACCEPT,
            header::SEC_WEBSOCKET_PROTOCOL,
        ] {
            for value in resp.headers().get_all(&name) {
                answer = answer.header(name.clone(), value.clone());
            }
        }
        let kubelet_io = resp
            .upgrade()
            .await
            .map_err(|source| NodeProxyError::Unreachable {
                node: node_name.clone(),
                url: format!("https://{}", kubelet.addr),
                source,
            })?;
        let shutdown = self.shutdown.clone().unwrap_or_default();
        tokio::spawn(async move {
            let client_io = match on_client_upgrade.await {
                Ok(io) => io,
                Err(e) => {
                    tracing::debug!(error = %e, "the client did not complete the upgrade");
                    return;
                }
            };
            let mut client_io = hyper_util::rt::TokioIo::new(client_io);
            let mut kubelet_io = kubelet_io;
            tokio::select! {
                r = tokio::io::copy_bidirectional(&mut client_io, &mut kubelet_io) => {
                    if let Err(e) = r {
                        tracing::debug!(error = %e, "streaming connection ended with an error");
                    }
                }
                _ = shutdown.cancelled() => {}
            }
        });
        answer
            .body(Body::empty())
            .map_err(|e| ApiError::internal(format!("building the upgrade response: {e}")))
    }

    /// The client for a node, trusting only the certificate the node publishes.
    fn client(&self, node: &str, cert_pem: &str) -> Result<reqwest::Client, NodeProxyError> {
        let mut clients = self
            .clients
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some((pinned, client)) = clients.get(node)
            && pinned == cert_pem
        {
            return Ok(client.clone());
        }
        let certificate = |source| NodeProxyError::Certificate {
            node: node.to_string(),
            source,
        };
        let cert = reqwest::Certificate::from_pem(cert_pem.as_bytes()).map_err(certificate)?;
        let client = reqwest::Client::builder()
            .tls_built_in_root_certs(false)
            .add_root_certificate(cert)
            // Kubelets are reached directly on their node address, never through a proxy the
            // environment may name for outgoing traffic.
            .no_proxy()
            .connect_timeout(CONNECT_TIMEOUT)
            // Upgrades (exec, port-forward) exist only in HTTP/1.1.
            .http1_only()
            .build()
            .map_err(certificate)?;
        clients.insert(node.to_string(), (cert_pem.to_string(), client.clone()));
        Ok(client)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn query(raw: &str) -> ApiResult<LogQuery> {
        log_query(&Query::parse(Some(raw)))
    }

    #[test]
    fn options_are_validated_and_normalised() {
        let q = query("container=a&follow&timestamps=1&previous=false&tailLines=3&limitBytes=10")
            .expect("valid");
        assert_eq!(q.container.as_deref(), Some("a"));
        assert!(!q.previous);
        assert_eq!(
            q.forward,
            vec![
                ("follow", "true".to_string()),
                ("timestamps", "true".to_string()),
                ("tailLines", "3".to_string()),
                ("limitBytes", "10".to_string()),
            ]
        );
        for bad in [
            "tailLines=-1",
            "tailLines=1.5",
            "sinceSeconds=0",
            "limitBytes=0",
            "sinceTime=soon",
        ] {
            let e = query(bad).expect_err(bad);
            let field = bad.split('=').next().expect("field");
            assert_eq!(e.code, 400);
            assert!(e.message.starts_with(field), "{bad}: {}", e.message);
        }
        assert!(query("sinceSeconds=5&sinceTime=2026-01-01T00:00:00Z").is_err());
    }

    #[test]
    fn containers_are_chosen_like_kubernetes() {
        let pod = json!({"spec": {
            "initContainers": [{"name": "init"}],
            "containers": [{"name": "a"}, {"name": "b"}],
        }});
        let e = choose_container(&pod, "p", None).expect_err("ambiguous");
        assert_eq!(
            e.message,
            "a container name must be specified for pod p, choose one of: [a b] or one of the init containers: [init]"
        );
        assert_eq!(
            choose_container(&pod, "p", Some("init")).expect("init"),
            "init"
        );
        assert_eq!(
            choose_container(&pod, "p", Some("c"))
                .expect_err("unknown")
                .message,
            "container c is not valid for pod p"
        );
        let single = json!({"spec": {"containers": [{"name": "only"}]}});
        assert_eq!(choose_container(&single, "p", None).expect("only"), "only");
    }

    #[test]
    fn waiting_containers_have_no_log() {
        let pod = json!({"status": {"containerStatuses": [
            {"name": "pulling", "state": {"waiting": {"reason": "ImagePullBackOff"}}},
            {"name": "crashing", "state": {"waiting": {"reason": "CrashLoopBackOff"}},
             "lastState": {"terminated": {"exitCode": 1}}},
            {"name": "up", "state": {"running": {}}},
        ]}});
        assert_eq!(
            check_started(&pod, "p", "pulling", false)
                .expect_err("waiting")
                .message,
            "container \"pulling\" in pod \"p\" is waiting to start: trying and failing to pull image"
        );
        assert!(check_started(&pod, "p", "pulling", true).is_ok());
        assert!(check_started(&pod, "p", "crashing", false).is_ok());
        assert!(check_started(&pod, "p", "up", false).is_ok());
        assert_eq!(
            check_started(&pod, "p", "new", false)
                .expect_err("no status")
                .message,
            "container \"new\" in pod \"p\" is waiting to start: ContainerCreating"
        );
    }

    #[test]
    fn nodes_must_publish_an_endpoint() {
        let node = json!({
            "metadata": {"annotations": {KUBELET_SERVING_CERT_ANNOTATION: "PEM"}},
            "status": {
                "addresses": [{"type": "Hostname", "address": "n"}, {"type": "InternalIP", "address": "10.0.0.7"}],
                "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            },
        });
        let k = kubelet_of("n", &node).expect("complete");
        assert_eq!(k.addr.to_string(), "10.0.0.7:10250");
        let mut no_port = node.clone();
        no_port["status"]["daemonEndpoints"] = json!({});
        let e = kubelet_of("n", &no_port).err().expect("incomplete");
        assert_eq!(e.to_string(), "node \"n\" does not report a kubelet port");
    }
}
