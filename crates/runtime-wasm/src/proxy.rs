//! `wasi:http/proxy` components: each request instantiates the component from its
//! `ProxyPre` and calls `wasi:http/incoming-handler.handle`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use futures::future::BoxFuture;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use wasmtime::Store;
use wasmtime::component::ResourceTable;
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpView};

use crate::container::Outcome;
use crate::guest::{EpochControl, MemoryLimiter, P2Host, install_epoch_control};
use crate::http::{
    BoxError, Handler, HttpShared, ResponseBody, bounded, failure_response, instantiate_failure,
    text_response,
};
use crate::logs::{LogPipe, Stream};

pub(crate) struct ProxyHandler {
    pub(crate) pre: ProxyPre<P2Host>,
    pub(crate) shared: Arc<HttpShared>,
}

impl Handler for ProxyHandler {
    fn handle(
        self: Arc<Self>,
        req: hyper::Request<Incoming>,
        _local: SocketAddr,
        _remote: SocketAddr,
    ) -> BoxFuture<'static, hyper::Response<ResponseBody>> {
        Box::pin(async move { self.serve(req).await })
    }
}

impl ProxyHandler {
    async fn serve(
        self: Arc<Self>,
        req: hyper::Request<Incoming>,
    ) -> hyper::Response<ResponseBody> {
        let shared = &self.shared;
        let stdout = LogPipe::new(Stream::Stdout, shared.log_tx.clone());
        let stderr = shared.request_stderr();
        let mut builder = match shared.spec.wasi_builder(&[]) {
            Ok(b) => b,
            Err(e) => {
                stderr.runtime_line(&format!("request failed: {e}"));
                return text_response(500, "the container's mounts are unavailable");
            }
        };
        builder
            .stdout(stdout.wasi_stream())
            .stderr(stderr.wasi_stream());
        let host = P2Host {
            wasi: builder.build(),
            table: ResourceTable::new(),
            http: WasiHttpCtx::new(),
            outbound: shared.spec.outbound.clone(),
            limiter: MemoryLimiter::new(shared.spec.memory_limit, shared.usage.clone()),
        };
        let mut store = Store::new(&shared.engine, host);
        store.limiter(|h| &mut h.limiter);
        install_epoch_control(
            &mut store,
            EpochControl {
                budget: shared.budget.clone(),
                kill: shared.control.kill_flag.clone(),
                deadline: Some((
                    Instant::now() + shared.request_timeout,
                    shared.request_timeout,
                )),
                tick: shared.tick,
            },
        );
        let (sender, receiver) = tokio::sync::oneshot::channel();
        let setup: wasmtime::Result<_> = (|| {
            let req = store
                .data_mut()
                .http()
                .new_incoming_request(Scheme::Http, req)?;
            let out = store.data_mut().http().new_response_outparam(sender)?;
            Ok((req, out))
        })();
        let (req, out) = match setup {
            Ok(x) => x,
            Err(e) => return text_response(400, format!("invalid request: {e}")),
        };
        let proxy = match self.pre.instantiate_async(&mut store).await {
            Ok(p) => p,
            Err(e) => {
                let oom = store.data().limiter.oom;
                drop(store);
                let resp = instantiate_failure(&e, oom, &stderr);
                stderr.finish().await;
                return resp;
            }
        };
        // The guest keeps running after `response-outparam.set` to stream the body, so it
        // runs on its own (tracked) task; the response goes out as soon as it is set.
        let this = self.clone();
        let task_stderr = stderr.clone();
        let task = shared.tracker.spawn(async move {
            let result = bounded(&this.shared, async {
                proxy
                    .wasi_http_incoming_handler()
                    .call_handle(&mut store, req, out)
                    .await
            })
            .await;
            let outcome = Outcome::of(result, store.data().limiter.oom);
            drop(store);
            if !matches!(outcome, Outcome::Exited(0)) {
                // Logged here too: the failure may come after the response was sent.
                let _ = failure_response(&outcome, &task_stderr, "request failed");
            }
            stdout.finish().await;
            task_stderr.finish().await;
            outcome
        });
        match receiver.await {
            Ok(Ok(resp)) => resp.map(|b| b.map_err(|e| Box::new(e) as BoxError).boxed_unsync()),
            Ok(Err(code)) => {
                text_response(500, format!("the handler answered with an error: {code:?}"))
            }
            // The guest ended without setting a response.
            Err(_) => match task.await {
                Ok(Outcome::Exited(0)) => {
                    text_response(500, "the handler returned without a response")
                }
                Ok(outcome) => {
                    let (status, text) = match outcome {
                        Outcome::Killed => (503, "the container is stopping".to_string()),
                        Outcome::DeadlineExceeded(m) => (504, m),
                        Outcome::OutOfMemory(m) => (500, m),
                        Outcome::Trapped(m) => (
                            500,
                            format!("wasm trap: {}", m.lines().next().unwrap_or("")),
                        ),
                        Outcome::Exited(c) => (500, format!("the handler exited with code {c}")),
                    };
                    text_response(status, text)
                }
                Err(e) => text_response(500, format!("the request task failed: {e}")),
            },
        }
    }
}
