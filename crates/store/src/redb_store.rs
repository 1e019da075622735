//! The redb backend: the embedded, durable default.
//!
//! Three tables, all in one file:
//!
//! ```text
//! meta  &str -> u64     "format" (stored format version), "revision", "compacted"
//! keys  &str -> bytes   key -> record (see crate::codec)
//! log   u64  -> bytes   revision -> log entry (see crate::codec)
//! ```
//!
//! `meta` keeps its key and value types forever, so that any build can read the format
//! version and refuse data it does not understand before touching the other tables.

use std::ops::{Bound, ControlFlow};
use std::path::{Path, PathBuf};

use redb::{
    Database, Durability, ReadOnlyTable, ReadableDatabase, ReadableTable, Table, TableDefinition,
};

use crate::codec::{self, FORMAT_VERSION, READABLE_FORMATS};
use crate::core::{Core, impl_store};
use crate::engine::{Engine, LogEntry, ReadTxn, Record, Visit, WriteTxn};
use crate::{Error, Event, StoreOptions};

const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const KEYS: TableDefinition<&str, &[u8]> = TableDefinition::new("keys");
const LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("log");

const FORMAT: &str = "format";
const REVISION: &str = "revision";
const COMPACTED: &str = "compacted";

/// Faults in the redb file's own structure.
#[derive(Debug, thiserror::Error)]
enum RedbError {
    #[error("store metadata has no {0:?} entry")]
    MissingMeta(&'static str),
    #[error("database has data but no store format version")]
    Unversioned,
}

/// A [`Store`](crate::Store) in one redb file; every acknowledged write is on disk.
///
/// Opening an existing file recovers every key, the revision, the compacted revision and the
/// retained event log. One process at a time may have the file open.
pub struct RedbStore {
    core: Core<RedbEngine>,
    path: PathBuf,
}

impl RedbStore {
    /// Opens the store at `path`, creating the file if it does not exist.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, Error> {
        Self::open_with_options(path, &StoreOptions::default())
    }

    /// Opens the store at `path` with non-default tuning.
    pub fn open_with_options(
        path: impl AsRef<Path>,
        options: &StoreOptions,
    ) -> Result<Self, Error> {
        let path = path.as_ref();
        let engine = RedbEngine::open(path)?;
        Ok(RedbStore {
            core: Core::start(engine, options)?,
            path: path.to_owned(),
        })
    }

    /// The file the store lives in.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl std::fmt::Debug for RedbStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedbStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl_store!(RedbStore);

pub(crate) struct RedbEngine {
    db: Database,
}

impl RedbEngine {
    fn open(path: &Path) -> Result<Self, Error> {
        let db = Database::create(path).map_err(Error::backend_fn("open the database file"))?;
        let engine = RedbEngine { db };
        engine.initialize()?;
        Ok(engine)
    }

    /// Checks the format version of an existing file, or writes the initial metadata into a
    /// new one.
    fn initialize(&self) -> Result<(), Error> {
        let txn = self.begin_write()?;
        // A file with no tables at all is new; one with tables but no format version was
        // not written by this store, and is left alone.
        let fresh = txn
            .list_tables()
            .map_err(Error::backend_fn("list the database tables"))?
            .next()
            .is_none();
        let mut upgrade = false;
        {
            let mut meta = txn
                .open_table(META)
                .map_err(Error::backend_fn("open the metadata table"))?;
            let format = meta
                .get(FORMAT)
                .map_err(Error::backend_fn("read the format version"))?
                .map(|guard| guard.value());
            match format {
                Some(FORMAT_VERSION) => {}
                Some(found) if READABLE_FORMATS.contains(&found) => {
                    meta.insert(FORMAT, FORMAT_VERSION)
                        .map_err(Error::backend_fn("upgrade the format version"))?;
                    upgrade = true;
                }
                Some(found) => {
                    return Err(Error::UnsupportedFormat {
                        found,
                        supported: FORMAT_VERSION,
                    });
                }
                None if fresh => {
                    for (name, value) in [(FORMAT, FORMAT_VERSION), (REVISION, 0), (COMPACTED, 0)] {
                        meta.insert(name, value)
                            .map_err(Error::backend_fn("write the metadata"))?;
                    }
                }
                None => {
                    return Err(Error::backend(
                        "read the format version",
                        RedbError::Unversioned,
                    ));
                }
            }
        }
        if upgrade {
            return txn
                .commit()
                .map_err(Error::backend_fn("commit the format upgrade"));
        }
        if fresh {
            // Create the other tables now, so that readers can always open them.
            txn.open_table(KEYS)
                .map_err(Error::backend_fn("create the keys table"))?;
            txn.open_table(LOG)
                .map_err(Error::backend_fn("create the log table"))?;
            txn.commit()
                .map_err(Error::backend_fn("commit the initial metadata"))
        } else {
            txn.abort()
                .map_err(Error::backend_fn("end the opening transaction"))
        }
    }

    fn begin_write(&self) -> Result<redb::WriteTransaction, Error> {
        let mut txn = self
            .db
            .begin_write()
            .map_err(Error::backend_fn("begin a write transaction"))?;
        // Immediate: commit returns only after fsync, so a write is never acknowledged
        // before it is durable.
        txn.set_durability(Durability::Immediate)
            .map_err(Error::backend_fn("set write durability"))?;
        Ok(txn)
    }
}

impl Engine for RedbEngine {
    const BLOCKING: bool = true;

    fn read<R>(&self, f: impl FnOnce(&dyn ReadTxn) -> Result<R, Error>) -> Result<R, Error> {
        let txn = self
            .db
            .begin_read()
            .map_err(Error::backend_fn("begin a read transaction"))?;
        let read = RedbRead {
            meta: txn
                .open_table(META)
                .map_err(Error::backend_fn("open the metadata table"))?,
            keys: txn
                .open_table(KEYS)
                .map_err(Error::backend_fn("open the keys table"))?,
            log: txn
                .open_table(LOG)
                .map_err(Error::backend_fn("open the log table"))?,
        };
        f(&read)
    }

    fn write<R>(&self, f: impl FnOnce(&mut dyn WriteTxn) -> Result<R, Error>) -> Result<R, Error> {
        let txn = self.begin_write()?;
        let outcome = {
            let mut write = RedbWrite {
                meta: txn
                    .open_table(META)
                    .map_err(Error::backend_fn("open the metadata table"))?,
                keys: txn
                    .open_table(KEYS)
                    .map_err(Error::backend_fn("open the keys table"))?,
                log: txn
                    .open_table(LOG)
                    .map_err(Error::backend_fn("open the log table"))?,
                dirty: false,
            };
            f(&mut write).map(|result| (result, write.dirty))
        };
        match outcome {
            Ok((result, true)) => {
                txn.commit()
                    .map_err(Error::backend_fn("commit a write transaction"))?;
                Ok(result)
            }
            Ok((result, false)) => {
                txn.abort()
                    .map_err(Error::backend_fn("end an unchanged write transaction"))?;
                Ok(result)
            }
            Err(error) => {
                if let Err(abort) = txn.abort() {
                    tracing::warn!(error = %abort, "could not abort a failed write transaction");
                }
                Err(error)
            }
        }
    }
}

fn meta_value(
    meta: &impl ReadableTable<&'static str, u64>,
    name: &'static str,
) -> Result<u64, Error> {
    meta.get(name)
        .map_err(Error::backend_fn("read the store metadata"))?
        .map(|guard| guard.value())
        .ok_or_else(|| Error::backend("read the store metadata", RedbError::MissingMeta(name)))
}

fn decode_error(error: codec::CodecError) -> Error {
    Error::backend("decode stored data", error)
}

struct RedbRead {
    meta: ReadOnlyTable<&'static str, u64>,
    keys: ReadOnlyTable<&'static str, &'static [u8]>,
    log: ReadOnlyTable<u64, &'static [u8]>,
}

struct RedbLogEntry<'a> {
    revision: u64,
    key: &'a str,
    bytes: &'a [u8],
}

impl LogEntry for RedbLogEntry<'_> {
    fn revision(&self) -> u64 {
        self.revision
    }

    fn key(&self) -> &str {
        self.key
    }

    fn event(&self) -> Result<Event, Error> {
        codec::decode_event(self.revision, self.bytes).map_err(decode_error)
    }
}

impl ReadTxn for RedbRead {
    fn revision(&self) -> Result<u64, Error> {
        meta_value(&self.meta, REVISION)
    }

    fn compacted(&self) -> Result<u64, Error> {
        meta_value(&self.meta, COMPACTED)
    }

    fn get(&self, key: &str) -> Result<Option<Record>, Error> {
        read_record(&self.keys, key)
    }

    fn scan_keys(
        &self,
        from: Bound<&str>,
        visit: &mut dyn FnMut(&str, Record) -> Visit,
    ) -> Result<(), Error> {
        let range = self
            .keys
            .range::<&str>((from, Bound::Unbounded))
            .map_err(Error::backend_fn("scan keys"))?;
        for item in range {
            let (key, value) = item.map_err(Error::backend_fn("scan keys"))?;
            let record = codec::decode_record(value.value()).map_err(decode_error)?;
            if visit(key.value(), record)?.is_break() {
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
        let range = self
            .log
            .range::<u64>((Bound::Excluded(after), Bound::Unbounded))
            .map_err(Error::backend_fn("scan the event log"))?;
        for item in range {
            let (revision, value) = item.map_err(Error::backend_fn("scan the event log"))?;
            let bytes = value.value();
            let entry = RedbLogEntry {
                revision: revision.value(),
                key: codec::decode_event_key(bytes).map_err(decode_error)?,
                bytes,
            };
            if let ControlFlow::Break(()) = visit(&entry)? {
                break;
            }
        }
        Ok(())
    }
}

fn read_record(
    keys: &impl ReadableTable<&'static str, &'static [u8]>,
    key: &str,
) -> Result<Option<Record>, Error> {
    let Some(value) = keys.get(key).map_err(Error::backend_fn("read a key"))? else {
        return Ok(None);
    };
    codec::decode_record(value.value())
        .map(Some)
        .map_err(decode_error)
}

struct RedbWrite<'t> {
    meta: Table<'t, &'static str, u64>,
    keys: Table<'t, &'static str, &'static [u8]>,
    log: Table<'t, u64, &'static [u8]>,
    /// Whether anything was written, i.e. whether the transaction is worth an fsync.
    dirty: bool,
}

impl WriteTxn for RedbWrite<'_> {
    fn get(&mut self, key: &str) -> Result<Option<Record>, Error> {
        read_record(&self.keys, key)
    }

    fn put(&mut self, key: &str, record: &Record) -> Result<(), Error> {
        self.dirty = true;
        self.keys
            .insert(key, codec::encode_record(record).as_slice())
            .map_err(Error::backend_fn("write a key"))?;
        Ok(())
    }

    fn remove(&mut self, key: &str) -> Result<(), Error> {
        self.dirty = true;
        self.keys
            .remove(key)
            .map_err(Error::backend_fn("remove a key"))?;
        Ok(())
    }

    fn append(&mut self, event: &Event) -> Result<(), Error> {
        self.dirty = true;
        let bytes = codec::encode_event(event).map_err(decode_error)?;
        self.log
            .insert(event.revision, bytes.as_slice())
            .map_err(Error::backend_fn("append to the event log"))?;
        Ok(())
    }

    fn set_revision(&mut self, revision: u64) -> Result<(), Error> {
        self.dirty = true;
        self.meta
            .insert(REVISION, revision)
            .map_err(Error::backend_fn("write the revision"))?;
        Ok(())
    }

    fn compact(&mut self, revision: u64) -> Result<(), Error> {
        self.dirty = true;
        self.log
            .retain_in::<u64, _>(..=revision, |_, _| false)
            .map_err(Error::backend_fn("compact the event log"))?;
        self.meta
            .insert(COMPACTED, revision)
            .map_err(Error::backend_fn("write the compacted revision"))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_a_newer_format() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("store.redb");
        drop(RedbEngine::open(&path)?);
        {
            let db = Database::create(&path)?;
            let txn = db.begin_write()?;
            txn.open_table(META)?.insert(FORMAT, FORMAT_VERSION + 1)?;
            txn.commit()?;
        }
        match RedbEngine::open(&path) {
            Err(Error::UnsupportedFormat { found, supported }) => {
                assert_eq!((found, supported), (FORMAT_VERSION + 1, FORMAT_VERSION));
            }
            Err(other) => panic!("expected UnsupportedFormat, got {other}"),
            Ok(_) => panic!("a newer format was opened"),
        }
        Ok(())
    }

    #[test]
    fn opens_format_1_and_records_format_2() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("store.redb");
        drop(RedbEngine::open(&path)?);
        {
            let db = Database::create(&path)?;
            let txn = db.begin_write()?;
            txn.open_table(META)?.insert(FORMAT, 1)?;
            txn.commit()?;
        }
        drop(RedbEngine::open(&path)?);
        let db = Database::create(&path)?;
        let txn = db.begin_read()?;
        let format = txn.open_table(META)?.get(FORMAT)?.map(|v| v.value());
        assert_eq!(format, Some(FORMAT_VERSION));
        Ok(())
    }

    #[test]
    fn refuses_unversioned_data() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("store.redb");
        {
            let db = Database::create(&path)?;
            let txn = db.begin_write()?;
            txn.open_table(META)?.insert(REVISION, 5)?;
            txn.commit()?;
        }
        assert!(matches!(
            RedbEngine::open(&path),
            Err(Error::Backend { .. })
        ));
        Ok(())
    }
}
