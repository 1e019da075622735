//! A real etcd cluster for tests: `etcd` processes on free loopback ports, each member with
//! its own data directory under one temporary directory.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The etcd binary: `$WASMKUBE_ETCD` or `etcd` on the PATH (`apt-get install etcd-server`).
pub fn binary() -> PathBuf {
    std::env::var_os("WASMKUBE_ETCD")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("etcd"))
}

/// One member's addresses and process.
#[derive(Debug)]
pub struct Member {
    pub name: String,
    pub client_port: u16,
    pub peer_port: u16,
    pub data_dir: PathBuf,
    child: Option<Child>,
}

impl Member {
    /// `http://127.0.0.1:PORT`, the member's client URL.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.client_port)
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }
}

/// A running etcd cluster of one or more members.
#[derive(Debug)]
pub struct EtcdCluster {
    pub members: Vec<Member>,
    initial_cluster: String,
    dir: tempfile::TempDir,
}

/// How long a member may take to answer `/health` after it starts.
const READY: Duration = Duration::from_secs(30);

impl EtcdCluster {
    /// Starts `size` members and waits until the cluster has a leader.
    ///
    /// # Panics
    ///
    /// If etcd is not installed or does not become healthy in time: a test cannot go on.
    pub fn start(size: usize) -> EtcdCluster {
        let dir = tempfile::tempdir().expect("a temporary directory for etcd");
        let members: Vec<Member> = (0..size)
            .map(|i| Member {
                name: format!("m{i}"),
                client_port: free_port(),
                peer_port: free_port(),
                data_dir: dir.path().join(format!("m{i}")),
                child: None,
            })
            .collect();
        let initial_cluster = members
            .iter()
            .map(|m| format!("{}=http://127.0.0.1:{}", m.name, m.peer_port))
            .collect::<Vec<_>>()
            .join(",");
        let mut cluster = EtcdCluster {
            members,
            initial_cluster,
            dir,
        };
        for i in 0..size {
            cluster.launch(i);
        }
        for i in 0..size {
            cluster.wait_healthy(i);
        }
        cluster
    }

    /// The client URLs of every member, for `--datastore-endpoint`.
    pub fn endpoints(&self) -> Vec<String> {
        self.members.iter().map(Member::endpoint).collect()
    }

    /// The endpoints joined with commas, as the flag takes them.
    pub fn endpoint_list(&self) -> String {
        self.endpoints().join(",")
    }

    /// The directory members log into (`m0.log`, …).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Starts member `i` (again), with its existing data directory if it has one.
    pub fn launch(&mut self, i: usize) {
        let member = &self.members[i];
        let state = if member.data_dir.join("member").exists() {
            "existing"
        } else {
            "new"
        };
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join(format!("{}.log", member.name)))
            .expect("open the etcd log");
        let client = member.endpoint();
        let peer = format!("http://127.0.0.1:{}", member.peer_port);
        let child = Command::new(binary())
            .args(["--name", &member.name])
            .arg("--data-dir")
            .arg(&member.data_dir)
            .args(["--listen-client-urls", &client])
            .args(["--advertise-client-urls", &client])
            .args(["--listen-peer-urls", &peer])
            .args(["--initial-advertise-peer-urls", &peer])
            .args(["--initial-cluster", &self.initial_cluster])
            .args(["--initial-cluster-state", state])
            .args(["--initial-cluster-token", "wasmkube-test"])
            // Faster elections than the defaults (100 ms / 1 s), so failure tests are quick.
            .args(["--heartbeat-interval", "50", "--election-timeout", "500"])
            .args(["--logger", "zap", "--log-level", "warn"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone the etcd log"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "could not start {} (apt-get install etcd-server): {e}",
                    binary().display()
                )
            });
        self.members[i].child = Some(child);
    }

    /// Kills member `i` with SIGKILL and waits for it to be gone.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.members[i].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Waits until member `i` reports itself healthy (it is part of a cluster with a leader).
    pub fn wait_healthy(&self, i: usize) {
        let member = &self.members[i];
        let deadline = Instant::now() + READY;
        while Instant::now() < deadline {
            if health(member.client_port) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let log = std::fs::read_to_string(self.dir.path().join(format!("{}.log", member.name)))
            .unwrap_or_default();
        panic!(
            "etcd member {} did not become healthy within {READY:?}; its log:\n{log}",
            member.name
        );
    }
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        for i in 0..self.members.len() {
            self.kill(i);
        }
    }
}

/// Whether `GET /health` on the member answers `"health":"true"`.
fn health(port: u16) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let request = "GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    response.contains("\"health\":\"true\"")
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind(("127.0.0.1", 0))
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("a free loopback port")
}
