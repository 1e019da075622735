//! The storage engine seam: the few primitive operations a backend provides, and the read
//! logic (list pages, event-log pages) written once on top of them.
//!
//! Everything with semantics — compare-and-swap, revision numbering, group commit, watch — is
//! written against these traits in [`crate::core`], [`crate::writer`] and [`crate::watch`], so
//! a backend only has to store records and log entries and offer snapshot reads and atomic
//! write transactions.

use std::collections::BTreeMap;
use std::ops::{Bound, ControlFlow};

use bytes::Bytes;

use crate::{Error, Event, KeyValue, ListResult};

/// A key's stored state, without the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Record {
    pub(crate) create_revision: u64,
    pub(crate) mod_revision: u64,
    pub(crate) value: Bytes,
}

impl Record {
    pub(crate) fn into_key_value(self, key: String) -> KeyValue {
        KeyValue {
            key,
            value: self.value,
            create_revision: self.create_revision,
            mod_revision: self.mod_revision,
        }
    }
}

/// One entry of the event log, decoded lazily: a watch filters on the key and only pays for
/// the values of the events it delivers.
pub(crate) trait LogEntry {
    fn revision(&self) -> u64;
    fn key(&self) -> &str;
    fn event(&self) -> Result<Event, Error>;
}

/// What a visitor says after each entry of a scan.
pub(crate) type Visit = Result<ControlFlow<()>, Error>;

/// A consistent snapshot of the store.
pub(crate) trait ReadTxn {
    /// The revision of the last write the snapshot contains.
    fn revision(&self) -> Result<u64, Error>;
    /// The highest revision whose events have been dropped from the log.
    fn compacted(&self) -> Result<u64, Error>;
    fn get(&self, key: &str) -> Result<Option<Record>, Error>;
    /// Visits keys in order, from `from`, until the visitor breaks or the keys run out.
    fn scan_keys(
        &self,
        from: Bound<&str>,
        visit: &mut dyn FnMut(&str, Record) -> Visit,
    ) -> Result<(), Error>;
    /// Visits log entries with revision > `after`, in revision order.
    fn scan_log(
        &self,
        after: u64,
        visit: &mut dyn FnMut(&dyn LogEntry) -> Visit,
    ) -> Result<(), Error>;
}

/// An atomic write transaction. Nothing is visible to readers before the engine commits it,
/// and a transaction in which nothing was changed is not committed at all (no empty fsync).
pub(crate) trait WriteTxn {
    fn get(&mut self, key: &str) -> Result<Option<Record>, Error>;
    fn put(&mut self, key: &str, record: &Record) -> Result<(), Error>;
    fn remove(&mut self, key: &str) -> Result<(), Error>;
    fn append(&mut self, event: &Event) -> Result<(), Error>;
    fn set_revision(&mut self, revision: u64) -> Result<(), Error>;
    /// Drops log entries with revision ≤ `revision` and records it as the compacted revision.
    fn compact(&mut self, revision: u64) -> Result<(), Error>;
}

/// A storage backend.
///
/// Only the writer thread calls [`Engine::write`], so an engine never sees two write
/// transactions at once. Reads may run concurrently with it and with each other.
pub(crate) trait Engine: Send + Sync + 'static {
    /// Whether calls may block on disk I/O and so belong on tokio's blocking pool rather than
    /// on an async worker.
    const BLOCKING: bool;

    fn read<R>(&self, f: impl FnOnce(&dyn ReadTxn) -> Result<R, Error>) -> Result<R, Error>;

    /// Runs `f` in one write transaction and commits it durably if `f` succeeds and changed
    /// anything; if `f` fails, nothing it did is kept.
    fn write<R>(&self, f: impl FnOnce(&mut dyn WriteTxn) -> Result<R, Error>) -> Result<R, Error>;
}

/// How many log entries one read transaction of a watch scans at most, so that replaying a
/// long log holds neither a snapshot nor a buffer of unbounded size.
pub(crate) const LOG_PAGE: usize = 1024;

/// One page of keys under `prefix`, after `start_after`, read from one snapshot.
pub(crate) fn list_page(
    txn: &dyn ReadTxn,
    prefix: &str,
    start_after: Option<&str>,
    limit: Option<usize>,
) -> Result<ListResult, Error> {
    let revision = txn.revision()?;
    // A start_after below the prefix would scan keys that cannot match; start at the prefix.
    let from = match start_after {
        Some(after) if after >= prefix => Bound::Excluded(after),
        _ => Bound::Included(prefix),
    };
    let mut items = Vec::new();
    let mut more = false;
    txn.scan_keys(from, &mut |key, record| {
        if !key.starts_with(prefix) {
            return Ok(ControlFlow::Break(()));
        }
        if limit.is_some_and(|limit| items.len() >= limit) {
            more = true;
            return Ok(ControlFlow::Break(()));
        }
        items.push(record.into_key_value(key.to_owned()));
        Ok(ControlFlow::Continue(()))
    })?;
    Ok(ListResult {
        items,
        revision,
        more,
    })
}

/// One page of keys under `prefix` as they were at `at`, an earlier revision: the page of
/// a paged list that must show the state its first page showed.
///
/// Keys untouched since `at` are read as they are now; for every key written since, the
/// first later write in the log records what it replaced (absent, for a create). Fails with
/// [`Error::Compacted`] if the log no longer reaches back to `at`.
pub(crate) fn list_page_at(
    txn: &dyn ReadTxn,
    prefix: &str,
    start_after: Option<&str>,
    limit: Option<usize>,
    at: u64,
) -> Result<ListResult, Error> {
    let revision = txn.revision()?;
    if at >= revision {
        return list_page(txn, prefix, start_after, limit);
    }
    let compacted = txn.compacted()?;
    if at < compacted {
        return Err(Error::Compacted {
            requested: at,
            compacted,
        });
    }
    let in_range =
        |key: &str| key.starts_with(prefix) && start_after.is_none_or(|after| key > after);
    // Each key's state at `at`, for the keys written since; None = it did not exist then.
    let mut then: BTreeMap<String, Option<Record>> = BTreeMap::new();
    txn.scan_log(at, &mut |entry| {
        let key = entry.key();
        if !in_range(key) || then.contains_key(key) {
            return Ok(ControlFlow::Continue(()));
        }
        let event = entry.event()?;
        let state = match event.prev_value {
            Some(value) if !event.is_create() => {
                if event.prev_mod_revision == 0 {
                    // Written by format 1, which did not record what a write replaced.
                    return Err(Error::Compacted {
                        requested: at,
                        compacted: event.revision,
                    });
                }
                Some(Record {
                    create_revision: event.create_revision,
                    mod_revision: event.prev_mod_revision,
                    value,
                })
            }
            _ => None,
        };
        then.insert(event.key, state);
        Ok(ControlFlow::Continue(()))
    })?;

    let mut page = Page {
        items: Vec::new(),
        limit,
        more: false,
    };
    let mut restored = then.into_iter().peekable();
    let from = match start_after {
        Some(after) if after >= prefix => Bound::Excluded(after),
        _ => Bound::Included(prefix),
    };
    let mut full = false;
    txn.scan_keys(from, &mut |key, record| {
        if !key.starts_with(prefix) {
            return Ok(ControlFlow::Break(()));
        }
        // Keys deleted since `at` that sort before this one come first.
        while let Some((gone, state)) = restored.next_if(|(k, _)| k.as_str() < key) {
            if !page.push_then(state.map(|record| (gone, record)), &mut full) {
                return Ok(ControlFlow::Break(()));
            }
        }
        let state = match restored.next_if(|(k, _)| k == key) {
            Some((_, state)) => state,
            None => Some(record),
        };
        let state = state.map(|record| (key.to_owned(), record));
        Ok(if page.push(state) {
            ControlFlow::Continue(())
        } else {
            full = true;
            ControlFlow::Break(())
        })
    })?;
    if !full {
        for (gone, state) in restored {
            if !page.push_then(state.map(|record| (gone, record)), &mut full) {
                break;
            }
        }
    }
    Ok(ListResult {
        items: page.items,
        revision: at,
        more: page.more,
    })
}

/// A list page being filled, up to its limit.
struct Page {
    items: Vec<KeyValue>,
    limit: Option<usize>,
    more: bool,
}

impl Page {
    /// Adds a key if it existed (`Some`); false once the page is full and a key was left out.
    fn push(&mut self, state: Option<(String, Record)>) -> bool {
        let Some((key, record)) = state else {
            return true;
        };
        if self.limit.is_some_and(|limit| self.items.len() >= limit) {
            self.more = true;
            return false;
        }
        self.items.push(record.into_key_value(key));
        true
    }

    fn push_then(&mut self, state: Option<(String, Record)>, full: &mut bool) -> bool {
        let pushed = self.push(state);
        *full |= !pushed;
        pushed
    }
}

/// A page of the event log as a watch reads it.
#[derive(Debug)]
pub(crate) struct EventPage {
    /// Events under the prefix, in revision order.
    pub(crate) events: Vec<Event>,
    /// Every revision up to this one has been accounted for (delivered or filtered out).
    pub(crate) position: u64,
    /// Whether the page reached the end of the log as of its snapshot.
    pub(crate) complete: bool,
}

/// Reads at most [`LOG_PAGE`] log entries after `after`, keeping those under `prefix`.
///
/// Fails with [`Error::Compacted`] if events after `after` have already been dropped: the
/// compacted revision is read from the same snapshot as the log, so a concurrent compaction
/// cannot slip in between the check and the read.
pub(crate) fn event_page(txn: &dyn ReadTxn, prefix: &str, after: u64) -> Result<EventPage, Error> {
    let compacted = txn.compacted()?;
    if after < compacted {
        return Err(Error::Compacted {
            requested: after,
            compacted,
        });
    }
    let revision = txn.revision()?;
    let mut events = Vec::new();
    let mut scanned = 0;
    let mut last = after;
    txn.scan_log(after, &mut |entry| {
        scanned += 1;
        last = entry.revision();
        if entry.key().starts_with(prefix) {
            events.push(entry.event()?);
        }
        Ok(if scanned >= LOG_PAGE {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        })
    })?;
    let complete = scanned < LOG_PAGE;
    // The log holds every revision up to the snapshot's, so a complete page accounts for all
    // of them; a watch from the future stays at its own start.
    let position = if complete { revision.max(after) } else { last };
    Ok(EventPage {
        events,
        position,
        complete,
    })
}
