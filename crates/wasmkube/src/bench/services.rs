//! `services`: requests per second and latency to the `hello-http` pod through its Service's
//! ClusterIP (the L4 proxy) and through the Ingress (the L7 proxy), each beside the pod IP
//! hit directly in the same run; and the cost of setting up a connection per request on each
//! path.
//!
//! The cluster is the real `wasmkube server` as a child process (its node's proxy serves the
//! ClusterIP and the Ingress, on 127.0.0.1:80); the load generator shares this process.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{Api, PostParams};

use super::cluster::{self, Cluster, ClusterOptions, NodePlacement, PodWatch};
use super::load::{self, LoadResult};
use super::{ExamplesArg, Percentiles, ms};

#[derive(clap::Args, Debug)]
pub struct ServicesArgs {
    /// Seconds each target is measured (after the warm-up).
    #[arg(long, default_value_t = 5.0)]
    pub seconds: f64,
    /// Keep-alive connections the load generator holds open.
    #[arg(long, default_value_t = 32)]
    pub connections: usize,
    /// Unmeasured seconds before each measurement.
    #[arg(long, default_value_t = 1.0)]
    pub warmup_seconds: f64,
    /// The node's Ingress HTTP port (the server's default).
    #[arg(long, default_value_t = 80)]
    pub ingress_port: u16,
    #[command(flatten)]
    pub examples: ExamplesArg,
}

const IMAGE: &str = "wasmkube.local/examples/hello-http:v1";
const POD: &str = "svc-bench";

pub(crate) async fn run(args: ServicesArgs) -> anyhow::Result<()> {
    if args.connections == 0
        || args.seconds.is_nan()
        || args.seconds <= 0.0
        || args.warmup_seconds < 0.0
    {
        bail!("--connections and --seconds must be positive");
    }
    let module = args.examples.module("hello-http")?;
    let cluster = Cluster::start(ClusterOptions {
        placement: NodePlacement::InServer,
        max_pods: 10,
        images: &[(module, IMAGE)],
        containerd_socket: None,
        server_args: Vec::new(),
    })
    .await?;
    let api = cluster.pods();
    let watch = PodWatch::start(api.clone(), "services").await?;
    cluster::create(&api, &cluster::http_pod(POD, IMAGE, "services")?).await?;
    let services: Api<Service> = Api::namespaced(cluster.client.clone(), "default");
    let svc: Service = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "svc-bench"},
        "spec": {"selector": {"bench": "services"}, "ports": [{"port": 80, "targetPort": 8080}]},
    }))?;
    services
        .create(&PostParams::default(), &svc)
        .await
        .context("creating the Service")?;
    let ingresses: Api<Ingress> = Api::namespaced(cluster.client.clone(), "default");
    let ing: Ingress = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "svc-bench"},
        "spec": {"rules": [{"http": {"paths": [{"path": "/", "pathType": "Prefix",
            "backend": {"service": {"name": "svc-bench", "port": {"number": 80}}}}]}}]},
    }))?;
    ingresses
        .create(&PostParams::default(), &ing)
        .await
        .context("creating the Ingress")?;

    let deadline = Instant::now() + Duration::from_secs(120);
    if !watch
        .wait_until(deadline, |s| {
            s.running.get(POD).is_some_and(|r| r.ip.is_some())
        })
        .await
    {
        bail!(
            "the pod was not Running after 2 minutes\n{}",
            cluster.log_tails(20)
        );
    }
    let ip = watch
        .with(|s| s.running.get(POD).and_then(|r| r.ip.clone()))
        .context("the pod lost its IP")?;
    let cluster_ip = services
        .get("svc-bench")
        .await?
        .spec
        .and_then(|s| s.cluster_ip)
        .filter(|ip| ip.parse::<std::net::IpAddr>().is_ok())
        .context("the Service has no ClusterIP")?;
    let targets: [(&str, SocketAddr); 3] = [
        ("pod IP (reference)", format!("{ip}:8080").parse()?),
        ("ClusterIP", format!("{cluster_ip}:80").parse()?),
        (
            "Ingress",
            format!("127.0.0.1:{}", args.ingress_port).parse()?,
        ),
    ];
    for (what, addr) in &targets {
        wait_answering(*addr, what).await?;
    }

    let warmup = Duration::from_secs_f64(args.warmup_seconds);
    let window = Duration::from_secs_f64(args.seconds);
    println!(
        "{} keep-alive connections, {:.1} s warm-up + {:.1} s measured per target, GET /",
        args.connections,
        warmup.as_secs_f64(),
        window.as_secs_f64()
    );
    let mut results: Vec<LoadResult> = Vec::new();
    for (what, addr) in &targets {
        let r = load::run(*addr, "/", args.connections, warmup, window).await;
        print_result(what, *addr, &r);
        results.push(r);
    }
    let reference = &results[0];
    for ((what, _), r) in targets.iter().zip(&results).skip(1) {
        let p99 = |r: &LoadResult| r.latency.map(|l| l.p99.as_secs_f64()).unwrap_or(f64::NAN);
        println!(
            "{what}: rps {:.2}× the pod IP, p99 {:.2}× the pod IP's",
            r.rps() / reference.rps().max(f64::MIN_POSITIVE),
            p99(r) / p99(reference)
        );
    }

    println!(
        "connection set-up: one request per new connection, one at a time, {:.1} s per target",
        window.as_secs_f64()
    );
    let mut setups = Vec::new();
    for (what, addr) in &targets {
        let p = new_connection_each(*addr, window).await;
        match p {
            Some(p) => println!("{what}: p50 {} p99 {} (n={})", ms(p.p50), ms(p.p99), p.n),
            None => println!("{what}: no successful requests"),
        }
        setups.push(p);
    }
    if let Some(r) = setups[0] {
        for ((what, _), p) in targets.iter().zip(&setups).skip(1) {
            if let Some(p) = p {
                println!(
                    "{what}: new-connection request p50 {:.2}× the pod IP's, extra {} at p50",
                    p.p50.as_secs_f64() / r.p50.as_secs_f64().max(f64::MIN_POSITIVE),
                    ms(p.p50.saturating_sub(r.p50))
                );
            }
        }
    }
    Ok(())
}

fn print_result(what: &str, addr: SocketAddr, r: &LoadResult) {
    let lat = r
        .latency
        .map(|l| format!("p50 {} p99 {} max {}", ms(l.p50), ms(l.p99), ms(l.max)))
        .unwrap_or_else(|| "no successful requests".into());
    let mut line = format!("{what} {addr}: {:.0} rps, {lat}", r.rps());
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

async fn wait_answering(addr: SocketAddr, what: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let status = cluster::http_get_status(&addr.ip().to_string(), addr.port(), "/").await;
        match status {
            Ok(200) => return Ok(()),
            _ if Instant::now() > deadline => {
                bail!("{what} at {addr} does not answer / with 200: {status:?}")
            }
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// Latency of GET / on a fresh connection each time (connect + request + response).
async fn new_connection_each(addr: SocketAddr, window: Duration) -> Option<Percentiles> {
    let end = Instant::now() + window;
    let mut samples = Vec::new();
    while Instant::now() < end {
        let started = Instant::now();
        if let Ok(200) = cluster::http_get_status(&addr.ip().to_string(), addr.port(), "/").await {
            samples.push(started.elapsed());
        }
    }
    Percentiles::of(&mut samples)
}
