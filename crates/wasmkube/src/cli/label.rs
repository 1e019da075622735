//! `label` and `annotate`: set (`k=v`) and remove (`k-`) labels or annotations.

use std::process::ExitCode;

use serde_json::{Map, Value, json};

use super::client::{ACCEPT_JSON, MERGE_PATCH, with_query};
use super::resources::ResourceType;
use super::{GlobalArgs, Outcome, Session, meta_str, parse_type_args};

#[derive(clap::Args, Debug)]
pub struct LabelArgs {
    /// TYPE NAME... KEY=VAL... KEY-..., or TYPE/NAME... KEY=VAL...
    #[arg(required = true)]
    pub args: Vec<String>,
    /// Allow existing keys to be overwritten.
    #[arg(long)]
    pub overwrite: bool,
    /// Select all resources of the type in the namespace.
    #[arg(long)]
    pub all: bool,
    /// Selector (label query) to filter on.
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
    /// Only update if the object's resourceVersion matches.
    #[arg(long)]
    pub resource_version: Option<String>,
    /// Print the current labels (annotations) of the objects instead of changing them.
    #[arg(long)]
    pub list: bool,
    #[command(flatten)]
    pub global: GlobalArgs,
}

/// Which metadata map the verb edits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Labels,
    Annotations,
}

impl Field {
    fn key(self) -> &'static str {
        match self {
            Field::Labels => "labels",
            Field::Annotations => "annotations",
        }
    }

    fn noun(self) -> &'static str {
        match self {
            Field::Labels => "label",
            Field::Annotations => "annotation",
        }
    }
}

/// Changes asked for: `k=v` to set, `k-` to remove.
#[derive(Debug, Default, PartialEq)]
pub struct Changes {
    pub set: Vec<(String, String)>,
    pub remove: Vec<String>,
}

/// Separates object arguments from `k=v` / `k-` arguments.
pub fn split_args(args: &[String]) -> anyhow::Result<(Vec<String>, Changes)> {
    let mut objects = Vec::new();
    let mut changes = Changes::default();
    for (i, a) in args.iter().enumerate() {
        if i > 0 && a.contains('=') {
            let (k, v) = a.split_once('=').unwrap_or((a, ""));
            if k.is_empty() {
                anyhow::bail!("invalid label spec: {a}");
            }
            changes.set.push((k.to_string(), v.to_string()));
        } else if i > 0 && a.ends_with('-') && a.len() > 1 {
            changes.remove.push(a.trim_end_matches('-').to_string());
        } else {
            objects.push(a.clone());
        }
    }
    for (k, _) in &changes.set {
        if changes.remove.contains(k) {
            anyhow::bail!("can not both modify and remove the same key {k:?} in the same command");
        }
    }
    Ok((objects, changes))
}

/// The merge patch for one object, or why it cannot be applied.
fn patch_for(
    current: &Map<String, Value>,
    changes: &Changes,
    overwrite: bool,
    field: Field,
) -> Result<Map<String, Value>, String> {
    let mut patch = Map::new();
    for (k, v) in &changes.set {
        match current.get(k).and_then(Value::as_str) {
            Some(old) if old == v => {}
            Some(old) if !overwrite => {
                return Err(format!(
                    "error: '{k}' already has a value ({old}), and --overwrite is false"
                ));
            }
            _ => {
                patch.insert(k.clone(), Value::String(v.clone()));
            }
        }
    }
    for k in &changes.remove {
        if current.contains_key(k) {
            patch.insert(k.clone(), Value::Null);
        } else {
            eprintln!("{} \"{k}\" not found.", field.noun());
        }
    }
    Ok(patch)
}

pub async fn run(args: LabelArgs, field: Field) -> anyhow::Result<ExitCode> {
    let (object_args, changes) = split_args(&args.args)?;
    if !args.list && changes.set.is_empty() && changes.remove.is_empty() {
        anyhow::bail!("at least one {} update is required", field.noun());
    }
    let session = Session::connect(&args.global).await?;
    let mut outcome = Outcome::default();
    let mut targets: Vec<(ResourceType, Option<String>, String)> = Vec::new();
    for (ty, names) in parse_type_args(&object_args)? {
        let rt = session.resolve(&ty).await?;
        let ns = rt.namespaced.then(|| session.namespace().to_string());
        if names.is_empty() {
            if !args.all && args.selector.is_none() {
                anyhow::bail!(
                    "one or more resources must be specified as <resource> <name> or <resource>/<name>"
                );
            }
            let url = with_query(
                &rt.collection_path(ns.as_deref()),
                &[("labelSelector", args.selector.as_deref())],
            );
            let list = session.api.list(&url, ACCEPT_JSON).await?;
            for item in list
                .get("items")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                targets.push((rt.clone(), ns.clone(), meta_str(item, "name").to_string()));
            }
        } else {
            targets.extend(names.into_iter().map(|n| (rt.clone(), ns.clone(), n)));
        }
    }
    for (rt, ns, name) in targets {
        let url = rt.object_path(ns.as_deref(), &name);
        let obj = match session.api.get(&url).await {
            Ok(o) => o,
            Err(e) => {
                outcome.error(e);
                continue;
            }
        };
        let empty = Map::new();
        let current = obj
            .get("metadata")
            .and_then(|m| m.get(field.key()))
            .and_then(Value::as_object)
            .unwrap_or(&empty);
        if args.list {
            outln!("Listing {} for {}:", field.key(), rt.object_ref(&name));
            for (k, v) in current {
                outln!("{k}={}", v.as_str().unwrap_or_default());
            }
            continue;
        }
        let patch = match patch_for(current, &changes, args.overwrite, field) {
            Ok(p) => p,
            Err(message) => {
                outcome.error(message);
                continue;
            }
        };
        let verb = match field {
            Field::Labels if patch.is_empty() => "not labeled",
            Field::Labels if patch.values().all(Value::is_null) => "unlabeled",
            Field::Labels => "labeled",
            Field::Annotations if patch.is_empty() => "not annotated",
            Field::Annotations => "annotated",
        };
        if !patch.is_empty() {
            let mut body = json!({"metadata": {field.key(): patch}});
            if let Some(rv) = &args.resource_version {
                body["metadata"]["resourceVersion"] = json!(rv);
            }
            if let Err(e) = session.api.patch(&url, MERGE_PATCH, &body).await {
                outcome.error(e);
                continue;
            }
        }
        outln!("{} {verb}", rt.object_ref(&name));
    }
    Ok(outcome.code())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(a: &[&str]) -> Vec<String> {
        a.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn args_split_into_objects_and_changes() {
        let (objects, changes) =
            split_args(&s(&["pods", "a", "b", "x=1", "y-", "z="])).expect("split");
        assert_eq!(objects, s(&["pods", "a", "b"]));
        assert_eq!(
            changes.set,
            vec![("x".into(), "1".into()), ("z".into(), "".into())]
        );
        assert_eq!(changes.remove, s(&["y"]));
        assert!(split_args(&s(&["pods", "a", "x=1", "x-"])).is_err());
        assert!(split_args(&s(&["pods", "a", "=1"])).is_err());
    }

    #[test]
    fn overwrite_rules() {
        let current: Map<String, Value> =
            serde_json::from_value(json!({"a": "1", "b": "2"})).expect("map");
        let changes = Changes {
            set: vec![("a".into(), "1".into()), ("c".into(), "3".into())],
            remove: vec!["b".into()],
        };
        let patch = patch_for(&current, &changes, false, Field::Labels).expect("patch");
        assert_eq!(Value::Object(patch), json!({"c": "3", "b": null}));
        let conflicting = Changes {
            set: vec![("a".into(), "9".into())],
            remove: vec![],
        };
        assert!(patch_for(&current, &conflicting, false, Field::Labels).is_err());
        assert_eq!(
            patch_for(&current, &conflicting, true, Field::Labels).map(Value::Object),
            Ok(json!({"a": "9"}))
        );
    }
}
