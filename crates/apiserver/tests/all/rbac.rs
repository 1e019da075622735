//! ServiceAccount tokens and RBAC: what a token lets its holder do, as Kubernetes decides it.

use axum::http::Method;
use serde_json::{Value, json};

use crate::{Api, Resp};

/// Creates ServiceAccount `ns/name` and returns a token for it.
async fn account_token(api: &Api, ns: &str, name: &str) -> String {
    let r = api
        .post(
            &format!("/api/v1/namespaces/{ns}/serviceaccounts"),
            json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name}}),
        )
        .await;
    assert!(r.code == 201 || r.code == 409, "{}", r.text);
    let r = api
        .post(
            &format!("/api/v1/namespaces/{ns}/serviceaccounts/{name}/token"),
            json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {}}),
        )
        .await;
    assert_eq!(r.code, 201, "{}", r.text);
    assert_eq!(r.body["kind"], "TokenRequest");
    assert_eq!(r.body["spec"]["expirationSeconds"], 3600);
    assert!(r.body["status"]["expirationTimestamp"].is_string());
    r.body["status"]["token"]
        .as_str()
        .expect("a token")
        .to_string()
}

async fn as_user(api: &Api, token: &str, method: Method, path: &str, body: Value) -> Resp {
    let text = if body.is_null() {
        String::new()
    } else {
        body.to_string()
    };
    api.raw(method, path, "application/json", &text, Some(token))
        .await
}

fn pod(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
        "spec": {"containers": [{"name": "c", "image": "x"}]}})
}

#[tokio::test]
async fn service_account_tokens_are_authorized_by_rbac() {
    let api = Api::with_rbac().await;
    let token = account_token(&api, "default", "viewer").await;

    // Authenticated, discovery allowed, nothing else until a binding says so.
    let r = as_user(&api, &token, Method::GET, "/api/v1", Value::Null).await;
    assert_eq!(r.code, 200, "{}", r.text);
    let r = as_user(
        &api,
        &token,
        Method::GET,
        "/api/v1/namespaces/default/pods",
        Value::Null,
    )
    .await;
    assert_eq!(r.code, 403, "{}", r.text);
    assert_eq!(r.body["kind"], "Status");
    assert_eq!(r.body["reason"], "Forbidden");
    assert_eq!(
        r.body["message"],
        "pods is forbidden: User \"system:serviceaccount:default:viewer\" cannot list resource \"pods\" in API group \"\" in the namespace \"default\""
    );

    // `view` in one namespace: reads there, not elsewhere, no writes, no Secrets.
    let r = api
        .post(
            "/apis/rbac.authorization.k8s.io/v1/namespaces/default/rolebindings",
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                "metadata": {"name": "viewer-view"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
                "subjects": [{"kind": "ServiceAccount", "name": "viewer", "namespace": "default"}]}),
        )
        .await;
    assert_eq!(r.code, 201, "{}", r.text);
    let r = as_user(
        &api,
        &token,
        Method::GET,
        "/api/v1/namespaces/default/pods",
        Value::Null,
    )
    .await;
    assert_eq!(r.code, 200, "{}", r.text);
    let r = as_user(
        &api,
        &token,
        Method::GET,
        "/api/v1/namespaces/kube-system/pods",
        Value::Null,
    )
    .await;
    assert_eq!(r.code, 403, "{}", r.text);
    let r = as_user(
        &api,
        &token,
        Method::POST,
        "/api/v1/namespaces/default/pods",
        pod("p"),
    )
    .await;
    assert_eq!(r.code, 403, "{}", r.text);
    assert!(
        r.text.contains("cannot create resource \\\"pods\\\""),
        "{}",
        r.text
    );
    let r = as_user(
        &api,
        &token,
        Method::GET,
        "/api/v1/namespaces/default/secrets",
        Value::Null,
    )
    .await;
    assert_eq!(r.code, 403, "{}", r.text);
    let r = as_user(&api, &token, Method::GET, "/api/v1/nodes", Value::Null).await;
    assert_eq!(r.code, 403, "{}", r.text);
    assert!(r.text.contains("at the cluster scope"), "{}", r.text);
    // The refused create changed nothing.
    let r = api.get("/api/v1/namespaces/default/pods/p").await;
    assert_eq!(r.code, 404);

    // A Role of one's own: exactly what it lists.
    api.post(
        "/apis/rbac.authorization.k8s.io/v1/namespaces/default/roles",
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": {"name": "pod-maker"},
            "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["create"]},
                      {"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["mine"], "verbs": ["get"]}]}),
    )
    .await;
    api.post(
        "/apis/rbac.authorization.k8s.io/v1/namespaces/default/rolebindings",
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": "viewer-pod-maker"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "pod-maker"},
            "subjects": [{"kind": "ServiceAccount", "name": "viewer"}]}),
    )
    .await;
    let r = as_user(
        &api,
        &token,
        Method::POST,
        "/api/v1/namespaces/default/pods",
        pod("p"),
    )
    .await;
    assert_eq!(r.code, 201, "{}", r.text);
    let r = as_user(
        &api,
        &token,
        Method::DELETE,
        "/api/v1/namespaces/default/pods/p",
        Value::Null,
    )
    .await;
    assert_eq!(r.code, 403, "{}", r.text);
    let r = as_user(
        &api,
        &token,
        Method::GET,
        "/api/v1/namespaces/default/secrets/other",
        Value::Null,
    )
    .await;
    assert_eq!(r.code, 403, "{}", r.text);
    let r = as_user(
        &api,
        &token,
        Method::GET,
        "/api/v1/namespaces/default/secrets/mine",
        Value::Null,
    )
    .await;
    assert_eq!(r.code, 404, "allowed, and not there: {}", r.text);

    // Deleting the account revokes its tokens.
    let r = api
        .delete(
            "/api/v1/namespaces/default/serviceaccounts/viewer",
            Value::Null,
        )
        .await;
    assert_eq!(r.code, 200, "{}", r.text);
    let r = as_user(
        &api,
        &token,
        Method::GET,
        "/api/v1/namespaces/default/pods",
        Value::Null,
    )
    .await;
    assert_eq!(r.code, 401, "{}", r.text);
    // A same-named new account does not revive the old tokens (its uid differs).
    let fresh = account_token(&api, "default", "viewer").await;
    let r = as_user(&api, &token, Method::GET, "/api/v1", Value::Null).await;
    assert_eq!(r.code, 401);
    let r = as_user(
        &api,
        &fresh,
        Method::GET,
        "/api/v1/namespaces/default/pods",
        Value::Null,
    )
    .await;
    assert_eq!(
        r.code, 200,
        "the binding names the account, not its uid: {}",
        r.text
    );
}

#[tokio::test]
async fn rbac_writes_cannot_grant_more_than_the_writer_holds() {
    let api = Api::with_rbac().await;
    api.post(
        "/api/v1/namespaces",
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}}),
    )
    .await;
    let token = account_token(&api, "team", "lead").await;
    // `admin` in namespace team: may manage Roles and RoleBindings there.
    let r = api
        .post(
            "/apis/rbac.authorization.k8s.io/v1/namespaces/team/rolebindings",
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                "metadata": {"name": "lead-admin"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "admin"},
                "subjects": [{"kind": "ServiceAccount", "name": "lead", "namespace": "team"}]}),
        )
        .await;
    assert_eq!(r.code, 201, "{}", r.text);
    let role = |name: &str, resources: &[&str]| {
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": {"name": name},
            "rules": [{"apiGroups": [""], "resources": resources, "verbs": ["get", "list"]}]})
    };
    let roles = "/apis/rbac.authorization.k8s.io/v1/namespaces/team/roles";
    // Within what `admin` holds: fine.
    let r = as_user(
        &api,
        &token,
        Method::POST,
        roles,
        role("readers", &["pods", "secrets"]),
    )
    .await;
    assert_eq!(r.code, 201, "{}", r.text);
    // Nodes are not the lead's to hand out: refused, and nothing is written.
    let r = as_user(&api, &token, Method::POST, roles, role("nodes", &["nodes"])).await;
    assert_eq!(r.code, 403, "{}", r.text);
    assert!(
        r.text
            .contains("attempting to grant RBAC permissions not currently held"),
        "{}",
        r.text
    );
    let r = api.get(&format!("{roles}/nodes")).await;
    assert_eq!(r.code, 404);
    // Nor may the lead bind cluster-admin.
    let r = as_user(
        &api,
        &token,
        Method::POST,
        "/apis/rbac.authorization.k8s.io/v1/namespaces/team/rolebindings",
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": "up"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
            "subjects": [{"kind": "ServiceAccount", "name": "lead", "namespace": "team"}]}),
    )
    .await;
    assert_eq!(r.code, 403, "{}", r.text);
    // Binding `view` (all of which `admin` holds) is fine.
    let r = as_user(
        &api,
        &token,
        Method::POST,
        "/apis/rbac.authorization.k8s.io/v1/namespaces/team/rolebindings",
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": "others-view"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
            "subjects": [{"kind": "Group", "name": "system:serviceaccounts:team"}]}),
    )
    .await;
    assert_eq!(r.code, 201, "{}", r.text);
}

#[tokio::test]
async fn token_requests_are_validated() {
    let api = Api::with_rbac().await;
    account_token(&api, "default", "bot").await;
    let path = "/api/v1/namespaces/default/serviceaccounts/bot/token";
    let r = api
        .post(
            path,
            json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                "spec": {"expirationSeconds": 60}}),
        )
        .await;
    assert_eq!(r.code, 422, "{}", r.text);
    assert!(
        r.body["message"]
            .as_str()
            .is_some_and(|m| m.contains("spec.expirationSeconds")
                && m.contains("may not specify a duration less than 10 minutes")),
        "{}",
        r.text
    );
    let r = api
        .post(
            "/api/v1/namespaces/default/serviceaccounts/nobody/token",
            json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {}}),
        )
        .await;
    assert_eq!(r.code, 404, "{}", r.text);
    // A token for another audience is not one the API server accepts.
    let r = api
        .post(
            path,
            json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                "spec": {"audiences": ["vault"]}}),
        )
        .await;
    assert_eq!(r.code, 201, "{}", r.text);
    let elsewhere = r.body["status"]["token"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let r = as_user(&api, &elsewhere, Method::GET, "/api/v1", Value::Null).await;
    assert_eq!(r.code, 401);
    // Garbage is unauthorized, not a crash.
    let r = as_user(&api, "a.b.c", Method::GET, "/api/v1", Value::Null).await;
    assert_eq!(r.code, 401);
}
