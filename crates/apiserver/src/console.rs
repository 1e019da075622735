//! The web console: the static files of `web/` (plain ES modules and CSS, no build step),
//! embedded into the binary at compile time and served at `/ui/`.
//!
//! The files hold no data, so they are served without authentication (see
//! [`crate::auth`]); the page calls the Kubernetes API with the user's bearer token, so every
//! data request is authenticated exactly as kubectl's are.
//!
//! - Each file carries a strong `ETag` (a hash of its bytes) and `Cache-Control: no-cache`: the
//!   file names are stable, so browsers revalidate and get `304 Not Modified` while unchanged.
//! - A path without a file extension that names no file is a client-side route of the console
//!   (`/ui/pods/default/web-1`): it is answered with `index.html`, so reloads and links work.
//! - A strict Content-Security-Policy allows only the console's own scripts, styles and API
//!   calls (same origin), no inline script or style, no framing.

use std::collections::HashMap;
use std::sync::LazyLock;

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use include_dir::{Dir, include_dir};
use sha2::{Digest, Sha256};

use crate::error::ApiError;

static WEB: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/../../web");

/// The page may load only its own files and talk only to its own origin (the API).
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; font-src 'self'; connect-src 'self'; \
     manifest-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// `ETag`s by path, computed once on first use.
static ETAGS: LazyLock<HashMap<&'static str, String>> = LazyLock::new(|| {
    let mut tags = HashMap::new();
    collect_etags(&WEB, &mut tags);
    tags
});

fn collect_etags(dir: &'static Dir<'static>, tags: &mut HashMap<&'static str, String>) {
    for file in dir.files() {
        if let Some(path) = file.path().to_str() {
            let digest = Sha256::digest(file.contents());
            let hex: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
            tags.insert(path, format!("\"{hex}\""));
        }
    }
    for sub in dir.dirs() {
        collect_etags(sub, tags);
    }
}

/// The console's routes: `/ui` (redirected to `/ui/`), `/ui/` and everything below it.
pub fn routes() -> Router {
    Router::new()
        .route("/ui", get(|| async { Redirect::permanent("/ui/") }))
        .route("/ui/", get(|headers: HeaderMap| async move { serve("", &headers) }))
        .route(
            "/ui/{*path}",
            get(|Path(path): Path<String>, headers: HeaderMap| async move {
                serve(&path, &headers)
            }),
        )
}

fn serve(path: &str, headers: &HeaderMap) -> Response {
    let path = path.trim_start_matches('/');
    let file = if path.is_empty() {
        "index.html"
    } else if WEB.get_file(path).is_some() {
        path
    } else if is_client_route(path) {
        "index.html"
    } else {
        return ApiError::new(
            404,
            "NotFound",
            format!("the web console has no file {path:?}"),
        )
        .into_response();
    };
    let (Some(found), Some(etag)) = (WEB.get_file(file), ETAGS.get(file)) else {
        return ApiError::path_not_found().into_response();
    };
    let mut response = if if_none_match(headers, etag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (StatusCode::OK, found.contents()).into_response()
    };
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(file)),
    );
    if let Ok(v) = HeaderValue::from_str(etag) {
        h.insert(header::ETAG, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

/// A last segment without an extension is one of the console's own routes, not a file.
fn is_client_route(path: &str) -> bool {
    let last = path.rsplit('/').next().unwrap_or(path);
    !last.contains('.')
}

fn if_none_match(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().trim_start_matches("W/"))
        .any(|t| t == etag || t == "*")
}

fn content_type(path: &str) -> &'static str {
    let ext = path.rsplit_once('.').map(|(_, e)| e).unwrap_or("");
    match ext {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "json" => "application/json",
        "webmanifest" => "application/manifest+json",
        "woff2" => "font/woff2",
        "txt" | "LICENSE" | "md" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    async fn get(path: &str, etag: Option<&str>) -> Response {
        let mut req = Request::get(path);
        if let Some(t) = etag {
            req = req.header(header::IF_NONE_MATCH, t);
        }
        routes()
            .oneshot(req.body(Body::empty()).expect("request"))
            .await
            .expect("infallible")
    }

    fn header_of(r: &Response, name: header::HeaderName) -> String {
        r.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    }

    async fn body(r: Response) -> String {
        let bytes = r.into_body().collect().await.expect("body").to_bytes();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    #[tokio::test]
    async fn ui_redirects_to_the_slash_form() {
        let r = get("/ui", None).await;
        assert_eq!(r.status(), StatusCode::PERMANENT_REDIRECT);
        assert_eq!(header_of(&r, header::LOCATION), "/ui/");
    }

    #[tokio::test]
    async fn index_has_html_type_csp_and_etag() {
        let r = get("/ui/", None).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(
            header_of(&r, header::CONTENT_TYPE),
            "text/html; charset=utf-8"
        );
        assert!(header_of(&r, header::CONTENT_SECURITY_POLICY).contains("script-src 'self'"));
        assert!(header_of(&r, header::ETAG).starts_with('"'));
        assert!(body(r).await.contains("<script type=\"module\""));
    }

    #[tokio::test]
    async fn modules_and_styles_have_their_types() {
        let r = get("/ui/js/main.js", None).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(
            header_of(&r, header::CONTENT_TYPE),
            "text/javascript; charset=utf-8"
        );
        let r = get("/ui/app.css", None).await;
        assert_eq!(
            header_of(&r, header::CONTENT_TYPE),
            "text/css; charset=utf-8"
        );
        let r = get("/ui/vendor/js-yaml.mjs", None).await;
        assert_eq!(
            header_of(&r, header::CONTENT_TYPE),
            "text/javascript; charset=utf-8"
        );
    }

    #[tokio::test]
    async fn matching_etag_is_not_modified() {
        let first = get("/ui/app.css", None).await;
        let tag = header_of(&first, header::ETAG);
        let r = get("/ui/app.css", Some(&tag)).await;
        assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(header_of(&r, header::ETAG), tag);
        assert!(body(r).await.is_empty());
        let r = get("/ui/app.css", Some("\"other\"")).await;
        assert_eq!(r.status(), StatusCode::OK);
    }

    #[tokio::test]
    async fn client_routes_fall_back_to_index_but_missing_files_are_404() {
        let r = get("/ui/pods/default/web-1", None).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert!(body(r).await.contains("<script type=\"module\""));
        let r = get("/ui/js/missing.js", None).await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
        assert!(body(r).await.contains("\"kind\":\"Status\""));
        let r = get("/ui/../Cargo.toml", None).await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
    }
}
