//! The namespace controller: when a namespace is deleted it carries the `kubernetes` finalizer
//! in `spec.finalizers`; this controller deletes everything inside it, and once nothing is left
//! removes the finalizer through `namespaces/NAME/finalize`, letting the API server remove the
//! namespace itself.

use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, PostParams};
use kube::discovery::ApiResource;
use kube::runtime::{WatchStreamExt, watcher};
use tokio_util::sync::CancellationToken;
use wasmkube_api::registry::{RESOURCES, ResourceInfo};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("listing or deleting {resource} in namespace {namespace}")]
    Content {
        resource: &'static str,
        namespace: String,
        #[source]
        source: kube::Error,
    },
    #[error("finalizing namespace {0}")]
    Finalize(String, #[source] kube::Error),
}

fn api_resource(info: &ResourceInfo) -> ApiResource {
    ApiResource {
        group: info.group.to_string(),
        version: info.version.to_string(),
        api_version: info.api_version(),
        kind: info.kind.to_string(),
        plural: info.resource.to_string(),
    }
}

/// Deletes one round of content; `Ok(true)` once the namespace is empty.
async fn empty(client: &kube::Client, ns: &str) -> Result<bool, Error> {
    let mut remaining = 0usize;
    for info in RESOURCES.iter().filter(|r| r.namespaced && !r.create_only) {
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &api_resource(info));
        let err = |source| Error::Content {
            resource: info.resource,
            namespace: ns.to_string(),
            source,
        };
        let list = api.list(&ListParams::default()).await.map_err(err)?;
        if list.items.is_empty() {
            continue;
        }
        remaining += list.items.len();
        let dp = DeleteParams {
            propagation_policy: Some(kube::api::PropagationPolicy::Background),
            ..DeleteParams::default()
        };
        for obj in list.items {
            if obj.metadata.deletion_timestamp.is_some() {
                continue;
            }
            let Some(name) = obj.metadata.name.as_deref() else {
                continue;
            };
            match api.delete(name, &dp).await {
                Ok(_) => {}
                Err(kube::Error::Api(e)) if e.code == 404 => {}
                Err(e) => return Err(err(e)),
            }
        }
    }
    Ok(remaining == 0)
}

async fn finalize(client: &kube::Client, mut ns: Namespace) -> Result<(), Error> {
    let name = ns.metadata.name.clone().unwrap_or_default();
    let api: Api<Namespace> = Api::all(client.clone());
    if let Some(spec) = ns.spec.as_mut() {
        spec.finalizers = Some(
            spec.finalizers
                .take()
                .unwrap_or_default()
                .into_iter()
                .filter(|f| f != "kubernetes")
                .collect(),
        );
    }
    match api
        .replace_subresource("finalize", &name, &PostParams::default(), &ns)
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(e) => Err(Error::Finalize(name, e)),
    }
}

/// Drives one terminating namespace to its end, retrying with back-off on errors and while
/// content is still going away (pods stop gracefully).
async fn terminate(client: kube::Client, name: String, shutdown: CancellationToken) {
    let api: Api<Namespace> = Api::all(client.clone());
    let mut delay = Duration::from_millis(200);
    loop {
        let ns = match api.get_opt(&name).await {
            Ok(Some(ns)) => ns,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(namespace = %name, error = %e, "reading namespace");
                Namespace::default()
            }
        };
        if ns.metadata.name.is_some() {
            match empty(&client, &name).await {
                Ok(true) => match finalize(&client, ns).await {
                    Ok(()) => return,
                    Err(e) => tracing::warn!(error = %e, "namespace finalize failed"),
                },
                Ok(false) => {}
                Err(e) => tracing::warn!(error = %e, "emptying namespace failed"),
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = shutdown.cancelled() => return,
        }
        delay = (delay * 2).min(Duration::from_secs(5));
    }
}

/// Watches namespaces and terminates each one that is being deleted, once at a time per
/// namespace.
pub async fn run(client: kube::Client, shutdown: CancellationToken) {
    let api: Api<Namespace> = Api::all(client.clone());
    let mut active: std::collections::HashMap<String, tokio::task::JoinHandle<()>> =
        Default::default();
    let stream = watcher(api, watcher::Config::default()).default_backoff();
    futures::pin_mut!(stream);
    loop {
        let ev = tokio::select! {
            ev = stream.next() => ev,
            _ = shutdown.cancelled() => break,
        };
        let Some(ev) = ev else { break };
        let ns = match ev {
            Ok(watcher::Event::Apply(ns) | watcher::Event::InitApply(ns)) => ns,
            Ok(_) => continue,
            Err(e) => {
                tracing::debug!(error = %e, "namespace watch error");
                continue;
            }
        };
        if ns.metadata.deletion_timestamp.is_none() {
            continue;
        }
        let Some(name) = ns.metadata.name.clone() else {
            continue;
        };
        active.retain(|_, h| !h.is_finished());
        if active.contains_key(&name) {
            continue;
        }
        let handle = tokio::spawn(terminate(client.clone(), name.clone(), shutdown.clone()));
        active.insert(name, handle);
    }
    for (_, h) in active {
        h.abort();
    }
}
