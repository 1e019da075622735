//! `apply -f`: client-side apply, as kubectl does it. Each object is created when missing (with
//! the last-applied annotation), or patched with a three-way patch computed from the
//! last-applied configuration, the manifest and the live object.

use std::process::ExitCode;

use serde_json::{Value, json};

use super::client::{CallError, with_query};
use super::manifest::{self, Item, Manifest};
use super::merge;
use super::output::{self, OutputFormat};
use super::resources::{Discovery, ResourceType};
use super::{GlobalArgs, Outcome, Session, meta_str};

pub const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// How many times a patch is recomputed when someone else wrote the object in between.
const MAX_PATCH_RETRIES: usize = 5;

#[derive(clap::Args, Debug)]
pub struct ApplyArgs {
    /// Files, directories or `-` (stdin) containing the configuration to apply.
    #[arg(short = 'f', long = "filename", required = true)]
    pub filenames: Vec<String>,
    /// Process the directory used in -f recursively.
    #[arg(short = 'R', long)]
    pub recursive: bool,
    /// Output format: name, yaml or json.
    #[arg(short = 'o', long)]
    pub output: Option<String>,
    /// none, client or server: only show what would be applied.
    #[arg(long, num_args = 0..=1, default_value = "none", default_missing_value = "client")]
    pub dry_run: DryRun,
    #[command(flatten)]
    pub global: GlobalArgs,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum DryRun {
    None,
    Client,
    Server,
}

impl DryRun {
    pub fn suffix(self) -> &'static str {
        match self {
            DryRun::None => "",
            DryRun::Client => " (dry run)",
            DryRun::Server => " (server dry run)",
        }
    }

    /// Adds `dryRun=All` to write URLs for a server-side dry run.
    pub fn url(self, url: &str) -> String {
        match self {
            DryRun::Server => with_query(url, &[("dryRun", Some("All"))]),
            _ => url.to_string(),
        }
    }
}

/// What happened to one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Result {
    Created,
    Configured,
    Unchanged,
}

impl Result {
    fn word(self) -> &'static str {
        match self {
            Result::Created => "created",
            Result::Configured => "configured",
            Result::Unchanged => "unchanged",
        }
    }
}

pub async fn run(args: ApplyArgs) -> anyhow::Result<ExitCode> {
    let format = OutputFormat::parse(args.output.as_deref())?;
    if !matches!(
        format,
        OutputFormat::Default | OutputFormat::Name | OutputFormat::Yaml | OutputFormat::Json
    ) {
        anyhow::bail!("apply supports -o name, yaml and json");
    }
    let items = manifest::read_sources(&args.filenames, args.recursive)?;
    let session = Session::connect(&args.global).await?;
    let discovery = session.discovery().await?;
    let mut outcome = Outcome::default();
    let mut printed: Vec<Value> = Vec::new();
    let mut any = false;
    for item in items {
        any = true;
        let m = match item {
            Item::Object(m) => m,
            Item::Invalid { message, .. } => {
                outcome.error(format!("error: {message}"));
                continue;
            }
        };
        match apply_one(&session, discovery, &m, args.dry_run).await {
            Ok((rt, result, obj)) => {
                let name = meta_str(&obj, "name").to_string();
                match format {
                    OutputFormat::Name => outln!("{}", rt.object_ref(&name)),
                    OutputFormat::Yaml | OutputFormat::Json => printed.push(obj),
                    _ => outln!(
                        "{} {}{}",
                        rt.object_ref(&name),
                        result.word(),
                        args.dry_run.suffix()
                    ),
                }
            }
            Err(e) => outcome.error(e),
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
    if !any {
        anyhow::bail!("no objects passed to apply");
    }
    Ok(outcome.code())
}

/// The namespace an object goes to: `-n`, else its own, else the context's; never one for
/// cluster-scoped kinds. A manifest naming another namespace than `-n` is refused, as in
/// kubectl, so an object never lands somewhere the user did not ask for.
pub fn target_namespace(
    rt: &ResourceType,
    obj: &Value,
    flag: Option<&str>,
    default: &str,
) -> std::result::Result<Option<String>, String> {
    if !rt.namespaced {
        return Ok(None);
    }
    let own = meta_str(obj, "namespace");
    match flag {
        Some(f) if !own.is_empty() && own != f => Err(format!(
            "error: the namespace from the provided object \"{own}\" does not match the namespace \"{f}\". You must pass '--namespace={own}' to perform this operation."
        )),
        Some(f) => Ok(Some(f.to_string())),
        None if !own.is_empty() => Ok(Some(own.to_string())),
        None => Ok(Some(default.to_string())),
    }
}

/// Resolves a manifest to its resource, namespace and name, with kubectl's messages.
pub fn locate<'a>(
    session: &Session,
    discovery: &'a Discovery,
    m: &Manifest,
) -> std::result::Result<(&'a ResourceType, Option<String>, String), String> {
    let api_version = m
        .object
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let kind = m
        .object
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let name = meta_str(&m.object, "name").to_string();
    let Some(rt) = discovery.for_kind(api_version, kind) else {
        return Err(format!(
            "error: resource mapping not found for name: \"{name}\" namespace: \"{}\" from \"{}\": no matches for kind \"{kind}\" in version \"{api_version}\"\nensure CRDs are installed first",
            meta_str(&m.object, "namespace"),
            m.source
        ));
    };
    let ns = target_namespace(rt, &m.object, session.namespace_flag(), session.namespace())?;
    if name.is_empty() {
        return Err(format!(
            "error: error when retrieving current configuration of {kind} from \"{}\": resource name may not be empty",
            m.source
        ));
    }
    Ok((rt, ns, name))
}

/// The manifest with its last-applied annotation set to the manifest itself (minus that
/// annotation), serialised the way kubectl does: sorted keys, one line, trailing newline.
pub fn with_last_applied(obj: &Value) -> Value {
    let mut bare = obj.clone();
    if let Some(annotations) = bare
        .pointer_mut("/metadata/annotations")
        .and_then(Value::as_object_mut)
    {
        annotations.remove(LAST_APPLIED);
        if annotations.is_empty()
            && let Some(meta) = bare.get_mut("metadata").and_then(Value::as_object_mut)
        {
            meta.remove("annotations");
        }
    }
    let mut text = serde_json::to_string(&output::sorted(&bare)).unwrap_or_default();
    text.push('\n');
    let mut modified = bare;
    if let Some(meta) = modified.get_mut("metadata").and_then(Value::as_object_mut) {
        let annotations = meta.entry("annotations").or_insert_with(|| json!({}));
        if let Some(a) = annotations.as_object_mut() {
            a.insert(LAST_APPLIED.to_string(), Value::String(text));
        }
    }
    modified
}

fn last_applied(live: &Value) -> Option<Value> {
    let text = live
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(LAST_APPLIED))
        .and_then(Value::as_str)?;
    serde_json::from_str(text).ok()
}

fn resource_description(rt: &ResourceType, name: &str, ns: Option<&str>) -> String {
    format!(
        "Resource: \"{}, Resource={}\", GroupVersionKind: \"{}, Kind={}\"\nName: \"{name}\", Namespace: \"{}\"",
        rt.api_version(),
        rt.resource,
        rt.api_version(),
        rt.kind,
        ns.unwrap_or_default()
    )
}

async fn apply_one(
    session: &Session,
    discovery: &Discovery,
    m: &Manifest,
    dry_run: DryRun,
) -> std::result::Result<(ResourceType, Result, Value), String> {
    let (rt, ns, name) = locate(session, discovery, m)?;
    let mut obj = m.object.clone();
    if let (Some(ns), Some(meta)) = (&ns, obj.get_mut("metadata").and_then(Value::as_object_mut)) {
        meta.insert("namespace".into(), Value::String(ns.clone()));
    }
    let modified = with_last_applied(&obj);
    let url = rt.object_path(ns.as_deref(), &name);
    let describe = || resource_description(rt, &name, ns.as_deref());

    let mut live = match session.api.get(&url).await {
        Ok(live) => live,
        Err(e) if e.is_not_found() => {
            if dry_run == DryRun::Client {
                return Ok((rt.clone(), Result::Created, modified));
            }
            let created = session
                .api
                .create(&dry_run.url(&rt.collection_path(ns.as_deref())), &modified)
                .await
                .map_err(|e| {
                    e.with_context(&format!("error when creating \"{}\"", m.source))
                        .to_string()
                })?;
            return Ok((rt.clone(), Result::Created, created));
        }
        Err(e) => {
            return Err(e
                .with_context(&format!(
                    "error when retrieving current configuration of:\n{}\nfrom server for: \"{}\"",
                    describe(),
                    m.source
                ))
                .to_string());
        }
    };

    let mut warned = false;
    for attempt in 0..MAX_PATCH_RETRIES {
        let original = last_applied(&live);
        if original.is_none() && !warned {
            warned = true;
            eprintln!(
                "Warning: resource {}/{name} is missing the {LAST_APPLIED} annotation which is required by wasmkube apply. wasmkube apply should only be used on resources created declaratively by either wasmkube create --save-config or wasmkube apply. The missing annotation will be patched automatically.",
                rt.resource
            );
        }
        let (content_type, patch) = merge::apply_patch(rt, original.as_ref(), &modified, &live);
        if patch.as_object().is_some_and(|p| p.is_empty()) {
            return Ok((rt.clone(), Result::Unchanged, live));
        }
        if dry_run == DryRun::Client {
            return Ok((rt.clone(), Result::Configured, modified));
        }
        match session
            .api
            .patch(&dry_run.url(&url), content_type, &patch)
            .await
        {
            Ok(patched) => {
                let before = meta_str(&live, "resourceVersion");
                let after = meta_str(&patched, "resourceVersion");
                let result = if before == after {
                    Result::Unchanged
                } else {
                    Result::Configured
                };
                return Ok((rt.clone(), result, patched));
            }
            Err(e) if e.is_conflict() && attempt + 1 < MAX_PATCH_RETRIES => {
                live = match session.api.get(&url).await {
                    Ok(l) => l,
                    Err(e) => return Err(e.to_string()),
                };
            }
            Err(e) => {
                return Err(patch_error(e, &patch, &describe(), &m.source).to_string());
            }
        }
    }
    // The last attempt's conflict is reported by the arm above; this is only reached if the
    // retry budget is zero.
    Err(format!(
        "error: gave up patching {} after repeated conflicts",
        rt.object_ref(&name)
    ))
}

fn patch_error(e: CallError, patch: &Value, describe: &str, source: &str) -> CallError {
    e.with_context(&format!(
        "error when applying patch:\n{}\nto:\n{describe}\nfor: \"{source}\"",
        serde_json::to_string(patch).unwrap_or_default()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_applied_is_sorted_compact_json_without_itself() {
        let obj = json!({"kind": "ConfigMap", "apiVersion": "v1",
            "metadata": {"name": "c", "annotations": {LAST_APPLIED: "old"}}, "data": {"b": "2", "a": "1"}});
        let modified = with_last_applied(&obj);
        let text = modified["metadata"]["annotations"][LAST_APPLIED]
            .as_str()
            .expect("annotation");
        assert_eq!(
            text,
            "{\"apiVersion\":\"v1\",\"data\":{\"a\":\"1\",\"b\":\"2\"},\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"c\"}}\n"
        );
        // Applying the result again yields the same annotation: apply is idempotent.
        assert_eq!(with_last_applied(&modified), modified);
    }

    #[test]
    fn namespaces_follow_kubectl_rules() {
        let d = crate::cli::resources::tests::sample();
        let deploy = d.resolve("deploy").expect("deploy");
        let ns = d.resolve("ns").expect("ns");
        let with_ns = json!({"metadata": {"name": "a", "namespace": "prod"}});
        let without = json!({"metadata": {"name": "a"}});
        assert_eq!(
            target_namespace(deploy, &without, None, "ctx"),
            Ok(Some("ctx".into()))
        );
        assert_eq!(
            target_namespace(deploy, &with_ns, None, "ctx"),
            Ok(Some("prod".into()))
        );
        assert_eq!(
            target_namespace(deploy, &without, Some("dev"), "ctx"),
            Ok(Some("dev".into()))
        );
        assert_eq!(
            target_namespace(deploy, &with_ns, Some("prod"), "ctx"),
            Ok(Some("prod".into()))
        );
        assert!(target_namespace(deploy, &with_ns, Some("dev"), "ctx").is_err());
        assert_eq!(target_namespace(ns, &with_ns, Some("dev"), "ctx"), Ok(None));
    }
}
