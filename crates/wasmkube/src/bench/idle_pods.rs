//! `idle-pods`: how many idle HTTP Wasm pods one node holds, and what each costs in memory.
//!
//! The node runs as its own `wasmkube agent` process (joined to a `wasmkube server` with
//! `--disable-agent`), so its resident memory (VmRSS) is the node's alone: the kubelet and the
//! Wasm runtime, not the API server and its store. The reference is the same node's RSS with
//! no pods, sampled in the same run before the first pod is created.

use std::time::{Duration, Instant};

use anyhow::bail;
use futures::StreamExt;

use super::cluster::{self, Cluster, ClusterOptions, NodePlacement, PodWatch, open_fds, rss_of};
use super::{ExamplesArg, ms};

const IMAGE: &str = "wasmkube.local/examples/hello-http:v1";
const MIB: f64 = (1 << 20) as f64;

#[derive(clap::Args, Debug)]
pub struct IdlePodsArgs {
    /// Pod counts to reach, in order (pods are added to reach each).
    #[arg(long, value_delimiter = ',', default_value = "1000,10000")]
    pub counts: Vec<usize>,
    /// Give up on a count (and print how far it got) after this many minutes.
    #[arg(long, default_value_t = 10.0)]
    pub timeout_minutes: f64,
    /// Create calls in flight at once.
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
    /// Pods checked to answer HTTP at each count.
    #[arg(long, default_value_t = 20)]
    pub http_sample: usize,
    #[command(flatten)]
    pub examples: ExamplesArg,
}

pub(crate) async fn run(args: IdlePodsArgs) -> anyhow::Result<()> {
    let mut counts = args.counts.clone();
    counts.sort_unstable();
    counts.dedup();
    let Some(&max) = counts.last() else {
        bail!("--counts needs at least one count");
    };
    if counts.first() == Some(&0) || args.concurrency == 0 {
        bail!("--counts and --concurrency must be positive");
    }
    let module = args.examples.module("hello-http")?;
    let images = [(module, IMAGE)];
    let cluster = Cluster::start(ClusterOptions {
        placement: NodePlacement::Agent,
        max_pods: (max + 10) as u32,
        images: &images,
        containerd_socket: None,
        server_args: Vec::new(),
    })
    .await?;
    let node_pid = cluster.node_proc().pid();
    let server_pid = cluster.server.pid();
    let api = cluster.pods();
    let watch = PodWatch::start(api.clone(), "idle").await?;

    // Reference: the node with no pods, once its start-up work has settled.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let rss0 = rss_of(node_pid)?;
    println!(
        "reference: node (wasmkube agent) with 0 pods: RSS {:.1} MiB (API server process {:.1} MiB); fd limit {}",
        rss0 as f64 / MIB,
        rss_of(server_pid).map(|r| r as f64 / MIB).unwrap_or(0.0),
        fd_limit().unwrap_or_else(|| "?".into())
    );

    let mut created = 0usize;
    for &count in &counts {
        let deadline = Instant::now() + Duration::from_secs_f64(args.timeout_minutes * 60.0);
        let t = Instant::now();
        let results: Vec<anyhow::Result<()>> = futures::stream::iter(created..count)
            .map(|i| {
                let api = api.clone();
                async move {
                    cluster::create(
                        &api,
                        &cluster::http_pod(&format!("idle-{i}"), IMAGE, "idle")?,
                    )
                    .await
                }
            })
            .buffer_unordered(args.concurrency)
            .collect()
            .await;
        let failed: Vec<_> = results.into_iter().filter_map(Result::err).collect();
        created = count - failed.len();
        let create_time = t.elapsed();
        if let Some(e) = failed.first() {
            println!("{} of {} creates failed; first: {e:#}", failed.len(), count);
        }
        // Progress every 30 s, so a run that stalls shows where and when.
        let mut all = false;
        while Instant::now() < deadline {
            let step = (Instant::now() + Duration::from_secs(30)).min(deadline);
            if watch.wait_until(step, |s| s.running.len() >= count).await {
                all = true;
                break;
            }
            println!(
                "count {count}: {} Running after {}; node RSS {:.1} MiB",
                watch.with(|s| s.running.len()),
                ms(t.elapsed()),
                rss_of(node_pid).map(|r| r as f64 / MIB).unwrap_or(0.0)
            );
        }
        let running = watch.with(|s| s.running.len());
        let took = t.elapsed();
        if !all {
            let (why, errors) = watch.with(|s| {
                (
                    cluster::summarize_not_running(s, 5),
                    s.watch_errors.first().cloned(),
                )
            });
            let node_alive = std::fs::metadata(format!("/proc/{node_pid}")).is_ok();
            println!(
                "count {count}: only {running} of {created} created pods Running after {} (node process {}); not running: {why}; watch error: {errors:?}",
                ms(took),
                if node_alive { "alive" } else { "gone" },
            );
            report_rss(count, running, node_pid, server_pid, rss0);
            println!("{}", cluster.log_tails(15));
            return Ok(());
        }
        // Let the status writes and allocator settle before sampling.
        tokio::time::sleep(Duration::from_secs(3)).await;
        println!(
            "count {count}: all Running {} after the first create of this step (creates took {})",
            ms(took),
            ms(create_time)
        );
        report_rss(count, running, node_pid, server_pid, rss0);
        let (answered, tried, first_failure) = check_http(&watch, args.http_sample).await;
        println!(
            "count {count}: {answered}/{tried} sampled pods answered GET /healthz with 200{}",
            first_failure
                .map(|f| format!(" (first failure: {f})"))
                .unwrap_or_default()
        );
    }
    Ok(())
}

fn report_rss(count: usize, running: usize, node_pid: u32, server_pid: u32, rss0: u64) {
    let Ok(rss) = rss_of(node_pid) else {
        println!("count {count}: the node process is gone: no RSS to sample");
        return;
    };
    let per_pod = rss.saturating_sub(rss0) as f64 / running.max(1) as f64;
    println!(
        "count {count}: node RSS {:.1} MiB = {:.2}× the 0-pod node ({:.1} MiB); {:.1} KiB per Running pod ({running} Running); fds {}; API server process {:.1} MiB",
        rss as f64 / MIB,
        rss as f64 / rss0.max(1) as f64,
        rss0 as f64 / MIB,
        per_pod / 1024.0,
        open_fds(node_pid)
            .map(|(n, sockets, logs)| format!("{n} ({sockets} sockets, {logs} pod log files)"))
            .unwrap_or_else(|| "?".into()),
        rss_of(server_pid).map(|r| r as f64 / MIB).unwrap_or(0.0),
    );
}

/// GET /healthz on `n` Running pods spread over the whole set.
async fn check_http(watch: &PodWatch, n: usize) -> (usize, usize, Option<String>) {
    let mut ips: Vec<(String, String)> = watch.with(|s| {
        s.running
            .iter()
            .filter_map(|(name, r)| r.ip.clone().map(|ip| (name.clone(), ip)))
            .collect()
    });
    ips.sort();
    let step = (ips.len() / n.max(1)).max(1);
    let sample: Vec<_> = ips.into_iter().step_by(step).take(n).collect();
    let mut answered = 0;
    let mut first_failure = None;
    for (name, ip) in &sample {
        match cluster::http_get_status(ip, 8080, "/healthz").await {
            Ok(200) => answered += 1,
            other => {
                first_failure.get_or_insert_with(|| format!("{name} at {ip}: {other:?}"));
            }
        }
    }
    (answered, sample.len(), first_failure)
}

fn fd_limit() -> Option<String> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3).map(str::to_string)
}
