//! The machinery every backend shares: the handle that owns the writer thread, the read path
//! (on tokio's blocking pool when the engine does disk I/O), and shutdown.
//!
//! Ownership is arranged so that dropping the last store handle stops everything: the
//! handle holds the only sender of the writer's queue, so dropping it lets the writer drain
//! the queue and stop; the writer then drops the last broadcast sender, which ends every
//! watch. Watches hold only a weak reference to the handle, so they never keep a store alive.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

use bytes::Bytes;
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::engine::{self, Engine, ReadTxn};
use crate::writer::{Applied, Counters, Op, Request, Writer};
use crate::{Error, Event, KeyValue, ListResult, Stats, StoreOptions, WatchStream, watch};

/// A running store over engine `E`; the backends wrap one of these.
pub(crate) struct Core<E: Engine> {
    shared: Arc<Shared<E>>,
}

pub(crate) struct Shared<E: Engine> {
    pub(crate) engine: Arc<E>,
    counters: Arc<Counters>,
    /// The only sender: when the handle goes, the writer sees its queue close.
    queue: mpsc::Sender<Request>,
    /// Kept to subscribe new watches; taken on close so that watches end.
    events: Mutex<Option<broadcast::Sender<Arc<Event>>>>,
    closed: AtomicBool,
    /// Last, so that it is dropped after `queue`: its drop waits for the writer, which only
    /// stops once the queue has closed.
    writer: WriterThread,
}

impl<E: Engine> Shared<E> {
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    fn check_open(&self) -> Result<(), Error> {
        if self.is_closed() {
            Err(Error::Closed)
        } else {
            Ok(())
        }
    }

    pub(crate) fn subscribe(&self) -> Result<broadcast::Receiver<Arc<Event>>, Error> {
        lock(&self.events)
            .as_ref()
            .map(broadcast::Sender::subscribe)
            .ok_or(Error::Closed)
    }
}

/// Joins the writer thread when dropped, so that a dropped store has released its files
/// (a redb database can be opened again right away) and acknowledged every queued write.
struct WriterThread(Mutex<Option<JoinHandle<()>>>);

impl WriterThread {
    fn take(&self) -> Option<JoinHandle<()>> {
        lock(&self.0).take()
    }
}

impl Drop for WriterThread {
    fn drop(&mut self) {
        if let Some(handle) = self.take()
            && handle.join().is_err()
        {
            tracing::error!("store writer thread panicked");
        }
    }
}

/// Locks a mutex whose data stays consistent even if a holder panicked (every critical
/// section here is a single take or read).
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Runs a read against `engine`, off the async workers when it may block on disk.
pub(crate) async fn read_engine<E: Engine, R: Send + 'static>(
    engine: Arc<E>,
    f: impl FnOnce(&dyn ReadTxn) -> Result<R, Error> + Send + 'static,
) -> Result<R, Error> {
    if E::BLOCKING {
        tokio::task::spawn_blocking(move || engine.read(f))
            .await
            .map_err(Error::backend_fn("run a read on the blocking pool"))?
    } else {
        engine.read(f)
    }
}

impl<E: Engine> Core<E> {
    /// Recovers the revisions from `engine` and starts the writer thread.
    pub(crate) fn start(engine: E, options: &StoreOptions) -> Result<Self, Error> {
        let (revision, compacted) = engine.read(|txn| Ok((txn.revision()?, txn.compacted()?)))?;
        let engine = Arc::new(engine);
        let counters = Arc::new(Counters::default());
        counters.revision.store(revision, Ordering::Release);
        counters.compacted.store(compacted, Ordering::Release);

        let max_batch = options.max_batch.max(1);
        // Room for a few batches, so producers rarely wait while one commits.
        let (queue, receiver) = mpsc::channel(max_batch.saturating_mul(4));
        let (events, _) = broadcast::channel(options.watch_buffer.max(1));
        let writer = Writer {
            engine: Arc::clone(&engine),
            counters: Arc::clone(&counters),
            events: events.clone(),
            queue: receiver,
            max_batch,
        };
        let handle = std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || writer.run())
            .map_err(Error::backend_fn("start the writer thread"))?;
        tracing::debug!(revision, compacted, "store opened");
        Ok(Core {
            shared: Arc::new(Shared {
                engine,
                counters,
                queue,
                events: Mutex::new(Some(events)),
                closed: AtomicBool::new(false),
                writer: WriterThread(Mutex::new(Some(handle))),
            }),
        })
    }

    async fn read<R: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn ReadTxn) -> Result<R, Error> + Send + 'static,
    ) -> Result<R, Error> {
        self.shared.check_open()?;
        read_engine(Arc::clone(&self.shared.engine), f).await
    }

    /// Queues a write and waits until the writer has committed it (or refused it).
    async fn submit(&self, op: Op) -> Result<Applied, Error> {
        self.shared.check_open()?;
        let (reply, answer) = oneshot::channel();
        self.shared
            .queue
            .send(Request::Op { op, reply })
            .await
            .map_err(|_| Error::Closed)?;
        // A dropped reply means the writer stopped before reaching this request.
        answer.await.map_err(|_| Error::Closed)?
    }

    async fn submit_write(&self, op: Op) -> Result<KeyValue, Error> {
        match self.submit(op).await? {
            Applied::Write(kv) => Ok(kv),
            Applied::Compacted(_) => unreachable_answer(),
        }
    }

    pub(crate) async fn get(&self, key: &str) -> Result<Option<KeyValue>, Error> {
        let key = key.to_owned();
        self.read(move |txn| Ok(txn.get(&key)?.map(|record| record.into_key_value(key))))
            .await
    }

    pub(crate) async fn list(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: Option<usize>,
    ) -> Result<ListResult, Error> {
        let prefix = prefix.to_owned();
        let start_after = start_after.map(str::to_owned);
        self.read(move |txn| engine::list_page(txn, &prefix, start_after.as_deref(), limit))
            .await
    }

    pub(crate) async fn list_at(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: Option<usize>,
        revision: u64,
    ) -> Result<ListResult, Error> {
        let prefix = prefix.to_owned();
        let start_after = start_after.map(str::to_owned);
        self.read(move |txn| {
            engine::list_page_at(txn, &prefix, start_after.as_deref(), limit, revision)
        })
        .await
    }

    pub(crate) async fn create(&self, key: &str, value: Bytes) -> Result<KeyValue, Error> {
        let key = key.to_owned();
        self.submit_write(Op::Create { key, value }).await
    }

    pub(crate) async fn update(
        &self,
        key: &str,
        expected: u64,
        value: Bytes,
    ) -> Result<KeyValue, Error> {
        let key = key.to_owned();
        self.submit_write(Op::Update {
            key,
            expected,
            value,
        })
        .await
    }

    pub(crate) async fn delete(&self, key: &str, expected: Option<u64>) -> Result<KeyValue, Error> {
        let key = key.to_owned();
        self.submit_write(Op::Delete { key, expected }).await
    }

    pub(crate) async fn compact(&self, revision: u64) -> Result<u64, Error> {
        match self.submit(Op::Compact { revision }).await? {
            Applied::Compacted(compacted) => Ok(compacted),
            Applied::Write(_) => unreachable_answer(),
        }
    }

    pub(crate) async fn watch(
        &self,
        prefix: &str,
        from_revision: u64,
    ) -> Result<WatchStream, Error> {
        self.shared.check_open()?;
        watch::start(&self.shared, prefix, from_revision).await
    }

    pub(crate) async fn current_revision(&self) -> Result<u64, Error> {
        self.shared.check_open()?;
        Ok(self.shared.counters.revision.load(Ordering::Acquire))
    }

    pub(crate) async fn compacted_revision(&self) -> Result<u64, Error> {
        self.shared.check_open()?;
        Ok(self.shared.counters.compacted.load(Ordering::Acquire))
    }

    pub(crate) fn stats(&self) -> Stats {
        let counters = &self.shared.counters;
        Stats {
            writes: counters.writes.load(Ordering::Relaxed),
            commits: counters.commits.load(Ordering::Relaxed),
            largest_batch: counters.largest_batch.load(Ordering::Relaxed),
        }
    }

    pub(crate) async fn close(&self) {
        self.shared.closed.store(true, Ordering::Release);
        // Watches subscribed from here on are refused; existing ones end once the writer,
        // holding the other sender, stops.
        drop(lock(&self.shared.events).take());
        // Fails only if the writer is already gone, which is what we want anyway.
        let _ = self.shared.queue.send(Request::Shutdown).await;
        if let Some(handle) = self.shared.writer.take() {
            match tokio::task::spawn_blocking(move || handle.join()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => tracing::error!("store writer thread panicked"),
                Err(error) => tracing::error!(%error, "could not wait for the store writer"),
            }
        }
    }
}

/// The writer answers each op with the matching `Applied` variant; anything else would be a
/// bug in this crate, reported as a backend error rather than a panic.
fn unreachable_answer<T>() -> Result<T, Error> {
    Err(Error::backend(
        "match a write with its answer",
        std::io::Error::other("writer answered with the wrong kind of result"),
    ))
}

/// Implements [`Store`](crate::Store) for a backend type with a `core: Core<_>` field.
macro_rules! impl_store {
    ($store:ty) => {
        impl $crate::Store for $store {
            fn get<'a>(
                &'a self,
                key: &'a str,
            ) -> ::futures::future::BoxFuture<'a, Result<Option<$crate::KeyValue>, $crate::Error>>
            {
                Box::pin(self.core.get(key))
            }

            fn list<'a>(
                &'a self,
                prefix: &'a str,
                start_after: Option<&'a str>,
                limit: Option<usize>,
            ) -> ::futures::future::BoxFuture<'a, Result<$crate::ListResult, $crate::Error>> {
                Box::pin(self.core.list(prefix, start_after, limit))
            }

            fn list_at<'a>(
                &'a self,
                prefix: &'a str,
                start_after: Option<&'a str>,
                limit: Option<usize>,
                revision: u64,
            ) -> ::futures::future::BoxFuture<'a, Result<$crate::ListResult, $crate::Error>> {
                Box::pin(self.core.list_at(prefix, start_after, limit, revision))
            }

            fn create<'a>(
                &'a self,
                key: &'a str,
                value: ::bytes::Bytes,
            ) -> ::futures::future::BoxFuture<'a, Result<$crate::KeyValue, $crate::Error>> {
                Box::pin(self.core.create(key, value))
            }

            fn update<'a>(
                &'a self,
                key: &'a str,
                expected_mod_revision: u64,
                value: ::bytes::Bytes,
            ) -> ::futures::future::BoxFuture<'a, Result<$crate::KeyValue, $crate::Error>> {
                Box::pin(self.core.update(key, expected_mod_revision, value))
            }

            fn delete<'a>(
                &'a self,
                key: &'a str,
                expected_mod_revision: Option<u64>,
            ) -> ::futures::future::BoxFuture<'a, Result<$crate::KeyValue, $crate::Error>> {
                Box::pin(self.core.delete(key, expected_mod_revision))
            }

            fn watch<'a>(
                &'a self,
                prefix: &'a str,
                from_revision: u64,
            ) -> ::futures::future::BoxFuture<'a, Result<$crate::WatchStream, $crate::Error>> {
                Box::pin(self.core.watch(prefix, from_revision))
            }

            fn compact(
                &self,
                revision: u64,
            ) -> ::futures::future::BoxFuture<'_, Result<u64, $crate::Error>> {
                Box::pin(self.core.compact(revision))
            }

            fn current_revision(
                &self,
            ) -> ::futures::future::BoxFuture<'_, Result<u64, $crate::Error>> {
                Box::pin(self.core.current_revision())
            }

            fn compacted_revision(
                &self,
            ) -> ::futures::future::BoxFuture<'_, Result<u64, $crate::Error>> {
                Box::pin(self.core.compacted_revision())
            }

            fn stats(&self) -> $crate::Stats {
                self.core.stats()
            }

            fn close(&self) -> ::futures::future::BoxFuture<'_, ()> {
                Box::pin(self.core.close())
            }
        }
    };
}

pub(crate) use impl_store;
