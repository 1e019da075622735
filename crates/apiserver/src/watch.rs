//! The watch protocol: a chunked stream of `{"type": ..., "object": ...}` lines.
//!
//! States of one watch:
//! 1. *initial*: for `resourceVersion` unset or "0", or `sendInitialEvents=true`, the current
//!    state is read at one store revision R and sent as ADDED events (then, for
//!    sendInitialEvents, a BOOKMARK annotated `k8s.io/initial-events-end`);
//! 2. *following*: store events after R (or after the requested resourceVersion) are filtered
//!    by the selectors and translated: an object that starts matching is ADDED, one that stops
//!    matching is DELETED, so a client's cache stays exact;
//! 3. *ended*: on `timeoutSeconds`, server shutdown, client disconnect, or a requested revision
//!    older than the retained log (an ERROR event carrying a 410 Expired Status).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::StatusCode;
use axum::response::Response;
use futures::StreamExt;
use serde_json::{Value, json};
use wasmkube_api::registry::ResourceInfo;
use wasmkube_store::{Error as StoreError, EventKind};

use crate::error::{ApiError, ApiResult};
use crate::fields::FieldFilter;
use crate::objects::{self, decode_bytes};
use crate::request::{Accept, Query, ResourcePath};
use crate::resource::{labels_of, parse_label_selector};
use crate::state::ApiState;

pub async fn serve(
    state: Arc<ApiState>,
    rp: ResourcePath,
    query: Query,
    accept: Accept,
) -> ApiResult<Response> {
    let info = rp.info;
    let label_sel = parse_label_selector(&query)?;
    let mut field_sel = FieldFilter::parse(info, query.get("fieldSelector"))?;
    let only_name = rp.name.clone();
    if field_sel.is_everything() && only_name.is_none() {
        field_sel = FieldFilter::default();
    }
    let ns = if info.namespaced {
        rp.namespace.clone()
    } else {
        None
    };
    let prefix = info.key_prefix(ns.as_deref());
    let exact_key = only_name.as_ref().map(|n| info.key(ns.as_deref(), n));
    let bookmarks = query.flag("allowWatchBookmarks");
    let send_initial = query.0.get("sendInitialEvents").map(String::as_str) == Some("true");
    let rv_param = query.get("resourceVersion").map(str::to_string);
    if send_initial {
        if query.get("resourceVersionMatch") != Some("NotOlderThan") {
            return Err(ApiError::invalid(
                info,
                "",
                &[("resourceVersionMatch".into(), "Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan".into())],
            ));
        }
        if !bookmarks {
            return Err(ApiError::invalid(
                info,
                "",
                &[(
                    "allowWatchBookmarks".into(),
                    "Forbidden: sendInitialEvents requires setting allowWatchBookmarks to true"
                        .into(),
                )],
            ));
        }
    }
    let timeout = query
        .int("timeoutSeconds")?
        .filter(|t| *t > 0)
        .map(|t| Duration::from_secs(t as u64));

    let requested: Option<u64> = match rv_param.as_deref() {
        None | Some("") | Some("0") => None,
        Some(rv) => Some(rv.parse::<u64>().map_err(|_| {
            ApiError::bad_request(format!("resourceVersion: Invalid value: {rv:?}"))
        })?),
    };
    let initial = send_initial || requested.is_none();

    // Initial state, read at one revision; the watch continues right after it.
    let mut initial_items = Vec::new();
    let start_rev = if initial {
        let page = state.store.list(&prefix, None, None).await?;
        for kv in &page.items {
            if exact_key.as_ref().is_some_and(|k| *k != kv.key) {
                continue;
            }
            initial_items.push(objects::decode(kv)?);
        }
        match requested {
            Some(r) if r > page.revision => r,
            _ => page.revision,
        }
    } else {
        requested.unwrap_or(0)
    };
    let events = match state.store.watch(&prefix, start_rev).await {
        Ok(s) => Some(s),
        Err(StoreError::Compacted {
            requested,
            compacted,
        }) => {
            let err = ApiError::gone(format!(
                "too old resource version: {requested} ({compacted})"
            ));
            return Ok(stream_response(
                futures::stream::once(async move {
                    Ok::<Bytes, Infallible>(line("ERROR", err.to_status()))
                })
                .boxed(),
            ));
        }
        Err(e) => return Err(e.into()),
    };

    let table_mode = accept == Accept::Table;
    let shutdown = state.shutdown.clone();
    let stream = async_stream::stream! {
        let mut first_table = true;
        let mut encode = |kind: &str, obj: Value| -> Bytes {
            if table_mode && kind != "BOOKMARK" && kind != "ERROR" {
                let meta = json!({"resourceVersion": objects::meta_str(&obj, "resourceVersion").unwrap_or("")});
                let mut t = crate::table::table_of(info, std::slice::from_ref(&obj), meta, None);
                if !first_table {
                    t["columnDefinitions"] = json!([]);
                }
                first_table = false;
                return line(kind, t);
            }
            line(kind, obj)
        };
        for obj in initial_items {
            if label_sel.matches(&labels_of(&obj)) && field_sel.matches(&obj) {
                yield Ok::<Bytes, Infallible>(encode("ADDED", obj));
            }
        }
        if send_initial {
            yield Ok(encode("BOOKMARK", bookmark(info, start_rev, true)));
        }
        let Some(mut events) = events else { return; };
        let mut last_rev = start_rev;
        let deadline = timeout.map(|t| tokio::time::Instant::now() + t);
        let mut tick = tokio::time::interval(state.bookmark_interval);
        tick.tick().await;
        loop {
            let next = tokio::select! {
                ev = events.next() => ev,
                _ = async { match deadline { Some(d) => tokio::time::sleep_until(d).await, None => std::future::pending().await } } => break,
                _ = shutdown.cancelled() => break,
                _ = tick.tick() => {
                    if bookmarks {
                        yield Ok(encode("BOOKMARK", bookmark(info, last_rev, false)));
                    }
                    continue;
                }
            };
            let ev = match next {
                None => break,
                Some(Ok(ev)) => ev,
                Some(Err(StoreError::Compacted { requested, compacted })) => {
                    let err = ApiError::gone(format!("too old resource version: {requested} ({compacted})"));
                    yield Ok(line("ERROR", err.to_status()));
                    break;
                }
                Some(Err(e)) => {
                    yield Ok(line("ERROR", ApiError::internal(format!("watch failed: {e}")).to_status()));
                    break;
                }
            };
            last_rev = ev.revision;
            if exact_key.as_ref().is_some_and(|k| *k != ev.key) {
                continue;
            }
            let Ok(obj) = decode_bytes(&ev.value, ev.revision) else { continue };
            let matches_now = label_sel.matches(&labels_of(&obj)) && field_sel.matches(&obj);
            let matched_before = ev.prev_value.as_ref().and_then(|p| decode_bytes(p, ev.revision).ok())
                .map(|p| label_sel.matches(&labels_of(&p)) && field_sel.matches(&p));
            let kind = match ev.kind {
                EventKind::Delete => if matches_now { "DELETED" } else { continue },
                EventKind::Put => match (matched_before, matches_now) {
                    (Some(true), true) => "MODIFIED",
                    (Some(true), false) => "DELETED",
                    (_, true) => "ADDED",
                    (_, false) => continue,
                },
            };
            yield Ok(encode(kind, obj));
        }
    };
    Ok(stream_response(stream.boxed()))
}

fn stream_response(
    stream: futures::stream::BoxStream<'static, Result<Bytes, Infallible>>,
) -> Response {
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "application/json")
        .header("cache-control", "no-cache, private")
        .body(Body::from_stream(stream))
        .unwrap_or_else(|_| Response::new(Body::empty()))
}

fn line(kind: &str, obj: Value) -> Bytes {
    let mut s = json!({"type": kind, "object": obj}).to_string();
    s.push('\n');
    Bytes::from(s)
}

fn bookmark(info: &ResourceInfo, revision: u64, initial_end: bool) -> Value {
    let mut meta = json!({"resourceVersion": revision.to_string()});
    if initial_end {
        meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
    }
    json!({"kind": info.kind, "apiVersion": info.api_version(), "metadata": meta})
}
