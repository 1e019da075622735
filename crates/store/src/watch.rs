//! Watch: replay from the event log, then follow the live broadcast, with no gap and no
//! duplicate.
//!
//! A watch is a small state machine driven by polling its stream (no task is spawned, so
//! dropping the stream frees everything):
//!
//! ```text
//!            page incomplete                     Lagged / revision gap
//!           ┌──────────────┐            ┌─────────────────────────────────┐
//!           ▼              │            │                                 │
//!  start ─► Replay ────────┴─► Live ◄───┴── event ≤ position: skip        │
//!           │   ▲  page complete  │         event = position+1: deliver   │
//!           │   └─────────────────┘◄──────────────────────────────────────┘
//!           │ Compacted / engine error: yield the error, then end
//!           ▼
//!          end  ◄── broadcast closed (store closed or dropped)
//! ```
//!
//! `position` is the highest revision the watch has accounted for, delivered or filtered
//! out. The receiver subscribes *before* the first log read, so every event committed after
//! that read's snapshot reaches the receiver: nothing falls between the log and the
//! broadcast, and events the log already gave are recognised by their revision and skipped.
//! Every write is broadcast in revision order, so live revisions are consecutive; a hole
//! means events were lost and the log fills it.

use std::collections::VecDeque;
use std::sync::{Arc, Weak};

use futures::StreamExt;
use tokio::sync::broadcast::{self, error::RecvError};

use crate::core::{Shared, read_engine};
use crate::engine::{self, Engine};
use crate::{Error, Event, WatchStream};

/// Starts a watch of keys under `prefix` for events after `from_revision`.
///
/// The first page of the log is read here, so that a watch from a compacted revision fails
/// with [`Error::Compacted`] before any stream exists.
pub(crate) async fn start<E: Engine>(
    shared: &Arc<Shared<E>>,
    prefix: &str,
    from_revision: u64,
) -> Result<WatchStream, Error> {
    let receiver = shared.subscribe()?;
    let mut watcher = Watcher {
        store: Arc::downgrade(shared),
        receiver,
        prefix: prefix.into(),
        position: from_revision,
        pending: VecDeque::new(),
        phase: Phase::Replay,
    };
    watcher.read_page(Arc::clone(&shared.engine)).await?;
    Ok(futures::stream::unfold(watcher, Watcher::next)
        .fuse()
        .boxed())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Reading the event log from `position`.
    Replay,
    /// Following the broadcast.
    Live,
    /// An error was delivered; the stream ends.
    Done,
}

struct Watcher<E: Engine> {
    /// Weak: a watch must not keep a dropped store (and its writer) alive.
    store: Weak<Shared<E>>,
    receiver: broadcast::Receiver<Arc<Event>>,
    prefix: Arc<str>,
    position: u64,
    /// Events read but not yet handed out.
    pending: VecDeque<Event>,
    phase: Phase,
}

impl<E: Engine> Watcher<E> {
    async fn next(mut self) -> Option<(Result<Event, Error>, Self)> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Some((Ok(event), self));
            }
            match self.phase {
                Phase::Done => return None,
                Phase::Replay => {
                    let engine = {
                        let store = self.store.upgrade()?;
                        if store.is_closed() {
                            return None;
                        }
                        Arc::clone(&store.engine)
                    };
                    if let Err(error) = self.read_page(engine).await {
                        self.phase = Phase::Done;
                        return Some((Err(error), self));
                    }
                }
                Phase::Live => match self.receiver.recv().await {
                    Ok(event) => self.follow(&event),
                    Err(RecvError::Lagged(missed)) => {
                        tracing::debug!(
                            missed,
                            position = self.position,
                            "watch lagged, replaying"
                        );
                        self.phase = Phase::Replay;
                    }
                    Err(RecvError::Closed) => return None,
                },
            }
        }
    }

    /// Reads the next page of the log; once a page reaches the end, goes live.
    async fn read_page(&mut self, engine: Arc<E>) -> Result<(), Error> {
        let prefix = Arc::clone(&self.prefix);
        let after = self.position;
        let page = read_engine(engine, move |txn| engine::event_page(txn, &prefix, after)).await?;
        self.pending.extend(page.events);
        self.position = page.position;
        self.phase = if page.complete {
            Phase::Live
        } else {
            Phase::Replay
        };
        Ok(())
    }

    fn follow(&mut self, event: &Event) {
        if event.revision <= self.position {
            return;
        }
        if event.revision != self.position + 1 {
            tracing::debug!(
                position = self.position,
                revision = event.revision,
                "watch saw a revision gap, replaying"
            );
            self.phase = Phase::Replay;
            return;
        }
        self.position = event.revision;
        if event.key.starts_with(&*self.prefix) {
            self.pending.push_back(event.clone());
        }
    }
}
