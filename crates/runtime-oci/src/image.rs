//! A busybox image built from the host's `busybox-static` (Debian), with no tool but this
//! code: one gzip layer holding `bin/busybox` and links for its applets, and an image config.
//! The e2e tests push it to a loopback registry; `wasmkube bench` imports it as an OCI layout
//! archive with `ctr`. Reproducible: fixed mtimes, so the same busybox gives the same digests.

use sha2::Digest;

/// Where Debian's busybox-static installs the binary.
pub const BUSYBOX: &str = "/bin/busybox";

/// The applets linked in `bin/` (what the tests and examples run).
const APPLETS: &[&str] = &[
    "sh", "true", "false", "echo", "cat", "sleep", "wget", "httpd", "ls", "env", "id", "head",
    "tail", "dd", "touch", "mkdir", "rm", "grep", "hostname", "ps", "kill", "printf", "seq",
    "test", "nc", "wc", "date",
];

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("reading {path}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// A built image: the config blob and its one gzip layer.
pub struct BuiltImage {
    pub config: Vec<u8>,
    pub layer_gz: Vec<u8>,
}

/// The media types of [`BuiltImage`]'s parts.
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.oci.image.config.v1+json";
pub const LAYER_MEDIA_TYPE: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

fn arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// The busybox image: `/bin/busybox`, `/bin/<applet>` links, `/tmp`, PATH=/bin, cmd `sh`.
pub fn busybox_image(busybox: &str) -> Result<BuiltImage, ImageError> {
    let bin = std::fs::read(busybox).map_err(|source| ImageError::Read {
        path: busybox.to_string(),
        source,
    })?;
    let mut layer = TarWriter::default();
    layer.dir("bin/");
    layer.file("bin/busybox", 0o755, &bin);
    for applet in APPLETS {
        layer.symlink(&format!("bin/{applet}"), "busybox");
    }
    layer.dir("tmp/");
    let layer_tar = layer.finish();
    let diff_id = sha256(&layer_tar);
    let layer_gz = gzip_stored(&layer_tar);
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": arch(),
        "os": "linux",
        "config": {"Env": ["PATH=/bin"], "Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": [format!("sha256:{diff_id}")]},
    }))
    .unwrap_or_default();
    Ok(BuiltImage { config, layer_gz })
}

/// An OCI image layout archive (`oci-layout`, `index.json`, blobs) of [`busybox_image`],
/// tagged `tag` (what `ctr images import` reads).
pub fn busybox_oci_archive(busybox: &str, tag: &str) -> Result<Vec<u8>, ImageError> {
    let BuiltImage { config, layer_gz } = busybox_image(busybox)?;
    let arch = arch();
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
    }))
    .unwrap_or_default();
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": format!("sha256:{}", sha256(&manifest)),
            "size": manifest.len(),
            "platform": {"architecture": arch, "os": "linux"},
            "annotations": {"org.opencontainers.image.ref.name": tag},
        }],
    }))
    .unwrap_or_default();

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
