//! Controller expectations, as in Kubernetes' `ControllerExpectations`: after a controller asks
//! for N pods to be created (or named pods deleted) it records that it expects to *see* those
//! changes in its watch cache, and does not act on the cache again until it has. Without this
//! a sync that runs before the cache caught up would count too few pods and create more.
//!
//! Expectations expire after [`TTL`] so that a lost watch event can only delay a controller,
//! never wedge it.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How long unmet expectations are trusted (Kubernetes' `ExpectationsTimeout`).
pub const TTL: Duration = Duration::from_secs(5 * 60);

#[derive(Debug)]
struct Expectation {
    creations: i64,
    /// Keys (`namespace/name`) of the pods whose deletion is still to be seen.
    deletions: HashSet<String>,
    set_at: Instant,
}

#[derive(Debug, Default)]
pub struct Expectations {
    inner: Mutex<HashMap<String, Expectation>>,
}

impl Expectations {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Expectation>> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether the controller of `key` may trust its cache: everything it expected has been
    /// seen, or it expects nothing, or its expectations are too old to trust.
    pub fn satisfied(&self, key: &str) -> bool {
        match self.lock().get(key) {
            None => true,
            Some(e) => (e.creations <= 0 && e.deletions.is_empty()) || e.set_at.elapsed() > TTL,
        }
    }

    /// Expects `n` new pods for `key` (replacing whatever was expected before).
    pub fn expect_creations(&self, key: &str, n: usize) {
        self.lock().insert(
            key.to_string(),
            Expectation {
                creations: i64::try_from(n).unwrap_or(i64::MAX),
                deletions: HashSet::new(),
                set_at: Instant::now(),
            },
        );
    }

    /// Expects the deletion of these pods for `key` (replacing whatever was expected before).
    pub fn expect_deletions(&self, key: &str, pods: impl IntoIterator<Item = String>) {
        self.lock().insert(
            key.to_string(),
            Expectation {
                creations: 0,
                deletions: pods.into_iter().collect(),
                set_at: Instant::now(),
            },
        );
    }

    /// One expected pod of `key` was seen, or will never come (its create failed).
    pub fn creation_observed(&self, key: &str) {
        if let Some(e) = self.lock().get_mut(key) {
            e.creations -= 1;
        }
    }

    /// Lowers the expected creations by `n` (creates that were skipped or failed).
    pub fn lower_creations(&self, key: &str, n: usize) {
        if let Some(e) = self.lock().get_mut(key) {
            e.creations -= i64::try_from(n).unwrap_or(i64::MAX);
        }
    }

    /// The deletion of `pod` was seen (or will never be: its delete failed).
    pub fn deletion_observed(&self, key: &str, pod: &str) {
        if let Some(e) = self.lock().get_mut(key) {
            e.deletions.remove(pod);
        }
    }

    /// Forgets `key` (its controller object is gone).
    pub fn delete(&self, key: &str) {
        self.lock().remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creations_and_deletions() {
        let e = Expectations::new();
        assert!(e.satisfied("ns/rs"));
        e.expect_creations("ns/rs", 3);
        assert!(!e.satisfied("ns/rs"));
        e.creation_observed("ns/rs");
        e.lower_creations("ns/rs", 1);
        assert!(!e.satisfied("ns/rs"));
        e.creation_observed("ns/rs");
        assert!(e.satisfied("ns/rs"));

        e.expect_deletions("ns/rs", ["ns/a".to_string(), "ns/b".to_string()]);
        e.deletion_observed("ns/rs", "ns/a");
        // Seeing the same deletion twice must not count for another pod.
        e.deletion_observed("ns/rs", "ns/a");
        assert!(!e.satisfied("ns/rs"));
        e.deletion_observed("ns/rs", "ns/b");
        assert!(e.satisfied("ns/rs"));
        e.delete("ns/rs");
        assert!(e.satisfied("ns/rs"));
    }
}
