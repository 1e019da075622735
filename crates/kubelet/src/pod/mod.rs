//! The pod worker: one task per pod bound to the node, running it through explicit stages.
//!
//! ```text
//!  Preparing ──► Initializing(i) ──► Running ──► Finished(Succeeded|Failed)
//!  (runtime, IP,   (init containers   (containers,     (terminal: waits for
//!   images,         in order)          restarts,        the object's deletion)
//!   volumes)                           probes)
//!      └──────────────┴──────────────────┴───────────────► Terminating ──► Gone
//!                           deletionTimestamp set       (containers stopped within the
//!                                                        grace period, object deleted)
//! ```
//!
//! The worker owns everything about its pod; nothing else mutates it. It wakes on a new
//! version of the Pod object, on an event from its containers (an exit, a probe result) or on
//! its next timer (a back-off ending, a grace period running out), advances the stages as far
//! as they go, and publishes the status when it changed.
//!
//! # Layout
//! - `container`: one container's record and how its spec resolves into a runtime config.
//! - `status`: the `status` object computed from the worker's view.

pub mod container;
pub mod status;

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use k8s_openapi::api::core::v1::{Pod, Secret};
use k8s_openapi::api::node::v1::RuntimeClass;
use kube::api::{Api, DeleteParams, Preconditions};
use serde_json::Value;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::events::Recorder;
use crate::manager::{LogEntry, NodeContext, PodLogState};
use crate::probes::{self, ProbeEvent, ProbeKind, ProbeTarget, ProbeUpdate};
use crate::runtime::{
    ExitStatus, PodSandbox, PullPolicy, PullProgress, PulledImage, RegistryAuth, Runtime,
    RuntimeError,
};
use crate::volumes::{self, PodVolumes};
use container::{Instance, Record, State, Terminated};
use status::{Phase, Snapshot, Transitions};

/// Where a pod is in its life on this node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Choosing the runtime, taking the pod IP, pulling images, setting up volumes.
    Preparing,
    /// Running the init container at this index.
    Initializing(usize),
    /// The app containers run, and restart as the restart policy says.
    Running,
    /// Every container has ended for good.
    Finished(Phase),
    /// The pod is being deleted: containers stop, then the object is removed.
    Terminating,
    /// The object is gone and everything released: the worker ends.
    Gone,
}

/// What the worker hears from its containers.
pub(crate) enum Event {
    Exited {
        container: String,
        instance: u32,
        status: ExitStatus,
    },
    Probe(ProbeUpdate),
}

/// The worker's inbox for new versions of its Pod; `None` means the object was deleted.
pub(crate) type PodUpdates = watch::Receiver<Option<Arc<Pod>>>;

/// The delay after a failure outside any container (no runtime, no CIDR, volume errors).
const POD_RETRY: Duration = Duration::from_secs(5);
/// How long `ErrImagePull` shows before the status says `ImagePullBackOff`.
const PULL_ERROR_SHOWN: Duration = Duration::from_secs(2);

pub(crate) struct Worker {
    ctx: Arc<NodeContext>,
    pod: Arc<Pod>,
    uid: String,
    namespace: String,
    name: String,
    dir: PathBuf,
    stage: Stage,
    /// The runtimes the pod's containers use, each once, in the node's order; each record
    /// holds its own (a mixed pod runs Wasm and Linux containers side by side).
    runtimes: Vec<Arc<dyn Runtime>>,
    sandbox: Option<PodSandbox>,
    /// Stops the forwarding of the pod IP's ports into its network namespace.
    forwarding: Option<CancellationToken>,
    ip: Option<Ipv4Addr>,
    volumes: Option<PodVolumes>,
    init: Vec<Record>,
    containers: Vec<Record>,
    start_time: String,
    transitions: Transitions,
    reason: Option<String>,
    message: Option<String>,
    /// A pod-level retry (runtime missing, no CIDR yet, volume errors).
    retry_at: Option<Instant>,
    /// When `ErrImagePull` turns into `ImagePullBackOff`.
    pull_error_until: Option<Instant>,
    terminate_started: bool,
    /// Until when the containers' `preStop` sleep keeps them running after deletion.
    pre_stop_until: Option<Instant>,
    delete_retry_at: Option<Instant>,
    /// The last phase reported, kept while terminating.
    phase: Phase,
    /// Whether this worker reports status (not for pods already terminal when adopted).
    publish: bool,
    last_status: Option<Value>,
    tx: mpsc::Sender<Event>,
    rx: mpsc::Receiver<Event>,
    logs: Arc<PodLogState>,
}

fn now_rfc3339() -> String {
    status::rfc3339(SystemTime::now())
}

impl Worker {
    pub(crate) fn new(ctx: Arc<NodeContext>, pod: Arc<Pod>, logs: Arc<PodLogState>) -> Worker {
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let namespace = pod.metadata.namespace.clone().unwrap_or_default();
        let name = pod.metadata.name.clone().unwrap_or_default();
        let dir = ctx.pod_dir(&namespace, &name, &uid);
        let spec = pod.spec.clone().unwrap_or_default();
        let mut init: Vec<Record> = spec
            .init_containers
            .clone()
            .unwrap_or_default()
            .into_iter()
            .map(|c| Record::new(c, true))
            .collect();
        let mut containers: Vec<Record> = spec
            .containers
            .clone()
            .into_iter()
            .map(|c| Record::new(c, false))
            .collect();
        let status = pod.status.clone().unwrap_or_default();
        let phase = match status.phase.as_deref() {
            Some("Succeeded") => Phase::Succeeded,
            Some("Failed") => Phase::Failed,
            Some("Running") => Phase::Running,
            _ => Phase::Pending,
        };
        let start_time = status
            .start_time
            .as_ref()
            .map(|t| status::rfc3339(SystemTime::from(t.0)))
            .unwrap_or_else(now_rfc3339);
        // A pod this node ran before it restarted: its containers did not survive the restart
        // (Wasm guests live in the node's process), so each one that had started comes back as
        // a restart, keeping the counts and the previous instance's logs.
        adopt(&mut init, status.init_container_statuses.as_deref());
        adopt(&mut containers, status.container_statuses.as_deref());
        let stage = if phase.is_terminal() {
            Stage::Finished(phase)
        } else {
            // Adopted or new, images and volumes are resolved again before anything starts;
            // init containers that completed before are not run again.
            Stage::Preparing
        };
        let (tx, rx) = mpsc::channel(64);
        let transitions = Transitions::from_pod(&pod);
        Worker {
            ip: None,
            ctx,
            uid,
            namespace,
            name,
            dir,
            stage,
            runtimes: Vec::new(),
            sandbox: None,
            forwarding: None,
            volumes: None,
            init,
            containers,
            start_time,
            transitions,
            reason: status.reason.clone(),
            message: status.message.clone(),
            retry_at: None,
            pull_error_until: None,
            terminate_started: false,
            pre_stop_until: None,
            delete_retry_at: None,
            phase,
            publish: !phase.is_terminal(),
            last_status: None,
            tx,
            rx,
            logs,
            pod,
        }
    }

    fn restart_policy(&self) -> &str {
        self.pod
            .spec
            .as_ref()
            .and_then(|s| s.restart_policy.as_deref())
            .unwrap_or("Always")
    }

    /// Runs the pod until its object is gone or the node shuts down.
    pub(crate) async fn run(mut self, mut updates: PodUpdates, shutdown: CancellationToken) {
        self.sync_logs();
        loop {
            if updates.borrow().is_none() && self.stage != Stage::Gone {
                self.object_deleted().await;
            }
            if self.stage == Stage::Gone {
                break;
            }
            self.step().await;
            self.publish_status();
            self.sync_logs();
            if self.stage == Stage::Gone {
                break;
            }
            let wake = self.next_wake();
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => {
                    self.node_shutdown().await;
                    return;
                }
                changed = updates.changed() => {
                    match changed {
                        Ok(()) => {
                            if let Some(pod) = updates.borrow_and_update().clone() {
                                self.pod = pod;
                            }
                        }
                        // The manager dropped us: treat as deleted.
                        Err(_) => { self.object_deleted().await; }
                    }
                }
                Some(ev) = self.rx.recv() => self.on_event(ev).await,
                _ = sleep_until(wake) => {}
            }
        }
        self.ctx.forget_logs(&self.namespace, &self.name, &self.uid);
    }

    fn next_wake(&self) -> Option<Instant> {
        let mut times: Vec<Instant> = self
            .init
            .iter()
            .chain(self.containers.iter())
            .filter_map(|r| r.retry_at)
            .collect();
        times.extend(self.retry_at);
        times.extend(self.pull_error_until);
        times.extend(self.delete_retry_at);
        if !self.terminate_started {
            times.extend(self.pre_stop_until);
        }
        if let Some(deadline) = self.active_deadline() {
            times.push(deadline);
        }
        times.into_iter().min()
    }

    fn active_deadline(&self) -> Option<Instant> {
        if !matches!(
            self.stage,
            Stage::Preparing | Stage::Initializing(_) | Stage::Running
        ) {
            return None;
        }
        let secs = self.pod.spec.as_ref()?.active_deadline_seconds?;
        let started: jiff::Timestamp = self.start_time.parse().ok()?;
        let elapsed = jiff::Timestamp::now().duration_since(started);
        let left = secs as f64 - elapsed.as_secs_f64();
        Some(Instant::now() + Duration::from_secs_f64(left.max(0.0)))
    }

    /// Advances the stages as far as they go without waiting.
    async fn step(&mut self) {
        if self.pod.metadata.deletion_timestamp.is_some()
            && !matches!(self.stage, Stage::Terminating | Stage::Gone)
        {
            self.stage = Stage::Terminating;
        }
        if let Some(d) = self.active_deadline()
            && d <= Instant::now()
        {
            self.deadline_exceeded().await;
        }
        loop {
            let before = self.stage;
            match self.stage {
                Stage::Preparing => self.prepare().await,
                Stage::Initializing(i) => self.initialize(i).await,
                Stage::Running => self.run_containers().await,
                Stage::Finished(_) => self.release().await,
                Stage::Terminating => self.terminate().await,
                Stage::Gone => {}
            }
            if self.stage == before {
                break;
            }
        }
    }

    // ---- Preparing --------------------------------------------------------------------

    async fn prepare(&mut self) {
        if self.retry_at.is_some_and(|t| t > Instant::now()) {
            return;
        }
        self.retry_at = None;
        if self.runtimes.is_empty() {
            match self.select_runtimes().await {
                Ok(rts) => self.runtimes = rts,
                Err(message) => {
                    self.ctx
                        .events
                        .warning(&self.pod, "FailedCreatePodSandBox", &message);
                    self.retry_at = Some(Instant::now() + POD_RETRY);
                    return;
                }
            }
        }
        if self.sandbox.is_none() && !self.create_sandbox().await {
            self.retry_at = Some(Instant::now() + POD_RETRY);
            return;
        }
        if !self.pull_images().await {
            return;
        }
        if self.volumes.is_none() {
            let mut sources = crate::env::Sources::new(self.ctx.client.clone(), &self.namespace);
            let pod = self.pod_with_status();
            match volumes::prepare(&mut sources, &pod, &self.dir).await {
                Ok(v) => self.volumes = Some(v),
                Err(e) => {
                    let message = error_chain(&e);
                    self.ctx.events.warning(&self.pod, "FailedMount", &message);
                    for r in self.init.iter_mut().chain(self.containers.iter_mut()) {
                        if !r.is_running() {
                            r.set_waiting("CreateContainerConfigError", Some(message.clone()));
                        }
                    }
                    self.retry_at = Some(Instant::now() + POD_RETRY);
                    return;
                }
            }
        }
        let first_incomplete = self
            .init
            .iter()
            .position(|r| !matches!(r.terminated(), Some(t) if t.exit_code == 0));
        self.stage = match first_incomplete {
            Some(i) => Stage::Initializing(i),
            None => Stage::Running,
        };
    }

    /// Gives each container its runtime: the RuntimeClass's for all of them when the pod
    /// names one, else per container the first runtime that recognizes its image, or the
    /// default one (the last: containerd when present), whose pull then says why it can't.
    /// Returns the distinct runtimes of the pod.
    async fn select_runtimes(&mut self) -> Result<Vec<Arc<dyn Runtime>>, String> {
        let spec = self.pod.spec.clone().unwrap_or_default();
        let forced = match spec.runtime_class_name.as_deref().filter(|c| !c.is_empty()) {
            Some(class) => {
                let api: Api<RuntimeClass> = Api::all(self.ctx.client.clone());
                let rc = api
                    .get_opt(class)
                    .await
                    .map_err(|e| format!("reading RuntimeClass {class:?}: {}", error_chain(&e)))?
                    .ok_or_else(|| format!("RuntimeClass {class:?} not found"))?;
                Some(
                    self.ctx
                        .runtimes
                        .iter()
                        .find(|r| r.handler() == rc.handler)
                        .cloned()
                        .ok_or_else(|| {
                            format!(
                                "Failed to create pod sandbox: RuntimeHandler {:?} not supported",
                                rc.handler
                            )
                        })?,
                )
            }
            None => None,
        };
        let default = self
            .ctx
            .runtimes
            .last()
            .cloned()
            .ok_or_else(|| "the node has no container runtime".to_string())?;
        let mut chosen: Vec<Arc<dyn Runtime>> = Vec::new();
        for i in 0..self.init.len() + self.containers.len() {
            let image = if i < self.init.len() {
                self.init[i].spec.image.clone()
            } else {
                self.containers[i - self.init.len()].spec.image.clone()
            }
            .unwrap_or_default();
            let rt = match &forced {
                Some(rt) => rt.clone(),
                None => {
                    let mut found = None;
                    for rt in &self.ctx.runtimes {
                        if rt.recognizes(&image).await {
                            found = Some(rt.clone());
                            break;
                        }
                    }
                    found.unwrap_or_else(|| default.clone())
                }
            };
            if !chosen.iter().any(|c| c.handler() == rt.handler()) {
                chosen.push(rt.clone());
            }
            let r = if i < self.init.len() {
                &mut self.init[i]
            } else {
                &mut self.containers[i - self.init.len()]
            };
            r.runtime = Some(rt);
        }
        // The node's order, so status and sandbox set-up do not depend on container order.
        chosen.sort_by_key(|c| {
            self.ctx
                .runtimes
                .iter()
                .position(|r| r.handler() == c.handler())
        });
        Ok(chosen)
    }

    async fn create_sandbox(&mut self) -> bool {
        if self.runtimes.is_empty() {
            return false;
        }
        if self.ip.is_none() {
            match self.ctx.take_ip(&self.uid).await {
                Ok(ip) => {
                    self.ip = Some(ip);
                    *self.logs.ip.lock().unwrap_or_else(|p| p.into_inner()) = Some(IpAddr::V4(ip));
                }
                Err(message) => {
                    self.ctx
                        .events
                        .warning(&self.pod, "FailedCreatePodSandBox", &message);
                    return false;
                }
            }
        }
        let Some(ip) = self.ip else { return false };
        let sandbox = PodSandbox {
            namespace: self.namespace.clone(),
            name: self.name.clone(),
            uid: self.uid.clone(),
            ip: IpAddr::V4(ip),
            hostname: self
                .pod
                .spec
                .as_ref()
                .and_then(|s| s.hostname.clone())
                .unwrap_or_else(|| self.name.clone()),
            network_namespace: None,
        };
        if let Err(e) = std::fs::create_dir_all(&self.dir) {
            self.ctx.events.warning(
                &self.pod,
                "FailedCreatePodSandBox",
                &format!("creating {}: {e}", self.dir.display()),
            );
            return false;
        }
        let mut sandbox = sandbox;
        if self.runtimes.iter().any(|r| r.needs_network_namespace()) {
            match self.create_network(&sandbox).await {
                Ok(path) => sandbox.network_namespace = Some(path),
                Err(message) => {
                    self.ctx.events.warning(
                        &self.pod,
                        "FailedCreatePodSandBox",
                        &format!("Failed to create pod sandbox: {message}"),
                    );
                    return false;
                }
            }
        }
        let runtimes = self.runtimes.clone();
        for (i, rt) in runtimes.iter().enumerate() {
            if let Err(e) = rt.create_sandbox(&sandbox).await {
                self.ctx.events.warning(
                    &self.pod,
                    "FailedCreatePodSandBox",
                    &format!("Failed to create pod sandbox: {}", error_chain(&e)),
                );
                // What the runtimes before it made is given back; the next attempt starts over.
                for done in &runtimes[..i] {
                    let _ = done.remove_sandbox(&sandbox).await;
                }
                self.remove_network(&sandbox);
                return false;
            }
        }
        self.sandbox = Some(sandbox);
        true
    }

    /// The pod's network namespace, with the pod IP's containerPorts forwarded into it.
    async fn create_network(&mut self, sandbox: &PodSandbox) -> Result<PathBuf, String> {
        let path = self.dir.join("netns");
        crate::netns::create(&path)
            .await
            .map_err(|e| error_chain(&e))?;
        let mut ports: Vec<u16> = self
            .init
            .iter()
            .chain(self.containers.iter())
            .flat_map(|r| r.spec.ports.clone().unwrap_or_default())
            .filter(|p| {
                p.protocol
                    .as_deref()
                    .is_none_or(|p| p.eq_ignore_ascii_case("TCP"))
            })
            .filter_map(|p| u16::try_from(p.container_port).ok())
            .collect();
        ports.sort_unstable();
        ports.dedup();
        let cancel = CancellationToken::new();
        if let Err(e) = crate::netns::forward(&path, sandbox.ip, &ports, cancel.clone()).await {
            crate::netns::remove(&path);
            return Err(error_chain(&e));
        }
        self.forwarding = Some(cancel);
        Ok(path)
    }

    fn remove_network(&mut self, sandbox: &PodSandbox) {
        if let Some(cancel) = self.forwarding.take() {
            cancel.cancel();
        }
        if let Some(path) = &sandbox.network_namespace {
            crate::netns::remove(path);
        }
    }

    /// Pulls what is missing; true once every image is present.
    async fn pull_images(&mut self) -> bool {
        let now = Instant::now();
        if self.pull_error_until.is_some_and(|t| t <= now) {
            self.pull_error_until = None;
            for r in self.init.iter_mut().chain(self.containers.iter_mut()) {
                if let State::Waiting { reason, .. } = &r.state
                    && reason == "ErrImagePull"
                {
                    let image = r.spec.image.clone().unwrap_or_default();
                    r.set_waiting(
                        "ImagePullBackOff",
                        Some(format!("Back-off pulling image {image:?}")),
                    );
                }
            }
        }
        let mut auth: Option<Vec<RegistryAuth>> = None;
        let mut all = true;
        let pod = self.pod.clone();
        for i in 0..self.init.len() + self.containers.len() {
            let r = if i < self.init.len() {
                &mut self.init[i]
            } else {
                &mut self.containers[i - self.init.len()]
            };
            if r.image.is_some() {
                continue;
            }
            let Some(rt) = r.runtime.clone() else {
                all = false;
                continue;
            };
            if r.retry_at.is_some_and(|t| t > now) {
                all = false;
                continue;
            }
            let image = r.spec.image.clone().unwrap_or_default();
            let policy = match r.spec.image_pull_policy.as_deref() {
                Some("Always") => PullPolicy::Always,
                Some("Never") => PullPolicy::Never,
                Some("IfNotPresent") => PullPolicy::IfNotPresent,
                _ if image.ends_with(":latest")
                    || !image.rsplit('/').next().unwrap_or("").contains(':') =>
                {
                    PullPolicy::Always
                }
                _ => PullPolicy::IfNotPresent,
            };
            if auth.is_none() {
                auth = Some(registry_auth(&self.ctx.client, &pod).await);
            }
            let started = std::time::Instant::now();
            let events = &self.ctx.events;
            let progress = PullProgress::default();
            let result = pull_reporting(
                rt.as_ref(),
                &image,
                policy,
                auth.as_deref().unwrap_or(&[]),
                &progress,
                events,
                &pod,
            )
            .await;
            match result {
                Ok(pulled) => {
                    let took = started.elapsed();
                    let (downloaded, _) = progress.get();
                    if downloaded > 0 {
                        events.normal(
                            &pod,
                            "Pulled",
                            &format!(
                                "Successfully pulled image {image:?} in {:.3}s. Image size: {downloaded} bytes.",
                                took.as_secs_f64()
                            ),
                        );
                    } else if took > Duration::from_millis(50) || policy == PullPolicy::Always {
                        events.normal(
                            &pod,
                            "Pulled",
                            &format!(
                                "Successfully pulled image {image:?} in {:.3}s",
                                took.as_secs_f64()
                            ),
                        );
                    } else {
                        events.normal(
                            &pod,
                            "Pulled",
                            &format!("Container image {image:?} already present on machine"),
                        );
                    }
                    r.image = Some(pulled);
                    r.pull_backoff.reset();
                    r.retry_at = None;
                    if matches!(&r.state, State::Waiting { reason, .. } if reason.contains("Image"))
                    {
                        r.set_waiting("ContainerCreating", None);
                    }
                }
                Err(e) => {
                    all = false;
                    let message = error_chain(&e);
                    let reason = e.reason();
                    events.warning(
                        &pod,
                        "Failed",
                        &format!("Failed to pull image {image:?}: {message}"),
                    );
                    let delay = r.pull_backoff.pull_failure(&self.ctx.config.backoff);
                    r.retry_at = Some(Instant::now() + delay);
                    r.set_waiting(reason, Some(message));
                    if reason == "ErrImagePull" {
                        self.pull_error_until = Some(Instant::now() + PULL_ERROR_SHOWN);
                    }
                }
            }
        }
        all
    }

    /// The pod as the downward API sees it: with the IPs this node gave it.
    fn pod_with_status(&self) -> Pod {
        let mut pod = (*self.pod).clone();
        let status = pod.status.get_or_insert_with(Default::default);
        if let Some(ip) = self.ip {
            status.pod_ip = Some(ip.to_string());
            status.pod_ips = Some(vec![k8s_openapi::api::core::v1::PodIP {
                ip: ip.to_string(),
            }]);
        }
        status.host_ip = Some(self.ctx.node_ip.to_string());
        status.host_ips = Some(vec![k8s_openapi::api::core::v1::HostIP {
            ip: self.ctx.node_ip.to_string(),
        }]);
        pod
    }

    // ---- Initializing -----------------------------------------------------------------

    async fn initialize(&mut self, i: usize) {
        if i >= self.init.len() {
            self.stage = Stage::Running;
            return;
        }
        let r = &self.init[i];
        if r.is_running() {
            return;
        }
        match r.terminated() {
            Some(t) if t.exit_code == 0 => {
                self.stage = Stage::Initializing(i + 1);
                return;
            }
            Some(_) if self.restart_policy() == "Never" => {
                self.stage = Stage::Finished(Phase::Failed);
                return;
            }
            _ => {}
        }
        if r.retry_at.is_some_and(|t| t > Instant::now()) {
            return;
        }
        self.start(true, i).await;
    }

    // ---- Running ----------------------------------------------------------------------

    fn will_restart(policy: &str, status: &ExitStatus) -> bool {
        match policy {
            "Always" => true,
            "OnFailure" => status.exit_code != 0,
            _ => false,
        }
    }

    async fn run_containers(&mut self) {
        let policy = self.restart_policy().to_string();
        let now = Instant::now();
        for i in 0..self.containers.len() {
            let r = &self.containers[i];
            if r.is_running() || r.retry_at.is_some_and(|t| t > now) {
                continue;
            }
            let start = match (&r.state, r.ever_started) {
                (_, false) => true,
                (State::Terminated(t), true) => Self::will_restart(&policy, &t.status),
                // Back-off over, or a start that failed before the container ran.
                (State::Waiting { .. }, true) => true,
                (State::Running { .. }, true) => true,
            };
            if start {
                self.start(false, i).await;
            }
        }
        let done = self.containers.iter().all(|r| {
            !r.is_running()
                && r.ever_started
                && matches!(&r.state, State::Terminated(t) if !Self::will_restart(&policy, &t.status))
        });
        if done {
            let failed = self
                .containers
                .iter()
                .any(|r| r.terminated().is_some_and(|t| t.exit_code != 0));
            self.stage = Stage::Finished(if failed {
                Phase::Failed
            } else {
                Phase::Succeeded
            });
        }
    }

    /// Starts container `i` (an init container if `init`).
    async fn start(&mut self, init: bool, i: usize) {
        let (Some(sandbox), Some(volumes)) = (self.sandbox.clone(), self.volumes.clone()) else {
            return;
        };
        let pod = Arc::new(self.pod_with_status());
        let ctx = self.ctx.clone();
        let r = if init {
            &mut self.init[i]
        } else {
            &mut self.containers[i]
        };
        let Some(rt) = r.runtime.clone() else { return };
        let Some(image) = r.image.clone() else { return };
        let instance = if r.ever_started {
            r.restart_count + 1
        } else {
            r.restart_count
        };
        let config = match container::config(
            &ctx.client,
            &pod,
            &r.spec,
            image,
            &volumes,
            &self.dir,
            instance,
            ctx.config.log_max_bytes,
        )
        .await
        {
            Ok(c) => c,
            Err(e) => {
                let message = error_chain(&e);
                ctx.events
                    .warning(&self.pod, "Failed", &format!("Error: {message}"));
                r.set_waiting("CreateContainerConfigError", Some(message));
                r.retry_at =
                    Some(Instant::now() + r.pull_backoff.pull_failure(&ctx.config.backoff));
                return;
            }
        };
        let name = r.name().to_string();
        let handle = match rt.start(&sandbox, config).await {
            Ok(h) => Arc::<dyn crate::runtime::Container>::from(h),
            Err(e) => {
                let message = error_chain(&e);
                ctx.events
                    .warning(&self.pod, "Failed", &format!("Error: {message}"));
                let reason = match e {
                    RuntimeError::ImageNotFound { .. } => "CreateContainerError",
                    _ => e.reason(),
                };
                r.set_waiting(reason, Some(message));
                r.retry_at =
                    Some(Instant::now() + r.pull_backoff.pull_failure(&ctx.config.backoff));
                return;
            }
        };
        if let State::Terminated(t) = std::mem::replace(
            &mut r.state,
            State::Running {
                since: handle.started_at(),
            },
        ) {
            r.last_terminated = Some(t);
        }
        r.restart_count = instance;
        r.ever_started = true;
        r.retry_at = None;
        r.pull_backoff.reset();
        let done = CancellationToken::new();
        let container_id = handle.id().to_string();
        r.instance = Some(Instance {
            handle: handle.clone(),
            number: instance,
            container_id,
            done: done.clone(),
            started: Instant::now(),
        });
        let startup = r.spec.startup_probe.clone();
        r.started = startup.is_none();
        r.ready = r.started && r.spec.readiness_probe.is_none() && !init;
        ctx.events
            .normal(&self.pod, "Created", &format!("Created container: {name}"));
        ctx.events
            .normal(&self.pod, "Started", &format!("Started container {name}"));
        // The exit watcher: the only way the worker learns that an instance ended.
        let tx = self.tx.clone();
        let waiter = handle.clone();
        tokio::spawn(async move {
            let status = waiter.wait().await;
            let _ = tx
                .send(Event::Exited {
                    container: name,
                    instance,
                    status,
                })
                .await;
        });
        if !init {
            match startup {
                Some(p) => self.spawn_probe(i, ProbeKind::Startup, p),
                None => self.spawn_steady_probes(i),
            }
        }
    }

    fn probe_target(&self, i: usize) -> Option<(ProbeTarget, CancellationToken)> {
        let r = &self.containers[i];
        let inst = r.instance.as_ref()?;
        Some((
            ProbeTarget {
                container: r.name().to_string(),
                instance: inst.number,
                pod_ip: IpAddr::V4(self.ip?),
                network_namespace: self
                    .sandbox
                    .as_ref()
                    .and_then(|s| s.network_namespace.clone()),
                ports: r.named_ports(),
                handle: inst.handle.clone(),
            },
            inst.done.child_token(),
        ))
    }

    fn spawn_probe(&self, i: usize, kind: ProbeKind, probe: k8s_openapi::api::core::v1::Probe) {
        let Some((target, cancel)) = self.probe_target(i) else {
            return;
        };
        let (tx, mut rx) = mpsc::channel(8);
        probes::spawn(kind, probe, target, self.ctx.probe_http.clone(), tx, cancel);
        let events = self.tx.clone();
        tokio::spawn(async move {
            while let Some(u) = rx.recv().await {
                if events.send(Event::Probe(u)).await.is_err() {
                    return;
                }
            }
        });
    }

    fn spawn_steady_probes(&self, i: usize) {
        let spec = &self.containers[i].spec;
        if let Some(p) = spec.liveness_probe.clone() {
            self.spawn_probe(i, ProbeKind::Liveness, p);
        }
        if let Some(p) = spec.readiness_probe.clone() {
            self.spawn_probe(i, ProbeKind::Readiness, p);
        }
    }

    async fn on_event(&mut self, ev: Event) {
        match ev {
            Event::Exited {
                container,
                instance,
                status,
            } => self.on_exit(&container, instance, status),
            Event::Probe(u) => self.on_probe(u),
        }
    }

    fn record_mut(&mut self, name: &str) -> Option<&mut Record> {
        self.init
            .iter_mut()
            .chain(self.containers.iter_mut())
            .find(|r| r.name() == name)
    }

    fn on_exit(&mut self, name: &str, number: u32, status: ExitStatus) {
        let policy = self.restart_policy().to_string();
        let backoff = self.ctx.config.backoff;
        let pod = self.pod.clone();
        let (ns, pod_name, uid) = (self.namespace.clone(), self.name.clone(), self.uid.clone());
        let terminating = matches!(self.stage, Stage::Terminating | Stage::Gone);
        let events = self.ctx.events.clone();
        let Some(r) = self.record_mut(name) else {
            return;
        };
        let Some(inst) = r.instance.take_if(|i| i.number == number) else {
            return;
        };
        inst.done.cancel();
        r.ready = false;
        r.started = false;
        let ran = inst.started.elapsed();
        let t = Terminated {
            status,
            container_id: inst.container_id,
        };
        let restart = !terminating
            && if r.init {
                t.status.exit_code != 0 && policy != "Never"
            } else {
                Self::will_restart(&policy, &t.status)
            };
        if !restart {
            r.state = State::Terminated(t);
            return;
        }
        let delay = r.backoff.failure(&backoff, ran);
        if delay.is_zero() {
            r.state = State::Terminated(t);
            r.retry_at = None;
        } else {
            let secs = delay.as_secs();
            r.last_terminated = Some(t);
            r.set_waiting(
                "CrashLoopBackOff",
                Some(format!(
                    "back-off {} restarting failed container={} pod={pod_name}_{ns}({uid})",
                    human_secs(secs),
                    r.name()
                )),
            );
            r.retry_at = Some(Instant::now() + delay);
            events.warning(
                &pod,
                "BackOff",
                &format!(
                    "Back-off restarting failed container {} in pod {pod_name}_{ns}({uid})",
                    r.name()
                ),
            );
        }
    }

    fn on_probe(&mut self, u: ProbeUpdate) {
        let pod = self.pod.clone();
        let events = self.ctx.events.clone();
        let grace = self.grace_period();
        let Some(i) = self.containers.iter().position(|r| r.name() == u.container) else {
            return;
        };
        let current = self.containers[i]
            .instance
            .as_ref()
            .is_some_and(|inst| inst.number == u.instance);
        if !current {
            return;
        }
        match (u.kind, u.event) {
            (kind, ProbeEvent::Failed(why)) => {
                events.warning(
                    &pod,
                    "Unhealthy",
                    &format!("{} probe failed: {why}", kind.name()),
                );
            }
            (ProbeKind::Startup, ProbeEvent::Result(true)) => {
                let r = &mut self.containers[i];
                r.started = true;
                r.ready = r.spec.readiness_probe.is_none();
                self.spawn_steady_probes(i);
            }
            (ProbeKind::Readiness, ProbeEvent::Result(ok)) => {
                let r = &mut self.containers[i];
                r.ready = ok && r.started;
            }
            (kind @ (ProbeKind::Startup | ProbeKind::Liveness), ProbeEvent::Result(false)) => {
                let r = &mut self.containers[i];
                r.ready = false;
                events.normal(
                    &pod,
                    "Killing",
                    &format!(
                        "Container {} failed {} probe, will be restarted",
                        r.name(),
                        kind.name().to_lowercase()
                    ),
                );
                if let Some(inst) = &r.instance {
                    let handle = inst.handle.clone();
                    // Its exit reaches the worker through the exit watcher, like any other.
                    tokio::spawn(async move {
                        handle.stop(grace).await;
                    });
                }
            }
            (ProbeKind::Liveness, ProbeEvent::Result(true)) => {}
        }
    }

    fn grace_period(&self) -> Duration {
        let secs = self
            .pod
            .metadata
            .deletion_grace_period_seconds
            .or_else(|| {
                self.pod
                    .spec
                    .as_ref()
                    .and_then(|s| s.termination_grace_period_seconds)
            })
            .unwrap_or(30);
        Duration::from_secs(secs.max(0) as u64)
    }

    // ---- Ending -----------------------------------------------------------------------

    async fn stop_all(&mut self, grace: Duration, reason: Option<&str>) {
        let pod = self.pod.clone();
        let mut stopping = Vec::new();
        for r in self.init.iter_mut().chain(self.containers.iter_mut()) {
            if let Some(inst) = r.instance.take() {
                self.ctx.events.normal(
                    &pod,
                    "Killing",
                    &format!("Stopping container {}", r.name()),
                );
                stopping.push((r.name().to_string(), inst));
            } else if matches!(r.state, State::Waiting { .. }) && r.ever_started {
                // In back-off: the last instance's end is its final state.
                if let Some(t) = r.last_terminated.take() {
                    r.state = State::Terminated(t);
                }
            }
            r.retry_at = None;
            r.ready = false;
        }
        let results =
            futures::future::join_all(stopping.iter().map(|(_, inst)| inst.handle.stop(grace)))
                .await;
        for ((name, inst), mut status) in stopping.into_iter().zip(results) {
            inst.done.cancel();
            if let Some(reason) = reason {
                status.reason = reason.to_string();
            }
            if let Some(r) = self.record_mut(&name) {
                r.started = false;
                r.state = State::Terminated(Terminated {
                    status,
                    container_id: inst.container_id,
                });
            }
        }
    }

    /// Gives back the sandbox and the IP of a pod whose containers have all ended.
    async fn release(&mut self) {
        if let Stage::Finished(p) = self.stage {
            self.phase = p;
        }
        if let Some(sandbox) = self.sandbox.take() {
            for rt in &self.runtimes {
                if let Err(e) = rt.remove_sandbox(&sandbox).await {
                    tracing::warn!(pod = %self.name, error = %e, "removing the pod sandbox failed");
                }
            }
            self.remove_network(&sandbox);
        }
        if let Some(ip) = self.ip.take() {
            self.ctx.release_ip(ip).await;
        }
    }

    async fn deadline_exceeded(&mut self) {
        self.ctx.events.normal(
            &self.pod,
            "DeadlineExceeded",
            "Pod was active on the node longer than the specified deadline",
        );
        self.stop_all(Duration::ZERO, Some("DeadlineExceeded"))
            .await;
        self.reason = Some("DeadlineExceeded".into());
        self.message = Some("Pod was active on the node longer than the specified deadline".into());
        self.stage = Stage::Finished(Phase::Failed);
    }

    /// The longest `lifecycle.preStop.sleep` of a running container, within the grace period.
    fn pre_stop_sleep(&self) -> Duration {
        let secs = self
            .containers
            .iter()
            .filter(|r| r.instance.is_some())
            .map(|r| &r.spec)
            .filter_map(|c| c.lifecycle.as_ref()?.pre_stop.as_ref()?.sleep.as_ref())
            .map(|s| s.seconds.max(0) as u64)
            .max()
            .unwrap_or(0);
        Duration::from_secs(secs).min(self.grace_period())
    }

    async fn terminate(&mut self) {
        if !self.terminate_started {
            // Kubernetes' order: the preStop hook first (a sleep lets Services and Ingresses
            // stop sending new requests while the containers still serve), then the stop,
            // within what is left of the grace period.
            let pre_stop = self.pre_stop_sleep();
            let until = *self
                .pre_stop_until
                .get_or_insert_with(|| Instant::now() + pre_stop);
            if until > Instant::now() {
                return;
            }
            self.terminate_started = true;
            let grace = self.grace_period().saturating_sub(pre_stop);
            self.stop_all(grace, None).await;
            let failed = self
                .containers
                .iter()
                .any(|r| r.terminated().is_some_and(|t| t.exit_code != 0));
            if !self.phase.is_terminal() {
                self.phase = if failed {
                    Phase::Failed
                } else {
                    Phase::Succeeded
                };
            }
            self.release().await;
            self.publish_status();
        }
        if self.delete_retry_at.is_some_and(|t| t > Instant::now()) {
            return;
        }
        // The node confirms the pod is gone by deleting it for good, with its uid as a
        // precondition so a new pod of the same name is never touched.
        let api: Api<Pod> = Api::namespaced(self.ctx.client.clone(), &self.namespace);
        let params = DeleteParams {
            grace_period_seconds: Some(0),
            preconditions: Some(Preconditions {
                uid: Some(self.uid.clone()),
                resource_version: None,
            }),
            ..Default::default()
        };
        match api.delete(&self.name, &params).await {
            Ok(_) => self.delete_retry_at = Some(Instant::now() + Duration::from_secs(5)),
            Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => {
                self.delete_retry_at = Some(Instant::now() + Duration::from_secs(5));
            }
            Err(e) => {
                tracing::warn!(pod = %self.name, error = %e, "deleting a terminated pod failed");
                self.delete_retry_at = Some(Instant::now() + Duration::from_secs(1));
            }
        }
    }

    /// The object is gone: stop what runs, release everything, remove the pod's files.
    async fn object_deleted(&mut self) {
        self.stop_all(Duration::ZERO, None).await;
        self.release().await;
        self.publish = false;
        let dir = self.dir.clone();
        let _ = tokio::task::spawn_blocking(move || std::fs::remove_dir_all(dir)).await;
        self.stage = Stage::Gone;
    }

    /// The node is stopping: its guests stop with it; the pod comes back when it restarts.
    async fn node_shutdown(&mut self) {
        let grace = self.grace_period().min(Duration::from_secs(2));
        self.stop_all(grace, None).await;
    }

    // ---- Reporting --------------------------------------------------------------------

    fn current_phase(&self) -> Phase {
        match self.stage {
            Stage::Preparing | Stage::Initializing(_) => Phase::Pending,
            Stage::Running => {
                if self.containers.iter().any(|r| !r.ever_started) {
                    Phase::Pending
                } else {
                    Phase::Running
                }
            }
            Stage::Finished(p) => p,
            Stage::Terminating | Stage::Gone => self.phase,
        }
    }

    fn publish_status(&mut self) {
        if !self.publish {
            return;
        }
        let phase = self.current_phase();
        self.phase = phase;
        // As in Kubernetes, a pod without init containers is Initialized from the start.
        let initialized = self
            .init
            .iter()
            .all(|r| matches!(r.terminated(), Some(t) if t.exit_code == 0));
        let handler = self
            .runtimes
            .first()
            .map(|r| r.handler())
            .unwrap_or("wasmtime");
        // The IP stays in the status after the sandbox is released, as in Kubernetes.
        let pod_ip = self.ip.map(IpAddr::V4).or_else(|| {
            self.last_status
                .as_ref()
                .and_then(|s| s.get("podIP"))
                .and_then(Value::as_str)
                .and_then(|s| s.parse().ok())
        });
        let snap = Snapshot {
            pod: &self.pod,
            phase,
            initialized,
            sandbox_ready: self.sandbox.is_some(),
            pod_ip,
            host_ip: self.ctx.node_ip,
            start_time: &self.start_time,
            init: &self.init,
            containers: &self.containers,
            handler,
            reason: self.reason.as_deref(),
            message: self.message.as_deref(),
        };
        let status = status::build(&snap, &mut self.transitions);
        if self.last_status.as_ref() != Some(&status) {
            self.ctx
                .statuses
                .set(&self.uid, &self.namespace, &self.name, status.clone());
            self.last_status = Some(status);
        }
    }

    /// Tells `pods/log` which file is each container's current and previous instance.
    fn sync_logs(&self) {
        let mut map = self
            .logs
            .containers
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        for r in self.init.iter().chain(self.containers.iter()) {
            let entry = LogEntry {
                current: r.ever_started.then_some(r.restart_count),
                previous: match (&r.state, r.ever_started) {
                    (State::Waiting { .. }, true) if r.last_terminated.is_some() => {
                        Some(r.restart_count)
                    }
                    (_, true) if r.restart_count > 0 => Some(r.restart_count - 1),
                    _ => None,
                },
                running: r.instance.as_ref().map(|i| i.done.clone()),
                handle: r.instance.as_ref().map(|i| i.handle.clone()),
                waiting: match &r.state {
                    State::Waiting { reason, .. } if !r.ever_started => Some(reason.clone()),
                    _ => None,
                },
            };
            map.insert(r.name().to_string(), entry);
        }
    }
}

/// Seeds records from the statuses a previous run of this node reported.
fn adopt(records: &mut [Record], statuses: Option<&[k8s_openapi::api::core::v1::ContainerStatus]>) {
    for s in statuses.into_iter().flatten() {
        let Some(r) = records.iter_mut().find(|r| r.name() == s.name) else {
            continue;
        };
        r.restart_count = s.restart_count.max(0) as u32;
        let state = s.state.clone().unwrap_or_default();
        let to_terminated = |t: &k8s_openapi::api::core::v1::ContainerStateTerminated| Terminated {
            status: ExitStatus {
                exit_code: t.exit_code,
                reason: t.reason.clone().unwrap_or_else(|| "Error".into()),
                message: t.message.clone(),
                started_at: t
                    .started_at
                    .as_ref()
                    .map(|x| SystemTime::from(x.0))
                    .unwrap_or(SystemTime::UNIX_EPOCH),
                finished_at: t
                    .finished_at
                    .as_ref()
                    .map(|x| SystemTime::from(x.0))
                    .unwrap_or(SystemTime::UNIX_EPOCH),
            },
            container_id: t
                .container_id
                .as_deref()
                .and_then(|id| id.split_once("://").map(|(_, id)| id.to_string()))
                .unwrap_or_default(),
        };
        if let Some(t) = s.last_state.as_ref().and_then(|l| l.terminated.as_ref()) {
            r.last_terminated = Some(to_terminated(t));
        }
        if let Some(t) = &state.terminated {
            r.ever_started = true;
            r.state = State::Terminated(to_terminated(t));
        } else if let Some(run) = &state.running {
            r.ever_started = true;
            let started = run
                .started_at
                .as_ref()
                .map(|x| SystemTime::from(x.0))
                .unwrap_or(SystemTime::UNIX_EPOCH);
            r.state = State::Terminated(Terminated {
                status: ExitStatus {
                    exit_code: 137,
                    reason: "ContainerStatusUnknown".into(),
                    message: Some(
                        "The container could not be located when the node agent restarted".into(),
                    ),
                    started_at: started,
                    finished_at: SystemTime::now(),
                },
                container_id: s
                    .container_id
                    .as_deref()
                    .and_then(|id| id.split_once("://").map(|(_, id)| id.to_string()))
                    .unwrap_or_default(),
            });
        } else if r.restart_count > 0 || r.last_terminated.is_some() {
            // Waiting in a back-off: the last instance's end stands.
            r.ever_started = true;
            if let Some(t) = r.last_terminated.take() {
                r.state = State::Terminated(t);
            }
        }
    }
}

/// Registry credentials from the pod's `imagePullSecrets` (`kubernetes.io/dockerconfigjson`
/// or the older `.dockercfg`).
async fn registry_auth(client: &kube::Client, pod: &Pod) -> Vec<RegistryAuth> {
    let ns = pod.metadata.namespace.clone().unwrap_or_default();
    let api: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let mut out = Vec::new();
    for r in pod
        .spec
        .as_ref()
        .and_then(|s| s.image_pull_secrets.clone())
        .unwrap_or_default()
    {
        let Ok(Some(secret)) = api.get_opt(&r.name).await else {
            continue;
        };
        let data = crate::env::secret_data(&secret);
        let raw = data
            .get(".dockerconfigjson")
            .or_else(|| data.get(".dockercfg"));
        let Some(parsed) = raw.and_then(|b| serde_json::from_slice::<Value>(b).ok()) else {
            continue;
        };
        let auths = parsed.get("auths").unwrap_or(&parsed);
        let Some(map) = auths.as_object() else {
            continue;
        };
        for (registry, entry) in map {
            let (mut user, mut pass) = (
                entry
                    .get("username")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
                entry
                    .get("password")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
            );
            if let Some(decoded) = entry
                .get("auth")
                .and_then(crate::env::decode_b64)
                .and_then(|b| String::from_utf8(b).ok())
                && let Some((u, p)) = decoded.split_once(':')
            {
                user = u.to_string();
                pass = p.to_string();
            }
            let registry = registry
                .trim_start_matches("https://")
                .trim_start_matches("http://")
                .trim_end_matches('/')
                .trim_end_matches("/v1")
                .to_string();
            out.push(RegistryAuth {
                registry,
                username: user,
                password: pass,
            });
        }
    }
    out
}

async fn sleep_until(t: Option<Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(t).await,
        None => futures::future::pending().await,
    }
}

fn human_secs(secs: u64) -> String {
    if secs >= 60 && secs.is_multiple_of(60) {
        format!("{}m0s", secs / 60)
    } else if secs >= 60 {
        format!("{}m{}s", secs / 60, secs % 60)
    } else {
        format!("{secs}s")
    }
}

/// `error: cause: cause` on one line (causes already in the message are not repeated), for
/// status messages and events.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(c) = source {
        let m = c.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        source = c.source();
    }
    s
}

/// How often a pull that is still running reports how far it has come.
const PULL_PROGRESS_EVERY: Duration = Duration::from_secs(2);

/// Runs `rt`'s pull of `image`. One that takes longer than a moment says so in a `Pulling`
/// event, then in one more every [`PULL_PROGRESS_EVERY`] while bytes arrive ("3.1 MiB of
/// 10.0 MiB (31%)"), so `kubectl describe pod` and `wasmkube events` show a slow pull moving.
/// A pull from the node's own store reports nothing.
async fn pull_reporting(
    rt: &dyn Runtime,
    image: &str,
    policy: PullPolicy,
    auth: &[RegistryAuth],
    progress: &PullProgress,
    events: &Recorder,
    pod: &Pod,
) -> Result<PulledImage, RuntimeError> {
    let pull = rt.pull_with_progress(image, policy, auth, progress);
    tokio::pin!(pull);
    let mut tick = tokio::time::interval_at(
        Instant::now() + Duration::from_millis(500),
        PULL_PROGRESS_EVERY,
    );
    let mut reported: Option<u64> = None;
    loop {
        tokio::select! {
            result = &mut pull => return result,
            _ = tick.tick() => {
                let (done, total) = progress.get();
                if reported == Some(done) {
                    continue;
                }
                reported = Some(done);
                events.normal(pod, "Pulling", &pull_message(image, done, total));
            }
        }
    }
}

/// `Pulling image "x"`, with the bytes so far once the backend knows them.
fn pull_message(image: &str, done: u64, total: u64) -> String {
    const MIB: f64 = 1024.0 * 1024.0;
    if total == 0 {
        return format!("Pulling image {image:?}");
    }
    let percent = (done.min(total) as f64 * 100.0 / total as f64).floor();
    format!(
        "Pulling image {image:?}: {:.1} MiB of {:.1} MiB ({percent}%)",
        done as f64 / MIB,
        total as f64 / MIB
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pull_progress_messages() {
        assert_eq!(
            pull_message("busybox:1", 0, 0),
            "Pulling image \"busybox:1\""
        );
        assert_eq!(
            pull_message("busybox:1", 3 << 20, 10 << 20),
            "Pulling image \"busybox:1\": 3.0 MiB of 10.0 MiB (30%)"
        );
        // A registry that sends more than the manifest said never reads past 100%.
        assert!(pull_message("x", 11 << 20, 10 << 20).ends_with("(100%)"));
    }

    #[test]
    fn back_off_messages_read_like_kubernetes() {
        assert_eq!(human_secs(10), "10s");
        assert_eq!(human_secs(300), "5m0s");
        assert_eq!(human_secs(80), "1m20s");
    }
}
