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
use sha2::Digest;

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
    std::fs::write(&archive, busybox_oci_archive(BUSYBOX)?)
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

struct Containerd {
    proc: Proc,
    socket: PathBuf,
}

impl Containerd {
    async fn start(dir: &Path) -> anyhow::Result<Containerd> {
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

    /// SIGTERM first so containerd unmounts and removes what it made; the `Proc` guard kills
    /// it if it has not gone in a few seconds.
    async fn stop(mut self) {
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

/// An OCI image layout archive (`oci-layout`, `index.json`, blobs) of one image whose single
/// gzip layer holds `bin/busybox` and `bin/true` → `busybox`.
pub(crate) fn busybox_oci_archive(busybox: &str) -> anyhow::Result<Vec<u8>> {
    let bin = std::fs::read(busybox).with_context(|| format!("reading {busybox}"))?;
    let mut layer = TarWriter::default();
    layer.dir("bin/");
    layer.file("bin/busybox", 0o755, &bin);
    layer.symlink("bin/true", "busybox");
    let layer_tar = layer.finish();
    let diff_id = sha256(&layer_tar);
    let layer_gz = gzip_stored(&layer_tar);

    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": arch,
        "os": "linux",
        "config": {"Env": ["PATH=/bin"], "Cmd": ["/bin/true"]},
        "rootfs": {"type": "layers", "diff_ids": [format!("sha256:{diff_id}")]},
    }))?;
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": format!("sha256:{}", sha256(&config)),
            "size": config.len(),
        },
        "layers": [{
            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
            "digest": format!("sha256:{}", sha256(&layer_gz)),
            "size": layer_gz.len(),
        }],
    }))?;
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": format!("sha256:{}", sha256(&manifest)),
            "size": manifest.len(),
            "platform": {"architecture": arch, "os": "linux"},
            "annotations": {"org.opencontainers.image.ref.name": TAG},
        }],
    }))?;

    let mut out = TarWriter::default();
    out.file("oci-layout", 0o644, br#"{"imageLayoutVersion":"1.0.0"}"#);
    out.file("index.json", 0o644, &index);
    out.dir("blobs/");
    out.dir("blobs/sha256/");
    for blob in [&config, &manifest, &layer_gz] {
        out.file(&format!("blobs/sha256/{}", sha256(blob)), 0o644, blob);
    }
    Ok(out.finish())
}

fn sha256(b: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(b))
}

/// A ustar archive writer: enough for regular files, directories and symlinks with short
/// names (all an image layout and a busybox layer need).
#[derive(Default)]
struct TarWriter {
    buf: Vec<u8>,
}

impl TarWriter {
    fn dir(&mut self, name: &str) {
        self.header(name, 0o755, 0, b'5', "");
    }

    fn file(&mut self, name: &str, mode: u32, data: &[u8]) {
        self.header(name, mode, data.len(), b'0', "");
        self.buf.extend_from_slice(data);
        self.pad();
    }

    fn symlink(&mut self, name: &str, target: &str) {
        self.header(name, 0o777, 0, b'2', target);
    }

    fn finish(mut self) -> Vec<u8> {
        // Two zero blocks end the archive.
        self.buf.extend_from_slice(&[0u8; 1024]);
        self.buf
    }

    fn pad(&mut self) {
        let rem = self.buf.len() % 512;
        if rem != 0 {
            self.buf.resize(self.buf.len() + 512 - rem, 0);
        }
    }

    fn header(&mut self, name: &str, mode: u32, size: usize, kind: u8, link: &str) {
        let mut h = [0u8; 512];
        let put = |h: &mut [u8; 512], at: usize, s: &[u8]| h[at..at + s.len()].copy_from_slice(s);
        put(&mut h, 0, &name.as_bytes()[..name.len().min(100)]);
        put(&mut h, 100, format!("{mode:07o}\0").as_bytes());
        put(&mut h, 108, b"0000000\0");
        put(&mut h, 116, b"0000000\0");
        put(&mut h, 124, format!("{size:011o}\0").as_bytes());
        // A fixed mtime keeps the layer (and so its digest) reproducible.
        put(
            &mut h,
            136,
            format!("{:011o}\0", 1_700_000_000u64).as_bytes(),
        );
        put(&mut h, 148, b"        ");
        h[156] = kind;
        put(&mut h, 157, &link.as_bytes()[..link.len().min(100)]);
        put(&mut h, 257, b"ustar\0");
        put(&mut h, 263, b"00");
        put(&mut h, 265, b"root");
        put(&mut h, 297, b"root");
        put(&mut h, 329, b"0000000\0");
        put(&mut h, 337, b"0000000\0");
        let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
        put(&mut h, 148, format!("{sum:06o}\0 ").as_bytes());
        self.buf.extend_from_slice(&h);
    }
}

/// gzip (RFC 1952) of `data` in stored (uncompressed) deflate blocks: a valid gzip layer
/// without a compression library; the layer is small, so its size does not matter.
fn gzip_stored(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + data.len() / 65535 * 5 + 32);
    out.extend_from_slice(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff]);
    let mut chunks = data.chunks(65535).peekable();
    if chunks.peek().is_none() {
        out.extend_from_slice(&[1, 0, 0, 0xff, 0xff]);
    }
    while let Some(chunk) = chunks.next() {
        let last = chunks.peek().is_none();
        let len = chunk.len() as u16;
        out.push(u8::from(last));
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(chunk);
    }
    out.extend_from_slice(&crc32(data).to_le_bytes());
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out
}

/// CRC-32 (IEEE 802.3, as gzip uses it).
fn crc32(data: &[u8]) -> u32 {
    let table: Vec<u32> = (0..256u32)
        .map(|n| {
            (0..8).fold(n, |c, _| {
                if c & 1 != 0 {
                    0xedb8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                }
            })
        })
        .collect();
    !data.iter().fold(!0u32, |c, &b| {
        table[((c ^ u32::from(b)) & 0xff) as usize] ^ (c >> 8)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_matches_the_standard_check_value() {
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn stored_gzip_frames_blocks() {
        let data = vec![7u8; 70_000];
        let gz = gzip_stored(&data);
        // Header, two stored blocks (5-byte headers each), trailer.
        assert_eq!(gz.len(), 10 + 5 + 65535 + 5 + (70_000 - 65535) + 8);
        assert_eq!(&gz[..3], &[0x1f, 0x8b, 8]);
        assert_eq!(gz[10], 0, "first block is not final");
        assert_eq!(gz[10 + 5 + 65535], 1, "second block is final");
        assert_eq!(gzip_stored(b"").len(), 10 + 5 + 8);
    }

    #[test]
    fn tar_headers_have_valid_checksums() {
        let mut t = TarWriter::default();
        t.file("a.txt", 0o644, b"hello");
        t.symlink("b", "a.txt");
        let tar = t.finish();
        assert_eq!(tar.len(), 512 * 2 + 512 + 1024);
        let h = &tar[..512];
        let stored =
            u32::from_str_radix(std::str::from_utf8(&h[148..154]).expect("octal digits"), 8)
                .expect("octal");
        let sum: u32 = h
            .iter()
            .enumerate()
            .map(|(i, &b)| {
                if (148..156).contains(&i) {
                    32
                } else {
                    u32::from(b)
                }
            })
            .sum();
        assert_eq!(stored, sum);
        assert_eq!(&tar[512..517], b"hello");
        assert_eq!(tar[1024 + 156], b'2');
    }
}
