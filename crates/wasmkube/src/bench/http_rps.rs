//! `http-rps`: requests per second to HTTP Wasm pods served by the node on their pod IPs
//! (the WAGI `hello-http` module and the `wasi:http/proxy` `hello-http-component`), beside the
//! same modules served by a minimal wasmtime + hyper server in this process, and a plain hyper
//! server (no Wasm) as the ceiling of the load generator on this machine.
//!
//! The node is the real `wasmkube server` (its local node) as a child process; the load
//! generator and the reference servers share this process.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use super::cluster::{self, Cluster, ClusterOptions, NodePlacement, PodWatch};
use super::load::{self, LoadResult};
use super::reference_http;
use super::{ExamplesArg, ms};

#[derive(clap::Args, Debug)]
pub struct HttpRpsArgs {
    /// Seconds each target is measured (after the warm-up).
    #[arg(long, default_value_t = 5.0)]
    pub seconds: f64,
    /// Keep-alive connections the load generator holds open.
    #[arg(long, default_value_t = 32)]
    pub connections: usize,
    /// Unmeasured seconds before each measurement.
    #[arg(long, default_value_t = 1.0)]
    pub warmup_seconds: f64,
    /// Request path.
    #[arg(long, default_value = "/")]
    pub path: String,
    #[command(flatten)]
    pub examples: ExamplesArg,
}

struct Kind {
    label: &'static str,
    module: &'static str,
    image: &'static str,
    pod: &'static str,
}

const KINDS: [Kind; 2] = [
    Kind {
        label: "WAGI hello-http",
        module: "hello-http",
        image: "wasmkube.local/examples/hello-http:v1",
        pod: "rps-wagi",
    },
    Kind {
        label: "wasi:http hello-http-component",
        module: "hello-http-component",
        image: "wasmkube.local/examples/hello-http-component:v1",
        pod: "rps-component",
    },
];

pub(crate) async fn run(args: HttpRpsArgs) -> anyhow::Result<()> {
    if args.connections == 0
        || args.seconds.is_nan()
        || args.seconds <= 0.0
        || args.warmup_seconds < 0.0
    {
        bail!("--connections and --seconds must be positive");
    }
    let modules = KINDS
        .iter()
        .map(|k| args.examples.module(k.module))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let images: Vec<_> = modules
        .iter()
        .cloned()
        .zip(KINDS.iter().map(|k| k.image))
        .collect();
    let cluster = Cluster::start(ClusterOptions {
        placement: NodePlacement::InServer,
        max_pods: 10,
        images: &images,
        containerd_socket: None,
        server_args: Vec::new(),
    })
    .await?;
    let api = cluster.pods();
    let watch = PodWatch::start(api.clone(), "http-rps").await?;
    for k in &KINDS {
        cluster::create(&api, &cluster::http_pod(k.pod, k.image, "http-rps")?).await?;
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    let ok = watch
        .wait_until(deadline, |s| {
            KINDS
                .iter()
                .all(|k| s.running.get(k.pod).is_some_and(|r| r.ip.is_some()))
        })
        .await;
    if !ok {
        bail!(
            "the HTTP pods were not Running with an IP after 2 minutes: {}\n{}",
            watch.with(|s| cluster::summarize_not_running(s, 3)),
            cluster.log_tails(20)
        );
    }
    let warmup = Duration::from_secs_f64(args.warmup_seconds);
    let window = Duration::from_secs_f64(args.seconds);
    println!(
        "{} connections, {:.1} s warm-up + {:.1} s measured per target, GET {}",
        args.connections,
        warmup.as_secs_f64(),
        window.as_secs_f64(),
        args.path
    );

    let plain = reference_http::serve_plain().await?;
    let ceiling = load::run(plain.addr, &args.path, args.connections, warmup, window).await;
    drop(plain);
    print_result("reference: plain hyper, no Wasm", &ceiling);

    for (k, module) in KINDS.iter().zip(&modules) {
        let ip = watch
            .with(|s| s.running.get(k.pod).and_then(|r| r.ip.clone()))
            .context("the pod lost its IP")?;
        let pod_addr: SocketAddr = format!("{ip}:8080").parse()?;
        wait_answering(&ip, &args.path).await?;
        let pod = load::run(pod_addr, &args.path, args.connections, warmup, window).await;

        let reference = match k.module {
            "hello-http" => reference_http::serve_wagi(module).await?,
            _ => reference_http::serve_proxy(module).await?,
        };
        let rref = load::run(reference.addr, &args.path, args.connections, warmup, window).await;
        drop(reference);

        print_result(&format!("{}: wasmkube pod {pod_addr}", k.label), &pod);
        print_result(
            &format!("{}: reference in-process wasmtime + hyper", k.label),
            &rref,
        );
        let p50 = |r: &LoadResult| r.latency.map(|l| ms(l.p50)).unwrap_or_else(|| "-".into());
        let p99 = |r: &LoadResult| r.latency.map(|l| ms(l.p99)).unwrap_or_else(|| "-".into());
        println!(
            "{}: pod {:.0} rps p50 {} p99 {} | reference {:.0} rps p50 {} p99 {} | ratio rps {:.2}× (plain hyper {:.0} rps)",
            k.label,
            pod.rps(),
            p50(&pod),
            p99(&pod),
            rref.rps(),
            p50(&rref),
            p99(&rref),
            pod.rps() / rref.rps().max(f64::MIN_POSITIVE),
            ceiling.rps()
        );
    }
    Ok(())
}

fn print_result(what: &str, r: &LoadResult) {
    let lat = r
        .latency
        .map(|l| format!("p50 {} p99 {} max {}", ms(l.p50), ms(l.p99), ms(l.max)))
        .unwrap_or_else(|| "no successful requests".into());
    let mut line = format!("{what}: {:.0} rps, {lat}", r.rps());
    if r.non_2xx > 0 || r.errors > 0 {
        line.push_str(&format!(
            " ({} non-2xx, {} errors; first: {})",
            r.non_2xx,
            r.errors,
            r.first_error.as_deref().unwrap_or("?")
        ));
    }
    println!("{line}");
}

/// The pod is Running once its listener is bound; wait for a 200 anyway so a slow first
/// request is not measured.
async fn wait_answering(ip: &str, path: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let status = cluster::http_get_status(ip, 8080, path).await;
        match status {
            Ok(200) => return Ok(()),
            _ if Instant::now() > deadline => {
                bail!("the pod at {ip}:8080 does not answer {path} with 200: {status:?}")
            }
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}
