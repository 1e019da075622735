//! Authentication: bearer tokens, checked before any request reaches a handler; then
//! authorization by RBAC (see [`crate::rbac`]).
//!
//! Tokens are either the static ones the server registers (the admin token, made on first
//! start and kept in the data directory) or ServiceAccount tokens the server signed (see
//! [`crate::tokens`]), accepted while their account exists. `--insecure` (dev mode, loopback
//! only) turns authentication off entirely; there is no anonymous access otherwise.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use axum::extract::{Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use wasmkube_store::Store;

use crate::error::ApiError;
use crate::rbac::{self, Authorizer};
use crate::tokens::TokenIssuer;

/// Who a request is, once its token is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserInfo {
    pub username: String,
    pub groups: Vec<String>,
}

/// The table of accepted bearer tokens, and (with a store) ServiceAccount tokens and RBAC.
#[derive(Default)]
pub struct Authenticator {
    tokens: RwLock<HashMap<String, UserInfo>>,
    accounts: Option<Accounts>,
}

/// What ServiceAccount tokens and RBAC decisions are checked against.
struct Accounts {
    store: Arc<dyn Store>,
    issuer: Arc<TokenIssuer>,
    authorizer: Authorizer,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("rbac", &self.accounts.is_some())
            .finish_non_exhaustive()
    }
}

impl Authenticator {
    /// Static tokens only, every authenticated user allowed everything (tests of other
    /// parts of the server).
    pub fn new() -> Self {
        Self::default()
    }

    /// Static tokens, ServiceAccount tokens signed by `issuer`, and RBAC over `store`: what
    /// `wasmkube server` runs.
    pub fn with_rbac(store: Arc<dyn Store>, issuer: Arc<TokenIssuer>) -> Self {
        Authenticator {
            tokens: RwLock::default(),
            accounts: Some(Accounts {
                authorizer: Authorizer::new(store.clone()),
                store,
                issuer,
            }),
        }
    }

    pub fn add_token(&self, token: &str, user: UserInfo) {
        if let Ok(mut t) = self.tokens.write() {
            t.insert(token.to_string(), user);
        }
    }

    /// A static token's user.
    pub fn authenticate(&self, token: &str) -> Option<UserInfo> {
        let tokens = self.tokens.read().ok()?;
        // Compare against every entry in constant time per entry so a token's prefix can't be
        // found by timing.
        let mut found = None;
        for (known, user) in tokens.iter() {
            if constant_time_eq(known.as_bytes(), token.as_bytes()) {
                found = Some(user.clone());
            }
        }
        found
    }

    /// A static token's user, or a ServiceAccount token's while its account (same uid)
    /// exists.
    pub async fn authenticate_any(&self, token: &str) -> Option<UserInfo> {
        if let Some(user) = self.authenticate(token) {
            return Some(user);
        }
        let accounts = self.accounts.as_ref()?;
        let now = jiff::Timestamp::now().as_second();
        let claims = accounts.issuer.verify(token, now)?;
        let ns = &claims.kubernetes.namespace;
        let sa = &claims.kubernetes.serviceaccount;
        let info = wasmkube_api::registry::lookup("", "v1", "serviceaccounts")?;
        let kv = accounts
            .store
            .get(&info.key(Some(ns), &sa.name))
            .await
            .ok()??;
        let stored: serde_json::Value = serde_json::from_slice(&kv.value).ok()?;
        let uid = stored.pointer("/metadata/uid").and_then(|u| u.as_str());
        let deleting = stored.pointer("/metadata/deletionTimestamp").is_some();
        if uid != Some(sa.uid.as_str()) || deleting {
            return None;
        }
        Some(UserInfo {
            username: claims.sub.clone(),
            groups: vec![
                "system:serviceaccounts".into(),
                format!("system:serviceaccounts:{ns}"),
                "system:authenticated".into(),
            ],
        })
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Paths anyone may read: health endpoints for probes and load balancers, and the web console's
/// static files (which themselves call the API with the user's token), and the cluster's CA
/// certificate (public by nature; a joining agent checks it against the hash in its join token).
fn is_public(path: &str) -> bool {
    matches!(path, "/healthz" | "/livez" | "/readyz" | "/cacerts")
        || path == "/ui"
        || path.starts_with("/ui/")
}

/// The authentication layer. `None` authenticator means insecure dev mode.
pub async fn middleware(
    State(auth): State<Option<Arc<Authenticator>>>,
    mut req: Request,
    next: Next,
) -> Response {
    let Some(auth) = auth else {
        req.extensions_mut().insert(UserInfo {
            username: "system:admin".into(),
            groups: vec!["system:masters".into()],
        });
        return next.run(req).await;
    };
    if is_public(req.uri().path()) {
        return next.run(req).await;
    }
    let token = req
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, rest) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
        })
        .map(str::to_string)
        // Browsers cannot set headers on WebSocket upgrades; Kubernetes accepts the token in
        // this subprotocol for that reason.
        .or_else(|| websocket_token(&req));
    let user = match token {
        Some(t) => auth.authenticate_any(&t).await,
        None => None,
    };
    let Some(user) = user else {
        return ApiError::unauthorized().into_response();
    };
    if let Some(accounts) = &auth.accounts {
        let attrs = rbac::attributes(req.method(), req.uri());
        if let Err(e) = accounts.authorizer.authorize(&user, &attrs).await {
            return e.into_response();
        }
        match escalation_check(&accounts.authorizer, &user, &attrs, req).await {
            Ok(r) => req = r,
            Err(e) => return e.into_response(),
        }
    }
    req.extensions_mut().insert(user);
    next.run(req).await
}

/// Writes of roles and bindings must not grant more than the writer holds: the body is read
/// here (and put back) for the check. A patch cannot be judged before it is applied, so it
/// needs the `escalate` / `bind` verb outright (stricter than Kubernetes, never looser).
async fn escalation_check(
    authorizer: &Authorizer,
    user: &UserInfo,
    attrs: &rbac::RequestAttributes,
    req: Request,
) -> Result<Request, ApiError> {
    let rbac::Target::Resource {
        api_group,
        resource,
        subresource: None,
        namespace,
        ..
    } = &attrs.target
    else {
        return Ok(req);
    };
    let is_rbac = api_group == "rbac.authorization.k8s.io"
        && matches!(
            resource.as_str(),
            "roles" | "clusterroles" | "rolebindings" | "clusterrolebindings"
        );
    if !is_rbac || user.groups.iter().any(|g| g == rbac::MASTERS) {
        return Ok(req);
    }
    match *req.method() {
        Method::POST | Method::PUT => {}
        Method::PATCH => {
            let verb = if resource.ends_with("bindings") {
                "bind"
            } else {
                "escalate"
            };
            let privileged = rbac::RequestAttributes {
                verb: verb.into(),
                target: attrs.target.clone(),
            };
            authorizer.authorize(user, &privileged).await?;
            return Ok(req);
        }
        _ => return Ok(req),
    }
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, 16 << 20)
        .await
        .map_err(|e| ApiError::bad_request(format!("reading the request body: {e}")))?;
    // A body that is not JSON fails in the handler with its own message; YAML and
    // protobuf bodies of RBAC objects are refused here rather than checked loosely.
    let obj: serde_json::Value = serde_json::from_slice(&bytes).map_err(|_| {
        ApiError::new(
            415,
            "UnsupportedMediaType",
            "role and binding writes by users outside system:masters must be JSON",
        )
    })?;
    authorizer
        .check_escalation(user, resource, namespace.as_deref(), &obj)
        .await?;
    Ok(Request::from_parts(parts, axum::body::Body::from(bytes)))
}

fn websocket_token(req: &Request) -> Option<String> {
    use base64::Engine;
    let protocols = req.headers().get("sec-websocket-protocol")?.to_str().ok()?;
    protocols.split(',').map(str::trim).find_map(|p| {
        let encoded = p.strip_prefix("base64url.bearer.authorization.k8s.io.")?;
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(encoded.trim_end_matches('='))
            .ok()?;
        String::from_utf8(raw).ok()
    })
}

/// A new random token: 32 bytes of OS randomness, hex.
pub fn generate_token() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens() {
        let a = Authenticator::new();
        let t = generate_token();
        a.add_token(
            &t,
            UserInfo {
                username: "admin".into(),
                groups: vec![],
            },
        );
        assert_eq!(a.authenticate(&t).map(|u| u.username), Some("admin".into()));
        assert!(a.authenticate("nope").is_none());
        assert!(a.authenticate(&t[..10]).is_none());
    }
}
