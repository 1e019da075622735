//! wasmkube's own CLI against a real server, through the same kubeconfig kubectl uses.

use crate::harness::Server;

const MANIFESTS: &str = r#"
apiVersion: v1
kind: ConfigMap
metadata:
  name: cli-config
data:
  k: v
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: cli-web
spec:
  replicas: 1
  selector:
    matchLabels: {app: cli-web}
  template:
    metadata:
      labels: {app: cli-web}
    spec:
      containers:
      - name: web
        image: hello-http:v1
"#;

#[test]
fn apply_get_describe_delete() {
    let s = Server::start();
    let tmp = tempfile::tempdir().expect("tmp");
    let f = tmp.path().join("m.yaml");
    std::fs::write(&f, MANIFESTS).expect("write");
    let f = f.to_string_lossy().into_owned();

    let out = s.wasmkube(&["version"]).ok();
    assert!(
        out.stdout.contains("Server Version: v1.37.0"),
        "{}",
        out.stdout
    );

    let out = s.wasmkube(&["create", "namespace", "cli-ns"]).ok();
    assert!(
        out.stdout.contains("namespace/cli-ns created"),
        "{}",
        out.stdout
    );

    let out = s.wasmkube(&["apply", "-f", &f]).ok();
    assert!(
        out.stdout.contains("configmap/cli-config created"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("deployment.apps/cli-web created"),
        "{}",
        out.stdout
    );
    let out = s.wasmkube(&["apply", "-f", &f]).ok();
    assert!(
        out.stdout.contains("deployment.apps/cli-web unchanged"),
        "{}",
        out.stdout
    );
    let changed = tmp.path().join("m2.yaml");
    std::fs::write(&changed, MANIFESTS.replace("replicas: 1", "replicas: 3")).expect("write");
    let out = s
        .wasmkube(&["apply", "-f", &changed.to_string_lossy()])
        .ok();
    assert!(
        out.stdout.contains("deployment.apps/cli-web configured"),
        "{}",
        out.stdout
    );
    // From stdin too.
    let out = crate::harness::run(
        {
            let mut c = std::process::Command::new(crate::harness::BIN);
            c.args(["apply", "-f", "-", "-n", "cli-ns"])
                .env("KUBECONFIG", s.kubeconfig())
                .env("HOME", s.home.path());
            c
        },
        Some(MANIFESTS),
        std::time::Duration::from_secs(30),
    )
    .ok();
    assert!(
        out.stdout.contains("configmap/cli-config created"),
        "{}",
        out.stdout
    );

    // The same table kubectl shows.
    let out = s.wasmkube(&["get", "deployments"]).ok();
    let header = out.stdout.lines().next().unwrap_or("");
    assert!(
        header.starts_with("NAME") && header.contains("READY") && header.contains("UP-TO-DATE"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("cli-web"), "{}", out.stdout);
    let out = s.wasmkube(&["get", "cm", "-A"]).ok();
    assert!(
        out.stdout
            .lines()
            .next()
            .unwrap_or("")
            .starts_with("NAMESPACE"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("cli-ns"), "{}", out.stdout);
    let out = s.wasmkube(&["get", "deploy", "cli-web", "-o", "yaml"]).ok();
    assert!(out.stdout.contains("replicas: 3"), "{}", out.stdout);
    let out = s.wasmkube(&["get", "deploy", "cli-web", "-o", "json"]).ok();
    let v: serde_json::Value = serde_json::from_str(&out.stdout).expect("json");
    assert_eq!(v["spec"]["replicas"], 3);
    let out = s
        .wasmkube(&["get", "configmaps", "-o", "name", "-l", "nope=1"])
        .ok();
    assert!(out.stdout.trim().is_empty());
    let out = s.wasmkube(&["get", "ns", "-o", "wide"]).ok();
    assert!(out.stdout.contains("cli-ns"));

    let out = s.wasmkube(&["describe", "deployment", "cli-web"]).ok();
    assert!(
        out.stdout.contains("Name:") && out.stdout.contains("cli-web"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("Events:"), "{}", out.stdout);

    let out = s.wasmkube(&["delete", "-f", &f]).ok();
    assert!(
        out.stdout.contains("deployment.apps \"cli-web\" deleted"),
        "{}",
        out.stdout
    );
    let out = s.wasmkube(&["get", "deployment", "cli-web"]).fails();
    assert!(out.stderr.contains("NotFound"), "{}", out.stderr);
    let out = s.wasmkube(&["delete", "configmap", "-l", "missing=label", "-n", "cli-ns"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);

    // Bad input: a clear error, exit code 1, nothing changed.
    let bad = tmp.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: Not_Valid\n",
    )
    .expect("write");
    let out = s.wasmkube(&["apply", "-f", &bad.to_string_lossy()]).fails();
    assert!(
        out.stderr.contains("is invalid") && out.stderr.contains("metadata.name"),
        "{}",
        out.stderr
    );
}
