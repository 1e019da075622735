//! Leader election against a real API server: candidates in one process standing in for
//! servers over one store, with short durations (lease 1s, renew 700ms, retry 200ms).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ListParams, PostParams};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{Instant, timeout};
use tokio_util::sync::CancellationToken;
use wasmkube_controllers::leader_election::{
    self, LeaderElectionConfig, SCHEDULER_LEASE, run_leading,
};

use crate::api_only::{ApiServer, until};

const WAIT: Duration = Duration::from_secs(5);

fn config(identity: &str) -> LeaderElectionConfig {
    LeaderElectionConfig {
        lease_duration: Duration::from_secs(1),
        renew_deadline: Duration::from_millis(700),
        retry_period: Duration::from_millis(200),
        ..LeaderElectionConfig::new(SCHEDULER_LEASE, identity)
    }
}

fn leases(client: &kube::Client) -> Api<Lease> {
    Api::namespaced(client.clone(), "kube-system")
}

async fn lease(client: &kube::Client) -> Lease {
    leases(client)
        .get(SCHEDULER_LEASE)
        .await
        .expect("get lease")
}

fn holder(lease: &Lease) -> String {
    lease
        .spec
        .as_ref()
        .and_then(|s| s.holder_identity.clone())
        .unwrap_or_default()
}

fn transitions(lease: &Lease) -> i32 {
    lease
        .spec
        .as_ref()
        .and_then(|s| s.lease_transitions)
        .unwrap_or(0)
}

#[derive(Debug, PartialEq, Eq)]
enum Change {
    /// Started leading; whether the Lease named it holder at that moment.
    Started {
        id: String,
        holder_matches: bool,
    },
    Stopped {
        id: String,
    },
}

/// What all candidates of a test share: how many lead at once (and the most ever), and a
/// log of starts and stops.
struct Probe {
    leading: AtomicUsize,
    most: AtomicUsize,
    changes: mpsc::UnboundedSender<Change>,
}

impl Probe {
    fn new() -> (Arc<Probe>, mpsc::UnboundedReceiver<Change>) {
        let (changes, rx) = mpsc::unbounded_channel();
        let probe = Probe {
            leading: AtomicUsize::new(0),
            most: AtomicUsize::new(0),
            changes,
        };
        (Arc::new(probe), rx)
    }
}

/// Counts one `lead` in for as long as it lives: also when its future is dropped, as when a
/// server dies.
struct Counted<'a>(&'a Probe);

impl<'a> Counted<'a> {
    fn new(probe: &'a Probe) -> Self {
        let now = probe.leading.fetch_add(1, Ordering::SeqCst) + 1;
        probe.most.fetch_max(now, Ordering::SeqCst);
        Counted(probe)
    }
}

impl Drop for Counted<'_> {
    fn drop(&mut self) {
        self.0.leading.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A candidate whose `lead` counts itself in, checks the Lease names it, and waits for its
/// token.
fn candidate(
    client: &kube::Client,
    id: &str,
    probe: &Arc<Probe>,
    shutdown: &CancellationToken,
) -> JoinHandle<Result<(), leader_election::Error>> {
    let (client, id, probe) = (client.clone(), id.to_string(), probe.clone());
    let lead_client = client.clone();
    tokio::spawn(run_leading(
        client,
        config(&id),
        shutdown.clone(),
        move |token: CancellationToken| {
            let (client, id, probe) = (lead_client.clone(), id.clone(), probe.clone());
            async move {
                let counted = Counted::new(&probe);
                let holder_matches = holder(&lease(&client).await) == id;
                let _ = probe.changes.send(Change::Started {
                    id: id.clone(),
                    holder_matches,
                });
                token.cancelled().await;
                drop(counted);
                let _ = probe.changes.send(Change::Stopped { id });
            }
        },
    ))
}

async fn next(rx: &mut mpsc::UnboundedReceiver<Change>, within: Duration) -> Change {
    timeout(within, rx.recv())
        .await
        .expect("timed out waiting for a leadership change")
        .expect("candidates gone")
}

async fn stopped(handle: JoinHandle<Result<(), leader_election::Error>>) {
    timeout(WAIT, handle)
        .await
        .expect("candidate did not stop")
        .expect("candidate panicked")
        .expect("candidate failed");
}

fn started_id(change: Change) -> String {
    match change {
        Change::Started { id, holder_matches } => {
            assert!(
                holder_matches,
                "{id} led while the Lease named another holder"
            );
            id
        }
        other => panic!("expected a start, got {other:?}"),
    }
}

#[tokio::test]
async fn one_leader_at_a_time_and_handover_on_shutdown() {
    let server = ApiServer::start().await;
    let client = &server.client;
    let (probe, mut rx) = Probe::new();
    let (stop_a, stop_b) = (CancellationToken::new(), CancellationToken::new());
    let mut a = Some(candidate(client, "a", &probe, &stop_a));
    let mut b = Some(candidate(client, "b", &probe, &stop_b));

    let first = started_id(next(&mut rx, WAIT).await);
    // Several lease durations: the leader keeps renewing and nobody else starts.
    let quiet = timeout(Duration::from_millis(2500), rx.recv()).await;
    assert!(quiet.is_err(), "leadership changed unprompted: {quiet:?}");
    let held = lease(client).await;
    assert_eq!(holder(&held), first);
    let before = transitions(&held);

    // The leader shuts down: it stops leading, releases, and the other takes over at once.
    let shut_down = Instant::now();
    let (stop_first, first_handle, second, stop_second) = if first == "a" {
        (&stop_a, a.take(), "b", &stop_b)
    } else {
        (&stop_b, b.take(), "a", &stop_a)
    };
    stop_first.cancel();
    assert_eq!(
        next(&mut rx, WAIT).await,
        Change::Stopped { id: first.clone() }
    );
    stopped(first_handle.expect("first candidate")).await;
    assert_eq!(started_id(next(&mut rx, WAIT).await), second);
    let took = shut_down.elapsed();
    assert!(
        took < Duration::from_secs(1),
        "takeover after release took {took:?}"
    );
    let held = lease(client).await;
    assert_eq!(holder(&held), second);
    assert!(
        transitions(&held) > before,
        "leaseTransitions {} not above {before}",
        transitions(&held)
    );
    let spec = held.spec.clone().unwrap_or_default();
    assert_eq!(spec.lease_duration_seconds, Some(1));
    assert!(spec.acquire_time.is_some() && spec.renew_time.is_some());

    // The Event client-go records on the Lease.
    let events: Api<Event> = Api::namespaced(client.clone(), "kube-system");
    let wanted = format!("{second} became leader");
    until("the LeaderElection event", WAIT, || {
        let (events, wanted) = (events.clone(), wanted.clone());
        async move {
            let list = events.list(&ListParams::default()).await.ok()?;
            list.items
                .iter()
                .any(|e| {
                    e.reason.as_deref() == Some("LeaderElection")
                        && e.involved_object.kind.as_deref() == Some("Lease")
                        && e.involved_object.name.as_deref() == Some(SCHEDULER_LEASE)
                        && e.message.as_deref() == Some(wanted.as_str())
                })
                .then_some(())
        }
    })
    .await;

    stop_second.cancel();
    assert_eq!(
        next(&mut rx, WAIT).await,
        Change::Stopped {
            id: second.to_string()
        }
    );
    for handle in [a.take(), b.take()].into_iter().flatten() {
        stopped(handle).await;
    }
    assert_eq!(probe.most.load(Ordering::SeqCst), 1, "two led at once");
    // Released: no holder, so a next server need not wait out the lease.
    assert_eq!(holder(&lease(client).await), "");
}

#[tokio::test]
async fn an_abandoned_lease_is_taken_over_after_its_duration() {
    let server = ApiServer::start().await;
    let client = &server.client;
    let (probe, mut rx) = Probe::new();
    let (stop_a, stop_b) = (CancellationToken::new(), CancellationToken::new());
    let a = candidate(client, "a", &probe, &stop_a);
    assert_eq!(started_id(next(&mut rx, WAIT).await), "a");
    let b = candidate(client, "b", &probe, &stop_b);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let before = transitions(&lease(client).await);

    // A server that dies without releasing: its future is dropped, renewals just stop.
    a.abort();
    let died = Instant::now();
    assert_eq!(started_id(next(&mut rx, WAIT).await), "b");
    let took = died.elapsed();
    // b may not act before a full lease duration after the last renewal it saw, which was at
    // most one retry period (plus a request) before a died.
    assert!(
        took >= Duration::from_millis(700),
        "took over a live lease after {took:?}"
    );
    assert!(took < Duration::from_secs(3), "takeover took {took:?}");
    let held = lease(client).await;
    assert_eq!(holder(&held), "b");
    assert_eq!(transitions(&held), before + 1);

    stop_b.cancel();
    stopped(b).await;
    assert_eq!(probe.most.load(Ordering::SeqCst), 1, "two led at once");
}

#[tokio::test]
async fn a_leader_whose_lease_is_taken_stops_leading() {
    let server = ApiServer::start().await;
    let client = &server.client;
    let (probe, mut rx) = Probe::new();
    let stop = CancellationToken::new();
    let a = candidate(client, "a", &probe, &stop);
    assert_eq!(started_id(next(&mut rx, WAIT).await), "a");

    // A third party writes itself in as holder; a's next renewal conflicts and finds out.
    let intruder_transitions = timeout(WAIT, async {
        loop {
            let mut current = lease(client).await;
            let Some(spec) = current.spec.as_mut() else {
                panic!("lease without spec");
            };
            spec.holder_identity = Some("intruder".into());
            spec.lease_duration_seconds = Some(1);
            spec.renew_time = Some(MicroTime(Timestamp::now()));
            spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
            let t = spec.lease_transitions.unwrap_or(0);
            match leases(client)
                .replace(SCHEDULER_LEASE, &PostParams::default(), &current)
                .await
            {
                Ok(_) => break t,
                // a renewed in between: read again.
                Err(kube::Error::Api(e)) if e.code == 409 => {}
                Err(e) => panic!("taking the lease: {e}"),
            }
        }
    })
    .await
    .expect("taking the lease");
    let taken = Instant::now();
    assert_eq!(
        next(&mut rx, Duration::from_secs(2)).await,
        Change::Stopped { id: "a".into() }
    );
    assert!(
        taken.elapsed() < Duration::from_millis(700),
        "a kept leading for {:?} after losing the Lease",
        taken.elapsed()
    );

    // The intruder never renews, so after its lease duration a takes the Lease back.
    assert_eq!(started_id(next(&mut rx, WAIT).await), "a");
    let held = lease(client).await;
    assert_eq!(holder(&held), "a");
    assert_eq!(transitions(&held), intruder_transitions + 1);

    stop.cancel();
    stopped(a).await;
    assert_eq!(probe.most.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn an_invalid_config_is_refused() {
    let server = ApiServer::start().await;
    let config = LeaderElectionConfig {
        renew_deadline: Duration::from_secs(2),
        ..config("a")
    };
    let result = timeout(
        WAIT,
        run_leading(
            server.client.clone(),
            config,
            CancellationToken::new(),
            |_token| async {},
        ),
    )
    .await
    .expect("run_leading returns at once");
    assert!(
        matches!(result, Err(leader_election::Error::InvalidConfig(_))),
        "{result:?}"
    );
}

#[test]
fn defaults_are_kubernetes_and_valid() {
    let c = LeaderElectionConfig::new(leader_election::CONTROLLER_MANAGER_LEASE, "me");
    assert_eq!(c.namespace, "kube-system");
    assert_eq!(c.lease_duration, Duration::from_secs(15));
    assert_eq!(c.renew_deadline, Duration::from_secs(10));
    assert_eq!(c.retry_period, Duration::from_secs(2));
    assert!(c.validate().is_ok());
    assert!(config("me").validate().is_ok());
}

#[test]
fn validate_orders_the_durations() {
    let bad = |c: LeaderElectionConfig| match c.validate() {
        Err(leader_election::Error::InvalidConfig(m)) => m,
        other => panic!("expected an invalid config, got {other:?}"),
    };
    let m = bad(LeaderElectionConfig {
        renew_deadline: Duration::from_secs(1),
        ..config("me")
    });
    assert!(m.contains("greater than renewDeadline"), "{m}");
    let m = bad(LeaderElectionConfig {
        retry_period: Duration::from_millis(600),
        ..config("me")
    });
    assert!(m.contains("retryPeriod*1.2"), "{m}");
    let m = bad(LeaderElectionConfig {
        lease_duration: Duration::from_millis(900),
        renew_deadline: Duration::from_millis(800),
        ..config("me")
    });
    assert!(m.contains("at least 1s"), "{m}");
    let m = bad(LeaderElectionConfig {
        identity: String::new(),
        ..config("me")
    });
    assert!(m.contains("identity"), "{m}");
}

#[test]
fn default_identities_are_unique() {
    let (a, b) = (
        leader_election::default_identity(),
        leader_election::default_identity(),
    );
    assert_ne!(a, b);
    assert!(a.contains('_'), "{a}");
}
