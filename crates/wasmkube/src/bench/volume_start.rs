//! `volume-start`: what a PersistentVolumeClaim adds to a pod's start. A Wasm HTTP pod with a
//! fresh claim of the default `local-path` class (the scheduler's PreBind, the
//! PersistentVolume controller, the node's provisioner and the binding all on the path), timed
//! from the claim's create call to the watch event showing the pod Running, beside the same
//! pod with an emptyDir volume, both scheduled (no `spec.nodeName`) on the same node in the
//! same run. Pods are created one at a time, each waited for, then deleted with its claim.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use kube::api::{Api, DeleteParams, PostParams};
use serde_json::{Value, json};

use super::cluster::{self, Cluster, ClusterOptions, NodePlacement, PodWatch};
use super::{ExamplesArg, Percentiles, ms, ratio};

const IMAGE: &str = "wasmkube.local/examples/hello-http:v1";

#[derive(clap::Args, Debug)]
pub struct VolumeStartArgs {
    /// Pods timed of each kind (after one warm-up pod of each).
    #[arg(long, default_value_t = 30)]
    pub pods: usize,
    /// Give up waiting for a pod to be Running after this many seconds.
    #[arg(long, default_value_t = 60)]
    pub timeout_seconds: u64,
    #[command(flatten)]
    pub examples: ExamplesArg,
}

/// A scheduled HTTP pod with `volume` mounted at /data.
fn pod(name: &str, volume: Value) -> anyhow::Result<Pod> {
    let mut volume = volume;
    volume["name"] = json!("data");
    Ok(serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"bench": "volume-start"}},
        "spec": {
            "runtimeClassName": "wasmtime",
            "terminationGracePeriodSeconds": 1,
            "containers": [{
                "name": "web",
                "image": IMAGE,
                "ports": [{"containerPort": 8080}],
                "volumeMounts": [{"name": "data", "mountPath": "/data"}],
            }],
            "volumes": [volume],
        },
    }))?)
}

fn claim(name: &str) -> anyhow::Result<PersistentVolumeClaim> {
    Ok(serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": name},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Mi"}}},
    }))?)
}

/// Creates the claim (if any) and the pod, waits until the pod is Running, deletes both:
/// the create → Running latency.
async fn time_one(
    cluster: &Cluster,
    watch: &PodWatch,
    name: &str,
    with_claim: bool,
    timeout: Duration,
) -> anyhow::Result<Duration> {
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(cluster.client.clone(), "default");
    let t0 = Instant::now();
    let volume = if with_claim {
        claims
            .create(&PostParams::default(), &claim(name)?)
            .await
            .with_context(|| format!("creating claim {name}"))?;
        json!({"persistentVolumeClaim": {"claimName": name}})
    } else {
        json!({"emptyDir": {}})
    };
    cluster::create(&cluster.pods(), &pod(name, volume)?).await?;
    let at = cluster::running_at(cluster, watch, name, t0 + timeout).await?;
    cluster
        .pods()
        .delete(name, &DeleteParams::default())
        .await
        .with_context(|| format!("deleting pod {name}"))?;
    if with_claim {
        claims
            .delete(name, &DeleteParams::default())
            .await
            .with_context(|| format!("deleting claim {name}"))?;
    }
    Ok(at.saturating_duration_since(t0))
}

async fn series(
    cluster: &Cluster,
    watch: &PodWatch,
    prefix: &str,
    with_claim: bool,
    args: &VolumeStartArgs,
) -> anyhow::Result<Percentiles> {
    let timeout = Duration::from_secs(args.timeout_seconds);
    let warm = time_one(
        cluster,
        watch,
        &format!("{prefix}-warm"),
        with_claim,
        timeout,
    )
    .await?;
    println!("warm-up {prefix} pod create→Running: {}", ms(warm));
    let mut samples = Vec::with_capacity(args.pods);
    for i in 0..args.pods {
        samples.push(
            time_one(
                cluster,
                watch,
                &format!("{prefix}-{i}"),
                with_claim,
                timeout,
            )
            .await?,
        );
    }
    Percentiles::of(&mut samples).context("no pod was timed")
}

pub(crate) async fn run(args: VolumeStartArgs) -> anyhow::Result<()> {
    if args.pods == 0 {
        bail!("--pods must be at least 1");
    }
    let module = args.examples.module("hello-http")?;
    let images = [(module, IMAGE)];
    let cluster = Cluster::start(ClusterOptions {
        placement: NodePlacement::InServer,
        max_pods: 50,
        images: &images,
        containerd_socket: None,
        server_args: Vec::new(),
    })
    .await?;
    let watch = PodWatch::start(cluster.pods(), "volume-start").await?;
    let empty = series(&cluster, &watch, "emptydir", false, &args).await?;
    let claimed = series(&cluster, &watch, "claim", true, &args).await?;
    drop(watch);
    drop(cluster);
    for (what, p) in [("emptyDir", &empty), ("new local-path claim", &claimed)] {
        println!(
            "wasm pod with {what}, scheduled, create→Running one at a time: {} pods: p50 {} p99 {} max {}",
            p.n,
            ms(p.p50),
            ms(p.p99),
            ms(p.max)
        );
    }
    println!(
        "claim vs emptyDir: ratio p50 {} p99 {}",
        ratio(claimed.p50, empty.p50),
        ratio(claimed.p99, empty.p99)
    );
    Ok(())
}
