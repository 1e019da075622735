//! API server integration tests: the real router over an in-memory store, driven in-process
//! through its tower `Service` (no sockets), one request at a time as a client would send them.

mod logs;
mod rbac;
mod robustness;
mod semantics;
mod services;
mod strategy;
mod watch;

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request};
use http_body_util::BodyExt;
use serde_json::Value;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;
use wasmkube_apiserver::{ApiState, Authenticator, UserInfo, admission::Admission};
use wasmkube_store::{MemoryStore, Store};

pub const TOKEN: &str = "test-token-0123456789";

pub struct Api {
    pub router: axum::Router,
    pub store: Arc<dyn Store>,
    pub state: Arc<ApiState>,
    pub shutdown: CancellationToken,
}

pub struct Resp {
    pub code: u16,
    pub headers: axum::http::HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Api {
    pub async fn new() -> Api {
        Self::with_bookmarks(Duration::from_secs(30)).await
    }

    pub async fn with_bookmarks(interval: Duration) -> Api {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        Self::with(store, Admission::new(), interval).await
    }

    /// A server whose admission settings are `admission` (e.g. a name generator that clashes).
    pub async fn with_admission(admission: Admission) -> Api {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        Self::with(store, admission, Duration::from_secs(30)).await
    }

    /// An API over `store` (e.g. a reopened redb file) with its own admission settings.
    pub async fn with(store: Arc<dyn Store>, admission: Admission, interval: Duration) -> Api {
        Self::build(store, admission, interval, false).await
    }

    /// As `wasmkube server` runs it: ServiceAccount tokens and RBAC on.
    pub async fn with_rbac() -> Api {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        Self::build(store, Admission::new(), Duration::from_secs(30), true).await
    }

    async fn build(
        store: Arc<dyn Store>,
        admission: Admission,
        interval: Duration,
        rbac: bool,
    ) -> Api {
        let shutdown = CancellationToken::new();
        let issuer = rbac.then(|| {
            Arc::new(wasmkube_apiserver::tokens::TokenIssuer::from_secret(
                &[42; 32],
            ))
        });
        let state = Arc::new(ApiState {
            store: store.clone(),
            admission,
            subresource_handler: None,
            shutdown: shutdown.clone(),
            bookmark_interval: interval,
            token_issuer: issuer.clone(),
        });
        wasmkube_apiserver::bootstrap::ensure_defaults(&state)
            .await
            .expect("defaults");
        let auth = Arc::new(match issuer {
            Some(issuer) => Authenticator::with_rbac(store.clone(), issuer),
            None => Authenticator::new(),
        });
        auth.add_token(
            TOKEN,
            UserInfo {
                username: "admin".into(),
                groups: vec!["system:masters".into()],
            },
        );
        Api {
            router: wasmkube_apiserver::router(state.clone(), Some(auth), None),
            store,
            state,
            shutdown,
        }
    }

    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        ctype: &str,
        body: &str,
        token: Option<&str>,
    ) -> Resp {
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header("content-type", ctype);
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        let req = req.body(Body::from(body.to_string())).expect("request");
        let resp = self.router.clone().oneshot(req).await.expect("infallible");
        let code = resp.status().as_u16();
        let headers = resp.headers().clone();
        let bytes = resp.into_body().collect().await.expect("body").to_bytes();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Resp {
            code,
            headers,
            body,
            text,
        }
    }

    pub async fn req(&self, method: Method, path: &str, body: Value) -> Resp {
        let text = if body.is_null() {
            String::new()
        } else {
            body.to_string()
        };
        self.raw(method, path, "application/json", &text, Some(TOKEN))
            .await
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.req(Method::GET, path, Value::Null).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Resp {
        self.req(Method::POST, path, body).await
    }

    pub async fn put(&self, path: &str, body: Value) -> Resp {
        self.req(Method::PUT, path, body).await
    }

    pub async fn delete(&self, path: &str, body: Value) -> Resp {
        self.req(Method::DELETE, path, body).await
    }

    pub async fn patch(&self, path: &str, ctype: &str, body: Value) -> Resp {
        self.raw(Method::PATCH, path, ctype, &body.to_string(), Some(TOKEN))
            .await
    }
}

/// Asserts a Kubernetes `Status` failure with the given code and reason.
pub fn assert_status(r: &Resp, code: u16, reason: &str) {
    assert_eq!(r.code, code, "{}", r.text);
    assert_eq!(r.body["kind"], "Status", "{}", r.text);
    assert_eq!(r.body["status"], "Failure", "{}", r.text);
    assert_eq!(r.body["code"], code, "{}", r.text);
    assert_eq!(r.body["reason"], reason, "{}", r.text);
}
