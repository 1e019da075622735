//! Unconditional status writes that replace `.status` and nothing else.
//!
//! A controller that is the only writer of an object's status writes it without a
//! resourceVersion, so that an unrelated spec or label change cannot make it fail. A PUT of
//! the cached object to `NAME/status` would also replace the object's metadata with the
//! cache's (the status subresource takes metadata from the request, as in Kubernetes), which
//! can undo an annotation or finalizer written meanwhile. A JSON patch that sets `/status`
//! touches nothing else, and still removes status fields that are no longer set (which a
//! merge patch would leave behind).

use std::fmt::Debug;

use kube::Api;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Replaces the whole status of `name` with `status`.
pub async fn replace_status<K>(api: &Api<K>, name: &str, status: &impl Serialize) -> kube::Result<K>
where
    K: kube::Resource + Clone + DeserializeOwned + Debug,
{
    let body = serde_json::to_vec(&serde_json::json!([
        {"op": "add", "path": "/status", "value": status}
    ]))
    .map_err(kube::Error::SerdeError)?;
    let request = http::Request::patch(format!("{}/{name}/status", api.resource_url()))
        .header(http::header::CONTENT_TYPE, "application/json-patch+json")
        .header(http::header::ACCEPT, "application/json")
        .body(body)
        .map_err(kube::Error::HttpError)?;
    api.clone().into_client().request::<K>(request).await
}
