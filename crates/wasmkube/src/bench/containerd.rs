//! The `ctr run --rm` reference of `pod-start`: a private containerd (Debian's `containerd`
//! with `runc`, installed by `scripts/bench-deps.sh`) started as a child with its own config,
//! root, state and socket in a temporary directory, and a busybox image built here from
//! Debian's `busybox-static` as an OCI image layout archive and imported with `ctr`.
//!
//! Nothing here touches a system containerd: every `ctr` call names the private socket and
//! the `wasmkube-bench` namespace.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use super::cluster::Proc;

const NAMESPACE: &str = "wasmkube-bench";
const BASE_NAME: &str = "docker.io/wasmkube/busybox";
const TAG: &str = "bench";
const BUSYBOX: &str = "/bin/busybox";

pub(crate) struct CtrResult {
    /// One duration per timed `ctr run --rm`.
    pub samples: Vec<Duration>,
    pub snapshotter: &'static str,
    pub runc_version: String,
}

/// Times `runs` runs of `ctr run --rm IMAGE id /bin/true` after one untimed warm-up run. An
/// error says why the reference is unavailable (it is printed, never replaced by a guess).
pub(crate) async fn ctr_run_reference(runs: usize) -> Result<CtrResult, String> {
    reference(runs).await.map_err(|e| format!("{e:#}"))
}

async fn reference(runs: usize) -> anyhow::Result<CtrResult> {
    for tool in ["containerd", "ctr", "runc", "containerd-shim-runc-v2"] {
        if which(tool).is_none() {
            bail!("{tool} is not installed (run scripts/bench-deps.sh)");
        }
    }
    if !Path::new(BUSYBOX).is_file() {
        bail!("{BUSYBOX} is missing (busybox-static; run scripts/bench-deps.sh)");
    }
    let runc_version = std::process::Command::new("runc")
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .and_then(|l| l.split_whitespace().nth(2))
                .map(str::to_string)
        })
        .unwrap_or_else(|| "?".into());

    // Short path: the socket's must fit in sun_path (108 bytes).
    let dir = tempfile::Builder::new()
        .prefix("wkb-ctrd-")
        .tempdir_in("/tmp")
        .context("creating containerd's directory")?;
    let containerd = Containerd::start(dir.path()).await?;

    let archive = dir.path().join("busybox-oci.tar");
    std::fs::write(
        &archive,
        wasmkube_runtime_oci::image::busybox_oci_archive(BUSYBOX, TAG)?,
    )
    .with_context(|| format!("writing {}", archive.display()))?;

    // overlayfs is containerd's default and what a node would use; `native` (plain copies)
    // is the fallback where overlay mounts are not allowed.
    let mut last_error = String::new();
    for snapshotter in ["overlayfs", "native"] {
        let import = containerd
            .ctr(&["images", "import", "--base-name", BASE_NAME])
            .args(["--snapshotter", snapshotter])
            .arg(&archive)
            .output()
            .context("running ctr images import")?;
        if !import.status.success() {
            last_error = format!(
                "ctr images import ({snapshotter}): {}",
                String::from_utf8_lossy(&import.stderr).trim()
            );
            continue;
        }
        let image = format!("{BASE_NAME}:{TAG}");
        let mut samples = Vec::with_capacity(runs);
        let mut failed = None;
        for i in 0..=runs {
            let id = format!("bench-{snapshotter}-{i}");
            let t = Instant::now();
            let out = containerd
                .ctr(&["run", "--rm", "--snapshotter", snapshotter])
                .args([image.as_str(), id.as_str(), "/bin/true"])
                .output()
                .context("running ctr run")?;
            let took = t.elapsed();
            if !out.status.success() {
                failed = Some(format!(
                    "ctr run --rm ({snapshotter}) exited {}: {}",
                    out.status,
                    String::from_utf8_lossy(&out.stderr).trim()
                ));
                break;
            }
            // The first run also unpacks the image into the snapshotter: not timed.
            if i > 0 {
                samples.push(took);
            }
        }
        match failed {
            None => {
                containerd.stop().await;
                return Ok(CtrResult {
                    samples,
                    snapshotter,
                    runc_version,
                });
            }
            Some(e) => last_error = e,
        }
    }
    let log = containerd.proc.log_tail(10);
    containerd.stop().await;
    bail!("{last_error}\ncontainerd log:\n{log}")
}

fn which(tool: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(tool))
            .find(|p| p.is_file())
    })
}

pub(crate) struct Containerd {
    pub(crate) proc: Proc,
    pub(crate) socket: PathBuf,
}

impl Containerd {
    pub(crate) async fn start(dir: &Path) -> anyhow::Result<Containerd> {
        let socket = dir.join("containerd.sock");
        let config = dir.join("config.toml");
        // The CRI plugin is off: it is not used and would only add start-up work (and it
        // wants CNI). Root and state are private, so images, snapshots and shims never mix
        // with a system containerd's.
        let toml = format!(
            r#"version = 2
root = "{root}"
state = "{state}"
disabled_plugins = ["io.containerd.grpc.v1.cri"]

[grpc]
  address = "{sock}"

[ttrpc]
  address = "{sock}.ttrpc"

[debug]
  address = ""

[metrics]
  address = ""
"#,
            root = dir.join("root").display(),
            state = dir.join("state").display(),
            sock = socket.display(),
        );
        std::fs::write(&config, toml).with_context(|| format!("writing {}", config.display()))?;
        let mut cmd = Command::new("containerd");
        cmd.arg("--config").arg(&config);
        let mut proc = Proc::spawn(cmd, "containerd", dir.join("containerd.log"))?;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ok = ctr_command(&socket, &["version"])
                .output()
                .map(|o| o.status.success())
                .unwrap_or(false);
            if ok {
                break;
            }
            if proc.has_exited() || Instant::now() > deadline {
                bail!("containerd did not start:\n{}", proc.log_tail(20));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(Containerd { proc, socket })
    }

    fn ctr(&self, args: &[&str]) -> Command {
        ctr_command(&self.socket, args)
    }

    /// Imports the busybox image into containerd namespace `namespace` (overlayfs, else
    /// native) as `docker.io/wasmkube/busybox:bench`; returns that name.
    pub(crate) fn import_busybox(&self, namespace: &str, dir: &Path) -> anyhow::Result<String> {
        let archive = dir.join("busybox-oci.tar");
        std::fs::write(
            &archive,
            wasmkube_runtime_oci::image::busybox_oci_archive(BUSYBOX, TAG)?,
        )
        .with_context(|| format!("writing {}", archive.display()))?;
        let mut last = String::new();
        for snapshotter in ["overlayfs", "native"] {
            let out = Command::new("ctr")
                .arg("--address")
                .arg(&self.socket)
                .args([
                    "--namespace",
                    namespace,
                    "images",
                    "import",
                    "--base-name",
                    BASE_NAME,
                ])
                .args(["--snapshotter", snapshotter])
                .arg(&archive)
                .output()
                .context("running ctr images import")?;
            if out.status.success() {
                return Ok(format!("{BASE_NAME}:{TAG}"));
            }
            last = String::from_utf8_lossy(&out.stderr).trim().to_string();
        }
        bail!("ctr images import: {last}")
    }

    /// SIGTERM first so containerd unmounts and removes what it made; the `Proc` guard kills
    /// it if it has not gone in a few seconds.
    pub(crate) async fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.proc.pid().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while !self.proc.has_exited() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// `ctr` on the private socket, in the benchmark's namespace.
fn ctr_command(socket: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new("ctr");
    cmd.arg("--address")
        .arg(socket)
        .args(["--namespace", NAMESPACE])
        .args(args);
    cmd
}
