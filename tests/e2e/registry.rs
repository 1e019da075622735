//! Wasm images from a real OCI registry (Debian's `docker-registry` on loopback, with htpasswd
//! auth): `wasmkube image push`, then pods pulling with and without `imagePullSecrets`.

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{BIN, Server, example, find_in_path, run};

struct Registry {
    child: Child,
    _dir: tempfile::TempDir,
    host: String,
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl Registry {
    fn start(user: &str, password: &str) -> Registry {
        let bin: PathBuf = find_in_path("docker-registry")
            .expect("docker-registry is not installed: run scripts/install-test-deps.sh");
        let dir = tempfile::tempdir().expect("tempdir");
        let host = format!("127.0.0.1:{}", free_port());
        let out = Command::new("htpasswd")
            .args(["-Bbn", user, password])
            .output()
            .expect("htpasswd is not installed: run scripts/install-test-deps.sh");
        assert!(out.status.success(), "htpasswd: {out:?}");
        let htpasswd = dir.path().join("htpasswd");
        std::fs::write(&htpasswd, &out.stdout).expect("write htpasswd");
        let config = format!(
            "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\n\
             storage:\n  filesystem:\n    rootdirectory: {}\n\
             http:\n  addr: {host}\n  secret: wasmkube-e2e\n\
             auth:\n  htpasswd:\n    realm: wasmkube-e2e\n    path: {}\n",
            dir.path().join("storage").display(),
            htpasswd.display()
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
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(&host).is_err() {
            assert!(
                Instant::now() < deadline,
                "docker-registry did not listen on {host}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Registry {
            child,
            _dir: dir,
            host,
        }
    }
}

#[test]
fn pods_pull_wasm_images_from_a_registry_with_pull_secrets() {
    let registry = Registry::start("puller", "s3cret-pass");
    let s = Server::start();
    s.import_example("hello");
    let target = format!("{}/examples/hello:v1", registry.host);
    let mut push = Command::new(BIN);
    push.args(["image", "push", "wasmkube.local/examples/hello:v1", &target])
        .args(["-u", "puller", "-p", "s3cret-pass"])
        .arg("--data-dir")
        .arg(&s.dir);
    run(push, None, Duration::from_secs(60)).ok();
    // Pushing without credentials is refused by the registry.
    let mut denied = Command::new(BIN);
    denied
        .args(["image", "push", "wasmkube.local/examples/hello:v1", &target])
        .arg("--data-dir")
        .arg(&s.dir);
    run(denied, None, Duration::from_secs(60)).fails();
    let _ = example("hello");

    s.kubectl(&[
        "create",
        "secret",
        "docker-registry",
        "regcred",
        &format!("--docker-server={}", registry.host),
        "--docker-username=puller",
        "--docker-password=s3cret-pass",
    ])
    .ok();
    let pods = format!(
        r#"
apiVersion: v1
kind: Pod
metadata: {{name: pulled}}
spec:
  runtimeClassName: wasmtime
  restartPolicy: Never
  imagePullSecrets: [{{name: regcred}}]
  containers:
  - name: hello
    image: {target}
    imagePullPolicy: Always
    args: ["pulled", "from", "a", "registry"]
---
apiVersion: v1
kind: Pod
metadata: {{name: no-secret}}
spec:
  runtimeClassName: wasmtime
  restartPolicy: Never
  containers:
  - name: hello
    image: {host}/examples/other:v1
    imagePullPolicy: Always
"#,
        host = registry.host
    );
    s.kubectl_stdin(&["apply", "-f", "-"], Some(&pods)).ok();
    s.wait_for(
        &["pod", "pulled"],
        "{.status.phase}",
        Duration::from_secs(60),
        |p| p == "Succeeded",
    );
    let out = s.kubectl(&["logs", "pulled"]).ok().stdout;
    assert!(out.contains("argv[4]: registry"), "{out}");
    let image_id = s.jsonpath(&["pod", "pulled"], "{.status.containerStatuses[0].imageID}");
    assert!(image_id.contains("@sha256:"), "{image_id}");

    // No credentials: ErrImagePull, then ImagePullBackOff while it waits to retry.
    s.wait_for(
        &["pod", "no-secret"],
        "{.status.containerStatuses[0].state.waiting.reason}",
        Duration::from_secs(60),
        |r| r == "ImagePullBackOff",
    );
    let events = s
        .kubectl(&[
            "get",
            "events",
            "--field-selector",
            "involvedObject.name=no-secret",
        ])
        .ok()
        .stdout;
    assert!(events.contains("Failed to pull image"), "{events}");
}
