//! `run NAME --image=I`: creates a Pod, as `kubectl run` does.

use std::collections::BTreeMap;
use std::process::ExitCode;

use serde_json::{Value, json};

use super::apply::DryRun;
use super::output::{self, OutputFormat};
use super::{GlobalArgs, Session};

#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// The pod's name.
    pub name: String,
    /// The image for the container to run.
    #[arg(long, required = true)]
    pub image: String,
    /// Environment variables to set in the container (KEY=VALUE).
    #[arg(long)]
    pub env: Vec<String>,
    /// Comma separated labels to apply to the pod; replaces the default `run=NAME`.
    #[arg(short = 'l', long)]
    pub labels: Option<String>,
    /// Annotations to apply to the pod (KEY=VALUE).
    #[arg(long)]
    pub annotations: Vec<String>,
    /// The port that this container exposes.
    #[arg(long)]
    pub port: Option<i64>,
    /// The restart policy for this Pod: Always, OnFailure or Never.
    #[arg(long, default_value = "Always")]
    pub restart: String,
    /// The image pull policy for the container.
    #[arg(long)]
    pub image_pull_policy: Option<String>,
    /// Treat the arguments after `--` as the command rather than the arguments.
    #[arg(long)]
    pub command: bool,
    /// The pod's RuntimeClass (e.g. `wasmtime`).
    #[arg(long)]
    pub runtime_class: Option<String>,
    /// Output format: name, yaml or json.
    #[arg(short = 'o', long)]
    pub output: Option<String>,
    /// none, client or server: only show what would be created.
    #[arg(long, num_args = 0..=1, default_value = "none", default_missing_value = "client")]
    pub dry_run: DryRun,
    /// Keep stdin open (not supported: wasmkube run only creates the pod).
    #[arg(short = 'i', long)]
    pub stdin: bool,
    /// Allocate a TTY (not supported).
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Delete the pod after it exits (needs an attached session; not supported).
    #[arg(long)]
    pub rm: bool,
    /// Arguments (or, with --command, the command) for the container, after `--`.
    #[arg(last = true)]
    pub args: Vec<String>,
    #[command(flatten)]
    pub global: GlobalArgs,
}

fn pairs(items: &[String], what: &str) -> anyhow::Result<Vec<(String, String)>> {
    items
        .iter()
        .flat_map(|i| {
            if what == "label" {
                i.split(',').map(str::to_string).collect()
            } else {
                vec![i.clone()]
            }
        })
        .filter(|i| !i.is_empty())
        .map(|i| match i.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => anyhow::bail!("invalid {what} {i:?}: expected KEY=VALUE"),
        })
        .collect()
}

/// The Pod `run` creates.
pub fn pod(args: &RunArgs) -> anyhow::Result<Value> {
    if !matches!(args.restart.as_str(), "Always" | "OnFailure" | "Never") {
        anyhow::bail!("invalid restart policy: {}", args.restart);
    }
    let labels: BTreeMap<String, String> = match &args.labels {
        Some(l) => pairs(std::slice::from_ref(l), "label")?
            .into_iter()
            .collect(),
        None => BTreeMap::from([("run".to_string(), args.name.clone())]),
    };
    let mut container = json!({"name": args.name, "image": args.image, "resources": {}});
    if !args.args.is_empty() {
        let key = if args.command { "command" } else { "args" };
        container[key] = json!(args.args);
    }
    if let Some(p) = args.port {
        container["ports"] = json!([{"containerPort": p}]);
    }
    if let Some(p) = &args.image_pull_policy {
        container["imagePullPolicy"] = json!(p);
    }
    let env: Vec<Value> = pairs(&args.env, "environment variable")?
        .into_iter()
        .map(|(k, v)| json!({"name": k, "value": v}))
        .collect();
    if !env.is_empty() {
        container["env"] = json!(env);
    }
    let mut pod = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": args.name, "labels": labels},
        "spec": {
            "containers": [container],
            "restartPolicy": args.restart,
            "dnsPolicy": "ClusterFirst",
        },
    });
    let annotations: BTreeMap<String, String> = pairs(&args.annotations, "annotation")?
        .into_iter()
        .collect();
    if !annotations.is_empty() {
        pod["metadata"]["annotations"] = json!(annotations);
    }
    if let Some(rc) = &args.runtime_class {
        pod["spec"]["runtimeClassName"] = json!(rc);
    }
    Ok(pod)
}

pub async fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    if args.stdin || args.tty || args.rm {
        anyhow::bail!(
            "-i, -t and --rm need an attached session, which wasmkube run does not support yet; use `wasmkube logs -f {}` after creating the pod",
            args.name
        );
    }
    let format = OutputFormat::parse(args.output.as_deref())?;
    let mut pod = pod(&args)?;
    let session = Session::connect(&args.global).await?;
    let rt = session.resolve("pods").await?;
    let ns = session.namespace().to_string();
    pod["metadata"]["namespace"] = json!(ns);
    let created = if args.dry_run == DryRun::Client {
        pod
    } else {
        session
            .api
            .create(&args.dry_run.url(&rt.collection_path(Some(&ns))), &pod)
            .await?
    };
    match format {
        OutputFormat::Yaml => out!("{}", output::to_yaml(&created)),
        OutputFormat::Json => out!("{}", output::to_json(&created)),
        OutputFormat::Name => outln!("{}", rt.object_ref(&args.name)),
        _ => outln!(
            "{} created{}",
            rt.object_ref(&args.name),
            args.dry_run.suffix()
        ),
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Wrapper {
        #[command(flatten)]
        run: RunArgs,
    }

    fn parse(args: &[&str]) -> RunArgs {
        let mut all = vec!["run"];
        all.extend_from_slice(args);
        match Wrapper::try_parse_from(all) {
            Ok(w) => w.run,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn pod_defaults_like_kubectl() {
        let p = pod(&parse(&["hello", "--image=nginx"])).expect("pod");
        assert_eq!(p["metadata"]["labels"], json!({"run": "hello"}));
        assert_eq!(p["spec"]["containers"][0]["image"], json!("nginx"));
        assert_eq!(p["spec"]["restartPolicy"], json!("Always"));
    }

    #[test]
    fn args_env_labels_and_command() {
        let p = pod(&parse(&[
            "job",
            "--image=busybox",
            "--env=A=1",
            "-l",
            "a=b,c=d",
            "--restart=Never",
            "--command",
            "--",
            "sh",
            "-c",
            "echo hi",
        ]))
        .expect("pod");
        assert_eq!(
            p["spec"]["containers"][0]["command"],
            json!(["sh", "-c", "echo hi"])
        );
        assert_eq!(
            p["spec"]["containers"][0]["env"],
            json!([{"name": "A", "value": "1"}])
        );
        assert_eq!(p["metadata"]["labels"], json!({"a": "b", "c": "d"}));
        assert!(pod(&parse(&["x", "--image=i", "--restart=Sometimes"])).is_err());
        assert!(pod(&parse(&["x", "--image=i", "--env=novalue"])).is_err());
    }
}
