//! Objects every cluster has from its first start: the system namespaces, the `wasmtime`
//! and `runc` RuntimeClasses, the default `local-path` StorageClass, and Kubernetes' default RBAC roles (`cluster-admin`, `admin`,
//! `edit`, `view`, `system:discovery`, `system:public-info-viewer`) with their bindings. Created through the API itself so they get the same defaulting, validation and
//! metadata as anything a user creates; existing ones are left alone.
//!
//! The `kubernetes` Service in `default` (with its Endpoints and EndpointSlice pointing at the
//! API server) is kept up to date on every start instead, like Kubernetes' own endpoint
//! reconciler does: the API server's port may change between starts.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, Uri};
use http_body_util::BodyExt;
use serde_json::{Value, json};

use crate::error::{ApiError, ApiResult};
use crate::state::ApiState;

/// The objects, as (collection path, manifest).
fn defaults() -> Vec<(&'static str, Value)> {
    let ns = |name: &str| {
        (
            "/api/v1/namespaces",
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name,
                "labels": {"kubernetes.io/metadata.name": name}}}),
        )
    };
    let mut objects = vec![
        ns("default"),
        ns("kube-system"),
        ns("kube-public"),
        ns("kube-node-lease"),
        (
            "/apis/node.k8s.io/v1/runtimeclasses",
            json!({"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass",
                "metadata": {"name": "wasmtime", "labels": {"app.kubernetes.io/managed-by": "wasmkube"}},
                "handler": "wasmtime"}),
        ),
        // Linux containers through containerd; nodes without containerd do not offer it.
        (
            "/apis/node.k8s.io/v1/runtimeclasses",
            json!({"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass",
                "metadata": {"name": "runc", "labels": {"app.kubernetes.io/managed-by": "wasmkube"}},
                "handler": "runc"}),
        ),
        // Node-local volumes, provisioned by the kubelet of the node the first pod using a
        // claim is scheduled to (so WaitForFirstConsumer), as k3s' local-path does.
        (
            "/apis/storage.k8s.io/v1/storageclasses",
            json!({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
                "metadata": {"name": "local-path",
                    "labels": {"app.kubernetes.io/managed-by": "wasmkube"},
                    "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
                "provisioner": "wasmkube.io/local-path",
                "reclaimPolicy": "Delete",
                "volumeBindingMode": "WaitForFirstConsumer"}),
        ),
    ];
    objects.extend(rbac_defaults());
    objects
}

/// Kubernetes' user-facing default roles, in the same shape (the rule lists are those of
/// Kubernetes' bootstrap policy for the resources this server has), and the bindings that
/// let `system:masters` do anything and every authenticated user discover the API.
fn rbac_defaults() -> Vec<(&'static str, Value)> {
    const ROLES: &str = "/apis/rbac.authorization.k8s.io/v1/clusterroles";
    const BINDINGS: &str = "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings";
    let read = ["get", "list", "watch"];
    let write = ["create", "delete", "deletecollection", "patch", "update"];
    let all: Vec<&str> = read.iter().chain(write.iter()).copied().collect();
    let rule = |groups: &[&str], resources: &[&str], verbs: &[&str]| json!({"apiGroups": groups, "resources": resources, "verbs": verbs});
    // What `view` reads (no Secrets: reading them would let a viewer act as any account).
    let viewable = vec![
        rule(
            &[""],
            &[
                "pods",
                "pods/log",
                "pods/status",
                "services",
                "services/status",
                "endpoints",
                "configmaps",
                "persistentvolumeclaims",
                "persistentvolumeclaims/status",
                "replicationcontrollers",
                "replicationcontrollers/scale",
                "serviceaccounts",
                "events",
                "namespaces",
                "namespaces/status",
                "resourcequotas",
                "limitranges",
                "bindings",
            ],
            &read,
        ),
        rule(
            &["apps"],
            &[
                "deployments",
                "deployments/scale",
                "deployments/status",
                "replicasets",
                "replicasets/scale",
                "replicasets/status",
                "statefulsets",
                "statefulsets/scale",
                "statefulsets/status",
                "daemonsets",
                "daemonsets/status",
                "controllerrevisions",
            ],
            &read,
        ),
        rule(
            &["batch"],
            &["jobs", "jobs/status", "cronjobs", "cronjobs/status"],
            &read,
        ),
        rule(
            &["autoscaling"],
            &[
                "horizontalpodautoscalers",
                "horizontalpodautoscalers/status",
            ],
            &read,
        ),
        rule(
            &["networking.k8s.io"],
            &["ingresses", "ingresses/status", "networkpolicies"],
            &read,
        ),
        rule(
            &["policy"],
            &["poddisruptionbudgets", "poddisruptionbudgets/status"],
            &read,
        ),
        rule(&["discovery.k8s.io"], &["endpointslices"], &read),
        rule(&["events.k8s.io"], &["events"], &read),
        rule(&["metrics.k8s.io"], &["pods", "nodes"], &read),
    ];
    let mut editable = viewable.clone();
    editable.extend([
        rule(
            &[""],
            &[
                "pods",
                "services",
                "endpoints",
                "configmaps",
                "secrets",
                "persistentvolumeclaims",
                "replicationcontrollers",
                "replicationcontrollers/scale",
                "serviceaccounts",
            ],
            &all,
        ),
        rule(
            &[""],
            &[
                "pods/exec",
                "pods/attach",
                "pods/portforward",
                "pods/eviction",
                "serviceaccounts/token",
            ],
            &["create", "get"],
        ),
        rule(
            &["apps"],
            &[
                "deployments",
                "deployments/scale",
                "deployments/rollback",
                "replicasets",
                "replicasets/scale",
                "statefulsets",
                "statefulsets/scale",
                "daemonsets",
            ],
            &all,
        ),
        rule(&["batch"], &["jobs", "cronjobs"], &all),
        rule(&["autoscaling"], &["horizontalpodautoscalers"], &all),
        rule(
            &["networking.k8s.io"],
            &["ingresses", "networkpolicies"],
            &all,
        ),
        rule(&["policy"], &["poddisruptionbudgets"], &all),
        rule(&["discovery.k8s.io"], &["endpointslices"], &all),
    ]);
    let mut administrable = editable.clone();
    administrable.push(rule(
        &["rbac.authorization.k8s.io"],
        &["roles", "rolebindings"],
        &all,
    ));
    let role = |name: &str, rules: Value| {
        (
            ROLES,
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                "metadata": {"name": name, "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"},
                    "annotations": {"rbac.authorization.kubernetes.io/autoupdate": "true"}},
                "rules": rules}),
        )
    };
    let binding = |name: &str, role: &str, groups: &[&str]| {
        let subjects: Vec<Value> = groups
            .iter()
            .map(|g| json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": g}))
            .collect();
        (
            BINDINGS,
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                "metadata": {"name": name, "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"},
                    "annotations": {"rbac.authorization.kubernetes.io/autoupdate": "true"}},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
                "subjects": subjects}),
        )
    };
    vec![
        role(
            "cluster-admin",
            json!([{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]},
                   {"nonResourceURLs": ["*"], "verbs": ["*"]}]),
        ),
        role("admin", Value::Array(administrable)),
        role("edit", Value::Array(editable)),
        role("view", Value::Array(viewable)),
        role(
            "system:discovery",
            json!([{"nonResourceURLs": ["/api", "/api/*", "/apis", "/apis/*", "/openapi",
                "/openapi/*", "/version", "/version/"], "verbs": ["get"]}]),
        ),
        role(
            "system:public-info-viewer",
            json!([{"nonResourceURLs": ["/healthz", "/livez", "/readyz", "/version", "/version/"],
                "verbs": ["get"]}]),
        ),
        binding("cluster-admin", "cluster-admin", &["system:masters"]),
        binding(
            "system:discovery",
            "system:discovery",
            &["system:authenticated"],
        ),
        binding(
            "system:public-info-viewer",
            "system:public-info-viewer",
            &["system:authenticated", "system:unauthenticated"],
        ),
    ]
}

/// Creates whatever default object is missing.
pub async fn ensure_defaults(state: &Arc<ApiState>) -> ApiResult<()> {
    for (path, obj) in defaults() {
        let (code, _) = call(state, Method::POST, path, Some(&obj)).await?;
        if code != 201 && code != 409 {
            return Err(ApiError::internal(format!(
                "creating default object at {path} failed with HTTP {code}"
            )));
        }
    }
    Ok(())
}

/// Re-creates what every cluster needs if it has gone missing (a protected namespace removed
/// behind the API's back, a restore from an old snapshot, the `kubernetes` Service deleted),
/// every `period` until `shutdown`.
pub async fn keep_defaults(
    state: Arc<ApiState>,
    api: SocketAddr,
    period: std::time::Duration,
    shutdown: tokio_util::sync::CancellationToken,
) {
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(period) => {}
        }
        if let Err(error) = ensure_defaults(&state).await {
            tracing::warn!(%error, "re-creating the default objects");
            continue;
        }
        // Only when missing: with several servers, each would otherwise point it at itself.
        let path = "/api/v1/namespaces/default/services/kubernetes";
        if let Ok((404, _)) = call(&state, Method::GET, path, None).await
            && let Err(error) = ensure_kubernetes_service(&state, api).await
        {
            tracing::warn!(%error, "re-creating the kubernetes Service");
        }
    }
}

/// Creates or updates the `kubernetes` Service of `default` and its Endpoints and
/// EndpointSlice, which point at the API server's address `api`. The Service gets the first
/// address of the service range, as in Kubernetes.
pub async fn ensure_kubernetes_service(state: &Arc<ApiState>, api: SocketAddr) -> ApiResult<()> {
    let ip = if api.ip().is_unspecified() {
        "127.0.0.1".to_string()
    } else {
        api.ip().to_string()
    };
    let port = api.port();
    let labels = json!({"component": "apiserver", "provider": "kubernetes"});
    let service = json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "kubernetes", "namespace": "default", "labels": labels},
        "spec": {"type": "ClusterIP", "clusterIP": state.admission.services.cidr().first().to_string(),
            "sessionAffinity": "None",
            "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": port}]}});
    upsert(
        state,
        "/api/v1/namespaces/default/services",
        service,
        &["/spec/ports"],
    )
    .await?;
    let endpoints = json!({"apiVersion": "v1", "kind": "Endpoints",
        "metadata": {"name": "kubernetes", "namespace": "default",
            "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"}},
        "subsets": [{"addresses": [{"ip": ip}],
            "ports": [{"name": "https", "port": port, "protocol": "TCP"}]}]});
    upsert(
        state,
        "/api/v1/namespaces/default/endpoints",
        endpoints,
        &["/subsets"],
    )
    .await?;
    let slice = json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": "kubernetes", "namespace": "default",
            "labels": {"kubernetes.io/service-name": "kubernetes"}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": [ip], "conditions": {"ready": true}}],
        "ports": [{"name": "https", "port": port, "protocol": "TCP"}]});
    upsert(
        state,
        "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices",
        slice,
        &["/endpoints", "/ports"],
    )
    .await
}

/// Creates `obj` in `collection`, or brings the `fields` (JSON pointers) of the existing one up
/// to date.
async fn upsert(
    state: &Arc<ApiState>,
    collection: &str,
    obj: Value,
    fields: &[&str],
) -> ApiResult<()> {
    let name = obj["metadata"]["name"].as_str().unwrap_or("").to_string();
    let path = format!("{collection}/{name}");
    let (code, existing) = call(state, Method::GET, &path, None).await?;
    let (method, body, target) = match code {
        404 => (Method::POST, obj, collection.to_string()),
        200 => {
            let mut next = existing;
            let mut changed = false;
            for field in fields {
                let want = obj.pointer(field).cloned().unwrap_or(Value::Null);
                if let Some(slot) = next.pointer_mut(field)
                    && *slot != want
                {
                    *slot = want;
                    changed = true;
                }
            }
            if !changed {
                return Ok(());
            }
            (Method::PUT, next, path.clone())
        }
        code => {
            return Err(ApiError::internal(format!(
                "reading {path} failed with HTTP {code}"
            )));
        }
    };
    let (code, answer) = call(state, method, &target, Some(&body)).await?;
    if !matches!(code, 200 | 201) {
        return Err(ApiError::internal(format!(
            "writing {path} failed with HTTP {code}: {}",
            answer["message"].as_str().unwrap_or("")
        )));
    }
    Ok(())
}

/// One in-process request through the REST handlers.
async fn call(
    state: &Arc<ApiState>,
    method: Method,
    path: &str,
    body: Option<&Value>,
) -> ApiResult<(u16, Value)> {
    let uri: Uri = path
        .parse()
        .map_err(|_| ApiError::internal(format!("bad bootstrap path {path}")))?;
    let mut headers = HeaderMap::new();
    headers.insert(
        "content-type",
        axum::http::HeaderValue::from_static("application/json"),
    );
    let body = body.map(|b| Bytes::from(b.to_string())).unwrap_or_default();
    let resp = crate::resource::handle(state.clone(), method, uri, headers, body).await;
    let code = resp.status().as_u16();
    let bytes = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| ApiError::internal(format!("reading the answer for {path}: {e}")))?
        .to_bytes();
    Ok((code, serde_json::from_slice(&bytes).unwrap_or(Value::Null)))
}
