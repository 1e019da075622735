//! The ServiceAccount controller: every active namespace has a `default` ServiceAccount, made
//! when the namespace appears and again if someone deletes it, as Kubernetes' does. Pods that
//! name no account run as it, and `kubectl create token default` works in every namespace.

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use kube::api::{Api, ObjectMeta, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use tokio_util::sync::CancellationToken;

/// The account every namespace gets.
pub const DEFAULT: &str = "default";

/// Creates `default` in `namespace` unless it exists or the namespace is going away.
async fn ensure(client: &kube::Client, namespace: &str) {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    match namespaces.get_opt(namespace).await {
        Ok(Some(ns)) if ns.metadata.deletion_timestamp.is_none() => {}
        Ok(_) => return,
        Err(e) => {
            tracing::debug!(namespace, error = %e, "reading the namespace");
            return;
        }
    }
    let api: Api<ServiceAccount> = Api::namespaced(client.clone(), namespace);
    let sa = ServiceAccount {
        metadata: ObjectMeta {
            name: Some(DEFAULT.into()),
            ..ObjectMeta::default()
        },
        ..ServiceAccount::default()
    };
    match api.create(&PostParams::default(), &sa).await {
        Ok(_) => tracing::debug!(namespace, "created the default ServiceAccount"),
        // Already there, or the namespace started terminating in between.
        Err(kube::Error::Api(e)) if e.code == 409 || e.code == 403 => {}
        Err(e) => tracing::warn!(namespace, error = %e, "creating the default ServiceAccount"),
    }
}

/// Runs until `shutdown`: namespaces as they appear, `default` accounts as they go.
pub async fn run(client: kube::Client, shutdown: CancellationToken) {
    let namespaces = watcher(
        Api::<Namespace>::all(client.clone()),
        watcher::Config::default(),
    )
    .default_backoff();
    let accounts = watcher(
        Api::<ServiceAccount>::all(client.clone()),
        watcher::Config::default().fields(&format!("metadata.name={DEFAULT}")),
    )
    .default_backoff();
    futures::pin_mut!(namespaces, accounts);
    loop {
        let namespace = tokio::select! {
            ev = namespaces.next() => match ev {
                Some(Ok(watcher::Event::Apply(ns) | watcher::Event::InitApply(ns)))
                    if ns.metadata.deletion_timestamp.is_none() => ns.metadata.name,
                Some(_) => None,
                None => break,
            },
            ev = accounts.next() => match ev {
                Some(Ok(watcher::Event::Delete(sa))) => sa.metadata.namespace,
                Some(_) => None,
                None => break,
            },
            _ = shutdown.cancelled() => break,
        };
        if let Some(ns) = namespace {
            ensure(&client, &ns).await;
        }
    }
}
