//! The wasmkube API server: the Kubernetes REST API over a [`wasmkube_store::Store`].
//!
//! [`router`] builds the axum application; [`serve`] runs it on a listener with TLS (or plain
//! HTTP in insecure dev mode) until shutdown. Other components in the same process can call the
//! router as a tower `Service` without a socket.
//!
//! # Layout
//! - [`request`]: URL → resource path, query parameters, content negotiation.
//! - [`resource`]: get/list/create/update/patch/delete and the status, scale and binding
//!   subresources.
//! - [`watch`]: the watch stream state machine.
//! - [`objects`]: server-owned metadata and stored-object encoding.
//! - [`fields`]: field selectors per kind.
//! - [`patching`]: patch bodies applied to stored objects.
//! - [`table`]: `kubectl get` tables.
//! - [`discovery`] and [`openapi`]: what clients read to learn the API.
//! - [`metrics`]: `metrics.k8s.io` (node and pod usage from the kubelets, for `kubectl top`).
//! - [`node_proxy`]: subresources served by the pod's node (`pods/log` from its kubelet).
//! - [`admission`]: per-kind rules between validation and storage.
//! - [`services`]: the Service strategy: cluster IP and node port allocation.
//! - [`auth`] and [`tls`]: bearer tokens, the cluster CA and serving certificate.
//! - [`tokens`]: ServiceAccount tokens (signed JWTs, `serviceaccounts/NAME/token`).
//! - [`rbac`]: the RBAC authorizer and its escalation check.
//! - [`bootstrap`]: the objects every cluster starts with.
//! - [`bootstrap_data`]: the CA, signing key and admin token shared by every server over one
//!   datastore, kept in it encrypted with the cluster token.
//! - [`console`]: the web console's files (`web/`, embedded), served at `/ui/`.
//! - [`error`]: `Status` responses.

pub mod admission;
pub mod auth;
pub mod bootstrap;
pub mod bootstrap_data;
pub mod console;
pub mod discovery;
pub mod error;
pub mod fields;
pub mod metrics;
pub mod node_proxy;
pub mod objects;
pub mod openapi;
pub mod patching;
pub mod rbac;
pub mod request;
pub mod resource;
pub mod services;
pub mod state;
pub mod table;
pub mod tls;
pub mod tokens;
pub mod watch;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

pub use auth::{Authenticator, UserInfo};
pub use error::{ApiError, ApiResult};
pub use state::{ApiState, SubresourceHandler};

/// Extra routes a caller mounts beside the API (the web console, metrics).
pub type ExtraRoutes = Router;

/// Builds the API router. `auth = None` serves without authentication (insecure dev mode).
/// The largest request body served: kube-apiserver's limit (3 MiB), above etcd's largest
/// object and ConfigMap/Secret's 1 MiB.
pub const MAX_REQUEST_BODY_BYTES: usize = 3 * 1024 * 1024;

pub fn router(
    state: Arc<ApiState>,
    auth: Option<Arc<Authenticator>>,
    extra: Option<ExtraRoutes>,
) -> Router {
    let api = Router::new()
        .route("/version", get(|| async { json(discovery::version()) }))
        .route("/healthz", get(health))
        .route("/livez", get(health))
        .route("/readyz", get(health))
        .route("/api", get(|| async { json(discovery::core_versions()) }))
        .route("/apis", get(|| async { json(discovery::group_list()) }))
        .route("/api/v1", get(|| async { resource_list_or_404("", "v1") }))
        .route("/apis/{group}", get(group_handler))
        .route("/apis/{group}/{version}", get(group_version_handler))
        .route("/openapi/v2", get(openapi_v2))
        .route("/openapi/v3", get(|| async { json(openapi::v3_index()) }))
        .route("/openapi/v3/{*path}", get(openapi_v3))
        .route("/apis/metrics.k8s.io/v1beta1/nodes", get(metrics::nodes))
        .route(
            "/apis/metrics.k8s.io/v1beta1/nodes/{name}",
            get(metrics::node),
        )
        .route("/apis/metrics.k8s.io/v1beta1/pods", get(metrics::all_pods))
        .route(
            "/apis/metrics.k8s.io/v1beta1/namespaces/{namespace}/pods",
            get(metrics::namespace_pods),
        )
        .route(
            "/apis/metrics.k8s.io/v1beta1/namespaces/{namespace}/pods/{name}",
            get(metrics::pod),
        )
        .fallback(fallback)
        .with_state(state);
    let app = match extra {
        Some(extra) => api.merge(extra),
        None => api,
    };
    app.layer(axum::extract::DefaultBodyLimit::max(MAX_REQUEST_BODY_BYTES))
        .layer(axum::middleware::from_fn_with_state(auth, auth::middleware))
        // A bug must never take the connection (or the server) down with it: a panicking
        // handler answers 500 with a Status, like every other failure.
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            panic_response,
        ))
}

fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("a request handler panicked");
    ApiError::internal("an internal error occurred while handling the request").into_response()
}

async fn health() -> &'static str {
    "ok"
}

fn json(v: serde_json::Value) -> Response {
    resource::json_response(StatusCode::OK, &v)
}

fn resource_list_or_404(group: &str, version: &str) -> Response {
    match discovery::resource_list(group, version) {
        Some(v) => json(v),
        None => ApiError::path_not_found().into_response(),
    }
}

async fn group_handler(Path(group): Path<String>) -> Response {
    match discovery::group(&group) {
        Some(v) => json(v),
        None => ApiError::path_not_found().into_response(),
    }
}

async fn group_version_handler(Path((group, version)): Path<(String, String)>) -> Response {
    resource_list_or_404(&group, &version)
}

async fn openapi_v2(headers: HeaderMap) -> Response {
    let accept = headers
        .get(axum::http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json");
    // Only JSON is served; clients that insist on protobuf fall back to OpenAPI v3.
    if !accept.contains("json") && !accept.contains("*/*") {
        return ApiError::not_acceptable("only application/json is served for /openapi/v2")
            .into_response();
    }
    (
        StatusCode::OK,
        [("content-type", "application/json")],
        openapi::v2().as_ref().clone(),
    )
        .into_response()
}

async fn openapi_v3(Path(path): Path<String>) -> Response {
    let segs: Vec<&str> = path.split('/').collect();
    let gv = match segs.as_slice() {
        ["api", v] => Some(("", *v)),
        ["apis", g, v] => Some((*g, *v)),
        _ => None,
    };
    match gv.and_then(|(g, v)| openapi::v3_group_version(g, v)) {
        Some(doc) => (
            StatusCode::OK,
            [
                ("content-type", "application/json"),
                ("cache-control", "public, immutable"),
            ],
            doc.as_ref().clone(),
        )
            .into_response(),
        None => ApiError::path_not_found().into_response(),
    }
}

async fn fallback(State(state): State<Arc<ApiState>>, req: axum::extract::Request) -> Response {
    // exec and port-forward take the connection over: they need the request itself.
    if req.headers().contains_key(axum::http::header::UPGRADE) {
        return resource::handle_upgrade(state, req).await;
    }
    let (method, uri, headers) = (
        req.method().clone(),
        req.uri().clone(),
        req.headers().clone(),
    );
    let body = match <Bytes as axum::extract::FromRequest<()>>::from_request(req, &()).await {
        Ok(body) => body,
        // Kubernetes' answer for a body over its 3 MiB limit, as a Status like every other.
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return ApiError::new(
                413,
                "RequestEntityTooLarge",
                format!("Request entity too large: limit is {MAX_REQUEST_BODY_BYTES}"),
            )
            .into_response();
        }
        Err(rejection) => return rejection.into_response(),
    };
    resource::handle(state, method, uri, headers, body).await
}

/// TLS settings for [`serve`]; `None` serves plain HTTP.
pub type TlsConfig = Option<Arc<rustls::ServerConfig>>;

/// Serves `router` on `listener` until `shutdown` is cancelled, then waits for open
/// connections to finish their current requests.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    tls: TlsConfig,
    shutdown: CancellationToken,
) {
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    let tracker = tokio_util::task::TaskTracker::new();
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Accept errors (e.g. out of file descriptors) are transient: back off.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.cancelled() => break,
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let acceptor = acceptor.clone();
        let shutdown = shutdown.clone();
        tracker.spawn(async move {
            match acceptor {
                Some(acceptor) => match acceptor.accept(stream).await {
                    Ok(tls) => serve_connection(TokioIo::new(tls), router, peer, shutdown).await,
                    Err(e) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                },
                None => serve_connection(TokioIo::new(stream), router, peer, shutdown).await,
            }
        });
    }
    tracker.close();
    tracker.wait().await;
}

async fn serve_connection<I>(io: I, router: Router, peer: SocketAddr, shutdown: CancellationToken)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let service =
        hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
            req.extensions_mut()
                .insert(axum::extract::ConnectInfo(peer));
            router.clone().oneshot(req.map(axum::body::Body::new))
        });
    let builder = auto::Builder::new(TokioExecutor::new());
    let conn = builder.serve_connection_with_upgrades(io, service);
    tokio::pin!(conn);
    tokio::select! {
        res = conn.as_mut() => {
            if let Err(e) = res {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        }
        _ = shutdown.cancelled() => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(std::time::Duration::from_secs(5), conn).await;
        }
    }
}
