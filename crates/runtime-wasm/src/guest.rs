//! Per-store state and resource governance: WASI contexts, the memory limiter, the CPU
//! budget, and the epoch callback that yields, throttles and interrupts guests.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use wasmtime::component::ResourceTable;
use wasmtime::{ResourceLimiter, Store, UpdateDeadline};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

/// Why the runtime ended a guest early. Returned from the epoch callback and the limiter, so
/// it comes back inside the call's error and can be told apart from guest traps.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub(crate) enum Interrupt {
    #[error("killed: the container was stopped")]
    Killed,
    #[error("deadline exceeded: the guest ran longer than {0:?}")]
    DeadlineExceeded(Duration),
    #[error(
        "out of memory: growing linear memory to {desired} bytes exceeds the limit of {limit} bytes"
    )]
    OutOfMemory { desired: u64, limit: u64 },
}

/// Finds an [`Interrupt`] anywhere in a wasmtime error's chain.
pub(crate) fn find_interrupt(e: &wasmtime::Error) -> Option<Interrupt> {
    if let Some(i) = e.downcast_ref::<Interrupt>() {
        return Some(i.clone());
    }
    e.chain()
        .find_map(|c| c.downcast_ref::<Interrupt>().cloned())
}

/// Live usage of one container, shared by all its stores (a command has one, an HTTP
/// container one per in-flight request).
#[derive(Debug, Default)]
pub(crate) struct UsageCounters {
    /// Sum of the linear memory sizes of its live instances.
    pub(crate) memory_bytes: AtomicU64,
    /// Guest execution time, as charged by the epoch callback.
    pub(crate) cpu_nanos: AtomicU64,
}

/// Enforces a container's memory limit on one store. Linear memory is what a guest
/// allocates; exceeding the limit kills the guest (a trap) and marks it out of memory, as the
/// kernel's OOM killer would a process, instead of letting `memory.grow` fail quietly.
pub(crate) struct MemoryLimiter {
    limit: Option<u64>,
    /// Bytes of linear memory this store holds.
    held: u64,
    usage: Arc<UsageCounters>,
    pub(crate) oom: bool,
}

impl MemoryLimiter {
    pub(crate) fn new(limit: Option<u64>, usage: Arc<UsageCounters>) -> Self {
        MemoryLimiter {
            limit,
            held: 0,
            usage,
            oom: false,
        }
    }
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let delta = (desired as u64).saturating_sub(current as u64);
        if let Some(limit) = self.limit
            && self.held + delta > limit
        {
            self.oom = true;
            return Err(wasmtime::Error::new(Interrupt::OutOfMemory {
                desired: self.held + delta,
                limit,
            }));
        }
        self.held += delta;
        self.usage.memory_bytes.fetch_add(delta, Ordering::Relaxed);
        Ok(true)
    }

    fn memory_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        // Growth failed below our limit (the pool's max memory size, or mmap failing): that
        // is running out of memory too.
        self.oom = true;
        Err(error)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // Tables are host memory too; the pool's table_elements bounds them already, this
        // bounds them with the on-demand allocator.
        Ok(desired <= 10_000_000)
    }
}

impl Drop for MemoryLimiter {
    fn drop(&mut self) {
        self.usage
            .memory_bytes
            .fetch_sub(self.held, Ordering::Relaxed);
    }
}

/// A container's CPU allowance: a token bucket in nanoseconds of guest time, refilled at
/// `millicores / 1000` of wall time. Shared by every store of the container, so concurrent
/// requests share the limit as threads of a process share its cgroup quota.
pub(crate) struct CpuBudget {
    /// Fraction of one core, `None` when unlimited.
    share: Option<f64>,
    bucket: Mutex<Bucket>,
    usage: Arc<UsageCounters>,
}

struct Bucket {
    tokens_ns: f64,
    refilled: Instant,
}

impl CpuBudget {
    pub(crate) fn new(cpu_limit_millis: Option<u64>, usage: Arc<UsageCounters>) -> Self {
        CpuBudget {
            share: cpu_limit_millis.map(|m| (m.max(1) as f64) / 1000.0),
            bucket: Mutex::new(Bucket {
                tokens_ns: 0.0,
                refilled: Instant::now(),
            }),
            usage,
        }
    }

    /// Charges `ran` of guest time; returns how long the guest must now pause to stay
    /// within its share.
    fn charge(&self, ran: Duration, now: Instant) -> Option<Duration> {
        self.usage
            .cpu_nanos
            .fetch_add(ran.as_nanos() as u64, Ordering::Relaxed);
        let share = self.share?;
        if share >= 64.0 {
            return None;
        }
        let mut b = self.bucket.lock().unwrap_or_else(|p| p.into_inner());
        // Burst: up to 50 ms of wall time's worth of tokens, so short requests of a
        // throttled container run at full speed.
        let burst = 50e6 * share;
        b.tokens_ns =
            (b.tokens_ns + now.duration_since(b.refilled).as_nanos() as f64 * share).min(burst);
        b.refilled = now;
        b.tokens_ns -= ran.as_nanos() as f64;
        if b.tokens_ns >= 0.0 {
            return None;
        }
        // Sleeping this long refills exactly the deficit.
        let pause = Duration::from_nanos((-b.tokens_ns / share) as u64);
        Some(pause.min(Duration::from_secs(1)))
    }
}

/// What the epoch callback of one store checks.
#[derive(Clone)]
pub(crate) struct EpochControl {
    pub(crate) budget: Arc<CpuBudget>,
    pub(crate) kill: Arc<AtomicBool>,
    /// When (and after how long) this store's execution must end.
    pub(crate) deadline: Option<(Instant, Duration)>,
    /// The ticker period: bounds how much time one callback may charge.
    pub(crate) tick: Duration,
}

/// Monotonic nanoseconds since a process-wide base, storable in an atomic.
fn now_nanos(base: Instant) -> u64 {
    Instant::now().duration_since(base).as_nanos() as u64
}

/// Installs the epoch callback on `store`: every tick the guest is charged for the time it
/// ran, then it yields to tokio (so a spinning guest never starves other tasks), sleeping if
/// it is over its CPU share; a stopped container or an expired deadline interrupts it.
pub(crate) fn install_epoch_control<T: 'static>(store: &mut Store<T>, ctl: EpochControl) {
    let base = Instant::now();
    // When the guest last resumed; written by the yield future when it completes, which is
    // exactly when the fiber resumes, so time spent suspended is never charged.
    let resumed = Arc::new(AtomicU64::new(0));
    // Time between two callbacks can include host calls (a guest blocked in poll_oneoff
    // does not run); bound the charge to a few ticks.
    let cap = ctl.tick * 4;
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(move |_ctx| {
        if ctl.kill.load(Ordering::Relaxed) {
            return Err(wasmtime::Error::new(Interrupt::Killed));
        }
        let now = Instant::now();
        if let Some((deadline, after)) = ctl.deadline
            && now >= deadline
        {
            return Err(wasmtime::Error::new(Interrupt::DeadlineExceeded(after)));
        }
        let since = now_nanos(base).saturating_sub(resumed.load(Ordering::Relaxed));
        let ran = Duration::from_nanos(since).min(cap);
        let pause = ctl.budget.charge(ran, now);
        let resumed = resumed.clone();
        let fut: std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> = match pause {
            Some(pause) => Box::pin(async move {
                tokio::time::sleep(pause).await;
                resumed.store(now_nanos(base), Ordering::Relaxed);
            }),
            None => Box::pin(async move {
                tokio::task::yield_now().await;
                resumed.store(now_nanos(base), Ordering::Relaxed);
            }),
        };
        Ok(UpdateDeadline::YieldCustom(1, fut))
    });
}

/// Store data of a preview1 core module (commands and WAGI requests).
pub(crate) struct P1Host {
    pub(crate) wasi: WasiP1Ctx,
    pub(crate) limiter: MemoryLimiter,
}

/// Store data of a component (WASI 0.2 commands and `wasi:http/proxy` handlers).
pub(crate) struct P2Host {
    pub(crate) wasi: WasiCtx,
    pub(crate) table: ResourceTable,
    pub(crate) http: WasiHttpCtx,
    pub(crate) outbound: OutboundPolicy,
    pub(crate) limiter: MemoryLimiter,
}

impl WasiView for P2Host {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for P2Host {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.outbound,
        }
    }
}

/// Which hosts a guest's outgoing `wasi:http` requests may reach (the pod's
/// allowed-outbound-hosts annotation): `host`, `host:port`, `*.suffix`, or `*` for any. A
/// name that resolves in the cluster is allowed by its written form or by its fully
/// qualified one (so `*.svc.cluster.local` allows `http://web/`).
#[derive(Clone, Default)]
pub(crate) struct OutboundPolicy {
    pub(crate) allowed: Arc<Vec<String>>,
    /// The cluster DNS with the pod's search path, for Service names.
    pub(crate) resolver: Option<Arc<crate::resolve::ClusterResolver>>,
}

impl OutboundPolicy {
    pub(crate) fn allows(&self, host: &str, port: Option<u16>) -> bool {
        let host = host.to_ascii_lowercase();
        self.allowed.iter().any(|rule| {
            let rule = rule.trim().to_ascii_lowercase();
            let rule = rule
                .trim_start_matches("https://")
                .trim_start_matches("http://")
                .trim_end_matches('/');
            if rule == "*" {
                return true;
            }
            let (rule_host, rule_port) = match rule.rsplit_once(':') {
                Some((h, p)) if p.chars().all(|c| c.is_ascii_digit()) => (h, p.parse::<u16>().ok()),
                _ => (rule, None),
            };
            let host_ok = match rule_host.strip_prefix("*.") {
                Some(suffix) => host.ends_with(&format!(".{suffix}")),
                None => rule_host == host,
            };
            host_ok && (rule_port.is_none() || rule_port == port)
        })
    }
}

impl wasmtime_wasi_http::WasiHttpHooks for OutboundPolicy {
    fn send_request(
        &mut self,
        request: http::Request<wasmtime_wasi_http::WasiBody>,
        options: Option<wasmtime_wasi_http::RequestOptions>,
        fut: Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
    ) -> Box<
        dyn Future<
                Output = Result<
                    (
                        http::Response<wasmtime_wasi_http::WasiBody>,
                        Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
                    ),
                    wasmtime_wasi_http::Error,
                >,
            > + Send,
    > {
        let _ = fut;
        let policy = self.clone();
        let mut request = request;
        Box::new(async move {
            let uri = request.uri().clone();
            let Some(host) = uri.host().map(str::to_string) else {
                return Err(wasmtime_wasi_http::Error::HttpRequestDenied);
            };
            let port = uri.port_u16();
            // Plain HTTP to a Service name goes to the address the cluster DNS gives it; the
            // Host header keeps the name. (HTTPS keeps the name: its certificate is checked
            // against it.)
            let resolved = match &policy.resolver {
                Some(r) if uri.scheme() != Some(&http::uri::Scheme::HTTPS) => {
                    r.resolve(&host).await
                }
                _ => None,
            };
            let allowed = policy.allows(&host, port)
                || resolved
                    .as_ref()
                    .is_some_and(|(fqdn, _)| policy.allows(fqdn, port));
            if !allowed {
                return Err(wasmtime_wasi_http::Error::HttpRequestDenied);
            }
            if let Some((_, ip)) = resolved {
                let authority = format!("{ip}:{}", port.unwrap_or(80));
                let mut parts = uri.into_parts();
                parts.authority = authority.parse().ok();
                if let Ok(u) = http::Uri::from_parts(parts) {
                    *request.uri_mut() = u;
                }
            }
            use http_body_util::BodyExt;
            let (res, io) = wasmtime_wasi_http::default_send_request(request, options).await?;
            Ok((
                res.map(BodyExt::boxed_unsync),
                Box::new(io) as Box<dyn Future<Output = _> + Send>,
            ))
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;

    #[test]
    fn outbound_rules() {
        let p = OutboundPolicy {
            allowed: Arc::new(vec![
                "api.example.com".into(),
                "*.svc.cluster.local".into(),
                "db:5432".into(),
            ]),
            resolver: None,
        };
        assert!(p.allows("api.example.com", None));
        assert!(p.allows("API.example.com", Some(443)));
        assert!(p.allows("web.ns.svc.cluster.local", Some(80)));
        assert!(!p.allows("svc.cluster.local", None));
        assert!(p.allows("db", Some(5432)));
        assert!(!p.allows("db", Some(5433)));
        assert!(!p.allows("evil.com", None));
        assert!(
            OutboundPolicy {
                allowed: Arc::new(vec!["*".into()]),
                resolver: None,
            }
            .allows("x", None)
        );
        assert!(!OutboundPolicy::default().allows("x", None));
    }

    #[test]
    fn cpu_budget_throttles_to_share() {
        let usage = Arc::new(UsageCounters::default());
        let b = CpuBudget::new(Some(100), usage.clone());
        let t0 = Instant::now();
        // 10 ms of guest time right away exceeds the 5 ms burst of a 0.1 share.
        let pause = b.charge(Duration::from_millis(10), t0).expect("throttled");
        assert!(
            pause >= Duration::from_millis(40) && pause <= Duration::from_millis(110),
            "{pause:?}"
        );
        assert_eq!(usage.cpu_nanos.load(Ordering::Relaxed), 10_000_000);
        let unlimited = CpuBudget::new(None, usage);
        assert!(unlimited.charge(Duration::from_secs(1), t0).is_none());
    }
}
