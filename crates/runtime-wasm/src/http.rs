//! HTTP containers: one listener per declared port on the pod's IP, a hyper connection per
//! client, a fresh guest instance per request (see `wagi` and `proxy`).
//!
//! Stopping drains: listeners close at once, idle keep-alive connections are closed, and
//! in-flight requests get the grace period to finish before their guests are interrupted.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures::future::BoxFuture;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio_util::task::TaskTracker;

use crate::container::{Control, ExitReporter, GuestSpec, Outcome, StopMode, WasmContainer};
use crate::guest::{CpuBudget, Interrupt, UsageCounters};
use crate::logs::{LogPipe, LogTx, Stream};

pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;
pub(crate) type ResponseBody = UnsyncBoxBody<Bytes, BoxError>;

/// What every request of an HTTP container shares.
pub(crate) struct HttpShared {
    pub(crate) engine: wasmtime::Engine,
    pub(crate) spec: GuestSpec,
    pub(crate) usage: Arc<UsageCounters>,
    pub(crate) budget: Arc<CpuBudget>,
    pub(crate) control: Arc<Control>,
    pub(crate) log_tx: LogTx,
    pub(crate) tick: Duration,
    pub(crate) request_timeout: Duration,
    pub(crate) max_request_body: usize,
    pub(crate) max_response: usize,
    /// Tracks connections and detached request tasks, for draining on stop.
    pub(crate) tracker: TaskTracker,
}

impl HttpShared {
    /// A stderr pipe for one request; the runtime's own notes about the request go here too.
    pub(crate) fn request_stderr(&self) -> Arc<LogPipe> {
        LogPipe::new(Stream::Stderr, self.log_tx.clone())
    }
}

/// Handles one request with a fresh guest instance.
pub(crate) trait Handler: Send + Sync + 'static {
    fn handle(
        self: Arc<Self>,
        req: hyper::Request<Incoming>,
        local: SocketAddr,
        remote: SocketAddr,
    ) -> BoxFuture<'static, hyper::Response<ResponseBody>>;
}

/// Binds every port before anything is spawned, so a taken port fails the start: on the pod's
/// IP, or, in a pod with its own network namespace (one shared with Linux containers), on
/// every address inside that namespace, where the kubelet forwards the pod IP's ports.
pub(crate) async fn bind(
    pod: &wasmkube_kubelet::runtime::PodSandbox,
    ports: &[u16],
) -> std::io::Result<Vec<TcpListener>> {
    let ip = pod.ip;
    let mut listeners = Vec::with_capacity(ports.len());
    for &port in ports {
        let l = match &pod.network_namespace {
            Some(ns) => wasmkube_kubelet::netns::listen(ns, port)
                .await
                .map_err(|e| {
                    std::io::Error::new(
                        e.kind(),
                        format!("binding port {port} in the pod's network namespace: {e}"),
                    )
                })?,
            None => TcpListener::bind(SocketAddr::new(ip, port))
                .await
                .map_err(|e| std::io::Error::new(e.kind(), format!("binding {ip}:{port}: {e}")))?,
        };
        listeners.push(l);
    }
    Ok(listeners)
}

/// Serves `listeners` until stopped; returns the container.
pub(crate) fn serve(
    listeners: Vec<TcpListener>,
    handler: Arc<dyn Handler>,
    shared: Arc<HttpShared>,
    log_writer: tokio::task::JoinHandle<()>,
) -> WasmContainer {
    let started_at = SystemTime::now();
    let (reporter, status) = ExitReporter::new(started_at);
    let control = shared.control.clone();
    let tracker = shared.tracker.clone();
    for listener in listeners {
        tracker.spawn(accept_loop(
            listener,
            handler.clone(),
            control.clone(),
            tracker.clone(),
        ));
    }
    let container = WasmContainer::new(
        started_at,
        status,
        control.clone(),
        shared.usage.clone(),
        StopMode::Drain,
    );
    tokio::spawn(async move {
        control.shutdown.cancelled().await;
        tracker.close();
        let drained = tokio::select! {
            _ = tracker.wait() => true,
            _ = control.kill.cancelled() => false,
        };
        if !drained {
            // Interrupted guests unwind at their next epoch check or host call.
            let _ = tokio::time::timeout(Duration::from_secs(5), tracker.wait()).await;
        }
        drop(handler);
        // The last log senders go with `shared`; the writer then ends.
        drop(shared);
        let _ = tokio::time::timeout(Duration::from_secs(10), log_writer).await;
        reporter.publish(if drained {
            Outcome::Exited(0)
        } else {
            Outcome::Killed
        });
    });
    container
}

async fn accept_loop(
    listener: TcpListener,
    handler: Arc<dyn Handler>,
    control: Arc<Control>,
    tracker: TaskTracker,
) {
    let local = listener.local_addr().ok();
    loop {
        let accepted = tokio::select! {
            _ = control.shutdown.cancelled() => return,
            r = listener.accept() => r,
        };
        let (stream, remote) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(error = %e, "accepting a connection");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let local = local.unwrap_or_else(|| stream.local_addr().unwrap_or(remote));
        tracker.spawn(serve_connection(
            stream,
            local,
            remote,
            handler.clone(),
            control.clone(),
        ));
    }
}

async fn serve_connection(
    stream: tokio::net::TcpStream,
    local: SocketAddr,
    remote: SocketAddr,
    handler: Arc<dyn Handler>,
    control: Arc<Control>,
) {
    let svc = hyper::service::service_fn(move |req| {
        let h = handler.clone();
        async move { Ok::<_, Infallible>(h.handle(req, local, remote).await) }
    });
    let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    let conn = builder.serve_connection(TokioIo::new(stream), svc);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        _ = control.shutdown.cancelled() => {
            conn.as_mut().graceful_shutdown();
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = control.kill.cancelled() => {}
            }
        }
    }
}

/// A plain-text response.
pub(crate) fn text_response(status: u16, text: impl Into<String>) -> hyper::Response<ResponseBody> {
    let mut resp = hyper::Response::new(full(Bytes::from(text.into() + "\n")));
    *resp.status_mut() =
        http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

pub(crate) fn full(b: Bytes) -> ResponseBody {
    Full::new(b).map_err(|never| match never {}).boxed_unsync()
}

/// The response for a request whose guest did not produce one, with a log line saying why.
pub(crate) fn failure_response(
    outcome: &Outcome,
    stderr: &LogPipe,
    what: &str,
) -> hyper::Response<ResponseBody> {
    let (status, text) = match outcome {
        Outcome::Killed => (503, "the container is stopping".to_string()),
        Outcome::DeadlineExceeded(m) => (504, m.clone()),
        Outcome::OutOfMemory(m) => (500, m.clone()),
        Outcome::Trapped(m) => (
            500,
            format!("wasm trap: {}", m.lines().next().unwrap_or("")),
        ),
        Outcome::Exited(code) => (
            500,
            format!("the guest exited with code {code} without a response"),
        ),
    };
    stderr.runtime_line(&format!("{what}: {text}"));
    text_response(status, text)
}

/// The response when a request's instance can't be created: a full pool is back-pressure
/// (503, the client may retry), a memory limit below the module's minimum or a link error a 500.
pub(crate) fn instantiate_failure(
    e: &wasmtime::Error,
    oom: bool,
    stderr: &LogPipe,
) -> hyper::Response<ResponseBody> {
    let pool_full = e
        .downcast_ref::<wasmtime::PoolConcurrencyLimitError>()
        .is_some()
        || e.chain().any(|c| {
            c.downcast_ref::<wasmtime::PoolConcurrencyLimitError>()
                .is_some()
        });
    let (status, text) = if pool_full {
        (
            503,
            "too many concurrent wasm instances on this node".to_string(),
        )
    } else if oom {
        (
            500,
            format!("out of memory at instantiation: {}", e.root_cause()),
        )
    } else {
        (500, format!("instantiation failed: {}", e.root_cause()))
    };
    stderr.runtime_line(&format!("request failed: {text}"));
    text_response(status, text)
}

/// Runs `fut` (a guest execution) bounded by the request deadline and the container's kill.
pub(crate) async fn bounded<F>(shared: &HttpShared, fut: F) -> wasmtime::Result<()>
where
    F: std::future::Future<Output = wasmtime::Result<()>>,
{
    let t = shared.request_timeout;
    tokio::select! {
        biased;
        _ = shared.control.kill.cancelled() => Err(wasmtime::Error::new(Interrupt::Killed)),
        r = tokio::time::timeout(t, fut) => r.unwrap_or_else(|_| Err(wasmtime::Error::new(Interrupt::DeadlineExceeded(t)))),
    }
}
