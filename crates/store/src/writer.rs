//! The single writer and its group commit.
//!
//! Every write request goes through one queue to one thread. The thread takes everything
//! pending (up to [`StoreOptions::max_batch`](crate::StoreOptions::max_batch)), applies the
//! requests in order inside ONE engine transaction — each compare-and-swap checked against
//! the state the earlier requests of the batch left — commits with one fsync, publishes the
//! events, and only then answers each caller with its own result. While one batch is being
//! made durable the next one queues up, so the batch size grows with the load by itself and
//! an idle store still answers a lone write after a single fsync, without waiting for
//! company.
//!
//! A request that fails its check (AlreadyExists, Conflict, NotFound) changes nothing and
//! takes no revision; the others in its batch are unaffected. If the transaction itself
//! fails, every request in it gets that error, and none of them took effect.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::engine::{Engine, Record, WriteTxn};
use crate::{Error, Event, EventKind, KeyValue};

/// A write the caller asked for.
#[derive(Debug)]
pub(crate) enum Op {
    Create {
        key: String,
        value: Bytes,
    },
    Update {
        key: String,
        expected: u64,
        value: Bytes,
    },
    Delete {
        key: String,
        expected: Option<u64>,
    },
    Compact {
        revision: u64,
    },
}

/// What a successful [`Op`] produced.
#[derive(Debug)]
pub(crate) enum Applied {
    /// Create, update or delete: the key as written (for a delete, as it was, at the delete's
    /// revision).
    Write(KeyValue),
    /// Compaction: the compacted revision now in force.
    Compacted(u64),
}

pub(crate) type Reply = oneshot::Sender<Result<Applied, Error>>;

/// What travels through the writer's queue.
#[derive(Debug)]
pub(crate) enum Request {
    Op {
        op: Op,
        reply: Reply,
    },
    /// Finish what is queued before this, then stop.
    Shutdown,
}

/// State the writer publishes for everyone else. Only the writer stores to these.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) revision: AtomicU64,
    pub(crate) compacted: AtomicU64,
    pub(crate) writes: AtomicU64,
    pub(crate) commits: AtomicU64,
    pub(crate) largest_batch: AtomicU64,
}

/// The writer thread's state.
pub(crate) struct Writer<E> {
    pub(crate) engine: Arc<E>,
    pub(crate) counters: Arc<Counters>,
    pub(crate) events: broadcast::Sender<Arc<Event>>,
    pub(crate) queue: mpsc::Receiver<Request>,
    pub(crate) max_batch: usize,
}

/// A queued request that is part of the batch being committed.
struct Pending {
    op: Op,
    reply: Reply,
}

impl<E: Engine> Writer<E> {
    /// Serves the queue until it closes (the store was dropped) or a shutdown arrives.
    ///
    /// Returning drops the queue, which answers anything still queued with `Closed` (its
    /// reply sender is dropped), and the broadcast sender, which ends every watch.
    pub(crate) fn run(mut self) {
        let mut batch = Vec::with_capacity(self.max_batch);
        loop {
            match self.queue.blocking_recv() {
                None | Some(Request::Shutdown) => break,
                Some(Request::Op { op, reply }) => batch.push(Pending { op, reply }),
            }
            let mut shutdown = false;
            while batch.len() < self.max_batch {
                match self.queue.try_recv() {
                    Ok(Request::Op { op, reply }) => batch.push(Pending { op, reply }),
                    Ok(Request::Shutdown) => {
                        shutdown = true;
                        break;
                    }
                    Err(_) => break,
                }
            }
            self.commit(&mut batch);
            if shutdown {
                break;
            }
        }
        tracing::debug!("store writer stopped");
    }

    fn commit(&self, batch: &mut Vec<Pending>) {
        // Only this thread moves these, so they are exactly the committed state.
        let base_revision = self.counters.revision.load(Ordering::Acquire);
        let base_compacted = self.counters.compacted.load(Ordering::Acquire);
        let result = self.engine.write(|txn| {
            let mut state = BatchState {
                revision: base_revision,
                compacted: base_compacted,
                events: Vec::new(),
            };
            let mut outcomes = Vec::with_capacity(batch.len());
            for pending in batch.iter() {
                outcomes.push(apply(txn, &pending.op, &mut state)?);
            }
            if state.revision != base_revision {
                txn.set_revision(state.revision)?;
            }
            Ok((outcomes, state))
        });

        let writes = batch
            .iter()
            .filter(|pending| !matches!(pending.op, Op::Compact { .. }))
            .count();
        self.counters
            .writes
            .fetch_add(count_u64(writes), Ordering::Relaxed);

        match result {
            Ok((outcomes, state)) => {
                if state.revision != base_revision || state.compacted != base_compacted {
                    self.counters.commits.fetch_add(1, Ordering::Relaxed);
                    self.counters
                        .largest_batch
                        .fetch_max(count_u64(batch.len()), Ordering::Relaxed);
                }
                // Publish the revision before answering, so that a caller who got its answer
                // never sees an older current revision.
                self.counters
                    .revision
                    .store(state.revision, Ordering::Release);
                self.counters
                    .compacted
                    .store(state.compacted, Ordering::Release);
                for event in state.events {
                    // An error only means nobody is watching right now.
                    let _ = self.events.send(Arc::new(event));
                }
                for (pending, outcome) in batch.drain(..).zip(outcomes) {
                    // The caller may have given up waiting; the write stands regardless.
                    let _ = pending.reply.send(outcome);
                }
            }
            Err(error) => {
                tracing::warn!(%error, requests = batch.len(), "store write transaction failed");
                for pending in batch.drain(..) {
                    let _ = pending.reply.send(Err(error.clone()));
                }
            }
        }
    }
}

fn count_u64(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

/// Revision state as the batch so far has left it.
struct BatchState {
    revision: u64,
    compacted: u64,
    events: Vec<Event>,
}

/// Applies one request. The outer error aborts the whole transaction (the engine failed);
/// the inner one is this request's own answer and leaves the rest of the batch alone.
fn apply(
    txn: &mut dyn WriteTxn,
    op: &Op,
    state: &mut BatchState,
) -> Result<Result<Applied, Error>, Error> {
    match op {
        Op::Create { key, value } => {
            if txn.get(key)?.is_some() {
                return Ok(Err(Error::AlreadyExists { key: key.clone() }));
            }
            let revision = state.revision + 1;
            let record = Record {
                create_revision: revision,
                mod_revision: revision,
                value: value.clone(),
            };
            write(txn, state, key, &record, EventKind::Put, None)
        }
        Op::Update {
            key,
            expected,
            value,
        } => {
            let Some(current) = txn.get(key)? else {
                return Ok(Err(Error::NotFound { key: key.clone() }));
            };
            if current.mod_revision != *expected {
                return Ok(Err(Error::Conflict {
                    key: key.clone(),
                    expected: *expected,
                    actual: current.mod_revision,
                }));
            }
            let record = Record {
                create_revision: current.create_revision,
                mod_revision: state.revision + 1,
                value: value.clone(),
            };
            write(txn, state, key, &record, EventKind::Put, Some(&current))
        }
        Op::Delete { key, expected } => {
            let Some(current) = txn.get(key)? else {
                return Ok(Err(Error::NotFound { key: key.clone() }));
            };
            if let Some(expected) = *expected
                && current.mod_revision != expected
            {
                return Ok(Err(Error::Conflict {
                    key: key.clone(),
                    expected,
                    actual: current.mod_revision,
                }));
            }
            let record = Record {
                create_revision: current.create_revision,
                mod_revision: state.revision + 1,
                value: current.value.clone(),
            };
            write(txn, state, key, &record, EventKind::Delete, Some(&current))
        }
        Op::Compact { revision } => {
            // Compacting past the present would make every watch fail; stop at the present.
            let target = (*revision).min(state.revision);
            if target > state.compacted {
                txn.compact(target)?;
                state.compacted = target;
            }
            Ok(Ok(Applied::Compacted(state.compacted)))
        }
    }
}

/// Stores (or removes) the key and appends its event at the next revision.
fn write(
    txn: &mut dyn WriteTxn,
    state: &mut BatchState,
    key: &str,
    record: &Record,
    kind: EventKind,
    prev: Option<&Record>,
) -> Result<Result<Applied, Error>, Error> {
    let prev_value = prev.map(|prev| prev.value.clone());
    let prev_mod_revision = prev.map_or(0, |prev| prev.mod_revision);
    let revision = record.mod_revision;
    match kind {
        EventKind::Put => txn.put(key, record)?,
        EventKind::Delete => txn.remove(key)?,
    }
    let event = Event {
        revision,
        kind,
        key: key.to_owned(),
        value: record.value.clone(),
        prev_value,
        create_revision: record.create_revision,
        prev_mod_revision,
    };
    txn.append(&event)?;
    state.revision = revision;
    state.events.push(event);
    Ok(Ok(Applied::Write(
        record.clone().into_key_value(key.to_owned()),
    )))
}
