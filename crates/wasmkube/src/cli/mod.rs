//! The `wasmkube` command-line client: kubectl's verbs, flags and output over the Kubernetes
//! REST API, so anything that works against wasmkube with `wasmkube <verb>` works with
//! `kubectl <verb>` too, and the other way round.
//!
//! # Layout
//! - One file per verb: [`apply`], [`get`], [`describe`], [`delete`], [`create`], [`version`],
//!   [`scale`], [`label`] (also `annotate`), [`patch`], [`logs`], [`events`], [`run`], [`api_resources`].
//! - [`image`]: `wasmkube image import|ls|rm|push` on the node's local Wasm image store (no
//!   API server involved).
//! - [`kubeconfig`]: finding the kubeconfig and building the client.
//! - [`client`]: raw REST calls, `Status` errors printed like kubectl.
//! - [`resources`]: discovery and resource type names (`po`, `deploy`, `svc` …).
//! - [`manifest`]: reading `-f` files, directories and stdin.
//! - [`merge`]: the three-way patch `apply` computes.
//! - [`output`], [`tabwriter`], [`yaml`], [`jsonpath`]: tables, YAML/JSON, ages and templates.

/// `println!` that does not panic when stdout is a closed pipe (`wasmkube get pods | head`).
macro_rules! outln {
    () => {
        $crate::cli::output::emit("\n")
    };
    ($($arg:tt)*) => {
        $crate::cli::output::emit(&format!("{}\n", format_args!($($arg)*)))
    };
}

/// `print!` that does not panic when stdout is a closed pipe.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::cli::output::emit(&format!($($arg)*))
    };
}

mod api_resources;
mod apply;
mod client;
mod create;
mod delete;
mod describe;
mod events;
mod get;
mod image;
mod jsonpath;
mod kubeconfig;
mod label;
mod logs;
mod manifest;
mod merge;
mod output;
mod patch;
mod resources;
mod run;
mod scale;
mod tabwriter;
mod version;
mod yaml;

use std::path::PathBuf;
use std::process::ExitCode;

use client::{Api, CallError};
use resources::{Discovery, ResourceType};

/// The client verbs; flattened into the top-level commands of `wasmkube`. Boxed, so the
/// command enum stays small whatever flags a verb grows.
#[derive(clap::Subcommand, Debug)]
pub enum ClientCommand {
    /// Apply a configuration to resources by file name or stdin.
    Apply(Box<apply::ApplyArgs>),
    /// Display one or many resources.
    Get(Box<get::GetArgs>),
    /// Show details of a specific resource or group of resources.
    Describe(Box<describe::DescribeArgs>),
    /// Delete resources by file names, stdin, resources and names, or by resources and label selector.
    Delete(Box<delete::DeleteArgs>),
    /// Create a resource from a file or from stdin, or a namespace, deployment, configmap or secret.
    Create(Box<create::CreateArgs>),
    /// Print the client and server version information.
    Version(Box<version::VersionArgs>),
    /// Set a new size for a deployment, replica set or stateful set.
    Scale(Box<scale::ScaleArgs>),
    /// Update the labels on a resource.
    Label(Box<label::LabelArgs>),
    /// Update the annotations on a resource.
    Annotate(Box<label::LabelArgs>),
    /// Update fields of a resource using a strategic merge, JSON merge or JSON patch.
    Patch(Box<patch::PatchArgs>),
    /// Print the logs for a container in a pod.
    Logs(Box<logs::LogsArgs>),
    /// List events.
    Events(Box<events::EventsArgs>),
    /// Run a particular image in a pod.
    Run(Box<run::RunArgs>),
    /// Print the supported API resources on the server.
    ApiResources(Box<api_resources::ApiResourcesArgs>),
    /// Manage the node's Wasm image store: import, ls, rm, push.
    Image(Box<image::ImageArgs>),
}

/// Connection flags every client verb accepts.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct GlobalArgs {
    /// Path to the kubeconfig file to use for CLI requests.
    #[arg(long, global = true)]
    pub kubeconfig: Option<PathBuf>,
    /// The name of the kubeconfig context to use.
    #[arg(long, global = true)]
    pub context: Option<String>,
    /// The name of the kubeconfig cluster to use.
    #[arg(long, global = true)]
    pub cluster: Option<String>,
    /// The name of the kubeconfig user to use.
    #[arg(long, global = true)]
    pub user: Option<String>,
    /// If present, the namespace scope for this CLI request.
    #[arg(short = 'n', long, global = true)]
    pub namespace: Option<String>,
    /// The address and port of the Kubernetes API server.
    #[arg(short = 's', long, global = true)]
    pub server: Option<String>,
    /// Bearer token for authentication to the API server.
    #[arg(long, global = true)]
    pub token: Option<String>,
    /// If true, the server's certificate will not be checked for validity.
    #[arg(long, global = true)]
    pub insecure_skip_tls_verify: bool,
}

/// A connection to the API server plus what the verbs need around it.
pub struct Session {
    pub api: Api,
    context_namespace: String,
    flag_namespace: Option<String>,
    discovery: tokio::sync::OnceCell<Discovery>,
}

impl Session {
    pub async fn connect(global: &GlobalArgs) -> anyhow::Result<Self> {
        let config = kubeconfig::load(global).await?;
        let server = kubeconfig::server_authority(&config.cluster_url);
        let context_namespace = config.default_namespace.clone();
        let client = kube::Client::try_from(config)
            .map_err(|e| anyhow::anyhow!("cannot build a client from the kubeconfig: {e}"))?;
        Ok(Self {
            api: Api::new(client, server),
            context_namespace,
            flag_namespace: global.namespace.clone().filter(|n| !n.is_empty()),
            discovery: tokio::sync::OnceCell::new(),
        })
    }

    /// `-n`, else the kubeconfig context's namespace, else `default`.
    pub fn namespace(&self) -> &str {
        self.flag_namespace
            .as_deref()
            .unwrap_or(&self.context_namespace)
    }

    /// The namespace only when `-n` was given.
    pub fn namespace_flag(&self) -> Option<&str> {
        self.flag_namespace.as_deref()
    }

    pub async fn discovery(&self) -> Result<&Discovery, CallError> {
        self.discovery
            .get_or_try_init(|| Discovery::load(&self.api))
            .await
    }

    /// Resolves a type name or fails with kubectl's message.
    pub async fn resolve(&self, input: &str) -> anyhow::Result<ResourceType> {
        let d = self.discovery().await?;
        d.resolve(input)
            .cloned()
            .ok_or_else(|| resources::unknown_type(input))
    }
}

/// Runs one client verb. Errors the server reported are printed as kubectl prints them;
/// anything else goes back to `main`, which prints `error: …` (kubectl's prefix too).
pub async fn run(cmd: ClientCommand) -> anyhow::Result<ExitCode> {
    let result = match cmd {
        ClientCommand::Apply(a) => apply::run(*a).await,
        ClientCommand::Get(a) => get::run(*a).await,
        ClientCommand::Describe(a) => describe::run(*a).await,
        ClientCommand::Delete(a) => delete::run(*a).await,
        ClientCommand::Create(a) => create::run(*a).await,
        ClientCommand::Version(a) => version::run(*a).await,
        ClientCommand::Scale(a) => scale::run(*a).await,
        ClientCommand::Label(a) => label::run(*a, label::Field::Labels).await,
        ClientCommand::Annotate(a) => label::run(*a, label::Field::Annotations).await,
        ClientCommand::Patch(a) => patch::run(*a).await,
        ClientCommand::Logs(a) => logs::run(*a).await,
        ClientCommand::Events(a) => events::run(*a).await,
        ClientCommand::Run(a) => run::run(*a).await,
        ClientCommand::ApiResources(a) => api_resources::run(*a).await,
        ClientCommand::Image(a) => image::run(*a).await,
    };
    match result {
        Ok(code) => Ok(code),
        Err(e) => match e.downcast_ref::<CallError>() {
            Some(call) => {
                eprintln!("{call}");
                Ok(ExitCode::FAILURE)
            }
            None => Err(e),
        },
    }
}

/// Tracks whether any object of a multi-object verb failed: kubectl goes on with the rest
/// and exits 1 at the end.
#[derive(Debug, Default)]
pub struct Outcome {
    failed: bool,
    /// Errors held back until the output is printed, as `kubectl get` reports them last.
    deferred: Vec<String>,
}

impl Outcome {
    /// Remembers an error to print with [`Outcome::print_deferred`].
    pub fn defer(&mut self, message: impl std::fmt::Display) {
        self.deferred.push(message.to_string());
        self.failed = true;
    }

    pub fn print_deferred(&mut self) {
        for message in self.deferred.drain(..) {
            eprintln!("{message}");
        }
    }

    /// Prints an error in kubectl's form and remembers the failure.
    pub fn error(&mut self, message: impl std::fmt::Display) {
        eprintln!("{message}");
        self.failed = true;
    }

    pub fn fail(&mut self) {
        self.failed = true;
    }

    pub fn failed(&self) -> bool {
        self.failed
    }

    pub fn code(&self) -> ExitCode {
        if self.failed {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        }
    }
}

/// Splits `TYPE NAME...`, `TYPE1,TYPE2 [NAME...]` and `TYPE/NAME...` arguments into type
/// names and the object names for each (empty = all).
pub fn parse_type_args(args: &[String]) -> anyhow::Result<Vec<(String, Vec<String>)>> {
    let Some(first) = args.first() else {
        return Ok(Vec::new());
    };
    if args.iter().any(|a| a.contains('/')) {
        let mut out: Vec<(String, Vec<String>)> = Vec::new();
        for a in args {
            let Some((ty, name)) = a.split_once('/') else {
                anyhow::bail!(
                    "there is no need to specify a resource type as a separate argument when passing arguments in resource/name form (e.g. 'wasmkube get resource/<resource_name>' instead of 'wasmkube get resource resource/<resource_name>'"
                );
            };
            if ty.is_empty() || name.is_empty() || name.contains('/') {
                anyhow::bail!(
                    "arguments in resource/name form must have a single resource and name"
                );
            }
            match out.iter_mut().find(|(t, _)| t == ty) {
                Some((_, names)) => names.push(name.to_string()),
                None => out.push((ty.to_string(), vec![name.to_string()])),
            }
        }
        return Ok(out);
    }
    let names: Vec<String> = args[1..].to_vec();
    let types: Vec<&str> = first.split(',').filter(|t| !t.is_empty()).collect();
    if types.is_empty() {
        anyhow::bail!("resource type must not be empty");
    }
    Ok(types
        .into_iter()
        .map(|t| (t.to_string(), names.clone()))
        .collect())
}

/// Reads an object's `metadata.<field>` as a string.
pub fn meta_str<'a>(obj: &'a serde_json::Value, field: &str) -> &'a str {
    obj.get("metadata")
        .and_then(|m| m.get(field))
        .and_then(serde_json::Value::as_str)
        .unwrap_or_default()
}

/// Parses kubectl-style durations: `30s`, `5m`, `1h30m`, `500ms`, or bare seconds.
pub fn parse_duration(raw: &str) -> anyhow::Result<std::time::Duration> {
    let raw = raw.trim();
    if let Ok(secs) = raw.parse::<u64>() {
        return Ok(std::time::Duration::from_secs(secs));
    }
    let mut total = 0f64;
    let mut num = String::new();
    let mut chars = raw.chars().peekable();
    let mut any = false;
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() || c == '.' {
            num.push(c);
            continue;
        }
        let mut unit = c.to_string();
        while let Some(&n) = chars.peek() {
            if n.is_ascii_alphabetic() {
                unit.push(n);
                chars.next();
            } else {
                break;
            }
        }
        let value: f64 = num
            .parse()
            .map_err(|_| anyhow::anyhow!("invalid duration {raw:?}"))?;
        num.clear();
        let factor = match unit.as_str() {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => anyhow::bail!("invalid duration {raw:?}: unknown unit {unit:?}"),
        };
        total += value * factor;
        any = true;
    }
    if !num.is_empty() || !any {
        anyhow::bail!("invalid duration {raw:?}: missing unit");
    }
    Ok(std::time::Duration::from_secs_f64(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn type_args_forms() {
        assert_eq!(
            parse_type_args(&args(&["pods", "a", "b"])).ok(),
            Some(vec![("pods".into(), args(&["a", "b"]))])
        );
        assert_eq!(
            parse_type_args(&args(&["po,svc"])).ok(),
            Some(vec![("po".into(), vec![]), ("svc".into(), vec![])])
        );
        assert_eq!(
            parse_type_args(&args(&["deploy/a", "svc/b", "deploy/c"])).ok(),
            Some(vec![
                ("deploy".into(), args(&["a", "c"])),
                ("svc".into(), args(&["b"]))
            ])
        );
        assert!(parse_type_args(&args(&["pods", "svc/b"])).is_err());
        assert!(parse_type_args(&args(&["a/b/c"])).is_err());
        assert!(parse_type_args(&args(&["/b"])).is_err());
        assert_eq!(parse_type_args(&[]).ok(), Some(vec![]));
    }

    #[test]
    fn durations() {
        use std::time::Duration;
        assert_eq!(parse_duration("30").ok(), Some(Duration::from_secs(30)));
        assert_eq!(parse_duration("30s").ok(), Some(Duration::from_secs(30)));
        assert_eq!(
            parse_duration("1h30m").ok(),
            Some(Duration::from_secs(5400))
        );
        assert_eq!(
            parse_duration("500ms").ok(),
            Some(Duration::from_millis(500))
        );
        assert_eq!(parse_duration("0s").ok(), Some(Duration::ZERO));
        assert!(parse_duration("5x").is_err());
        assert!(parse_duration("").is_err());
    }
}
