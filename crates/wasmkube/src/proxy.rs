//! The node's service proxy, Ingress and cluster DNS (crates/proxy): its flags, shared by
//! `wasmkube server` and `wasmkube agent`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use anyhow::bail;
use tokio_util::sync::CancellationToken;

/// The cluster DNS address when none is given: the 10th address of the default service
/// range (127.16.0.0/16), as kubeadm picks it.
pub const DEFAULT_CLUSTER_DNS: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 16, 0, 10));

#[derive(clap::Args, Debug, Clone)]
pub struct ProxyArgs {
    /// Address of the cluster DNS server (port 53, UDP and TCP), served by the node proxies
    /// and used by pods to resolve Service names. Default: the 10th address of the service
    /// range.
    #[arg(long)]
    pub cluster_dns: Option<IpAddr>,
    /// The cluster's DNS domain.
    #[arg(long, default_value = "cluster.local")]
    pub cluster_domain: String,
    /// Port of the Ingress' HTTP listener on the node address (0: no HTTP Ingress).
    #[arg(long, default_value_t = 80)]
    pub ingress_http_port: u16,
    /// Port of the Ingress' HTTPS listener on the node address (0: no HTTPS Ingress).
    #[arg(long, default_value_t = 443)]
    pub ingress_https_port: u16,
}

impl ProxyArgs {
    pub fn check(&self) -> anyhow::Result<()> {
        if let Some(ip) = self.cluster_dns
            && !ip.is_loopback()
        {
            bail!("--cluster-dns must be a loopback address (nothing leaves loopback), not {ip}");
        }
        let d = self.cluster_domain.trim_end_matches('.');
        if !wasmkube_api::validation::is_dns1123_subdomain(d).is_empty() {
            bail!(
                "--cluster-domain {:?} is not a valid DNS domain",
                self.cluster_domain
            );
        }
        if self.ingress_http_port != 0 && self.ingress_http_port == self.ingress_https_port {
            bail!("--ingress-http-port and --ingress-https-port must differ");
        }
        Ok(())
    }

    /// The DNS server's address: the flag, or `default` (derived from the service range).
    pub fn dns_addr(&self, default: IpAddr) -> SocketAddr {
        SocketAddr::new(self.cluster_dns.unwrap_or(default), 53)
    }
}

/// Starts this node's proxy. `write_status` is true for the server's own node only.
pub fn start(
    args: &ProxyArgs,
    node_ip: IpAddr,
    dns: SocketAddr,
    client: kube::Client,
    write_status: bool,
    shutdown: CancellationToken,
) -> wasmkube_proxy::Proxy {
    let port = |p: u16| (p != 0).then_some(p);
    let config = wasmkube_proxy::ProxyConfig {
        node_ip,
        cluster_dns: Some(dns),
        cluster_domain: args.cluster_domain.trim_end_matches('.').to_string(),
        ingress_http_port: port(args.ingress_http_port),
        ingress_https_port: port(args.ingress_https_port),
        write_status,
    };
    wasmkube_proxy::Proxy::start(client, config, shutdown)
}
