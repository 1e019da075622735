//! Pod volumes, materialized as directories on the node, and the mounts each container gets.
//!
//! emptyDir lives under the pod's own directory (removed with the pod); hostPath is the host
//! directory itself; configMap, secret and downwardAPI are written as files (with `items` and
//! `defaultMode` honoured) into a fresh directory, so a guest sees exactly the keys its spec
//! grants and nothing else. A persistentVolumeClaim is the directory of the `local` or
//! `hostPath` PersistentVolume it is bound to (see [`crate::storage`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::{Container, KeyToPath, Pod, Volume};

use crate::env::{self, EnvError, Sources};
use crate::runtime::Mount;

#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    #[error("volume {volume:?}: {source}")]
    Source {
        volume: String,
        #[source]
        source: EnvError,
    },
    #[error("volume {volume:?}: configmap references non-existent config key: {key}")]
    MissingKey { volume: String, key: String },
    #[error("volume {volume:?}: hostPath {path} does not exist or is not a {expected}")]
    HostPath {
        volume: String,
        path: String,
        expected: &'static str,
    },
    #[error("volume {volume:?}: type is not supported on this node")]
    Unsupported { volume: String },
    #[error("volume {volume:?}: persistentvolumeclaim {claim:?} {problem}")]
    Claim {
        volume: String,
        claim: String,
        problem: String,
    },
    #[error("volume {volume:?}: item path {path:?} must be relative and may not contain '..'")]
    BadPath { volume: String, path: String },
    #[error("container mounts volume {0:?}, which the pod does not define")]
    UnknownVolume(String),
    #[error("subPath {0:?} must be relative and may not contain '..'")]
    BadSubPath(String),
    #[error("preparing {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> VolumeError + '_ {
    move |source| VolumeError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A relative path that stays inside its directory.
fn safe_relative(p: &str) -> bool {
    !p.is_empty()
        && !p.starts_with('/')
        && Path::new(p)
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)))
}

fn write_file(dir: &Path, rel: &str, data: &[u8], mode: Option<i32>) -> Result<(), VolumeError> {
    let path = dir.join(rel);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io(parent))?;
    }
    std::fs::write(&path, data).map_err(io(&path))?;
    #[cfg(unix)]
    if let Some(mode) = mode {
        use std::os::unix::fs::PermissionsExt;
        let _ =
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode as u32 & 0o777));
    }
    Ok(())
}

/// Writes `data` (key → bytes) into `dir`, all keys or just `items`.
fn write_keys(
    volume: &str,
    dir: &Path,
    data: &BTreeMap<String, Vec<u8>>,
    items: Option<&Vec<KeyToPath>>,
    default_mode: Option<i32>,
    optional: bool,
) -> Result<(), VolumeError> {
    match items {
        Some(items) if !items.is_empty() => {
            for item in items {
                if !safe_relative(&item.path) {
                    return Err(VolumeError::BadPath {
                        volume: volume.into(),
                        path: item.path.clone(),
                    });
                }
                match data.get(&item.key) {
                    Some(bytes) => write_file(dir, &item.path, bytes, item.mode.or(default_mode))?,
                    None if optional => {}
                    None => {
                        return Err(VolumeError::MissingKey {
                            volume: volume.into(),
                            key: item.key.clone(),
                        });
                    }
                }
            }
        }
        _ => {
            for (k, bytes) in data {
                if safe_relative(k) {
                    write_file(dir, k, bytes, default_mode)?;
                }
            }
        }
    }
    Ok(())
}

/// Directories of a pod's volumes by volume name.
#[derive(Debug, Default, Clone)]
pub struct PodVolumes {
    pub dirs: BTreeMap<String, (PathBuf, bool)>,
}

/// Prepares every volume of `pod` under `pod_dir`.
pub async fn prepare(
    sources: &mut Sources,
    pod: &Pod,
    pod_dir: &Path,
) -> Result<PodVolumes, VolumeError> {
    let mut out = PodVolumes::default();
    let volumes: Vec<Volume> = pod
        .spec
        .as_ref()
        .and_then(|s| s.volumes.clone())
        .unwrap_or_default();
    for v in volumes {
        let name = v.name.clone();
        let src_err = |source| VolumeError::Source {
            volume: name.clone(),
            source,
        };
        let dir = pod_dir.join("volumes").join(&name);
        let (path, read_only) = if v.empty_dir.is_some() {
            std::fs::create_dir_all(&dir).map_err(io(&dir))?;
            (dir, false)
        } else if let Some(hp) = &v.host_path {
            let p = PathBuf::from(&hp.path);
            let ty = hp.type_.as_deref().unwrap_or("");
            match ty {
                "DirectoryOrCreate" => std::fs::create_dir_all(&p).map_err(io(&p))?,
                "Directory" if !p.is_dir() => {
                    return Err(VolumeError::HostPath {
                        volume: name,
                        path: hp.path.clone(),
                        expected: "directory",
                    });
                }
                "File" | "FileOrCreate" | "Socket" | "CharDevice" | "BlockDevice"
                    // Wasm guests see directories only; single files are mounted through
                    // their parent by the runtime.
                    if ty == "FileOrCreate" && !p.exists() => {
                        if let Some(parent) = p.parent() {
                            std::fs::create_dir_all(parent).map_err(io(parent))?;
                        }
                        std::fs::write(&p, b"").map_err(io(&p))?;
                    }
                _ => {}
            }
            (p, false)
        } else if let Some(cm) = &v.config_map {
            reset(&dir)?;
            let optional = cm.optional.unwrap_or(false);
            match sources.config_map(&cm.name).await.map_err(src_err)? {
                Some(obj) => write_keys(
                    &name,
                    &dir,
                    &env::config_map_data(obj),
                    cm.items.as_ref(),
                    cm.default_mode,
                    optional,
                )?,
                None if optional => {}
                None => {
                    return Err(VolumeError::Source {
                        volume: name,
                        source: EnvError::ConfigMapNotFound(cm.name.clone()),
                    });
                }
            }
            (dir, true)
        } else if let Some(sec) = &v.secret {
            reset(&dir)?;
            let optional = sec.optional.unwrap_or(false);
            let secret_name = sec.secret_name.clone().unwrap_or_default();
            match sources.secret(&secret_name).await.map_err(src_err)? {
                Some(obj) => write_keys(
                    &name,
                    &dir,
                    &env::secret_data(obj),
                    sec.items.as_ref(),
                    sec.default_mode,
                    optional,
                )?,
                None if optional => {}
                None => {
                    return Err(VolumeError::Source {
                        volume: name,
                        source: EnvError::SecretNotFound(secret_name),
                    });
                }
            }
            (dir, true)
        } else if let Some(dapi) = &v.downward_api {
            reset(&dir)?;
            for item in dapi.items.clone().unwrap_or_default() {
                if !safe_relative(&item.path) {
                    return Err(VolumeError::BadPath {
                        volume: name,
                        path: item.path,
                    });
                }
                let value = match &item.field_ref {
                    Some(f) => env::field_value(pod, &f.field_path).map_err(src_err)?,
                    None => String::new(),
                };
                write_file(
                    &dir,
                    &item.path,
                    value.as_bytes(),
                    item.mode.or(dapi.default_mode),
                )?;
            }
            (dir, true)
        } else if let Some(pvc) = &v.persistent_volume_claim {
            let path = claim_dir(sources, &name, &pvc.claim_name).await?;
            (path, pvc.read_only.unwrap_or(false))
        } else {
            return Err(VolumeError::Unsupported { volume: name });
        };
        out.dirs.insert(v.name.clone(), (path, read_only));
    }
    Ok(out)
}

/// The node directory of the volume a claim is bound to.
async fn claim_dir(
    sources: &Sources,
    volume: &str,
    claim_name: &str,
) -> Result<PathBuf, VolumeError> {
    let problem = |problem: String| VolumeError::Claim {
        volume: volume.to_string(),
        claim: claim_name.to_string(),
        problem,
    };
    let src_err = |source| VolumeError::Source {
        volume: volume.to_string(),
        source,
    };
    let claim = sources
        .claim(claim_name)
        .await
        .map_err(src_err)?
        .ok_or_else(|| problem("not found".into()))?;
    let bound = claim.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Bound");
    let pv_name = claim
        .spec
        .as_ref()
        .and_then(|s| s.volume_name.clone())
        .filter(|n| bound && !n.is_empty())
        .ok_or_else(|| problem("is not bound".into()))?;
    let pv = sources
        .volume(&pv_name)
        .await
        .map_err(src_err)?
        .ok_or_else(|| {
            problem(format!(
                "is bound to persistentvolume {pv_name:?}, which does not exist"
            ))
        })?;
    let spec = pv.spec.unwrap_or_default();
    let path = match (spec.local, spec.host_path) {
        (Some(local), _) => local.path,
        (None, Some(host)) => host.path,
        _ => {
            return Err(problem(format!(
                "is bound to persistentvolume {pv_name:?}, whose type is not supported on this node"
            )));
        }
    };
    let path = PathBuf::from(path);
    if !path.is_dir() {
        return Err(VolumeError::HostPath {
            volume: volume.to_string(),
            path: path.display().to_string(),
            expected: "directory",
        });
    }
    Ok(path)
}

/// Recreates `dir` empty: projected contents are rewritten whole on every start.
fn reset(dir: &Path) -> Result<(), VolumeError> {
    if dir.exists() {
        std::fs::remove_dir_all(dir).map_err(io(dir))?;
    }
    std::fs::create_dir_all(dir).map_err(io(dir))
}

/// The mounts of one container, from its volumeMounts.
pub fn mounts(volumes: &PodVolumes, container: &Container) -> Result<Vec<Mount>, VolumeError> {
    let mut out = Vec::new();
    for vm in container.volume_mounts.clone().unwrap_or_default() {
        let (dir, projected_ro) = volumes
            .dirs
            .get(&vm.name)
            .ok_or_else(|| VolumeError::UnknownVolume(vm.name.clone()))?;
        let host_path = match vm.sub_path.as_deref() {
            Some(sub) if !sub.is_empty() => {
                if !safe_relative(sub) {
                    return Err(VolumeError::BadSubPath(sub.to_string()));
                }
                let p = dir.join(sub);
                if !p.exists() {
                    std::fs::create_dir_all(&p).map_err(io(&p))?;
                }
                p
            }
            _ => dir.clone(),
        };
        out.push(Mount {
            host_path,
            container_path: vm.mount_path.clone(),
            read_only: vm.read_only.unwrap_or(false) || *projected_ro,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths() {
        assert!(safe_relative("a/b"));
        assert!(!safe_relative("../a"));
        assert!(!safe_relative("/etc"));
        assert!(!safe_relative("a/../../b"));
        assert!(!safe_relative(""));
    }

    #[test]
    fn items_select_keys() {
        let dir = tempfile::tempdir().expect("tmp");
        let data: BTreeMap<String, Vec<u8>> = [
            ("a".to_string(), b"1".to_vec()),
            ("b".to_string(), b"2".to_vec()),
        ]
        .into_iter()
        .collect();
        let items = vec![KeyToPath {
            key: "b".into(),
            path: "sub/bee".into(),
            ..Default::default()
        }];
        write_keys("v", dir.path(), &data, Some(&items), None, false).expect("write");
        assert!(!dir.path().join("a").exists());
        assert_eq!(
            std::fs::read(dir.path().join("sub/bee")).expect("read"),
            b"2"
        );
        let missing = vec![KeyToPath {
            key: "zzz".into(),
            path: "z".into(),
            ..Default::default()
        }];
        assert!(write_keys("v", dir.path(), &data, Some(&missing), None, false).is_err());
        assert!(write_keys("v", dir.path(), &data, Some(&missing), None, true).is_ok());
    }
}
