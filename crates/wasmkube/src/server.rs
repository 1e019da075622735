//! `wasmkube server`: the whole cluster in one process.
//!
//! Flags are checked before anything binds or touches the data directory, so a bad flag never
//! leaves a half-started server behind.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio_util::sync::CancellationToken;
use wasmkube_apiserver::{ApiState, Authenticator, UserInfo, admission::Admission};
use wasmkube_store::{EtcdOptions, EtcdStore, RedbStore, Store};

#[derive(clap::Args, Debug)]
pub struct ServerArgs {
    /// Directory for the store, certificates, tokens and kubeconfig.
    #[arg(
        long,
        short = 'd',
        env = "WASMKUBE_DATA_DIR",
        default_value = "/var/lib/wasmkube"
    )]
    pub data_dir: PathBuf,
    /// Port of the API server.
    #[arg(long, default_value_t = 6443)]
    pub https_listen_port: u16,
    /// Address the API server binds to.
    #[arg(long, default_value = "127.0.0.1")]
    pub bind_address: IpAddr,
    /// Also write the admin kubeconfig to this path.
    #[arg(long)]
    pub write_kubeconfig: Option<PathBuf>,
    /// Admin (and node join) token; generated and stored in the data directory if not given.
    #[arg(long, env = "WASMKUBE_TOKEN")]
    pub token: Option<String>,
    /// Serve plain HTTP with no authentication. Development only; loopback addresses only.
    #[arg(long)]
    pub insecure: bool,
    /// Extra names or addresses for the serving certificate.
    #[arg(long = "tls-san")]
    pub tls_san: Vec<String>,
    /// Log filter (tracing EnvFilter syntax).
    #[arg(long, env = "WASMKUBE_LOG", default_value = "info")]
    pub log: String,
    /// Seconds of watch history kept for clients resuming a watch.
    #[arg(long, default_value_t = 300)]
    pub watch_history_seconds: u64,
    /// The pods' address range: each node gets a 127.N.0.0/16 of it. Clusters sharing a
    /// machine need disjoint ranges.
    #[arg(long, default_value = "127.64.0.0/10")]
    pub cluster_cidr: wasmkube_controllers::nodeipam::ClusterCidr,
    /// Seconds a node may go unheard before it is marked unreachable and tainted.
    #[arg(long, default_value_t = 40)]
    pub node_monitor_grace_period: u64,
    /// Seconds pods tolerate a not-ready or unreachable node (then they are evicted and their
    /// controllers replace them elsewhere), unless they say otherwise.
    #[arg(long, default_value_t = 300)]
    pub default_not_ready_toleration_seconds: u64,
    /// Seconds between horizontal pod autoscaler evaluations.
    #[arg(long, default_value_t = 15)]
    pub horizontal_pod_autoscaler_sync_period: u64,
    /// Services' cluster IPs come from this range (loopback only; the first address is the
    /// `kubernetes` Service's). Clusters sharing a machine need disjoint ranges.
    #[arg(long, default_value = wasmkube_apiserver::services::DEFAULT_SERVICE_CIDR)]
    pub service_cluster_ip_range: wasmkube_apiserver::services::ServiceCidr,
    /// Node ports of NodePort and LoadBalancer Services come from this range.
    #[arg(long, default_value = "30000-32767", value_parser = wasmkube_apiserver::services::parse_port_range)]
    pub service_node_port_range: std::ops::RangeInclusive<u16>,
    /// Run no local node: only the control plane (pods then need `wasmkube agent` nodes).
    #[arg(long)]
    pub disable_agent: bool,
    /// Keep the cluster's state in etcd instead of the data directory's redb file: the
    /// members' client URLs, comma-separated (`https://H1:2379,https://H2:2379`; `http://`
    /// for etcd without TLS). Servers given the same endpoints serve one cluster.
    #[arg(long, value_delimiter = ',', env = "WASMKUBE_DATASTORE_ENDPOINT")]
    pub datastore_endpoint: Vec<String>,
    /// CA certificate (PEM) that signed the etcd members' serving certificates.
    #[arg(long)]
    pub datastore_cafile: Option<PathBuf>,
    /// Client certificate (PEM) presented to etcd.
    #[arg(long)]
    pub datastore_certfile: Option<PathBuf>,
    /// Private key (PEM) of --datastore-certfile.
    #[arg(long)]
    pub datastore_keyfile: Option<PathBuf>,
    /// Run the scheduler and the controllers only while this server holds their Leases
    /// (`kube-scheduler`, `kube-controller-manager` in kube-system), as Kubernetes'
    /// components do. On by default when the state is in etcd (several servers may share it).
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    pub leader_elect: Option<bool>,
    /// How long other servers wait before taking over a Lease whose holder stopped renewing.
    #[arg(long, default_value = "15s", value_parser = parse_duration_flag)]
    pub leader_elect_lease_duration: Duration,
    /// How long the leader retries a failing renewal before it stops leading.
    #[arg(long, default_value = "10s", value_parser = parse_duration_flag)]
    pub leader_elect_renew_deadline: Duration,
    /// The pause between attempts to acquire or renew a Lease.
    #[arg(long, default_value = "2s", value_parser = parse_duration_flag)]
    pub leader_elect_retry_period: Duration,
    #[command(flatten)]
    pub node: crate::node::NodeArgs,
}

impl ServerArgs {
    fn check(&self) -> anyhow::Result<()> {
        self.node.check()?;
        if self.insecure && !self.bind_address.is_loopback() {
            bail!(
                "--insecure serves the API without authentication and is only allowed on a loopback address, not {}",
                self.bind_address
            );
        }
        if let Some(t) = &self.token
            && (t.len() < 16 || t.chars().any(|c| c.is_whitespace() || c.is_control()))
        {
            bail!("--token must be at least 16 characters with no whitespace");
        }
        self.check_datastore()?;
        self.election("check", "check")?;
        let services = self.service_cluster_ip_range.second_octets();
        let pods = self.cluster_cidr.first..=self.cluster_cidr.last;
        if services.start() <= pods.end() && pods.start() <= services.end() {
            bail!(
                "--service-cluster-ip-range {} overlaps --cluster-cidr (127.{}-{}.x.x)",
                self.service_cluster_ip_range,
                pods.start(),
                pods.end()
            );
        }
        Ok(())
    }
}

fn parse_duration_flag(raw: &str) -> Result<Duration, String> {
    crate::cli::parse_duration(raw).map_err(|e| e.to_string())
}

impl ServerArgs {
    fn leader_elect(&self) -> bool {
        self.leader_elect
            .unwrap_or(!self.datastore_endpoint.is_empty())
    }

    /// The election settings for `lease`, checked as client-go checks them.
    fn election(
        &self,
        lease: &str,
        identity: &str,
    ) -> anyhow::Result<wasmkube_controllers::leader_election::LeaderElectionConfig> {
        let mut config =
            wasmkube_controllers::leader_election::LeaderElectionConfig::new(lease, identity);
        config.lease_duration = self.leader_elect_lease_duration;
        config.renew_deadline = self.leader_elect_renew_deadline;
        config.retry_period = self.leader_elect_retry_period;
        config
            .validate()
            .context("--leader-elect-lease-duration, --leader-elect-renew-deadline, --leader-elect-retry-period")?;
        Ok(config)
    }

    fn check_datastore(&self) -> anyhow::Result<()> {
        let mut https = false;
        for endpoint in &self.datastore_endpoint {
            let rest = if let Some(rest) = endpoint.strip_prefix("https://") {
                https = true;
                rest
            } else if let Some(rest) = endpoint.strip_prefix("http://") {
                rest
            } else {
                bail!(
                    "--datastore-endpoint {endpoint:?}: etcd endpoints are http:// or https:// URLs"
                );
            };
            if rest.is_empty() || rest.starts_with('/') {
                bail!("--datastore-endpoint {endpoint:?}: the URL names no host");
            }
        }
        let files = [
            ("--datastore-cafile", &self.datastore_cafile),
            ("--datastore-certfile", &self.datastore_certfile),
            ("--datastore-keyfile", &self.datastore_keyfile),
        ];
        for (flag, file) in files {
            if let Some(path) = file {
                if self.datastore_endpoint.is_empty() {
                    bail!("{flag} needs --datastore-endpoint");
                }
                if !https {
                    bail!("{flag} is for https:// etcd endpoints");
                }
                if !path.is_file() {
                    bail!("{flag} {}: no such file", path.display());
                }
            }
        }
        if self.datastore_certfile.is_some() != self.datastore_keyfile.is_some() {
            bail!("--datastore-certfile and --datastore-keyfile go together");
        }
        Ok(())
    }

    /// The store the cluster's state lives in: etcd when endpoints are given, else redb.
    async fn open_store(&self) -> anyhow::Result<Arc<dyn Store>> {
        if self.datastore_endpoint.is_empty() {
            let path = self.data_dir.join("state.redb");
            let store = RedbStore::open(&path)
                .with_context(|| format!("opening the store in {}", self.data_dir.display()))?;
            return Ok(Arc::new(store));
        }
        let options = EtcdOptions::new(self.datastore_endpoint.iter().cloned()).with_tls(
            self.datastore_cafile.clone(),
            self.datastore_certfile.clone(),
            self.datastore_keyfile.clone(),
        );
        let store = EtcdStore::connect(&options).await.with_context(|| {
            format!(
                "connecting to the datastore at {}",
                self.datastore_endpoint.join(",")
            )
        })?;
        Ok(Arc::new(store))
    }
}

pub async fn run(args: ServerArgs) -> anyhow::Result<ExitCode> {
    args.check()?;
    init_logging(&args.log);
    let started = std::time::Instant::now();
    let dir = &args.data_dir;
    std::fs::create_dir_all(dir)
        .with_context(|| format!("creating data directory {}", dir.display()))?;
    restrict(dir);

    // Bind first: a port in use should fail fast, before any expensive work.
    let addr = SocketAddr::new(args.bind_address, args.https_listen_port);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding the API server to {addr}"))?;
    let local = listener.local_addr()?;

    let store = args.open_store().await?;
    let shutdown = CancellationToken::new();
    // One secret authenticates the admin, joining agents, and the API server to kubelets.
    let token = if args.insecure {
        None
    } else {
        Some(admin_token(dir, args.token.as_deref())?)
    };
    // Over etcd, every server of the cluster must hold the same CA, signing key and admin
    // token: the first one publishes its files into the datastore, the others take them.
    if let Some(token) = &token
        && !args.datastore_endpoint.is_empty()
    {
        let tls_dir = dir.join("tls");
        let outcome = wasmkube_apiserver::bootstrap_data::sync(&store, dir, token, || {
            wasmkube_apiserver::tls::load_or_create_ca(&tls_dir)?;
            wasmkube_apiserver::tokens::TokenIssuer::load_or_create(
                &tls_dir.join("service-account.key"),
            )?;
            Ok(())
        })
        .await
        .context("sharing the cluster's bootstrap data through the datastore")?;
        tracing::info!(?outcome, "cluster bootstrap data");
    }
    // ServiceAccount tokens are signed with a key of this server's (kept beside the CA).
    let token_issuer = match args.insecure {
        true => None,
        false => Some(Arc::new(
            wasmkube_apiserver::tokens::TokenIssuer::load_or_create(
                &dir.join("tls").join("service-account.key"),
            )
            .context("loading the ServiceAccount token key")?,
        )),
    };
    let node_proxy = wasmkube_apiserver::node_proxy::NodeProxy::with_shutdown(
        store.clone(),
        token.clone(),
        shutdown.clone(),
    );
    let state = Arc::new(ApiState {
        store: store.clone(),
        admission: Admission {
            default_toleration_seconds: args.default_not_ready_toleration_seconds as i64,
            services: wasmkube_apiserver::services::ServiceAllocator::new(
                args.service_cluster_ip_range,
                args.service_node_port_range.clone(),
            ),
            ..Admission::default()
        },
        subresource_handler: Some(Arc::new(node_proxy)),
        shutdown: shutdown.clone(),
        bookmark_interval: Duration::from_secs(30),
        token_issuer: token_issuer.clone(),
    });
    wasmkube_apiserver::bootstrap::ensure_defaults(&state)
        .await
        .context("creating the default namespaces")?;
    wasmkube_apiserver::bootstrap::ensure_kubernetes_service(&state, local)
        .await
        .context("creating the kubernetes Service")?;
    tokio::spawn(wasmkube_apiserver::bootstrap::keep_defaults(
        state.clone(),
        local,
        Duration::from_secs(30),
        shutdown.clone(),
    ));

    let scheme = if args.insecure { "http" } else { "https" };
    let host = if local.ip().is_unspecified() {
        "127.0.0.1".to_string()
    } else {
        local.ip().to_string()
    };
    let server_url = format!(
        "{scheme}://{}",
        SocketAddr::new(host.parse()?, local.port())
    );
    let (tls, auth, kubeconfig, ca_pem) = if args.insecure {
        eprintln!(
            "WARNING: --insecure: serving the Kubernetes API over plain HTTP on {local} WITHOUT AUTHENTICATION."
        );
        eprintln!(
            "WARNING: anyone who can reach this address has full control of the cluster. Development use only."
        );
        (None, None, kubeconfig_yaml(&server_url, None, None), None)
    } else {
        let mut names = vec![
            "localhost".to_string(),
            "127.0.0.1".to_string(),
            "kubernetes".to_string(),
            "kubernetes.default".to_string(),
            "kubernetes.default.svc".to_string(),
            "kubernetes.default.svc.cluster.local".to_string(),
        ];
        if !names.contains(&host) {
            names.push(host.clone());
        }
        names.extend(args.tls_san.iter().cloned());
        let tls = wasmkube_apiserver::tls::load_or_create(&dir.join("tls"), &names)
            .context("setting up TLS")?;
        let token = token.clone().unwrap_or_default();
        let issuer = token_issuer
            .clone()
            .context("the ServiceAccount token key is made whenever authentication is on")?;
        let auth = Arc::new(Authenticator::with_rbac(store.clone(), issuer));
        auth.add_token(
            &token,
            UserInfo {
                username: "system:admin".into(),
                groups: vec!["system:masters".into(), "system:authenticated".into()],
            },
        );
        let kc = kubeconfig_yaml(&server_url, Some(&tls.ca_pem), Some(&token));
        write_private(
            &dir.join("node-token"),
            &crate::agent::join_token(&tls.ca_pem, &token),
        )?;
        (Some(tls.server_config), Some(auth), kc, Some(tls.ca_pem))
    };
    write_kubeconfig(&dir.join("kubeconfig.yaml"), &kubeconfig)?;
    if let Some(path) = &args.write_kubeconfig {
        write_kubeconfig(path, &kubeconfig)?;
    }

    let compactor = tokio::spawn(compact_loop(
        store.clone(),
        Duration::from_secs(args.watch_history_seconds.max(10)),
        shutdown.clone(),
    ));
    // The cluster's own components reach the API in-process, through the same router (without
    // the network or TLS, and with the authority of the server itself).
    let internal = kube::Client::new(
        wasmkube_apiserver::router(state.clone(), None, None),
        "default",
    );
    let mut controllers_config = wasmkube_controllers::ControllersConfig::default();
    controllers_config.node_lifecycle.node_monitor_grace_period =
        Duration::from_secs(args.node_monitor_grace_period.max(1));
    controllers_config.node_lifecycle.node_monitor_period = controllers_config
        .node_lifecycle
        .node_monitor_period
        .min(Duration::from_secs(
            (args.node_monitor_grace_period / 2).max(1),
        ));
    controllers_config.node_lifecycle.default_toleration_seconds =
        Duration::from_secs(args.default_not_ready_toleration_seconds);
    controllers_config.cluster_cidr = args.cluster_cidr;
    controllers_config.hpa.sync_period =
        Duration::from_secs(args.horizontal_pod_autoscaler_sync_period.max(1));
    let (controllers, scheduler) = if args.leader_elect() {
        // Several servers over one datastore: only the holder of each Lease runs its part.
        let identity = wasmkube_controllers::leader_election::default_identity();
        eprintln!("wasmkube server: leader election identity {identity}");
        let controllers = {
            let client = internal.clone();
            tokio::spawn(elected(
                internal.clone(),
                args.election("kube-controller-manager", &identity)?,
                shutdown.clone(),
                move |token| {
                    wasmkube_controllers::run_all_with(
                        client.clone(),
                        controllers_config.clone(),
                        token,
                    )
                },
            ))
        };
        let scheduler = {
            let client = internal.clone();
            tokio::spawn(elected(
                internal.clone(),
                args.election("kube-scheduler", &identity)?,
                shutdown.clone(),
                move |token| {
                    wasmkube_scheduler::run(
                        client.clone(),
                        wasmkube_scheduler::SchedulerConfig::default(),
                        token,
                    )
                },
            ))
        };
        (controllers, scheduler)
    } else {
        let controllers = tokio::spawn(wasmkube_controllers::run_all_with(
            internal.clone(),
            controllers_config,
            shutdown.clone(),
        ));
        let scheduler = tokio::spawn(wasmkube_scheduler::run(
            internal.clone(),
            wasmkube_scheduler::SchedulerConfig::default(),
            shutdown.clone(),
        ));
        (controllers, scheduler)
    };
    // The CA is public: joining agents fetch it and check it against their join token.
    let cacerts = ca_pem.map(|pem| {
        axum::Router::new().route(
            "/cacerts",
            axum::routing::get(move || {
                let pem = pem.clone();
                async move { ([("content-type", "application/x-pem-file")], pem) }
            }),
        )
    });
    // The web console at /ui/ (its files are public; its data calls carry the user's token).
    let snapshots = crate::snapshot::route(
        store.clone(),
        dir.clone(),
        token.clone(),
        !args.datastore_endpoint.is_empty(),
    );
    let extra = Some(
        wasmkube_apiserver::console::routes()
            .merge(cacerts.unwrap_or_default())
            .merge(snapshots),
    );
    let router = wasmkube_apiserver::router(state.clone(), auth, extra);
    let server = tokio::spawn(wasmkube_apiserver::serve(
        listener,
        router,
        tls,
        shutdown.clone(),
    ));
    let kubelet = if args.disable_agent {
        None
    } else {
        Some(
            crate::node::start(
                &args.node,
                dir,
                internal.clone(),
                token.clone(),
                shutdown.clone(),
            )
            .await?,
        )
    };
    // The server's proxy runs even without a local node: it serves this host's ClusterIPs
    // and DNS, and it is the one that writes LoadBalancer and Ingress status.
    let proxy = crate::proxy::start(
        &args.node.proxy,
        args.node.node_ip,
        args.node.proxy.dns_addr(crate::proxy::DEFAULT_CLUSTER_DNS),
        internal.clone(),
        true,
        shutdown.clone(),
    );
    eprintln!(
        "wasmkube server ready at {server_url} in {} ms; kubeconfig: {}",
        started.elapsed().as_millis(),
        dir.join("kubeconfig.yaml").display()
    );

    wait_for_signal().await;
    eprintln!("wasmkube server shutting down");
    shutdown.cancel();
    if let Some(k) = kubelet {
        let _ = tokio::time::timeout(Duration::from_secs(15), k.wait()).await;
    }
    let _ = tokio::time::timeout(Duration::from_secs(10), server).await;
    let _ = tokio::time::timeout(Duration::from_secs(5), proxy.wait()).await;
    let _ = compactor.await;
    let _ = tokio::time::timeout(Duration::from_secs(5), controllers).await;
    let _ = tokio::time::timeout(Duration::from_secs(5), scheduler).await;
    Ok(ExitCode::SUCCESS)
}

/// Runs `component` while this server holds `config`'s Lease, logging what ends it.
async fn elected<F, Fut, T>(
    client: kube::Client,
    config: wasmkube_controllers::leader_election::LeaderElectionConfig,
    shutdown: CancellationToken,
    mut component: F,
) where
    F: FnMut(CancellationToken) -> Fut,
    Fut: std::future::Future<Output = T> + Send,
{
    let lease = config.lease_name.clone();
    let result = wasmkube_controllers::leader_election::run_leading(
        client,
        config,
        shutdown,
        move |token| {
            let run = component(token);
            async move {
                let _ = run.await;
            }
        },
    )
    .await;
    if let Err(error) = result {
        let error = wasmkube_controllers::error_chain(&error);
        tracing::warn!(%lease, %error, "leader election ended");
    }
}

pub(crate) fn init_logging(filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

#[cfg(unix)]
fn restrict(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
}

#[cfg(not(unix))]
fn restrict(_dir: &Path) {}

/// The admin token: the one given on the command line (stored for the next start), or the one
/// stored, or a new random one.
fn admin_token(dir: &Path, given: Option<&str>) -> anyhow::Result<String> {
    let path = dir.join("token");
    if let Some(t) = given {
        write_private(&path, t)?;
        return Ok(t.to_string());
    }
    match std::fs::read_to_string(&path) {
        Ok(t) if !t.trim().is_empty() => Ok(t.trim().to_string()),
        _ => {
            let t = wasmkube_apiserver::auth::generate_token();
            write_private(&path, &t)?;
            Ok(t)
        }
    }
}

fn write_private(path: &Path, contents: &str) -> anyhow::Result<()> {
    if let Some(parent) = path.parent()
        && !parent.as_os_str().is_empty()
    {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, contents).with_context(|| format!("writing {}", tmp.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))?;
    }
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

fn write_kubeconfig(path: &Path, contents: &str) -> anyhow::Result<()> {
    write_private(path, contents)
}

pub(crate) fn kubeconfig_yaml(server: &str, ca_pem: Option<&str>, token: Option<&str>) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut cluster = serde_json::json!({"server": server});
    if let Some(ca) = ca_pem {
        cluster["certificate-authority-data"] = b64.encode(ca).into();
    }
    let mut user = serde_json::json!({});
    if let Some(t) = token {
        user["token"] = t.into();
    }
    let kc = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "wasmkube", "cluster": cluster}],
        "users": [{"name": "wasmkube-admin", "user": user}],
        "contexts": [{"name": "wasmkube", "context": {"cluster": "wasmkube", "user": "wasmkube-admin", "namespace": "default"}}],
        "current-context": "wasmkube",
        "preferences": {},
    });
    serde_yaml_ng::to_string(&kc).unwrap_or_default()
}

/// Compacts the watch history so it covers about `keep` of time: each tick remembers the
/// current revision, and compacts up to the one remembered `keep` ago.
async fn compact_loop(store: Arc<dyn Store>, keep: Duration, shutdown: CancellationToken) {
    let tick = (keep / 5).max(Duration::from_secs(1));
    let mut marks: std::collections::VecDeque<(tokio::time::Instant, u64)> = Default::default();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(tick) => {}
            _ = shutdown.cancelled() => return,
        }
        let now = tokio::time::Instant::now();
        let Ok(current) = store.current_revision().await else {
            continue;
        };
        marks.push_back((now, current));
        let mut target = None;
        while let Some((t, rev)) = marks.front().copied() {
            if now.duration_since(t) >= keep {
                target = Some(rev);
                marks.pop_front();
            } else {
                break;
            }
        }
        if let Some(rev) = target
            && rev > store.compacted_revision().await.unwrap_or(0)
            && let Err(e) = store.compact(rev).await
        {
            tracing::warn!(error = %e, "compacting the watch history failed");
        }
    }
}

pub(crate) async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = match signal(SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                return;
            }
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
