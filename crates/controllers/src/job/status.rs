//! The pure parts of a Job sync: conditions, the failure and success rules, and the pod
//! re-creation back-off, with Kubernetes' meanings.

use std::time::Duration;

use k8s_openapi::api::batch::v1::{Job, JobCondition};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::pods;

pub const COMPLETE: &str = "Complete";
pub const FAILED: &str = "Failed";
pub const SUSPENDED: &str = "Suspended";
pub const SUCCESS_CRITERIA_MET: &str = "SuccessCriteriaMet";
pub const FAILURE_TARGET: &str = "FailureTarget";

pub const REASON_BACKOFF_LIMIT: &str = "BackoffLimitExceeded";
pub const REASON_DEADLINE: &str = "DeadlineExceeded";
pub const REASON_COMPLETIONS_REACHED: &str = "CompletionsReached";
pub const MESSAGE_BACKOFF_LIMIT: &str = "Job has reached the specified backoff limit";
pub const MESSAGE_DEADLINE: &str = "Job was active longer than specified deadline";
pub const MESSAGE_COMPLETIONS_REACHED: &str = "Reached expected number of succeeded pods";

/// Where a Job is heading once its remaining pods are gone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Success,
    Failure { reason: String, message: String },
}

impl Target {
    pub fn failure(reason: &str, message: &str) -> Target {
        Target::Failure {
            reason: reason.to_string(),
            message: message.to_string(),
        }
    }
}

pub fn condition<'a>(conditions: &'a [JobCondition], type_: &str) -> Option<&'a JobCondition> {
    conditions.iter().find(|c| c.type_ == type_)
}

pub fn is_true(conditions: &[JobCondition], type_: &str) -> bool {
    condition(conditions, type_).is_some_and(|c| c.status == "True")
}

/// Whether the Job has finished: Complete or Failed is True.
pub fn is_finished(job: &Job) -> bool {
    let conditions = job
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_deref())
        .unwrap_or(&[]);
    is_true(conditions, COMPLETE) || is_true(conditions, FAILED)
}

/// When the Job finished: its completion time, or when its final condition turned True.
pub fn finished_at(job: &Job) -> Option<Time> {
    let status = job.status.as_ref()?;
    if let Some(t) = &status.completion_time {
        return Some(t.clone());
    }
    let conditions = status.conditions.as_deref().unwrap_or(&[]);
    [COMPLETE, FAILED]
        .into_iter()
        .filter_map(|t| condition(conditions, t))
        .find(|c| c.status == "True")
        .and_then(|c| c.last_transition_time.clone())
}

/// The target an earlier sync already recorded as an interim condition.
pub fn recorded_target(conditions: &[JobCondition]) -> Option<Target> {
    if let Some(c) = condition(conditions, FAILURE_TARGET).filter(|c| c.status == "True") {
        return Some(Target::Failure {
            reason: c.reason.clone().unwrap_or_default(),
            message: c.message.clone().unwrap_or_default(),
        });
    }
    is_true(conditions, SUCCESS_CRITERIA_MET).then_some(Target::Success)
}

/// Sets condition `type_` to `status`; `true` if that changed anything. A condition that
/// already has the status keeps its transition time, reason and message (Kubernetes'
/// `ensureJobConditionStatus`); a False condition is never added where there was none.
pub fn set_condition(
    conditions: &mut Vec<JobCondition>,
    type_: &str,
    status: &str,
    reason: &str,
    message: &str,
    now: &Time,
) -> bool {
    match conditions.iter_mut().find(|c| c.type_ == type_) {
        Some(c) if c.status == status => false,
        Some(c) => {
            c.status = status.to_string();
            c.reason = Some(reason.to_string());
            c.message = Some(message.to_string());
            c.last_probe_time = Some(now.clone());
            c.last_transition_time = Some(now.clone());
            true
        }
        None if status == "False" => false,
        None => {
            conditions.push(JobCondition {
                type_: type_.to_string(),
                status: status.to_string(),
                reason: Some(reason.to_string()),
                message: Some(message.to_string()),
                last_probe_time: Some(now.clone()),
                last_transition_time: Some(now.clone()),
            });
            true
        }
    }
}

/// With `restartPolicy: OnFailure` failures show as container restarts of pods still running;
/// Kubernetes' `pastBackoffLimitOnFailure` counts those against the limit.
pub fn past_backoff_limit_on_failure(
    restart_policy: Option<&str>,
    backoff_limit: i32,
    pods: &[std::sync::Arc<Pod>],
) -> bool {
    if restart_policy != Some("OnFailure") {
        return false;
    }
    let restarts: i64 = pods
        .iter()
        .filter(|p| matches!(pods::phase(p), "Running" | "Pending"))
        .filter_map(|p| p.status.as_ref())
        .flat_map(|s| {
            s.init_container_statuses
                .iter()
                .flatten()
                .chain(s.container_statuses.iter().flatten())
        })
        .map(|c| i64::from(c.restart_count))
        .sum();
    if backoff_limit == 0 {
        return restarts > 0;
    }
    restarts >= i64::from(backoff_limit)
}

/// The delay before pods are created again after `failures` consecutive pod failures:
/// `base` doubling per failure, capped at `max` (Kubernetes: 10 s doubling up to 6 min).
pub fn backoff_delay(base: Duration, max: Duration, failures: u32) -> Duration {
    if failures == 0 {
        return Duration::ZERO;
    }
    let exp = (failures - 1).min(30);
    base.saturating_mul(1u32 << exp).min(max)
}

/// How many pods a NonIndexed Job wants running (Kubernetes' `wantActive`).
pub fn want_active(completions: Option<i32>, parallelism: i32, succeeded: i32, active: i32) -> i32 {
    match completions {
        // Work queue: once any pod succeeded, the rest may finish but none are added.
        None if succeeded > 0 => active.min(parallelism),
        None => parallelism,
        Some(c) => (c - succeeded).clamp(0, parallelism.max(0)),
    }
}

/// Whether a Job's success criteria are met once `active` pods remain.
pub fn succeeded_enough(completions: Option<i32>, succeeded: i32, active: i32) -> bool {
    if active > 0 {
        return false;
    }
    match completions {
        None => succeeded > 0,
        Some(c) => succeeded >= c,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{ContainerStatus, PodStatus};
    use k8s_openapi::jiff::Timestamp;
    use std::sync::Arc;

    fn time(s: &str) -> Time {
        Time(s.parse::<Timestamp>().expect("timestamp"))
    }

    #[test]
    fn conditions_change_only_on_a_new_status() {
        let mut conds = Vec::new();
        let t1 = time("2024-01-01T00:00:00Z");
        let t2 = time("2024-01-01T00:01:00Z");
        assert!(!set_condition(
            &mut conds,
            SUSPENDED,
            "False",
            "JobResumed",
            "m",
            &t1
        ));
        assert!(conds.is_empty());
        assert!(set_condition(
            &mut conds,
            SUSPENDED,
            "True",
            "JobSuspended",
            "m",
            &t1
        ));
        assert!(!set_condition(
            &mut conds, SUSPENDED, "True", "Other", "x", &t2
        ));
        assert_eq!(conds[0].last_transition_time, Some(t1.clone()));
        assert!(set_condition(
            &mut conds,
            SUSPENDED,
            "False",
            "JobResumed",
            "r",
            &t2
        ));
        assert_eq!(conds[0].reason.as_deref(), Some("JobResumed"));
        assert_eq!(conds[0].last_transition_time, Some(t2));
    }

    #[test]
    fn recorded_targets() {
        let now = time("2024-01-01T00:00:00Z");
        let mut conds = Vec::new();
        assert_eq!(recorded_target(&conds), None);
        set_condition(&mut conds, SUCCESS_CRITERIA_MET, "True", "r", "m", &now);
        assert_eq!(recorded_target(&conds), Some(Target::Success));
        set_condition(
            &mut conds,
            FAILURE_TARGET,
            "True",
            REASON_DEADLINE,
            MESSAGE_DEADLINE,
            &now,
        );
        assert_eq!(
            recorded_target(&conds),
            Some(Target::failure(REASON_DEADLINE, MESSAGE_DEADLINE))
        );
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let base = Duration::from_secs(10);
        let max = Duration::from_secs(360);
        assert_eq!(backoff_delay(base, max, 0), Duration::ZERO);
        assert_eq!(backoff_delay(base, max, 1), Duration::from_secs(10));
        assert_eq!(backoff_delay(base, max, 3), Duration::from_secs(40));
        assert_eq!(backoff_delay(base, max, 6), Duration::from_secs(320));
        assert_eq!(backoff_delay(base, max, 7), max);
        assert_eq!(backoff_delay(base, max, 1000), max);
    }

    #[test]
    fn wanted_pods() {
        assert_eq!(want_active(Some(5), 2, 0, 0), 2);
        assert_eq!(want_active(Some(5), 2, 4, 1), 1);
        assert_eq!(want_active(Some(5), 2, 6, 0), 0);
        assert_eq!(want_active(None, 3, 0, 1), 3);
        assert_eq!(want_active(None, 3, 1, 2), 2);
        assert!(succeeded_enough(Some(2), 2, 0));
        assert!(!succeeded_enough(Some(2), 2, 1));
        assert!(succeeded_enough(None, 1, 0));
        assert!(!succeeded_enough(None, 0, 0));
    }

    #[test]
    fn restarts_count_for_on_failure() {
        let pod = |phase: &str, restarts: i32| {
            Arc::new(Pod {
                status: Some(PodStatus {
                    phase: Some(phase.into()),
                    container_statuses: Some(vec![ContainerStatus {
                        restart_count: restarts,
                        ..ContainerStatus::default()
                    }]),
                    ..PodStatus::default()
                }),
                ..Pod::default()
            })
        };
        let pods = vec![pod("Running", 2), pod("Failed", 9)];
        assert!(!past_backoff_limit_on_failure(Some("Never"), 1, &pods));
        assert!(past_backoff_limit_on_failure(Some("OnFailure"), 2, &pods));
        assert!(!past_backoff_limit_on_failure(Some("OnFailure"), 3, &pods));
        assert!(!past_backoff_limit_on_failure(
            Some("OnFailure"),
            0,
            &[pod("Running", 0)]
        ));
        assert!(past_backoff_limit_on_failure(
            Some("OnFailure"),
            0,
            &[pod("Running", 1)]
        ));
    }
}
