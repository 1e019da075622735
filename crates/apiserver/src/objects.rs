//! Object metadata handling shared by every write path: decoding stored bytes, the fields the
//! server owns (uid, creationTimestamp, generation, resourceVersion), and small JSON helpers.

use rand::Rng;
use serde_json::{Map, Value, json};
use wasmkube_api::registry::ResourceInfo;
use wasmkube_store::KeyValue;

use crate::error::{ApiError, ApiResult};

/// Decodes a stored object and stamps it with its resourceVersion (the store's mod revision:
/// the bytes never hold it, so it can never disagree with the store).
pub fn decode(kv: &KeyValue) -> ApiResult<Value> {
    let mut obj: Value = serde_json::from_slice(&kv.value)
        .map_err(|e| ApiError::internal(format!("stored object {} is corrupt: {e}", kv.key)))?;
    set_resource_version(&mut obj, kv.mod_revision);
    Ok(obj)
}

pub fn decode_bytes(bytes: &[u8], revision: u64) -> ApiResult<Value> {
    let mut obj: Value = serde_json::from_slice(bytes)
        .map_err(|e| ApiError::internal(format!("stored object is corrupt: {e}")))?;
    set_resource_version(&mut obj, revision);
    Ok(obj)
}

pub fn encode(obj: &Value) -> ApiResult<Vec<u8>> {
    let mut obj = obj.clone();
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("resourceVersion");
    }
    serde_json::to_vec(&obj).map_err(|e| ApiError::internal(format!("encoding object: {e}")))
}

pub fn set_resource_version(obj: &mut Value, revision: u64) {
    if let Some(meta) = metadata_mut(obj) {
        meta.insert(
            "resourceVersion".into(),
            Value::String(revision.to_string()),
        );
    }
}

/// `metadata` as a map, created if absent. `None` only when the object itself is not a map.
pub fn metadata_mut(obj: &mut Value) -> Option<&mut Map<String, Value>> {
    let map = obj.as_object_mut()?;
    let meta = map.entry("metadata").or_insert_with(|| json!({}));
    if !meta.is_object() {
        *meta = json!({});
    }
    meta.as_object_mut()
}

pub fn meta_str<'a>(obj: &'a Value, field: &str) -> Option<&'a str> {
    obj.get("metadata")?.get(field)?.as_str()
}

pub fn name_of(obj: &Value) -> &str {
    meta_str(obj, "name").unwrap_or("")
}

/// The stored resourceVersion an object claims, if any. A value that is not a decimal revision
/// can never match, which Kubernetes reports as a conflict-free bad request.
pub fn claimed_resource_version(obj: &Value) -> ApiResult<Option<u64>> {
    match meta_str(obj, "resourceVersion") {
        None | Some("") => Ok(None),
        Some(rv) => rv.parse::<u64>().map(Some).map_err(|_| {
            ApiError::bad_request(format!(
                "metadata.resourceVersion: Invalid value: {rv:?}: must be a decimal revision"
            ))
        }),
    }
}

pub fn now_rfc3339() -> String {
    format_time(jiff::Timestamp::now())
}

pub fn format_time(t: jiff::Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// The five-character suffix `generateName` gets: Kubernetes' alphabet, without vowels and
/// look-alike characters so generated names never spell words.
pub fn random_suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut rng = rand::rng();
    (0..5)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// The parts of an object that are its "spec" for generation purposes: everything but
/// metadata, status and the type fields.
pub fn spec_view(obj: &Value) -> Value {
    let mut out = Map::new();
    if let Some(map) = obj.as_object() {
        for (k, v) in map {
            if !matches!(k.as_str(), "metadata" | "status" | "apiVersion" | "kind") {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    Value::Object(out)
}

/// Kinds whose writes Kubernetes tracks with `metadata.generation`.
pub fn tracks_generation(info: &ResourceInfo) -> bool {
    info.has_status()
        || matches!(
            info.kind,
            "PodDisruptionBudget" | "NetworkPolicy" | "IngressClass" | "PriorityClass"
        )
}

/// A fresh object's server-owned metadata.
pub fn stamp_new(info: &ResourceInfo, obj: &mut Value) {
    let generation = tracks_generation(info);
    if let Some(meta) = metadata_mut(obj) {
        meta.insert(
            "uid".into(),
            Value::String(uuid::Uuid::new_v4().to_string()),
        );
        meta.insert("creationTimestamp".into(), Value::String(now_rfc3339()));
        meta.remove("resourceVersion");
        meta.remove("deletionTimestamp");
        meta.remove("deletionGracePeriodSeconds");
        meta.remove("selfLink");
        if generation {
            meta.insert("generation".into(), json!(1));
        } else {
            meta.remove("generation");
        }
    }
}

/// Carries the server-owned metadata of `old` onto an update, so a client can neither forge nor
/// lose them.
pub fn carry_metadata(info: &ResourceInfo, old: &Value, new: &mut Value) {
    let old_meta = old.get("metadata").cloned().unwrap_or_else(|| json!({}));
    let spec_changed = spec_view(old) != spec_view(new);
    if let Some(meta) = metadata_mut(new) {
        for key in [
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "name",
            "namespace",
        ] {
            match old_meta.get(key) {
                Some(v) => meta.insert(key.into(), v.clone()),
                None => meta.remove(key),
            };
        }
        meta.remove("selfLink");
        // Defaulting tells creates from updates by the presence of a resourceVersion (e.g. the
        // namespace finalizer is added on create only), so an update always carries one.
        if let Some(rv) = old_meta.get("resourceVersion") {
            meta.insert("resourceVersion".into(), rv.clone());
        }
        if tracks_generation(info) {
            let old_gen = old_meta
                .get("generation")
                .and_then(Value::as_i64)
                .unwrap_or(1);
            let next = if spec_changed { old_gen + 1 } else { old_gen };
            meta.insert("generation".into(), json!(next));
        } else {
            meta.remove("generation");
        }
    }
}

/// `apiVersion` and `kind` as the registry spells them.
pub fn set_type_meta(info: &ResourceInfo, obj: &mut Value) {
    if let Some(map) = obj.as_object_mut() {
        map.insert("apiVersion".into(), Value::String(info.api_version()));
        map.insert("kind".into(), Value::String(info.kind.to_string()));
    }
}

/// Finds the dotted paths of fields present in `input` but dropped by the typed round trip:
/// the unknown fields `fieldValidation=Strict` refuses.
pub fn unknown_fields(input: &Value, typed: &Value, path: &str, out: &mut Vec<String>) {
    match (input, typed) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in a {
                let child = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                match b.get(k) {
                    Some(tv) => unknown_fields(v, tv, &child, out),
                    // A null means "unset", which every field accepts.
                    None if v.is_null() => {}
                    None => out.push(child),
                }
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            for (i, (v, tv)) in a.iter().zip(b.iter()).enumerate() {
                unknown_fields(v, tv, &format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

/// The dotted paths of keys that a JSON body repeats inside one object (which JSON decoding
/// otherwise resolves silently, the last one winning): what `fieldValidation=Strict` refuses
/// and `Warn` reports. Empty for anything that is not JSON.
pub fn duplicate_fields(body: &[u8]) -> Vec<String> {
    use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

    struct Walk<'a> {
        path: String,
        out: &'a mut Vec<String>,
    }

    impl<'de> DeserializeSeed<'de> for Walk<'_> {
        type Value = ();
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_any(self)
        }
    }

    impl<'de> Visitor<'de> for Walk<'_> {
        type Value = ();
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("any JSON value")
        }
        fn visit_bool<E>(self, _: bool) -> Result<(), E> {
            Ok(())
        }
        fn visit_i64<E>(self, _: i64) -> Result<(), E> {
            Ok(())
        }
        fn visit_u64<E>(self, _: u64) -> Result<(), E> {
            Ok(())
        }
        fn visit_f64<E>(self, _: f64) -> Result<(), E> {
            Ok(())
        }
        fn visit_str<E>(self, _: &str) -> Result<(), E> {
            Ok(())
        }
        fn visit_unit<E>(self) -> Result<(), E> {
            Ok(())
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            let Walk { path, out } = self;
            let mut seen = std::collections::HashSet::new();
            while let Some(key) = map.next_key::<String>()? {
                let child = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                if !seen.insert(key) {
                    out.push(child.clone());
                }
                map.next_value_seed(Walk {
                    path: child,
                    out: &mut *out,
                })?;
            }
            Ok(())
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
            let Walk { path, out } = self;
            let mut i = 0usize;
            while seq
                .next_element_seed(Walk {
                    path: format!("{path}[{i}]"),
                    out: &mut *out,
                })?
                .is_some()
            {
                i += 1;
            }
            Ok(())
        }
    }

    let mut out = Vec::new();
    let mut de = serde_json::Deserializer::from_slice(body);
    let walked = Walk {
        path: String::new(),
        out: &mut out,
    }
    .deserialize(&mut de);
    if walked.is_err() {
        return Vec::new();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_fields_are_found_with_their_paths() {
        let body = br#"{"metadata": {"name": "a", "name": "b"}, "data": {"k": 1},
            "items": [{"x": 1, "x": 2}], "data": {}}"#;
        assert_eq!(
            duplicate_fields(body),
            ["metadata.name", "items[0].x", "data"]
        );
        assert!(duplicate_fields(br#"{"a": {"b": 1}, "b": 2}"#).is_empty());
        assert!(duplicate_fields(b"kind: Pod").is_empty());
    }

    #[test]
    fn unknown_field_paths() {
        let input =
            json!({"spec": {"containers": [{"name": "a", "imagex": "b"}], "bogus": 1, "n": null}});
        let typed = json!({"spec": {"containers": [{"name": "a"}]}});
        let mut out = Vec::new();
        unknown_fields(&input, &typed, "", &mut out);
        assert_eq!(out, vec!["spec.containers[0].imagex", "spec.bogus"]);
    }

    #[test]
    fn suffix_alphabet() {
        let s = random_suffix();
        assert_eq!(s.len(), 5);
        assert!(s.chars().all(|c| "bcdfghjklmnpqrstvwxz2456789".contains(c)));
    }
}
