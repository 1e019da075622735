//! CRUD on resources: the handlers behind every `/api/v1/...` and `/apis/G/V/...` path.
//!
//! Every write follows one path: decode → type-check → default → server-owned metadata →
//! validate → admission → compare-and-swap in the store. Reads inject resourceVersion from the
//! store's revision.

use std::sync::Arc;

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use wasmkube_api::registry::{self, ResourceInfo, Subresource};
use wasmkube_api::strategy::GarbageCollectionPolicy;
use wasmkube_store::{Error as StoreError, KeyValue};

use crate::error::{ApiError, ApiResult};
use crate::fields;
use crate::objects::{self, decode};
use crate::request::{self, Accept, BodyFormat, FieldValidation, Query, ResourcePath};
use crate::state::ApiState;
use crate::{table, watch};

/// How many times an unconditional write (no resourceVersion given) is retried when another
/// writer got in between our read and our compare-and-swap.
const UNCONDITIONAL_RETRIES: usize = 16;

/// How many names a create with `generateName` tries before giving up on clashes
/// (Kubernetes' `maxNameGenerationCreateAttempts`).
const MAX_NAME_GENERATION_ATTEMPTS: usize = 8;

pub async fn handle(
    state: Arc<ApiState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match dispatch(&state, &method, &uri, &headers, body).await {
        Ok(resp) => resp,
        Err(e) => e.into_response(),
    }
}

async fn dispatch(
    state: &Arc<ApiState>,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let rp = request::parse_path(uri.path())?;
    let query = Query::parse(uri.query());
    let accept = request::accept(headers)?;
    let ctx = Ctx {
        state,
        rp: &rp,
        query: &query,
        headers,
        accept,
    };
    if rp.watch_prefix {
        if *method != Method::GET {
            return Err(ApiError::method_not_allowed("watch paths only accept GET"));
        }
        return watch::serve(ctx.state.clone(), rp.clone(), query.clone(), accept).await;
    }
    match (&rp.name, rp.subresource) {
        (None, _) => match *method {
            Method::GET if query.flag("watch") => {
                watch::serve(state.clone(), rp.clone(), query.clone(), accept).await
            }
            Method::GET => ctx.list().await,
            Method::POST => ctx.create(body).await,
            Method::DELETE if ctx.info().verbs().contains(&"deletecollection") => {
                ctx.delete_collection(body).await
            }
            _ => Err(not_allowed(method)),
        },
        (Some(name), None) => match *method {
            Method::GET if query.flag("watch") => {
                watch::serve(state.clone(), rp.clone(), query.clone(), accept).await
            }
            Method::GET => ctx.get(name).await,
            Method::PUT => ctx.update(name, body, Part::Main).await,
            Method::PATCH => ctx.patch(name, body, Part::Main).await,
            Method::DELETE => ctx.delete(name, body).await,
            _ => Err(not_allowed(method)),
        },
        (Some(name), Some(Subresource::Status)) => match *method {
            Method::GET => ctx.get(name).await,
            Method::PUT => ctx.update(name, body, Part::Status).await,
            Method::PATCH => ctx.patch(name, body, Part::Status).await,
            _ => Err(not_allowed(method)),
        },
        (Some(name), Some(Subresource::Scale)) => match *method {
            Method::GET => ctx.get_scale(name).await,
            Method::PUT | Method::PATCH => ctx.write_scale(name, body, method).await,
            _ => Err(not_allowed(method)),
        },
        (Some(name), Some(Subresource::Binding)) => match *method {
            Method::POST => ctx.bind(name, body).await,
            _ => Err(not_allowed(method)),
        },
        (Some(name), Some(Subresource::Token)) => match *method {
            Method::POST => ctx.token_request(name, body).await,
            _ => Err(not_allowed(method)),
        },
        (Some(name), Some(sub)) => {
            if let Some(handler) = &state.subresource_handler {
                return handler
                    .handle(
                        rp.clone(),
                        name.clone(),
                        sub,
                        method.clone(),
                        uri.clone(),
                        headers.clone(),
                        body,
                    )
                    .await;
            }
            Err(ApiError::new(
                503,
                "ServiceUnavailable",
                format!(
                    "the {} subresource is not available on this server",
                    sub.name()
                ),
            ))
        }
    }
}

/// A request that asks to upgrade the connection: `pods/exec` and `pods/portforward`
/// WebSockets, handed whole to the node subresource handler.
pub async fn handle_upgrade(state: Arc<ApiState>, req: axum::extract::Request) -> Response {
    let result = async {
        let rp = request::parse_path(req.uri().path())?;
        let (Some(name), Some(sub)) = (rp.name.clone(), rp.subresource) else {
            return Err(ApiError::bad_request(
                "only the exec and portforward subresources of pods take a connection upgrade",
            ));
        };
        let Some(handler) = &state.subresource_handler else {
            return Err(ApiError::new(
                503,
                "ServiceUnavailable",
                format!(
                    "the {} subresource is not available on this server",
                    sub.name()
                ),
            ));
        };
        handler.upgrade(rp, name, sub, req).await
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

/// Sets the PodScheduled condition True (replacing an earlier Unschedulable).
fn set_pod_scheduled(pod: &mut Value) {
    let now = jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let cond = json!({"type": "PodScheduled", "status": "True", "lastProbeTime": null,
        "lastTransitionTime": now});
    if !pod.get("status").is_some_and(Value::is_object) {
        pod["status"] = json!({});
    }
    let status = &mut pod["status"];
    if !status.get("conditions").is_some_and(Value::is_array) {
        status["conditions"] = json!([]);
    }
    if let Some(list) = status["conditions"].as_array_mut() {
        list.retain(|c| c.get("type").and_then(Value::as_str) != Some("PodScheduled"));
        list.push(cond);
    }
}

fn not_allowed(method: &Method) -> ApiError {
    ApiError::method_not_allowed(format!(
        "the server does not allow this method ({method}) on the requested resource"
    ))
}

/// Which part of an object a write may change: the main resource ignores status, the status
/// subresource ignores everything else; a binding writes both (spec.nodeName and the
/// PodScheduled condition).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    Main,
    Status,
    Whole,
}

pub struct Ctx<'a> {
    pub state: &'a Arc<ApiState>,
    pub rp: &'a ResourcePath,
    pub query: &'a Query,
    pub headers: &'a HeaderMap,
    pub accept: Accept,
}

impl Ctx<'_> {
    fn info(&self) -> &'static ResourceInfo {
        self.rp.info
    }

    fn ns(&self) -> Option<&str> {
        if self.rp.info.namespaced {
            self.rp.namespace.as_deref()
        } else {
            None
        }
    }

    fn key(&self, name: &str) -> String {
        self.info().key(self.ns(), name)
    }

    fn respond(&self, code: StatusCode, obj: Value) -> ApiResult<Response> {
        respond_object(self.info(), self.accept, code, obj)
    }

    async fn load(&self, name: &str) -> ApiResult<KeyValue> {
        self.state
            .store
            .get(&self.key(name))
            .await?
            .ok_or_else(|| ApiError::not_found(self.info(), name))
    }

    async fn get(&self, name: &str) -> ApiResult<Response> {
        let kv = self.load(name).await?;
        self.respond(StatusCode::OK, decode(&kv)?)
    }

    async fn list(&self) -> ApiResult<Response> {
        let info = self.info();
        let label_sel = parse_label_selector(self.query)?;
        let field_sel = fields::FieldFilter::parse(info, self.query.get("fieldSelector"))?;
        let limit = match self.query.int("limit")? {
            Some(l) if l > 0 => Some(l as usize),
            _ => None,
        };
        let prefix = info.key_prefix(self.ns());
        let (mut start_after, token_rev) = match self.query.get("continue") {
            Some(token) => {
                let (key, rev) = decode_continue(token, &prefix)?;
                (Some(key), Some(rev))
            }
            None => (None, None),
        };
        let mut items = Vec::new();
        let mut revision = None;
        let mut more_after: Option<String> = None;
        // Selectors filter after reading, so keep reading pages until `limit` items matched.
        loop {
            let page_size = limit.map(|l| (l - items.len()).max(64));
            // Every page of a paged list shows the store as the first page saw it.
            // Revision 0 is the token of an expired list's remainder: read it as it is now.
            let read = match token_rev.filter(|rev| *rev > 0) {
                Some(rev) => {
                    self.state
                        .store
                        .list_at(&prefix, start_after.as_deref(), page_size, rev)
                        .await
                }
                None => {
                    self.state
                        .store
                        .list(&prefix, start_after.as_deref(), page_size)
                        .await
                }
            };
            let page = match read {
                Ok(page) => page,
                Err(StoreError::Compacted { .. }) => {
                    return Err(continue_expired(start_after.as_deref(), &prefix));
                }
                Err(other) => return Err(other.into()),
            };
            revision.get_or_insert(page.revision);
            let mut last_key = None;
            for kv in &page.items {
                last_key = Some(kv.key.clone());
                let obj = decode(kv)?;
                if label_sel.matches(&labels_of(&obj)) && field_sel.matches(&obj) {
                    items.push(obj);
                    if limit.is_some_and(|l| items.len() >= l) {
                        break;
                    }
                }
            }
            let exhausted_page = last_key.as_ref() == page.items.last().map(|kv| &kv.key);
            if limit.is_some_and(|l| items.len() >= l) {
                if !exhausted_page || page.more {
                    more_after = last_key;
                }
                break;
            }
            if !page.more || last_key.is_none() {
                break;
            }
            start_after = last_key;
        }
        let revision = token_rev.filter(|rev| *rev > 0).or(revision).unwrap_or(0);
        let mut list_meta = json!({"resourceVersion": revision.to_string()});
        if let Some(after) = more_after {
            list_meta["continue"] = Value::String(encode_continue(&after, &prefix, revision));
        }
        if self.accept == Accept::Table {
            let t = table::table_of(info, &items, list_meta, self.query.get("includeObject"));
            return Ok(json_response(StatusCode::OK, &t));
        }
        let list = json!({
            "kind": format!("{}List", info.kind),
            "apiVersion": info.api_version(),
            "metadata": list_meta,
            "items": items,
        });
        Ok(encode_response(self.accept, StatusCode::OK, &list))
    }

    /// Decodes a request body of JSON or YAML into an object.
    fn body_object(&self, body: &Bytes) -> ApiResult<Value> {
        let format = request::content_type(self.headers)?;
        parse_body(format, body)
    }

    /// Type-checks an incoming object against its k8s-openapi type and drops (or, under
    /// `fieldValidation=Strict`, refuses) unknown fields.
    fn typed(&self, obj: &Value, body: &Bytes) -> ApiResult<(Value, Vec<String>)> {
        let info = self.info();
        check_type_meta(info, obj)?;
        let typed = (info.round_trip)(obj).map_err(|e| {
            ApiError::bad_request(format!(
                "{} in version \"{}\" cannot be handled as a {}: {e}",
                info.kind, info.version, info.kind
            ))
        })?;
        let mut unknown = Vec::new();
        objects::unknown_fields(obj, &typed, "", &mut unknown);
        let validation = self.query.field_validation()?;
        let duplicates = match validation {
            FieldValidation::Ignore => Vec::new(),
            _ => objects::duplicate_fields(body),
        };
        let problems: Vec<String> = unknown
            .iter()
            .map(|f| format!("unknown field \"{f}\""))
            .chain(
                duplicates
                    .iter()
                    .map(|f| format!("duplicate field \"{f}\"")),
            )
            .collect();
        let warnings = match validation {
            FieldValidation::Strict if !problems.is_empty() => {
                return Err(ApiError::bad_request(format!(
                    "strict decoding error: {}",
                    problems.join(", ")
                )));
            }
            FieldValidation::Warn => problems,
            _ => Vec::new(),
        };
        let mut typed = typed;
        objects::set_type_meta(info, &mut typed);
        Ok((typed, warnings))
    }

    async fn create(&self, body: Bytes) -> ApiResult<Response> {
        let info = self.info();
        let dry_run = self.query.dry_run()?;
        let input = self.body_object(&body)?;
        let (mut obj, warnings) = self.typed(&input, &body)?;
        // The namespace in the URL wins; a different one in the body is a client mistake.
        if info.namespaced {
            let url_ns = self
                .rp
                .namespace
                .clone()
                .ok_or_else(|| ApiError::method_not_allowed(format!("the server does not allow this method on the requested resource: {} must be created in a namespace", info.resource)))?;
            match objects::meta_str(&obj, "namespace") {
                Some(ns) if !ns.is_empty() && ns != url_ns => {
                    return Err(ApiError::bad_request(
                        "the namespace of the provided object does not match the namespace sent on the request",
                    ));
                }
                _ => {}
            }
            if let Some(meta) = objects::metadata_mut(&mut obj) {
                meta.insert("namespace".into(), Value::String(url_ns));
            }
        } else if let Some(meta) = objects::metadata_mut(&mut obj) {
            meta.remove("namespace");
        }
        let given = objects::name_of(&obj).to_string();
        let generate = objects::meta_str(&obj, "generateName")
            .unwrap_or("")
            .to_string();
        if given.is_empty() && generate.is_empty() {
            return Err(ApiError::invalid(
                info,
                "",
                &[(
                    "metadata.name".into(),
                    "Required value: name or generateName is required".into(),
                )],
            ));
        }
        // A generated name may clash with an existing object: try again with a fresh suffix,
        // as Kubernetes does (its RetryGenerateName), a bounded number of times.
        let attempts = if given.is_empty() {
            MAX_NAME_GENERATION_ATTEMPTS
        } else {
            1
        };
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut obj = obj.clone();
            let name = if given.is_empty() {
                format!("{generate}{}", (self.state.admission.name_suffix)())
            } else {
                given.clone()
            };
            if let Some(meta) = objects::metadata_mut(&mut obj) {
                meta.insert("name".into(), Value::String(name.clone()));
            }
            objects::stamp_new(info, &mut obj);
            if info.has_status()
                && let Some(map) = obj.as_object_mut()
            {
                map.remove("status");
            }
            wasmkube_api::defaults::apply_defaults(info, &mut obj);
            wasmkube_api::strategy::prepare_for_create(info, &mut obj);
            self.state.admission.on_create(info, &mut obj);
            let mut errors = wasmkube_api::validate_kinds::validate(info, &obj, None);
            errors.extend(wasmkube_api::strategy::validate_create(info, &obj));
            if !errors.is_empty() {
                return Err(ApiError::invalid(info, &name, &errors));
            }
            if attempt == 1 {
                self.require_namespace().await?;
            }
            let key = self.key(&name);
            // Reaching the end of this block means the name is taken.
            if dry_run {
                if self.state.store.get(&key).await?.is_none() {
                    // Allocated only to check the request, and given back at once.
                    if let Some(r) = self.allocate_on_create(&mut obj).await? {
                        r.release().await;
                    }
                    return self.respond_with_warnings(StatusCode::CREATED, obj, &warnings);
                }
            } else {
                let reservation = self.allocate_on_create(&mut obj).await?;
                let bytes = objects::encode(&obj)?;
                let created = self.state.store.create(&key, bytes.into()).await;
                match (created, reservation) {
                    (Ok(kv), reservation) => {
                        if let Some(r) = reservation {
                            r.commit().await;
                        }
                        objects::set_resource_version(&mut obj, kv.mod_revision);
                        return self.respond_with_warnings(StatusCode::CREATED, obj, &warnings);
                    }
                    // The name is taken: the addresses go back before the next attempt.
                    (Err(StoreError::AlreadyExists { .. }), reservation) => {
                        if let Some(r) = reservation {
                            r.release().await;
                        }
                    }
                    (Err(e), _) => return Err(e.into()),
                }
            }
            if attempt >= attempts {
                return Err(ApiError::already_exists(info, &name));
            }
        }
    }

    /// Service addresses for a new object (see [`crate::services`]).
    async fn allocate_on_create(
        &self,
        obj: &mut Value,
    ) -> ApiResult<Option<crate::services::Reservation>> {
        if !is_service(self.info()) {
            return Ok(None);
        }
        let services = &self.state.admission.services;
        let r = services
            .on_create(&self.state.store, self.info(), obj)
            .await?;
        Ok(Some(r))
    }

    /// An object left the store: give back what it held.
    async fn removed(&self, obj: &Value) -> ApiResult<()> {
        if is_service(self.info()) {
            let services = &self.state.admission.services;
            services.on_removed(&self.state.store, obj).await?;
        }
        Ok(())
    }

    fn respond_with_warnings(
        &self,
        code: StatusCode,
        obj: Value,
        warnings: &[String],
    ) -> ApiResult<Response> {
        let mut resp = self.respond(code, obj)?;
        // Each warning is already a whole message (`unknown field "x"`); quotes are escaped
        // inside the RFC 7234 quoted string.
        for w in warnings {
            let text = format!("299 - \"{}\"", w.replace('"', "\\\""));
            if let Ok(v) = text.parse() {
                resp.headers_mut().append("warning", v);
            }
        }
        Ok(resp)
    }

    /// Namespaced objects may only be created in a namespace that exists and is not going away.
    async fn require_namespace(&self) -> ApiResult<()> {
        let Some(ns) = self.ns() else { return Ok(()) };
        let ns_info = namespaces();
        let kv = self
            .state
            .store
            .get(&ns_info.key(None, ns))
            .await?
            .ok_or_else(|| ApiError::not_found(ns_info, ns))?;
        let ns_obj = decode(&kv)?;
        if objects::meta_str(&ns_obj, "deletionTimestamp").is_some() {
            return Err(ApiError::forbidden(format!(
                "{} \"{}\" is forbidden: unable to create new content in namespace {ns} because it is being terminated",
                self.info().group_resource(),
                ""
            )));
        }
        Ok(())
    }

    async fn update(&self, name: &str, body: Bytes, part: Part) -> ApiResult<Response> {
        let input = self.body_object(&body)?;
        let body_name = objects::name_of(&input);
        if !body_name.is_empty() && body_name != name {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({name})"
            )));
        }
        let (obj, warnings) = self.typed(&input, &body)?;
        let expected = objects::claimed_resource_version(&obj)?;
        let info = self.info();
        // A uid in the body is a precondition, as in Kubernetes (the object it names may have
        // been deleted and recreated under the same name meanwhile).
        let want_uid = objects::meta_str(&obj, "uid")
            .filter(|u| !u.is_empty())
            .map(str::to_string);
        let result = self
            .write_existing(
                name,
                expected,
                |current| {
                    if let Some(uid) = &want_uid {
                        check_uid_precondition(info, name, uid, current)?;
                    }
                    Ok(obj.clone())
                },
                part,
            )
            .await?;
        self.respond_with_warnings(StatusCode::OK, result, &warnings)
    }

    async fn patch(&self, name: &str, body: Bytes, part: Part) -> ApiResult<Response> {
        let format = request::content_type(self.headers)?;
        let info = self.info();
        if format == BodyFormat::ApplyPatch {
            return Err(ApiError::unsupported_media_type(
                "application/apply-patch+yaml (server-side apply is not supported yet; use client-side kubectl apply)",
            ));
        }
        let patch: Value = match format {
            BodyFormat::Yaml => parse_body(BodyFormat::Yaml, &body)?,
            _ => serde_json::from_slice(&body)
                .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?,
        };
        let expected = if let Some(rv) = patch
            .get("metadata")
            .and_then(|m| m.get("resourceVersion"))
            .and_then(Value::as_str)
        {
            Some(rv.parse::<u64>().map_err(|_| {
                ApiError::bad_request(format!("metadata.resourceVersion: Invalid value: {rv:?}"))
            })?)
        } else {
            None
        };
        let strict = self.query.field_validation()? == FieldValidation::Strict;
        let result = self
            .write_existing(
                name,
                expected,
                |current| {
                    let mut base = current.clone();
                    if let Some(meta) = objects::metadata_mut(&mut base) {
                        meta.remove("resourceVersion");
                    }
                    let patched = crate::patching::apply(format, info, &base, &patch)?;
                    // Kubernetes validates the patched object's metadata against the stored
                    // one: a patch cannot change the uid (nor does it make it a precondition).
                    let current_uid = objects::meta_str(current, "uid").unwrap_or("");
                    if let Some(uid) = objects::meta_str(&patched, "uid")
                        && !uid.is_empty()
                        && uid != current_uid
                    {
                        return Err(ApiError::invalid(
                            info,
                            name,
                            &[(
                                "metadata.uid".into(),
                                format!("Invalid value: {uid:?}: field is immutable"),
                            )],
                        ));
                    }
                    let typed = (info.round_trip)(&patched).map_err(|e| {
                        ApiError::bad_request(format!(
                            "{} in version \"{}\" cannot be handled as a {}: {e}",
                            info.kind, info.version, info.kind
                        ))
                    })?;
                    if strict {
                        let mut unknown = Vec::new();
                        objects::unknown_fields(&patched, &typed, "", &mut unknown);
                        if !unknown.is_empty() {
                            let msgs: Vec<String> = unknown
                                .iter()
                                .map(|f| format!("unknown field \"{f}\""))
                                .collect();
                            return Err(ApiError::bad_request(format!(
                                "strict decoding error: {}",
                                msgs.join(", ")
                            )));
                        }
                    }
                    let mut typed = typed;
                    objects::set_type_meta(info, &mut typed);
                    Ok(typed)
                },
                part,
            )
            .await?;
        self.respond(StatusCode::OK, result)
    }

    /// The read-modify-write loop every update, patch and status write shares.
    async fn write_existing(
        &self,
        name: &str,
        expected: Option<u64>,
        build: impl Fn(&Value) -> ApiResult<Value>,
        part: Part,
    ) -> ApiResult<Value> {
        let info = self.info();
        let dry_run = self.query.dry_run()?;
        let key = self.key(name);
        for _ in 0..UNCONDITIONAL_RETRIES {
            let kv = self.load(name).await?;
            if let Some(want) = expected
                && want != kv.mod_revision
            {
                return Err(ApiError::conflict(info, name));
            }
            let current = decode(&kv)?;
            let mut next = build(&current)?;
            merge_parts(info, part, &current, &mut next);
            objects::carry_metadata(info, &current, &mut next);
            let service_spec = is_service(info) && part != Part::Status;
            if service_spec {
                crate::services::prepare_update(&current, &mut next);
            }
            wasmkube_api::defaults::apply_defaults(info, &mut next);
            let errors = wasmkube_api::validate_kinds::validate(info, &next, Some(&current));
            if !errors.is_empty() {
                return Err(ApiError::invalid(info, name, &errors));
            }
            // Dropped (giving back what it took) on every path that does not store `next`.
            let reservation = if service_spec {
                let services = &self.state.admission.services;
                Some(
                    services
                        .on_update(&self.state.store, info, &current, &mut next)
                        .await?,
                )
            } else {
                None
            };
            let mut unchanged_check = current.clone();
            if let Some(meta) = objects::metadata_mut(&mut unchanged_check) {
                meta.remove("resourceVersion");
            }
            let mut next_cmp = next.clone();
            if let Some(meta) = objects::metadata_mut(&mut next_cmp) {
                meta.remove("resourceVersion");
            }
            if unchanged_check == next_cmp {
                // A write that changes nothing keeps the resourceVersion, as Kubernetes does.
                return Ok(current);
            }
            let finishing = objects::meta_str(&next, "deletionTimestamp").is_some()
                && finalizers(&next).is_empty()
                && !spec_finalizers_pending(info, &next);
            if dry_run {
                objects::set_resource_version(&mut next, kv.mod_revision);
                return Ok(next);
            }
            if finishing {
                // The last finalizer is gone from an object being deleted: now it really goes.
                match self.state.store.delete(&key, Some(kv.mod_revision)).await {
                    Ok(kv) => {
                        if let Some(r) = reservation {
                            r.release().await;
                        }
                        self.removed(&current).await?;
                        objects::set_resource_version(&mut next, kv.mod_revision);
                        return Ok(next);
                    }
                    Err(StoreError::Conflict { .. }) if expected.is_none() => continue,
                    Err(StoreError::Conflict { .. }) => return Err(ApiError::conflict(info, name)),
                    Err(StoreError::NotFound { .. }) => {
                        return Err(ApiError::not_found(info, name));
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            let bytes = objects::encode(&next)?;
            match self
                .state
                .store
                .update(&key, kv.mod_revision, bytes.into())
                .await
            {
                Ok(kv) => {
                    if let Some(r) = reservation {
                        r.commit().await;
                    }
                    objects::set_resource_version(&mut next, kv.mod_revision);
                    return Ok(next);
                }
                Err(StoreError::Conflict { .. }) if expected.is_none() => continue,
                Err(StoreError::Conflict { .. }) => return Err(ApiError::conflict(info, name)),
                Err(StoreError::NotFound { .. }) => return Err(ApiError::not_found(info, name)),
                Err(e) => return Err(e.into()),
            }
        }
        Err(ApiError::conflict(info, name))
    }

    async fn delete(&self, name: &str, body: Bytes) -> ApiResult<Response> {
        let opts = DeleteOptions::parse(self.query, self.headers, &body)?;
        let (code, obj) = self.delete_one(name, &opts).await?;
        let mut resp = self.respond(code, obj)?;
        if opts.propagation.is_none()
            && wasmkube_api::strategy::default_garbage_collection_policy(self.info())
                == GarbageCollectionPolicy::OrphanDependents
            && let Ok(v) =
                format!("299 - \"{}\"", wasmkube_api::strategy::JOB_ORPHAN_WARNING).parse()
        {
            resp.headers_mut().append("warning", v);
        }
        Ok(resp)
    }

    async fn delete_one(&self, name: &str, opts: &DeleteOptions) -> ApiResult<(StatusCode, Value)> {
        let info = self.info();
        if info.group.is_empty()
            && info.resource == "namespaces"
            && wasmkube_api::registry::PROTECTED_NAMESPACES.contains(&name)
        {
            // Kubernetes' NamespaceLifecycle answer, word for word.
            return Err(ApiError::forbidden(format!(
                "namespaces \"{name}\" is forbidden: this namespace may not be deleted"
            ))
            .with_details(json!({"name": name, "kind": "namespaces"})));
        }
        let key = self.key(name);
        for _ in 0..UNCONDITIONAL_RETRIES {
            let kv = self.load(name).await?;
            let current = decode(&kv)?;
            if let Some(uid) = &opts.precondition_uid {
                let actual = objects::meta_str(&current, "uid").unwrap_or("");
                if uid != actual {
                    return Err(ApiError::conflict_message(
                        info,
                        name,
                        &format!(
                            "Precondition failed: UID in precondition: {uid}, UID in object meta: {actual}"
                        ),
                    ));
                }
            }
            if let Some(rv) = &opts.precondition_rv
                && *rv != kv.mod_revision.to_string()
            {
                return Err(ApiError::conflict_message(
                    info,
                    name,
                    &format!(
                        "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in meta: {}",
                        kv.mod_revision
                    ),
                ));
            }
            let mut next = current.clone();
            let mut fins = finalizers(&current);
            let extra = match opts.propagation.as_deref() {
                Some("Foreground") => Some("foregroundDeletion"),
                Some("Orphan") => Some("orphan"),
                Some(_) => None,
                // No policy given: a finalizer already on the object decides, else the
                // kind's default (Kubernetes' shouldOrphanDependents).
                None if fins
                    .iter()
                    .any(|f| f == "orphan" || f == "foregroundDeletion") =>
                {
                    None
                }
                None => match wasmkube_api::strategy::default_garbage_collection_policy(info) {
                    GarbageCollectionPolicy::OrphanDependents => Some("orphan"),
                    GarbageCollectionPolicy::DeleteDependents => None,
                },
            };
            if let Some(f) = extra
                && objects::meta_str(&current, "deletionTimestamp").is_none()
                && !fins.iter().any(|x| x == f)
            {
                fins.push(f.to_string());
            }
            let graceful = self
                .state
                .admission
                .grace_period(info, &current, opts.grace_period);
            let needs_wait = !fins.is_empty() || graceful.is_some();
            if !needs_wait {
                if opts.dry_run {
                    return Ok((StatusCode::OK, deleted_response(info, &current)));
                }
                match self.state.store.delete(&key, Some(kv.mod_revision)).await {
                    Ok(kv) => {
                        self.removed(&current).await?;
                        let mut gone = current;
                        objects::set_resource_version(&mut gone, kv.mod_revision);
                        return Ok((StatusCode::OK, deleted_response(info, &gone)));
                    }
                    Err(StoreError::Conflict { .. }) => continue,
                    Err(StoreError::NotFound { .. }) => {
                        return Err(ApiError::not_found(info, name));
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            // Deletion has to wait for finalizers or a graceful stop: mark it and return.
            if objects::meta_str(&current, "deletionTimestamp").is_some() && extra.is_none() {
                if let Some(grace) = graceful {
                    // A shorter grace period on a second delete brings the deadline forward.
                    let old = current
                        .pointer("/metadata/deletionGracePeriodSeconds")
                        .and_then(Value::as_i64)
                        .unwrap_or(i64::MAX);
                    if grace >= old {
                        return Ok((StatusCode::OK, current));
                    }
                } else {
                    return Ok((StatusCode::OK, current));
                }
            }
            let grace = graceful.unwrap_or(0);
            if let Some(meta) = objects::metadata_mut(&mut next) {
                let when = jiff::Timestamp::now()
                    .checked_add(jiff::SignedDuration::from_secs(grace))
                    .unwrap_or_else(|_| jiff::Timestamp::now());
                meta.insert(
                    "deletionTimestamp".into(),
                    Value::String(objects::format_time(when)),
                );
                meta.insert("deletionGracePeriodSeconds".into(), json!(grace));
                meta.insert("finalizers".into(), json!(fins));
                if objects::tracks_generation(info) {
                    let g = meta.get("generation").and_then(Value::as_i64).unwrap_or(1);
                    meta.insert("generation".into(), json!(g + 1));
                }
            }
            self.state.admission.on_delete_mark(info, &mut next);
            if opts.dry_run {
                return Ok((StatusCode::OK, next));
            }
            let bytes = objects::encode(&next)?;
            match self
                .state
                .store
                .update(&key, kv.mod_revision, bytes.into())
                .await
            {
                Ok(kv) => {
                    objects::set_resource_version(&mut next, kv.mod_revision);
                    return Ok((StatusCode::OK, next));
                }
                Err(StoreError::Conflict { .. }) => continue,
                Err(StoreError::NotFound { .. }) => return Err(ApiError::not_found(info, name)),
                Err(e) => return Err(e.into()),
            }
        }
        Err(ApiError::conflict(info, name))
    }

    async fn delete_collection(&self, body: Bytes) -> ApiResult<Response> {
        let info = self.info();
        let opts = DeleteOptions::parse(self.query, self.headers, &body)?;
        let label_sel = parse_label_selector(self.query)?;
        let field_sel = fields::FieldFilter::parse(info, self.query.get("fieldSelector"))?;
        let page = self
            .state
            .store
            .list(&info.key_prefix(self.ns()), None, None)
            .await?;
        let mut deleted = Vec::new();
        for kv in &page.items {
            let obj = decode(kv)?;
            if !(label_sel.matches(&labels_of(&obj)) && field_sel.matches(&obj)) {
                continue;
            }
            let name = objects::name_of(&obj).to_string();
            let ctx = Ctx {
                state: self.state,
                rp: &ResourcePath {
                    namespace: objects::meta_str(&obj, "namespace").map(str::to_string),
                    ..self.rp.clone()
                },
                query: self.query,
                headers: self.headers,
                accept: Accept::Json,
            };
            match ctx.delete_one(&name, &opts).await {
                Ok((_, o)) => deleted.push(o),
                Err(e) if e.code == 404 => {}
                Err(e) => return Err(e),
            }
        }
        let list = json!({
            "kind": format!("{}List", info.kind),
            "apiVersion": info.api_version(),
            "metadata": {"resourceVersion": page.revision.to_string()},
            "items": deleted,
        });
        Ok(json_response(StatusCode::OK, &list))
    }

    async fn get_scale(&self, name: &str) -> ApiResult<Response> {
        let kv = self.load(name).await?;
        let obj = decode(&kv)?;
        Ok(json_response(StatusCode::OK, &scale_of(&obj)))
    }

    async fn write_scale(&self, name: &str, body: Bytes, method: &Method) -> ApiResult<Response> {
        let format = request::content_type(self.headers)?;
        let patch_or_scale = parse_body(
            if *method == Method::PUT {
                format
            } else {
                BodyFormat::Json
            },
            &body,
        )?;
        let info = self.info();
        let expected = if *method == Method::PUT {
            objects::claimed_resource_version(&patch_or_scale)?
        } else {
            None
        };
        let is_put = *method == Method::PUT;
        let result = self
            .write_existing(
                name,
                expected,
                |current| {
                    if is_put
                        && let Some(uid) = objects::meta_str(&patch_or_scale, "uid")
                        && !uid.is_empty()
                    {
                        check_uid_precondition(info, name, uid, current)?;
                    }
                    let scale = scale_of(current);
                    let new_scale = if is_put {
                        patch_or_scale.clone()
                    } else {
                        crate::patching::apply(format, scale_info(), &scale, &patch_or_scale)?
                    };
                    let replicas = new_scale
                        .pointer("/spec/replicas")
                        .and_then(Value::as_i64)
                        .unwrap_or(0);
                    if replicas < 0 {
                        return Err(ApiError::invalid(
                            scale_info(),
                            name,
                            &[(
                                "spec.replicas".into(),
                                format!(
                                    "Invalid value: {replicas}: must be greater than or equal to 0"
                                ),
                            )],
                        ));
                    }
                    let mut next = current.clone();
                    next["spec"]["replicas"] = json!(replicas);
                    Ok(next)
                },
                Part::Main,
            )
            .await?;
        let _ = info;
        Ok(json_response(StatusCode::OK, &scale_of(&result)))
    }

    /// `pods/NAME/binding`: the scheduler's way to set spec.nodeName exactly once.
    /// `serviceaccounts/NAME/token`: a TokenRequest answered with a signed token for the
    /// account (what `kubectl create token NAME` asks for).
    async fn token_request(&self, name: &str, body: Bytes) -> ApiResult<Response> {
        let Some(issuer) = &self.state.token_issuer else {
            return Err(ApiError::new(
                503,
                "ServiceUnavailable",
                "this server issues no ServiceAccount tokens (it runs without authentication)",
            ));
        };
        let request = self.body_object(&body)?;
        let invalid = |field: &str, msg: String| {
            let mut e = ApiError::invalid(self.info(), name, &[(field.to_string(), msg)]);
            // The object in question is the TokenRequest, as Kubernetes reports it.
            e.message = e.message.replacen("ServiceAccount", "TokenRequest", 1);
            e
        };
        let seconds = match request.pointer("/spec/expirationSeconds") {
            None | Some(Value::Null) => crate::tokens::DEFAULT_EXPIRATION_SECONDS,
            Some(v) => match v.as_i64() {
                Some(s) if s >= crate::tokens::MIN_EXPIRATION_SECONDS => {
                    s.min(crate::tokens::MAX_EXPIRATION_SECONDS)
                }
                Some(_) => {
                    return Err(invalid(
                        "spec.expirationSeconds",
                        format!(
                            "Invalid value: {v}: may not specify a duration less than 10 minutes"
                        ),
                    ));
                }
                None => {
                    return Err(invalid(
                        "spec.expirationSeconds",
                        format!("Invalid value: {v}: must be an integer"),
                    ));
                }
            },
        };
        let audiences: Vec<String> = match request.pointer("/spec/audiences") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(a)) => a
                .iter()
                .map(|x| {
                    x.as_str().map(str::to_string).ok_or_else(|| {
                        invalid(
                            "spec.audiences",
                            format!("Invalid value: {x}: must be a string"),
                        )
                    })
                })
                .collect::<ApiResult<_>>()?,
            Some(v) => {
                return Err(invalid(
                    "spec.audiences",
                    format!("Invalid value: {v}: must be a list of strings"),
                ));
            }
        };
        if request
            .pointer("/spec/boundObjectRef")
            .is_some_and(|b| !b.is_null())
        {
            return Err(invalid(
                "spec.boundObjectRef",
                "Unsupported value: tokens bound to objects are not issued by this server"
                    .to_string(),
            ));
        }
        let account = decode(&self.load(name).await?)?;
        let uid = objects::meta_str(&account, "uid").unwrap_or_default();
        let namespace = self.ns().unwrap_or_default();
        let now = jiff::Timestamp::now().as_second();
        let claims = crate::tokens::Claims::new(namespace, name, uid, audiences, now, seconds);
        let token = issuer.issue(&claims);
        let expires = jiff::Timestamp::from_second(claims.exp)
            .map(objects::format_time)
            .unwrap_or_default();
        let answer = json!({
            "kind": "TokenRequest",
            "apiVersion": "authentication.k8s.io/v1",
            "metadata": {"name": name, "namespace": namespace, "creationTimestamp": null},
            "spec": {"audiences": claims.aud, "expirationSeconds": seconds, "boundObjectRef": null},
            "status": {"token": token, "expirationTimestamp": expires},
        });
        Ok(json_response(StatusCode::CREATED, &answer))
    }

    async fn bind(&self, name: &str, body: Bytes) -> ApiResult<Response> {
        let binding = self.body_object(&body)?;
        let node = binding
            .pointer("/target/name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        if node.is_empty() {
            return Err(ApiError::invalid(
                self.info(),
                name,
                &[("target.name".into(), "Required value".into())],
            ));
        }
        let info = self.info();
        let want_uid = binding
            .pointer("/metadata/uid")
            .and_then(Value::as_str)
            .filter(|u| !u.is_empty())
            .map(str::to_string);
        self.write_existing(
            name,
            None,
            |current| {
                if let Some(uid) = &want_uid
                    && objects::meta_str(current, "uid") != Some(uid.as_str())
                {
                    return Err(ApiError::conflict_message(
                        info,
                        name,
                        &format!(
                            "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                            objects::meta_str(current, "uid").unwrap_or("")
                        ),
                    ));
                }
                if objects::meta_str(current, "deletionTimestamp").is_some() {
                    return Err(ApiError::conflict_message(
                        info,
                        name,
                        "pod is being deleted, cannot be assigned to a host",
                    ));
                }
                if let Some(existing) = current.pointer("/spec/nodeName").and_then(Value::as_str)
                    && !existing.is_empty()
                {
                    return Err(ApiError::conflict_message(
                        info,
                        name,
                        &format!("pod {name} is already assigned to node \"{existing}\""),
                    ));
                }
                let mut next = current.clone();
                next["spec"]["nodeName"] = Value::String(node.clone());
                // As Kubernetes' binding does: the pod is now scheduled, whatever an earlier
                // attempt said.
                set_pod_scheduled(&mut next);
                Ok(next)
            },
            Part::Whole,
        )
        .await?;
        let ok = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201});
        Ok(json_response(StatusCode::CREATED, &ok))
    }
}

/// A uid precondition: the stored object must be the one the client means.
fn check_uid_precondition(
    info: &ResourceInfo,
    name: &str,
    uid: &str,
    current: &Value,
) -> ApiResult<()> {
    let actual = objects::meta_str(current, "uid").unwrap_or("");
    if uid == actual {
        return Ok(());
    }
    Err(ApiError::conflict_message(
        info,
        name,
        &format!("Precondition failed: UID in precondition: {uid}, UID in object meta: {actual}"),
    ))
}

fn is_service(info: &ResourceInfo) -> bool {
    info.group.is_empty() && info.kind == "Service"
}

/// Keeps the half of the object that this kind of write may not touch.
fn merge_parts(info: &ResourceInfo, part: Part, current: &Value, next: &mut Value) {
    if !info.has_status() {
        return;
    }
    match part {
        Part::Main => {
            if let Some(map) = next.as_object_mut() {
                match current.get("status") {
                    Some(s) => map.insert("status".into(), s.clone()),
                    None => map.remove("status"),
                };
            }
        }
        Part::Whole => {}
        Part::Status => {
            let finalizers = next.pointer("/spec/finalizers").cloned();
            wasmkube_api::strategy::prepare_for_status_update(info, current, next);
            // `namespaces/NAME/finalize` shares this path: it may change spec.finalizers.
            if info.kind == "Namespace" {
                if let Some(f) = finalizers {
                    next["spec"]["finalizers"] = f;
                } else if let Some(spec) = next.get_mut("spec").and_then(Value::as_object_mut) {
                    spec.remove("finalizers");
                }
            }
        }
    }
}

/// Namespaces wait for `spec.finalizers` (the namespace controller's) besides the metadata ones.
fn spec_finalizers_pending(info: &ResourceInfo, obj: &Value) -> bool {
    info.kind == "Namespace"
        && obj
            .pointer("/spec/finalizers")
            .and_then(Value::as_array)
            .is_some_and(|f| !f.is_empty())
}

fn finalizers(obj: &Value) -> Vec<String> {
    obj.pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// What a DELETE answers: the object for kinds Kubernetes returns it for, else a Status.
fn deleted_response(info: &ResourceInfo, obj: &Value) -> Value {
    if matches!(
        info.kind,
        "Pod" | "Namespace" | "Service" | "Node" | "PersistentVolume" | "PersistentVolumeClaim"
    ) {
        return obj.clone();
    }
    let mut details = json!({
        "name": objects::name_of(obj),
        "kind": info.resource,
        "uid": objects::meta_str(obj, "uid").unwrap_or(""),
    });
    if !info.group.is_empty() {
        details["group"] = Value::String(info.group.into());
    }
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details})
}

#[derive(Debug, Default)]
struct DeleteOptions {
    grace_period: Option<i64>,
    propagation: Option<String>,
    precondition_uid: Option<String>,
    precondition_rv: Option<String>,
    dry_run: bool,
}

impl DeleteOptions {
    fn parse(query: &Query, headers: &HeaderMap, body: &Bytes) -> ApiResult<Self> {
        let mut opts = DeleteOptions {
            grace_period: query.int("gracePeriodSeconds")?,
            propagation: query.get("propagationPolicy").map(str::to_string),
            dry_run: query.dry_run()?,
            ..Default::default()
        };
        if !body.is_empty() {
            let v: Value = if request::content_type(headers)? == BodyFormat::Protobuf {
                wasmkube_api::protobuf::decode_object(body).map_err(|e| {
                    ApiError::bad_request(format!("error decoding DeleteOptions: {e}"))
                })?
            } else {
                serde_json::from_slice(body).map_err(|e| {
                    ApiError::bad_request(format!("error decoding DeleteOptions: {e}"))
                })?
            };
            if let Some(g) = v.get("gracePeriodSeconds").and_then(Value::as_i64) {
                opts.grace_period = Some(g);
            }
            if let Some(p) = v.get("propagationPolicy").and_then(Value::as_str) {
                opts.propagation = Some(p.to_string());
            }
            if let Some(p) = v.get("preconditions") {
                opts.precondition_uid = p.get("uid").and_then(Value::as_str).map(str::to_string);
                opts.precondition_rv = p
                    .get("resourceVersion")
                    .and_then(Value::as_str)
                    .map(str::to_string);
            }
            if let Some(d) = v.get("dryRun").and_then(Value::as_array)
                && d.iter().any(|x| x.as_str() == Some("All"))
            {
                opts.dry_run = true;
            }
            if let Some(o) = v.get("orphanDependents").and_then(Value::as_bool)
                && opts.propagation.is_none()
            {
                opts.propagation = Some(if o { "Orphan" } else { "Background" }.into());
            }
        }
        if let Some(p) = &opts.propagation
            && !matches!(p.as_str(), "Orphan" | "Background" | "Foreground")
        {
            return Err(ApiError::invalid(
                deleteoptions_info(),
                "",
                &[(
                    "propagationPolicy".into(),
                    format!(
                        "Unsupported value: {p:?}: supported values: \"Foreground\", \"Background\", \"Orphan\", \"nil\""
                    ),
                )],
            ));
        }
        if let Some(g) = opts.grace_period
            && g < 0
        {
            return Err(ApiError::bad_request(format!(
                "gracePeriodSeconds: Invalid value: {g}: must be greater than or equal to 0"
            )));
        }
        Ok(opts)
    }
}

fn deleteoptions_info() -> &'static ResourceInfo {
    namespaces()
}

fn namespaces() -> &'static ResourceInfo {
    // The registry always has namespaces; this cannot fail for a built binary.
    registry::RESOURCES
        .iter()
        .find(|r| r.resource == "namespaces")
        .unwrap_or(&registry::RESOURCES[0])
}

fn scale_info() -> &'static ResourceInfo {
    namespaces()
}

/// The autoscaling/v1 Scale view of a scalable object.
fn scale_of(obj: &Value) -> Value {
    let meta = obj.get("metadata").cloned().unwrap_or_else(|| json!({}));
    let selector = obj
        .pointer("/spec/selector")
        .and_then(|s| {
            serde_json::from_value::<k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector>(
                s.clone(),
            )
            .ok()
        })
        .and_then(|s| wasmkube_api::selector::LabelSelector::try_from(&s).ok())
        .map(|s| s.to_string())
        .unwrap_or_default();
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": meta.get("name"),
            "namespace": meta.get("namespace"),
            "uid": meta.get("uid"),
            "resourceVersion": meta.get("resourceVersion"),
            "creationTimestamp": meta.get("creationTimestamp"),
        },
        "spec": {"replicas": obj.pointer("/spec/replicas").cloned().unwrap_or(json!(0))},
        "status": {
            "replicas": obj.pointer("/status/replicas").cloned().unwrap_or(json!(0)),
            "selector": selector,
        }
    })
}

pub fn parse_body(format: BodyFormat, body: &Bytes) -> ApiResult<Value> {
    if body.is_empty() {
        return Err(ApiError::bad_request("the request body is empty"));
    }
    let v: Value = match format {
        BodyFormat::Protobuf => wasmkube_api::protobuf::decode_object(body)
            .map_err(|e| ApiError::bad_request(format!("error decoding protobuf: {e}")))?,
        BodyFormat::Yaml | BodyFormat::ApplyPatch => serde_yaml_ng::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?,
        _ => serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("error decoding JSON: {e}")))?,
    };
    if !v.is_object() {
        return Err(ApiError::bad_request(
            "the request body must be a JSON object",
        ));
    }
    Ok(v)
}

fn check_type_meta(info: &ResourceInfo, obj: &Value) -> ApiResult<()> {
    let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("");
    let api_version = obj.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    if !kind.is_empty() && kind != info.kind {
        return Err(ApiError::bad_request(format!(
            "the kind of the object ({kind}) does not match the kind of the request ({})",
            info.kind
        )));
    }
    if !api_version.is_empty() && api_version != info.api_version() {
        return Err(ApiError::bad_request(format!(
            "the API version in the data ({api_version}) does not match the expected API version ({})",
            info.api_version()
        )));
    }
    Ok(())
}

pub fn parse_label_selector(query: &Query) -> ApiResult<wasmkube_api::selector::LabelSelector> {
    match query.get("labelSelector") {
        None => Ok(wasmkube_api::selector::LabelSelector::everything()),
        Some(s) => wasmkube_api::selector::LabelSelector::parse(s)
            .map_err(|e| ApiError::bad_request(format!("unable to parse requirement: {e}"))),
    }
}

pub fn labels_of(obj: &Value) -> std::collections::BTreeMap<String, String> {
    obj.pointer("/metadata/labels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

fn encode_continue(key: &str, prefix: &str, revision: u64) -> String {
    use base64::Engine;
    let raw = json!({"v": 1, "rv": revision, "start": key.strip_prefix(prefix).unwrap_or(key)});
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw.to_string())
}

/// Kubernetes' 410 for a continue token older than the retained history, with a fresh token
/// (revision 0: read at the current state) that lets the client accept an inconsistent rest.
fn continue_expired(start_after: Option<&str>, prefix: &str) -> ApiError {
    let mut error = ApiError::gone(
        "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.",
    );
    if let Some(after) = start_after {
        error.continue_token = Some(Box::new(encode_continue(after, prefix, 0)));
    }
    error
}

fn decode_continue(token: &str, prefix: &str) -> ApiResult<(String, u64)> {
    use base64::Engine;
    let bad = || ApiError::bad_request(format!("continue key is not valid: {token:?}"));
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|_| bad())?;
    let v: Value = serde_json::from_slice(&raw).map_err(|_| bad())?;
    let rv = v.get("rv").and_then(Value::as_u64).ok_or_else(bad)?;
    let start = v.get("start").and_then(Value::as_str).ok_or_else(bad)?;
    if start.contains("..") {
        return Err(bad());
    }
    Ok((format!("{prefix}{start}"), rv))
}

pub fn respond_object(
    info: &ResourceInfo,
    accept: Accept,
    code: StatusCode,
    obj: Value,
) -> ApiResult<Response> {
    if accept == Accept::Table && obj.get("kind").and_then(Value::as_str) == Some(info.kind) {
        let meta =
            json!({"resourceVersion": objects::meta_str(&obj, "resourceVersion").unwrap_or("")});
        let t = table::table_of(info, std::slice::from_ref(&obj), meta, None);
        return Ok(json_response(code, &t));
    }
    Ok(encode_response(accept, code, &obj))
}

pub fn json_response(code: StatusCode, v: &Value) -> Response {
    (code, [("content-type", "application/json")], v.to_string()).into_response()
}

fn encode_response(accept: Accept, code: StatusCode, v: &Value) -> Response {
    if accept == Accept::Yaml
        && let Ok(s) = serde_yaml_ng::to_string(v)
    {
        return (code, [("content-type", "application/yaml")], s).into_response();
    }
    json_response(code, v)
}
