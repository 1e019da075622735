//! The official Kubernetes Python client (PyPI `kubernetes`) against a real server: the tests
//! are in tests/python and run under pytest with the server's kubeconfig.

use std::process::Command;
use std::time::Duration;

use crate::harness::{Server, python, repo_root, run};

#[test]
fn official_python_client() {
    let s = Server::start();
    let mut cmd = Command::new(python());
    cmd.args(["-m", "pytest", "-q", "-p", "no:cacheprovider"])
        .arg(repo_root().join("tests/python"))
        .env("WASMKUBE_KUBECONFIG", s.kubeconfig())
        .env("HOME", s.home.path());
    let out = run(cmd, None, Duration::from_secs(300));
    assert_eq!(
        out.code,
        Some(0),
        "pytest failed:\n{}\n{}\nserver log:\n{}",
        out.stdout,
        out.stderr,
        s.log()
    );
}
