//! Host and path routing of the Ingresses of our class, merged into one table (pure).
//!
//! Kubernetes' rules, in order:
//! - the host: an exact `host` first, then a wildcard (`*.example.com` matches exactly one
//!   more label, so `a.example.com` but neither `example.com` nor `a.b.example.com`), then
//!   rules without a host;
//! - within the host chosen, an `Exact` path equal to the request path wins over any
//!   `Prefix`; among prefixes the longest wins, matched element by element (`/foo` matches
//!   `/foo`, `/foo/` and `/foo/bar`, not `/foobar`); `ImplementationSpecific` is `Prefix`;
//! - no host or path matching: the `defaultBackend`.
//!
//! When Ingresses conflict (the same host and path, or two default backends) the oldest
//! wins, as ingress-nginx does.

use std::collections::HashMap;
use std::sync::Arc;

use k8s_openapi::api::networking::v1::{Ingress, IngressBackend};

/// A Service port a route sends to.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct BackendRef {
    pub namespace: String,
    pub service: String,
    pub port: PortRef,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum PortRef {
    Number(i32),
    Name(String),
}

#[derive(Default, Debug)]
struct HostRoutes {
    exact: HashMap<String, BackendRef>,
    /// (path elements, backend), longest first.
    prefixes: Vec<(Vec<String>, BackendRef)>,
}

impl HostRoutes {
    fn route(&self, path: &str) -> Option<&BackendRef> {
        if let Some(b) = self.exact.get(path) {
            return Some(b);
        }
        let elements = elements(path);
        self.prefixes
            .iter()
            .find(|(prefix, _)| {
                elements.len() >= prefix.len() && elements[..prefix.len()] == prefix[..]
            })
            .map(|(_, b)| b)
    }

    fn add(&mut self, path_type: &str, path: &str, backend: BackendRef) {
        if path_type == "Exact" {
            self.exact.entry(path.to_string()).or_insert(backend);
        } else {
            let e = elements(path);
            if !self.prefixes.iter().any(|(p, _)| *p == e) {
                self.prefixes.push((e, backend));
                // Stable: among equal lengths the older Ingress stays first.
                self.prefixes.sort_by_key(|p| std::cmp::Reverse(p.0.len()));
            }
        }
    }
}

fn elements(path: &str) -> Vec<String> {
    path.split('/')
        .filter(|e| !e.is_empty())
        .map(str::to_string)
        .collect()
}

/// The merged routes of every Ingress of our class.
#[derive(Default, Debug)]
pub struct RouteTable {
    exact_hosts: HashMap<String, HostRoutes>,
    /// Wildcard hosts by their suffix (`*.example.com` → `.example.com`).
    wildcard_hosts: HashMap<String, HostRoutes>,
    any_host: Option<HostRoutes>,
    default: Option<BackendRef>,
}

impl RouteTable {
    /// Builds the table from `ingresses` (only ours should be passed).
    pub fn build(ingresses: &[Arc<Ingress>]) -> RouteTable {
        let mut ingresses: Vec<&Arc<Ingress>> = ingresses.iter().collect();
        ingresses.sort_by(|a, b| {
            let ka = (
                &a.metadata.creation_timestamp,
                &a.metadata.namespace,
                &a.metadata.name,
            );
            let kb = (
                &b.metadata.creation_timestamp,
                &b.metadata.namespace,
                &b.metadata.name,
            );
            ka.partial_cmp(&kb).unwrap_or(std::cmp::Ordering::Equal)
        });
        let mut t = RouteTable::default();
        for ing in ingresses {
            let ns = ing.metadata.namespace.clone().unwrap_or_default();
            let Some(spec) = ing.spec.as_ref() else {
                continue;
            };
            if t.default.is_none()
                && let Some(b) = spec.default_backend.as_ref().and_then(|b| backend(&ns, b))
            {
                t.default = Some(b);
            }
            for rule in spec.rules.iter().flatten() {
                let host = rule.host.as_deref().unwrap_or("").to_ascii_lowercase();
                let routes = if host.is_empty() {
                    t.any_host.get_or_insert_with(HostRoutes::default)
                } else if let Some(suffix) = host.strip_prefix('*') {
                    t.wildcard_hosts.entry(suffix.to_string()).or_default()
                } else {
                    t.exact_hosts.entry(host).or_default()
                };
                let Some(http) = rule.http.as_ref() else {
                    continue;
                };
                for p in &http.paths {
                    let Some(b) = backend(&ns, &p.backend) else {
                        continue;
                    };
                    routes.add(&p.path_type, p.path.as_deref().unwrap_or("/"), b);
                }
            }
        }
        t
    }

    /// The backend for a request to `host` (the Host header, a port allowed) and `path` (a
    /// query allowed); `None` is a 404.
    pub fn route(&self, host: &str, path: &str) -> Option<&BackendRef> {
        let host = strip_port(host).to_ascii_lowercase();
        let path = path.split(['?', '#']).next().unwrap_or("/");
        let routes = self.exact_hosts.get(&host).or_else(|| {
            host.find('.')
                .and_then(|dot| self.wildcard_hosts.get(&host[dot..]))
                .or(self.any_host.as_ref())
        });
        routes.and_then(|r| r.route(path)).or(self.default.as_ref())
    }

    /// Whether anything routes at all (no Ingress of ours, no table).
    pub fn is_empty(&self) -> bool {
        self.exact_hosts.is_empty()
            && self.wildcard_hosts.is_empty()
            && self.any_host.is_none()
            && self.default.is_none()
    }
}

fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host.split(']').next().map(|h| &h[1..]).unwrap_or(host);
    }
    match host.rsplit_once(':') {
        Some((h, p)) if p.chars().all(|c| c.is_ascii_digit()) => h,
        _ => host,
    }
}

fn backend(namespace: &str, b: &IngressBackend) -> Option<BackendRef> {
    let svc = b.service.as_ref()?;
    let port = svc.port.as_ref()?;
    let port = match (port.number, port.name.as_ref()) {
        (Some(n), _) if n != 0 => PortRef::Number(n),
        (_, Some(name)) if !name.is_empty() => PortRef::Name(name.clone()),
        _ => return None,
    };
    Some(BackendRef {
        namespace: namespace.to_string(),
        service: svc.name.clone(),
        port,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ing(name: &str, created: &str, spec: serde_json::Value) -> Arc<Ingress> {
        Arc::new(
            serde_json::from_value(json!({
                "metadata": {"name": name, "namespace": "default", "creationTimestamp": created},
                "spec": spec,
            }))
            .unwrap(),
        )
    }

    fn path(p: &str, ty: &str, svc: &str) -> serde_json::Value {
        json!({"path": p, "pathType": ty, "backend": {"service": {"name": svc, "port": {"number": 80}}}})
    }

    fn svc_of(t: &RouteTable, host: &str, p: &str) -> Option<String> {
        t.route(host, p).map(|b| b.service.clone())
    }

    #[test]
    fn exact_beats_prefix_and_the_longest_prefix_wins() {
        let t = RouteTable::build(&[ing(
            "a",
            "2026-01-01T00:00:00Z",
            json!({"rules": [{
                "host": "shop.example",
                "http": {"paths": [
                    path("/", "Prefix", "root"),
                    path("/api", "Prefix", "api"),
                    path("/api/v2", "ImplementationSpecific", "api-v2"),
                    path("/api", "Exact", "api-exact"),
                ]},
            }]}),
        )]);
        assert_eq!(
            svc_of(&t, "shop.example", "/api").as_deref(),
            Some("api-exact")
        );
        assert_eq!(svc_of(&t, "shop.example", "/api/").as_deref(), Some("api"));
        assert_eq!(
            svc_of(&t, "shop.example", "/api/v1/x").as_deref(),
            Some("api")
        );
        assert_eq!(
            svc_of(&t, "shop.example", "/api/v2").as_deref(),
            Some("api-v2")
        );
        assert_eq!(
            svc_of(&t, "shop.example", "/api/v2/items?x=1").as_deref(),
            Some("api-v2")
        );
        // Element-wise: /apix is not under /api.
        assert_eq!(svc_of(&t, "shop.example", "/apix").as_deref(), Some("root"));
        assert_eq!(
            svc_of(&t, "SHOP.example:8080", "/").as_deref(),
            Some("root")
        );
        // No rule for this host and no default backend: 404.
        assert_eq!(svc_of(&t, "other.example", "/"), None);
    }

    #[test]
    fn prefix_semantics_follow_kubernetes_examples() {
        // The table of https://kubernetes.io/docs/concepts/services-networking/ingress/#examples
        let cases = [
            ("/foo", "/foo", true),
            ("/foo", "/foo/", true),
            ("/foo/", "/foo", true),
            ("/foo/", "/foo/", true),
            ("/aaa/bb", "/aaa/bbb", false),
            ("/aaa/bbb", "/aaa/bbb", true),
            ("/aaa/bbb/", "/aaa/bbb", true),
            ("/aaa/bbb", "/aaa/bbb/", true),
            ("/aaa/bbb", "/aaa/bbb/ccc", true),
            ("/aaa/bbb", "/aaa/bbbxyz", false),
            ("/", "/anything", true),
        ];
        for (prefix, req, matches) in cases {
            let t = RouteTable::build(&[ing(
                "a",
                "2026-01-01T00:00:00Z",
                json!({"rules": [{
                    "http": {"paths": [path(prefix, "Prefix", "s")]},
                }]}),
            )]);
            assert_eq!(
                t.route("h", req).is_some(),
                matches,
                "prefix {prefix} request {req}"
            );
        }
        let t = RouteTable::build(&[ing(
            "a",
            "2026-01-01T00:00:00Z",
            json!({"rules": [{
                "http": {"paths": [path("/foo", "Exact", "s")]},
            }]}),
        )]);
        assert!(t.route("h", "/foo").is_some());
        assert!(t.route("h", "/foo/").is_none());
        assert!(t.route("h", "/foo/bar").is_none());
    }

    #[test]
    fn host_rules_come_before_wildcards_catch_alls_and_the_default_backend() {
        let t = RouteTable::build(&[
            ing(
                "b",
                "2026-01-02T00:00:00Z",
                json!({
                    "defaultBackend": {"service": {"name": "fallback-newer", "port": {"number": 80}}},
                    "rules": [{"host": "*.example.com", "http": {"paths": [path("/", "Prefix", "wild")]}},
                              {"http": {"paths": [path("/", "Prefix", "any")]}}],
                }),
            ),
            ing(
                "a",
                "2026-01-01T00:00:00Z",
                json!({
                    "defaultBackend": {"service": {"name": "fallback", "port": {"name": "http"}}},
                    "rules": [{"host": "a.example.com", "http": {"paths": [path("/app", "Prefix", "exact-host")]}}],
                }),
            ),
        ]);
        assert_eq!(
            svc_of(&t, "a.example.com", "/app/x").as_deref(),
            Some("exact-host")
        );
        // The exact host has no route for / : its host rules win, then the default backend.
        assert_eq!(
            svc_of(&t, "a.example.com", "/").as_deref(),
            Some("fallback")
        );
        assert_eq!(svc_of(&t, "b.example.com", "/").as_deref(), Some("wild"));
        // A wildcard covers exactly one label.
        assert_eq!(svc_of(&t, "x.b.example.com", "/").as_deref(), Some("any"));
        assert_eq!(svc_of(&t, "example.com", "/").as_deref(), Some("any"));
        assert_eq!(
            t.route("a.example.com", "/").unwrap().port,
            PortRef::Name("http".into())
        );
    }

    #[test]
    fn the_oldest_ingress_wins_a_conflict() {
        let t = RouteTable::build(&[
            ing(
                "new",
                "2026-01-02T00:00:00Z",
                json!({"rules": [{"host": "h", "http": {"paths": [path("/x", "Prefix", "new")]}}]}),
            ),
            ing(
                "old",
                "2026-01-01T00:00:00Z",
                json!({"rules": [{"host": "h", "http": {"paths": [path("/x", "Prefix", "old")]}}]}),
            ),
        ]);
        assert_eq!(svc_of(&t, "h", "/x").as_deref(), Some("old"));
    }
}
