//! API errors, answered as Kubernetes `Status` objects.
//!
//! Every failure a request can meet ends here, so clients (kubectl, client-go, the Python client)
//! always get the `Status` shape, HTTP code and `reason` they branch on.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use wasmkube_api::registry::ResourceInfo;

/// A Kubernetes `Status` failure: HTTP code, machine-readable reason and a human message.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    /// Boxed, as is `continue_token`: every `Result` of the API server carries this type.
    pub details: Option<Box<Value>>,
    /// `metadata.continue` of the Status: the token that resumes an expired paged list.
    pub continue_token: Option<Box<String>>,
}

impl ApiError {
    pub fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            reason,
            message: message.into(),
            details: None,
            continue_token: None,
        }
    }

    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Some(Box::new(details));
        self
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    pub fn unauthorized() -> Self {
        Self::new(401, "Unauthorized", "Unauthorized")
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(403, "Forbidden", message)
    }

    pub fn not_found(info: &ResourceInfo, name: &str) -> Self {
        Self::new(
            404,
            "NotFound",
            format!("{} \"{name}\" not found", info.group_resource()),
        )
        .with_details(details(info, name))
    }

    pub fn path_not_found() -> Self {
        Self::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        )
    }

    pub fn method_not_allowed(message: impl Into<String>) -> Self {
        Self::new(405, "MethodNotAllowed", message)
    }

    pub fn not_acceptable(message: impl Into<String>) -> Self {
        Self::new(406, "NotAcceptable", message)
    }

    pub fn already_exists(info: &ResourceInfo, name: &str) -> Self {
        Self::new(
            409,
            "AlreadyExists",
            format!("{} \"{name}\" already exists", info.group_resource()),
        )
        .with_details(details(info, name))
    }

    pub fn conflict(info: &ResourceInfo, name: &str) -> Self {
        Self::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; \
                 please apply your changes to the latest version and try again",
                info.group_resource()
            ),
        )
        .with_details(details(info, name))
    }

    pub fn conflict_message(info: &ResourceInfo, name: &str, why: &str) -> Self {
        Self::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} \"{name}\": {why}",
                info.group_resource()
            ),
        )
        .with_details(details(info, name))
    }

    pub fn gone(message: impl Into<String>) -> Self {
        Self::new(410, "Expired", message)
    }

    pub fn unsupported_media_type(content_type: &str) -> Self {
        Self::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json (got {content_type:?})"
            ),
        )
    }

    /// 422 with one cause per field error, as `kubectl` prints them.
    pub fn invalid(info: &ResourceInfo, name: &str, errors: &[(String, String)]) -> Self {
        let listed: Vec<String> = errors
            .iter()
            .map(|(field, msg)| format!("{field}: {msg}"))
            .collect();
        let joined = if listed.len() == 1 {
            listed.join("")
        } else {
            format!("[{}]", listed.join(", "))
        };
        let causes: Vec<Value> = errors
            .iter()
            .map(|(field, msg)| json!({"reason": "FieldValueInvalid", "message": msg, "field": field}))
            .collect();
        let mut d = details(info, name);
        d["causes"] = Value::Array(causes);
        Self::new(
            422,
            "Invalid",
            format!("{} \"{name}\" is invalid: {joined}", info.kind),
        )
        .with_details(d)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(500, "InternalError", message)
    }

    pub fn timeout(message: impl Into<String>) -> Self {
        Self::new(504, "Timeout", message)
    }

    /// The `Status` object itself, also used inside watch ERROR events.
    pub fn to_status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let Some(d) = &self.details {
            status["details"] = (**d).clone();
        }
        if let Some(token) = &self.continue_token {
            status["metadata"]["continue"] = Value::String(token.to_string());
        }
        status
    }
}

fn details(info: &ResourceInfo, name: &str) -> Value {
    let mut d = json!({"name": name, "kind": info.resource});
    if !info.group.is_empty() {
        d["group"] = Value::String(info.group.to_string());
    }
    d
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = StatusCode::from_u16(self.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = self.to_status().to_string();
        (code, [("content-type", "application/json")], body).into_response()
    }
}

impl From<wasmkube_store::Error> for ApiError {
    fn from(e: wasmkube_store::Error) -> Self {
        use std::error::Error as _;
        match &e {
            // The datastore cannot answer (etcd without quorum): nothing was acknowledged, and
            // clients should retry, which 503 tells them (kube-apiserver's readiness fails the
            // same way while etcd is down).
            wasmkube_store::Error::Unavailable { .. } => {
                let cause = e
                    .source()
                    .map(|source| format!(": {source}"))
                    .unwrap_or_default();
                Self::new(503, "ServiceUnavailable", format!("{e}{cause}"))
            }
            // Resource-specific store errors are mapped where the resource is known; what
            // reaches here is an internal failure of the storage engine.
            _ => ApiError::internal(format!("storage error: {e}")),
        }
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
