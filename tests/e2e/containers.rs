//! Linux container pods through a real containerd and runc: a private containerd (its own root,
//! state and socket in a temp dir) and a loopback docker-registry holding a busybox image built
//! from the host's busybox-static, both started here and stopped on drop. Driven with the real
//! kubectl: a command pod's logs, OOMKilled, a crash loop, exec probes, an httpd Deployment
//! reached through its pod IPs and its Service's ClusterIP, `kubectl exec`, a pod mixing a Wasm HTTP container with a busybox sidecar on
//! localhost, and deletion leaving nothing behind in containerd.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{Out, Server, eventually, find_in_path, run};

/// A containerd of our own; SIGTERM (then SIGKILL) on drop, after killing what still runs in
/// the `wasmkube` namespace so no shim or mount outlives the test.
pub struct Containerd {
    child: Child,
    pub dir: tempfile::TempDir,
    pub socket: PathBuf,
}

impl Containerd {
    pub fn start() -> Containerd {
        for tool in ["containerd", "ctr", "runc", "containerd-shim-runc-v2"] {
            find_in_path(tool).unwrap_or_else(|| {
                panic!("{tool} is not installed: run scripts/install-test-deps.sh")
            });
        }
        // sun_path holds 108 bytes: a short directory.
        let dir = tempfile::Builder::new()
            .prefix("wk-ctrd-")
            .tempdir_in("/tmp")
            .expect("tempdir");
        let socket = dir.path().join("c.sock");
        let config = dir.path().join("config.toml");
        std::fs::write(
            &config,
            format!(
                "version = 2\nroot = \"{root}\"\nstate = \"{state}\"\n\
                 disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n\
                 [grpc]\n  address = \"{sock}\"\n[ttrpc]\n  address = \"{sock}.ttrpc\"\n\
                 [debug]\n  address = \"\"\n[metrics]\n  address = \"\"\n",
                root = dir.path().join("root").display(),
                state = dir.path().join("state").display(),
                sock = socket.display(),
            ),
        )
        .expect("write containerd config");
        let log = std::fs::File::create(dir.path().join("containerd.log")).expect("log file");
        let child = Command::new("containerd")
            .arg("--config")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start containerd");
        let c = Containerd { child, dir, socket };
        eventually(Duration::from_secs(30), "containerd answering", || {
            (c.ctr(&["version"]).code == Some(0)).then_some(())
        });
        c
    }

    /// `ctr` on our socket in the runtime's namespace.
    pub fn ctr(&self, args: &[&str]) -> Out {
        let mut cmd = Command::new("ctr");
        cmd.arg("--address")
            .arg(&self.socket)
            .args(["--namespace", "wasmkube"])
            .args(args);
        run(cmd, None, Duration::from_secs(30))
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("containerd.log")).unwrap_or_default()
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        let tasks = self.ctr(&["tasks", "ls", "-q"]).stdout;
        for id in tasks.lines().filter(|l| !l.trim().is_empty()) {
            self.ctr(&["tasks", "kill", "-a", "-s", "SIGKILL", id]);
        }
        for id in tasks.lines().filter(|l| !l.trim().is_empty()) {
            for _ in 0..50 {
                if self.ctr(&["tasks", "rm", "-f", id]).code == Some(0) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A docker-registry on a free loopback port with a busybox image pushed as
/// `HOST/e2e/busybox:v1`.
pub struct Registry {
    child: Child,
    _dir: tempfile::TempDir,
    pub host: String,
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Registry {
    pub fn start_with_busybox() -> Registry {
        let bin = find_in_path("docker-registry")
            .expect("docker-registry is not installed: run scripts/install-test-deps.sh");
        assert!(
            Path::new(wasmkube_runtime_oci::image::BUSYBOX).exists(),
            "busybox-static is not installed: run scripts/install-test-deps.sh"
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let host = format!("127.0.0.1:{port}");
        let config = format!(
            "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\n\
             storage:\n  filesystem:\n    rootdirectory: {}\n\
             http:\n  addr: {host}\n  secret: wasmkube-e2e\n",
            dir.path().join("storage").display(),
        );
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config).expect("write config");
        let child = Command::new(bin)
            .arg("serve")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start docker-registry");
        let registry = Registry {
            child,
            _dir: dir,
            host,
        };
        eventually(Duration::from_secs(20), "docker-registry listening", || {
            TcpStream::connect(&registry.host).ok().map(|_| ())
        });
        let image =
            wasmkube_runtime_oci::image::busybox_image(wasmkube_runtime_oci::image::BUSYBOX)
                .expect("build the busybox image");
        let reference =
            wasmkube_runtime_wasm::oci::Reference::parse(&registry.busybox()).expect("reference");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        rt.block_on(async {
            let client =
                wasmkube_runtime_wasm::oci::RegistryClient::new(Duration::from_secs(30), vec![])
                    .expect("registry client");
            client
                .push_artifact(
                    &reference,
                    wasmkube_runtime_oci::image::CONFIG_MEDIA_TYPE,
                    image.config,
                    vec![(
                        wasmkube_runtime_oci::image::LAYER_MEDIA_TYPE.to_string(),
                        image.layer_gz,
                    )],
                    None,
                )
                .await
                .expect("push busybox");
        });
        registry
    }

    pub fn busybox(&self) -> String {
        format!("{}/e2e/busybox:v1", self.host)
    }
}

/// A server whose node runs Linux containers through `ctrd`.
pub fn server_with(ctrd: &Containerd) -> Server {
    let socket = ctrd.socket.display().to_string();
    let s = Server::start_with(&["--containerd-socket", &socket]);
    s.wait_for(
        &["node", crate::harness::SERVER_NODE],
        "{.status.runtimeHandlers[*].name}",
        Duration::from_secs(30),
        |h| h.split_whitespace().any(|n| n == "runc"),
    );
    s
}

pub fn apply(s: &Server, yaml: &str) {
    s.kubectl_stdin(&["apply", "-f", "-"], Some(yaml)).ok();
}

/// Pods, claims, volumes, events and both logs: what a failed wait prints.
pub fn diagnostics(s: &Server, ctrd: &Containerd) -> String {
    format!(
        "pods:\n{}\nclaims:\n{}\nvolumes:\n{}\nevents:\n{}\nserver log:\n{}\ncontainerd log (tail):\n{}",
        s.kubectl(&["get", "pods", "-o", "wide"]).stdout,
        s.kubectl(&["get", "pvc", "-o", "wide"]).stdout,
        s.kubectl(&["get", "pv", "-o", "wide"]).stdout,
        s.kubectl(&["get", "events"]).stdout,
        s.log(),
        ctrd.log()
            .lines()
            .rev()
            .take(30)
            .collect::<Vec<_>>()
            .join("\n")
    )
}

/// Waits until `jsonpath` of `what` satisfies `pred`; fails with the last value seen and the
/// cluster's pods, claims, volumes and events.
pub fn wait(
    s: &Server,
    ctrd: &Containerd,
    what: &[&str],
    expr: &str,
    timeout: Duration,
    pred: impl Fn(&str) -> bool,
) -> String {
    let deadline = Instant::now() + timeout;
    let mut last = String::new();
    while Instant::now() < deadline {
        last = s.jsonpath(what, expr);
        if pred(&last) {
            return last;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    panic!(
        "timed out after {timeout:?} waiting on {what:?} {expr}; last value {last:?}\n{}",
        diagnostics(s, ctrd)
    );
}

/// Polls `f` until it returns `Some`, for at most `timeout`; fails with the cluster's state.
pub fn until<T>(
    s: &Server,
    ctrd: &Containerd,
    timeout: Duration,
    what: &str,
    mut f: impl FnMut() -> Option<T>,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        if Instant::now() > deadline {
            panic!(
                "timed out after {timeout:?} waiting for {what}\n{}",
                diagnostics(s, ctrd)
            );
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn wait_pod(
    s: &Server,
    ctrd: &Containerd,
    pod: &str,
    expr: &str,
    pred: impl Fn(&str) -> bool,
) -> String {
    wait(s, ctrd, &["pod", pod], expr, Duration::from_secs(90), pred)
}

fn containerd_ids(ctrd: &Containerd) -> Vec<String> {
    ctrd.ctr(&["containers", "ls", "-q"])
        .ok()
        .stdout
        .lines()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

/// Our containers in containerd labelled with pod `uid`.
fn containers_of(ctrd: &Containerd, uid: &str) -> Vec<String> {
    let filter = format!("labels.\"io.kubernetes.pod.uid\"=={uid}");
    ctrd.ctr(&["containers", "ls", "-q", &filter])
        .ok()
        .stdout
        .lines()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

#[test]
fn linux_container_pods_run_through_containerd() {
    let ctrd = Containerd::start();
    let registry = Registry::start_with_busybox();
    let s = server_with(&ctrd);
    let busybox = registry.busybox();
    // The RuntimeClass exists beside wasmtime's.
    assert_eq!(s.jsonpath(&["runtimeclass", "runc"], "{.handler}"), "runc");

    // A command pod to completion, with both streams in its logs. No runtimeClassName: the
    // image is not Wasm, so it goes to runc.
    apply(
        &s,
        &format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: hello}}\nspec:\n  restartPolicy: Never\n  containers:\n  - name: main\n    image: {busybox}\n    command: [sh, -c, 'echo hello from busybox; echo to stderr >&2; id -u']\n"
        ),
    );
    wait_pod(&s, &ctrd, "hello", "{.status.phase}", |p| p == "Succeeded");
    let reason = s.jsonpath(
        &["pod", "hello"],
        "{.status.containerStatuses[0].state.terminated.reason}",
    );
    assert_eq!(reason, "Completed");
    let id = s.jsonpath(
        &["pod", "hello"],
        "{.status.containerStatuses[0].containerID}",
    );
    assert!(id.starts_with("runc://"), "{id}");
    let image_id = s.jsonpath(&["pod", "hello"], "{.status.containerStatuses[0].imageID}");
    assert!(image_id.contains("@sha256:"), "{image_id}");
    let logs = s.kubectl(&["logs", "hello"]).ok().stdout;
    assert!(logs.contains("hello from busybox"), "{logs}");
    assert!(logs.contains("to stderr"), "{logs}");
    assert!(
        logs.lines().any(|l| l == "0"),
        "runs as root by default: {logs}"
    );
    // The Pulled event names the image.
    let events = s
        .kubectl(&[
            "get",
            "events",
            "--field-selector",
            "involvedObject.name=hello",
        ])
        .ok()
        .stdout;
    assert!(events.contains("Pulled"), "{events}");
    // The pull's size, in the event and through our own CLI.
    assert!(events.contains("Image size: "), "{events}");
    let described = s.wasmkube(&["describe", "pod", "hello"]).ok().stdout;
    assert!(
        described.contains("Successfully pulled image") && described.contains("bytes."),
        "{described}"
    );

    // runAsUser, limits and exit codes: a memory hog above its limit is OOMKilled.
    apply(
        &s,
        &format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: hog}}\nspec:\n  restartPolicy: Never\n  containers:\n  - name: hog\n    image: {busybox}\n    command: [sh, -c, 'tail /dev/zero']\n    resources: {{limits: {{memory: 32Mi}}}}\n"
        ),
    );
    wait_pod(&s, &ctrd, "hog", "{.status.phase}", |p| p == "Failed");
    assert_eq!(
        s.jsonpath(
            &["pod", "hog"],
            "{.status.containerStatuses[0].state.terminated.reason}"
        ),
        "OOMKilled"
    );
    assert_eq!(
        s.jsonpath(
            &["pod", "hog"],
            "{.status.containerStatuses[0].state.terminated.exitCode}"
        ),
        "137"
    );

    // securityContext: another uid and gid; a read-only root beside a writable one.
    let touch = "touch /x 2>/dev/null && echo writable || echo read-only";
    apply(
        &s,
        &format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: secure}}\nspec:\n  restartPolicy: Never\n  containers:\n  - name: ids\n    image: {busybox}\n    command: [sh, -c, 'id -u; id -g']\n    securityContext: {{runAsUser: 1234, runAsGroup: 4321}}\n  - name: ro\n    image: {busybox}\n    command: [sh, -c, '{touch}']\n    securityContext: {{readOnlyRootFilesystem: true}}\n  - name: rw\n    image: {busybox}\n    command: [sh, -c, '{touch}']\n"
        ),
    );
    wait_pod(&s, &ctrd, "secure", "{.status.phase}", |p| p == "Succeeded");
    let logs = |c: &str| s.kubectl(&["logs", "secure", "-c", c]).ok().stdout;
    assert_eq!(logs("ids").lines().collect::<Vec<_>>(), ["1234", "4321"]);
    assert_eq!(logs("ro").trim(), "read-only");
    assert_eq!(logs("rw").trim(), "writable");

    // A crash loop: restarts with back-off, the previous instance's logs and exit code kept.
    apply(
        &s,
        &format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: crasher}}\nspec:\n  containers:\n  - name: main\n    image: {busybox}\n    command: [sh, -c, 'echo crashing now; exit 3']\n"
        ),
    );
    wait_pod(
        &s,
        &ctrd,
        "crasher",
        "{.status.containerStatuses[0].state.waiting.reason}",
        |r| r == "CrashLoopBackOff",
    );
    assert_eq!(
        s.jsonpath(
            &["pod", "crasher"],
            "{.status.containerStatuses[0].lastState.terminated.exitCode}"
        ),
        "3"
    );
    let restarts: u32 = s
        .jsonpath(
            &["pod", "crasher"],
            "{.status.containerStatuses[0].restartCount}",
        )
        .parse()
        .expect("restartCount");
    assert!(restarts >= 1);
    let previous = s.kubectl(&["logs", "crasher", "--previous"]).ok().stdout;
    assert!(previous.contains("crashing now"), "{previous}");

    // Deletion: the pods' containers are gone from containerd afterwards. A finished pod's
    // containers go with its sandbox already; a crash-looping pod keeps its newest instance
    // until the pod is deleted.
    let uids: Vec<String> = ["hello", "hog", "secure", "crasher"]
        .iter()
        .map(|p| s.jsonpath(&["pod", p], "{.metadata.uid}"))
        .collect();
    for uid in &uids[..3] {
        assert!(containers_of(&ctrd, uid).is_empty(), "finished pod {uid}");
    }
    let crasher = containers_of(&ctrd, &uids[3]);
    assert_eq!(crasher.len(), 1, "the crash-looping container: {crasher:?}");
    s.kubectl(&[
        "delete",
        "pod",
        "hello",
        "hog",
        "secure",
        "crasher",
        "--wait=true",
        "--timeout=60s",
    ])
    .ok();
    eventually(
        Duration::from_secs(30),
        "the crasher's container removed",
        || containers_of(&ctrd, &uids[3]).is_empty().then_some(()),
    );
    let left = containerd_ids(&ctrd);
    assert!(
        left.is_empty(),
        "nothing else was left in the namespace: {left:?}"
    );
    let pinned = netns_mounts(&s.dir);
    assert!(pinned.is_empty(), "namespaces left: {pinned:?}");
    let snapshots = ctrd.ctr(&["snapshots", "ls"]).ok().stdout;
    assert!(
        !snapshots.contains(&crasher[0]),
        "snapshot removed: {snapshots}"
    );
    drop(s);
    drop(registry);
}

#[test]
fn services_of_containers_probes_and_exec() {
    let ctrd = Containerd::start();
    let registry = Registry::start_with_busybox();
    let s = server_with(&ctrd);
    let busybox = registry.busybox();
    // busybox httpd in two replicas, each on its own pod IP through the kubelet's forwarding
    // into its network namespace; readiness over httpGet, liveness over exec.
    apply(
        &s,
        &format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: httpd}}\nspec:\n  replicas: 2\n  selector: {{matchLabels: {{app: httpd}}}}\n  template:\n    metadata: {{labels: {{app: httpd}}}}\n    spec:\n      terminationGracePeriodSeconds: 2\n      containers:\n      - name: httpd\n        image: {busybox}\n        command: [sh, -c, 'mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 8080 -h /www']\n        ports: [{{containerPort: 8080}}]\n        readinessProbe: {{httpGet: {{path: /, port: 8080}}, periodSeconds: 1}}\n        livenessProbe: {{exec: {{command: [test, -f, /www/index.html]}}, periodSeconds: 2}}\n---\napiVersion: v1\nkind: Service\nmetadata: {{name: httpd}}\nspec:\n  selector: {{app: httpd}}\n  ports: [{{port: 80, targetPort: 8080}}]\n"
        ),
    );
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let ready = s.jsonpath(&["deployment", "httpd"], "{.status.readyReplicas}");
        if ready == "2" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "httpd not ready: {ready:?}\n{}",
            diagnostics(&s, &ctrd)
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    // A namespace per pod, pinned under the node's data directory.
    let pinned = netns_mounts(&s.dir);
    assert_eq!(pinned.len(), 2, "one per httpd pod: {pinned:?}");
    let pods = s.jsonpath(
        &["pods", "-l", "app=httpd"],
        "{range .items[*]}{.metadata.name}={.status.podIP} {end}",
    );
    for entry in pods.split_whitespace() {
        let (name, ip) = entry.split_once('=').expect("name=ip");
        let body = http_get(&format!("{ip}:8080"))
            .unwrap_or_else(|e| panic!("GET {ip}:8080: {e}\n{}", diagnostics(&s, &ctrd)));
        // Each pod has its own UTS namespace with the pod's name as hostname.
        assert_eq!(body.trim(), name);
    }
    // The Service's ClusterIP: the proxy spreads new connections over both pods.
    let cluster_ip = s.jsonpath(&["svc", "httpd"], "{.spec.clusterIP}");
    let names: std::collections::BTreeSet<String> = pods
        .split_whitespace()
        .filter_map(|e| e.split_once('=').map(|(n, _)| n.to_string()))
        .collect();
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..20 {
        let body = http_get(&format!("{cluster_ip}:80"))
            .unwrap_or_else(|e| panic!("GET {cluster_ip}:80: {e}\n{}", diagnostics(&s, &ctrd)));
        seen.insert(body.trim().to_string());
    }
    assert_eq!(seen, names, "every httpd pod answers through the ClusterIP");

    // kubectl exec into a Linux container: output, standard input and the exit code.
    let first = names.iter().next().expect("an httpd pod").clone();
    let out = s
        .kubectl(&["exec", &first, "--", "cat", "/www/index.html"])
        .ok();
    assert_eq!(out.stdout.trim(), first);
    let out = s
        .kubectl_stdin(
            &[
                "exec",
                "-i",
                &first,
                "--",
                "sh",
                "-c",
                "tr a-z A-Z; echo oops >&2",
            ],
            Some("from stdin\n"),
        )
        .ok();
    assert_eq!(out.stdout, "FROM STDIN\n");
    assert!(out.stderr.contains("oops"), "{}", out.stderr);
    let out = s.kubectl(&["exec", &first, "--", "sh", "-c", "exit 7"]);
    assert_eq!(out.code, Some(7), "{}", out.stderr);
    let out = s.kubectl(&["exec", &first, "--", "/no/such/binary"]);
    assert_ne!(out.code, Some(0), "{}", out.stdout);
    // Nothing listens on the pod IPs in the host namespace but the kubelet's forwarder: the
    // liveness exec probe keeps passing, so no restarts.
    std::thread::sleep(Duration::from_secs(3));
    let restarts = s.jsonpath(
        &["pods", "-l", "app=httpd"],
        "{.items[*].status.containerStatuses[0].restartCount}",
    );
    assert_eq!(restarts, "0 0");

    // An exec probe that fails: the container is restarted.
    apply(
        &s,
        &format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: unhealthy}}\nspec:\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: main\n    image: {busybox}\n    command: [sh, -c, 'echo started; exec sleep 3600']\n    livenessProbe: {{exec: {{command: [cat, /no/such/file]}}, periodSeconds: 1, failureThreshold: 2}}\n"
        ),
    );
    wait_pod(
        &s,
        &ctrd,
        "unhealthy",
        "{.status.containerStatuses[0].restartCount}",
        |r| r.parse::<u32>().is_ok_and(|n| n >= 1),
    );
    let events = s
        .kubectl(&[
            "get",
            "events",
            "--field-selector",
            "involvedObject.name=unhealthy",
        ])
        .ok()
        .stdout;
    assert!(events.contains("Unhealthy"), "{events}");
    s.kubectl(&["delete", "deployment", "httpd"]).ok();
    s.kubectl(&["delete", "pod", "unhealthy", "--wait=true", "--timeout=60s"])
        .ok();
    eventually(Duration::from_secs(60), "the httpd pods deleted", || {
        s.kubectl(&["get", "pods", "-o", "name"])
            .ok()
            .stdout
            .trim()
            .is_empty()
            .then_some(())
    });
    // Each deleted pod's network namespace is unpinned with it.
    let pinned = netns_mounts(&s.dir);
    assert!(pinned.is_empty(), "namespaces left: {pinned:?}");
    drop(s);
    drop(registry);
}

#[test]
fn a_wasm_container_and_a_linux_sidecar_share_localhost_and_volumes() {
    let ctrd = Containerd::start();
    let registry = Registry::start_with_busybox();
    let s = server_with(&ctrd);
    s.import_example("hello-http");
    let busybox = registry.busybox();
    // No runtimeClassName: each container goes to the runtime its image belongs to.
    apply(
        &s,
        &format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: mixed}}\nspec:\n  terminationGracePeriodSeconds: 1\n  volumes: [{{name: shared, emptyDir: {{}}}}]\n  containers:\n  - name: web\n    image: wasmkube.local/examples/hello-http:v1\n    ports: [{{containerPort: 8080}}]\n    env: [{{name: POD_NAME, valueFrom: {{fieldRef: {{fieldPath: metadata.name}}}}}}]\n    volumeMounts: [{{name: shared, mountPath: /shared}}]\n  - name: sidecar\n    image: {busybox}\n    command: [sh, -c, 'echo from-sidecar > /shared/note; until wget -qO- http://localhost:8080/; do sleep 0.2; done; exec sleep 3600']\n    volumeMounts: [{{name: shared, mountPath: /shared}}]\n"
        ),
    );
    wait_pod(&s, &ctrd, "mixed", "{.status.phase}", |p| p == "Running");
    let ids = s.jsonpath(
        &["pod", "mixed"],
        "{.status.containerStatuses[*].containerID}",
    );
    assert!(
        ids.contains("wasmtime://") && ids.contains("runc://"),
        "{ids}"
    );
    let logs = eventually(
        Duration::from_secs(30),
        "the sidecar's request answered",
        || {
            let l = s.kubectl(&["logs", "mixed", "-c", "sidecar"]).stdout;
            l.contains("mixed").then_some(l)
        },
    );
    assert!(logs.to_lowercase().contains("hello"), "{logs}");
    // The Wasm container's port also answers on the pod IP (forwarded into the namespace).
    let ip = s.jsonpath(&["pod", "mixed"], "{.status.podIP}");
    let body = http_get(&format!("{ip}:8080"))
        .unwrap_or_else(|e| panic!("GET {ip}:8080: {e}\n{}", diagnostics(&s, &ctrd)));
    assert!(body.contains("mixed"), "{body}");
    // The emptyDir is the same directory for both: the sidecar's file is on the node.
    let uid = s.jsonpath(&["pod", "mixed"], "{.metadata.uid}");
    let note = walk_find(&s.dir, "note", &uid).expect("the sidecar's file in the pod's emptyDir");
    assert_eq!(
        std::fs::read_to_string(note).expect("read").trim(),
        "from-sidecar"
    );
    s.kubectl(&["delete", "pod", "mixed", "--wait=true", "--timeout=60s"])
        .ok();
    eventually(
        Duration::from_secs(30),
        "the sidecar removed from containerd",
        || containerd_ids(&ctrd).is_empty().then_some(()),
    );
    let pinned = netns_mounts(&s.dir);
    assert!(pinned.is_empty(), "namespaces left: {pinned:?}");
}

/// The pod network namespaces still pinned (nsfs mounts) under the server's directory.
fn netns_mounts(dir: &Path) -> Vec<String> {
    let dir = dir.display().to_string();
    std::fs::read_to_string("/proc/self/mountinfo")
        .expect("read mountinfo")
        .lines()
        .filter(|l| l.contains(" - nsfs "))
        .filter_map(|l| l.split_whitespace().nth(4))
        .filter(|mount_point| mount_point.starts_with(&dir))
        .map(str::to_string)
        .collect()
}

/// `GET /` over HTTP/1.0; the body of a 200 answer.
fn http_get(addr: &str) -> std::io::Result<String> {
    use std::io::{Read, Write};
    let mut c = TcpStream::connect(addr)?;
    c.set_read_timeout(Some(Duration::from_secs(10)))?;
    c.write_all(b"GET / HTTP/1.0\r\nHost: pod\r\n\r\n")?;
    let mut out = String::new();
    c.read_to_string(&mut out)?;
    let (head, body) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
    if !head.starts_with("HTTP/1.") || !head.contains(" 200") {
        return Err(std::io::Error::other(format!("answer: {head:?}")));
    }
    Ok(body.to_string())
}

/// A file named `name` under `dir` whose path mentions `marker`.
fn walk_find(dir: &Path, name: &str, marker: &str) -> Option<PathBuf> {
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            let Ok(ft) = e.file_type() else { continue };
            if ft.is_dir() {
                stack.push(p);
            } else if p.file_name().is_some_and(|n| n == name)
                && p.to_string_lossy().contains(marker)
            {
                return Some(p);
            }
        }
    }
    None
}
