//! The cluster DNS over real UDP and TCP sockets.

use std::net::SocketAddr;
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RecordType};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

use crate::{Cluster, addr, eventually};

const WAIT: Duration = Duration::from_secs(10);

fn query(name: &str, ty: RecordType) -> Message {
    let mut m = Message::new();
    m.set_id(4242)
        .set_message_type(MessageType::Query)
        .set_op_code(OpCode::Query)
        .set_recursion_desired(true)
        .add_query(Query::query(Name::from_ascii(name).expect("name"), ty));
    m
}

async fn udp(server: SocketAddr, name: &str, ty: RecordType) -> Option<Message> {
    let sock = UdpSocket::bind("127.0.0.1:0").await.ok()?;
    let bytes = query(name, ty).to_vec().ok()?;
    sock.send_to(&bytes, server).await.ok()?;
    let mut buf = vec![0u8; 4096];
    let (n, _) = tokio::time::timeout(Duration::from_millis(500), sock.recv_from(&mut buf))
        .await
        .ok()?
        .ok()?;
    Message::from_vec(&buf[..n]).ok()
}

async fn tcp(server: SocketAddr, name: &str, ty: RecordType) -> Option<Message> {
    let mut s = TcpStream::connect(server).await.ok()?;
    let bytes = query(name, ty).to_vec().ok()?;
    s.write_all(&(bytes.len() as u16).to_be_bytes())
        .await
        .ok()?;
    s.write_all(&bytes).await.ok()?;
    let mut len = [0u8; 2];
    s.read_exact(&mut len).await.ok()?;
    let mut msg = vec![0u8; u16::from_be_bytes(len) as usize];
    s.read_exact(&mut msg).await.ok()?;
    Message::from_vec(&msg).ok()
}

fn data(m: &Message) -> Vec<String> {
    m.answers().iter().map(|r| r.data().to_string()).collect()
}

#[tokio::test]
async fn service_names_resolve_over_udp_and_tcp() {
    let c = Cluster::start(4).await;
    let dns = addr("127.250.4.53:53");
    c.create_service(json!({
        "metadata": {"name": "web"},
        "spec": {"clusterIP": "127.250.4.100", "ports": [{"name": "http", "port": 80}]},
    }))
    .await;
    c.create_service(json!({
        "metadata": {"name": "db"},
        "spec": {"clusterIP": "None", "ports": [{"name": "http", "port": 5432}]},
    }))
    .await;
    c.create_service(json!({
        "metadata": {"name": "ext"},
        "spec": {"type": "ExternalName", "externalName": "db.example.org"},
    }))
    .await;
    c.set_endpoints(
        "db",
        &[addr("127.250.4.21:5432"), addr("127.250.4.22:5432")],
        &[addr("127.250.4.23:5432")],
    )
    .await;

    let a = eventually("the A record", WAIT, || async {
        let m = udp(dns, "web.default.svc.cluster.local.", RecordType::A).await?;
        (m.response_code() == ResponseCode::NoError && !m.answers().is_empty()).then_some(m)
    })
    .await;
    assert_eq!(data(&a), vec!["127.250.4.100"]);
    assert!(a.authoritative());
    assert!(!a.recursion_available());

    let t = tcp(dns, "web.default.svc.cluster.local.", RecordType::A)
        .await
        .expect("tcp answer");
    assert_eq!(data(&t), vec!["127.250.4.100"]);

    let srv = udp(
        dns,
        "_http._tcp.web.default.svc.cluster.local.",
        RecordType::SRV,
    )
    .await
    .expect("srv");
    assert_eq!(data(&srv), vec!["0 100 80 web.default.svc.cluster.local."]);

    let headless = eventually("the headless A records", WAIT, || async {
        let m = udp(dns, "db.default.svc.cluster.local.", RecordType::A).await?;
        (m.answers().len() == 2).then_some(m)
    })
    .await;
    assert_eq!(data(&headless), vec!["127.250.4.21", "127.250.4.22"]);

    let cname = udp(dns, "ext.default.svc.cluster.local.", RecordType::A)
        .await
        .expect("cname");
    assert_eq!(data(&cname), vec!["db.example.org."]);

    let nx = udp(dns, "nope.default.svc.cluster.local.", RecordType::A)
        .await
        .expect("nx");
    assert_eq!(nx.response_code(), ResponseCode::NXDomain);
    let refused = udp(dns, "example.com.", RecordType::A)
        .await
        .expect("refused");
    assert_eq!(refused.response_code(), ResponseCode::Refused);
    assert!(refused.answers().is_empty());

    // Deleted: gone from DNS too.
    c.delete_service("web").await;
    eventually("NXDOMAIN after deletion", WAIT, || async {
        let m = udp(dns, "web.default.svc.cluster.local.", RecordType::A).await?;
        (m.response_code() == ResponseCode::NXDomain).then_some(())
    })
    .await;
}
