//! `version`: the client's version and the server's `/version`, as `kubectl version` prints
//! them.

use std::process::ExitCode;

use serde_json::{Value, json};

use super::{GlobalArgs, Session};

#[derive(clap::Args, Debug)]
pub struct VersionArgs {
    /// Only print the client version.
    #[arg(long)]
    pub client: bool,
    /// yaml or json.
    #[arg(short = 'o', long)]
    pub output: Option<String>,
    #[command(flatten)]
    pub global: GlobalArgs,
}

/// The client's version, in the shape of the server's `/version` answer: both come from the
/// same build, so they agree.
fn client_version() -> Value {
    wasmkube_apiserver::discovery::version()
}

fn git_version(v: &Value) -> &str {
    v.get("gitVersion")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

pub async fn run(args: VersionArgs) -> anyhow::Result<ExitCode> {
    let format = args.output.as_deref();
    if let Some(f) = format
        && f != "yaml"
        && f != "json"
    {
        anyhow::bail!("--output must be 'yaml' or 'json'");
    }
    let client = client_version();
    let mut doc = json!({ "clientVersion": client });
    let mut failure = None;
    if !args.client {
        match Session::connect(&args.global).await {
            Ok(session) => match session.api.get("/version").await {
                Ok(v) => doc["serverVersion"] = v,
                Err(e) => failure = Some(e.to_string()),
            },
            Err(e) => failure = Some(format!("error: {e:#}")),
        }
    }
    match format {
        Some("json") => {
            let text = serde_json::to_string_pretty(&doc).unwrap_or_default();
            outln!("{text}");
        }
        // Field order as the server sent it (Go's struct order), not sorted like objects.
        Some(_) => out!("{}", super::yaml::to_string(&doc)),
        None => {
            outln!("Client Version: {}", git_version(&doc["clientVersion"]));
            if let Some(server) = doc.get("serverVersion") {
                outln!("Server Version: {}", git_version(server));
            }
        }
    }
    match failure {
        Some(message) => {
            eprintln!("{message}");
            Ok(ExitCode::FAILURE)
        }
        None => Ok(ExitCode::SUCCESS),
    }
}
