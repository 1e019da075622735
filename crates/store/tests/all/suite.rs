//! The behaviour every backend must have. Each test takes a [`Factory`] so that
//! `backend_suite!` can run it against each backend.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use wasmkube_store::{Error, Event, EventKind, StoreOptions, WatchStream};

use crate::Factory;

pub type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

const PODS: &str = "/registry/pods/";

fn pod(name: &str) -> String {
    format!("/registry/pods/default/{name}")
}

fn json(text: &'static str) -> Bytes {
    Bytes::from_static(text.as_bytes())
}

fn fixture(factory: Factory) -> crate::Fixture {
    factory(&StoreOptions::default())
}

/// The next item of a watch, failing the test if none comes within a few seconds.
async fn next(watch: &mut WatchStream) -> Result<Event, Box<dyn std::error::Error + Send + Sync>> {
    match tokio::time::timeout(Duration::from_secs(10), watch.next()).await {
        Ok(Some(item)) => Ok(item?),
        Ok(None) => Err("watch ended".into()),
        Err(_) => Err("no watch event within 10s".into()),
    }
}

/// Fails if the watch yields anything soon (a duplicate or an event that should not be).
async fn assert_quiet(watch: &mut WatchStream) -> TestResult {
    match tokio::time::timeout(Duration::from_millis(200), watch.next()).await {
        Err(_) => Ok(()),
        Ok(item) => Err(format!("unexpected watch item {item:?}").into()),
    }
}

/// Waits for the watch to end cleanly.
async fn assert_ends(watch: &mut WatchStream) -> TestResult {
    match tokio::time::timeout(Duration::from_secs(10), watch.next()).await {
        Ok(None) => Ok(()),
        Ok(Some(item)) => Err(format!("expected the watch to end, got {item:?}").into()),
        Err(_) => Err("watch did not end within 10s".into()),
    }
}

pub async fn create_and_get(factory: Factory) -> TestResult {
    let (store, base, _guard) = fixture(factory).parts();
    assert_eq!(store.current_revision().await?, base);
    assert_eq!(store.get(&pod("nginx")).await?, None);

    let created = store.create(&pod("nginx"), json("{\"v\":1}")).await?;
    assert_eq!(created.key, pod("nginx"));
    assert_eq!(created.value, json("{\"v\":1}"));
    assert_eq!(
        (created.create_revision, created.mod_revision),
        (base + 1, base + 1)
    );
    assert_eq!(store.get(&pod("nginx")).await?, Some(created));
    assert_eq!(store.current_revision().await?, base + 1);

    // Empty values and large values are stored as they are.
    store.create(&pod("empty"), Bytes::new()).await?;
    let big = Bytes::from(vec![7u8; 1 << 20]);
    store.create(&pod("big"), big.clone()).await?;
    assert_eq!(
        store.get(&pod("empty")).await?.map(|kv| kv.value),
        Some(Bytes::new())
    );
    assert_eq!(store.get(&pod("big")).await?.map(|kv| kv.value), Some(big));
    Ok(())
}

pub async fn create_existing_key_fails(factory: Factory) -> TestResult {
    let (store, base, _guard) = fixture(factory).parts();
    store.create(&pod("nginx"), json("1")).await?;
    match store.create(&pod("nginx"), json("2")).await {
        Err(Error::AlreadyExists { key }) => assert_eq!(key, pod("nginx")),
        other => return Err(format!("expected AlreadyExists, got {other:?}").into()),
    }
    // The failed create took no revision and changed nothing.
    assert_eq!(store.current_revision().await?, base + 1);
    assert_eq!(
        store.get(&pod("nginx")).await?.map(|kv| kv.value),
        Some(json("1"))
    );
    Ok(())
}

pub async fn update_is_compare_and_swap(factory: Factory) -> TestResult {
    let (store, base, _guard) = fixture(factory).parts();
    let created = store.create(&pod("nginx"), json("1")).await?;
    store.create(&pod("other"), json("x")).await?;

    let updated = store
        .update(&pod("nginx"), created.mod_revision, json("2"))
        .await?;
    assert_eq!(updated.create_revision, base + 1);
    assert_eq!(updated.mod_revision, base + 3);
    assert_eq!(updated.value, json("2"));
    assert_eq!(store.get(&pod("nginx")).await?, Some(updated.clone()));

    // A stale resourceVersion is a conflict and writes nothing.
    match store
        .update(&pod("nginx"), created.mod_revision, json("3"))
        .await
    {
        Err(Error::Conflict {
            key,
            expected,
            actual,
        }) => assert_eq!((key, expected, actual), (pod("nginx"), base + 1, base + 3)),
        other => return Err(format!("expected Conflict, got {other:?}").into()),
    }
    assert_eq!(store.get(&pod("nginx")).await?, Some(updated));

    match store.update(&pod("missing"), 1, json("3")).await {
        Err(Error::NotFound { key }) => assert_eq!(key, pod("missing")),
        other => return Err(format!("expected NotFound, got {other:?}").into()),
    }
    assert_eq!(store.current_revision().await?, base + 3);
    Ok(())
}

pub async fn delete_is_compare_and_swap(factory: Factory) -> TestResult {
    let (store, base, _guard) = fixture(factory).parts();
    let created = store.create(&pod("nginx"), json("1")).await?;
    let updated = store
        .update(&pod("nginx"), created.mod_revision, json("2"))
        .await?;

    match store
        .delete(&pod("nginx"), Some(created.mod_revision))
        .await
    {
        Err(Error::Conflict {
            expected, actual, ..
        }) => assert_eq!((expected, actual), (base + 1, base + 2)),
        other => return Err(format!("expected Conflict, got {other:?}").into()),
    }
    assert!(store.get(&pod("nginx")).await?.is_some());

    let deleted = store
        .delete(&pod("nginx"), Some(updated.mod_revision))
        .await?;
    assert_eq!(deleted.value, json("2"));
    assert_eq!(deleted.create_revision, base + 1);
    assert_eq!(
        deleted.mod_revision,
        base + 3,
        "a deleted object reports the delete's revision"
    );
    assert_eq!(store.get(&pod("nginx")).await?, None);

    match store.delete(&pod("nginx"), None).await {
        Err(Error::NotFound { key }) => assert_eq!(key, pod("nginx")),
        other => return Err(format!("expected NotFound, got {other:?}").into()),
    }

    // Recreating starts a new life; an unconditional delete needs no revision.
    let again = store.create(&pod("nginx"), json("3")).await?;
    assert_eq!(
        (again.create_revision, again.mod_revision),
        (base + 4, base + 4)
    );
    let deleted = store.delete(&pod("nginx"), None).await?;
    assert_eq!(deleted.mod_revision, base + 5);
    assert_eq!(store.current_revision().await?, base + 5);
    Ok(())
}

pub async fn revisions_are_global_and_monotonic(factory: Factory) -> TestResult {
    let (store, base, _guard) = fixture(factory).parts();
    let mut last = base;
    for i in 0..20 {
        let key = format!("/registry/kind{}/ns/name{i}", i % 3);
        let created = store.create(&key, json("a")).await?;
        assert_eq!(created.mod_revision, last + 1);
        let updated = store.update(&key, created.mod_revision, json("b")).await?;
        assert_eq!(updated.mod_revision, last + 2);
        // Failed writes take no revision.
        assert!(store.create(&key, json("c")).await.is_err());
        assert!(
            store
                .update(&key, created.mod_revision, json("c"))
                .await
                .is_err()
        );
        last = updated.mod_revision;
        assert_eq!(store.current_revision().await?, last);
    }
    Ok(())
}

pub async fn list_pages_in_key_order(factory: Factory) -> TestResult {
    let (store, base, _guard) = fixture(factory).parts();
    // Created out of order, with neighbours that share a string prefix but not the path.
    for name in ["c", "a", "e", "b", "d"] {
        store.create(&pod(name), json(name_value(name))).await?;
    }
    store.create("/registry/podsecurity/x", json("no")).await?;
    store.create("/registry/pod", json("no")).await?;
    store
        .create("/registry/services/default/a", json("no"))
        .await?;

    let all = store.list(PODS, None, None).await?;
    let keys: Vec<_> = all.items.iter().map(|kv| kv.key.clone()).collect();
    assert_eq!(keys, ["a", "b", "c", "d", "e"].map(pod));
    assert!(!all.more);
    assert_eq!(all.revision, base + 8);
    assert_eq!(all.items[0].value, json("A"));
    assert_eq!(all.items[0].create_revision, base + 2);

    // Page through two at a time.
    let mut pages = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = store.list(PODS, after.as_deref(), Some(2)).await?;
        assert!(page.items.len() <= 2);
        after = page.items.last().map(|kv| kv.key.clone());
        pages.push(
            page.items
                .iter()
                .map(|kv| kv.key.clone())
                .collect::<Vec<_>>(),
        );
        if !page.more {
            break;
        }
    }
    assert_eq!(
        pages,
        vec![
            vec![pod("a"), pod("b")],
            vec![pod("c"), pod("d")],
            vec![pod("e")]
        ]
    );

    // A start_after before the prefix starts at the prefix; one past it finds nothing.
    assert_eq!(
        store.list(PODS, Some("/a"), Some(1)).await?.items[0].key,
        pod("a")
    );
    assert!(store.list(PODS, Some("/z"), None).await?.items.is_empty());
    let exact = store.list(&pod("c"), None, None).await?;
    assert_eq!(exact.items.len(), 1);
    let none = store.list("/registry/nothing/", None, Some(10)).await?;
    assert!(none.items.is_empty() && !none.more);
    assert_eq!(none.revision, base + 8);
    Ok(())
}

fn name_value(name: &str) -> &'static str {
    match name {
        "a" => "A",
        "b" => "B",
        "c" => "C",
        "d" => "D",
        _ => "E",
    }
}

pub async fn list_reads_one_snapshot(factory: Factory) -> TestResult {
    let (store, base, _guard) = fixture(factory).parts();
    // Writers keep adding keys; every list must be a state that existed: with N keys listed,
    // the snapshot revision is exactly N (one create per revision) and keys 0..N are there.
    let writer = {
        let store = Arc::clone(&store);
        tokio::spawn(async move {
            for i in 0..300 {
                store.create(&pod(&format!("{i:04}")), json("x")).await?;
            }
            Ok::<_, Error>(())
        })
    };
    let mut seen = 0;
    while seen < 300 {
        let list = store.list(PODS, None, None).await?;
        let n = list.items.len();
        assert_eq!(
            list.revision,
            base + u64::try_from(n)?,
            "list revision matches its contents"
        );
        for (i, kv) in list.items.iter().enumerate() {
            assert_eq!(kv.key, pod(&format!("{i:04}")));
        }
        seen = n;
    }
    writer.await??;
    Ok(())
}

pub async fn watch_replays_then_follows(factory: Factory) -> TestResult {
    let (store, base, _guard) = fixture(factory).parts();
    for i in 1..=5 {
        store.create(&pod(&format!("p{i}")), json("x")).await?;
    }
    let mut watch = store.watch(PODS, base + 2).await?;
    for revision in base + 3..=base + 5 {
        assert_eq!(next(&mut watch).await?.revision, revision);
    }
    assert_quiet(&mut watch).await?;

    let updated = store.update(&pod("p1"), base + 1, json("y")).await?;
    store.create(&pod("p6"), json("x")).await?;
    let event = next(&mut watch).await?;
    assert_eq!((event.revision, event.kind), (base + 6, EventKind::Put));
    assert_eq!(event.key, pod("p1"));
    assert_eq!(event.revision, updated.mod_revision);
    assert_eq!(next(&mut watch).await?.revision, base + 7);
    assert_quiet(&mut watch).await?;

    // A second watch from the start sees all of it, in order.
    let mut all = store.watch(PODS, 0).await?;
    for revision in base + 1..=base + 7 {
        assert_eq!(next(&mut all).await?.revision, revision);
    }
    assert_quiet(&mut all).await?;
    Ok(())
}

pub async fn watch_filters_by_prefix(factory: Factory) -> TestResult {
    let (store, base, _guard) = fixture(factory).parts();
    store
        .create("/registry/services/default/a", json("s"))
        .await?;
    store.create(&pod("a"), json("p")).await?;
    let mut watch = store.watch(PODS, 0).await?;
    let mut namespaced = store.watch("/registry/pods/kube-system/", 0).await?;
    assert_eq!(next(&mut watch).await?.key, pod("a"));

    store.create("/registry/podsecurity/a", json("no")).await?;
    store
        .create("/registry/pods/kube-system/dns", json("p"))
        .await?;
    store
        .create("/registry/services/default/b", json("s"))
        .await?;
    store.create(&pod("b"), json("p")).await?;

    let event = next(&mut watch).await?;
    assert_eq!(
        (event.key.as_str(), event.revision),
        ("/registry/pods/kube-system/dns", base + 4)
    );
    let event = next(&mut watch).await?;
    assert_eq!((event.key, event.revision), (pod("b"), base + 6));
    assert_quiet(&mut watch).await?;

    assert_eq!(next(&mut namespaced).await?.revision, base + 4);
    assert_quiet(&mut namespaced).await?;
    Ok(())
}

pub async fn watch_events_carry_values(factory: Factory) -> TestResult {
    let (store, base, _guard) = fixture(factory).parts();
    let mut watch = store.watch(PODS, 0).await?;
    let created = store.create(&pod("nginx"), json("v1")).await?;
    let updated = store
        .update(&pod("nginx"), created.mod_revision, json("v2"))
        .await?;
    store
        .delete(&pod("nginx"), Some(updated.mod_revision))
        .await?;

    let live = [
        next(&mut watch).await?,
        next(&mut watch).await?,
        next(&mut watch).await?,
    ];
    // Replayed from the log, the same events come back identical.
    let mut replay = store.watch(PODS, 0).await?;
    let replayed = [
        next(&mut replay).await?,
        next(&mut replay).await?,
        next(&mut replay).await?,
    ];
    for events in [live, replayed] {
        let [create, update, delete] = events;
        assert_eq!(create.kind, EventKind::Put);
        assert!(create.is_create());
        assert_eq!((create.value, create.prev_value), (json("v1"), None));

        assert_eq!(update.kind, EventKind::Put);
        assert!(!update.is_create());
        assert_eq!(
            (update.value, update.prev_value),
            (json("v2"), Some(json("v1")))
        );

        assert_eq!(
            (delete.kind, delete.revision),
            (EventKind::Delete, base + 3)
        );
        assert!(!delete.is_create());
        assert_eq!(delete.key, pod("nginx"));
        assert_eq!(delete.value, json("v2"), "a delete carries the last value");
        assert_eq!(delete.prev_value, Some(json("v2")));
    }
    Ok(())
}

pub async fn watch_from_current_revision_sees_only_new_writes(factory: Factory) -> TestResult {
    let (store, base, _guard) = fixture(factory).parts();
    for i in 0..10 {
        store.create(&pod(&format!("old{i}")), json("x")).await?;
    }
    let list = store.list(PODS, None, None).await?;
    let mut watch = store.watch(PODS, list.revision).await?;
    assert_quiet(&mut watch).await?;
    store.create(&pod("new"), json("x")).await?;
    let event = next(&mut watch).await?;
    assert_eq!((event.key, event.revision), (pod("new"), base + 11));
    assert_quiet(&mut watch).await?;
    Ok(())
}

pub async fn watch_started_during_writes_has_no_gap_or_duplicate(factory: Factory) -> TestResult {
    const WRITES: u64 = 400;
    let (store, base, _guard) = fixture(factory).parts();
    let writer = {
        let store = Arc::clone(&store);
        tokio::spawn(async move {
            for i in 0..WRITES {
                store.create(&pod(&format!("{i:04}")), json("x")).await?;
                if i % 50 == 0 {
                    tokio::task::yield_now().await;
                }
            }
            Ok::<_, Error>(())
        })
    };
    // Start watches at various points of the stream of writes; each must see every revision
    // after its start exactly once, in order.
    let mut watches = Vec::new();
    while watches.len() < 8 {
        let from = store.current_revision().await?;
        watches.push((from, store.watch(PODS, from).await?));
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    writer.await??;
    for (from, mut watch) in watches {
        for expected in from + 1..=base + WRITES {
            assert_eq!(
                next(&mut watch).await?.revision,
                expected,
                "watch from {from}"
            );
        }
        assert_quiet(&mut watch).await?;
    }
    Ok(())
}

pub async fn watch_recovers_from_lag(factory: Factory) -> TestResult {
    let options = StoreOptions::default().with_watch_buffer(4);
    let (store, base, _guard) = factory(&options).parts();
    let mut watch = store.watch(PODS, 0).await?;
    // Far more writes than the broadcast holds, while nobody polls the watch.
    for i in 0..100 {
        store.create(&pod(&format!("{i:03}")), json("x")).await?;
    }
    for revision in base + 1..=base + 100 {
        let event = next(&mut watch).await?;
        assert_eq!(event.revision, revision);
        assert_eq!(event.key, pod(&format!("{:03}", revision - base - 1)));
    }
    assert_quiet(&mut watch).await?;
    store.create(&pod("live"), json("x")).await?;
    assert_eq!(next(&mut watch).await?.revision, base + 101);
    Ok(())
}

pub async fn watch_lagging_behind_compaction_fails(factory: Factory) -> TestResult {
    let options = StoreOptions::default().with_watch_buffer(4);
    let (store, base, _guard) = factory(&options).parts();
    let mut watch = store.watch(PODS, 0).await?;
    for i in 0..20 {
        store.create(&pod(&format!("{i:03}")), json("x")).await?;
    }
    assert_eq!(store.compact(base + 20).await?, base + 20);
    match tokio::time::timeout(Duration::from_secs(10), watch.next()).await? {
        Some(Err(Error::Compacted {
            requested,
            compacted,
        })) => assert_eq!((requested, compacted), (0, base + 20)),
        other => return Err(format!("expected a Compacted item, got {other:?}").into()),
    }
    assert_ends(&mut watch).await?;
    // Polling an ended watch again is harmless.
    assert!(watch.next().await.is_none());
    Ok(())
}

pub async fn compaction_limits_watches(factory: Factory) -> TestResult {
    let (store, base, _guard) = fixture(factory).parts();
    for i in 1..=6 {
        store.create(&pod(&format!("p{i}")), json("x")).await?;
    }
    assert_eq!(store.compacted_revision().await?, 0);
    assert_eq!(store.compact(base + 3).await?, base + 3);
    assert_eq!(store.compacted_revision().await?, base + 3);

    match store.watch(PODS, base + 2).await {
        Err(Error::Compacted {
            requested,
            compacted,
        }) => assert_eq!((requested, compacted), (base + 2, base + 3)),
        Err(other) => return Err(format!("expected Compacted, got {other}").into()),
        Ok(_) => return Err("a watch from a compacted revision started".into()),
    }
    // From the compacted revision itself, nothing is missing.
    let mut watch = store.watch(PODS, base + 3).await?;
    for revision in base + 4..=base + 6 {
        assert_eq!(next(&mut watch).await?.revision, revision);
    }
    assert_quiet(&mut watch).await?;

    // Compaction never goes backwards, stops at the present, and leaves keys alone.
    assert_eq!(store.compact(1).await?, base + 3);
    assert_eq!(store.compact(1_000).await?, base + 6);
    assert_eq!(store.compacted_revision().await?, base + 6);
    assert_eq!(store.list(PODS, None, None).await?.items.len(), 6);
    assert_eq!(store.current_revision().await?, base + 6);
    let mut watch = store.watch(PODS, base + 6).await?;
    store.create(&pod("p7"), json("x")).await?;
    assert_eq!(next(&mut watch).await?.revision, base + 7);
    Ok(())
}

pub async fn concurrent_writers_are_batched(factory: Factory) -> TestResult {
    // More than one page of the event log, so the replay below crosses a page boundary.
    const WRITERS: usize = 1100;
    let (store, base, guard) = fixture(factory).parts();
    let tasks: Vec<_> = (0..WRITERS)
        .map(|i| {
            let store = Arc::clone(&store);
            tokio::spawn(async move { store.create(&pod(&format!("{i:05}")), json("x")).await })
        })
        .collect();
    let mut revisions = BTreeSet::new();
    for task in tasks {
        assert!(
            revisions.insert(task.await??.mod_revision),
            "revisions are distinct"
        );
    }
    let expected: BTreeSet<u64> = (base + 1..=base + u64::try_from(WRITERS)?).collect();
    assert_eq!(revisions, expected);
    assert_eq!(
        store.current_revision().await?,
        base + u64::try_from(WRITERS)?
    );

    let list = store.list(PODS, None, None).await?;
    assert_eq!(list.items.len(), WRITERS);

    let stats = store.stats();
    assert_eq!(stats.writes, u64::try_from(WRITERS)?);
    if guard.group_commit {
        assert!(
            stats.commits < stats.writes && stats.largest_batch > 1,
            "group commit should batch concurrent writes: {stats:?}"
        );
    }

    let mut watch = store.watch(PODS, 0).await?;
    for revision in base + 1..=base + u64::try_from(WRITERS)? {
        assert_eq!(next(&mut watch).await?.revision, revision);
    }
    assert_quiet(&mut watch).await?;
    Ok(())
}

pub async fn concurrent_updates_serialise(factory: Factory) -> TestResult {
    const CLIENTS: u64 = 16;
    const INCREMENTS: u64 = 25;
    let (store, base, _guard) = fixture(factory).parts();
    let key = pod("counter");
    store.create(&key, Bytes::from("0")).await?;
    let tasks: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let store = Arc::clone(&store);
            let key = key.clone();
            tokio::spawn(async move {
                let mut conflicts = 0u64;
                for _ in 0..INCREMENTS {
                    loop {
                        let current = store.get(&key).await?.ok_or("counter vanished")?;
                        let n: u64 = std::str::from_utf8(&current.value)?.parse()?;
                        match store
                            .update(&key, current.mod_revision, Bytes::from((n + 1).to_string()))
                            .await
                        {
                            Ok(_) => break,
                            Err(Error::Conflict { .. }) => conflicts += 1,
                            Err(other) => return Err(other.into()),
                        }
                    }
                }
                Ok::<_, Box<dyn std::error::Error + Send + Sync>>(conflicts)
            })
        })
        .collect();
    for task in tasks {
        task.await??;
    }
    let counter = store.get(&key).await?.ok_or("counter vanished")?;
    assert_eq!(
        counter.value,
        Bytes::from((CLIENTS * INCREMENTS).to_string())
    );
    assert_eq!(counter.mod_revision, base + 1 + CLIENTS * INCREMENTS);
    assert_eq!(
        store.current_revision().await?,
        base + 1 + CLIENTS * INCREMENTS
    );
    Ok(())
}

pub async fn racing_creates_have_one_winner(factory: Factory) -> TestResult {
    let (store, base, _guard) = fixture(factory).parts();
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                store
                    .create(&pod("contested"), Bytes::from(format!("{i}")))
                    .await
            })
        })
        .collect();
    let mut winners = Vec::new();
    for task in tasks {
        match task.await? {
            Ok(kv) => winners.push(kv),
            Err(Error::AlreadyExists { .. }) => {}
            Err(other) => return Err(other.into()),
        }
    }
    assert_eq!(winners.len(), 1);
    assert_eq!(store.get(&pod("contested")).await?, winners.pop());
    assert_eq!(store.current_revision().await?, base + 1);
    Ok(())
}

pub async fn close_ends_watches_and_refuses_calls(factory: Factory) -> TestResult {
    let (store, base, _guard) = fixture(factory).parts();
    store.create(&pod("a"), json("x")).await?;
    let mut watch = store.watch(PODS, 0).await?;
    assert_eq!(next(&mut watch).await?.revision, base + 1);

    store.close().await;
    assert_ends(&mut watch).await?;
    assert!(matches!(
        store.create(&pod("b"), json("x")).await,
        Err(Error::Closed)
    ));
    assert!(matches!(store.get(&pod("a")).await, Err(Error::Closed)));
    assert!(matches!(store.watch(PODS, 0).await, Err(Error::Closed)));
    assert!(matches!(store.current_revision().await, Err(Error::Closed)));
    // Closing twice is harmless.
    store.close().await;
    Ok(())
}

pub async fn drop_ends_watches(factory: Factory) -> TestResult {
    let (store, base, _guard) = fixture(factory).parts();
    let mut live = store.watch(PODS, 0).await?;
    store.create(&pod("a"), json("x")).await?;
    assert_eq!(next(&mut live).await?.revision, base + 1);
    drop(store);
    assert_ends(&mut live).await
}

pub async fn list_at_reads_every_page_at_the_first_pages_revision(factory: Factory) -> TestResult {
    let (store, base, _guard) = fixture(factory).parts();
    let mut before = Vec::new();
    for name in ["a", "b", "c", "d", "e"] {
        before.push(store.create(&pod(name), json(name_value(name))).await?);
    }
    let first = store.list(PODS, None, Some(2)).await?;
    assert_eq!(first.revision, base + 5);
    assert!(first.more);

    // Between the pages: a delete, an update, a create in the middle and one at the end, and
    // a key of another prefix.
    store.delete(&pod("c"), None).await?;
    store
        .update(&pod("d"), before[3].mod_revision, json("D2"))
        .await?;
    store.create(&pod("bb"), json("new")).await?;
    store.create(&pod("f"), json("new")).await?;
    store.create("/registry/services/x", json("s")).await?;

    let second = store
        .list_at(PODS, Some(&pod("b")), Some(2), first.revision)
        .await?;
    assert_eq!(second.revision, first.revision);
    assert_eq!(second.items, vec![before[2].clone(), before[3].clone()]);
    assert!(second.more);
    let third = store
        .list_at(PODS, Some(&pod("d")), Some(2), first.revision)
        .await?;
    assert_eq!(third.items, vec![before[4].clone()]);
    assert!(!third.more);
    // Unlimited, from the start: exactly the state of the first page's revision.
    let whole = store.list_at(PODS, None, None, first.revision).await?;
    assert_eq!(whole.items, before);

    // Now is different, and a revision at or past now reads now.
    let now = store.list(PODS, None, None).await?;
    let keys: Vec<_> = now.items.iter().map(|kv| kv.key.clone()).collect();
    assert_eq!(keys, ["a", "b", "bb", "d", "e", "f"].map(pod));
    let at_now = store.list_at(PODS, None, None, now.revision).await?;
    assert_eq!(at_now.items, now.items);

    // Once compacted past it, that state is gone: 410 for the client, not a mixed list.
    store.compact(now.revision).await?;
    match store
        .list_at(PODS, Some(&pod("b")), Some(2), first.revision)
        .await
    {
        Err(Error::Compacted { requested, .. }) => assert_eq!(requested, first.revision),
        other => return Err(format!("expected Compacted, got {other:?}").into()),
    }
    Ok(())
}
