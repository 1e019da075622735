//! The L4 proxy against real TCP backends.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::json;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::{Backend, Cluster, Seen, addr, connect_once, eventually, read_line};

const WAIT: Duration = Duration::from_secs(10);

async fn greetings(to: std::net::SocketAddr, n: usize) -> Vec<Seen> {
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(connect_once(to).await);
    }
    out
}

#[tokio::test]
async fn cluster_ip_round_robin_follows_endpoint_changes_without_dropping_connections() {
    let c = Cluster::start(1).await;
    let b1 = Backend::start(addr("127.250.1.11:8080"), "one").await;
    let b2 = Backend::start(addr("127.250.1.12:8080"), "two").await;
    let b3 = Backend::start(addr("127.250.1.13:8080"), "three").await;
    c.create_service(json!({
        "metadata": {"name": "web"},
        "spec": {"clusterIP": "127.250.1.100", "ports": [{"name": "http", "port": 80, "targetPort": 8080}]},
    }))
    .await;
    let vip = addr("127.250.1.100:80");
    c.set_endpoints("web", &[b1.addr, b2.addr, b3.addr], &[])
        .await;
    let names = eventually("three backends in rotation", WAIT, || async {
        let seen = greetings(vip, 3).await;
        let names: BTreeSet<String> = seen
            .into_iter()
            .filter_map(|s| match s {
                Seen::Greeting(g) => Some(g),
                Seen::Failed => None,
            })
            .collect();
        (names.len() == 3).then_some(names)
    })
    .await;
    assert_eq!(
        names,
        BTreeSet::from(["one".into(), "two".into(), "three".into()])
    );

    // Hold a connection open, then take its backend out of the Service.
    let mut held = TcpStream::connect(vip).await.expect("connect");
    let held_name = read_line(&mut held).await.expect("greeting");
    let remaining: Vec<_> = [&b1, &b2, &b3]
        .into_iter()
        .filter(|b| b.name != held_name)
        .map(|b| b.addr)
        .collect();
    let gone = [&b1, &b2, &b3]
        .into_iter()
        .find(|b| b.name == held_name)
        .map(|b| b.addr)
        .expect("held backend");
    c.set_endpoints("web", &remaining, &[gone]).await;
    eventually("the not-ready backend out of rotation", WAIT, || async {
        let seen = greetings(vip, 6).await;
        seen.iter()
            .all(|s| matches!(s, Seen::Greeting(g) if *g != held_name))
            .then_some(())
    })
    .await;
    // The established connection still reaches its backend.
    held.write_all(b"still here\n").await.expect("write");
    assert_eq!(read_line(&mut held).await.as_deref(), Some("still here"));
}

#[tokio::test]
async fn refusing_backends_are_skipped_and_no_endpoints_resets_at_once() {
    let c = Cluster::start(2).await;
    let b1 = Backend::start(addr("127.250.2.11:8080"), "alive").await;
    c.create_service(json!({
        "metadata": {"name": "web"},
        "spec": {"clusterIP": "127.250.2.100", "ports": [{"name": "http", "port": 80}]},
    }))
    .await;
    let vip = addr("127.250.2.100:80");
    // Nothing listens on .12 and .13: the proxy skips them.
    c.set_endpoints(
        "web",
        &[
            b1.addr,
            addr("127.250.2.12:8080"),
            addr("127.250.2.13:8080"),
        ],
        &[],
    )
    .await;
    eventually("the live backend answering", WAIT, || async {
        (connect_once(vip).await == Seen::Greeting("alive".into())).then_some(())
    })
    .await;
    for s in greetings(vip, 9).await {
        assert_eq!(s, Seen::Greeting("alive".into()));
    }

    // No ready endpoints: the listener stays, and every connection is reset right away.
    c.set_endpoints("web", &[], &[b1.addr]).await;
    eventually("connections refused", WAIT, || async {
        (connect_once(vip).await == Seen::Failed).then_some(())
    })
    .await;
    let mut s = TcpStream::connect(vip)
        .await
        .expect("the listener is still there");
    assert_eq!(read_line(&mut s).await, None);

    // Endpoints back: served again through the same listener.
    c.set_endpoints("web", &[b1.addr], &[]).await;
    eventually("served again", WAIT, || async {
        (connect_once(vip).await == Seen::Greeting("alive".into())).then_some(())
    })
    .await;

    // The Service gone: the listener closes.
    c.delete_service("web").await;
    eventually("the listener closed", WAIT, || async {
        TcpStream::connect(vip).await.is_err().then_some(())
    })
    .await;
}

#[tokio::test]
async fn session_affinity_node_port_and_load_balancer() {
    let c = Cluster::start(3).await;
    let b1 = Backend::start(addr("127.250.3.11:8080"), "one").await;
    let b2 = Backend::start(addr("127.250.3.12:8080"), "two").await;
    c.create_service(json!({
        "metadata": {"name": "lb"},
        "spec": {"type": "LoadBalancer", "clusterIP": "127.250.3.100",
                 "sessionAffinity": "ClientIP",
                 "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 60}},
                 "ports": [{"name": "http", "port": 8000, "nodePort": 31234, "targetPort": 8080}]},
    }))
    .await;
    c.set_endpoints("lb", &[b1.addr, b2.addr], &[]).await;
    let node = c.node_ip;
    for to in [
        addr("127.250.3.100:8000"),
        std::net::SocketAddr::new(node, 31234),
        std::net::SocketAddr::new(node, 8000),
    ] {
        let first = eventually("an answer", WAIT, || async {
            match connect_once(to).await {
                Seen::Greeting(g) => Some(g),
                Seen::Failed => None,
            }
        })
        .await;
        // Pinned: every connection of this client lands on the same backend.
        for s in greetings(to, 8).await {
            assert_eq!(s, Seen::Greeting(first.clone()), "via {to}");
        }
    }
    // The status writer reports the node address.
    eventually("status.loadBalancer.ingress", WAIT, || async {
        let svc = c.services().get("lb").await.ok()?;
        let ip = svc.status?.load_balancer?.ingress?.first()?.ip.clone()?;
        (ip == node.to_string()).then_some(())
    })
    .await;
}
