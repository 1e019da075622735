//! Workloads end to end: the hello-http Deployment from manifests/ as a user applies it,
//! scaled, rolled out to a new image and back, across the server's node and an agent.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::harness::{Agent, Server, eventually, kubectl_path};
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
    // Watch every pod change through the rollout: the Deployment (4 replicas, the default
    // 25 % maxUnavailable → 1) must keep at least 3 pods Ready at every moment.
    let watch = ReadyWatch::start(&s, "app=hello-http");
    watch.wait_until(MINUTE, "the watch sees the 4 ready replicas", |w| {
        w.ready_now() == 4
    });
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
    // The watch catches up with the end of the rollout: 4 ready pods of the new image.
    watch.wait_until(MINUTE, "the watch sees the rollout end", |w| {
        w.ready_with_image(":v2") == 4
    });
    let seen = watch.stop();
    assert!(
        seen.min_ready >= 3,
        "only {} pods were ready at one point of the rollout (maxUnavailable 1 of 4):\n{}",
        seen.min_ready,
        seen.history.join("\n")
    );
    assert!(
        seen.new_pods_ready >= 4,
        "the watch saw {} new pods become ready",
        seen.new_pods_ready
    );
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

/// One pod as the watch last saw it.
#[derive(Debug, Clone, Default)]
struct PodView {
    ready: bool,
    terminating: bool,
    image: String,
}

/// What a [`ReadyWatch`] has seen.
#[derive(Debug, Default)]
struct ReadySeen {
    pods: BTreeMap<String, PodView>,
    /// The fewest pods Ready (and not terminating) after any event since the watch first saw
    /// a full set.
    min_ready: usize,
    armed: bool,
    /// Pods of a different image than the first ones that were seen Ready.
    new_pods_ready: usize,
    first_image: Option<String>,
    counted: std::collections::BTreeSet<String>,
    /// Every event with the ready count after it, for the failure report.
    history: Vec<String>,
}

impl ReadySeen {
    fn ready_now(&self) -> usize {
        self.pods
            .values()
            .filter(|p| p.ready && !p.terminating)
            .count()
    }

    fn ready_with_image(&self, suffix: &str) -> usize {
        self.pods
            .values()
            .filter(|p| p.ready && !p.terminating && p.image.ends_with(suffix))
            .count()
    }

    fn apply(&mut self, line: &str) {
        let f: Vec<&str> = line.split('|').collect();
        let &[kind, name, deleting, ready, image] = f.as_slice() else {
            return;
        };
        if kind == "DELETED" {
            self.pods.remove(name);
        } else {
            let view = PodView {
                ready: ready == "True",
                terminating: !deleting.is_empty(),
                image: image.to_string(),
            };
            if view.ready && !view.terminating {
                let first = self.first_image.get_or_insert_with(|| image.to_string());
                if first.as_str() != image && self.counted.insert(name.to_string()) {
                    self.new_pods_ready += 1;
                }
            }
            self.pods.insert(name.to_string(), view);
        }
        let now = self.ready_now();
        if now >= 4 {
            self.armed = true;
        }
        if self.armed {
            self.min_ready = self.min_ready.min(now);
        }
        self.history.push(format!("{line} → {now} ready"));
    }
}

/// A `kubectl get pods -w --output-watch-events` following every change of the selected
/// pods, so that a condition can be checked at every moment rather than at samples.
struct ReadyWatch {
    child: Child,
    seen: Arc<Mutex<ReadySeen>>,
}

impl ReadyWatch {
    fn start(s: &Server, selector: &str) -> ReadyWatch {
        let template = "jsonpath={.type}|{.object.metadata.name}|{.object.metadata.deletionTimestamp}|{.object.status.conditions[?(@.type==\"Ready\")].status}|{.object.spec.containers[0].image}{\"\\n\"}";
        let mut child = Command::new(kubectl_path())
            .arg("--kubeconfig")
            .arg(s.kubeconfig())
            .args(["get", "pods", "-l", selector, "-w", "--output-watch-events"])
            .args(["-o", template])
            .env("HOME", s.home.path())
            .env_remove("KUBECONFIG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn kubectl get -w");
        let stdout = child.stdout.take().expect("stdout");
        let seen = Arc::new(Mutex::new(ReadySeen {
            min_ready: usize::MAX,
            ..ReadySeen::default()
        }));
        let sink = seen.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Ok(mut s) = sink.lock() {
                    s.apply(line.trim());
                }
            }
        });
        ReadyWatch { child, seen }
    }

    fn wait_until(&self, timeout: Duration, what: &str, pred: impl Fn(&ReadySeen) -> bool) {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(s) = self.seen.lock()
                && pred(&s)
            {
                return;
            }
            if Instant::now() > deadline {
                let history = self
                    .seen
                    .lock()
                    .map(|s| s.history.join("\n"))
                    .unwrap_or_default();
                panic!("timed out after {timeout:?} waiting until {what}; events:\n{history}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn stop(mut self) -> ReadySeen {
        let _ = self.child.kill();
        let _ = self.child.wait();
        std::mem::take(&mut *self.seen.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl Drop for ReadyWatch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const EVERY_MINUTE: &str = r#"
apiVersion: batch/v1
kind: CronJob
metadata: {name: every-minute}
spec:
  schedule: "* * * * *"
  concurrencyPolicy: Forbid
  jobTemplate:
    spec:
      template:
        spec:
          runtimeClassName: wasmtime
          restartPolicy: Never
          containers:
          - name: hello
            image: wasmkube.local/examples/hello:v1
"#;

/// A CronJob on the real clock: its first Job starts at the next minute (so within 60 s)
/// and runs the command example to completion.
#[test]
fn cronjob_fires_every_minute_and_its_job_completes() {
    let s = Server::start();
    s.import_example("hello");
    s.kubectl_stdin(&["apply", "-f", "-"], Some(EVERY_MINUTE))
        .ok();
    let jobs = s.wait_for(
        &["jobs"],
        "{.items[*].metadata.name}",
        Duration::from_secs(75),
        |v| !v.is_empty(),
    );
    let job = jobs.split_whitespace().next().expect("a job").to_string();
    assert!(job.starts_with("every-minute-"), "{job}");
    assert_eq!(
        s.jsonpath(
            &["job", &job],
            "{.metadata.ownerReferences[0].kind}/{.metadata.ownerReferences[0].name}"
        ),
        "CronJob/every-minute"
    );
    s.kubectl(&[
        "wait",
        "--for=condition=complete",
        &format!("job/{job}"),
        "--timeout=55s",
    ])
    .ok();
    // The Job's generated selector finds its pod for kubectl.
    let logs = s.kubectl(&["logs", &format!("job/{job}")]).ok();
    assert!(
        logs.stdout.contains("Hello from WebAssembly on wasmkube!"),
        "{}",
        logs.stdout
    );
    let scheduled = s.jsonpath(&["cronjob", "every-minute"], "{.status.lastScheduleTime}");
    assert!(scheduled.ends_with(":00Z"), "{scheduled}");
    s.wait_for(
        &["cronjob", "every-minute"],
        "{.status.lastSuccessfulTime}",
        MINUTE,
        |v| !v.is_empty(),
    );
}
