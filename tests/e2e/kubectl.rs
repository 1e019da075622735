//! The real kubectl against a real `wasmkube server`.

use std::time::Duration;

use crate::harness::{Server, eventually};

const APP: &str = r#"
apiVersion: v1
kind: ConfigMap
metadata:
  name: web-config
data:
  greeting: hello
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels:
    app: web
spec:
  replicas: 2
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
      - name: web
        image: hello-http:v1
        ports:
        - containerPort: 8080
        env:
        - name: A
          value: "1"
        - name: B
          value: "2"
---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector:
    app: web
  ports:
  - port: 80
    targetPort: 8080
"#;

fn write(dir: &std::path::Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write manifest");
    p.to_string_lossy().into_owned()
}

#[test]
fn apply_get_patch_scale_label_delete() {
    let s = Server::start();
    let tmp = tempfile::tempdir().expect("tmp");
    let f = write(tmp.path(), "app.yaml", APP);

    let out = s.kubectl(&["apply", "-f", &f]).ok();
    assert!(
        out.stdout.contains("configmap/web-config created"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("deployment.apps/web created"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("service/web created"), "{}", out.stdout);

    // Re-applying the same manifests changes nothing.
    let out = s.kubectl(&["apply", "-f", &f]).ok();
    assert!(
        out.stdout.contains("deployment.apps/web unchanged"),
        "{}",
        out.stdout
    );

    let yaml = s
        .kubectl(&["get", "deployment", "web", "-o", "yaml"])
        .ok()
        .stdout;
    assert!(yaml.contains("replicas: 2"), "{yaml}");
    assert!(yaml.contains("kubectl.kubernetes.io/last-applied-configuration"));
    assert!(yaml.contains("uid:"));
    assert!(yaml.contains("generation: 1"));

    // A change to the manifest: one env var removed, the image changed.
    let changed = APP
        .replace("image: hello-http:v1", "image: hello-http:v2")
        .replace("        - name: B\n          value: \"2\"\n", "");
    let f2 = write(tmp.path(), "app2.yaml", &changed);
    let out = s.kubectl(&["apply", "-f", &f2]).ok();
    assert!(
        out.stdout.contains("deployment.apps/web configured"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("configmap/web-config unchanged"),
        "{}",
        out.stdout
    );
    let json = s
        .kubectl(&["get", "deploy", "web", "-o", "json"])
        .ok()
        .stdout;
    let d: serde_json::Value = serde_json::from_str(&json).expect("json");
    let c = &d["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(c["image"], "hello-http:v2");
    assert_eq!(
        c["env"].as_array().map(Vec::len),
        Some(1),
        "env B removed: {c}"
    );
    assert_eq!(d["metadata"]["generation"], 2);

    // Patches of each kind.
    s.kubectl(&["patch", "deployment", "web", "-p", r#"{"spec":{"template":{"spec":{"containers":[{"name":"web","env":[{"name":"C","value":"3"}]}]}}}}"#]).ok();
    let env = s
        .kubectl(&[
            "get",
            "deploy",
            "web",
            "-o",
            "jsonpath={.spec.template.spec.containers[0].env[*].name}",
        ])
        .ok()
        .stdout;
    assert_eq!(
        env.split_whitespace().collect::<Vec<_>>(),
        vec!["C", "A"],
        "strategic merge by name"
    );
    s.kubectl(&[
        "patch",
        "configmap",
        "web-config",
        "--type",
        "merge",
        "-p",
        r#"{"data":{"extra":"x"}}"#,
    ])
    .ok();
    s.kubectl(&[
        "patch",
        "configmap",
        "web-config",
        "--type",
        "json",
        "-p",
        r#"[{"op":"remove","path":"/data/greeting"}]"#,
    ])
    .ok();
    let data = s
        .kubectl(&["get", "cm", "web-config", "-o", "jsonpath={.data}"])
        .ok()
        .stdout;
    assert_eq!(data.trim(), r#"{"extra":"x"}"#);

    // Scale through the scale subresource.
    let out = s
        .kubectl(&["scale", "deployment", "web", "--replicas", "5"])
        .ok();
    assert!(
        out.stdout.contains("deployment.apps/web scaled"),
        "{}",
        out.stdout
    );
    let replicas = s
        .kubectl(&["get", "deploy", "web", "-o", "jsonpath={.spec.replicas}"])
        .ok()
        .stdout;
    assert_eq!(replicas.trim(), "5");

    // Labels, and selecting by them.
    s.kubectl(&["label", "service", "web", "tier=frontend"])
        .ok();
    let names = s
        .kubectl(&[
            "get",
            "svc",
            "-l",
            "tier in (frontend,backend)",
            "-o",
            "name",
        ])
        .ok()
        .stdout;
    assert_eq!(names.trim(), "service/web");
    let none = s
        .kubectl(&["get", "svc", "-l", "tier!=frontend", "-o", "name"])
        .ok()
        .stdout;
    assert!(!none.contains("service/web"));

    // Default table output has kubectl's columns.
    let table = s.kubectl(&["get", "deployments"]).ok().stdout;
    let header = table.lines().next().unwrap_or("");
    for col in ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"] {
        assert!(header.contains(col), "{table}");
    }

    let out = s.kubectl(&["delete", "-f", &f2]).ok();
    assert!(
        out.stdout.contains("deployment.apps \"web\" deleted"),
        "{}",
        out.stdout
    );
    let out = s.kubectl(&["get", "deploy", "web"]).fails();
    assert!(out.stderr.contains("NotFound"), "{}", out.stderr);
}

#[test]
fn get_watch_sees_events() {
    let s = Server::start();
    let mut cmd = std::process::Command::new(crate::harness::kubectl_path());
    cmd.arg("--kubeconfig")
        .arg(s.kubeconfig())
        .args(["get", "configmaps", "-w", "-o", "name"])
        .env("HOME", s.home.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null());
    let mut child = cmd.spawn().expect("kubectl get -w");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    // Give the watch a moment to start, then make changes it must see.
    std::thread::sleep(Duration::from_millis(1500));
    s.kubectl(&["create", "configmap", "watched", "--from-literal=a=b"])
        .ok();
    let line = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("watch event");
    assert_eq!(line.trim(), "configmap/watched");
    s.kubectl(&["delete", "configmap", "watched"]).ok();
    let line = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("second watch event");
    assert_eq!(line.trim(), "configmap/watched");
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn errors_are_status_objects_naming_the_field() {
    let s = Server::start();
    let tmp = tempfile::tempdir().expect("tmp");
    let bad = write(
        tmp.path(),
        "bad.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: Bad_Name\nspec:\n  containers:\n  - name: c\n",
    );
    let out = s.kubectl(&["apply", "-f", &bad]).fails();
    assert!(out.stderr.contains("is invalid"), "{}", out.stderr);
    assert!(out.stderr.contains("metadata.name"), "{}", out.stderr);
    assert!(
        out.stderr.contains("spec.containers[0].image"),
        "{}",
        out.stderr
    );

    // Unknown fields are refused by kubectl's default strict validation, naming the field.
    let unknown = write(
        tmp.path(),
        "unknown.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\ndatta:\n  a: b\n",
    );
    let out = s.kubectl(&["apply", "-f", &unknown]).fails();
    assert!(out.stderr.contains("datta"), "{}", out.stderr);

    // A namespace that does not exist.
    let out = s
        .kubectl(&["-n", "nope", "create", "configmap", "x"])
        .fails();
    assert!(
        out.stderr.contains("namespaces \"nope\" not found"),
        "{}",
        out.stderr
    );

    // Nothing was stored by the failed requests.
    let out = s.kubectl(&["get", "pods,configmaps", "-o", "name"]).ok();
    assert!(
        !out.stdout.contains("Bad_Name") && !out.stdout.contains("configmap/x"),
        "{}",
        out.stdout
    );

    // A bad token is refused.
    let out = s
        .kubectl(&["--token", "not-the-token", "get", "pods"])
        .fails();
    assert!(
        out.stderr.contains("Unauthorized") || out.stderr.contains("logged in"),
        "{}",
        out.stderr
    );
}

#[test]
fn restart_keeps_everything_and_namespaces_exist() {
    let mut s = Server::start();
    let ns = s.kubectl(&["get", "namespaces", "-o", "name"]).ok().stdout;
    for n in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        assert!(ns.contains(&format!("namespace/{n}")), "{ns}");
    }
    let rc = s
        .kubectl(&[
            "get",
            "runtimeclass",
            "wasmtime",
            "-o",
            "jsonpath={.handler}",
        ])
        .ok()
        .stdout;
    assert_eq!(rc, "wasmtime");
    s.kubectl(&["create", "namespace", "team-a"]).ok();
    s.kubectl(&[
        "-n",
        "team-a",
        "create",
        "configmap",
        "kept",
        "--from-literal=k=v",
    ])
    .ok();
    let port = s.port();
    assert!(s.stop().is_some_and(|st| st.success()), "clean shutdown");
    s.launch(port);
    let v = s
        .kubectl(&[
            "-n",
            "team-a",
            "get",
            "configmap",
            "kept",
            "-o",
            "jsonpath={.data.k}",
        ])
        .ok()
        .stdout;
    assert_eq!(v, "v");
    // Namespace deletion removes what is inside, then the namespace.
    s.kubectl(&["delete", "namespace", "team-a", "--timeout=60s"])
        .ok();
    eventually(Duration::from_secs(30), "namespace gone", || {
        let out = s.kubectl(&["get", "namespace", "team-a"]);
        (out.code != Some(0)).then_some(())
    });
}

#[test]
fn insecure_mode_is_loopback_only_and_loud() {
    // Refused on a non-loopback address before anything binds.
    let tmp = tempfile::tempdir().expect("tmp");
    let mut cmd = std::process::Command::new(crate::harness::BIN);
    cmd.args([
        "server",
        "--insecure",
        "--bind-address",
        "0.0.0.0",
        "--https-listen-port",
        "0",
        "--data-dir",
    ])
    .arg(tmp.path());
    let out = crate::harness::run(cmd, None, Duration::from_secs(20));
    assert_ne!(out.code, Some(0));
    assert!(
        out.stderr.contains("only allowed on a loopback address"),
        "{}",
        out.stderr
    );
    assert!(
        !tmp.path().join("state.redb").exists(),
        "nothing was created"
    );

    // On loopback it serves plain HTTP without authentication, and says so.
    let s = Server::start_with(&["--insecure"]);
    assert!(s.url.starts_with("http://"), "{}", s.url);
    assert!(s.log().contains("WITHOUT AUTHENTICATION"), "{}", s.log());
    let out = s.kubectl(&["get", "namespaces", "-o", "name"]).ok();
    assert!(out.stdout.contains("namespace/default"), "{}", out.stdout);
}

#[test]
fn write_kubeconfig_and_given_token() {
    let tmp = tempfile::tempdir().expect("tmp");
    let extra = tmp.path().join("extra/kubeconfig");
    let token = "my-own-admin-token-1234567890";
    let s = Server::start_with(&[
        "--write-kubeconfig",
        &extra.to_string_lossy(),
        "--token",
        token,
    ]);
    assert_eq!(s.token(), token);
    let text = std::fs::read_to_string(&extra).expect("extra kubeconfig written");
    assert!(text.contains(token));
    let mut cmd = std::process::Command::new(crate::harness::kubectl_path());
    cmd.arg("--kubeconfig")
        .arg(&extra)
        .args(["get", "ns", "default", "-o", "name"])
        .env("HOME", s.home.path());
    let out = crate::harness::run(cmd, None, Duration::from_secs(30)).ok();
    assert_eq!(out.stdout.trim(), "namespace/default");
}

#[test]
fn service_account_tokens_and_rbac() {
    let s = Server::start();
    // Every namespace gets its `default` account, new ones too.
    s.kubectl(&["create", "namespace", "team"]).ok();
    for ns in ["default", "team"] {
        eventually(
            Duration::from_secs(20),
            "the default ServiceAccount",
            || {
                s.kubectl(&["get", "serviceaccount", "default", "-n", ns])
                    .code
                    .filter(|c| *c == 0)
            },
        );
    }
    s.kubectl(&["create", "serviceaccount", "viewer"]).ok();
    let token = s
        .kubectl(&["create", "token", "viewer", "--duration", "15m"])
        .ok()
        .stdout
        .trim()
        .to_string();
    assert_eq!(token.split('.').count(), 3, "a JWT: {token}");
    let as_viewer = |args: &[&str]| {
        let mut all = vec!["--token", token.as_str()];
        all.extend_from_slice(args);
        s.kubectl(&all)
    };
    let refused = as_viewer(&["get", "pods"]).fails();
    assert!(
        refused.stderr.contains(
            "Error from server (Forbidden): pods is forbidden: User \"system:serviceaccount:default:viewer\" cannot list resource \"pods\" in API group \"\" in the namespace \"default\""
        ),
        "{}",
        refused.stderr
    );
    s.kubectl(&[
        "create",
        "rolebinding",
        "viewer-view",
        "--clusterrole=view",
        "--serviceaccount=default:viewer",
    ])
    .ok();
    s.kubectl(&["create", "configmap", "c1", "--from-literal=a=b"])
        .ok();
    let listed = as_viewer(&["get", "configmaps", "-o", "name"]).ok();
    assert!(listed.stdout.contains("configmap/c1"), "{}", listed.stdout);
    let refused = as_viewer(&["delete", "configmap", "c1"]).fails();
    assert!(refused.stderr.contains("Forbidden"), "{}", refused.stderr);
    as_viewer(&["get", "secrets"]).fails();
    as_viewer(&["get", "pods", "-n", "team"]).fails();
    // Still there: the refused delete changed nothing.
    s.kubectl(&["get", "configmap", "c1"]).ok();
    // Deleting the account revokes the token.
    s.kubectl(&["delete", "serviceaccount", "viewer"]).ok();
    let gone = as_viewer(&["get", "configmaps"]).fails();
    assert!(gone.stderr.contains("Unauthorized"), "{}", gone.stderr);
}
