//! `patch`: sends a strategic merge, JSON merge or JSON patch to objects.

use std::process::ExitCode;

use serde_json::Value;

use super::client::{MERGE_PATCH, STRATEGIC_MERGE_PATCH};
use super::output::{self, OutputFormat};
use super::{GlobalArgs, Outcome, Session, meta_str, parse_type_args};

const JSON_PATCH: &str = "application/json-patch+json";

#[derive(clap::Args, Debug)]
pub struct PatchArgs {
    /// TYPE NAME... or TYPE/NAME...
    #[arg(required = true)]
    pub args: Vec<String>,
    /// The patch, as JSON or YAML.
    #[arg(short = 'p', long)]
    pub patch: Option<String>,
    /// A file containing the patch.
    #[arg(long)]
    pub patch_file: Option<String>,
    /// strategic, merge or json.
    #[arg(long = "type", default_value = "strategic")]
    pub patch_type: String,
    /// Patch this subresource (status, scale) instead of the object.
    #[arg(long)]
    pub subresource: Option<String>,
    /// Output format: name, yaml or json.
    #[arg(short = 'o', long)]
    pub output: Option<String>,
    #[command(flatten)]
    pub global: GlobalArgs,
}

/// The patch body: JSON, or YAML as kubectl also accepts.
fn parse_patch(text: &str) -> anyhow::Result<Value> {
    if let Ok(v) = serde_json::from_str::<Value>(text) {
        return Ok(v);
    }
    super::manifest::parse_value(text).map_err(|e| anyhow::anyhow!("unable to parse {text:?}: {e}"))
}

pub async fn run(args: PatchArgs) -> anyhow::Result<ExitCode> {
    let content_type = match args.patch_type.as_str() {
        "strategic" => STRATEGIC_MERGE_PATCH,
        "merge" => MERGE_PATCH,
        "json" => JSON_PATCH,
        other => anyhow::bail!("--type must be one of [json merge strategic], not \"{other}\""),
    };
    let text = match (&args.patch, &args.patch_file) {
        (Some(p), None) => p.clone(),
        (None, Some(f)) => {
            std::fs::read_to_string(f).map_err(|e| anyhow::anyhow!("reading {f}: {e}"))?
        }
        _ => anyhow::bail!("exactly one of --patch or --patch-file must be given"),
    };
    let body = parse_patch(&text)?;
    let format = OutputFormat::parse(args.output.as_deref())?;
    let session = Session::connect(&args.global).await?;
    let mut outcome = Outcome::default();
    for (ty, names) in parse_type_args(&args.args)? {
        let rt = session.resolve(&ty).await?;
        if names.is_empty() {
            anyhow::bail!("resource(s) were provided, but no name was specified");
        }
        let ns = rt.namespaced.then(|| session.namespace().to_string());
        for name in names {
            let mut url = rt.object_path(ns.as_deref(), &name);
            if let Some(sub) = &args.subresource {
                url = format!("{url}/{sub}");
            }
            let before = session.api.get(&url).await.ok();
            match session.api.patch(&url, content_type, &body).await {
                Ok(after) => match &format {
                    OutputFormat::Yaml => out!("{}", output::to_yaml(&after)),
                    OutputFormat::Json => out!("{}", output::to_json(&after)),
                    OutputFormat::Name => outln!("{}", rt.object_ref(&name)),
                    _ => {
                        let unchanged = before.as_ref().is_some_and(|b| {
                            meta_str(b, "resourceVersion") == meta_str(&after, "resourceVersion")
                        });
                        let note = if unchanged { " (no change)" } else { "" };
                        outln!("{} patched{note}", rt.object_ref(&name));
                    }
                },
                Err(e) => outcome.error(e),
            }
        }
    }
    Ok(outcome.code())
}
