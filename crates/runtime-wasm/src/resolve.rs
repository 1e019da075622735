//! Service names for guests: outgoing `wasi:http` requests resolve their host through the
//! cluster DNS first, with a pod's search path (`NS.svc.DOMAIN svc.DOMAIN DOMAIN`, ndots 5,
//! as a pod's resolv.conf has it), so `http://web/` and `http://web.other/` reach Services.
//! The cluster DNS answers only for the cluster domain and is on loopback, so asking it never
//! sends a packet anywhere else; names it refuses fall back to the host's resolver.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use tokio::net::UdpSocket;

/// How long one query may take (loopback: an answer is immediate or never).
const QUERY_TIMEOUT: Duration = Duration::from_millis(500);
/// Names with fewer dots than this try the search path first (Kubernetes' ndots).
const NDOTS: usize = 5;

/// The cluster DNS server and the search path of one pod.
#[derive(Clone, Debug)]
pub(crate) struct ClusterResolver {
    pub(crate) server: SocketAddr,
    pub(crate) search: Vec<String>,
}

impl ClusterResolver {
    /// The resolver of a pod in `namespace` of a cluster with domain `domain`.
    pub(crate) fn for_pod(server: SocketAddr, namespace: &str, domain: &str) -> ClusterResolver {
        let domain = domain.trim_end_matches('.');
        ClusterResolver {
            server,
            search: vec![
                format!("{namespace}.svc.{domain}"),
                format!("svc.{domain}"),
                domain.to_string(),
            ],
        }
    }

    /// The names a host is tried as, in order.
    pub(crate) fn candidates(&self, host: &str) -> Vec<String> {
        if let Some(absolute) = host.strip_suffix('.') {
            return vec![absolute.to_string()];
        }
        let searched = self.search.iter().map(|s| format!("{host}.{s}"));
        if host.matches('.').count() >= NDOTS {
            std::iter::once(host.to_string()).chain(searched).collect()
        } else {
            searched.chain(std::iter::once(host.to_string())).collect()
        }
    }

    /// The fully qualified name and address `host` has in the cluster, if it has one.
    pub(crate) async fn resolve(&self, host: &str) -> Option<(String, Ipv4Addr)> {
        if host.parse::<std::net::IpAddr>().is_ok() {
            return None;
        }
        for name in self.candidates(host) {
            if let Some(ip) = self.query_a(&name).await {
                return Some((name, ip));
            }
        }
        None
    }

    async fn query_a(&self, name: &str) -> Option<Ipv4Addr> {
        let mut qname = Name::from_ascii(name).ok()?;
        qname.set_fqdn(true);
        let id: u16 = rand_id();
        let mut m = Message::new();
        m.set_id(id)
            .set_message_type(MessageType::Query)
            .set_op_code(OpCode::Query)
            .set_recursion_desired(true)
            .add_query(Query::query(qname, RecordType::A));
        let bytes = m.to_vec().ok()?;
        let bind: SocketAddr = if self.server.is_ipv4() {
            SocketAddr::from(([127, 0, 0, 1], 0))
        } else {
            SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, 0))
        };
        let sock = UdpSocket::bind(bind).await.ok()?;
        sock.connect(self.server).await.ok()?;
        sock.send(&bytes).await.ok()?;
        let mut buf = vec![0u8; 4096];
        let deadline = tokio::time::Instant::now() + QUERY_TIMEOUT;
        loop {
            let n = tokio::time::timeout_at(deadline, sock.recv(&mut buf))
                .await
                .ok()?
                .ok()?;
            let Ok(resp) = Message::from_vec(&buf[..n]) else {
                continue;
            };
            if resp.id() != id {
                continue;
            }
            if resp.response_code() != ResponseCode::NoError {
                return None;
            }
            return resp.answers().iter().find_map(|r| match r.data() {
                RData::A(a) => Some(a.0),
                _ => None,
            });
        }
    }
}

fn rand_id() -> u16 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0),
    );
    h.finish() as u16
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn search_path_comes_first_for_short_names() {
        let r =
            ClusterResolver::for_pod("127.16.0.10:53".parse().unwrap(), "shop", "cluster.local");
        assert_eq!(
            r.candidates("web"),
            vec![
                "web.shop.svc.cluster.local",
                "web.svc.cluster.local",
                "web.cluster.local",
                "web"
            ]
        );
        assert_eq!(
            r.candidates("web.other.svc.cluster.local.")[0],
            "web.other.svc.cluster.local"
        );
        assert_eq!(r.candidates("a.b.c.d.e.f")[0], "a.b.c.d.e.f");
    }

    /// A real UDP round trip against a tiny authoritative responder.
    #[tokio::test]
    async fn resolves_through_the_cluster_dns() {
        let server = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = server.local_addr().unwrap();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            loop {
                let Ok((n, peer)) = server.recv_from(&mut buf).await else {
                    return;
                };
                let req = Message::from_vec(&buf[..n]).unwrap();
                let q = req.queries()[0].clone();
                let mut resp = Message::error_msg(req.id(), OpCode::Query, ResponseCode::NXDomain);
                if q.name().to_ascii() == "web.other.svc.cluster.local." {
                    resp.set_response_code(ResponseCode::NoError);
                    resp.add_answer(hickory_proto::rr::Record::from_rdata(
                        q.name().clone(),
                        5,
                        RData::A(hickory_proto::rr::rdata::A(Ipv4Addr::new(127, 16, 0, 9))),
                    ));
                }
                resp.add_query(q);
                let _ = server.send_to(&resp.to_vec().unwrap(), peer).await;
            }
        });
        let r = ClusterResolver::for_pod(addr, "shop", "cluster.local");
        assert_eq!(
            r.resolve("web.other").await,
            Some((
                "web.other.svc.cluster.local".to_string(),
                Ipv4Addr::new(127, 16, 0, 9)
            ))
        );
        assert_eq!(r.resolve("nope").await, None);
        assert_eq!(r.resolve("127.0.0.1").await, None);
    }
}
