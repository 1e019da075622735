//! The Job controller against a real API server, the test playing the kubelet.

use std::time::{Duration, Instant};

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use wasmkube_controllers::job::{self, COMPLETION_INDEX, Config, TRACKING_FINALIZER};

use crate::api_only::{ApiServer, events, finish_pod, pods, until};

const WAIT: Duration = Duration::from_secs(10);

/// A server running only the Job controller, with a short back-off so tests need not wait
/// Kubernetes' ten seconds.
async fn start() -> ApiServer {
    let server = ApiServer::start().await;
    let config = Config {
        backoff_base: Duration::from_millis(100),
        backoff_max: Duration::from_secs(1),
    };
    server.spawn(move |client, shutdown| job::run_with(client, shutdown, config));
    server
}

fn job_object(name: &str, spec: Value) -> Job {
    let mut full = json!({
        "template": {
            "metadata": {"labels": {"app": name}},
            "spec": {
                "restartPolicy": "Never",
                "containers": [{"name": "main", "image": "busybox"}],
            },
        },
    });
    if let (Some(full), Some(extra)) = (full.as_object_mut(), spec.as_object()) {
        for (k, v) in extra {
            full.insert(k.clone(), v.clone());
        }
    }
    serde_json::from_value(json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": full,
    }))
    .expect("job manifest")
}

async fn create(server: &ApiServer, name: &str, spec: Value) -> Job {
    let api: Api<Job> = server.api();
    api.create(&PostParams::default(), &job_object(name, spec))
        .await
        .expect("create job")
}

fn selector(name: &str) -> String {
    format!("batch.kubernetes.io/job-name={name}")
}

fn active(pods: &[Pod]) -> Vec<Pod> {
    pods.iter()
        .filter(|p| wasmkube_controllers::pods::is_active(p))
        .cloned()
        .collect()
}

fn name_of(pod: &Pod) -> String {
    pod.metadata.name.clone().unwrap_or_default()
}

fn has_tracking_finalizer(pod: &Pod) -> bool {
    pod.metadata
        .finalizers
        .iter()
        .flatten()
        .any(|f| f == TRACKING_FINALIZER)
}

/// The status of condition `type_`, if the Job has it.
fn condition(job: &Job, type_: &str) -> Option<(String, Option<String>)> {
    job.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| (c.status.clone(), c.reason.clone()))
}

fn is_true(job: &Job, type_: &str) -> bool {
    condition(job, type_).is_some_and(|(s, _)| s == "True")
}

/// Waits for the Job to satisfy `check`.
async fn job_until(
    server: &ApiServer,
    name: &str,
    what: &str,
    check: impl Fn(&Job) -> bool,
) -> Job {
    let api: Api<Job> = server.api();
    until(what, WAIT, || async {
        api.get_opt(name).await.ok().flatten().filter(|j| check(j))
    })
    .await
}

/// Waits for `n` active pods of the Job.
async fn active_pods(server: &ApiServer, name: &str, n: usize) -> Vec<Pod> {
    until(&format!("{n} active pods of {name}"), WAIT, || async {
        let act = active(&pods(&server.client, &selector(name)).await);
        (act.len() == n).then_some(act)
    })
    .await
}

#[tokio::test]
async fn non_indexed_job_runs_to_completion() {
    let server = start().await;
    let job = create(&server, "pi", json!({"completions": 3, "parallelism": 2})).await;
    let uid = job.metadata.uid.clone().unwrap_or_default();

    let first = active_pods(&server, "pi", 2).await;
    let pod = &first[0];
    assert!(
        has_tracking_finalizer(pod),
        "pods carry the tracking finalizer"
    );
    let labels = pod.metadata.labels.clone().unwrap_or_default();
    assert_eq!(labels.get("app").map(String::as_str), Some("pi"));
    assert_eq!(labels.get("batch.kubernetes.io/controller-uid"), Some(&uid));
    assert_eq!(labels.get("controller-uid"), Some(&uid));
    assert_eq!(labels.get("job-name").map(String::as_str), Some("pi"));
    let owner = &pod.metadata.owner_references.clone().unwrap_or_default()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.uid.as_str()),
        ("Job", uid.as_str())
    );
    assert_eq!(owner.controller, Some(true));
    assert!(name_of(pod).starts_with("pi-"));
    job_until(&server, "pi", "active 2 and a start time", |j| {
        j.status
            .as_ref()
            .is_some_and(|s| s.active == Some(2) && s.start_time.is_some())
    })
    .await;

    for pod in &first {
        finish_pod(&server.client, &name_of(pod), true).await;
    }
    // Two of three done: one more pod, never more than the remaining completions.
    let third = active_pods(&server, "pi", 1).await;
    finish_pod(&server.client, &name_of(&third[0]), true).await;

    let done = job_until(&server, "pi", "Complete", |j| is_true(j, "Complete")).await;
    let status = done.status.clone().unwrap_or_default();
    assert_eq!(status.succeeded, Some(3));
    assert_eq!(status.failed, None);
    assert_eq!(status.active, None);
    assert!(status.completion_time.is_some());
    assert!(is_true(&done, "SuccessCriteriaMet"));
    let uncounted = status.uncounted_terminated_pods.unwrap_or_default();
    assert!(uncounted.succeeded.is_none() && uncounted.failed.is_none());

    // Finished pods are kept, without the finalizer once counted.
    let all = until("finalizers removed", WAIT, || async {
        let all = pods(&server.client, &selector("pi")).await;
        all.iter()
            .all(|p| !has_tracking_finalizer(p))
            .then_some(all)
    })
    .await;
    assert_eq!(all.len(), 3);
    until("events", WAIT, || async {
        let created = events(&server.client, "pi", "SuccessfulCreate").await;
        let completed = events(&server.client, "pi", "Completed").await;
        (created.len() == 3 && completed == ["Job completed"]).then_some(())
    })
    .await;
}

#[tokio::test]
async fn indexed_job_completes_every_index() {
    let server = start().await;
    create(
        &server,
        "idx",
        json!({"completions": 3, "parallelism": 3, "completionMode": "Indexed"}),
    )
    .await;
    let by_index = |pods: &[Pod]| -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = pods
            .iter()
            .map(|p| {
                let index = p
                    .metadata
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get(COMPLETION_INDEX))
                    .cloned()
                    .unwrap_or_default();
                (index, name_of(p))
            })
            .collect();
        v.sort();
        v
    };
    let started = active_pods(&server, "idx", 3).await;
    let indexed = by_index(&started);
    assert_eq!(
        indexed.iter().map(|(i, _)| i.as_str()).collect::<Vec<_>>(),
        ["0", "1", "2"]
    );
    for pod in &started {
        let index = pod
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(COMPLETION_INDEX))
            .cloned()
            .unwrap_or_default();
        assert_eq!(
            pod.spec.as_ref().and_then(|s| s.hostname.clone()),
            Some(format!("idx-{index}"))
        );
        assert!(name_of(pod).starts_with(&format!("idx-{index}-")));
    }
    finish_pod(&server.client, &indexed[0].1, true).await;
    finish_pod(&server.client, &indexed[2].1, true).await;
    // Index 1 fails once: it is started again (after the back-off) under the same index.
    finish_pod(&server.client, &indexed[1].1, false).await;
    job_until(&server, "idx", "indexes 0 and 2 complete", |j| {
        j.status.as_ref().is_some_and(|s| {
            s.completed_indexes.as_deref() == Some("0,2")
                && s.succeeded == Some(2)
                && s.failed == Some(1)
        })
    })
    .await;
    let retry = active_pods(&server, "idx", 1).await;
    assert_eq!(by_index(&retry)[0].0, "1");
    finish_pod(&server.client, &name_of(&retry[0]), true).await;
    let done = job_until(&server, "idx", "Complete", |j| is_true(j, "Complete")).await;
    let status = done.status.unwrap_or_default();
    assert_eq!(status.completed_indexes.as_deref(), Some("0-2"));
    assert_eq!(status.succeeded, Some(3));
}

#[tokio::test]
async fn backoff_limit_fails_the_job() {
    let server = start().await;
    create(&server, "flaky", json!({"backoffLimit": 1})).await;
    let first = active_pods(&server, "flaky", 1).await;
    finish_pod(&server.client, &name_of(&first[0]), false).await;
    let failed_at = Instant::now();
    let second = active_pods(&server, "flaky", 1).await;
    assert!(
        failed_at.elapsed() >= Duration::from_millis(80),
        "the replacement waits for the back-off"
    );
    assert_ne!(name_of(&second[0]), name_of(&first[0]));
    finish_pod(&server.client, &name_of(&second[0]), false).await;

    let failed = job_until(&server, "flaky", "Failed", |j| is_true(j, "Failed")).await;
    assert_eq!(
        condition(&failed, "Failed"),
        Some(("True".into(), Some("BackoffLimitExceeded".into())))
    );
    assert!(is_true(&failed, "FailureTarget"));
    let status = failed.status.unwrap_or_default();
    assert_eq!(status.failed, Some(2));
    assert_eq!(status.completion_time, None);
    until("BackoffLimitExceeded event", WAIT, || async {
        let ev = events(&server.client, "flaky", "BackoffLimitExceeded").await;
        (!ev.is_empty()).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        pods(&server.client, &selector("flaky")).await.len(),
        2,
        "no more pods"
    );
}

#[tokio::test]
async fn active_deadline_stops_the_job() {
    let server = start().await;
    create(
        &server,
        "slow",
        json!({"completions": 4, "parallelism": 2, "activeDeadlineSeconds": 1}),
    )
    .await;
    // Not waited for: with a one-second deadline (and start times of second precision) the
    // pods may be gone before the test could look.
    until("both pods created", WAIT, || async {
        let ev = events(&server.client, "slow", "SuccessfulCreate").await;
        (ev.len() == 2).then_some(())
    })
    .await;
    let failed = job_until(&server, "slow", "Failed", |j| is_true(j, "Failed")).await;
    assert_eq!(
        condition(&failed, "Failed"),
        Some(("True".into(), Some("DeadlineExceeded".into())))
    );
    // The running pods were killed and counted as failed; with no node they are gone.
    assert_eq!(failed.status.and_then(|s| s.failed), Some(2));
    until("pods gone", WAIT, || async {
        pods(&server.client, &selector("slow"))
            .await
            .is_empty()
            .then_some(())
    })
    .await;
    until("DeadlineExceeded event", WAIT, || async {
        let ev = events(&server.client, "slow", "DeadlineExceeded").await;
        (!ev.is_empty()).then_some(())
    })
    .await;
}

#[tokio::test]
async fn suspend_resume_and_ttl_after_finished() {
    let server = start().await;
    create(
        &server,
        "later",
        json!({"suspend": true, "ttlSecondsAfterFinished": 1}),
    )
    .await;
    let suspended = job_until(&server, "later", "Suspended", |j| is_true(j, "Suspended")).await;
    assert_eq!(
        condition(&suspended, "Suspended").and_then(|(_, r)| r),
        Some("JobSuspended".into())
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(pods(&server.client, &selector("later")).await.is_empty());

    let api: Api<Job> = server.api();
    api.patch(
        "later",
        &PatchParams::default(),
        &Patch::Merge(&json!({"spec": {"suspend": false}})),
    )
    .await
    .expect("resume");
    let pod = active_pods(&server, "later", 1).await;
    job_until(&server, "later", "resumed", |j| {
        condition(j, "Suspended") == Some(("False".into(), Some("JobResumed".into())))
    })
    .await;
    finish_pod(&server.client, &name_of(&pod[0]), true).await;
    job_until(&server, "later", "Complete", |j| is_true(j, "Complete")).await;
    // Deleted a second after finishing (times have second precision: allow a few).
    until("the job deleted by its TTL", WAIT, || async {
        api.get_opt("later")
            .await
            .ok()
            .flatten()
            .is_none()
            .then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_deleted_pod_is_counted_before_it_goes() {
    let server = start().await;
    create(&server, "victim", json!({})).await;
    let first = active_pods(&server, "victim", 1).await;
    let pod_api: Api<Pod> = server.api();
    pod_api
        .delete(&name_of(&first[0]), &DeleteParams::default())
        .await
        .expect("delete pod");
    // The finalizer kept it until counted as a failure; then it went, and a replacement came.
    job_until(&server, "victim", "one failure counted", |j| {
        j.status.as_ref().is_some_and(|s| s.failed == Some(1))
    })
    .await;
    until("the deleted pod gone", WAIT, || async {
        pod_api
            .get_opt(&name_of(&first[0]))
            .await
            .ok()
            .flatten()
            .is_none()
            .then_some(())
    })
    .await;
    let replacement = active_pods(&server, "victim", 1).await;
    finish_pod(&server.client, &name_of(&replacement[0]), true).await;
    let done = job_until(&server, "victim", "Complete", |j| is_true(j, "Complete")).await;
    let status = done.status.unwrap_or_default();
    assert_eq!((status.succeeded, status.failed), (Some(1), Some(1)));
}

#[tokio::test]
async fn work_queue_job_ends_when_all_pods_finished() {
    let server = start().await;
    create(
        &server,
        "queue",
        json!({"parallelism": 2, "completions": null}),
    )
    .await;
    let started = active_pods(&server, "queue", 2).await;
    finish_pod(&server.client, &name_of(&started[0]), true).await;
    job_until(&server, "queue", "one success", |j| {
        j.status.as_ref().is_some_and(|s| s.succeeded == Some(1))
    })
    .await;
    // After a success no new pods start, and the Job waits for the other one.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let now = pods(&server.client, &selector("queue")).await;
    assert_eq!(now.len(), 2);
    let api: Api<Job> = server.api();
    let job = api.get("queue").await.expect("job");
    assert!(!is_true(&job, "Complete"));
    finish_pod(&server.client, &name_of(&started[1]), true).await;
    let done = job_until(&server, "queue", "Complete", |j| is_true(j, "Complete")).await;
    assert_eq!(done.status.and_then(|s| s.succeeded), Some(2));
}
