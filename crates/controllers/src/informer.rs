//! Informers: a watch feeding a kube-rs reflector store, plus client-go style change
//! notifications (added / updated with the old object / deleted) for the controllers' event
//! handlers. kube-rs' watcher reports only the new state; controllers need the old one too (to
//! tell a pod's creation from its update, or to notice that its labels changed).
//!
//! A re-list (after a watch expired) is diffed against the cache so objects that vanished
//! meanwhile still produce `Deleted` and new ones `Added`.

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::Arc;

use futures::StreamExt;
use kube::Resource;
use kube::api::Api;
use kube::runtime::reflector::{ObjectRef, Store, store::Writer};
use kube::runtime::{WatchStreamExt, watcher};
use serde::de::DeserializeOwned;
use tokio_util::sync::CancellationToken;

/// One change to a watched object.
pub enum Change<K> {
    Added(Arc<K>),
    Updated { old: Arc<K>, new: Arc<K> },
    Deleted(Arc<K>),
}

/// `namespace/name` (or `name` for cluster objects): the key work queues and caches use.
pub fn key_of<K: Resource>(obj: &K) -> String {
    let meta = obj.meta();
    let name = meta.name.as_deref().unwrap_or("");
    match meta.namespace.as_deref() {
        Some(ns) if !ns.is_empty() => format!("{ns}/{name}"),
        _ => name.to_string(),
    }
}

/// Splits a key made by [`key_of`] into (namespace, name).
pub fn split_key(key: &str) -> (&str, &str) {
    key.split_once('/').unwrap_or(("", key))
}

/// The cache entry of a namespaced object.
pub fn get<K>(store: &Store<K>, namespace: &str, name: &str) -> Option<Arc<K>>
where
    K: Resource<DynamicType = ()> + Clone + 'static,
{
    store.get(&ObjectRef::new(name).within(namespace))
}

/// Watches `api` into `writer` until `shutdown`, calling `handler` for every change after the
/// cache has applied it.
pub async fn run<K, F>(
    api: Api<K>,
    config: watcher::Config,
    mut writer: Writer<K>,
    shutdown: CancellationToken,
    mut handler: F,
) where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    F: FnMut(Change<K>) + Send,
{
    let reader = writer.as_reader();
    let stream = watcher(api, config).default_backoff();
    futures::pin_mut!(stream);
    // Objects of a re-list in progress, applied to the cache only when it completes.
    let mut listed: Vec<Arc<K>> = Vec::new();
    loop {
        let event = tokio::select! {
            ev = stream.next() => ev,
            _ = shutdown.cancelled() => return,
        };
        let Some(event) = event else { return };
        let event = match event {
            Ok(event) => event,
            Err(e) => {
                tracing::debug!(error = %e, "watch error; the watcher retries");
                continue;
            }
        };
        match &event {
            watcher::Event::Apply(obj) => {
                let old = reader.get(&ObjectRef::from_obj(obj));
                writer.apply_watcher_event(&event);
                let new = Arc::new(obj.clone());
                match old {
                    None => handler(Change::Added(new)),
                    Some(old) => handler(Change::Updated { old, new }),
                }
            }
            watcher::Event::Delete(obj) => {
                writer.apply_watcher_event(&event);
                handler(Change::Deleted(Arc::new(obj.clone())));
            }
            watcher::Event::Init => {
                listed.clear();
                writer.apply_watcher_event(&event);
            }
            watcher::Event::InitApply(obj) => {
                listed.push(Arc::new(obj.clone()));
                writer.apply_watcher_event(&event);
            }
            watcher::Event::InitDone => {
                let mut before: HashMap<String, Arc<K>> = reader
                    .state()
                    .into_iter()
                    .map(|o| (key_of(&*o), o))
                    .collect();
                writer.apply_watcher_event(&event);
                for new in listed.drain(..) {
                    match before.remove(&key_of(&*new)) {
                        None => handler(Change::Added(new)),
                        Some(old) => {
                            if old.meta().resource_version != new.meta().resource_version {
                                handler(Change::Updated { old, new });
                            }
                        }
                    }
                }
                for (_, gone) in before {
                    handler(Change::Deleted(gone));
                }
            }
        }
    }
}
