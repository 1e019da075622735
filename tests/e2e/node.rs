//! The Wasm node end to end: every example as a pod, logs, env and volumes, restarts and
//! back-off, probes, limits, pod IPs, agents, a killed-and-restarted node agent, and a
//! PersistentVolumeClaim provisioned on its pod's node that outlives the pod.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::harness::{Agent, SERVER_NODE, Server, eventually};

const MINUTE: Duration = Duration::from_secs(60);

/// A plain HTTP/1.0 GET; None if nothing answers.
pub fn http_get(ip: &str, port: u16, path: &str) -> Option<(u16, String)> {
    let addr = format!("{ip}:{port}").parse().ok()?;
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {ip}\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    let code = out.split_whitespace().nth(1)?.parse().ok()?;
    let body = out.split_once("\r\n\r\n").map(|(_, b)| b.to_string())?;
    Some((code, body))
}

fn pod_phase(s: &Server, pod: &str) -> String {
    s.jsonpath(&["pod", pod], "{.status.phase}")
}

fn wait_phase(s: &Server, pod: &str, phase: &str) {
    s.wait_for(&["pod", pod], "{.status.phase}", MINUTE, |p| p == phase);
}

fn logs(s: &Server, args: &[&str]) -> String {
    let mut a = vec!["logs"];
    a.extend_from_slice(args);
    s.kubectl(&a).ok().stdout
}

#[test]
fn command_examples_run_to_their_end_with_logs_env_and_volumes() {
    let s = Server::start();
    for ex in ["hello", "hello-component", "echo", "crasher", "memhog"] {
        s.import_example(ex);
    }
    for m in ["hello", "hello-component", "echo", "crasher", "memhog"] {
        s.apply_manifest(m);
    }

    wait_phase(&s, "hello", "Succeeded");
    let out = logs(&s, &["hello"]);
    assert!(out.contains("Hello from WebAssembly on wasmkube!"), "{out}");
    assert!(out.contains("argv[3]: Pod"), "{out}");
    assert_eq!(
        s.jsonpath(
            &["pod", "hello"],
            "{.status.containerStatuses[0].state.terminated.reason}"
        ),
        "Completed"
    );
    assert_eq!(
        s.jsonpath(&["pod", "hello"], "{.spec.nodeName}"),
        SERVER_NODE
    );

    wait_phase(&s, "hello-component", "Succeeded");
    let out = logs(&s, &["hello-component"]);
    assert!(out.contains("component"), "{out}");

    // echo prints its args, env (literal, ConfigMap, downward API) and mounted files.
    wait_phase(&s, "echo", "Succeeded");
    let out = logs(&s, &["echo"]);
    let pod_ip = s.jsonpath(&["pod", "echo"], "{.status.podIP}");
    assert!(pod_ip.starts_with("127."), "pod IP {pod_ip}");
    for want in [
        "argv[2]=second argument".to_string(),
        "PLAIN=a literal value".to_string(),
        "GREETING=Hello from a ConfigMap".to_string(),
        "POD_NAME=echo".to_string(),
        format!("POD_IP={pod_ip}"),
        format!("NODE_NAME={SERVER_NODE}"),
        "\"color\": \"blue\"".to_string(),
    ] {
        assert!(out.contains(&want), "echo output lacks {want:?}:\n{out}");
    }
    // Nothing of the host is visible: only what volumes grant.
    assert!(!out.contains("/etc"), "{out}");

    // A non-zero exit is the container's exit code; a trap is an error.
    wait_phase(&s, "crasher", "Failed");
    assert_eq!(
        s.jsonpath(
            &["pod", "crasher"],
            "{.status.containerStatuses[0].state.terminated.exitCode}"
        ),
        "3"
    );
    assert_eq!(
        s.jsonpath(
            &["pod", "crasher"],
            "{.status.containerStatuses[0].state.terminated.reason}"
        ),
        "Error"
    );
    let out = logs(&s, &["crasher"]);
    assert!(out.contains("this line goes to stderr"), "{out}");
    wait_phase(&s, "crasher-trap", "Failed");

    // Growing past the memory limit is an OOM kill.
    wait_phase(&s, "memhog", "Failed");
    assert_eq!(
        s.jsonpath(
            &["pod", "memhog"],
            "{.status.containerStatuses[0].state.terminated.reason}"
        ),
        "OOMKilled"
    );
    assert_eq!(
        s.jsonpath(
            &["pod", "memhog"],
            "{.status.containerStatuses[0].state.terminated.exitCode}"
        ),
        "137"
    );

    // The node itself: labels, capacity, runtime handlers, a Lease.
    let node = SERVER_NODE;
    assert_eq!(
        s.jsonpath(
            &["node", node],
            "{.metadata.labels.kubernetes\\.io/hostname}"
        ),
        node
    );
    assert_eq!(
        s.jsonpath(&["node", node], "{.status.runtimeHandlers[*].name}"),
        "wasmtime"
    );
    assert!(
        !s.jsonpath(&["node", node], "{.status.allocatable.memory}")
            .is_empty()
    );
    assert_eq!(
        s.jsonpath(
            &["node", node],
            "{.status.conditions[?(@.type==\"Ready\")].status}"
        ),
        "True"
    );
    assert_eq!(
        s.jsonpath(
            &["lease", node, "-n", "kube-node-lease"],
            "{.spec.holderIdentity}"
        ),
        node
    );
}

const HTTP_PODS: &str = r#"
apiVersion: v1
kind: Pod
metadata: {name: web-a, labels: {app: web}}
spec:
  runtimeClassName: wasmtime
  terminationGracePeriodSeconds: 5
  containers:
  - name: web
    image: wasmkube.local/examples/hello-http:v1
    ports: [{name: http, containerPort: 8080}]
    env: [{name: POD_NAME, valueFrom: {fieldRef: {fieldPath: metadata.name}}}]
    readinessProbe: {httpGet: {path: /healthz, port: http}, periodSeconds: 1}
---
apiVersion: v1
kind: Pod
metadata: {name: web-b, labels: {app: web}}
spec:
  runtimeClassName: wasmtime
  terminationGracePeriodSeconds: 5
  containers:
  - name: web
    image: wasmkube.local/examples/hello-http:v1
    ports: [{name: http, containerPort: 8080}]
    env: [{name: POD_NAME, valueFrom: {fieldRef: {fieldPath: metadata.name}}}]
    readinessProbe: {tcpSocket: {port: 8080}, periodSeconds: 1}
---
apiVersion: v1
kind: Pod
metadata: {name: web-component}
spec:
  runtimeClassName: wasmtime
  containers:
  - name: web
    image: wasmkube.local/examples/hello-http-component:v1
    ports: [{name: http, containerPort: 8080}]
---
apiVersion: v1
kind: Pod
metadata: {name: never-ready}
spec:
  runtimeClassName: wasmtime
  containers:
  - name: web
    image: wasmkube.local/examples/hello-http:v1
    ports: [{containerPort: 8080}]
    readinessProbe: {httpGet: {path: /missing, port: 8080}, periodSeconds: 1}
---
apiVersion: v1
kind: Pod
metadata: {name: exec-ready}
spec:
  runtimeClassName: wasmtime
  containers:
  - name: web
    image: wasmkube.local/examples/hello-http:v1
    ports: [{containerPort: 8080}]
    readinessProbe: {exec: {command: [hello-http, probe]}, periodSeconds: 1}
---
apiVersion: v1
kind: Pod
metadata: {name: not-alive}
spec:
  runtimeClassName: wasmtime
  containers:
  - name: web
    image: wasmkube.local/examples/hello-http:v1
    ports: [{containerPort: 8080}]
    livenessProbe: {httpGet: {path: /missing, port: 8080}, periodSeconds: 1, failureThreshold: 2}
"#;

#[test]
fn http_pods_serve_on_their_own_ip_and_probes_drive_ready_and_restarts() {
    let s = Server::start();
    s.import_example("hello-http");
    s.import_example("hello-http-component");
    s.kubectl_stdin(&["apply", "-f", "-"], Some(HTTP_PODS)).ok();
    for pod in ["web-a", "web-b"] {
        s.wait_for(
            &["pod", pod],
            "{.status.conditions[?(@.type==\"Ready\")].status}",
            MINUTE,
            |v| v == "True",
        );
    }
    let ip_a = s.jsonpath(&["pod", "web-a"], "{.status.podIP}");
    let ip_b = s.jsonpath(&["pod", "web-b"], "{.status.podIP}");
    assert_ne!(ip_a, ip_b, "each pod has its own IP");
    // Both replicas listen on containerPort 8080, each on its own address.
    for (ip, pod) in [(&ip_a, "web-a"), (&ip_b, "web-b")] {
        let (code, body) = http_get(ip, 8080, "/hello?x=1").expect("the pod answers");
        assert_eq!(code, 200, "{body}");
        assert!(body.contains(&format!("pod: {pod}")), "{body}");
        assert!(body.contains("query: x=1"), "{body}");
    }
    assert_eq!(http_get(&ip_a, 8080, "/missing").map(|r| r.0), Some(404));

    wait_phase(&s, "web-component", "Running");
    let ip_c = s.jsonpath(&["pod", "web-component"], "{.status.podIP}");
    let (code, body) = eventually(Duration::from_secs(10), "the component answers", || {
        http_get(&ip_c, 8080, "/")
    });
    assert_eq!(code, 200, "{body}");

    // An exec probe runs a command in the container (a fresh instance of its module).
    s.wait_for(
        &["pod", "exec-ready"],
        "{.status.conditions[?(@.type==\"Ready\")].status}",
        MINUTE,
        |v| v == "True",
    );

    // Readiness: running but never ready while the probe fails.
    wait_phase(&s, "never-ready", "Running");
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        s.jsonpath(
            &["pod", "never-ready"],
            "{.status.conditions[?(@.type==\"Ready\")].status}"
        ),
        "False"
    );
    assert_eq!(
        s.jsonpath(
            &["pod", "never-ready"],
            "{.status.containerStatuses[0].ready}"
        ),
        "false"
    );

    // Liveness: a failing probe restarts the container.
    s.wait_for(
        &["pod", "not-alive"],
        "{.status.containerStatuses[0].restartCount}",
        MINUTE,
        |v| v.parse::<u32>().unwrap_or(0) >= 1,
    );
    let events = s
        .kubectl(&[
            "get",
            "events",
            "--field-selector",
            "involvedObject.name=not-alive",
        ])
        .ok()
        .stdout;
    assert!(events.contains("Unhealthy"), "{events}");
    assert!(events.contains("failed liveness probe"), "{events}");

    // Deleting a pod stops it within its grace period and frees its address.
    let started = Instant::now();
    s.kubectl(&["delete", "pod", "web-a", "--wait=true", "--timeout=30s"])
        .ok();
    assert!(started.elapsed() < Duration::from_secs(20));
    eventually(Duration::from_secs(10), "web-a stops listening", || {
        http_get(&ip_a, 8080, "/").is_none().then_some(())
    });
    assert!(http_get(&ip_b, 8080, "/").is_some(), "web-b is untouched");
}

const CRASH_LOOP: &str = r#"
apiVersion: v1
kind: Pod
metadata: {name: crashloop}
spec:
  runtimeClassName: wasmtime
  restartPolicy: Always
  containers:
  - name: crasher
    image: wasmkube.local/examples/crasher:v1
    env: [{name: EXIT_CODE, value: "3"}]
---
apiVersion: v1
kind: Pod
metadata: {name: onfailure-ok}
spec:
  runtimeClassName: wasmtime
  restartPolicy: OnFailure
  containers:
  - name: hello
    image: wasmkube.local/examples/hello:v1
---
apiVersion: v1
kind: Pod
metadata: {name: counter}
spec:
  runtimeClassName: wasmtime
  containers:
  - name: counter
    image: wasmkube.local/examples/counter:v1
    env: [{name: INTERVAL, value: "1"}]
    volumeMounts: [{name: data, mountPath: /data}]
  volumes: [{name: data, emptyDir: {}}]
---
apiVersion: v1
kind: Pod
metadata: {name: missing-image}
spec:
  runtimeClassName: wasmtime
  containers:
  - name: c
    image: wasmkube.local/examples/does-not-exist:v1
    imagePullPolicy: Never
"#;

#[test]
fn restarts_back_off_and_logs_follow() {
    let s = Server::start();
    for ex in ["crasher", "hello", "counter"] {
        s.import_example(ex);
    }
    s.kubectl_stdin(&["apply", "-f", "-"], Some(CRASH_LOOP))
        .ok();

    // The first restart is immediate, the next waits 10 s: CrashLoopBackOff in between.
    s.wait_for(
        &["pod", "crashloop"],
        "{.status.containerStatuses[0].state.waiting.reason}",
        MINUTE,
        |r| r == "CrashLoopBackOff",
    );
    assert_eq!(
        s.jsonpath(
            &["pod", "crashloop"],
            "{.status.containerStatuses[0].lastState.terminated.exitCode}"
        ),
        "3"
    );
    let message = s.jsonpath(
        &["pod", "crashloop"],
        "{.status.containerStatuses[0].state.waiting.message}",
    );
    assert!(
        message.starts_with("back-off 10s restarting failed container=crasher"),
        "{message}"
    );
    s.wait_for(
        &["pod", "crashloop"],
        "{.status.containerStatuses[0].restartCount}",
        Duration::from_secs(40),
        |v| v.parse::<u32>().unwrap_or(0) >= 2,
    );
    assert_eq!(pod_phase(&s, "crashloop"), "Running");
    let previous = logs(&s, &["crashloop", "--previous"]);
    assert!(previous.contains("exiting with code 3"), "{previous}");
    let events = s
        .kubectl(&[
            "get",
            "events",
            "--field-selector",
            "involvedObject.name=crashloop",
        ])
        .ok()
        .stdout;
    assert!(events.contains("BackOff"), "{events}");

    // OnFailure does not restart a success.
    wait_phase(&s, "onfailure-ok", "Succeeded");
    assert_eq!(
        s.jsonpath(
            &["pod", "onfailure-ok"],
            "{.status.containerStatuses[0].restartCount}"
        ),
        "0"
    );

    // Following a running container's log streams new lines as they come.
    wait_phase(&s, "counter", "Running");
    let mut cmd = std::process::Command::new(crate::harness::kubectl_path());
    cmd.arg("--kubeconfig")
        .arg(s.kubeconfig())
        .args(["logs", "-f", "counter", "--timestamps"]);
    let out = crate::harness::run(cmd, None, Duration::from_secs(4));
    let counts = out.stdout.lines().filter(|l| l.contains("count: ")).count();
    assert!(
        counts >= 2,
        "logs -f streamed {counts} lines:\n{}",
        out.stdout
    );
    assert!(out.stdout.starts_with("20"), "timestamps: {}", out.stdout);
    let tail = logs(&s, &["counter", "--tail=1"]);
    assert_eq!(tail.lines().count(), 1, "{tail}");

    // An image that is not there with pullPolicy Never.
    s.wait_for(
        &["pod", "missing-image"],
        "{.status.containerStatuses[0].state.waiting.reason}",
        MINUTE,
        |r| r == "ErrImageNeverPull",
    );
    let err = s.kubectl(&["logs", "missing-image"]).fails().stderr;
    assert!(err.contains("is waiting to start"), "{err}");
}

const SPINNERS: &str = r#"
apiVersion: v1
kind: Pod
metadata: {name: spin-limited}
spec:
  runtimeClassName: wasmtime
  containers:
  - name: spinner
    image: wasmkube.local/examples/spinner:v1
    env: [{name: REPORT, value: "20000000"}]
    resources: {limits: {cpu: 100m}}
---
apiVersion: v1
kind: Pod
metadata: {name: spin-free}
spec:
  runtimeClassName: wasmtime
  containers:
  - name: spinner
    image: wasmkube.local/examples/spinner:v1
    env: [{name: REPORT, value: "20000000"}]
"#;

/// The last `rate=` a spinner logged.
fn spin_rate(s: &Server, pod: &str) -> Option<f64> {
    logs(s, &[pod])
        .lines()
        .rev()
        .find_map(|l| l.split("rate=").nth(1))
        .and_then(|r| r.trim_end_matches("/s").trim().parse().ok())
}

#[test]
fn a_cpu_limit_contains_a_spinning_guest() {
    let s = Server::start();
    s.import_example("spinner");
    s.kubectl_stdin(&["apply", "-f", "-"], Some(SPINNERS)).ok();
    wait_phase(&s, "spin-limited", "Running");
    wait_phase(&s, "spin-free", "Running");
    let (limited, free) = eventually(MINUTE, "both spinners report a rate", || {
        Some((spin_rate(&s, "spin-limited")?, spin_rate(&s, "spin-free")?))
    });
    // 100m is a tenth of a core: allow a wide margin for a busy CI machine.
    assert!(
        limited < free * 0.4,
        "limited spinner ran at {limited}/s, unlimited at {free}/s"
    );
    // metrics.k8s.io from the kubelets: `kubectl top` sees the limit hold.
    let millicores = eventually(MINUTE, "kubectl top pods reports the spinners", || {
        let out = s.kubectl(&["top", "pod", "spin-limited", "--no-headers"]);
        let cpu = out
            .stdout
            .split_whitespace()
            .nth(1)?
            .strip_suffix('m')?
            .parse::<u64>()
            .ok()?;
        (cpu > 0).then_some(cpu)
    });
    assert!(
        millicores <= 150,
        "spin-limited uses {millicores}m with a 100m limit"
    );
    let nodes = s.kubectl(&["top", "nodes"]).ok().stdout;
    assert!(nodes.contains(crate::harness::SERVER_NODE), "{nodes}");

    // The node still answers promptly while a guest spins.
    let t = Instant::now();
    s.kubectl(&["get", "pods"]).ok();
    assert!(t.elapsed() < Duration::from_secs(10));
}

const PINNED: &str = r#"
apiVersion: v1
kind: Pod
metadata: {name: on-a}
spec:
  runtimeClassName: wasmtime
  nodeSelector: {kubernetes.io/hostname: agent-a}
  containers:
  - name: web
    image: wasmkube.local/examples/hello-http:v1
    ports: [{containerPort: 8080}]
    env: [{name: POD_NAME, valueFrom: {fieldRef: {fieldPath: metadata.name}}}]
---
apiVersion: v1
kind: Pod
metadata: {name: on-b}
spec:
  runtimeClassName: wasmtime
  nodeName: agent-b
  restartPolicy: Never
  containers:
  - name: hello
    image: wasmkube.local/examples/hello:v1
    args: ["on", "b"]
"#;

#[test]
fn agents_join_and_run_the_pods_bound_to_them_and_survive_a_kubelet_kill() {
    let s = Server::start();
    let mut a = Agent::start(&s, "agent-a");
    let b = Agent::start(&s, "agent-b");
    a.import_example("hello-http");
    b.import_example("hello");
    for n in ["agent-a", "agent-b"] {
        s.wait_for(
            &["node", n],
            "{.status.conditions[?(@.type==\"Ready\")].status}",
            MINUTE,
            |v| v == "True",
        );
    }
    let cidr_a = s.jsonpath(&["node", "agent-a"], "{.spec.podCIDR}");
    let cidr_b = s.jsonpath(&["node", "agent-b"], "{.spec.podCIDR}");
    assert_ne!(cidr_a, cidr_b);

    s.kubectl_stdin(&["apply", "-f", "-"], Some(PINNED)).ok();
    wait_phase(&s, "on-a", "Running");
    assert_eq!(s.jsonpath(&["pod", "on-a"], "{.spec.nodeName}"), "agent-a");
    wait_phase(&s, "on-b", "Succeeded");
    // Logs come from agent-b through the API server.
    assert!(logs(&s, &["on-b"]).contains("argv[2]: b"));

    let ip = s.jsonpath(&["pod", "on-a"], "{.status.podIP}");
    let prefix = cidr_a.split(".0.0/").next().unwrap_or_default().to_string();
    assert!(ip.starts_with(&prefix), "{ip} in {cidr_a}");
    let (code, body) = eventually(Duration::from_secs(10), "on-a answers", || {
        http_get(&ip, 8080, "/")
    });
    assert_eq!(code, 200);
    assert!(body.contains("pod: on-a"), "{body}");

    // Kill agent-a outright: its guest dies with it.
    a.kill9();
    assert!(http_get(&ip, 8080, "/").is_none());
    // While it is down, a pod bound to it is deleted (it stays, terminating, until the node
    // confirms).
    s.kubectl_stdin(
        &["apply", "-f", "-"],
        Some(
            "apiVersion: v1\nkind: Pod\nmetadata: {name: doomed}\nspec:\n  nodeName: agent-a\n  runtimeClassName: wasmtime\n  containers: [{name: c, image: wasmkube.local/examples/hello-http:v1}]\n",
        ),
    )
    .ok();
    s.kubectl(&["delete", "pod", "doomed", "--wait=false"]).ok();

    // The restarted kubelet restarts what ran (same IP, one more restart) and finishes the
    // deletion it missed; nothing is left behind.
    a.launch();
    s.wait_for(
        &["pod", "on-a"],
        "{.status.containerStatuses[0].restartCount}",
        MINUTE,
        |v| v == "1",
    );
    wait_phase(&s, "on-a", "Running");
    assert_eq!(s.jsonpath(&["pod", "on-a"], "{.status.podIP}"), ip);
    let (code, _) = eventually(Duration::from_secs(10), "on-a answers again", || {
        http_get(&ip, 8080, "/")
    });
    assert_eq!(code, 200);
    eventually(Duration::from_secs(30), "doomed is deleted", || {
        let out = s.kubectl(&["get", "pod", "doomed"]);
        (out.code != Some(0)).then_some(())
    });
    let dirs: Vec<String> = std::fs::read_dir(a.dir.join("pods"))
        .expect("pods dir")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .collect();
    assert!(dirs.iter().all(|d| !d.contains("doomed")), "{dirs:?}");
    assert_eq!(dirs.len(), 1, "{dirs:?}");
}

/// A claim, and a Wasm counter pod on it; `{extra}` goes into the pod spec.
fn counter_on_claim(pod: &str, extra: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: {pod}}}\nspec:\n{extra}  runtimeClassName: wasmtime\n  containers:\n  - name: counter\n    image: wasmkube.local/examples/counter:v1\n    env: [{{name: INTERVAL, value: \"1\"}}]\n    volumeMounts: [{{name: data, mountPath: /data}}]\n  volumes:\n  - name: data\n    persistentVolumeClaim: {{claimName: counts}}\n"
    )
}

const COUNTS_CLAIM: &str = "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: counts}\nspec:\n  accessModes: [ReadWriteOnce]\n  resources: {requests: {storage: 1Mi}}\n";

/// The first `count: N` a counter pod printed after starting.
fn first_count(s: &Server, pod: &str) -> u64 {
    eventually(MINUTE, "a count in the logs", || {
        logs(s, &[pod])
            .lines()
            .find_map(|l| l.strip_prefix("count: ")?.trim().parse().ok())
    })
}

#[test]
fn a_wasm_pods_claim_is_provisioned_on_its_node_and_outlives_the_pod() {
    let s = Server::start();
    let agent = Agent::start(&s, "agent-store");
    s.import_example("counter");
    agent.import_example("counter");
    s.wait_for(
        &["node", "agent-store"],
        "{.status.conditions[?(@.type==\"Ready\")].status}",
        MINUTE,
        |v| v == "True",
    );
    s.kubectl_stdin(&["apply", "-f", "-"], Some(COUNTS_CLAIM))
        .ok();
    // No pod yet: the default class waits for one.
    s.wait_for(
        &["pvc", "counts"],
        "{.spec.storageClassName} {.status.phase}",
        MINUTE,
        |v| v == "local-path Pending",
    );

    // The first pod goes to the agent: the volume is made there.
    let pinned = counter_on_claim(
        "first",
        "  nodeSelector: {kubernetes.io/hostname: agent-store}\n",
    );
    s.kubectl_stdin(&["apply", "-f", "-"], Some(&pinned)).ok();
    wait_phase(&s, "first", "Running");
    assert_eq!(s.jsonpath(&["pvc", "counts"], "{.status.phase}"), "Bound");
    let pv = s.jsonpath(&["pvc", "counts"], "{.spec.volumeName}");
    let uid = s.jsonpath(&["pvc", "counts"], "{.metadata.uid}");
    assert_eq!(pv, format!("pvc-{uid}"));
    assert_eq!(
        s.jsonpath(
            &["pv", &pv],
            "{.spec.nodeAffinity.required.nodeSelectorTerms[0].matchExpressions[0].values[0]}"
        ),
        "agent-store"
    );
    let path = s.jsonpath(&["pv", &pv], "{.spec.local.path}");
    assert!(
        path.starts_with(&agent.dir.join("storage").display().to_string()),
        "{path} is not under the agent's data dir"
    );
    eventually(MINUTE, "three counts", || {
        logs(&s, &["first"]).contains("count: 3").then_some(())
    });
    s.kubectl(&["delete", "pod", "first", "--timeout=60s"]).ok();
    let kept: u64 = std::fs::read_to_string(std::path::Path::new(&path).join("count"))
        .expect("the count is on the node")
        .trim()
        .parse()
        .expect("a number");
    assert!(kept >= 3, "count {kept}");

    // The claim's data is on agent-store: a pod pinned elsewhere cannot use it...
    let elsewhere = counter_on_claim(
        "elsewhere",
        &format!("  nodeSelector: {{kubernetes.io/hostname: {SERVER_NODE}}}\n"),
    );
    s.kubectl_stdin(&["apply", "-f", "-"], Some(&elsewhere))
        .ok();
    s.wait_for(
        &["pod", "elsewhere"],
        "{.status.conditions[?(@.type==\"PodScheduled\")].message}",
        MINUTE,
        |m| m.contains("1 node(s) had volume node affinity conflict"),
    );
    s.kubectl(&["delete", "pod", "elsewhere", "--timeout=60s"])
        .ok();
    // ...and an unpinned one goes where the data is, and counts on from it.
    s.kubectl_stdin(&["apply", "-f", "-"], Some(&counter_on_claim("second", "")))
        .ok();
    wait_phase(&s, "second", "Running");
    assert_eq!(
        s.jsonpath(&["pod", "second"], "{.spec.nodeName}"),
        "agent-store"
    );
    let resumed = first_count(&s, "second");
    assert!(resumed > kept, "second pod counted {resumed} after {kept}");

    // Deleting the claim while the pod runs waits for the pod (pvc-protection); then the
    // volume and its directory go (reclaim policy Delete).
    s.kubectl(&["delete", "pvc", "counts", "--wait=false"]).ok();
    std::thread::sleep(Duration::from_secs(1));
    assert!(
        !s.jsonpath(&["pvc", "counts"], "{.metadata.deletionTimestamp}")
            .is_empty()
    );
    assert!(std::path::Path::new(&path).join("count").exists());
    s.kubectl(&["delete", "pod", "second", "--timeout=60s"])
        .ok();
    eventually(MINUTE, "the volume and its directory gone", || {
        let gone = s.kubectl(&["get", "pv", &pv]).code != Some(0);
        (gone && !std::path::Path::new(&path).exists()).then_some(())
    });
}
