//! The web console in real headless Chromium (Debian's `chromium`, driven by npm's
//! `playwright-core` from tests/web; scripts/install-test-deps.sh installs both), and the
//! console's pure-logic JavaScript modules under `node --test`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::harness::{Server, find_in_path, repo_root, run};

fn node() -> PathBuf {
    find_in_path("node").unwrap_or_else(|| {
        panic!(
            "node not found on PATH: run scripts/install-test-deps.sh (apt-get install nodejs npm)"
        )
    })
}

fn web_tests_dir() -> PathBuf {
    repo_root().join("tests/web")
}

fn forward(out: &crate::harness::Out) {
    // Shown by `cargo test` when the test fails (or with --nocapture).
    println!("{}", out.stdout);
    eprintln!("{}", out.stderr);
}

/// The JavaScript modules' own tests: YAML handling, the watch state machine, quantities, ages,
/// rollout undo, the metrics ring buffer.
#[test]
fn console_modules_unit_tests() {
    let mut cmd = Command::new(node());
    cmd.current_dir(web_tests_dir()).args(["--test", "unit/"]);
    let out = run(cmd, None, Duration::from_secs(120));
    forward(&out);
    assert_eq!(out.code, Some(0), "node --test failed");
    assert!(
        out.stdout.contains("# fail 0") && !out.stdout.contains("# pass 0"),
        "node --test ran no tests or some failed"
    );
}

/// Sign in, apply the HTTP example from the editor and watch it run, scale it, read logs, see a
/// validation error next to its field, delete: everything through the browser. Saves the
/// README's screenshots in docs/screenshots/.
#[test]
fn console_in_headless_chromium() {
    let chromium = Path::new("/usr/bin/chromium");
    assert!(
        chromium.exists(),
        "/usr/bin/chromium is missing: run scripts/install-test-deps.sh (apt-get install chromium)"
    );
    let playwright = web_tests_dir().join("node_modules/playwright-core");
    assert!(
        playwright.exists(),
        "{} is missing: run scripts/install-test-deps.sh (npm ci in tests/web)",
        playwright.display()
    );
    let server = Server::start();
    server.import_example("hello-http");
    server.import_example("counter");
    // A read-only ServiceAccount for the RBAC steps, and a ConfigMap it can see.
    server
        .kubectl(&["create", "serviceaccount", "console-viewer"])
        .ok();
    server
        .kubectl(&[
            "create",
            "clusterrolebinding",
            "console-viewer",
            "--clusterrole=view",
            "--serviceaccount=default:console-viewer",
        ])
        .ok();
    server
        .kubectl(&[
            "create",
            "configmap",
            "viewer-can-see",
            "--from-literal=a=b",
        ])
        .ok();
    let viewer_token = server
        .kubectl(&["create", "token", "console-viewer"])
        .ok()
        .stdout
        .trim()
        .to_string();

    let mut cmd = Command::new(node());
    cmd.current_dir(web_tests_dir())
        .arg("console.mjs")
        .env("WASMKUBE_URL", &server.url)
        .env("WASMKUBE_TOKEN", server.token())
        .env("WASMKUBE_VIEWER_TOKEN", &viewer_token)
        .env("REPO", repo_root())
        .env("SCREENSHOT_DIR", repo_root().join("docs/screenshots"))
        .env("CHROMIUM", chromium);
    let out = run(cmd, None, Duration::from_secs(420));
    forward(&out);
    assert_eq!(
        out.code,
        Some(0),
        "the console test failed (exit {:?}); server log:\n{}",
        out.code,
        server.log()
    );
    assert!(out.stdout.contains("console e2e: all steps passed"));

    // What the browser did is what kubectl sees.
    let deployments = server.kubectl(&["get", "deployments", "-o", "name"]).ok();
    assert!(
        !deployments.stdout.contains("hello-http"),
        "the deployment deleted in the console still exists: {}",
        deployments.stdout
    );
    let cm = server.jsonpath(&["configmap", "web-settings"], "{.data.mode}");
    assert_eq!(
        cm, "fast",
        "the valid document of the broken manifest was applied"
    );
    let broken = server.kubectl(&["get", "deployment", "broken-web"]);
    assert_ne!(
        broken.code,
        Some(0),
        "the invalid deployment must not exist"
    );
    let svc = server.jsonpath(&["service", "hello-http"], "{.spec.ports[0].port}");
    assert_eq!(svc, "80");
}
