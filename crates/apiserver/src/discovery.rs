//! Discovery: `/version`, `/api`, `/apis` and the per-group-version resource lists kubectl
//! reads to map kinds and short names to URLs.

use serde_json::{Value, json};
use wasmkube_api::registry::{self, ResourceInfo};

pub const KUBERNETES_VERSION: &str = "v1.37.0";

pub fn version() -> Value {
    json!({
        "major": "1",
        "minor": "37",
        "emulationMajor": "1",
        "emulationMinor": "37",
        "minCompatibilityMajor": "1",
        "minCompatibilityMinor": "36",
        "gitVersion": format!("{KUBERNETES_VERSION}+wasmkube-{}", env!("CARGO_PKG_VERSION")),
        "gitCommit": "",
        "gitTreeState": "clean",
        "buildDate": "",
        "goVersion": "",
        "compiler": "rustc",
        "platform": format!("{}/{}", std::env::consts::OS, goarch()),
    })
}

/// Go's name for this architecture, which is what Kubernetes clients expect.
pub fn goarch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        other => other,
    }
}

pub fn core_versions() -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": ""}],
    })
}

fn group_entry(group: &str) -> Value {
    let versions: Vec<Value> = registry::group_versions()
        .into_iter()
        .filter(|(g, _)| *g == group)
        .map(|(g, v)| json!({"groupVersion": format!("{g}/{v}"), "version": v}))
        .collect();
    let preferred = versions.first().cloned().unwrap_or(Value::Null);
    json!({"name": group, "versions": versions, "preferredVersion": preferred})
}

pub fn group_list() -> Value {
    let mut groups: Vec<&str> = Vec::new();
    for (g, _) in registry::group_versions() {
        if !groups.contains(&g) {
            groups.push(g);
        }
    }
    let mut groups: Vec<Value> = groups.into_iter().map(group_entry).collect();
    groups.push(crate::metrics::group_entry());
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

pub fn group(group: &str) -> Option<Value> {
    if group == crate::metrics::GROUP {
        let mut entry = crate::metrics::group_entry();
        entry["kind"] = json!("APIGroup");
        entry["apiVersion"] = json!("v1");
        return Some(entry);
    }
    registry::group_versions()
        .iter()
        .any(|(g, _)| *g == group)
        .then(|| {
            let mut entry = group_entry(group);
            entry["kind"] = json!("APIGroup");
            entry["apiVersion"] = json!("v1");
            entry
        })
}

fn resource_entry(r: &ResourceInfo) -> Value {
    let mut v = json!({
        "name": r.resource,
        "singularName": r.singular,
        "namespaced": r.namespaced,
        "kind": r.kind,
        "verbs": r.verbs(),
    });
    if !r.short_names.is_empty() {
        v["shortNames"] = json!(r.short_names);
    }
    if !r.categories.is_empty() {
        v["categories"] = json!(r.categories);
    }
    v["storageVersionHash"] = json!(storage_version_hash(r));
    v
}

fn storage_version_hash(r: &ResourceInfo) -> String {
    // Stable per group/version/kind, as clients only compare it for equality.
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (r.group, r.version, r.kind).hash(&mut h);
    format!("{:016x}", h.finish())[..11].to_string()
}

pub fn resource_list(group: &str, version: &str) -> Option<Value> {
    if (group, version) == (crate::metrics::GROUP, crate::metrics::VERSION) {
        return Some(crate::metrics::resource_list());
    }
    let mut resources = Vec::new();
    for r in registry::resources_in(group, version) {
        resources.push(resource_entry(r));
        for sub in r.subresources {
            let (g, v, kind) = sub.kind(r.kind);
            let mut e = json!({
                "name": format!("{}/{}", r.resource, sub.name()),
                "singularName": "",
                "namespaced": r.namespaced,
                "kind": kind,
                "verbs": sub.verbs(),
            });
            if !g.is_empty() {
                e["group"] = json!(g);
                e["version"] = json!(v);
            }
            resources.push(e);
        }
    }
    if resources.is_empty() {
        return None;
    }
    let gv = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Some(json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": gv,
        "resources": resources,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_lists_pods_with_subresources() {
        let list = resource_list("", "v1").expect("core");
        let names: Vec<&str> = list["resources"]
            .as_array()
            .expect("array")
            .iter()
            .filter_map(|r| r["name"].as_str())
            .collect();
        assert!(names.contains(&"pods"));
        assert!(names.contains(&"pods/status"));
        assert!(names.contains(&"pods/log"));
        assert!(resource_list("apps", "v2").is_none());
        assert!(group("apps").is_some());
        assert!(group("nope").is_none());
    }
}
