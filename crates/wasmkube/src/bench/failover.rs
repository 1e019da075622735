//! `failover`: how long a cluster of two servers over etcd schedules nothing after the
//! leader is SIGKILLed, measured from the kill to the first pod bound by the new leader, over
//! several kills, beside the bind latency of the same pod with a healthy leader in the same
//! run and beside the configured lease duration (the wait any Lease-based take-over pays).
//!
//! Each round: find the holder of the `kube-scheduler` Lease, time a pod's create → bound
//! through the other server (the reference), kill the holder, create a pod through the other
//! server at once and time it until bound, then restart the killed server for the next round.
//! The node is simulated (a Ready Node object, as `bench scheduler` does), so nothing but the
//! control plane is measured.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, PostParams};
use serde_json::json;

use super::cluster::{Proc, child_command, client_for, server_url};
use super::{Percentiles, ms};

#[derive(clap::Args, Debug)]
pub struct FailoverArgs {
    /// Leader kills.
    #[arg(long, default_value_t = 5)]
    pub rounds: usize,
    /// `--leader-elect-lease-duration` of the servers.
    #[arg(long, default_value = "15s", value_parser = duration)]
    pub lease_duration: Duration,
    /// `--leader-elect-renew-deadline` of the servers.
    #[arg(long, default_value = "10s", value_parser = duration)]
    pub renew_deadline: Duration,
    /// `--leader-elect-retry-period` of the servers.
    #[arg(long, default_value = "2s", value_parser = duration)]
    pub retry_period: Duration,
}

fn duration(raw: &str) -> Result<Duration, String> {
    crate::cli::parse_duration(raw).map_err(|e| e.to_string())
}

struct ServerProc {
    /// Killed (SIGKILL) when dropped.
    _proc: Proc,
    client: kube::Client,
    identity: String,
}

pub(crate) async fn run(args: FailoverArgs) -> anyhow::Result<()> {
    if args.rounds == 0 {
        bail!("--rounds must be at least 1");
    }
    let etcd = super::datastore::start_etcd(1)?;
    let dir = tempfile::Builder::new()
        .prefix("wasmkube-bench-failover-")
        .tempdir()?;
    let exe = std::env::current_exe().context("finding the wasmkube binary")?;
    let endpoints = etcd.endpoint_list();
    let mut servers = Vec::new();
    for i in 0..2 {
        servers.push(Some(
            start_server(&exe, dir.path(), i, 0, &endpoints, &args).await?,
        ));
    }
    if let Some(first) = &servers[0] {
        super::scheduler::register_nodes(&first.client, 1, 10 * args.rounds).await?;
    }
    println!(
        "failover: 2 servers over a 1-member etcd, lease {:?} / renew {:?} / retry {:?}, {} kills",
        args.lease_duration, args.renew_deadline, args.retry_period, args.rounds
    );
    let mut healthy = Vec::new();
    let mut failover = Vec::new();
    for round in 0..args.rounds {
        let leader = leader_of(&servers).await?;
        let survivor = servers[1 - leader]
            .as_ref()
            .context("both servers run at the start of a round")?;
        let pods: Api<Pod> = Api::namespaced(survivor.client.clone(), "default");
        let started = Instant::now();
        bind_wait(&pods, &format!("healthy-{round}"), started).await?;
        healthy.push(started.elapsed());

        // The kill, then at once a pod that only a new leader can bind.
        let killed_at = Instant::now();
        servers[leader] = None;
        bind_wait(&pods, &format!("failover-{round}"), killed_at).await?;
        let took = killed_at.elapsed();
        println!(
            "  round {}: healthy bind {} | failover {}",
            round + 1,
            ms(*healthy.last().unwrap_or(&Duration::ZERO)),
            ms(took)
        );
        failover.push(took);
        servers[leader] =
            Some(start_server(&exe, dir.path(), leader, round + 1, &endpoints, &args).await?);
    }
    let (Some(h), Some(f)) = (
        Percentiles::of(&mut healthy),
        Percentiles::of(&mut failover),
    ) else {
        bail!("no rounds measured");
    };
    let lease = args.lease_duration.as_secs_f64();
    println!(
        "failover (kill → first pod bound by the new leader): p50 {} p99 {} = {:.2}× / {:.2}× the lease duration; reference, healthy leader create → bound: p50 {} p99 {} (failover p50 = {:.0}× it)",
        ms(f.p50),
        ms(f.p99),
        f.p50.as_secs_f64() / lease,
        f.p99.as_secs_f64() / lease,
        ms(h.p50),
        ms(h.p99),
        f.p50.as_secs_f64() / h.p50.as_secs_f64().max(f64::MIN_POSITIVE),
    );
    Ok(())
}

async fn start_server(
    exe: &Path,
    root: &Path,
    index: usize,
    generation: usize,
    endpoints: &str,
    args: &FailoverArgs,
) -> anyhow::Result<ServerProc> {
    let data: PathBuf = root.join(format!("server-{index}"));
    let log = root.join(format!("server-{index}-{generation}.log"));
    let secs = |d: Duration| format!("{}ms", d.as_millis());
    let mut cmd = child_command(exe);
    cmd.arg("server")
        .arg("--insecure")
        .arg("--data-dir")
        .arg(&data)
        .args(["--https-listen-port", "0", "--disable-agent"])
        .args(["--datastore-endpoint", endpoints])
        .args(["--leader-elect-lease-duration", &secs(args.lease_duration)])
        .args(["--leader-elect-renew-deadline", &secs(args.renew_deadline)])
        .args(["--leader-elect-retry-period", &secs(args.retry_period)])
        // The simulated node renews nothing: keep it Ready for the whole run.
        .args(["--node-monitor-grace-period", "3600"])
        .args(["--log", "warn"]);
    let mut proc = Proc::spawn(cmd, "wasmkube server", log)?;
    let url = server_url(&mut proc).await?;
    let identity = proc
        .wait_for_line("leader election identity ", Duration::from_secs(10))
        .await?
        .rsplit(' ')
        .next()
        .unwrap_or_default()
        .to_string();
    let client = client_for(&url)?;
    Ok(ServerProc {
        _proc: proc,
        client,
        identity,
    })
}

/// Which server holds the scheduler's Lease (waiting until one does).
async fn leader_of(servers: &[Option<ServerProc>]) -> anyhow::Result<usize> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        for server in servers.iter().flatten() {
            let leases: Api<Lease> = Api::namespaced(server.client.clone(), "kube-system");
            if let Ok(lease) = leases.get("kube-scheduler").await
                && let Some(holder) = lease.spec.and_then(|s| s.holder_identity)
                && let Some(i) = servers
                    .iter()
                    .position(|s| s.as_ref().is_some_and(|s| s.identity == holder))
            {
                return Ok(i);
            }
        }
        if Instant::now() > deadline {
            bail!("no server took the kube-scheduler Lease within 120 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Creates a pod and waits until it is bound to a node.
async fn bind_wait(pods: &Api<Pod>, name: &str, since: Instant) -> anyhow::Result<()> {
    let pod: Pod = serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"bench": "failover"}},
        "spec": {
            "runtimeClassName": "wasmtime",
            "containers": [{"name": "web", "image": "wasmkube.local/examples/hello-http:v1"}],
        },
    }))?;
    pods.create(&PostParams::default(), &pod)
        .await
        .with_context(|| format!("creating pod {name}"))?;
    let deadline = since + Duration::from_secs(300);
    loop {
        if let Ok(pod) = pods.get(name).await
            && pod.spec.and_then(|s| s.node_name).is_some()
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("pod {name} was not bound within 300 s");
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}
