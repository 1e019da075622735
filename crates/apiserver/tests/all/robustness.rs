//! No request can panic the server or get anything but a Status: odd bodies of every shape
//! against every resource, every write verb and patch type.

use axum::http::Method;
use serde_json::{Value, json};
use wasmkube_api::registry::RESOURCES;

use crate::{Api, TOKEN};

fn odd_bodies(kind: &str, api_version: &str) -> Vec<String> {
    let mut nested = String::new();
    for _ in 0..2000 {
        nested.push('[');
    }
    let base = json!({"apiVersion": api_version, "kind": kind});
    let with = |v: Value| {
        let mut b = base.clone();
        if let (Some(b), Some(v)) = (b.as_object_mut(), v.as_object()) {
            for (k, x) in v {
                b.insert(k.clone(), x.clone());
            }
        }
        b.to_string()
    };
    vec![
        String::new(),
        "null".into(),
        "[]".into(),
        "\"string\"".into(),
        "{".into(),
        nested,
        "{}".into(),
        with(json!({})),
        with(json!({"metadata": 5})),
        with(json!({"metadata": {"name": 5}})),
        with(json!({"metadata": {"name": "ok", "labels": {"a": 1}}})),
        with(json!({"metadata": {"name": "ok", "labels": {"-bad-": "x"}}})),
        with(json!({"metadata": {"name": "ok"}, "spec": []})),
        with(json!({"metadata": {"name": "ok"}, "spec": {"replicas": 1e300}})),
        with(json!({"metadata": {"name": "ok"}, "spec": {"containers": [{}]}})),
        with(
            json!({"metadata": {"name": "ok"}, "spec": {"template": {"spec": {"containers": [{"name": "c"}]}}}}),
        ),
        with(
            json!({"metadata": {"name": "ok"}, "spec": {"selector": {"matchExpressions": [{"key": "a", "operator": "Bogus"}]}}}),
        ),
        with(json!({"metadata": {"name": "ok", "ownerReferences": [{}]}})),
        with(json!({"metadata": {"name": "ok"}, "data": {"": "x"}})),
        with(json!({"metadata": {"name": "ok\u{0}x"}})),
        with(json!({"metadata": {"name": "a".repeat(300)}})),
    ]
}

fn check(code: u16, body: &str, what: &str) {
    assert!(code < 500, "{what}: server error {code}: {body}");
    if code >= 400 {
        let v: Value = serde_json::from_str(body).unwrap_or(Value::Null);
        assert_eq!(v["kind"], "Status", "{what}: {body}");
        assert_eq!(v["code"], code, "{what}: {body}");
    }
}

#[tokio::test]
async fn odd_bodies_get_status_answers() {
    let api = Api::new().await;
    for info in RESOURCES {
        let collection = if info.namespaced {
            format!(
                "/{}/namespaces/default/{}",
                if info.group.is_empty() {
                    "api/v1".to_string()
                } else {
                    format!("apis/{}/{}", info.group, info.version)
                },
                info.resource
            )
        } else {
            format!(
                "/{}/{}",
                if info.group.is_empty() {
                    "api/v1".to_string()
                } else {
                    format!("apis/{}/{}", info.group, info.version)
                },
                info.resource
            )
        };
        for body in odd_bodies(info.kind, &info.api_version()) {
            for ctype in ["application/json", "application/yaml"] {
                let r = api
                    .raw(Method::POST, &collection, ctype, &body, Some(TOKEN))
                    .await;
                check(
                    r.code,
                    &r.text,
                    &format!("POST {collection} {ctype} {}", &body[..body.len().min(80)]),
                );
                let item = format!("{collection}/ok");
                for (method, ct) in [
                    (Method::PUT, "application/json"),
                    (Method::PATCH, "application/merge-patch+json"),
                    (Method::PATCH, "application/strategic-merge-patch+json"),
                    (Method::PATCH, "application/json-patch+json"),
                ] {
                    let r = api.raw(method.clone(), &item, ct, &body, Some(TOKEN)).await;
                    check(r.code, &r.text, &format!("{method} {item} {ct}"));
                }
            }
        }
        let r = api
            .raw(
                Method::DELETE,
                &format!("{collection}/ok"),
                "application/json",
                "{\"gracePeriodSeconds\": -5}",
                Some(TOKEN),
            )
            .await;
        check(r.code, &r.text, "DELETE with bad options");
    }
    // Still serving.
    assert_eq!(api.get("/api/v1/namespaces").await.code, 200);
}

/// The namespaces every cluster needs cannot be deleted (Kubernetes' NamespaceLifecycle
/// message), and no single request deletes every namespace.
#[tokio::test]
async fn system_namespaces_cannot_be_deleted_nor_all_namespaces_at_once() {
    let api = Api::new().await;
    for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        let r = api
            .delete(&format!("/api/v1/namespaces/{ns}"), Value::Null)
            .await;
        assert_eq!(r.code, 403, "{}", r.text);
        assert_eq!(r.body["kind"], "Status");
        assert_eq!(r.body["reason"], "Forbidden");
        assert_eq!(
            r.body["message"],
            format!("namespaces \"{ns}\" is forbidden: this namespace may not be deleted")
        );
        let still = api.get(&format!("/api/v1/namespaces/{ns}")).await;
        assert_eq!(still.code, 200, "{ns} is still there");
        assert!(still.body["metadata"].get("deletionTimestamp").is_none());
    }
    let r = api.delete("/api/v1/namespaces", Value::Null).await;
    assert_eq!(r.code, 405, "{}", r.text);
    assert_eq!(r.body["kind"], "Status");
    let discovery = api.get("/api/v1").await;
    let verbs = discovery.body["resources"]
        .as_array()
        .and_then(|all| all.iter().find(|r| r["name"] == "namespaces"))
        .map(|r| r["verbs"].clone())
        .unwrap_or(Value::Null);
    assert!(
        !verbs.to_string().contains("deletecollection"),
        "namespaces verbs: {verbs}"
    );
    // Other namespaces go as before.
    let r = api
        .post(
            "/api/v1/namespaces",
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}}),
        )
        .await;
    assert_eq!(r.code, 201, "{}", r.text);
    let r = api.delete("/api/v1/namespaces/team", Value::Null).await;
    assert_eq!(r.code, 200, "{}", r.text);
}

/// ConfigMaps and Secrets hold at most 1 MiB, and finalizers are qualified names (or one of
/// Kubernetes' own), each refused with the field and Kubernetes' message.
#[tokio::test]
async fn oversized_data_and_invalid_finalizers_are_refused() {
    let api = Api::new().await;
    let big = "x".repeat(1024 * 1024);
    let r = api
        .post(
            "/api/v1/namespaces/default/configmaps",
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "big"},
                "data": {"k": big}}),
        )
        .await;
    assert_eq!(r.code, 422, "{}", &r.text[..r.text.len().min(300)]);
    assert!(
        r.body["message"]
            .as_str()
            .unwrap_or("")
            .contains("data: Too long: must have at most 1048576 bytes"),
        "{}",
        r.body["message"]
    );
    assert_eq!(
        api.get("/api/v1/namespaces/default/configmaps/big")
            .await
            .code,
        404
    );
    let r = api
        .post(
            "/api/v1/namespaces/default/secrets",
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "big"},
                "stringData": {"k": "y".repeat(1024 * 1024 + 1)}}),
        )
        .await;
    assert_eq!(r.code, 422, "{}", &r.text[..r.text.len().min(300)]);
    // Just under the limit is fine.
    let r = api
        .post(
            "/api/v1/namespaces/default/configmaps",
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "fits"},
                "data": {"k": "z".repeat(1024 * 1024 - 1)}}),
        )
        .await;
    assert_eq!(r.code, 201, "{}", &r.text[..r.text.len().min(300)]);

    for (finalizer, message) in [
        (
            "custom",
            "metadata.finalizers[0]: Invalid value: \"custom\": name is neither a standard finalizer name nor is it fully qualified",
        ),
        (
            "bad name/x",
            "metadata.finalizers[0]: Invalid value: \"bad name/x\"",
        ),
    ] {
        let r = api
            .post(
                "/api/v1/namespaces/default/configmaps",
                json!({"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": "fin", "finalizers": [finalizer]}}),
            )
            .await;
        assert_eq!(r.code, 422, "{}", r.text);
        assert!(
            r.body["message"].as_str().unwrap_or("").contains(message),
            "{}",
            r.body["message"]
        );
    }
    for ok in ["example.com/hold", "orphan", "foregroundDeletion"] {
        let r = api
            .post(
                "/api/v1/namespaces/default/configmaps",
                json!({"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"generateName": "fin-", "finalizers": [ok]}}),
            )
            .await;
        assert_eq!(r.code, 201, "{ok}: {}", r.text);
    }
}

/// Bodies up to Kubernetes' 3 MiB are read (and judged on their content); larger ones get
/// kube-apiserver's 413 as a Status.
#[tokio::test]
async fn bodies_over_three_mebibytes_get_a_413_status() {
    let api = Api::new().await;
    let cm = |size: usize| {
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "huge"},
            "data": {"k": "x".repeat(size)}})
    };
    // 2.5 MiB: read, then refused by validation (ConfigMaps hold 1 MiB), not by size.
    let r = api
        .post("/api/v1/namespaces/default/configmaps", cm(5 * 512 * 1024))
        .await;
    assert_eq!(r.code, 422, "{}", &r.text[..r.text.len().min(300)]);
    let r = api
        .post(
            "/api/v1/namespaces/default/configmaps",
            cm(3 * 1024 * 1024 + 1),
        )
        .await;
    assert_eq!(r.code, 413, "{}", &r.text[..r.text.len().min(300)]);
    assert_eq!(r.body["kind"], "Status");
    assert_eq!(r.body["reason"], "RequestEntityTooLarge");
    assert_eq!(
        r.body["message"],
        "Request entity too large: limit is 3145728"
    );
}
