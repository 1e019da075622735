//! Workloads end to end: the hello-http Deployment from manifests/ as a user applies it,
//! scaled, rolled out to a new image and back, across the server's node and an agent.

use std::time::Duration;

use crate::harness::{Agent, Server, eventually};
use crate::node::http_get;

const MINUTE: Duration = Duration::from_secs(60);

fn ready_ips(s: &Server) -> Vec<String> {
    let out = s.jsonpath(
        &["pods", "-l", "app=hello-http"],
        "{range .items[?(@.status.phase==\"Running\")]}{.status.podIP}{\" \"}{end}",
    );
    out.split_whitespace().map(str::to_string).collect()
}

#[test]
fn deployment_scales_rolls_out_and_back_across_nodes() {
    let s = Server::start();
    let agent = Agent::start(&s, "agent-w");
    for dir in [&s.dir, &agent.dir] {
        crate::harness::import_example(dir, "hello-http");
    }
    s.wait_for(
        &["node", "agent-w"],
        "{.status.conditions[?(@.type==\"Ready\")].status}",
        MINUTE,
        |v| v == "True",
    );
    s.apply_manifest("hello-http");
    s.kubectl(&[
        "rollout",
        "status",
        "deployment/hello-http",
        "--timeout=55s",
    ])
    .ok();
    let ips = ready_ips(&s);
    assert_eq!(ips.len(), 2, "{ips:?}");
    for ip in &ips {
        let (code, body) = eventually(Duration::from_secs(10), "a replica answers", || {
            http_get(ip, 8080, "/")
        });
        assert_eq!(code, 200, "{body}");
        assert!(body.contains("pod: hello-http-"), "{body}");
    }

    // Scale up: replicas spread over both nodes.
    s.kubectl(&["scale", "deployment/hello-http", "--replicas=4"])
        .ok();
    s.kubectl(&[
        "rollout",
        "status",
        "deployment/hello-http",
        "--timeout=55s",
    ])
    .ok();
    let nodes = s.jsonpath(
        &["pods", "-l", "app=hello-http"],
        "{.items[*].spec.nodeName}",
    );
    assert!(
        nodes.contains("agent-w") && nodes.contains(crate::harness::SERVER_NODE),
        "{nodes}"
    );

    // A rolling update to a new image, followed to the end, then undone.
    for dir in [&s.dir, &agent.dir] {
        let mut cmd = std::process::Command::new(crate::harness::BIN);
        cmd.args(["image", "import"])
            .arg(crate::harness::example("hello-http"))
            .args([
                "--name",
                "wasmkube.local/examples/hello-http:v2",
                "--data-dir",
            ])
            .arg(dir);
        crate::harness::run(cmd, None, MINUTE).ok();
    }
    s.kubectl(&[
        "set",
        "image",
        "deployment/hello-http",
        "hello-http=wasmkube.local/examples/hello-http:v2",
    ])
    .ok();
    s.kubectl(&[
        "rollout",
        "status",
        "deployment/hello-http",
        "--timeout=55s",
    ])
    .ok();
    let images = s.jsonpath(
        &["pods", "-l", "app=hello-http"],
        "{.items[*].spec.containers[0].image}",
    );
    assert!(!images.contains(":v1"), "{images}");
    s.kubectl(&["rollout", "undo", "deployment/hello-http"])
        .ok();
    s.kubectl(&[
        "rollout",
        "status",
        "deployment/hello-http",
        "--timeout=55s",
    ])
    .ok();
    assert_eq!(
        s.jsonpath(
            &["deployment", "hello-http"],
            "{.spec.template.spec.containers[0].image}"
        ),
        "wasmkube.local/examples/hello-http:v1"
    );
    s.kubectl(&["scale", "deployment/hello-http", "--replicas=1"])
        .ok();
    s.wait_for(
        &["deployment", "hello-http"],
        "{.status.replicas}",
        MINUTE,
        |v| v == "1",
    );
}

const MORE: &str = r#"
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: everywhere}
spec:
  selector: {matchLabels: {app: everywhere}}
  template:
    metadata: {labels: {app: everywhere}}
    spec:
      runtimeClassName: wasmtime
      containers:
      - name: web
        image: wasmkube.local/examples/hello-http:v1
        ports: [{containerPort: 8080}]
---
apiVersion: batch/v1
kind: Job
metadata: {name: hello-job}
spec:
  completions: 2
  parallelism: 1
  template:
    spec:
      runtimeClassName: wasmtime
      restartPolicy: Never
      containers:
      - name: hello
        image: wasmkube.local/examples/hello:v1
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: web}
spec:
  serviceName: web
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      runtimeClassName: wasmtime
      containers:
      - name: web
        image: wasmkube.local/examples/hello-http:v1
        ports: [{containerPort: 8080}]
        readinessProbe: {httpGet: {path: /healthz, port: 8080}, periodSeconds: 1}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: spin}
spec:
  replicas: 1
  selector: {matchLabels: {app: spin}}
  template:
    metadata: {labels: {app: spin}}
    spec:
      runtimeClassName: wasmtime
      nodeSelector: {kubernetes.io/hostname: server-node}
      containers:
      - name: spinner
        image: wasmkube.local/examples/spinner:v1
        resources: {requests: {cpu: 100m}, limits: {cpu: 200m}}
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: spin}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: spin}
  minReplicas: 1
  maxReplicas: 3
  metrics:
  - type: Resource
    resource: {name: cpu, target: {type: Utilization, averageUtilization: 50}}
"#;

#[test]
fn daemonsets_jobs_statefulsets_autoscaling_and_node_loss() {
    let s = Server::start_with(&[
        "--node-monitor-grace-period",
        "4",
        "--default-not-ready-toleration-seconds",
        "2",
        "--horizontal-pod-autoscaler-sync-period",
        "2",
    ]);
    let mut agent = Agent::start(&s, "agent-x");
    for ex in ["hello-http", "hello", "spinner"] {
        s.import_example(ex);
        agent.import_example(ex);
    }
    s.wait_for(
        &["node", "agent-x"],
        "{.status.conditions[?(@.type==\"Ready\")].status}",
        MINUTE,
        |v| v == "True",
    );
    s.kubectl_stdin(&["apply", "-f", "-"], Some(MORE)).ok();

    s.kubectl(&["rollout", "status", "daemonset/everywhere", "--timeout=55s"])
        .ok();
    let nodes = s.jsonpath(
        &["pods", "-l", "app=everywhere"],
        "{.items[*].spec.nodeName}",
    );
    assert!(
        nodes.contains("agent-x") && nodes.contains("server-node"),
        "{nodes}"
    );

    s.kubectl(&[
        "wait",
        "--for=condition=complete",
        "job/hello-job",
        "--timeout=55s",
    ])
    .ok();
    assert_eq!(
        s.jsonpath(&["job", "hello-job"], "{.status.succeeded}"),
        "2"
    );

    s.kubectl(&["rollout", "status", "statefulset/web", "--timeout=55s"])
        .ok();
    let t0 = s.jsonpath(&["pod", "web-0"], "{.metadata.creationTimestamp}");
    let t1 = s.jsonpath(&["pod", "web-1"], "{.metadata.creationTimestamp}");
    assert!(t0 <= t1, "web-0 ({t0}) before web-1 ({t1})");

    // The spinner uses twice its request: the autoscaler adds replicas.
    s.wait_for(
        &["deployment", "spin"],
        "{.spec.replicas}",
        Duration::from_secs(90),
        |v| v.parse::<u32>().unwrap_or(0) >= 2,
    );

    // The agent dies: its node goes Unknown, its pods are evicted and recreated elsewhere.
    let on_agent = s.jsonpath(
        &[
            "pods",
            "-l",
            "app=web",
            "--field-selector",
            "spec.nodeName=agent-x",
        ],
        "{.items[*].metadata.name}",
    );
    agent.kill9();
    s.wait_for(
        &["node", "agent-x"],
        "{.status.conditions[?(@.type==\"Ready\")].status}",
        MINUTE,
        |v| v == "Unknown",
    );
    for pod in on_agent.split_whitespace() {
        s.wait_for(
            &["pod", pod],
            "{.spec.nodeName}",
            Duration::from_secs(90),
            |n| n == "server-node",
        );
        s.wait_for(&["pod", pod], "{.status.phase}", MINUTE, |p| p == "Running");
    }
}
