//! Leader election over `coordination.k8s.io/v1` Leases, after client-go's `leaderelection`
//! package, so that of several servers over one store only one runs the scheduler and only
//! one the controllers (Leases `kube-scheduler` and `kube-controller-manager` in
//! `kube-system`, as Kubernetes names them).
//!
//! The protocol, as client-go's:
//! - A candidate creates the Lease if there is none, or writes itself in as holder when the
//!   Lease is free (empty `holderIdentity`) or its holder let it expire.
//! - Expiry is judged by this process's own clock: the lease counts as expired once
//!   `leaseDurationSeconds` have passed since this process last *saw the record change*
//!   (client-go's observedTime), never by comparing the holder's `renewTime` with our clock,
//!   so clock skew between servers cannot make two leaders.
//! - Every write is an update conditional on the `resourceVersion` just read, so of two
//!   candidates racing for one Lease exactly one succeeds; the other gets a 409.
//! - The leader renews every `retry_period`; when a renewal has not succeeded within
//!   `renew_deadline`, or the Lease names another holder, it stops leading. `renew_deadline`
//!   is shorter than `lease_duration`, so the old leader stops before any other candidate
//!   may consider the lease expired.
//! - On shutdown the leader releases the Lease (empty holder, `leaseDurationSeconds` 1, as
//!   client-go's `ReleaseOnCancel`) so that another server takes over at once instead of
//!   after a lease duration.

use std::future::Future;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use kube::Resource;
use kube::api::{Api, ObjectMeta, PostParams};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::events::Recorder;

/// The Lease of the scheduler (kube-scheduler's `--leader-elect-resource-name`).
pub const SCHEDULER_LEASE: &str = "kube-scheduler";
/// The Lease of the controllers (kube-controller-manager's).
pub const CONTROLLER_MANAGER_LEASE: &str = "kube-controller-manager";
/// Where Kubernetes' components keep their Leases.
pub const DEFAULT_NAMESPACE: &str = "kube-system";

/// client-go's `JitterFactor`: candidates wait up to this many retry periods more between
/// attempts, so they do not hit the Lease in lockstep, and the renew deadline must leave room
/// for one jittered retry.
const JITTER_FACTOR: f64 = 1.2;

/// Reason of the Events recorded on the Lease, as client-go's resource locks record.
const EVENT_REASON: &str = "LeaderElection";
const EVENT_COMPONENT: &str = "leader-election";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid leader election config: {0}")]
    InvalidConfig(String),
    #[error("releasing Lease {lease}")]
    Release {
        lease: String,
        #[source]
        source: kube::Error,
    },
    #[error("releasing Lease {lease}: no answer within {after:?}; it expires on its own")]
    ReleaseTimedOut { lease: String, after: Duration },
}

/// One candidate's settings for one Lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaderElectionConfig {
    pub lease_name: String,
    pub namespace: String,
    /// Who this candidate is; unique among the candidates (see [`default_identity`]).
    pub identity: String,
    /// How long others wait after the last change they saw before taking the Lease over
    /// (`--leader-elect-lease-duration`). Written as whole seconds.
    pub lease_duration: Duration,
    /// How long the leader keeps retrying a failing renewal before it stops leading
    /// (`--leader-elect-renew-deadline`).
    pub renew_deadline: Duration,
    /// The pause between attempts to acquire or renew (`--leader-elect-retry-period`).
    pub retry_period: Duration,
}

impl LeaderElectionConfig {
    /// Kubernetes' defaults: 15s lease, 10s renew deadline, 2s retry period, in `kube-system`.
    pub fn new(lease_name: impl Into<String>, identity: impl Into<String>) -> Self {
        LeaderElectionConfig {
            lease_name: lease_name.into(),
            namespace: DEFAULT_NAMESPACE.to_string(),
            identity: identity.into(),
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }

    /// client-go's checks: the leader must give up (renew deadline) before others may take
    /// over (lease duration), and must get at least one jittered retry before giving up.
    pub fn validate(&self) -> Result<(), Error> {
        let invalid = |m: String| Err(Error::InvalidConfig(m));
        if self.lease_name.is_empty() {
            return invalid("lease name is empty".into());
        }
        if self.namespace.is_empty() {
            return invalid("lease namespace is empty".into());
        }
        if self.identity.is_empty() {
            return invalid("identity is empty".into());
        }
        if self.retry_period.is_zero() {
            return invalid("retryPeriod must be greater than zero".into());
        }
        // `leaseDurationSeconds` is whole seconds and the API refuses 0.
        if self.lease_duration < Duration::from_secs(1) {
            return invalid(format!(
                "leaseDuration must be at least 1s, not {:?}",
                self.lease_duration
            ));
        }
        if self.lease_duration <= self.renew_deadline {
            return invalid(format!(
                "leaseDuration ({:?}) must be greater than renewDeadline ({:?})",
                self.lease_duration, self.renew_deadline
            ));
        }
        if self.renew_deadline <= self.retry_period.mul_f64(JITTER_FACTOR) {
            return invalid(format!(
                "renewDeadline ({:?}) must be greater than retryPeriod*{JITTER_FACTOR} ({:?})",
                self.renew_deadline,
                self.retry_period.mul_f64(JITTER_FACTOR)
            ));
        }
        Ok(())
    }

    fn lease_duration_seconds(&self) -> i32 {
        i32::try_from(self.lease_duration.as_secs()).unwrap_or(i32::MAX)
    }
}

/// A candidate identity unique across restarts, as kube-scheduler's: `<hostname>_<uuid>`.
pub fn default_identity() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok().filter(|h| !h.is_empty()))
        .unwrap_or_else(|| "wasmkube".to_string());
    format!("{host}_{}", uuid::Uuid::new_v4())
}

/// Runs `lead` whenever this candidate holds the Lease, until `shutdown` is cancelled.
///
/// `lead` gets a token that is cancelled when leadership is lost or on shutdown; its future
/// must then finish, and only after it has does this candidate try to acquire the Lease again
/// (or release it, on shutdown), so that this process never runs two `lead`s at once. If
/// `lead` returns on its own, the Lease is still held and renewed, as client-go does, so that
/// no other candidate starts leading in its place.
///
/// Returns once `shutdown` is cancelled and the Lease is released; errors are an invalid
/// `config` or a failed release (the Lease then expires after `lease_duration`). API errors
/// while acquiring or renewing are retried.
pub async fn run_leading<F, Fut>(
    client: kube::Client,
    config: LeaderElectionConfig,
    shutdown: CancellationToken,
    mut lead: F,
) -> Result<(), Error>
where
    F: FnMut(CancellationToken) -> Fut,
    Fut: Future<Output = ()> + Send,
{
    config.validate()?;
    let recorder = Recorder::new(client.clone(), EVENT_COMPONENT, shutdown.clone());
    let (lease, identity) = (config.lease_name.clone(), config.identity.clone());
    let mut elector = Elector::new(client, config);
    loop {
        if !elector.acquire(&shutdown).await {
            return Ok(());
        }
        tracing::info!(lease, identity, "became leader");
        elector.record_event(&recorder, "became leader");

        let token = shutdown.child_token();
        let mut leading = std::pin::pin!(lead(token.clone()));
        let mut lead_done = false;
        let stop = {
            let renewing = elector.keep_renewing(&shutdown);
            let mut renewing = std::pin::pin!(renewing);
            loop {
                tokio::select! {
                    stop = &mut renewing => break stop,
                    () = &mut leading, if !lead_done => lead_done = true,
                }
            }
        };
        token.cancel();
        match stop {
            Stop::Lost(why) => {
                tracing::info!(lease, identity, reason = %why, "lost leadership");
                elector.record_event(&recorder, "stopped leading");
                if !lead_done {
                    leading.await;
                }
            }
            Stop::Shutdown => {
                if !lead_done {
                    // Keep renewing while `lead` winds down: releasing (or letting the lease
                    // lapse) first would let another server start leading beside it.
                    let never = CancellationToken::new();
                    let renewing = elector.keep_renewing(&never);
                    let mut renewing = std::pin::pin!(renewing);
                    tokio::select! {
                        () = &mut leading => {}
                        stop = &mut renewing => {
                            if let Stop::Lost(why) = stop {
                                tracing::info!(lease, identity, reason = %why, "lost leadership while stopping");
                            }
                            leading.await;
                        }
                    }
                }
                tracing::info!(lease, identity, "releasing leadership on shutdown");
                return elector.release().await;
            }
        }
    }
}

/// Why a leader stopped renewing.
enum Stop {
    Shutdown,
    Lost(LostReason),
}

enum LostReason {
    TakenBy(String),
    RenewDeadline(Duration),
}

impl std::fmt::Display for LostReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LostReason::TakenBy(holder) => write!(f, "the Lease is held by {holder}"),
            LostReason::RenewDeadline(d) => write!(f, "no renewal succeeded within {d:?}"),
        }
    }
}

/// The outcome of one attempt to acquire or renew.
enum Attempt {
    Held,
    HeldBy(String),
}

/// One candidate's view of the Lease (client-go's `LeaderElector`).
struct Elector {
    api: Api<Lease>,
    config: LeaderElectionConfig,
    /// The Lease as last read or written: its resourceVersion is what the next write is
    /// conditional on, its spec the record whose changes `observed_at` tracks.
    lease: Option<Lease>,
    /// When this process last saw the record change (client-go's observedTime).
    observed_at: Instant,
}

impl Elector {
    fn new(client: kube::Client, config: LeaderElectionConfig) -> Self {
        Elector {
            api: Api::namespaced(client, &config.namespace),
            config,
            lease: None,
            observed_at: Instant::now(),
        }
    }

    fn spec(&self) -> Option<&LeaseSpec> {
        self.lease.as_ref().and_then(|l| l.spec.as_ref())
    }

    fn holder(&self) -> &str {
        self.spec()
            .and_then(|s| s.holder_identity.as_deref())
            .unwrap_or("")
    }

    fn is_leader(&self) -> bool {
        self.holder() == self.config.identity
    }

    /// Whether the holder we last saw may still be renewing, by our own clock.
    fn lease_valid(&self, now: Instant) -> bool {
        let seconds = self
            .spec()
            .and_then(|s| s.lease_duration_seconds)
            .unwrap_or(0);
        let duration = Duration::from_secs(u64::try_from(seconds).unwrap_or(0));
        self.observed_at + duration > now
    }

    /// A Lease we wrote: by definition a change we just saw.
    fn wrote(&mut self, lease: Lease) {
        self.lease = Some(lease);
        self.observed_at = Instant::now();
    }

    /// A Lease we read: the clock restarts only if the record changed, so a holder that stopped
    /// renewing expires `leaseDurationSeconds` after our first sight of its last renewal.
    fn read(&mut self, lease: Lease) {
        let changed = self.spec() != lease.spec.as_ref();
        if changed {
            let holder = lease
                .spec
                .as_ref()
                .and_then(|s| s.holder_identity.as_deref())
                .unwrap_or("");
            if holder != self.holder() && !holder.is_empty() {
                tracing::debug!(lease = %self.config.lease_name, holder, "new leader elected");
            }
            self.observed_at = Instant::now();
        }
        self.lease = Some(lease);
    }

    /// The record this candidate writes as holder: a renewal keeps `acquireTime` and
    /// `leaseTransitions`, a change of holder counts one more transition.
    fn holder_spec(&self, renewing: bool, old: &LeaseSpec) -> LeaseSpec {
        let now = micro_now();
        LeaseSpec {
            holder_identity: Some(self.config.identity.clone()),
            lease_duration_seconds: Some(self.config.lease_duration_seconds()),
            acquire_time: if renewing {
                old.acquire_time.clone()
            } else {
                Some(now.clone())
            },
            renew_time: Some(now),
            lease_transitions: Some(if renewing {
                old.lease_transitions.unwrap_or(0)
            } else {
                old.lease_transitions.unwrap_or(0).saturating_add(1)
            }),
            ..old.clone()
        }
    }

    /// client-go's `tryAcquireOrRenew`.
    async fn try_acquire_or_renew(&mut self) -> Result<Attempt, kube::Error> {
        let name = self.config.lease_name.clone();
        // Fast path: the leader writes over the Lease it last wrote without reading it first;
        // if anyone else wrote meanwhile the resourceVersion no longer matches (409) and the
        // slow path finds out what happened.
        if self.is_leader()
            && self.lease_valid(Instant::now())
            && let Some(mut next) = self.lease.clone()
        {
            let old = next.spec.clone().unwrap_or_default();
            next.spec = Some(self.holder_spec(true, &old));
            match self.api.replace(&name, &PostParams::default(), &next).await {
                Ok(written) => {
                    self.wrote(written);
                    return Ok(Attempt::Held);
                }
                Err(e) => {
                    tracing::debug!(lease = %name, error = %e, "renewing optimistically failed; reading the Lease")
                }
            }
        }

        let Some(current) = self.api.get_opt(&name).await? else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(name.clone()),
                    namespace: Some(self.config.namespace.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(LeaseSpec {
                    lease_transitions: Some(0),
                    ..self.holder_spec(false, &LeaseSpec::default())
                }),
            };
            // A 409 here means another candidate created it first.
            let created = self.api.create(&PostParams::default(), &lease).await?;
            self.wrote(created);
            return Ok(Attempt::Held);
        };
        self.read(current);
        let holder = self.holder().to_string();
        let renewing = holder == self.config.identity;
        if !holder.is_empty() && !renewing && self.lease_valid(Instant::now()) {
            return Ok(Attempt::HeldBy(holder));
        }
        let Some(mut next) = self.lease.clone() else {
            return Ok(Attempt::HeldBy(holder));
        };
        let old = next.spec.clone().unwrap_or_default();
        next.spec = Some(self.holder_spec(renewing, &old));
        // Conditional on the resourceVersion just read: of two candidates taking over one
        // expired Lease, the second gets a 409.
        let written = self
            .api
            .replace(&name, &PostParams::default(), &next)
            .await?;
        self.wrote(written);
        Ok(Attempt::Held)
    }

    /// Retries every jittered `retry_period` until the Lease is ours (true) or `shutdown`
    /// (false).
    async fn acquire(&mut self, shutdown: &CancellationToken) -> bool {
        let lease = self.config.lease_name.clone();
        let identity = self.config.identity.clone();
        tracing::info!(lease, identity, "attempting to acquire leader lease");
        loop {
            if shutdown.is_cancelled() {
                return false;
            }
            // Bounded so that a request the API never answers cannot stall the candidate.
            let attempt = tokio::select! {
                a = tokio::time::timeout(self.config.renew_deadline, self.try_acquire_or_renew()) => a,
                _ = shutdown.cancelled() => return false,
            };
            match attempt {
                Ok(Ok(Attempt::Held)) => return true,
                Ok(Ok(Attempt::HeldBy(holder))) => {
                    tracing::trace!(lease, holder, "the Lease is held by another candidate");
                }
                // Another candidate won a race for the same resourceVersion: routine.
                Ok(Err(kube::Error::Api(s))) if s.code == 409 => {
                    tracing::debug!(lease, "acquiring conflicted");
                }
                Ok(Err(e)) => {
                    tracing::warn!(lease, error = %crate::error_chain(&e), "acquiring the Lease failed; retrying");
                }
                Err(_) => tracing::warn!(lease, "acquiring the Lease timed out; retrying"),
            }
            let wait = self
                .config
                .retry_period
                .mul_f64(1.0 + JITTER_FACTOR * rand::random::<f64>());
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                _ = shutdown.cancelled() => return false,
            }
        }
    }

    /// Renews every `retry_period` while leading (client-go's `renew`): each round retries
    /// failed attempts until `renew_deadline` after it began.
    async fn keep_renewing(&mut self, shutdown: &CancellationToken) -> Stop {
        let lease = self.config.lease_name.clone();
        let deadline_after = self.config.renew_deadline;
        loop {
            tokio::select! {
                () = tokio::time::sleep(self.config.retry_period) => {}
                _ = shutdown.cancelled() => return Stop::Shutdown,
            }
            let deadline = Instant::now() + deadline_after;
            loop {
                let attempt = tokio::select! {
                    a = tokio::time::timeout_at(deadline, self.try_acquire_or_renew()) => a,
                    _ = shutdown.cancelled() => return Stop::Shutdown,
                };
                match attempt {
                    Ok(Ok(Attempt::Held)) => break,
                    Ok(Ok(Attempt::HeldBy(holder))) => {
                        return Stop::Lost(LostReason::TakenBy(holder));
                    }
                    Ok(Err(e)) => {
                        tracing::debug!(lease, error = %crate::error_chain(&e), "renewing the Lease failed; retrying");
                    }
                    Err(_) => return Stop::Lost(LostReason::RenewDeadline(deadline_after)),
                }
                tokio::select! {
                    () = tokio::time::sleep_until(deadline.min(Instant::now() + self.config.retry_period)) => {}
                    _ = shutdown.cancelled() => return Stop::Shutdown,
                }
                if Instant::now() >= deadline {
                    return Stop::Lost(LostReason::RenewDeadline(deadline_after));
                }
            }
        }
    }

    /// client-go's `release`: an empty holder with a one-second lease, so the next candidate
    /// takes it at its next attempt. Bounded by `renew_deadline`.
    async fn release(&mut self) -> Result<(), Error> {
        let after = self.config.renew_deadline;
        let lease = self.config.lease_name.clone();
        match tokio::time::timeout(after, self.try_release()).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(source)) => Err(Error::Release { lease, source }),
            Err(_) => Err(Error::ReleaseTimedOut { lease, after }),
        }
    }

    async fn try_release(&mut self) -> Result<(), kube::Error> {
        let name = self.config.lease_name.clone();
        // Once with the Lease as we last wrote it, once more after a conflict (a renewal cut
        // short by shutdown may have landed) if it is still ours.
        for _ in 0..2 {
            if !self.is_leader() {
                return Ok(());
            }
            let Some(mut next) = self.lease.clone() else {
                return Ok(());
            };
            let old = next.spec.clone().unwrap_or_default();
            let now = micro_now();
            next.spec = Some(LeaseSpec {
                holder_identity: Some(String::new()),
                lease_duration_seconds: Some(1),
                acquire_time: Some(now.clone()),
                renew_time: Some(now),
                lease_transitions: old.lease_transitions,
                ..old
            });
            match self.api.replace(&name, &PostParams::default(), &next).await {
                Ok(written) => {
                    self.wrote(written);
                    return Ok(());
                }
                Err(kube::Error::Api(s)) if s.code == 409 => match self.api.get_opt(&name).await? {
                    Some(current) => self.read(current),
                    None => return Ok(()),
                },
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// `"<identity> <what>"` on the Lease, as client-go's `LeaseLock.RecordEvent`.
    fn record_event(&self, recorder: &Recorder, what: &str) {
        if let Some(lease) = &self.lease {
            recorder.normal(
                lease.object_ref(&()),
                EVENT_REASON,
                format!("{} {what}", self.config.identity),
            );
        }
    }
}

/// Now at the API's MicroTime precision, so what we write compares equal to what we read back.
fn micro_now() -> MicroTime {
    let now = Timestamp::now();
    MicroTime(Timestamp::from_microsecond(now.as_microsecond()).unwrap_or(now))
}
