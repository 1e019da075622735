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
