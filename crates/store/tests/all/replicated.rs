//! What only a replicated backend promises: etcd members may die, the store keeps its
//! acknowledged writes and carries on while a quorum lives, refuses writes with
//! [`Error::Unavailable`] without one, and recovers by itself when the quorum returns.

use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use wasmkube_store::{Error, EtcdOptions, EtcdStore, Store};
use wasmkube_testkit::etcd::EtcdCluster;

use crate::suite::TestResult;

fn connect(cluster: &EtcdCluster, timeout: Duration) -> EtcdStore {
    let options = EtcdOptions::new(cluster.endpoints()).with_request_timeout(timeout);
    tokio::task::block_in_place(|| {
        tokio::runtime::Handle::current().block_on(EtcdStore::connect(&options))
    })
    .expect("connect to etcd")
}

fn key(i: usize) -> String {
    format!("/registry/configmaps/default/cm-{i:03}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_and_watches_continue_when_one_member_of_three_dies() -> TestResult {
    let mut cluster = EtcdCluster::start(3);
    // The store's default deadline (10 s): a member killed while it leads costs an election,
    // which on a loaded 2-core machine can take longer than a tighter deadline allows.
    let store = connect(
        &cluster,
        EtcdOptions::new(Vec::<String>::new()).request_timeout,
    );
    let start = store.current_revision().await?;
    let mut watch = store.watch("/registry/configmaps/", start).await?;
    for i in 0..50 {
        store.create(&key(i), Bytes::from("before")).await?;
    }
    // Whichever member the client or the watch was using, the others carry on.
    for member in 0..3 {
        cluster.kill(member);
        for i in 0..20 {
            let n = 50 + member * 20 + i;
            store.create(&key(n), Bytes::from("after")).await?;
        }
        cluster.launch(member);
        cluster.wait_healthy(member);
    }
    let list = store.list("/registry/configmaps/", None, None).await?;
    assert_eq!(list.items.len(), 110);
    let mut last = start;
    for i in 0..110 {
        let event = tokio::time::timeout(Duration::from_secs(20), watch.next())
            .await
            .map_err(|_| format!("watch event {i} did not arrive"))?
            .ok_or("watch ended")??;
        assert_eq!(event.key, key(i));
        assert!(event.revision > last, "events in revision order");
        last = event.revision;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_quorum_writes_are_refused_and_resume_when_it_returns() -> TestResult {
    let mut cluster = EtcdCluster::start(3);
    let store = connect(&cluster, Duration::from_secs(2));
    let kept = store.create(&key(0), Bytes::from("kept")).await?;
    cluster.kill(1);
    cluster.kill(2);

    let started = Instant::now();
    match store.create(&key(1), Bytes::from("refused")).await {
        Err(Error::Unavailable { .. }) => {}
        other => return Err(format!("expected Unavailable without quorum, got {other:?}").into()),
    }
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "refused within the request timeout, not hung: {:?}",
        started.elapsed()
    );

    cluster.launch(1);
    cluster.wait_healthy(1);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match store.create(&key(2), Bytes::from("resumed")).await {
            Ok(_) => break,
            Err(Error::Unavailable { .. }) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(other) => return Err(other.into()),
        }
    }
    assert_eq!(store.get(&key(0)).await?, Some(kept));
    // The refused write may or may not have been applied once quorum came back (etcd had
    // not acknowledged it); either way the store is consistent and writable.
    assert!(store.get(&key(2)).await?.is_some());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_stores_over_one_cluster_see_each_others_writes() -> TestResult {
    let cluster = EtcdCluster::start(1);
    let one = connect(&cluster, Duration::from_secs(5));
    let two = connect(&cluster, Duration::from_secs(5));
    let from = two.current_revision().await?;
    let mut watch = two.watch("/registry/configmaps/", from).await?;
    let created = one.create(&key(1), Bytes::from("x")).await?;
    assert_eq!(two.get(&key(1)).await?, Some(created.clone()));
    // A compare-and-swap through one store fails through the other once the key moved on.
    let updated = two
        .update(&key(1), created.mod_revision, Bytes::from("y"))
        .await?;
    assert!(matches!(
        one.update(&key(1), created.mod_revision, Bytes::from("z"))
            .await,
        Err(Error::Conflict { actual, .. }) if actual == updated.mod_revision
    ));
    let event = tokio::time::timeout(Duration::from_secs(10), watch.next())
        .await?
        .ok_or("watch ended")??;
    assert_eq!(event.revision, created.mod_revision);
    Ok(())
}
