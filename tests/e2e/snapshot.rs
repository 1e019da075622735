//! `wasmkube snapshot save` from a running server, then `restore` into a new data directory
//! and into an empty etcd (moving the cluster from redb to etcd): the restored clusters have
//! what was there at the save and not what came after, and keep the CA and admin token.

use std::process::Command;
use std::time::Duration;

use wasmkube_testkit::etcd::EtcdCluster;

use crate::harness::{BIN, Server, run};

fn wasmkube(args: &[&str]) -> crate::harness::Out {
    let mut cmd = Command::new(BIN);
    cmd.args(args);
    run(cmd, None, Duration::from_secs(60))
}

fn configmap_names(s: &Server) -> String {
    s.jsonpath(&["configmaps"], "{.items[*].metadata.name}")
}

#[test]
fn a_snapshot_of_a_running_server_restores_into_redb_and_into_etcd() {
    let source = Server::start();
    source
        .kubectl(&["create", "configmap", "before", "--from-literal=a=1"])
        .ok();
    source.kubectl(&["create", "namespace", "team"]).ok();
    let file = source.home.path().join("cluster.snap");
    let file_arg = file.to_str().expect("utf-8 path");
    let saved = source.wasmkube(&["snapshot", "save", file_arg]).ok();
    assert!(saved.stdout.contains("Snapshot saved"), "{}", saved.stdout);
    source
        .kubectl(&["create", "configmap", "after", "--from-literal=a=2"])
        .ok();
    let token = source.token();
    let ca = std::fs::read_to_string(source.dir.join("tls/server-ca.crt")).expect("ca");

    // A damaged snapshot is refused and writes nothing.
    let tmp = tempfile::tempdir().expect("tempdir");
    let damaged = tmp.path().join("damaged.snap");
    let bytes = std::fs::read(&file).expect("snapshot");
    std::fs::write(&damaged, &bytes[..bytes.len() - 10]).expect("write");
    let dir = tmp.path().join("restored");
    let dir_arg = dir.to_str().expect("utf-8 path");
    let refused = wasmkube(&[
        "snapshot",
        "restore",
        damaged.to_str().expect("utf-8"),
        "--data-dir",
        dir_arg,
        "--token",
        &token,
    ])
    .fails();
    assert!(
        refused.stderr.contains("not a usable snapshot"),
        "{}",
        refused.stderr
    );
    assert!(!dir.join("state.redb").exists());

    // Into a new data directory, with the cluster's token: same CA, same admin token.
    wasmkube(&[
        "snapshot",
        "restore",
        file_arg,
        "--data-dir",
        dir_arg,
        "--token",
        &token,
    ])
    .ok();
    let again = wasmkube(&[
        "snapshot",
        "restore",
        file_arg,
        "--data-dir",
        dir_arg,
        "--token",
        &token,
    ])
    .fails();
    assert!(
        again.stderr.contains("already holds a store"),
        "{}",
        again.stderr
    );
    let restored = Server::start_in(dir.clone(), &[]);
    assert_eq!(restored.token(), token);
    assert_eq!(
        std::fs::read_to_string(dir.join("tls/server-ca.crt")).expect("ca"),
        ca
    );
    assert_eq!(configmap_names(&restored), "before");
    restored.kubectl(&["get", "namespace", "team"]).ok();

    // Into an empty etcd: the cluster moves from redb to etcd, and a server started over it
    // with the same token serves it with the same CA.
    let etcd = EtcdCluster::start(1);
    let endpoints = etcd.endpoint_list();
    wasmkube(&[
        "snapshot",
        "restore",
        file_arg,
        "--datastore-endpoint",
        &endpoints,
    ])
    .ok();
    let not_empty = wasmkube(&[
        "snapshot",
        "restore",
        file_arg,
        "--datastore-endpoint",
        &endpoints,
    ])
    .fails();
    assert!(
        not_empty.stderr.contains("not empty"),
        "{}",
        not_empty.stderr
    );
    let on_etcd = Server::start_with(&["--datastore-endpoint", &endpoints, "--token", &token]);
    assert_eq!(
        std::fs::read_to_string(on_etcd.dir.join("tls/server-ca.crt")).expect("ca"),
        ca
    );
    assert_eq!(configmap_names(&on_etcd), "before");

    // And a snapshot of the etcd-backed server carries the same state.
    let from_etcd = on_etcd.home.path().join("etcd.snap");
    on_etcd
        .wasmkube(&["snapshot", "save", from_etcd.to_str().expect("utf-8")])
        .ok();
    let second = tmp.path().join("from-etcd");
    wasmkube(&[
        "snapshot",
        "restore",
        from_etcd.to_str().expect("utf-8"),
        "--data-dir",
        second.to_str().expect("utf-8"),
        "--token",
        &token,
    ])
    .ok();
    let back = Server::start_in(second, &[]);
    assert_eq!(configmap_names(&back), "before");
}
