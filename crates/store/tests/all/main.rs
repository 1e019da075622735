//! The store's one integration-test binary: the shared suite, run against every backend
//! (etcd for real: each test starts its own etcd on loopback ports), the tests only a
//! persistent backend can have, and etcd's failure tests.

mod persistence;
mod replicated;
mod suite;

use std::sync::Arc;

use tempfile::TempDir;
use wasmkube_store::{EtcdOptions, EtcdStore, MemoryStore, RedbStore, Store, StoreOptions};
use wasmkube_testkit::etcd::EtcdCluster;

/// A store under test, with whatever must outlive it.
pub struct Fixture {
    pub store: Arc<dyn Store>,
    /// The revision of the empty store: 0 for the log-backed backends, 1 for etcd (which
    /// counts its initial state as a revision).
    pub base: u64,
    pub guard: Guard,
}

/// What a test keeps alive beside its store, and what it may ask of the backend.
pub struct Guard {
    /// Whether the backend's own group commit shows in [`Store::stats`].
    pub group_commit: bool,
    /// The redb file's directory.
    _dir: Option<TempDir>,
    /// The etcd members, killed when the test ends.
    pub etcd: Option<EtcdCluster>,
}

impl Fixture {
    /// The store, the base revision, and the guard to hold until the test ends.
    pub fn parts(self) -> (Arc<dyn Store>, u64, Guard) {
        (self.store, self.base, self.guard)
    }
}

pub type Factory = fn(&StoreOptions) -> Fixture;

pub fn memory(options: &StoreOptions) -> Fixture {
    let store = MemoryStore::with_options(options).expect("start a memory store");
    Fixture {
        store: Arc::new(store),
        base: 0,
        guard: Guard {
            group_commit: true,
            _dir: None,
            etcd: None,
        },
    }
}

pub fn redb(options: &StoreOptions) -> Fixture {
    let dir = tempfile::tempdir().expect("create a temporary directory");
    let store = RedbStore::open_with_options(dir.path().join("store.redb"), options)
        .expect("open a redb store");
    Fixture {
        store: Arc::new(store),
        base: 0,
        guard: Guard {
            group_commit: true,
            _dir: Some(dir),
            etcd: None,
        },
    }
}

/// A one-member etcd of the test's own. The store options tune the log-backed stores'
/// writer and broadcast, which etcd does not have.
pub fn etcd(_options: &StoreOptions) -> Fixture {
    let cluster = EtcdCluster::start(1);
    let store = connect(&cluster);
    Fixture {
        store: Arc::new(store),
        base: 1,
        guard: Guard {
            group_commit: false,
            _dir: None,
            etcd: Some(cluster),
        },
    }
}

/// Connects a store to `cluster` from inside the test's (multi-threaded) runtime.
pub fn connect(cluster: &EtcdCluster) -> EtcdStore {
    let options = EtcdOptions::new(cluster.endpoints());
    tokio::task::block_in_place(|| {
        tokio::runtime::Handle::current().block_on(EtcdStore::connect(&options))
    })
    .expect("connect to etcd")
}

/// Instantiates every test of [`suite`] for one backend.
macro_rules! backend_suite {
    ($backend:ident) => {
        mod $backend {
            backend_suite!(@tests $backend, watch_lagging_behind_compaction_fails);
            backend_suite!(@shared $backend);
        }
    };
    ($backend:ident, without_broadcast) => {
        mod $backend {
            backend_suite!(@shared $backend);
        }
    };
    (@shared $backend:ident) => {
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
                compaction_limits_watches,
                concurrent_writers_are_batched,
                concurrent_updates_serialise,
                racing_creates_have_one_winner,
                close_ends_watches_and_refuses_calls,
                drop_ends_watches,
                list_at_reads_every_page_at_the_first_pages_revision,
            );
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
// A watch that stops reading falls behind a broadcast of the log-backed stores; etcd's
// watch is flow-controlled end to end, so that test has nothing to observe there.
backend_suite!(etcd, without_broadcast);
