//! The node's local-path provisioner: PersistentVolumes that are directories on this node.
//!
//! Provisioning has to happen on the node that holds the storage, so each kubelet does it for
//! itself, like a CSI node plugin: a claim handed to `wasmkube.io/local-path` (the
//! PersistentVolume controller's `volume.kubernetes.io/storage-provisioner` annotation) whose
//! `volume.kubernetes.io/selected-node` is this node gets a directory under
//! `<data-dir>/storage` and a PersistentVolume `pvc-<claim uid>` pre-bound to it, with a
//! `local` source and a node affinity for this node (so the scheduler sends every later pod
//! of the claim here). The controller then binds the claim.
//!
//! Such a volume carries the `wasmkube.io/local-path` finalizer: when it is deleted (the
//! `Delete` reclaim policy, once its claim is gone) this node removes the directory, then
//! the finalizer, so the object goes only after the data.

use std::path::{Path, PathBuf};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{
    ObjectReference, PersistentVolume, PersistentVolumeClaim, PersistentVolumeSpec,
};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::{Api, ObjectMeta, Patch, PatchParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::json;
use tokio_util::sync::CancellationToken;
use wasmkube_api::storage::{
    LOCAL_PATH_FINALIZER, LOCAL_PATH_PROVISIONER, PROVISIONED_BY, SELECTED_NODE,
    STORAGE_PROVISIONER,
};

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("creating {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{what}")]
    Api {
        what: String,
        #[source]
        source: kube::Error,
    },
}

/// The provisioner of one node.
#[derive(Clone)]
pub struct LocalPath {
    pub client: kube::Client,
    pub node: String,
    /// Where volumes' directories live: `<data-dir>/storage`.
    pub root: PathBuf,
}

fn annotation<'a>(meta: &'a ObjectMeta, key: &str) -> Option<&'a str> {
    meta.annotations
        .as_ref()
        .and_then(|a| a.get(key))
        .map(String::as_str)
}

impl LocalPath {
    /// Runs until `shutdown`: claims to provision, volumes to clean up.
    pub async fn run(self, shutdown: CancellationToken) {
        let claims = watcher(
            Api::<PersistentVolumeClaim>::all(self.client.clone()),
            watcher::Config::default(),
        )
        .default_backoff()
        .applied_objects();
        let volumes = watcher(
            Api::<PersistentVolume>::all(self.client.clone()),
            watcher::Config::default(),
        )
        .default_backoff()
        .applied_objects();
        futures::pin_mut!(claims, volumes);
        loop {
            let result = tokio::select! {
                c = claims.next() => match c {
                    Some(Ok(claim)) if self.wants(&claim) => self.provision(&claim).await,
                    Some(_) => Ok(()),
                    None => break,
                },
                v = volumes.next() => match v {
                    Some(Ok(pv)) if self.owns_deleted(&pv) => self.clean_up(&pv).await,
                    Some(_) => Ok(()),
                    None => break,
                },
                _ = shutdown.cancelled() => break,
            };
            if let Err(e) = result {
                // The next event of the object (or the next re-list) tries again.
                tracing::warn!(error = %crate::pod::error_chain(&e), "local-path provisioner");
            }
        }
    }

    /// An unbound claim handed to us for this node.
    fn wants(&self, claim: &PersistentVolumeClaim) -> bool {
        let meta = &claim.metadata;
        meta.deletion_timestamp.is_none()
            && annotation(meta, STORAGE_PROVISIONER) == Some(LOCAL_PATH_PROVISIONER)
            && annotation(meta, SELECTED_NODE) == Some(self.node.as_str())
            && claim
                .spec
                .as_ref()
                .and_then(|s| s.volume_name.as_deref())
                .is_none_or(str::is_empty)
    }

    /// A volume of ours on this node whose deletion waits for us.
    fn owns_deleted(&self, pv: &PersistentVolume) -> bool {
        pv.metadata.deletion_timestamp.is_some()
            && pv
                .metadata
                .finalizers
                .as_ref()
                .is_some_and(|f| f.iter().any(|f| f == LOCAL_PATH_FINALIZER))
            && annotation(&pv.metadata, PROVISIONED_BY) == Some(LOCAL_PATH_PROVISIONER)
            && on_node(pv) == Some(self.node.as_str())
    }

    fn dir_for(&self, claim: &PersistentVolumeClaim) -> PathBuf {
        let meta = &claim.metadata;
        self.root.join(format!(
            "pvc-{}_{}_{}",
            meta.uid.as_deref().unwrap_or(""),
            meta.namespace.as_deref().unwrap_or(""),
            meta.name.as_deref().unwrap_or("")
        ))
    }

    async fn provision(&self, claim: &PersistentVolumeClaim) -> Result<(), StorageError> {
        let meta = &claim.metadata;
        let uid = meta.uid.clone().unwrap_or_default();
        let pv_name = format!("pvc-{uid}");
        let api: Api<PersistentVolume> = Api::all(self.client.clone());
        let api_err = |what: String| move |source| StorageError::Api { what, source };
        if api
            .get_opt(&pv_name)
            .await
            .map_err(api_err(format!("reading persistentvolume {pv_name}")))?
            .is_some()
        {
            return Ok(());
        }
        let spec = claim.spec.clone().unwrap_or_default();
        let class_name = spec.storage_class_name.clone().unwrap_or_default();
        let class = Api::<StorageClass>::all(self.client.clone())
            .get_opt(&class_name)
            .await
            .map_err(api_err(format!("reading storageclass {class_name}")))?;
        let dir = self.dir_for(claim);
        make_dir(&dir)?;
        let storage = spec
            .resources
            .as_ref()
            .and_then(|r| r.requests.as_ref())
            .and_then(|r| r.get("storage").cloned());
        let pv = PersistentVolume {
            metadata: ObjectMeta {
                name: Some(pv_name.clone()),
                annotations: Some(
                    [(
                        PROVISIONED_BY.to_string(),
                        LOCAL_PATH_PROVISIONER.to_string(),
                    )]
                    .into(),
                ),
                finalizers: Some(vec![LOCAL_PATH_FINALIZER.to_string()]),
                ..ObjectMeta::default()
            },
            spec: Some(PersistentVolumeSpec {
                capacity: storage.map(|q| [("storage".to_string(), q)].into()),
                access_modes: spec.access_modes.clone(),
                volume_mode: spec.volume_mode.clone(),
                storage_class_name: Some(class_name),
                persistent_volume_reclaim_policy: Some(
                    class
                        .and_then(|c| c.reclaim_policy)
                        .unwrap_or_else(|| "Delete".into()),
                ),
                claim_ref: Some(ObjectReference {
                    api_version: Some("v1".into()),
                    kind: Some("PersistentVolumeClaim".into()),
                    namespace: meta.namespace.clone(),
                    name: meta.name.clone(),
                    uid: meta.uid.clone(),
                    ..ObjectReference::default()
                }),
                local: Some(k8s_openapi::api::core::v1::LocalVolumeSource {
                    path: dir.to_string_lossy().into_owned(),
                    fs_type: None,
                }),
                node_affinity: Some(
                    serde_json::from_value(json!({"required": {"nodeSelectorTerms": [
                        {"matchExpressions": [{"key": "kubernetes.io/hostname",
                            "operator": "In", "values": [self.node]}]}]}}))
                    .unwrap_or_default(),
                ),
                ..PersistentVolumeSpec::default()
            }),
            status: None,
        };
        match api.create(&PostParams::default(), &pv).await {
            Ok(_) => {
                tracing::info!(volume = %pv_name, claim = ?meta.name, path = %dir.display(), "provisioned a local-path volume");
                Ok(())
            }
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
            Err(source) => Err(StorageError::Api {
                what: format!("creating persistentvolume {pv_name}"),
                source,
            }),
        }
    }

    async fn clean_up(&self, pv: &PersistentVolume) -> Result<(), StorageError> {
        let name = pv.metadata.name.clone().unwrap_or_default();
        if let Some(path) = pv.spec.as_ref().and_then(|s| s.local.as_ref()).map(|l| PathBuf::from(&l.path))
            // Only what we made: a volume object cannot make the node delete anything else.
            && path.parent() == Some(self.root.as_path())
            && path.exists()
        {
            std::fs::remove_dir_all(&path).map_err(|source| StorageError::Io {
                path: path.clone(),
                source,
            })?;
            tracing::info!(volume = %name, path = %path.display(), "removed a local-path volume");
        }
        let finalizers: Vec<&String> = pv
            .metadata
            .finalizers
            .iter()
            .flatten()
            .filter(|f| f.as_str() != LOCAL_PATH_FINALIZER)
            .collect();
        let patch = json!({"metadata": {"finalizers": finalizers,
            "resourceVersion": pv.metadata.resource_version}});
        let api: Api<PersistentVolume> = Api::all(self.client.clone());
        match api
            .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
            Err(source) => Err(StorageError::Api {
                what: format!("removing the finalizer of persistentvolume {name}"),
                source,
            }),
        }
    }
}

/// The node a volume's required affinity names by hostname (the shape we write).
fn on_node(pv: &PersistentVolume) -> Option<&str> {
    let terms = &pv
        .spec
        .as_ref()?
        .node_affinity
        .as_ref()?
        .required
        .as_ref()?
        .node_selector_terms;
    let expr = terms.first()?.match_expressions.as_ref()?.first()?;
    (expr.key == "kubernetes.io/hostname" && expr.operator == "In")
        .then(|| expr.values.as_ref()?.first().map(String::as_str))
        .flatten()
}

/// Creates a volume's directory, writable by any user a container may run as (as
/// local-path-provisioner does: the pod's securityContext decides who writes, not the node).
fn make_dir(dir: &Path) -> Result<(), StorageError> {
    let io = |source| StorageError::Io {
        path: dir.to_path_buf(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o777)).map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_of_a_volume() {
        let pv: PersistentVolume = serde_json::from_value(json!({"metadata": {"name": "v"},
            "spec": {"nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                {"key": "kubernetes.io/hostname", "operator": "In", "values": ["n1"]}]}]}}}}))
        .expect("pv");
        assert_eq!(on_node(&pv), Some("n1"));
        assert_eq!(on_node(&PersistentVolume::default()), None);
    }
}
