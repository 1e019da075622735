//! The CronJob controller against a real API server, on a clock the test moves forward (no
//! Job controller runs: the test marks Jobs finished itself).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::jiff::{SignedDuration, Timestamp, tz::TimeZone};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use wasmkube_controllers::cronjob::{self, Clock, SCHEDULED_TIMESTAMP_ANNOTATION};

use crate::api_only::{ApiServer, events, until};

const WAIT: Duration = Duration::from_secs(10);

/// The real time shifted by an offset the test sets.
#[derive(Default)]
struct ShiftedClock {
    offset: Mutex<SignedDuration>,
}

impl ShiftedClock {
    /// Makes "now" read `t` (and go on from there).
    fn set(&self, t: Timestamp) {
        let offset = t.duration_since(Timestamp::now());
        *self.offset.lock().unwrap_or_else(|e| e.into_inner()) = offset;
    }
}

impl Clock for ShiftedClock {
    fn now(&self) -> Timestamp {
        let offset = *self.offset.lock().unwrap_or_else(|e| e.into_inner());
        Timestamp::now()
            .checked_add(offset)
            .expect("shifted time in range")
    }
}

async fn start() -> (ApiServer, Arc<ShiftedClock>) {
    let server = ApiServer::start().await;
    let clock = Arc::new(ShiftedClock::default());
    let shared: Arc<dyn Clock> = clock.clone();
    server.spawn(move |client, shutdown| cronjob::run_with_clock(client, shutdown, shared));
    (server, clock)
}

async fn create(server: &ApiServer, name: &str, spec: Value) -> CronJob {
    let mut full = json!({
        "schedule": "* * * * *",
        "timeZone": "Etc/UTC",
        "jobTemplate": {
            "metadata": {"labels": {"cron": name}},
            "spec": {"template": {"spec": {
                "restartPolicy": "Never",
                "containers": [{"name": "main", "image": "busybox"}],
            }}},
        },
    });
    if let (Some(full), Some(extra)) = (full.as_object_mut(), spec.as_object()) {
        for (k, v) in extra {
            full.insert(k.clone(), v.clone());
        }
    }
    let cj: CronJob = serde_json::from_value(json!({
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": name},
        "spec": full,
    }))
    .expect("cronjob manifest");
    let api: Api<CronJob> = server.api();
    api.create(&PostParams::default(), &cj)
        .await
        .expect("create cronjob")
}

/// Any write makes the controller sync the CronJob at once (it would otherwise wait for the
/// next schedule time by the real clock).
async fn touch(server: &ApiServer, name: &str) {
    let api: Api<CronJob> = server.api();
    let stamp = Timestamp::now().as_nanosecond().to_string();
    api.patch(
        name,
        &PatchParams::default(),
        &Patch::Merge(&json!({"metadata": {"annotations": {"test/touch": stamp}}})),
    )
    .await
    .expect("touch cronjob");
}

/// The first minute boundary after `t`.
fn next_minute(t: Timestamp) -> Timestamp {
    Timestamp::from_second(t.as_second().div_euclid(60) * 60 + 60).expect("minute")
}

fn plus(t: Timestamp, secs: i64) -> Timestamp {
    t.checked_add(SignedDuration::from_secs(secs))
        .expect("time in range")
}

fn created(cj: &CronJob) -> Timestamp {
    cj.metadata
        .creation_timestamp
        .as_ref()
        .map(|t| t.0)
        .expect("creation timestamp")
}

fn job_name(cron: &str, t: Timestamp) -> String {
    format!("{cron}-{}", t.as_second() / 60)
}

async fn jobs_of(server: &ApiServer, cron: &str) -> Vec<Job> {
    let api: Api<Job> = server.api();
    let mut jobs = api
        .list(&ListParams::default().labels(&format!("cron={cron}")))
        .await
        .expect("list jobs")
        .items;
    jobs.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    jobs
}

async fn job_appears(server: &ApiServer, name: &str) -> Job {
    let api: Api<Job> = server.api();
    until(&format!("job {name}"), WAIT, || async {
        api.get_opt(name).await.ok().flatten()
    })
    .await
}

/// What the Job controller would write when the Job's pods succeeded.
async fn complete_job(server: &ApiServer, name: &str, at: Timestamp) {
    let api: Api<Job> = server.api();
    let t = at.to_string();
    let patch = json!({"status": {
        "startTime": t,
        "completionTime": t,
        "succeeded": 1,
        "conditions": [
            {"type": "SuccessCriteriaMet", "status": "True"},
            {"type": "Complete", "status": "True"},
        ],
    }});
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("complete job");
}

async fn cron_until(
    server: &ApiServer,
    name: &str,
    what: &str,
    check: impl Fn(&CronJob) -> bool,
) -> CronJob {
    let api: Api<CronJob> = server.api();
    until(what, WAIT, || async {
        api.get_opt(name).await.ok().flatten().filter(|c| check(c))
    })
    .await
}

fn active_names(cj: &CronJob) -> Vec<String> {
    cj.status
        .as_ref()
        .and_then(|s| s.active.as_ref())
        .map(|a| a.iter().filter_map(|r| r.name.clone()).collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn every_minute_creates_jobs_and_keeps_history() {
    let (server, clock) = start().await;
    let cj = create(&server, "tick", json!({"successfulJobsHistoryLimit": 1})).await;
    let uid = cj.metadata.uid.clone().unwrap_or_default();
    let m1 = next_minute(created(&cj));

    // Before the first schedule time nothing happens.
    touch(&server, "tick").await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    if Timestamp::now() < m1 {
        assert!(jobs_of(&server, "tick").await.is_empty());
    }

    clock.set(plus(m1, 1));
    touch(&server, "tick").await;
    let first = job_appears(&server, &job_name("tick", m1)).await;
    let ann = first.metadata.annotations.clone().unwrap_or_default();
    assert_eq!(
        ann.get(SCHEDULED_TIMESTAMP_ANNOTATION),
        Some(&m1.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
    );
    let owner = &first.metadata.owner_references.clone().unwrap_or_default()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.uid.as_str()),
        ("CronJob", uid.as_str())
    );
    assert_eq!(owner.controller, Some(true));
    let status = cron_until(&server, "tick", "the first job active", |c| {
        active_names(c) == [job_name("tick", m1)]
    })
    .await
    .status
    .unwrap_or_default();
    assert_eq!(status.last_schedule_time.map(|t| t.0), Some(m1));

    complete_job(&server, &job_name("tick", m1), plus(m1, 30)).await;
    let status = cron_until(&server, "tick", "the first job seen complete", |c| {
        active_names(c).is_empty()
            && c.status
                .as_ref()
                .and_then(|s| s.last_successful_time.as_ref())
                .is_some()
    })
    .await
    .status
    .unwrap_or_default();
    assert_eq!(status.last_successful_time.map(|t| t.0), Some(plus(m1, 30)));

    let m2 = plus(m1, 60);
    clock.set(plus(m2, 1));
    touch(&server, "tick").await;
    job_appears(&server, &job_name("tick", m2)).await;
    complete_job(&server, &job_name("tick", m2), plus(m2, 30)).await;
    // History limit 1: the older finished Job goes.
    until("only the newest finished job kept", WAIT, || async {
        let names: Vec<String> = jobs_of(&server, "tick")
            .await
            .into_iter()
            .filter_map(|j| j.metadata.name)
            .collect();
        (names == [job_name("tick", m2)]).then_some(())
    })
    .await;
    until("events", WAIT, || async {
        let created = events(&server.client, "tick", "SuccessfulCreate").await;
        let saw = events(&server.client, "tick", "SawCompletedJob").await;
        let deleted = events(&server.client, "tick", "SuccessfulDelete").await;
        (created.len() == 2
            && saw.len() == 2
            && deleted == [format!("Deleted job {}", job_name("tick", m1))])
        .then_some(())
    })
    .await;
}

#[tokio::test]
async fn forbid_waits_and_replace_replaces() {
    let (server, clock) = start().await;
    let cj = create(&server, "solo", json!({"concurrencyPolicy": "Forbid"})).await;
    let m1 = next_minute(created(&cj));
    clock.set(plus(m1, 1));
    touch(&server, "solo").await;
    job_appears(&server, &job_name("solo", m1)).await;

    let m2 = plus(m1, 60);
    clock.set(plus(m2, 1));
    touch(&server, "solo").await;
    until("JobAlreadyActive", WAIT, || async {
        let ev = events(&server.client, "solo", "JobAlreadyActive").await;
        (!ev.is_empty()).then_some(())
    })
    .await;
    assert_eq!(
        jobs_of(&server, "solo").await.len(),
        1,
        "no second job while one runs"
    );

    let api: Api<CronJob> = server.api();
    api.patch(
        "solo",
        &PatchParams::default(),
        &Patch::Merge(&json!({"spec": {"concurrencyPolicy": "Replace"}})),
    )
    .await
    .expect("switch to Replace");
    job_appears(&server, &job_name("solo", m2)).await;
    until("the running job replaced", WAIT, || async {
        let names: Vec<String> = jobs_of(&server, "solo")
            .await
            .into_iter()
            .filter_map(|j| j.metadata.name)
            .collect();
        (names == [job_name("solo", m2)]).then_some(())
    })
    .await;
    cron_until(&server, "solo", "only the new job active", |c| {
        active_names(c) == [job_name("solo", m2)]
    })
    .await;
}

#[tokio::test]
async fn schedules_follow_the_time_zone() {
    let (server, clock) = start().await;
    let cj = create(
        &server,
        "tokyo",
        json!({"schedule": "30 9 * * *", "timeZone": "Asia/Tokyo"}),
    )
    .await;
    // The next 09:30 in Tokyo after the CronJob was created.
    let tokyo = TimeZone::get("Asia/Tokyo").expect("zone");
    let schedule: wasmkube_controllers::cronjob::schedule::Schedule =
        "30 9 * * *".parse().expect("schedule");
    let at = schedule
        .next_after(created(&cj), &tokyo)
        .expect("next 09:30");
    assert_eq!(at.to_zoned(tokyo).strftime("%H:%M").to_string(), "09:30");
    clock.set(plus(at, 5));
    touch(&server, "tokyo").await;
    let job = job_appears(&server, &job_name("tokyo", at)).await;
    let ann = job.metadata.annotations.unwrap_or_default();
    let stamp = ann
        .get(SCHEDULED_TIMESTAMP_ANNOTATION)
        .cloned()
        .unwrap_or_default();
    assert!(stamp.ends_with("T09:30:00+09:00"), "{stamp}");
}

#[tokio::test]
async fn missed_times_suspend_and_bad_zones() {
    let (server, clock) = start().await;
    let cj = create(&server, "late", json!({})).await;
    create(&server, "paused", json!({"suspend": true})).await;
    create(&server, "mars", json!({"timeZone": "Mars/Olympus_Mons"})).await;
    // Three hours of every-minute schedules missed: reported, and only the latest runs.
    let latest = next_minute(plus(created(&cj), 3 * 3600));
    clock.set(plus(latest, 1));
    for name in ["late", "paused", "mars"] {
        touch(&server, name).await;
    }
    job_appears(&server, &job_name("late", latest)).await;
    until("TooManyMissedTimes", WAIT, || async {
        let ev = events(&server.client, "late", "TooManyMissedTimes").await;
        (!ev.is_empty()).then_some(ev)
    })
    .await;
    assert_eq!(jobs_of(&server, "late").await.len(), 1);
    until("UnknownTimeZone", WAIT, || async {
        let ev = events(&server.client, "mars", "UnknownTimeZone").await;
        (!ev.is_empty()).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(jobs_of(&server, "paused").await.is_empty());
    assert!(jobs_of(&server, "mars").await.is_empty());
}
