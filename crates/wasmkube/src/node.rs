//! The node part shared by `wasmkube server` (its local node) and `wasmkube agent`: flags,
//! the Wasm runtime, and the kubelet.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, bail};
use tokio_util::sync::CancellationToken;
use wasmkube_kubelet::kubelet::{Kubelet, KubeletConfig};
use wasmkube_kubelet::runtime::Runtime;
use wasmkube_runtime_oci::{OciRuntime, OciRuntimeConfig};
use wasmkube_runtime_wasm::{WasmRuntime, WasmRuntimeConfig};

#[derive(clap::Args, Debug, Clone)]
pub struct NodeArgs {
    /// Name of this node (default: the host name).
    #[arg(long, env = "WASMKUBE_NODE_NAME")]
    pub node_name: Option<String>,
    /// This node's address (InternalIP): its kubelet port and NodePorts listen here.
    #[arg(long, default_value = "127.0.0.1")]
    pub node_ip: IpAddr,
    /// Port the node serves pod logs on for the API server (0: any free port).
    #[arg(long, default_value_t = 10250)]
    pub kubelet_port: u16,
    /// Most pods this node accepts.
    #[arg(long, default_value_t = 2000)]
    pub max_pods: u32,
    /// Labels of this node, as key=value (repeatable).
    #[arg(long = "node-label")]
    pub node_labels: Vec<String>,
    /// Registries (host[:port]) pulled from over plain HTTP. Loopback registries always are.
    #[arg(long = "insecure-registry")]
    pub insecure_registries: Vec<String>,
    #[command(flatten)]
    pub proxy: crate::proxy::ProxyArgs,
    /// containerd's socket. Linux container images run through it (the `runc` handler);
    /// when it is absent or does not answer, the node offers Wasm only.
    #[arg(long, default_value = "/run/containerd/containerd.sock")]
    pub containerd_socket: std::path::PathBuf,
}

impl NodeArgs {
    /// Checks the flags before anything binds.
    pub fn check(&self) -> anyhow::Result<()> {
        if let Some(name) = &self.node_name {
            let errs = wasmkube_api::validation::is_dns1123_subdomain(name);
            if !errs.is_empty() {
                bail!(
                    "--node-name {name:?} is not a valid node name: {}",
                    errs.join("; ")
                );
            }
        }
        for l in &self.node_labels {
            if !l.contains('=') {
                bail!("--node-label {l:?} must be key=value");
            }
        }
        if self.max_pods == 0 {
            bail!("--max-pods must be at least 1");
        }
        self.proxy.check()?;
        Ok(())
    }

    pub fn name(&self) -> String {
        self.node_name.clone().unwrap_or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_lowercase())
                .ok()
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| "wasmkube-node".into())
        })
    }
}

/// Starts the node: the Wasm runtime and the kubelet with its server. `kubelet_token` is what
/// the API server presents to the kubelet port.
pub async fn start(
    args: &NodeArgs,
    data_dir: &Path,
    client: kube::Client,
    kubelet_token: Option<String>,
    shutdown: CancellationToken,
) -> anyhow::Result<Kubelet> {
    let mut wasm_config = WasmRuntimeConfig::for_node(data_dir);
    wasm_config
        .insecure_registries
        .extend(args.insecure_registries.iter().cloned());
    // Guests' outgoing HTTP resolves Service names through the cluster DNS.
    wasm_config.cluster_dns = Some(args.proxy.dns_addr(crate::proxy::DEFAULT_CLUSTER_DNS));
    wasm_config.cluster_domain = args.proxy.cluster_domain.trim_end_matches('.').to_string();
    let wasm = WasmRuntime::new(wasm_config).context("starting the Wasm runtime")?;
    let mut runtimes: Vec<Arc<dyn Runtime>> = vec![Arc::new(wasm)];
    // The last runtime is the default for images no runtime recognizes: containerd's.
    let mut oci_config =
        OciRuntimeConfig::new(args.containerd_socket.clone(), data_dir, &args.name());
    oci_config
        .insecure_registries
        .extend(args.insecure_registries.iter().cloned());
    match OciRuntime::connect(oci_config).await {
        Ok(oci) => {
            tracing::info!(
                socket = %args.containerd_socket.display(),
                snapshotter = oci.snapshotter(),
                "containerd found: the node offers the runc handler"
            );
            runtimes.push(Arc::new(oci));
        }
        Err(e) => tracing::warn!(
            socket = %args.containerd_socket.display(),
            "containerd is not available ({:#}): the node does not offer the runc handler; Wasm pods run as usual",
            anyhow::Error::new(e)
        ),
    }
    let mut config = KubeletConfig::new(args.name(), args.node_ip, data_dir.to_path_buf());
    config.kubelet_port = args.kubelet_port;
    config.kubelet_token = kubelet_token;
    config.max_pods = args.max_pods;
    config.labels = args
        .node_labels
        .iter()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect::<BTreeMap<_, _>>();
    Kubelet::start(config, client, runtimes, shutdown)
        .await
        .context("starting the node agent")
}
