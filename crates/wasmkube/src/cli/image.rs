//! `image`: the node-local Wasm image store (`import`, `ls`, `rm`) and pushing its images
//! to an OCI registry (`push`), like `ctr images` / `crictl images` for a containerd node.
//!
//! It works on the node's data directory directly, not through the API server: the store
//! is shared with a running node (writers take a file lock, the node re-reads the index when
//! it changes), so an imported image can be used by a pod at once, without a restart.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use serde_json::json;
use wasmkube_runtime_wasm::oci::{PushOptions, RegistryAuth, push_image};
use wasmkube_runtime_wasm::{ImageInfo, ImageStore, image_store_dir};

use super::output::human_duration;
use super::tabwriter::TabWriter;

#[derive(clap::Args, Debug)]
pub struct ImageArgs {
    /// The node's data directory (the `--data-dir` of `wasmkube server` or `agent`); images
    /// are kept in `<data-dir>/wasm/images`.
    #[arg(
        long,
        short = 'd',
        env = "WASMKUBE_DATA_DIR",
        default_value = "/var/lib/wasmkube",
        global = true
    )]
    pub data_dir: PathBuf,
    #[command(subcommand)]
    pub command: ImageCommand,
}

#[derive(clap::Subcommand, Debug)]
pub enum ImageCommand {
    /// Import a .wasm module or component (or .wat text) into the node's image store.
    Import(ImportArgs),
    /// List the images in the node's image store.
    #[command(visible_alias = "list")]
    Ls(LsArgs),
    /// Remove images from the node's image store.
    #[command(visible_alias = "rmi")]
    Rm(RmArgs),
    /// Push an image of the node's store to an OCI registry as a Wasm OCI artifact.
    Push(PushArgs),
}

#[derive(clap::Args, Debug)]
pub struct ImportArgs {
    /// The .wasm (or .wat) file.
    pub file: PathBuf,
    /// NAME[:TAG] to import it as (the tag defaults to `latest`); the file's stem when not given.
    #[arg(long)]
    pub name: Option<String>,
}

#[derive(clap::Args, Debug)]
pub struct LsArgs {
    /// Output format: json, or a table when not given.
    #[arg(short = 'o', long)]
    pub output: Option<String>,
    /// Only print NAME:TAG.
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Show full digests.
    #[arg(long)]
    pub no_trunc: bool,
}

#[derive(clap::Args, Debug)]
pub struct RmArgs {
    /// NAME[:TAG] of each image to remove.
    #[arg(required = true)]
    pub images: Vec<String>,
}

#[derive(clap::Args, Debug)]
pub struct PushArgs {
    /// NAME[:TAG] of the local image.
    pub image: String,
    /// Where to push it: REGISTRY/REPOSITORY[:TAG].
    pub target: String,
    /// Registry user name (basic auth, or to obtain a bearer token).
    #[arg(long, short = 'u')]
    pub username: Option<String>,
    /// Registry password.
    #[arg(
        long,
        short = 'p',
        requires = "username",
        conflicts_with = "password_stdin"
    )]
    pub password: Option<String>,
    /// Read the registry password from stdin.
    #[arg(long, requires = "username")]
    pub password_stdin: bool,
    /// Speak plain HTTP to the registry (loopback registries always are).
    #[arg(long)]
    pub insecure: bool,
    /// Timeout of each registry round trip, in seconds.
    #[arg(long, default_value_t = 60)]
    pub timeout: u64,
}

pub async fn run(args: ImageArgs) -> anyhow::Result<ExitCode> {
    let root = image_store_dir(&args.data_dir);
    match args.command {
        ImageCommand::Import(a) => import(&root, a),
        ImageCommand::Ls(a) => ls(&root, a),
        ImageCommand::Rm(a) => rm(&root, a),
        ImageCommand::Push(a) => push(&root, a).await,
    }
}

fn open(root: &Path) -> anyhow::Result<ImageStore> {
    ImageStore::open(root).with_context(|| format!("opening the image store {}", root.display()))
}

fn import(root: &Path, args: ImportArgs) -> anyhow::Result<ExitCode> {
    // Check the input before touching the store.
    if !args.file.is_file() {
        bail!("{}: no such file", args.file.display());
    }
    let name = match args.name {
        Some(n) => n,
        None => args
            .file
            .file_stem()
            .and_then(|s| s.to_str())
            .map(str::to_string)
            .with_context(|| format!("{}: name the image with --name", args.file.display()))?,
    };
    let store = open(root)?;
    let digest = store
        .import(&args.file, &name)
        .with_context(|| format!("importing {}", args.file.display()))?;
    let info = store
        .resolve(digest.as_str())
        .context("the imported image vanished")?;
    outln!(
        "Imported {} ({}, {})",
        info.name,
        digest,
        human_size(info.size)
    );
    Ok(ExitCode::SUCCESS)
}

fn ls(root: &Path, args: LsArgs) -> anyhow::Result<ExitCode> {
    let json = match args.output.as_deref() {
        None | Some("table") => false,
        Some("json") => true,
        Some(other) => bail!("--output must be 'json', not {other:?}"),
    };
    let images = open(root)?.list();
    if json {
        let items: Vec<_> = images
            .iter()
            .map(|i| {
                let (name, tag) = split_name(&i.name);
                json!({
                    "name": name,
                    "tag": tag,
                    "reference": i.name,
                    "digest": i.digest.as_str(),
                    "size": i.size,
                    "created": rfc3339(i.created),
                    "source": i.source,
                })
            })
            .collect();
        let text = serde_json::to_string_pretty(&json!({ "images": items }))
            .context("encoding the image list")?;
        outln!("{text}");
        return Ok(ExitCode::SUCCESS);
    }
    if args.quiet {
        for i in &images {
            outln!("{}", i.name);
        }
        return Ok(ExitCode::SUCCESS);
    }
    out!("{}", table(&images, args.no_trunc, SystemTime::now()));
    Ok(ExitCode::SUCCESS)
}

/// The `ls` table, laid out as kubectl and crictl lay out theirs.
fn table(images: &[ImageInfo], no_trunc: bool, now: SystemTime) -> String {
    let now = now
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let mut w = TabWriter::for_tables();
    w.write("NAME\tTAG\tDIGEST\tSIZE\tCREATED\n");
    for i in images {
        let (name, tag) = split_name(&i.name);
        let digest = if no_trunc {
            i.digest.to_string()
        } else {
            // Enough to tell images apart, as `crictl images` shortens IDs.
            format!("sha256:{}", &i.digest.hex()[..12])
        };
        let created = if i.created == 0 {
            "<unknown>".to_string()
        } else {
            format!(
                "{} ago",
                human_duration(now.saturating_sub(i.created) as i64)
            )
        };
        w.write(&format!(
            "{name}\t{tag}\t{digest}\t{}\t{created}\n",
            human_size(i.size)
        ));
    }
    w.flush()
}

fn rm(root: &Path, args: RmArgs) -> anyhow::Result<ExitCode> {
    let store = open(root)?;
    let mut failed = false;
    // Remove what can be removed, report the rest, and fail at the end, as `crictl rmi`.
    for image in &args.images {
        match store.remove(image) {
            Ok(info) => outln!("Deleted: {}", info.name),
            Err(e) => {
                eprintln!("error: {}", error_chain(&e));
                failed = true;
            }
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

async fn push(root: &Path, args: PushArgs) -> anyhow::Result<ExitCode> {
    let password = if args.password_stdin {
        let mut p = String::new();
        std::io::stdin()
            .read_to_string(&mut p)
            .context("reading the password from stdin")?;
        Some(p.trim_end_matches(['\r', '\n']).to_string())
    } else {
        args.password
    };
    let registry = wasmkube_runtime_wasm::oci::Reference::parse(&args.target)
        .with_context(|| format!("invalid target {:?}", args.target))?
        .registry;
    let opts = PushOptions {
        auth: args.username.map(|username| RegistryAuth {
            registry,
            username,
            password: password.unwrap_or_default(),
        }),
        insecure: args.insecure,
        timeout: Duration::from_secs(args.timeout.max(1)),
    };
    let store = open(root)?;
    let pushed = push_image(&store, &args.image, &args.target, &opts)
        .await
        .with_context(|| format!("pushing {} to {}", args.image, args.target))?;
    outln!(
        "Pushed {} to {} (manifest {})",
        args.image,
        pushed.reference,
        pushed.manifest_digest
    );
    Ok(ExitCode::SUCCESS)
}

/// `name:tag` → (`name`, `tag`); `name@sha256:…` has no tag.
fn split_name(reference: &str) -> (&str, &str) {
    if let Some((name, _)) = reference.split_once('@') {
        return (name, "<none>");
    }
    match reference.rsplit_once(':') {
        Some((name, tag)) if !tag.contains('/') => (name, tag),
        _ => (reference, "<none>"),
    }
}

/// Sizes as docker and crictl print them: decimal units, three significant digits.
fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "kB", "MB", "GB", "TB", "PB"];
    let mut size = bytes as f64;
    let mut unit = 0;
    while size >= 1000.0 && unit < UNITS.len() - 1 {
        size /= 1000.0;
        unit += 1;
    }
    let digits = if size < 10.0 && unit > 0 {
        2
    } else if size < 100.0 && unit > 0 {
        1
    } else {
        0
    };
    let text = format!("{size:.digits$}");
    // Go's %.4g drops trailing zeros: 1.50MB prints as 1.5MB.
    let text = if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    };
    format!("{text}{}", UNITS[unit])
}

fn rfc3339(secs: u64) -> String {
    jiff::Timestamp::from_second(secs as i64)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(c) = source {
        s.push_str(": ");
        s.push_str(&c.to_string());
        source = c.source();
    }
    s
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;
    use wasmkube_runtime_wasm::Digest;

    #[test]
    fn names_split_into_name_and_tag() {
        assert_eq!(split_name("hello:v1"), ("hello", "v1"));
        assert_eq!(
            split_name("127.0.0.1:5000/wasm/hello:latest"),
            ("127.0.0.1:5000/wasm/hello", "latest")
        );
        assert_eq!(
            split_name("127.0.0.1:5000/wasm/hello"),
            ("127.0.0.1:5000/wasm/hello", "<none>")
        );
        assert_eq!(split_name("r.io/x@sha256:00"), ("r.io/x", "<none>"));
    }

    #[test]
    fn sizes_read_like_crictls() {
        assert_eq!(human_size(0), "0B");
        assert_eq!(human_size(999), "999B");
        assert_eq!(human_size(29_812), "29.8kB");
        assert_eq!(human_size(1_500_000), "1.5MB");
        assert_eq!(human_size(123_456_789), "123MB");
    }

    #[test]
    fn the_table_lines_up() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000_000);
        let images = vec![
            ImageInfo {
                name: "hello:latest".into(),
                digest: Digest::of(b"a"),
                size: 29_812,
                created: 1_000_000 - 300,
                source: "import".into(),
            },
            ImageInfo {
                name: "127.0.0.1:5000/wasm/web:v2".into(),
                digest: Digest::of(b"b"),
                size: 1_500_000,
                created: 0,
                source: "127.0.0.1:5000/wasm/web".into(),
            },
        ];
        let a = Digest::of(b"a").hex()[..12].to_string();
        let b = Digest::of(b"b").hex()[..12].to_string();
        assert_eq!(
            table(&images, false, now),
            format!(
                "NAME                      TAG      DIGEST                SIZE     CREATED\n\
                 hello                     latest   sha256:{a}   29.8kB   5m ago\n\
                 127.0.0.1:5000/wasm/web   v2       sha256:{b}   1.5MB    <unknown>\n"
            )
        );
    }
}
