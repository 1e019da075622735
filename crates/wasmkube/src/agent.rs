//! `wasmkube agent`: one more node, joined to a server by its URL and token.
//!
//! The agent trusts the server the way k3s agents do: the join token the server writes to
//! `<data-dir>/node-token` (`wk1::<sha256 of the cluster CA>::<secret>`) names the CA by its
//! hash, so the agent can fetch the CA from the public `/cacerts` endpoint and know it is the
//! right one before sending the secret anywhere.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use sha2::Digest;
use tokio_util::sync::CancellationToken;

use crate::node::NodeArgs;
use crate::server::{init_logging, kubeconfig_yaml, wait_for_signal};

/// The join token's prefix.
pub const JOIN_TOKEN_PREFIX: &str = "wk1::";

#[derive(clap::Args, Debug)]
pub struct AgentArgs {
    /// URL of the server's API (https://HOST:PORT). Repeat it (or give a comma list) for a
    /// cluster of several servers: the agent then reaches them through a local load balancer
    /// and moves to a live one by itself when one goes away.
    #[arg(long, env = "WASMKUBE_URL", value_delimiter = ',', required = true)]
    pub server: Vec<String>,
    /// Join token: the contents of the server's <data-dir>/node-token (or its admin token
    /// together with --ca-file).
    #[arg(long, env = "WASMKUBE_TOKEN")]
    pub token: Option<String>,
    /// The cluster CA certificate (PEM), when the token does not name it.
    #[arg(long)]
    pub ca_file: Option<PathBuf>,
    /// Directory for this node's pods, images and certificates.
    #[arg(
        long,
        short = 'd',
        env = "WASMKUBE_DATA_DIR",
        default_value = "/var/lib/wasmkube-agent"
    )]
    pub data_dir: PathBuf,
    #[command(flatten)]
    pub node: NodeArgs,
    /// Log filter (tracing EnvFilter syntax).
    #[arg(long, env = "WASMKUBE_LOG", default_value = "info")]
    pub log: String,
}

/// A token split into the CA hash it names (if any) and the secret.
pub fn parse_token(token: &str) -> (Option<&str>, &str) {
    match token.strip_prefix(JOIN_TOKEN_PREFIX) {
        Some(rest) => match rest.split_once("::") {
            Some((hash, secret)) => (Some(hash), secret),
            None => (None, rest),
        },
        None => (None, token),
    }
}

/// The join token for a cluster with this CA and admin secret.
pub fn join_token(ca_pem: &str, secret: &str) -> String {
    format!("{JOIN_TOKEN_PREFIX}{}::{secret}", ca_hash(ca_pem))
}

fn ca_hash(ca_pem: &str) -> String {
    hex::encode(sha2::Sha256::digest(ca_pem.as_bytes()))
}

/// Fetches the server's CA from `/cacerts` and checks it against `hash`.
async fn fetch_ca(server: &str, hash: &str) -> anyhow::Result<String> {
    // Unverified on purpose: what comes back is checked against the hash below, and nothing
    // secret is sent on this connection.
    let client = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()?;
    let url = format!("{}/cacerts", server.trim_end_matches('/'));
    let pem = client
        .get(&url)
        .send()
        .await
        .with_context(|| format!("fetching the cluster CA from {url}"))?
        .error_for_status()
        .with_context(|| format!("fetching the cluster CA from {url}"))?
        .text()
        .await?;
    if ca_hash(&pem) != hash {
        bail!(
            "the CA served by {server} does not match the join token: refusing to join (is the URL right?)"
        );
    }
    Ok(pem)
}

/// The `HOST:PORT` of each `--server` URL, and whether they are https (all must agree).
fn server_addresses(servers: &[String]) -> anyhow::Result<(Vec<String>, bool)> {
    let mut addresses = Vec::new();
    let mut schemes = std::collections::BTreeSet::new();
    for server in servers {
        let url: http::Uri = server
            .parse()
            .with_context(|| format!("--server {server:?} is not a URL"))?;
        let https = match url.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => bail!("--server {server:?} must be an http:// or https:// URL"),
        };
        let Some(authority) = url.authority() else {
            bail!("--server {server:?} names no host");
        };
        let port = authority.port_u16().unwrap_or(if https { 443 } else { 80 });
        addresses.push(format!("{}:{port}", authority.host()));
        schemes.insert(https);
    }
    if schemes.len() > 1 {
        bail!("--server URLs must all be https:// or all http://");
    }
    Ok((addresses, schemes.contains(&true)))
}

pub async fn run(args: AgentArgs) -> anyhow::Result<ExitCode> {
    args.node.check()?;
    let (addresses, https) = server_addresses(&args.server)?;
    init_logging(&args.log);
    let shutdown = CancellationToken::new();
    // One server: dial it. Several: dial the local balancer, which finds a live one.
    let server = if args.server.len() == 1 {
        args.server[0].clone()
    } else {
        let lb = wasmkube_proxy::apiserver_lb::ApiServerLb::start(
            std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
            addresses,
            shutdown.clone(),
        )
        .await?;
        let scheme = if https { "https" } else { "http" };
        format!("{scheme}://{}", lb.local_addr())
    };
    let started = std::time::Instant::now();
    let (hash, secret) = match args.token.as_deref() {
        Some(t) => {
            let (h, s) = parse_token(t);
            (h, Some(s.to_string()))
        }
        None => (None, None),
    };
    let ca = if !https {
        None
    } else if let Some(path) = &args.ca_file {
        Some(
            std::fs::read_to_string(path)
                .with_context(|| format!("reading --ca-file {}", path.display()))?,
        )
    } else if let Some(hash) = hash {
        Some(fetch_ca(&server, hash).await?)
    } else {
        bail!(
            "cannot verify the server's certificate: pass the join token from the server's <data-dir>/node-token, or --ca-file"
        );
    };
    if https && secret.is_none() {
        bail!("--token is required to join a server over https");
    }
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("creating {}", args.data_dir.display()))?;
    let yaml = kubeconfig_yaml(&server, ca.as_deref(), secret.as_deref());
    let kubeconfig = kube::config::Kubeconfig::from_yaml(&yaml)?;
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .context("building the API client")?;
    let client = kube::Client::try_from(config)?;
    client
        .apiserver_version()
        .await
        .with_context(|| format!("reaching the API server at {}", args.server.join(",")))?;

    let kubelet = crate::node::start(
        &args.node,
        &args.data_dir,
        client.clone(),
        secret.clone(),
        shutdown.clone(),
    )
    .await?;
    let proxy = crate::proxy::start(
        &args.node.proxy,
        args.node.node_ip,
        args.node.proxy.dns_addr(crate::proxy::DEFAULT_CLUSTER_DNS),
        client,
        false,
        shutdown.clone(),
    );
    eprintln!(
        "wasmkube agent: node {} joined {} in {} ms (kubelet on {})",
        args.node.name(),
        args.server.join(","),
        started.elapsed().as_millis(),
        kubelet.server_addr
    );
    wait_for_signal().await;
    eprintln!("wasmkube agent shutting down");
    shutdown.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(15), kubelet.wait()).await;
    let _ = tokio::time::timeout(Duration::from_secs(5), proxy.wait()).await;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_tokens_round_trip() {
        let t = join_token("PEM", "secret-secret-secret");
        let (hash, secret) = parse_token(&t);
        assert_eq!(hash, Some(ca_hash("PEM").as_str()));
        assert_eq!(secret, "secret-secret-secret");
        assert_eq!(parse_token("plain"), (None, "plain"));
    }
}
