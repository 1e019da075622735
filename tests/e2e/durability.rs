//! No acknowledged write is lost on SIGKILL: thousands of concurrent creates, a kill -9 in the
//! middle of the stream, a restart, and every create that got a 201 must be there — on the
//! embedded redb store, and on etcd, where one etcd member is killed as well.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use wasmkube_testkit::etcd::EtcdCluster;

use crate::harness::Server;

fn client(s: &Server) -> reqwest::Client {
    let ca = std::fs::read(s.dir.join("tls/server-ca.crt")).expect("ca");
    reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&ca).expect("pem"))
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

#[test]
fn acknowledged_creates_survive_kill_9() {
    let mut s = Server::start();
    creates_survive(&mut s, || {});
}

#[test]
fn acknowledged_creates_survive_kill_9_on_etcd() {
    let mut etcd = EtcdCluster::start(3);
    let endpoints = etcd.endpoint_list();
    let mut s = Server::start_with(&["--datastore-endpoint", &endpoints]);
    // The server dies, and so does an etcd member: a quorum (2 of 3) keeps every acked write.
    creates_survive(&mut s, || etcd.kill(0));
}

/// 64 workers create ConfigMaps; once 1,000 are acknowledged the server is killed (and
/// `also_kill` runs), then it is restarted and must list every acknowledged one.
fn creates_survive(s: &mut Server, also_kill: impl FnOnce()) {
    let mut also_kill = Some(also_kill);
    let url = format!("{}/api/v1/namespaces/default/configmaps", s.url);
    let token = s.token();
    let http = client(s);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let killed = Arc::new(AtomicBool::new(false));

    // 64 workers create configmaps as fast as they can; the server is killed once at least
    // 1,000 creates have been acknowledged, while requests are still in flight.
    let acked: Vec<String> = rt.block_on(async {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
        let mut workers = Vec::new();
        for w in 0..64 {
            let http = http.clone();
            let url = url.clone();
            let token = token.clone();
            let tx = tx.clone();
            let killed = killed.clone();
            workers.push(tokio::spawn(async move {
                for i in 0.. {
                    if killed.load(Ordering::SeqCst) || i > 200 {
                        break;
                    }
                    let name = format!("cm-{w}-{i}");
                    let body = serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap",
                        "metadata": {"name": name}, "data": {"w": w.to_string()}});
                    let resp = http.post(&url).bearer_auth(&token).json(&body).send().await;
                    match resp {
                        Ok(r) if r.status().as_u16() == 201 => {
                            let _ = tx.send(name);
                        }
                        _ => {}
                    }
                }
            }));
        }
        drop(tx);
        let mut acked = Vec::new();
        while let Some(name) = rx.recv().await {
            acked.push(name);
            if acked.len() == 1000 && !killed.load(Ordering::SeqCst) {
                killed.store(true, Ordering::SeqCst);
                s.kill9();
                if let Some(kill) = also_kill.take() {
                    kill();
                }
            }
        }
        for w in workers {
            let _ = w.await;
        }
        acked
    });
    assert!(
        acked.len() >= 1000,
        "only {} creates acknowledged",
        acked.len()
    );
    assert!(
        killed.load(Ordering::SeqCst),
        "the server was killed mid-stream"
    );

    s.launch(0);
    let http = client(s);
    let url = format!("{}/api/v1/namespaces/default/configmaps", s.url);
    let stored: std::collections::HashSet<String> = rt.block_on(async {
        let v: serde_json::Value = http
            .get(&url)
            .bearer_auth(s.token())
            .send()
            .await
            .expect("list")
            .json()
            .await
            .expect("json");
        v["items"]
            .as_array()
            .expect("items")
            .iter()
            .filter_map(|i| i["metadata"]["name"].as_str().map(str::to_string))
            .collect()
    });
    let lost: Vec<&String> = acked.iter().filter(|n| !stored.contains(*n)).collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged creates lost, e.g. {:?}",
        lost.len(),
        &lost[..lost.len().min(5)]
    );
}
