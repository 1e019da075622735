//! The status writer: `status.loadBalancer.ingress` of LoadBalancer Services and of the
//! Ingresses of class `wasmkube`, and the IngressClass itself (annotated as the cluster's
//! default). Only one proxy of the cluster runs this (see the crate doc).

use std::net::IpAddr;
use std::time::Duration;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::networking::v1::{Ingress, IngressClass};
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::cache::Cache;
use crate::ingress::{CONTROLLER, INGRESS_CLASS, is_ours};

/// The annotation that makes an IngressClass the default.
pub const DEFAULT_CLASS_ANNOTATION: &str = "ingressclass.kubernetes.io/is-default-class";

/// Runs until `shutdown`.
pub async fn run(client: kube::Client, cache: Cache, node_ip: IpAddr, shutdown: CancellationToken) {
    ensure_ingress_class(&client, &shutdown).await;
    let mut changed = cache.subscribe();
    tokio::select! {
        _ = cache.ready() => {}
        _ = shutdown.cancelled() => return,
    }
    let ingress = json!([{"ip": node_ip.to_string()}]);
    loop {
        for svc in cache.services.state() {
            let want = if svc.spec.as_ref().and_then(|s| s.type_.as_deref()) == Some("LoadBalancer")
            {
                ingress.clone()
            } else {
                Value::Null
            };
            let have = svc
                .status
                .as_ref()
                .and_then(|s| s.load_balancer.as_ref())
                .and_then(|lb| lb.ingress.as_ref())
                .map(|i| serde_json::to_value(i).unwrap_or(Value::Null))
                .unwrap_or(Value::Null);
            if have != want {
                patch::<Service>(
                    &client,
                    svc.metadata.namespace.as_deref(),
                    svc.metadata.name.as_deref(),
                    &want,
                )
                .await;
            }
        }
        for ing in cache.ingresses.state() {
            let want = if is_ours(&ing) {
                ingress.clone()
            } else {
                continue;
            };
            let have = ing
                .status
                .as_ref()
                .and_then(|s| s.load_balancer.as_ref())
                .and_then(|lb| lb.ingress.as_ref())
                .map(|i| serde_json::to_value(i).unwrap_or(Value::Null))
                .unwrap_or(Value::Null);
            if have != want {
                patch::<Ingress>(
                    &client,
                    ing.metadata.namespace.as_deref(),
                    ing.metadata.name.as_deref(),
                    &want,
                )
                .await;
            }
        }
        tokio::select! {
            r = changed.changed() => if r.is_err() { return },
            _ = shutdown.cancelled() => return,
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        changed.borrow_and_update();
    }
}

async fn patch<K>(
    client: &kube::Client,
    namespace: Option<&str>,
    name: Option<&str>,
    ingress: &Value,
) where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    let (Some(ns), Some(name)) = (namespace, name) else {
        return;
    };
    let api: Api<K> = Api::namespaced(client.clone(), ns);
    // A merge patch replaces the list as a whole; null removes it.
    let body = json!({"status": {"loadBalancer": {"ingress": ingress}}});
    if let Err(e) = api
        .patch_status(name, &PatchParams::default(), &Patch::Merge(&body))
        .await
    {
        tracing::warn!(namespace = ns, name, kind = %K::kind(&()), error = %e, "updating the load-balancer status failed");
    }
}

/// Creates the `wasmkube` IngressClass, the cluster default, unless it exists.
async fn ensure_ingress_class(client: &kube::Client, shutdown: &CancellationToken) {
    let api: Api<IngressClass> = Api::all(client.clone());
    let class: IngressClass = match serde_json::from_value(json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "IngressClass",
        "metadata": {
            "name": INGRESS_CLASS,
            "annotations": {DEFAULT_CLASS_ANNOTATION: "true"},
        },
        "spec": {"controller": CONTROLLER},
    })) {
        Ok(c) => c,
        Err(_) => return,
    };
    for attempt in 0..30u32 {
        match api.create(&PostParams::default(), &class).await {
            Ok(_) => return,
            Err(kube::Error::Api(e)) if e.code == 409 => return,
            Err(e) => {
                if attempt == 0 {
                    tracing::debug!(error = %e, "creating the IngressClass failed; retrying");
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = shutdown.cancelled() => return,
        }
    }
    tracing::warn!("could not create the IngressClass {INGRESS_CLASS}");
}
