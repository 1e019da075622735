//! A work queue of object keys (`namespace/name`) with client-go's guarantees: a key waiting
//! in the queue is held once however often it is added, and a key being processed by one worker
//! is never handed to another until that worker is done with it (an add meanwhile queues it
//! again for afterwards). Keys can also be added after a delay, or with a per-key exponential
//! back-off after failures.
//!
//! Controllers sync whole objects from their caches, so collapsing a burst of events about one
//! object into one sync is both correct and what keeps them fast.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// First retry delay after a failure; doubles per consecutive failure of the same key.
const BACKOFF_BASE: Duration = Duration::from_millis(5);
/// Longest retry delay (client-go uses 1000 s; a small cluster prefers to retry sooner).
const BACKOFF_MAX: Duration = Duration::from_secs(30);

#[derive(Default)]
struct Inner {
    queue: VecDeque<String>,
    /// Keys that need processing: queued, or added again while being processed.
    dirty: HashSet<String>,
    processing: HashSet<String>,
    /// Consecutive failures per key, for the back-off.
    failures: HashMap<String, u32>,
    /// The earliest pending delayed add per key, so a flood of delayed adds spawns one timer.
    delayed: HashMap<String, Instant>,
}

pub struct WorkQueue {
    inner: Mutex<Inner>,
    notify: Notify,
    shutdown: CancellationToken,
}

impl WorkQueue {
    pub fn new(shutdown: CancellationToken) -> Arc<Self> {
        Arc::new(WorkQueue {
            inner: Mutex::new(Inner::default()),
            notify: Notify::new(),
            shutdown,
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves plain collections behind, still consistent
        // enough to keep serving keys.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `key` unless it is already waiting.
    pub fn add(&self, key: impl Into<String>) {
        let key = key.into();
        let mut inner = self.lock();
        if !inner.dirty.insert(key.clone()) {
            return;
        }
        if !inner.processing.contains(&key) {
            inner.queue.push_back(key);
            drop(inner);
            self.notify.notify_one();
        }
    }

    /// Queues `key` once `delay` has passed (at once for a zero delay).
    pub fn add_after(self: &Arc<Self>, key: impl Into<String>, delay: Duration) {
        let key = key.into();
        if delay.is_zero() {
            self.add(key);
            return;
        }
        let at = Instant::now() + delay;
        {
            let mut inner = self.lock();
            match inner.delayed.get(&key) {
                Some(existing) if *existing <= at => return,
                _ => {
                    inner.delayed.insert(key.clone(), at);
                }
            }
        }
        let queue = Arc::downgrade(self);
        let shutdown = self.shutdown.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = tokio::time::sleep_until(at) => {}
                _ = shutdown.cancelled() => return,
            }
            let Some(queue) = queue.upgrade() else { return };
            {
                let mut inner = queue.lock();
                if inner.delayed.get(&key) == Some(&at) {
                    inner.delayed.remove(&key);
                }
            }
            queue.add(key);
        });
    }

    /// Queues `key` after a back-off that grows with its consecutive failures.
    pub fn add_rate_limited(self: &Arc<Self>, key: &str) {
        let failures = {
            let mut inner = self.lock();
            let n = inner.failures.entry(key.to_string()).or_insert(0);
            *n = n.saturating_add(1);
            *n
        };
        self.add_after(key, backoff(failures));
    }

    /// Clears the failure count of `key` after a successful sync.
    pub fn forget(&self, key: &str) {
        self.lock().failures.remove(key);
    }

    /// The next key to process, waiting for one; `None` once shut down. The caller must call
    /// [`WorkQueue::done`] with it afterwards.
    pub async fn get(&self) -> Option<String> {
        loop {
            if self.shutdown.is_cancelled() {
                return None;
            }
            {
                let mut inner = self.lock();
                if let Some(key) = inner.queue.pop_front() {
                    inner.dirty.remove(&key);
                    inner.processing.insert(key.clone());
                    return Some(key);
                }
            }
            // `notify_one` stores a permit when nobody waits, so an add between the check
            // above and this wait is not lost.
            tokio::select! {
                _ = self.notify.notified() => {}
                _ = self.shutdown.cancelled() => return None,
            }
        }
    }

    /// Marks `key` processed; if it was added meanwhile it is queued again.
    pub fn done(&self, key: &str) {
        let mut inner = self.lock();
        inner.processing.remove(key);
        if inner.dirty.contains(key) {
            inner.queue.push_back(key.to_string());
            drop(inner);
            self.notify.notify_one();
        }
    }

    /// Keys waiting (not counting those being processed).
    pub fn len(&self) -> usize {
        self.lock().queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The delay before retry number `failures` (1-based).
pub fn backoff(failures: u32) -> Duration {
    let exp = failures.saturating_sub(1).min(20);
    BACKOFF_BASE.saturating_mul(1u32 << exp).min(BACKOFF_MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn dedups_and_holds_keys_being_processed() {
        let q = WorkQueue::new(CancellationToken::new());
        q.add("a");
        q.add("a");
        q.add("b");
        assert_eq!(q.len(), 2);
        let first = q.get().await;
        assert_eq!(first.as_deref(), Some("a"));
        // Added while processing: not handed out again until done.
        q.add("a");
        assert_eq!(q.get().await.as_deref(), Some("b"));
        assert!(q.is_empty());
        q.done("a");
        assert_eq!(q.get().await.as_deref(), Some("a"));
        q.done("a");
        q.done("b");
        assert!(q.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn delayed_adds_keep_the_earliest() {
        let q = WorkQueue::new(CancellationToken::new());
        q.add_after("a", Duration::from_secs(10));
        q.add_after("a", Duration::from_secs(1));
        q.add_after("a", Duration::from_secs(5));
        let got = tokio::time::timeout(Duration::from_secs(2), q.get()).await;
        assert_eq!(got.ok().flatten().as_deref(), Some("a"));
    }

    #[tokio::test]
    async fn shutdown_ends_get() {
        let token = CancellationToken::new();
        let q = WorkQueue::new(token.clone());
        token.cancel();
        assert_eq!(q.get().await, None);
    }

    #[test]
    fn backoff_grows_and_caps() {
        assert_eq!(backoff(1), Duration::from_millis(5));
        assert_eq!(backoff(2), Duration::from_millis(10));
        assert_eq!(backoff(100), BACKOFF_MAX);
    }
}
