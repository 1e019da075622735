//! A container's environment, resolved as Kubernetes does: `envFrom` sources first, then `env`
//! in order, with `$(VAR)` references expanded against what is defined before them.

use std::collections::BTreeMap;

use base64::Engine;
use k8s_openapi::api::core::v1::{
    ConfigMap, Container, PersistentVolume, PersistentVolumeClaim, Pod, Secret,
};
use kube::api::Api;
use serde_json::Value;

#[derive(Debug, thiserror::Error)]
pub enum EnvError {
    #[error("configmap \"{0}\" not found")]
    ConfigMapNotFound(String),
    #[error("secret \"{0}\" not found")]
    SecretNotFound(String),
    #[error("couldn't find key {key} in ConfigMap {namespace}/{name}")]
    ConfigMapKey {
        key: String,
        namespace: String,
        name: String,
    },
    #[error("couldn't find key {key} in Secret {namespace}/{name}")]
    SecretKey {
        key: String,
        namespace: String,
        name: String,
    },
    #[error("unsupported fieldPath: {0}")]
    FieldPath(String),
    #[error("reading {what}")]
    Api {
        what: String,
        #[source]
        source: kube::Error,
    },
}

/// Reads ConfigMaps and Secrets of one namespace, each at most once per resolution.
pub struct Sources {
    client: kube::Client,
    namespace: String,
    config_maps: BTreeMap<String, Option<ConfigMap>>,
    secrets: BTreeMap<String, Option<Secret>>,
}

/// One lookup through the API.
async fn lookup<K>(api: Api<K>, what: String, name: &str) -> Result<Option<K>, EnvError>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    api.get_opt(name)
        .await
        .map_err(|source| EnvError::Api { what, source })
}

impl Sources {
    pub fn new(client: kube::Client, namespace: &str) -> Self {
        Sources {
            client,
            namespace: namespace.to_string(),
            config_maps: BTreeMap::new(),
            secrets: BTreeMap::new(),
        }
    }

    pub async fn config_map(&mut self, name: &str) -> Result<Option<&ConfigMap>, EnvError> {
        if !self.config_maps.contains_key(name) {
            let api = Api::namespaced(self.client.clone(), &self.namespace);
            let cm = lookup(api, format!("configmap {name}"), name).await?;
            self.config_maps.insert(name.to_string(), cm);
        }
        Ok(self.config_maps.get(name).and_then(Option::as_ref))
    }

    pub async fn secret(&mut self, name: &str) -> Result<Option<&Secret>, EnvError> {
        if !self.secrets.contains_key(name) {
            let api = Api::namespaced(self.client.clone(), &self.namespace);
            let s = lookup(api, format!("secret {name}"), name).await?;
            self.secrets.insert(name.to_string(), s);
        }
        Ok(self.secrets.get(name).and_then(Option::as_ref))
    }

    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// A PersistentVolumeClaim of the pod's namespace (not cached: it is read once per
    /// volume set-up).
    pub async fn claim(&self, name: &str) -> Result<Option<PersistentVolumeClaim>, EnvError> {
        let api = Api::namespaced(self.client.clone(), &self.namespace);
        lookup(api, format!("persistentvolumeclaim {name}"), name).await
    }

    /// A PersistentVolume.
    pub async fn volume(&self, name: &str) -> Result<Option<PersistentVolume>, EnvError> {
        lookup(
            Api::all(self.client.clone()),
            format!("persistentvolume {name}"),
            name,
        )
        .await
    }
}

/// The string data of a ConfigMap (binaryData decoded lossily as UTF-8).
pub fn config_map_data(cm: &ConfigMap) -> BTreeMap<String, Vec<u8>> {
    let mut out: BTreeMap<String, Vec<u8>> = cm
        .data
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.into_bytes()))
        .collect();
    for (k, v) in cm.binary_data.clone().unwrap_or_default() {
        out.insert(k, v.0);
    }
    out
}

/// The data of a Secret (`data` is bytes already; `stringData` is merged by the API server
/// on write but honoured here too).
pub fn secret_data(s: &Secret) -> BTreeMap<String, Vec<u8>> {
    let mut out: BTreeMap<String, Vec<u8>> = s
        .data
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.0))
        .collect();
    for (k, v) in s.string_data.clone().unwrap_or_default() {
        out.insert(k, v.into_bytes());
    }
    out
}

/// The value of a downward-API `fieldPath` for `pod`.
pub fn field_value(pod: &Pod, path: &str) -> Result<String, EnvError> {
    let meta = &pod.metadata;
    let map_key = |prefix: &str| -> Option<String> {
        path.strip_prefix(prefix)?
            .strip_suffix("']")
            .map(str::to_string)
    };
    let status = pod.status.as_ref();
    Ok(match path {
        "metadata.name" => meta.name.clone().unwrap_or_default(),
        "metadata.namespace" => meta.namespace.clone().unwrap_or_default(),
        "metadata.uid" => meta.uid.clone().unwrap_or_default(),
        "spec.nodeName" => pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.clone())
            .unwrap_or_default(),
        "spec.serviceAccountName" => pod
            .spec
            .as_ref()
            .and_then(|s| s.service_account_name.clone())
            .unwrap_or_default(),
        "status.hostIP" => status.and_then(|s| s.host_ip.clone()).unwrap_or_default(),
        "status.podIP" => status.and_then(|s| s.pod_ip.clone()).unwrap_or_default(),
        "status.podIPs" => status
            .and_then(|s| s.pod_ips.clone())
            .unwrap_or_default()
            .into_iter()
            .map(|p| p.ip)
            .collect::<Vec<_>>()
            .join(","),
        "metadata.labels" => format_map(meta.labels.as_ref()),
        "metadata.annotations" => format_map(meta.annotations.as_ref()),
        _ => {
            if let Some(k) = map_key("metadata.labels['") {
                meta.labels
                    .as_ref()
                    .and_then(|l| l.get(&k).cloned())
                    .unwrap_or_default()
            } else if let Some(k) = map_key("metadata.annotations['") {
                meta.annotations
                    .as_ref()
                    .and_then(|l| l.get(&k).cloned())
                    .unwrap_or_default()
            } else {
                return Err(EnvError::FieldPath(path.to_string()));
            }
        }
    })
}

/// Labels/annotations as the downward API writes them: `key="value"` lines, sorted.
fn format_map(m: Option<&BTreeMap<String, String>>) -> String {
    m.map(|m| {
        m.iter()
            .map(|(k, v)| format!("{k}={v:?}"))
            .collect::<Vec<_>>()
            .join("\n")
    })
    .unwrap_or_default()
}

/// `resourceFieldRef` values: limits/requests of cpu (in cores, rounded up by divisor) and
/// memory (bytes).
fn resource_value(container: &Container, resource: &str, divisor: Option<&str>) -> String {
    let res = container.resources.as_ref();
    let (section, name) = resource.split_once('.').unwrap_or(("", resource));
    let map = match section {
        "limits" => res.and_then(|r| r.limits.as_ref()),
        "requests" => res.and_then(|r| r.requests.as_ref()),
        _ => None,
    };
    let q = map.and_then(|m| m.get(name)).map(|q| q.0.clone());
    let milli = q
        .as_deref()
        .and_then(|q| wasmkube_api::quantity::Quantity::parse(q).ok())
        .and_then(|q| q.to_milli());
    let div = divisor
        .and_then(|d| wasmkube_api::quantity::Quantity::parse(d).ok())
        .and_then(|q| q.to_milli())
        .filter(|d| *d > 0)
        .unwrap_or(1000);
    match milli {
        // Kubernetes rounds up: 250m with divisor 1 is "1".
        Some(m) => ((m + div - 1) / div).to_string(),
        None => "0".into(),
    }
}

/// Expands `$(VAR)` against `vars`; `$$(VAR)` escapes to a literal `$(VAR)`; unknown variables
/// are left as written.
pub fn expand(input: &str, vars: &BTreeMap<String, String>) -> String {
    let bytes = input.as_bytes();
    let mut out = String::with_capacity(input.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'$' && i + 1 < bytes.len() {
            if bytes[i + 1] == b'$' {
                out.push('$');
                i += 2;
                continue;
            }
            if bytes[i + 1] == b'('
                && let Some(end) = input[i + 2..].find(')')
            {
                let name = &input[i + 2..i + 2 + end];
                match vars.get(name) {
                    Some(v) => out.push_str(v),
                    None => out.push_str(&input[i..i + 3 + end]),
                }
                i += 3 + end;
                continue;
            }
        }
        let ch = input[i..].chars().next().unwrap_or('\u{fffd}');
        out.push(ch);
        i += ch.len_utf8();
    }
    out
}

/// The environment of `container` in `pod`, in definition order.
pub async fn resolve(
    sources: &mut Sources,
    pod: &Pod,
    container: &Container,
) -> Result<Vec<(String, String)>, EnvError> {
    let mut vars: BTreeMap<String, String> = BTreeMap::new();
    let mut order: Vec<String> = Vec::new();
    let mut set = |vars: &mut BTreeMap<String, String>, k: String, v: String| {
        if !vars.contains_key(&k) {
            order.push(k.clone());
        }
        vars.insert(k, v);
    };
    let ns = sources.namespace().to_string();
    for from in container.env_from.clone().unwrap_or_default() {
        let prefix = from.prefix.clone().unwrap_or_default();
        if let Some(r) = &from.config_map_ref {
            let optional = r.optional.unwrap_or(false);
            match sources.config_map(&r.name).await? {
                Some(cm) => {
                    for (k, v) in config_map_data(cm) {
                        set(
                            &mut vars,
                            format!("{prefix}{k}"),
                            String::from_utf8_lossy(&v).into_owned(),
                        );
                    }
                }
                None if optional => {}
                None => return Err(EnvError::ConfigMapNotFound(r.name.clone())),
            }
        }
        if let Some(r) = &from.secret_ref {
            let optional = r.optional.unwrap_or(false);
            match sources.secret(&r.name).await? {
                Some(s) => {
                    for (k, v) in secret_data(s) {
                        set(
                            &mut vars,
                            format!("{prefix}{k}"),
                            String::from_utf8_lossy(&v).into_owned(),
                        );
                    }
                }
                None if optional => {}
                None => return Err(EnvError::SecretNotFound(r.name.clone())),
            }
        }
    }
    for e in container.env.clone().unwrap_or_default() {
        let value = if let Some(v) = &e.value {
            expand(v, &vars)
        } else if let Some(from) = &e.value_from {
            if let Some(f) = &from.field_ref {
                field_value(pod, &f.field_path)?
            } else if let Some(r) = &from.resource_field_ref {
                resource_value(
                    container,
                    &r.resource,
                    r.divisor.as_ref().map(|d| d.0.as_str()),
                )
            } else if let Some(k) = &from.config_map_key_ref {
                let optional = k.optional.unwrap_or(false);
                match sources.config_map(&k.name).await? {
                    Some(cm) => match config_map_data(cm).get(&k.key) {
                        Some(v) => String::from_utf8_lossy(v).into_owned(),
                        None if optional => continue,
                        None => {
                            return Err(EnvError::ConfigMapKey {
                                key: k.key.clone(),
                                namespace: ns.clone(),
                                name: k.name.clone(),
                            });
                        }
                    },
                    None if optional => continue,
                    None => return Err(EnvError::ConfigMapNotFound(k.name.clone())),
                }
            } else if let Some(k) = &from.secret_key_ref {
                let optional = k.optional.unwrap_or(false);
                match sources.secret(&k.name).await? {
                    Some(s) => match secret_data(s).get(&k.key) {
                        Some(v) => String::from_utf8_lossy(v).into_owned(),
                        None if optional => continue,
                        None => {
                            return Err(EnvError::SecretKey {
                                key: k.key.clone(),
                                namespace: ns.clone(),
                                name: k.name.clone(),
                            });
                        }
                    },
                    None if optional => continue,
                    None => return Err(EnvError::SecretNotFound(k.name.clone())),
                }
            } else {
                String::new()
            }
        } else {
            String::new()
        };
        set(&mut vars, e.name.clone(), value);
    }
    Ok(order
        .into_iter()
        .filter_map(|k| vars.get(&k).map(|v| (k.clone(), v.clone())))
        .collect())
}

/// Decodes base64 the way Secret values arrive in JSON (used by volume writers).
pub fn decode_b64(v: &Value) -> Option<Vec<u8>> {
    base64::engine::general_purpose::STANDARD
        .decode(v.as_str()?)
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expansion() {
        let vars: BTreeMap<String, String> =
            [("A".to_string(), "1".to_string())].into_iter().collect();
        assert_eq!(expand("x$(A)y", &vars), "x1y");
        assert_eq!(expand("$$(A)", &vars), "$(A)");
        assert_eq!(expand("$(B)", &vars), "$(B)");
        assert_eq!(expand("$(A", &vars), "$(A");
        assert_eq!(expand("ünï$(A)", &vars), "ünï1");
    }

    #[test]
    fn downward_fields() {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p", "namespace": "n", "labels": {"app": "x"}},
            "spec": {"nodeName": "node-1", "containers": []},
            "status": {"podIP": "127.64.0.2"}
        }))
        .expect("pod");
        assert_eq!(field_value(&pod, "metadata.name").expect("name"), "p");
        assert_eq!(
            field_value(&pod, "metadata.labels['app']").expect("label"),
            "x"
        );
        assert_eq!(field_value(&pod, "status.podIP").expect("ip"), "127.64.0.2");
        assert!(field_value(&pod, "spec.bogus").is_err());
    }
}
