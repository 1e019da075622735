//! `datastore`: durable API creates per second on etcd with 1, 8 and 64 concurrent clients,
//! beside raw etcd puts through the same client library at the same concurrency, and beside
//! the same API creates on the embedded redb store — all measured in this run.
//!
//! etcd is Debian's `etcd-server`, started here on loopback ports with its own data
//! directory (one member by default; `--members 3` for a replicated cluster on this one
//! machine, where the members share its cores and disk).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use futures::StreamExt;
use wasmkube_store::{EtcdOptions, EtcdStore};
use wasmkube_testkit::etcd::EtcdCluster;

use super::api::{Api, start_api, start_api_on};

#[derive(clap::Args, Debug)]
pub struct DatastoreArgs {
    /// Seconds each measurement runs.
    #[arg(long, default_value_t = 3.0)]
    pub seconds: f64,
    /// etcd members (1 or 3).
    #[arg(long, default_value_t = 1)]
    pub members: usize,
    /// Concurrent clients of each measurement (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "1,8,64")]
    pub clients: Vec<usize>,
}

pub(crate) async fn run(args: DatastoreArgs) -> anyhow::Result<()> {
    if args.members == 0 || args.clients.contains(&0) {
        anyhow::bail!("--members and every --clients count must be at least 1");
    }
    println!(
        "datastore: {}-member etcd on loopback, {} s per measurement",
        args.members, args.seconds
    );
    let mut rows = Vec::new();
    for &clients in &args.clients {
        let raw = {
            let etcd = start_etcd(args.members)?;
            raw_puts(&etcd, clients, args.seconds).await?
        };
        let on_etcd = {
            let etcd = start_etcd(args.members)?;
            let store = EtcdStore::connect(&EtcdOptions::new(etcd.endpoints()))
                .await
                .context("connecting to the benchmark's etcd")?;
            let api = start_api_on(Arc::new(store), tempfile::tempdir()?).await?;
            let rate = api_creates(&api, clients, args.seconds).await?;
            api.shutdown.cancel();
            rate
        };
        let on_redb = {
            let api = start_api().await?;
            let rate = api_creates(&api, clients, args.seconds).await?;
            api.shutdown.cancel();
            rate
        };
        let row = format!(
            "{clients:>2} clients: raw etcd puts {raw:>7.0}/s | API creates on etcd {on_etcd:>7.0}/s = {:.2}x raw etcd | API creates on redb {on_redb:>7.0}/s (etcd = {:.2}x redb)",
            on_etcd / raw.max(f64::MIN_POSITIVE),
            on_etcd / on_redb.max(f64::MIN_POSITIVE),
        );
        println!("{row}");
        rows.push(row);
    }
    println!("summary:");
    for row in rows {
        println!("  {row}");
    }
    Ok(())
}

pub(crate) fn start_etcd(members: usize) -> anyhow::Result<EtcdCluster> {
    // The launcher panics with etcd's log when a member does not come up: report it as an error.
    std::panic::catch_unwind(|| EtcdCluster::start(members))
        .map_err(|_| anyhow::anyhow!("etcd did not start (apt-get install etcd-server)"))
}

/// Raw etcd puts: `clients` loops of one put after another, each acknowledged by etcd.
async fn raw_puts(etcd: &EtcdCluster, clients: usize, seconds: f64) -> anyhow::Result<f64> {
    let client = etcd_client::Client::connect(etcd.endpoints(), None)
        .await
        .context("connecting to etcd")?;
    let value = vec![7u8; 300];
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let start = Instant::now();
    let counts = futures::stream::iter(0..clients)
        .map(|c| {
            let mut kv = client.kv_client();
            let value = value.clone();
            async move {
                let mut ok = 0u64;
                let mut i = 0u64;
                while Instant::now() < deadline {
                    if kv
                        .put(format!("/bench/{c}/{i}"), value.clone(), None)
                        .await
                        .is_ok()
                    {
                        ok += 1;
                    }
                    i += 1;
                }
                ok
            }
        })
        .buffer_unordered(clients)
        .collect::<Vec<_>>()
        .await;
    Ok(counts.iter().sum::<u64>() as f64 / start.elapsed().as_secs_f64())
}

/// ConfigMap creates over HTTP into `api` from `clients` loops.
pub(crate) async fn api_creates(api: &Api, clients: usize, seconds: f64) -> anyhow::Result<f64> {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(clients)
        .build()?;
    let url = format!("{}/api/v1/namespaces/default/configmaps", api.url);
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
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
    Ok(total as f64 / start.elapsed().as_secs_f64())
}
