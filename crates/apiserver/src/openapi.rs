//! The API server's OpenAPI documents (`/openapi/v2` and `/openapi/v3/...`), generated from the
//! k8s-openapi types and the resource registry.
//!
//! kubectl reads these for more than documentation, so a few details are load-bearing:
//! - `kubectl apply/create/replace` send `fieldValidation` only if the PATCH operation whose
//!   `x-kubernetes-group-version-kind` names the kind lists a parameter called `fieldValidation`
//!   (inline: the verifier checks `param.name` on the operation, not path-level parameters).
//! - `kubectl apply` builds a strategic merge patch from the v3 document only if that PATCH
//!   operation accepts `application/strategic-merge-patch+json`; it then finds the kind's schema in
//!   `components.schemas` by its `x-kubernetes-group-version-kind` list and reads
//!   `x-kubernetes-patch-strategy` / `x-kubernetes-patch-merge-key` on its fields.
//! - kubectl asks for v2 as protobuf only; the server answers that with 406 and kubectl moves on to
//!   v3, so v2 exists for JSON clients (client generators, older tools).
//!
//! Every document is generated once, on first use, and kept as serialized JSON.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::sync::{Arc, LazyLock};

use k8s_openapi::api::{
    authentication::v1 as authentication, autoscaling::v1 as autoscaling, core::v1 as core,
    policy::v1 as policy,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1 as meta;
use schemars::generate::SchemaSettings;
use schemars::transform::{RemoveRefSiblings, Transform};
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde_json::{Map, Value, json};
use wasmkube_api::registry::{RESOURCES, ResourceInfo, SchemaFn, Subresource, group_versions};

use self::ParamType::{Boolean, Integer, String as Str};

/// The `/openapi/v3` discovery document: one entry per group/version, each pointing at its
/// document with a content hash so clients can cache it forever.
pub fn v3_index() -> Value {
    let paths: Map<String, Value> = V3
        .iter()
        .map(|(key, doc)| {
            let url = format!("/openapi/v3/{key}?hash={}", doc.hash);
            (key.clone(), json!({ "serverRelativeURL": url }))
        })
        .collect();
    json!({ "paths": paths })
}

/// The OpenAPI 3.0 document of one group/version (group `""` for the core group), as JSON.
pub fn v3_group_version(group: &str, version: &str) -> Option<Arc<Vec<u8>>> {
    V3.get(&index_key(group, version))
        .map(|doc| Arc::clone(&doc.json))
}

/// The OpenAPI 3.0 document at `/openapi/v3/{path}`, `path` being a key of [`v3_index`]
/// (`api/v1`, `apis/apps/v1`), with its content hash (for ETags).
pub fn v3_by_path(path: &str) -> Option<(Arc<Vec<u8>>, &'static str)> {
    V3.get(path.trim_matches('/'))
        .map(|doc| (Arc::clone(&doc.json), doc.hash.as_str()))
}

/// The Swagger 2.0 document of every served resource, as JSON.
pub fn v2() -> Arc<Vec<u8>> {
    Arc::clone(&V2)
}

struct Document {
    json: Arc<Vec<u8>>,
    hash: String,
}

static V3: LazyLock<BTreeMap<String, Document>> = LazyLock::new(build_v3);
static V2: LazyLock<Arc<Vec<u8>>> = LazyLock::new(|| Arc::new(to_json(&build_v2())));

fn build_v3() -> BTreeMap<String, Document> {
    let definitions = catalog(Dialect::OpenApi3);
    served_group_versions()
        .into_iter()
        .map(|(group, version)| {
            let doc = v3_document(group, version, &definitions);
            let json = to_json(&doc);
            let hash = content_hash(&json);
            (
                index_key(group, version),
                Document {
                    json: Arc::new(json),
                    hash,
                },
            )
        })
        .collect()
}

fn v3_document(group: &str, version: &str, definitions: &Map<String, Value>) -> Value {
    let tag = tag(group, version);
    let mut paths = Map::new();
    for info in RESOURCES
        .iter()
        .filter(|r| r.group == group && r.version == version)
    {
        for item in path_items(info) {
            paths.insert(item.path.clone(), item.to_v3(&tag));
        }
    }
    let paths = Value::Object(paths);
    let schemas = reachable(&paths, definitions, Dialect::OpenApi3);
    json!({
        "openapi": "3.0.0",
        "info": { "title": "Kubernetes", "version": "unversioned" },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "BearerToken": {
                    "type": "apiKey",
                    "name": "authorization",
                    "in": "header",
                    "description": "Bearer Token authentication",
                },
            },
        },
        "security": [{ "BearerToken": [] }],
    })
}

fn build_v2() -> Value {
    let definitions = catalog(Dialect::Swagger2);
    let mut paths = Map::new();
    for (group, version) in served_group_versions() {
        let tag = tag(group, version);
        for info in RESOURCES
            .iter()
            .filter(|r| r.group == group && r.version == version)
        {
            for item in path_items(info) {
                paths.insert(item.path.clone(), item.to_v2(&tag));
            }
        }
    }
    json!({
        "swagger": "2.0",
        "info": { "title": "Kubernetes", "version": "unversioned" },
        "paths": paths,
        "definitions": definitions,
        "securityDefinitions": {
            "BearerToken": {
                "type": "apiKey",
                "name": "authorization",
                "in": "header",
                "description": "Bearer Token authentication",
            },
        },
        "security": [{ "BearerToken": [] }],
    })
}

/// Core first, then the named groups in discovery order.
fn served_group_versions() -> Vec<(&'static str, &'static str)> {
    let mut out = Vec::new();
    for r in RESOURCES.iter().filter(|r| r.group.is_empty()) {
        if !out.contains(&("", r.version)) {
            out.push(("", r.version));
        }
    }
    out.extend(group_versions());
    out
}

fn index_key(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

fn to_json(value: &Value) -> Vec<u8> {
    // Serializing a `Value` (string keys only) cannot fail; an empty object is still a valid
    // answer if it somehow did.
    serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec())
}

/// FNV-1a: stable across builds and platforms (unlike `DefaultHasher`), which is all a cache key
/// in a URL needs.
fn content_hash(bytes: &[u8]) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{hash:016X}")
}

// ---------------------------------------------------------------------------------------------
// Schemas
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dialect {
    Swagger2,
    OpenApi3,
}

impl Dialect {
    fn definitions_path(self) -> &'static str {
        match self {
            Dialect::Swagger2 => "/definitions",
            Dialect::OpenApi3 => "/components/schemas",
        }
    }

    fn ref_prefix(self) -> &'static str {
        match self {
            Dialect::Swagger2 => "#/definitions/",
            Dialect::OpenApi3 => "#/components/schemas/",
        }
    }

    fn reference(self, definition: &str) -> Value {
        json!({ "$ref": format!("{}{definition}", self.ref_prefix()) })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Gvk {
    group: &'static str,
    version: &'static str,
    kind: Cow<'static, str>,
}

impl Gvk {
    fn of(info: &ResourceInfo) -> Self {
        Gvk {
            group: info.group,
            version: info.version,
            kind: Cow::Borrowed(info.kind),
        }
    }

    /// The kind a subresource speaks; the registry leaves group/version empty for "the owner's".
    fn of_subresource(info: &ResourceInfo, sub: Subresource) -> Self {
        let (group, version, kind) = sub.kind(info.kind);
        if group.is_empty() && version.is_empty() {
            Gvk {
                group: info.group,
                version: info.version,
                kind: Cow::Borrowed(kind),
            }
        } else {
            Gvk {
                group,
                version,
                kind: Cow::Borrowed(kind),
            }
        }
    }

    fn to_value(&self) -> Value {
        json!({ "group": self.group, "kind": self.kind, "version": self.version })
    }
}

/// A kind that only appears as a subresource body, with the k8s-openapi type behind it.
struct SubresourceType {
    name: fn() -> Cow<'static, str>,
    schema: SchemaFn,
}

fn subresource_type<T: JsonSchema>() -> SubresourceType {
    SubresourceType {
        name: T::schema_name,
        schema: |generator| generator.subschema_for::<T>(),
    }
}

/// The subresources that read or write an object of their own kind.
fn subresource_body(sub: Subresource) -> Option<SubresourceType> {
    match sub {
        Subresource::Scale => Some(subresource_type::<autoscaling::Scale>()),
        Subresource::Binding => Some(subresource_type::<core::Binding>()),
        Subresource::Eviction => Some(subresource_type::<policy::Eviction>()),
        Subresource::Token => Some(subresource_type::<authentication::TokenRequest>()),
        _ => None,
    }
}

fn list_definition(info: &ResourceInfo) -> String {
    format!("{}List", info.definition)
}

/// Every schema the documents can reference, keyed by definition name, with Kubernetes'
/// extensions added: which kind a schema is, how its fields merge, and the special scalars.
fn catalog(dialect: Dialect) -> Map<String, Value> {
    let mut generator: SchemaGenerator = SchemaSettings::draft07()
        .with(|s| {
            s.definitions_path = dialect.definitions_path().into();
            s.meta_schema = None;
            // Ref siblings are handled below, after the patch extensions are in place.
            s.transforms.clear();
        })
        .into_generator();

    let mut kinds: Vec<(String, Gvk)> = Vec::new();
    let mut lists: Vec<(&ResourceInfo, Value)> = Vec::new();
    for info in RESOURCES {
        let item = (info.schema)(&mut generator).to_value();
        kinds.push((info.definition.to_string(), Gvk::of(info)));
        if !info.create_only {
            lists.push((info, item));
        }
        for sub in info.subresources {
            if let Some(body) = subresource_body(*sub) {
                (body.schema)(&mut generator);
                kinds.push(((body.name)().into_owned(), Gvk::of_subresource(info, *sub)));
            }
        }
    }
    generator.subschema_for::<meta::DeleteOptions>();
    generator.subschema_for::<meta::Patch>();
    generator.subschema_for::<meta::Status>();
    let list_meta = generator.subschema_for::<meta::ListMeta>().to_value();

    let mut definitions = generator.take_definitions(false);

    // k8s-openapi models lists as a generic `List<T>` without a schema, so the `FooList` kinds
    // that list responses name are written here, shaped as Kubernetes publishes them.
    for (info, item) in lists {
        let name = list_definition(info);
        definitions.insert(name.clone(), list_schema(info, item, &list_meta));
        kinds.push((
            name,
            Gvk {
                group: info.group,
                version: info.version,
                kind: Cow::Owned(format!("{}List", info.kind)),
            },
        ));
    }

    fix_special_scalars(&mut definitions, dialect);
    for (name, gvk) in &kinds {
        if let Some(Value::Object(schema)) = definitions.get_mut(name) {
            add_gvk(schema, gvk);
        }
    }
    add_patch_extensions(&mut definitions);

    if dialect == Dialect::OpenApi3 {
        // OpenAPI 3.0 ignores siblings of `$ref`, so descriptions and patch extensions on a
        // field would be lost; Kubernetes wraps such refs in `allOf`, and kubectl's strategic
        // merge code follows `allOf[0]`.
        for value in definitions.values_mut() {
            if let Ok(schema) = <&mut Schema>::try_from(value) {
                RemoveRefSiblings::default().transform(schema);
            }
        }
    }
    definitions
}

fn list_schema(info: &ResourceInfo, item: Value, list_meta: &Value) -> Value {
    let mut metadata = list_meta.clone();
    if let Value::Object(m) = &mut metadata {
        m.insert(
            "description".into(),
            "Standard list metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds".into(),
        );
    }
    json!({
        "description": format!("{}List is a list of {}.", info.kind, info.kind),
        "type": "object",
        "properties": {
            "apiVersion": {
                "description": "APIVersion defines the versioned schema of this representation of an object.",
                "type": "string",
            },
            "items": {
                "description": format!("List of {}.", info.resource),
                "type": "array",
                "items": item,
            },
            "kind": {
                "description": "Kind is a string value representing the REST resource this object represents.",
                "type": "string",
            },
            "metadata": metadata,
        },
        "required": ["items"],
    })
}

/// k8s-openapi describes IntOrString and Quantity with `x-kubernetes-int-or-string` alone, which
/// has no `type`; give them the shapes Kubernetes publishes so validators and `kubectl explain`
/// accept `port: 80`, `port: http`, `cpu: 0.5` and `memory: 1Gi`.
fn fix_special_scalars(definitions: &mut Map<String, Value>, dialect: Dialect) {
    const INT_OR_STRING: &str = "io.k8s.apimachinery.pkg.util.intstr.IntOrString";
    const QUANTITY: &str = "io.k8s.apimachinery.pkg.api.resource.Quantity";

    if let Some(Value::Object(schema)) = definitions.get_mut(INT_OR_STRING) {
        schema.insert("format".into(), "int-or-string".into());
        match dialect {
            Dialect::OpenApi3 => {
                schema.insert(
                    "oneOf".into(),
                    json!([{ "type": "integer" }, { "type": "string" }]),
                );
            }
            // Swagger 2.0 has no `oneOf`; Kubernetes says string, and validators accept a number
            // where a string is expected.
            Dialect::Swagger2 => {
                schema.insert("type".into(), "string".into());
            }
        }
        schema.insert("x-kubernetes-int-or-string".into(), true.into());
    }
    if let Some(Value::Object(schema)) = definitions.get_mut(QUANTITY) {
        // A quantity may be a decimal (`0.5`), which "int-or-string" would reject.
        schema.remove("x-kubernetes-int-or-string");
        match dialect {
            Dialect::OpenApi3 => {
                schema.insert(
                    "oneOf".into(),
                    json!([{ "type": "string" }, { "type": "number" }]),
                );
            }
            Dialect::Swagger2 => {
                schema.insert("type".into(), "string".into());
            }
        }
    }
}

fn add_gvk(schema: &mut Map<String, Value>, gvk: &Gvk) {
    let entry = schema
        .entry("x-kubernetes-group-version-kind")
        .or_insert_with(|| Value::Array(Vec::new()));
    if let Value::Array(list) = entry {
        let value = gvk.to_value();
        if !list.contains(&value) {
            list.push(value);
        }
    }
}

fn add_patch_extensions(definitions: &mut Map<String, Value>) {
    for (name, schema) in definitions.iter_mut() {
        let Some(Value::Object(properties)) = schema.get_mut("properties") else {
            continue;
        };
        for (field, property) in properties.iter_mut() {
            let Some((strategy, merge_key)) = patch_extensions(name, field) else {
                continue;
            };
            let Value::Object(property) = property else {
                continue;
            };
            property.insert("x-kubernetes-patch-strategy".into(), strategy.into());
            if let Some(key) = merge_key {
                property.insert("x-kubernetes-patch-merge-key".into(), key.into());
            }
        }
    }
}

/// The strategic-merge metadata of one field: (`"merge"`, `"retainKeys"` or
/// `"merge,retainKeys"`, merge key).
fn patch_extensions(definition: &str, field: &str) -> Option<(&'static str, Option<&'static str>)> {
    wasmkube_api::patch_meta::patch_extensions(definition, field)
}

/// The definitions `root` references, directly or through other definitions.
fn reachable(
    root: &Value,
    definitions: &Map<String, Value>,
    dialect: Dialect,
) -> Map<String, Value> {
    let mut seen = BTreeSet::new();
    let mut pending = Vec::new();
    collect_refs(root, dialect, &mut pending);
    while let Some(name) = pending.pop() {
        if !seen.insert(name.clone()) {
            continue;
        }
        if let Some(schema) = definitions.get(&name) {
            collect_refs(schema, dialect, &mut pending);
        }
    }
    // Sorted, so a document's bytes (and hash) depend only on its content.
    seen.into_iter()
        .filter_map(|name| {
            let schema = definitions.get(&name)?.clone();
            Some((name, schema))
        })
        .collect()
}

fn collect_refs(value: &Value, dialect: Dialect, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                if key == "$ref" {
                    if let Some(name) = v
                        .as_str()
                        .and_then(|r| r.strip_prefix(dialect.ref_prefix()))
                    {
                        out.push(name.to_string());
                    }
                } else {
                    collect_refs(v, dialect, out);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, dialect, out)),
        _ => {}
    }
}

// ---------------------------------------------------------------------------------------------
// Paths and operations
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy)]
enum ParamType {
    String,
    Boolean,
    Integer,
}

impl ParamType {
    fn name(self) -> &'static str {
        match self {
            ParamType::String => "string",
            ParamType::Boolean => "boolean",
            ParamType::Integer => "integer",
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Location {
    Query,
    Path,
}

#[derive(Debug, Clone, Copy)]
struct Param {
    name: &'static str,
    location: Location,
    ty: ParamType,
    description: &'static str,
}

impl Param {
    const fn query(name: &'static str, ty: ParamType, description: &'static str) -> Self {
        Param {
            name,
            location: Location::Query,
            ty,
            description,
        }
    }

    const fn path(name: &'static str, description: &'static str) -> Self {
        Param {
            name,
            location: Location::Path,
            ty: ParamType::String,
            description,
        }
    }

    fn to_v3(self) -> Value {
        let mut p = json!({
            "name": self.name,
            "in": self.location_name(),
            "description": self.description,
            "schema": { "type": self.ty.name(), "uniqueItems": true },
        });
        if matches!(self.location, Location::Path) {
            p["required"] = true.into();
        }
        p
    }

    fn to_v2(self) -> Value {
        let mut p = json!({
            "name": self.name,
            "in": self.location_name(),
            "description": self.description,
            "type": self.ty.name(),
            "uniqueItems": true,
        });
        if matches!(self.location, Location::Path) {
            p["required"] = true.into();
        }
        p
    }

    fn location_name(self) -> &'static str {
        match self {
            Param {
                location: Location::Query,
                ..
            } => "query",
            Param {
                location: Location::Path,
                ..
            } => "path",
        }
    }
}

const NAMESPACE: Param = Param::path(
    "namespace",
    "object name and auth scope, such as for teams and projects",
);
const NAME: Param = Param::path("name", "name of the object");
const PROXY_PATH: Param = Param::path("path", "path to the resource");
const PRETTY: Param = Param::query(
    "pretty",
    Str,
    "If 'true', then the output is pretty printed.",
);
const ALLOW_WATCH_BOOKMARKS: Param = Param::query(
    "allowWatchBookmarks",
    Boolean,
    "allowWatchBookmarks requests watch events with type \"BOOKMARK\". Servers that do not implement bookmarks may ignore this flag.",
);
const CONTINUE: Param = Param::query(
    "continue",
    Str,
    "The continue option should be set when retrieving more results from the server, with the value returned in the previous list's metadata.continue.",
);
const FIELD_SELECTOR: Param = Param::query(
    "fieldSelector",
    Str,
    "A selector to restrict the list of returned objects by their fields. Defaults to everything.",
);
const LABEL_SELECTOR: Param = Param::query(
    "labelSelector",
    Str,
    "A selector to restrict the list of returned objects by their labels. Defaults to everything.",
);
const LIMIT: Param = Param::query(
    "limit",
    Integer,
    "limit is a maximum number of responses to return for a list call. If more items exist, the server will set the `continue` field on the list metadata.",
);
const RESOURCE_VERSION: Param = Param::query(
    "resourceVersion",
    Str,
    "resourceVersion sets a constraint on what resource versions a request may be served from. Defaults to unset.",
);
const RESOURCE_VERSION_MATCH: Param = Param::query(
    "resourceVersionMatch",
    Str,
    "resourceVersionMatch determines how resourceVersion is applied to list calls. Defaults to unset.",
);
const SEND_INITIAL_EVENTS: Param = Param::query(
    "sendInitialEvents",
    Boolean,
    "`sendInitialEvents=true` may be set together with `watch=true`; the watch then starts with synthetic events for the current state of all objects, followed by a bookmark.",
);
const TIMEOUT_SECONDS: Param = Param::query(
    "timeoutSeconds",
    Integer,
    "Timeout for the list/watch call, regardless of any activity or inactivity.",
);
const WATCH: Param = Param::query(
    "watch",
    Boolean,
    "Watch for changes to the described resources and return them as a stream of add, update, and remove notifications.",
);
const DRY_RUN: Param = Param::query(
    "dryRun",
    Str,
    "When present, indicates that modifications should not be persisted. Valid values are: - All: all dry run stages will be processed",
);
const FIELD_MANAGER: Param = Param::query(
    "fieldManager",
    Str,
    "fieldManager is a name associated with the actor or entity that is making these changes. Required for apply requests (application/apply-patch).",
);
const FIELD_VALIDATION: Param = Param::query(
    "fieldValidation",
    Str,
    "fieldValidation instructs the server on how to handle objects in the request containing unknown or duplicate fields. Valid values are: - Ignore - Warn - Strict",
);
const FORCE: Param = Param::query(
    "force",
    Boolean,
    "Force is going to \"force\" Apply requests: the request re-acquires conflicting fields owned by other people. Must be unset for non-apply patch requests.",
);
const GRACE_PERIOD_SECONDS: Param = Param::query(
    "gracePeriodSeconds",
    Integer,
    "The duration in seconds before the object should be deleted. Zero means delete immediately.",
);
const IGNORE_STORE_READ_ERROR: Param = Param::query(
    "ignoreStoreReadErrorWithClusterBreakingPotential",
    Boolean,
    "if set to true, it will trigger an unsafe deletion of the resource in case the normal deletion flow fails with a corrupt object error.",
);
const ORPHAN_DEPENDENTS: Param = Param::query(
    "orphanDependents",
    Boolean,
    "Deprecated: please use the PropagationPolicy. Should the dependent objects be orphaned.",
);
const PROPAGATION_POLICY: Param = Param::query(
    "propagationPolicy",
    Str,
    "Whether and how garbage collection will be performed. Acceptable values are: 'Orphan', 'Background', 'Foreground'.",
);
const CONTAINER: Param = Param::query("container", Str, "The container in the pod.");
const STDIN: Param = Param::query("stdin", Boolean, "Redirect the standard input stream.");
const STDOUT: Param = Param::query("stdout", Boolean, "Redirect the standard output stream.");
const STDERR: Param = Param::query("stderr", Boolean, "Redirect the standard error stream.");
const TTY: Param = Param::query("tty", Boolean, "Allocate a terminal.");

const LIST_PARAMS: &[Param] = &[
    ALLOW_WATCH_BOOKMARKS,
    CONTINUE,
    FIELD_SELECTOR,
    LABEL_SELECTOR,
    LIMIT,
    RESOURCE_VERSION,
    RESOURCE_VERSION_MATCH,
    SEND_INITIAL_EVENTS,
    TIMEOUT_SECONDS,
    WATCH,
];
const WRITE_PARAMS: &[Param] = &[DRY_RUN, FIELD_MANAGER, FIELD_VALIDATION];
const PATCH_PARAMS: &[Param] = &[DRY_RUN, FIELD_MANAGER, FIELD_VALIDATION, FORCE];
const DELETE_PARAMS: &[Param] = &[
    DRY_RUN,
    GRACE_PERIOD_SECONDS,
    IGNORE_STORE_READ_ERROR,
    ORPHAN_DEPENDENTS,
    PROPAGATION_POLICY,
];
const DELETE_COLLECTION_PARAMS: &[Param] = &[
    CONTINUE,
    DRY_RUN,
    FIELD_SELECTOR,
    GRACE_PERIOD_SECONDS,
    IGNORE_STORE_READ_ERROR,
    LABEL_SELECTOR,
    LIMIT,
    ORPHAN_DEPENDENTS,
    PROPAGATION_POLICY,
    RESOURCE_VERSION,
    RESOURCE_VERSION_MATCH,
    SEND_INITIAL_EVENTS,
    TIMEOUT_SECONDS,
];
const LOG_PARAMS: &[Param] = &[
    Param::query(
        "container",
        Str,
        "The container for which to stream logs. Defaults to only container if there is one container in the pod.",
    ),
    Param::query("follow", Boolean, "Follow the log stream of the pod."),
    Param::query(
        "insecureSkipTLSVerifyBackend",
        Boolean,
        "Do not verify the serving certificate of the backend the logs come from.",
    ),
    Param::query(
        "limitBytes",
        Integer,
        "The number of bytes to read from the server before terminating the log output.",
    ),
    Param::query(
        "previous",
        Boolean,
        "Return previous terminated container logs.",
    ),
    Param::query(
        "sinceSeconds",
        Integer,
        "A relative time in seconds before the current time from which to show logs.",
    ),
    Param::query(
        "stream",
        Str,
        "Specify which container log stream to return to the client: All, Stdout or Stderr.",
    ),
    Param::query(
        "tailLines",
        Integer,
        "If set, the number of lines from the end of the logs to show.",
    ),
    Param::query(
        "timestamps",
        Boolean,
        "If true, add an RFC3339 timestamp at the beginning of every line of log output.",
    ),
];
const EXEC_PARAMS: &[Param] = &[
    Param::query(
        "command",
        Str,
        "Command is the remote command to execute. argv array. Not executed within a shell.",
    ),
    CONTAINER,
    STDERR,
    STDIN,
    STDOUT,
    TTY,
];
const ATTACH_PARAMS: &[Param] = &[CONTAINER, STDERR, STDIN, STDOUT, TTY];
const PORT_FORWARD_PARAMS: &[Param] =
    &[Param::query("ports", Integer, "List of ports to forward.")];
const PROXY_PARAMS: &[Param] = &[Param::query(
    "path",
    Str,
    "Path is the URL path to use for the current proxy request.",
)];

const PATCH_CONTENT_TYPES: &[&str] = &[
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
    "application/apply-patch+yaml",
];
const OBJECT_CONTENT_TYPES: &[&str] = &["application/json", "application/yaml"];
const LIST_CONTENT_TYPES: &[&str] = &[
    "application/json",
    "application/yaml",
    "application/json;stream=watch",
];

#[derive(Debug, Clone)]
enum Body {
    /// An object of the named definition, as `*/*` (JSON or YAML).
    Object { definition: String, required: bool },
    /// A patch document in any of the four patch content types.
    Patch,
}

#[derive(Debug, Clone)]
enum Payload {
    Definition {
        name: String,
        content_types: &'static [&'static str],
    },
    Text,
}

#[derive(Debug, Clone)]
struct Op {
    method: &'static str,
    id: String,
    description: String,
    action: &'static str,
    gvk: Gvk,
    params: &'static [Param],
    body: Option<Body>,
    codes: &'static [&'static str],
    payload: Payload,
}

#[derive(Debug, Clone)]
struct PathItem {
    path: String,
    params: Vec<Param>,
    ops: Vec<Op>,
}

fn status_code_description(code: &str) -> &'static str {
    match code {
        "201" => "Created",
        "202" => "Accepted",
        _ => "OK",
    }
}

impl Op {
    fn to_v3(&self, tag: &str) -> Value {
        let dialect = Dialect::OpenApi3;
        let mut op = Map::new();
        op.insert("description".into(), self.description.clone().into());
        op.insert("operationId".into(), self.id.clone().into());
        if !self.params.is_empty() {
            let params = self.params.iter().map(|p| p.to_v3()).collect();
            op.insert("parameters".into(), Value::Array(params));
        }
        match &self.body {
            Some(Body::Object {
                definition,
                required,
            }) => {
                op.insert(
                    "requestBody".into(),
                    json!({
                        "content": { "*/*": { "schema": dialect.reference(definition) } },
                        "required": required,
                    }),
                );
            }
            Some(Body::Patch) => {
                let schema = json!({ "schema": dialect.reference(PATCH) });
                let content: Map<String, Value> = PATCH_CONTENT_TYPES
                    .iter()
                    .map(|t| (t.to_string(), schema.clone()))
                    .collect();
                op.insert(
                    "requestBody".into(),
                    json!({ "content": content, "required": true }),
                );
            }
            None => {}
        }
        let mut responses = Map::new();
        for code in self.codes {
            let content: Map<String, Value> = match &self.payload {
                Payload::Definition {
                    name,
                    content_types,
                } => content_types
                    .iter()
                    .map(|t| (t.to_string(), json!({ "schema": dialect.reference(name) })))
                    .collect(),
                Payload::Text => [("*/*".to_string(), json!({ "schema": { "type": "string" } }))]
                    .into_iter()
                    .collect(),
            };
            responses.insert(
                code.to_string(),
                json!({ "description": status_code_description(code), "content": content }),
            );
        }
        responses.insert("401".into(), json!({ "description": "Unauthorized" }));
        op.insert("responses".into(), Value::Object(responses));
        op.insert("tags".into(), json!([tag]));
        op.insert("x-kubernetes-action".into(), self.action.into());
        op.insert(
            "x-kubernetes-group-version-kind".into(),
            self.gvk.to_value(),
        );
        Value::Object(op)
    }

    fn to_v2(&self, tag: &str) -> Value {
        let dialect = Dialect::Swagger2;
        let mut op = Map::new();
        op.insert("description".into(), self.description.clone().into());
        match &self.body {
            Some(Body::Patch) => {
                op.insert("consumes".into(), json!(PATCH_CONTENT_TYPES));
            }
            _ => {
                op.insert("consumes".into(), json!(["*/*"]));
            }
        }
        let produces: &[&str] = match &self.payload {
            Payload::Definition { content_types, .. } => content_types,
            Payload::Text => &["*/*"],
        };
        op.insert("produces".into(), json!(produces));
        op.insert("operationId".into(), self.id.clone().into());
        let mut params: Vec<Value> = Vec::new();
        match &self.body {
            Some(Body::Object {
                definition,
                required,
            }) => params.push(json!({
                "name": "body", "in": "body", "required": required,
                "schema": dialect.reference(definition),
            })),
            Some(Body::Patch) => params.push(json!({
                "name": "body", "in": "body", "required": true,
                "schema": dialect.reference(PATCH),
            })),
            None => {}
        }
        params.extend(self.params.iter().map(|p| p.to_v2()));
        if !params.is_empty() {
            op.insert("parameters".into(), Value::Array(params));
        }
        let mut responses = Map::new();
        for code in self.codes {
            let schema = match &self.payload {
                Payload::Definition { name, .. } => dialect.reference(name),
                Payload::Text => json!({ "type": "string" }),
            };
            responses.insert(
                code.to_string(),
                json!({ "description": status_code_description(code), "schema": schema }),
            );
        }
        responses.insert("401".into(), json!({ "description": "Unauthorized" }));
        op.insert("responses".into(), Value::Object(responses));
        op.insert("schemes".into(), json!(["https"]));
        op.insert("tags".into(), json!([tag]));
        op.insert("x-kubernetes-action".into(), self.action.into());
        op.insert(
            "x-kubernetes-group-version-kind".into(),
            self.gvk.to_value(),
        );
        Value::Object(op)
    }
}

impl PathItem {
    fn to_v3(&self, tag: &str) -> Value {
        let mut item = Map::new();
        for op in &self.ops {
            item.insert(op.method.into(), op.to_v3(tag));
        }
        let params = self.params.iter().map(|p| p.to_v3()).collect();
        item.insert("parameters".into(), Value::Array(params));
        Value::Object(item)
    }

    fn to_v2(&self, tag: &str) -> Value {
        let mut item = Map::new();
        for op in &self.ops {
            item.insert(op.method.into(), op.to_v2(tag));
        }
        let params = self.params.iter().map(|p| p.to_v2()).collect();
        item.insert("parameters".into(), Value::Array(params));
        Value::Object(item)
    }
}

const PATCH: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Patch";
const DELETE_OPTIONS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions";
const STATUS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Status";

/// `networking.k8s.io` → `networking`, `rbac.authorization.k8s.io` → `rbacAuthorization`, core →
/// `core`: the word Kubernetes uses in tags and operation ids.
fn group_word(group: &str) -> String {
    if group.is_empty() {
        return "core".into();
    }
    let trimmed = group.strip_suffix(".k8s.io").unwrap_or(group);
    let mut out = String::new();
    for (i, part) in trimmed.split('.').enumerate() {
        if i == 0 {
            out.push_str(part);
        } else {
            out.push_str(&capitalize(part));
        }
    }
    out
}

fn capitalize(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

fn tag(group: &str, version: &str) -> String {
    format!("{}_{version}", group_word(group))
}

/// Builds operation ids the way Kubernetes spells them, e.g. `patchAppsV1NamespacedDeployment`,
/// `deleteCoreV1CollectionNamespacedPod`, `connectCoreV1GetNamespacedPodExec`.
struct Naming<'a> {
    info: &'a ResourceInfo,
}

impl Naming<'_> {
    fn id(&self, verb: &str, infix: &str, suffix: &str) -> String {
        self.scoped_id(verb, infix, suffix, self.info.namespaced)
    }

    /// `namespaced` is false for the all-namespaces list of a namespaced kind.
    fn scoped_id(&self, verb: &str, infix: &str, suffix: &str, namespaced: bool) -> String {
        let mut id = String::new();
        let scope = if namespaced { "Namespaced" } else { "" };
        let _ = write!(
            id,
            "{verb}{}{}{infix}{scope}{}{suffix}",
            capitalize(&group_word(self.info.group)),
            capitalize(self.info.version),
            self.info.kind
        );
        id
    }
}

fn path_items(info: &ResourceInfo) -> Vec<PathItem> {
    let naming = Naming { info };
    let kind = info.kind;
    let gvk = Gvk::of(info);
    let root = if info.group.is_empty() {
        format!("/api/{}", info.version)
    } else {
        format!("/apis/{}/{}", info.group, info.version)
    };
    let (scope_prefix, scope_params) = if info.namespaced {
        (format!("{root}/namespaces/{{namespace}}"), vec![NAMESPACE])
    } else {
        (root.clone(), Vec::new())
    };
    let collection = format!("{scope_prefix}/{}", info.resource);
    let item = format!("{collection}/{{name}}");
    let object = |name: &str| Payload::Definition {
        name: name.to_string(),
        content_types: OBJECT_CONTENT_TYPES,
    };
    let object_body = |name: &str| {
        Some(Body::Object {
            definition: name.to_string(),
            required: true,
        })
    };
    let delete_body = Some(Body::Object {
        definition: DELETE_OPTIONS.to_string(),
        required: false,
    });

    let mut items = Vec::new();
    let mut collection_ops = Vec::new();
    if !info.create_only {
        collection_ops.push(Op {
            method: "get",
            id: naming.id("list", "", ""),
            description: format!("list or watch objects of kind {kind}"),
            action: "list",
            gvk: gvk.clone(),
            params: LIST_PARAMS,
            body: None,
            codes: &["200"],
            payload: Payload::Definition {
                name: list_definition(info),
                content_types: LIST_CONTENT_TYPES,
            },
        });
    }
    collection_ops.push(Op {
        method: "post",
        id: naming.id("create", "", ""),
        description: format!("create a {kind}"),
        action: "post",
        gvk: gvk.clone(),
        params: WRITE_PARAMS,
        body: object_body(info.definition),
        codes: &["200", "201", "202"],
        payload: object(info.definition),
    });
    if !info.create_only {
        collection_ops.push(Op {
            method: "delete",
            id: naming.id("delete", "Collection", ""),
            description: format!("delete collection of {kind}"),
            action: "deletecollection",
            gvk: gvk.clone(),
            params: DELETE_COLLECTION_PARAMS,
            body: delete_body.clone(),
            codes: &["200"],
            payload: object(STATUS),
        });
    }
    let mut collection_params = scope_params.clone();
    collection_params.push(PRETTY);
    items.push(PathItem {
        path: collection,
        params: collection_params,
        ops: collection_ops,
    });
    if info.create_only {
        return items;
    }

    let mut item_params = vec![NAME];
    item_params.extend(scope_params.iter().copied());
    item_params.push(PRETTY);
    items.push(PathItem {
        path: item.clone(),
        params: item_params.clone(),
        ops: vec![
            Op {
                method: "get",
                id: naming.id("read", "", ""),
                description: format!("read the specified {kind}"),
                action: "get",
                gvk: gvk.clone(),
                params: &[],
                body: None,
                codes: &["200"],
                payload: object(info.definition),
            },
            Op {
                method: "put",
                id: naming.id("replace", "", ""),
                description: format!("replace the specified {kind}"),
                action: "put",
                gvk: gvk.clone(),
                params: WRITE_PARAMS,
                body: object_body(info.definition),
                codes: &["200", "201"],
                payload: object(info.definition),
            },
            Op {
                method: "delete",
                id: naming.id("delete", "", ""),
                description: format!("delete a {kind}"),
                action: "delete",
                gvk: gvk.clone(),
                params: DELETE_PARAMS,
                body: delete_body,
                codes: &["200", "202"],
                payload: object(STATUS),
            },
            Op {
                method: "patch",
                id: naming.id("patch", "", ""),
                description: format!("partially update the specified {kind}"),
                action: "patch",
                gvk: gvk.clone(),
                params: PATCH_PARAMS,
                body: Some(Body::Patch),
                codes: &["200", "201"],
                payload: object(info.definition),
            },
        ],
    });

    for sub in info.subresources {
        let segment = sub.name();
        let suffix = capitalize(segment);
        let path = format!("{item}/{segment}");
        match sub {
            // Read/replace/patch of a view of the object (its status, its scale...).
            Subresource::Status | Subresource::Scale | Subresource::EphemeralContainers => {
                let (definition, sub_gvk) = match subresource_body(*sub) {
                    Some(body) => ((body.name)().into_owned(), Gvk::of_subresource(info, *sub)),
                    None => (info.definition.to_string(), gvk.clone()),
                };
                items.push(PathItem {
                    path,
                    params: item_params.clone(),
                    ops: vec![
                        Op {
                            method: "get",
                            id: naming.id("read", "", &suffix),
                            description: format!("read {segment} of the specified {kind}"),
                            action: "get",
                            gvk: sub_gvk.clone(),
                            params: &[],
                            body: None,
                            codes: &["200"],
                            payload: object(&definition),
                        },
                        Op {
                            method: "put",
                            id: naming.id("replace", "", &suffix),
                            description: format!("replace {segment} of the specified {kind}"),
                            action: "put",
                            gvk: sub_gvk.clone(),
                            params: WRITE_PARAMS,
                            body: object_body(&definition),
                            codes: &["200", "201"],
                            payload: object(&definition),
                        },
                        Op {
                            method: "patch",
                            id: naming.id("patch", "", &suffix),
                            description: format!(
                                "partially update {segment} of the specified {kind}"
                            ),
                            action: "patch",
                            gvk: sub_gvk,
                            params: PATCH_PARAMS,
                            body: Some(Body::Patch),
                            codes: &["200", "201"],
                            payload: object(&definition),
                        },
                    ],
                });
            }
            // Creating a different kind against the object (bind it, evict it, mint a token).
            Subresource::Binding | Subresource::Eviction | Subresource::Token => {
                let Some(body) = subresource_body(*sub) else {
                    continue;
                };
                let definition = (body.name)().into_owned();
                items.push(PathItem {
                    path,
                    params: item_params.clone(),
                    ops: vec![Op {
                        method: "post",
                        id: naming.id("create", "", &suffix),
                        description: format!("create {segment} of a {kind}"),
                        action: "post",
                        gvk: Gvk::of_subresource(info, *sub),
                        params: WRITE_PARAMS,
                        body: object_body(&definition),
                        codes: &["200", "201", "202"],
                        payload: object(&definition),
                    }],
                });
            }
            Subresource::Log => items.push(PathItem {
                path,
                params: item_params.clone(),
                ops: vec![Op {
                    method: "get",
                    id: naming.id("read", "", &suffix),
                    description: format!("read log of the specified {kind}"),
                    action: "get",
                    gvk: gvk.clone(),
                    params: LOG_PARAMS,
                    body: None,
                    codes: &["200"],
                    payload: Payload::Text,
                }],
            }),
            Subresource::Exec | Subresource::Attach | Subresource::PortForward => {
                let params = match sub {
                    Subresource::Exec => EXEC_PARAMS,
                    Subresource::Attach => ATTACH_PARAMS,
                    _ => PORT_FORWARD_PARAMS,
                };
                let ops = ["get", "post"]
                    .into_iter()
                    .map(|method| connect_op(&naming, info, method, &suffix, params, ""))
                    .collect();
                items.push(PathItem {
                    path,
                    params: item_params.clone(),
                    ops,
                });
            }
            Subresource::Proxy => {
                const METHODS: [&str; 7] =
                    ["delete", "get", "head", "options", "patch", "post", "put"];
                let ops = METHODS
                    .into_iter()
                    .map(|method| connect_op(&naming, info, method, &suffix, PROXY_PARAMS, ""))
                    .collect();
                items.push(PathItem {
                    path: path.clone(),
                    params: item_params.clone(),
                    ops,
                });
                let ops = METHODS
                    .into_iter()
                    .map(|method| connect_op(&naming, info, method, &suffix, &[], "WithPath"))
                    .collect();
                let mut params = item_params.clone();
                params.insert(1, PROXY_PATH);
                items.push(PathItem {
                    path: format!("{path}/{{path}}"),
                    params,
                    ops,
                });
            }
        }
    }

    if info.namespaced {
        items.push(PathItem {
            path: format!("{root}/{}", info.resource),
            params: vec![PRETTY],
            ops: vec![Op {
                method: "get",
                id: naming.scoped_id("list", "", "ForAllNamespaces", false),
                description: format!("list or watch objects of kind {kind}"),
                action: "list",
                gvk,
                params: LIST_PARAMS,
                body: None,
                codes: &["200"],
                payload: Payload::Definition {
                    name: list_definition(info),
                    content_types: LIST_CONTENT_TYPES,
                },
            }],
        });
    }
    items
}

/// A streaming or proxied request (`exec`, `attach`, `portforward`, `proxy`). Kubernetes tags
/// these with the options kind (`PodExecOptions`), not the owner's kind, so kubectl's lookups
/// for the owner's PATCH operation never land on them.
fn connect_op(
    naming: &Naming<'_>,
    info: &ResourceInfo,
    method: &'static str,
    suffix: &str,
    params: &'static [Param],
    path_suffix: &str,
) -> Op {
    let method_word = capitalize(method);
    let options_kind = match suffix {
        "Portforward" => "PortForward",
        other => other,
    };
    Op {
        method,
        id: naming.id("connect", &method_word, &format!("{suffix}{path_suffix}")),
        description: format!(
            "connect {} requests to {} of {}",
            method.to_uppercase(),
            suffix.to_lowercase(),
            info.kind
        ),
        action: "connect",
        gvk: Gvk {
            group: info.group,
            version: info.version,
            kind: Cow::Owned(format!("{}{options_kind}Options", info.kind)),
        },
        params,
        body: None,
        codes: &["200"],
        payload: Payload::Text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn parse(bytes: &[u8]) -> Value {
        serde_json::from_slice(bytes).expect("valid JSON")
    }

    fn v3_doc(group: &str, version: &str) -> Value {
        parse(&v3_group_version(group, version).expect("served group/version"))
    }

    fn patch_ops<'a>(doc: &'a Value, gvk: &Value) -> Vec<&'a Value> {
        doc["paths"]
            .as_object()
            .expect("paths")
            .values()
            .filter_map(|item| item.get("patch"))
            .filter(|op| &op["x-kubernetes-group-version-kind"] == gvk)
            .collect()
    }

    fn has_param(op: &Value, name: &str) -> bool {
        op["parameters"]
            .as_array()
            .is_some_and(|ps| ps.iter().any(|p| p["name"] == name))
    }

    #[test]
    fn every_kind_has_a_patch_op_with_field_validation_and_smp_in_v3() {
        for info in RESOURCES {
            let doc = v3_doc(info.group, info.version);
            let gvk = Gvk::of(info).to_value();
            let ops = patch_ops(&doc, &gvk);
            assert!(!ops.is_empty(), "no PATCH for {}", info.kind);
            // kubectl stops at the first matching PATCH it meets, in map order: all must qualify.
            for op in ops {
                for p in ["dryRun", "fieldManager", "fieldValidation", "force"] {
                    assert!(has_param(op, p), "{} PATCH lacks {p}", info.kind);
                }
                let content = op["requestBody"]["content"].as_object().expect("content");
                for t in PATCH_CONTENT_TYPES {
                    assert!(content.contains_key(*t), "{} PATCH lacks {t}", info.kind);
                }
            }
            // kubectl apply finds the kind's schema by its GVK list.
            let schema = &doc["components"]["schemas"][info.definition];
            let gvks = schema["x-kubernetes-group-version-kind"]
                .as_array()
                .expect("kind schema has GVK");
            assert!(gvks.contains(&gvk), "{} schema GVK", info.kind);
            let matching = doc["components"]["schemas"]
                .as_object()
                .expect("schemas")
                .values()
                .filter(|s| {
                    s["x-kubernetes-group-version-kind"]
                        .as_array()
                        .is_some_and(|a| a.contains(&gvk))
                })
                .count();
            assert_eq!(matching, 1, "{} GVK on exactly one schema", info.kind);
        }
    }

    #[test]
    fn every_kind_has_a_patch_op_in_v2() {
        let doc = parse(&v2());
        assert_eq!(doc["swagger"], "2.0");
        for info in RESOURCES {
            let gvk = Gvk::of(info).to_value();
            let ops = patch_ops(&doc, &gvk);
            assert!(!ops.is_empty(), "no PATCH for {}", info.kind);
            for op in ops {
                assert!(has_param(op, "fieldValidation"));
                let consumes = op["consumes"].as_array().expect("consumes");
                assert!(consumes.contains(&json!("application/strategic-merge-patch+json")));
            }
            let gvks = &doc["definitions"][info.definition]["x-kubernetes-group-version-kind"];
            assert!(gvks.as_array().is_some_and(|a| a.contains(&gvk)));
        }
    }

    fn assert_refs_resolve(doc: &Value, dialect: Dialect) {
        let mut refs = Vec::new();
        collect_refs(doc, dialect, &mut refs);
        let mut all = Vec::new();
        collect_all_refs(doc, &mut all);
        assert_eq!(
            refs.len(),
            all.len(),
            "a $ref outside {}",
            dialect.ref_prefix()
        );
        let defs = match dialect {
            Dialect::OpenApi3 => &doc["components"]["schemas"],
            Dialect::Swagger2 => &doc["definitions"],
        };
        for name in refs {
            assert!(defs.get(&name).is_some(), "unresolved $ref {name}");
        }
    }

    fn collect_all_refs(value: &Value, out: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                for (k, v) in map {
                    if k == "$ref" {
                        out.push(v.as_str().unwrap_or_default().to_string());
                    } else {
                        collect_all_refs(v, out);
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|v| collect_all_refs(v, out)),
            _ => {}
        }
    }

    #[test]
    fn every_ref_resolves_in_its_document() {
        for (group, version) in served_group_versions() {
            assert_refs_resolve(&v3_doc(group, version), Dialect::OpenApi3);
        }
        assert_refs_resolve(&parse(&v2()), Dialect::Swagger2);
    }

    #[test]
    fn index_lists_every_group_version_with_a_hash() {
        let index = v3_index();
        let paths = index["paths"].as_object().expect("paths");
        assert_eq!(paths.len(), served_group_versions().len());
        let core = paths["api/v1"]["serverRelativeURL"].as_str().expect("url");
        assert!(core.starts_with("/openapi/v3/api/v1?hash="), "{core}");
        let apps = paths["apis/apps/v1"]["serverRelativeURL"]
            .as_str()
            .expect("url");
        let (_, hash) = apps.split_once("?hash=").expect("hash");
        assert_eq!(v3_by_path("apis/apps/v1").expect("by path").1, hash);
        assert!(v3_group_version("nope", "v1").is_none());
    }

    #[test]
    fn paths_and_operations_look_like_kubernetes() {
        let core = v3_doc("", "v1");
        let pod = &core["paths"]["/api/v1/namespaces/{namespace}/pods/{name}"];
        assert_eq!(pod["patch"]["operationId"], "patchCoreV1NamespacedPod");
        assert_eq!(pod["patch"]["x-kubernetes-action"], "patch");
        assert_eq!(
            pod["patch"]["x-kubernetes-group-version-kind"],
            json!({"group": "", "kind": "Pod", "version": "v1"})
        );
        assert!(core["paths"]["/api/v1/nodes/{name}/status"]["patch"].is_object());
        assert!(core["paths"]["/api/v1/pods"]["get"].is_object());
        assert_eq!(
            core["paths"]["/api/v1/namespaces/{namespace}/pods"]["delete"]["operationId"],
            "deleteCoreV1CollectionNamespacedPod"
        );

        let apps = v3_doc("apps", "v1");
        let scale = &apps["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale"];
        assert_eq!(
            scale["patch"]["x-kubernetes-group-version-kind"],
            json!({"group": "autoscaling", "kind": "Scale", "version": "v1"})
        );
        assert!(apps["components"]["schemas"]["io.k8s.api.autoscaling.v1.Scale"].is_object());
        let rbac = v3_doc("rbac.authorization.k8s.io", "v1");
        assert_eq!(
            rbac["paths"]["/apis/rbac.authorization.k8s.io/v1/clusterroles/{name}"]["get"]["operationId"],
            "readRbacAuthorizationV1ClusterRole"
        );
    }

    #[test]
    fn special_scalars_have_types() {
        let core = v3_doc("", "v1");
        let schemas = &core["components"]["schemas"];
        let int_or_string = &schemas["io.k8s.apimachinery.pkg.util.intstr.IntOrString"];
        assert_eq!(int_or_string["x-kubernetes-int-or-string"], true);
        assert!(int_or_string["oneOf"].is_array());
        let quantity = &schemas["io.k8s.apimachinery.pkg.api.resource.Quantity"];
        assert!(quantity["oneOf"].is_array());
        assert!(quantity.get("x-kubernetes-int-or-string").is_none());
        assert_eq!(
            schemas["io.k8s.apimachinery.pkg.apis.meta.v1.Time"]["format"],
            "date-time"
        );
    }

    #[test]
    fn pod_containers_merge_by_name() {
        for (doc, path) in [
            (v3_doc("", "v1"), "/components/schemas"),
            (parse(&v2()), "/definitions"),
        ] {
            let containers = doc
                .pointer(&format!(
                    "{path}/io.k8s.api.core.v1.PodSpec/properties/containers"
                ))
                .expect("PodSpec.containers");
            assert_eq!(containers["x-kubernetes-patch-merge-key"], "name");
            assert_eq!(containers["x-kubernetes-patch-strategy"], "merge");
        }
    }

    #[test]
    fn every_patch_strategy_of_a_served_type_is_published() {
        let doc = parse(&v2());
        for (ty, field, strategy, key) in wasmkube_api::patch_meta::PATCH_STRATEGIES {
            // The table also covers kinds this server does not serve.
            let Some(schema) = doc["definitions"].get(*ty) else {
                continue;
            };
            let property = &schema["properties"][*field];
            assert_eq!(
                property["x-kubernetes-patch-strategy"], *strategy,
                "{ty}.{field}"
            );
            assert_eq!(
                property
                    .get("x-kubernetes-patch-merge-key")
                    .and_then(Value::as_str),
                *key,
                "{ty}.{field}"
            );
        }
    }

    #[test]
    fn generation_is_fast_enough() {
        let start = Instant::now();
        let v3 = build_v3();
        let v3_time = start.elapsed();
        let start = Instant::now();
        let v2 = to_json(&build_v2());
        let v2_time = start.elapsed();
        let v3_bytes: usize = v3.values().map(|d| d.json.len()).sum();
        println!(
            "openapi: v3 {} documents, {v3_bytes} bytes in {v3_time:?}; v2 {} bytes in {v2_time:?}",
            v3.len(),
            v2.len()
        );
        // Generous: two shared cores and a debug build; the real cost is printed above.
        assert!((v3_time + v2_time).as_secs() < 10);
    }
}
