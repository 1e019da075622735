//! `container-start`: a Linux container pod's create → Running latency through wasmkube (the
//! runc handler, containerd underneath) beside `ctr run --rm` of the same busybox image on a
//! private containerd in the same run, and a Wasm pod's create → Running on the same node.
//!
//! One containerd serves both: the node's runtime in its `wasmkube` namespace (the image
//! imported there beforehand, so no registry is involved) and the `ctr run` reference in
//! `wasmkube-bench`. Pods are created one at a time, each waited for before the next, and
//! deleted afterwards, so the node never holds more than a few.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use kube::api::DeleteParams;

use super::cluster::{self, Cluster, ClusterOptions, NodePlacement, PodWatch};
use super::{ExamplesArg, Percentiles, containerd, ms, ratio};

const WASM_IMAGE: &str = "wasmkube.local/examples/hello-http:v1";

#[derive(clap::Args, Debug)]
pub struct ContainerStartArgs {
    /// Container pods timed (after one warm-up pod), and as many Wasm pods.
    #[arg(long, default_value_t = 30)]
    pub pods: usize,
    /// `ctr run --rm` runs timed for the reference (after one untimed warm-up run).
    #[arg(long, default_value_t = 30)]
    pub ctr_runs: usize,
    /// Give up waiting for a pod to be Running after this many seconds.
    #[arg(long, default_value_t = 60)]
    pub timeout_seconds: u64,
    #[command(flatten)]
    pub examples: ExamplesArg,
}

fn container_pod(name: &str, image: &str) -> anyhow::Result<k8s_openapi::api::core::v1::Pod> {
    Ok(serde_json::from_value(serde_json::json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"bench": "container-start"}},
        "spec": {
            "nodeName": cluster::NODE_NAME,
            "runtimeClassName": "runc",
            "terminationGracePeriodSeconds": 0,
            "containers": [{
                "name": "main",
                "image": image,
                "imagePullPolicy": "IfNotPresent",
                "command": ["sleep", "3600"],
            }],
        },
    }))?)
}

/// Creates `pod`, waits until it is Running, deletes it: its create → Running latency.
async fn time_pod(
    cluster: &Cluster,
    watch: &PodWatch,
    pod: &k8s_openapi::api::core::v1::Pod,
    timeout: Duration,
) -> anyhow::Result<Duration> {
    let name = pod.metadata.name.clone().unwrap_or_default();
    let t0 = Instant::now();
    cluster::create(&cluster.pods(), pod).await?;
    let at = cluster::running_at(cluster, watch, &name, t0 + timeout).await?;
    cluster
        .pods()
        .delete(&name, &DeleteParams::default())
        .await
        .with_context(|| format!("deleting pod {name}"))?;
    Ok(at.saturating_duration_since(t0))
}

pub(crate) async fn run(args: ContainerStartArgs) -> anyhow::Result<()> {
    if args.pods == 0 {
        bail!("--pods must be at least 1");
    }
    let module = args.examples.module("hello-http")?;
    let timeout = Duration::from_secs(args.timeout_seconds);
    let dir = tempfile::Builder::new()
        .prefix("wkb-cs-")
        .tempdir_in("/tmp")
        .context("creating containerd's directory")?;
    let ctrd = containerd::Containerd::start(dir.path()).await?;
    let image = ctrd.import_busybox("wasmkube", dir.path())?;

    let images = [(module, WASM_IMAGE)];
    let cluster = Cluster::start(ClusterOptions {
        placement: NodePlacement::InServer,
        max_pods: 50,
        images: &images,
        containerd_socket: Some(ctrd.socket.clone()),
        server_args: Vec::new(),
    })
    .await?;
    let watch = PodWatch::start(cluster.pods(), "container-start").await?;

    let warm = time_pod(&cluster, &watch, &container_pod("c-warm", &image)?, timeout).await?;
    println!("warm-up container pod create→Running: {}", ms(warm));
    let mut samples = Vec::with_capacity(args.pods);
    for i in 0..args.pods {
        let pod = container_pod(&format!("c-{i}"), &image)?;
        samples.push(time_pod(&cluster, &watch, &pod, timeout).await?);
    }
    let Some(containers) = Percentiles::of(&mut samples) else {
        bail!("no container pod was timed");
    };
    let warm = time_pod(
        &cluster,
        &watch,
        &cluster::http_pod("w-warm", WASM_IMAGE, "container-start")?,
        timeout,
    )
    .await?;
    println!("warm-up wasm pod create→Running: {}", ms(warm));
    let mut samples = Vec::with_capacity(args.pods);
    for i in 0..args.pods {
        let pod = cluster::http_pod(&format!("w-{i}"), WASM_IMAGE, "container-start")?;
        samples.push(time_pod(&cluster, &watch, &pod, timeout).await?);
    }
    let Some(wasm) = Percentiles::of(&mut samples) else {
        bail!("no wasm pod was timed");
    };
    drop(watch);
    drop(cluster);
    ctrd.stop().await;

    println!(
        "container pod (busybox, runc) create→Running, one at a time: {} pods: p50 {} p99 {} max {}",
        containers.n,
        ms(containers.p50),
        ms(containers.p99),
        ms(containers.max)
    );
    println!(
        "wasm pod (hello-http) create→Running, one at a time: {} pods: p50 {} p99 {} max {}",
        wasm.n,
        ms(wasm.p50),
        ms(wasm.p99),
        ms(wasm.max)
    );
    println!(
        "wasm pod vs container pod: ratio p50 {} p99 {}",
        ratio(wasm.p50, containers.p50),
        ratio(wasm.p99, containers.p99)
    );
    match containerd::ctr_run_reference(args.ctr_runs).await {
        Ok(r) => match Percentiles::of(&mut r.samples.clone()) {
            Some(p) => println!(
                "reference: ctr run --rm busybox /bin/true ({} runs, {} snapshotter, runc {}): p50 {} p99 {} | container pod / ctr run: ratio p50 {} p99 {}",
                p.n,
                r.snapshotter,
                r.runc_version,
                ms(p.p50),
                ms(p.p99),
                ratio(containers.p50, p.p50),
                ratio(containers.p99, p.p99)
            ),
            None => println!("reference: no ctr runs were timed"),
        },
        Err(why) => println!("reference: ctr run --rm unavailable ({why})"),
    }
    Ok(())
}
