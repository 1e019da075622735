//! Authentication: bearer tokens, checked before any request reaches a handler.
//!
//! The admin token is made on first start and kept in the data directory. `--insecure` (dev
//! mode, loopback only) turns authentication off entirely; there is no anonymous access
//! otherwise.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;

/// Who a request is, once its token is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserInfo {
    pub username: String,
    pub groups: Vec<String>,
}

/// The table of accepted bearer tokens.
#[derive(Debug, Default)]
pub struct Authenticator {
    tokens: RwLock<HashMap<String, UserInfo>>,
}

impl Authenticator {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add_token(&self, token: &str, user: UserInfo) {
        if let Ok(mut t) = self.tokens.write() {
            t.insert(token.to_string(), user);
        }
    }

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
    match token.and_then(|t| auth.authenticate(&t)) {
        Some(user) => {
            req.extensions_mut().insert(user);
            next.run(req).await
        }
        None => ApiError::unauthorized().into_response(),
    }
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
