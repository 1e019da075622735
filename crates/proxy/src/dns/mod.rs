//! The cluster DNS server: authoritative for the cluster domain over UDP and TCP on one
//! loopback address, answering from the proxy's caches ([`records`]). It does no recursion
//! and forwards nothing, so no query ever leaves loopback: names outside the domain are
//! REFUSED.
//!
//! Like the ClusterIP listeners, the address is machine-wide: the first node's proxy to bind
//! it serves, the others retry every second and take over when it goes away.

pub mod records;

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, ResponseCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio_util::sync::CancellationToken;

use crate::cache::Cache;
use crate::endpoints::SliceIndex;
use records::{Answer, Zone};

/// How long a TCP client may stay idle between queries.
const TCP_IDLE: Duration = Duration::from_secs(10);
const RETRY: Duration = Duration::from_secs(1);

type Shared = Arc<RwLock<Arc<Zone>>>;

/// Serves the cluster domain `domain` on `addr` until `shutdown`.
pub async fn run(cache: Cache, addr: SocketAddr, domain: String, shutdown: CancellationToken) {
    let zone: Shared = Arc::new(RwLock::new(Arc::new(Zone::new(
        &domain,
        vec![],
        SliceIndex::default(),
    ))));
    let mut changed = cache.subscribe();
    tokio::select! {
        _ = cache.ready() => {}
        _ = shutdown.cancelled() => return,
    }
    tokio::spawn(serve_udp(addr, zone.clone(), shutdown.clone()));
    tokio::spawn(serve_tcp(addr, zone.clone(), shutdown.clone()));
    loop {
        let z = Zone::new(
            &domain,
            cache.services.state(),
            SliceIndex::new(cache.slices.state()),
        );
        if let Ok(mut w) = zone.write() {
            *w = Arc::new(z);
        }
        tokio::select! {
            r = changed.changed() => if r.is_err() { return },
            _ = shutdown.cancelled() => return,
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        changed.borrow_and_update();
    }
}

fn snapshot(zone: &Shared) -> Option<Arc<Zone>> {
    zone.read().ok().map(|z| z.clone())
}

/// The response to one request message (`None` for something that is not a query at all).
pub fn respond(zone: &Zone, request: &Message) -> Option<Message> {
    if request.message_type() != MessageType::Query {
        return None;
    }
    let mut resp = Message::error_msg(request.id(), request.op_code(), ResponseCode::NoError);
    resp.set_recursion_desired(request.recursion_desired());
    resp.set_recursion_available(false);
    if request.op_code() != OpCode::Query || request.queries().len() != 1 {
        resp.add_queries(request.queries().iter().cloned());
        resp.set_response_code(if request.op_code() == OpCode::Query {
            ResponseCode::FormErr
        } else {
            ResponseCode::NotImp
        });
        return Some(resp);
    }
    let query = &request.queries()[0];
    resp.add_query(query.clone());
    match zone.answer(query.name(), query.query_type()) {
        Answer::Records {
            answers,
            additionals,
        } => {
            resp.set_authoritative(true);
            resp.add_answers(answers);
            resp.add_additionals(additionals);
        }
        Answer::NoData => {
            resp.set_authoritative(true);
            resp.add_name_servers(zone.soa());
        }
        Answer::NxDomain => {
            resp.set_authoritative(true);
            resp.set_response_code(ResponseCode::NXDomain);
            resp.add_name_servers(zone.soa());
        }
        Answer::Refused => {
            resp.set_response_code(ResponseCode::Refused);
        }
    }
    if request.extensions().is_some() {
        // Our own OPT record: no options echoed, our buffer size.
        let mut e = Edns::new();
        e.set_max_payload(4096);
        resp.set_edns(e);
    }
    Some(resp)
}

/// Encodes `resp`, cut to fit `limit` bytes (UDP) with the TC bit set so the client retries
/// over TCP.
fn encode(resp: &Message, limit: Option<usize>) -> Option<Vec<u8>> {
    let bytes = resp.to_vec().ok()?;
    match limit {
        Some(limit) if bytes.len() > limit => resp.truncate().to_vec().ok(),
        _ => Some(bytes),
    }
}

async fn bind_udp(addr: SocketAddr, shutdown: &CancellationToken) -> Option<UdpSocket> {
    let mut logged = false;
    loop {
        match UdpSocket::bind(addr).await {
            Ok(s) => return Some(s),
            Err(e) => {
                if !logged {
                    log_bind_error(addr, "udp", &e);
                    logged = true;
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(RETRY) => {}
            _ = shutdown.cancelled() => return None,
        }
    }
}

fn log_bind_error(addr: SocketAddr, proto: &str, e: &std::io::Error) {
    if e.kind() == std::io::ErrorKind::AddrInUse {
        tracing::debug!(%addr, proto, "cluster DNS address held elsewhere (another node's proxy on this host?); standing by");
    } else {
        tracing::warn!(%addr, proto, error = %e, "cluster DNS cannot listen; retrying");
    }
}

async fn serve_udp(addr: SocketAddr, zone: Shared, shutdown: CancellationToken) {
    let Some(socket) = bind_udp(addr, &shutdown).await else {
        return;
    };
    tracing::debug!(%addr, "cluster DNS serving over UDP");
    let mut buf = vec![0u8; 4096];
    loop {
        let (n, peer) = tokio::select! {
            r = socket.recv_from(&mut buf) => match r {
                Ok(r) => r,
                Err(e) => {
                    tracing::debug!(error = %e, "receiving a DNS query");
                    continue;
                }
            },
            _ = shutdown.cancelled() => return,
        };
        let Ok(request) = Message::from_vec(&buf[..n]) else {
            continue;
        };
        let Some(z) = snapshot(&zone) else { return };
        let Some(resp) = respond(&z, &request) else {
            continue;
        };
        let limit = request.max_payload() as usize;
        if let Some(bytes) = encode(&resp, Some(limit.max(512))) {
            let _ = socket.send_to(&bytes, peer).await;
        }
    }
}

async fn serve_tcp(addr: SocketAddr, zone: Shared, shutdown: CancellationToken) {
    let listener = loop {
        match TcpListener::bind(addr).await {
            Ok(l) => break l,
            Err(e) => log_bind_error(addr, "tcp", &e),
        }
        tokio::select! {
            _ = tokio::time::sleep(RETRY) => {}
            _ = shutdown.cancelled() => return,
        }
    };
    tracing::debug!(%addr, "cluster DNS serving over TCP");
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.cancelled() => return,
        };
        match accepted {
            Ok((stream, _)) => {
                tokio::spawn(tcp_connection(stream, zone.clone(), shutdown.clone()));
            }
            Err(e) => {
                tracing::debug!(error = %e, "accepting a DNS connection");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Length-prefixed messages (RFC 1035 4.2.2) until the client closes or idles out.
async fn tcp_connection(mut stream: TcpStream, zone: Shared, shutdown: CancellationToken) {
    loop {
        let mut len = [0u8; 2];
        let read = tokio::select! {
            r = tokio::time::timeout(TCP_IDLE, stream.read_exact(&mut len)) => r,
            _ = shutdown.cancelled() => return,
        };
        if !matches!(read, Ok(Ok(_))) {
            return;
        }
        let mut msg = vec![0u8; u16::from_be_bytes(len) as usize];
        if !matches!(
            tokio::time::timeout(TCP_IDLE, stream.read_exact(&mut msg)).await,
            Ok(Ok(_))
        ) {
            return;
        }
        let Ok(request) = Message::from_vec(&msg) else {
            return;
        };
        let Some(z) = snapshot(&zone) else { return };
        let Some(resp) = respond(&z, &request) else {
            return;
        };
        let Some(bytes) = encode(&resp, None) else {
            return;
        };
        let Ok(n) = u16::try_from(bytes.len()) else {
            return;
        };
        let mut out = Vec::with_capacity(bytes.len() + 2);
        out.extend_from_slice(&n.to_be_bytes());
        out.extend_from_slice(&bytes);
        if stream.write_all(&out).await.is_err() {
            return;
        }
    }
}
