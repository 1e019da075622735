//! `wasmkube snapshot save FILE` and `wasmkube snapshot restore FILE`, and the route of the
//! server they save through.
//!
//! A snapshot is taken by the running server (the redb file is the server's alone), read at
//! one revision while writes go on, and carries the cluster's bootstrap data (CA, signing
//! key, admin token, sealed with the token) so that a restore brings back a cluster that the
//! old kubeconfigs and tokens still work with. It restores into a new data directory (redb) or
//! into an empty etcd, which is also how a cluster moves from redb to etcd.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use axum::response::IntoResponse;
use wasmkube_apiserver::bootstrap_data::{self, BOOTSTRAP_KEY};
use wasmkube_store::snapshot::{self, Snapshot};
use wasmkube_store::{EtcdOptions, EtcdStore, RedbStore, Store};

/// The server's snapshot route (a non-resource URL: only cluster administrators may read it).
pub const SNAPSHOT_PATH: &str = "/wasmkube/v1/snapshot";

#[derive(clap::Args, Debug)]
pub struct SnapshotArgs {
    #[command(subcommand)]
    command: SnapshotCommand,
}

#[derive(clap::Subcommand, Debug)]
enum SnapshotCommand {
    /// Save the running cluster's state (through its API server) to FILE.
    Save(SaveArgs),
    /// Restore FILE into a new data directory (redb) or an empty etcd.
    Restore(RestoreArgs),
}

#[derive(clap::Args, Debug)]
struct SaveArgs {
    /// Where to write the snapshot.
    file: PathBuf,
    #[command(flatten)]
    global: crate::cli::GlobalArgs,
}

#[derive(clap::Args, Debug)]
struct RestoreArgs {
    /// The snapshot file.
    file: PathBuf,
    /// A new data directory to restore into (its redb store and bootstrap files).
    #[arg(long, short = 'd')]
    data_dir: Option<PathBuf>,
    /// Restore into this etcd instead (it must hold no keys), e.g. to move a cluster from redb
    /// to etcd.
    #[arg(long, value_delimiter = ',')]
    datastore_endpoint: Vec<String>,
    #[arg(long)]
    datastore_cafile: Option<PathBuf>,
    #[arg(long)]
    datastore_certfile: Option<PathBuf>,
    #[arg(long)]
    datastore_keyfile: Option<PathBuf>,
    /// The cluster token, to restore the CA and tokens into the data directory.
    #[arg(long, env = "WASMKUBE_TOKEN")]
    token: Option<String>,
}

pub async fn run(args: SnapshotArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        SnapshotCommand::Save(args) => save(args).await,
        SnapshotCommand::Restore(args) => restore(args).await,
    }
}

async fn save(args: SaveArgs) -> anyhow::Result<ExitCode> {
    let session = crate::cli::Session::connect(&args.global).await?;
    let mut body = session.api.chunks(SNAPSHOT_PATH).await?;
    let mut bytes = Vec::new();
    while let Some(chunk) = body.next_chunk().await {
        bytes.extend_from_slice(&chunk?);
    }
    // A snapshot cut short (the server died, the history it read at was compacted) fails its
    // check here instead of being found out at restore time.
    let parsed = snapshot::parse(&bytes).context("the server's snapshot did not arrive whole")?;
    let tmp = args.file.with_extension("partial");
    std::fs::write(&tmp, &bytes).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, &args.file)
        .with_context(|| format!("writing {}", args.file.display()))?;
    println!(
        "Snapshot saved: {} ({} keys at revision {})",
        args.file.display(),
        parsed.entries.len(),
        parsed.revision
    );
    Ok(ExitCode::SUCCESS)
}

async fn restore(args: RestoreArgs) -> anyhow::Result<ExitCode> {
    let bytes =
        std::fs::read(&args.file).with_context(|| format!("reading {}", args.file.display()))?;
    let parsed = snapshot::parse(&bytes)
        .with_context(|| format!("{} is not a usable snapshot", args.file.display()))?;
    let (store, target): (Arc<dyn Store>, String) =
        match (&args.data_dir, args.datastore_endpoint.is_empty()) {
            (Some(_), false) => bail!("give --data-dir or --datastore-endpoint, not both"),
            (None, true) => bail!("give --data-dir (a new one) or --datastore-endpoint"),
            (Some(dir), true) => (
                restore_dir(dir, &parsed, args.token.as_deref())?,
                dir.display().to_string(),
            ),
            (None, false) => {
                let options = EtcdOptions::new(args.datastore_endpoint.iter().cloned()).with_tls(
                    args.datastore_cafile.clone(),
                    args.datastore_certfile.clone(),
                    args.datastore_keyfile.clone(),
                );
                let store = EtcdStore::connect(&options)
                    .await
                    .context("connecting to the datastore")?;
                (Arc::new(store), args.datastore_endpoint.join(","))
            }
        };
    let written = snapshot::restore(&store, &parsed)
        .await
        .with_context(|| format!("restoring into {target}"))?;
    store.close().await;
    println!(
        "Snapshot restored into {target}: {written} keys (taken at revision {})",
        parsed.revision
    );
    Ok(ExitCode::SUCCESS)
}

/// Opens a new redb store in `dir` and puts the snapshot's bootstrap files beside it.
fn restore_dir(
    dir: &std::path::Path,
    parsed: &Snapshot,
    token: Option<&str>,
) -> anyhow::Result<Arc<dyn Store>> {
    let path = dir.join("state.redb");
    if path.exists() {
        bail!(
            "{} already holds a store: restore into a new data directory",
            dir.display()
        );
    }
    if let Some(sealed) = parsed.get(BOOTSTRAP_KEY) {
        let Some(token) = token else {
            bail!(
                "the snapshot carries the cluster's CA and tokens: give the cluster's --token to restore them"
            );
        };
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        bootstrap_data::unseal_into(dir, sealed, token)
            .context("restoring the cluster's CA and tokens")?;
    }
    let store = RedbStore::open(&path).with_context(|| format!("creating {}", path.display()))?;
    Ok(Arc::new(store))
}

/// `GET /wasmkube/v1/snapshot` on the server: the snapshot as a stream.
pub fn route(
    store: Arc<dyn Store>,
    dir: PathBuf,
    token: Option<String>,
    on_etcd: bool,
) -> axum::Router {
    axum::Router::new().route(
        SNAPSHOT_PATH,
        axum::routing::get(move || {
            let store = store.clone();
            let dir = dir.clone();
            let token = token.clone();
            async move {
                // On etcd the bootstrap data is a key of the store already; a redb server's
                // lives in its data directory and is sealed into the snapshot the same way.
                let mut extra = Vec::new();
                if !on_etcd && let Some(token) = &token {
                    match bootstrap_data::seal(&dir, token) {
                        Ok(sealed) => extra.push((BOOTSTRAP_KEY.to_string(), sealed)),
                        Err(error) => {
                            let message = format!(
                                "sealing the bootstrap data: {}",
                                wasmkube_controllers::error_chain(&error)
                            );
                            return wasmkube_apiserver::error::ApiError::internal(message)
                                .into_response();
                        }
                    }
                }
                let body = axum::body::Body::from_stream(snapshot::save(store, extra));
                ([("content-type", "application/octet-stream")], body).into_response()
            }
        }),
    )
}
