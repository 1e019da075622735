//! Deployment helpers with Kubernetes' `deploymentutil` meanings: the pod-template hash,
//! revision and replica annotations, conditions, and ReplicaSet orderings.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentCondition, DeploymentStatus, ReplicaSet};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use serde_json::Value;

use super::rolling;
use crate::events::now_time;

pub const REVISION: &str = "deployment.kubernetes.io/revision";
pub const REVISION_HISTORY: &str = "deployment.kubernetes.io/revision-history";
pub const DESIRED_REPLICAS: &str = "deployment.kubernetes.io/desired-replicas";
pub const MAX_REPLICAS: &str = "deployment.kubernetes.io/max-replicas";
pub const POD_TEMPLATE_HASH: &str = "pod-template-hash";
/// Annotations of a Deployment that are not copied to its ReplicaSets.
const NOT_COPIED: &[&str] = &[
    "kubectl.kubernetes.io/last-applied-configuration",
    REVISION,
    REVISION_HISTORY,
    DESIRED_REPLICAS,
    MAX_REPLICAS,
    "deprecated.deployment.rollback.to",
];
/// Longest revision-history annotation kept (Kubernetes' default limit).
const MAX_REVISION_HISTORY_CHARS: usize = 2000;

pub const AVAILABLE: &str = "Available";
pub const PROGRESSING: &str = "Progressing";
pub const REPLICA_FAILURE: &str = "ReplicaFailure";
pub const MINIMUM_REPLICAS_AVAILABLE: &str = "MinimumReplicasAvailable";
pub const MINIMUM_REPLICAS_UNAVAILABLE: &str = "MinimumReplicasUnavailable";
pub const NEW_RS_CREATED: &str = "NewReplicaSetCreated";
pub const FOUND_NEW_RS: &str = "FoundNewReplicaSet";
pub const RS_UPDATED: &str = "ReplicaSetUpdated";
pub const NEW_RS_AVAILABLE: &str = "NewReplicaSetAvailable";
pub const TIMED_OUT: &str = "ProgressDeadlineExceeded";
pub const PAUSED: &str = "DeploymentPaused";
pub const RESUMED: &str = "DeploymentResumed";
pub const FAILED_RS_CREATE: &str = "ReplicaSetCreateError";

/// FNV-1a, 32 bits.
pub fn fnv32a(bytes: &[u8]) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in bytes {
        h ^= u32::from(*b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

/// Kubernetes' `rand.SafeEncodeString`: each character mapped into an alphabet without vowels
/// or look-alikes, so hashes never spell words.
pub fn safe_encode(s: &str) -> String {
    const ALPHANUMS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    s.bytes()
        .map(|b| ALPHANUMS[usize::from(b) % ALPHANUMS.len()] as char)
        .collect()
}

/// The `pod-template-hash` of a template: FNV-1a over its JSON form plus the collision count,
/// the decimal value safe-encoded, as Kubernetes does (which hashes Go's printed form instead,
/// so the values differ from a real cluster's but are just as stable).
pub fn compute_hash(template: &PodTemplateSpec, collision_count: Option<i32>) -> String {
    let mut bytes = serde_json::to_vec(template).unwrap_or_default();
    if let Some(c) = collision_count {
        bytes.extend_from_slice(&(c as u32).to_le_bytes());
    }
    safe_encode(&fnv32a(&bytes).to_string())
}

/// Drops what semantic equality ignores: nulls, empty lists and empty maps.
fn normalize(v: &mut Value) {
    match v {
        Value::Object(map) => {
            for child in map.values_mut() {
                normalize(child);
            }
            map.retain(|_, c| match c {
                Value::Null => false,
                Value::Array(a) => !a.is_empty(),
                Value::Object(o) => !o.is_empty(),
                _ => true,
            });
        }
        Value::Array(items) => items.iter_mut().for_each(normalize),
        _ => {}
    }
}

fn template_value_without_hash(t: &PodTemplateSpec) -> Value {
    let mut t = t.clone();
    if let Some(labels) = t.metadata.as_mut().and_then(|m| m.labels.as_mut()) {
        labels.remove(POD_TEMPLATE_HASH);
    }
    let mut v = serde_json::to_value(&t).unwrap_or(Value::Null);
    normalize(&mut v);
    v
}

/// Whether two templates are the same apart from the `pod-template-hash` label: how a
/// Deployment recognises the ReplicaSet of its current template (also an old one after a
/// rollback).
pub fn equal_ignore_hash(a: &PodTemplateSpec, b: &PodTemplateSpec) -> bool {
    template_value_without_hash(a) == template_value_without_hash(b)
}

fn annotation<'a>(
    meta: &'a k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    key: &str,
) -> Option<&'a str> {
    meta.annotations.as_ref()?.get(key).map(String::as_str)
}

/// A ReplicaSet's revision; 0 when it has none.
pub fn revision(rs: &ReplicaSet) -> i64 {
    annotation(&rs.metadata, REVISION)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

pub fn max_revision(rss: &[ReplicaSet]) -> i64 {
    rss.iter().map(revision).max().unwrap_or(0)
}

pub fn spec_replicas(rs: &ReplicaSet) -> i32 {
    rs.spec.replicas.unwrap_or(0)
}

pub fn status_replicas(rs: &ReplicaSet) -> i32 {
    rs.status.as_ref().map(|s| s.replicas).unwrap_or(0)
}

pub fn available_replicas(rs: &ReplicaSet) -> i32 {
    rs.status
        .as_ref()
        .and_then(|s| s.available_replicas)
        .unwrap_or(0)
}

pub fn ready_replicas(rs: &ReplicaSet) -> i32 {
    rs.status
        .as_ref()
        .and_then(|s| s.ready_replicas)
        .unwrap_or(0)
}

pub fn counts(rs: &ReplicaSet) -> rolling::Counts {
    rolling::Counts {
        replicas: spec_replicas(rs),
        available: available_replicas(rs),
    }
}

pub fn desired_replicas(d: &Deployment) -> i32 {
    d.spec.replicas.unwrap_or(1)
}

pub fn is_recreate(d: &Deployment) -> bool {
    d.spec.strategy.as_ref().and_then(|s| s.type_.as_deref()) == Some("Recreate")
}

/// (maxSurge, maxUnavailable) as counts; zero for Recreate. Values the API should not have
/// let through read as 0, as Kubernetes' helpers ignore the error.
fn fenceposts(d: &Deployment) -> (i32, i32) {
    if is_recreate(d) {
        return (0, 0);
    }
    let rolling = d
        .spec
        .strategy
        .as_ref()
        .and_then(|s| s.rolling_update.as_ref());
    let surge = rolling.and_then(|r| r.max_surge.as_ref());
    let unavailable = rolling.and_then(|r| r.max_unavailable.as_ref());
    match rolling::resolve_fenceposts(surge, unavailable, desired_replicas(d)) {
        Ok(f) => f,
        Err(e) => {
            tracing::debug!(error = %e, "invalid rolling update parameters");
            (0, 0)
        }
    }
}

pub fn max_surge(d: &Deployment) -> i32 {
    fenceposts(d).0
}

/// Never more than the desired count.
pub fn max_unavailable(d: &Deployment) -> i32 {
    let desired = desired_replicas(d);
    if is_recreate(d) || desired == 0 {
        return 0;
    }
    fenceposts(d).1.min(desired)
}

pub fn progress_deadline(d: &Deployment) -> Option<i32> {
    d.spec.progress_deadline_seconds.filter(|s| *s != i32::MAX)
}

pub fn is_paused(d: &Deployment) -> bool {
    d.spec.paused.unwrap_or(false)
}

/// Copies the Deployment's own annotations onto the ReplicaSet; whether anything changed.
fn copy_annotations(d: &Deployment, rs: &mut ReplicaSet) -> bool {
    let mut changed = false;
    let target = rs.metadata.annotations.get_or_insert_with(BTreeMap::new);
    for (k, v) in d.metadata.annotations.iter().flatten() {
        if NOT_COPIED.contains(&k.as_str()) || target.get(k) == Some(v) {
            continue;
        }
        target.insert(k.clone(), v.clone());
        changed = true;
    }
    changed
}

/// Sets `desired-replicas` and `max-replicas`; whether anything changed.
pub fn set_replicas_annotations(rs: &mut ReplicaSet, desired: i32, max: i32) -> bool {
    let a = rs.metadata.annotations.get_or_insert_with(BTreeMap::new);
    let mut changed = false;
    for (k, v) in [(DESIRED_REPLICAS, desired), (MAX_REPLICAS, max)] {
        let v = v.to_string();
        if a.get(k) != Some(&v) {
            a.insert(k.to_string(), v);
            changed = true;
        }
    }
    changed
}

pub fn replicas_annotations_need_update(rs: &ReplicaSet, desired: i32, max: i32) -> bool {
    annotation(&rs.metadata, DESIRED_REPLICAS) != Some(desired.to_string().as_str())
        || annotation(&rs.metadata, MAX_REPLICAS) != Some(max.to_string().as_str())
}

pub fn desired_annotation(rs: &ReplicaSet) -> Option<i32> {
    annotation(&rs.metadata, DESIRED_REPLICAS).and_then(|v| v.parse().ok())
}

pub fn max_replicas_annotation(rs: &ReplicaSet) -> Option<i32> {
    annotation(&rs.metadata, MAX_REPLICAS).and_then(|v| v.parse().ok())
}

/// Brings the new ReplicaSet's annotations up to date: the Deployment's own annotations, the
/// revision (only ever raised; the one it replaces goes to the revision history) and, for a
/// ReplicaSet being created, the replica annotations. Whether anything changed.
pub fn set_new_rs_annotations(
    d: &Deployment,
    rs: &mut ReplicaSet,
    new_revision: i64,
    exists: bool,
) -> bool {
    let mut changed = copy_annotations(d, rs);
    let old = annotation(&rs.metadata, REVISION).map(str::to_string);
    let old_number: i64 = old.as_deref().and_then(|v| v.parse().ok()).unwrap_or(0);
    let a = rs.metadata.annotations.get_or_insert_with(BTreeMap::new);
    if old_number < new_revision {
        a.insert(REVISION.to_string(), new_revision.to_string());
        changed = true;
        if let Some(old) = old.filter(|o| !o.is_empty()) {
            let mut history: Vec<String> = a
                .get(REVISION_HISTORY)
                .filter(|h| !h.is_empty())
                .map(|h| h.split(',').map(str::to_string).collect())
                .unwrap_or_default();
            history.push(old);
            while history.join(",").len() > MAX_REVISION_HISTORY_CHARS && history.len() > 1 {
                history.remove(0);
            }
            a.insert(REVISION_HISTORY.to_string(), history.join(","));
        }
    }
    if !exists {
        let desired = desired_replicas(d);
        changed |= set_replicas_annotations(rs, desired, desired + max_surge(d));
    }
    changed
}

/// Oldest first; ties by name (Kubernetes' `ReplicaSetsByCreationTimestamp`).
pub fn by_creation(a: &ReplicaSet, b: &ReplicaSet) -> Ordering {
    a.metadata
        .creation_timestamp
        .cmp(&b.metadata.creation_timestamp)
        .then_with(|| a.metadata.name.cmp(&b.metadata.name))
}

/// Lowest revision first; ties oldest first.
pub fn by_revision(a: &ReplicaSet, b: &ReplicaSet) -> Ordering {
    revision(a)
        .cmp(&revision(b))
        .then_with(|| by_creation(a, b))
}

pub fn condition<'a>(status: &'a DeploymentStatus, type_: &str) -> Option<&'a DeploymentCondition> {
    status
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_.as_deref() == Some(type_))
}

pub fn new_condition(
    type_: &str,
    status: &str,
    reason: &str,
    message: String,
) -> DeploymentCondition {
    let now = now_time();
    DeploymentCondition {
        type_: Some(type_.to_string()),
        status: Some(status.to_string()),
        reason: Some(reason.to_string()),
        message: Some(message),
        last_update_time: Some(now.clone()),
        last_transition_time: Some(now),
    }
}

/// Kubernetes' `SetDeploymentCondition`: a condition with the same status and reason as the
/// current one changes nothing; one with the same status keeps the transition time.
pub fn set_condition(status: &mut DeploymentStatus, mut cond: DeploymentCondition) {
    if let Some(current) = condition(status, cond.type_.as_deref().unwrap_or("")) {
        if current.status == cond.status && current.reason == cond.reason {
            return;
        }
        if current.status == cond.status {
            cond.last_transition_time = current.last_transition_time.clone();
        }
    }
    let conditions = status.conditions.get_or_insert_with(Vec::new);
    conditions.retain(|c| c.type_ != cond.type_);
    conditions.push(cond);
}

pub fn remove_condition(status: &mut DeploymentStatus, type_: &str) {
    if let Some(c) = status.conditions.as_mut() {
        c.retain(|c| c.type_.as_deref() != Some(type_));
        if c.is_empty() {
            status.conditions = None;
        }
    }
}

/// Every desired replica is updated and available, and the spec was observed.
pub fn deployment_complete(d: &Deployment, s: &DeploymentStatus) -> bool {
    let desired = desired_replicas(d);
    s.updated_replicas.unwrap_or(0) == desired
        && s.replicas.unwrap_or(0) == desired
        && s.available_replicas.unwrap_or(0) == desired
        && s.observed_generation.unwrap_or(0) >= d.metadata.generation.unwrap_or(0)
}

/// The rollout moved since the last recorded status.
pub fn deployment_progressing(d: &Deployment, new: &DeploymentStatus) -> bool {
    let old = d.status.clone().unwrap_or_default();
    let n = |v: Option<i32>| v.unwrap_or(0);
    let old_old = n(old.replicas) - n(old.updated_replicas);
    let new_old = n(new.replicas) - n(new.updated_replicas);
    n(new.updated_replicas) > n(old.updated_replicas)
        || new_old < old_old
        || n(new.ready_replicas) > n(old.ready_replicas)
        || n(new.available_replicas) > n(old.available_replicas)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn template(labels: &[(&str, &str)]) -> PodTemplateSpec {
        PodTemplateSpec {
            metadata: Some(ObjectMeta {
                labels: Some(
                    labels
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                ),
                ..ObjectMeta::default()
            }),
            spec: None,
        }
    }

    #[test]
    fn fnv_known_values() {
        assert_eq!(fnv32a(b""), 0x811c_9dc5);
        assert_eq!(fnv32a(b"a"), 0xe40c_292c);
        assert_eq!(fnv32a(b"foobar"), 0xbf9c_f968);
    }

    #[test]
    fn hash_is_stable_and_safe() {
        let t = template(&[("app", "web")]);
        let h = compute_hash(&t, None);
        assert_eq!(h, compute_hash(&t, None));
        assert!(h.len() <= 10 && !h.is_empty());
        assert!(h.chars().all(|c| "bcdfghjklmnpqrstvwxz2456789".contains(c)));
        assert_ne!(h, compute_hash(&t, Some(1)));
        assert_ne!(h, compute_hash(&template(&[("app", "api")]), None));
    }

    #[test]
    fn equality_ignores_the_hash_label_and_empties() {
        let a = template(&[("app", "web")]);
        let b = template(&[("app", "web"), (POD_TEMPLATE_HASH, "abc")]);
        assert!(equal_ignore_hash(&a, &b));
        assert!(!equal_ignore_hash(&a, &template(&[("app", "api")])));
        let only_hash = template(&[(POD_TEMPLATE_HASH, "abc")]);
        assert!(equal_ignore_hash(&template(&[]), &only_hash));
        assert!(equal_ignore_hash(
            &PodTemplateSpec::default(),
            &template(&[])
        ));
    }

    #[test]
    fn revisions_only_rise_and_keep_history() {
        let d = Deployment::default();
        let mut rs = ReplicaSet::default();
        assert!(set_new_rs_annotations(&d, &mut rs, 1, false));
        assert_eq!(revision(&rs), 1);
        assert_eq!(desired_annotation(&rs), Some(1));
        assert!(!set_new_rs_annotations(&d, &mut rs, 1, true));
        assert!(set_new_rs_annotations(&d, &mut rs, 3, true));
        assert!(set_new_rs_annotations(&d, &mut rs, 5, true));
        assert_eq!(revision(&rs), 5);
        let history = rs
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(REVISION_HISTORY))
            .cloned();
        assert_eq!(history.as_deref(), Some("1,3"));
        assert!(!set_new_rs_annotations(&d, &mut rs, 4, true));
    }

    #[test]
    fn conditions_keep_transition_times() {
        let mut s = DeploymentStatus::default();
        let mut first = new_condition(PROGRESSING, "True", NEW_RS_CREATED, "a".into());
        first.last_transition_time = None;
        set_condition(&mut s, first);
        set_condition(
            &mut s,
            new_condition(PROGRESSING, "True", RS_UPDATED, "b".into()),
        );
        let c = condition(&s, PROGRESSING).cloned().unwrap_or_default();
        assert_eq!(c.reason.as_deref(), Some(RS_UPDATED));
        assert_eq!(c.last_transition_time, None);
        set_condition(
            &mut s,
            new_condition(PROGRESSING, "False", TIMED_OUT, "c".into()),
        );
        let c = condition(&s, PROGRESSING).cloned().unwrap_or_default();
        assert!(c.last_transition_time.is_some());
        assert_eq!(s.conditions.as_ref().map(Vec::len), Some(1));
        remove_condition(&mut s, PROGRESSING);
        assert_eq!(s.conditions, None);
    }
}
