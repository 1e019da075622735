//! `deployment`: how long a Deployment of the hello-http example takes from its create call
//! until `status.readyReplicas` reaches the replica count (1,000 by default) on a real Wasm
//! node, beside the same number of identical pods created directly with `spec.nodeName`
//! set (no Deployment, ReplicaSet or scheduler involved) until all are Ready, in the same
//! run.
//!
//! Each measurement gets a fresh `wasmkube server` (API server, controllers, scheduler and its
//! local node) as a child process, so neither inherits the other's pods. The ratio
//! deployment / direct is what the control plane adds on top of the node's own work.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, PostParams};
use serde_json::{Value, json};

use super::cluster::{self, Cluster, ClusterOptions, NODE_NAME, NodePlacement, PodWatch, cpu_time};
use super::history::{History, HistoryArg};
use super::{ExamplesArg, ms};

const IMAGE: &str = "wasmkube.local/examples/hello-http:v1";
const BENCH_LABEL: &str = "deployment";

#[derive(clap::Args, Debug)]
pub struct DeploymentArgs {
    /// Replicas of the Deployment (and pods of the direct reference).
    #[arg(long, default_value_t = 1000)]
    pub replicas: usize,
    /// Create calls in flight at once for the direct reference (the ReplicaSet controller
    /// uses its own slow-start batches).
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
    /// Give up on a measurement after this many seconds.
    #[arg(long, default_value_t = 600)]
    pub timeout_seconds: u64,
    #[command(flatten)]
    pub examples: ExamplesArg,
    #[command(flatten)]
    pub history: HistoryArg,
}

/// The pod template of both measurements: the hello-http example, no probes (so Ready
/// follows Running), no requests (the node's allocatable CPU would otherwise cap replicas).
fn pod_spec() -> Value {
    json!({
        "runtimeClassName": "wasmtime",
        "terminationGracePeriodSeconds": 1,
        "containers": [{
            "name": "web",
            "image": IMAGE,
            "ports": [{"containerPort": 8080}],
        }],
    })
}

struct Measured {
    wall: Duration,
    server_cpu: Option<Duration>,
}

pub(crate) async fn run(args: DeploymentArgs) -> anyhow::Result<()> {
    if args.replicas == 0 || args.concurrency == 0 {
        bail!("--replicas and --concurrency must be at least 1");
    }
    let module = args.examples.module("hello-http")?;
    let mut history = History::open(&args.history)?;
    println!(
        "deployment: {} replicas of hello-http on the server's Wasm node, {} build; history in {}",
        args.replicas,
        super::history::profile(),
        history.path().display()
    );
    let timeout = Duration::from_secs(args.timeout_seconds);
    let images = [(module, IMAGE)];
    let direct = direct_pods(&args, &images, timeout).await?;
    println!(
        "reference: {} pods created directly with nodeName: all Ready after {}",
        args.replicas,
        ms(direct.wall)
    );
    let deployed = deployment(&args, &images, timeout).await?;
    println!(
        "deployment: readyReplicas {} after {}",
        args.replicas,
        ms(deployed.wall)
    );
    let cpu = |m: &Measured| {
        m.server_cpu
            .map(|c| format!("{:.1} s", c.as_secs_f64()))
            .unwrap_or_else(|| "?".into())
    };
    let ratio = deployed.wall.as_secs_f64() / direct.wall.as_secs_f64().max(f64::MIN_POSITIVE);
    let n = args.replicas;
    println!(
        "{n}-replica Deployment fully ready: {} (server CPU {}) | direct pods: {} (server CPU {}) | ratio {}",
        history.beside(
            &format!("deployment/{n}/seconds"),
            deployed.wall.as_secs_f64(),
            "s"
        ),
        cpu(&deployed),
        history.beside(
            &format!("deployment/{n}/direct-seconds"),
            direct.wall.as_secs_f64(),
            "s"
        ),
        cpu(&direct),
        history.beside(&format!("deployment/{n}/ratio"), ratio, "×"),
    );
    history.save()?;
    Ok(())
}

async fn start(images: &[(std::path::PathBuf, &str)], replicas: usize) -> anyhow::Result<Cluster> {
    Cluster::start(ClusterOptions {
        placement: NodePlacement::InServer,
        max_pods: (replicas + 100) as u32,
        images,
        containerd_socket: None,
        server_args: Vec::new(),
    })
    .await
}

async fn direct_pods(
    args: &DeploymentArgs,
    images: &[(std::path::PathBuf, &str)],
    timeout: Duration,
) -> anyhow::Result<Measured> {
    let cluster = start(images, args.replicas).await?;
    let pods = cluster.pods();
    let watch = PodWatch::start(pods.clone(), BENCH_LABEL).await?;
    let cpu_before = cpu_time(cluster.server.pid());
    let started = Instant::now();
    let created = futures::stream::iter(0..args.replicas)
        .map(|i| {
            let pods = pods.clone();
            async move {
                let mut spec = pod_spec();
                spec["nodeName"] = json!(NODE_NAME);
                let pod: Pod = serde_json::from_value(json!({
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "metadata": {"name": format!("direct-{i:04}"),
                        "labels": {"bench": BENCH_LABEL}},
                    "spec": spec,
                }))?;
                cluster::create(&pods, &pod).await
            }
        })
        .buffer_unordered(args.concurrency)
        .collect::<Vec<_>>()
        .await;
    if let Some(e) = created.into_iter().find_map(Result::err) {
        return Err(e);
    }
    let n = args.replicas;
    if !watch
        .wait_until(started + timeout, |s| s.ready.len() >= n)
        .await
    {
        let (ready, why) = watch.with(|s| (s.ready.len(), cluster::summarize_not_running(s, 3)));
        bail!(
            "only {ready} of {n} direct pods were Ready after {timeout:?} ({why})\n{}",
            cluster.log_tails(20)
        );
    }
    let last = watch.with(|s| s.ready.values().max().copied());
    Ok(Measured {
        wall: last.unwrap_or_else(Instant::now).duration_since(started),
        server_cpu: cpu_since(&cluster, cpu_before),
    })
}

async fn deployment(
    args: &DeploymentArgs,
    images: &[(std::path::PathBuf, &str)],
    timeout: Duration,
) -> anyhow::Result<Measured> {
    let cluster = start(images, args.replicas).await?;
    let api: Api<Deployment> = Api::namespaced(cluster.client.clone(), "default");
    let d: Deployment = serde_json::from_value(json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "hello-http"},
        "spec": {
            "replicas": args.replicas,
            "selector": {"matchLabels": {"bench": BENCH_LABEL}},
            "template": {"metadata": {"labels": {"bench": BENCH_LABEL}}, "spec": pod_spec()},
        },
    }))?;
    let cpu_before = cpu_time(cluster.server.pid());
    let started = Instant::now();
    api.create(&PostParams::default(), &d)
        .await
        .context("creating the deployment")?;
    let deadline = started + timeout;
    let want = args.replicas as i32;
    // Polled: the figure is seconds long, a 20 ms poll adds at most that much.
    loop {
        let d = api
            .get_status("hello-http")
            .await
            .context("reading the deployment")?;
        let ready = d
            .status
            .as_ref()
            .and_then(|s| s.ready_replicas)
            .unwrap_or(0);
        if ready >= want {
            break;
        }
        if Instant::now() > deadline {
            bail!(
                "the deployment had {ready} of {want} ready replicas after {timeout:?}\n{}",
                cluster.log_tails(20)
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(Measured {
        wall: started.elapsed(),
        server_cpu: cpu_since(&cluster, cpu_before),
    })
}

fn cpu_since(cluster: &Cluster, before: Option<Duration>) -> Option<Duration> {
    match (before, cpu_time(cluster.server.pid())) {
        (Some(a), Some(b)) => Some(b.saturating_sub(a)),
        _ => None,
    }
}
