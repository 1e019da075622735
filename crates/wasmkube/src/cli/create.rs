//! `create`: objects from `-f` (create only, never patch), or a namespace, deployment or
//! configmap from flags.

use std::collections::BTreeMap;
use std::process::ExitCode;

use serde_json::{Value, json};

use super::apply::{DryRun, locate};
use super::manifest::{self, Item};
use super::output::{self, OutputFormat};
use super::resources::ResourceType;
use super::{GlobalArgs, Outcome, Session, meta_str};

#[derive(clap::Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct CreateArgs {
    #[command(subcommand)]
    pub what: Option<CreateKind>,
    /// Files, directories or `-` (stdin) with the objects to create.
    #[arg(short = 'f', long = "filename")]
    pub filenames: Vec<String>,
    /// Process the directory used in -f recursively.
    #[arg(short = 'R', long)]
    pub recursive: bool,
    #[command(flatten)]
    pub common: CommonCreateArgs,
}

/// Flags every form of `create` takes.
#[derive(clap::Args, Debug, Clone)]
pub struct CommonCreateArgs {
    /// Output format: name, yaml or json.
    #[arg(short = 'o', long, global = true)]
    pub output: Option<String>,
    /// none, client or server: only show what would be created.
    #[arg(long, num_args = 0..=1, default_value = "none", default_missing_value = "client", global = true)]
    pub dry_run: DryRun,
    /// Record the object as `apply` would, so a later `apply` can compute deletions.
    #[arg(long, global = true)]
    pub save_config: bool,
    #[command(flatten)]
    pub global: GlobalArgs,
}

#[derive(clap::Subcommand, Debug)]
pub enum CreateKind {
    /// Create a namespace with the specified name.
    #[command(alias = "ns")]
    Namespace { name: String },
    /// Create a deployment with the specified name.
    #[command(alias = "deploy")]
    Deployment {
        name: String,
        /// Image names to run; one container each.
        #[arg(long, required = true)]
        image: Vec<String>,
        /// Number of replicas.
        #[arg(short = 'r', long, default_value_t = 1)]
        replicas: i64,
        /// The container port to expose.
        #[arg(long)]
        port: Option<i64>,
        /// A command to run instead of the image's entrypoint (after --).
        #[arg(last = true)]
        command: Vec<String>,
    },
    /// Create a config map from literal values or files.
    #[command(alias = "cm")]
    Configmap {
        name: String,
        /// key=value pairs.
        #[arg(long = "from-literal")]
        from_literal: Vec<String>,
        /// Files (key = file name, or key=path).
        #[arg(long = "from-file")]
        from_file: Vec<String>,
    },
    /// Create a secret.
    Secret {
        #[command(subcommand)]
        kind: SecretKind,
    },
}

#[derive(clap::Subcommand, Debug)]
pub enum SecretKind {
    /// Create a secret from literal values or files.
    Generic {
        name: String,
        /// key=value pairs.
        #[arg(long = "from-literal")]
        from_literal: Vec<String>,
        /// Files (key = file name, or key=path).
        #[arg(long = "from-file")]
        from_file: Vec<String>,
        /// The secret's type.
        #[arg(long = "type", default_value = "Opaque")]
        secret_type: String,
    },
}

pub async fn run(args: CreateArgs) -> anyhow::Result<ExitCode> {
    let format = OutputFormat::parse(args.common.output.as_deref())?;
    let objects: Vec<(String, Value)> = match &args.what {
        Some(kind) => vec![("".to_string(), build(kind)?)],
        None if args.filenames.is_empty() => {
            anyhow::bail!(
                "must specify one of -f and -k, or a kind: namespace, deployment, configmap, secret"
            )
        }
        None => Vec::new(),
    };
    let session = Session::connect(&args.common.global).await?;
    let discovery = session.discovery().await?;
    let mut outcome = Outcome::default();
    let mut items: Vec<manifest::Manifest> = objects
        .into_iter()
        .map(|(source, object)| manifest::Manifest { source, object })
        .collect();
    if !args.filenames.is_empty() {
        for item in manifest::read_sources(&args.filenames, args.recursive)? {
            match item {
                Item::Object(m) => items.push(m),
                Item::Invalid { message, .. } => outcome.error(format!("error: {message}")),
            }
        }
    }
    let mut printed = Vec::new();
    for m in items {
        let (rt, ns, _name) = match locate(&session, discovery, &m) {
            Ok(x) => x,
            // Generated names are fine for create; only apply needs a name.
            Err(_) if !meta_str(&m.object, "generateName").is_empty() => {
                match locate_generated(&session, discovery, &m) {
                    Some(x) => x,
                    None => {
                        outcome.error(format!(
                            "error: cannot map {} from \"{}\"",
                            m.object["kind"], m.source
                        ));
                        continue;
                    }
                }
            }
            Err(message) => {
                outcome.error(message);
                continue;
            }
        };
        let mut obj = m.object.clone();
        if let (Some(ns), Some(meta)) =
            (&ns, obj.get_mut("metadata").and_then(Value::as_object_mut))
        {
            meta.insert("namespace".into(), Value::String(ns.clone()));
        }
        if args.common.save_config {
            obj = super::apply::with_last_applied(&obj);
        }
        let result = if args.common.dry_run == DryRun::Client {
            Ok(obj)
        } else {
            let url = args.common.dry_run.url(&rt.collection_path(ns.as_deref()));
            session.api.create(&url, &obj).await
        };
        match result {
            Ok(created) => match format {
                OutputFormat::Yaml | OutputFormat::Json => printed.push(created),
                OutputFormat::Name => outln!("{}", rt.object_ref(meta_str(&created, "name"))),
                _ => outln!(
                    "{} created{}",
                    rt.object_ref(meta_str(&created, "name")),
                    args.common.dry_run.suffix()
                ),
            },
            Err(e) if m.source.is_empty() => outcome.error(e),
            Err(e) => {
                outcome.error(e.with_context(&format!("error when creating \"{}\"", m.source)))
            }
        }
    }
    if !printed.is_empty() {
        let doc = if printed.len() == 1 {
            printed.remove(0)
        } else {
            output::as_list(printed)
        };
        match format {
            OutputFormat::Json => out!("{}", output::to_json(&doc)),
            _ => out!("{}", output::to_yaml(&doc)),
        }
    }
    Ok(outcome.code())
}

fn locate_generated<'a>(
    session: &Session,
    discovery: &'a super::resources::Discovery,
    m: &manifest::Manifest,
) -> Option<(&'a ResourceType, Option<String>, String)> {
    let api_version = m.object.get("apiVersion").and_then(Value::as_str)?;
    let kind = m.object.get("kind").and_then(Value::as_str)?;
    let rt = discovery.for_kind(api_version, kind)?;
    let ns = super::apply::target_namespace(
        rt,
        &m.object,
        session.namespace_flag(),
        session.namespace(),
    )
    .ok()?;
    Some((rt, ns, String::new()))
}

/// The object a `create <kind>` subcommand describes.
fn build(kind: &CreateKind) -> anyhow::Result<Value> {
    Ok(match kind {
        CreateKind::Namespace { name } => json!({
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": name},
        }),
        CreateKind::Deployment {
            name,
            image,
            replicas,
            port,
            command,
        } => {
            let containers: Vec<Value> = image
                .iter()
                .map(|img| {
                    let mut c = json!({"name": container_name(img), "image": img});
                    if let Some(p) = port {
                        c["ports"] = json!([{"containerPort": p}]);
                    }
                    if !command.is_empty() {
                        c["command"] = json!(command);
                    }
                    c
                })
                .collect();
            json!({
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": name, "labels": {"app": name}},
                "spec": {
                    "replicas": replicas,
                    "selector": {"matchLabels": {"app": name}},
                    "template": {
                        "metadata": {"labels": {"app": name}},
                        "spec": {"containers": containers},
                    },
                },
            })
        }
        CreateKind::Configmap {
            name,
            from_literal,
            from_file,
        } => {
            let mut data = BTreeMap::new();
            let mut binary = BTreeMap::new();
            for (k, v) in key_values(from_literal, from_file)? {
                match String::from_utf8(v) {
                    Ok(text) => data.insert(k, text),
                    Err(e) => binary.insert(k, base64_encode(e.as_bytes())),
                };
            }
            let mut cm = json!({
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": name},
                "data": data,
            });
            if !binary.is_empty() {
                cm["binaryData"] = json!(binary);
            }
            cm
        }
        CreateKind::Secret {
            kind:
                SecretKind::Generic {
                    name,
                    from_literal,
                    from_file,
                    secret_type,
                },
        } => {
            let data: BTreeMap<String, String> = key_values(from_literal, from_file)?
                .into_iter()
                .map(|(k, v)| (k, base64_encode(&v)))
                .collect();
            json!({
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": name},
                "type": secret_type,
                "data": data,
            })
        }
    })
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// `--from-literal k=v` and `--from-file [k=]path` sources, as text keyed by name.
fn key_values(
    from_literal: &[String],
    from_file: &[String],
) -> anyhow::Result<BTreeMap<String, Vec<u8>>> {
    let mut data = BTreeMap::new();
    for lit in from_literal {
        let Some((k, v)) = lit.split_once('=') else {
            anyhow::bail!("invalid literal source {lit}, expected key=value");
        };
        data.insert(k.to_string(), v.as_bytes().to_vec());
    }
    for f in from_file {
        let (key, path) = match f.split_once('=') {
            Some((k, p)) => (k.to_string(), p.to_string()),
            None => (
                std::path::Path::new(f)
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_else(|| f.clone()),
                f.clone(),
            ),
        };
        let bytes =
            std::fs::read(&path).map_err(|e| anyhow::anyhow!("error reading {path}: {e}"))?;
        data.insert(key, bytes);
    }
    Ok(data)
}

/// kubectl names a deployment's container after its image: last path segment, no tag/digest.
fn container_name(image: &str) -> String {
    let last = image.rsplit('/').next().unwrap_or(image);
    let base = last.split(['@', ':']).next().unwrap_or(last);
    let cleaned: String = base
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    let cleaned = cleaned.trim_matches('-').to_string();
    if cleaned.is_empty() {
        "container".into()
    } else {
        cleaned
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_base64() {
        let secret = build(&CreateKind::Secret {
            kind: SecretKind::Generic {
                name: "s".into(),
                from_literal: vec!["password=hunter2".into()],
                from_file: vec![],
                secret_type: "Opaque".into(),
            },
        })
        .expect("secret");
        assert_eq!(secret["data"], json!({"password": "aHVudGVyMg=="}));
        assert_eq!(secret["type"], json!("Opaque"));
    }

    #[test]
    fn container_names_from_images() {
        assert_eq!(container_name("nginx"), "nginx");
        assert_eq!(
            container_name("registry:5000/org/hello_world:1.0"),
            "hello-world"
        );
        assert_eq!(container_name("busybox@sha256:abc"), "busybox");
    }

    #[test]
    fn namespace_and_configmap_objects() {
        let ns = build(&CreateKind::Namespace { name: "dev".into() }).expect("ns");
        assert_eq!(
            ns,
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "dev"}})
        );
        let cm = build(&CreateKind::Configmap {
            name: "c".into(),
            from_literal: vec!["a=1".into(), "b=x=y".into()],
            from_file: vec![],
        })
        .expect("cm");
        assert_eq!(cm["data"], json!({"a": "1", "b": "x=y"}));
        assert!(
            build(&CreateKind::Configmap {
                name: "c".into(),
                from_literal: vec!["bad".into()],
                from_file: vec![]
            })
            .is_err()
        );
    }
}
