//! `scale`: sets `spec.replicas` through the scale subresource.

use std::process::ExitCode;

use serde_json::{Value, json};

use super::client::MERGE_PATCH;
use super::{GlobalArgs, Outcome, Session, parse_type_args};

#[derive(clap::Args, Debug)]
pub struct ScaleArgs {
    /// TYPE NAME... or TYPE/NAME...
    #[arg(required = true)]
    pub args: Vec<String>,
    /// The new desired number of replicas.
    #[arg(long, required = true)]
    pub replicas: i64,
    /// Precondition: only scale if the current number of replicas matches.
    #[arg(long, default_value_t = -1, allow_negative_numbers = true)]
    pub current_replicas: i64,
    /// Precondition: only scale if the resourceVersion matches.
    #[arg(long)]
    pub resource_version: Option<String>,
    #[command(flatten)]
    pub global: GlobalArgs,
}

pub async fn run(args: ScaleArgs) -> anyhow::Result<ExitCode> {
    if args.replicas < 0 {
        anyhow::bail!(
            "The --replicas=COUNT flag is required, and COUNT must be greater than or equal to 0"
        );
    }
    let session = Session::connect(&args.global).await?;
    let mut outcome = Outcome::default();
    for (ty, names) in parse_type_args(&args.args)? {
        let rt = session.resolve(&ty).await?;
        if names.is_empty() {
            anyhow::bail!("resource(s) were provided, but no name was specified");
        }
        if !rt.has_subresource("scale") {
            anyhow::bail!(
                "no scaler has been implemented for {{{} {}}}",
                rt.group,
                rt.kind
            );
        }
        let ns = rt.namespaced.then(|| session.namespace().to_string());
        for name in names {
            let url = format!("{}/scale", rt.object_path(ns.as_deref(), &name));
            if args.current_replicas >= 0 || args.resource_version.is_some() {
                let scale = match session.api.get(&url).await {
                    Ok(s) => s,
                    Err(e) => {
                        outcome.error(e);
                        continue;
                    }
                };
                let current = scale
                    .pointer("/spec/replicas")
                    .and_then(Value::as_i64)
                    .unwrap_or(0);
                if args.current_replicas >= 0 && current != args.current_replicas {
                    outcome.error(format!(
                        "error: Expected replicas to be {}, was {current}",
                        args.current_replicas
                    ));
                    continue;
                }
                let rv = scale
                    .pointer("/metadata/resourceVersion")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                if let Some(want) = &args.resource_version
                    && want != rv
                {
                    outcome.error(format!(
                        "error: Expected resource version to be {want}, was {rv}"
                    ));
                    continue;
                }
            }
            let mut patch = json!({"spec": {"replicas": args.replicas}});
            if let Some(rv) = &args.resource_version {
                patch["metadata"] = json!({"resourceVersion": rv});
            }
            match session.api.patch(&url, MERGE_PATCH, &patch).await {
                Ok(_) => outln!("{} scaled", rt.object_ref(&name)),
                Err(e) => outcome.error(e),
            }
        }
    }
    Ok(outcome.code())
}
