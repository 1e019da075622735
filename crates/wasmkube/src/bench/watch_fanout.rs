//! `watch-fanout`: events per second delivered to N HTTP watchers, beside the same fan-out
//! straight from the store's watch streams (no HTTP, no JSON).

use std::time::Instant;

use futures::StreamExt;

use super::api::start_api;

pub(crate) async fn run(watchers: usize, events: usize) -> anyhow::Result<()> {
    let api = start_api().await?;
    let n = events;

    // Reference: the same fan-out straight from the store.
    let rev = api.store.current_revision().await?;
    let mut store_watchers = Vec::new();
    for _ in 0..watchers {
        let mut s = api.store.watch("/bench-ref/", rev).await?;
        store_watchers.push(tokio::spawn(async move {
            let mut got = 0;
            while got < n {
                match s.next().await {
                    Some(Ok(_)) => got += 1,
                    _ => break,
                }
            }
            got
        }));
    }
    let start = Instant::now();
    for i in 0..n {
        api.store
            .create(&format!("/bench-ref/{i}"), bytes::Bytes::from_static(b"{}"))
            .await?;
    }
    let mut delivered = 0;
    for w in store_watchers {
        delivered += w.await.unwrap_or(0);
    }
    let reference = delivered as f64 / start.elapsed().as_secs_f64();
    println!("reference: store watch fan-out to {watchers} watchers: {reference:.0} events/s");

    // The API: HTTP watch streams, JSON events.
    let http = reqwest::Client::new();
    let url = format!("{}/api/v1/namespaces/default/configmaps", api.url);
    let list: serde_json::Value = http.get(&url).send().await?.json().await?;
    let rv = list["metadata"]["resourceVersion"]
        .as_str()
        .unwrap_or("0")
        .to_string();
    let mut api_watchers = Vec::new();
    for _ in 0..watchers {
        let resp = http
            .get(format!("{url}?watch=true&resourceVersion={rv}"))
            .send()
            .await?;
        api_watchers.push(tokio::spawn(async move {
            let mut body = resp.bytes_stream();
            let mut got = 0;
            while got < n {
                match body.next().await {
                    Some(Ok(chunk)) => got += chunk.iter().filter(|b| **b == b'\n').count(),
                    _ => break,
                }
            }
            got
        }));
    }
    let start = Instant::now();
    for i in 0..n {
        let body = serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": format!("w-{i}")}});
        http.post(&url).json(&body).send().await?;
    }
    let mut delivered = 0;
    for w in api_watchers {
        delivered += w.await.unwrap_or(0);
    }
    let rate = delivered as f64 / start.elapsed().as_secs_f64();
    println!(
        "api watch fan-out to {watchers} watchers: {rate:.0} events/s = {:.2}x the store's own fan-out",
        rate / reference
    );
    api.shutdown.cancel();
    Ok(())
}
