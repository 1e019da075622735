//! WAGI: serving HTTP with any WASI preview1 command module, CGI style. Per request the
//! module is instantiated with the CGI variables in its environment and the request body on
//! stdin; it writes CGI headers, a blank line and the body to stdout.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use futures::future::BoxFuture;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use wasmtime::{InstancePre, Store};
use wasmtime_wasi::p2::pipe::{MemoryInputPipe, MemoryOutputPipe};

use crate::container::Outcome;
use crate::guest::{EpochControl, MemoryLimiter, P1Host, install_epoch_control};
use crate::http::{
    Handler, HttpShared, ResponseBody, bounded, failure_response, full, instantiate_failure,
    text_response,
};

pub(crate) struct WagiHandler {
    pub(crate) pre: InstancePre<P1Host>,
    pub(crate) shared: Arc<HttpShared>,
}

impl Handler for WagiHandler {
    fn handle(
        self: Arc<Self>,
        req: hyper::Request<Incoming>,
        local: SocketAddr,
        remote: SocketAddr,
    ) -> BoxFuture<'static, hyper::Response<ResponseBody>> {
        Box::pin(async move { self.serve(req, local, remote).await })
    }
}

impl WagiHandler {
    async fn serve(
        &self,
        req: hyper::Request<Incoming>,
        local: SocketAddr,
        remote: SocketAddr,
    ) -> hyper::Response<ResponseBody> {
        let shared = &self.shared;
        let (parts, body) = req.into_parts();
        let body = match Limited::new(body, shared.max_request_body).collect().await {
            Ok(c) => c.to_bytes(),
            Err(e)
                if e.downcast_ref::<http_body_util::LengthLimitError>()
                    .is_some() =>
            {
                return text_response(
                    413,
                    format!("request body exceeds {} bytes", shared.max_request_body),
                );
            }
            Err(e) => return text_response(400, format!("reading the request body: {e}")),
        };
        let env = cgi_env(&parts, body.len(), local, remote);
        let stderr = shared.request_stderr();
        let stdout = MemoryOutputPipe::new(shared.max_response);
        let mut builder = match shared.spec.wasi_builder(&env) {
            Ok(b) => b,
            Err(e) => {
                stderr.runtime_line(&format!("request failed: {e}"));
                return text_response(500, "the container's mounts are unavailable");
            }
        };
        builder
            .stdin(MemoryInputPipe::new(body))
            .stdout(stdout.clone())
            .stderr(stderr.wasi_stream());
        let limiter = MemoryLimiter::new(shared.spec.memory_limit, shared.usage.clone());
        let mut store = Store::new(
            &shared.engine,
            P1Host {
                wasi: builder.build_p1(),
                limiter,
            },
        );
        store.limiter(|h| &mut h.limiter);
        install_epoch_control(
            &mut store,
            EpochControl {
                budget: shared.budget.clone(),
                kill: shared.control.kill_flag.clone(),
                deadline: Some((
                    Instant::now() + shared.request_timeout,
                    shared.request_timeout,
                )),
                tick: shared.tick,
            },
        );
        let instance = match self.pre.instantiate_async(&mut store).await {
            Ok(i) => i,
            Err(e) => {
                let oom = store.data().limiter.oom;
                drop(store);
                let resp = instantiate_failure(&e, oom, &stderr);
                stderr.finish().await;
                return resp;
            }
        };
        let result = bounded(shared, async {
            let start = instance.get_typed_func::<(), ()>(&mut store, "_start")?;
            start.call_async(&mut store, ()).await
        })
        .await;
        let outcome = Outcome::of(result, store.data().limiter.oom);
        // Free the instance slot before the response is written out.
        drop(store);
        let resp = match outcome {
            // A CGI script may exit non-zero after writing a complete response (e.g. an
            // error page); the output decides.
            Outcome::Exited(code) => match parse_cgi_output(stdout.contents()) {
                Ok(resp) => resp,
                Err(why) => {
                    stderr.runtime_line(&format!(
                        "request failed: invalid CGI response ({why}); exit code {code}"
                    ));
                    text_response(500, "the module did not produce a valid CGI response")
                }
            },
            other => failure_response(&other, &stderr, "request failed"),
        };
        stderr.finish().await;
        resp
    }
}

/// The CGI/1.1 meta-variables (RFC 3875) for a request, plus WAGI's `X_*` extensions.
pub(crate) fn cgi_env(
    parts: &http::request::Parts,
    content_length: usize,
    local: SocketAddr,
    remote: SocketAddr,
) -> Vec<(String, String)> {
    let uri = &parts.uri;
    let raw_path = uri.path().to_string();
    let path = urlencoding::decode(&raw_path)
        .map(|p| p.into_owned())
        .unwrap_or_else(|_| raw_path.clone());
    let query = uri.query().unwrap_or("").to_string();
    let host_header = parts
        .headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_string);
    let server_name = host_header
        .as_deref()
        .map(|h| match h.rsplit_once(':') {
            Some((name, port)) if port.chars().all(|c| c.is_ascii_digit()) => name.to_string(),
            _ => h.to_string(),
        })
        .unwrap_or_else(|| local.ip().to_string());
    let authority = host_header.unwrap_or_else(|| local.to_string());
    let request_uri = uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| raw_path.clone());
    let header = |name: http::header::HeaderName| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let mut env = vec![
        ("GATEWAY_INTERFACE".to_string(), "CGI/1.1".to_string()),
        ("SERVER_SOFTWARE".into(), "wasmkube".into()),
        ("SERVER_PROTOCOL".into(), format!("{:?}", parts.version)),
        ("REQUEST_METHOD".into(), parts.method.as_str().to_string()),
        ("REQUEST_URI".into(), request_uri),
        ("SCRIPT_NAME".into(), String::new()),
        ("PATH_INFO".into(), path.clone()),
        ("PATH_TRANSLATED".into(), path),
        ("X_RAW_PATH_INFO".into(), raw_path.clone()),
        ("QUERY_STRING".into(), query),
        ("SERVER_NAME".into(), server_name),
        ("SERVER_PORT".into(), local.port().to_string()),
        ("REMOTE_ADDR".into(), remote.ip().to_string()),
        ("REMOTE_HOST".into(), remote.ip().to_string()),
        ("CONTENT_TYPE".into(), header(http::header::CONTENT_TYPE)),
        ("CONTENT_LENGTH".into(), content_length.to_string()),
        (
            "X_FULL_URL".into(),
            format!(
                "http://{authority}{}",
                uri.path_and_query().map(|p| p.as_str()).unwrap_or("/")
            ),
        ),
        ("X_MATCHED_ROUTE".into(), "/...".into()),
    ];
    let mut http_vars: Vec<(String, String)> = Vec::new();
    for (name, value) in &parts.headers {
        let n = name.as_str();
        // Content-* are passed above; Proxy must never become HTTP_PROXY ("httpoxy"), which
        // HTTP client libraries would take as their proxy setting.
        if n == "content-type" || n == "content-length" || n == "proxy" {
            continue;
        }
        let key = format!("HTTP_{}", n.to_ascii_uppercase().replace('-', "_"));
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        match http_vars.iter_mut().find(|(k, _)| *k == key) {
            Some((_, v)) => {
                v.push_str(", ");
                v.push_str(&value);
            }
            None => http_vars.push((key, value)),
        }
    }
    env.extend(http_vars);
    env
}

/// Parses CGI output: header lines, a blank line, the body. `Status: 404 Not Found` sets
/// the status; a `Location` without a status means a 302 redirect.
pub(crate) fn parse_cgi_output(out: Bytes) -> Result<hyper::Response<ResponseBody>, String> {
    let mut status: Option<u16> = None;
    let mut headers = http::HeaderMap::new();
    let mut pos = 0;
    let body_start = loop {
        let Some(nl) = out[pos..].iter().position(|&b| b == b'\n') else {
            return Err(if out.is_empty() {
                "no output".into()
            } else {
                "no blank line after the headers".into()
            });
        };
        let line = &out[pos..pos + nl];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        pos += nl + 1;
        if line.is_empty() {
            break pos;
        }
        let line =
            std::str::from_utf8(line).map_err(|_| "a header line is not utf-8".to_string())?;
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| format!("malformed header line {line:?}"))?;
        let (name, value) = (name.trim(), value.trim());
        if name.eq_ignore_ascii_case("status") {
            let code = value.split_whitespace().next().unwrap_or("");
            status = Some(
                code.parse::<u16>()
                    .ok()
                    .filter(|c| (100..1000).contains(c))
                    .ok_or_else(|| format!("invalid Status {value:?}"))?,
            );
            continue;
        }
        let name = http::HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| format!("invalid header name {name:?}"))?;
        let value = http::HeaderValue::from_str(value)
            .map_err(|_| format!("invalid value of header {name}"))?;
        headers.append(name, value);
    };
    let status = status.unwrap_or(if headers.contains_key(http::header::LOCATION) {
        302
    } else {
        200
    });
    let mut resp = hyper::Response::new(full(out.slice(body_start..)));
    *resp.status_mut() =
        http::StatusCode::from_u16(status).map_err(|_| format!("invalid status {status}"))?;
    *resp.headers_mut() = headers;
    Ok(resp)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;

    #[test]
    fn cgi_output_parses() {
        let r = parse_cgi_output(Bytes::from_static(
            b"Content-Type: text/plain\nX-A: 1\n\nhello\n",
        ))
        .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["content-type"], "text/plain");
        let r = parse_cgi_output(Bytes::from_static(
            b"Status: 404 Not Found\r\nContent-Type: text/html\r\n\r\n",
        ))
        .unwrap();
        assert_eq!(r.status(), 404);
        let r = parse_cgi_output(Bytes::from_static(b"Location: /elsewhere\n\n")).unwrap();
        assert_eq!(r.status(), 302);
        assert_eq!(r.headers()["location"], "/elsewhere");
        assert!(parse_cgi_output(Bytes::from_static(b"")).is_err());
        assert!(parse_cgi_output(Bytes::from_static(b"hello world")).is_err());
        assert!(parse_cgi_output(Bytes::from_static(b"no colon here\n\n")).is_err());
        assert!(parse_cgi_output(Bytes::from_static(b"Status: abc\n\n")).is_err());
    }

    #[test]
    fn cgi_env_has_request_and_headers() {
        let req = http::Request::builder()
            .method("POST")
            .uri("/a%20b/c?x=1&y=2")
            .header("host", "svc.example:8080")
            .header("content-type", "application/json")
            .header("x-trace", "t1")
            .header("x-trace", "t2")
            .header("proxy", "http://evil")
            .body(())
            .unwrap();
        let (parts, ()) = req.into_parts();
        let local: SocketAddr = "127.0.0.5:8080".parse().unwrap();
        let remote: SocketAddr = "127.0.0.1:40000".parse().unwrap();
        let env = cgi_env(&parts, 12, local, remote);
        let get = |k: &str| env.iter().find(|(ek, _)| ek == k).map(|(_, v)| v.as_str());
        assert_eq!(get("REQUEST_METHOD"), Some("POST"));
        assert_eq!(get("PATH_INFO"), Some("/a b/c"));
        assert_eq!(get("X_RAW_PATH_INFO"), Some("/a%20b/c"));
        assert_eq!(get("QUERY_STRING"), Some("x=1&y=2"));
        assert_eq!(get("SERVER_NAME"), Some("svc.example"));
        assert_eq!(get("SERVER_PORT"), Some("8080"));
        assert_eq!(get("CONTENT_TYPE"), Some("application/json"));
        assert_eq!(get("CONTENT_LENGTH"), Some("12"));
        assert_eq!(get("HTTP_X_TRACE"), Some("t1, t2"));
        assert_eq!(get("HTTP_PROXY"), None);
        assert_eq!(get("REMOTE_ADDR"), Some("127.0.0.1"));
    }
}
