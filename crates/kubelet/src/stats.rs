//! Resource usage of the node and its pods, sampled periodically into the kubelet Summary
//! API's shape (`/stats/summary`). The API server's `metrics.k8s.io` (what `kubectl top` and
//! the horizontal pod autoscaler read) is built from it.
//!
//! Runtimes report cumulative CPU time and current memory per container; the rate
//! (`usageNanoCores`) is the CPU time used between two samples divided by the time between
//! them, as cAdvisor computes it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::manager::LogTable;

/// Clock ticks per second of /proc/stat (USER_HZ, 100 on every Linux architecture we run on).
const USER_HZ: u64 = 100;

/// Cumulative CPU and the time it was read.
#[derive(Debug, Clone, Copy)]
struct Sample {
    cpu_nanos: u64,
    at: Instant,
}

/// The rate between two samples, in nanocores.
fn nanocores(prev: Option<Sample>, now: Sample) -> u64 {
    match prev {
        Some(p) if now.at > p.at && now.cpu_nanos >= p.cpu_nanos => {
            let used = (now.cpu_nanos - p.cpu_nanos) as f64;
            let elapsed = now.at.duration_since(p.at).as_secs_f64();
            (used / elapsed) as u64
        }
        _ => 0,
    }
}

/// Machine-wide CPU time in use (everything but idle and iowait), in nanoseconds.
fn machine_cpu_nanos() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let fields: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    let total: u64 = fields.iter().take(8).sum();
    let idle = fields.get(3).copied().unwrap_or(0) + fields.get(4).copied().unwrap_or(0);
    Some(total.saturating_sub(idle) * (1_000_000_000 / USER_HZ))
}

/// Machine memory in use (total − available) and available, in bytes.
fn machine_memory() -> Option<(u64, u64)> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let field = |name: &str| {
        info.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
            .map(|kb| kb * 1024)
    };
    let total = field("MemTotal:")?;
    let available = field("MemAvailable:")?;
    Some((total.saturating_sub(available), available))
}

fn stamp() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// Samples every `period` into `table.summary` until `shutdown`.
pub async fn run(
    table: Arc<LogTable>,
    node_name: String,
    period: Duration,
    shutdown: CancellationToken,
) {
    let mut previous: HashMap<String, Sample> = HashMap::new();
    let mut node_prev: Option<Sample> = None;
    let mut tick = tokio::time::interval(period);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let now = Instant::now();
        let time = stamp();
        let mut seen: HashMap<String, Sample> = HashMap::new();
        let mut pods = Vec::new();
        for pod in table.all() {
            let entries: Vec<(String, Arc<dyn crate::runtime::Container>)> = pod
                .containers
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .iter()
                .filter_map(|(name, e)| Some((name.clone(), e.handle.clone()?)))
                .collect();
            if entries.is_empty() {
                continue;
            }
            let (mut pod_cores, mut pod_cpu, mut pod_mem) = (0u64, 0u64, 0u64);
            let mut containers = Vec::new();
            for (name, handle) in entries {
                let usage = handle.usage();
                let sample = Sample {
                    cpu_nanos: usage.cpu_nanos,
                    at: now,
                };
                let key = handle.id().to_string();
                let cores = nanocores(previous.get(&key).copied(), sample);
                seen.insert(key, sample);
                pod_cores += cores;
                pod_cpu += usage.cpu_nanos;
                pod_mem += usage.memory_bytes;
                containers.push(json!({
                    "name": name,
                    "cpu": {"time": time, "usageNanoCores": cores, "usageCoreNanoSeconds": usage.cpu_nanos},
                    "memory": {"time": time, "workingSetBytes": usage.memory_bytes, "usageBytes": usage.memory_bytes},
                }));
            }
            pods.push(json!({
                "podRef": {"name": pod.name, "namespace": pod.namespace, "uid": pod.uid},
                "cpu": {"time": time, "usageNanoCores": pod_cores, "usageCoreNanoSeconds": pod_cpu},
                "memory": {"time": time, "workingSetBytes": pod_mem, "usageBytes": pod_mem},
                "containers": containers,
            }));
        }
        previous = seen;
        let node_cpu = machine_cpu_nanos().unwrap_or(0);
        let sample = Sample {
            cpu_nanos: node_cpu,
            at: now,
        };
        let node_cores = nanocores(node_prev, sample);
        node_prev = Some(sample);
        let (mem_used, mem_available) = machine_memory().unwrap_or((0, 0));
        let summary = json!({
            "node": {
                "nodeName": node_name,
                "cpu": {"time": time, "usageNanoCores": node_cores, "usageCoreNanoSeconds": node_cpu},
                "memory": {"time": time, "workingSetBytes": mem_used, "availableBytes": mem_available},
                "windowSeconds": period.as_secs(),
            },
            "pods": pods,
        });
        *table.summary.lock().unwrap_or_else(|p| p.into_inner()) = summary;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_cpu_time_over_wall_time() {
        let t0 = Instant::now();
        let a = Sample {
            cpu_nanos: 1_000_000_000,
            at: t0,
        };
        let b = Sample {
            cpu_nanos: 1_500_000_000,
            at: t0 + Duration::from_secs(2),
        };
        assert_eq!(nanocores(Some(a), b), 250_000_000);
        assert_eq!(nanocores(None, b), 0);
        // A counter that went backwards (a new instance) is not a negative rate.
        assert_eq!(nanocores(Some(b), a), 0);
    }

    #[test]
    fn reads_the_machine() {
        assert!(machine_cpu_nanos().is_some());
        let (used, available) = machine_memory().expect("meminfo");
        assert!(used > 0 && available > 0);
    }
}
