//! Object semantics: metadata the server owns, conflicts, subresources, deletion, patches,
//! selectors, pagination and errors.

use axum::http::Method;
use serde_json::json;

use crate::{Api, TOKEN, assert_status};

fn cm(name: &str) -> serde_json::Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"a": "1"}})
}

fn deployment(name: &str) -> serde_json::Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "c", "image": "i:1", "env": [{"name": "A", "value": "1"}]}]}}}})
}

const CMS: &str = "/api/v1/namespaces/default/configmaps";
const DEPLOYS: &str = "/apis/apps/v1/namespaces/default/deployments";

#[tokio::test]
async fn authentication_is_required() {
    let api = Api::new().await;
    let r = api
        .raw(Method::GET, CMS, "application/json", "", None)
        .await;
    assert_status(&r, 401, "Unauthorized");
    let r = api
        .raw(Method::GET, CMS, "application/json", "", Some("wrong"))
        .await;
    assert_status(&r, 401, "Unauthorized");
    let r = api
        .raw(Method::GET, "/healthz", "application/json", "", None)
        .await;
    assert_eq!(r.code, 200);
    let r = api
        .raw(Method::GET, CMS, "application/json", "", Some(TOKEN))
        .await;
    assert_eq!(r.code, 200);
}

#[tokio::test]
async fn create_sets_server_owned_metadata() {
    let api = Api::new().await;
    let mut body = cm("");
    body["metadata"] = json!({"generateName": "gen-", "uid": "forged", "resourceVersion": "999"});
    let r = api.post(CMS, body).await;
    assert_eq!(r.code, 201, "{}", r.text);
    let meta = &r.body["metadata"];
    let name = meta["name"].as_str().expect("name");
    assert!(name.starts_with("gen-") && name.len() == 9, "{name}");
    assert_ne!(meta["uid"], "forged");
    assert!(
        meta["creationTimestamp"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z'))
    );
    assert_ne!(meta["resourceVersion"], "999");
    assert_eq!(meta["namespace"], "default");

    let r = api.post(CMS, cm(name)).await;
    assert_status(&r, 409, "AlreadyExists");
    assert!(
        r.body["message"]
            .as_str()
            .unwrap_or("")
            .contains("already exists")
    );
}

#[tokio::test]
async fn stale_update_conflicts_and_generation_tracks_spec() {
    let api = Api::new().await;
    let created = api.post(DEPLOYS, deployment("d")).await.body;
    assert_eq!(created["metadata"]["generation"], 1);
    let mut next = created.clone();
    next["spec"]["replicas"] = json!(3);
    let updated = api.put(&format!("{DEPLOYS}/d"), next).await;
    assert_eq!(updated.code, 200, "{}", updated.text);
    assert_eq!(updated.body["metadata"]["generation"], 2);
    // The old resourceVersion is stale now.
    let mut stale = created.clone();
    stale["spec"]["replicas"] = json!(5);
    let r = api.put(&format!("{DEPLOYS}/d"), stale).await;
    assert_status(&r, 409, "Conflict");
    assert!(
        r.body["message"]
            .as_str()
            .unwrap_or("")
            .contains("the object has been modified")
    );
    // Labels are metadata: no generation bump.
    let r = api
        .patch(
            &format!("{DEPLOYS}/d"),
            "application/merge-patch+json",
            json!({"metadata": {"labels": {"x": "y"}}}),
        )
        .await;
    assert_eq!(r.body["metadata"]["generation"], 2);
    // An update that changes nothing keeps the resourceVersion.
    let same = api.put(&format!("{DEPLOYS}/d"), r.body.clone()).await;
    assert_eq!(
        same.body["metadata"]["resourceVersion"],
        r.body["metadata"]["resourceVersion"]
    );
}

#[tokio::test]
async fn status_and_main_resource_are_separate() {
    let api = Api::new().await;
    let created = api.post(DEPLOYS, deployment("s")).await.body;
    // Main-resource writes ignore status.
    let mut with_status = created.clone();
    with_status["status"] = json!({"replicas": 7});
    with_status["spec"]["replicas"] = json!(2);
    let r = api.put(&format!("{DEPLOYS}/s"), with_status).await;
    assert_eq!(r.body["spec"]["replicas"], 2);
    assert!(r.body["status"].get("replicas").is_none(), "{}", r.text);
    // Status writes ignore everything else.
    let mut status_write = r.body.clone();
    status_write["status"] = json!({"replicas": 4, "readyReplicas": 4});
    status_write["spec"]["replicas"] = json!(9);
    let r = api.put(&format!("{DEPLOYS}/s/status"), status_write).await;
    assert_eq!(r.code, 200, "{}", r.text);
    assert_eq!(r.body["status"]["replicas"], 4);
    assert_eq!(r.body["spec"]["replicas"], 2);
}

#[tokio::test]
async fn scale_subresource() {
    let api = Api::new().await;
    api.post(DEPLOYS, deployment("sc")).await;
    let r = api.get(&format!("{DEPLOYS}/sc/scale")).await;
    assert_eq!(r.body["kind"], "Scale");
    assert_eq!(r.body["apiVersion"], "autoscaling/v1");
    assert_eq!(r.body["spec"]["replicas"], 1);
    assert_eq!(r.body["status"]["selector"], "app=sc");
    let r = api
        .patch(
            &format!("{DEPLOYS}/sc/scale"),
            "application/merge-patch+json",
            json!({"spec": {"replicas": 6}}),
        )
        .await;
    assert_eq!(r.code, 200, "{}", r.text);
    assert_eq!(r.body["spec"]["replicas"], 6);
    let d = api.get(&format!("{DEPLOYS}/sc")).await;
    assert_eq!(d.body["spec"]["replicas"], 6);
    let r = api
        .patch(
            &format!("{DEPLOYS}/sc/scale"),
            "application/merge-patch+json",
            json!({"spec": {"replicas": -1}}),
        )
        .await;
    assert_status(&r, 422, "Invalid");
}

#[tokio::test]
async fn finalizers_hold_deletion_until_removed() {
    let api = Api::new().await;
    let mut body = cm("fin");
    body["metadata"]["finalizers"] = json!(["example.com/hold"]);
    api.post(CMS, body).await;
    let r = api
        .delete(&format!("{CMS}/fin"), serde_json::Value::Null)
        .await;
    assert_eq!(r.code, 200);
    assert!(
        r.body["metadata"]["deletionTimestamp"].is_string(),
        "{}",
        r.text
    );
    assert_eq!(
        api.get(&format!("{CMS}/fin")).await.code,
        200,
        "still there"
    );
    let r = api
        .patch(
            &format!("{CMS}/fin"),
            "application/merge-patch+json",
            json!({"metadata": {"finalizers": null}}),
        )
        .await;
    assert_eq!(r.code, 200, "{}", r.text);
    assert_eq!(
        api.get(&format!("{CMS}/fin")).await.code,
        404,
        "gone with its last finalizer"
    );
}

#[tokio::test]
async fn delete_options() {
    let api = Api::new().await;
    let created = api.post(CMS, cm("pre")).await.body;
    let r = api
        .delete(
            &format!("{CMS}/pre"),
            json!({"preconditions": {"uid": "not-the-uid"}}),
        )
        .await;
    assert_status(&r, 409, "Conflict");
    assert!(
        r.body["message"]
            .as_str()
            .unwrap_or("")
            .contains("Precondition failed")
    );
    let r = api
        .delete(
            &format!("{CMS}/pre"),
            json!({"preconditions": {"uid": created["metadata"]["uid"]}}),
        )
        .await;
    assert_eq!(r.code, 200, "{}", r.text);

    // Foreground deletion leaves the object with the foregroundDeletion finalizer for the
    // garbage collector.
    api.post(DEPLOYS, deployment("fg")).await;
    let r = api
        .delete(
            &format!("{DEPLOYS}/fg"),
            json!({"propagationPolicy": "Foreground"}),
        )
        .await;
    assert_eq!(r.code, 200, "{}", r.text);
    let d = api.get(&format!("{DEPLOYS}/fg")).await.body;
    assert_eq!(d["metadata"]["finalizers"], json!(["foregroundDeletion"]));
    let r = api
        .delete(
            &format!("{DEPLOYS}/x"),
            json!({"propagationPolicy": "Sideways"}),
        )
        .await;
    assert_status(&r, 422, "Invalid");

    // dryRun deletes nothing.
    api.post(CMS, cm("dry")).await;
    let r = api
        .delete(&format!("{CMS}/dry?dryRun=All"), serde_json::Value::Null)
        .await;
    assert_eq!(r.code, 200);
    assert_eq!(api.get(&format!("{CMS}/dry")).await.code, 200);
}

#[tokio::test]
async fn dry_run_create_persists_nothing() {
    let api = Api::new().await;
    let r = api.post(&format!("{CMS}?dryRun=All"), cm("dry")).await;
    assert_eq!(r.code, 201);
    assert_eq!(api.get(&format!("{CMS}/dry")).await.code, 404);
    let r = api.post(&format!("{CMS}?dryRun=Some"), cm("dry")).await;
    assert_status(&r, 400, "BadRequest");
}

#[tokio::test]
async fn patches_of_every_type() {
    let api = Api::new().await;
    api.post(DEPLOYS, deployment("p")).await;
    let path = format!("{DEPLOYS}/p");
    // Strategic: containers merge by name, env by name.
    let r = api
        .patch(
            &path,
            "application/strategic-merge-patch+json",
            json!({"spec": {"template": {"spec": {"containers": [
            {"name": "c", "env": [{"name": "B", "value": "2"}]}]}}}}),
        )
        .await;
    assert_eq!(r.code, 200, "{}", r.text);
    let c = &r.body["spec"]["template"]["spec"]["containers"];
    assert_eq!(c.as_array().map(Vec::len), Some(1));
    assert_eq!(c[0]["image"], "i:1");
    assert_eq!(c[0]["env"].as_array().map(Vec::len), Some(2));
    // Delete directive.
    let r = api
        .patch(
            &path,
            "application/strategic-merge-patch+json",
            json!({"spec": {"template": {"spec": {"containers": [
            {"name": "c", "env": [{"name": "A", "$patch": "delete"}]}]}}}}),
        )
        .await;
    assert_eq!(
        r.body["spec"]["template"]["spec"]["containers"][0]["env"],
        json!([{"name": "B", "value": "2"}])
    );
    // Merge patch replaces lists.
    let r = api
        .patch(
            &path,
            "application/merge-patch+json",
            json!({"spec": {"template": {"spec": {"containers": [
            {"name": "d", "image": "j:2"}]}}}}),
        )
        .await;
    assert_eq!(
        r.body["spec"]["template"]["spec"]["containers"][0]["name"],
        "d"
    );
    // JSON patch, including a failing test op.
    let r = api
        .patch(
            &path,
            "application/json-patch+json",
            json!([{"op": "replace", "path": "/spec/replicas", "value": 4}]),
        )
        .await;
    assert_eq!(r.body["spec"]["replicas"], 4);
    let r = api
        .patch(
            &path,
            "application/json-patch+json",
            json!([{"op": "test", "path": "/spec/replicas", "value": 9}]),
        )
        .await;
    assert_eq!(r.code, 422, "{}", r.text);
    // A patch producing an invalid object is refused and changes nothing.
    let r = api
        .patch(
            &path,
            "application/merge-patch+json",
            json!({"spec": {"replicas": -3}}),
        )
        .await;
    assert_status(&r, 422, "Invalid");
    assert!(
        r.body["message"]
            .as_str()
            .unwrap_or("")
            .contains("spec.replicas")
    );
    assert_eq!(api.get(&path).await.body["spec"]["replicas"], 4);
    // Unknown patch type.
    let r = api.patch(&path, "text/plain", json!({})).await;
    assert_status(&r, 415, "UnsupportedMediaType");
}

#[tokio::test]
async fn validation_errors_name_fields() {
    let api = Api::new().await;
    let bad = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "Bad"},
        "spec": {"ports": [{"port": 0}]}});
    let r = api.post("/api/v1/namespaces/default/services", bad).await;
    assert_status(&r, 422, "Invalid");
    let msg = r.body["message"].as_str().unwrap_or("");
    assert!(msg.starts_with("Service \"Bad\" is invalid: ["), "{msg}");
    assert!(msg.contains("metadata.name"), "{msg}");
    assert!(msg.contains("spec.ports[0].port"), "{msg}");
    let causes = r.body["details"]["causes"].as_array().expect("causes");
    assert!(causes.iter().any(|c| c["field"] == "spec.ports[0].port"));

    // Wrong shapes are 400s naming the problem.
    let r = api.post(CMS, json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "data": "nope"})).await;
    assert_status(&r, 400, "BadRequest");
    let r = api
        .raw(
            Method::POST,
            CMS,
            "application/json",
            "{not json",
            Some(TOKEN),
        )
        .await;
    assert_status(&r, 400, "BadRequest");
    // Strict field validation names unknown fields.
    let r = api
        .post(&format!("{CMS}?fieldValidation=Strict"), json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "datta": {}}))
        .await;
    assert_status(&r, 400, "BadRequest");
    assert!(
        r.body["message"]
            .as_str()
            .unwrap_or("")
            .contains("unknown field \"datta\"")
    );
    // A field given twice is refused under Strict, named with its path, and changes nothing.
    let twice = r#"{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "dup"},
        "data": {"a": "1", "a": "2"}}"#;
    let r = api
        .raw(
            axum::http::Method::POST,
            &format!("{CMS}?fieldValidation=Strict"),
            "application/json",
            twice,
            Some(TOKEN),
        )
        .await;
    assert_status(&r, 400, "BadRequest");
    assert!(
        r.body["message"]
            .as_str()
            .unwrap_or("")
            .contains("strict decoding error: duplicate field \"data.a\""),
        "{}",
        r.text
    );
    assert_eq!(api.get(&format!("{CMS}/dup")).await.code, 404);
    // Under Warn it is stored (the last value wins) with a warning naming it.
    let r = api
        .raw(
            axum::http::Method::POST,
            &format!("{CMS}?fieldValidation=Warn"),
            "application/json",
            twice,
            Some(TOKEN),
        )
        .await;
    assert_eq!(r.code, 201, "{}", r.text);
    assert_eq!(r.body["data"]["a"], "2");
    let warning = r
        .headers
        .get("warning")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    assert!(warning.contains("duplicate field"), "{warning}");
    // Warn (the default) accepts and warns.
    let r = api
        .post(CMS, json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "w"}, "datta": {"a": "b"}}))
        .await;
    assert_eq!(r.code, 201);
    assert!(r.headers.get("warning").is_some());
    // Kind mismatch.
    let r = api
        .post(
            CMS,
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "y"}}),
        )
        .await;
    assert_status(&r, 400, "BadRequest");
    // Missing namespace.
    let r = api
        .post("/api/v1/namespaces/nope/configmaps", cm("z"))
        .await;
    assert_status(&r, 404, "NotFound");
    assert_eq!(r.body["message"], "namespaces \"nope\" not found");
    // Unknown resource path.
    let r = api.get("/api/v1/namespaces/default/widgets").await;
    assert_status(&r, 404, "NotFound");
    // Nothing above was stored but the accepted-with-warnings "dup" and "w".
    let names: Vec<String> = api.get(CMS).await.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|i| i["metadata"]["name"].as_str().map(str::to_string))
        .collect();
    assert_eq!(names, vec!["dup", "w"]);
}

#[tokio::test]
async fn selectors_and_pagination() {
    let api = Api::new().await;
    for i in 0..10 {
        let mut body = cm(&format!("c{i:02}"));
        body["metadata"]["labels"] =
            json!({"parity": if i % 2 == 0 { "even" } else { "odd" }, "i": i.to_string()});
        api.post(CMS, body).await;
    }
    let r = api.get(&format!("{CMS}?labelSelector=parity%3Deven")).await;
    assert_eq!(r.body["items"].as_array().map(Vec::len), Some(5));
    let r = api
        .get(&format!(
            "{CMS}?labelSelector=i%20in%20(1,2,3),parity!%3Dodd"
        ))
        .await;
    let names: Vec<&str> = r.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|i| i["metadata"]["name"].as_str())
        .collect();
    assert_eq!(names, vec!["c02"]);
    let r = api
        .get(&format!("{CMS}?fieldSelector=metadata.name%3Dc03"))
        .await;
    assert_eq!(r.body["items"][0]["metadata"]["name"], "c03");
    let r = api.get(&format!("{CMS}?fieldSelector=data.a%3D1")).await;
    assert_status(&r, 400, "BadRequest");
    let r = api.get(&format!("{CMS}?labelSelector=in%20in")).await;
    assert_status(&r, 400, "BadRequest");

    // Paging through odd ones three at a time.
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let mut path = format!("{CMS}?labelSelector=parity%3Dodd&limit=3");
        if !token.is_empty() {
            path.push_str(&format!("&continue={token}"));
        }
        let r = api.get(&path).await;
        let items = r.body["items"].as_array().expect("items");
        assert!(items.len() <= 3);
        seen.extend(
            items
                .iter()
                .filter_map(|i| i["metadata"]["name"].as_str().map(str::to_string)),
        );
        match r.body["metadata"]["continue"].as_str() {
            Some(t) if !t.is_empty() => token = t.to_string(),
            _ => break,
        }
    }
    assert_eq!(seen, vec!["c01", "c03", "c05", "c07", "c09"]);
    let r = api.get(&format!("{CMS}?limit=2&continue=garbage")).await;
    assert_status(&r, 400, "BadRequest");
}

#[tokio::test]
async fn table_output_for_kubectl_get() {
    let api = Api::new().await;
    api.post(DEPLOYS, deployment("t")).await;
    let r = api.router.clone();
    let req = axum::http::Request::builder()
        .uri(DEPLOYS)
        .header("authorization", format!("Bearer {TOKEN}"))
        .header(
            "accept",
            "application/json;as=Table;v=v1;g=meta.k8s.io,application/json",
        )
        .body(axum::body::Body::empty())
        .expect("req");
    use http_body_util::BodyExt;
    use tower::ServiceExt;
    let resp = r.oneshot(req).await.expect("resp");
    let body: serde_json::Value =
        serde_json::from_slice(&resp.into_body().collect().await.expect("b").to_bytes())
            .expect("json");
    assert_eq!(body["kind"], "Table");
    let cols: Vec<&str> = body["columnDefinitions"]
        .as_array()
        .expect("cols")
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(
        &cols[..5],
        &["Name", "Ready", "Up-to-date", "Available", "Age"]
    );
    assert_eq!(body["rows"][0]["cells"][0], "t");
    assert_eq!(body["rows"][0]["cells"][1], "0/1");
}

#[tokio::test]
async fn discovery_and_openapi() {
    let api = Api::new().await;
    let r = api.get("/api/v1").await;
    let pods = r.body["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .find(|x| x["name"] == "pods")
        .cloned()
        .expect("pods");
    assert_eq!(pods["shortNames"], json!(["po"]));
    assert_eq!(pods["categories"], json!(["all"]));
    let r = api.get("/apis").await;
    assert!(
        r.body["groups"]
            .as_array()
            .expect("groups")
            .iter()
            .any(|g| g["name"] == "apps")
    );
    let r = api.get("/version").await;
    assert_eq!(r.body["major"], "1");
    let r = api.get("/openapi/v3").await;
    let url = r.body["paths"]["apis/apps/v1"]["serverRelativeURL"]
        .as_str()
        .expect("apps url");
    let doc = api.get(url).await;
    assert_eq!(doc.code, 200);
    assert!(doc.body["components"]["schemas"]["io.k8s.api.apps.v1.Deployment"].is_object());
}

#[tokio::test]
async fn namespace_deletion_waits_for_its_finalizer() {
    let api = Api::new().await;
    api.post(
        "/api/v1/namespaces",
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "t"}}),
    )
    .await;
    let r = api
        .delete("/api/v1/namespaces/t", serde_json::Value::Null)
        .await;
    assert_eq!(r.code, 200, "{}", r.text);
    assert_eq!(r.body["status"]["phase"], "Terminating");
    // New content is refused in a terminating namespace.
    let r = api.post("/api/v1/namespaces/t/configmaps", cm("x")).await;
    assert_status(&r, 403, "Forbidden");
    // The namespace controller's finalize call lets it go.
    let mut ns = api.get("/api/v1/namespaces/t").await.body;
    ns["spec"]["finalizers"] = json!([]);
    let r = api.put("/api/v1/namespaces/t/finalize", ns).await;
    assert_eq!(r.code, 200, "{}", r.text);
    assert_eq!(api.get("/api/v1/namespaces/t").await.code, 404);
}

#[tokio::test]
async fn protobuf_bodies_from_kubectl_create() {
    // Bodies captured from `kubectl create deployment|configmap` (client-go sends protobuf).
    let api = Api::new().await;
    let fixtures = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../api/tests/fixtures/protobuf/"
    );
    for (file, path) in [
        ("configmap.pb", "/api/v1/namespaces/default/configmaps"),
        (
            "deployment.pb",
            "/apis/apps/v1/namespaces/default/deployments",
        ),
        ("namespace.pb", "/api/v1/namespaces"),
    ] {
        let body = std::fs::read(format!("{fixtures}{file}")).expect("fixture");
        let req = axum::http::Request::builder()
            .method(Method::POST)
            .uri(path)
            .header("authorization", format!("Bearer {TOKEN}"))
            .header("content-type", "application/vnd.kubernetes.protobuf")
            .header("accept", "application/vnd.kubernetes.protobuf, */*")
            .body(axum::body::Body::from(body))
            .expect("req");
        use http_body_util::BodyExt;
        use tower::ServiceExt;
        let resp = api.router.clone().oneshot(req).await.expect("resp");
        let code = resp.status().as_u16();
        let text = resp.into_body().collect().await.expect("body").to_bytes();
        assert_eq!(code, 201, "{file}: {}", String::from_utf8_lossy(&text));
        let obj: serde_json::Value = serde_json::from_slice(&text).expect("json answer");
        assert!(obj["metadata"]["uid"].is_string(), "{file}");
    }
    let garbage = api
        .raw(
            Method::POST,
            CMS,
            "application/vnd.kubernetes.protobuf",
            "k8s\0\u{1}\u{2}",
            Some(TOKEN),
        )
        .await;
    assert_status(&garbage, 400, "BadRequest");
}
