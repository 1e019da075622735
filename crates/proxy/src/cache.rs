//! The objects the proxy serves from, kept by kube-rs reflectors over watches of the whole
//! cluster, plus one change signal: every consumer (service proxy, Ingress, DNS) rebuilds its
//! own view from the caches when it fires, so no consumer ever sees half an update of another.

use std::fmt::Debug;
use std::sync::Arc;

use futures::StreamExt;
use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::{Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::Ingress;
use kube::Resource;
use kube::api::Api;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use serde::de::DeserializeOwned;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// The Secret type Ingress TLS uses.
pub const TLS_SECRET_TYPE: &str = "kubernetes.io/tls";

/// Reflector caches of Services, EndpointSlices, Ingresses and TLS Secrets.
#[derive(Clone)]
pub struct Cache {
    pub services: Store<Service>,
    pub slices: Store<EndpointSlice>,
    pub ingresses: Store<Ingress>,
    pub secrets: Store<Secret>,
    generation: watch::Receiver<u64>,
    ready: watch::Receiver<bool>,
}

impl Cache {
    /// Starts the watches; they run until `shutdown`.
    pub fn start(client: &kube::Client, shutdown: &CancellationToken) -> Cache {
        let (tx, generation) = watch::channel(0u64);
        let tx = Arc::new(tx);
        let services = spawn_reflector::<Service>(
            Api::all(client.clone()),
            watcher::Config::default(),
            tx.clone(),
            shutdown,
        );
        let slices = spawn_reflector::<EndpointSlice>(
            Api::all(client.clone()),
            watcher::Config::default(),
            tx.clone(),
            shutdown,
        );
        let ingresses = spawn_reflector::<Ingress>(
            Api::all(client.clone()),
            watcher::Config::default(),
            tx.clone(),
            shutdown,
        );
        let secrets = spawn_reflector::<Secret>(
            Api::all(client.clone()),
            watcher::Config::default().fields(&format!("type={TLS_SECRET_TYPE}")),
            tx,
            shutdown,
        );
        let ready = spawn_readiness(
            vec![
                ready_of(&services),
                ready_of(&slices),
                ready_of(&ingresses),
                ready_of(&secrets),
            ],
            shutdown,
        );
        Cache {
            services,
            slices,
            ingresses,
            secrets,
            generation,
            ready,
        }
    }

    /// A receiver that fires whenever any cache changed.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.generation.clone()
    }

    /// Waits until every cache holds its first complete list (so a consumer's first view is
    /// not an empty cluster).
    ///
    /// Any number of consumers may wait at once (see [`spawn_readiness`] for why they do not
    /// wait on the stores themselves).
    pub async fn ready(&self) {
        let mut ready = self.ready.clone();
        // An error means the readiness task ended at shutdown before the caches were ready:
        // never return then, the caller's own shutdown branch ends its wait.
        if ready.wait_for(|r| *r).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// One store's first complete list, as a future of its own.
fn ready_of<K>(store: &Store<K>) -> BoxFuture<'static, ()>
where
    K: Resource<DynamicType = ()> + Clone + Send + Sync + 'static,
{
    let store = store.clone();
    Box::pin(async move {
        // Err: the writer went away (shutdown) before the first list; nothing to wait for.
        let _ = store.wait_until_ready().await;
    })
}

/// Waits for every store's first complete list in ONE task and publishes it on a watch
/// channel. `Store::wait_until_ready` cannot be awaited by several tasks at once: its
/// readiness is a futures oneshot receiver shared by every clone of the store, which keeps
/// the waker of only the last task that polled it, so every earlier waiter (the service
/// proxy, when the DNS server polled last) would never be woken.
fn spawn_readiness(
    stores: Vec<BoxFuture<'static, ()>>,
    shutdown: &CancellationToken,
) -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    let shutdown = shutdown.clone();
    tokio::spawn(async move {
        tokio::select! {
            // A waiter that comes after this task ended still sees `true`: `wait_for`
            // checks the current value before it looks at the channel being closed.
            _ = futures::future::join_all(stores) => { let _ = tx.send(true); }
            _ = shutdown.cancelled() => {}
        }
    });
    rx
}

fn spawn_reflector<K>(
    api: Api<K>,
    config: watcher::Config,
    changed: Arc<watch::Sender<u64>>,
    shutdown: &CancellationToken,
) -> Store<K>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    let (reader, writer) = reflector::store();
    let shutdown = shutdown.clone();
    tokio::spawn(async move {
        let stream = watcher(api, config).default_backoff().reflect(writer);
        futures::pin_mut!(stream);
        loop {
            let next = tokio::select! {
                n = stream.next() => n,
                _ = shutdown.cancelled() => return,
            };
            match next {
                None => return,
                // Within a re-list the cache changes only at its end.
                Some(Ok(watcher::Event::Init | watcher::Event::InitApply(_))) => {}
                Some(Ok(_)) => changed.send_modify(|g| *g += 1),
                Some(Err(e)) => tracing::debug!(error = %e, "watch error; the watcher retries"),
            }
        }
    });
    reader
}
