//! The horizontal pod autoscaler (autoscaling/v2): scales a Deployment, ReplicaSet or
//! StatefulSet through its `scale` subresource from the CPU and memory usage that
//! `metrics.k8s.io` reports, with Kubernetes' algorithm:
//!
//! - `desired = ceil(current × usage / target)` for `Utilization` (usage as a share of the
//!   pods' requests) and `ceil(total usage / target per pod)` for `AverageValue`;
//! - nothing changes while the ratio is within the tolerance (10 %);
//! - when scaling up, pods without metrics or not ready count as using nothing; when scaling
//!   down, pods without metrics count as using all they requested; a recomputation that flips
//!   direction cancels the change;
//! - scaling down takes the highest recommendation of the stabilization window (5 min by
//!   default); scaling up is limited per period to the larger of 4 pods and 100 %.
//!
//! Like Kubernetes' controller it resyncs every HPA each period rather than watching metrics.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::Duration;

use k8s_openapi::api::autoscaling::v2::{
    HorizontalPodAutoscaler, HorizontalPodAutoscalerBehavior, MetricSpec,
};
use k8s_openapi::api::core::v1::{ObjectReference, Pod};
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::{Value, json};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::events::Recorder;

/// Tunables, with Kubernetes' defaults.
#[derive(Debug, Clone)]
pub struct HpaConfig {
    /// `--horizontal-pod-autoscaler-sync-period`.
    pub sync_period: Duration,
    /// `--horizontal-pod-autoscaler-tolerance`.
    pub tolerance: f64,
    /// Scale-down stabilization when the HPA's behavior names none.
    pub downscale_stabilization: Duration,
}

impl Default for HpaConfig {
    fn default() -> Self {
        HpaConfig {
            sync_period: Duration::from_secs(15),
            tolerance: 0.1,
            downscale_stabilization: Duration::from_secs(300),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HpaError {
    #[error("the HPA names no scale target")]
    NoTarget,
    #[error("scale target kind {0:?} is not supported (Deployment, ReplicaSet, StatefulSet)")]
    UnsupportedKind(String),
    #[error("reading the scale of {kind} {name}")]
    Scale {
        kind: String,
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("the scale of {0} reports no label selector")]
    NoSelector(String),
    #[error("listing pods or their metrics")]
    List(#[source] kube::Error),
    #[error("updating the scale of {kind} {name}")]
    Rescale {
        kind: String,
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("no metrics returned from the resource metrics API")]
    NoMetrics,
    #[error("missing request for {resource} in container(s) of the target's pods")]
    MissingRequest { resource: String },
}

/// One pod as the replica calculation sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct PodSample {
    /// Usage of the resource (millicores or bytes); None when metrics.k8s.io has none.
    pub usage: Option<f64>,
    /// The sum of its containers' requests of the resource.
    pub request: f64,
    /// Ready (and past its initial readiness delay).
    pub ready: bool,
}

/// What a metric asks for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Target {
    /// Percent of the pods' requests.
    Utilization(f64),
    /// Usage per pod (millicores or bytes).
    AverageValue(f64),
}

/// The replica count one metric recommends, and the current value it saw (utilization
/// percent or average value). Pure: Kubernetes' `GetResourceReplicas`.
pub fn replicas_for(
    current: u32,
    pods: &[PodSample],
    target: Target,
    tolerance: f64,
) -> Result<(u32, f64), HpaError> {
    let with_metrics: Vec<&PodSample> = pods
        .iter()
        .filter(|p| p.usage.is_some() && p.ready)
        .collect();
    if with_metrics.is_empty() {
        return Err(HpaError::NoMetrics);
    }
    let usage_of = |ps: &[&PodSample]| ps.iter().map(|p| p.usage.unwrap_or(0.0)).sum::<f64>();
    let request_of = |ps: &[&PodSample]| ps.iter().map(|p| p.request).sum::<f64>();
    let ratio_of =
        |ps: &[&PodSample], extra_usage: f64, extra_request: f64, extra_pods: f64| match target {
            Target::Utilization(t) => {
                let req = request_of(ps) + extra_request;
                if req <= 0.0 {
                    return None;
                }
                let util = 100.0 * (usage_of(ps) + extra_usage) / req;
                Some((util / t, util))
            }
            Target::AverageValue(t) => {
                let n = ps.len() as f64 + extra_pods;
                let avg = (usage_of(ps) + extra_usage) / n;
                Some((avg / t, avg))
            }
        };
    let (ratio, current_value) =
        ratio_of(&with_metrics, 0.0, 0.0, 0.0).ok_or(HpaError::MissingRequest {
            resource: "the resource".into(),
        })?;
    let missing: Vec<&PodSample> = pods
        .iter()
        .filter(|p| p.usage.is_none() || !p.ready)
        .collect();
    if missing.is_empty() {
        if (ratio - 1.0).abs() <= tolerance {
            return Ok((current, current_value));
        }
        let n = with_metrics.len() as f64;
        return Ok(((ratio * n).ceil() as u32, current_value));
    }
    // Pods without usable metrics: assume the least favourable value for the direction.
    let (extra_usage, extra_request) = if ratio < 1.0 {
        // Scaling down: pods without metrics use all they request (unready ones are ignored).
        let absent: Vec<&&PodSample> = missing.iter().filter(|p| p.usage.is_none()).collect();
        let req: f64 = absent.iter().map(|p| p.request).sum();
        match target {
            Target::Utilization(_) => (req, req),
            Target::AverageValue(t) => (t * absent.len() as f64, 0.0),
        }
    } else {
        // Scaling up: they use nothing.
        (0.0, missing.iter().map(|p| p.request).sum())
    };
    let counted = with_metrics.len() as f64 + missing.len() as f64;
    let (new_ratio, _) = ratio_of(
        &with_metrics,
        extra_usage,
        extra_request,
        missing.len() as f64,
    )
    .ok_or(HpaError::MissingRequest {
        resource: "the resource".into(),
    })?;
    if (new_ratio - 1.0).abs() <= tolerance || (ratio > 1.0) != (new_ratio > 1.0) {
        return Ok((current, current_value));
    }
    let desired = (new_ratio * counted).ceil() as u32;
    // The recomputation may not scale the other way than the plain ratio said.
    if (new_ratio < 1.0 && desired > current) || (new_ratio > 1.0 && desired < current) {
        return Ok((current, current_value));
    }
    Ok((desired, current_value))
}

/// Applies min/max and the scale-up rate limit (`max(4, 2 × current)` per period by default).
pub fn bounded(desired: u32, current: u32, min: u32, max: u32) -> (u32, Option<&'static str>) {
    let up_limit = (current.saturating_mul(2)).max(current + 4);
    let mut d = desired;
    let mut why = None;
    if d > up_limit {
        d = up_limit;
        why = Some("ScaleUpLimit");
    }
    if d > max {
        d = max;
        why = Some("TooManyReplicas");
    }
    if d < min {
        d = min;
        why = Some("TooFewReplicas");
    }
    (d, why)
}

fn resource_of(kind: &str) -> Option<ApiResource> {
    let (group, plural) = match kind {
        "Deployment" => ("apps", "deployments"),
        "ReplicaSet" => ("apps", "replicasets"),
        "StatefulSet" => ("apps", "statefulsets"),
        _ => return None,
    };
    Some(ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk(group, "v1", kind),
        plural,
    ))
}

fn quantity(q: &k8s_openapi::apimachinery::pkg::api::resource::Quantity) -> Option<f64> {
    let milli = wasmkube_api::quantity::Quantity::parse(&q.0)
        .ok()?
        .to_milli()?;
    Some(milli as f64)
}

/// Millicores for cpu, bytes for memory.
fn amount(resource: &str, milli: f64) -> f64 {
    if resource == "memory" {
        milli / 1000.0
    } else {
        milli
    }
}

/// Whether the pod's usage counts: it is Ready.
fn pod_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .into_iter()
        .flatten()
        .any(|c| c.type_ == "Ready" && c.status == "True")
}

/// Scale-down recommendations over time, per HPA.
#[derive(Default)]
struct History {
    recommendations: VecDeque<(Instant, u32)>,
}

struct Controller {
    client: kube::Client,
    config: HpaConfig,
    events: Recorder,
    history: HashMap<String, History>,
}

fn describe_metric(m: &MetricSpec) -> Option<(String, Target)> {
    let r = m.resource.as_ref()?;
    let t = &r.target;
    let target = match t.type_.as_str() {
        "Utilization" => Target::Utilization(t.average_utilization? as f64),
        "AverageValue" => {
            Target::AverageValue(amount(&r.name, quantity(t.average_value.as_ref()?)?))
        }
        _ => return None,
    };
    Some((r.name.clone(), target))
}

impl Controller {
    async fn sync(&mut self, hpa: &HorizontalPodAutoscaler) -> Result<(), HpaError> {
        let ns = hpa.metadata.namespace.clone().unwrap_or_default();
        let name = hpa.metadata.name.clone().unwrap_or_default();
        let spec = &hpa.spec;
        let target = &spec.scale_target_ref;
        if target.name.is_empty() {
            return Err(HpaError::NoTarget);
        }
        let ar = resource_of(&target.kind)
            .ok_or_else(|| HpaError::UnsupportedKind(target.kind.clone()))?;
        let api: Api<DynamicObject> = Api::namespaced_with(self.client.clone(), &ns, &ar);
        let scale = api
            .get_scale(&target.name)
            .await
            .map_err(|source| HpaError::Scale {
                kind: target.kind.clone(),
                name: target.name.clone(),
                source,
            })?;
        let current = scale
            .spec
            .as_ref()
            .and_then(|s| s.replicas)
            .unwrap_or(0)
            .max(0) as u32;
        let selector = scale
            .status
            .as_ref()
            .and_then(|s| s.selector.clone())
            .filter(|s| !s.is_empty())
            .ok_or_else(|| HpaError::NoSelector(target.name.clone()))?;
        let min = spec.min_replicas.unwrap_or(1).max(0) as u32;
        let max = spec.max_replicas.max(0) as u32;

        // A target scaled to zero by hand stays there: autoscaling is off for it.
        if current == 0 {
            return self
                .write_status(hpa, current, current, vec![], false)
                .await;
        }

        let pods: Api<Pod> = Api::namespaced(self.client.clone(), &ns);
        let pod_list = pods
            .list(&ListParams::default().labels(&selector))
            .await
            .map_err(HpaError::List)?;
        let metrics_ar = ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("metrics.k8s.io", "v1beta1", "PodMetrics"),
            "pods",
        );
        let metrics_api: Api<DynamicObject> =
            Api::namespaced_with(self.client.clone(), &ns, &metrics_ar);
        let metrics = metrics_api
            .list(&ListParams::default().labels(&selector))
            .await
            .map_err(HpaError::List)?;
        let usage_by_pod: BTreeMap<String, Value> = metrics
            .items
            .into_iter()
            .filter_map(|m| Some((m.metadata.name.clone()?, m.data)))
            .collect();

        let mut desired_all = 0u32;
        let mut current_metrics = Vec::new();
        let mut reason = String::new();
        let mut errors = Vec::new();
        for m in spec.metrics.iter().flatten() {
            let Some((resource, target_value)) = describe_metric(m) else {
                continue;
            };
            let samples: Vec<PodSample> = pod_list
                .items
                .iter()
                .filter(|p| {
                    p.metadata.deletion_timestamp.is_none()
                        && !matches!(
                            p.status.as_ref().and_then(|s| s.phase.as_deref()),
                            Some("Succeeded" | "Failed")
                        )
                })
                .map(|p| {
                    let pname = p.metadata.name.clone().unwrap_or_default();
                    let request: f64 = p
                        .spec
                        .iter()
                        .flat_map(|s| s.containers.iter())
                        .filter_map(|c| {
                            let q = c.resources.as_ref()?.requests.as_ref()?.get(&resource)?;
                            quantity(q).map(|m| amount(&resource, m))
                        })
                        .sum();
                    let usage = usage_by_pod.get(&pname).map(|d| {
                        d["containers"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .filter_map(|c| {
                                let q = c["usage"][&resource].as_str()?;
                                let milli = wasmkube_api::quantity::Quantity::parse(q)
                                    .ok()?
                                    .to_milli()?;
                                Some(amount(&resource, milli as f64))
                            })
                            .sum::<f64>()
                    });
                    PodSample {
                        usage,
                        request,
                        ready: pod_ready(p),
                    }
                })
                .collect();
            match replicas_for(current, &samples, target_value, self.config.tolerance) {
                Ok((desired, value)) => {
                    if desired > desired_all {
                        desired_all = desired;
                        reason = match target_value {
                            Target::Utilization(_) => format!(
                                "{resource} resource utilization (percentage of request) {} target",
                                if desired > current { "above" } else { "below" }
                            ),
                            Target::AverageValue(_) => format!(
                                "{resource} resource {} target",
                                if desired > current { "above" } else { "below" }
                            ),
                        };
                    }
                    let current_json = match target_value {
                        Target::Utilization(_) => {
                            json!({"averageUtilization": value.round() as i64,
                            "averageValue": format_amount(&resource, value_avg(&samples, &resource))})
                        }
                        Target::AverageValue(_) => {
                            json!({"averageValue": format_amount(&resource, value)})
                        }
                    };
                    current_metrics.push(json!({"type": "Resource", "resource": {"name": resource, "current": current_json}}));
                }
                Err(e) => errors.push(e.to_string()),
            }
        }
        if desired_all == 0 {
            let message = errors.join("; ");
            self.events.warning(
                self.reference(hpa),
                "FailedGetResourceMetric",
                if message.is_empty() {
                    "no metrics to scale on".into()
                } else {
                    message
                },
            );
            return self
                .write_status(hpa, current, current, current_metrics, false)
                .await;
        }
        let key = format!("{ns}/{name}");
        let window = down_window(spec.behavior.as_ref(), self.config.downscale_stabilization);
        let now = Instant::now();
        let history = self.history.entry(key).or_default();
        history.recommendations.push_back((now, desired_all));
        while history
            .recommendations
            .front()
            .is_some_and(|(t, _)| now.duration_since(*t) > window)
        {
            history.recommendations.pop_front();
        }
        // Scale down only as far as every recommendation within the window allows.
        let stabilized = if desired_all < current {
            history
                .recommendations
                .iter()
                .map(|(_, r)| *r)
                .max()
                .unwrap_or(desired_all)
                .min(current)
        } else {
            desired_all
        };
        let (desired, _limit) = bounded(stabilized, current, min, max);
        let mut rescaled = false;
        if desired != current {
            let patch = json!({"spec": {"replicas": desired}});
            api.patch_scale(&target.name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .map_err(|source| HpaError::Rescale {
                    kind: target.kind.clone(),
                    name: target.name.clone(),
                    source,
                })?;
            self.events.normal(
                self.reference(hpa),
                "SuccessfulRescale",
                format!("New size: {desired}; reason: {reason}"),
            );
            rescaled = true;
        }
        self.write_status(hpa, current, desired, current_metrics, rescaled)
            .await
    }

    fn reference(&self, hpa: &HorizontalPodAutoscaler) -> ObjectReference {
        ObjectReference {
            api_version: Some("autoscaling/v2".into()),
            kind: Some("HorizontalPodAutoscaler".into()),
            name: hpa.metadata.name.clone(),
            namespace: hpa.metadata.namespace.clone(),
            uid: hpa.metadata.uid.clone(),
            ..Default::default()
        }
    }

    async fn write_status(
        &self,
        hpa: &HorizontalPodAutoscaler,
        current: u32,
        desired: u32,
        metrics: Vec<Value>,
        rescaled: bool,
    ) -> Result<(), HpaError> {
        let ns = hpa.metadata.namespace.clone().unwrap_or_default();
        let name = hpa.metadata.name.clone().unwrap_or_default();
        let now = jiff::Timestamp::now()
            .strftime("%Y-%m-%dT%H:%M:%SZ")
            .to_string();
        let active = !metrics.is_empty();
        let mut status = json!({
            "currentReplicas": current,
            "desiredReplicas": desired,
            "currentMetrics": metrics,
            "observedGeneration": hpa.metadata.generation,
            "conditions": [
                {"type": "AbleToScale", "status": "True", "reason": if rescaled { "SucceededRescale" } else { "ReadyForNewScale" },
                 "message": "the HPA controller was able to update the target scale", "lastTransitionTime": now},
                {"type": "ScalingActive", "status": if active { "True" } else { "False" },
                 "reason": if active { "ValidMetricFound" } else { "FailedGetResourceMetric" },
                 "message": if active { "the HPA was able to successfully calculate a replica count from the resource metrics" } else { "the HPA was unable to compute the replica count" },
                 "lastTransitionTime": now},
            ],
        });
        let last = hpa.status.as_ref().and_then(|s| s.last_scale_time.clone());
        if rescaled {
            status["lastScaleTime"] = json!(now);
        } else if let Some(t) = last {
            status["lastScaleTime"] = json!(t);
        }
        let api: Api<HorizontalPodAutoscaler> = Api::namespaced(self.client.clone(), &ns);
        api.patch_status(
            &name,
            &PatchParams::default(),
            &Patch::Merge(&json!({"status": status})),
        )
        .await
        .map_err(HpaError::List)?;
        Ok(())
    }
}

fn value_avg(samples: &[PodSample], _resource: &str) -> f64 {
    let with: Vec<f64> = samples.iter().filter_map(|s| s.usage).collect();
    if with.is_empty() {
        0.0
    } else {
        with.iter().sum::<f64>() / with.len() as f64
    }
}

fn format_amount(resource: &str, v: f64) -> String {
    if resource == "memory" {
        format!("{}", v.round() as u64)
    } else {
        format!("{}m", v.round() as u64)
    }
}

fn down_window(behavior: Option<&HorizontalPodAutoscalerBehavior>, default: Duration) -> Duration {
    behavior
        .and_then(|b| b.scale_down.as_ref())
        .and_then(|r| r.stabilization_window_seconds)
        .map(|s| Duration::from_secs(s.max(0) as u64))
        .unwrap_or(default)
}

/// Runs the autoscaler until `shutdown`.
pub async fn run(client: kube::Client, config: HpaConfig, shutdown: CancellationToken) {
    let events = Recorder::new(
        client.clone(),
        "horizontal-pod-autoscaler",
        shutdown.clone(),
    );
    let mut c = Controller {
        client: client.clone(),
        config,
        events,
        history: HashMap::new(),
    };
    let api: Api<HorizontalPodAutoscaler> = Api::all(client);
    let mut tick = tokio::time::interval(c.config.sync_period);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let list = match api.list(&ListParams::default()).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "listing HorizontalPodAutoscalers failed");
                continue;
            }
        };
        for hpa in &list.items {
            if let Err(e) = c.sync(hpa).await {
                tracing::debug!(hpa = ?hpa.metadata.name, error = %e, "autoscaling failed");
                c.events.warning(
                    c.reference(hpa),
                    "FailedComputeMetricsReplicas",
                    crate::error_chain(&e),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(usage: Option<f64>, request: f64) -> PodSample {
        PodSample {
            usage,
            request,
            ready: true,
        }
    }

    #[test]
    fn utilization_scales_by_ratio_outside_tolerance() {
        let pods = vec![pod(Some(200.0), 100.0), pod(Some(200.0), 100.0)];
        // 200 % of request against a 50 % target: 4× the pods.
        assert_eq!(
            replicas_for(2, &pods, Target::Utilization(50.0), 0.1)
                .expect("ok")
                .0,
            8
        );
        // Within tolerance: no change.
        let pods = vec![pod(Some(52.0), 100.0), pod(Some(52.0), 100.0)];
        assert_eq!(
            replicas_for(2, &pods, Target::Utilization(50.0), 0.1)
                .expect("ok")
                .0,
            2
        );
    }

    #[test]
    fn missing_metrics_are_pessimistic_for_the_direction() {
        // Scaling up: the pod without metrics counts as idle, so the ratio shrinks.
        let pods = vec![pod(Some(100.0), 100.0), pod(None, 100.0)];
        let (d, _) = replicas_for(2, &pods, Target::Utilization(50.0), 0.1).expect("ok");
        assert_eq!(d, 2, "100+0 over 200 is exactly the 50% target");
        // Scaling down: the pod without metrics counts as using its request.
        let pods = vec![pod(Some(10.0), 100.0), pod(None, 100.0)];
        let (d, _) = replicas_for(2, &pods, Target::Utilization(50.0), 0.1).expect("ok");
        assert_eq!(d, 2, "(10+100)/200 = 55% is within tolerance");
    }

    #[test]
    fn average_value_targets() {
        let pods = vec![pod(Some(300.0), 0.0), pod(Some(300.0), 0.0)];
        assert_eq!(
            replicas_for(2, &pods, Target::AverageValue(100.0), 0.1)
                .expect("ok")
                .0,
            6
        );
    }

    #[test]
    fn no_metrics_is_an_error() {
        assert!(replicas_for(2, &[pod(None, 1.0)], Target::Utilization(50.0), 0.1).is_err());
    }

    #[test]
    fn bounds_and_rate_limit() {
        assert_eq!(bounded(100, 2, 1, 50), (6, Some("ScaleUpLimit")));
        assert_eq!(bounded(100, 20, 1, 30), (30, Some("TooManyReplicas")));
        assert_eq!(bounded(0, 3, 1, 10), (1, Some("TooFewReplicas")));
        assert_eq!(bounded(5, 3, 1, 10), (5, None));
    }
}
