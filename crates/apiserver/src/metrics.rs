//! `metrics.k8s.io/v1beta1`: node and pod resource usage, as metrics-server serves it in
//! Kubernetes (what `kubectl top` and the horizontal pod autoscaler read).
//!
//! Nothing is stored: each request asks every node's kubelet for its usage summary (through
//! the [`SubresourceHandler`](crate::SubresourceHandler), which knows how to reach nodes) and
//! joins it with the Node and Pod objects for names, labels and selectors.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use wasmkube_api::registry;
use wasmkube_api::selector::LabelSelector;

use crate::error::{ApiError, ApiResult};
use crate::objects;
use crate::request::Query;
use crate::resource::json_response;
use crate::state::ApiState;

pub const GROUP: &str = "metrics.k8s.io";
pub const VERSION: &str = "v1beta1";

/// The group's discovery entry.
pub fn group_entry() -> Value {
    let gv = json!({"groupVersion": format!("{GROUP}/{VERSION}"), "version": VERSION});
    json!({"name": GROUP, "versions": [gv.clone()], "preferredVersion": gv})
}

/// The group version's resource list.
pub fn resource_list() -> Value {
    json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": format!("{GROUP}/{VERSION}"),
        "resources": [
            {"name": "nodes", "singularName": "", "namespaced": false, "kind": "NodeMetrics", "verbs": ["get", "list"]},
            {"name": "pods", "singularName": "", "namespaced": true, "kind": "PodMetrics", "verbs": ["get", "list"]},
        ],
    })
}

/// Kubernetes' CPU quantity for nanocores, in millicores when whole (`250m`) else nanocores.
fn cpu_quantity(nanocores: u64) -> String {
    if nanocores.is_multiple_of(1_000_000) {
        format!("{}m", nanocores / 1_000_000)
    } else {
        format!("{nanocores}n")
    }
}

fn memory_quantity(bytes: u64) -> String {
    if bytes.is_multiple_of(1024) {
        format!("{}Ki", bytes / 1024)
    } else {
        bytes.to_string()
    }
}

fn usage(stats: &Value) -> Value {
    json!({
        "cpu": cpu_quantity(stats["cpu"]["usageNanoCores"].as_u64().unwrap_or(0)),
        "memory": memory_quantity(stats["memory"]["workingSetBytes"].as_u64().unwrap_or(0)),
    })
}

fn window(summary: &Value) -> String {
    format!(
        "{}s",
        summary["node"]["windowSeconds"].as_u64().unwrap_or(10)
    )
}

fn labels(obj: &Value) -> BTreeMap<String, String> {
    obj["metadata"]["labels"]
        .as_object()
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

fn selector(query: &Query) -> ApiResult<Option<LabelSelector>> {
    match query.0.get("labelSelector").filter(|s| !s.is_empty()) {
        Some(s) => LabelSelector::parse(s)
            .map(Some)
            .map_err(|e| ApiError::bad_request(format!("unable to parse requirement: {e}"))),
        None => Ok(None),
    }
}

/// The stored objects of a resource (in a namespace), by name.
async fn objects_of(
    state: &ApiState,
    resource: &str,
    namespace: Option<&str>,
) -> ApiResult<BTreeMap<(String, String), Value>> {
    let info = registry::lookup("", "v1", resource)
        .ok_or_else(|| ApiError::internal(format!("{resource} is not registered")))?;
    let list = state
        .store
        .list(&info.key_prefix(namespace), None, None)
        .await?;
    let mut out = BTreeMap::new();
    for kv in &list.items {
        let obj = objects::decode(kv)?;
        let ns = obj["metadata"]["namespace"]
            .as_str()
            .unwrap_or("")
            .to_string();
        let name = obj["metadata"]["name"].as_str().unwrap_or("").to_string();
        out.insert((ns, name), obj);
    }
    Ok(out)
}

fn list(kind: &str, items: Vec<Value>) -> Response {
    json_response(
        StatusCode::OK,
        &json!({"kind": kind, "apiVersion": format!("{GROUP}/{VERSION}"), "metadata": {}, "items": items}),
    )
}

fn not_found(resource: &str, name: &str) -> ApiError {
    ApiError::new(
        404,
        "NotFound",
        format!("{resource}.{GROUP} \"{name}\" not found"),
    )
}

async fn node_metrics(state: &ApiState, query: &Query) -> ApiResult<Vec<Value>> {
    let selector = selector(query)?;
    let nodes = objects_of(state, "nodes", None).await?;
    let summaries = match &state.subresource_handler {
        Some(h) => h.node_summaries().await,
        None => Vec::new(),
    };
    let mut items = Vec::new();
    for (name, summary) in summaries {
        let Some(node) = nodes.get(&(String::new(), name.clone())) else {
            continue;
        };
        let node_labels = labels(node);
        if selector.as_ref().is_some_and(|s| !s.matches(&node_labels)) {
            continue;
        }
        items.push(json!({
            "kind": "NodeMetrics",
            "apiVersion": format!("{GROUP}/{VERSION}"),
            "metadata": {"name": name, "labels": node_labels,
                "creationTimestamp": node["metadata"]["creationTimestamp"]},
            "timestamp": summary["node"]["cpu"]["time"],
            "window": window(&summary),
            "usage": usage(&summary["node"]),
        }));
    }
    Ok(items)
}

async fn pod_metrics(
    state: &ApiState,
    namespace: Option<&str>,
    query: &Query,
) -> ApiResult<Vec<Value>> {
    let selector = selector(query)?;
    let pods = objects_of(state, "pods", namespace).await?;
    let summaries = match &state.subresource_handler {
        Some(h) => h.node_summaries().await,
        None => Vec::new(),
    };
    let mut items = Vec::new();
    for (_, summary) in summaries {
        for p in summary["pods"].as_array().into_iter().flatten() {
            let ns = p["podRef"]["namespace"].as_str().unwrap_or("").to_string();
            let name = p["podRef"]["name"].as_str().unwrap_or("").to_string();
            if namespace.is_some_and(|n| n != ns) {
                continue;
            }
            // Only pods that still exist, and only the incarnation the node is running.
            let Some(pod) = pods.get(&(ns.clone(), name.clone())) else {
                continue;
            };
            if pod["metadata"]["uid"] != p["podRef"]["uid"] {
                continue;
            }
            let pod_labels = labels(pod);
            if selector.as_ref().is_some_and(|s| !s.matches(&pod_labels)) {
                continue;
            }
            let containers: Vec<Value> = p["containers"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|c| json!({"name": c["name"], "usage": usage(c)}))
                .collect();
            items.push(json!({
                "kind": "PodMetrics",
                "apiVersion": format!("{GROUP}/{VERSION}"),
                "metadata": {"name": name, "namespace": ns, "labels": pod_labels,
                    "creationTimestamp": pod["metadata"]["creationTimestamp"]},
                "timestamp": p["cpu"]["time"],
                "window": window(&summary),
                "containers": containers,
            }));
        }
    }
    items.sort_by(|a, b| {
        (
            a["metadata"]["namespace"].as_str(),
            a["metadata"]["name"].as_str(),
        )
            .cmp(&(
                b["metadata"]["namespace"].as_str(),
                b["metadata"]["name"].as_str(),
            ))
    });
    Ok(items)
}

fn respond(r: ApiResult<Response>) -> Response {
    r.unwrap_or_else(IntoResponse::into_response)
}

pub async fn nodes(State(state): State<Arc<ApiState>>, RawQuery(q): RawQuery) -> Response {
    let query = Query::parse(q.as_deref());
    respond(
        node_metrics(&state, &query)
            .await
            .map(|items| list("NodeMetricsList", items)),
    )
}

pub async fn node(State(state): State<Arc<ApiState>>, Path(name): Path<String>) -> Response {
    let query = Query::parse(None);
    respond(node_metrics(&state, &query).await.and_then(|items| {
        items
            .into_iter()
            .find(|i| i["metadata"]["name"] == name.as_str())
            .map(|i| json_response(StatusCode::OK, &i))
            .ok_or_else(|| not_found("nodes", &name))
    }))
}

pub async fn all_pods(State(state): State<Arc<ApiState>>, RawQuery(q): RawQuery) -> Response {
    let query = Query::parse(q.as_deref());
    respond(
        pod_metrics(&state, None, &query)
            .await
            .map(|items| list("PodMetricsList", items)),
    )
}

pub async fn namespace_pods(
    State(state): State<Arc<ApiState>>,
    Path(namespace): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    let query = Query::parse(q.as_deref());
    respond(
        pod_metrics(&state, Some(&namespace), &query)
            .await
            .map(|items| list("PodMetricsList", items)),
    )
}

pub async fn pod(
    State(state): State<Arc<ApiState>>,
    Path((namespace, name)): Path<(String, String)>,
) -> Response {
    let query = Query::parse(None);
    respond(
        pod_metrics(&state, Some(&namespace), &query)
            .await
            .and_then(|items| {
                items
                    .into_iter()
                    .find(|i| i["metadata"]["name"] == name.as_str())
                    .map(|i| json_response(StatusCode::OK, &i))
                    .ok_or_else(|| not_found("pods", &name))
            }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_read_like_metrics_server() {
        assert_eq!(cpu_quantity(250_000_000), "250m");
        assert_eq!(cpu_quantity(1_234), "1234n");
        assert_eq!(memory_quantity(64 * 1024 * 1024), "65536Ki");
        assert_eq!(memory_quantity(1000), "1000");
    }
}
