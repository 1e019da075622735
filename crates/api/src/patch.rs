//! The three Kubernetes patch types over `serde_json::Value`.
//!
//! - **JSON patch** (RFC 6902, `application/json-patch+json`) through the `json-patch` crate.
//! - **JSON merge patch** (RFC 7386, `application/merge-patch+json`).
//! - **Strategic merge patch** (`application/strategic-merge-patch+json`), Kubernetes' own: maps
//!   merge recursively, `null` deletes, and lists follow the field's patch strategy — merged
//!   element-wise by a merge key (`containers` by `name`), merged as a set of primitives
//!   (`finalizers`), or replaced whole. The directives `$patch` (`replace`, `delete`, `merge`),
//!   `$retainKeys`, `$setElementOrder/<field>` and `$deleteFromPrimitiveList/<field>` are honoured.
//!
//! The strategy of each field comes from a [`LookupPatchMeta`]: [`PatchSchema`] knows the
//! built-in Kubernetes types (see `patch_meta`), [`Unstructured`] knows nothing and merges maps
//! while replacing lists, as Kubernetes does for types without patch metadata.
//!
//! [`create_two_way_merge_patch`] and [`create_three_way_merge_patch`] compute patches the way
//! `kubectl apply` does, so our CLI can apply client-side.
//!
//! The algorithms follow `k8s.io/apimachinery/pkg/util/strategicpatch` closely, including the
//! element order of merged lists, because users see that order in their objects. Where this
//! module differs on purpose, a comment says so.

use std::borrow::Cow;
use std::fmt;

use serde_json::{Map, Value};

pub use crate::patch_meta::PatchSchema;

type Object = Map<String, Value>;

const DIRECTIVE_MARKER: &str = "$patch";
const DELETE_DIRECTIVE: &str = "delete";
const REPLACE_DIRECTIVE: &str = "replace";
const MERGE_DIRECTIVE: &str = "merge";
const RETAIN_KEYS_DIRECTIVE: &str = "$retainKeys";
const DELETE_FROM_PRIMITIVE_LIST_PREFIX: &str = "$deleteFromPrimitiveList";
const SET_ELEMENT_ORDER_PREFIX: &str = "$setElementOrder";

/// Errors from applying or computing patches.
#[derive(Debug, thiserror::Error)]
pub enum PatchError {
    /// The body of a JSON patch is not a list of RFC 6902 operations.
    #[error("invalid JSON patch: {0}")]
    InvalidJsonPatch(#[source] serde_json::Error),
    /// A JSON patch operation failed (a `test` mismatch, a missing path, ...).
    #[error("{0}")]
    JsonPatch(#[source] json_patch::PatchError),
    /// A document that must be a JSON object is something else.
    #[error("{what} must be a JSON object")]
    NotAnObject {
        /// Which document.
        what: &'static str,
    },
    /// A strategic merge patch is malformed at `path` (an unknown directive, a list element
    /// without its merge key, a `$setElementOrder` list that contradicts the patch, ...).
    #[error("{}", at_path(.path, .message))]
    Strategic {
        /// The field, e.g. `spec.template.spec.containers[1]`; empty for the whole object.
        path: String,
        /// What is wrong.
        message: String,
    },
}

fn at_path(path: &str, message: &str) -> String {
    if path.is_empty() {
        message.to_owned()
    } else {
        format!("{path}: {message}")
    }
}

/// The patch types of `PATCH` requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PatchType {
    /// RFC 6902, `application/json-patch+json`.
    Json,
    /// RFC 7386, `application/merge-patch+json`.
    Merge,
    /// Kubernetes' strategic merge patch, `application/strategic-merge-patch+json`.
    StrategicMerge,
}

impl PatchType {
    /// The patch type of a `Content-Type` header value (parameters such as `charset` ignored).
    pub fn from_content_type(content_type: &str) -> Option<Self> {
        let media_type = content_type.split(';').next().unwrap_or_default().trim();
        match media_type.to_ascii_lowercase().as_str() {
            "application/json-patch+json" => Some(PatchType::Json),
            "application/merge-patch+json" => Some(PatchType::Merge),
            "application/strategic-merge-patch+json" => Some(PatchType::StrategicMerge),
            _ => None,
        }
    }

    /// The `Content-Type` of this patch type.
    pub fn content_type(self) -> &'static str {
        match self {
            PatchType::Json => "application/json-patch+json",
            PatchType::Merge => "application/merge-patch+json",
            PatchType::StrategicMerge => "application/strategic-merge-patch+json",
        }
    }
}

/// Applies a patch of any type to `original`, returning the patched document.
pub fn apply_patch<S: LookupPatchMeta>(
    patch_type: PatchType,
    original: &Value,
    patch: &Value,
    schema: &S,
) -> Result<Value, PatchError> {
    match patch_type {
        PatchType::Json => apply_json_patch(original, patch),
        PatchType::Merge => Ok(apply_merge_patch(original, patch)),
        PatchType::StrategicMerge => apply_strategic_merge_patch(original, patch, schema),
    }
}

/// Applies an RFC 6902 JSON patch. The operations apply all or nothing.
pub fn apply_json_patch(original: &Value, patch: &Value) -> Result<Value, PatchError> {
    let patch: json_patch::Patch =
        serde_json::from_value(patch.clone()).map_err(PatchError::InvalidJsonPatch)?;
    let mut doc = original.clone();
    // `patch_unsafe` on a copy instead of `patch`: all-or-nothing comes from discarding the copy,
    // and `patch`'s undo path contains a panic we do not want reachable from a request.
    json_patch::patch_unsafe(&mut doc, &patch).map_err(PatchError::JsonPatch)?;
    Ok(doc)
}

/// Applies an RFC 7386 JSON merge patch: objects merge recursively, `null` deletes a key,
/// anything else replaces.
pub fn apply_merge_patch(original: &Value, patch: &Value) -> Value {
    let mut doc = original.clone();
    merge_patch_into(&mut doc, patch);
    doc
}

/// RFC 7386 written out instead of `json_patch::merge`, whose deletions swap keys around: the
/// key order of stored objects is what users see in `kubectl get -o yaml`.
fn merge_patch_into(doc: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *doc = patch.clone();
        return;
    };
    if !doc.is_object() {
        *doc = Value::Object(Object::new());
    }
    if let Value::Object(doc) = doc {
        for (key, value) in patch {
            if value.is_null() {
                doc.shift_remove(key);
            } else {
                merge_patch_into(doc.entry(key.as_str()).or_insert(Value::Null), value);
            }
        }
    }
}

/// How a field's value combines with the live value: Kubernetes' `patchStrategy` struct tag.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum PatchStrategy {
    /// No tag: maps merge key by key, lists are replaced whole (atomic).
    #[default]
    Default,
    /// `patchStrategy:"replace"`: the value is replaced whole, maps included.
    Replace,
    /// `patchStrategy:"merge"` with `patchMergeKey`: a list of objects merged element by
    /// element, elements matched by this key (`containers` by `name`).
    MergeByKey(Cow<'static, str>),
    /// `patchStrategy:"merge"` without a merge key: a list of primitives merged as a set
    /// (`finalizers`).
    MergePrimitive,
}

/// The patch metadata of one field.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldPatchMeta {
    /// How the value merges.
    pub strategy: PatchStrategy,
    /// `retainKeys` in the strategy: computed patches carry `$retainKeys`, so keys missing from
    /// the new value are cleared (union types such as a Deployment's `strategy`).
    pub retain_keys: bool,
}

impl FieldPatchMeta {
    /// Metadata for a list merged by `key`.
    pub fn merge_by_key(key: impl Into<Cow<'static, str>>) -> Self {
        FieldPatchMeta {
            strategy: PatchStrategy::MergeByKey(key.into()),
            retain_keys: false,
        }
    }

    /// Metadata for a list of primitives merged as a set.
    pub fn merge_primitive() -> Self {
        FieldPatchMeta {
            strategy: PatchStrategy::MergePrimitive,
            retain_keys: false,
        }
    }

    /// The same metadata with `retainKeys` added.
    pub fn with_retain_keys(mut self) -> Self {
        self.retain_keys = true;
        self
    }

    /// Parses Go struct tags: `patchStrategy` (`merge`, `retainKeys`, `merge,retainKeys`,
    /// `replace`) and `patchMergeKey`. Unknown strategies are ignored.
    pub fn from_tags(strategy: &str, merge_key: Option<&'static str>) -> Self {
        let mut meta = FieldPatchMeta::default();
        for part in strategy.split(',').map(str::trim) {
            match part {
                "retainKeys" => meta.retain_keys = true,
                "merge" => {
                    meta.strategy = match merge_key {
                        Some(key) => PatchStrategy::MergeByKey(Cow::Borrowed(key)),
                        None => PatchStrategy::MergePrimitive,
                    }
                }
                "replace" => meta.strategy = PatchStrategy::Replace,
                _ => {}
            }
        }
        meta
    }

    fn merge_key(&self) -> Option<&str> {
        match &self.strategy {
            PatchStrategy::MergeByKey(key) => Some(key),
            _ => None,
        }
    }

    fn is_merge(&self) -> bool {
        matches!(
            self.strategy,
            PatchStrategy::MergeByKey(_) | PatchStrategy::MergePrimitive
        )
    }
}

/// Answers, for one object type, how each field patches and what type its value has.
///
/// Kubernetes' `LookupPatchMeta`: `lookup("containers")` on a PodSpec answers "merge by
/// `name`" and the schema of a Container. For a list the returned schema describes its items,
/// for a map with arbitrary keys (`labels`) it describes its values.
pub trait LookupPatchMeta: Sized {
    /// The metadata of `field` and the schema of its value.
    fn lookup(&self, field: &str) -> (FieldPatchMeta, Self);
}

/// No patch metadata at all: maps merge, lists are replaced whole. This is how Kubernetes treats
/// fields it has no metadata for, and the right choice for custom resources.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Unstructured;

impl LookupPatchMeta for Unstructured {
    fn lookup(&self, _field: &str) -> (FieldPatchMeta, Self) {
        (FieldPatchMeta::default(), Unstructured)
    }
}

/// A field path for error messages, built only when an error happens.
#[derive(Clone, Copy)]
enum Path<'a> {
    Root,
    Field(&'a Path<'a>, &'a str),
    Index(&'a Path<'a>, usize),
}

impl fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Path::Root => Ok(()),
            Path::Field(Path::Root, name) => f.write_str(name),
            Path::Field(parent, name) => write!(f, "{parent}.{name}"),
            Path::Index(parent, i) => write!(f, "{parent}[{i}]"),
        }
    }
}

fn error(path: &Path<'_>, message: impl Into<String>) -> PatchError {
    PatchError::Strategic {
        path: path.to_string(),
        message: message.into(),
    }
}

/// Whether merging applies a patch to an object or combines two patches into one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum MergeMode {
    /// Server side: apply `$deleteFromPrimitiveList` and `$retainKeys`, drop `null`s the object
    /// does not have, and keep directives out of the result (Go's `MergeParallelList` and
    /// `IgnoreUnmatchedNulls`).
    Apply,
    /// Client side, for the three-way patch: keep `null`s and directives for the server.
    CombinePatches,
}

/// Applies a strategic merge patch to `original`.
pub fn apply_strategic_merge_patch<S: LookupPatchMeta>(
    original: &Value,
    patch: &Value,
    schema: &S,
) -> Result<Value, PatchError> {
    let Value::Object(original) = original else {
        return Err(PatchError::NotAnObject { what: "the object" });
    };
    let Value::Object(patch) = patch else {
        return Err(PatchError::NotAnObject {
            what: "a strategic merge patch",
        });
    };
    merge_map(
        original.clone(),
        patch.clone(),
        schema,
        MergeMode::Apply,
        &Path::Root,
    )
    .map(Value::Object)
}

/// The kind of a list's elements; Kubernetes requires all elements of a list to share one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Map,
    String,
    Number,
    Bool,
    Null,
}

fn element_kind(lists: &[&[Value]], path: &Path<'_>) -> Result<Option<Kind>, PatchError> {
    let mut kind = None;
    for value in lists.iter().flat_map(|l| l.iter()) {
        let this = match value {
            Value::Object(_) => Kind::Map,
            Value::String(_) => Kind::String,
            Value::Number(_) => Kind::Number,
            Value::Bool(_) => Kind::Bool,
            Value::Null => Kind::Null,
            Value::Array(_) => return Err(error(path, "lists of lists are not supported")),
        };
        match kind {
            None => kind = Some(this),
            Some(k) if k != this => {
                return Err(error(path, "list element types are not identical"));
            }
            Some(_) => {}
        }
    }
    Ok(kind)
}

/// JSON equality with numbers compared by value (`1 == 1.0`), as Go compares decoded JSON.
fn values_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(x), Some(y)) => x == y,
            _ => match (x.as_u64(), y.as_u64()) {
                (Some(x), Some(y)) => x == y,
                _ => x.as_f64() == y.as_f64(),
            },
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| values_equal(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| values_equal(v, w)))
        }
        _ => a == b,
    }
}

fn same_type(a: &Value, b: &Value) -> bool {
    std::mem::discriminant(a) == std::mem::discriminant(b)
}

/// Go's `%v` rendering, which Kubernetes uses to sort scalars and merge keys in computed
/// patches; the same rendering gives the same order.
fn go_format(value: &Value) -> String {
    match value {
        Value::Null => "<nil>".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::String(s) => s.clone(),
        Value::Number(n) => go_format_float(n.as_f64().unwrap_or_default()),
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(go_format).collect();
            format!("[{}]", items.join(" "))
        }
        Value::Object(map) => {
            let mut items: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{k}:{}", go_format(v)))
                .collect();
            items.sort();
            format!("map[{}]", items.join(" "))
        }
    }
}

/// Go's `%v` for a float64: the shortest representation, in exponent form from 1e21 up and
/// below 1e-4 (`1e+06` style for exponents of six and more).
fn go_format_float(f: f64) -> String {
    if f == 0.0 || !f.is_finite() {
        return format!("{f}");
    }
    let sci = format!("{f:e}");
    let Some((mantissa, exp)) = sci.split_once('e') else {
        return format!("{f}");
    };
    let exp: i32 = exp.parse().unwrap_or_default();
    if !(-4..6).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.abs())
    } else {
        format!("{f}")
    }
}

/// Sorts scalars by their Go rendering (stable), as Kubernetes' `sortScalars`.
fn sort_scalars(mut values: Vec<Value>) -> Vec<Value> {
    values.sort_by_cached_key(go_format);
    values
}

/// Kubernetes' `deduplicateScalars`, element order included: later duplicates are overwritten
/// by the last element. The order matters for what the caller sorts next.
fn deduplicate_scalars(mut s: Vec<Value>) -> Vec<Value> {
    let mut length = s.len();
    let mut i = 0;
    while i + 1 < length {
        let mut j = i + 1;
        while j < length {
            if values_equal(&s[i], &s[j]) {
                s.swap(j, length - 1);
                length -= 1;
                s.truncate(length);
            } else {
                j += 1;
            }
        }
        i += 1;
    }
    s
}

/// The merge key value of a list element, if it is a map that has one.
fn merge_key_of<'a>(value: &'a Value, merge_key: &str) -> Option<&'a Value> {
    value.as_object().and_then(|m| m.get(merge_key))
}

/// The position of `item` in `list`: by merge key for maps, by value otherwise.
fn index_of(list: &[Value], item: &Value, merge_key: Option<&str>, kind: Kind) -> Option<usize> {
    match (kind, merge_key) {
        (Kind::Map, Some(key)) => {
            let wanted = merge_key_of(item, key);
            list.iter()
                .position(|v| match (wanted, merge_key_of(v, key)) {
                    (Some(a), Some(b)) => values_equal(a, b),
                    // Go compares two missing keys as equal (nil == nil).
                    (None, None) => true,
                    _ => false,
                })
        }
        _ => list.iter().position(|v| values_equal(v, item)),
    }
}

fn no_merge_key(path: &Path<'_>, item: &Value, merge_key: &str) -> PatchError {
    error(
        path,
        format!("map: {item} does not contain declared merge key: {merge_key}"),
    )
}

fn not_a_map(path: &Path<'_>, item: &Value) -> PatchError {
    error(path, format!("expected a map, but received {item}"))
}

/// The first element whose merge key equals `value`; every element must be a map.
fn find_by_merge_key(
    list: &[Value],
    merge_key: &str,
    value: &Value,
    path: &Path<'_>,
) -> Result<Option<usize>, PatchError> {
    for (i, item) in list.iter().enumerate() {
        let Value::Object(map) = item else {
            return Err(not_a_map(path, item));
        };
        if map.get(merge_key).is_some_and(|v| values_equal(v, value)) {
            return Ok(Some(i));
        }
    }
    Ok(None)
}

fn has_directive_marker(value: &Value) -> bool {
    value
        .as_object()
        .is_some_and(|m| m.contains_key(DIRECTIVE_MARKER))
}

fn is_delete_directive(value: &Value) -> bool {
    value
        .as_object()
        .and_then(|m| m.get(DIRECTIVE_MARKER))
        .and_then(Value::as_str)
        == Some(DELETE_DIRECTIVE)
}

fn is_directive_key(key: &str) -> bool {
    key == DIRECTIVE_MARKER
        || key == RETAIN_KEYS_DIRECTIVE
        || key.starts_with(SET_ELEMENT_ORDER_PREFIX)
        || key.starts_with(DELETE_FROM_PRIMITIVE_LIST_PREFIX)
}

/// A patch value that is stored as is because the object has nothing to merge it with.
///
/// Kubernetes drops maps carrying a `$patch` directive and lets the remaining directives and
/// `null`s through to be discarded when the result is decoded into Go structs. We store JSON,
/// so the value is cleaned here: directive keys and `null` map values are removed, a map with
/// `$patch: delete` (and a list element with any `$patch`) disappears, and a map with
/// `$patch: replace` or `merge` keeps its content (Kubernetes drops those too, which loses the
/// user's value).
fn cleaned(value: Value) -> Option<Value> {
    match value {
        Value::Object(map) => {
            if map.get(DIRECTIVE_MARKER).and_then(Value::as_str) == Some(DELETE_DIRECTIVE) {
                return None;
            }
            Some(Value::Object(cleaned_object(map)))
        }
        Value::Array(items) => Some(Value::Array(cleaned_list(items))),
        other => Some(other),
    }
}

fn cleaned_object(map: Object) -> Object {
    map.into_iter()
        .filter(|(k, v)| !is_directive_key(k) && !v.is_null())
        .filter_map(|(k, v)| cleaned(v).map(|v| (k, v)))
        .collect()
}

fn cleaned_list(items: Vec<Value>) -> Vec<Value> {
    items
        .into_iter()
        .filter(|v| !has_directive_marker(v))
        .filter_map(cleaned)
        .collect()
}

/// What to store for a patch value that replaces or adds a key.
fn stored_value(value: Value, mode: MergeMode) -> Option<Value> {
    match mode {
        MergeMode::Apply => cleaned(value),
        MergeMode::CombinePatches => Some(value),
    }
}

/// `$setElementOrder/containers` → `containers`.
fn extract_key<'k>(key: &'k str, prefix: &str, path: &Path<'_>) -> Result<&'k str, PatchError> {
    match key.split_once('/') {
        Some((head, field)) if head == prefix && !field.is_empty() => Ok(field),
        _ => Err(error(
            path,
            if prefix == SET_ELEMENT_ORDER_PREFIX {
                format!("invalid patch format of setElementOrder list: {key:?}")
            } else {
                format!("invalid patch format of primitive list: {key:?}")
            },
        )),
    }
}

enum Outcome {
    Set(Value),
    Remove,
    Keep,
}

/// Merges `patch` into `original` (Kubernetes' `mergeMap`).
fn merge_map<S: LookupPatchMeta>(
    mut original: Object,
    mut patch: Object,
    schema: &S,
    mode: MergeMode,
    path: &Path<'_>,
) -> Result<Object, PatchError> {
    if let Some(directive) = patch.get(DIRECTIVE_MARKER) {
        match directive.as_str() {
            Some(REPLACE_DIRECTIVE) => {
                return Ok(match mode {
                    MergeMode::Apply => cleaned_object(patch),
                    // Combining patches keeps the directive so the server still replaces.
                    MergeMode::CombinePatches => patch,
                });
            }
            Some(DELETE_DIRECTIVE) => {
                return Ok(match mode {
                    MergeMode::Apply => Object::new(),
                    MergeMode::CombinePatches => patch,
                });
            }
            // Merging is what maps do anyway; Kubernetes rejects the directive, we accept it
            // as the no-op it describes.
            Some(MERGE_DIRECTIVE) => {
                patch.shift_remove(DIRECTIVE_MARKER);
            }
            _ => {
                return Err(error(
                    path,
                    format!("unknown patch type: {directive} in map"),
                ));
            }
        }
    }

    apply_retain_keys_directive(&mut original, &mut patch, mode, path)?;
    merge_set_element_order_lists(&mut original, &mut patch, schema, mode, path)?;

    for (patch_key, patch_value) in patch {
        let (key, is_delete_list) = if patch_key.starts_with(DELETE_FROM_PRIMITIVE_LIST_PREFIX) {
            if mode == MergeMode::CombinePatches {
                original.insert(patch_key, patch_value);
                continue;
            }
            (
                extract_key(&patch_key, DELETE_FROM_PRIMITIVE_LIST_PREFIX, path)?.to_owned(),
                true,
            )
        } else {
            (patch_key, false)
        };
        let field_path = Path::Field(path, &key);

        if patch_value.is_null() {
            original.shift_remove(&key);
            if mode == MergeMode::Apply {
                continue;
            }
        }

        let outcome = match original.get_mut(&key) {
            None if is_delete_list => Outcome::Keep,
            None => match stored_value(patch_value, mode) {
                Some(v) => Outcome::Set(v),
                None => Outcome::Keep,
            },
            Some(current) if !same_type(current, &patch_value) => {
                if is_delete_list {
                    Outcome::Keep
                } else {
                    match stored_value(patch_value, mode) {
                        Some(v) => Outcome::Set(v),
                        None => Outcome::Remove,
                    }
                }
            }
            Some(current) => match (std::mem::take(current), patch_value) {
                (Value::Object(current), Value::Object(patch_value)) => {
                    let (meta, child) = schema.lookup(&key);
                    if meta.strategy == PatchStrategy::Replace {
                        match stored_value(Value::Object(patch_value), mode) {
                            Some(v) => Outcome::Set(v),
                            None => Outcome::Remove,
                        }
                    } else {
                        Outcome::Set(Value::Object(merge_map(
                            current,
                            patch_value,
                            &child,
                            mode,
                            &field_path,
                        )?))
                    }
                }
                (Value::Array(current), Value::Array(patch_value)) => {
                    let (meta, child) = schema.lookup(&key);
                    let merged = merge_list(
                        current,
                        patch_value,
                        &child,
                        &meta,
                        is_delete_list,
                        mode,
                        &field_path,
                    )?;
                    Outcome::Set(Value::Array(merged.merged))
                }
                (_, patch_value) => match stored_value(patch_value, mode) {
                    Some(v) => Outcome::Set(v),
                    None => Outcome::Remove,
                },
            },
        };
        match outcome {
            Outcome::Set(value) => {
                original.insert(key, value);
            }
            Outcome::Remove => {
                original.shift_remove(&key);
            }
            Outcome::Keep => {}
        }
    }
    Ok(original)
}

/// `$retainKeys`: keys of `original` missing from the list are cleared; every key the patch
/// sets must be in the list.
fn apply_retain_keys_directive(
    original: &mut Object,
    patch: &mut Object,
    mode: MergeMode,
    path: &Path<'_>,
) -> Result<(), PatchError> {
    let Some(retain) = patch.shift_remove(RETAIN_KEYS_DIRECTIVE) else {
        return Ok(());
    };
    if mode == MergeMode::CombinePatches {
        // Both patches were computed from the same modified object, so they must agree.
        match original.get(RETAIN_KEYS_DIRECTIVE) {
            Some(existing) if !values_equal(existing, &retain) => {
                return Err(error(
                    path,
                    format!("{existing} and {retain} are not deep equal"),
                ));
            }
            Some(_) => {}
            None => {
                original.insert(RETAIN_KEYS_DIRECTIVE.to_owned(), retain);
            }
        }
        return Ok(());
    }
    let Value::Array(keys) = retain else {
        return Err(error(
            path,
            "invalid patch format of retainKeys: $retainKeys must be a list",
        ));
    };
    let retained = |key: &str| keys.iter().any(|k| k.as_str() == Some(key));
    for (key, value) in patch.iter() {
        if value.is_null()
            || key.starts_with(DELETE_FROM_PRIMITIVE_LIST_PREFIX)
            || key.starts_with(SET_ELEMENT_ORDER_PREFIX)
        {
            continue;
        }
        if !retained(key) {
            return Err(error(
                path,
                format!(
                    "invalid patch format of retainKeys: {key:?} is not in the $retainKeys list"
                ),
            ));
        }
    }
    original.retain(|key, _| retained(key));
    Ok(())
}

/// Merges each list that has a `$setElementOrder/<field>` directive together with its patch
/// list, then orders it: `$setElementOrder` first, then the patch's order, then the live order
/// (Kubernetes' `mergePatchIntoOriginal`).
fn merge_set_element_order_lists<S: LookupPatchMeta>(
    original: &mut Object,
    patch: &mut Object,
    schema: &S,
    mode: MergeMode,
    path: &Path<'_>,
) -> Result<(), PatchError> {
    let directive_keys: Vec<String> = patch
        .keys()
        .filter(|k| k.starts_with(SET_ELEMENT_ORDER_PREFIX))
        .cloned()
        .collect();
    for directive_key in directive_keys {
        let Some(order_value) = patch.shift_remove(&directive_key) else {
            continue;
        };
        if mode == MergeMode::CombinePatches {
            match original.get(&directive_key) {
                Some(existing) if !values_equal(existing, &order_value) => {
                    return Err(error(
                        path,
                        format!(
                            "invalid patch format of setElementOrder list: {directive_key} differs between the patches"
                        ),
                    ));
                }
                Some(_) => {}
                None => {
                    original.insert(directive_key.clone(), order_value.clone());
                }
            }
        }
        let field = extract_key(&directive_key, SET_ELEMENT_ORDER_PREFIX, path)?.to_owned();
        let field_path = Path::Field(path, &field);
        let Value::Array(set_order) = order_value else {
            return Err(error(
                &field_path,
                format!("{directive_key} must be a list"),
            ));
        };
        let list_at = |obj: &Object, what: &str| match obj.get(&field) {
            None => Ok(None),
            Some(Value::Array(items)) => Ok(Some(items.clone())),
            Some(other) => Err(error(
                &field_path,
                format!("expected a list in the {what}, but received {other}"),
            )),
        };
        let original_list = list_at(original, "object")?;
        let patch_list = list_at(patch, "patch")?;

        let (meta, child) = schema.lookup(&field);
        let merge_key = meta.merge_key();
        validate_patch_with_set_order_list(
            patch_list.as_deref(),
            &set_order,
            merge_key,
            &field_path,
        )?;

        let (merged, server_order, original_items, patch_items) = match (original_list, patch_list)
        {
            (Some(o), None) => (o.clone(), o.clone(), o, Vec::new()),
            (None, Some(p)) => {
                let merged = match mode {
                    MergeMode::Apply => cleaned_list(p.clone()),
                    MergeMode::CombinePatches => p.clone(),
                };
                (merged, Vec::new(), Vec::new(), p)
            }
            (Some(o), Some(p)) => {
                let result = merge_list(
                    o.clone(),
                    p.clone(),
                    &child,
                    &meta,
                    false,
                    mode,
                    &field_path,
                )?;
                (result.merged, result.server_order, o, p)
            }
            (None, None) => continue,
        };

        let ordered = match element_kind(&[&original_items, &patch_items], &field_path)? {
            // Nothing to order. (Kubernetes fails here on two empty lists; an empty list is
            // still a list.)
            None => merged,
            Some(kind) => {
                let (patch_part, server_only) = match merge_key {
                    None => partition_primitives(merged, &set_order),
                    Some(key) => partition_maps(merged, &set_order, key, &field_path)?,
                };
                normalize_element_order(
                    patch_part,
                    server_only,
                    &set_order,
                    &server_order,
                    merge_key,
                    kind,
                    &field_path,
                )?
            }
        };
        original.insert(field.clone(), Value::Array(ordered));
        patch.shift_remove(&field);
    }
    Ok(())
}

/// Checks that the patch list's elements appear in `$setElementOrder` in the same order.
fn validate_patch_with_set_order_list(
    patch_list: Option<&[Value]>,
    set_order: &[Value],
    merge_key: Option<&str>,
    path: &Path<'_>,
) -> Result<(), PatchError> {
    let Some(patch_list) = patch_list else {
        return Ok(());
    };
    if set_order.is_empty() || patch_list.is_empty() {
        return Ok(());
    }
    let mut non_delete = Vec::new();
    for item in patch_list {
        if merge_key.is_some() {
            if !item.is_object() {
                return Err(not_a_map(path, item));
            }
            if is_delete_directive(item) {
                continue;
            }
        }
        non_delete.push(item);
    }
    let (mut patch_index, mut order_index) = (0, 0);
    while let (Some(item), Some(ordered)) =
        (non_delete.get(patch_index), set_order.get(order_index))
    {
        if has_directive_marker(item) {
            patch_index += 1;
            continue;
        }
        if merge_key_value_equal(item, ordered, merge_key, path)? {
            patch_index += 1;
        }
        order_index += 1;
    }
    if patch_index < non_delete.len() {
        return Err(error(
            path,
            format!(
                "the order in patch list {} doesn't match $setElementOrder list {}",
                Value::Array(patch_list.to_vec()),
                Value::Array(set_order.to_vec())
            ),
        ));
    }
    Ok(())
}

fn merge_key_value_equal(
    left: &Value,
    right: &Value,
    merge_key: Option<&str>,
    path: &Path<'_>,
) -> Result<bool, PatchError> {
    let Some(key) = merge_key else {
        return Ok(values_equal(left, right));
    };
    let l = left.as_object().ok_or_else(|| not_a_map(path, left))?;
    let r = right.as_object().ok_or_else(|| not_a_map(path, right))?;
    let lv = l.get(key).ok_or_else(|| no_merge_key(path, left, key))?;
    let rv = r.get(key).ok_or_else(|| no_merge_key(path, right, key))?;
    Ok(values_equal(lv, rv))
}

fn partition_primitives(merged: Vec<Value>, by: &[Value]) -> (Vec<Value>, Vec<Value>) {
    merged
        .into_iter()
        .partition(|v| by.iter().any(|b| values_equal(b, v)))
}

fn partition_maps(
    merged: Vec<Value>,
    by: &[Value],
    merge_key: &str,
    path: &Path<'_>,
) -> Result<(Vec<Value>, Vec<Value>), PatchError> {
    let mut in_patch = Vec::new();
    let mut server_only = Vec::new();
    for item in merged {
        if !item.is_object() {
            return Err(not_a_map(path, &item));
        }
        let Some(value) = merge_key_of(&item, merge_key) else {
            return Err(no_merge_key(path, &item, merge_key));
        };
        if find_by_merge_key(by, merge_key, value, path)?.is_some() {
            in_patch.push(item);
        } else {
            server_only.push(item);
        }
    }
    Ok((in_patch, server_only))
}

/// Sorts the patch's items by the patch order and the server-only items by the live order,
/// then interleaves them (Kubernetes' `normalizeElementOrder`).
fn normalize_element_order(
    patch_items: Vec<Value>,
    server_only: Vec<Value>,
    patch_order: &[Value],
    server_order: &[Value],
    merge_key: Option<&str>,
    kind: Kind,
    path: &Path<'_>,
) -> Result<Vec<Value>, PatchError> {
    let patch_items = normalize_slice_order(patch_items, patch_order, merge_key, kind, path)?;
    let server_only = normalize_slice_order(server_only, server_order, merge_key, kind, path)?;
    Ok(merge_sorted_slice(
        server_only,
        patch_items,
        server_order,
        merge_key,
        kind,
    ))
}

/// Stable-sorts `to_sort` by position in `order`; `$patch: delete` elements go last.
fn normalize_slice_order(
    to_sort: Vec<Value>,
    order: &[Value],
    merge_key: Option<&str>,
    kind: Kind,
    path: &Path<'_>,
) -> Result<Vec<Value>, PatchError> {
    let (keep, to_delete): (Vec<Value>, Vec<Value>) = if kind == Kind::Map {
        let Some(key) = merge_key else {
            return Err(error(
                path,
                "cannot order a list of maps without a merge key",
            ));
        };
        for item in to_sort.iter().chain(order) {
            if !item.is_object() {
                return Err(not_a_map(path, item));
            }
            if merge_key_of(item, key).is_none() {
                return Err(no_merge_key(path, item, key));
            }
        }
        to_sort.into_iter().partition(|v| !is_delete_directive(v))
    } else {
        (to_sort, Vec::new())
    };
    let mut keyed: Vec<(usize, Value)> = keep
        .into_iter()
        .map(|v| {
            (
                index_of(order, &v, merge_key, kind).unwrap_or(usize::MAX),
                v,
            )
        })
        .collect();
    keyed.sort_by_key(|(position, _)| *position);
    let mut sorted: Vec<Value> = keyed.into_iter().map(|(_, v)| v).collect();
    sorted.extend(to_delete);
    Ok(sorted)
}

/// Interleaves two sorted lists: a server-only item goes before a patch item when it came
/// before it in the live list (Kubernetes' `mergeSortedSlice`). Patch items unknown to the live
/// list therefore come as early as the patch order allows.
fn merge_sorted_slice(
    left: Vec<Value>,
    right: Vec<Value>,
    server_order: &[Value],
    merge_key: Option<&str>,
    kind: Kind,
) -> Vec<Value> {
    let mut out = Vec::with_capacity(left.len() + right.len());
    let mut left = left.into_iter().peekable();
    let mut right = right.into_iter().peekable();
    loop {
        let take_left = match (left.peek(), right.peek()) {
            (None, None) => break,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some(l), Some(r)) => {
                match (
                    index_of(server_order, l, merge_key, kind),
                    index_of(server_order, r, merge_key, kind),
                ) {
                    (Some(li), Some(ri)) => li < ri,
                    _ => false,
                }
            }
        };
        let next = if take_left { left.next() } else { right.next() };
        out.extend(next);
    }
    out
}

/// A merged list, plus the live list as Kubernetes' ordering code later sees it.
struct MergedList {
    merged: Vec<Value>,
    /// Go slices share their backing array: after a merge deleted and appended elements, the
    /// caller's view of the live list shows the shifted survivors and the first appended
    /// elements. Kubernetes orders `$setElementOrder` lists against that view, so results only
    /// match Kubernetes' if we reproduce it.
    server_order: Vec<Value>,
}

/// Kubernetes' `mergeSliceHandler`: merge when the field's strategy says so (or for a
/// `$deleteFromPrimitiveList`), replace otherwise.
fn merge_list<S: LookupPatchMeta>(
    original: Vec<Value>,
    patch: Vec<Value>,
    schema: &S,
    meta: &FieldPatchMeta,
    is_delete_list: bool,
    mode: MergeMode,
    path: &Path<'_>,
) -> Result<MergedList, PatchError> {
    if meta.is_merge() || is_delete_list {
        return merge_slice(
            original,
            patch,
            schema,
            meta.merge_key(),
            is_delete_list,
            mode,
            path,
        );
    }
    let merged = match mode {
        MergeMode::Apply => cleaned_list(patch),
        MergeMode::CombinePatches => patch,
    };
    Ok(MergedList {
        merged,
        server_order: original,
    })
}

/// Mirrors the writes Go makes to a slice's backing array (see [`MergedList::server_order`]).
struct SharedBacking {
    items: Vec<Value>,
    len: usize,
    visible: usize,
}

impl SharedBacking {
    fn new(items: Vec<Value>) -> Self {
        let len = items.len();
        SharedBacking {
            items,
            len,
            visible: len,
        }
    }

    fn live(&self) -> &[Value] {
        self.items.get(..self.len).unwrap_or_default()
    }

    /// `append(s[:i], s[i+1:]...)`: survivors shift left, the old last element stays behind.
    fn remove(&mut self, i: usize) {
        if i >= self.len {
            return;
        }
        if let Some(window) = self.items.get_mut(i..self.len) {
            window.rotate_left(1);
        }
        // Only when a later element moved into the gap; deleting the last element leaves it.
        if i + 1 < self.len
            && let Some(last) = self.items.get(self.len - 2).cloned()
            && let Some(slot) = self.items.get_mut(self.len - 1)
        {
            *slot = last;
        }
        self.len -= 1;
    }

    /// `append(s, v)`: overwrites the array past the live length while there is room.
    fn push(&mut self, value: Value) {
        match self.items.get_mut(self.len) {
            Some(slot) => *slot = value,
            None => self.items.push(value),
        }
        self.len += 1;
    }

    fn visible(&self) -> Vec<Value> {
        self.items
            .get(..self.visible)
            .map(<[Value]>::to_vec)
            .unwrap_or_default()
    }
}

/// Kubernetes' `mergeSlice`.
fn merge_slice<S: LookupPatchMeta>(
    original: Vec<Value>,
    patch: Vec<Value>,
    schema: &S,
    merge_key: Option<&str>,
    is_delete_list: bool,
    mode: MergeMode,
    path: &Path<'_>,
) -> Result<MergedList, PatchError> {
    let Some(kind) = element_kind(&[&original, &patch], path)? else {
        return Ok(MergedList {
            merged: original.clone(),
            server_order: original,
        });
    };

    if kind != Kind::Map {
        if mode == MergeMode::Apply && is_delete_list {
            let merged = original
                .iter()
                .filter(|v| !patch.iter().any(|d| values_equal(d, v)))
                .cloned()
                .collect();
            return Ok(MergedList {
                merged,
                server_order: original,
            });
        }
        let mut both = original.clone();
        both.extend(patch.iter().cloned());
        let merged = deduplicate_scalars(both);
        let (patch_items, server_only) = partition_primitives(merged, &patch);
        let merged = normalize_element_order(
            patch_items,
            server_only,
            &patch,
            &original,
            None,
            kind,
            path,
        )?;
        return Ok(MergedList {
            merged,
            server_order: original,
        });
    }

    if is_delete_list {
        // Kubernetes would merge the "deletions" in as additions; refuse instead.
        return Err(error(
            path,
            "$deleteFromPrimitiveList can only delete from a list of primitives",
        ));
    }
    let Some(merge_key) = merge_key else {
        return Err(error(path, "cannot merge lists without merge key"));
    };

    // Elements with a `$patch` directive first: deletions, and whether to replace the list.
    let mut backing = SharedBacking::new(original);
    let mut replace = false;
    let mut patch_items = Vec::new();
    for (i, item) in patch.into_iter().enumerate() {
        let item_path = Path::Index(path, i);
        let Value::Object(map) = &item else {
            return Err(not_a_map(&item_path, &item));
        };
        let Some(directive) = map.get(DIRECTIVE_MARKER) else {
            patch_items.push(item);
            continue;
        };
        match directive.as_str() {
            Some(DELETE_DIRECTIVE) => {
                let Some(value) = map.get(merge_key) else {
                    return Err(no_merge_key(&item_path, &item, merge_key));
                };
                while let Some(j) = find_by_merge_key(backing.live(), merge_key, value, path)? {
                    backing.remove(j);
                }
            }
            // Keep going: later elements may still carry directives to prune.
            Some(REPLACE_DIRECTIVE) => replace = true,
            Some(MERGE_DIRECTIVE) => {
                return Err(error(
                    &item_path,
                    "merging lists cannot yet be specified in the patch",
                ));
            }
            _ => {
                return Err(error(
                    &item_path,
                    format!("unknown patch type: {directive} in map"),
                ));
            }
        }
    }

    if replace {
        let merged = match mode {
            MergeMode::Apply => cleaned_list(patch_items),
            MergeMode::CombinePatches => patch_items,
        };
        return Ok(MergedList {
            merged,
            server_order: backing.visible(),
        });
    }

    // Merge the remaining elements into their matches, append the rest.
    let survivors = backing.live().to_vec();
    for (i, item) in patch_items.iter().enumerate() {
        let item_path = Path::Index(path, i);
        let Some(value) = merge_key_of(item, merge_key) else {
            return Err(no_merge_key(&item_path, item, merge_key));
        };
        match find_by_merge_key(backing.live(), merge_key, value, path)? {
            Some(j) => {
                let Some(slot) = backing.items.get_mut(j) else {
                    continue;
                };
                let (Value::Object(current), Value::Object(patch_map)) =
                    (std::mem::take(slot), item.clone())
                else {
                    return Err(not_a_map(&item_path, item));
                };
                *slot = Value::Object(merge_map(current, patch_map, schema, mode, &item_path)?);
            }
            None => {
                if let Some(v) = stored_value(item.clone(), mode) {
                    backing.push(v);
                }
            }
        }
    }

    let merged = backing.live().to_vec();
    let (in_patch, server_only) = partition_maps(merged, &patch_items, merge_key, path)?;
    let merged = normalize_element_order(
        in_patch,
        server_only,
        &patch_items,
        &survivors,
        Some(merge_key),
        kind,
        path,
    )?;
    Ok(MergedList {
        merged,
        server_order: backing.visible(),
    })
}

/// Options of the diff, as Kubernetes' `DiffOptions`.
#[derive(Clone, Copy, Default)]
struct DiffOptions {
    /// Emit `$setElementOrder` lists.
    set_element_order: bool,
    /// Leave additions and changes out (the deletions half of a three-way patch).
    ignore_changes_and_additions: bool,
    /// Leave deletions out (the changes half of a three-way patch).
    ignore_deletions: bool,
    /// Emit `$retainKeys` for this map (its field has the `retainKeys` strategy).
    build_retain_keys: bool,
}

/// Computes the strategic merge patch that turns `original` into `modified` (Kubernetes'
/// `CreateTwoWayMergePatch`).
pub fn create_two_way_merge_patch<S: LookupPatchMeta>(
    original: &Value,
    modified: &Value,
    schema: &S,
) -> Result<Value, PatchError> {
    let original = object_or_empty(original, "the original object")?;
    let modified = object_or_empty(modified, "the modified object")?;
    let options = DiffOptions {
        set_element_order: true,
        ..DiffOptions::default()
    };
    diff_maps(&original, &modified, schema, options, &Path::Root).map(Value::Object)
}

/// Computes the patch `kubectl apply` sends (Kubernetes' `CreateThreeWayMergePatch` with
/// overwrite): changes and additions from `current` to `modified`, plus deletions of what
/// `last_applied` had and `modified` no longer has. Fields set by others (in `current` only)
/// are left alone.
pub fn create_three_way_merge_patch<S: LookupPatchMeta>(
    last_applied: &Value,
    modified: &Value,
    current: &Value,
    schema: &S,
) -> Result<Value, PatchError> {
    let last_applied = object_or_empty(last_applied, "the last-applied configuration")?;
    let modified = object_or_empty(modified, "the modified object")?;
    let current = object_or_empty(current, "the current object")?;
    let delta = diff_maps(
        &current,
        &modified,
        schema,
        DiffOptions {
            ignore_deletions: true,
            set_element_order: true,
            ..DiffOptions::default()
        },
        &Path::Root,
    )?;
    let deletions = diff_maps(
        &last_applied,
        &modified,
        schema,
        DiffOptions {
            set_element_order: true,
            ignore_changes_and_additions: true,
            ..DiffOptions::default()
        },
        &Path::Root,
    )?;
    merge_map(
        deletions,
        delta,
        schema,
        MergeMode::CombinePatches,
        &Path::Root,
    )
    .map(Value::Object)
}

/// The object itself; `null` (no document, e.g. no last-applied annotation yet) as `{}`.
fn object_or_empty<'v>(
    value: &'v Value,
    what: &'static str,
) -> Result<Cow<'v, Object>, PatchError> {
    match value {
        Value::Object(map) => Ok(Cow::Borrowed(map)),
        Value::Null => Ok(Cow::Owned(Object::new())),
        _ => Err(PatchError::NotAnObject { what }),
    }
}

/// Kubernetes' `diffMaps`.
fn diff_maps<S: LookupPatchMeta>(
    original: &Object,
    modified: &Object,
    schema: &S,
    options: DiffOptions,
    path: &Path<'_>,
) -> Result<Object, PatchError> {
    let mut patch = Object::new();
    let mut retain_keys = Vec::new();
    for (key, modified_value) in modified {
        if options.build_retain_keys && !modified_value.is_null() {
            retain_keys.push(Value::String(key.clone()));
        }
        let Some(original_value) = original.get(key) else {
            if !options.ignore_changes_and_additions {
                patch.insert(key.clone(), modified_value.clone());
            }
            continue;
        };
        let field_path = Path::Field(path, key);
        if key == DIRECTIVE_MARKER {
            let (Some(o), Some(m)) = (original_value.as_str(), modified_value.as_str()) else {
                return Err(error(&field_path, "invalid value for special key: $patch"));
            };
            if o != m {
                patch.insert(key.clone(), modified_value.clone());
            }
            continue;
        }
        if !same_type(original_value, modified_value) {
            if !options.ignore_changes_and_additions {
                patch.insert(key.clone(), modified_value.clone());
            }
            continue;
        }
        match (original_value, modified_value) {
            (Value::Object(o), Value::Object(m)) => {
                let (meta, child) = schema.lookup(key);
                let child_options = DiffOptions {
                    build_retain_keys: meta.retain_keys,
                    ..options
                };
                if meta.strategy == PatchStrategy::Replace {
                    if !options.ignore_changes_and_additions {
                        patch.insert(key.clone(), modified_value.clone());
                    }
                } else {
                    let value = diff_maps(o, m, &child, child_options, &field_path)?;
                    if !value.is_empty() {
                        patch.insert(key.clone(), Value::Object(value));
                    }
                }
            }
            (Value::Array(o), Value::Array(m)) => {
                let (meta, child) = schema.lookup(key);
                if meta.is_merge() {
                    let child_options = DiffOptions {
                        build_retain_keys: meta.retain_keys,
                        ..options
                    };
                    let lists =
                        diff_lists(o, m, &child, meta.merge_key(), child_options, &field_path)?;
                    if !lists.patch.is_empty() {
                        patch.insert(key.clone(), Value::Array(lists.patch));
                    }
                    if !lists.deletions.is_empty() {
                        patch.insert(
                            format!("{DELETE_FROM_PRIMITIVE_LIST_PREFIX}/{key}"),
                            Value::Array(lists.deletions),
                        );
                    }
                    if !lists.set_order.is_empty() {
                        patch.insert(
                            format!("{SET_ELEMENT_ORDER_PREFIX}/{key}"),
                            Value::Array(lists.set_order),
                        );
                    }
                } else {
                    replace_if_not_equal(key, original_value, modified_value, &mut patch, options);
                }
            }
            _ => replace_if_not_equal(key, original_value, modified_value, &mut patch, options),
        }
    }

    if !options.ignore_deletions {
        for key in original.keys() {
            if !modified.contains_key(key) {
                patch.insert(key.clone(), Value::Null);
            }
        }
    }
    // `$retainKeys` only when something changes here or `original` has keys to clear.
    if !retain_keys.is_empty()
        && (!patch.is_empty() || has_additional_new_field(original, modified))
    {
        patch.insert(
            RETAIN_KEYS_DIRECTIVE.to_owned(),
            Value::Array(sort_scalars(retain_keys)),
        );
    }
    Ok(patch)
}

fn replace_if_not_equal(
    key: &str,
    original: &Value,
    modified: &Value,
    patch: &mut Object,
    options: DiffOptions,
) {
    if !options.ignore_changes_and_additions && !values_equal(original, modified) {
        patch.insert(key.to_owned(), modified.clone());
    }
}

/// Whether `original` has a non-null key that `modified` lacks.
fn has_additional_new_field(original: &Object, modified: &Object) -> bool {
    original
        .iter()
        .any(|(k, v)| !v.is_null() && !modified.contains_key(k))
}

/// The three parallel lists a merging list's diff produces.
struct ListDiff {
    /// Additions and changes (and, for lists of maps, `$patch: delete` elements).
    patch: Vec<Value>,
    /// `$deleteFromPrimitiveList` values.
    deletions: Vec<Value>,
    /// `$setElementOrder` values.
    set_order: Vec<Value>,
}

/// Kubernetes' `diffLists`.
fn diff_lists<S: LookupPatchMeta>(
    original: &[Value],
    modified: &[Value],
    schema: &S,
    merge_key: Option<&str>,
    options: DiffOptions,
    path: &Path<'_>,
) -> Result<ListDiff, PatchError> {
    let mut diff = ListDiff {
        patch: Vec::new(),
        deletions: Vec::new(),
        set_order: Vec::new(),
    };
    if original.is_empty() {
        if !modified.is_empty() && !options.ignore_changes_and_additions {
            diff.patch = modified.to_vec();
        }
        return Ok(diff);
    }
    let Some(kind) = element_kind(&[original, modified], path)? else {
        return Ok(diff);
    };
    if kind == Kind::Map {
        let Some(merge_key) = merge_key else {
            return Err(error(
                path,
                "cannot diff a list of maps without a merge key",
            ));
        };
        let (patch, deletions) =
            diff_lists_of_maps(original, modified, schema, merge_key, options, path)?;
        let mut patch = normalize_slice_order(patch, modified, Some(merge_key), kind, path)?;
        let order_same = is_order_same(original, modified, merge_key, path)?;
        patch.extend(deletions);
        if options.set_element_order
            && ((!options.ignore_changes_and_additions && (!patch.is_empty() || !order_same))
                || (!options.ignore_deletions && !patch.is_empty()))
        {
            diff.set_order = modified
                .iter()
                .map(|v| {
                    let mut only_key = Object::new();
                    only_key.insert(
                        merge_key.to_owned(),
                        merge_key_of(v, merge_key).cloned().unwrap_or(Value::Null),
                    );
                    Value::Object(only_key)
                })
                .collect();
        }
        diff.patch = patch;
    } else {
        let (patch, deletions) = diff_lists_of_scalars(original, modified, options);
        diff.patch = normalize_slice_order(patch, modified, None, kind, path)?;
        if options.set_element_order
            && ((!options.ignore_deletions && !deletions.is_empty())
                || (!options.ignore_changes_and_additions
                    && !values_equal(
                        &Value::Array(original.to_vec()),
                        &Value::Array(modified.to_vec()),
                    )))
        {
            diff.set_order = modified.to_vec();
        }
        diff.deletions = deletions;
    }
    Ok(diff)
}

fn is_order_same(
    original: &[Value],
    modified: &[Value],
    merge_key: &str,
    path: &Path<'_>,
) -> Result<bool, PatchError> {
    if original.len() != modified.len() {
        return Ok(false);
    }
    for (o, m) in original.iter().zip(modified) {
        if !merge_key_value_equal(o, m, Some(merge_key), path)? {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Walks both lists sorted by Go rendering: additions from `modified`, deletions from
/// `original` (Kubernetes' `diffListsOfScalars`).
fn diff_lists_of_scalars(
    original: &[Value],
    modified: &[Value],
    options: DiffOptions,
) -> (Vec<Value>, Vec<Value>) {
    let render = |values: &[Value]| -> Vec<(String, Value)> {
        let mut rendered: Vec<(String, Value)> =
            values.iter().map(|v| (go_format(v), v.clone())).collect();
        rendered.sort_by(|a, b| a.0.cmp(&b.0));
        rendered
    };
    let (original, modified) = (render(original), render(modified));
    let (mut oi, mut mi) = (0, 0);
    let mut additions = Vec::new();
    let mut deletions = Vec::new();
    loop {
        match (original.get(oi), modified.get(mi)) {
            (None, None) => break,
            (Some((o, _)), Some((m, _))) if o == m => {
                oi += 1;
                mi += 1;
            }
            (None, Some((_, m))) => {
                if !options.ignore_changes_and_additions {
                    additions.push(m.clone());
                }
                mi += 1;
            }
            (Some((o, _)), Some((m, mv))) if o > m => {
                if !options.ignore_changes_and_additions {
                    additions.push(mv.clone());
                }
                mi += 1;
            }
            (Some((_, ov)), _) => {
                if !options.ignore_deletions {
                    deletions.push(ov.clone());
                }
                oi += 1;
            }
        }
    }
    (additions, deduplicate_scalars(deletions))
}

/// Walks both lists sorted by merge key: changed elements as patches (with their merge key),
/// new elements whole, removed elements as `$patch: delete` (Kubernetes' `diffListsOfMaps`).
fn diff_lists_of_maps<S: LookupPatchMeta>(
    original: &[Value],
    modified: &[Value],
    schema: &S,
    merge_key: &str,
    options: DiffOptions,
    path: &Path<'_>,
) -> Result<(Vec<Value>, Vec<Value>), PatchError> {
    let sorted = |values: &[Value]| -> Result<Vec<(String, Value, Object)>, PatchError> {
        let mut out = Vec::with_capacity(values.len());
        for v in values {
            let Value::Object(map) = v else {
                return Err(not_a_map(path, v));
            };
            let Some(key_value) = map.get(merge_key) else {
                return Err(no_merge_key(path, v, merge_key));
            };
            out.push((go_format(key_value), key_value.clone(), map.clone()));
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    };
    let (original, modified) = (sorted(original)?, sorted(modified)?);
    let (mut oi, mut mi) = (0, 0);
    let mut patch = Vec::new();
    let mut deletions = Vec::new();
    loop {
        match (original.get(oi), modified.get(mi)) {
            (None, None) => break,
            (Some((o, _, o_map)), Some((m, m_key, m_map))) if o == m => {
                let mut value = diff_maps(o_map, m_map, schema, options, path)?;
                if !value.is_empty() {
                    value.insert(merge_key.to_owned(), m_key.clone());
                    patch.push(Value::Object(value));
                }
                oi += 1;
                mi += 1;
            }
            (None, Some((_, _, m_map))) => {
                if !options.ignore_changes_and_additions {
                    patch.push(Value::Object(m_map.clone()));
                }
                mi += 1;
            }
            (Some((o, _, _)), Some((m, _, m_map))) if o > m => {
                if !options.ignore_changes_and_additions {
                    patch.push(Value::Object(m_map.clone()));
                }
                mi += 1;
            }
            (Some((_, o_key, _)), _) => {
                if !options.ignore_deletions {
                    let mut directive = Object::new();
                    directive.insert(merge_key.to_owned(), o_key.clone());
                    directive.insert(
                        DIRECTIVE_MARKER.to_owned(),
                        Value::String(DELETE_DIRECTIVE.to_owned()),
                    );
                    deletions.push(Value::Object(directive));
                }
                oi += 1;
            }
        }
    }
    Ok((patch, deletions))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// The test type of Kubernetes' own strategic merge patch tests (`MergeItem`).
    #[derive(Clone, Copy, Debug)]
    enum TestSchema {
        MergeItem,
        RetainKeysMergeItem,
        Leaf,
    }

    impl LookupPatchMeta for TestSchema {
        fn lookup(&self, field: &str) -> (FieldPatchMeta, Self) {
            use TestSchema::*;
            let by_name = || FieldPatchMeta::merge_by_key("name");
            match (self, field) {
                (MergeItem | RetainKeysMergeItem, "mergingList") => (by_name(), MergeItem),
                (MergeItem | RetainKeysMergeItem, "nonMergingList") => {
                    (FieldPatchMeta::default(), MergeItem)
                }
                (MergeItem | RetainKeysMergeItem, "mergingIntList") => {
                    (FieldPatchMeta::merge_primitive(), Leaf)
                }
                (MergeItem, "mergeItemPtr") => (by_name(), MergeItem),
                (MergeItem, "replacingItem") => (
                    FieldPatchMeta {
                        strategy: PatchStrategy::Replace,
                        retain_keys: false,
                    },
                    Leaf,
                ),
                (MergeItem, "retainKeysMap") => (
                    FieldPatchMeta::default().with_retain_keys(),
                    RetainKeysMergeItem,
                ),
                (MergeItem, "retainKeysMergingList") => (by_name().with_retain_keys(), MergeItem),
                _ => (FieldPatchMeta::default(), Leaf),
            }
        }
    }

    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Case {
        description: String,
        original: Option<Value>,
        two_way: Option<Value>,
        modified: Option<Value>,
        current: Option<Value>,
        three_way: Option<Value>,
        result: Option<Value>,
        two_way_result: Option<Value>,
        expected_error: Option<String>,
    }

    fn cases(yaml: &str) -> Vec<Case> {
        serde_yaml_ng::from_str(yaml).expect("test cases parse")
    }

    fn obj(v: &Option<Value>) -> Value {
        match v {
            Some(Value::Null) | None => json!({}),
            Some(v) => v.clone(),
        }
    }

    /// Patches that only make sense applied (hand-written directives, old client formats):
    /// `original` + `twoWay` must give `modified`, or fail with `expectedError`.
    const APPLY_CASES: &str = r#"
- description: unique scalars when merging lists
  original: {mergingIntList: [1, 2]}
  twoWay: {mergingIntList: [2, 3]}
  modified: {mergingIntList: [1, 2, 3]}
- description: delete map from nested map
  original: {simpleMap: {key1: 1, key2: 1}}
  twoWay: {simpleMap: {$patch: delete}}
  modified: {simpleMap: {}}
- description: delete all items from merging list
  original: {mergingList: [{name: 1}, {name: 2}]}
  twoWay: {mergingList: [{$patch: replace}]}
  modified: {mergingList: []}
- description: merge empty merging lists
  original: {mergingList: []}
  twoWay: {mergingList: []}
  modified: {mergingList: []}
- description: delete all keys from map
  original: {name: 1, value: 1}
  twoWay: {$patch: replace}
  modified: {}
- description: add key and delete all keys from map
  original: {name: 1, value: 1}
  twoWay: {other: a, $patch: replace}
  modified: {other: a}
- description: merge directive on a map is a plain merge
  original: {simpleMap: {key1: 1}}
  twoWay: {simpleMap: {$patch: merge, key2: 2}}
  modified: {simpleMap: {key1: 1, key2: 2}}
- description: replace a merging list wholesale
  original: {mergingList: [{name: 1, value: a, other: b}, {name: 2}]}
  twoWay: {mergingList: [{name: 1, value: c}, {$patch: replace}]}
  modified: {mergingList: [{name: 1, value: c}]}
- description: replace a map wholesale
  original: {simpleMap: {a: 1, b: 2}}
  twoWay: {simpleMap: {c: 3, $patch: replace}}
  modified: {simpleMap: {c: 3}}
- description: delete all duplicate entries in a merging list
  original: {mergingList: [{name: 1}, {name: 1}, {name: 2, value: a}, {name: 3}, {name: 3}]}
  twoWay: {mergingList: [{name: 1, $patch: delete}, {name: 3, $patch: delete}]}
  modified: {mergingList: [{name: 2, value: a}]}
- description: retainKeys map can add a field when no retainKeys directive present
  original: {retainKeysMap: {name: foo}}
  twoWay: {retainKeysMap: {value: bar}}
  modified: {retainKeysMap: {name: foo, value: bar}}
- description: retainKeys map can delete a field when no retainKeys directive present
  original: {retainKeysMap: {name: foo, value: a}}
  twoWay: {retainKeysMap: {value: null}}
  modified: {retainKeysMap: {name: foo}}
- description: retainKeys map merge an empty map
  original: {retainKeysMap: {name: foo, value: a}}
  twoWay: {retainKeysMap: {}}
  modified: {retainKeysMap: {name: foo, value: a}}
- description: retainKeys list can change a field when no retainKeys directive present
  original: {retainKeysMergingList: [{name: bar}, {name: foo, value: a}]}
  twoWay: {retainKeysMergingList: [{name: foo, value: b}]}
  modified: {retainKeysMergingList: [{name: bar}, {name: foo, value: b}]}
- description: retainKeys list can delete a field when no retainKeys directive present
  original: {retainKeysMergingList: [{name: bar}, {name: foo, value: a}]}
  twoWay: {retainKeysMergingList: [{name: foo, value: null}]}
  modified: {retainKeysMergingList: [{name: bar}, {name: foo}]}
- description: preserve the order from the patch in a merging list
  original: {mergingList: [{name: 1}, {name: 2, value: b}, {name: 3}]}
  twoWay: {mergingList: [{name: 3, value: c}, {name: 1, value: a}, {name: 2, other: x}]}
  modified: {mergingList: [{name: 3, value: c}, {name: 1, value: a}, {name: 2, value: b, other: x}]}
- description: preserve the order from the patch in a merging list 2
  original: {mergingList: [{name: 1}, {name: 2, value: b}, {name: 3}]}
  twoWay: {mergingList: [{name: 3, value: c}, {name: 1, value: a}]}
  modified: {mergingList: [{name: 2, value: b}, {name: 3, value: c}, {name: 1, value: a}]}
- description: new elements without setElementOrder come first, as in Kubernetes
  original: {mergingList: [{name: a}, {name: b}]}
  twoWay: {mergingList: [{name: c}]}
  modified: {mergingList: [{name: c}, {name: a}, {name: b}]}
- description: preserve the order from the patch in a merging int list
  original: {mergingIntList: [1, 2, 3]}
  twoWay: {mergingIntList: [3, 1, 2]}
  modified: {mergingIntList: [3, 1, 2]}
- description: preserve the order from the patch in a merging int list 2
  original: {mergingIntList: [1, 2, 3]}
  twoWay: {mergingIntList: [3, 1]}
  modified: {mergingIntList: [2, 3, 1]}
- description: setElementOrder contains an item not in the merging list
  original: {mergingList: [{name: 1}, {name: 3}]}
  twoWay:
    $setElementOrder/mergingList: [{name: 3}, {name: 2}, {name: 1}]
    mergingList: [{name: 3, value: 3}, {name: 1, value: 1}]
  modified: {mergingList: [{name: 3, value: 3}, {name: 1, value: 1}]}
- description: setElementOrder contains an item not in the int list
  original: {mergingIntList: [1, 3]}
  twoWay: {$setElementOrder/mergingIntList: [3, 2, 1]}
  modified: {mergingIntList: [3, 1]}
- description: setElementOrder must agree with the patch list
  original: {mergingList: [{name: 1}, {name: 3}, {name: 2}]}
  twoWay:
    $setElementOrder/mergingList: [{name: 1}, {name: 2}, {name: 3}]
    mergingList: [{name: 3, value: 3}, {name: 1, value: 1}]
  expectedError: "mergingList: the order in patch list"
- description: setElementOrder must agree with the patch int list
  original: {mergingIntList: [1, 3, 2]}
  twoWay:
    $setElementOrder/mergingIntList: [1, 2, 3]
    mergingIntList: [3, 1]
  expectedError: "doesn't match $setElementOrder list"
- description: missing merge key
  original: {mergingList: [{name: 1, value: a}]}
  twoWay: {mergingList: [{value: b}]}
  expectedError: "mergingList[0]: map: {\"value\":\"b\"} does not contain declared merge key: name"
- description: delete directive without merge key
  original: {mergingList: [{name: 1}]}
  twoWay: {mergingList: [{$patch: delete}]}
  expectedError: "does not contain declared merge key: name"
- description: unknown directive in a map
  original: {simpleMap: {a: 1}}
  twoWay: {simpleMap: {$patch: frobnicate}}
  expectedError: "simpleMap: unknown patch type: \"frobnicate\" in map"
- description: unknown directive in a list
  original: {mergingList: [{name: 1}]}
  twoWay: {mergingList: [{name: 1, $patch: frobnicate}]}
  expectedError: "mergingList[0]: unknown patch type"
- description: merge directive in a list
  original: {mergingList: [{name: 1}]}
  twoWay: {mergingList: [{$patch: merge}]}
  expectedError: "mergingList[0]: merging lists cannot yet be specified in the patch"
- description: malformed retainKeys
  original: {retainKeysMap: {name: a}}
  twoWay: {retainKeysMap: {$retainKeys: name}}
  expectedError: "retainKeysMap: invalid patch format of retainKeys"
- description: retainKeys must list every key the patch sets
  original: {retainKeysMap: {name: a}}
  twoWay: {retainKeysMap: {$retainKeys: [name], value: b}}
  expectedError: "retainKeysMap: invalid patch format of retainKeys: \"value\" is not in the $retainKeys list"
- description: retainKeys clears keys even without other changes
  original: {retainKeysMap: {name: a, value: b, other: c}}
  twoWay: {retainKeysMap: {$retainKeys: [name, value]}}
  modified: {retainKeysMap: {name: a, value: b}}
- description: malformed setElementOrder
  original: {mergingList: [{name: 1}]}
  twoWay: {$setElementOrder/mergingList: {name: 1}}
  expectedError: "mergingList: $setElementOrder/mergingList must be a list"
- description: setElementOrder without a field name
  original: {}
  twoWay: {$setElementOrder: []}
  expectedError: "invalid patch format of setElementOrder list"
- description: merging list of lists
  original: {mergingList: [[1]]}
  twoWay: {mergingList: [[2]]}
  expectedError: "mergingList: lists of lists are not supported"
- description: mixed element types
  original: {mergingIntList: [1]}
  twoWay: {mergingIntList: [a]}
  expectedError: "mergingIntList: list element types are not identical"
- description: deleteFromPrimitiveList of nonexistent item
  original: {mergingIntList: [1, 2]}
  twoWay: {$deleteFromPrimitiveList/mergingIntList: [3]}
  modified: {mergingIntList: [1, 2]}
- description: deleteFromPrimitiveList on empty primitive list
  original: {mergingIntList: null}
  twoWay: {$deleteFromPrimitiveList/mergingIntList: [3]}
  modified: {mergingIntList: null}
- description: deleteFromPrimitiveList on nonexistent primitive list
  original: {foo: [bar]}
  twoWay: {$deleteFromPrimitiveList/mergingIntList: [3]}
  modified: {foo: [bar]}
- description: deleteFromPrimitiveList on a list with merge strategy
  original: {mergingIntList: [1, 2, 3]}
  twoWay: {$deleteFromPrimitiveList/mergingIntList: [2]}
  modified: {mergingIntList: [1, 3]}
- description: deleteFromPrimitiveList on a list without merge strategy
  original: {nonMergingIntList: [1, 2, 3]}
  twoWay: {$deleteFromPrimitiveList/nonMergingIntList: [2]}
  modified: {nonMergingIntList: [1, 3]}
- description: deleteFromPrimitiveList on a list of maps
  original: {mergingList: [{name: 1}]}
  twoWay: {$deleteFromPrimitiveList/mergingList: [{name: 1}]}
  expectedError: "mergingList: $deleteFromPrimitiveList can only delete from a list of primitives"
- description: replacing strategy replaces maps
  original: {replacingItem: {a: 1, b: 2}}
  twoWay: {replacingItem: {c: 3}}
  modified: {replacingItem: {c: 3}}
- description: unknown fields with lists are replaced whole
  original: {unknown: {list: [{name: a, v: 1}], map: {x: 1}}}
  twoWay: {unknown: {list: [{name: a}], map: {y: 2}}}
  modified: {unknown: {list: [{name: a}], map: {x: 1, y: 2}}}
- description: values added wholesale lose their directives and nulls
  original: {}
  twoWay:
    mergingList: [{name: 1, value: null, $retainKeys: [name]}, {name: 2, $patch: delete}, {$patch: replace}]
    simpleMap: {$patch: replace, a: 1, b: null}
    gone: {$patch: delete, x: 1}
  modified:
    mergingList: [{name: 1}]
    simpleMap: {a: 1}
- description: a type change replaces the value
  original: {name: {a: 1}}
  twoWay: {name: [1]}
  modified: {name: [1]}
"#;

    #[test]
    fn applies_hand_written_patches() {
        for case in cases(APPLY_CASES) {
            let original = obj(&case.original);
            let patch = obj(&case.two_way);
            let got = apply_strategic_merge_patch(&original, &patch, &TestSchema::MergeItem);
            match (&case.expected_error, got) {
                (Some(want), Err(err)) => assert!(
                    err.to_string().contains(want.as_str()),
                    "{}: error {err:?} should contain {want:?}",
                    case.description
                ),
                (Some(want), Ok(v)) => {
                    panic!("{}: expected error {want:?}, got {v}", case.description)
                }
                (None, Err(err)) => panic!("{}: unexpected error {err}", case.description),
                (None, Ok(v)) => assert_eq!(v, obj(&case.modified), "{}", case.description),
            }
        }
    }

    /// Kubernetes' patch-creation cases: the two-way patch from `original` to `modified`, the
    /// three-way patch against `current`, and the results of applying both.
    const CREATE_CASES: &str = r#"
- description: nil original
  twoWay: {name: 1, value: 1}
  modified: {name: 1, value: 1}
  current: {name: 1, other: a}
  threeWay: {value: 1}
  result: {name: 1, value: 1, other: a}
- description: nil patch
  original: {name: 1}
  twoWay: {}
  modified: {name: 1}
  current: {name: 1}
  threeWay: {}
  result: {name: 1}
- description: add field to map
  original: {name: 1}
  twoWay: {value: 1}
  modified: {name: 1, value: 1}
  current: {name: 1, other: a}
  threeWay: {value: 1}
  result: {name: 1, value: 1, other: a}
- description: add field to map with conflict
  original: {name: 1}
  twoWay: {value: 1}
  modified: {name: 1, value: 1}
  current: {name: a, other: a}
  threeWay: {name: 1, value: 1}
  result: {name: 1, value: 1, other: a}
- description: add field and delete field from map
  original: {name: 1}
  twoWay: {name: null, value: 1}
  modified: {value: 1}
  current: {name: 1, other: a}
  threeWay: {name: null, value: 1}
  result: {value: 1, other: a}
- description: delete field from nested map with conflict
  original: {simpleMap: {key1: 1, key2: 1}}
  twoWay: {simpleMap: {key2: null}}
  modified: {simpleMap: {key1: 1}}
  current: {simpleMap: {key1: a, key2: 1, other: a}}
  threeWay: {simpleMap: {key1: 1, key2: null}}
  result: {simpleMap: {key1: 1, other: a}}
- description: add field and delete all fields from map with conflict
  original: {name: 1, value: 1}
  twoWay: {name: null, value: null, other: a}
  modified: {other: a}
  current: {name: 1, value: 1, other: b}
  threeWay: {name: null, value: null, other: a}
  result: {other: a}
- description: replace list of scalars with conflict
  original: {nonMergingIntList: [1, 2]}
  twoWay: {nonMergingIntList: [2, 3]}
  modified: {nonMergingIntList: [2, 3]}
  current: {nonMergingIntList: [1, 4]}
  threeWay: {nonMergingIntList: [2, 3]}
  result: {nonMergingIntList: [2, 3]}
- description: delete all maps from merging list with conflict
  original: {mergingList: [{name: 1}, {name: 2}]}
  twoWay: {mergingList: [{name: 1, $patch: delete}, {name: 2, $patch: delete}]}
  modified: {mergingList: []}
  current: {mergingList: [{name: 1, other: a}, {name: 2, other: b}]}
  threeWay: {mergingList: [{name: 1, $patch: delete}, {name: 2, $patch: delete}]}
  result: {mergingList: []}
- description: merge empty merging lists
  original: {mergingList: []}
  twoWay: {}
  modified: {mergingList: []}
  current: {mergingList: []}
  threeWay: {}
  result: {mergingList: []}
- description: defined null values should propagate overwrite current fields (with conflict)
  original: {name: 2}
  twoWay: {name: 1, value: 1, other: null}
  twoWayResult: {name: 1, value: 1}
  modified: {name: 1, value: 1, other: null}
  current: {name: a, other: a}
  threeWay: {name: 1, value: 1, other: null}
  result: {name: 1, value: 1}
- description: retainKeys map with no change should not be present
  original: {name: a, retainKeysMap: {name: foo}}
  current: {name: a, other: c, retainKeysMap: {name: foo}}
  modified: {name: a, value: b, retainKeysMap: {name: foo}}
  twoWay: {value: b}
  threeWay: {value: b}
  result: {name: a, value: b, other: c, retainKeysMap: {name: foo}}
- description: nested patch merge with empty list
  original: {name: hi}
  current: {name: hi, mergingList: [{name: hello2}]}
  modified: {name: hi, mergingList: [{name: hello}, {$patch: delete, name: doesntexist}]}
  twoWay: {mergingList: [{name: hello}, {$patch: delete, name: doesntexist}]}
  threeWay:
    $setElementOrder/mergingList: [{name: hello}, {name: doesntexist}]
    mergingList: [{name: hello}, {$patch: delete, name: doesntexist}]
  twoWayResult: {name: hi, mergingList: [{name: hello}]}
  result: {name: hi, mergingList: [{name: hello}, {name: hello2}]}
- description: delete items in lists of scalars
  original: {mergingIntList: [1, 2, 3]}
  twoWay:
    $setElementOrder/mergingIntList: [1, 2]
    $deleteFromPrimitiveList/mergingIntList: [3]
  modified: {mergingIntList: [1, 2]}
  current: {mergingIntList: [1, 2, 3, 4]}
  threeWay:
    $setElementOrder/mergingIntList: [1, 2]
    $deleteFromPrimitiveList/mergingIntList: [3]
  result: {mergingIntList: [1, 2, 4]}
- description: delete all duplicate items in lists of scalars
  original: {mergingIntList: [1, 2, 3, 3]}
  twoWay:
    $setElementOrder/mergingIntList: [1, 2]
    $deleteFromPrimitiveList/mergingIntList: [3]
  modified: {mergingIntList: [1, 2]}
  current: {mergingIntList: [1, 2, 3, 3, 4]}
  threeWay:
    $setElementOrder/mergingIntList: [1, 2]
    $deleteFromPrimitiveList/mergingIntList: [3]
  result: {mergingIntList: [1, 2, 4]}
- description: add and delete items in lists of scalars
  original: {mergingIntList: [1, 2, 3]}
  twoWay:
    $setElementOrder/mergingIntList: [1, 2, 4]
    $deleteFromPrimitiveList/mergingIntList: [3]
    mergingIntList: [4]
  modified: {mergingIntList: [1, 2, 4]}
  current: {mergingIntList: [1, 2, 3, 4]}
  threeWay:
    $setElementOrder/mergingIntList: [1, 2, 4]
    $deleteFromPrimitiveList/mergingIntList: [3]
  result: {mergingIntList: [1, 2, 4]}
- description: merge lists of maps
  original: {mergingList: [{name: 1}, {name: 2, value: 2}]}
  twoWay:
    $setElementOrder/mergingList: [{name: 4}, {name: 1}, {name: 2}, {name: 3}]
    mergingList: [{name: 4, value: 4}, {name: 3, value: 3}]
  modified: {mergingList: [{name: 4, value: 4}, {name: 1}, {name: 2, value: 2}, {name: 3, value: 3}]}
  current: {mergingList: [{name: 1, other: a}, {name: 2, value: 2, other: b}]}
  threeWay:
    $setElementOrder/mergingList: [{name: 4}, {name: 1}, {name: 2}, {name: 3}]
    mergingList: [{name: 4, value: 4}, {name: 3, value: 3}]
  result: {mergingList: [{name: 4, value: 4}, {name: 1, other: a}, {name: 2, value: 2, other: b}, {name: 3, value: 3}]}
- description: merge lists of maps with conflict
  original: {mergingList: [{name: 1}, {name: 2, value: 2}]}
  twoWay:
    $setElementOrder/mergingList: [{name: 1}, {name: 2}, {name: 3}]
    mergingList: [{name: 3, value: 3}]
  modified: {mergingList: [{name: 1}, {name: 2, value: 2}, {name: 3, value: 3}]}
  current: {mergingList: [{name: 1, other: a}, {name: 2, value: 3, other: b}]}
  threeWay:
    $setElementOrder/mergingList: [{name: 1}, {name: 2}, {name: 3}]
    mergingList: [{name: 2, value: 2}, {name: 3, value: 3}]
  result: {mergingList: [{name: 1, other: a}, {name: 2, value: 2, other: b}, {name: 3, value: 3}]}
- description: add field to map in merging list with conflict
  original: {mergingList: [{name: 1}, {name: 2, value: 2}]}
  twoWay:
    $setElementOrder/mergingList: [{name: 1}, {name: 2}]
    mergingList: [{name: 1, value: 1}]
  modified: {mergingList: [{name: 1, value: 1}, {name: 2, value: 2}]}
  current: {mergingList: [{name: 1, other: a}, {name: 3, value: 2, other: b}]}
  threeWay:
    $setElementOrder/mergingList: [{name: 1}, {name: 2}]
    mergingList: [{name: 1, value: 1}, {name: 2, value: 2}]
  result: {mergingList: [{name: 1, value: 1, other: a}, {name: 2, value: 2}, {name: 3, value: 2, other: b}]}
- description: add an item that already exists in current object in merging list
  original: {mergingList: [{name: 1, value: a}, {name: 2}]}
  twoWay:
    $setElementOrder/mergingList: [{name: 1}, {name: 2}, {name: 3}]
    mergingList: [{name: 3}]
  modified: {mergingList: [{name: 1, value: a}, {name: 2}, {name: 3}]}
  current: {mergingList: [{name: 1, value: a, other: x}, {name: 2}, {name: 3}]}
  threeWay: {}
  result: {mergingList: [{name: 1, value: a, other: x}, {name: 2}, {name: 3}]}
- description: delete map from merging list
  original: {mergingList: [{name: 1}, {name: 2}]}
  twoWay:
    $setElementOrder/mergingList: [{name: 2}]
    mergingList: [{name: 1, $patch: delete}]
  modified: {mergingList: [{name: 2}]}
  current: {mergingList: [{name: 1}, {name: 2, other: b}]}
  threeWay:
    $setElementOrder/mergingList: [{name: 2}]
    mergingList: [{name: 1, $patch: delete}]
  result: {mergingList: [{name: 2, other: b}]}
- description: delete missing map from merging list with conflict
  original: {mergingList: [{name: 1}, {name: 2}]}
  twoWay:
    $setElementOrder/mergingList: [{name: 2}]
    mergingList: [{name: 1, $patch: delete}]
  modified: {mergingList: [{name: 2}]}
  current: {mergingList: [{name: 3, other: a}]}
  threeWay:
    $setElementOrder/mergingList: [{name: 2}]
    mergingList: [{name: 2}, {name: 1, $patch: delete}]
  result: {mergingList: [{name: 2}, {name: 3, other: a}]}
- description: add map and delete map from merging list
  original: {mergingList: [{name: 1}, {name: 2}]}
  twoWay:
    $setElementOrder/mergingList: [{name: 2}, {name: 3}]
    mergingList: [{name: 3}, {name: 1, $patch: delete}]
  modified: {mergingList: [{name: 2}, {name: 3}]}
  current: {mergingList: [{name: 1}, {name: 2, other: b}, {name: 4, other: c}]}
  threeWay:
    $setElementOrder/mergingList: [{name: 2}, {name: 3}]
    mergingList: [{name: 3}, {name: 1, $patch: delete}]
  result: {mergingList: [{name: 2, other: b}, {name: 4, other: c}, {name: 3}]}
- description: add map and delete map from merging list with conflict
  original: {mergingList: [{name: 1}, {name: 2}]}
  twoWay:
    $setElementOrder/mergingList: [{name: 2}, {name: 3}]
    mergingList: [{name: 3}, {name: 1, $patch: delete}]
  modified: {mergingList: [{name: 2}, {name: 3}]}
  current: {mergingList: [{name: 1, other: a}, {name: 4, other: c}]}
  threeWay:
    $setElementOrder/mergingList: [{name: 2}, {name: 3}]
    mergingList: [{name: 2}, {name: 3}, {name: 1, $patch: delete}]
  result: {mergingList: [{name: 4, other: c}, {name: 2}, {name: 3}]}
- description: delete missing field from map in merging list with conflict
  original: {mergingList: [{name: 1, value: 1}, {name: 2, value: 2}]}
  twoWay:
    $setElementOrder/mergingList: [{name: 1}, {name: 2}]
    mergingList: [{name: 1, value: null}]
  modified: {mergingList: [{name: 1}, {name: 2, value: 2}]}
  current: {mergingList: [{name: 1, other: a}, {name: 2, other: b}]}
  threeWay:
    $setElementOrder/mergingList: [{name: 1}, {name: 2}]
    mergingList: [{name: 1, value: null}, {name: 2, value: 2}]
  result: {mergingList: [{name: 1, other: a}, {name: 2, value: 2, other: b}]}
- description: replace non merging list nested in merging list with value conflict
  original: {mergingList: [{name: 1, nonMergingList: [{name: 1}, {name: 2, value: 2}]}, {name: 2}]}
  twoWay:
    $setElementOrder/mergingList: [{name: 1}, {name: 2}]
    mergingList: [{name: 1, nonMergingList: [{name: 1, value: 1}]}]
  modified: {mergingList: [{name: 1, nonMergingList: [{name: 1, value: 1}]}, {name: 2}]}
  current: {mergingList: [{name: 1, other: a, nonMergingList: [{name: 1, value: c}]}, {name: 2, other: b}]}
  threeWay:
    $setElementOrder/mergingList: [{name: 1}, {name: 2}]
    mergingList: [{name: 1, nonMergingList: [{name: 1, value: 1}]}]
  result: {mergingList: [{name: 1, other: a, nonMergingList: [{name: 1, value: 1}]}, {name: 2, other: b}]}
- description: add field to map in merging list nested in merging list with value conflict
  original: {mergingList: [{name: 1, mergingList: [{name: 1}, {name: 2, value: 2}]}, {name: 2}]}
  twoWay:
    $setElementOrder/mergingList: [{name: 1}, {name: 2}]
    mergingList:
    - $setElementOrder/mergingList: [{name: 1}, {name: 2}]
      name: 1
      mergingList: [{name: 1, value: 1}]
  modified: {mergingList: [{name: 1, mergingList: [{name: 1, value: 1}, {name: 2, value: 2}]}, {name: 2}]}
  current: {mergingList: [{name: 1, other: a, mergingList: [{name: 1, value: a, other: c}, {name: 2, value: b, other: d}]}, {name: 2, other: b}]}
  threeWay:
    $setElementOrder/mergingList: [{name: 1}, {name: 2}]
    mergingList:
    - $setElementOrder/mergingList: [{name: 1}, {name: 2}]
      name: 1
      mergingList: [{name: 1, value: 1}, {name: 2, value: 2}]
  result: {mergingList: [{name: 1, other: a, mergingList: [{name: 1, value: 1, other: c}, {name: 2, value: 2, other: d}]}, {name: 2, other: b}]}
- description: add field to map in merging list nested in merging list with deletion conflict and reorder
  original: {mergingList: [{name: 1, mergingList: [{name: 1}, {name: 2, value: 2}]}, {name: 2}]}
  twoWay:
    $setElementOrder/mergingList: [{name: 1}, {name: 2}]
    mergingList:
    - $setElementOrder/mergingList: [{name: 2}, {name: 1}]
      name: 1
      mergingList: [{name: 1, value: 1}]
  modified: {mergingList: [{name: 1, mergingList: [{name: 2, value: 2}, {name: 1, value: 1}]}, {name: 2}]}
  current: {mergingList: [{name: 1, other: a, mergingList: [{name: 2, value: 2, other: d}]}, {name: 2, other: b}]}
  threeWay:
    $setElementOrder/mergingList: [{name: 1}, {name: 2}]
    mergingList:
    - $setElementOrder/mergingList: [{name: 2}, {name: 1}]
      name: 1
      mergingList: [{name: 1, value: 1}]
  result: {mergingList: [{name: 1, other: a, mergingList: [{name: 2, value: 2, other: d}, {name: 1, value: 1}]}, {name: 2, other: b}]}
- description: add map to merging list by pointer with conflict
  original: {mergeItemPtr: [{name: 1}]}
  twoWay:
    $setElementOrder/mergeItemPtr: [{name: 1}, {name: 2}]
    mergeItemPtr: [{name: 2}]
  modified: {mergeItemPtr: [{name: 1}, {name: 2}]}
  current: {mergeItemPtr: [{name: 3}]}
  threeWay:
    $setElementOrder/mergeItemPtr: [{name: 1}, {name: 2}]
    mergeItemPtr: [{name: 1}, {name: 2}]
  result: {mergeItemPtr: [{name: 1}, {name: 2}, {name: 3}]}
- description: merge lists of scalars
  original: {mergingIntList: [1, 2]}
  twoWay:
    $setElementOrder/mergingIntList: [1, 2, 3]
    mergingIntList: [3]
  modified: {mergingIntList: [1, 2, 3]}
  current: {mergingIntList: [1, 2, 4]}
  threeWay:
    $setElementOrder/mergingIntList: [1, 2, 3]
    mergingIntList: [3]
  result: {mergingIntList: [1, 2, 3, 4]}
- description: add duplicate field to map in merging int list
  original: {mergingIntList: [1, 2]}
  twoWay:
    $setElementOrder/mergingIntList: [1, 2, 3]
    mergingIntList: [3]
  modified: {mergingIntList: [1, 2, 3]}
  current: {mergingIntList: [1, 2, 3]}
  threeWay: {}
  result: {mergingIntList: [1, 2, 3]}
- description: add an item in a list of primitives and preserve order
  original: {mergingIntList: [1, 2]}
  twoWay:
    $setElementOrder/mergingIntList: [3, 1, 2]
    mergingIntList: [3]
  modified: {mergingIntList: [3, 1, 2]}
  current: {mergingIntList: [1, 4, 2]}
  threeWay:
    $setElementOrder/mergingIntList: [3, 1, 2]
    mergingIntList: [3]
  result: {mergingIntList: [3, 1, 4, 2]}
- description: delete an item in a list of primitives and preserve order
  original: {mergingIntList: [1, 2, 3]}
  twoWay:
    $setElementOrder/mergingIntList: [2, 1]
    $deleteFromPrimitiveList/mergingIntList: [3]
  modified: {mergingIntList: [2, 1]}
  current: {mergingIntList: [1, 2, 3]}
  threeWay:
    $setElementOrder/mergingIntList: [2, 1]
    $deleteFromPrimitiveList/mergingIntList: [3]
  result: {mergingIntList: [2, 1]}
- description: add multiple items in a list and preserve order
  original: {mergingList: [{name: 1}, {name: 2, value: 2}]}
  twoWay:
    $setElementOrder/mergingList: [{name: 1}, {name: 4}, {name: 2}, {name: 3}]
    mergingList: [{name: 4, value: 4}, {name: 3, value: 3}]
  modified: {mergingList: [{name: 1}, {name: 4, value: 4}, {name: 2, value: 2}, {name: 3, value: 3}]}
  current: {mergingList: [{name: 1, other: a}, {name: 2, value: 2, other: b}]}
  threeWay:
    $setElementOrder/mergingList: [{name: 1}, {name: 4}, {name: 2}, {name: 3}]
    mergingList: [{name: 4, value: 4}, {name: 3, value: 3}]
  result: {mergingList: [{name: 1, other: a}, {name: 4, value: 4}, {name: 2, value: 2, other: b}, {name: 3, value: 3}]}
- description: delete an item in a list and preserve order
  original: {mergingList: [{name: 1}, {name: 3, value: 3}, {name: 2, value: 2}]}
  twoWay:
    $setElementOrder/mergingList: [{name: 2}, {name: 1}]
    mergingList: [{name: 3, $patch: delete}]
  modified: {mergingList: [{name: 2, value: 2}, {name: 1}]}
  current: {mergingList: [{name: 1, other: a}, {name: 2, value: 2, other: b}, {name: 3, value: 3}]}
  threeWay:
    $setElementOrder/mergingList: [{name: 2}, {name: 1}]
    mergingList: [{name: 3, $patch: delete}]
  result: {mergingList: [{name: 2, value: 2, other: b}, {name: 1, other: a}]}
- description: add and delete an item in a list and preserve order
  original: {mergingList: [{name: 1}, {name: 3, value: 3}, {name: 2, value: 2}]}
  twoWay:
    $setElementOrder/mergingList: [{name: 4}, {name: 2}, {name: 1}]
    mergingList: [{name: 4, value: 4}, {name: 3, $patch: delete}]
  modified: {mergingList: [{name: 4, value: 4}, {name: 2, value: 2}, {name: 1}]}
  current: {mergingList: [{name: 1, other: a}, {name: 2, value: 2, other: b}, {name: 3, value: 3}]}
  threeWay:
    $setElementOrder/mergingList: [{name: 4}, {name: 2}, {name: 1}]
    mergingList: [{name: 4, value: 4}, {name: 3, $patch: delete}]
  result: {mergingList: [{name: 4, value: 4}, {name: 2, value: 2, other: b}, {name: 1, other: a}]}
- description: set elements order in a list with server-only items 3
  original: {mergingList: [{name: 1}, {name: 2, value: 2}, {name: 3, value: 3}, {name: 4, value: 4}]}
  twoWay: {$setElementOrder/mergingList: [{name: 2}, {name: 1}, {name: 4}, {name: 3}]}
  modified: {mergingList: [{name: 2, value: 2}, {name: 1}, {name: 4, value: 4}, {name: 3, value: 3}]}
  current: {mergingList: [{name: 1, other: a}, {name: 2, value: 2}, {name: 7}, {name: 9}, {name: 8}, {name: 3, value: 3}, {name: 4, value: 4}]}
  threeWay: {$setElementOrder/mergingList: [{name: 2}, {name: 1}, {name: 4}, {name: 3}]}
  result: {mergingList: [{name: 2, value: 2}, {name: 1, other: a}, {name: 7}, {name: 9}, {name: 8}, {name: 4, value: 4}, {name: 3, value: 3}]}
- description: set elements order in a int list with server-only items 2
  original: {mergingIntList: [1, 2, 3, 4]}
  twoWay: {$setElementOrder/mergingIntList: [2, 1, 4, 3]}
  modified: {mergingIntList: [2, 1, 4, 3]}
  current: {mergingIntList: [1, 2, 9, 3, 4]}
  threeWay: {$setElementOrder/mergingIntList: [2, 1, 4, 3]}
  result: {mergingIntList: [2, 1, 9, 4, 3]}
- description: behavior of set element order for a merging list with duplicate
  original: {mergingList: [{name: 1}, {name: 2, value: dup1}, {name: 3}, {name: 2, value: dup2}, {name: 4}]}
  current: {mergingList: [{name: 1}, {name: 2, value: dup1}, {name: 3}, {name: 2, value: dup2}, {name: 4}]}
  modified: {mergingList: [{name: 2, value: dup1}, {name: 1}, {name: 4}, {name: 3}, {name: 2, value: dup2}]}
  twoWay: {$setElementOrder/mergingList: [{name: 2}, {name: 1}, {name: 4}, {name: 3}, {name: 2}]}
  twoWayResult: {mergingList: [{name: 2, value: dup1}, {name: 2, value: dup2}, {name: 1}, {name: 4}, {name: 3}]}
  threeWay: {$setElementOrder/mergingList: [{name: 2}, {name: 1}, {name: 4}, {name: 3}, {name: 2}]}
  result: {mergingList: [{name: 2, value: dup1}, {name: 2, value: dup2}, {name: 1}, {name: 4}, {name: 3}]}
- description: behavior of set element order for a merging int list with duplicate
  original: {mergingIntList: [1, 2, 3, 2, 4]}
  current: {mergingIntList: [1, 2, 3, 2, 4]}
  modified: {mergingIntList: [2, 1, 4, 3, 2]}
  twoWay: {$setElementOrder/mergingIntList: [2, 1, 4, 3, 2]}
  twoWayResult: {mergingIntList: [2, 2, 1, 4, 3]}
  threeWay: {$setElementOrder/mergingIntList: [2, 1, 4, 3, 2]}
  result: {mergingIntList: [2, 2, 1, 4, 3]}
- description: retainKeys map should clear defaulted field with conflict (discriminated union)
  original: {}
  current: {retainKeysMap: {name: type1, value: foo}}
  modified: {retainKeysMap: {name: type2, other: bar}}
  twoWay: {retainKeysMap: {name: type2, other: bar}}
  threeWay: {retainKeysMap: {$retainKeys: [name, other], name: type2, other: bar}}
  result: {retainKeysMap: {name: type2, other: bar}}
- description: retainKeys map adds a field and clear a field
  original: {retainKeysMap: {name: foo}}
  current: {retainKeysMap: {name: foo, other: a}}
  modified: {retainKeysMap: {name: foo, value: bar}}
  twoWay: {retainKeysMap: {$retainKeys: [name, value], value: bar}}
  threeWay: {retainKeysMap: {$retainKeys: [name, value], value: bar}}
  result: {retainKeysMap: {name: foo, value: bar}}
- description: retainKeys map deletes a field and clears a field
  original: {retainKeysMap: {name: foo, value: bar}}
  current: {retainKeysMap: {name: foo, value: bar, other: a}}
  modified: {retainKeysMap: {name: foo}}
  twoWay: {retainKeysMap: {$retainKeys: [name], value: null}}
  threeWay: {retainKeysMap: {$retainKeys: [name], value: null}}
  result: {retainKeysMap: {name: foo}}
- description: retainKeys map clears a field
  original: {retainKeysMap: {name: foo, value: bar}}
  current: {retainKeysMap: {name: foo, value: bar, other: a}}
  modified: {retainKeysMap: {name: foo, value: bar}}
  twoWay: {}
  threeWay: {retainKeysMap: {$retainKeys: [name, value]}}
  result: {retainKeysMap: {name: foo, value: bar}}
- description: retainKeys map nested non-merging list with no change with conflict
  original: {retainKeysMap: {name: foo, nonMergingList: [{name: a}, {name: b}]}}
  current: {retainKeysMap: {name: foo, nonMergingList: [{name: a}, {name: b}, {name: c}]}}
  modified: {retainKeysMap: {name: foo, value: bar, nonMergingList: [{name: a}, {name: b}]}}
  twoWay: {retainKeysMap: {$retainKeys: [name, nonMergingList, value], value: bar}}
  threeWay: {retainKeysMap: {$retainKeys: [name, nonMergingList, value], value: bar, nonMergingList: [{name: a}, {name: b}]}}
  result: {retainKeysMap: {name: foo, value: bar, nonMergingList: [{name: a}, {name: b}]}}
- description: retainKeys map nested merging int list with no change
  original: {retainKeysMap: {name: foo, mergingIntList: [1, 2]}}
  current: {retainKeysMap: {name: foo, mergingIntList: [1, 2, 3]}}
  modified: {retainKeysMap: {name: foo, value: bar, mergingIntList: [1, 2]}}
  twoWay: {retainKeysMap: {$retainKeys: [mergingIntList, name, value], value: bar}}
  threeWay: {retainKeysMap: {$retainKeys: [mergingIntList, name, value], $setElementOrder/mergingIntList: [1, 2], value: bar}}
  result: {retainKeysMap: {name: foo, value: bar, mergingIntList: [1, 2, 3]}}
- description: retainKeys map adds an item and deletes an item in nested merging int list
  original: {retainKeysMap: {name: foo, mergingIntList: [1, 2, 3]}}
  current: {retainKeysMap: {name: foo, mergingIntList: [1, 2, 3, 4]}}
  modified: {retainKeysMap: {name: foo, mergingIntList: [1, 3, 5]}}
  twoWay:
    retainKeysMap:
      $retainKeys: [mergingIntList, name]
      mergingIntList: [5]
      $deleteFromPrimitiveList/mergingIntList: [2]
      $setElementOrder/mergingIntList: [1, 3, 5]
  threeWay:
    retainKeysMap:
      $retainKeys: [mergingIntList, name]
      mergingIntList: [5]
      $deleteFromPrimitiveList/mergingIntList: [2]
      $setElementOrder/mergingIntList: [1, 3, 5]
  result: {retainKeysMap: {name: foo, mergingIntList: [1, 3, 5, 4]}}
- description: retainKeys map deletes nested merging list
  original: {retainKeysMap: {name: foo, mergingList: [{name: a}, {name: b}]}}
  current: {retainKeysMap: {name: foo, mergingList: [{name: a}, {name: b}]}}
  modified: {retainKeysMap: {name: foo, value: bar}}
  twoWay: {retainKeysMap: {$retainKeys: [name, value], value: bar, mergingList: null}}
  threeWay: {retainKeysMap: {$retainKeys: [name, value], value: bar, mergingList: null}}
  result: {retainKeysMap: {name: foo, value: bar}}
- description: retainKeys map deletes an item in nested merging list
  original: {retainKeysMap: {name: foo, mergingList: [{name: a}, {name: b}]}}
  current: {retainKeysMap: {name: foo, mergingList: [{name: a}, {name: b}, {name: x}]}}
  modified: {retainKeysMap: {name: foo, mergingList: [{name: a}]}}
  twoWay:
    retainKeysMap:
      $retainKeys: [mergingList, name]
      $setElementOrder/mergingList: [{name: a}]
      mergingList: [{name: b, $patch: delete}]
  threeWay:
    retainKeysMap:
      $retainKeys: [mergingList, name]
      $setElementOrder/mergingList: [{name: a}]
      mergingList: [{name: b, $patch: delete}]
  result: {retainKeysMap: {name: foo, mergingList: [{name: a}, {name: x}]}}
- description: retainKeys list of maps clears a field
  original: {retainKeysMergingList: [{name: bar}, {name: foo, value: a}]}
  current: {retainKeysMergingList: [{name: bar}, {name: foo, value: a, other: x}]}
  modified: {retainKeysMergingList: [{name: bar}, {name: foo, value: a}]}
  twoWay: {}
  threeWay:
    $setElementOrder/retainKeysMergingList: [{name: bar}, {name: foo}]
    retainKeysMergingList: [{$retainKeys: [name, value], name: foo}]
  result: {retainKeysMergingList: [{name: bar}, {name: foo, value: a}]}
- description: retainKeys list of maps clears a field with conflict
  original: {retainKeysMergingList: [{name: bar}, {name: foo, value: old}]}
  current: {retainKeysMergingList: [{name: bar}, {name: foo, value: new, other: x}]}
  modified: {retainKeysMergingList: [{name: bar}, {name: foo, value: modified}]}
  twoWay:
    $setElementOrder/retainKeysMergingList: [{name: bar}, {name: foo}]
    retainKeysMergingList: [{$retainKeys: [name, value], name: foo, value: modified}]
  threeWay:
    $setElementOrder/retainKeysMergingList: [{name: bar}, {name: foo}]
    retainKeysMergingList: [{$retainKeys: [name, value], name: foo, value: modified}]
  result: {retainKeysMergingList: [{name: bar}, {name: foo, value: modified}]}
"#;

    #[test]
    fn creates_and_applies_patches_like_kubernetes() {
        let schema = TestSchema::MergeItem;
        for case in cases(CREATE_CASES) {
            let name = &case.description;
            let original = obj(&case.original);
            let modified = obj(&case.modified);
            let current = obj(&case.current);

            let two_way = create_two_way_merge_patch(&original, &modified, &schema)
                .unwrap_or_else(|e| panic!("{name}: two-way: {e}"));
            assert_eq!(two_way, obj(&case.two_way), "{name}: two-way patch");
            let applied = apply_strategic_merge_patch(&original, &two_way, &schema)
                .unwrap_or_else(|e| panic!("{name}: applying two-way: {e}"));
            let want = case
                .two_way_result
                .clone()
                .unwrap_or_else(|| modified.clone());
            assert_eq!(applied, want, "{name}: two-way result");

            let three_way = create_three_way_merge_patch(&original, &modified, &current, &schema)
                .unwrap_or_else(|e| panic!("{name}: three-way: {e}"));
            assert_eq!(three_way, obj(&case.three_way), "{name}: three-way patch");
            let applied = apply_strategic_merge_patch(&current, &three_way, &schema)
                .unwrap_or_else(|e| panic!("{name}: applying three-way: {e}"));
            assert_eq!(applied, obj(&case.result), "{name}: three-way result");
            assert!(case.expected_error.is_none());
        }
    }

    #[test]
    fn unstructured_merges_maps_and_replaces_lists() {
        let original = json!({"a": {"b": 1, "c": [1, 2]}, "d": [{"name": "x"}]});
        let patch = json!({"a": {"c": [3], "e": null}, "d": [{"name": "y"}]});
        assert_eq!(
            apply_strategic_merge_patch(&original, &patch, &Unstructured).expect("applies"),
            json!({"a": {"b": 1, "c": [3]}, "d": [{"name": "y"}]})
        );
        let err = apply_strategic_merge_patch(&json!([]), &patch, &Unstructured)
            .expect_err("not an object");
        assert_eq!(err.to_string(), "the object must be a JSON object");
        let err = apply_strategic_merge_patch(&original, &json!([1]), &Unstructured)
            .expect_err("not an object");
        assert_eq!(
            err.to_string(),
            "a strategic merge patch must be a JSON object"
        );
    }

    #[test]
    fn computing_patches_needs_objects() {
        let schema = TestSchema::MergeItem;
        let modified = json!({"name": 1});
        // No last-applied configuration yet: everything in `modified` is an addition.
        assert_eq!(
            create_three_way_merge_patch(&Value::Null, &modified, &json!({"other": 2}), &schema)
                .expect("patch"),
            json!({"name": 1})
        );
        assert_eq!(
            create_two_way_merge_patch(&Value::Null, &modified, &schema).expect("patch"),
            json!({"name": 1})
        );
        let err = create_two_way_merge_patch(&json!([1]), &modified, &schema).expect_err("list");
        assert_eq!(err.to_string(), "the original object must be a JSON object");
        let err = create_three_way_merge_patch(&json!({}), &modified, &json!("x"), &schema)
            .expect_err("string");
        assert_eq!(err.to_string(), "the current object must be a JSON object");
    }

    #[test]
    fn json_patch() {
        let doc =
            json!({"metadata": {"name": "a", "labels": {"x": "1"}}, "spec": {"items": [1, 2]}});
        let patch = json!([
            {"op": "test", "path": "/metadata/name", "value": "a"},
            {"op": "add", "path": "/metadata/labels/y", "value": "2"},
            {"op": "replace", "path": "/spec/items/0", "value": 9},
            {"op": "add", "path": "/spec/items/-", "value": 3},
            {"op": "remove", "path": "/metadata/labels/x"}
        ]);
        assert_eq!(
            apply_json_patch(&doc, &patch).expect("applies"),
            json!({"metadata": {"name": "a", "labels": {"y": "2"}}, "spec": {"items": [9, 2, 3]}})
        );
        let failing = json!([
            {"op": "add", "path": "/metadata/labels/z", "value": "3"},
            {"op": "test", "path": "/metadata/name", "value": "b"}
        ]);
        let err = apply_json_patch(&doc, &failing).expect_err("test fails");
        assert!(matches!(err, PatchError::JsonPatch(_)), "{err:?}");
        assert_eq!(
            err.to_string(),
            "operation '/1' failed at path '/metadata/name': value did not match"
        );
        let err = apply_json_patch(&doc, &json!({"op": "add"})).expect_err("not a list");
        assert!(err.to_string().starts_with("invalid JSON patch: "), "{err}");
        let err = apply_json_patch(&doc, &json!([{"op": "remove", "path": "/nope"}]))
            .expect_err("missing path");
        assert!(err.to_string().contains("path is invalid"), "{err}");
    }

    #[test]
    fn merge_patch() {
        let doc = json!({"a": 1, "b": {"c": 2, "d": 3}, "e": [1], "f": 4});
        let patch = json!({"b": {"c": null, "x": 5}, "e": [2], "a": null, "g": {"h": null}});
        let got = apply_merge_patch(&doc, &patch);
        assert_eq!(
            got,
            json!({"b": {"d": 3, "x": 5}, "e": [2], "f": 4, "g": {}})
        );
        // Deletions keep the order of the remaining keys.
        let keys: Vec<&String> = got.as_object().expect("object").keys().collect();
        assert_eq!(keys, ["b", "e", "f", "g"]);
        assert_eq!(apply_merge_patch(&doc, &json!([1])), json!([1]));
        assert_eq!(
            apply_merge_patch(&json!("x"), &json!({"a": 1})),
            json!({"a": 1})
        );
    }

    #[test]
    fn patch_types() {
        assert_eq!(
            PatchType::from_content_type("application/strategic-merge-patch+json; charset=utf-8"),
            Some(PatchType::StrategicMerge)
        );
        assert_eq!(
            PatchType::from_content_type("application/merge-patch+json"),
            Some(PatchType::Merge)
        );
        assert_eq!(
            PatchType::from_content_type("Application/JSON-Patch+JSON"),
            Some(PatchType::Json)
        );
        assert_eq!(
            PatchType::from_content_type("application/apply-patch+yaml"),
            None
        );
        for t in [PatchType::Json, PatchType::Merge, PatchType::StrategicMerge] {
            assert_eq!(PatchType::from_content_type(t.content_type()), Some(t));
        }
        let doc = json!({"a": [1]});
        assert_eq!(
            apply_patch(PatchType::Merge, &doc, &json!({"a": [2]}), &Unstructured).expect("ok"),
            json!({"a": [2]})
        );
        assert_eq!(
            apply_patch(
                PatchType::Json,
                &doc,
                &json!([{"op": "add", "path": "/b", "value": 1}]),
                &Unstructured
            )
            .expect("ok"),
            json!({"a": [1], "b": 1})
        );
        assert_eq!(
            apply_patch(
                PatchType::StrategicMerge,
                &doc,
                &json!({"b": 2}),
                &Unstructured
            )
            .expect("ok"),
            json!({"a": [1], "b": 2})
        );
    }

    #[test]
    fn go_formatting() {
        let cases = [
            (json!(80), "80"),
            (json!(1.5), "1.5"),
            (json!(100000), "100000"),
            (json!(1000000), "1e+06"),
            (json!(1234567), "1.234567e+06"),
            (json!(0.0001), "0.0001"),
            (json!(0.00001), "1e-05"),
            (json!(0), "0"),
            (json!(-3), "-3"),
            (json!("x"), "x"),
            (json!(true), "true"),
            (json!(null), "<nil>"),
            (json!([1, "a"]), "[1 a]"),
            (json!({"b": 1, "a": 2}), "map[a:2 b:1]"),
        ];
        for (value, want) in cases {
            assert_eq!(go_format(&value), want, "{value}");
        }
    }

    #[test]
    fn deduplicates_scalars_like_kubernetes() {
        let s = |v: Value| v.as_array().cloned().expect("list");
        assert_eq!(
            deduplicate_scalars(s(json!([1, 2, 1, 3]))),
            s(json!([1, 2, 3]))
        );
        assert_eq!(
            deduplicate_scalars(s(json!(["a", "a", "b", "c"]))),
            s(json!(["a", "c", "b"]))
        );
        assert_eq!(deduplicate_scalars(s(json!([]))), s(json!([])));
        assert_eq!(deduplicate_scalars(s(json!([1, 1.0]))), s(json!([1])));
    }

    #[test]
    fn error_paths_name_the_field() {
        let schema = TestSchema::MergeItem;
        let original = json!({"mergingList": [{"name": 1, "mergingList": [{"name": "x"}]}]});
        let patch = json!({"mergingList": [{"name": 1, "mergingList": [{"value": 1}]}]});
        let err = apply_strategic_merge_patch(&original, &patch, &schema).expect_err("no key");
        assert_eq!(
            err.to_string(),
            "mergingList[0].mergingList[0]: map: {\"value\":1} does not contain declared merge key: name"
        );
        let PatchError::Strategic { path, .. } = err else {
            panic!("unexpected error kind");
        };
        assert_eq!(path, "mergingList[0].mergingList[0]");
    }
}
