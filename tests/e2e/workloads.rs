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
        "--timeout=90s",
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
        "--timeout=90s",
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
        "--timeout=120s",
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
        "--timeout=120s",
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
