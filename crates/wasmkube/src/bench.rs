//! `wasmkube bench`: performance figures as ratios against references measured in the same run.
//!
//! - `api-writes`: durable API creates per second with 1, 8 and 64 concurrent clients (HTTP over
//!   loopback into a real API server on a redb store), beside raw redb single-transaction durable
//!   commits per second on the same disk.
//! - `watch-fanout`: events per second delivered to 100 HTTP watchers, beside the same fan-out
//!   straight from the store's watch streams (no HTTP, no JSON).

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use futures::StreamExt;
use tokio_util::sync::CancellationToken;
use wasmkube_apiserver::{ApiState, admission::Admission};
use wasmkube_store::{RedbStore, Store};

#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// Which benchmark: api-writes, watch-fanout or all.
    #[arg(default_value = "all")]
    pub which: String,
    /// Seconds each measurement runs.
    #[arg(long, default_value_t = 3.0)]
    pub seconds: f64,
    /// Watchers for watch-fanout.
    #[arg(long, default_value_t = 100)]
    pub watchers: usize,
    /// Objects written during watch-fanout.
    #[arg(long, default_value_t = 500)]
    pub events: usize,
}

pub async fn run(args: BenchArgs) -> anyhow::Result<ExitCode> {
    let all = args.which == "all";
    if all || args.which == "api-writes" {
        api_writes(&args).await?;
    }
    if all || args.which == "watch-fanout" {
        watch_fanout(&args).await?;
    }
    if !all && !matches!(args.which.as_str(), "api-writes" | "watch-fanout") {
        anyhow::bail!(
            "unknown benchmark {:?}: api-writes, watch-fanout or all",
            args.which
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Raw redb: one durable write transaction per insert, back to back.
fn redb_commits_per_sec(dir: &std::path::Path, seconds: f64) -> anyhow::Result<f64> {
    const T: redb::TableDefinition<u64, &[u8]> = redb::TableDefinition::new("bench");
    let db = redb::Database::create(dir.join("raw.redb"))?;
    let value = vec![7u8; 300];
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed().as_secs_f64() < seconds {
        let tx = db.begin_write()?;
        {
            let mut t = tx.open_table(T)?;
            t.insert(n, value.as_slice())?;
        }
        tx.commit()?;
        n += 1;
    }
    Ok(n as f64 / start.elapsed().as_secs_f64())
}

struct Api {
    url: String,
    shutdown: CancellationToken,
    _dir: tempfile::TempDir,
    store: Arc<dyn Store>,
}

async fn start_api() -> anyhow::Result<Api> {
    let dir = tempfile::tempdir()?;
    let store: Arc<dyn Store> = Arc::new(RedbStore::open(dir.path().join("state.redb"))?);
    let shutdown = CancellationToken::new();
    let state = Arc::new(ApiState {
        store: store.clone(),
        admission: Admission::new(),
        subresource_handler: None,
        shutdown: shutdown.clone(),
        bookmark_interval: Duration::from_secs(30),
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

async fn api_writes(args: &BenchArgs) -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let seconds = args.seconds;
    let dir = tmp.path().to_path_buf();
    let raw = tokio::task::spawn_blocking(move || redb_commits_per_sec(&dir, seconds))
        .await
        .context("raw redb benchmark")??;
    println!("reference: raw redb durable single-insert commits: {raw:.0}/s");
    for clients in [1usize, 8, 64] {
        let api = start_api().await?;
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(clients)
            .build()?;
        let url = format!("{}/api/v1/namespaces/default/configmaps", api.url);
        let deadline = Instant::now() + Duration::from_secs_f64(args.seconds);
        let start = Instant::now();
        let mut tasks = Vec::new();
        for c in 0..clients {
            let http = http.clone();
            let url = url.clone();
            tasks.push(tokio::spawn(async move {
                let mut ok = 0u64;
                let mut i = 0u64;
                while Instant::now() < deadline {
                    let body = serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap",
                        "metadata": {"name": format!("b-{c}-{i}")}, "data": {"k": "v"}});
                    i += 1;
                    if let Ok(r) = http.post(&url).json(&body).send().await
                        && r.status().as_u16() == 201
                    {
                        ok += 1;
                    }
                }
                ok
            }));
        }
        let mut total = 0;
        for t in tasks {
            total += t.await.unwrap_or(0);
        }
        let rate = total as f64 / start.elapsed().as_secs_f64();
        let stats = api.store.stats();
        println!(
            "api creates, {clients:>2} clients: {rate:>8.0}/s = {:.2}x raw redb commits (writes per commit {:.1})",
            rate / raw,
            stats.writes as f64 / stats.commits.max(1) as f64
        );
        api.shutdown.cancel();
    }
    Ok(())
}

async fn watch_fanout(args: &BenchArgs) -> anyhow::Result<()> {
    let api = start_api().await?;
    let n = args.events;
    let watchers = args.watchers;

    // Reference: the same fan-out straight from the store.
    let rev = api.store.current_revision().await?;
    let mut store_watchers = Vec::new();
    for _ in 0..watchers {
        let mut s = api.store.watch("/bench-ref/", rev).await?;
        store_watchers.push(tokio::spawn(async move {
            let mut got = 0;
            while got < n {
                match s.next().await {
                    Some(Ok(_)) => got += 1,
                    _ => break,
                }
            }
            got
        }));
    }
    let start = Instant::now();
    for i in 0..n {
        api.store
            .create(&format!("/bench-ref/{i}"), bytes::Bytes::from_static(b"{}"))
            .await?;
    }
    let mut delivered = 0;
    for w in store_watchers {
        delivered += w.await.unwrap_or(0);
    }
    let reference = delivered as f64 / start.elapsed().as_secs_f64();
    println!("reference: store watch fan-out to {watchers} watchers: {reference:.0} events/s");

    // The API: HTTP watch streams, JSON events.
    let http = reqwest::Client::new();
    let url = format!("{}/api/v1/namespaces/default/configmaps", api.url);
    let list: serde_json::Value = http.get(&url).send().await?.json().await?;
    let rv = list["metadata"]["resourceVersion"]
        .as_str()
        .unwrap_or("0")
        .to_string();
    let mut api_watchers = Vec::new();
    for _ in 0..watchers {
        let resp = http
            .get(format!("{url}?watch=true&resourceVersion={rv}"))
            .send()
            .await?;
        api_watchers.push(tokio::spawn(async move {
            let mut body = resp.bytes_stream();
            let mut got = 0;
            while got < n {
                match body.next().await {
                    Some(Ok(chunk)) => got += chunk.iter().filter(|b| **b == b'\n').count(),
                    _ => break,
                }
            }
            got
        }));
    }
    let start = Instant::now();
    for i in 0..n {
        let body = serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": format!("w-{i}")}});
        http.post(&url).json(&body).send().await?;
    }
    let mut delivered = 0;
    for w in api_watchers {
        delivered += w.await.unwrap_or(0);
    }
    let rate = delivered as f64 / start.elapsed().as_secs_f64();
    println!(
        "api watch fan-out to {watchers} watchers: {rate:.0} events/s = {:.2}x the store's own fan-out",
        rate / reference
    );
    api.shutdown.cancel();
    Ok(())
}
