//! Exponential back-off for restarting crashed containers (`CrashLoopBackOff`) and retrying
//! image pulls (`ImagePullBackOff`), with Kubernetes' numbers: 10 s doubling to 5 min, forgotten
//! after a container has run for 10 min without failing.

use std::time::Duration;

/// The back-off parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackoffPolicy {
    pub initial: Duration,
    pub max: Duration,
    /// A container that ran at least this long before it exited starts over at `initial`.
    pub reset_after: Duration,
}

impl Default for BackoffPolicy {
    fn default() -> Self {
        BackoffPolicy {
            initial: Duration::from_secs(10),
            max: Duration::from_secs(300),
            reset_after: Duration::from_secs(600),
        }
    }
}

/// The back-off state of one container (or one image).
#[derive(Debug, Clone, Default)]
pub struct Backoff {
    /// The delay the next failure will wait; None until the first failure.
    current: Option<Duration>,
}

impl Backoff {
    /// Records a failure after `ran` of running and returns how long to wait before the next
    /// attempt. As in the kubelet, the first failure is retried at once; each further one
    /// waits twice as long as the last, up to `max`.
    pub fn failure(&mut self, policy: &BackoffPolicy, ran: Duration) -> Duration {
        if ran >= policy.reset_after {
            self.current = None;
        }
        match self.current {
            None => {
                self.current = Some(policy.initial);
                Duration::ZERO
            }
            Some(d) => {
                self.current = Some((d * 2).min(policy.max));
                d
            }
        }
    }

    /// The delay a pull failure waits: pulls back off from the first failure.
    pub fn pull_failure(&mut self, policy: &BackoffPolicy) -> Duration {
        let d = self.current.unwrap_or(policy.initial);
        self.current = Some((d * 2).min(policy.max));
        d
    }

    pub fn reset(&mut self) {
        self.current = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_to_the_cap_and_resets_after_a_long_run() {
        let p = BackoffPolicy::default();
        let mut b = Backoff::default();
        let short = Duration::from_secs(1);
        let delays: Vec<u64> = (0..8).map(|_| b.failure(&p, short).as_secs()).collect();
        assert_eq!(delays, vec![0, 10, 20, 40, 80, 160, 300, 300]);
        assert_eq!(b.failure(&p, Duration::from_secs(601)), Duration::ZERO);
        assert_eq!(b.failure(&p, short), Duration::from_secs(10));
    }

    #[test]
    fn pulls_back_off_from_the_first_failure() {
        let p = BackoffPolicy::default();
        let mut b = Backoff::default();
        assert_eq!(b.pull_failure(&p), Duration::from_secs(10));
        assert_eq!(b.pull_failure(&p), Duration::from_secs(20));
        b.reset();
        assert_eq!(b.pull_failure(&p), Duration::from_secs(10));
    }
}
