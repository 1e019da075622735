//! An API server on a redb store in this process, served over loopback HTTP: what the API
//! benchmarks drive.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use wasmkube_apiserver::{ApiState, admission::Admission};
use wasmkube_store::{RedbStore, Store};

pub(crate) struct Api {
    pub(crate) url: String,
    pub(crate) shutdown: CancellationToken,
    _dir: tempfile::TempDir,
    pub(crate) store: Arc<dyn Store>,
}

pub(crate) async fn start_api() -> anyhow::Result<Api> {
    let dir = tempfile::tempdir()?;
    let store: Arc<dyn Store> = Arc::new(RedbStore::open(dir.path().join("state.redb"))?);
    start_api_on(store, dir).await
}

/// The same API server over `store` (e.g. an etcd one); `dir` is kept until it stops.
pub(crate) async fn start_api_on(
    store: Arc<dyn Store>,
    dir: tempfile::TempDir,
) -> anyhow::Result<Api> {
    let shutdown = CancellationToken::new();
    let state = Arc::new(ApiState {
        store: store.clone(),
        admission: Admission::new(),
        subresource_handler: None,
        shutdown: shutdown.clone(),
        bookmark_interval: Duration::from_secs(30),
        token_issuer: None,
    });
    wasmkube_apiserver::bootstrap::ensure_defaults(&state).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let router = wasmkube_apiserver::router(state, None, None);
    tokio::spawn(wasmkube_apiserver::serve(
        listener,
        router,
        None,
        shutdown.clone(),
    ));
    Ok(Api {
        url,
        shutdown,
        _dir: dir,
        store,
    })
}
