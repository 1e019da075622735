//! What only a persistent backend promises: everything acknowledged survives a restart.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use wasmkube_store::{Error, EventKind, RedbStore, Store};

use crate::suite::TestResult;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reopen_keeps_keys_revisions_and_log() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("store.redb");
    {
        let store = RedbStore::open(&path)?;
        let a = store
            .create("/registry/pods/default/a", Bytes::from("a1"))
            .await?;
        store
            .create("/registry/pods/default/b", Bytes::from("b1"))
            .await?;
        store
            .update(
                "/registry/pods/default/a",
                a.mod_revision,
                Bytes::from("a2"),
            )
            .await?;
        store
            .create("/registry/pods/default/c", Bytes::from("c1"))
            .await?;
        store.delete("/registry/pods/default/c", None).await?;
        assert_eq!(store.compact(2).await?, 2);
    }

    let store = RedbStore::open(&path)?;
    assert_eq!(store.current_revision().await?, 5);
    assert_eq!(store.compacted_revision().await?, 2);
    let list = store.list("/registry/pods/", None, None).await?;
    let found: Vec<_> = list
        .items
        .iter()
        .map(|kv| {
            (
                kv.key.as_str(),
                kv.value.clone(),
                kv.create_revision,
                kv.mod_revision,
            )
        })
        .collect();
    assert_eq!(
        found,
        [
            ("/registry/pods/default/a", Bytes::from("a2"), 1, 3),
            ("/registry/pods/default/b", Bytes::from("b1"), 2, 2),
        ]
    );
    assert_eq!(list.revision, 5);

    // The retained log replays as it was; the compacted part stays gone.
    let mut watch = store.watch("/registry/pods/", 2).await?;
    let mut replayed = Vec::new();
    for _ in 0..3 {
        let event = tokio::time::timeout(Duration::from_secs(10), watch.next())
            .await?
            .ok_or("watch ended")??;
        replayed.push((event.revision, event.kind, event.value, event.prev_value));
    }
    assert_eq!(
        replayed,
        [
            (
                3,
                EventKind::Put,
                Bytes::from("a2"),
                Some(Bytes::from("a1"))
            ),
            (4, EventKind::Put, Bytes::from("c1"), None),
            (
                5,
                EventKind::Delete,
                Bytes::from("c1"),
                Some(Bytes::from("c1"))
            ),
        ]
    );
    assert!(matches!(
        store.watch("/registry/pods/", 1).await,
        Err(Error::Compacted {
            requested: 1,
            compacted: 2
        })
    ));

    // Numbering goes on where it stopped, and the live watch follows.
    let next = store
        .create("/registry/pods/default/d", Bytes::from("d1"))
        .await?;
    assert_eq!((next.create_revision, next.mod_revision), (6, 6));
    let event = tokio::time::timeout(Duration::from_secs(10), watch.next())
        .await?
        .ok_or("watch ended")??;
    assert_eq!(event.revision, 6);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_concurrent_writes_survive_reopen() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("store.redb");
    {
        let store: Arc<dyn Store> = Arc::new(RedbStore::open(&path)?);
        let tasks: Vec<_> = (0..300)
            .map(|i| {
                let store = Arc::clone(&store);
                tokio::spawn(async move {
                    store
                        .create(
                            &format!("/registry/configmaps/ns/{i:03}"),
                            Bytes::from(format!("{i}")),
                        )
                        .await
                })
            })
            .collect();
        for task in tasks {
            task.await??;
        }
        // Dropped right after the last acknowledgement.
    }
    let store = RedbStore::open(&path)?;
    let list = store.list("/registry/configmaps/", None, None).await?;
    assert_eq!(list.items.len(), 300);
    assert_eq!(list.revision, 300);
    for (i, kv) in list.items.iter().enumerate() {
        assert_eq!(kv.value, Bytes::from(format!("{i}")));
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_open_elsewhere_is_an_error() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("store.redb");
    let store = RedbStore::open(&path)?;
    assert!(matches!(RedbStore::open(&path), Err(Error::Backend { .. })));
    assert_eq!(store.path(), path);
    // A closed store has released its writer; dropping it releases the file.
    store.close().await;
    drop(store);
    let reopened = RedbStore::open(&path)?;
    assert_eq!(reopened.current_revision().await?, 0);
    Ok(())
}

#[tokio::test]
async fn an_unusable_path_is_an_error() {
    let result = RedbStore::open("/nonexistent-directory/for/sure/store.redb");
    match result {
        Err(error @ Error::Backend { .. }) => {
            assert!(
                error.to_string().contains("open the database file"),
                "{error}"
            );
            assert!(std::error::Error::source(&error).is_some());
        }
        other => panic!("expected a backend error, got {other:?}"),
    }
}
