//! The values the store hands out: keys with their revisions, watch events, list pages.

use bytes::Bytes;

/// One key as stored, with the revisions Kubernetes needs.
///
/// `mod_revision` is what the API server reports as the object's `resourceVersion`; the
/// stored bytes never contain it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    /// The full key, e.g. `/registry/pods/default/nginx`.
    pub key: String,
    /// The stored bytes (the object's JSON).
    pub value: Bytes,
    /// The revision of the write that created the key.
    pub create_revision: u64,
    /// The revision of the last write to the key. For the value returned by
    /// [`Store::delete`](crate::Store::delete) this is the revision of the delete itself, which
    /// is what Kubernetes reports as a deleted object's `resourceVersion`.
    pub mod_revision: u64,
}

/// What a write did to its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// The key was created or updated; `prev_value` tells which.
    Put,
    /// The key was deleted.
    Delete,
}

/// One write, as the event log keeps it and watches deliver it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The revision of the write; also the new `resourceVersion`.
    pub revision: u64,
    /// Put or Delete.
    pub kind: EventKind,
    /// The key written.
    pub key: String,
    /// For a Put the new value; for a Delete the last value the key had.
    pub value: Bytes,
    /// The value before this write: `None` for a Put that created the key (a watch `ADDED`),
    /// `Some` for a Put that updated it (`MODIFIED`) and for every Delete (`DELETED`, where it
    /// equals `value`).
    pub prev_value: Option<Bytes>,
    /// The revision that created the key (for a Put that created it, this event's own).
    pub create_revision: u64,
    /// The key's `mod_revision` before this write; 0 for a Put that created it. With
    /// `prev_value` it is the state the write replaced, which lets a list be read as of an
    /// earlier revision. 0 for a Delete or update also means "not recorded" (events written by
    /// the store's format 1).
    pub prev_mod_revision: u64,
}

impl Event {
    /// Whether this Put created its key (Kubernetes' `ADDED`) rather than updating it.
    pub fn is_create(&self) -> bool {
        self.kind == EventKind::Put && self.prev_value.is_none()
    }
}

/// One page of a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListResult {
    /// The keys found, in key order.
    pub items: Vec<KeyValue>,
    /// The store revision of the snapshot the page was read from: a watch started from it sees
    /// exactly the writes the page missed.
    pub revision: u64,
    /// Whether more keys under the prefix follow the last item (the `limit` cut the page).
    pub more: bool,
}

/// Counters for benchmarks and tests; cheap to read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Write requests (create, update, delete) the writer has answered, failed ones included.
    pub writes: u64,
    /// Write transactions committed. Under concurrency group commit keeps this well below
    /// `writes`.
    pub commits: u64,
    /// The most requests one transaction has carried.
    pub largest_batch: u64,
}

/// Tuning for a store; [`StoreOptions::default`] suits the API server.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoreOptions {
    /// How many events the live broadcast holds for a slow watcher before it must catch up
    /// from the event log instead (bounds memory per store, not per watcher).
    pub watch_buffer: usize,
    /// The most write requests one transaction (and so one fsync) carries.
    pub max_batch: usize,
}

impl StoreOptions {
    /// Sets [`StoreOptions::watch_buffer`] (at least 1).
    pub fn with_watch_buffer(mut self, events: usize) -> Self {
        self.watch_buffer = events;
        self
    }

    /// Sets [`StoreOptions::max_batch`] (at least 1).
    pub fn with_max_batch(mut self, requests: usize) -> Self {
        self.max_batch = requests;
        self
    }
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            watch_buffer: 1024,
            max_batch: 512,
        }
    }
}
