//! Raw Kubernetes REST calls over a kube-rs [`kube::Client`].
//!
//! The CLI works on `serde_json::Value`s rather than typed objects: it must print and patch
//! whatever the server returns (including kinds it has no Rust type for) byte for byte, and it
//! must see HTTP status codes and `Status` bodies as they are to report errors the way kubectl
//! does.

use std::fmt;

use http::{Method, Request, header};
use http_body_util::BodyExt;
use kube::core::Status;
use kube::core::response::StatusSummary;
use serde_json::Value;

/// Accept header asking for server-side printing, with a plain JSON fallback.
pub const ACCEPT_TABLE: &str = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json";
pub const ACCEPT_JSON: &str = "application/json";

pub const MERGE_PATCH: &str = "application/merge-patch+json";
pub const STRATEGIC_MERGE_PATCH: &str = "application/strategic-merge-patch+json";

/// Why a call failed.
#[derive(Debug)]
pub enum CallError {
    /// The server answered with a failure `Status` (or an error we turned into one).
    Server(Box<Status>),
    /// No usable answer: connection, TLS or protocol failure.
    Transport(String),
}

impl CallError {
    pub fn status(&self) -> Option<&Status> {
        match self {
            CallError::Server(s) => Some(s),
            CallError::Transport(_) => None,
        }
    }

    pub fn is_not_found(&self) -> bool {
        self.status()
            .is_some_and(|s| s.code == 404 || s.reason == "NotFound")
    }

    pub fn is_conflict(&self) -> bool {
        self.status()
            .is_some_and(|s| s.code == 409 && s.reason == "Conflict")
    }

    /// Prefixes the message, as kubectl's `AddSourceToErr` does: `error when creating "x.yaml": …`.
    pub fn with_context(self, context: &str) -> Self {
        match self {
            CallError::Server(mut s) => {
                s.message = format!("{context}: {}", s.message);
                CallError::Server(s)
            }
            CallError::Transport(m) => CallError::Transport(format!("{context}: {m}")),
        }
    }

    /// A failure `Status` with kubectl's wording for a response that carried none.
    fn from_response(code: u16, body: &[u8]) -> Self {
        if let Ok(v) = serde_json::from_slice::<Value>(body)
            && v.get("kind").and_then(Value::as_str) == Some("Status")
            && let Ok(mut s) = serde_json::from_value::<Status>(v)
        {
            if s.code == 0 {
                s.code = code;
            }
            return CallError::Server(Box::new(s));
        }
        let text = String::from_utf8_lossy(body).trim().to_string();
        let (reason, message) = match code {
            400 => ("BadRequest", "the server rejected our request for an unknown reason".to_string()),
            401 => ("Unauthorized", "the server has asked for the client to provide credentials".into()),
            403 => ("Forbidden", text.clone()),
            404 => ("NotFound", "the server could not find the requested resource".into()),
            405 => ("MethodNotAllowed", "the server does not allow this method on the requested resource".into()),
            406 => ("NotAcceptable", "the server was unable to respond with a content type that the client supports".into()),
            409 => ("Conflict", "the server reported a conflict".into()),
            410 => ("Expired", text.clone()),
            413 => ("RequestEntityTooLarge", "the server has rejected the request because it is too large".into()),
            415 => ("UnsupportedMediaType", "the server was unable to respond with a content type that the client supports".into()),
            422 => ("Invalid", "the server rejected our request due to an error in our request".into()),
            429 => ("TooManyRequests", "the server has received too many requests and has asked us to try again later".into()),
            503 => ("ServiceUnavailable", "the server is currently unable to handle the request".into()),
            504 => ("Timeout", "the server was unable to return a response in the time allotted, but may still be processing the request".into()),
            _ => ("InternalError", format!("an error on the server ({text:?}) has prevented the request from succeeding")),
        };
        let message = if message.is_empty() {
            format!("unknown (status {code})")
        } else {
            message
        };
        CallError::Server(Box::new(Status {
            status: Some(StatusSummary::Failure),
            code,
            message,
            metadata: None,
            reason: reason.to_string(),
            details: None,
        }))
    }
}

impl CallError {
    /// A NotFound status worded as the API server words it, for when we find out ourselves.
    pub fn not_found(group_resource: &str, name: &str) -> Self {
        CallError::Server(Box::new(Status {
            status: Some(StatusSummary::Failure),
            code: 404,
            message: format!("{group_resource} \"{name}\" not found"),
            metadata: None,
            reason: "NotFound".into(),
            details: None,
        }))
    }
}

impl fmt::Display for CallError {
    /// kubectl's `StandardErrorMessage`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallError::Server(s) if s.reason == "Unauthorized" => {
                write!(
                    f,
                    "error: You must be logged in to the server ({})",
                    s.message
                )
            }
            CallError::Server(s) if !s.reason.is_empty() => {
                write!(f, "Error from server ({}): {}", s.reason, s.message)
            }
            CallError::Server(s) => write!(f, "Error from server: {}", s.message),
            CallError::Transport(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for CallError {}

/// The API server, as reached through a kubeconfig.
#[derive(Clone)]
pub struct Api {
    client: kube::Client,
    /// `host:port`, for connection error messages.
    server: String,
}

/// A response body read line by line (watch streams).
pub struct Lines {
    body: kube::client::Body,
    buf: Vec<u8>,
    done: bool,
}

impl Lines {
    /// The next complete line; the stream's last unterminated bytes count as a line.
    pub async fn next_line(&mut self) -> Option<Result<String, CallError>> {
        loop {
            if let Some(pos) = self.buf.iter().position(|b| *b == b'\n') {
                let rest = self.buf.split_off(pos + 1);
                let mut line = std::mem::replace(&mut self.buf, rest);
                line.pop();
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                return Some(Ok(String::from_utf8_lossy(&line).into_owned()));
            }
            if self.done {
                if self.buf.iter().all(u8::is_ascii_whitespace) {
                    return None;
                }
                let line = std::mem::take(&mut self.buf);
                return Some(Ok(String::from_utf8_lossy(&line).into_owned()));
            }
            match self.body.frame().await {
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        self.buf.extend_from_slice(&data);
                    }
                }
                Some(Err(e)) => {
                    self.done = true;
                    if self.buf.is_empty() {
                        return Some(Err(CallError::Transport(format!(
                            "error reading the response: {e}"
                        ))));
                    }
                }
                None => self.done = true,
            }
        }
    }
}

/// A response body read chunk by chunk (log streams).
pub struct Chunks {
    body: kube::client::Body,
}

impl Chunks {
    pub async fn next_chunk(&mut self) -> Option<Result<bytes::Bytes, CallError>> {
        loop {
            match self.body.frame().await? {
                Ok(frame) => {
                    if let Ok(data) = frame.into_data() {
                        return Some(Ok(data));
                    }
                }
                Err(e) => {
                    return Some(Err(CallError::Transport(format!(
                        "error reading the response: {e}"
                    ))));
                }
            }
        }
    }
}

impl Api {
    pub fn new(client: kube::Client, server: String) -> Self {
        Self { client, server }
    }

    async fn send(
        &self,
        method: Method,
        url: &str,
        accept: &str,
        body: Option<(&str, Vec<u8>)>,
    ) -> Result<http::Response<kube::client::Body>, CallError> {
        let mut builder = Request::builder()
            .method(method)
            .uri(url)
            .header(header::ACCEPT, accept);
        let bytes = match body {
            Some((content_type, bytes)) => {
                builder = builder.header(header::CONTENT_TYPE, content_type);
                bytes
            }
            None => Vec::new(),
        };
        let request = builder
            .body(kube::client::Body::from(bytes))
            .map_err(|e| CallError::Transport(format!("error: invalid request {url}: {e}")))?;
        let response = self
            .client
            .send(request)
            .await
            .map_err(|e| self.transport_error(&e))?;
        print_warnings(response.headers());
        let code = response.status();
        if code.is_success() {
            return Ok(response);
        }
        let body = response
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes().to_vec())
            .unwrap_or_default();
        Err(CallError::from_response(code.as_u16(), &body))
    }

    fn transport_error(&self, e: &kube::Error) -> CallError {
        let mut chain = String::new();
        let mut refused = false;
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
        while let Some(err) = source {
            if let Some(io) = err.downcast_ref::<std::io::Error>() {
                refused |= io.kind() == std::io::ErrorKind::ConnectionRefused;
            }
            let text = err.to_string();
            if !chain.contains(&text) {
                if !chain.is_empty() {
                    chain.push_str(": ");
                }
                chain.push_str(&text);
            }
            source = err.source();
        }
        if refused || chain.contains("Connection refused") {
            CallError::Transport(format!(
                "The connection to the server {} was refused - did you specify the right host or port?",
                self.server
            ))
        } else {
            CallError::Transport(format!("Unable to connect to the server: {chain}"))
        }
    }

    async fn json(
        &self,
        method: Method,
        url: &str,
        accept: &str,
        body: Option<(&str, Vec<u8>)>,
    ) -> Result<Value, CallError> {
        let response = self.send(method, url, accept, body).await?;
        let bytes = response
            .into_body()
            .collect()
            .await
            .map_err(|e| CallError::Transport(format!("error reading the response: {e}")))?
            .to_bytes();
        if bytes.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&bytes).map_err(|e| {
            CallError::Transport(format!(
                "error: the server returned a response that is not JSON: {e}"
            ))
        })
    }

    pub async fn get(&self, url: &str) -> Result<Value, CallError> {
        self.json(Method::GET, url, ACCEPT_JSON, None).await
    }

    pub async fn get_as(&self, url: &str, accept: &str) -> Result<Value, CallError> {
        self.json(Method::GET, url, accept, None).await
    }

    pub async fn create(&self, url: &str, obj: &Value) -> Result<Value, CallError> {
        self.json(
            Method::POST,
            url,
            ACCEPT_JSON,
            Some(("application/json", to_bytes(obj))),
        )
        .await
    }

    pub async fn patch(
        &self,
        url: &str,
        content_type: &str,
        patch: &Value,
    ) -> Result<Value, CallError> {
        self.json(
            Method::PATCH,
            url,
            ACCEPT_JSON,
            Some((content_type, to_bytes(patch))),
        )
        .await
    }

    pub async fn delete(&self, url: &str, options: &Value) -> Result<Value, CallError> {
        self.json(
            Method::DELETE,
            url,
            ACCEPT_JSON,
            Some(("application/json", to_bytes(options))),
        )
        .await
    }

    /// Lists a collection page by page and returns the merged answer: `items` for plain lists,
    /// `rows` for Tables. kubectl asks for pages of 500 too, so huge namespaces do not make one
    /// giant response.
    pub async fn list(&self, url: &str, accept: &str) -> Result<Value, CallError> {
        let sep = if url.contains('?') { '&' } else { '?' };
        let mut merged: Option<Value> = None;
        let mut token: Option<String> = None;
        // A server repeating a continue token would loop forever; cap the pages.
        for _ in 0..10_000 {
            let page_url = match &token {
                Some(t) => format!("{url}{sep}limit=500&continue={}", encode(t)),
                None => format!("{url}{sep}limit=500"),
            };
            let page = self.get_as(&page_url, accept).await?;
            token = page
                .pointer("/metadata/continue")
                .and_then(Value::as_str)
                .filter(|t| !t.is_empty())
                .map(str::to_string);
            merged = Some(match merged {
                None => page,
                Some(mut acc) => {
                    for field in ["items", "rows"] {
                        if let (Some(Value::Array(dst)), Some(Value::Array(src))) =
                            (acc.get_mut(field), page.get(field))
                        {
                            dst.extend(src.iter().cloned());
                        }
                    }
                    if let Some(meta) = page.get("metadata") {
                        acc["metadata"] = meta.clone();
                    }
                    acc
                }
            });
            if token.is_none() {
                break;
            }
        }
        Ok(merged.unwrap_or(Value::Null))
    }

    /// Opens a streaming GET and returns its body line by line (watches).
    pub async fn lines(&self, url: &str, accept: &str) -> Result<Lines, CallError> {
        let response = self.send(Method::GET, url, accept, None).await?;
        Ok(Lines {
            body: response.into_body(),
            buf: Vec::new(),
            done: false,
        })
    }

    /// Opens a streaming GET and returns its raw body (logs).
    pub async fn chunks(&self, url: &str) -> Result<Chunks, CallError> {
        let response = self.send(Method::GET, url, "*/*", None).await?;
        Ok(Chunks {
            body: response.into_body(),
        })
    }
}

fn to_bytes(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).unwrap_or_default()
}

/// Prints the server's `Warning` headers as kubectl does.
fn print_warnings(headers: &http::HeaderMap) {
    for value in headers.get_all("warning") {
        let Ok(text) = value.to_str() else { continue };
        // RFC 7234 form: `299 - "text"`.
        let message = text
            .splitn(3, ' ')
            .nth(2)
            .map(|m| m.trim().trim_matches('"').replace("\\\"", "\""))
            .unwrap_or_else(|| text.to_string());
        eprintln!("Warning: {message}");
    }
}

/// Percent-encodes a path segment or query value: everything but RFC 3986's unreserved bytes.
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Appends query parameters, skipping empty values.
pub fn with_query(path: &str, params: &[(&str, Option<&str>)]) -> String {
    let mut url = path.to_string();
    let mut sep = if url.contains('?') { '&' } else { '?' };
    for (key, value) in params {
        if let Some(v) = value {
            if v.is_empty() {
                continue;
            }
            url.push(sep);
            url.push_str(key);
            url.push('=');
            url.push_str(&encode(v));
            sep = '&';
        }
    }
    url
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_bodies_become_kubectl_errors() {
        let body = br#"{"kind":"Status","apiVersion":"v1","status":"Failure","message":"deployments.apps \"x\" not found","reason":"NotFound","code":404}"#;
        let e = CallError::from_response(404, body);
        assert!(e.is_not_found());
        assert_eq!(
            e.to_string(),
            "Error from server (NotFound): deployments.apps \"x\" not found"
        );
        let e = e.with_context("error when creating \"x.yaml\"");
        assert_eq!(
            e.to_string(),
            "Error from server (NotFound): error when creating \"x.yaml\": deployments.apps \"x\" not found"
        );
    }

    #[test]
    fn non_status_bodies_get_client_go_wording() {
        let e = CallError::from_response(404, b"404 page not found");
        assert_eq!(
            e.to_string(),
            "Error from server (NotFound): the server could not find the requested resource"
        );
        let e = CallError::from_response(401, b"");
        assert!(
            e.to_string()
                .starts_with("error: You must be logged in to the server")
        );
        let e = CallError::from_response(500, b"boom");
        assert_eq!(
            e.to_string(),
            "Error from server (InternalError): an error on the server (\"boom\") has prevented the request from succeeding"
        );
    }

    #[test]
    fn queries_are_encoded() {
        assert_eq!(
            with_query(
                "/api/v1/pods",
                &[
                    ("labelSelector", Some("app in (a,b)")),
                    ("x", None),
                    ("y", Some(""))
                ]
            ),
            "/api/v1/pods?labelSelector=app%20in%20%28a%2Cb%29"
        );
        assert_eq!(
            with_query("/a?watch=1", &[("b", Some("c"))]),
            "/a?watch=1&b=c"
        );
    }
}
