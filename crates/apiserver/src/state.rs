//! The state every handler shares.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::Response;
use futures::future::BoxFuture;
use tokio_util::sync::CancellationToken;
use wasmkube_api::registry::Subresource;
use wasmkube_store::Store;

use crate::admission::Admission;
use crate::error::ApiResult;
use crate::request::ResourcePath;

/// Serves the subresources that live on nodes rather than in the store (pods/log, exec,
/// port-forward, proxy). The kubelet side plugs in here.
pub trait SubresourceHandler: Send + Sync {
    #[allow(clippy::too_many_arguments)]
    fn handle(
        &self,
        path: ResourcePath,
        name: String,
        subresource: Subresource,
        method: Method,
        uri: Uri,
        headers: HeaderMap,
        body: Bytes,
    ) -> BoxFuture<'static, ApiResult<Response>>;

    /// Serves a subresource that takes over the connection (`pods/exec`,
    /// `pods/portforward`): it gets the whole request, upgrade handle included.
    fn upgrade(
        &self,
        _path: ResourcePath,
        _name: String,
        subresource: Subresource,
        _req: axum::extract::Request,
    ) -> BoxFuture<'static, ApiResult<Response>> {
        Box::pin(async move {
            Err(crate::error::ApiError::new(
                503,
                "ServiceUnavailable",
                format!(
                    "the {} subresource is not available on this server",
                    subresource.name()
                ),
            ))
        })
    }

    /// Every reachable node's resource usage summary (the kubelet's `/stats/summary`), by node
    /// name: what `metrics.k8s.io` serves. Nodes that don't answer are left out.
    fn node_summaries(&self) -> BoxFuture<'static, Vec<(String, serde_json::Value)>> {
        Box::pin(async { Vec::new() })
    }
}

pub struct ApiState {
    pub store: Arc<dyn Store>,
    pub admission: Admission,
    pub subresource_handler: Option<Arc<dyn SubresourceHandler>>,
    /// Cancelled when the server stops: long-running responses (watches) end with it.
    pub shutdown: CancellationToken,
    pub bookmark_interval: Duration,
    /// Signs ServiceAccount tokens (`serviceaccounts/NAME/token`); None: the server issues
    /// none.
    pub token_issuer: Option<Arc<crate::tokens::TokenIssuer>>,
}
