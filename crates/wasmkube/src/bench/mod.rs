//! `wasmkube bench`: performance figures as ratios against references measured in the same run.
//!
//! - `api-writes`: durable API creates per second beside raw redb commits.
//! - `datastore`: durable API creates per second on etcd beside raw etcd puts and beside redb.
//! - `failover`: leader SIGKILLed → first pod bound by the new leader, beside a healthy bind
//!   and the lease duration.
//! - `watch-fanout`: HTTP watch fan-out beside the store's own fan-out.
//! - `pod-start`: pod create → Running latency on a warm node beside `ctr run --rm` through
//!   containerd.
//! - `http-rps`: requests per second to HTTP Wasm pods beside the same modules served by a
//!   minimal wasmtime + hyper server in this process.
//! - `idle-pods`: the node's memory per idle HTTP pod beside the same node with no pods.
//! - `scheduler`: scheduling throughput (pods/s) onto 10, 100 and 1,000 simulated nodes
//!   beside the API's own create + binding ceiling.
//! - `deployment`: a 1,000-replica Deployment until all replicas are ready on a real Wasm
//!   node, beside the same pods created directly with `spec.nodeName`.
//! - `services`: requests per second and latency through a ClusterIP and an Ingress beside
//!   the pod IP, and the cost of a new connection per request on each path.
//! - `container-start`: a Linux container pod's create → Running beside `ctr run --rm` of the
//!   same image, and a Wasm pod's beside it.
//! - `volume-start`: a scheduled Wasm pod with a new PersistentVolumeClaim (provisioned on the
//!   node) beside the same pod with an emptyDir.
//!
//! `scheduler` and `deployment` print each figure beside the previous run's (see
//! `history.rs`).
//!
//! `wasmkube bench` with no benchmark named runs `api-writes` then `watch-fanout`.
//!
//! # Layout
//! - `api.rs`: an in-process API server on a redb store (the API benchmarks' subject).
//! - `cluster.rs`: the real `wasmkube server` (and `agent`) as child processes on loopback with
//!   a private data directory, a client for them, and a pod watch (the node benchmarks).
//! - `containerd.rs`: a private containerd and a busybox OCI image built here (the `ctr run`
//!   reference).
//! - `reference_http.rs`: the minimal wasmtime + hyper servers `http-rps` compares against.
//! - `load.rs`: the keep-alive HTTP load generator.
//! - `history.rs`: the JSON file of previous runs' figures.
//! - One file per benchmark: `api_writes.rs`, `watch_fanout.rs`, `pod_start.rs`,
//!   `datastore.rs`, `failover.rs`, `http_rps.rs`, `idle_pods.rs`, `scheduler.rs`, `deployment.rs`, `services.rs`,
//!   `container_start.rs`, `volume_start.rs`.

mod api;
mod api_writes;
mod cluster;
mod container_start;
mod containerd;
mod datastore;
mod deployment;
mod failover;
mod history;
mod http_rps;
mod idle_pods;
mod load;
mod pod_start;
mod reference_http;
mod scheduler;
mod services;
mod volume_start;
mod watch_fanout;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(clap::Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub command: Option<BenchCommand>,
    /// Seconds each api-writes measurement runs (when no benchmark is named).
    #[arg(long, default_value_t = 3.0)]
    pub seconds: f64,
    /// Watchers for watch-fanout (when no benchmark is named).
    #[arg(long, default_value_t = 100)]
    pub watchers: usize,
    /// Objects written during watch-fanout (when no benchmark is named).
    #[arg(long, default_value_t = 500)]
    pub events: usize,
}

#[derive(clap::Subcommand, Debug)]
pub enum BenchCommand {
    /// Durable API creates per second, beside raw redb commits.
    ApiWrites {
        /// Seconds each measurement runs.
        #[arg(long, default_value_t = 3.0)]
        seconds: f64,
    },
    /// Durable API creates per second on etcd, beside raw etcd puts and the redb store.
    Datastore(datastore::DatastoreArgs),
    /// Leader killed → first pod bound by the new leader, beside a healthy leader's bind.
    Failover(failover::FailoverArgs),
    /// Watch events per second to many HTTP watchers, beside the store's own fan-out.
    WatchFanout {
        /// Watchers.
        #[arg(long, default_value_t = 100)]
        watchers: usize,
        /// Objects written.
        #[arg(long, default_value_t = 500)]
        events: usize,
    },
    /// Pod create → Running latency on a warm node, beside `ctr run --rm` through containerd.
    PodStart(pod_start::PodStartArgs),
    /// Requests per second to HTTP Wasm pods, beside a minimal wasmtime + hyper server.
    HttpRps(http_rps::HttpRpsArgs),
    /// Memory per idle HTTP Wasm pod, beside the same node with no pods.
    IdlePods(idle_pods::IdlePodsArgs),
    /// Scheduling throughput onto simulated nodes, beside the API's create + binding ceiling.
    Scheduler(scheduler::SchedulerArgs),
    /// Time for a Deployment to be fully ready on a Wasm node, beside the same pods created
    /// directly.
    Deployment(deployment::DeploymentArgs),
    /// Requests per second through a ClusterIP and an Ingress, beside the pod IP directly.
    Services(services::ServicesArgs),
    /// Linux container pod create → Running beside `ctr run --rm`, and Wasm pods beside it.
    ContainerStart(container_start::ContainerStartArgs),
    /// A pod with a new PersistentVolumeClaim create → Running, beside one with an emptyDir.
    VolumeStart(volume_start::VolumeStartArgs),
}

/// Where the example guests are (`wasm-examples/build.sh` builds them).
#[derive(clap::Args, Debug, Clone)]
pub struct ExamplesArg {
    /// Directory with the built example modules (hello-http.wasm, hello-http-component.wasm).
    #[arg(long, default_value = "wasm-examples/build")]
    pub examples_dir: PathBuf,
}

impl ExamplesArg {
    /// The path of example `name` (e.g. `hello-http`), checked to exist so a missing build
    /// fails before any process starts.
    pub fn module(&self, name: &str) -> anyhow::Result<PathBuf> {
        let path = self.examples_dir.join(format!("{name}.wasm"));
        if !path.is_file() {
            anyhow::bail!(
                "{} not found: build the examples with wasm-examples/build.sh, or pass --examples-dir",
                path.display()
            );
        }
        Ok(path)
    }
}

pub async fn run(args: BenchArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        None => {
            api_writes::run(args.seconds).await?;
            watch_fanout::run(args.watchers, args.events).await?;
        }
        Some(BenchCommand::ApiWrites { seconds }) => api_writes::run(seconds).await?,
        Some(BenchCommand::Datastore(a)) => datastore::run(a).await?,
        Some(BenchCommand::Failover(a)) => failover::run(a).await?,
        Some(BenchCommand::WatchFanout { watchers, events }) => {
            watch_fanout::run(watchers, events).await?
        }
        Some(BenchCommand::PodStart(a)) => pod_start::run(a).await?,
        Some(BenchCommand::HttpRps(a)) => http_rps::run(a).await?,
        Some(BenchCommand::IdlePods(a)) => idle_pods::run(a).await?,
        Some(BenchCommand::Scheduler(a)) => scheduler::run(a).await?,
        Some(BenchCommand::Deployment(a)) => deployment::run(a).await?,
        Some(BenchCommand::Services(a)) => services::run(a).await?,
        Some(BenchCommand::ContainerStart(a)) => container_start::run(a).await?,
        Some(BenchCommand::VolumeStart(a)) => volume_start::run(a).await?,
    }
    Ok(ExitCode::SUCCESS)
}

/// p50/p99 (nearest rank) of a set of durations.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Percentiles {
    pub p50: Duration,
    pub p99: Duration,
    pub max: Duration,
    pub n: usize,
}

impl Percentiles {
    pub fn of(samples: &mut [Duration]) -> Option<Percentiles> {
        if samples.is_empty() {
            return None;
        }
        samples.sort_unstable();
        let rank = |q: f64| {
            let i = (q * samples.len() as f64).ceil() as usize;
            samples[i.clamp(1, samples.len()) - 1]
        };
        Some(Percentiles {
            p50: rank(0.50),
            p99: rank(0.99),
            max: samples[samples.len() - 1],
            n: samples.len(),
        })
    }
}

/// A duration in milliseconds with precision that suits its size.
pub(crate) fn ms(d: Duration) -> String {
    let m = d.as_secs_f64() * 1000.0;
    if m < 10.0 {
        format!("{m:.2} ms")
    } else if m < 100.0 {
        format!("{m:.1} ms")
    } else {
        format!("{m:.0} ms")
    }
}

/// `a / b` as a ratio, e.g. `0.017×`.
pub(crate) fn ratio(a: Duration, b: Duration) -> String {
    let r = a.as_secs_f64() / b.as_secs_f64().max(f64::MIN_POSITIVE);
    if r < 0.1 {
        format!("{r:.3}×")
    } else {
        format!("{r:.2}×")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_nearest_rank() {
        let mut v: Vec<Duration> = (1..=100).rev().map(Duration::from_millis).collect();
        let p = Percentiles::of(&mut v).expect("non-empty");
        assert_eq!(p.p50, Duration::from_millis(50));
        assert_eq!(p.p99, Duration::from_millis(99));
        assert_eq!(p.max, Duration::from_millis(100));
        let mut one = vec![Duration::from_millis(7)];
        let p = Percentiles::of(&mut one).expect("non-empty");
        assert_eq!(
            (p.p50, p.p99),
            (Duration::from_millis(7), Duration::from_millis(7))
        );
        assert!(Percentiles::of(&mut []).is_none());
    }
}
