//! Reading manifests for `-f`: files, directories (`-R`), stdin; multi-document YAML, JSON
//! (one or several values) and `kind: List` wrappers, flattened into single objects.

use std::io::Read as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde_json::{Map, Number, Value};

/// One object from a manifest, with where it came from (kubectl names the file in errors).
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    pub source: String,
    pub object: Value,
}

/// What a `-f` source yielded: objects, or a per-document problem reported like kubectl does
/// while the other documents are still processed.
#[derive(Debug)]
pub enum Item {
    Object(Manifest),
    Invalid { message: String },
}

/// Reads every `-f` value. A path that does not exist or cannot be parsed fails as a whole,
/// like kubectl, before anything is sent.
pub fn read_sources(files: &[String], recursive: bool) -> anyhow::Result<Vec<Item>> {
    if files.is_empty() {
        bail!("must specify one of -f and -k");
    }
    let mut items = Vec::new();
    for f in files {
        if f == "-" {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .context("reading standard input")?;
            items.extend(parse(&text, "STDIN")?);
            continue;
        }
        if f.starts_with("http://") || f.starts_with("https://") {
            bail!("reading manifests from URLs is not supported: {f}");
        }
        let path = Path::new(f);
        if !path.exists() {
            bail!("the path \"{f}\" does not exist");
        }
        if path.is_dir() {
            for file in manifest_files(path, recursive)? {
                let text = std::fs::read_to_string(&file)
                    .with_context(|| format!("reading {}", file.display()))?;
                items.extend(parse(&text, &file.display().to_string())?);
            }
        } else {
            let text = std::fs::read_to_string(path).with_context(|| format!("reading {f}"))?;
            items.extend(parse(&text, f)?);
        }
    }
    Ok(items)
}

/// The `.json`, `.yaml` and `.yml` files of a directory, sorted, descending with `-R`.
fn manifest_files(dir: &Path, recursive: bool) -> anyhow::Result<Vec<PathBuf>> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading directory {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    let mut out = Vec::new();
    for p in entries {
        if p.is_dir() {
            if recursive {
                out.extend(manifest_files(&p, true)?);
            }
        } else if matches!(
            p.extension().and_then(|e| e.to_str()),
            Some("json" | "yaml" | "yml")
        ) {
            out.push(p);
        }
    }
    Ok(out)
}

/// Splits one file's text into objects.
pub fn parse(text: &str, source: &str) -> anyhow::Result<Vec<Item>> {
    let trimmed = text.trim_start();
    let values: Vec<Value> = if trimmed.starts_with('{') || trimmed.starts_with('[') {
        let mut out = Vec::new();
        for v in serde_json::Deserializer::from_str(text).into_iter::<Value>() {
            let v = v.map_err(|e| anyhow::anyhow!("error parsing {source}: {e}"))?;
            match v {
                // A bare JSON array of objects is accepted like a List.
                Value::Array(a) => out.extend(a),
                other => out.push(other),
            }
        }
        out
    } else {
        let mut out = Vec::new();
        for doc in serde_yaml_ng::Deserializer::from_str(text) {
            let y: serde_yaml_ng::Value = serde::Deserialize::deserialize(doc)
                .map_err(|e| anyhow::anyhow!("error parsing {source}: {e}"))?;
            let v = yaml_to_json(y).map_err(|e| anyhow::anyhow!("error parsing {source}: {e}"))?;
            if !v.is_null() {
                out.push(v);
            }
        }
        out
    };
    let mut items = Vec::new();
    for v in values {
        flatten(v, source, &mut items);
    }
    Ok(items)
}

fn flatten(v: Value, source: &str, out: &mut Vec<Item>) {
    if !v.is_object() {
        out.push(Item::Invalid {
            message: format!(
                "error validating \"{source}\": error validating data: expected an object, got {}",
                type_name(&v)
            ),
        });
        return;
    }
    let kind = v.get("kind").and_then(Value::as_str).unwrap_or_default();
    if kind.ends_with("List")
        && let Some(items) = v.get("items").and_then(Value::as_array)
    {
        for item in items.clone() {
            flatten(item, source, out);
        }
        return;
    }
    let mut missing = Vec::new();
    if v.get("apiVersion")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        missing.push("apiVersion not set");
    }
    if kind.is_empty() {
        missing.push("kind not set");
    }
    if missing.is_empty() {
        out.push(Item::Object(Manifest {
            source: source.into(),
            object: v,
        }));
    } else {
        out.push(Item::Invalid {
            message: format!(
                "error validating \"{source}\": error validating data: [{}]; if you choose to ignore these errors, turn validation off with --validate=false",
                missing.join(", ")
            ),
        });
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// One YAML (or JSON) value, for inline documents such as `patch -p`.
pub fn parse_value(text: &str) -> anyhow::Result<Value> {
    let y: serde_yaml_ng::Value = serde_yaml_ng::from_str(text)?;
    yaml_to_json(y)
}

/// YAML to JSON. Non-string keys become strings (YAML allows `80: x`, JSON does not); tags are
/// dropped, keeping the tagged value.
fn yaml_to_json(y: serde_yaml_ng::Value) -> anyhow::Result<Value> {
    use serde_yaml_ng::Value as Y;
    Ok(match y {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(b),
        Y::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::Number(i.into())
            } else if let Some(u) = n.as_u64() {
                Value::Number(u.into())
            } else {
                let f = n.as_f64().unwrap_or(f64::NAN);
                Value::Number(
                    Number::from_f64(f)
                        .ok_or_else(|| anyhow::anyhow!("{f} cannot be represented in JSON"))?,
                )
            }
        }
        Y::String(s) => Value::String(s),
        Y::Sequence(seq) => Value::Array(
            seq.into_iter()
                .map(yaml_to_json)
                .collect::<anyhow::Result<_>>()?,
        ),
        Y::Mapping(m) => {
            let mut out = Map::new();
            for (k, v) in m {
                let key = match k {
                    Y::String(s) => s,
                    Y::Number(n) => n.to_string(),
                    Y::Bool(b) => b.to_string(),
                    Y::Null => "null".into(),
                    other => bail!("invalid map key: {other:?}"),
                };
                out.insert(key, yaml_to_json(v)?);
            }
            Value::Object(out)
        }
        Y::Tagged(t) => yaml_to_json(t.value)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn objects(items: Vec<Item>) -> Vec<Value> {
        items
            .into_iter()
            .filter_map(|i| match i {
                Item::Object(m) => Some(m.object),
                Item::Invalid { .. } => None,
            })
            .collect()
    }

    #[test]
    fn multi_document_yaml() {
        let text = "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\ndata:\n  x: \"1\"\n---\n# only a comment\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: d\nspec:\n  replicas: 2\n";
        let got = objects(parse(text, "x.yaml").expect("parse"));
        assert_eq!(got.len(), 2);
        assert_eq!(got[0]["data"]["x"], json!("1"));
        assert_eq!(got[1]["spec"]["replicas"], json!(2));
    }

    #[test]
    fn lists_are_flattened() {
        let text = r#"{"apiVersion":"v1","kind":"List","items":[
            {"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a"}},
            {"apiVersion":"v1","kind":"ServiceList","items":[{"apiVersion":"v1","kind":"Service","metadata":{"name":"s"}}]}
        ]}
        {"apiVersion":"v1","kind":"Namespace","metadata":{"name":"n"}}"#;
        let got = objects(parse(text, "x.json").expect("parse"));
        let names: Vec<&str> = got
            .iter()
            .filter_map(|o| o["metadata"]["name"].as_str())
            .collect();
        assert_eq!(names, ["a", "s", "n"]);
    }

    #[test]
    fn missing_type_fields_are_reported_per_document() {
        let text =
            "metadata:\n  name: a\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: b\n";
        let items = parse(text, "x.yaml").expect("parse");
        assert_eq!(items.len(), 2);
        match &items[0] {
            Item::Invalid { message, .. } => {
                assert!(
                    message.contains("[apiVersion not set, kind not set]"),
                    "{message}"
                )
            }
            Item::Object(_) => panic!("expected invalid"),
        }
        assert!(matches!(items[1], Item::Object(_)));
    }

    #[test]
    fn yaml_keys_and_numbers() {
        let text = "apiVersion: v1\nkind: X\nmetadata:\n  name: a\nmap:\n  80: http\n  true: yes\nf: 1.5\nneg: -3\n";
        let got = objects(parse(text, "x.yaml").expect("parse"));
        assert_eq!(got[0]["map"]["80"], json!("http"));
        assert_eq!(got[0]["f"], json!(1.5));
        assert_eq!(got[0]["neg"], json!(-3));
    }

    #[test]
    fn syntax_errors_fail_the_file() {
        assert!(parse("a: [1,\n", "bad.yaml").is_err());
        assert!(parse("{\"a\": ", "bad.json").is_err());
    }

    #[test]
    fn directories_are_read_in_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join("b.yaml"),
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: b\n",
        )
        .expect("write");
        std::fs::write(
            dir.path().join("a.json"),
            r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a"}}"#,
        )
        .expect("write");
        std::fs::write(dir.path().join("notes.txt"), "ignored").expect("write");
        std::fs::create_dir(dir.path().join("sub")).expect("mkdir");
        std::fs::write(
            dir.path().join("sub/c.yml"),
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n",
        )
        .expect("write");
        let d = dir.path().display().to_string();
        let flat = objects(read_sources(std::slice::from_ref(&d), false).expect("read"));
        assert_eq!(flat.len(), 2);
        assert_eq!(flat[0]["metadata"]["name"], json!("a"));
        let deep = objects(read_sources(&[d], true).expect("read"));
        assert_eq!(deep.len(), 3);
        assert!(read_sources(&["/definitely/not/here.yaml".into()], false).is_err());
    }
}
