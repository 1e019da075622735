//! A revisioned key-value store with watch, the storage under the wasmkube API server.
//!
//! The API server keeps every Kubernetes object as JSON bytes under a key such as
//! `/registry/pods/default/nginx`. The store gives it what etcd gives Kubernetes (and what
//! kine maps onto SQL):
//!
//! - one global revision, raised by every create, update and delete; each key keeps the
//!   revision that created it and the revision of its last write (`mod_revision`, the
//!   object's `resourceVersion`);
//! - compare-and-swap writes: [`Store::update`] and [`Store::delete`] succeed only if the key's
//!   `mod_revision` is the one the caller read;
//! - an event log that [`Store::watch`] replays from any retained revision before following
//!   live writes, with no gap and no duplicate; [`Store::compact`] trims it, after which a
//!   watch from an older revision fails with [`Error::Compacted`] (HTTP 410 Gone);
//! - durability: a write is acknowledged only once committed to disk, and concurrent writes
//!   share one transaction and one fsync (group commit).
//!
//! Three backends: [`RedbStore`] (one redb file, the embedded default), [`EtcdStore`] (an
//! etcd v3 cluster, for several servers sharing one cluster state) and [`MemoryStore`]
//! (tests). All are used through the dyn-compatible [`Store`] trait, typically as
//! `Arc<dyn Store>`. Every method must be called from within a tokio runtime.
//!
//! ```
//! use std::sync::Arc;
//! use bytes::Bytes;
//! use futures::StreamExt;
//! use wasmkube_store::{MemoryStore, Store};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), wasmkube_store::Error> {
//! let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
//! let created = store.create("/registry/pods/default/nginx", Bytes::from("{}")).await?;
//! let updated = store
//!     .update("/registry/pods/default/nginx", created.mod_revision, Bytes::from("{\"a\":1}"))
//!     .await?;
//!
//! // Replays both writes from the log, then would follow live ones.
//! let mut events = store.watch("/registry/pods/", 0).await?;
//! let first = events.next().await.transpose()?;
//! assert_eq!(first.map(|event| event.revision), Some(created.mod_revision));
//! let second = events.next().await.transpose()?;
//! assert_eq!(second.map(|event| event.revision), Some(updated.mod_revision));
//! # Ok(())
//! # }
//! ```
//!
//! # Layout
//!
//! - `lib.rs` — this overview and the [`Store`] trait.
//! - [`error`] — [`Error`], the one error type of every operation.
//! - `types.rs` — the values handed out: [`KeyValue`], [`Event`], [`ListResult`], [`Stats`],
//!   [`StoreOptions`].
//! - `engine.rs` — the seam a backend implements (snapshot reads, atomic write transactions)
//!   and the list and log-page reads written once on top of it.
//! - `core.rs` — the shared store machinery over any engine: the handle, the read path off
//!   the async workers, shutdown, and the macro that implements [`Store`] for a backend.
//! - `writer.rs` — the single writer thread: group commit and the compare-and-swap rules.
//! - `watch.rs` — the watch state machine (replay, then live; lag and gap recovery).
//! - `codec.rs` — the versioned byte layout of records and log entries on disk.
//! - `redb_store.rs` — [`RedbStore`], the redb engine.
//! - [`snapshot`] — every key at one revision in one file, restorable into any backend.
//! - `etcd_store.rs` — [`EtcdStore`], the store over etcd: not an engine under the shared
//!   writer, but the [`Store`] trait mapped onto etcd's own revisions, transactions and
//!   watches.
//! - `memory.rs` — [`MemoryStore`], the in-memory engine.

mod codec;
mod core;
mod engine;
pub mod error;
mod etcd_store;
mod memory;
mod redb_store;
pub mod snapshot;
mod types;
mod watch;
mod writer;

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::stream::BoxStream;

pub use error::Error;
pub use etcd_store::{EtcdOptions, EtcdStore};
pub use memory::MemoryStore;
pub use redb_store::RedbStore;
pub use types::{Event, EventKind, KeyValue, ListResult, Stats, StoreOptions};

/// The events of a watch, in revision order.
///
/// An `Err` item ([`Error::Compacted`] when the watch fell behind a compaction, or a backend
/// error) is always the last item. The stream ends without an error when the store is closed
/// or dropped; dropping the stream ends the watch.
pub type WatchStream = BoxStream<'static, Result<Event, Error>>;

/// A revisioned key-value store with watch.
///
/// Revisions start at 1 with the first write; 0 means "nothing yet". Writes are answered
/// only after they are durable. A write whose caller stops waiting (its future is dropped)
/// after it was queued still takes effect.
pub trait Store: Send + Sync + 'static {
    /// The key's current value, or `None` if it does not exist.
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<KeyValue>, Error>>;

    /// Keys starting with `prefix`, in key order, after `start_after` if given, at most
    /// `limit` of them if given, all read from one snapshot.
    ///
    /// To page, pass the last key of one page as `start_after` of the next. The page is read
    /// at the store's current revision (reported in [`ListResult::revision`]); to read the
    /// next pages as the first one saw the store, use [`Store::list_at`] with its revision.
    fn list<'a>(
        &'a self,
        prefix: &'a str,
        start_after: Option<&'a str>,
        limit: Option<usize>,
    ) -> BoxFuture<'a, Result<ListResult, Error>>;

    /// Like [`Store::list`], but the keys as they were at `revision` (the revision of an
    /// earlier page), so that every page of a paged list shows one state of the store.
    ///
    /// Fails with [`Error::Compacted`] once the store no longer knows the state at
    /// `revision` (below the compacted revision). A `revision` at or past the current one
    /// reads the current state.
    fn list_at<'a>(
        &'a self,
        prefix: &'a str,
        start_after: Option<&'a str>,
        limit: Option<usize>,
        revision: u64,
    ) -> BoxFuture<'a, Result<ListResult, Error>>;

    /// Creates the key; fails with [`Error::AlreadyExists`] if it exists.
    fn create<'a>(&'a self, key: &'a str, value: Bytes) -> BoxFuture<'a, Result<KeyValue, Error>>;

    /// Replaces the key's value if its `mod_revision` is `expected_mod_revision`; fails with
    /// [`Error::Conflict`] if not, [`Error::NotFound`] if the key does not exist.
    fn update<'a>(
        &'a self,
        key: &'a str,
        expected_mod_revision: u64,
        value: Bytes,
    ) -> BoxFuture<'a, Result<KeyValue, Error>>;

    /// Deletes the key — only if its `mod_revision` is `expected_mod_revision`, when given —
    /// and returns its last value with `mod_revision` set to the delete's revision. Fails
    /// with [`Error::Conflict`] or [`Error::NotFound`] like [`Store::update`].
    fn delete<'a>(
        &'a self,
        key: &'a str,
        expected_mod_revision: Option<u64>,
    ) -> BoxFuture<'a, Result<KeyValue, Error>>;

    /// Watches keys starting with `prefix` for events with revision > `from_revision`: first
    /// those in the log, then live ones.
    ///
    /// Fails with [`Error::Compacted`] if `from_revision` is below the compacted revision. To
    /// watch from "now", pass the revision of a [`Store::list`] or
    /// [`Store::current_revision`]. A watch that falls far behind catches up from the log;
    /// if the log has been compacted past it meanwhile, it yields [`Error::Compacted`] and
    /// ends.
    fn watch<'a>(
        &'a self,
        prefix: &'a str,
        from_revision: u64,
    ) -> BoxFuture<'a, Result<WatchStream, Error>>;

    /// Drops log events with revision ≤ `revision` (capped at the current revision) and
    /// returns the compacted revision now in force. Compacting below the current compacted
    /// revision changes nothing. Keys are never affected.
    fn compact(&self, revision: u64) -> BoxFuture<'_, Result<u64, Error>>;

    /// The revision of the last committed write.
    fn current_revision(&self) -> BoxFuture<'_, Result<u64, Error>>;

    /// The highest revision whose events have been dropped from the log.
    fn compacted_revision(&self) -> BoxFuture<'_, Result<u64, Error>>;

    /// Write and commit counters.
    fn stats(&self) -> Stats;

    /// Stops the store: waits for queued writes to be committed (writes queued after the
    /// close are answered with [`Error::Closed`]), ends every watch, and fails every later
    /// call with [`Error::Closed`]. Dropping the last handle does the same implicitly.
    fn close(&self) -> BoxFuture<'_, ()>;
}
