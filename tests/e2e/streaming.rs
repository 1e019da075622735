//! `kubectl port-forward` and `kubectl exec` against a real server, with the real kubectl
//! (WebSockets: SPDY tunnelled for port-forward, `v5.channel.k8s.io` for exec) and curl.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::harness::{Server, kubectl_path, run};

const MINUTE: Duration = Duration::from_secs(60);

const WEB: &str = r#"
apiVersion: v1
kind: Pod
metadata: {name: web, labels: {app: web}}
spec:
  runtimeClassName: wasmtime
  terminationGracePeriodSeconds: 1
  containers:
  - name: web
    image: wasmkube.local/examples/hello-http:v1
    ports: [{name: http, containerPort: 8080}]
    env: [{name: POD_NAME, valueFrom: {fieldRef: {fieldPath: metadata.name}}}]
    readinessProbe: {httpGet: {path: /healthz, port: http}, periodSeconds: 1}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: http}]
"#;

fn start_web() -> Server {
    let s = Server::start();
    s.import_example("hello-http");
    s.kubectl_stdin(&["apply", "-f", "-"], Some(WEB)).ok();
    s.wait_for(
        &["pod", "web"],
        "{.status.conditions[?(@.type==\"Ready\")].status}",
        MINUTE,
        |v| v == "True",
    );
    s
}

/// A running `kubectl port-forward`, killed on drop.
struct PortForward {
    child: Child,
    port: u16,
    stderr: mpsc::Receiver<String>,
}

impl PortForward {
    fn start(s: &Server, target: &str, remote: &str) -> PortForward {
        let mut child = Command::new(kubectl_path())
            .arg("--kubeconfig")
            .arg(s.kubeconfig())
            .args(["port-forward", "--address", "127.0.0.1", target])
            .arg(format!(":{remote}"))
            .env("HOME", s.home.path())
            .env_remove("KUBECONFIG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn kubectl port-forward");
        let stdout = child.stdout.take().expect("stdout");
        let stderr = child.stderr.take().expect("stderr");
        let (port_tx, port_rx) = mpsc::channel();
        std::thread::spawn(move || {
            // "Forwarding from 127.0.0.1:41234 -> 8080"
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(rest) = line.strip_prefix("Forwarding from 127.0.0.1:")
                    && let Some(port) = rest.split_whitespace().next()
                    && let Ok(port) = port.parse::<u16>()
                {
                    let _ = port_tx.send(port);
                }
            }
        });
        let (err_tx, err_rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = err_tx.send(line);
            }
        });
        let port = match port_rx.recv_timeout(Duration::from_secs(30)) {
            Ok(port) => port,
            Err(_) => {
                let _ = child.kill();
                let errors: Vec<String> = err_rx.try_iter().collect();
                panic!(
                    "kubectl port-forward {target} did not start forwarding: {}\nserver log:\n{}",
                    errors.join("\n"),
                    s.log()
                );
            }
        };
        PortForward {
            child,
            port,
            stderr: err_rx,
        }
    }

    fn errors(&self) -> String {
        self.stderr.try_iter().collect::<Vec<_>>().join("\n")
    }
}

impl Drop for PortForward {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn curl(port: u16, path: &str) -> crate::harness::Out {
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "--max-time", "10"])
        .arg(format!("http://127.0.0.1:{port}{path}"));
    run(cmd, None, Duration::from_secs(20))
}

#[test]
fn port_forward_reaches_a_pod_and_a_service() {
    let s = start_web();
    let pf = PortForward::start(&s, "pod/web", "8080");
    for i in 0..3 {
        // A fresh connection (and stream pair) each time.
        let out = curl(pf.port, &format!("/through-the-tunnel?n={i}")).ok();
        assert!(
            out.stdout.contains("Hello from wasmkube!"),
            "{}",
            out.stdout
        );
        assert!(out.stdout.contains("pod: web"), "{}", out.stdout);
        assert!(
            out.stdout.contains(&format!("query: n={i}")),
            "{}",
            out.stdout
        );
    }
    drop(pf);

    // svc/NAME: kubectl picks a pod of the Service and maps port 80 to its targetPort.
    let pf = PortForward::start(&s, "svc/web", "80");
    let out = curl(pf.port, "/via-service").ok();
    assert!(out.stdout.contains("path: /via-service"), "{}", out.stdout);
    assert!(out.stdout.contains("pod: web"), "{}", out.stdout);
    drop(pf);

    // Nothing listens on 9999 in the pod: the connection fails, and kubectl says why.
    let pf = PortForward::start(&s, "pod/web", "9999");
    let out = curl(pf.port, "/");
    assert_ne!(out.code, Some(0), "nothing should answer: {}", out.stdout);
    let errors = crate::harness::eventually(Duration::from_secs(10), "kubectl's error", || {
        let e = pf.errors();
        e.contains("error forwarding port 9999").then_some(e)
    });
    assert!(errors.contains("refused"), "{errors}");
}

#[test]
fn exec_runs_commands_in_a_wasm_container() {
    let s = start_web();
    // Output on both streams and the command's own exit code.
    let out = s.kubectl(&[
        "exec",
        "web",
        "--",
        "hello-http",
        "exit",
        "3",
        "hello",
        "from",
        "exec",
    ]);
    assert_eq!(out.code, Some(3), "{} / {}", out.stdout, out.stderr);
    assert_eq!(out.stdout, "hello from exec\n");
    assert!(
        out.stderr.contains("hello-http: exiting with code 3"),
        "{}",
        out.stderr
    );
    let out = s
        .kubectl(&[
            "exec",
            "web",
            "-c",
            "web",
            "--",
            "hello-http",
            "exit",
            "0",
            "fine",
        ])
        .ok();
    assert_eq!(out.stdout, "fine\n");

    // stdin reaches the command (it answers with the body it read).
    let out = s
        .kubectl_stdin(
            &["exec", "-i", "web", "--", "hello-http"],
            Some("ping over stdin"),
        )
        .ok();
    assert!(
        out.stdout.contains("body: ping over stdin"),
        "{}",
        out.stdout
    );

    // Kubernetes' refusal for a container the pod does not have.
    let out = s
        .kubectl(&["exec", "web", "-c", "nope", "--", "hello-http"])
        .fails();
    assert!(
        out.stderr
            .contains("container nope is not valid for pod web"),
        "{}",
        out.stderr
    );
}
