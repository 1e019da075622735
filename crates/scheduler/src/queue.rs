//! The queue of pods waiting for a node, shaped like kube-scheduler's `PriorityQueue`.
//!
//! A pending pod is in exactly one place:
//!
//! ```text
//!            add                      pop
//!   ───────────────▶ active ────────────────────▶ in flight ──▶ bound: gone
//!                      ▲                              │
//!                      │ back-off over                │ unschedulable
//!                      │                              ▼
//!                   backoff ◀──── cluster change ── unschedulable
//!                      ▲                              │
//!                      └── error, or a change ────────┘ flush after `unschedulable_flush`
//!                          during the attempt
//! ```
//!
//! `active` is ordered by `spec.priority` (highest first), then by arrival. A pod's back-off
//! doubles with every failed attempt, from `initial_backoff` to `max_backoff`. Unschedulable
//! pods wait for a cluster change (a node added or updated, a pod deleted) rather than retry
//! blindly; one that missed a change while being scheduled goes to back-off instead, so the
//! change is not lost.
//!
//! Time is passed in, so the queue is a pure data structure and tests need no clock.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use tokio::time::Instant;

use crate::cache::{PodKey, pod_key};

/// Back-off settings of the queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BackoffConfig {
    /// Back-off after the first failed attempt (kube-scheduler's `podInitialBackoffSeconds`).
    pub initial_backoff: Duration,
    /// Back-off cap (`podMaxBackoffSeconds`).
    pub max_backoff: Duration,
    /// An unschedulable pod no change woke is retried after this long anyway
    /// (`podMaxInUnschedulablePodsDuration`), a safety net for changes the cache cannot see.
    pub unschedulable_flush: Duration,
}

impl Default for BackoffConfig {
    fn default() -> Self {
        BackoffConfig {
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(10),
            unschedulable_flush: Duration::from_secs(5 * 60),
        }
    }
}

impl BackoffConfig {
    /// Back-off after `attempts` failed attempts: `initial × 2^(attempts-1)`, capped.
    pub fn backoff(&self, attempts: u32) -> Duration {
        if attempts == 0 {
            return Duration::ZERO;
        }
        let shift = (attempts - 1).min(31);
        self.initial_backoff
            .checked_mul(1u32 << shift)
            .unwrap_or(self.max_backoff)
            .min(self.max_backoff)
    }
}

/// Where a queued pod is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Place {
    Active,
    Backoff,
    Unschedulable,
    /// Popped and being scheduled or bound.
    InFlight,
}

#[derive(Debug)]
struct Entry {
    pod: Arc<Pod>,
    place: Place,
    /// Failed attempts so far.
    attempts: u32,
    /// When the last attempt failed.
    failed_at: Option<Instant>,
    /// Ordering within `active`.
    rank: (i64, u64),
    /// The `backoff` entry while in [`Place::Backoff`].
    backoff_until: Option<Instant>,
    /// A cluster change happened while the pod was in flight.
    missed_change: bool,
}

/// The scheduling queue.
#[derive(Debug)]
pub struct SchedulingQueue {
    config: BackoffConfig,
    entries: HashMap<PodKey, Entry>,
    /// `(-priority, arrival, key)`: the first element is the next pod to schedule.
    active: BTreeSet<(i64, u64, PodKey)>,
    /// `(back-off expiry, key)`.
    backoff: BTreeSet<(Instant, PodKey)>,
    next_seq: u64,
}

fn priority(pod: &Pod) -> i64 {
    i64::from(pod.spec.as_ref().and_then(|s| s.priority).unwrap_or(0))
}

/// Whether an update to a pending pod may change where it fits; our own status writes do not.
fn spec_changed(old: &Pod, new: &Pod) -> bool {
    old.spec != new.spec || old.metadata.labels != new.metadata.labels
}

impl SchedulingQueue {
    pub fn new(config: BackoffConfig) -> Self {
        SchedulingQueue {
            config,
            entries: HashMap::new(),
            active: BTreeSet::new(),
            backoff: BTreeSet::new(),
            next_seq: 0,
        }
    }

    /// How many pods are queued, in flight included.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Where a pod is, if queued.
    pub fn place(&self, key: &str) -> Option<Place> {
        self.entries.get(key).map(|e| e.place)
    }

    /// The latest version of a queued pod.
    pub fn pod(&self, key: &str) -> Option<&Arc<Pod>> {
        self.entries.get(key).map(|e| &e.pod)
    }

    /// Adds a pending pod, or updates the one queued. An unschedulable pod whose spec or
    /// labels changed is retried (after its back-off).
    pub fn add_or_update(&mut self, pod: Pod, now: Instant) {
        let key = pod_key(&pod);
        if self
            .entries
            .get(&key)
            .is_some_and(|e| e.pod.metadata.uid != pod.metadata.uid)
        {
            // Same name, new pod: it starts over.
            self.remove(&key);
        }
        let pod = Arc::new(pod);
        let Some(entry) = self.entries.get_mut(&key) else {
            let rank = (-priority(&pod), self.next_seq);
            self.next_seq += 1;
            self.entries.insert(
                key.clone(),
                Entry {
                    pod,
                    place: Place::Active,
                    attempts: 0,
                    failed_at: None,
                    rank,
                    backoff_until: None,
                    missed_change: false,
                },
            );
            self.active.insert((rank.0, rank.1, key));
            return;
        };
        let changed = spec_changed(&entry.pod, &pod);
        entry.pod = pod;
        match entry.place {
            Place::Unschedulable if changed => self.wake(&key, now),
            Place::InFlight if changed => entry.missed_change = true,
            _ => {}
        }
    }

    /// Removes a pod (deleted, bound elsewhere, or no longer ours).
    pub fn remove(&mut self, key: &str) -> Option<Arc<Pod>> {
        let entry = self.entries.remove(key)?;
        self.unlink(key, &entry);
        Some(entry.pod)
    }

    fn unlink(&mut self, key: &str, entry: &Entry) {
        match entry.place {
            Place::Active => {
                self.active
                    .remove(&(entry.rank.0, entry.rank.1, key.to_string()));
            }
            Place::Backoff => {
                if let Some(until) = entry.backoff_until {
                    self.backoff.remove(&(until, key.to_string()));
                }
            }
            Place::Unschedulable | Place::InFlight => {}
        }
    }

    fn backoff_expiry(&self, entry: &Entry) -> Option<Instant> {
        entry
            .failed_at
            .map(|t| t + self.config.backoff(entry.attempts))
    }

    /// Moves `key` (unschedulable) to active, or to back-off while that lasts.
    fn wake(&mut self, key: &str, now: Instant) {
        let Some(entry) = self.entries.get(key) else {
            return;
        };
        match self.backoff_expiry(entry) {
            Some(until) if until > now => {
                self.backoff.insert((until, key.to_string()));
                self.set_place(key, Place::Backoff);
                if let Some(e) = self.entries.get_mut(key) {
                    e.backoff_until = Some(until);
                }
            }
            _ => {
                self.active
                    .insert((entry.rank.0, entry.rank.1, key.to_string()));
                self.set_place(key, Place::Active);
            }
        }
    }

    fn set_place(&mut self, key: &str, place: Place) {
        if let Some(e) = self.entries.get_mut(key) {
            e.place = place;
            if place != Place::Backoff {
                e.backoff_until = None;
            }
        }
    }

    /// Moves pods whose back-off is over to active, and unschedulable pods that waited
    /// `unschedulable_flush` to active or back-off.
    fn flush(&mut self, now: Instant) {
        while let Some((until, key)) = self.backoff.first().cloned() {
            if until > now {
                break;
            }
            self.backoff.remove(&(until, key.clone()));
            if let Some(e) = self.entries.get(&key) {
                self.active.insert((e.rank.0, e.rank.1, key.clone()));
                self.set_place(&key, Place::Active);
            }
        }
        let stale: Vec<PodKey> = self
            .entries
            .iter()
            .filter(|(_, e)| {
                e.place == Place::Unschedulable
                    && e.failed_at
                        .is_none_or(|t| t + self.config.unschedulable_flush <= now)
            })
            .map(|(k, _)| k.clone())
            .collect();
        for key in stale {
            self.wake(&key, now);
        }
    }

    /// The next pod to schedule, now in flight; `None` when no pod is ready.
    pub fn pop(&mut self, now: Instant) -> Option<Arc<Pod>> {
        self.flush(now);
        let first = self.active.pop_first()?;
        let key = first.2;
        self.set_place(&key, Place::InFlight);
        let entry = self.entries.get_mut(&key)?;
        entry.missed_change = false;
        Some(entry.pod.clone())
    }

    /// Whether a pod is ready to pop.
    pub fn has_ready(&self, now: Instant) -> bool {
        !self.active.is_empty()
            || self.backoff.first().is_some_and(|(until, _)| *until <= now)
            || self.next_flush().is_some_and(|t| t <= now)
    }

    fn next_flush(&self) -> Option<Instant> {
        self.entries
            .values()
            .filter(|e| e.place == Place::Unschedulable)
            .filter_map(|e| e.failed_at.map(|t| t + self.config.unschedulable_flush))
            .min()
    }

    /// When a pod next becomes ready by the clock alone (back-off over, or flush due).
    pub fn next_wakeup(&self) -> Option<Instant> {
        let backoff = self.backoff.first().map(|(t, _)| *t);
        match (backoff, self.next_flush()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The pod in flight was bound: it leaves the queue.
    pub fn done(&mut self, key: &str) {
        if self.place(key) == Some(Place::InFlight) {
            self.entries.remove(key);
        }
    }

    /// The pod in flight fits no node: it waits for a cluster change, or goes straight to
    /// back-off if one happened during the attempt.
    pub fn unschedulable(&mut self, key: &str, now: Instant) {
        let Some(entry) = self.entries.get_mut(key) else {
            return;
        };
        if entry.place != Place::InFlight {
            return;
        }
        entry.attempts = entry.attempts.saturating_add(1);
        entry.failed_at = Some(now);
        if entry.missed_change {
            self.wake(key, now);
        } else {
            entry.place = Place::Unschedulable;
        }
    }

    /// Like [`SchedulingQueue::unschedulable`] for a pod's first attempt that failed only for
    /// want of an object the pod names (a claim created a moment before the pod, whose watch
    /// event the pod's overtook): no back-off, the object's arrival retries it at once. The
    /// attempt still counts, so a second such failure backs off as usual.
    pub fn awaiting_object(&mut self, key: &str, now: Instant) {
        let first = self
            .entries
            .get(key)
            .is_some_and(|e| e.place == Place::InFlight && e.attempts == 0);
        if !first {
            self.unschedulable(key, now);
            return;
        }
        if let Some(entry) = self.entries.get_mut(key) {
            entry.attempts = 1;
            if entry.missed_change {
                self.wake(key, now);
            } else {
                entry.place = Place::Unschedulable;
            }
        }
    }

    /// The attempt for the pod in flight failed for another reason (an API error): retry
    /// after back-off.
    pub fn error(&mut self, key: &str, now: Instant) {
        let Some(entry) = self.entries.get_mut(key) else {
            return;
        };
        if entry.place != Place::InFlight {
            return;
        }
        entry.attempts = entry.attempts.saturating_add(1);
        entry.failed_at = Some(now);
        self.wake(key, now);
    }

    /// The cluster changed in a way that may let unschedulable pods fit: retry them (after
    /// their back-off), and remember the change for pods in flight.
    pub fn cluster_changed(&mut self, now: Instant) {
        let keys: Vec<PodKey> = self
            .entries
            .iter()
            .filter(|(_, e)| matches!(e.place, Place::Unschedulable | Place::InFlight))
            .map(|(k, _)| k.clone())
            .collect();
        for key in keys {
            match self.place(&key) {
                Some(Place::InFlight) => {
                    if let Some(e) = self.entries.get_mut(&key) {
                        e.missed_change = true;
                    }
                }
                _ => self.wake(&key, now),
            }
        }
    }

    /// Keys of every queued pod.
    pub fn keys(&self) -> impl Iterator<Item = &PodKey> {
        self.entries.keys()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(name: &str, priority: i32) -> Pod {
        serde_json::from_value(
            json!({"metadata": {"name": name, "namespace": "ns", "uid": name},
            "spec": {"priority": priority, "containers": [{"name": "c"}]}}),
        )
        .expect("pod")
    }

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let c = BackoffConfig::default();
        let got: Vec<u64> = (0..7).map(|a| c.backoff(a).as_secs()).collect();
        assert_eq!(got, [0, 1, 2, 4, 8, 10, 10]);
        assert_eq!(c.backoff(u32::MAX), secs(10));
    }

    #[test]
    fn higher_priority_first_then_arrival() {
        let now = Instant::now();
        let mut q = SchedulingQueue::new(BackoffConfig::default());
        q.add_or_update(pod("a", 0), now);
        q.add_or_update(pod("b", 10), now);
        q.add_or_update(pod("c", 0), now);
        let order: Vec<String> = std::iter::from_fn(|| q.pop(now))
            .filter_map(|p| p.metadata.name.clone())
            .collect();
        assert_eq!(order, ["b", "a", "c"]);
    }

    #[test]
    fn unschedulable_waits_for_a_change_then_backs_off() {
        let t0 = Instant::now();
        let mut q = SchedulingQueue::new(BackoffConfig::default());
        q.add_or_update(pod("a", 0), t0);
        assert!(q.pop(t0).is_some());
        q.unschedulable("ns/a", t0);
        assert_eq!(q.place("ns/a"), Some(Place::Unschedulable));
        // The clock alone does not retry it (until the flush).
        assert!(q.pop(t0 + secs(30)).is_none());
        // A change half a second later: still backing off for the first second.
        q.cluster_changed(t0 + Duration::from_millis(500));
        assert_eq!(q.place("ns/a"), Some(Place::Backoff));
        assert_eq!(q.next_wakeup(), Some(t0 + secs(1)));
        assert!(q.pop(t0 + Duration::from_millis(900)).is_none());
        assert!(q.pop(t0 + secs(1)).is_some());
        // Second failure: two seconds.
        q.unschedulable("ns/a", t0 + secs(1));
        q.cluster_changed(t0 + secs(1));
        assert!(q.pop(t0 + Duration::from_millis(2999)).is_none());
        assert!(q.pop(t0 + secs(3)).is_some());
        q.done("ns/a");
        assert!(q.is_empty());
    }

    #[test]
    fn a_first_attempt_missing_an_object_retries_at_once_on_a_change() {
        let t0 = Instant::now();
        let mut q = SchedulingQueue::new(BackoffConfig::default());
        q.add_or_update(pod("a", 0), t0);
        assert!(q.pop(t0).is_some());
        q.awaiting_object("ns/a", t0);
        assert_eq!(q.place("ns/a"), Some(Place::Unschedulable));
        q.cluster_changed(t0);
        assert!(q.pop(t0).is_some(), "no back-off for the first miss");
        // A second miss backs off as usual.
        q.awaiting_object("ns/a", t0);
        q.cluster_changed(t0);
        assert_eq!(q.place("ns/a"), Some(Place::Backoff));
    }

    #[test]
    fn a_change_during_the_attempt_is_not_lost() {
        let t0 = Instant::now();
        let mut q = SchedulingQueue::new(BackoffConfig::default());
        q.add_or_update(pod("a", 0), t0);
        assert!(q.pop(t0).is_some());
        q.cluster_changed(t0);
        q.unschedulable("ns/a", t0);
        assert_eq!(q.place("ns/a"), Some(Place::Backoff));
        assert!(q.pop(t0 + secs(1)).is_some());
    }

    #[test]
    fn unschedulable_pods_are_flushed_eventually() {
        let t0 = Instant::now();
        let config = BackoffConfig::default();
        let mut q = SchedulingQueue::new(config);
        q.add_or_update(pod("a", 0), t0);
        assert!(q.pop(t0).is_some());
        q.unschedulable("ns/a", t0);
        assert_eq!(q.next_wakeup(), Some(t0 + config.unschedulable_flush));
        assert!(q.has_ready(t0 + config.unschedulable_flush));
        assert!(q.pop(t0 + config.unschedulable_flush).is_some());
    }

    #[test]
    fn errors_back_off_and_removal_cleans_up() {
        let t0 = Instant::now();
        let mut q = SchedulingQueue::new(BackoffConfig::default());
        q.add_or_update(pod("a", 0), t0);
        assert!(q.pop(t0).is_some());
        q.error("ns/a", t0);
        assert_eq!(q.place("ns/a"), Some(Place::Backoff));
        assert!(q.remove("ns/a").is_some());
        assert!(q.next_wakeup().is_none());
        assert!(q.pop(t0 + secs(60)).is_none());
    }

    #[test]
    fn spec_updates_wake_an_unschedulable_pod_but_status_updates_do_not() {
        let t0 = Instant::now();
        let mut q = SchedulingQueue::new(BackoffConfig::default());
        q.add_or_update(pod("a", 0), t0);
        assert!(q.pop(t0).is_some());
        q.unschedulable("ns/a", t0);
        let mut status_only = pod("a", 0);
        status_only.status = Some(Default::default());
        q.add_or_update(status_only, t0 + secs(5));
        assert_eq!(q.place("ns/a"), Some(Place::Unschedulable));
        let mut relabelled = pod("a", 0);
        relabelled.metadata.labels = Some([("x".to_string(), "y".to_string())].into());
        q.add_or_update(relabelled, t0 + secs(5));
        assert_eq!(q.place("ns/a"), Some(Place::Active));
    }
}
