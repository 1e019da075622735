//! `scheduler`: scheduling throughput in pods per second for a burst of pods onto simulated
//! nodes, beside the API's own ceiling for the same writes measured in the same run.
//!
//! The subject is the real `wasmkube server --disable-agent` as a child process (API server,
//! scheduler and controllers; no node). Nodes are simulated as kwok does: Node objects with
//! capacity, allocatable, runtime handlers and a Ready condition, and Leases in
//! `kube-node-lease` renewed every 10 s for as long as the measurement runs, so the node
//! lifecycle controller keeps them Ready. No kubelet runs, so pods stay Pending once bound.
//!
//! For each node count two fresh servers are measured, each from the first create call to
//! the moment a pod watch has seen every pod with `spec.nodeName`:
//! - **scheduler**: the benchmark creates the pods; the scheduler binds them.
//! - **reference**: the pods name a scheduler that does not exist, and the benchmark itself
//!   writes each one's binding right after creating it (round-robin over the nodes): the
//!   same create + binding writes with no scheduling decision, the API's write ceiling.
//!
//! The ratio scheduler / reference is the share of the API's ceiling the scheduler reaches.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::cluster::{self, Cluster, ClusterOptions, NodePlacement, PodWatch, cpu_time};
use super::history::{History, HistoryArg};

const LEASE_NAMESPACE: &str = "kube-node-lease";
/// How often each simulated node renews its Lease (a kubelet's and kwok's default).
const LEASE_RENEW: Duration = Duration::from_secs(10);
/// A scheduler name no scheduler answers to: the reference's pods are left to the benchmark.
const NO_SCHEDULER: &str = "wasmkube-bench-no-scheduler";
const BENCH_LABEL: &str = "scheduler";

#[derive(clap::Args, Debug)]
pub struct SchedulerArgs {
    /// Pods created at each node count.
    #[arg(long, default_value_t = 10_000)]
    pub pods: usize,
    /// Simulated node counts (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "10,100,1000")]
    pub nodes: Vec<usize>,
    /// Create calls in flight at once (the same in both measurements).
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
    /// Give up on a measurement after this many seconds.
    #[arg(long, default_value_t = 900)]
    pub timeout_seconds: u64,
    /// The stores to measure on, each with the same pods and nodes: `redb` (embedded) and
    /// `etcd` (a one-member etcd started for each measurement, on loopback).
    #[arg(long, value_delimiter = ',', default_value = "redb")]
    pub datastores: Vec<Datastore>,
    #[command(flatten)]
    pub history: HistoryArg,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Datastore {
    Redb,
    Etcd,
}

/// One measurement: how long until every pod was seen bound, and the server's CPU meanwhile.
struct Run {
    wall: Duration,
    server_cpu: Option<Duration>,
}

impl Run {
    fn rate(&self, pods: usize) -> f64 {
        pods as f64 / self.wall.as_secs_f64().max(f64::MIN_POSITIVE)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Scheduler,
    Reference,
}

pub(crate) async fn run(args: SchedulerArgs) -> anyhow::Result<()> {
    if args.pods == 0 || args.concurrency == 0 || args.nodes.contains(&0) {
        bail!("--pods, --concurrency and every --nodes count must be at least 1");
    }
    let mut history = History::open(&args.history)?;
    println!(
        "scheduler throughput: {} pods per node count, {} creates in flight, {} build; history in {}",
        args.pods,
        args.concurrency,
        super::history::profile(),
        history.path().display()
    );
    let timeout = Duration::from_secs(args.timeout_seconds);
    let mut lines = Vec::new();
    for (&store, &nodes) in args
        .datastores
        .iter()
        .flat_map(|store| args.nodes.iter().map(move |nodes| (store, nodes)))
    {
        // redb keeps the history keys it always had.
        let (key, label) = match store {
            Datastore::Redb => ("scheduler", String::new()),
            Datastore::Etcd => ("scheduler-etcd", "[etcd] ".to_string()),
        };
        let reference = measure(Mode::Reference, nodes, &args, timeout, store).await?;
        let scheduled = measure(Mode::Scheduler, nodes, &args, timeout, store).await?;
        let (s, r) = (scheduled.rate(args.pods), reference.rate(args.pods));
        let cpu = |run: &Run| {
            run.server_cpu
                .map(|c| format!("{:.1} s", c.as_secs_f64()))
                .unwrap_or_else(|| "?".into())
        };
        let line = format!(
            "{label}{nodes} nodes: scheduler {} in {:.2} s (server CPU {}) | reference create+bind {} in {:.2} s (server CPU {}) | ratio {:.2}× ({})",
            history.beside(&format!("{key}/{nodes}-nodes/pods-per-s"), s, "pods/s"),
            scheduled.wall.as_secs_f64(),
            cpu(&scheduled),
            history.beside(
                &format!("{key}/{nodes}-nodes/reference-pods-per-s"),
                r,
                "pods/s"
            ),
            reference.wall.as_secs_f64(),
            cpu(&reference),
            s / r.max(f64::MIN_POSITIVE),
            history.beside(
                &format!("{key}/{nodes}-nodes/ratio"),
                s / r.max(f64::MIN_POSITIVE),
                "×"
            ),
        );
        println!("{line}");
        lines.push(line);
    }
    history.save()?;
    println!("summary ({} pods each):", args.pods);
    for l in lines {
        println!("  {l}");
    }
    Ok(())
}

async fn measure(
    mode: Mode,
    nodes: usize,
    args: &SchedulerArgs,
    timeout: Duration,
    store: Datastore,
) -> anyhow::Result<Run> {
    // A fresh etcd per measurement, as a fresh redb file is; dropped after the server.
    let etcd = match store {
        Datastore::Redb => None,
        Datastore::Etcd => Some(super::datastore::start_etcd(1)?),
    };
    let server_args = match &etcd {
        Some(etcd) => vec!["--datastore-endpoint".to_string(), etcd.endpoint_list()],
        None => Vec::new(),
    };
    let cluster = Cluster::start(ClusterOptions {
        placement: NodePlacement::None,
        max_pods: 110,
        images: &[],
        containerd_socket: None,
        server_args,
    })
    .await?;
    let names = register_nodes(&cluster.client, nodes, args.pods).await?;
    let stop_leases = CancellationToken::new();
    let _guard = stop_leases.clone().drop_guard();
    let leases = tokio::spawn(renew_leases(
        cluster.client.clone(),
        names.clone(),
        stop_leases.clone(),
    ));

    let pods = cluster.pods();
    let watch = PodWatch::start(pods.clone(), BENCH_LABEL).await?;
    let cpu_before = cpu_time(cluster.server.pid());
    let started = Instant::now();
    let names = Arc::new(names);
    let created = futures::stream::iter(0..args.pods)
        .map(|i| {
            let pods = pods.clone();
            let names = names.clone();
            async move {
                let pod = bench_pod(&format!("p-{i:05}"), mode)?;
                cluster::create(&pods, &pod).await?;
                if mode == Mode::Reference {
                    bind(&pods, &format!("p-{i:05}"), &names[i % names.len()]).await?;
                }
                anyhow::Ok(())
            }
        })
        .buffer_unordered(args.concurrency)
        .collect::<Vec<_>>()
        .await;
    if let Some(e) = created.into_iter().find_map(Result::err) {
        return Err(e.context(format!("{mode:?} run on {nodes} nodes")));
    }
    let deadline = started + timeout;
    let all = args.pods;
    let done = watch
        .wait_until(deadline, |s| s.scheduled.len() >= all)
        .await;
    let (bound, last) = watch.with(|s| (s.scheduled.len(), s.scheduled.values().max().copied()));
    if !done {
        bail!(
            "{mode:?} run on {nodes} nodes: only {bound} of {all} pods were bound after {timeout:?}\n{}",
            cluster.log_tails(20)
        );
    }
    let wall = last.unwrap_or_else(Instant::now).duration_since(started);
    let server_cpu = match (cpu_before, cpu_time(cluster.server.pid())) {
        (Some(a), Some(b)) => Some(b.saturating_sub(a)),
        _ => None,
    };
    stop_leases.cancel();
    if let Ok(failed) = leases.await
        && failed > 0
    {
        eprintln!(
            "warning: {failed} lease renewals failed during the {mode:?} run on {nodes} nodes"
        );
    }
    Ok(Run { wall, server_cpu })
}

/// A pod like the hello-http Deployment's: small requests, the wasmtime RuntimeClass.
fn bench_pod(name: &str, mode: Mode) -> anyhow::Result<Pod> {
    let mut spec = json!({
        "runtimeClassName": "wasmtime",
        "containers": [{
            "name": "web",
            "image": "wasmkube.local/examples/hello-http:v1",
            "ports": [{"containerPort": 8080}],
            "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}},
        }],
    });
    if mode == Mode::Reference {
        spec["schedulerName"] = json!(NO_SCHEDULER);
    }
    Ok(serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"bench": BENCH_LABEL}},
        "spec": spec,
    }))?)
}

async fn bind(pods: &Api<Pod>, pod: &str, node: &str) -> anyhow::Result<()> {
    let binding = json!({
        "apiVersion": "v1",
        "kind": "Binding",
        "metadata": {"name": pod},
        "target": {"apiVersion": "v1", "kind": "Node", "name": node},
    });
    pods.create_subresource::<_, serde_json::Value>(
        "binding",
        pod,
        &PostParams::default(),
        &binding,
    )
    .await
    .with_context(|| format!("binding pod {pod} to {node}"))?;
    Ok(())
}

/// Registers `n` Ready nodes (as kwok does), each big enough that capacity never limits the
/// benchmark: the filters and scores still run against real numbers.
pub(crate) async fn register_nodes(
    client: &kube::Client,
    n: usize,
    pods: usize,
) -> anyhow::Result<Vec<String>> {
    let nodes: Api<Node> = Api::all(client.clone());
    let leases: Api<Lease> = Api::namespaced(client.clone(), LEASE_NAMESPACE);
    let per_node_pods = (2 * pods).div_ceil(n).max(110).to_string();
    let names: Vec<String> = (0..n).map(|i| format!("sim-{i:04}")).collect();
    let now = jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let results = futures::stream::iter(names.clone())
        .map(|name| {
            let nodes = nodes.clone();
            let leases = leases.clone();
            let per_node_pods = per_node_pods.clone();
            let now = now.clone();
            async move {
                let node: Node = serde_json::from_value(json!({
                    "apiVersion": "v1",
                    "kind": "Node",
                    "metadata": {"name": name, "labels": {
                        "kubernetes.io/hostname": name,
                        "kubernetes.io/os": "linux",
                        "kubernetes.io/arch": "amd64",
                        "type": "simulated",
                    }},
                }))?;
                nodes
                    .create(&PostParams::default(), &node)
                    .await
                    .with_context(|| format!("creating node {name}"))?;
                let resources = json!({"cpu": "64", "memory": "512Gi", "pods": per_node_pods});
                let status = json!({"status": {
                    "capacity": resources,
                    "allocatable": resources,
                    "conditions": [{
                        "type": "Ready", "status": "True", "reason": "KubeletReady",
                        "message": "simulated node", "lastHeartbeatTime": now,
                        "lastTransitionTime": now,
                    }],
                    "runtimeHandlers": [{"name": "wasmtime", "features": {}}],
                    "nodeInfo": {
                        "architecture": "amd64", "operatingSystem": "linux",
                        "containerRuntimeVersion": "wasmtime://simulated", "kubeletVersion": "simulated",
                        "kubeProxyVersion": "", "bootID": "", "kernelVersion": "", "machineID": "",
                        "osImage": "", "systemUUID": "",
                    },
                }});
                nodes
                    .patch_status(&name, &PatchParams::default(), &Patch::Merge(&status))
                    .await
                    .with_context(|| format!("setting the status of node {name}"))?;
                let lease: Lease = serde_json::from_value(json!({
                    "apiVersion": "coordination.k8s.io/v1",
                    "kind": "Lease",
                    "metadata": {"name": name},
                    "spec": {"holderIdentity": name, "leaseDurationSeconds": 40,
                        "renewTime": lease_time()},
                }))?;
                leases
                    .create(&PostParams::default(), &lease)
                    .await
                    .with_context(|| format!("creating the lease of node {name}"))?;
                anyhow::Ok(())
            }
        })
        .buffer_unordered(32)
        .collect::<Vec<_>>()
        .await;
    if let Some(e) = results.into_iter().find_map(Result::err) {
        return Err(e);
    }
    Ok(names)
}

/// A Lease's `renewTime` (MicroTime).
fn lease_time() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string()
}

/// Renews every node's Lease each [`LEASE_RENEW`] until `stop`, spread over the period as
/// kubelets' renewals are; returns how many renewals failed.
async fn renew_leases(client: kube::Client, names: Vec<String>, stop: CancellationToken) -> usize {
    let leases: Api<Lease> = Api::namespaced(client, LEASE_NAMESPACE);
    let gap = LEASE_RENEW / names.len().max(1) as u32;
    let mut failed = 0;
    loop {
        for name in &names {
            let patch = json!({"spec": {"renewTime": lease_time()}});
            if leases
                .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .is_err()
            {
                failed += 1;
            }
            tokio::select! {
                _ = stop.cancelled() => return failed,
                _ = tokio::time::sleep(gap) => {}
            }
        }
    }
}
