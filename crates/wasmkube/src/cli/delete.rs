//! `delete`: by type and names, `TYPE/NAME`, `-f`, `-l` or `--all`; waits until the objects are
//! gone unless `--wait=false`.

use std::process::ExitCode;
use std::time::Duration;

use serde_json::{Value, json};

use super::client::{ACCEPT_JSON, with_query};
use super::manifest::{self, Item};
use super::resources::ResourceType;
use super::{GlobalArgs, Outcome, Session, meta_str, parse_duration, parse_type_args};

#[derive(clap::Args, Debug)]
pub struct DeleteArgs {
    /// TYPE NAME..., TYPE/NAME..., or TYPE with -l / --all.
    pub args: Vec<String>,
    /// Files identifying the resources to delete.
    #[arg(short = 'f', long = "filename")]
    pub filenames: Vec<String>,
    /// Process the directory used in -f recursively.
    #[arg(short = 'R', long)]
    pub recursive: bool,
    /// Selector (label query) to filter on.
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
    /// Selector (field query) to filter on.
    #[arg(long)]
    pub field_selector: Option<String>,
    /// Delete all resources of the given types in the namespace.
    #[arg(long)]
    pub all: bool,
    /// Delete the requested objects across all namespaces (with -l or --all).
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
    /// Seconds given to the resource to terminate gracefully; -1 uses the object's default.
    #[arg(long, default_value_t = -1, allow_negative_numbers = true)]
    pub grace_period: i64,
    /// Remove immediately, bypassing graceful deletion (grace period 0 unless given).
    #[arg(long)]
    pub force: bool,
    /// Shorthand for --grace-period=1.
    #[arg(long)]
    pub now: bool,
    /// Wait for the resources to be gone before returning.
    #[arg(long, num_args = 0..=1, default_value = "true", default_missing_value = "true", action = clap::ArgAction::Set)]
    pub wait: bool,
    /// How long to wait for the deletion; 0 waits forever.
    #[arg(long, default_value = "0s")]
    pub timeout: String,
    /// background, foreground or orphan (true = background, false = orphan).
    #[arg(long, num_args = 0..=1, default_value = "background", default_missing_value = "background")]
    pub cascade: String,
    /// Treat "resource not found" as a successful delete.
    #[arg(long)]
    pub ignore_not_found: bool,
    /// Output mode: only `name` is supported (prints `kind/name`).
    #[arg(short = 'o', long)]
    pub output: Option<String>,
    #[command(flatten)]
    pub global: GlobalArgs,
}

/// One object to delete.
#[derive(Debug, Clone)]
struct Target {
    rt: ResourceType,
    namespace: Option<String>,
    name: String,
}

fn propagation(cascade: &str) -> anyhow::Result<&'static str> {
    Ok(match cascade {
        "background" | "true" => "Background",
        "foreground" => "Foreground",
        "orphan" | "false" => "Orphan",
        other => anyhow::bail!(
            "invalid cascade value ({other}). Must be \"background\", \"foreground\", or \"orphan\""
        ),
    })
}

/// kubectl's grace-period rules: `--now` is 1; 0 without `--force` becomes 1, because 0 skips
/// the kubelet's cleanup and only `--force` should do that; `--force` alone means 0.
fn effective_grace(grace: i64, force: bool, now: bool) -> anyhow::Result<Option<i64>> {
    if now && grace >= 0 {
        anyhow::bail!("--now and --grace-period cannot be specified together");
    }
    let mut g = if now { 1 } else { grace };
    if g == 0 && !force {
        g = 1;
    }
    if force && g < 0 {
        g = 0;
    }
    Ok((g >= 0).then_some(g))
}

pub async fn run(args: DeleteArgs) -> anyhow::Result<ExitCode> {
    let policy = propagation(&args.cascade)?;
    let grace = effective_grace(args.grace_period, args.force, args.now)?;
    let timeout = parse_duration(&args.timeout)?;
    if let Some(o) = &args.output
        && o != "name"
    {
        anyhow::bail!(
            "unable to match a printer suitable for the output format \"{o}\", allowed formats are: name"
        );
    }
    if args.args.is_empty() && args.filenames.is_empty() {
        anyhow::bail!("You must provide one or more resources by argument or filename.");
    }
    if args.force && grace == Some(0) {
        eprintln!(
            "Warning: Immediate deletion does not wait for confirmation that the running resource has been terminated. The resource may continue to run on the cluster indefinitely."
        );
    }
    let session = Session::connect(&args.global).await?;
    let mut outcome = Outcome::default();
    let targets = collect_targets(&args, &session, &mut outcome).await?;

    let mut options =
        json!({"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": policy});
    if let Some(g) = grace {
        options["gracePeriodSeconds"] = json!(g);
    }
    let selecting = args.all || args.selector.is_some() || args.field_selector.is_some();
    let mut deleted: Vec<(Target, String)> = Vec::new();
    for t in targets {
        let url = t.rt.object_path(t.namespace.as_deref(), &t.name);
        match session.api.delete(&url, &options).await {
            Ok(v) => {
                if args.output.is_some() {
                    outln!("{}", t.rt.object_ref(&t.name));
                } else {
                    let verb = if args.force && grace == Some(0) {
                        "force deleted"
                    } else {
                        "deleted"
                    };
                    outln!("{} \"{}\" {verb}", t.rt.display_kind(), t.name);
                }
                // The answer is the object (still terminating) or a Status; a uid lets the wait
                // tell a re-created object of the same name from the deleted one.
                let uid = if v.get("kind").and_then(Value::as_str) == Some("Status") {
                    v.pointer("/details/uid")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string()
                } else {
                    meta_str(&v, "uid").to_string()
                };
                deleted.push((t, uid));
            }
            // Objects found by a selector may vanish before we get to them; that is success.
            Err(e) if e.is_not_found() && (args.ignore_not_found || selecting) => {}
            Err(e) => outcome.error(e),
        }
    }
    if args.wait && !(args.force && grace == Some(0)) {
        wait_for_deletion(&session, &deleted, timeout, &mut outcome).await;
    }
    Ok(outcome.code())
}

async fn collect_targets(
    args: &DeleteArgs,
    session: &Session,
    outcome: &mut Outcome,
) -> anyhow::Result<Vec<Target>> {
    let discovery = session.discovery().await?;
    let mut targets = Vec::new();
    if !args.filenames.is_empty() {
        if !args.args.is_empty() {
            anyhow::bail!("resource types and names cannot be given together with -f");
        }
        for item in manifest::read_sources(&args.filenames, args.recursive)? {
            match item {
                Item::Object(m) => match super::apply::locate(session, discovery, &m) {
                    Ok((rt, namespace, name)) => targets.push(Target {
                        rt: rt.clone(),
                        namespace,
                        name,
                    }),
                    Err(message) => outcome.error(message),
                },
                Item::Invalid { message, .. } => outcome.error(format!("error: {message}")),
            }
        }
        return Ok(targets);
    }
    let selecting = args.all || args.selector.is_some() || args.field_selector.is_some();
    for (ty, names) in parse_type_args(&args.args)? {
        let types = if names.is_empty() {
            discovery.resolve_many(&ty)
        } else {
            discovery.resolve(&ty).map(|r| vec![r])
        }
        .ok_or_else(|| super::resources::unknown_type(&ty))?;
        if names.is_empty() && !selecting {
            anyhow::bail!("resource(s) were provided, but no name was specified");
        }
        if !names.is_empty() && selecting {
            anyhow::bail!("name cannot be provided when a selector is specified");
        }
        for rt in types {
            if !names.is_empty() {
                let namespace = rt.namespaced.then(|| session.namespace().to_string());
                targets.extend(names.iter().map(|n| Target {
                    rt: rt.clone(),
                    namespace: namespace.clone(),
                    name: n.clone(),
                }));
                continue;
            }
            let namespace =
                (rt.namespaced && !args.all_namespaces).then(|| session.namespace().to_string());
            let url = with_query(
                &rt.collection_path(namespace.as_deref()),
                &[
                    ("labelSelector", args.selector.as_deref()),
                    ("fieldSelector", args.field_selector.as_deref()),
                ],
            );
            let list = session.api.list(&url, ACCEPT_JSON).await?;
            for item in list
                .get("items")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let ns = meta_str(item, "namespace");
                targets.push(Target {
                    rt: rt.clone(),
                    namespace: (!ns.is_empty()).then(|| ns.to_string()),
                    name: meta_str(item, "name").to_string(),
                });
            }
        }
    }
    if targets.is_empty() && selecting && !outcome.failed() {
        if args.all_namespaces {
            eprintln!("No resources found");
        } else {
            eprintln!("No resources found in {} namespace.", session.namespace());
        }
    }
    Ok(targets)
}

/// Polls each object until it is gone (or replaced by a new object with the same name).
/// Polling rather than watching keeps this correct for any server and any number of objects;
/// the interval grows to one second so long finalizations cost little.
async fn wait_for_deletion(
    session: &Session,
    deleted: &[(Target, String)],
    timeout: Duration,
    outcome: &mut Outcome,
) {
    let deadline = (!timeout.is_zero()).then(|| tokio::time::Instant::now() + timeout);
    for (t, uid) in deleted {
        let url = t.rt.object_path(t.namespace.as_deref(), &t.name);
        let mut interval = Duration::from_millis(100);
        loop {
            match session.api.get(&url).await {
                Err(e) if e.is_not_found() => break,
                Err(e) => {
                    outcome.error(e);
                    break;
                }
                Ok(v) if !uid.is_empty() && meta_str(&v, "uid") != uid => break,
                Ok(_) => {}
            }
            if deadline.is_some_and(|d| tokio::time::Instant::now() >= d) {
                outcome.error(format!(
                    "error: timed out waiting for the condition on {}/{}",
                    t.rt.group_resource(),
                    t.name
                ));
                break;
            }
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                _ = tokio::signal::ctrl_c() => {
                    outcome.fail();
                    return;
                }
            }
            interval = (interval * 2).min(Duration::from_secs(1));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grace_period_rules() {
        assert_eq!(effective_grace(-1, false, false).ok(), Some(None));
        assert_eq!(effective_grace(0, false, false).ok(), Some(Some(1)));
        assert_eq!(effective_grace(0, true, false).ok(), Some(Some(0)));
        assert_eq!(effective_grace(-1, true, false).ok(), Some(Some(0)));
        assert_eq!(effective_grace(30, true, false).ok(), Some(Some(30)));
        assert_eq!(effective_grace(-1, false, true).ok(), Some(Some(1)));
        assert!(effective_grace(5, false, true).is_err());
    }

    #[test]
    fn cascade_values() {
        assert_eq!(propagation("background").ok(), Some("Background"));
        assert_eq!(propagation("true").ok(), Some("Background"));
        assert_eq!(propagation("orphan").ok(), Some("Orphan"));
        assert_eq!(propagation("false").ok(), Some("Orphan"));
        assert_eq!(propagation("foreground").ok(), Some("Foreground"));
        assert!(propagation("sideways").is_err());
    }
}
