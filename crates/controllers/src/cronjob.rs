//! The CronJob controller (batch/v1), after Kubernetes' cronjob controller v2: it creates a
//! Job for each time `spec.schedule` comes round, named `<cronjob>-<scheduled minute since the
//! epoch>` so a repeated sync can never start the same run twice, and keeps
//! `status.active`, `lastScheduleTime` and `lastSuccessfulTime` and the finished-job
//! history limits.
//!
//! Informers on CronJobs and Jobs feed a [`WorkQueue`] keyed by CronJob. A sync reconciles the
//! active list with the Jobs it controls, works out the most recent schedule time that has
//! come since the last one it acted on (bounded by `startingDeadlineSeconds`), applies the
//! concurrency policy, creates the Job, trims the history and asks to be synced again at the
//! next schedule time. The controller's idea of "now" comes from a [`Clock`], so tests can
//! move time on without waiting for it.
//!
//! The cron parser lives in [`schedule`].

pub mod schedule;

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::batch::v1::{CronJob, CronJobStatus, Job};
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::Resource;
use kube::api::{Api, DeleteParams, PostParams, Preconditions, PropagationPolicy};
use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher;
use tokio_util::sync::CancellationToken;

use crate::events::Recorder;
use crate::informer::{self, Change, key_of, split_key};
use crate::owner::{self, controller_of};
use crate::queue::WorkQueue;
use schedule::Schedule;

/// The event source component, as in Kubernetes.
pub const COMPONENT: &str = "cronjob-controller";
/// The annotation a Job gets with the schedule time it was created for.
pub const SCHEDULED_TIMESTAMP_ANNOTATION: &str = "batch.kubernetes.io/cronjob-scheduled-timestamp";
/// CronJobs synced at once (Kubernetes' `--concurrent-cron-job-syncs` default).
const WORKERS: usize = 5;
/// Synced this long after a schedule time so that the clock has surely passed it
/// (Kubernetes adds the same).
const PAST_SCHEDULE: Duration = Duration::from_millis(100);

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("checking the active job {job} of cron job {cronjob}")]
    ActiveJob {
        cronjob: String,
        job: String,
        #[source]
        source: kube::Error,
    },
    #[error("creating a job for cron job {0}")]
    Create(String, #[source] kube::Error),
    #[error("deleting job {job} of cron job {cronjob}")]
    Delete {
        cronjob: String,
        job: String,
        #[source]
        source: kube::Error,
    },
    #[error("updating the status of cron job {0}")]
    Status(String, #[source] kube::Error),
}

/// Where the controller reads the time.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> Timestamp;
}

/// The real time.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

struct Ctx {
    client: kube::Client,
    cronjobs: Store<CronJob>,
    jobs: Store<Job>,
    queue: Arc<WorkQueue>,
    recorder: Recorder,
    clock: Arc<dyn Clock>,
}

/// Runs the controller on the real clock until `shutdown` is cancelled.
pub async fn run(client: kube::Client, shutdown: CancellationToken) {
    run_with_clock(client, shutdown, Arc::new(SystemClock)).await;
}

/// Runs the controller with `clock` as its idea of now.
pub async fn run_with_clock(
    client: kube::Client,
    shutdown: CancellationToken,
    clock: Arc<dyn Clock>,
) {
    let (cj_store, cj_writer) = reflector::store::<CronJob>();
    let (job_store, job_writer) = reflector::store::<Job>();
    let queue = WorkQueue::new(shutdown.clone());

    let cj_informer = tokio::spawn(informer::run(
        Api::<CronJob>::all(client.clone()),
        watcher::Config::default(),
        cj_writer,
        shutdown.clone(),
        {
            let queue = queue.clone();
            move |change| match change {
                Change::Added(cj) | Change::Updated { new: cj, .. } => queue.add(key_of(&*cj)),
                Change::Deleted(_) => {}
            }
        },
    ));
    let job_informer = tokio::spawn(informer::run(
        Api::<Job>::all(client.clone()),
        watcher::Config::default(),
        job_writer,
        shutdown.clone(),
        {
            let queue = queue.clone();
            move |change| {
                let (Change::Added(job) | Change::Updated { new: job, .. } | Change::Deleted(job)) =
                    change;
                if let Some(r) = controller_of(&job.metadata)
                    && r.kind == "CronJob"
                {
                    let ns = job.metadata.namespace.as_deref().unwrap_or("");
                    queue.add(format!("{ns}/{}", r.name));
                }
            }
        },
    ));

    // A sync on an empty job cache would take every active Job for missing.
    let ready = async {
        let _ = cj_store.wait_until_ready().await;
        let _ = job_store.wait_until_ready().await;
    };
    let started = tokio::select! {
        _ = ready => true,
        _ = shutdown.cancelled() => false,
    };
    if started {
        let ctx = Arc::new(Ctx {
            recorder: Recorder::new(client.clone(), COMPONENT, shutdown.clone()),
            client,
            cronjobs: cj_store,
            jobs: job_store,
            queue,
            clock,
        });
        let workers: Vec<_> = (0..WORKERS)
            .map(|_| tokio::spawn(worker(ctx.clone())))
            .collect();
        for w in workers {
            let _ = w.await;
        }
    }
    let _ = cj_informer.await;
    let _ = job_informer.await;
}

async fn worker(ctx: Arc<Ctx>) {
    while let Some(key) = ctx.queue.get().await {
        match sync(&ctx, &key).await {
            Ok(requeue) => {
                ctx.queue.forget(&key);
                if let Some(after) = requeue {
                    ctx.queue.add_after(key.clone(), after);
                }
            }
            Err(e) => {
                crate::log_error(&e, "cronjob", &key);
                ctx.queue.add_rate_limited(&key);
            }
        }
        ctx.queue.done(&key);
    }
}

/// How a Job ended, from its conditions.
fn finished(job: &Job) -> Option<&'static str> {
    let conditions = job.status.as_ref()?.conditions.as_ref()?;
    conditions
        .iter()
        .filter(|c| c.status == "True")
        .find_map(|c| match c.type_.as_str() {
            "Complete" => Some("Complete"),
            "Failed" => Some("Failed"),
            _ => None,
        })
}

fn job_ref(job: &Job) -> ObjectReference {
    job.object_ref(&())
}

/// The name of the Job for the schedule time `t`: Kubernetes' `getJobName`.
pub fn job_name(cronjob: &str, t: Timestamp) -> String {
    format!("{cronjob}-{}", t.as_second().div_euclid(60))
}

/// The Job a CronJob starts for `scheduled`.
fn job_for(cj: &CronJob, scheduled: Timestamp, tz: &TimeZone) -> Job {
    let template = cj.spec.job_template.clone();
    let meta = template.metadata.unwrap_or_default();
    let mut annotations = meta.annotations.unwrap_or_default();
    annotations.insert(
        SCHEDULED_TIMESTAMP_ANNOTATION.to_string(),
        scheduled
            .to_zoned(tz.clone())
            .strftime("%Y-%m-%dT%H:%M:%S%:z")
            .to_string()
            .replace("+00:00", "Z"),
    );
    Job {
        metadata: ObjectMeta {
            name: Some(job_name(
                cj.metadata.name.as_deref().unwrap_or(""),
                scheduled,
            )),
            namespace: cj.metadata.namespace.clone(),
            labels: meta.labels,
            annotations: Some(annotations),
            owner_references: Some(vec![owner::controller_ref(cj)]),
            ..ObjectMeta::default()
        },
        spec: Some(template.spec.unwrap_or_default()),
        status: None,
    }
}

fn start_time(job: &Job) -> Option<Timestamp> {
    job.status
        .as_ref()
        .and_then(|s| s.start_time.as_ref())
        .or(job.metadata.creation_timestamp.as_ref())
        .map(|t| t.0)
}

fn to_std(d: SignedDuration) -> Duration {
    Duration::try_from(d).unwrap_or(Duration::ZERO)
}

fn is_not_found(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 404)
}

/// Syncs one CronJob; `Ok(Some(d))` asks for another sync after `d` (the next schedule time).
async fn sync(ctx: &Ctx, key: &str) -> Result<Option<Duration>, Error> {
    let (ns, name) = split_key(key);
    let Some(cj) = informer::get(&ctx.cronjobs, ns, name) else {
        return Ok(None);
    };
    let uid = cj.metadata.uid.clone().unwrap_or_default();
    let jobs_api: Api<Job> = Api::namespaced(ctx.client.clone(), ns);
    let owned: Vec<Arc<Job>> = ctx.jobs.state_filter(|j| {
        j.metadata.namespace.as_deref() == Some(ns) && owner::controlled_by(&j.metadata, &uid)
    });
    let old_status = cj.status.clone().unwrap_or_default();
    let mut status = old_status.clone();
    reconcile_active(ctx, &cj, &jobs_api, &owned, &mut status).await?;

    let requeue = plan_and_create(ctx, &cj, &jobs_api, &owned, &mut status).await;
    // The status is written even when creating failed: the active list may have changed.
    if status != old_status {
        write_status(ctx, &cj, status).await?;
    }
    let requeue = requeue?;
    if cj.metadata.deletion_timestamp.is_none() {
        cleanup_history(ctx, &cj, &jobs_api, &owned).await?;
    }
    Ok(requeue)
}

/// Brings `status.active` in line with the Jobs this CronJob controls, noting completions.
async fn reconcile_active(
    ctx: &Ctx,
    cj: &CronJob,
    jobs_api: &Api<Job>,
    owned: &[Arc<Job>],
    status: &mut CronJobStatus,
) -> Result<(), Error> {
    let cj_name = cj.metadata.name.clone().unwrap_or_default();
    let mut active = status.active.take().unwrap_or_default();
    for job in owned {
        let job_uid = job.metadata.uid.as_deref();
        let listed = active.iter().position(|r| r.uid.as_deref() == job_uid);
        match (listed, finished(job)) {
            (Some(i), Some(how)) => {
                active.remove(i);
                ctx.recorder.normal(
                    cj.object_ref(&()),
                    "SawCompletedJob",
                    format!(
                        "Saw completed job: {}, condition: {how}",
                        job.metadata.name.as_deref().unwrap_or("")
                    ),
                );
            }
            // Kubernetes only warns about an unfinished Job it does not list; listing it
            // keeps `Forbid` and `Replace` right after a crash between creating a Job and
            // recording it.
            (None, None) if job.metadata.deletion_timestamp.is_none() => {
                active.push(job_ref(job));
            }
            _ => {}
        }
        if finished(job) == Some("Complete")
            && let Some(done) = job.status.as_ref().and_then(|s| s.completion_time.clone())
            && status
                .last_successful_time
                .as_ref()
                .is_none_or(|t| t.0 < done.0)
        {
            status.last_successful_time = Some(done);
        }
    }
    // Listed Jobs the cache does not know: a Job created a moment ago may simply not have
    // arrived yet, so only the API can say that one is gone.
    let mut kept = Vec::with_capacity(active.len());
    for r in active {
        if owned.iter().any(|j| j.metadata.uid == r.uid) {
            kept.push(r);
            continue;
        }
        let job_name = r.name.clone().unwrap_or_default();
        let live = match jobs_api.get_opt(&job_name).await {
            Ok(live) => live,
            Err(source) => {
                return Err(Error::ActiveJob {
                    cronjob: cj_name,
                    job: job_name,
                    source,
                });
            }
        };
        match live {
            Some(j) if j.metadata.uid == r.uid && finished(&j).is_none() => kept.push(r),
            _ => ctx.recorder.normal(
                cj.object_ref(&()),
                "MissingJob",
                format!("Active job went missing: {job_name}"),
            ),
        }
    }
    status.active = (!kept.is_empty()).then_some(kept);
    Ok(())
}

/// Decides whether a Job is due and creates it; returns when to look again.
async fn plan_and_create(
    ctx: &Ctx,
    cj: &CronJob,
    jobs_api: &Api<Job>,
    owned: &[Arc<Job>],
    status: &mut CronJobStatus,
) -> Result<Option<Duration>, Error> {
    let cj_name = cj.metadata.name.clone().unwrap_or_default();
    let spec = &cj.spec;
    if cj.metadata.deletion_timestamp.is_some() {
        return Ok(None);
    }
    let parsed = match Schedule::parse(&spec.schedule) {
        Ok(s) => s,
        Err(e) => {
            ctx.recorder.warning(
                cj.object_ref(&()),
                "UnparseableSchedule",
                format!("unparseable schedule: {:?} : {e}", spec.schedule),
            );
            return Ok(None);
        }
    };
    let zone_name = spec.time_zone.as_deref().or(parsed.time_zone());
    let tz = match zone_name {
        None => TimeZone::system(),
        Some(zone) => match TimeZone::get(zone) {
            Ok(tz) => tz,
            Err(e) => {
                ctx.recorder.warning(
                    cj.object_ref(&()),
                    "UnknownTimeZone",
                    format!("invalid timeZone: {zone:?}: {e}"),
                );
                return Ok(None);
            }
        },
    };
    if spec.suspend == Some(true) {
        return Ok(None);
    }
    let now = ctx.clock.now();
    let requeue = parsed
        .next_after(now, &tz)
        .map(|next| to_std(next.duration_since(now)) + PAST_SCHEDULE);

    let created = cj.metadata.creation_timestamp.as_ref().map_or(now, |t| t.0);
    let mut earliest = status.last_schedule_time.as_ref().map_or(created, |t| t.0);
    let deadline = spec
        .starting_deadline_seconds
        .map(|s| SignedDuration::from_secs(s.max(0)));
    if let Some(d) = deadline
        && let Ok(bound) = now.checked_sub(d)
        && bound > earliest
    {
        earliest = bound;
    }
    let missed = parsed.missed(earliest, now, &tz);
    if missed.too_many() {
        ctx.recorder.warning(
            cj.object_ref(&()),
            "TooManyMissedTimes",
            format!(
                "too many missed start times: {}. Set or decrease .spec.startingDeadlineSeconds or check clock skew",
                missed.count
            ),
        );
    }
    let Some(scheduled) = missed.most_recent else {
        return Ok(requeue);
    };
    if let Some(d) = deadline
        && scheduled.checked_add(d).is_ok_and(|end| end < now)
    {
        ctx.recorder.warning(
            cj.object_ref(&()),
            "MissSchedule",
            format!("Missed scheduled time to start a job: {scheduled}"),
        );
        return Ok(requeue);
    }
    let name = job_name(&cj_name, scheduled);
    let active = status.active.clone().unwrap_or_default();
    let already = active.iter().any(|r| r.name.as_deref() == Some(&name))
        || owned
            .iter()
            .any(|j| j.metadata.name.as_deref() == Some(&name));
    if already {
        return Ok(requeue);
    }
    match spec.concurrency_policy.as_deref() {
        Some("Forbid") if !active.is_empty() => {
            // The run is not skipped: it starts late once the active one is done, if that is
            // still within `startingDeadlineSeconds` (Kubernetes does the same).
            ctx.recorder.normal(
                cj.object_ref(&()),
                "JobAlreadyActive",
                "Not starting job because prior execution is running and concurrency policy is Forbid"
                    .to_string(),
            );
            return Ok(requeue);
        }
        Some("Replace") => {
            for r in active {
                let job_name = r.name.clone().unwrap_or_default();
                let dp = DeleteParams {
                    propagation_policy: Some(PropagationPolicy::Background),
                    preconditions: r.uid.clone().map(|uid| Preconditions {
                        uid: Some(uid),
                        resource_version: None,
                    }),
                    ..DeleteParams::default()
                };
                match jobs_api.delete(&job_name, &dp).await {
                    Ok(_) => ctx.recorder.normal(
                        cj.object_ref(&()),
                        "SuccessfulDelete",
                        format!("Deleted job {job_name}"),
                    ),
                    Err(e) if is_not_found(&e) => {}
                    Err(source) => {
                        ctx.recorder.warning(
                            cj.object_ref(&()),
                            "FailedDelete",
                            format!("Deleted job: {source}"),
                        );
                        return Err(Error::Delete {
                            cronjob: cj_name,
                            job: job_name,
                            source,
                        });
                    }
                }
                if let Some(list) = status.active.as_mut() {
                    list.retain(|a| a.uid != r.uid);
                }
            }
            if status.active.as_ref().is_some_and(Vec::is_empty) {
                status.active = None;
            }
        }
        _ => {}
    }
    let job = job_for(cj, scheduled, &tz);
    match jobs_api.create(&PostParams::default(), &job).await {
        Ok(created) => {
            ctx.recorder.normal(
                cj.object_ref(&()),
                "SuccessfulCreate",
                format!("Created job {name}"),
            );
            status
                .active
                .get_or_insert_with(Vec::new)
                .push(job_ref(&created));
        }
        // Made by an earlier sync whose status write was lost, or by someone else: either
        // way this schedule time is taken care of.
        Err(kube::Error::Api(s)) if s.code == 409 && s.reason == "AlreadyExists" => {}
        // The namespace is going away, and the CronJob with it.
        Err(kube::Error::Api(s)) if s.code == 403 && s.message.contains("being terminated") => {
            return Ok(None);
        }
        Err(e) => {
            ctx.recorder.warning(
                cj.object_ref(&()),
                "FailedCreate",
                format!("Error creating job: {e}"),
            );
            return Err(Error::Create(key_of(cj), e));
        }
    }
    status.last_schedule_time = Some(Time(scheduled));
    Ok(requeue)
}

async fn write_status(ctx: &Ctx, cj: &CronJob, status: CronJobStatus) -> Result<(), Error> {
    let key = key_of(cj);
    let (ns, name) = split_key(&key);
    let api: Api<CronJob> = Api::namespaced(ctx.client.clone(), ns);
    let mut next = cj.clone();
    next.status = Some(status);
    next.metadata.managed_fields = None;
    // Conditional on the resourceVersion the decisions were made from: a sync on a stale
    // cache must fail and retry rather than overwrite a newer active list.
    match api
        .replace_status(name, &PostParams::default(), &next)
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if is_not_found(&e) => Ok(()),
        Err(e) => Err(Error::Status(key, e)),
    }
}

/// Deletes the oldest finished Jobs beyond the history limits.
async fn cleanup_history(
    ctx: &Ctx,
    cj: &CronJob,
    jobs_api: &Api<Job>,
    owned: &[Arc<Job>],
) -> Result<(), Error> {
    let spec = &cj.spec;
    let mut by_outcome: BTreeMap<&str, Vec<&Arc<Job>>> = BTreeMap::new();
    for job in owned {
        if job.metadata.deletion_timestamp.is_some() {
            continue;
        }
        if let Some(how) = finished(job) {
            by_outcome.entry(how).or_default().push(job);
        }
    }
    for (how, limit) in [
        ("Complete", spec.successful_jobs_history_limit),
        ("Failed", spec.failed_jobs_history_limit),
    ] {
        let Some(limit) = limit else { continue };
        let limit = usize::try_from(limit).unwrap_or(0);
        let Some(mut jobs) = by_outcome.remove(how) else {
            continue;
        };
        if jobs.len() <= limit {
            continue;
        }
        jobs.sort_by(|a, b| match (start_time(a), start_time(b)) {
            (Some(x), Some(y)) => x.cmp(&y),
            (None, Some(_)) => Ordering::Less,
            (Some(_), None) => Ordering::Greater,
            (None, None) => a.metadata.name.cmp(&b.metadata.name),
        });
        let excess = jobs.len() - limit;
        for job in jobs.into_iter().take(excess) {
            let job_name = job.metadata.name.clone().unwrap_or_default();
            let dp = DeleteParams {
                propagation_policy: Some(PropagationPolicy::Background),
                preconditions: job.metadata.uid.clone().map(|uid| Preconditions {
                    uid: Some(uid),
                    resource_version: None,
                }),
                ..DeleteParams::default()
            };
            match jobs_api.delete(&job_name, &dp).await {
                Ok(_) => ctx.recorder.normal(
                    cj.object_ref(&()),
                    "SuccessfulDelete",
                    format!("Deleted job {job_name}"),
                ),
                Err(e) if is_not_found(&e) => {}
                Err(source) => {
                    return Err(Error::Delete {
                        cronjob: key_of(cj),
                        job: job_name,
                        source,
                    });
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::batch::v1::{
        CronJobSpec, JobCondition, JobSpec, JobStatus, JobTemplateSpec,
    };

    fn cronjob() -> CronJob {
        CronJob {
            metadata: ObjectMeta {
                name: Some("nightly".into()),
                namespace: Some("ns".into()),
                uid: Some("cj-uid".into()),
                ..ObjectMeta::default()
            },
            spec: CronJobSpec {
                schedule: "0 3 * * *".into(),
                job_template: JobTemplateSpec {
                    metadata: Some(ObjectMeta {
                        labels: Some([("app".to_string(), "x".to_string())].into()),
                        ..ObjectMeta::default()
                    }),
                    spec: Some(JobSpec::default()),
                },
                ..CronJobSpec::default()
            },
            status: None,
        }
    }

    #[test]
    fn job_names_count_minutes() {
        let t: Timestamp = "2024-01-01T03:00:00Z".parse().expect("timestamp");
        assert_eq!(job_name("nightly", t), "nightly-28401300");
    }

    #[test]
    fn jobs_carry_the_schedule_time_and_owner() {
        let t: Timestamp = "2024-01-01T03:00:00Z".parse().expect("timestamp");
        let job = job_for(&cronjob(), t, &TimeZone::UTC);
        assert_eq!(job.metadata.name.as_deref(), Some("nightly-28401300"));
        let ann = job.metadata.annotations.unwrap_or_default();
        assert_eq!(
            ann.get(SCHEDULED_TIMESTAMP_ANNOTATION).map(String::as_str),
            Some("2024-01-01T03:00:00Z")
        );
        let owners = job.metadata.owner_references.unwrap_or_default();
        assert_eq!(owners[0].kind, "CronJob");
        assert_eq!(owners[0].uid, "cj-uid");
        assert_eq!(owners[0].controller, Some(true));
        assert_eq!(
            job.metadata.labels.and_then(|l| l.get("app").cloned()),
            Some("x".to_string())
        );
        // In the CronJob's zone, the annotation keeps the local reading and offset.
        let tokyo = TimeZone::get("Asia/Tokyo").expect("zone");
        let job = job_for(&cronjob(), t, &tokyo);
        let ann = job.metadata.annotations.unwrap_or_default();
        assert_eq!(
            ann.get(SCHEDULED_TIMESTAMP_ANNOTATION).map(String::as_str),
            Some("2024-01-01T12:00:00+09:00")
        );
    }

    #[test]
    fn finished_reads_true_conditions_only() {
        let mut job = Job::default();
        assert_eq!(finished(&job), None);
        job.status = Some(JobStatus {
            conditions: Some(vec![
                JobCondition {
                    type_: "Failed".into(),
                    status: "False".into(),
                    ..JobCondition::default()
                },
                JobCondition {
                    type_: "Complete".into(),
                    status: "True".into(),
                    ..JobCondition::default()
                },
            ]),
            ..JobStatus::default()
        });
        assert_eq!(finished(&job), Some("Complete"));
    }
}
