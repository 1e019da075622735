//! wasmkube-proxy: what every node runs so users reach pods as on Kubernetes — the L4
//! service proxy (ClusterIP, NodePort, LoadBalancer), the built-in Ingress controller (L7,
//! IngressClass `wasmkube`) and the cluster DNS. Like kube-proxy it talks to the API server
//! only through the Kubernetes API (watches of Services, EndpointSlices, Ingresses and TLS
//! Secrets), so it runs in-process beside the kubelet of `wasmkube server` and `wasmkube
//! agent`.
//!
//! Everything binds to loopback addresses: ClusterIPs come from a 127.x range, NodePorts and
//! the Ingress ports listen on the node's address. The nodes of one machine share its
//! loopback, so for machine-wide addresses (ClusterIPs, the DNS address) the first node's
//! proxy to bind serves everyone and the others stand by to take over (see
//! [`service::listener`]).
//!
//! Status (`status.loadBalancer.ingress` of LoadBalancer Services and Ingresses) and the
//! IngressClass are written by exactly one proxy, the one started with
//! [`ProxyConfig::write_status`]: `wasmkube server`'s node, so there is never a tug of war
//! between nodes. The address it reports is its own node's.
//!
//! # Layout
//! - [`apiserver_lb`]: an agent's local load balancer over several API servers (fail-over).
//! - [`cache`]: reflector caches of the watched objects and one change signal.
//! - [`endpoints`]: Service port → ready endpoint addresses, from EndpointSlices.
//! - [`balancer`]: round-robin and ClientIP session affinity (pure).
//! - [`service`]: the L4 proxy; [`service::listener`] is one listening address's state
//!   machine and the forwarding of its connections.
//! - [`status`]: LoadBalancer and Ingress status, the default IngressClass.
//! - [`dns`]: the cluster DNS server; [`dns::records`] answers a question from the caches
//!   (pure).
//! - [`ingress`]: the Ingress controller; [`ingress::routes`] is host and path routing
//!   (pure), [`ingress::tls`] picks certificates by SNI.

pub mod apiserver_lb;
pub mod balancer;
pub mod cache;
pub mod dns;
pub mod endpoints;
pub mod ingress;
pub mod service;
pub mod status;

use std::net::{IpAddr, SocketAddr};

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Settings of one node's proxy.
#[derive(Clone, Debug)]
pub struct ProxyConfig {
    /// The node's address: NodePorts, LoadBalancer ports and the Ingress listen here.
    pub node_ip: IpAddr,
    /// The cluster DNS server's address (UDP and TCP); `None` runs no DNS server.
    pub cluster_dns: Option<SocketAddr>,
    /// The cluster domain (`cluster.local`).
    pub cluster_domain: String,
    /// The Ingress HTTP port on the node address; `None` serves no HTTP Ingress.
    pub ingress_http_port: Option<u16>,
    /// The Ingress HTTPS port on the node address; `None` serves no HTTPS Ingress.
    pub ingress_https_port: Option<u16>,
    /// Whether this proxy writes Service and Ingress status and creates the IngressClass.
    pub write_status: bool,
}

/// A running proxy: its tasks end when the `shutdown` it was started with fires.
pub struct Proxy {
    tasks: JoinSet<()>,
}

impl Proxy {
    /// Starts the watches and every part of the proxy the config enables. Listeners bind in
    /// the background (and stand by while their address is held elsewhere), so start-up never
    /// waits on a port.
    pub fn start(client: kube::Client, config: ProxyConfig, shutdown: CancellationToken) -> Proxy {
        let cache = cache::Cache::start(&client, &shutdown);
        let mut tasks = JoinSet::new();
        tasks.spawn(service::run(
            cache.clone(),
            config.node_ip,
            shutdown.clone(),
        ));
        if let Some(addr) = config.cluster_dns {
            tasks.spawn(dns::run(
                cache.clone(),
                addr,
                config.cluster_domain.clone(),
                shutdown.clone(),
            ));
        }
        if config.ingress_http_port.is_some() || config.ingress_https_port.is_some() {
            tasks.spawn(ingress::run(
                cache.clone(),
                ingress::IngressConfig {
                    node_ip: config.node_ip,
                    http_port: config.ingress_http_port,
                    https_port: config.ingress_https_port,
                },
                shutdown.clone(),
            ));
        }
        if config.write_status {
            tasks.spawn(status::run(client, cache, config.node_ip, shutdown));
        }
        Proxy { tasks }
    }

    /// Waits for every task to end (after shutdown).
    pub async fn wait(mut self) {
        while self.tasks.join_next().await.is_some() {}
    }
}
