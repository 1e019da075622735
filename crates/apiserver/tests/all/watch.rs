//! The watch protocol over the router: replay from a resourceVersion, live events, selector
//! transitions, bookmarks, sendInitialEvents and 410 Gone.

use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use futures::StreamExt;
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::{Api, TOKEN};

const CMS: &str = "/api/v1/namespaces/default/configmaps";

fn cm(name: &str, labels: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": labels}})
}

/// Opens a watch and returns a stream of decoded events.
async fn watch(api: &Api, query: &str) -> futures::stream::BoxStream<'static, Value> {
    let req = Request::builder()
        .uri(format!("{CMS}?watch=true&{query}"))
        .header("authorization", format!("Bearer {TOKEN}"))
        .body(Body::empty())
        .expect("req");
    let resp = api.router.clone().oneshot(req).await.expect("resp");
    assert_eq!(resp.status().as_u16(), 200);
    let body = resp.into_body().into_data_stream();
    let lines =
        futures::stream::unfold((body, Vec::<u8>::new()), |(mut body, mut buf)| async move {
            loop {
                if let Some(pos) = buf.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = buf.drain(..=pos).collect();
                    let v: Value = serde_json::from_slice(&line).expect("event json");
                    return Some((v, (body, buf)));
                }
                match body.next().await {
                    Some(Ok(chunk)) => buf.extend_from_slice(&chunk),
                    _ => return None,
                }
            }
        });
    lines.boxed()
}

async fn next(s: &mut futures::stream::BoxStream<'static, Value>) -> Value {
    tokio::time::timeout(Duration::from_secs(5), s.next())
        .await
        .expect("event within 5 s")
        .expect("stream open")
}

#[tokio::test]
async fn replay_then_live_with_selector_transitions() {
    let api = Api::new().await;
    let rv = api.get(CMS).await.body["metadata"]["resourceVersion"]
        .as_str()
        .expect("rv")
        .to_string();
    api.post(CMS, cm("a", json!({"w": "yes"}))).await;
    api.post(CMS, cm("b", json!({"w": "no"}))).await;
    let mut s = watch(&api, &format!("resourceVersion={rv}&labelSelector=w%3Dyes")).await;
    let e = next(&mut s).await;
    assert_eq!(
        (e["type"].as_str(), e["object"]["metadata"]["name"].as_str()),
        (Some("ADDED"), Some("a"))
    );
    // b starts matching: ADDED; a stops matching: DELETED.
    api.patch(
        &format!("{CMS}/b"),
        "application/merge-patch+json",
        json!({"metadata": {"labels": {"w": "yes"}}}),
    )
    .await;
    let e = next(&mut s).await;
    assert_eq!(
        (e["type"].as_str(), e["object"]["metadata"]["name"].as_str()),
        (Some("ADDED"), Some("b"))
    );
    api.patch(
        &format!("{CMS}/a"),
        "application/merge-patch+json",
        json!({"metadata": {"labels": {"w": "no"}}}),
    )
    .await;
    let e = next(&mut s).await;
    assert_eq!(
        (e["type"].as_str(), e["object"]["metadata"]["name"].as_str()),
        (Some("DELETED"), Some("a"))
    );
    api.patch(
        &format!("{CMS}/b"),
        "application/merge-patch+json",
        json!({"data": {"k": "v"}}),
    )
    .await;
    let e = next(&mut s).await;
    assert_eq!(e["type"], "MODIFIED");
    let rv_b = e["object"]["metadata"]["resourceVersion"]
        .as_str()
        .expect("rv")
        .to_string();
    api.delete(&format!("{CMS}/b"), Value::Null).await;
    let e = next(&mut s).await;
    assert_eq!(e["type"], "DELETED");
    assert!(
        e["object"]["metadata"]["resourceVersion"]
            .as_str()
            .expect("rv")
            .parse::<u64>()
            .expect("num")
            > rv_b.parse::<u64>().expect("num")
    );
}

#[tokio::test]
async fn watch_without_version_starts_with_current_state() {
    let api = Api::new().await;
    api.post(CMS, cm("existing", json!({}))).await;
    let mut s = watch(&api, "").await;
    let e = next(&mut s).await;
    assert_eq!(
        (e["type"].as_str(), e["object"]["metadata"]["name"].as_str()),
        (Some("ADDED"), Some("existing"))
    );
    api.post(CMS, cm("new", json!({}))).await;
    let e = next(&mut s).await;
    assert_eq!(e["object"]["metadata"]["name"], "new");
}

#[tokio::test]
async fn send_initial_events_ends_with_annotated_bookmark() {
    let api = Api::new().await;
    api.post(CMS, cm("one", json!({}))).await;
    let mut s = watch(
        &api,
        "sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true",
    )
    .await;
    assert_eq!(next(&mut s).await["type"], "ADDED");
    let b = next(&mut s).await;
    assert_eq!(b["type"], "BOOKMARK");
    assert_eq!(
        b["object"]["metadata"]["annotations"]["k8s.io/initial-events-end"],
        "true"
    );
    // Without resourceVersionMatch it is refused, so clients fall back to list+watch.
    let req = Request::builder()
        .uri(format!("{CMS}?watch=true&sendInitialEvents=true"))
        .header("authorization", format!("Bearer {TOKEN}"))
        .body(Body::empty())
        .expect("req");
    let resp = api.router.clone().oneshot(req).await.expect("resp");
    assert_eq!(resp.status().as_u16(), 422);
}

#[tokio::test]
async fn periodic_bookmarks() {
    let api = Api::with_bookmarks(Duration::from_millis(200)).await;
    let mut s = watch(&api, "allowWatchBookmarks=true&resourceVersion=1").await;
    let mut saw = false;
    for _ in 0..20 {
        let e = next(&mut s).await;
        if e["type"] == "BOOKMARK" {
            assert!(e["object"]["metadata"]["resourceVersion"].is_string());
            saw = true;
            break;
        }
    }
    assert!(saw);
}

#[tokio::test]
async fn too_old_resource_version_is_gone() {
    let api = Api::new().await;
    for i in 0..5 {
        api.post(CMS, cm(&format!("c{i}"), json!({}))).await;
    }
    let current = api.store.current_revision().await.expect("rev");
    api.store.compact(current).await.expect("compact");
    let mut s = watch(&api, "resourceVersion=2").await;
    let e = next(&mut s).await;
    assert_eq!(e["type"], "ERROR");
    assert_eq!(e["object"]["code"], 410);
    assert_eq!(e["object"]["reason"], "Expired");
    assert!(
        e["object"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("too old resource version")
    );
    assert!(
        tokio::time::timeout(Duration::from_secs(2), s.next())
            .await
            .expect("ends")
            .is_none()
    );
}

#[tokio::test]
async fn timeout_seconds_ends_the_stream() {
    let api = Api::new().await;
    let mut s = watch(&api, "timeoutSeconds=1&resourceVersion=1").await;
    let end = tokio::time::timeout(Duration::from_secs(5), async {
        while s.next().await.is_some() {}
    })
    .await;
    assert!(end.is_ok(), "stream ended after its timeout");
}
