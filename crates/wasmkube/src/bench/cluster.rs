//! The real `wasmkube server` (and optionally a separate `wasmkube agent` as the node) run as
//! child processes of the benchmark, on loopback, with a private data directory, so what is
//! measured is the shipped binary and its memory is its own (not the load generator's).
//!
//! Children are killed when the [`Cluster`] is dropped, even when a benchmark fails half-way.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, PostParams, WatchEvent, WatchParams};
use tokio::sync::Notify;

/// The node every benchmark pod is bound to (`spec.nodeName`, so no scheduler is involved).
pub(crate) const NODE_NAME: &str = "bench-node";

/// Where the node runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NodePlacement {
    /// The server's own local node (`wasmkube server`, the single-binary default).
    InServer,
    /// A separate `wasmkube agent` process, so the node's memory is measured apart from the
    /// API server and its store.
    Agent,
    /// No node process at all (`--disable-agent`): the benchmark registers simulated nodes
    /// itself.
    None,
}

pub(crate) struct ClusterOptions<'a> {
    pub placement: NodePlacement,
    pub max_pods: u32,
    /// `(module file, image name)` imported into the node's image store before it starts.
    pub images: &'a [(PathBuf, &'a str)],
    /// containerd's socket for the node (Linux containers); None: the node has none.
    pub containerd_socket: Option<PathBuf>,
    /// More `wasmkube server` flags (e.g. `--datastore-endpoint` to run it over etcd).
    pub server_args: Vec<String>,
}

/// A child process killed on drop.
pub(crate) struct Proc {
    child: Child,
    what: &'static str,
    log: PathBuf,
}

impl Proc {
    pub(crate) fn spawn(
        mut cmd: Command,
        what: &'static str,
        log: PathBuf,
    ) -> anyhow::Result<Proc> {
        let out =
            std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let err = out.try_clone()?;
        cmd.stdin(Stdio::null()).stdout(out).stderr(err);
        let child = cmd
            .spawn()
            .with_context(|| format!("starting {what} ({cmd:?})"))?;
        Ok(Proc { child, what, log })
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits until the log has a line containing `marker` and returns that line.
    pub(crate) async fn wait_for_line(
        &mut self,
        marker: &str,
        timeout: Duration,
    ) -> anyhow::Result<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let text = std::fs::read_to_string(&self.log).unwrap_or_default();
            if let Some(line) = text.lines().find(|l| l.contains(marker)) {
                return Ok(line.to_string());
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                bail!(
                    "{} exited ({status}) before it was ready:\n{}",
                    self.what,
                    tail(&text, 30)
                );
            }
            if Instant::now() > deadline {
                bail!(
                    "{} not ready after {timeout:?}:\n{}",
                    self.what,
                    tail(&text, 30)
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The last lines of the child's output (for error reports).
    pub(crate) fn log_tail(&self, lines: usize) -> String {
        tail(
            &std::fs::read_to_string(&self.log).unwrap_or_default(),
            lines,
        )
    }

    pub(crate) fn has_exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// VmRSS of process `pid`, in bytes.
pub(crate) fn rss_of(pid: u32) -> anyhow::Result<u64> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    let kb = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .with_context(|| format!("no VmRSS in {path}"))?;
    Ok(kb * 1024)
}

/// CPU time (user + system, all threads) process `pid` has used so far.
pub(crate) fn cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) start at state (field 3);
    // utime and stime are fields 14 and 15, in clock ticks (USER_HZ, 100 on Linux).
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

/// Open file descriptors of process `pid`: (total, sockets, pod log files).
pub(crate) fn open_fds(pid: u32) -> Option<(usize, usize, usize)> {
    let dir = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?;
    let (mut total, mut sockets, mut logs) = (0, 0, 0);
    for entry in dir.flatten() {
        total += 1;
        let Ok(target) = std::fs::read_link(entry.path()) else {
            continue;
        };
        let t = target.to_string_lossy();
        if t.starts_with("socket:") {
            sockets += 1;
        } else if t.ends_with(".log") && t.contains("/pods/") {
            logs += 1;
        }
    }
    Some((total, sockets, logs))
}

/// A whole cluster from the real binary: server (plus agent), and a client for it.
pub(crate) struct Cluster {
    pub client: kube::Client,
    pub server: Proc,
    pub agent: Option<Proc>,
    // Dropped last: the children go first (field order), then their data.
    _dir: tempfile::TempDir,
}

impl Cluster {
    pub(crate) async fn start(opts: ClusterOptions<'_>) -> anyhow::Result<Cluster> {
        let exe = std::env::current_exe().context("finding the wasmkube binary")?;
        let mut dir = tempfile::Builder::new()
            .prefix("wasmkube-bench-")
            .tempdir()
            .context("creating the benchmark's data directory")?;
        // For looking into a run afterwards: the data directories and the children's logs.
        if std::env::var_os("WASMKUBE_BENCH_KEEP").is_some() {
            dir.disable_cleanup(true);
            eprintln!("keeping {}", dir.path().display());
        }
        let log = std::env::var("WASMKUBE_BENCH_LOG").unwrap_or_else(|_| "warn".into());
        let server_dir = dir.path().join("server");
        let node_dir = match opts.placement {
            NodePlacement::InServer | NodePlacement::None => server_dir.clone(),
            NodePlacement::Agent => dir.path().join("node"),
        };
        import_images(&node_dir, opts.images)?;

        let max_pods = opts.max_pods.to_string();
        let mut cmd = child_command(&exe);
        cmd.arg("server")
            .arg("--insecure")
            .arg("--data-dir")
            .arg(&server_dir)
            .args(["--https-listen-port", "0", "--kubelet-port", "0"])
            .args(["--node-name", NODE_NAME, "--max-pods", &max_pods])
            .args(["--log", &log]);
        if opts.placement != NodePlacement::InServer {
            cmd.arg("--disable-agent");
        }
        // Never a system containerd unless asked: the figures must not depend on one.
        let socket = opts
            .containerd_socket
            .clone()
            .unwrap_or_else(|| dir.path().join("no-containerd.sock"));
        cmd.arg("--containerd-socket").arg(&socket);
        cmd.args(&opts.server_args);
        let mut server = Proc::spawn(cmd, "wasmkube server", dir.path().join("server.log"))?;
        let url = server_url(&mut server).await?;

        let agent = match opts.placement {
            NodePlacement::InServer | NodePlacement::None => None,
            NodePlacement::Agent => {
                let mut cmd = child_command(&exe);
                cmd.arg("agent")
                    .args(["--server", &url])
                    .arg("--data-dir")
                    .arg(&node_dir)
                    .args(["--kubelet-port", "0"])
                    .args(["--node-name", NODE_NAME, "--max-pods", &max_pods])
                    .arg("--containerd-socket")
                    .arg(&socket)
                    .args(["--log", &log]);
                let mut agent = Proc::spawn(cmd, "wasmkube agent", dir.path().join("agent.log"))?;
                agent
                    .wait_for_line("wasmkube agent: node", Duration::from_secs(60))
                    .await?;
                Some(agent)
            }
        };

        let client = client_for(&url)?;
        Ok(Cluster {
            client,
            server,
            agent,
            _dir: dir,
        })
    }

    /// The process the node runs in.
    pub(crate) fn node_proc(&self) -> &Proc {
        self.agent.as_ref().unwrap_or(&self.server)
    }

    /// The node's last log lines and the server's, for reports of what went wrong.
    pub(crate) fn log_tails(&self, lines: usize) -> String {
        let mut s = format!("--- server log ---\n{}", self.server.log_tail(lines));
        if let Some(a) = &self.agent {
            s.push_str(&format!("\n--- agent log ---\n{}", a.log_tail(lines)));
        }
        s
    }

    pub(crate) fn pods(&self) -> Api<Pod> {
        Api::namespaced(self.client.clone(), "default")
    }
}

/// Waits until a `wasmkube server` child is ready and returns the URL it serves.
pub(crate) async fn server_url(server: &mut Proc) -> anyhow::Result<String> {
    let ready = server
        .wait_for_line("wasmkube server ready at ", Duration::from_secs(60))
        .await?;
    Ok(ready
        .split("ready at ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .with_context(|| format!("no URL in {ready:?}"))?
        .to_string())
}

/// A client of the (insecure) server at `url`, in namespace `default`.
pub(crate) fn client_for(url: &str) -> anyhow::Result<kube::Client> {
    let mut config = kube::Config::new(url.parse().with_context(|| format!("URL {url}"))?);
    config.default_namespace = "default".into();
    kube::Client::try_from(config).context("building the API client")
}

/// `wasmkube` with none of the environment that would point it at another cluster.
pub(crate) fn child_command(exe: &Path) -> Command {
    let mut cmd = Command::new(exe);
    for var in [
        "WASMKUBE_DATA_DIR",
        "WASMKUBE_TOKEN",
        "WASMKUBE_NODE_NAME",
        "WASMKUBE_LOG",
        "WASMKUBE_URL",
        "KUBECONFIG",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

fn import_images(node_dir: &Path, images: &[(PathBuf, &str)]) -> anyhow::Result<()> {
    if images.is_empty() {
        return Ok(());
    }
    let store =
        wasmkube_runtime_wasm::ImageStore::open(wasmkube_runtime_wasm::image_store_dir(node_dir))
            .context("opening the node's image store")?;
    for (path, name) in images {
        store
            .import(path, name)
            .with_context(|| format!("importing {} as {name}", path.display()))?;
    }
    Ok(())
}

/// An HTTP Wasm pod bound to the benchmark node: one container serving `containerPort` 8080,
/// no probes (an idle pod holds only its listener).
pub(crate) fn http_pod(name: &str, image: &str, bench: &str) -> anyhow::Result<Pod> {
    Ok(serde_json::from_value(serde_json::json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"bench": bench}},
        "spec": {
            "nodeName": NODE_NAME,
            "runtimeClassName": "wasmtime",
            "terminationGracePeriodSeconds": 1,
            "containers": [{
                "name": "web",
                "image": image,
                "ports": [{"containerPort": 8080}],
            }],
        },
    }))?)
}

/// When the watch first showed pod `name` Running, waiting until `deadline`; fails with what
/// the pods and the logs say.
pub(crate) async fn running_at(
    cluster: &Cluster,
    watch: &PodWatch,
    name: &str,
    deadline: Instant,
) -> anyhow::Result<Instant> {
    if !watch
        .wait_until(deadline, |s| s.running.contains_key(name))
        .await
    {
        anyhow::bail!(
            "pod {name} was not Running in time: {}\n{}",
            watch.with(|s| summarize_not_running(s, 3)),
            cluster.log_tails(20)
        );
    }
    Ok(watch
        .with(|s| s.running.get(name).map(|r| r.at))
        .unwrap_or_else(Instant::now))
}

pub(crate) async fn create(api: &Api<Pod>, pod: &Pod) -> anyhow::Result<()> {
    api.create(&PostParams::default(), pod)
        .await
        .map(|_| ())
        .with_context(|| {
            format!(
                "creating pod {}",
                pod.metadata.name.as_deref().unwrap_or("?")
            )
        })
}

/// A pod seen Running.
#[derive(Debug, Clone)]
pub(crate) struct RunningPod {
    /// When the watch event that first showed phase Running arrived.
    pub at: Instant,
    pub ip: Option<String>,
}

/// What one watch has seen so far.
#[derive(Debug, Default)]
pub(crate) struct Seen {
    pub running: HashMap<String, RunningPod>,
    /// When each pod was first seen with `spec.nodeName` set.
    pub scheduled: HashMap<String, Instant>,
    /// When each pod was first seen with condition Ready=True.
    pub ready: HashMap<String, Instant>,
    /// The latest reason a pod is not running (a waiting reason, a terminal phase, a message).
    pub not_running: HashMap<String, String>,
    /// Watch errors (each one restarts the watch).
    pub watch_errors: Vec<String>,
}

/// A watch on the pods with one `bench=` label, recording when each is first seen Running.
/// Timestamps are taken as events arrive, so latencies measured against it end at the moment
/// a client could have known.
pub(crate) struct PodWatch {
    seen: Arc<Mutex<Seen>>,
    changed: Arc<Notify>,
    task: tokio::task::JoinHandle<()>,
}

impl PodWatch {
    /// Starts watching from the current state (a list, then a watch from its resourceVersion);
    /// returns once the watch is established, so no later change is missed.
    pub(crate) async fn start(api: Api<Pod>, bench: &str) -> anyhow::Result<PodWatch> {
        let selector = format!("bench={bench}");
        let seen = Arc::new(Mutex::new(Seen::default()));
        let changed = Arc::new(Notify::new());
        let list = api
            .list(&ListParams::default().labels(&selector))
            .await
            .context("listing pods")?;
        for p in &list.items {
            observe(&seen, p);
        }
        let rv = list.metadata.resource_version.unwrap_or_default();
        let params = WatchParams::default().labels(&selector).timeout(290);
        let first = api
            .watch(&params, &rv)
            .await
            .context("watching pods")?
            .boxed();
        let task = tokio::spawn(follow(
            api,
            params,
            selector,
            rv,
            first,
            seen.clone(),
            changed.clone(),
        ));
        Ok(PodWatch {
            seen,
            changed,
            task,
        })
    }

    pub(crate) fn with<R>(&self, f: impl FnOnce(&Seen) -> R) -> R {
        f(&self.seen.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Waits until `done` holds or `deadline` passes; returns whether it held.
    pub(crate) async fn wait_until(
        &self,
        deadline: Instant,
        mut done: impl FnMut(&Seen) -> bool,
    ) -> bool {
        loop {
            if self.with(&mut done) {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            // A bounded wait as well: a missed wake-up costs at most a second.
            let _ = tokio::time::timeout(left.min(Duration::from_secs(1)), self.changed.notified())
                .await;
        }
    }
}

impl Drop for PodWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

type EventStream = futures::stream::BoxStream<'static, kube::Result<WatchEvent<Pod>>>;

async fn follow(
    api: Api<Pod>,
    params: WatchParams,
    selector: String,
    mut rv: String,
    first: EventStream,
    seen: Arc<Mutex<Seen>>,
    changed: Arc<Notify>,
) {
    let mut stream = Some(first);
    loop {
        let mut s = match stream.take() {
            Some(s) => s,
            None => match api.watch(&params, &rv).await {
                Ok(s) => s.boxed(),
                Err(e) => {
                    note_error(&seen, format!("re-watching pods: {e}"));
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
            },
        };
        while let Some(ev) = s.next().await {
            match ev {
                Ok(WatchEvent::Added(p)) | Ok(WatchEvent::Modified(p)) => {
                    if let Some(v) = &p.metadata.resource_version {
                        rv = v.clone();
                    }
                    observe(&seen, &p);
                    changed.notify_one();
                }
                Ok(WatchEvent::Deleted(p)) => {
                    if let Some(v) = &p.metadata.resource_version {
                        rv = v.clone();
                    }
                }
                Ok(WatchEvent::Bookmark(b)) => rv = b.metadata.resource_version,
                Ok(WatchEvent::Error(e)) => {
                    note_error(&seen, format!("watch error {}: {}", e.code, e.message));
                    if e.code == 410 {
                        // Too old to resume: start again from a fresh list.
                        match api.list(&ListParams::default().labels(&selector)).await {
                            Ok(list) => {
                                for p in &list.items {
                                    observe(&seen, p);
                                }
                                rv = list.metadata.resource_version.unwrap_or_default();
                                changed.notify_one();
                            }
                            Err(e) => note_error(&seen, format!("re-listing pods: {e}")),
                        }
                    }
                    break;
                }
                Err(e) => {
                    note_error(&seen, format!("watch stream: {e}"));
                    break;
                }
            }
        }
    }
}

fn note_error(seen: &Mutex<Seen>, e: String) {
    let mut s = seen.lock().unwrap_or_else(|p| p.into_inner());
    if s.watch_errors.len() < 100 {
        s.watch_errors.push(e);
    }
}

fn observe(seen: &Mutex<Seen>, pod: &Pod) {
    let Some(name) = pod.metadata.name.clone() else {
        return;
    };
    let status = pod.status.as_ref();
    let phase = status.and_then(|s| s.phase.as_deref()).unwrap_or("");
    let ip = status.and_then(|s| s.pod_ip.clone());
    let mut s = seen.lock().unwrap_or_else(|p| p.into_inner());
    if pod
        .spec
        .as_ref()
        .and_then(|sp| sp.node_name.as_deref())
        .is_some_and(|n| !n.is_empty())
    {
        s.scheduled.entry(name.clone()).or_insert_with(Instant::now);
    }
    let ready = status
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
    if ready {
        s.ready.entry(name.clone()).or_insert_with(Instant::now);
    }
    if phase == "Running" {
        s.not_running.remove(&name);
        let entry = s.running.entry(name).or_insert(RunningPod {
            at: Instant::now(),
            ip: None,
        });
        if ip.is_some() {
            entry.ip = ip;
        }
        return;
    }
    let waiting = status
        .and_then(|s| s.container_statuses.as_ref())
        .and_then(|cs| cs.first())
        .and_then(|c| c.state.as_ref())
        .and_then(|st| st.waiting.as_ref())
        .map(|w| {
            format!(
                "{}: {}",
                w.reason.as_deref().unwrap_or("Waiting"),
                w.message.as_deref().unwrap_or("")
            )
        });
    let why = match (phase, waiting) {
        (_, Some(w)) => format!("{phase} ({w})"),
        ("", None) => "no status yet".to_string(),
        (p, None) => format!(
            "{p}{}",
            status
                .and_then(|s| s.message.as_deref())
                .map(|m| format!(": {m}"))
                .unwrap_or_default()
        ),
    };
    s.not_running.insert(name, why);
}

/// The most common reasons among pods that are not running, for reports.
pub(crate) fn summarize_not_running(seen: &Seen, limit: usize) -> String {
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for why in seen.not_running.values() {
        *counts.entry(why.as_str()).or_default() += 1;
    }
    let mut v: Vec<_> = counts.into_iter().collect();
    v.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
    v.into_iter()
        .take(limit)
        .map(|(why, n)| format!("{n} × {why}"))
        .collect::<Vec<_>>()
        .join("; ")
}

/// GET `path` from `ip:port` with a fresh connection; the status code.
pub(crate) async fn http_get_status(ip: &str, port: u16, path: &str) -> anyhow::Result<u16> {
    let addr = format!("{ip}:{port}");
    let stream = tokio::time::timeout(
        Duration::from_secs(5),
        tokio::net::TcpStream::connect(&addr),
    )
    .await
    .with_context(|| format!("connecting to {addr}: timed out"))?
    .with_context(|| format!("connecting to {addr}"))?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let req = http::Request::get(path)
        .header(http::header::HOST, &addr)
        .body(http_body_util::Empty::<bytes::Bytes>::new())?;
    let resp = tokio::time::timeout(Duration::from_secs(10), sender.send_request(req))
        .await
        .with_context(|| format!("GET http://{addr}{path}: timed out"))??;
    Ok(resp.status().as_u16())
}
