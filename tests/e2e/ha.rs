//! A highly available control plane: three servers over a three-member etcd, one agent that
//! knows all three. The server holding the scheduler and controller leases is SIGKILLed and
//! another takes over; etcd members are killed, and writes go on while a quorum lives, are
//! refused with 503 without one, and resume when it returns.

use std::time::{Duration, Instant};

use wasmkube_testkit::etcd::EtcdCluster;

use crate::harness::{Agent, Server, eventually};

const LEASES: [&str; 2] = ["kube-scheduler", "kube-controller-manager"];

fn deployment(name: &str, replicas: u32) -> String {
    format!(
        r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
spec:
  replicas: {replicas}
  selector:
    matchLabels: {{app: {name}}}
  template:
    metadata:
      labels: {{app: {name}}}
    spec:
      containers:
      - name: web
        image: wasmkube.local/examples/hello-http:v1
        ports:
        - containerPort: 8080
"#
    )
}

/// The leader-election identity a server prints at start-up.
fn identity(s: &Server) -> String {
    eventually(Duration::from_secs(10), "the server's identity", || {
        s.log().lines().find_map(|line| {
            line.strip_prefix("wasmkube server: leader election identity ")
                .map(str::to_string)
        })
    })
}

fn holder(s: &Server, lease: &str) -> String {
    s.jsonpath(
        &["lease", "-n", "kube-system", lease],
        "{.spec.holderIdentity}",
    )
}

fn ready_replicas(s: &Server, name: &str) -> String {
    s.jsonpath(&["deployment", name], "{.status.readyReplicas}")
}

#[test]
fn three_servers_over_etcd_survive_losing_the_leader_and_etcd_members() {
    let mut etcd = EtcdCluster::start(3);
    let endpoints = etcd.endpoint_list();
    let args = [
        "--datastore-endpoint",
        &endpoints,
        "--disable-agent",
        "--leader-elect-lease-duration",
        "3s",
        "--leader-elect-renew-deadline",
        "2s",
        "--leader-elect-retry-period",
        "500ms",
    ];
    let first = Server::start_with(&args);
    let second = Server::join(&first, &args);
    let third = Server::join(&first, &args);
    let mut servers = [first, second, third];

    // One cluster: the same CA everywhere, and the admin token of one works on every server.
    let ca = |s: &Server| std::fs::read_to_string(s.dir.join("tls/server-ca.crt")).expect("ca");
    assert_eq!(ca(&servers[0]), ca(&servers[1]));
    assert_eq!(ca(&servers[0]), ca(&servers[2]));
    for s in &servers {
        s.kubectl(&["get", "namespaces"]).ok();
    }

    let refs: Vec<&Server> = servers.iter().collect();
    let agent = Agent::start_with_servers(refs[0], &refs, "ha-agent");
    agent.import_example("hello-http");

    // Written through one server, read and served through another.
    servers[0]
        .kubectl_stdin(&["apply", "-f", "-"], Some(&deployment("before", 2)))
        .ok();
    servers[1].wait_for(
        &["deployment", "before"],
        "{.status.readyReplicas}",
        Duration::from_secs(60),
        |v| v == "2",
    );

    // Both leases are held, by one of the three.
    let identities: Vec<String> = servers.iter().map(identity).collect();
    let leader = eventually(Duration::from_secs(30), "a lease holder", || {
        let h = holder(&servers[1], LEASES[0]);
        identities.iter().position(|id| *id == h)
    });
    let witness = (leader + 1) % 3;

    // The leader dies; another server takes both leases over within a few lease durations.
    let killed_at = Instant::now();
    servers[leader].kill9();
    for lease in LEASES {
        let new = eventually(Duration::from_secs(30), "a new lease holder", || {
            let h = holder(&servers[witness], lease);
            identities
                .iter()
                .position(|id| *id == h)
                .filter(|i| *i != leader)
        });
        assert!(servers[new].is_running());
    }
    eprintln!("leases taken over in {:?}", killed_at.elapsed());

    // The new leaders schedule and run a new Deployment; the old one kept running.
    servers[witness]
        .kubectl_stdin(&["apply", "-f", "-"], Some(&deployment("after", 2)))
        .ok();
    servers[witness].wait_for(
        &["deployment", "after"],
        "{.status.readyReplicas}",
        Duration::from_secs(60),
        |v| v == "2",
    );
    assert_eq!(ready_replicas(&servers[witness], "before"), "2");
    // The agent reports through a live server: its Node stays Ready past a lease renewal.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        servers[witness].jsonpath(
            &["node", "ha-agent"],
            "{.status.conditions[?(@.type==\"Ready\")].status}"
        ),
        "True",
        "agent log:\n{}",
        agent.log()
    );

    // One etcd member down: writes go on.
    etcd.kill(0);
    servers[witness]
        .kubectl(&[
            "create",
            "configmap",
            "one-member-down",
            "--from-literal=a=b",
        ])
        .ok();

    // Two down: no quorum, the write is refused with a clear error rather than hanging.
    etcd.kill(1);
    let refused = servers[witness].kubectl(&[
        "create",
        "configmap",
        "no-quorum",
        "--from-literal=a=b",
        "--request-timeout=30s",
    ]);
    assert_ne!(refused.code, Some(0), "a write without quorum succeeded");
    assert!(
        refused.stderr.contains("unavailable") || refused.stderr.contains("Unavailable"),
        "the refusal says the datastore is unavailable: {}",
        refused.stderr
    );

    // A member returns: writes resume by themselves.
    etcd.launch(1);
    etcd.wait_healthy(1);
    let mut attempt = 0;
    eventually(
        Duration::from_secs(60),
        "writes after quorum returned",
        || {
            attempt += 1;
            let name = format!("quorum-back-{attempt}");
            servers[witness]
                .kubectl(&["create", "configmap", &name, "--from-literal=a=b"])
                .code
                .filter(|c| *c == 0)
        },
    );
}
