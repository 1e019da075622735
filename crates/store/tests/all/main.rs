//! The store's one integration-test binary: the shared suite, run against every backend,
//! and the tests only a persistent backend can have.

mod persistence;
mod suite;

use std::sync::Arc;

use tempfile::TempDir;
use wasmkube_store::{MemoryStore, RedbStore, Store, StoreOptions};

/// A store under test, with whatever must outlive it.
pub struct Fixture {
    pub store: Arc<dyn Store>,
    /// Holds the redb file's directory until the test ends.
    pub _dir: Option<TempDir>,
}

pub type Factory = fn(&StoreOptions) -> Fixture;

pub fn memory(options: &StoreOptions) -> Fixture {
    let store = MemoryStore::with_options(options).expect("start a memory store");
    Fixture {
        store: Arc::new(store),
        _dir: None,
    }
}

pub fn redb(options: &StoreOptions) -> Fixture {
    let dir = tempfile::tempdir().expect("create a temporary directory");
    let store = RedbStore::open_with_options(dir.path().join("store.redb"), options)
        .expect("open a redb store");
    Fixture {
        store: Arc::new(store),
        _dir: Some(dir),
    }
}

/// Instantiates every test of [`suite`] for one backend.
macro_rules! backend_suite {
    ($backend:ident) => {
        mod $backend {
            backend_suite!(@tests $backend,
                create_and_get,
                create_existing_key_fails,
                update_is_compare_and_swap,
                delete_is_compare_and_swap,
                revisions_are_global_and_monotonic,
                list_pages_in_key_order,
                list_reads_one_snapshot,
                watch_replays_then_follows,
                watch_filters_by_prefix,
                watch_events_carry_values,
                watch_from_current_revision_sees_only_new_writes,
                watch_started_during_writes_has_no_gap_or_duplicate,
                watch_recovers_from_lag,
                watch_lagging_behind_compaction_fails,
                compaction_limits_watches,
                concurrent_writers_are_batched,
                concurrent_updates_serialise,
                racing_creates_have_one_winner,
                close_ends_watches_and_refuses_calls,
                drop_ends_watches,
            );
        }
    };
    (@tests $backend:ident, $($test:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $test() -> crate::suite::TestResult {
                crate::suite::$test(crate::$backend).await
            }
        )*
    };
}

backend_suite!(memory);
backend_suite!(redb);
