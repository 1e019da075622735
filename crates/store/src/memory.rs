//! The in-memory backend: the same store semantics with nothing on disk, for tests and for
//! components that want a store without a data directory.

use std::collections::{BTreeMap, VecDeque};
use std::ops::{Bound, ControlFlow};
use std::sync::{PoisonError, RwLock};

use crate::core::{Core, impl_store};
use crate::engine::{Engine, LogEntry, ReadTxn, Record, Visit, WriteTxn};
use crate::{Error, Event, StoreOptions};

/// A [`Store`](crate::Store) kept in memory. Everything is lost when it is dropped.
///
/// The event log grows until [`Store::compact`](crate::Store::compact) trims it, as with
/// every backend.
pub struct MemoryStore {
    core: Core<MemoryEngine>,
}

impl MemoryStore {
    /// An empty store with default options.
    ///
    /// # Panics
    ///
    /// Only if the operating system refuses to start the writer thread; see
    /// [`MemoryStore::with_options`] to handle that as an error.
    pub fn new() -> Self {
        // An empty in-memory store can only fail to start if no thread can be spawned, which
        // no caller could handle better than by stopping.
        Self::with_options(&StoreOptions::default()).expect("start the memory store's writer")
    }

    /// An empty store.
    pub fn with_options(options: &StoreOptions) -> Result<Self, Error> {
        Ok(MemoryStore {
            core: Core::start(MemoryEngine::default(), options)?,
        })
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore").finish_non_exhaustive()
    }
}

impl_store!(MemoryStore);

#[derive(Debug, Default)]
pub(crate) struct MemoryEngine {
    /// A write transaction holds the write lock for the whole batch, so readers see a batch
    /// entirely or not at all — the snapshot guarantee redb gives for free.
    state: RwLock<State>,
}

#[derive(Debug, Default)]
struct State {
    keys: BTreeMap<String, Record>,
    /// Ordered by revision; entries at or below `compacted` are gone.
    log: VecDeque<Event>,
    revision: u64,
    compacted: u64,
}

impl Engine for MemoryEngine {
    const BLOCKING: bool = false;

    fn read<R>(&self, f: impl FnOnce(&dyn ReadTxn) -> Result<R, Error>) -> Result<R, Error> {
        // Every mutation below is a single infallible step, so a panicking holder cannot
        // leave the state half-written: poisoning carries no information here.
        let state = self.state.read().unwrap_or_else(PoisonError::into_inner);
        f(&*state)
    }

    fn write<R>(&self, f: impl FnOnce(&mut dyn WriteTxn) -> Result<R, Error>) -> Result<R, Error> {
        let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
        // No operation of this engine fails, so there is nothing to roll back.
        f(&mut *state)
    }
}

impl LogEntry for Event {
    fn revision(&self) -> u64 {
        self.revision
    }

    fn key(&self) -> &str {
        &self.key
    }

    fn event(&self) -> Result<Event, Error> {
        Ok(self.clone())
    }
}

impl ReadTxn for State {
    fn revision(&self) -> Result<u64, Error> {
        Ok(self.revision)
    }

    fn compacted(&self) -> Result<u64, Error> {
        Ok(self.compacted)
    }

    fn get(&self, key: &str) -> Result<Option<Record>, Error> {
        Ok(self.keys.get(key).cloned())
    }

    fn scan_keys(
        &self,
        from: Bound<&str>,
        visit: &mut dyn FnMut(&str, Record) -> Visit,
    ) -> Result<(), Error> {
        for (key, record) in self.keys.range::<str, _>((from, Bound::Unbounded)) {
            if visit(key, record.clone())?.is_break() {
                break;
            }
        }
        Ok(())
    }

    fn scan_log(
        &self,
        after: u64,
        visit: &mut dyn FnMut(&dyn LogEntry) -> Visit,
    ) -> Result<(), Error> {
        let start = self.log.partition_point(|event| event.revision <= after);
        for event in self.log.range(start..) {
            if let ControlFlow::Break(()) = visit(event)? {
                break;
            }
        }
        Ok(())
    }
}

impl WriteTxn for State {
    fn get(&mut self, key: &str) -> Result<Option<Record>, Error> {
        Ok(self.keys.get(key).cloned())
    }

    fn put(&mut self, key: &str, record: &Record) -> Result<(), Error> {
        self.keys.insert(key.to_owned(), record.clone());
        Ok(())
    }

    fn remove(&mut self, key: &str) -> Result<(), Error> {
        self.keys.remove(key);
        Ok(())
    }

    fn append(&mut self, event: &Event) -> Result<(), Error> {
        self.log.push_back(event.clone());
        Ok(())
    }

    fn set_revision(&mut self, revision: u64) -> Result<(), Error> {
        self.revision = revision;
        Ok(())
    }

    fn compact(&mut self, revision: u64) -> Result<(), Error> {
        let end = self.log.partition_point(|event| event.revision <= revision);
        self.log.drain(..end);
        self.compacted = revision;
        Ok(())
    }
}
