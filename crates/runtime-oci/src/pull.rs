//! Pulling a Linux image into containerd, client-side as `ctr pull` does with containerd 1.6
//! (which has no transfer service): the manifest and blobs come from the registry through the
//! shared registry client (auth challenges, plain HTTP for loopback registries), are written
//! into containerd's content store under a lease, the image record is created, and the layers
//! are unpacked into the snapshotter as a chain of committed snapshots.
//!
//! Garbage-collection labels tie it together the way containerd's own client does: the image
//! points to the manifest, the manifest's labels to the config and layers, the config's label
//! to the top snapshot, so nothing of a pulled image is collected while the image exists.

use std::collections::HashMap;

use containerd_client::services::v1::CreateRequest as CreateLeaseRequest;
use containerd_client::services::v1::snapshots::{
    CommitSnapshotRequest, RemoveSnapshotRequest, StatSnapshotRequest,
};
use containerd_client::services::v1::{
    ApplyRequest, CreateImageRequest, DeleteRequest as DeleteLeaseRequest, GetImageRequest, Image,
    InfoRequest, ReadContentRequest, UpdateImageRequest, WriteAction, WriteContentRequest,
};
use containerd_client::types::Descriptor as CtrdDescriptor;
use futures::StreamExt;
use sha2::Digest as _;
use tonic::Code;
use wasmkube_kubelet::runtime::{PullProgress, RegistryAuth};
use wasmkube_runtime_wasm::oci::{Reference, RegistryClient, pick_linux};

use crate::Error;
use crate::client::Containerd;
use crate::spec::ImageConfig;

/// The biggest layer pulled (they are held in memory once).
const MAX_LAYER: u64 = 1 << 30;
/// The size of each content write.
const WRITE_CHUNK: usize = 1 << 20;

/// A Linux image present in containerd, with what starting it needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRecord {
    /// The name containerd knows it by (`registry/repository:tag`).
    pub name: String,
    /// `registry/repository@sha256:...` (the manifest's digest), for `imageID`.
    pub image_id: String,
    pub config: ImageConfig,
    /// The chain id of the top layer: the parent of a container's snapshot.
    pub top_chain_id: String,
}

/// The image config blob: what to run, and the layers' uncompressed digests.
#[derive(Debug, serde::Deserialize)]
struct ConfigBlob {
    #[serde(default)]
    config: ImageConfig,
    rootfs: RootFs,
}

#[derive(Debug, serde::Deserialize)]
struct RootFs {
    #[serde(default)]
    diff_ids: Vec<String>,
}

/// The name containerd stores `r` under.
pub fn image_name(r: &Reference) -> String {
    match (&r.tag, &r.digest) {
        (_, Some(d)) => format!("{}@{d}", r.name()),
        (Some(t), None) => format!("{}:{t}", r.name()),
        (None, None) => format!("{}:latest", r.name()),
    }
}

fn sha256_digest(b: &[u8]) -> String {
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(b)))
}

/// The chain ids of a layer stack (the snapshot names): `chain(n) = sha256(chain(n-1) + " " +
/// diff_id(n))`, the first being its diff id.
pub fn chain_ids(diff_ids: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(diff_ids.len());
    for d in diff_ids {
        let next = match out.last() {
            None => d.clone(),
            Some(prev) => sha256_digest(format!("{prev} {d}").as_bytes()),
        };
        out.push(next);
    }
    out
}

fn rpc(what: &'static str) -> impl FnOnce(tonic::Status) -> Error {
    move |source| Error::Rpc { what, source }
}

/// The image record of `name` if containerd has it (after a node restart, or pulled by
/// `ctr`): read back from the content store.
pub async fn local(
    c: &Containerd,
    name: &str,
    snapshotter: &str,
) -> Result<Option<ImageRecord>, Error> {
    let image = match c
        .images()
        .get(c.req(GetImageRequest { name: name.into() }))
        .await
    {
        Ok(r) => r.into_inner().image,
        Err(s) if s.code() == Code::NotFound => return Ok(None),
        Err(source) => {
            return Err(Error::Rpc {
                what: "reading the image",
                source,
            });
        }
    };
    let Some(target) = image.and_then(|i| i.target) else {
        return Ok(None);
    };
    let manifest_bytes = read_content(c, &target.digest).await?;
    let manifest: serde_json::Value = serde_json::from_slice(&manifest_bytes)
        .map_err(|e| Error::Image(format!("stored manifest of {name}: {e}")))?;
    let Some(config_digest) = manifest["config"]["digest"].as_str() else {
        // An index stored by another client: pull it again the usual way.
        return Ok(None);
    };
    let config_bytes = read_content(c, config_digest).await?;
    let blob: ConfigBlob = serde_json::from_slice(&config_bytes)
        .map_err(|e| Error::Image(format!("stored config of {name}: {e}")))?;
    let chain = chain_ids(&blob.rootfs.diff_ids);
    let Some(top) = chain.last().cloned() else {
        return Ok(None);
    };
    // The image may have been pulled without unpacking (ctr pull --skip-unpack).
    let stat = StatSnapshotRequest {
        snapshotter: snapshotter.into(),
        key: top.clone(),
    };
    if c.snapshots().stat(c.req(stat)).await.is_err() {
        return Ok(None);
    }
    let repo = name
        .split_once('@')
        .map(|(n, _)| n.to_string())
        .unwrap_or_else(|| {
            // Strip the tag (a ':' after the last '/').
            match name.rsplit_once(':') {
                Some((n, t)) if !t.contains('/') => n.to_string(),
                _ => name.to_string(),
            }
        });
    Ok(Some(ImageRecord {
        name: name.to_string(),
        image_id: format!("{repo}@{}", target.digest),
        config: blob.config,
        top_chain_id: top,
    }))
}

async fn read_content(c: &Containerd, digest: &str) -> Result<Vec<u8>, Error> {
    let req = ReadContentRequest {
        digest: digest.into(),
        offset: 0,
        size: 0,
    };
    let mut stream = c
        .content()
        .read(c.req(req))
        .await
        .map_err(rpc("reading content"))?
        .into_inner();
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        out.extend_from_slice(&chunk.map_err(rpc("reading content"))?.data);
    }
    Ok(out)
}

async fn has_content(c: &Containerd, digest: &str) -> Result<bool, Error> {
    match c
        .content()
        .info(c.req(InfoRequest {
            digest: digest.into(),
        }))
        .await
    {
        Ok(_) => Ok(true),
        Err(s) if s.code() == Code::NotFound => Ok(false),
        Err(source) => Err(Error::Rpc {
            what: "checking content",
            source,
        }),
    }
}

/// Writes `bytes` as blob `digest` with `labels`, in 1 MiB writes and a committing one.
async fn write_content(
    c: &Containerd,
    digest: &str,
    bytes: Vec<u8>,
    labels: HashMap<String, String>,
    lease: &str,
) -> Result<(), Error> {
    let total = bytes.len() as i64;
    // A unique ref: two pulls of one image at once must not fight over one ingest.
    let reference = format!("wasmkube-{}-{}", digest, uuid::Uuid::new_v4().simple());
    let mut msgs = Vec::new();
    let mut offset = 0usize;
    for chunk in bytes.chunks(WRITE_CHUNK) {
        msgs.push(WriteContentRequest {
            action: WriteAction::Write as i32,
            r#ref: reference.clone(),
            total,
            expected: String::new(),
            offset: offset as i64,
            data: chunk.to_vec(),
            labels: HashMap::new(),
        });
        offset += chunk.len();
    }
    msgs.push(WriteContentRequest {
        action: WriteAction::Commit as i32,
        r#ref: reference,
        total,
        expected: digest.into(),
        offset: offset as i64,
        data: Vec::new(),
        labels,
    });
    let result = c
        .content()
        .write(c.req_lease(tokio_stream::iter(msgs), Some(lease)))
        .await;
    let check = |s: tonic::Status| {
        if s.code() == Code::AlreadyExists {
            Ok(())
        } else {
            Err(Error::Rpc {
                what: "writing content",
                source: s,
            })
        }
    };
    match result {
        Ok(resp) => {
            let mut stream = resp.into_inner();
            while let Some(msg) = stream.next().await {
                if let Err(s) = msg {
                    return check(s);
                }
            }
            Ok(())
        }
        Err(s) => check(s),
    }
}

/// Pulls `r` (manifest, config, layers), records the image as `name` and unpacks it into
/// `snapshotter`.
pub async fn pull(
    c: &Containerd,
    registry: &RegistryClient,
    r: &Reference,
    auth: Option<&RegistryAuth>,
    snapshotter: &str,
    progress: &PullProgress,
) -> Result<ImageRecord, Error> {
    let name = image_name(r);
    let raw = registry.manifest_raw(r, auth, pick_linux).await?;
    let manifest = &raw.manifest;
    let config_bytes = registry
        .blob(r, &manifest.config.digest, auth, 16 << 20, None)
        .await?;
    let blob: ConfigBlob = serde_json::from_slice(&config_bytes)
        .map_err(|e| Error::Image(format!("image config of {name}: {e}")))?;
    if blob.rootfs.diff_ids.len() != manifest.layers.len() || manifest.layers.is_empty() {
        return Err(Error::Image(format!(
            "{name}: {} layers but {} diff ids",
            manifest.layers.len(),
            blob.rootfs.diff_ids.len()
        )));
    }
    let chain = chain_ids(&blob.rootfs.diff_ids);
    let top = chain.last().cloned().unwrap_or_default();

    let lease_id = format!("wasmkube-pull-{}", uuid::Uuid::new_v4().simple());
    let mut lease_labels = HashMap::new();
    // Should this process die mid-pull, the lease (and so what it holds) still expires.
    lease_labels.insert(
        "containerd.io/gc.expire".to_string(),
        jiff::Timestamp::now()
            .checked_add(jiff::SignedDuration::from_hours(1))
            .map(|t| t.to_string())
            .unwrap_or_default(),
    );
    c.leases()
        .create(c.req(CreateLeaseRequest {
            id: lease_id.clone(),
            labels: lease_labels,
        }))
        .await
        .map_err(rpc("creating a lease"))?;
    let result = pull_under_lease(
        c,
        registry,
        r,
        auth,
        snapshotter,
        &raw,
        config_bytes,
        &blob,
        &chain,
        &lease_id,
        progress,
    )
    .await;
    let _ = c
        .leases()
        .delete(c.req(DeleteLeaseRequest {
            id: lease_id,
            sync: false,
        }))
        .await;
    result?;
    Ok(ImageRecord {
        image_id: format!("{}@{}", r.name(), raw.digest),
        name,
        config: blob.config,
        top_chain_id: top,
    })
}

#[allow(clippy::too_many_arguments)]
async fn pull_under_lease(
    c: &Containerd,
    registry: &RegistryClient,
    r: &Reference,
    auth: Option<&RegistryAuth>,
    snapshotter: &str,
    raw: &wasmkube_runtime_wasm::oci::RawImageManifest,
    config_bytes: Vec<u8>,
    blob: &ConfigBlob,
    chain: &[String],
    lease: &str,
    progress: &PullProgress,
) -> Result<(), Error> {
    let manifest = &raw.manifest;
    let name = image_name(r);
    // What is missing is known before anything downloads, so progress has its total at once.
    let mut missing = Vec::new();
    for layer in &manifest.layers {
        if !has_content(c, &layer.digest).await? {
            progress.expect(layer.size);
            missing.push(layer);
        }
    }
    for layer in missing {
        {
            let bytes = registry
                .blob(r, &layer.digest, auth, MAX_LAYER, Some(progress))
                .await?;
            write_content(c, &layer.digest, bytes, HashMap::new(), lease).await?;
        }
    }
    let top = chain.last().cloned().unwrap_or_default();
    let mut config_labels = HashMap::new();
    config_labels.insert(format!("containerd.io/gc.ref.snapshot.{snapshotter}"), top);
    write_content(
        c,
        &manifest.config.digest,
        config_bytes,
        config_labels,
        lease,
    )
    .await?;
    let mut manifest_labels = HashMap::new();
    manifest_labels.insert(
        "containerd.io/gc.ref.content.config".to_string(),
        manifest.config.digest.clone(),
    );
    for (i, l) in manifest.layers.iter().enumerate() {
        manifest_labels.insert(
            format!("containerd.io/gc.ref.content.l.{i}"),
            l.digest.clone(),
        );
    }
    write_content(c, &raw.digest, raw.bytes.clone(), manifest_labels, lease).await?;

    // Unpack: each layer applied onto a snapshot of the ones below, committed under its
    // chain id; layers another image already unpacked are skipped.
    let mut parent = String::new();
    for ((layer, _diff_id), chain_id) in manifest
        .layers
        .iter()
        .zip(blob.rootfs.diff_ids.iter())
        .zip(chain.iter())
    {
        let stat = StatSnapshotRequest {
            snapshotter: snapshotter.into(),
            key: chain_id.clone(),
        };
        if c.snapshots().stat(c.req(stat)).await.is_ok() {
            parent = chain_id.clone();
            continue;
        }
        let key = format!("extract-{} {chain_id}", uuid::Uuid::new_v4().simple());
        let mounts = c
            .prepare_snapshot(snapshotter, &key, &parent, Some(lease))
            .await?;
        let apply = ApplyRequest {
            diff: Some(CtrdDescriptor {
                media_type: layer.media_type.clone(),
                digest: layer.digest.clone(),
                size: layer.size as i64,
                annotations: HashMap::new(),
            }),
            mounts,
            payloads: HashMap::new(),
            sync_fs: false,
        };
        let applied = c.diff().apply(c.req_lease(apply, Some(lease))).await;
        if let Err(source) = applied {
            let _ = c
                .snapshots()
                .remove(c.req(RemoveSnapshotRequest {
                    snapshotter: snapshotter.into(),
                    key,
                }))
                .await;
            return Err(Error::Rpc {
                what: "applying a layer",
                source,
            });
        }
        let commit = CommitSnapshotRequest {
            snapshotter: snapshotter.into(),
            name: chain_id.clone(),
            key: key.clone(),
            labels: HashMap::new(),
        };
        match c.snapshots().commit(c.req_lease(commit, Some(lease))).await {
            Ok(_) => {}
            // Another pull committed the same layer first: ours is surplus.
            Err(s) if s.code() == Code::AlreadyExists => {
                let _ = c
                    .snapshots()
                    .remove(c.req(RemoveSnapshotRequest {
                        snapshotter: snapshotter.into(),
                        key,
                    }))
                    .await;
            }
            Err(source) => {
                return Err(Error::Rpc {
                    what: "committing a layer snapshot",
                    source,
                });
            }
        }
        parent = chain_id.clone();
    }

    let image = Image {
        name: name.clone(),
        labels: HashMap::new(),
        target: Some(CtrdDescriptor {
            media_type: raw.media_type.clone(),
            digest: raw.digest.clone(),
            size: raw.bytes.len() as i64,
            annotations: HashMap::new(),
        }),
        created_at: None,
        updated_at: None,
    };
    let created = c
        .images()
        .create(c.req(CreateImageRequest {
            image: Some(image.clone()),
            source_date_epoch: None,
        }))
        .await;
    match created {
        Ok(_) => Ok(()),
        // A new digest for the same tag (a re-pushed image): point the name at it.
        Err(s) if s.code() == Code::AlreadyExists => c
            .images()
            .update(c.req(UpdateImageRequest {
                image: Some(image),
                update_mask: None,
                source_date_epoch: None,
            }))
            .await
            .map(|_| ())
            .map_err(rpc("updating the image")),
        Err(source) => Err(Error::Rpc {
            what: "creating the image",
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_ids_follow_the_oci_rule() {
        let a = format!("sha256:{}", "a".repeat(64));
        let b = format!("sha256:{}", "b".repeat(64));
        let ids = chain_ids(&[a.clone(), b.clone()]);
        assert_eq!(ids[0], a);
        assert_eq!(ids[1], sha256_digest(format!("{a} {b}").as_bytes()));
        assert!(chain_ids(&[]).is_empty());
    }

    #[test]
    fn image_names_are_fully_qualified() {
        let r = Reference::parse("busybox").expect("ref");
        assert_eq!(image_name(&r), "docker.io/library/busybox:latest");
        let r = Reference::parse("127.0.0.1:5000/t/busybox:v1").expect("ref");
        assert_eq!(image_name(&r), "127.0.0.1:5000/t/busybox:v1");
    }
}
