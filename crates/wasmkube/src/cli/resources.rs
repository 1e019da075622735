//! Resource discovery and type-name resolution, as kubectl's RESTMapper does it.
//!
//! The server is asked what it serves (`/api/v1`, `/apis`, each group version) rather than
//! trusting a built-in table, so the CLI works against any Kubernetes-compatible server and
//! always agrees with the one it talks to.

use std::collections::HashSet;

use serde_json::Value;

use super::client::{Api, CallError, encode};

/// One resource the server serves (subresources excluded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceType {
    pub group: String,
    pub version: String,
    /// Plural, lower-case: the URL segment.
    pub resource: String,
    pub singular: String,
    pub kind: String,
    pub namespaced: bool,
    pub short_names: Vec<String>,
    pub categories: Vec<String>,
    pub verbs: Vec<String>,
    /// `scale`, `status`, `log` …
    pub subresources: Vec<String>,
    /// Whether this is the group's preferred version.
    pub preferred: bool,
}

impl ResourceType {
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    fn base_path(&self) -> String {
        if self.group.is_empty() {
            format!("/api/{}", self.version)
        } else {
            format!("/apis/{}/{}", self.group, self.version)
        }
    }

    /// The collection URL; `namespace` is ignored for cluster-scoped resources, and `None`
    /// on a namespaced resource means every namespace.
    pub fn collection_path(&self, namespace: Option<&str>) -> String {
        match namespace {
            Some(ns) if self.namespaced => {
                format!(
                    "{}/namespaces/{}/{}",
                    self.base_path(),
                    encode(ns),
                    self.resource
                )
            }
            _ => format!("{}/{}", self.base_path(), self.resource),
        }
    }

    pub fn object_path(&self, namespace: Option<&str>, name: &str) -> String {
        format!("{}/{}", self.collection_path(namespace), encode(name))
    }

    /// `deployment.apps`, `service`: how kubectl names the kind in `created`/`deleted` lines.
    pub fn display_kind(&self) -> String {
        let kind = self.kind.to_lowercase();
        if self.group.is_empty() {
            kind
        } else {
            format!("{kind}.{}", self.group)
        }
    }

    /// `deployments.apps`, `pods`: the group-resource the server's messages use.
    pub fn group_resource(&self) -> String {
        if self.group.is_empty() {
            self.resource.clone()
        } else {
            format!("{}.{}", self.resource, self.group)
        }
    }

    /// `deployment.apps/hello`.
    pub fn object_ref(&self, name: &str) -> String {
        format!("{}/{}", self.display_kind(), name)
    }

    pub fn has_subresource(&self, sub: &str) -> bool {
        self.subresources.iter().any(|s| s == sub)
    }

    pub fn supports(&self, verb: &str) -> bool {
        self.verbs.is_empty() || self.verbs.iter().any(|v| v == verb)
    }
}

/// Everything the server serves, in kubectl's priority order: the core group first, then groups
/// in the order `/apis` lists them, each group's preferred version before its others.
#[derive(Debug, Clone, Default)]
pub struct Discovery {
    resources: Vec<ResourceType>,
}

/// One group-version's `APIResourceList`, with whether it is the preferred version.
pub struct GroupVersionDoc {
    pub group: String,
    pub version: String,
    pub preferred: bool,
    pub list: Value,
}

/// Resources `get all` means when the server reports no categories.
const ALL_FALLBACK: &[&str] = &[
    "pods",
    "services",
    "daemonsets.apps",
    "deployments.apps",
    "replicasets.apps",
    "statefulsets.apps",
    "horizontalpodautoscalers.autoscaling",
    "jobs.batch",
    "cronjobs.batch",
];

impl Discovery {
    /// Reads discovery from the server: every group version, fetched concurrently.
    pub async fn load(api: &Api) -> Result<Self, CallError> {
        let mut targets: Vec<(String, String, bool, String)> =
            vec![(String::new(), "v1".into(), true, "/api/v1".into())];
        let groups = api.get("/apis").await?;
        for g in groups
            .get("groups")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let Some(name) = g.get("name").and_then(Value::as_str) else {
                continue;
            };
            let preferred = g
                .pointer("/preferredVersion/version")
                .and_then(Value::as_str);
            for v in g
                .get("versions")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let Some(version) = v.get("version").and_then(Value::as_str) else {
                    continue;
                };
                let is_preferred = preferred.is_none_or(|p| p == version);
                targets.push((
                    name.to_string(),
                    version.to_string(),
                    is_preferred,
                    format!("/apis/{name}/{version}"),
                ));
            }
        }
        let fetches = targets.iter().map(|(_, _, _, url)| api.get(url));
        let results = futures::future::join_all(fetches).await;
        let mut docs = Vec::new();
        for ((group, version, preferred, url), result) in targets.into_iter().zip(results) {
            match result {
                Ok(list) => docs.push(GroupVersionDoc {
                    group,
                    version,
                    preferred,
                    list,
                }),
                // The core group is essential; a broken extension group is only a warning,
                // as in kubectl ("couldn't get resource list for ...").
                Err(e) if group.is_empty() => return Err(e),
                Err(e) => eprintln!("couldn't get resource list for {url}: {e}"),
            }
        }
        Ok(Self::from_documents(docs))
    }

    /// Builds the table from discovery documents, in the order given (core first, then groups).
    pub fn from_documents(docs: Vec<GroupVersionDoc>) -> Self {
        let mut ordered: Vec<&GroupVersionDoc> = Vec::new();
        // Keep group order, but within each group put the preferred version first.
        let mut seen_groups: Vec<&str> = Vec::new();
        for d in &docs {
            if !seen_groups.contains(&d.group.as_str()) {
                seen_groups.push(&d.group);
            }
        }
        for g in seen_groups {
            let in_group = docs.iter().filter(|d| d.group == g);
            let (pref, rest): (Vec<_>, Vec<_>) = in_group.partition(|d| d.preferred);
            ordered.extend(pref);
            ordered.extend(rest);
        }
        let mut resources = Vec::new();
        for doc in ordered {
            let entries: Vec<&Value> = doc
                .list
                .get("resources")
                .and_then(Value::as_array)
                .map(|a| a.iter().collect())
                .unwrap_or_default();
            for e in &entries {
                let Some(name) = e.get("name").and_then(Value::as_str) else {
                    continue;
                };
                if name.contains('/') {
                    continue;
                }
                let strings = |field: &str| -> Vec<String> {
                    e.get(field)
                        .and_then(Value::as_array)
                        .map(|a| {
                            a.iter()
                                .filter_map(Value::as_str)
                                .map(str::to_string)
                                .collect()
                        })
                        .unwrap_or_default()
                };
                let kind = e
                    .get("kind")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                let singular = match e.get("singularName").and_then(Value::as_str) {
                    Some(s) if !s.is_empty() => s.to_string(),
                    _ => kind.to_lowercase(),
                };
                let prefix = format!("{name}/");
                let subresources = entries
                    .iter()
                    .filter_map(|s| s.get("name").and_then(Value::as_str))
                    .filter_map(|s| s.strip_prefix(&prefix))
                    .map(str::to_string)
                    .collect();
                resources.push(ResourceType {
                    group: doc.group.clone(),
                    version: doc.version.clone(),
                    resource: name.to_string(),
                    singular,
                    kind,
                    namespaced: e
                        .get("namespaced")
                        .and_then(Value::as_bool)
                        .unwrap_or(false),
                    short_names: strings("shortNames"),
                    categories: strings("categories"),
                    verbs: strings("verbs"),
                    subresources,
                    preferred: doc.preferred,
                });
            }
        }
        Self { resources }
    }

    pub fn all(&self) -> &[ResourceType] {
        &self.resources
    }

    /// Resolves what a user typed (`po`, `pods`, `pod`, `Pod`, `deployments.apps`,
    /// `deploy.v1.apps`, `Deployment.apps`) to a resource.
    pub fn resolve(&self, input: &str) -> Option<&ResourceType> {
        let name = input.trim().to_lowercase();
        if name.is_empty() {
            return None;
        }
        let matches_resource = |r: &ResourceType, n: &str| {
            r.resource == n || r.singular == n || r.short_names.iter().any(|s| s == n)
        };
        let matches_kind = |r: &ResourceType, n: &str| r.kind.to_lowercase() == n;
        // Whole input as a resource name first: names never contain dots, so this is cheap and
        // unambiguous.
        if let Some(r) = self.resources.iter().find(|r| matches_resource(r, &name)) {
            return Some(r);
        }
        if let Some((res, rest)) = name.split_once('.') {
            // resource.version.group
            if let Some((version, group)) = rest.split_once('.')
                && let Some(r) = self.resources.iter().find(|r| {
                    r.version == version
                        && r.group == group
                        && (matches_resource(r, res) || matches_kind(r, res))
                })
            {
                return Some(r);
            }
            // resource.group (a group with dots, like networking.k8s.io, lands here too)
            if let Some(r) = self
                .resources
                .iter()
                .find(|r| r.group == rest && (matches_resource(r, res) || matches_kind(r, res)))
            {
                return Some(r);
            }
        }
        self.resources.iter().find(|r| matches_kind(r, &name))
    }

    /// Resolves a type argument that may also be a category (`all`), to one or more resources.
    pub fn resolve_many(&self, input: &str) -> Option<Vec<&ResourceType>> {
        if let Some(r) = self.resolve(input) {
            return Some(vec![r]);
        }
        let category = input.trim().to_lowercase();
        let mut seen = HashSet::new();
        let mut out: Vec<&ResourceType> = self
            .resources
            .iter()
            .filter(|r| r.preferred && r.categories.contains(&category))
            .filter(|r| seen.insert((r.group.clone(), r.resource.clone())))
            .collect();
        if out.is_empty() && category == "all" {
            out = ALL_FALLBACK
                .iter()
                .filter_map(|n| self.resolve(n))
                .collect();
        }
        (!out.is_empty()).then_some(out)
    }

    /// The resource of a manifest's `apiVersion` and `kind`.
    pub fn for_kind(&self, api_version: &str, kind: &str) -> Option<&ResourceType> {
        let (group, version) = match api_version.split_once('/') {
            Some((g, v)) => (g, v),
            None => ("", api_version),
        };
        self.resources
            .iter()
            .find(|r| r.group == group && r.version == version && r.kind == kind)
    }
}

/// kubectl's message for a type it cannot map.
pub fn unknown_type(input: &str) -> anyhow::Error {
    anyhow::anyhow!("the server doesn't have a resource type \"{input}\"")
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::json;

    pub(crate) fn sample() -> Discovery {
        let core = json!({"resources": [
            {"name": "pods", "singularName": "pod", "namespaced": true, "kind": "Pod",
             "verbs": ["get", "list"], "shortNames": ["po"], "categories": ["all"]},
            {"name": "pods/log", "singularName": "", "namespaced": true, "kind": "Pod", "verbs": ["get"]},
            {"name": "services", "singularName": "service", "namespaced": true, "kind": "Service",
             "shortNames": ["svc"], "categories": ["all"]},
            {"name": "namespaces", "singularName": "namespace", "namespaced": false, "kind": "Namespace",
             "shortNames": ["ns"]},
            {"name": "configmaps", "singularName": "configmap", "namespaced": true, "kind": "ConfigMap",
             "shortNames": ["cm"]},
            {"name": "events", "singularName": "event", "namespaced": true, "kind": "Event",
             "shortNames": ["ev"]},
        ]});
        let apps = json!({"resources": [
            {"name": "deployments", "singularName": "deployment", "namespaced": true, "kind": "Deployment",
             "shortNames": ["deploy"], "categories": ["all"]},
            {"name": "deployments/scale", "singularName": "", "namespaced": true, "kind": "Scale"},
        ]});
        let events = json!({"resources": [
            {"name": "events", "singularName": "event", "namespaced": true, "kind": "Event",
             "shortNames": ["ev"]},
        ]});
        let autoscaling_v2 = json!({"resources": [
            {"name": "horizontalpodautoscalers", "singularName": "horizontalpodautoscaler",
             "namespaced": true, "kind": "HorizontalPodAutoscaler", "shortNames": ["hpa"], "categories": ["all"]},
        ]});
        let autoscaling_v1 = json!({"resources": [
            {"name": "horizontalpodautoscalers", "singularName": "horizontalpodautoscaler",
             "namespaced": true, "kind": "HorizontalPodAutoscaler", "shortNames": ["hpa"], "categories": ["all"]},
        ]});
        let doc = |g: &str, v: &str, p: bool, list: Value| GroupVersionDoc {
            group: g.into(),
            version: v.into(),
            preferred: p,
            list,
        };
        Discovery::from_documents(vec![
            doc("", "v1", true, core),
            doc("apps", "v1", true, apps),
            doc("events.k8s.io", "v1", true, events),
            doc("autoscaling", "v1", false, autoscaling_v1),
            doc("autoscaling", "v2", true, autoscaling_v2),
        ])
    }

    #[test]
    fn short_plural_singular_and_kind_names_resolve() {
        let d = sample();
        for input in ["po", "pods", "pod", "Pod", "PODS"] {
            assert_eq!(
                d.resolve(input).map(|r| r.resource.as_str()),
                Some("pods"),
                "{input}"
            );
        }
        for input in [
            "deploy",
            "deployment",
            "deployments.apps",
            "deploy.v1.apps",
            "Deployment.apps",
        ] {
            assert_eq!(
                d.resolve(input).map(|r| r.group.as_str()),
                Some("apps"),
                "{input}"
            );
        }
        assert_eq!(d.resolve("svc").map(|r| r.kind.as_str()), Some("Service"));
        assert_eq!(d.resolve("cm").map(|r| r.kind.as_str()), Some("ConfigMap"));
        assert!(d.resolve("nope").is_none());
        assert!(d.resolve("deployments.batch").is_none());
    }

    #[test]
    fn core_wins_and_group_selects() {
        let d = sample();
        assert_eq!(d.resolve("ev").map(|r| r.group.as_str()), Some(""));
        assert_eq!(
            d.resolve("events.events.k8s.io").map(|r| r.group.as_str()),
            Some("events.k8s.io")
        );
        // Preferred version first, even when discovery listed another first.
        assert_eq!(d.resolve("hpa").map(|r| r.version.as_str()), Some("v2"));
        assert_eq!(
            d.resolve("hpa.v1.autoscaling").map(|r| r.version.as_str()),
            Some("v1")
        );
    }

    #[test]
    fn subresources_are_attached_not_listed() {
        let d = sample();
        let pods = d.resolve("pods").expect("pods");
        assert!(pods.has_subresource("log"));
        assert!(
            d.resolve("deploy")
                .is_some_and(|r| r.has_subresource("scale"))
        );
        assert!(!d.all().iter().any(|r| r.resource.contains('/')));
    }

    #[test]
    fn all_category_expands() {
        let d = sample();
        let all: Vec<String> = d
            .resolve_many("all")
            .expect("all")
            .iter()
            .map(|r| r.group_resource())
            .collect();
        assert_eq!(
            all,
            [
                "pods",
                "services",
                "deployments.apps",
                "horizontalpodautoscalers.autoscaling"
            ]
        );
    }

    #[test]
    fn paths_and_names() {
        let d = sample();
        let deploy = d.for_kind("apps/v1", "Deployment").expect("deployment");
        assert_eq!(
            deploy.object_path(Some("default"), "hello"),
            "/apis/apps/v1/namespaces/default/deployments/hello"
        );
        assert_eq!(deploy.collection_path(None), "/apis/apps/v1/deployments");
        assert_eq!(deploy.object_ref("hello"), "deployment.apps/hello");
        assert_eq!(deploy.group_resource(), "deployments.apps");
        let ns = d.for_kind("v1", "Namespace").expect("namespace");
        assert_eq!(
            ns.object_path(Some("default"), "kube-system"),
            "/api/v1/namespaces/kube-system"
        );
        assert_eq!(ns.object_ref("x"), "namespace/x");
        assert!(d.for_kind("apps/v2", "Deployment").is_none());
    }
}
