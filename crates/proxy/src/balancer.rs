//! Choosing a backend for a new connection: round-robin over the ready endpoints of one
//! Service port, with `sessionAffinity: ClientIP` pinning a client to the endpoint it got
//! last until it has been silent for `timeoutSeconds` (kube-proxy's userspace semantics: the
//! timeout runs from the client's last connection, not its first).
//!
//! Pure logic: time is passed in, so the tests need no clock.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

/// A Service's `sessionAffinity`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionAffinity {
    None,
    /// `ClientIP` with its `sessionAffinityConfig.clientIP.timeoutSeconds`.
    ClientIp {
        timeout: Duration,
    },
}

/// Kubernetes' default `timeoutSeconds` for ClientIP affinity (3 hours).
pub const DEFAULT_AFFINITY_TIMEOUT: Duration = Duration::from_secs(10_800);

/// Past this many remembered clients, expired ones are swept on the next pick.
const SWEEP_AT: usize = 4096;

/// The endpoints of one Service port and the state to spread connections over them.
#[derive(Debug)]
pub struct Balancer {
    endpoints: Vec<SocketAddr>,
    /// Index of the endpoint the next round-robin pick starts from.
    next: usize,
    affinity: SessionAffinity,
    /// Client → (its endpoint, its last connection).
    clients: HashMap<IpAddr, (SocketAddr, Instant)>,
}

impl Balancer {
    pub fn new(affinity: SessionAffinity) -> Balancer {
        Balancer {
            endpoints: Vec::new(),
            next: 0,
            affinity,
            clients: HashMap::new(),
        }
    }

    pub fn endpoints(&self) -> &[SocketAddr] {
        &self.endpoints
    }

    /// Replaces the endpoints (sorted and de-duplicated here). The round-robin position and
    /// the affinity of clients whose endpoint is still there carry over, so a scale-up does
    /// not reshuffle pinned clients.
    pub fn set_endpoints(&mut self, mut endpoints: Vec<SocketAddr>) {
        endpoints.sort();
        endpoints.dedup();
        if endpoints == self.endpoints {
            return;
        }
        self.clients.retain(|_, (ep, _)| endpoints.contains(ep));
        if !endpoints.is_empty() {
            self.next %= endpoints.len();
        } else {
            self.next = 0;
        }
        self.endpoints = endpoints;
    }

    pub fn set_affinity(&mut self, affinity: SessionAffinity) {
        if affinity != self.affinity {
            self.affinity = affinity;
            self.clients.clear();
        }
    }

    /// The endpoint for a new connection from `client`, leaving out those in `skip` (tried
    /// already and refused). `None` when nothing is left.
    pub fn pick(
        &mut self,
        client: IpAddr,
        now: Instant,
        skip: &[SocketAddr],
    ) -> Option<SocketAddr> {
        if let SessionAffinity::ClientIp { timeout } = self.affinity {
            if self.clients.len() > SWEEP_AT {
                self.clients
                    .retain(|_, (_, last)| now.saturating_duration_since(*last) < timeout);
            }
            if let Some((ep, last)) = self.clients.get(&client)
                && now.saturating_duration_since(*last) < timeout
                && !skip.contains(ep)
            {
                return Some(*ep);
            }
        }
        let n = self.endpoints.len();
        for i in 0..n {
            let idx = (self.next + i) % n;
            let ep = self.endpoints[idx];
            if !skip.contains(&ep) {
                self.next = (idx + 1) % n;
                return Some(ep);
            }
        }
        None
    }

    /// Records that `client` connected to `endpoint`: with ClientIP affinity it sticks there.
    pub fn connected(&mut self, client: IpAddr, endpoint: SocketAddr, now: Instant) {
        if matches!(self.affinity, SessionAffinity::ClientIp { .. }) {
            self.clients.insert(client, (endpoint, now));
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ep(last: u8) -> SocketAddr {
        SocketAddr::from(([127, 64, 0, last], 8080))
    }

    fn client(last: u8) -> IpAddr {
        IpAddr::from([127, 0, 0, last])
    }

    #[test]
    fn round_robin_visits_every_endpoint_in_turn() {
        let mut b = Balancer::new(SessionAffinity::None);
        b.set_endpoints(vec![ep(3), ep(1), ep(2)]);
        let now = Instant::now();
        let picks: Vec<_> = (0..6)
            .map(|_| b.pick(client(1), now, &[]).unwrap())
            .collect();
        assert_eq!(picks, vec![ep(1), ep(2), ep(3), ep(1), ep(2), ep(3)]);
    }

    #[test]
    fn no_endpoints_means_no_pick() {
        let mut b = Balancer::new(SessionAffinity::None);
        assert_eq!(b.pick(client(1), Instant::now(), &[]), None);
        b.set_endpoints(vec![ep(1)]);
        assert_eq!(b.pick(client(1), Instant::now(), &[ep(1)]), None);
    }

    #[test]
    fn refused_endpoints_are_skipped() {
        let mut b = Balancer::new(SessionAffinity::None);
        b.set_endpoints(vec![ep(1), ep(2), ep(3)]);
        let now = Instant::now();
        assert_eq!(b.pick(client(1), now, &[ep(1)]), Some(ep(2)));
        assert_eq!(b.pick(client(1), now, &[ep(3)]), Some(ep(1)));
        assert_eq!(b.pick(client(1), now, &[ep(1), ep(2)]), Some(ep(3)));
    }

    #[test]
    fn endpoint_changes_keep_the_rotation_going() {
        let mut b = Balancer::new(SessionAffinity::None);
        b.set_endpoints(vec![ep(1), ep(2)]);
        let now = Instant::now();
        assert_eq!(b.pick(client(1), now, &[]), Some(ep(1)));
        b.set_endpoints(vec![ep(1), ep(2), ep(3)]);
        assert_eq!(b.pick(client(1), now, &[]), Some(ep(2)));
        assert_eq!(b.pick(client(1), now, &[]), Some(ep(3)));
        b.set_endpoints(vec![ep(2)]);
        assert_eq!(b.pick(client(1), now, &[]), Some(ep(2)));
        b.set_endpoints(vec![]);
        assert_eq!(b.pick(client(1), now, &[]), None);
    }

    #[test]
    fn client_ip_affinity_pins_until_the_client_is_silent_for_the_timeout() {
        let timeout = Duration::from_secs(10);
        let mut b = Balancer::new(SessionAffinity::ClientIp { timeout });
        b.set_endpoints(vec![ep(1), ep(2), ep(3)]);
        let t0 = Instant::now();
        let first = b.pick(client(1), t0, &[]).unwrap();
        b.connected(client(1), first, t0);
        // Another client takes the next endpoints; client 1 keeps its own.
        let other = b.pick(client(2), t0, &[]).unwrap();
        b.connected(client(2), other, t0);
        assert_ne!(first, other);
        for s in 1..=5 {
            let t = t0 + Duration::from_secs(s * 8);
            // Each connection within the timeout of the last one renews it.
            assert_eq!(b.pick(client(1), t, &[]), Some(first));
            b.connected(client(1), first, t);
        }
        // Silent for longer than the timeout: back to round-robin.
        let later = t0 + Duration::from_secs(40 + 11);
        let picks: Vec<_> = (0..3)
            .map(|_| b.pick(client(1), later, &[]).unwrap())
            .collect();
        assert!(picks.contains(&ep(1)) && picks.contains(&ep(2)) && picks.contains(&ep(3)));
    }

    #[test]
    fn affinity_moves_when_the_pinned_endpoint_goes_or_refuses() {
        let timeout = Duration::from_secs(100);
        let mut b = Balancer::new(SessionAffinity::ClientIp { timeout });
        b.set_endpoints(vec![ep(1), ep(2)]);
        let t = Instant::now();
        let first = b.pick(client(1), t, &[]).unwrap();
        b.connected(client(1), first, t);
        // Refused: another endpoint, and the client is pinned there once connected.
        let second = b.pick(client(1), t, &[first]).unwrap();
        assert_ne!(first, second);
        b.connected(client(1), second, t);
        assert_eq!(b.pick(client(1), t, &[]), Some(second));
        // Gone from the Service: the pin is dropped.
        b.set_endpoints(vec![first]);
        assert_eq!(b.pick(client(1), t, &[]), Some(first));
    }

    #[test]
    fn without_affinity_connections_are_not_pinned() {
        let mut b = Balancer::new(SessionAffinity::None);
        b.set_endpoints(vec![ep(1), ep(2)]);
        let t = Instant::now();
        let a = b.pick(client(1), t, &[]).unwrap();
        b.connected(client(1), a, t);
        assert_ne!(b.pick(client(1), t, &[]), Some(a));
    }

    #[test]
    fn changing_affinity_forgets_pins() {
        let timeout = Duration::from_secs(100);
        let mut b = Balancer::new(SessionAffinity::ClientIp { timeout });
        b.set_endpoints(vec![ep(1), ep(2)]);
        let t = Instant::now();
        let a = b.pick(client(1), t, &[]).unwrap();
        b.connected(client(1), a, t);
        b.set_affinity(SessionAffinity::ClientIp {
            timeout: Duration::from_secs(5),
        });
        assert_ne!(b.pick(client(1), t, &[]), Some(a));
    }
}
