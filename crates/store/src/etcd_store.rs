//! [`EtcdStore`]: the store over an etcd v3 cluster, for control planes of several servers.
//!
//! Nothing here re-implements what etcd already is. The [`Store`](crate::Store) contract maps
//! onto etcd one to one, as kube-apiserver's storage layer and kine map it:
//!
//! | store                       | etcd                                                       |
//! | --------------------------- | ---------------------------------------------------------- |
//! | revision, `mod_revision`    | etcd's revision and the key's `mod_revision`               |
//! | create                      | `Txn` if `create_revision(key) == 0` then put, else get    |
//! | update / delete (CAS)       | `Txn` if `mod_revision(key) == expected` then put / delete |
//! | list (at a revision)        | `Range` over the prefix, `revision` set for later pages    |
//! | watch from revision R       | `Watch` from `start_revision` R + 1, with `prev_kv`        |
//! | compact(R)                  | `Compact` at R: etcd keeps the state *at* R, and a watch   |
//! |                             | or read below R is refused, exactly what a compacted log   |
//! |                             | means                                                      |
//!
//! etcd makes a write durable on a quorum of members before it answers, so an acknowledged
//! write survives losing any minority of them. Every request carries a deadline: when the
//! cluster has no quorum, calls fail with [`Error::Unavailable`] instead of hanging, and the
//! API server answers 503 until etcd recovers by itself.
//!
//! A fresh etcd is at revision 1 with nothing in it (etcd counts its initial state), so
//! revision 1 never has an event: a watch from 0 and a watch from 1 see the same events.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use etcd_client::{
    Certificate, Client, Compare, CompareOp, ConnectOptions, EventType, GetOptions, Identity,
    KvClient, PutOptions, TlsOptions, Txn, TxnOp, TxnOpResponse, WatchOptions,
};
use futures::future::BoxFuture;
use tokio_util::sync::CancellationToken;

use crate::error::BackendSource;
use crate::{Error, Event, EventKind, KeyValue, ListResult, Stats, Store, WatchStream};

/// How to reach an etcd cluster: `wasmkube server --datastore-*` as k3s spells it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct EtcdOptions {
    /// Client URLs of the members, `http://` or `https://`.
    pub endpoints: Vec<String>,
    /// PEM file of the CA that signed the members' serving certificates.
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate (with `key_file`) for members that require client TLS.
    pub cert_file: Option<PathBuf>,
    /// PEM private key of `cert_file`.
    pub key_file: Option<PathBuf>,
    /// How long one request may take before the store reports etcd unavailable.
    pub request_timeout: Duration,
}

impl EtcdOptions {
    /// Options for `endpoints`, with no TLS files and the default request timeout.
    pub fn new(endpoints: impl IntoIterator<Item = impl Into<String>>) -> Self {
        EtcdOptions {
            endpoints: endpoints.into_iter().map(Into::into).collect(),
            ca_file: None,
            cert_file: None,
            key_file: None,
            // Room for an etcd leader election (about a second by etcd's defaults) and a retry
            // on another member.
            request_timeout: Duration::from_secs(10),
        }
    }

    /// Sets the client TLS files (any of them may be `None`).
    pub fn with_tls(
        mut self,
        ca_file: Option<PathBuf>,
        cert_file: Option<PathBuf>,
        key_file: Option<PathBuf>,
    ) -> Self {
        self.ca_file = ca_file;
        self.cert_file = cert_file;
        self.key_file = key_file;
        self
    }

    /// Sets [`EtcdOptions::request_timeout`].
    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    fn tls(&self) -> Result<Option<TlsOptions>, Error> {
        let https = self.endpoints.iter().any(|e| e.starts_with("https://"));
        if !https {
            if self.ca_file.is_some() || self.cert_file.is_some() {
                return Err(invalid(
                    "--datastore-cafile and --datastore-certfile need https:// endpoints",
                ));
            }
            return Ok(None);
        }
        let read = |path: &PathBuf, what: &'static str| {
            std::fs::read(path).map_err(|source| Error::Backend {
                context: what,
                source: Arc::new(PathError {
                    path: path.clone(),
                    source,
                }),
            })
        };
        let mut tls = TlsOptions::new();
        if let Some(ca) = &self.ca_file {
            tls = tls.ca_certificate(Certificate::from_pem(read(ca, "read the etcd CA file")?));
        }
        match (&self.cert_file, &self.key_file) {
            (Some(cert), Some(key)) => {
                tls = tls.identity(Identity::from_pem(
                    read(cert, "read the etcd client certificate")?,
                    read(key, "read the etcd client key")?,
                ));
            }
            (None, None) => {}
            _ => {
                return Err(invalid(
                    "--datastore-certfile and --datastore-keyfile go together",
                ));
            }
        }
        Ok(Some(tls))
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{path}")]
struct PathError {
    path: PathBuf,
    #[source]
    source: std::io::Error,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Invalid(&'static str);

fn invalid(message: &'static str) -> Error {
    Error::Backend {
        context: "configure the etcd client",
        source: Arc::new(Invalid(message)),
    }
}

/// A [`Store`] whose data lives in an etcd v3 cluster.
///
/// Several processes may open stores over the same cluster at once: each sees every write of
/// the others, in one revision order, as several kube-apiservers over one etcd do.
pub struct EtcdStore {
    client: Client,
    timeout: Duration,
    /// Cancelled by [`Store::close`] or by dropping the store; ends every watch.
    closed: CancellationToken,
    writes: AtomicU64,
    /// A lower bound of etcd's compacted revision, so that finding it searches less.
    compacted: Arc<AtomicU64>,
}

impl std::fmt::Debug for EtcdStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdStore").finish_non_exhaustive()
    }
}

impl Drop for EtcdStore {
    fn drop(&mut self) {
        self.closed.cancel();
    }
}

/// Messages as large as etcd can hold: a list of every pod of a big cluster is one response.
const MAX_MESSAGE: usize = 2 << 30;

impl EtcdStore {
    /// Connects to the cluster and checks that it answers within the request timeout.
    pub async fn connect(options: &EtcdOptions) -> Result<Self, Error> {
        if options.endpoints.is_empty() {
            return Err(invalid("no etcd endpoints given"));
        }
        let mut connect = ConnectOptions::new()
            .with_connect_timeout(options.request_timeout)
            .with_timeout(options.request_timeout)
            .with_keep_alive(Duration::from_secs(10), options.request_timeout)
            // A member cut off from the others must not serve watches that can never see new
            // writes: etcd then cancels them, and the watch moves to a member with a leader.
            .with_require_leader(true);
        if let Some(tls) = options.tls()? {
            connect = connect.with_tls(tls);
        }
        let client = tokio::time::timeout(
            options.request_timeout,
            Client::connect(&options.endpoints, Some(connect)),
        )
        .await
        .map_err(|_| unavailable("connect to etcd", TimedOut))?
        .map_err(|e| from_etcd("connect to etcd", e))?;
        let store = EtcdStore {
            client,
            timeout: options.request_timeout,
            closed: CancellationToken::new(),
            writes: AtomicU64::new(0),
            compacted: Arc::new(AtomicU64::new(0)),
        };
        store.current().await?;
        Ok(store)
    }

    fn kv(&self) -> Result<KvClient, Error> {
        if self.closed.is_cancelled() {
            return Err(Error::Closed);
        }
        Ok(self
            .client
            .kv_client()
            .max_decoding_message_size(MAX_MESSAGE))
    }

    /// Runs one etcd call under the request deadline, retrying while etcd reports itself
    /// unavailable (a member down, a leader election) until the deadline passes.
    ///
    /// Only calls whose repetition is harmless are retried here: reads, and writes guarded by
    /// a compare that a repeated attempt would fail rather than apply twice.
    async fn call<T, F, Fut>(&self, context: &'static str, f: F) -> Result<T, Error>
    where
        F: FnMut(KvClient) -> Fut,
        Fut: std::future::Future<Output = Result<T, etcd_client::Error>>,
    {
        self.call_tracked(context, f).await.map(|(value, _)| value)
    }

    /// [`EtcdStore::call`], also telling whether an earlier attempt may have been applied
    /// (it timed out or lost its connection), so that a compare-guarded write that then fails
    /// its compare can check whether the store already holds what it wrote.
    async fn call_tracked<T, F, Fut>(
        &self,
        context: &'static str,
        mut f: F,
    ) -> Result<(T, bool), Error>
    where
        F: FnMut(KvClient) -> Fut,
        Fut: std::future::Future<Output = Result<T, etcd_client::Error>>,
    {
        let deadline = tokio::time::Instant::now() + self.timeout;
        let mut pause = Duration::from_millis(10);
        let mut ambiguous = false;
        loop {
            // One attempt may hang on a member that just died or lost its leader; give it a
            // share of the deadline and try again (on another member) with what is left.
            let attempt_deadline =
                deadline.min(tokio::time::Instant::now() + self.timeout.mul_f32(0.4));
            let attempt = tokio::select! {
                _ = self.closed.cancelled() => return Err(Error::Closed),
                result = tokio::time::timeout_at(attempt_deadline, f(self.kv()?)) => result,
            };
            let error = match attempt {
                Ok(Ok(value)) => return Ok((value, ambiguous)),
                Ok(Err(error)) => from_etcd(context, error),
                Err(_) => unavailable(context, TimedOut),
            };
            if !matches!(error, Error::Unavailable { .. })
                || tokio::time::Instant::now() + pause >= deadline
            {
                return Err(error);
            }
            ambiguous = true;
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(500));
        }
    }

    /// After an ambiguous attempt: the key as stored, if it holds exactly `value` (the
    /// values the API server writes carry a fresh uid or resourceVersion-bound content, so
    /// equal bytes mean the earlier attempt was applied).
    async fn applied_earlier(&self, key: &str, value: &Bytes) -> Result<Option<KeyValue>, Error> {
        Ok(self.do_get(key).await?.filter(|kv| kv.value == *value))
    }

    async fn current(&self) -> Result<u64, Error> {
        // The header of any read carries the cluster's revision; a count of nothing is the
        // cheapest read there is.
        let response = self
            .call("read the current revision", |mut kv| async move {
                kv.get("/", Some(GetOptions::new().with_count_only().with_limit(1)))
                    .await
            })
            .await?;
        Ok(header_revision(response.header()))
    }

    /// Whether etcd still has the state at `revision` (`revision` ≥ 1).
    async fn readable_at(&self, revision: u64) -> Result<bool, Error> {
        let result = self
            .call("read at a revision", |mut kv| async move {
                kv.get(
                    "/",
                    Some(
                        GetOptions::new()
                            .with_count_only()
                            .with_limit(1)
                            .with_revision(to_i64(revision)),
                    ),
                )
                .await
            })
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(Error::Compacted { .. }) => Ok(false),
            Err(other) => Err(other),
        }
    }

    /// etcd's compacted revision: it has no call that reports it, but it refuses reads below
    /// it, so it is the lowest readable revision — found by bisection from the last one seen.
    async fn find_compacted(&self) -> Result<u64, Error> {
        let current = self.current().await?;
        let mut low = self.compacted.load(Ordering::Acquire).max(1);
        if low >= current || self.readable_at(low).await? {
            return Ok(self.note_compacted(low));
        }
        // `low` is unreadable, `current` always is.
        let mut high = current;
        while high - low > 1 {
            let middle = low + (high - low) / 2;
            if self.readable_at(middle).await? {
                high = middle;
            } else {
                low = middle;
            }
        }
        Ok(self.note_compacted(high))
    }

    fn note_compacted(&self, revision: u64) -> u64 {
        // Revision 1 is etcd's empty initial state: compacted there, nothing was lost.
        let revision = if revision <= 1 { 0 } else { revision };
        self.compacted
            .fetch_max(revision, Ordering::AcqRel)
            .max(revision)
    }

    async fn do_get(&self, key: &str) -> Result<Option<KeyValue>, Error> {
        let mut response = self
            .call(
                "read a key",
                |mut kv| async move { kv.get(key, None).await },
            )
            .await?;
        Ok(response.take_kvs().pop().map(key_value))
    }

    async fn do_list(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: Option<usize>,
        revision: Option<u64>,
    ) -> Result<ListResult, Error> {
        // A start_after below the prefix would scan keys that cannot match; start at the prefix.
        let start = match start_after {
            Some(after) if after >= prefix => {
                let mut key = after.as_bytes().to_vec();
                key.push(0);
                key
            }
            _ => prefix.as_bytes().to_vec(),
        };
        let end = prefix_end(prefix);
        let mut options = GetOptions::new().with_range(end);
        if let Some(limit) = limit {
            // etcd reads 0 as "no limit"; a page of nothing asked for is answered locally.
            if limit == 0 {
                let current = match revision {
                    Some(revision) => revision,
                    None => self.current().await?,
                };
                return Ok(ListResult {
                    items: Vec::new(),
                    revision: current,
                    more: false,
                });
            }
            options = options.with_limit(i64::try_from(limit).unwrap_or(i64::MAX));
        }
        if let Some(revision) = revision {
            options = options.with_revision(to_i64(revision.max(1)));
        }
        let result = self
            .call("list keys", |mut kv| {
                let start = start.clone();
                let options = options.clone();
                async move { kv.get(start, Some(options)).await }
            })
            .await;
        let mut response = match (result, revision) {
            (Ok(response), _) => response,
            (Err(Error::Compacted { .. }), Some(requested)) => {
                return Err(Error::Compacted {
                    requested,
                    compacted: self.find_compacted().await?,
                });
            }
            (Err(other), _) => return Err(other),
        };
        let more = response.more();
        let current = header_revision(response.header());
        let items: Vec<KeyValue> = response.take_kvs().into_iter().map(key_value).collect();
        Ok(ListResult {
            items,
            revision: revision.map_or(current, |r| r.min(current)),
            more,
        })
    }

    async fn do_create(&self, key: &str, value: Bytes) -> Result<KeyValue, Error> {
        let (response, ambiguous) = self
            .call_tracked("create a key", |mut kv| {
                let txn = Txn::new()
                    .when([Compare::create_revision(key, CompareOp::Equal, 0)])
                    .and_then([TxnOp::put(key, value.to_vec(), None)]);
                async move { kv.txn(txn).await }
            })
            .await?;
        self.writes.fetch_add(1, Ordering::Relaxed);
        if !response.succeeded() {
            if ambiguous && let Some(kv) = self.applied_earlier(key, &value).await? {
                return Ok(kv);
            }
            return Err(Error::AlreadyExists {
                key: key.to_owned(),
            });
        }
        let revision = header_revision(response.header());
        Ok(KeyValue {
            key: key.to_owned(),
            value,
            create_revision: revision,
            mod_revision: revision,
        })
    }

    async fn do_update(&self, key: &str, expected: u64, value: Bytes) -> Result<KeyValue, Error> {
        let (response, ambiguous) = self
            .call_tracked("update a key", |mut kv| {
                let put = TxnOp::put(key, value.to_vec(), Some(PutOptions::new().with_prev_key()));
                let txn = guarded(key, Some(expected), put);
                async move { kv.txn(txn).await }
            })
            .await?;
        self.writes.fetch_add(1, Ordering::Relaxed);
        let revision = header_revision(response.header());
        let responses = response.op_responses();
        if !response.succeeded() {
            if ambiguous && let Some(kv) = self.applied_earlier(key, &value).await? {
                return Ok(kv);
            }
            return Err(refusal(key, expected, responses));
        }
        let create_revision = responses
            .into_iter()
            .find_map(|op| match op {
                TxnOpResponse::Put(put) => put.prev_key().map(|kv| to_u64(kv.create_revision())),
                _ => None,
            })
            .unwrap_or(revision);
        Ok(KeyValue {
            key: key.to_owned(),
            value,
            create_revision,
            mod_revision: revision,
        })
    }

    async fn do_delete(&self, key: &str, expected: Option<u64>) -> Result<KeyValue, Error> {
        let response = self
            .call("delete a key", |mut kv| {
                let delete =
                    TxnOp::delete(key, Some(etcd_client::DeleteOptions::new().with_prev_key()));
                let txn = guarded(key, expected, delete);
                async move { kv.txn(txn).await }
            })
            .await?;
        self.writes.fetch_add(1, Ordering::Relaxed);
        let revision = header_revision(response.header());
        let responses = response.op_responses();
        if !response.succeeded() {
            return Err(refusal(key, expected.unwrap_or(0), responses));
        }
        let previous = responses.into_iter().find_map(|op| match op {
            TxnOpResponse::Delete(mut delete) => delete.take_prev_kvs().pop(),
            _ => None,
        });
        let Some(previous) = previous else {
            return Err(Error::backend(
                "delete a key",
                std::io::Error::other("etcd did not return the deleted value"),
            ));
        };
        let mut deleted = key_value(previous);
        deleted.mod_revision = revision;
        Ok(deleted)
    }

    async fn do_watch(&self, prefix: &str, from_revision: u64) -> Result<WatchStream, Error> {
        if self.closed.is_cancelled() {
            return Err(Error::Closed);
        }
        // etcd checks compaction asynchronously once the watch runs; check it first, so that a
        // watch from a compacted revision fails before any stream exists, as the contract says.
        // A revision etcd has not reached yet is no error: the watch waits for it.
        if from_revision >= 1
            && from_revision <= self.current().await?
            && !self.readable_at(from_revision).await?
        {
            return Err(Error::Compacted {
                requested: from_revision,
                compacted: self.find_compacted().await?,
            });
        }
        let watcher = Watcher {
            client: self.client.clone(),
            prefix: prefix.to_owned(),
            position: from_revision,
            closed: self.closed.clone(),
            compacted: Arc::clone(&self.compacted),
        };
        Ok(Box::pin(watcher.run()))
    }

    async fn do_compact(&self, revision: u64) -> Result<u64, Error> {
        let current = self.current().await?;
        let target = revision.min(current);
        let known = self.find_compacted().await?;
        if target <= known || target <= 1 {
            return Ok(known);
        }
        let result = self
            .call("compact", |mut kv| async move {
                kv.compact(to_i64(target), None).await
            })
            .await;
        match result {
            // Another server compacted further meanwhile: that is in force now.
            Ok(_) | Err(Error::Compacted { .. }) => {}
            Err(other) => return Err(other),
        }
        self.note_compacted(target);
        self.find_compacted().await
    }
}

/// `op` on `key` if the key exists (and its mod_revision is `expected`, when given); else a
/// read of the key's revisions, from which [`refusal`] tells NotFound from Conflict.
fn guarded(key: &str, expected: Option<u64>, op: TxnOp) -> Txn {
    let mut compares = vec![Compare::version(key, CompareOp::Greater, 0)];
    if let Some(expected) = expected {
        compares.push(Compare::mod_revision(
            key,
            CompareOp::Equal,
            to_i64(expected),
        ));
    }
    Txn::new()
        .when(compares)
        .and_then([op])
        .or_else([TxnOp::get(key, Some(GetOptions::new().with_keys_only()))])
}

/// Why a compare-guarded write failed: the `or_else` read tells NotFound from Conflict.
fn refusal(key: &str, expected: u64, responses: Vec<TxnOpResponse>) -> Error {
    let actual = responses.into_iter().find_map(|op| match op {
        TxnOpResponse::Get(get) => get.kvs().first().map(|kv| to_u64(kv.mod_revision())),
        _ => None,
    });
    match actual {
        None => Error::NotFound {
            key: key.to_owned(),
        },
        Some(actual) => Error::Conflict {
            key: key.to_owned(),
            expected,
            actual,
        },
    }
}

/// One watch: an etcd watch stream, re-established from its position when the member serving
/// it goes away, as etcd's own Go client does.
///
/// ```text
///  start ─► Open ──events──► Open ...
///            │  stream failed / member lost its leader: reopen from position + 1
///            │  compacted past position: yield Compacted, end
///            ▼
///           end  ◄── store closed or dropped
/// ```
struct Watcher {
    client: Client,
    prefix: String,
    /// The revision of the last event delivered (or the start).
    position: u64,
    closed: CancellationToken,
    compacted: Arc<AtomicU64>,
}

impl Watcher {
    fn run(mut self) -> impl futures::Stream<Item = Result<Event, Error>> + Send + 'static {
        async_stream::stream! {
            let mut pause = Duration::from_millis(20);
            'open: loop {
                let options = WatchOptions::new()
                    .with_range(prefix_end(&self.prefix))
                    .with_start_revision(to_i64(self.position + 1))
                    .with_prev_key();
                let mut watch_client = self.client.watch_client().max_decoding_message_size(MAX_MESSAGE);
                let opened = tokio::select! {
                    _ = self.closed.cancelled() => break 'open,
                    opened = watch_client.watch(self.prefix.as_bytes(), Some(options)) => opened,
                };
                let mut stream = match opened {
                    Ok(stream) => stream,
                    Err(error) => {
                        tracing::debug!(%error, "etcd watch could not be opened; retrying");
                        tokio::select! {
                            _ = self.closed.cancelled() => break 'open,
                            _ = tokio::time::sleep(pause) => {}
                        }
                        pause = (pause * 2).min(Duration::from_secs(1));
                        continue 'open;
                    }
                };
                loop {
                    let message = tokio::select! {
                        _ = self.closed.cancelled() => break 'open,
                        message = stream.message() => message,
                    };
                    let response = match message {
                        Ok(Some(response)) => response,
                        Ok(None) | Err(_) => {
                            tokio::select! {
                                _ = self.closed.cancelled() => break 'open,
                                _ = tokio::time::sleep(pause) => {}
                            }
                            pause = (pause * 2).min(Duration::from_secs(1));
                            continue 'open;
                        }
                    };
                    if response.compact_revision() > 0 {
                        let compacted = to_u64(response.compact_revision());
                        self.compacted.fetch_max(compacted, Ordering::AcqRel);
                        yield Err(Error::Compacted { requested: self.position, compacted });
                        break 'open;
                    }
                    if response.canceled() {
                        // Canceled without compaction: the member lost its leader (we asked
                        // for require-leader). Another member carries on from our position.
                        tracing::debug!(reason = response.cancel_reason(), "etcd watch canceled; reopening");
                        tokio::select! {
                            _ = self.closed.cancelled() => break 'open,
                            _ = tokio::time::sleep(pause) => {}
                        }
                        pause = (pause * 2).min(Duration::from_secs(1));
                        continue 'open;
                    }
                    pause = Duration::from_millis(20);
                    for event in response.events() {
                        let Some(event) = convert(event) else { continue };
                        if event.revision <= self.position {
                            continue;
                        }
                        self.position = event.revision;
                        yield Ok(event);
                    }
                }
            }
        }
    }
}

fn convert(event: &etcd_client::Event) -> Option<Event> {
    let kv = event.kv()?;
    let key = String::from_utf8(kv.key().to_vec()).ok()?;
    let revision = to_u64(kv.mod_revision());
    let previous = event.prev_kv();
    let prev_value = previous.map(|prev| Bytes::copy_from_slice(prev.value()));
    let prev_mod_revision = previous.map_or(0, |prev| to_u64(prev.mod_revision()));
    Some(match event.event_type() {
        EventType::Put => {
            let created = kv.version() == 1;
            Event {
                revision,
                kind: EventKind::Put,
                key,
                value: Bytes::copy_from_slice(kv.value()),
                prev_value: if created {
                    None
                } else {
                    Some(prev_value.unwrap_or_default())
                },
                create_revision: to_u64(kv.create_revision()),
                prev_mod_revision: if created { 0 } else { prev_mod_revision },
            }
        }
        EventType::Delete => {
            let last = prev_value.unwrap_or_default();
            Event {
                revision,
                kind: EventKind::Delete,
                key,
                value: last.clone(),
                prev_value: Some(last),
                create_revision: previous.map_or(0, |prev| to_u64(prev.create_revision())),
                prev_mod_revision,
            }
        }
    })
}

fn key_value(kv: etcd_client::KeyValue) -> KeyValue {
    let create_revision = to_u64(kv.create_revision());
    let mod_revision = to_u64(kv.mod_revision());
    let (key, value) = kv.into_key_value();
    KeyValue {
        key: String::from_utf8(key)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
        value: Bytes::from(value),
        create_revision,
        mod_revision,
    }
}

/// The first key after every key that starts with `prefix` (etcd's range end for a prefix).
fn prefix_end(prefix: &str) -> Vec<u8> {
    let mut end = prefix.as_bytes().to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    // Every byte was 0xff (or the prefix is empty): the range runs to the end of the keys.
    vec![0]
}

fn header_revision(header: Option<&etcd_client::ResponseHeader>) -> u64 {
    header.map_or(0, |h| to_u64(h.revision()))
}

fn to_u64(revision: i64) -> u64 {
    u64::try_from(revision).unwrap_or(0)
}

fn to_i64(revision: u64) -> i64 {
    i64::try_from(revision).unwrap_or(i64::MAX)
}

#[derive(Debug, thiserror::Error)]
#[error("no answer from etcd within the request timeout")]
struct TimedOut;

fn unavailable(
    context: &'static str,
    source: impl std::error::Error + Send + Sync + 'static,
) -> Error {
    Error::Unavailable {
        context,
        source: Arc::new(source) as BackendSource,
    }
}

/// Maps etcd's answers onto the store's errors: compaction onto [`Error::Compacted`], a
/// cluster that cannot answer (no leader, no quorum, members down) onto
/// [`Error::Unavailable`], anything else onto [`Error::Backend`].
fn from_etcd(context: &'static str, error: etcd_client::Error) -> Error {
    use tonic::Code;
    match &error {
        etcd_client::Error::GRpcStatus(status) => {
            let message = status.message();
            if message.contains("required revision has been compacted") {
                return Error::Compacted {
                    requested: 0,
                    compacted: 0,
                };
            }
            match status.code() {
                Code::Unavailable | Code::DeadlineExceeded | Code::Aborted | Code::Cancelled => {
                    unavailable(context, error)
                }
                Code::Unknown if message.contains("leader") || message.contains("timed out") => {
                    unavailable(context, error)
                }
                _ => Error::backend(context, error),
            }
        }
        etcd_client::Error::TransportError(_) | etcd_client::Error::IoError(_) => {
            unavailable(context, error)
        }
        _ => Error::backend(context, error),
    }
}

impl Store for EtcdStore {
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<KeyValue>, Error>> {
        Box::pin(self.do_get(key))
    }

    fn list<'a>(
        &'a self,
        prefix: &'a str,
        start_after: Option<&'a str>,
        limit: Option<usize>,
    ) -> BoxFuture<'a, Result<ListResult, Error>> {
        Box::pin(self.do_list(prefix, start_after, limit, None))
    }

    fn list_at<'a>(
        &'a self,
        prefix: &'a str,
        start_after: Option<&'a str>,
        limit: Option<usize>,
        revision: u64,
    ) -> BoxFuture<'a, Result<ListResult, Error>> {
        Box::pin(self.do_list(prefix, start_after, limit, Some(revision)))
    }

    fn create<'a>(&'a self, key: &'a str, value: Bytes) -> BoxFuture<'a, Result<KeyValue, Error>> {
        Box::pin(self.do_create(key, value))
    }

    fn update<'a>(
        &'a self,
        key: &'a str,
        expected_mod_revision: u64,
        value: Bytes,
    ) -> BoxFuture<'a, Result<KeyValue, Error>> {
        Box::pin(self.do_update(key, expected_mod_revision, value))
    }

    fn delete<'a>(
        &'a self,
        key: &'a str,
        expected_mod_revision: Option<u64>,
    ) -> BoxFuture<'a, Result<KeyValue, Error>> {
        Box::pin(self.do_delete(key, expected_mod_revision))
    }

    fn watch<'a>(
        &'a self,
        prefix: &'a str,
        from_revision: u64,
    ) -> BoxFuture<'a, Result<WatchStream, Error>> {
        Box::pin(self.do_watch(prefix, from_revision))
    }

    fn compact(&self, revision: u64) -> BoxFuture<'_, Result<u64, Error>> {
        Box::pin(self.do_compact(revision))
    }

    fn current_revision(&self) -> BoxFuture<'_, Result<u64, Error>> {
        Box::pin(self.current())
    }

    fn compacted_revision(&self) -> BoxFuture<'_, Result<u64, Error>> {
        Box::pin(self.find_compacted())
    }

    fn stats(&self) -> Stats {
        // etcd batches writes into raft proposals itself; what it batched is not reported to
        // clients, so each write counts as its own commit here.
        let writes = self.writes.load(Ordering::Relaxed);
        Stats {
            writes,
            commits: writes,
            largest_batch: u64::from(writes > 0),
        }
    }

    fn close(&self) -> BoxFuture<'_, ()> {
        self.closed.cancel();
        Box::pin(async {})
    }
}

#[cfg(test)]
mod tests {
    use super::prefix_end;

    #[test]
    fn prefix_end_is_the_first_key_past_the_prefix() {
        assert_eq!(prefix_end("/registry/pods/"), b"/registry/pods0".to_vec());
        assert_eq!(prefix_end("a\u{7f}"), b"a\x80".to_vec());
        assert_eq!(prefix_end(""), vec![0]);
    }
}
