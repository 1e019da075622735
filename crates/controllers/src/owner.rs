//! Controller references and claiming, as Kubernetes' `ControllerRefManager` does it: a
//! controller owns the objects whose controller reference names it (by uid), adopts orphans its
//! selector matches, and releases owned objects its selector no longer matches.
//!
//! Adoption and release are strategic-merge patches of `metadata.ownerReferences` (merged by
//! uid), so they never conflict with unrelated writes to the same object; an object that
//! meanwhile got another controller is refused by validation and simply not adopted.

use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::Resource;
use kube::api::{Api, Patch, PatchParams};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;
use wasmkube_api::selector::LabelSelector;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("adopting {kind} {name}")]
    Adopt {
        kind: &'static str,
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("releasing {kind} {name}")]
    Release {
        kind: &'static str,
        name: String,
        #[source]
        source: kube::Error,
    },
}

/// The controller reference among an object's owner references.
pub fn controller_of(meta: &ObjectMeta) -> Option<&OwnerReference> {
    meta.owner_references
        .iter()
        .flatten()
        .find(|r| r.controller == Some(true))
}

/// The owner reference a controller puts on what it creates or adopts.
pub fn controller_ref<O: Resource<DynamicType = ()>>(owner: &O) -> OwnerReference {
    OwnerReference {
        api_version: O::api_version(&()).to_string(),
        kind: O::kind(&()).to_string(),
        name: owner.meta().name.clone().unwrap_or_default(),
        uid: owner.meta().uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// Whether `meta`'s controller is the object with `uid`.
pub fn controlled_by(meta: &ObjectMeta, uid: &str) -> bool {
    controller_of(meta).is_some_and(|r| r.uid == uid)
}

fn is_gone_or_invalid(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 404 || s.code == 422)
}

/// Claims among `candidates` (objects of `owner`'s namespace) the ones `owner` controls:
/// those it already owns and still selects, plus matching orphans it adopts. Owned objects it
/// no longer selects are released. `can_adopt` is asked at most once, before the first
/// adoption: Kubernetes re-reads the owner from the API there, so an owner deleted and
/// re-created under the same name never adopts with a stale uid.
pub async fn claim<K, O>(
    api: &Api<K>,
    owner: &O,
    selector: &LabelSelector,
    candidates: Vec<Arc<K>>,
    can_adopt: impl AsyncFnOnce() -> bool,
) -> Result<Vec<Arc<K>>, Error>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Serialize + std::fmt::Debug,
    O: Resource<DynamicType = ()>,
{
    let owner_uid = owner.meta().uid.clone().unwrap_or_default();
    let owner_deleting = owner.meta().deletion_timestamp.is_some();
    let kind: &'static str = match K::kind(&()) {
        std::borrow::Cow::Borrowed(k) => k,
        std::borrow::Cow::Owned(_) => "object",
    };
    let mut can_adopt = Some(can_adopt);
    let mut adoption_allowed: Option<bool> = None;
    let mut claimed = Vec::with_capacity(candidates.len());
    for obj in candidates {
        let meta = obj.meta();
        let name = meta.name.clone().unwrap_or_default();
        let obj_uid = meta.uid.clone().unwrap_or_default();
        let matches = selector.matches_opt(meta.labels.as_ref());
        match controller_of(meta) {
            Some(r) if r.uid == owner_uid => {
                if matches {
                    claimed.push(obj);
                } else if !owner_deleting {
                    let patch = json!({"metadata": {
                        "ownerReferences": [{"$patch": "delete", "uid": owner_uid}],
                        "uid": obj_uid,
                    }});
                    match api
                        .patch(&name, &PatchParams::default(), &Patch::Strategic(&patch))
                        .await
                    {
                        Ok(_) => {}
                        Err(e) if is_gone_or_invalid(&e) => {}
                        Err(source) => return Err(Error::Release { kind, name, source }),
                    }
                }
            }
            Some(_) => {}
            None => {
                if owner_deleting || meta.deletion_timestamp.is_some() || !matches {
                    continue;
                }
                if adoption_allowed.is_none()
                    && let Some(check) = can_adopt.take()
                {
                    adoption_allowed = Some(check().await);
                }
                if adoption_allowed != Some(true) {
                    continue;
                }
                let patch = json!({"metadata": {
                    "ownerReferences": [controller_ref(owner)],
                    "uid": obj_uid,
                }});
                match api
                    .patch(&name, &PatchParams::default(), &Patch::Strategic(&patch))
                    .await
                {
                    Ok(adopted) => claimed.push(Arc::new(adopted)),
                    Err(e) if is_gone_or_invalid(&e) => {}
                    Err(source) => return Err(Error::Adopt { kind, name, source }),
                }
            }
        }
    }
    Ok(claimed)
}

/// Reads `owner` afresh and says whether it may still adopt: it exists with the same uid and
/// is not being deleted.
pub async fn recheck_owner<O>(api: &Api<O>, owner: &O) -> bool
where
    O: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug,
{
    let name = owner.meta().name.clone().unwrap_or_default();
    match api.get_opt(&name).await {
        Ok(Some(fresh)) => {
            fresh.meta().uid == owner.meta().uid && fresh.meta().deletion_timestamp.is_none()
        }
        Ok(None) => false,
        Err(e) => {
            tracing::debug!(error = %e, "re-reading an owner before adoption");
            false
        }
    }
}
