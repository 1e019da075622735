//! The three-way patch `apply` sends: strategic (from `wasmkube_api::patch`) for built-in kinds,
//! and the JSON merge patch below when no strategic-merge schema is available.
//!
//! Inputs, as in kubectl: `original` is the last-applied configuration (what the user applied
//! before), `modified` the manifest being applied now, `current` the live object. The patch
//! sets every field of `modified` that `current` lacks or holds differently, and deletes
//! (`null`) every field that `original` had and `modified` dropped — fields nobody applied
//! (server defaults, other writers) are left alone.
//!
//! JSON merge patches can only replace lists whole. To avoid rewriting a list on every apply
//! because the server defaulted fields inside its elements (containers gain
//! `imagePullPolicy`, `terminationMessagePath` …), a list is left out of the patch when every
//! element of the applied list is contained in the live element at the same position and the
//! list did not change since the last apply.

use serde_json::{Map, Value};

use wasmkube_api::patch::{PatchSchema, create_three_way_merge_patch};

use super::client::{MERGE_PATCH, STRATEGIC_MERGE_PATCH};
use super::resources::ResourceType;

/// The patch `apply` sends for an object, with its content type: a strategic merge patch for
/// the built-in kinds whose patch strategies we know (lists such as `containers` then merge
/// element by element, by name), a JSON merge patch for anything else (custom resources),
/// which is what kubectl does too.
pub fn apply_patch(
    rt: &ResourceType,
    original: Option<&Value>,
    modified: &Value,
    current: &Value,
) -> (&'static str, Value) {
    let schema = wasmkube_api::registry::lookup_kind(&rt.api_version(), &rt.kind)
        .and_then(|info| PatchSchema::for_type(info.definition));
    if let Some(schema) = schema {
        let empty = Value::Object(Map::new());
        if let Ok(patch) =
            create_three_way_merge_patch(original.unwrap_or(&empty), modified, current, &schema)
        {
            return (STRATEGIC_MERGE_PATCH, patch);
        }
    }
    (
        MERGE_PATCH,
        three_way_merge_patch(original, modified, current),
    )
}

/// Builds the patch; an empty object means nothing to change.
pub fn three_way_merge_patch(original: Option<&Value>, modified: &Value, current: &Value) -> Value {
    let empty = Map::new();
    let m = modified.as_object().unwrap_or(&empty);
    Value::Object(diff_maps(
        original.and_then(Value::as_object),
        m,
        current.as_object(),
    ))
}

fn diff_maps(
    original: Option<&Map<String, Value>>,
    modified: &Map<String, Value>,
    current: Option<&Map<String, Value>>,
) -> Map<String, Value> {
    let mut patch = Map::new();
    for (key, mv) in modified {
        let cv = current.and_then(|c| c.get(key));
        let ov = original.and_then(|o| o.get(key));
        match (mv, cv) {
            // `null` in a manifest asks for the field to be removed.
            (Value::Null, Some(c)) if !c.is_null() => {
                patch.insert(key.clone(), Value::Null);
            }
            (Value::Null, _) => {}
            (Value::Object(m), Some(Value::Object(c))) => {
                let sub = diff_maps(ov.and_then(Value::as_object), m, Some(c));
                if !sub.is_empty() {
                    patch.insert(key.clone(), Value::Object(sub));
                }
            }
            (Value::Array(m), Some(Value::Array(c))) => {
                let unchanged_since_last_apply = ov.is_none_or(|o| o == mv);
                if m != c && !(contained_list(m, c) && unchanged_since_last_apply) {
                    patch.insert(key.clone(), mv.clone());
                }
            }
            (_, Some(c)) if c == mv => {}
            _ => {
                patch.insert(key.clone(), without_nulls(mv));
            }
        }
    }
    if let Some(original) = original {
        for key in original.keys() {
            if !modified.contains_key(key) && current.is_some_and(|c| c.contains_key(key)) {
                patch.insert(key.clone(), Value::Null);
            }
        }
    }
    patch
}

/// Whether every field of `applied` is present, equal, in `live` (lists element by element).
fn contained(applied: &Value, live: &Value) -> bool {
    match (applied, live) {
        (Value::Object(a), Value::Object(l)) => a
            .iter()
            .all(|(k, v)| v.is_null() || l.get(k).is_some_and(|lv| contained(v, lv))),
        (Value::Array(a), Value::Array(l)) => contained_list(a, l),
        _ => applied == live,
    }
}

fn contained_list(applied: &[Value], live: &[Value]) -> bool {
    applied.len() == live.len() && applied.iter().zip(live).all(|(a, l)| contained(a, l))
}

/// A new subtree sent whole must not carry `null`s: in a merge patch they would mean "delete"
/// inside something that does not exist yet.
fn without_nulls(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), without_nulls(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unchanged_manifest_gives_empty_patch_despite_defaults() {
        let applied = json!({"metadata": {"name": "d"}, "spec": {"replicas": 2,
            "template": {"spec": {"containers": [{"name": "c", "image": "i"}]}}}});
        let live = json!({"metadata": {"name": "d", "uid": "u", "resourceVersion": "5"},
            "spec": {"replicas": 2, "strategy": {"type": "RollingUpdate"},
                "template": {"spec": {"containers": [{"name": "c", "image": "i", "imagePullPolicy": "Always"}]}}},
            "status": {"replicas": 2}});
        assert_eq!(
            three_way_merge_patch(Some(&applied), &applied, &live),
            json!({})
        );
    }

    #[test]
    fn changes_are_set_and_dropped_fields_deleted() {
        let original =
            json!({"metadata": {"labels": {"a": "1", "b": "2"}}, "data": {"x": "1", "y": "2"}});
        let modified = json!({"metadata": {"labels": {"a": "1"}}, "data": {"x": "3"}});
        let live = json!({"metadata": {"labels": {"a": "1", "b": "2", "server": "s"}}, "data": {"x": "1", "y": "2"}});
        assert_eq!(
            three_way_merge_patch(Some(&original), &modified, &live),
            json!({"metadata": {"labels": {"b": null}}, "data": {"x": "3", "y": null}})
        );
    }

    #[test]
    fn fields_set_by_others_survive() {
        let original = json!({"spec": {"replicas": 1}});
        let modified = json!({"spec": {"replicas": 1}});
        let live = json!({"spec": {"replicas": 5, "paused": true}});
        // replicas changed live and the manifest still says 1: apply restores it; `paused` was
        // never applied, so it is not touched.
        assert_eq!(
            three_way_merge_patch(Some(&original), &modified, &live),
            json!({"spec": {"replicas": 1}})
        );
    }

    #[test]
    fn lists_are_replaced_when_edited() {
        let original = json!({"spec": {"ports": [{"port": 80}, {"port": 81}]}});
        let modified = json!({"spec": {"ports": [{"port": 80}]}});
        let live = json!({"spec": {"ports": [{"port": 80, "protocol": "TCP"}, {"port": 81, "protocol": "TCP"}]}});
        assert_eq!(
            three_way_merge_patch(Some(&original), &modified, &live),
            json!({"spec": {"ports": [{"port": 80}]}})
        );
        // A field removed inside a list element is a change of the list too.
        let original = json!({"c": [{"name": "a", "env": [{"name": "X"}]}]});
        let modified = json!({"c": [{"name": "a"}]});
        let live = json!({"c": [{"name": "a", "env": [{"name": "X"}], "image": "i"}]});
        assert_eq!(
            three_way_merge_patch(Some(&original), &modified, &live),
            json!({"c": [{"name": "a"}]})
        );
    }

    #[test]
    fn no_last_applied_means_no_deletions() {
        let modified = json!({"data": {"x": "1"}});
        let live = json!({"data": {"x": "1", "y": "2"}});
        assert_eq!(three_way_merge_patch(None, &modified, &live), json!({}));
    }

    #[test]
    fn new_subtrees_are_sent_whole_and_nulls_delete() {
        let modified = json!({"spec": {"selector": {"app": "x", "gone": null}}, "drop": null});
        let live = json!({"spec": {}, "drop": 1});
        assert_eq!(
            three_way_merge_patch(None, &modified, &live),
            json!({"spec": {"selector": {"app": "x"}}, "drop": null})
        );
    }

    #[test]
    fn built_in_kinds_get_strategic_patches() {
        let d = crate::cli::resources::tests::sample();
        let deploy = d.resolve("deploy").expect("deploy");
        let applied = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
            "spec": {"template": {"spec": {"containers": [
                {"name": "a", "image": "a:1"}, {"name": "b", "image": "b:1"}]}}}});
        let live = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "d", "resourceVersion": "3"},
            "spec": {"replicas": 1, "template": {"spec": {"containers": [
                {"name": "a", "image": "a:1", "imagePullPolicy": "IfNotPresent"},
                {"name": "b", "image": "b:1", "imagePullPolicy": "IfNotPresent"}]}}}});
        let (content_type, patch) = apply_patch(deploy, Some(&applied), &applied, &live);
        assert_eq!(content_type, STRATEGIC_MERGE_PATCH);
        assert_eq!(patch, json!({}));

        let mut changed = applied.clone();
        changed["spec"]["template"]["spec"]["containers"][1]["image"] = json!("b:2");
        let (_, patch) = apply_patch(deploy, Some(&applied), &changed, &live);
        let containers = &patch["spec"]["template"]["spec"]["containers"];
        assert_eq!(containers.as_array().map(Vec::len), Some(1), "{patch}");
        assert_eq!(containers[0], json!({"name": "b", "image": "b:2"}));
    }

    #[test]
    fn unknown_kinds_get_merge_patches() {
        let rt = ResourceType {
            group: "example.com".into(),
            version: "v1".into(),
            resource: "widgets".into(),
            singular: "widget".into(),
            kind: "Widget".into(),
            namespaced: true,
            short_names: vec![],
            categories: vec![],
            verbs: vec![],
            subresources: vec![],
            preferred: true,
        };
        let (content_type, patch) = apply_patch(
            &rt,
            None,
            &json!({"spec": {"size": 2}}),
            &json!({"spec": {"size": 1}}),
        );
        assert_eq!(content_type, MERGE_PATCH);
        assert_eq!(patch, json!({"spec": {"size": 2}}));
    }
}
