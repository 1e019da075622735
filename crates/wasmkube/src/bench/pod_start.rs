//! `pod-start`: how long a pod takes from its create call to the watch event that shows it
//! Running, on a warm node (the module already compiled and cached by a first pod), beside
//! `ctr run --rm` of a busybox container through containerd measured in the same run.
//!
//! The node is the real `wasmkube server` (its local node) as a child process; pods are HTTP
//! pods bound to it by `spec.nodeName`, so they stay Running and no scheduler is involved.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::bail;
use futures::StreamExt;

use super::cluster::{self, Cluster, ClusterOptions, NodePlacement, PodWatch, cpu_time};
use super::{ExamplesArg, Percentiles, containerd, ms, ratio};

const IMAGE: &str = "wasmkube.local/examples/hello-http:v1";

#[derive(clap::Args, Debug)]
pub struct PodStartArgs {
    /// Pods created (after one warm-up pod).
    #[arg(long, default_value_t = 500)]
    pub pods: usize,
    /// Create calls in flight at once.
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// `ctr run --rm` runs timed for the reference (after one untimed warm-up run).
    #[arg(long, default_value_t = 30)]
    pub ctr_runs: usize,
    /// Pods started one at a time (each waited for before the next is created) before the
    /// concurrent batch: the latency with no queueing on the node.
    #[arg(long, default_value_t = 50)]
    pub serial_pods: usize,
    /// Give up waiting for pods to be Running after this many seconds.
    #[arg(long, default_value_t = 300)]
    pub timeout_seconds: u64,
    #[command(flatten)]
    pub examples: ExamplesArg,
}

pub(crate) async fn run(args: PodStartArgs) -> anyhow::Result<()> {
    if args.pods == 0 || args.concurrency == 0 {
        bail!("--pods and --concurrency must be at least 1");
    }
    let module = args.examples.module("hello-http")?;
    let wasm = wasm_pod_start(&args, module).await?;
    if let Some(serial) = &wasm.serial {
        println!(
            "wasm pod create→Running, one at a time: {} pods: p50 {} p99 {} max {}",
            serial.n,
            ms(serial.p50),
            ms(serial.p99),
            ms(serial.max)
        );
    }
    println!(
        "wasm pod create→Running, {} in flight: {} pods: p50 {} p99 {} max {}; wall {} ({:.0} pods/s); CPU used meanwhile: server {:.2} s, this benchmark process {:.2} s; store writes {}",
        args.concurrency,
        wasm.batch.n,
        ms(wasm.batch.p50),
        ms(wasm.batch.p99),
        ms(wasm.batch.max),
        ms(wasm.wall),
        wasm.batch.n as f64 / wasm.wall.as_secs_f64(),
        wasm.server_cpu.as_secs_f64(),
        wasm.bench_cpu.as_secs_f64(),
        wasm.writes
            .map(|w| format!("{w} ({:.1} per pod)", w as f64 / wasm.batch.n as f64))
            .unwrap_or_else(|| "?".into()),
    );

    let reference = if args.ctr_runs == 0 {
        Err("skipped: --ctr-runs 0".to_string())
    } else {
        println!("reference: starting a private containerd for `ctr run --rm` ...");
        containerd::ctr_run_reference(args.ctr_runs).await
    };
    let reference = match reference {
        Ok(r) => match Percentiles::of(&mut r.samples.clone()) {
            Some(p) => {
                println!(
                    "reference: ctr run --rm busybox /bin/true ({} runs one after another, {} snapshotter, runc {}): p50 {} p99 {} max {}",
                    p.n,
                    r.snapshotter,
                    r.runc_version,
                    ms(p.p50),
                    ms(p.p99),
                    ms(p.max)
                );
                Ok(p)
            }
            None => Err("no ctr runs were timed".to_string()),
        },
        Err(why) => Err(why),
    };
    let line = |what: &str, w: &Percentiles| match &reference {
        Ok(p) => println!(
            "wasm pod create→Running ({what}) p50 {} p99 {} | ctr run --rm p50 {} p99 {} | ratio p50 {} p99 {}",
            ms(w.p50),
            ms(w.p99),
            ms(p.p50),
            ms(p.p99),
            ratio(w.p50, p.p50),
            ratio(w.p99, p.p99)
        ),
        Err(why) => println!(
            "wasm pod create→Running ({what}) p50 {} p99 {} | ctr run --rm: reference unavailable ({why})",
            ms(w.p50),
            ms(w.p99)
        ),
    };
    if let Some(serial) = &wasm.serial {
        line("one at a time", serial);
    }
    line(&format!("{} in flight", args.concurrency), &wasm.batch);
    Ok(())
}

struct WasmResult {
    serial: Option<Percentiles>,
    batch: Percentiles,
    wall: Duration,
    server_cpu: Duration,
    bench_cpu: Duration,
    /// Store writes (revisions) during the batch.
    writes: Option<u64>,
}

async fn wasm_pod_start(
    args: &PodStartArgs,
    module: std::path::PathBuf,
) -> anyhow::Result<WasmResult> {
    let images = [(module, IMAGE)];
    let cluster = Cluster::start(ClusterOptions {
        placement: NodePlacement::InServer,
        max_pods: (args.pods + args.serial_pods + 10) as u32,
        images: &images,
        containerd_socket: None,
        server_args: Vec::new(),
    })
    .await?;
    let api = cluster.pods();
    let timeout = Duration::from_secs(args.timeout_seconds);
    let watch = PodWatch::start(api.clone(), "pod-start").await?;

    // Warm-up: the first pod compiles the module (and fills the on-disk and in-memory caches);
    // every measured pod then starts from the cache.
    let warm = one_pod(&cluster, &watch, "warm-0", timeout).await?;
    println!(
        "warm-up pod (compiles the module) create→Running: {}",
        ms(warm)
    );

    let mut serial = Vec::with_capacity(args.serial_pods);
    for i in 0..args.serial_pods {
        serial.push(one_pod(&cluster, &watch, &format!("serial-{i}"), timeout).await?);
    }
    let serial = Percentiles::of(&mut serial);

    let before = watch.with(|s| s.running.len());
    let server_pid = cluster.server.pid();
    let cpu0 = (
        cpu_time(server_pid).unwrap_or_default(),
        cpu_time(std::process::id()).unwrap_or_default(),
    );
    let rev0 = revision(&api).await;
    let created: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let start = Instant::now();
    let results: Vec<anyhow::Result<()>> = futures::stream::iter(0..args.pods)
        .map(|i| {
            let api = api.clone();
            let created = created.clone();
            async move {
                let name = format!("start-{i}");
                let pod = cluster::http_pod(&name, IMAGE, "pod-start")?;
                created
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(name, Instant::now());
                cluster::create(&api, &pod).await
            }
        })
        .buffer_unordered(args.concurrency)
        .collect()
        .await;
    let failed: Vec<_> = results.into_iter().filter_map(Result::err).collect();
    if let Some(e) = failed.first() {
        bail!(
            "{} of {} creates failed; first: {e:#}",
            failed.len(),
            args.pods
        );
    }
    let all_running = watch
        .wait_until(start + timeout, |s| s.running.len() >= before + args.pods)
        .await;
    let server_cpu = cpu_time(server_pid)
        .unwrap_or_default()
        .saturating_sub(cpu0.0);
    let bench_cpu = cpu_time(std::process::id())
        .unwrap_or_default()
        .saturating_sub(cpu0.1);
    // Every write to the store takes one revision: how many writes one pod start costs.
    let writes = match (rev0, revision(&api).await) {
        (Some(a), Some(b)) => Some(b.saturating_sub(a)),
        _ => None,
    };
    let created = created.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let (mut latencies, last) = watch.with(|s| {
        let mut v = Vec::with_capacity(created.len());
        let mut last = start;
        for (name, t0) in &created {
            if let Some(r) = s.running.get(name) {
                v.push(r.at.saturating_duration_since(*t0));
                last = last.max(r.at);
            }
        }
        (v, last)
    });
    if !all_running {
        bail!(
            "only {} of {} pods were Running after {timeout:?}; {}\n{}",
            latencies.len(),
            args.pods,
            not_running(&watch),
            cluster.log_tails(20)
        );
    }
    let Some(batch) = Percentiles::of(&mut latencies) else {
        bail!("no pod latencies were measured");
    };
    Ok(WasmResult {
        serial,
        batch,
        wall: last.saturating_duration_since(start),
        server_cpu,
        bench_cpu,
        writes,
    })
}

/// The store's current revision (the resourceVersion of a list).
async fn revision(api: &kube::Api<k8s_openapi::api::core::v1::Pod>) -> Option<u64> {
    api.list(&kube::api::ListParams::default().limit(1))
        .await
        .map_err(|e| eprintln!("reading the store revision: {e}"))
        .ok()?
        .metadata
        .resource_version?
        .parse()
        .ok()
}

/// Creates one pod and waits for it to be Running: its create→Running latency.
async fn one_pod(
    cluster: &Cluster,
    watch: &PodWatch,
    name: &str,
    timeout: Duration,
) -> anyhow::Result<Duration> {
    let pod = cluster::http_pod(name, IMAGE, "pod-start")?;
    let t0 = Instant::now();
    cluster::create(&cluster.pods(), &pod).await?;
    if !watch
        .wait_until(t0 + timeout, |s| s.running.contains_key(name))
        .await
    {
        bail!(
            "pod {name} was not Running after {timeout:?}; {}\n{}",
            not_running(watch),
            cluster.log_tails(20)
        );
    }
    let at = watch
        .with(|s| s.running.get(name).map(|r| r.at))
        .unwrap_or_else(Instant::now);
    Ok(at.saturating_duration_since(t0))
}

fn not_running(watch: &PodWatch) -> String {
    watch.with(|s| {
        format!(
            "not running: {}; watch errors: {:?}",
            cluster::summarize_not_running(s, 5),
            s.watch_errors.first()
        )
    })
}
