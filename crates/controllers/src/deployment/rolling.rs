//! The arithmetic of a Deployment rollout, as pure functions over replica counts: how far the
//! new ReplicaSet may surge, how many old replicas may go, and how a resize spreads over the
//! ReplicaSets of a rollout in progress. These are Kubernetes' deployment-controller rules
//! (`NewRSNewReplicas`, `reconcileOldReplicaSets`, `scale`), kept free of API calls so they can
//! be tested exhaustively.
//!
//! One deliberate difference: an old ReplicaSet counts at most `spec.replicas` available pods.
//! Its status can lag behind a scale-down we just made, and trusting the stale count could let
//! a following step remove pods that are already going, dropping below `maxUnavailable`.

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("invalid value for an int or percentage: {0:?}")]
    IntOrPercent(String),
}

/// An int, or a percentage of `total` rounded up or down. A string without `%` that is a
/// plain number is read as that number.
pub fn scaled_value(value: &IntOrString, total: i32, round_up: bool) -> Result<i32, Error> {
    match value {
        IntOrString::Int(n) => Ok(*n),
        IntOrString::String(s) => {
            let bad = || Error::IntOrPercent(s.clone());
            match s.strip_suffix('%') {
                Some(p) => {
                    let p: i64 = p.trim().parse().map_err(|_| bad())?;
                    let scaled = p * i64::from(total);
                    let v = if round_up {
                        scaled.div_euclid(100) + i64::from(scaled.rem_euclid(100) != 0)
                    } else {
                        scaled.div_euclid(100)
                    };
                    i32::try_from(v).map_err(|_| bad())
                }
                None => s.trim().parse().map_err(|_| bad()),
            }
        }
    }
}

/// (maxSurge, maxUnavailable) as counts for `desired` replicas: surge rounds up, unavailable
/// rounds down, and if both come out 0 unavailable becomes 1 so a rollout can progress.
pub fn resolve_fenceposts(
    max_surge: Option<&IntOrString>,
    max_unavailable: Option<&IntOrString>,
    desired: i32,
) -> Result<(i32, i32), Error> {
    let zero = IntOrString::Int(0);
    let surge = scaled_value(max_surge.unwrap_or(&zero), desired, true)?;
    let unavailable = scaled_value(max_unavailable.unwrap_or(&zero), desired, false)?;
    if surge == 0 && unavailable == 0 {
        return Ok((0, 1));
    }
    Ok((surge, unavailable))
}

/// A ReplicaSet as the arithmetic sees it: `spec.replicas` and `status.availableReplicas`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub replicas: i32,
    pub available: i32,
}

impl Counts {
    /// Available pods that will still be there once the ReplicaSet reaches its spec.
    pub fn effective_available(&self) -> i32 {
        self.available.min(self.replicas).max(0)
    }
}

/// The size the new ReplicaSet may grow to in one step of a rolling update, given the sum of
/// `spec.replicas` over all ReplicaSets of the Deployment.
pub fn new_rs_replicas(
    desired: i32,
    max_surge: i32,
    total_replicas: i32,
    new_replicas: i32,
) -> i32 {
    let max_total = desired + max_surge;
    if total_replicas >= max_total {
        return new_replicas;
    }
    let scale_up = (max_total - total_replicas).min(desired - new_replicas);
    new_replicas + scale_up.max(0)
}

/// One step of scaling down old ReplicaSets (`old` oldest first, all with replicas > 0 or
/// not): returns their new `spec.replicas`. First unhealthy replicas are removed (they cost no
/// availability), then healthy ones as far as `desired - max_unavailable` available pods
/// allow, counting the new ReplicaSet's available pods.
pub fn scale_down_old(desired: i32, max_unavailable: i32, new: Counts, old: &[Counts]) -> Vec<i32> {
    let mut targets: Vec<i32> = old.iter().map(|c| c.replicas).collect();
    let old_total: i32 = old.iter().map(|c| c.replicas).sum();
    if old_total == 0 {
        return targets;
    }
    let all_total = old_total + new.replicas;
    let min_available = desired - max_unavailable;
    let new_unavailable = new.replicas - new.effective_available();
    let max_scaled_down = all_total - min_available - new_unavailable;
    if max_scaled_down <= 0 {
        return targets;
    }
    // Unhealthy replicas first.
    let mut cleaned = 0;
    for (i, c) in old.iter().enumerate() {
        if cleaned >= max_scaled_down {
            break;
        }
        let unhealthy = c.replicas - c.effective_available();
        if c.replicas == 0 || unhealthy == 0 {
            continue;
        }
        let down = (max_scaled_down - cleaned).min(unhealthy);
        targets[i] -= down;
        cleaned += down;
    }
    // Then healthy ones, keeping `min_available`.
    let available: i32 = old
        .iter()
        .zip(&targets)
        .map(|(c, t)| c.available.min(*t).max(0))
        .sum::<i32>()
        + new.effective_available();
    if available <= min_available {
        return targets;
    }
    let to_scale_down = available - min_available;
    let mut scaled = 0;
    for t in targets.iter_mut() {
        if scaled >= to_scale_down {
            break;
        }
        if *t == 0 {
            continue;
        }
        let down = (*t).min(to_scale_down - scaled);
        *t -= down;
        scaled += down;
    }
    targets
}

/// A ReplicaSet as proportional scaling sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sized {
    pub replicas: i32,
    /// Its `deployment.kubernetes.io/max-replicas` annotation.
    pub max_replicas: Option<i32>,
    /// Position in creation order (higher is newer).
    pub age_rank: usize,
}

/// New sizes for the active ReplicaSets of a Deployment resized in the middle of a rollout:
/// the change is spread in proportion to each one's share of the previous size (as recorded
/// in its max-replicas annotation), larger ReplicaSets first, and any rounding leftover goes
/// to the first. `status_replicas` stands in for a missing annotation.
pub fn proportional_sizes(
    rss: &[Sized],
    desired: i32,
    max_surge: i32,
    status_replicas: i32,
) -> Vec<i32> {
    let current: i32 = rss.iter().map(|r| r.replicas).sum();
    let allowed = if desired > 0 { desired + max_surge } else { 0 };
    let to_add = allowed - current;
    let mut order: Vec<usize> = (0..rss.len()).collect();
    order.sort_by(|&a, &b| {
        let (ra, rb) = (&rss[a], &rss[b]);
        rb.replicas.cmp(&ra.replicas).then_with(|| {
            if to_add > 0 {
                rb.age_rank.cmp(&ra.age_rank)
            } else {
                ra.age_rank.cmp(&rb.age_rank)
            }
        })
    });
    let mut sizes: Vec<i32> = rss.iter().map(|r| r.replicas).collect();
    let mut added = 0;
    if to_add != 0 {
        for &i in &order {
            let rs = &rss[i];
            let proportion = if rs.replicas == 0 || to_add == added {
                0
            } else {
                let fraction = if desired == 0 {
                    -rs.replicas
                } else {
                    let previous = rs.max_replicas.unwrap_or(status_replicas);
                    if previous <= 0 {
                        0
                    } else {
                        let size =
                            f64::from(rs.replicas) * f64::from(allowed) / f64::from(previous);
                        // Saturating float-to-int conversion, then the difference.
                        (size.round() as i32).saturating_sub(rs.replicas)
                    }
                };
                let left = to_add - added;
                if to_add > 0 {
                    fraction.min(left)
                } else {
                    fraction.max(left)
                }
            };
            sizes[i] += proportion;
            added += proportion;
        }
    }
    if added != to_add
        && let Some(&first) = order.first()
    {
        sizes[first] = (sizes[first] + to_add - added).max(0);
    }
    sizes
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn pct(s: &str) -> IntOrString {
        IntOrString::String(s.to_string())
    }

    #[test]
    fn percentages_round_the_kubernetes_way() {
        assert_eq!(scaled_value(&pct("25%"), 10, true), Ok(3));
        assert_eq!(scaled_value(&pct("25%"), 10, false), Ok(2));
        assert_eq!(scaled_value(&pct("100%"), 7, false), Ok(7));
        assert_eq!(scaled_value(&pct("0%"), 7, true), Ok(0));
        assert_eq!(scaled_value(&IntOrString::Int(4), 7, true), Ok(4));
        assert_eq!(scaled_value(&pct("3"), 7, true), Ok(3));
        assert!(scaled_value(&pct("x%"), 7, true).is_err());
    }

    #[test]
    fn fenceposts() {
        // The defaults, 25% / 25%, for 3 replicas: surge 1 (0.75 up), unavailable 0 (down).
        assert_eq!(
            resolve_fenceposts(Some(&pct("25%")), Some(&pct("25%")), 3),
            Ok((1, 0))
        );
        // Both zero can never progress: Kubernetes allows one unavailable.
        assert_eq!(
            resolve_fenceposts(Some(&IntOrString::Int(0)), Some(&pct("10%")), 5),
            Ok((0, 1))
        );
        assert_eq!(resolve_fenceposts(None, None, 5), Ok((0, 1)));
    }

    #[test]
    fn surge_is_bounded_by_total_and_desired() {
        // 10 wanted, surge 3: 10 old + 0 new may add 3.
        assert_eq!(new_rs_replicas(10, 3, 10, 0), 3);
        // Already at the limit: no change.
        assert_eq!(new_rs_replicas(10, 3, 13, 3), 3);
        // Never past the desired count.
        assert_eq!(new_rs_replicas(10, 3, 9, 9), 10);
    }

    #[test]
    fn old_scale_down_respects_availability() {
        let c = |replicas, available| Counts {
            replicas,
            available,
        };
        // 4 wanted, maxUnavailable 1: 4 old available, 1 new not yet: one old may go.
        assert_eq!(scale_down_old(4, 1, c(1, 0), &[c(4, 4)]), vec![3]);
        // The new pod is available: another old one may go.
        assert_eq!(scale_down_old(4, 1, c(1, 1), &[c(3, 3)]), vec![2]);
        // Two new pods, one available: still only one may go.
        assert_eq!(scale_down_old(4, 1, c(2, 1), &[c(3, 3)]), vec![2]);
        // Unhealthy old replicas go first, without touching availability.
        assert_eq!(scale_down_old(4, 0, c(1, 1), &[c(4, 2)]), vec![3]);
        // Nothing to scale down.
        assert_eq!(scale_down_old(4, 1, c(4, 4), &[c(0, 0)]), vec![0]);
        // A stale status (more available than replicas) is not trusted.
        assert_eq!(scale_down_old(4, 1, c(2, 2), &[c(2, 3)]), vec![1]);
    }

    #[test]
    fn proportional_scaling_spreads_the_change() {
        let s = |replicas, max, age| Sized {
            replicas,
            max_replicas: Some(max),
            age_rank: age,
        };
        // Deployment of 10 (surge 3, so 13 allowed) mid-rollout at 8 old + 5 new, resized to
        // 20 (surge 5, 25 allowed): 12 more spread 8:5.
        let sizes = proportional_sizes(&[s(8, 13, 0), s(5, 13, 1)], 20, 5, 13);
        assert_eq!(sizes.iter().sum::<i32>(), 25);
        assert_eq!(sizes, vec![15, 10]);
        // Scaled to zero: everything goes.
        assert_eq!(
            proportional_sizes(&[s(8, 13, 0), s(5, 13, 1)], 0, 0, 13),
            vec![0, 0]
        );
    }

    /// A rollout simulated step by step: the controller acts (grow the new ReplicaSet, or
    /// shrink old ones), then the "kubelet" makes some new pods available.
    #[derive(Debug)]
    struct Rollout {
        desired: i32,
        surge: i32,
        unavailable: i32,
        new: Counts,
        old: Vec<Counts>,
    }

    impl Rollout {
        fn total(&self) -> i32 {
            self.new.replicas + self.old.iter().map(|c| c.replicas).sum::<i32>()
        }
        fn available(&self) -> i32 {
            self.new.effective_available()
                + self
                    .old
                    .iter()
                    .map(Counts::effective_available)
                    .sum::<i32>()
        }
        fn done(&self) -> bool {
            self.new.replicas == self.desired
                && self.new.available == self.desired
                && self.old.iter().all(|c| c.replicas == 0)
        }
        /// One controller step, as `rolloutRolling` takes it.
        fn step(&mut self) {
            let grown = new_rs_replicas(self.desired, self.surge, self.total(), self.new.replicas);
            if grown != self.new.replicas {
                self.new.replicas = grown;
                return;
            }
            let targets = scale_down_old(self.desired, self.unavailable, self.new, &self.old);
            for (c, t) in self.old.iter_mut().zip(targets) {
                // A ReplicaSet scaling down deletes unavailable pods first.
                c.replicas = t;
                c.available = c.available.min(t);
            }
        }
    }

    fn arb_int_or_percent() -> impl Strategy<Value = IntOrString> {
        prop_oneof![
            (0i32..6).prop_map(IntOrString::Int),
            (0i32..=100).prop_map(|p| IntOrString::String(format!("{p}%"))),
        ]
    }

    proptest! {
        /// At every step of a rollout from a fully available Deployment: never more than
        /// replicas + maxSurge pods, never fewer than replicas - maxUnavailable available;
        /// and the rollout finishes.
        #[test]
        fn rollout_invariants(
            desired in 1i32..30,
            max_surge in arb_int_or_percent(),
            max_unavailable in arb_int_or_percent(),
            older in 0i32..4,
            progress in prop::collection::vec(0i32..4, 400),
        ) {
            let (surge, unavailable) =
                resolve_fenceposts(Some(&max_surge), Some(&max_unavailable), desired)
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
            let unavailable = unavailable.min(desired);
            // A steady state, possibly with fully scaled-down older ReplicaSets from earlier
            // rollouts.
            let mut old = vec![Counts { replicas: desired, available: desired }];
            for _ in 0..older {
                old.insert(0, Counts { replicas: 0, available: 0 });
            }
            let mut r = Rollout { desired, surge, unavailable, new: Counts { replicas: 0, available: 0 }, old };
            let min_available = desired - unavailable;
            let max_total = desired + surge;
            let mut steps = 0;
            for p in progress {
                if r.done() {
                    break;
                }
                r.step();
                prop_assert!(r.total() <= max_total, "{r:?} exceeds {max_total}");
                prop_assert!(r.available() >= min_available, "{r:?} below {min_available}");
                // The kubelet: at least one not-yet-available new pod becomes available.
                let waiting = r.new.replicas - r.new.available;
                r.new.available += waiting.min(p.max(1));
                prop_assert!(r.available() >= min_available);
                steps += 1;
            }
            prop_assert!(r.done(), "rollout stuck after {steps} steps: {r:?}");
        }

        /// Proportional scaling lands exactly on the allowed size and never goes negative.
        #[test]
        fn proportional_sizes_sum_to_allowed(
            sizes in prop::collection::vec((1i32..50, prop::option::of(1i32..80)), 1..5),
            desired in 0i32..100,
            surge in 0i32..10,
            status_replicas in 0i32..100,
        ) {
            let rss: Vec<Sized> = sizes
                .iter()
                .enumerate()
                .map(|(i, (replicas, max))| Sized { replicas: *replicas, max_replicas: *max, age_rank: i })
                .collect();
            let out = proportional_sizes(&rss, desired, surge, status_replicas);
            prop_assert!(out.iter().all(|s| *s >= 0));
            let allowed = if desired > 0 { desired + surge } else { 0 };
            let current: i32 = rss.iter().map(|r| r.replicas).sum();
            if allowed >= current {
                prop_assert_eq!(out.iter().sum::<i32>(), allowed);
            } else {
                // Only the clamp at zero can leave more than allowed.
                prop_assert!(out.iter().sum::<i32>() >= allowed);
            }
        }
    }
}
