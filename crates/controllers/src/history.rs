//! Controller history: the ControllerRevisions in which DaemonSets and StatefulSets keep their
//! pod templates, as Kubernetes' `controller/history` package does. A revision's `data` is
//! the strategic-merge patch `{"spec": {"template": {..., "$patch": "replace"}}}` that turns
//! its owner back into that revision (what `kubectl rollout undo` applies), its name is
//! `<owner>-<hash of data>`, and pods carry that hash in their `controller-revision-hash`
//! label so a controller can tell which template made them.
//!
//! Two different templates may hash alike. Creating a revision whose name is taken by
//! different data bumps the owner's `status.collisionCount`, which feeds the hash, and tries
//! again.

use std::collections::{BTreeMap, HashSet};

use k8s_openapi::api::apps::v1::ControllerRevision;
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::runtime::RawExtension;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

/// The pod (and revision) label naming the revision that made it.
pub const REVISION_HASH_LABEL: &str = "controller-revision-hash";
/// Kubernetes' `apimachinery/pkg/util/validation.DNS1123SubdomainMaxLength` minus a hash.
const MAX_PREFIX: usize = 223;
/// Give up creating a revision after this many collisions (only hash clashes between
/// different templates end up here, so this is never reached in practice).
const MAX_COLLISIONS: i32 = 100;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("encoding the pod template of {0}")]
    Encode(String, #[source] serde_json::Error),
    #[error("creating controller revision {0}")]
    Create(String, #[source] kube::Error),
    #[error("renumbering controller revision {0}")]
    Update(String, #[source] kube::Error),
    #[error("reading controller revision {0}")]
    Get(String, #[source] kube::Error),
    #[error("deleting controller revision {0}")]
    Delete(String, #[source] kube::Error),
    #[error("too many hash collisions creating a controller revision for {0}")]
    Collisions(String),
}

pub use crate::deployment::util::{fnv32a, safe_encode};

/// The hash of revision data under a collision count.
pub fn hash(data: &Value, collision_count: i32) -> String {
    let mut bytes = data.to_string().into_bytes();
    if collision_count != 0 {
        bytes.extend_from_slice(collision_count.to_string().as_bytes());
    }
    safe_encode(&fnv32a(&bytes).to_string())
}

/// `<owner>-<hash>`, the owner's name shortened so the result stays a valid name.
pub fn revision_name(owner: &str, hash: &str) -> String {
    let mut prefix = owner.to_string();
    if prefix.len() > MAX_PREFIX {
        let mut cut = MAX_PREFIX;
        while !prefix.is_char_boundary(cut) {
            cut -= 1;
        }
        prefix.truncate(cut);
    }
    format!("{prefix}-{hash}")
}

/// The revision data of a pod template.
pub fn template_data(template: &PodTemplateSpec) -> Result<Value, serde_json::Error> {
    let mut t = serde_json::to_value(template)?;
    if let Value::Object(map) = &mut t {
        map.insert("$patch".into(), json!("replace"));
    }
    Ok(json!({"spec": {"template": t}}))
}

/// The pod template a revision holds (`None` if its data is not a template patch).
pub fn template_of(revision: &ControllerRevision) -> Option<PodTemplateSpec> {
    let mut t = revision.data.0.get("spec")?.get("template")?.clone();
    if let Value::Object(map) = &mut t {
        map.remove("$patch");
    }
    serde_json::from_value(t).ok()
}

/// The hash part of a revision's name, as pods carry it in their label.
pub fn hash_of(revision: &ControllerRevision) -> &str {
    revision
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(REVISION_HASH_LABEL))
        .map(String::as_str)
        .unwrap_or("")
}

pub fn number(revision: &ControllerRevision) -> i64 {
    revision.revision.unwrap_or(0)
}

/// One more than the highest revision number.
pub fn next_number<'a>(revisions: impl IntoIterator<Item = &'a ControllerRevision>) -> i64 {
    revisions.into_iter().map(number).max().unwrap_or(0) + 1
}

/// The revisions whose data equals `data`, highest number last.
pub fn find_equal<'a>(
    revisions: &'a [ControllerRevision],
    data: &Value,
) -> Vec<&'a ControllerRevision> {
    let mut equal: Vec<&ControllerRevision> =
        revisions.iter().filter(|r| &r.data.0 == data).collect();
    equal.sort_by_key(|r| number(r));
    equal
}

/// What a new revision is made of.
pub struct NewRevision<'a> {
    pub namespace: &'a str,
    pub owner_name: &'a str,
    pub owner_ref: OwnerReference,
    /// The template's labels, which the revision carries too (so the owner's selector finds
    /// it).
    pub labels: BTreeMap<String, String>,
    pub data: Value,
}

/// The revision holding `new.data`, made the newest: an existing one with that data (a
/// template rolled back to is renumbered to come last, as Kubernetes does), or a new one.
/// `all` (the owner's revisions) is kept up to date.
pub async fn ensure(
    api: &Api<ControllerRevision>,
    all: &mut Vec<ControllerRevision>,
    new: NewRevision<'_>,
    collision_count: &mut i32,
) -> Result<ControllerRevision, Error> {
    let next = next_number(all.iter());
    let revision = match find_equal(all, &new.data).last() {
        Some(existing) if number(existing) == next - 1 => return Ok((*existing).clone()),
        Some(existing) => {
            let name = existing.metadata.name.clone().unwrap_or_default();
            api.patch(
                &name,
                &PatchParams::default(),
                &Patch::Merge(&json!({"revision": next})),
            )
            .await
            .map_err(|e| Error::Update(name, e))?
        }
        None => create(api, new, next, collision_count).await?,
    };
    all.retain(|r| r.metadata.name != revision.metadata.name);
    all.push(revision.clone());
    Ok(revision)
}

/// Creates revision number `number`, handling hash collisions: a revision of the same name
/// with equal data is returned as it is; one with different data bumps `collision_count`
/// and the hash.
pub async fn create(
    api: &Api<ControllerRevision>,
    new: NewRevision<'_>,
    number: i64,
    collision_count: &mut i32,
) -> Result<ControllerRevision, Error> {
    for _ in 0..MAX_COLLISIONS {
        let h = hash(&new.data, *collision_count);
        let name = revision_name(new.owner_name, &h);
        let mut labels = new.labels.clone();
        labels.insert(REVISION_HASH_LABEL.into(), h.clone());
        let revision = ControllerRevision {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(new.namespace.to_string()),
                labels: Some(labels),
                owner_references: Some(vec![new.owner_ref.clone()]),
                ..ObjectMeta::default()
            },
            data: RawExtension(new.data.clone()),
            revision: Some(number),
        };
        match api.create(&PostParams::default(), &revision).await {
            Ok(created) => return Ok(created),
            Err(kube::Error::Api(s)) if s.code == 409 => {
                let existing = api
                    .get(&name)
                    .await
                    .map_err(|e| Error::Get(name.clone(), e))?;
                if existing.data.0 == new.data {
                    return Ok(existing);
                }
                *collision_count = collision_count.saturating_add(1);
            }
            Err(e) => return Err(Error::Create(name, e)),
        }
    }
    Err(Error::Collisions(new.owner_name.to_string()))
}

/// Deletes the oldest revisions beyond `limit`, never one in `live` (names of revisions that
/// pods still run, or that the owner's status names).
pub async fn truncate(
    api: &Api<ControllerRevision>,
    revisions: &[ControllerRevision],
    live: &HashSet<String>,
    limit: usize,
) -> Result<(), Error> {
    let mut old: Vec<&ControllerRevision> = revisions
        .iter()
        .filter(|r| !live.contains(r.metadata.name.as_deref().unwrap_or("")))
        .collect();
    if old.len() <= limit {
        return Ok(());
    }
    old.sort_by_key(|r| number(r));
    let excess = old.len() - limit;
    for r in old.into_iter().take(excess) {
        let name = r.metadata.name.clone().unwrap_or_default();
        match api.delete(&name, &DeleteParams::default()).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => return Err(Error::Delete(name, e)),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv_and_encoding() {
        // Reference values of Go's hash/fnv New32a.
        assert_eq!(fnv32a(b""), 0x811c_9dc5);
        assert_eq!(fnv32a(b"a"), 0xe40c_292c);
        let h = hash(&json!({"a": 1}), 0);
        assert!(h.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(h, hash(&json!({"a": 1}), 1));
        assert_eq!(h, hash(&json!({"a": 1}), 0));
    }

    #[test]
    fn template_round_trip() {
        let template: PodTemplateSpec = serde_json::from_value(json!({
            "metadata": {"labels": {"app": "x"}},
            "spec": {"containers": [{"name": "c", "image": "i"}]}
        }))
        .unwrap_or_default();
        let data = template_data(&template).unwrap_or_default();
        assert_eq!(data["spec"]["template"]["$patch"], "replace");
        let rev = ControllerRevision {
            data: RawExtension(data),
            ..ControllerRevision::default()
        };
        assert_eq!(template_of(&rev), Some(template));
    }

    #[test]
    fn long_names_are_cut() {
        let name = revision_name(&"x".repeat(300), "abc");
        assert_eq!(name.len(), MAX_PREFIX + 4);
    }
}
