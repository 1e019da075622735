//! The kubelet's HTTPS endpoint: what the API server reaches a node through to serve
//! `pods/log` (`GET /containerLogs/{namespace}/{pod}/{container}`), `pods/portforward`
//! (`GET /portForward/{namespace}/{pod}`, a WebSocket tunnelling SPDY, see
//! [`crate::streaming::portforward`]) and `pods/exec` (`GET /exec/{namespace}/{pod}/{container}`,
//! a WebSocket of `channel.k8s.io` streams, see [`crate::streaming::remotecommand`]), plus
//! `GET /healthz`.
//!
//! A node has no cluster CA to ask for a certificate, so it makes its own self-signed serving
//! certificate ([`serving_cert`]) and publishes it on its Node object under
//! [`SERVING_CERT_ANNOTATION`]; the API server trusts exactly that certificate for that node.
//! The pin is as trustworthy as the API's own authentication, since only authenticated clients
//! can write Node objects. In the other direction the API server authenticates with a bearer
//! token the kubelet is started with.
//!
//! The pod manager answers which log file a container instance writes through the [`PodLogs`]
//! trait; [`router`] turns that into HTTP and [`start`] serves it with TLS.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path as UrlPath, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures::future::BoxFuture;
use futures::{Stream, StreamExt};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use rcgen::{
    CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, KeyPair,
    KeyUsagePurpose, SanType,
};
use rustls::pki_types::{ServerName, UnixTime};
use serde_json::json;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::logs::{self, LogOptions};
use crate::streaming::{portforward, remotecommand};

/// The Node annotation holding the kubelet's serving certificate (PEM).
pub const SERVING_CERT_ANNOTATION: &str = "wasmkube.io/kubelet-serving-cert";

/// How long a client may take to finish the TLS handshake: a connection that never does must
/// not hold a task until shutdown.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long open connections get to finish after shutdown before they are dropped.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("reading or writing {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("generating the kubelet serving certificate")]
    Generate(#[from] rcgen::Error),
    #[error("building the kubelet TLS configuration")]
    Rustls(#[from] rustls::Error),
    #[error("the certificate or key in {0} is not valid PEM")]
    Pem(PathBuf),
    #[error("binding the kubelet server to {addr}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// Why [`PodLogs::container_log`] has no log to give. The messages are Kubernetes' own, since
/// `kubectl logs` prints them as they are.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LogLookupError {
    #[error("pods \"{pod}\" not found")]
    PodNotFound { pod: String },
    #[error("container \"{container}\" in pod \"{pod}\" is not valid")]
    ContainerNotFound { pod: String, container: String },
    #[error("previous terminated container \"{container}\" in pod \"{pod}\" not found")]
    PreviousNotFound { pod: String, container: String },
    #[error("container \"{container}\" in pod \"{pod}\" is waiting to start: {reason}")]
    Waiting {
        pod: String,
        container: String,
        reason: String,
    },
    #[error("container \"{container}\" in pod \"{pod}\" is not running")]
    NotRunning { pod: String, container: String },
}

impl LogLookupError {
    fn status(&self) -> (StatusCode, &'static str) {
        match self {
            LogLookupError::PodNotFound { .. } => (StatusCode::NOT_FOUND, "NotFound"),
            LogLookupError::ContainerNotFound { .. }
            | LogLookupError::PreviousNotFound { .. }
            | LogLookupError::Waiting { .. }
            | LogLookupError::NotRunning { .. } => (StatusCode::BAD_REQUEST, "BadRequest"),
        }
    }
}

impl IntoResponse for LogLookupError {
    fn into_response(self) -> Response {
        let (code, reason) = self.status();
        status_response(code, reason, &self.to_string())
    }
}

/// The pod manager's view of container logs on this node.
pub trait PodLogs: Send + Sync + 'static {
    /// The log of a container instance of a pod on this node: the current one or, with
    /// `previous`, the last terminated one. Like the kubelet, a container waiting to restart
    /// after a crash answers with its last terminated instance rather than
    /// [`LogLookupError::Waiting`].
    fn container_log(
        &self,
        namespace: &str,
        pod: &str,
        container: &str,
        previous: bool,
    ) -> Result<ContainerLog, LogLookupError>;

    /// Resource usage of the node and its pods, in the kubelet Summary API's shape
    /// (`/stats/summary`), which the API server's `metrics.k8s.io` is built from.
    fn summary(&self) -> serde_json::Value {
        serde_json::json!({"pods": []})
    }

    /// The IP and uid of a pod on this node that has one: where port forwarding connects.
    fn pod_address(&self, _namespace: &str, _pod: &str) -> Option<(IpAddr, String)> {
        None
    }

    /// The running instance of a container of a pod on this node: what `exec` runs in.
    fn running_container(
        &self,
        _namespace: &str,
        pod: &str,
        _container: &str,
    ) -> Result<Arc<dyn crate::runtime::Container>, LogLookupError> {
        Err(LogLookupError::PodNotFound {
            pod: pod.to_string(),
        })
    }
}

/// Where a container instance writes its log, and when it stops writing.
pub struct ContainerLog {
    pub path: PathBuf,
    /// Resolves when this instance stops writing (it exited); staying pending while it runs
    /// is fine.
    pub done: BoxFuture<'static, ()>,
}

/// The kubelet's serving certificate and the TLS configuration that serves it.
#[derive(Debug, Clone)]
pub struct ServingCert {
    /// The certificate, PEM: what [`SERVING_CERT_ANNOTATION`] publishes.
    pub cert_pem: String,
    pub server_config: Arc<rustls::ServerConfig>,
}

/// Loads the serving certificate from `dir/kubelet.crt` and `dir/kubelet.key`, or makes a new
/// self-signed one for `ip` and `node_name` when there is none, or the stored one no longer
/// covers them (the node got a new address) or has expired.
pub fn serving_cert(dir: &Path, ip: IpAddr, node_name: &str) -> Result<ServingCert, ServerError> {
    std::fs::create_dir_all(dir).map_err(|source| ServerError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let cert_path = dir.join("kubelet.crt");
    let key_path = dir.join("kubelet.key");
    if let (Some(cert_pem), Some(key_pem)) = (read(&cert_path)?, read(&key_path)?)
        && covers(&cert_pem, ip, node_name)
    {
        match tls_config(&cert_pem, &key_pem, &cert_path, &key_path) {
            Ok(server_config) => {
                return Ok(ServingCert {
                    cert_pem,
                    server_config,
                });
            }
            // A damaged pair is replaced rather than fatal: nothing else depends on the old
            // key, the new certificate is published on the Node at registration.
            Err(e) => {
                tracing::warn!(error = %e, "replacing the stored kubelet serving certificate")
            }
        }
    }

    let key = KeyPair::generate()?;
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, node_name);
    params.distinguished_name = dn;
    params.subject_alt_names = vec![SanType::IpAddress(ip)];
    if dns_name(node_name).is_some() {
        params
            .subject_alt_names
            .push(SanType::DnsName(node_name.to_string().try_into()?));
    }
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.not_before = rcgen::date_time_ymd(2024, 1, 1);
    params.not_after = rcgen::date_time_ymd(2124, 1, 1);
    let cert = params.self_signed(&key)?;
    let (cert_pem, key_pem) = (cert.pem(), key.serialize_pem());
    write_file(&key_path, &key_pem, true)?;
    write_file(&cert_path, &cert_pem, false)?;
    let server_config = tls_config(&cert_pem, &key_pem, &cert_path, &key_path)?;
    Ok(ServingCert {
        cert_pem,
        server_config,
    })
}

fn dns_name(node_name: &str) -> Option<ServerName<'static>> {
    match ServerName::try_from(node_name.to_string()) {
        Ok(name @ ServerName::DnsName(_)) => Some(name),
        _ => None,
    }
}

/// Whether the stored certificate is one a client pinning it would accept for the node's IP
/// and name today. Verifying it as its own trust anchor checks exactly what the API server's
/// client will check, SANs and validity period included.
fn covers(cert_pem: &str, ip: IpAddr, node_name: &str) -> bool {
    let Ok(certs) = rustls_pemfile::certs(&mut cert_pem.as_bytes()).collect::<Result<Vec<_>, _>>()
    else {
        return false;
    };
    let Some(leaf) = certs.first() else {
        return false;
    };
    let mut roots = rustls::RootCertStore::empty();
    if roots.add(leaf.clone()).is_err() {
        return false;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let Ok(verifier) =
        rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
    else {
        return false;
    };
    let mut names = vec![ServerName::IpAddress(ip.into())];
    names.extend(dns_name(node_name));
    let now = UnixTime::now();
    names.iter().all(|name| {
        rustls::client::danger::ServerCertVerifier::verify_server_cert(
            verifier.as_ref(),
            leaf,
            &[],
            name,
            &[],
            now,
        )
        .is_ok()
    })
}

fn tls_config(
    cert_pem: &str,
    key_pem: &str,
    cert_path: &Path,
    key_path: &Path,
) -> Result<Arc<rustls::ServerConfig>, ServerError> {
    let certs = rustls_pemfile::certs(&mut cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| ServerError::Pem(cert_path.to_path_buf()))?;
    let key = rustls_pemfile::private_key(&mut key_pem.as_bytes())
        .map_err(|_| ServerError::Pem(key_path.to_path_buf()))?
        .ok_or_else(|| ServerError::Pem(key_path.to_path_buf()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn read(path: &Path) -> Result<Option<String>, ServerError> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(ServerError::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Writes through a temporary file and a rename, so a crash never leaves half a key behind;
/// `private` files are readable by the owner only.
fn write_file(path: &Path, contents: &str, private: bool) -> Result<(), ServerError> {
    let io = |source| ServerError::Io {
        path: path.to_path_buf(),
        source,
    };
    let tmp = path.with_extension("tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let _ = std::fs::remove_file(&tmp);
    {
        use std::io::Write;
        let mut file = options.open(&tmp).map_err(io)?;
        file.write_all(contents.as_bytes()).map_err(io)?;
        file.sync_all().map_err(io)?;
    }
    std::fs::rename(&tmp, path).map_err(io)
}

struct Shared {
    logs: Arc<dyn PodLogs>,
    token: Option<String>,
    shutdown: CancellationToken,
}

/// The kubelet's routes. `token = None` accepts every caller (insecure dev mode); following
/// log streams end when `shutdown` is cancelled.
pub fn router(
    logs: Arc<dyn PodLogs>,
    token: Option<String>,
    shutdown: CancellationToken,
) -> Router {
    let shared = Arc::new(Shared {
        logs,
        token,
        shutdown,
    });
    let protected =
        Router::new()
            .route(
                "/containerLogs/{namespace}/{pod}/{container}",
                get(container_logs),
            )
            .route("/portForward/{namespace}/{pod}", get(port_forward))
            .route("/exec/{namespace}/{pod}/{container}", get(exec))
            .route(
                "/stats/summary",
                get(|State(shared): State<Arc<Shared>>| async move {
                    axum::Json(shared.logs.summary())
                }),
            )
            .route_layer(axum::middleware::from_fn_with_state(
                shared.clone(),
                authenticate,
            ))
            .with_state(shared);
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .merge(protected)
        .fallback(|| async {
            status_response(
                StatusCode::NOT_FOUND,
                "NotFound",
                "the server could not find the requested resource",
            )
        })
}

/// A running kubelet server.
pub struct KubeletServer {
    local_addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl KubeletServer {
    /// The address bound: the port the Node reports as `daemonEndpoints.kubeletEndpoint`.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Waits until the server has stopped: `shutdown` was cancelled and open connections
    /// finished (or were given up on).
    pub async fn stopped(self) {
        if let Err(e) = self.task.await {
            tracing::error!(error = %e, "the kubelet server task failed");
        }
    }
}

/// Binds `addr` (port 0 picks a free port) and serves [`router`] over TLS with `cert` until
/// `shutdown` is cancelled.
pub async fn start(
    addr: SocketAddr,
    cert: &ServingCert,
    logs: Arc<dyn PodLogs>,
    token: Option<String>,
    shutdown: CancellationToken,
) -> Result<KubeletServer, ServerError> {
    let bind_err = |source| ServerError::Bind { addr, source };
    let listener = TcpListener::bind(addr).await.map_err(bind_err)?;
    let local_addr = listener.local_addr().map_err(bind_err)?;
    let app = router(logs, token, shutdown.clone());
    let acceptor = tokio_rustls::TlsAcceptor::from(cert.server_config.clone());
    let task = tokio::spawn(serve(listener, app, acceptor, shutdown));
    Ok(KubeletServer { local_addr, task })
}

async fn serve(
    listener: TcpListener,
    app: Router,
    acceptor: tokio_rustls::TlsAcceptor,
    shutdown: CancellationToken,
) {
    let tracker = tokio_util::task::TaskTracker::new();
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Accept errors (e.g. out of file descriptors) are transient: back off.
                    tracing::warn!(error = %e, "kubelet server accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.cancelled() => break,
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let acceptor = acceptor.clone();
        let shutdown = shutdown.clone();
        tracker.spawn(async move {
            let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await
            {
                Ok(Ok(tls)) => tls,
                Ok(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "kubelet TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%peer, "kubelet TLS handshake timed out");
                    return;
                }
            };
            let builder = auto::Builder::new(TokioExecutor::new());
            // Upgrades carry port-forward and exec WebSockets.
            let conn = builder
                .serve_connection_with_upgrades(TokioIo::new(tls), TowerToHyperService::new(app));
            tokio::pin!(conn);
            tokio::select! {
                res = conn.as_mut() => {
                    if let Err(e) = res {
                        tracing::debug!(%peer, error = %e, "kubelet connection ended with an error");
                    }
                }
                _ = shutdown.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(DRAIN_TIMEOUT, conn).await;
                }
            }
        });
    }
    tracker.close();
    tracker.wait().await;
}

async fn authenticate(State(shared): State<Arc<Shared>>, req: Request, next: Next) -> Response {
    if let Some(expected) = &shared.token {
        let given = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(bearer_token);
        if !given.is_some_and(|g| constant_time_eq(g.as_bytes(), expected.as_bytes())) {
            return status_response(StatusCode::UNAUTHORIZED, "Unauthorized", "Unauthorized");
        }
    }
    next.run(req).await
}

fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// Compares without stopping at the first difference, so response time does not tell an
/// attacker how much of a guessed token was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for i in 0..a.len().max(b.len()) {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        diff |= usize::from(x ^ y);
    }
    std::hint::black_box(diff) == 0
}

/// What a `containerLogs` request asks for.
#[derive(Debug, Default)]
struct LogRequest {
    log: LogOptions,
    previous: bool,
}

/// Kubernetes' query conversion: a present boolean is true unless it says false.
fn flag(value: &str) -> bool {
    !(value == "0" || value.eq_ignore_ascii_case("f") || value.eq_ignore_ascii_case("false"))
}

fn number(field: &str, value: &str, min: i64) -> Result<usize, String> {
    let n: i64 = value
        .parse()
        .map_err(|_| format!("{field}: Invalid value: {value:?}: must be an integer"))?;
    if n < min {
        return Err(if min == 0 {
            format!("{field}: Invalid value: {n}: must be greater than or equal to 0")
        } else {
            format!("{field}: Invalid value: {n}: must be greater than 0")
        });
    }
    usize::try_from(n).map_err(|_| format!("{field}: Invalid value: {n}: too large"))
}

/// Parses and validates the options as Kubernetes' `PodLogOptions` validation does.
fn log_request(params: &[(String, String)]) -> Result<LogRequest, String> {
    let mut req = LogRequest::default();
    let mut since_seconds = None;
    let mut since_time = None;
    for (key, value) in params {
        match key.as_str() {
            "follow" => req.log.follow = flag(value),
            "timestamps" => req.log.timestamps = flag(value),
            "previous" => req.previous = flag(value),
            "tailLines" => req.log.tail_lines = Some(number("tailLines", value, 0)?),
            "limitBytes" => req.log.limit_bytes = Some(number("limitBytes", value, 1)?),
            "sinceSeconds" => since_seconds = Some(number("sinceSeconds", value, 1)?),
            "sinceTime" => {
                since_time = Some(value.parse::<jiff::Timestamp>().map_err(|_| {
                    format!("sinceTime: Invalid value: {value:?}: must be an RFC3339 time")
                })?)
            }
            _ => {}
        }
    }
    req.log.since = match (since_seconds, since_time) {
        (Some(_), Some(_)) => {
            return Err("at most one of `sinceTime` or `sinceSeconds` may be specified".into());
        }
        (Some(secs), None) => {
            let secs = i64::try_from(secs).unwrap_or(i64::MAX);
            Some(
                jiff::Timestamp::now()
                    .checked_sub(jiff::SignedDuration::from_secs(secs))
                    .unwrap_or(jiff::Timestamp::MIN),
            )
        }
        (None, since) => since,
    };
    Ok(req)
}

async fn container_logs(
    State(shared): State<Arc<Shared>>,
    UrlPath((namespace, pod, container)): UrlPath<(String, String, String)>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Response {
    let params = match query {
        Ok(Query(params)) => params,
        Err(e) => return status_response(StatusCode::BAD_REQUEST, "BadRequest", &e.body_text()),
    };
    let req = match log_request(&params) {
        Ok(req) => req,
        Err(message) => return status_response(StatusCode::BAD_REQUEST, "BadRequest", &message),
    };
    let log = match shared
        .logs
        .container_log(&namespace, &pod, &container, req.previous)
    {
        Ok(log) => log,
        Err(e) => return e.into_response(),
    };
    let shutdown = shared.shutdown.clone();
    let exited = log.done;
    let done = async move {
        tokio::select! {
            _ = exited => {}
            _ = shutdown.cancelled_owned() => {}
        }
    };
    let limit = req.log.limit_bytes;
    let lines = logs::stream(log.path, req.log, done);
    let body = match limit {
        Some(limit) => Body::from_stream(limit_bytes(lines, limit)),
        None => Body::from_stream(lines),
    };
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body,
    )
        .into_response()
}

/// How long an exec may run: `kubectl exec` sets no limit, but a command must not hold its
/// instance (and connection) forever.
const EXEC_TIMEOUT: Duration = Duration::from_secs(4 * 3600);

async fn port_forward(
    State(shared): State<Arc<Shared>>,
    UrlPath((namespace, pod)): UrlPath<(String, String)>,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let ws = match ws {
        Ok(ws) => ws,
        Err(e) => return upgrade_required(&e),
    };
    let Some((ip, uid)) = shared.logs.pod_address(&namespace, &pod) else {
        return LogLookupError::PodNotFound { pod }.into_response();
    };
    let target = portforward::Target {
        namespace,
        pod,
        uid,
        ip,
    };
    let shutdown = shared.shutdown.clone();
    ws.protocols([portforward::TUNNELED_PROTOCOL_V1])
        .on_upgrade(move |socket| async move {
            let (to_session, incoming) = tokio::sync::mpsc::channel(64);
            let (outgoing, from_session) = tokio::sync::mpsc::channel(64);
            let session = portforward::serve(incoming, outgoing, target, shutdown);
            tokio::join!(session, bridge(socket, to_session, from_session));
        })
}

/// Carries the SPDY bytes of a tunnelled session: each binary message is a piece of the
/// connection, in order.
async fn bridge(
    socket: WebSocket,
    to_session: tokio::sync::mpsc::Sender<bytes::Bytes>,
    mut from_session: tokio::sync::mpsc::Receiver<bytes::Bytes>,
) {
    use futures::SinkExt;
    let (mut sink, mut stream) = socket.split();
    let read = async move {
        while let Some(Ok(message)) = stream.next().await {
            let data = match message {
                Message::Binary(data) => data,
                Message::Close(_) => break,
                _ => continue,
            };
            if to_session.send(data).await.is_err() {
                break;
            }
        }
        // Dropping `to_session` ends the session.
    };
    let write = async move {
        while let Some(data) = from_session.recv().await {
            if sink.send(Message::Binary(data)).await.is_err() {
                return;
            }
        }
        let _ = sink.send(Message::Close(None)).await;
    };
    tokio::join!(read, write);
}

async fn exec(
    State(shared): State<Arc<Shared>>,
    UrlPath((namespace, pod, container)): UrlPath<(String, String, String)>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let params = match query {
        Ok(Query(params)) => params,
        Err(e) => return status_response(StatusCode::BAD_REQUEST, "BadRequest", &e.body_text()),
    };
    let ws = match ws {
        Ok(ws) => ws,
        Err(e) => return upgrade_required(&e),
    };
    let req = match remotecommand::ExecRequest::from_query(&params) {
        Ok(req) => req,
        Err(message) => return status_response(StatusCode::BAD_REQUEST, "BadRequest", &message),
    };
    let handle = match shared.logs.running_container(&namespace, &pod, &container) {
        Ok(h) => h,
        Err(e) => return e.into_response(),
    };
    let shutdown = shared.shutdown.clone();
    ws.protocols(remotecommand::PROTOCOLS)
        .on_upgrade(move |socket| run_exec(socket, handle, req, shutdown))
}

/// Runs one exec over its WebSocket: stdin (v5, up to the client's close signal), the command,
/// its output, its status, close.
async fn run_exec(
    socket: WebSocket,
    handle: Arc<dyn crate::runtime::Container>,
    req: remotecommand::ExecRequest,
    shutdown: CancellationToken,
) {
    use futures::SinkExt;
    use remotecommand::Incoming;
    let v5 = socket.protocol().and_then(|p| p.to_str().ok()) == Some(remotecommand::PROTOCOL_V5);
    let (mut sink, mut stream) = socket.split();
    let mut stdin = Vec::new();
    // Only v5 can say where input ends; a v4 client's stdin is taken as empty.
    if req.stdin && v5 {
        loop {
            let message = tokio::select! {
                m = stream.next() => m,
                _ = shutdown.cancelled() => return,
            };
            match message {
                Some(Ok(Message::Binary(data))) => match remotecommand::classify(&data) {
                    Incoming::Stdin(bytes) => stdin.extend_from_slice(bytes),
                    Incoming::Close(remotecommand::STDIN) => break,
                    _ => {}
                },
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => {}
            }
        }
    }
    // A client that goes away ends the exec.
    let gone = async {
        while let Some(Ok(message)) = stream.next().await {
            if matches!(message, Message::Close(_)) {
                break;
            }
        }
    };
    let run = handle.exec_with_stdin(req.command.clone(), stdin, EXEC_TIMEOUT);
    let result = tokio::select! {
        r = run => r,
        _ = gone => return,
        _ = shutdown.cancelled() => return,
    };
    let mut out: Vec<Vec<u8>> = Vec::new();
    let status = match result {
        Ok(output) => {
            if req.stdout {
                out.extend(remotecommand::messages(
                    remotecommand::STDOUT,
                    &output.stdout,
                ));
            }
            if req.stderr {
                out.extend(remotecommand::messages(
                    remotecommand::STDERR,
                    &output.stderr,
                ));
            }
            remotecommand::exit_status(&req.command, output.exit_code)
        }
        Err(e) => remotecommand::failure_status(&format!(
            "error executing command {:?} in container: {e}",
            req.command
        )),
    };
    out.push([&[remotecommand::ERROR][..], status.to_string().as_bytes()].concat());
    for message in out {
        if sink.send(Message::Binary(message.into())).await.is_err() {
            return;
        }
    }
    let _ = sink
        .send(Message::Close(Some(CloseFrame {
            code: axum::extract::ws::close_code::NORMAL,
            reason: "".into(),
        })))
        .await;
}

fn upgrade_required(e: &WebSocketUpgradeRejection) -> Response {
    status_response(
        StatusCode::BAD_REQUEST,
        "BadRequest",
        &format!("this endpoint needs a WebSocket upgrade: {}", e.body_text()),
    )
}

/// Caps a whole (possibly following) stream at `limit` bytes, ending it as soon as the cap is
/// reached rather than when the next line happens to arrive.
fn limit_bytes(
    inner: impl Stream<Item = std::io::Result<bytes::Bytes>> + Send + 'static,
    limit: usize,
) -> impl Stream<Item = std::io::Result<bytes::Bytes>> + Send + 'static {
    futures::stream::unfold(
        (Box::pin(inner), limit),
        |(mut inner, remaining)| async move {
            if remaining == 0 {
                return None;
            }
            match inner.next().await? {
                Ok(mut chunk) => {
                    let remaining = if chunk.len() > remaining {
                        let mut cut = remaining;
                        // Cut on a character boundary, as the non-following selection does.
                        while cut > 0 && std::str::from_utf8(&chunk[..cut]).is_err() {
                            cut -= 1;
                        }
                        chunk.truncate(cut);
                        0
                    } else {
                        remaining - chunk.len()
                    };
                    Some((Ok(chunk), (inner, remaining)))
                }
                Err(e) => Some((Err(e), (inner, 0))),
            }
        },
    )
}

/// A Kubernetes `Status` failure, the shape the API server passes back to clients.
fn status_response(code: StatusCode, reason: &str, message: &str) -> Response {
    let body = json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code.as_u16(),
    });
    (
        code,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::io::Write;

    const TOKEN: &str = "kubelet-test-token";

    /// A container instance of the fake pod manager: its log file and, when it has exited,
    /// nothing to wait for.
    struct Instance {
        path: PathBuf,
        exited: Option<tokio::sync::watch::Receiver<bool>>,
        previous: Option<PathBuf>,
    }

    /// The pod manager of a node running one pod, `default/p`.
    struct FakePods {
        containers: HashMap<String, Instance>,
    }

    impl PodLogs for FakePods {
        fn container_log(
            &self,
            namespace: &str,
            pod: &str,
            container: &str,
            previous: bool,
        ) -> Result<ContainerLog, LogLookupError> {
            if (namespace, pod) != ("default", "p") {
                return Err(LogLookupError::PodNotFound { pod: pod.into() });
            }
            let instance = self.containers.get(container).ok_or_else(|| {
                LogLookupError::ContainerNotFound {
                    pod: pod.into(),
                    container: container.into(),
                }
            })?;
            if container == "waiting" {
                return Err(LogLookupError::Waiting {
                    pod: pod.into(),
                    container: container.into(),
                    reason: "ContainerCreating".into(),
                });
            }
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
            let done: BoxFuture<'static, ()> = match instance.exited.clone() {
                None => Box::pin(async {}),
                Some(mut rx) => Box::pin(async move {
                    let _ = rx.wait_for(|exited| *exited).await;
                }),
            };
            Ok(ContainerLog {
                path: instance.path.clone(),
                done,
            })
        }
    }

    fn record(secs: i64, text: &str) -> String {
        let t = jiff::Timestamp::from_second(secs).expect("time");
        logs::format_record(t, "stdout", true, text)
    }

    struct Fixture {
        _dir: tempfile::TempDir,
        base: String,
        client: reqwest::Client,
        running_log: PathBuf,
        exit: tokio::sync::watch::Sender<bool>,
        shutdown: CancellationToken,
        server: KubeletServer,
    }

    async fn fixture() -> Fixture {
        let dir = tempfile::tempdir().expect("tempdir");
        let ip: IpAddr = [127, 0, 0, 1].into();
        let cert = serving_cert(&dir.path().join("pki"), ip, "node-a").expect("cert");

        let now = jiff::Timestamp::now().as_second();
        let app_log = dir.path().join("app-1.log");
        let old = record(now - 3600, "an hour ago");
        let recent = format!(
            "{}{}",
            record(now - 5, "five seconds ago"),
            record(now, "now")
        );
        std::fs::write(&app_log, format!("{old}{recent}")).expect("write");
        let prev_log = dir.path().join("app-0.log");
        std::fs::write(&prev_log, record(now - 7200, "before the crash")).expect("write");
        let running_log = dir.path().join("tail-0.log");
        std::fs::write(&running_log, record(now, "first")).expect("write");

        let (exit, exit_rx) = tokio::sync::watch::channel(false);
        let fake = FakePods {
            containers: HashMap::from([
                (
                    "app".to_string(),
                    Instance {
                        path: app_log,
                        exited: None,
                        previous: Some(prev_log),
                    },
                ),
                (
                    "tail".to_string(),
                    Instance {
                        path: running_log.clone(),
                        exited: Some(exit_rx),
                        previous: None,
                    },
                ),
                (
                    "waiting".to_string(),
                    Instance {
                        path: dir.path().join("none.log"),
                        exited: None,
                        previous: None,
                    },
                ),
            ]),
        };
        let shutdown = CancellationToken::new();
        let server = start(
            (ip, 0).into(),
            &cert,
            Arc::new(fake),
            Some(TOKEN.into()),
            shutdown.clone(),
        )
        .await
        .expect("start");
        let client = reqwest::Client::builder()
            .tls_built_in_root_certs(false)
            .add_root_certificate(
                reqwest::Certificate::from_pem(cert.cert_pem.as_bytes()).expect("pem"),
            )
            .no_proxy()
            .build()
            .expect("client");
        Fixture {
            base: format!("https://{}", server.local_addr()),
            _dir: dir,
            client,
            running_log,
            exit,
            shutdown,
            server,
        }
    }

    impl Fixture {
        async fn get(&self, path: &str) -> (u16, String) {
            let resp = self
                .client
                .get(format!("{}{path}", self.base))
                .bearer_auth(TOKEN)
                .send()
                .await
                .expect("send");
            let code = resp.status().as_u16();
            (code, resp.text().await.expect("body"))
        }
    }

    fn status_of(text: &str) -> serde_json::Value {
        let v: serde_json::Value = serde_json::from_str(text).expect("status json");
        assert_eq!(v["kind"], "Status", "{text}");
        assert_eq!(v["status"], "Failure", "{text}");
        v
    }

    #[test]
    fn certificate_is_reused_while_it_covers_the_node() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ip: IpAddr = [127, 0, 0, 1].into();
        let a = serving_cert(dir.path(), ip, "node-a").expect("create");
        let b = serving_cert(dir.path(), ip, "node-a").expect("reload");
        assert_eq!(a.cert_pem, b.cert_pem);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("kubelet.key"))
                .expect("key")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let moved = serving_cert(dir.path(), [127, 0, 0, 2].into(), "node-a").expect("new ip");
        assert_ne!(a.cert_pem, moved.cert_pem, "a new address gets a new cert");
        let renamed = serving_cert(dir.path(), [127, 0, 0, 2].into(), "node-b").expect("name");
        assert_ne!(
            moved.cert_pem, renamed.cert_pem,
            "a new name gets a new cert"
        );
    }

    #[test]
    fn tokens_compare_exactly() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
        assert!(!constant_time_eq(b"", b"a"));
        assert_eq!(bearer_token("Bearer xyz"), Some("xyz"));
        assert_eq!(bearer_token("bearer xyz"), Some("xyz"));
        assert_eq!(bearer_token("Basic xyz"), None);
    }

    #[tokio::test]
    async fn serves_selected_logs() {
        let f = fixture().await;
        let (code, text) = f.get("/containerLogs/default/p/app").await;
        assert_eq!(code, 200, "{text}");
        assert_eq!(text, "an hour ago\nfive seconds ago\nnow\n");

        let (_, text) = f.get("/containerLogs/default/p/app?tailLines=1").await;
        assert_eq!(text, "now\n");
        let (_, text) = f.get("/containerLogs/default/p/app?sinceSeconds=60").await;
        assert_eq!(text, "five seconds ago\nnow\n");
        let since = jiff::Timestamp::now() - jiff::SignedDuration::from_secs(60);
        let (_, text) = f
            .get(&format!("/containerLogs/default/p/app?sinceTime={since}"))
            .await;
        assert_eq!(text, "five seconds ago\nnow\n");
        let (_, text) = f
            .get("/containerLogs/default/p/app?timestamps=true&tailLines=1")
            .await;
        let (stamp, line) = text.split_once(' ').expect("timestamped");
        assert!(stamp.parse::<jiff::Timestamp>().is_ok(), "{text}");
        assert_eq!(line, "now\n");
        let (_, text) = f.get("/containerLogs/default/p/app?limitBytes=5").await;
        assert_eq!(text, "an ho");
        let (_, text) = f.get("/containerLogs/default/p/app?previous=true").await;
        assert_eq!(text, "before the crash\n");

        let (code, _) = f.get("/healthz").await;
        assert_eq!(code, 200);
        f.shutdown.cancel();
        f.server.stopped().await;
    }

    #[tokio::test]
    async fn errors_are_statuses() {
        let f = fixture().await;
        let unauthenticated = f
            .client
            .get(format!("{}/containerLogs/default/p/app", f.base))
            .send()
            .await
            .expect("send");
        assert_eq!(unauthenticated.status().as_u16(), 401);
        let wrong = f
            .client
            .get(format!("{}/containerLogs/default/p/app", f.base))
            .bearer_auth("kubelet-test-tokeN")
            .send()
            .await
            .expect("send");
        assert_eq!(wrong.status().as_u16(), 401);
        let health = f
            .client
            .get(format!("{}/healthz", f.base))
            .send()
            .await
            .expect("send");
        assert_eq!(health.text().await.expect("body"), "ok");

        let (code, text) = f.get("/containerLogs/default/q/app").await;
        assert_eq!(code, 404);
        let v = status_of(&text);
        assert_eq!(v["message"], "pods \"q\" not found");
        assert_eq!(
            (v["reason"].as_str(), v["code"].as_u64()),
            (Some("NotFound"), Some(404))
        );

        let (code, text) = f.get("/containerLogs/default/p/nope").await;
        assert_eq!(code, 400);
        assert_eq!(
            status_of(&text)["message"],
            "container \"nope\" in pod \"p\" is not valid"
        );
        let (code, text) = f.get("/containerLogs/default/p/tail?previous=1").await;
        assert_eq!(code, 400);
        assert_eq!(
            status_of(&text)["message"],
            "previous terminated container \"tail\" in pod \"p\" not found"
        );
        let (code, text) = f.get("/containerLogs/default/p/waiting").await;
        assert_eq!(code, 400);
        assert_eq!(
            status_of(&text)["message"],
            "container \"waiting\" in pod \"p\" is waiting to start: ContainerCreating"
        );
        for bad in [
            "tailLines=-1",
            "tailLines=x",
            "limitBytes=0",
            "sinceSeconds=0",
            "sinceTime=yesterday",
        ] {
            let (code, text) = f.get(&format!("/containerLogs/default/p/app?{bad}")).await;
            assert_eq!(code, 400, "{bad}: {text}");
            let field = bad.split('=').next().expect("field");
            let message = status_of(&text)["message"].as_str().map(str::to_string);
            assert!(
                message.as_deref().is_some_and(|m| m.starts_with(field)),
                "{bad}: {text}"
            );
        }
        f.shutdown.cancel();
    }

    #[tokio::test]
    async fn follow_streams_until_the_container_exits() {
        let f = fixture().await;
        let resp = f
            .client
            .get(format!(
                "{}/containerLogs/default/p/tail?follow=true",
                f.base
            ))
            .bearer_auth(TOKEN)
            .send()
            .await
            .expect("send");
        assert_eq!(resp.status().as_u16(), 200);
        let mut body = resp.bytes_stream();
        let mut received = String::new();
        let mut next = async |received: &mut String| {
            let chunk = tokio::time::timeout(Duration::from_secs(10), body.next())
                .await
                .expect("in time");
            match chunk {
                Some(c) => {
                    received.push_str(&String::from_utf8_lossy(&c.expect("chunk")));
                    true
                }
                None => false,
            }
        };
        while received != "first\n" {
            assert!(
                next(&mut received).await,
                "stream ended early: {received:?}"
            );
        }
        {
            let mut file = std::fs::OpenOptions::new()
                .append(true)
                .open(&f.running_log)
                .expect("open");
            file.write_all(record(jiff::Timestamp::now().as_second(), "second").as_bytes())
                .expect("append");
        }
        while received != "first\nsecond\n" {
            assert!(
                next(&mut received).await,
                "stream ended early: {received:?}"
            );
        }
        f.exit.send_replace(true);
        while next(&mut received).await {}
        assert_eq!(received, "first\nsecond\n");
        f.shutdown.cancel();
    }

    #[tokio::test]
    async fn follow_ends_at_shutdown() {
        let f = fixture().await;
        let resp = f
            .client
            .get(format!("{}/containerLogs/default/p/tail?follow=1", f.base))
            .bearer_auth(TOKEN)
            .send()
            .await
            .expect("send");
        f.shutdown.cancel();
        let text = tokio::time::timeout(Duration::from_secs(10), resp.text())
            .await
            .expect("ends with the server")
            .expect("body");
        assert_eq!(text, "first\n");
        f.server.stopped().await;
    }

    #[tokio::test]
    async fn follow_respects_limit_bytes() {
        let f = fixture().await;
        let resp = f
            .client
            .get(format!(
                "{}/containerLogs/default/p/tail?follow=1&limitBytes=8",
                f.base
            ))
            .bearer_auth(TOKEN)
            .send()
            .await
            .expect("send");
        let mut body = resp.bytes_stream();
        let first = tokio::time::timeout(Duration::from_secs(10), body.next())
            .await
            .expect("in time");
        assert_eq!(first.expect("chunk").expect("ok"), "first\n");
        {
            let mut file = std::fs::OpenOptions::new()
                .append(true)
                .open(&f.running_log)
                .expect("open");
            file.write_all(record(jiff::Timestamp::now().as_second(), "second").as_bytes())
                .expect("append");
        }
        let mut rest = String::new();
        // The stream ends once the cap is reached, while the container still runs.
        let ended = tokio::time::timeout(Duration::from_secs(10), async {
            while let Some(c) = body.next().await {
                rest.push_str(&String::from_utf8_lossy(&c.expect("chunk")));
            }
        })
        .await;
        assert!(ended.is_ok(), "the capped stream ends");
        assert_eq!(rest, "se");
        f.shutdown.cancel();
    }
}
