//! Parsing what a request names: the resource path, its query parameters and the media types it
//! sends and accepts.

use std::collections::HashMap;

use axum::http::HeaderMap;
use wasmkube_api::registry::{self, ResourceInfo, Subresource};

use crate::error::{ApiError, ApiResult};

/// A request URL resolved against the registry.
#[derive(Debug, Clone)]
pub struct ResourcePath {
    pub info: &'static ResourceInfo,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub subresource: Option<Subresource>,
    /// The legacy `/watch/` path prefix was used.
    pub watch_prefix: bool,
}

/// Resolves `/api/v1/...` and `/apis/GROUP/VERSION/...` paths. `None` when the path is not a
/// resource path at all (the caller answers 404).
pub fn parse_path(path: &str) -> ApiResult<ResourcePath> {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, version, rest) = match segs.as_slice() {
        ["api", version, rest @ ..] => ("", *version, rest),
        ["apis", group, version, rest @ ..] => (*group, *version, rest),
        _ => return Err(ApiError::path_not_found()),
    };
    let (watch_prefix, rest) = match rest {
        ["watch", rest @ ..] => (true, rest),
        _ => (false, rest),
    };
    let decode = |s: &str| -> ApiResult<String> {
        let d = urlencoding::decode(s)
            .map_err(|_| ApiError::bad_request(format!("invalid path segment {s:?}")))?
            .into_owned();
        if d.is_empty() {
            return Err(ApiError::path_not_found());
        }
        Ok(d)
    };
    let sub = |info: &ResourceInfo, s: &str| -> ApiResult<Subresource> {
        info.subresources
            .iter()
            .copied()
            .find(|x| x.name() == s)
            .ok_or_else(ApiError::path_not_found)
    };
    let lookup = |resource: &str| {
        registry::lookup(group, version, resource).ok_or_else(ApiError::path_not_found)
    };
    let namespaced_lookup =
        |resource: &str| registry::lookup(group, version, resource).filter(|info| info.namespaced);
    let parsed = match rest {
        [resource] => ResourcePath {
            info: lookup(resource)?,
            namespace: None,
            name: None,
            subresource: None,
            watch_prefix,
        },
        ["namespaces", ns, resource] if namespaced_lookup(resource).is_some() => ResourcePath {
            info: lookup(resource)?,
            namespace: Some(decode(ns)?),
            name: None,
            subresource: None,
            watch_prefix,
        },
        ["namespaces", ns, resource, name] if namespaced_lookup(resource).is_some() => {
            ResourcePath {
                info: lookup(resource)?,
                namespace: Some(decode(ns)?),
                name: Some(decode(name)?),
                subresource: None,
                watch_prefix,
            }
        }
        ["namespaces", ns, resource, name, subresource]
            if namespaced_lookup(resource).is_some() =>
        {
            let info = lookup(resource)?;
            ResourcePath {
                info,
                namespace: Some(decode(ns)?),
                name: Some(decode(name)?),
                subresource: Some(sub(info, subresource)?),
                watch_prefix,
            }
        }
        [resource, name] => {
            let info = lookup(resource)?;
            if info.namespaced {
                return Err(ApiError::path_not_found());
            }
            ResourcePath {
                info,
                namespace: None,
                name: Some(decode(name)?),
                subresource: None,
                watch_prefix,
            }
        }
        [resource, name, subresource] => {
            let info = lookup(resource)?;
            if info.namespaced {
                return Err(ApiError::path_not_found());
            }
            // `namespaces/NAME/finalize` is the namespace's own finalize subresource.
            let subresource = if info.resource == "namespaces" && *subresource == "finalize" {
                Subresource::Status
            } else {
                sub(info, subresource)?
            };
            ResourcePath {
                info,
                namespace: None,
                name: Some(decode(name)?),
                subresource: Some(subresource),
                watch_prefix,
            }
        }
        _ => return Err(ApiError::path_not_found()),
    };
    Ok(parsed)
}

/// Query parameters, decoded once.
#[derive(Debug, Default, Clone)]
pub struct Query(pub HashMap<String, String>);

impl Query {
    pub fn parse(raw: Option<&str>) -> Self {
        let mut map = HashMap::new();
        if let Some(raw) = raw {
            for pair in raw.split('&').filter(|p| !p.is_empty()) {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                let k = decode_component(k);
                let v = decode_component(v);
                map.insert(k, v);
            }
        }
        Query(map)
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    pub fn flag(&self, key: &str) -> bool {
        matches!(self.0.get(key).map(String::as_str), Some("true" | "1" | ""))
            && self.0.contains_key(key)
    }

    pub fn int(&self, key: &str) -> ApiResult<Option<i64>> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v.parse::<i64>().map(Some).map_err(|_| {
                ApiError::bad_request(format!("invalid value for {key}: {v:?} is not an integer"))
            }),
        }
    }

    /// `dryRun=All` means validate and answer but persist nothing; any other value is refused.
    pub fn dry_run(&self) -> ApiResult<bool> {
        match self.get("dryRun") {
            None => Ok(false),
            Some("All") => Ok(true),
            Some(other) => Err(ApiError::bad_request(format!(
                "Invalid dry run value: {other:?}: supported values: \"All\""
            ))),
        }
    }

    pub fn field_validation(&self) -> ApiResult<FieldValidation> {
        match self.get("fieldValidation") {
            None | Some("Warn") => Ok(FieldValidation::Warn),
            Some("Strict") => Ok(FieldValidation::Strict),
            Some("Ignore") => Ok(FieldValidation::Ignore),
            Some(other) => Err(ApiError::bad_request(format!(
                "fieldValidation: Unsupported value: {other:?}: supported values: \"Ignore\", \"Strict\", \"Warn\""
            ))),
        }
    }
}

fn decode_component(s: &str) -> String {
    let plus_as_space = s.replace('+', " ");
    urlencoding::decode(&plus_as_space)
        .map(|c| c.into_owned())
        .unwrap_or(plus_as_space)
}

/// What to do with fields the schema does not know (`fieldValidation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldValidation {
    Ignore,
    Warn,
    Strict,
}

/// The body formats a write may carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFormat {
    Json,
    Yaml,
    JsonPatch,
    MergePatch,
    StrategicMergePatch,
    ApplyPatch,
    /// Kubernetes' protobuf envelope, which client-go's typed clients (e.g. `kubectl create`)
    /// send.
    Protobuf,
}

pub fn content_type(headers: &HeaderMap) -> ApiResult<BodyFormat> {
    let raw = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json");
    let media = raw
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    Ok(match media.as_str() {
        "" | "application/json" | "*/*" => BodyFormat::Json,
        "application/yaml" | "application/x-yaml" | "text/yaml" => BodyFormat::Yaml,
        "application/json-patch+json" => BodyFormat::JsonPatch,
        "application/merge-patch+json" => BodyFormat::MergePatch,
        "application/strategic-merge-patch+json" => BodyFormat::StrategicMergePatch,
        "application/apply-patch+yaml" | "application/apply-patch+cbor" => BodyFormat::ApplyPatch,
        "application/vnd.kubernetes.protobuf" => BodyFormat::Protobuf,
        _ => return Err(ApiError::unsupported_media_type(raw)),
    })
}

/// How the client wants the answer: plain JSON, or a `meta.k8s.io` Table (what `kubectl get`
/// asks for), or only object metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accept {
    Json,
    Table,
    Yaml,
}

pub fn accept(headers: &HeaderMap) -> ApiResult<Accept> {
    let raw = match headers
        .get(axum::http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
    {
        Some(raw) if !raw.trim().is_empty() => raw,
        _ => return Ok(Accept::Json),
    };
    // Clients list preferences in order; take the first we can serve.
    for part in raw.split(',') {
        let mut params = part.split(';').map(str::trim);
        let media = params.next().unwrap_or("").to_ascii_lowercase();
        let params: Vec<&str> = params.collect();
        let is_table = params.iter().any(|p| p.eq_ignore_ascii_case("as=Table"))
            && !params
                .iter()
                .any(|p| p.eq_ignore_ascii_case("g=apidiscovery.k8s.io"));
        let other_as = params.iter().any(|p| {
            p.to_ascii_lowercase().starts_with("as=") && !p.eq_ignore_ascii_case("as=Table")
        });
        match media.as_str() {
            "application/json" | "*/*" | "application/*" => {
                if is_table {
                    return Ok(Accept::Table);
                }
                if other_as {
                    // e.g. PartialObjectMetadata or aggregated discovery: not offered, try next.
                    continue;
                }
                return Ok(Accept::Json);
            }
            "application/yaml" => return Ok(Accept::Yaml),
            _ => continue,
        }
    }
    Err(ApiError::not_acceptable(format!(
        "only the following media types are accepted: application/json, application/yaml (asked for {raw:?})"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        let p = parse_path("/api/v1/namespaces/default/pods/x/status").expect("pod status");
        assert_eq!(p.info.resource, "pods");
        assert_eq!(p.namespace.as_deref(), Some("default"));
        assert_eq!(p.name.as_deref(), Some("x"));
        assert_eq!(p.subresource, Some(Subresource::Status));

        let p = parse_path("/api/v1/namespaces/kube-system").expect("namespace item");
        assert_eq!(p.info.resource, "namespaces");
        assert_eq!(p.name.as_deref(), Some("kube-system"));

        let p = parse_path("/apis/apps/v1/deployments").expect("all deployments");
        assert!(p.namespace.is_none() && p.name.is_none());

        let p = parse_path("/api/v1/watch/namespaces/a/pods").expect("legacy watch");
        assert!(p.watch_prefix);

        assert!(parse_path("/api/v1/namespaces/a/nonexistent").is_err());
        assert!(parse_path("/api/v1/pods/x").is_err(), "pods are namespaced");
        assert!(parse_path("/apis/apps/v1/namespaces/a/deployments/x/log").is_err());
    }

    #[test]
    fn accept_header() {
        let mut h = HeaderMap::new();
        h.insert(
            "accept",
            "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
                .parse()
                .expect("header"),
        );
        assert_eq!(accept(&h).expect("table"), Accept::Table);
        h.insert(
            "accept",
            "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json"
                .parse()
                .expect("header"),
        );
        assert_eq!(accept(&h).expect("json"), Accept::Json);
        h.insert(
            "accept",
            "application/vnd.kubernetes.protobuf"
                .parse()
                .expect("header"),
        );
        assert!(accept(&h).is_err());
    }

    #[test]
    fn query() {
        let q = Query::parse(Some(
            "labelSelector=app%3Dweb%2Ctier+in+(a)&watch=1&limit=5",
        ));
        assert_eq!(q.get("labelSelector"), Some("app=web,tier in (a)"));
        assert!(q.flag("watch"));
        assert_eq!(q.int("limit").expect("int"), Some(5));
    }
}
