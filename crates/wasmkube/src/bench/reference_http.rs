//! The references of `http-rps`: the same Wasm modules served by a minimal wasmtime + hyper
//! server in this process, built the way `wasmtime serve` is (pooling allocator, one
//! `InstancePre`/`ProxyPre`, a fresh instance per request, HTTP/1.1 keep-alive), and a plain
//! hyper server with no Wasm at all (the ceiling of this machine's loopback and load generator).
//!
//! Deliberately without what a node adds per request (epoch deadlines and CPU budgets, memory
//! limits, per-request log pipes, graceful drain), so the ratio shows what those cost.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use bytes::Bytes;
use futures::future::BoxFuture;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio_util::sync::CancellationToken;
use wasmtime::component::{Component, ResourceTable};
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, InstancePre, Module, PoolingAllocationConfig, Store,
};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::p2::pipe::{MemoryInputPipe, MemoryOutputPipe};
use wasmtime_wasi::{I32Exit, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type Body = UnsyncBoxBody<Bytes, BoxError>;
type Handler = Arc<
    dyn Fn(hyper::Request<Incoming>, SocketAddr) -> BoxFuture<'static, hyper::Response<Body>>
        + Send
        + Sync,
>;

/// A server on 127.0.0.1, stopped when dropped.
pub(crate) struct RefServer {
    pub addr: SocketAddr,
    shutdown: CancellationToken,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for RefServer {
    fn drop(&mut self) {
        self.shutdown.cancel();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// wasmtime's own error type into anyhow's (the binary's), keeping the cause chain.
fn wt(e: wasmtime::Error) -> anyhow::Error {
    anyhow::Error::from_boxed(e.into_boxed_dyn_error())
}

fn engine() -> wasmtime::Result<Engine> {
    let mut c = Config::new();
    c.wasm_component_model(true);
    c.allocation_strategy(InstanceAllocationStrategy::Pooling(
        PoolingAllocationConfig::default(),
    ));
    Engine::new(&c)
}

fn text(status: u16, body: impl Into<Bytes>) -> hyper::Response<Body> {
    let mut r = hyper::Response::new(
        Full::new(body.into())
            .map_err(|n| match n {})
            .boxed_unsync(),
    );
    *r.status_mut() =
        http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    r
}

/// Serves on 127.0.0.1 from a runtime of its own (as many worker threads as the node's
/// runtime has), so the reference competes with the load generator for the cores the way the
/// node's separate process does, instead of sharing the load generator's worker threads.
async fn serve(handler: Handler) -> anyhow::Result<RefServer> {
    let std_listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    std_listener.set_nonblocking(true)?;
    let addr = std_listener.local_addr()?;
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .thread_name("reference-http")
        .enable_all()
        .build()?;
    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    let thread = std::thread::Builder::new()
        .name("reference-http".into())
        .spawn(move || {
            rt.block_on(accept_loop(std_listener, handler, addr, stop));
            // Dropping the runtime here cancels the connections still open.
        })?;
    Ok(RefServer {
        addr,
        shutdown,
        thread: Some(thread),
    })
}

async fn accept_loop(
    std_listener: std::net::TcpListener,
    handler: Handler,
    addr: SocketAddr,
    stop: CancellationToken,
) {
    let Ok(listener) = tokio::net::TcpListener::from_std(std_listener) else {
        return;
    };
    loop {
        let (stream, _) = tokio::select! {
            _ = stop.cancelled() => return,
            r = listener.accept() => match r {
                Ok(a) => a,
                Err(_) => continue,
            },
        };
        let _ = stream.set_nodelay(true);
        let handler = handler.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req| {
                let h = handler.clone();
                async move { Ok::<_, Infallible>(h(req, addr).await) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), svc);
            tokio::select! {
                _ = conn => {}
                _ = stop.cancelled() => {}
            }
        });
    }
}

/// Plain hyper: a fixed 200 response, no Wasm.
pub(crate) async fn serve_plain() -> anyhow::Result<RefServer> {
    serve(Arc::new(|_req, _local| {
        Box::pin(async { text(200, "Hello from plain hyper!\n") })
    }))
    .await
}

/// A WASI preview1 command served WAGI-style: CGI variables in the environment, the request
/// body on stdin, the CGI response read from stdout.
pub(crate) async fn serve_wagi(module: &std::path::Path) -> anyhow::Result<RefServer> {
    let engine = engine().map_err(wt)?;
    let module = Module::from_file(&engine, module)
        .map_err(wt)
        .with_context(|| format!("compiling {}", module.display()))?;
    let mut linker = wasmtime::Linker::<WasiP1Ctx>::new(&engine);
    wasmtime_wasi::p1::add_to_linker_async(&mut linker, |c| c).map_err(wt)?;
    let pre = Arc::new(linker.instantiate_pre(&module).map_err(wt)?);
    serve(Arc::new(move |req, local| {
        let pre = pre.clone();
        Box::pin(async move {
            wagi(&pre, req, local)
                .await
                .unwrap_or_else(|e| text(500, format!("{e:#}\n")))
        })
    }))
    .await
}

async fn wagi(
    pre: &InstancePre<WasiP1Ctx>,
    req: hyper::Request<Incoming>,
    local: SocketAddr,
) -> anyhow::Result<hyper::Response<Body>> {
    let (parts, body) = req.into_parts();
    let body = body.collect().await?.to_bytes();
    let mut env: Vec<(String, String)> = vec![
        ("GATEWAY_INTERFACE".into(), "CGI/1.1".into()),
        ("SERVER_PROTOCOL".into(), "HTTP/1.1".into()),
        ("REQUEST_METHOD".into(), parts.method.as_str().into()),
        ("PATH_INFO".into(), parts.uri.path().into()),
        (
            "QUERY_STRING".into(),
            parts.uri.query().unwrap_or("").into(),
        ),
        ("SERVER_NAME".into(), local.ip().to_string()),
        ("SERVER_PORT".into(), local.port().to_string()),
        ("CONTENT_LENGTH".into(), body.len().to_string()),
    ];
    for (name, value) in &parts.headers {
        env.push((
            format!(
                "HTTP_{}",
                name.as_str().to_ascii_uppercase().replace('-', "_")
            ),
            String::from_utf8_lossy(value.as_bytes()).into_owned(),
        ));
    }
    let stdout = MemoryOutputPipe::new(16 << 20);
    let wasi = WasiCtxBuilder::new()
        .envs(&env)
        .stdin(MemoryInputPipe::new(body))
        .stdout(stdout.clone())
        .build_p1();
    let mut store = Store::new(pre.module().engine(), wasi);
    let instance = pre.instantiate_async(&mut store).await.map_err(wt)?;
    let start = instance
        .get_typed_func::<(), ()>(&mut store, "_start")
        .map_err(wt)?;
    if let Err(e) = start.call_async(&mut store, ()).await {
        match e.downcast_ref::<I32Exit>() {
            Some(I32Exit(0)) => {}
            _ => return Err(wt(e)),
        }
    }
    drop(store);
    cgi_response(stdout.contents())
}

/// Header lines, a blank line, the body; `Status:` sets the status.
fn cgi_response(out: Bytes) -> anyhow::Result<hyper::Response<Body>> {
    let split = out
        .windows(2)
        .position(|w| w == b"\n\n")
        .map(|i| (i, i + 2))
        .or_else(|| {
            out.windows(4)
                .position(|w| w == b"\r\n\r\n")
                .map(|i| (i, i + 4))
        })
        .context("the module's output has no blank line after the headers")?;
    let head = std::str::from_utf8(&out[..split.0])?;
    let mut resp = text(200, out.slice(split.1..));
    for line in head.lines() {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let (name, value) = (name.trim(), value.trim());
        if name.eq_ignore_ascii_case("status") {
            let code: u16 = value.split_whitespace().next().unwrap_or("").parse()?;
            *resp.status_mut() = http::StatusCode::from_u16(code)?;
        } else {
            resp.headers_mut().append(
                http::HeaderName::from_bytes(name.as_bytes())?,
                http::HeaderValue::from_str(value)?,
            );
        }
    }
    Ok(resp)
}

struct ProxyState {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
}

impl WasiView for ProxyState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for ProxyState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: Default::default(),
        }
    }
}

/// A `wasi:http/proxy` component: a `ProxyPre`, one instance per request, as `wasmtime serve`.
pub(crate) async fn serve_proxy(component: &std::path::Path) -> anyhow::Result<RefServer> {
    let engine = engine().map_err(wt)?;
    let component = Component::from_file(&engine, component)
        .map_err(wt)
        .with_context(|| format!("compiling {}", component.display()))?;
    let mut linker = wasmtime::component::Linker::<ProxyState>::new(&engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(wt)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker).map_err(wt)?;
    let pre = ProxyPre::new(linker.instantiate_pre(&component).map_err(wt)?).map_err(wt)?;
    serve(Arc::new(move |req, _local| {
        let pre = pre.clone();
        Box::pin(async move {
            proxy(pre, req)
                .await
                .unwrap_or_else(|e| text(500, format!("{e:#}\n")))
        })
    }))
    .await
}

async fn proxy(
    pre: ProxyPre<ProxyState>,
    req: hyper::Request<Incoming>,
) -> anyhow::Result<hyper::Response<Body>> {
    let mut store = Store::new(
        pre.engine(),
        ProxyState {
            wasi: WasiCtx::builder().build(),
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
        },
    );
    let (sender, receiver) = tokio::sync::oneshot::channel();
    let req = store
        .data_mut()
        .http()
        .new_incoming_request(Scheme::Http, req)
        .map_err(wt)?;
    let out = store
        .data_mut()
        .http()
        .new_response_outparam(sender)
        .map_err(wt)?;
    // The guest may go on streaming the body after it has set the response.
    let task = tokio::spawn(async move {
        let proxy = pre.instantiate_async(&mut store).await?;
        proxy
            .wasi_http_incoming_handler()
            .call_handle(&mut store, req, out)
            .await
    });
    match receiver.await {
        Ok(Ok(resp)) => Ok(resp.map(|b| b.map_err(|e| Box::new(e) as BoxError).boxed_unsync())),
        Ok(Err(code)) => anyhow::bail!("the handler answered with an error: {code:?}"),
        Err(_) => match task.await? {
            Ok(()) => anyhow::bail!("the handler returned without a response"),
            Err(e) => Err(wt(e)),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgi_output_becomes_a_response() {
        let r = cgi_response(Bytes::from_static(
            b"Content-Type: text/plain\nStatus: 404 Not Found\n\nnope\n",
        ))
        .expect("valid CGI output");
        assert_eq!(r.status(), 404);
        assert_eq!(r.headers()["content-type"], "text/plain");
        assert!(cgi_response(Bytes::from_static(b"no blank line")).is_err());
    }
}
