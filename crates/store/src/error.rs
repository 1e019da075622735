//! The error every [`Store`](crate::Store) operation returns.

use std::sync::Arc;

/// The cause behind [`Error::Backend`]: shared, so that one failed group commit can be
/// reported to every caller whose write was in it.
pub type BackendSource = Arc<dyn std::error::Error + Send + Sync + 'static>;

/// Why a store operation failed.
///
/// The first four variants are the answers the Kubernetes API turns into status codes
/// (404, 409 AlreadyExists, 409 Conflict, 410 Gone); the rest mean the store itself is unusable.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The key does not exist (update, delete).
    #[error("key {key:?} not found")]
    NotFound {
        /// The key that was asked for.
        key: String,
    },

    /// A create found the key already present.
    #[error("key {key:?} already exists")]
    AlreadyExists {
        /// The key that was asked for.
        key: String,
    },

    /// A compare-and-swap saw another mod_revision than the caller expected.
    #[error("key {key:?} was modified: expected mod revision {expected}, found {actual}")]
    Conflict {
        /// The key that was asked for.
        key: String,
        /// The mod_revision the caller expected.
        expected: u64,
        /// The mod_revision the key has.
        actual: u64,
    },

    /// A watch asked for events the log no longer holds.
    #[error("revision {requested} has been compacted (compacted revision is {compacted})")]
    Compacted {
        /// The revision the watch wanted to start after.
        requested: u64,
        /// Every event at or below this revision is gone.
        compacted: u64,
    },

    /// The store has been closed; nothing more can be read or written through it.
    #[error("store is closed")]
    Closed,

    /// The stored data was written by a format this build does not read.
    #[error(
        "stored format version {found} is not supported (this build reads version {supported})"
    )]
    UnsupportedFormat {
        /// The format version recorded in the data.
        found: u64,
        /// The only format version this build reads and writes.
        supported: u64,
    },

    /// The storage backend cannot answer now (etcd without quorum or out of reach); the same
    /// call may succeed later. A write that failed this way may or may not have been applied.
    #[error("storage backend is unavailable: could not {context}")]
    Unavailable {
        /// What the store was doing, phrased to follow "could not".
        context: &'static str,
        /// The backend's own error.
        #[source]
        source: BackendSource,
    },

    /// The storage engine failed; `context` says what the store was doing.
    #[error("storage backend failed to {context}")]
    Backend {
        /// What the store was doing, phrased to follow "failed to".
        context: &'static str,
        /// The engine's own error.
        #[source]
        source: BackendSource,
    },
}

impl Error {
    /// Wraps an engine error, naming what was being done.
    pub(crate) fn backend(
        context: &'static str,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Error::Backend {
            context,
            source: Arc::new(source),
        }
    }

    /// A closure for `map_err` that wraps an engine error with `context`.
    pub(crate) fn backend_fn<E>(context: &'static str) -> impl FnOnce(E) -> Self
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        move |source| Error::backend(context, source)
    }
}
