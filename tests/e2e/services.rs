//! Services, Ingress and cluster DNS end to end: hello-http pods behind ClusterIP, NodePort
//! and LoadBalancer Services and an Ingress, reached with the real curl; the cluster DNS
//! queried with the real dig. Each cluster has node addresses 127.1.K.N and its DNS on
//! 127.1.K.53 (see the harness).

use std::collections::BTreeSet;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use crate::harness::{Server, eventually, find_in_path, run};

const WAIT: Duration = Duration::from_secs(60);

fn curl(args: &[&str]) -> crate::harness::Out {
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "--max-time", "5", "--noproxy", "*"])
        .args(args);
    run(cmd, None, Duration::from_secs(10))
}

/// The pod named in a hello-http reply (its `pod: NAME` line).
fn pod_of(body: &str) -> Option<String> {
    body.lines()
        .find_map(|l| l.strip_prefix("pod: "))
        .map(str::to_string)
}

fn get_pod(url: &str) -> Option<String> {
    let out = curl(&[url]);
    if out.code != Some(0) {
        return None;
    }
    pod_of(&out.stdout)
}

fn dig(server: &Server, args: &[&str]) -> String {
    let dig = find_in_path("dig")
        .unwrap_or_else(|| panic!("dig not found: run scripts/install-test-deps.sh (dnsutils)"));
    let mut cmd = Command::new(dig);
    cmd.arg(format!("@{}", server.cluster_dns()))
        .args(["+time=2", "+tries=2"])
        .args(args);
    run(cmd, None, Duration::from_secs(15)).stdout
}

fn sorted_lines(s: &str) -> Vec<String> {
    let mut v: Vec<String> = s
        .lines()
        .map(str::to_string)
        .filter(|l| !l.is_empty())
        .collect();
    v.sort();
    v
}

/// Waits until `n` pods matching `selector` are ready.
fn wait_ready(s: &Server, selector: &str, n: usize) {
    s.wait_for(
        &["pods", "-l", selector],
        "{range .items[*]}{.status.conditions[?(@.type==\"Ready\")].status}{\"\\n\"}{end}",
        WAIT,
        |v| v.lines().filter(|l| *l == "True").count() == n && v.lines().count() == n,
    );
}

fn apply(s: &Server, yaml: &str) {
    s.kubectl_stdin(&["apply", "-f", "-"], Some(yaml)).ok();
}

/// Polls requests to `url` until `n` in a row name pods satisfying `pred`, returning them.
fn rotation(url: &str, n: usize, what: &str, pred: impl Fn(&[String]) -> bool) -> Vec<String> {
    eventually(WAIT, what, || {
        let pods: Vec<String> = (0..n).filter_map(|_| get_pod(url)).collect();
        (pods.len() == n && pred(&pods)).then_some(pods)
    })
}

#[test]
fn cluster_ip_node_port_load_balancer_and_dns() {
    let s = Server::start();
    s.import_example("hello-http");
    s.apply_manifest("hello-http");
    s.kubectl(&["scale", "deployment", "hello-http", "--replicas", "3"])
        .ok();
    apply(
        &s,
        r#"
apiVersion: v1
kind: Service
metadata: {name: hello-np}
spec:
  type: NodePort
  selector: {app: hello-http}
  ports: [{name: http, port: 80, targetPort: http}]
---
apiVersion: v1
kind: Service
metadata: {name: hello-lb}
spec:
  type: LoadBalancer
  selector: {app: hello-http}
  ports: [{name: http, port: 8081, targetPort: http}]
---
apiVersion: v1
kind: Service
metadata: {name: hello-headless}
spec:
  clusterIP: None
  selector: {app: hello-http}
  ports: [{name: http, port: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: ext}
spec:
  type: ExternalName
  externalName: db.example.org
"#,
    );
    wait_ready(&s, "app=hello-http", 3);
    let cluster_ip = s.wait_for(&["svc", "hello-http"], "{.spec.clusterIP}", WAIT, |v| {
        v.parse::<std::net::Ipv4Addr>().is_ok()
    });

    // Through the ClusterIP the three replicas answer in turn.
    let url = format!("http://{cluster_ip}/");
    let pods = rotation(&url, 6, "three replicas in turn", |p| {
        let first: BTreeSet<&String> = p[..3].iter().collect();
        first.len() == 3 && p[..3] == p[3..]
    });
    let expected: BTreeSet<String> = s
        .jsonpath(
            &["pods", "-l", "app=hello-http"],
            "{.items[*].metadata.name}",
        )
        .split_whitespace()
        .map(str::to_string)
        .collect();
    assert_eq!(pods.into_iter().collect::<BTreeSet<_>>(), expected);

    // A NodePort on the node address.
    let node_port = s.wait_for(
        &["svc", "hello-np"],
        "{.spec.ports[0].nodePort}",
        WAIT,
        |v| v.parse::<u16>().is_ok_and(|p| (30000..=32767).contains(&p)),
    );
    let np_url = format!("http://{}:{node_port}/", s.node_ip());
    eventually(WAIT, "the NodePort answering", || get_pod(&np_url));

    // A LoadBalancer: its status names the node, which answers on the Service port.
    let lb_ip = s.wait_for(
        &["svc", "hello-lb"],
        "{.status.loadBalancer.ingress[0].ip}",
        WAIT,
        |v| !v.is_empty(),
    );
    assert_eq!(lb_ip, s.node_ip());
    let lb_url = format!("http://{lb_ip}:8081/");
    eventually(WAIT, "the LoadBalancer answering", || get_pod(&lb_url));

    // DNS: A, SRV, headless, CNAME, NXDOMAIN and nothing outside the cluster domain.
    let a = eventually(WAIT, "the A record", || {
        let out = dig(&s, &["+short", "hello-http.default.svc.cluster.local"]);
        (!out.trim().is_empty()).then_some(out)
    });
    assert_eq!(a.trim(), cluster_ip);
    let tcp = dig(
        &s,
        &["+tcp", "+short", "hello-http.default.svc.cluster.local"],
    );
    assert_eq!(tcp.trim(), cluster_ip);
    let srv = dig(
        &s,
        &[
            "+short",
            "SRV",
            "_http._tcp.hello-http.default.svc.cluster.local",
        ],
    );
    assert_eq!(srv.trim(), "0 100 80 hello-http.default.svc.cluster.local.");
    let pod_ips = sorted_lines(&s.jsonpath(
        &["pods", "-l", "app=hello-http"],
        "{range .items[*]}{.status.podIP}{\"\\n\"}{end}",
    ));
    let headless = eventually(WAIT, "the headless A records", || {
        let v = sorted_lines(&dig(
            &s,
            &["+short", "hello-headless.default.svc.cluster.local"],
        ));
        (v.len() == 3).then_some(v)
    });
    assert_eq!(headless, pod_ips);
    let cname = dig(&s, &["+short", "ext.default.svc.cluster.local"]);
    assert_eq!(cname.trim(), "db.example.org.");
    let nx = dig(&s, &["nope.default.svc.cluster.local"]);
    assert!(nx.contains("status: NXDOMAIN"), "{nx}");
    let outside = dig(&s, &["example.com"]);
    assert!(outside.contains("status: REFUSED"), "{outside}");

    // A Wasm guest calls the Service by its short name: its outgoing wasi:http request
    // resolves through the cluster DNS with the pod's search path and reaches a replica
    // through the ClusterIP. A host the pod's annotation does not allow is refused.
    s.import_example("hello-http-component");
    apply(
        &s,
        r#"
apiVersion: v1
kind: Pod
metadata:
  name: caller
  annotations: {wasmkube.io/allowed-outbound-hosts: "hello-http,hello-http.default.svc.cluster.local"}
spec:
  containers:
  - name: web
    image: wasmkube.local/examples/hello-http-component:v1
    ports: [{name: http, containerPort: 8080}]
    readinessProbe: {httpGet: {path: /healthz, port: http}, periodSeconds: 1}
"#,
    );
    let caller_ip = s.wait_for(&["pod", "caller"], "{.status.podIP}", WAIT, |v| {
        v.parse::<std::net::Ipv4Addr>().is_ok()
    });
    s.kubectl(&[
        "wait",
        "--for=condition=Ready",
        "pod/caller",
        "--timeout=60s",
    ])
    .ok();
    let mut called = BTreeSet::new();
    for _ in 0..6 {
        let out = curl(&[&format!("http://{caller_ip}:8080/fetch/hello-http/")]).ok();
        assert!(out.stdout.starts_with("upstream 200\n"), "{}", out.stdout);
        called.insert(pod_of(&out.stdout).expect("a pod line from hello-http"));
    }
    assert_eq!(called, expected, "the guest's calls go round the replicas");
    let fqdn = curl(&[&format!(
        "http://{caller_ip}:8080/fetch/hello-http.default.svc.cluster.local/"
    )])
    .ok();
    assert!(fqdn.stdout.starts_with("upstream 200\n"), "{}", fqdn.stdout);
    let denied = curl(&[
        "-w",
        "\n%{http_code}",
        &format!("http://{caller_ip}:8080/fetch/hello-np/"),
    ])
    .ok();
    assert!(denied.stdout.ends_with("\n502"), "{}", denied.stdout);
}

/// A readiness endpoint the test controls: `/NAME` answers 200 unless NAME is failing.
struct ReadinessServer {
    port: u16,
    failing: Arc<std::sync::Mutex<BTreeSet<String>>>,
    stop: Arc<AtomicBool>,
}

impl ReadinessServer {
    fn start(ip: &str) -> ReadinessServer {
        let listener = std::net::TcpListener::bind((ip, 0)).expect("bind readiness server");
        let port = listener.local_addr().expect("addr").port();
        listener.set_nonblocking(true).expect("nonblocking");
        let failing: Arc<std::sync::Mutex<BTreeSet<String>>> = Default::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (f, st) = (failing.clone(), stop.clone());
        std::thread::spawn(move || {
            use std::io::{Read, Write};
            while !st.load(Ordering::Relaxed) {
                let Ok((mut conn, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                };
                let _ = conn.set_nonblocking(false);
                let _ = conn.set_read_timeout(Some(Duration::from_secs(2)));
                let mut buf = [0u8; 2048];
                let n = conn.read(&mut buf).unwrap_or(0);
                let req = String::from_utf8_lossy(&buf[..n]);
                let path = req
                    .split_whitespace()
                    .nth(1)
                    .unwrap_or("/")
                    .trim_start_matches('/');
                let bad = f.lock().map(|f| f.contains(path)).unwrap_or(false);
                let status = if bad {
                    "503 Service Unavailable"
                } else {
                    "200 OK"
                };
                let _ = conn.write_all(
                    format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                        .as_bytes(),
                );
            }
        });
        ReadinessServer {
            port,
            failing,
            stop,
        }
    }

    fn set_failing(&self, name: &str, failing: bool) {
        if let Ok(mut f) = self.failing.lock() {
            if failing {
                f.insert(name.to_string());
            } else {
                f.remove(name);
            }
        }
    }
}

impl Drop for ReadinessServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

#[test]
fn readiness_rotation_and_session_affinity() {
    let s = Server::start();
    s.import_example("hello-http");
    let probe_ip = format!("127.1.{}.200", s.node_k);
    let ready = ReadinessServer::start(&probe_ip);
    let mut yaml = String::new();
    for name in ["rot-a", "rot-b", "rot-c"] {
        yaml.push_str(&format!(
            r#"
apiVersion: v1
kind: Pod
metadata: {{name: {name}, labels: {{app: rot}}}}
spec:
  runtimeClassName: wasmtime
  containers:
    - name: web
      image: wasmkube.local/examples/hello-http:v1
      imagePullPolicy: IfNotPresent
      ports: [{{name: http, containerPort: 8080}}]
      env: [{{name: POD_NAME, valueFrom: {{fieldRef: {{fieldPath: metadata.name}}}}}}]
      readinessProbe:
        httpGet: {{host: "{probe_ip}", port: {port}, path: /{name}}}
        periodSeconds: 1
        failureThreshold: 1
---
"#,
            port = ready.port
        ));
    }
    yaml.push_str(
        r#"
apiVersion: v1
kind: Service
metadata: {name: rot}
spec:
  selector: {app: rot}
  ports: [{name: http, port: 80, targetPort: http}]
---
apiVersion: v1
kind: Service
metadata: {name: sticky}
spec:
  selector: {app: rot}
  sessionAffinity: ClientIP
  sessionAffinityConfig: {clientIP: {timeoutSeconds: 600}}
  ports: [{name: http, port: 80, targetPort: http}]
"#,
    );
    apply(&s, &yaml);
    wait_ready(&s, "app=rot", 3);
    let ip = s.wait_for(&["svc", "rot"], "{.spec.clusterIP}", WAIT, |v| {
        !v.is_empty()
    });
    let url = format!("http://{ip}/");
    let all = |p: &[String]| p.iter().collect::<BTreeSet<_>>().len() == 3;
    rotation(&url, 3, "all three pods in rotation", all);

    // rot-b fails readiness: it drops out of the rotation.
    ready.set_failing("rot-b", true);
    rotation(&url, 9, "rot-b out of rotation", |p| {
        p.iter().all(|n| n != "rot-b") && p.iter().collect::<BTreeSet<_>>().len() == 2
    });
    // ... and comes back when it passes again.
    ready.set_failing("rot-b", false);
    rotation(&url, 3, "rot-b back in rotation", all);

    // ClientIP affinity pins this client to one pod.
    let sticky_ip = s.wait_for(&["svc", "sticky"], "{.spec.clusterIP}", WAIT, |v| {
        !v.is_empty()
    });
    let sticky = format!("http://{sticky_ip}/");
    let first = eventually(WAIT, "the sticky Service answering", || get_pod(&sticky));
    for _ in 0..10 {
        assert_eq!(get_pod(&sticky).as_deref(), Some(first.as_str()));
    }
}

#[test]
fn ingress_routes_hosts_and_paths_with_tls() {
    let s = Server::start();
    s.import_example("hello-http");
    let dir = tempfile::tempdir().expect("tempdir");
    let (crt, key) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
    let mut openssl = Command::new("openssl");
    openssl
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        ])
        .args([
            "-subj",
            "/CN=a.example",
            "-addext",
            "subjectAltName=DNS:a.example",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&crt);
    run(openssl, None, Duration::from_secs(30)).ok();
    s.kubectl(&[
        "create",
        "secret",
        "tls",
        "a-tls",
        "--cert",
        crt.to_str().expect("utf-8"),
        "--key",
        key.to_str().expect("utf-8"),
    ])
    .ok();
    let mut yaml = String::new();
    for app in ["web-a", "web-b"] {
        yaml.push_str(&format!(
            r#"
apiVersion: apps/v1
kind: Deployment
metadata: {{name: {app}}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: {app}}}}}
  template:
    metadata: {{labels: {{app: {app}}}}}
    spec:
      runtimeClassName: wasmtime
      containers:
        - name: web
          image: wasmkube.local/examples/hello-http:v1
          imagePullPolicy: IfNotPresent
          ports: [{{name: http, containerPort: 8080}}]
          env: [{{name: POD_NAME, valueFrom: {{fieldRef: {{fieldPath: metadata.name}}}}}}]
          readinessProbe: {{httpGet: {{path: /healthz, port: http}}, periodSeconds: 1}}
---
apiVersion: v1
kind: Service
metadata: {{name: {app}}}
spec:
  selector: {{app: {app}}}
  ports: [{{name: http, port: 80, targetPort: http}}]
---
"#
        ));
    }
    yaml.push_str(
        r#"
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: shop}
spec:
  tls: [{hosts: [a.example], secretName: a-tls}]
  rules:
    - host: a.example
      http:
        paths:
          - {path: /one, pathType: Prefix, backend: {service: {name: web-a, port: {number: 80}}}}
          - {path: /two, pathType: Exact, backend: {service: {name: web-b, port: {name: http}}}}
    - host: b.example
      http:
        paths:
          - {path: /, pathType: ImplementationSpecific, backend: {service: {name: web-b, port: {number: 80}}}}
"#,
    );
    apply(&s, &yaml);
    wait_ready(&s, "app in (web-a,web-b)", 2);

    // The built-in IngressClass is there and the default.
    let class = s.jsonpath(
        &["ingressclass", "wasmkube"],
        "{.metadata.annotations.ingressclass\\.kubernetes\\.io/is-default-class}",
    );
    assert_eq!(class, "true");
    let lb = s.wait_for(
        &["ingress", "shop"],
        "{.status.loadBalancer.ingress[0].ip}",
        WAIT,
        |v| !v.is_empty(),
    );
    assert_eq!(lb, s.node_ip());

    let node = s.node_ip();
    let via = |host: &str, port: u16, scheme: &str, path: &str| -> crate::harness::Out {
        let resolve = format!("{host}:{port}:{node}");
        let url = format!("{scheme}://{host}:{port}{path}");
        curl(&[
            "--cacert",
            crt.to_str().expect("utf-8"),
            "--resolve",
            &resolve,
            "-w",
            "\nstatus=%{http_code}",
            &url,
        ])
    };
    let pod_via = |host: &str, port: u16, scheme: &str, path: &str| -> Option<String> {
        let out = via(host, port, scheme, path);
        (out.code == Some(0) && out.stdout.contains("status=200"))
            .then(|| pod_of(&out.stdout))
            .flatten()
    };
    let a = eventually(WAIT, "a.example/one through the Ingress", || {
        pod_via("a.example", 80, "http", "/one/x")
    });
    assert!(a.starts_with("web-a-"), "{a}");
    let b = eventually(WAIT, "a.example/two", || {
        pod_via("a.example", 80, "http", "/two")
    });
    assert!(b.starts_with("web-b-"), "{b}");
    let b2 = pod_via("b.example", 80, "http", "/anything").expect("b.example");
    assert!(b2.starts_with("web-b-"), "{b2}");
    // Exact: /two/x is not /two; no rule and no default backend: 404.
    assert!(
        via("a.example", 80, "http", "/two/x")
            .stdout
            .contains("status=404")
    );
    assert!(
        via("c.example", 80, "http", "/one")
            .stdout
            .contains("status=404")
    );

    // HTTPS with the Secret's certificate, chosen by SNI and verified by curl.
    let tls = eventually(WAIT, "a.example over HTTPS", || {
        pod_via("a.example", 443, "https", "/one")
    });
    assert!(tls.starts_with("web-a-"), "{tls}");
    // b.example has no certificate: the default one does not verify.
    assert_ne!(via("b.example", 443, "https", "/").code, Some(0));
}

#[test]
fn rolling_update_behind_a_service_fails_no_request() {
    let s = Server::start();
    s.import_example("hello-http");
    apply(
        &s,
        r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: roll}
spec:
  replicas: 3
  selector: {matchLabels: {app: roll}}
  strategy: {type: RollingUpdate, rollingUpdate: {maxUnavailable: 0, maxSurge: 1}}
  template:
    metadata: {labels: {app: roll}}
    spec:
      runtimeClassName: wasmtime
      terminationGracePeriodSeconds: 10
      containers:
        - name: web
          image: wasmkube.local/examples/hello-http:v1
          imagePullPolicy: IfNotPresent
          ports: [{name: http, containerPort: 8080}]
          env:
            - {name: VERSION, value: v1}
            - {name: POD_NAME, valueFrom: {fieldRef: {fieldPath: metadata.name}}}
          readinessProbe: {httpGet: {path: /healthz, port: http}, periodSeconds: 1}
          # Keep serving while Services stop sending here (Kubernetes' usual recipe).
          lifecycle: {preStop: {sleep: {seconds: 2}}}
---
apiVersion: v1
kind: Service
metadata: {name: roll}
spec:
  selector: {app: roll}
  ports: [{name: http, port: 80, targetPort: http}]
"#,
    );
    wait_ready(&s, "app=roll", 3);
    let ip = s.wait_for(&["svc", "roll"], "{.spec.clusterIP}", WAIT, |v| {
        !v.is_empty()
    });
    let url = format!("http://{ip}/");
    let before: BTreeSet<String> = s
        .jsonpath(&["pods", "-l", "app=roll"], "{.items[*].metadata.name}")
        .split_whitespace()
        .map(str::to_string)
        .collect();
    rotation(&url, 3, "the Service answering", |_| true);

    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (
        Arc::new(AtomicUsize::new(0)),
        Arc::new(std::sync::Mutex::new(Vec::new())),
    );
    let client = {
        let (stop, ok, failed, url) = (stop.clone(), ok.clone(), failed.clone(), url.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let out = curl(&["-w", "\nstatus=%{http_code}", &url]);
                if out.code == Some(0) && out.stdout.contains("status=200") {
                    ok.fetch_add(1, Ordering::Relaxed);
                } else if let Ok(mut f) = failed.lock() {
                    f.push(format!(
                        "code {:?}: {} {}",
                        out.code, out.stdout, out.stderr
                    ));
                }
            }
        })
    };
    s.kubectl(&["set", "env", "deployment/roll", "VERSION=v2"])
        .ok();
    s.kubectl(&["rollout", "status", "deployment/roll", "--timeout", "120s"])
        .ok();
    // Until the old pods are gone for good, and a little past.
    s.wait_for(
        &["pods", "-l", "app=roll"],
        "{.items[*].metadata.name}",
        WAIT,
        |v| v.split_whitespace().count() == 3 && v.split_whitespace().all(|n| !before.contains(n)),
    );
    std::thread::sleep(Duration::from_secs(1));
    stop.store(true, Ordering::Relaxed);
    client.join().expect("client thread");
    let failed = failed.lock().map(|f| f.clone()).unwrap_or_default();
    assert!(
        failed.is_empty(),
        "{} requests failed during the rollout:\n{}",
        failed.len(),
        failed.join("\n")
    );
    assert!(
        ok.load(Ordering::Relaxed) > 10,
        "too few requests went through"
    );
    // The new pods serve.
    let after = rotation(&url, 3, "the new pods answering", |_| true);
    assert!(after.iter().all(|p| !before.contains(p)), "{after:?}");
}
