//! Objects every cluster has from its first start: the system namespaces and the `wasmtime`
//! RuntimeClass. Created through the API itself so they get the same defaulting, validation and
//! metadata as anything a user creates; existing ones are left alone.

use std::sync::Arc;

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, Uri};
use serde_json::{Value, json};

use crate::error::{ApiError, ApiResult};
use crate::state::ApiState;

/// The objects, as (collection path, manifest).
fn defaults() -> Vec<(&'static str, Value)> {
    let ns = |name: &str| {
        (
            "/api/v1/namespaces",
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name,
                "labels": {"kubernetes.io/metadata.name": name}}}),
        )
    };
    vec![
        ns("default"),
        ns("kube-system"),
        ns("kube-public"),
        ns("kube-node-lease"),
        (
            "/apis/node.k8s.io/v1/runtimeclasses",
            json!({"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass",
                "metadata": {"name": "wasmtime", "labels": {"app.kubernetes.io/managed-by": "wasmkube"}},
                "handler": "wasmtime"}),
        ),
    ]
}

/// Creates whatever default object is missing.
pub async fn ensure_defaults(state: &Arc<ApiState>) -> ApiResult<()> {
    for (path, obj) in defaults() {
        let uri: Uri = path
            .parse()
            .map_err(|_| ApiError::internal(format!("bad bootstrap path {path}")))?;
        let mut headers = HeaderMap::new();
        headers.insert(
            "content-type",
            axum::http::HeaderValue::from_static("application/json"),
        );
        let resp = crate::resource::handle(
            state.clone(),
            Method::POST,
            uri,
            headers,
            Bytes::from(obj.to_string()),
        )
        .await;
        let code = resp.status().as_u16();
        if code != 201 && code != 409 {
            return Err(ApiError::internal(format!(
                "creating default object at {path} failed with HTTP {code}"
            )));
        }
    }
    Ok(())
}
