//! The built-in Ingress controller (IngressClass `wasmkube`, the cluster default): one HTTP
//! and one HTTPS listener on the node address serve every Ingress of the class, reverse
//! proxying HTTP/1.1 to the ready endpoints of the Service a route names (round-robin; an
//! endpoint that refuses is skipped).
//!
//! Answers of its own: 404 when no rule and no default backend match, 503 when the Service
//! has no ready endpoints (or does not exist), 502 when every endpoint refused.
//!
//! Requests go to the pod with `X-Forwarded-For`, `X-Forwarded-Proto` and
//! `X-Forwarded-Host`; the `Host` header is passed through as the client sent it.

pub mod routes;
pub mod tls;

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, combinators::BoxBody};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use k8s_openapi::api::core::v1::{Secret, Service};
use k8s_openapi::api::networking::v1::Ingress;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use crate::cache::Cache;
use crate::endpoints::{SliceIndex, service_port};
use routes::{BackendRef, PortRef, RouteTable};

/// The IngressClass this controller serves.
pub const INGRESS_CLASS: &str = "wasmkube";
/// The IngressClass' `spec.controller`.
pub const CONTROLLER: &str = "wasmkube.io/ingress-controller";
/// The legacy annotation naming an Ingress' class.
pub const CLASS_ANNOTATION: &str = "kubernetes.io/ingress.class";

const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// Whether an Ingress is ours: it names our class, or names none (ours is the default).
pub fn is_ours(ing: &Ingress) -> bool {
    match ing
        .spec
        .as_ref()
        .and_then(|s| s.ingress_class_name.as_deref())
    {
        Some(class) => class == INGRESS_CLASS,
        None => match ing
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(CLASS_ANNOTATION))
        {
            Some(class) => class == INGRESS_CLASS,
            None => true,
        },
    }
}

/// Where the Ingress listens.
#[derive(Clone, Debug)]
pub struct IngressConfig {
    pub node_ip: IpAddr,
    pub http_port: Option<u16>,
    pub https_port: Option<u16>,
}

/// What requests route with: rebuilt on every cache change.
#[derive(Default)]
struct Snapshot {
    routes: RouteTable,
    services: HashMap<(String, String), Arc<Service>>,
    slices: SliceIndex,
}

struct Shared {
    snapshot: RwLock<Arc<Snapshot>>,
    /// Round-robin positions per backend; they outlive snapshots.
    next: Mutex<HashMap<BackendRef, Arc<AtomicUsize>>>,
}

type Body = BoxBody<Bytes, hyper::Error>;

/// Runs the Ingress controller's listeners until `shutdown`.
pub async fn run(cache: Cache, config: IngressConfig, shutdown: CancellationToken) {
    let shared = Arc::new(Shared {
        snapshot: RwLock::new(Arc::new(Snapshot::default())),
        next: Mutex::new(HashMap::new()),
    });
    let resolver = match tls::SniResolver::new() {
        Ok(r) => Arc::new(r),
        Err(e) => {
            tracing::error!(error = %e, "the Ingress HTTPS listener cannot start");
            return;
        }
    };
    let mut changed = cache.subscribe();
    tokio::select! {
        _ = cache.ready() => {}
        _ = shutdown.cancelled() => return,
    }
    if let Some(port) = config.http_port {
        let addr = SocketAddr::new(config.node_ip, port);
        tokio::spawn(listen(addr, None, shared.clone(), shutdown.clone()));
    }
    if let Some(port) = config.https_port {
        match tls::server_config(resolver.clone()) {
            Ok(c) => {
                let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(c));
                let addr = SocketAddr::new(config.node_ip, port);
                tokio::spawn(listen(
                    addr,
                    Some(acceptor),
                    shared.clone(),
                    shutdown.clone(),
                ));
            }
            Err(e) => tracing::error!(error = %e, "the Ingress HTTPS listener cannot start"),
        }
    }
    loop {
        let ours: Vec<Arc<Ingress>> = cache
            .ingresses
            .state()
            .into_iter()
            .filter(|i| is_ours(i))
            .collect();
        let services = cache
            .services
            .state()
            .into_iter()
            .filter_map(|s| Some(((s.metadata.namespace.clone()?, s.metadata.name.clone()?), s)))
            .collect();
        let secrets: HashMap<(String, String), Arc<Secret>> = cache
            .secrets
            .state()
            .into_iter()
            .filter_map(|s| Some(((s.metadata.namespace.clone()?, s.metadata.name.clone()?), s)))
            .collect();
        let mut sorted = ours.clone();
        sorted.sort_by(|a, b| {
            a.metadata
                .creation_timestamp
                .partial_cmp(&b.metadata.creation_timestamp)
                .unwrap_or(std::cmp::Ordering::Equal)
        });
        resolver.set(tls::CertTable::build(&sorted, &secrets));
        let snap = Snapshot {
            routes: RouteTable::build(&ours),
            services,
            slices: SliceIndex::new(cache.slices.state()),
        };
        if let Ok(mut s) = shared.snapshot.write() {
            *s = Arc::new(snap);
        }
        tokio::select! {
            r = changed.changed() => if r.is_err() { return },
            _ = shutdown.cancelled() => return,
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        changed.borrow_and_update();
    }
}

/// Binds `addr` (retrying every second while it is taken) and serves it.
async fn listen(
    addr: SocketAddr,
    tls: Option<tokio_rustls::TlsAcceptor>,
    shared: Arc<Shared>,
    shutdown: CancellationToken,
) {
    let scheme = if tls.is_some() { "https" } else { "http" };
    let mut logged = false;
    let listener = loop {
        match TcpListener::bind(addr).await {
            Ok(l) => break l,
            Err(e) if !logged => {
                tracing::warn!(%addr, scheme, error = %e, "the Ingress cannot listen; retrying");
                logged = true;
            }
            Err(_) => {}
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = shutdown.cancelled() => return,
        }
    };
    tracing::debug!(%addr, scheme, "Ingress listening");
    loop {
        let (stream, peer) = tokio::select! {
            a = listener.accept() => match a {
                Ok(a) => a,
                Err(e) => {
                    tracing::debug!(error = %e, "accepting an Ingress connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.cancelled() => return,
        };
        let _ = stream.set_nodelay(true);
        let shared = shared.clone();
        let tls = tls.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            match tls {
                Some(acceptor) => match acceptor.accept(stream).await {
                    Ok(s) => {
                        serve_connection(TokioIo::new(s), peer, scheme, shared, shutdown).await
                    }
                    Err(e) => tracing::debug!(client = %peer, error = %e, "TLS handshake failed"),
                },
                None => {
                    serve_connection(TokioIo::new(stream), peer, scheme, shared, shutdown).await
                }
            }
        });
    }
}

async fn serve_connection<I>(
    io: I,
    peer: SocketAddr,
    scheme: &'static str,
    shared: Arc<Shared>,
    shutdown: CancellationToken,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let svc = hyper::service::service_fn(move |req| {
        let shared = shared.clone();
        async move { Ok::<_, Infallible>(handle(req, peer, scheme, &shared).await) }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .keep_alive(true)
        .serve_connection(io, svc);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        _ = shutdown.cancelled() => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(Duration::from_secs(5), conn).await;
        }
    }
}

fn text(status: u16, msg: &str) -> hyper::Response<Body> {
    let mut r = hyper::Response::new(
        Full::new(Bytes::from(format!("{msg}\n")))
            .map_err(|never| match never {})
            .boxed(),
    );
    *r.status_mut() = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::BAD_GATEWAY);
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// Headers that belong to one hop, not to the request (RFC 9110 7.6.1).
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "upgrade",
];

async fn handle(
    mut req: hyper::Request<Incoming>,
    peer: SocketAddr,
    scheme: &'static str,
    shared: &Shared,
) -> hyper::Response<Body> {
    let Ok(snap) = shared.snapshot.read().map(|s| s.clone()) else {
        return text(500, "ingress state unavailable");
    };
    let host = req
        .headers()
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| req.uri().host())
        .unwrap_or("")
        .to_string();
    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".into());
    let Some(backend) = snap.routes.route(&host, &path).cloned() else {
        return text(404, "default backend - 404");
    };
    let endpoints = endpoints_of(&snap, &backend);
    if endpoints.is_empty() {
        return text(
            503,
            &format!(
                "service {}/{} has no ready endpoints",
                backend.namespace, backend.service
            ),
        );
    }
    let start = {
        let counter = shared
            .next
            .lock()
            .map(|mut m| m.entry(backend.clone()).or_default().clone());
        match counter {
            Ok(c) => c.fetch_add(1, Ordering::Relaxed),
            Err(_) => 0,
        }
    };

    // The request as the pod gets it: origin-form, hop-by-hop headers dropped, forwarded-for
    // headers added.
    let headers = req.headers_mut();
    if let Some(conn) = headers
        .get(http::header::CONNECTION)
        .and_then(|v| v.to_str().ok())
    {
        let named: Vec<String> = conn
            .split(',')
            .map(|s| s.trim().to_ascii_lowercase())
            .collect();
        for n in named {
            headers.remove(n.as_str());
        }
    }
    for h in HOP_BY_HOP {
        headers.remove(h);
    }
    let xff = match headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
        Some(prev) => format!("{prev}, {}", peer.ip()),
        None => peer.ip().to_string(),
    };
    if let Ok(v) = http::HeaderValue::from_str(&xff) {
        headers.insert("x-forwarded-for", v);
    }
    headers.insert("x-forwarded-proto", http::HeaderValue::from_static(scheme));
    if let Ok(v) = http::HeaderValue::from_str(&host) {
        headers.insert("x-forwarded-host", v);
    }
    if let Ok(uri) = path.parse::<http::Uri>() {
        *req.uri_mut() = uri;
    }

    // Connect first, trying the next endpoint on refusal: nothing of the request is sent
    // before a connection stands, so skipping an endpoint is always safe.
    let mut stream = None;
    for i in 0..endpoints.len() {
        let ep = endpoints[(start + i) % endpoints.len()];
        match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(ep)).await {
            Ok(Ok(s)) => {
                stream = Some(s);
                break;
            }
            Ok(Err(e)) => {
                tracing::debug!(endpoint = %ep, error = %e, "endpoint refused; trying the next")
            }
            Err(_) => tracing::debug!(endpoint = %ep, "endpoint did not answer; trying the next"),
        }
    }
    let Some(stream) = stream else {
        return text(
            502,
            &format!(
                "no endpoint of service {}/{} accepted the connection",
                backend.namespace, backend.service
            ),
        );
    };
    let _ = stream.set_nodelay(true);
    let (mut sender, conn) = match hyper::client::conn::http1::handshake(TokioIo::new(stream)).await
    {
        Ok(c) => c,
        Err(e) => return text(502, &format!("upstream handshake failed: {e}")),
    };
    tokio::spawn(async move {
        let _ = conn.await;
    });
    match sender.send_request(req).await {
        Ok(resp) => {
            let (mut parts, body) = resp.into_parts();
            for h in HOP_BY_HOP {
                parts.headers.remove(h);
            }
            hyper::Response::from_parts(parts, body.boxed())
        }
        Err(e) => text(502, &format!("upstream request failed: {e}")),
    }
}

/// The ready endpoints behind an Ingress backend.
fn endpoints_of(snap: &Snapshot, b: &BackendRef) -> Vec<SocketAddr> {
    let Some(svc) = snap.services.get(&(b.namespace.clone(), b.service.clone())) else {
        return vec![];
    };
    let port = match &b.port {
        PortRef::Number(n) => service_port(svc, Some(*n), None),
        PortRef::Name(name) => service_port(svc, None, Some(name)),
    };
    let Some(port) = port else {
        return vec![];
    };
    snap.slices
        .backends(&b.namespace, &b.service, port.name.as_deref().unwrap_or(""))
}
