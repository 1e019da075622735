//! Taint-based eviction timing, as Kubernetes' taint eviction controller computes it: a pod
//! on a node with NoExecute taints stays as long as the shortest `tolerationSeconds` among
//! the tolerations it uses for them, forever if none of those has a limit, and not at all if
//! one taint is not tolerated.

use std::time::Duration;

use k8s_openapi::api::core::v1::{Taint, Toleration};
use wasmkube_scheduler::filters::toleration_matches;

use super::health::{TAINT_NOT_READY, TAINT_UNREACHABLE};

/// How long a pod may stay on a node with `taints`: `None` for ever, `Some(ZERO)` not at
/// all. Only NoExecute taints count. A pod that does not tolerate the not-ready or
/// unreachable taint is treated as tolerating it for `default_toleration` (what Kubernetes'
/// DefaultTolerationSeconds admission would have given it at creation).
pub fn allowed_stay(
    tolerations: &[Toleration],
    taints: &[Taint],
    default_toleration: Duration,
) -> Option<Duration> {
    let mut stay: Option<Duration> = None;
    let mut shorten = |d: Duration| {
        stay = Some(stay.map_or(d, |s| s.min(d)));
    };
    for taint in taints.iter().filter(|t| t.effect == "NoExecute") {
        // Kubernetes uses the first toleration that matches each taint.
        match tolerations.iter().find(|t| toleration_matches(t, taint)) {
            Some(t) => {
                if let Some(secs) = t.toleration_seconds {
                    shorten(Duration::from_secs(u64::try_from(secs).unwrap_or(0)));
                }
            }
            None if taint.key == TAINT_NOT_READY || taint.key == TAINT_UNREACHABLE => {
                shorten(default_toleration);
            }
            None => return Some(Duration::ZERO),
        }
    }
    stay
}

/// Whether any taint is NoExecute (the pods of a node without one are never evicted).
pub fn has_no_execute(taints: &[Taint]) -> bool {
    taints.iter().any(|t| t.effect == "NoExecute")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn taint(key: &str, effect: &str) -> Taint {
        Taint {
            key: key.into(),
            effect: effect.into(),
            ..Taint::default()
        }
    }

    fn tolerate(key: &str, seconds: Option<i64>) -> Toleration {
        Toleration {
            key: Some(key.into()),
            operator: Some("Exists".into()),
            effect: Some("NoExecute".into()),
            toleration_seconds: seconds,
            value: None,
        }
    }

    const DEFAULT: Duration = Duration::from_secs(300);

    #[test]
    fn toleration_seconds_decide() {
        let unreachable = [taint(TAINT_UNREACHABLE, "NoExecute")];
        assert_eq!(
            allowed_stay(
                &[tolerate(TAINT_UNREACHABLE, Some(1))],
                &unreachable,
                DEFAULT
            ),
            Some(Duration::from_secs(1))
        );
        // Without a limit the pod stays for ever (a DaemonSet pod).
        assert_eq!(
            allowed_stay(&[tolerate(TAINT_UNREACHABLE, None)], &unreachable, DEFAULT),
            None
        );
        // Without a toleration: the default for not-ready / unreachable ...
        assert_eq!(allowed_stay(&[], &unreachable, DEFAULT), Some(DEFAULT));
        // ... and at once for any other NoExecute taint.
        let other = [
            taint("dedicated", "NoExecute"),
            taint(TAINT_UNREACHABLE, "NoExecute"),
        ];
        assert_eq!(
            allowed_stay(&[tolerate(TAINT_UNREACHABLE, Some(100))], &other, DEFAULT),
            Some(Duration::ZERO)
        );
        // The shortest limit among the used tolerations wins.
        let both = [
            taint("dedicated", "NoExecute"),
            taint(TAINT_UNREACHABLE, "NoExecute"),
        ];
        let tols = [
            tolerate("dedicated", Some(30)),
            tolerate(TAINT_UNREACHABLE, Some(100)),
        ];
        assert_eq!(
            allowed_stay(&tols, &both, DEFAULT),
            Some(Duration::from_secs(30))
        );
        // NoSchedule taints never evict; negative seconds mean at once.
        assert_eq!(
            allowed_stay(&[], &[taint("x", "NoSchedule")], DEFAULT),
            None
        );
        assert_eq!(
            allowed_stay(
                &[tolerate(TAINT_UNREACHABLE, Some(-5))],
                &unreachable,
                DEFAULT
            ),
            Some(Duration::ZERO)
        );
    }
}
