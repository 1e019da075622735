//! Per-kind write rules that Kubernetes keeps in its registry *strategies* rather than in
//! defaulting or validation: what a create fills in once the server has named the object
//! (a Job's generated selector), what a `/status` write may change, and which garbage
//! collection policy a DELETE without one gets.
//!
//! Pure functions over the object's JSON, like the rest of this crate; the API server calls
//! them from its write path.

use serde_json::{Map, Value, json};

use crate::registry::ResourceInfo;
use crate::validate_kinds::FieldError;

/// `batch.kubernetes.io/controller-uid`: the label a generated Job selector selects.
pub const JOB_CONTROLLER_UID_LABEL: &str = "batch.kubernetes.io/controller-uid";
/// `batch.kubernetes.io/job-name`.
pub const JOB_NAME_LABEL: &str = "batch.kubernetes.io/job-name";
/// The unprefixed labels Kubernetes still sets beside the prefixed ones.
pub const LEGACY_JOB_CONTROLLER_UID_LABEL: &str = "controller-uid";
pub const LEGACY_JOB_NAME_LABEL: &str = "job-name";

/// What happens to an object's dependents when a DELETE names no propagation policy
/// (Kubernetes' `rest.GarbageCollectionPolicy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GarbageCollectionPolicy {
    /// Dependents are deleted (in the background).
    DeleteDependents,
    /// Dependents are orphaned: the `orphan` finalizer is added.
    OrphanDependents,
}

/// The policy of a DELETE that says nothing. batch/v1 Jobs orphan their pods, for the
/// backward compatibility of clients older than server-side garbage collection, exactly as
/// Kubernetes' Job strategy does (kubectl always sends `propagationPolicy`, so it is
/// unaffected); everything else deletes its dependents.
pub fn default_garbage_collection_policy(info: &ResourceInfo) -> GarbageCollectionPolicy {
    if info.group == "batch" && info.version == "v1" && info.kind == "Job" {
        GarbageCollectionPolicy::OrphanDependents
    } else {
        GarbageCollectionPolicy::DeleteDependents
    }
}

/// The warning Kubernetes returns with a Job DELETE that relied on the orphaning default.
pub const JOB_ORPHAN_WARNING: &str = "child pods are preserved by default when jobs are deleted; set propagationPolicy=Background to remove them or set propagationPolicy=Orphan to suppress this warning";

/// Create-time preparation that needs the name and uid the server assigned.
pub fn prepare_for_create(info: &ResourceInfo, obj: &mut Value) {
    if info.group == "batch" && info.kind == "Job" && !manual_selector(obj) {
        let _ = generate_job_selector(obj);
    }
}

/// Create-time checks of what [`prepare_for_create`] generated (Kubernetes'
/// `ValidateGeneratedSelector`): a user's own labels or selector may have got in its way.
pub fn validate_create(info: &ResourceInfo, obj: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if info.group == "batch" && info.kind == "Job" && !manual_selector(obj) {
        validate_generated_selector(obj, &mut errs);
    }
    errs
}

fn manual_selector(job: &Value) -> bool {
    job.pointer("/spec/manualSelector").and_then(Value::as_bool) == Some(true)
}

fn meta_str<'a>(obj: &'a Value, field: &str) -> &'a str {
    obj.pointer(&format!("/metadata/{field}"))
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// Ensures `obj[key]` is an object and returns it (`None` never happens in practice).
fn object_at<'a>(obj: &'a mut Map<String, Value>, key: &str) -> Option<&'a mut Map<String, Value>> {
    let v = obj.entry(key).or_insert_with(|| json!({}));
    if !v.is_object() {
        *v = json!({});
    }
    v.as_object_mut()
}

/// Kubernetes' `generateSelector`: the pod template gets the job-name and controller-uid
/// labels (both spellings) unless the user set them, and the selector selects the
/// controller-uid label, which makes the Job's pods its own and nobody else's.
fn generate_job_selector(job: &mut Value) -> Option<()> {
    let name = meta_str(job, "name").to_string();
    let uid = meta_str(job, "uid").to_string();
    let spec = object_at(job.as_object_mut()?, "spec")?;
    let labels = object_at(
        object_at(object_at(spec, "template")?, "metadata")?,
        "labels",
    )?;
    for (key, value) in [
        (LEGACY_JOB_NAME_LABEL, &name),
        (JOB_NAME_LABEL, &name),
        (LEGACY_JOB_CONTROLLER_UID_LABEL, &uid),
        (JOB_CONTROLLER_UID_LABEL, &uid),
    ] {
        // A label the user set stays as it is; validation reports it if it is wrong.
        labels
            .entry(key)
            .or_insert_with(|| Value::String(value.clone()));
    }
    let match_labels = object_at(object_at(spec, "selector")?, "matchLabels")?;
    match_labels
        .entry(JOB_CONTROLLER_UID_LABEL)
        .or_insert_with(|| Value::String(uid));
    Some(())
}

fn validate_generated_selector(job: &Value, errs: &mut Vec<FieldError>) {
    let name = meta_str(job, "name");
    let uid = meta_str(job, "uid");
    let labels = job.pointer("/spec/template/metadata/labels");
    for (key, want) in [
        (LEGACY_JOB_CONTROLLER_UID_LABEL, uid),
        (LEGACY_JOB_NAME_LABEL, name),
        (JOB_CONTROLLER_UID_LABEL, uid),
        (JOB_NAME_LABEL, name),
    ] {
        let field = format!("spec.template.metadata.labels[{key}]");
        match labels.and_then(|l| l.get(key)).and_then(Value::as_str) {
            None => errs.push((field, "Required value".into())),
            Some(have) if have != want => {
                errs.push((field, format!("Invalid value: {have:?}: must be '{want}'")))
            }
            Some(_) => {}
        }
    }
    let selector = job.pointer("/spec/selector");
    let selects_uid = selector
        .and_then(|s| {
            serde_json::from_value::<k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector>(
                s.clone(),
            )
            .ok()
        })
        .and_then(|s| crate::selector::LabelSelector::try_from(&s).ok())
        .is_some_and(|s| {
            s.matches(&std::collections::BTreeMap::from([(
                JOB_CONTROLLER_UID_LABEL.to_string(),
                uid.to_string(),
            )]))
        });
    if !selects_uid {
        errs.push((
            "spec.selector".into(),
            format!(
                "Invalid value: {}: `selector` not auto-generated",
                selector.map(Value::to_string).unwrap_or_default()
            ),
        ));
    }
}

/// What a write to `NAME/status` keeps from the stored object, as Kubernetes' status
/// strategies do (`PrepareForUpdate`): everything outside `metadata` and `status` (the spec)
/// stays as stored; `metadata` comes from the request like any update (the server-owned
/// fields are carried over separately), except what the kind's strategy also resets:
/// a Deployment's labels, a Pod's ownerReferences.
pub fn prepare_for_status_update(info: &ResourceInfo, current: &Value, next: &mut Value) {
    let Some(next_map) = next.as_object_mut() else {
        return;
    };
    let status = next_map.remove("status");
    let metadata = next_map.remove("metadata");
    let mut kept = current.as_object().cloned().unwrap_or_default();
    kept.remove("status");
    if let Some(s) = status {
        kept.insert("status".into(), s);
    }
    let mut metadata = match metadata {
        Some(Value::Object(m)) => m,
        _ => Map::new(),
    };
    let reset: &[&str] = match (info.group, info.kind) {
        ("apps", "Deployment") => &["labels"],
        ("", "Pod") => &["ownerReferences"],
        _ => &[],
    };
    for field in reset {
        match current.pointer(&format!("/metadata/{field}")) {
            Some(v) => metadata.insert((*field).to_string(), v.clone()),
            None => metadata.remove(*field),
        };
    }
    kept.insert("metadata".into(), Value::Object(metadata));
    *next = Value::Object(kept);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::RESOURCES;

    fn info(kind: &str) -> &'static ResourceInfo {
        RESOURCES
            .iter()
            .find(|r| r.kind == kind)
            .expect("kind is served")
    }

    #[test]
    fn job_selector_is_generated_from_the_uid() {
        let mut job = json!({"metadata": {"name": "pi", "uid": "u1"},
            "spec": {"template": {"metadata": {"labels": {"app": "pi"}}}}});
        prepare_for_create(info("Job"), &mut job);
        assert_eq!(
            job["spec"]["selector"],
            json!({"matchLabels": {"batch.kubernetes.io/controller-uid": "u1"}})
        );
        let labels = &job["spec"]["template"]["metadata"]["labels"];
        assert_eq!(labels["app"], "pi");
        assert_eq!(labels["controller-uid"], "u1");
        assert_eq!(labels["batch.kubernetes.io/controller-uid"], "u1");
        assert_eq!(labels["job-name"], "pi");
        assert_eq!(labels["batch.kubernetes.io/job-name"], "pi");
        assert!(validate_create(info("Job"), &job).is_empty());
    }

    #[test]
    fn manual_selector_is_left_alone() {
        let mut job = json!({"metadata": {"name": "pi", "uid": "u1"},
            "spec": {"manualSelector": true, "selector": {"matchLabels": {"a": "b"}},
                "template": {"metadata": {"labels": {"a": "b"}}}}});
        let before = job.clone();
        prepare_for_create(info("Job"), &mut job);
        assert_eq!(job, before);
        assert!(validate_create(info("Job"), &job).is_empty());
    }

    #[test]
    fn a_conflicting_user_label_fails_validation() {
        let mut job = json!({"metadata": {"name": "pi", "uid": "u1"},
            "spec": {"template": {"metadata": {"labels": {"controller-uid": "other"}}}}});
        prepare_for_create(info("Job"), &mut job);
        let errs = validate_create(info("Job"), &job);
        assert_eq!(
            errs,
            vec![(
                "spec.template.metadata.labels[controller-uid]".to_string(),
                "Invalid value: \"other\": must be 'u1'".to_string()
            )]
        );
    }

    #[test]
    fn status_writes_keep_spec_and_take_metadata() {
        let current = json!({"metadata": {"name": "d", "labels": {"a": "1"}, "annotations": {"x": "1"}},
            "spec": {"replicas": 1}, "status": {"replicas": 0}});
        let mut next = json!({"metadata": {"name": "d", "labels": {"a": "2"}, "annotations": {"x": "2"}},
            "spec": {"replicas": 5}, "status": {"replicas": 1}});
        prepare_for_status_update(info("Deployment"), &current, &mut next);
        assert_eq!(next["spec"]["replicas"], 1);
        assert_eq!(next["status"]["replicas"], 1);
        assert_eq!(next["metadata"]["annotations"]["x"], "2");
        // A Deployment's status strategy also resets labels; a ReplicaSet's does not.
        assert_eq!(next["metadata"]["labels"]["a"], "1");
        let mut next_rs = json!({"metadata": {"labels": {"a": "2"}}, "spec": {"replicas": 5}});
        prepare_for_status_update(info("ReplicaSet"), &current, &mut next_rs);
        assert_eq!(next_rs["metadata"]["labels"]["a"], "2");
        assert!(next_rs.get("status").is_none());
    }

    #[test]
    fn only_batch_v1_jobs_orphan_by_default() {
        assert_eq!(
            default_garbage_collection_policy(info("Job")),
            GarbageCollectionPolicy::OrphanDependents
        );
        assert_eq!(
            default_garbage_collection_policy(info("ReplicaSet")),
            GarbageCollectionPolicy::DeleteDependents
        );
    }
}
