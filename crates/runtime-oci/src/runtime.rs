//! [`OciRuntime`]: the kubelet's `Runtime` over containerd.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use containerd_client::services::v1::{CreateTaskRequest, StartRequest};
use futures::future::BoxFuture;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use wasmkube_kubelet::runtime::{
    Container, ContainerConfig, PodSandbox, PullPolicy, PullProgress, PulledImage, RegistryAuth,
    Runtime, RuntimeError,
};
use wasmkube_runtime_wasm::oci::{Reference, RegistryClient, credentials_for};

use crate::Error;
use crate::cgroups::Cgroups;
use crate::client::Containerd;
use crate::container::{OciContainer, watch_exit};
use crate::pull::{self, ImageRecord};
use crate::spec::{self, SPEC_TYPE_URL, SpecInput};

/// Labels every container carries: which node made it, and for which pod and container.
pub const LABEL_NODE: &str = "io.wasmkube.node";
pub const LABEL_POD_UID: &str = "io.kubernetes.pod.uid";
pub const LABEL_POD_NAME: &str = "io.kubernetes.pod.name";
pub const LABEL_POD_NAMESPACE: &str = "io.kubernetes.pod.namespace";
pub const LABEL_CONTAINER_NAME: &str = "io.kubernetes.container.name";

/// How the runtime reaches containerd and where it keeps its files.
#[derive(Debug, Clone)]
pub struct OciRuntimeConfig {
    pub socket: PathBuf,
    /// The containerd namespace (`wasmkube`): our images and containers live only there.
    pub namespace: String,
    /// FIFOs and per-pod files (`/etc/hosts`).
    pub state_dir: PathBuf,
    /// The node's name, on every container, so a restarted node removes only its own.
    pub node_name: String,
    /// Registries (host[:port]) pulled from over plain HTTP; loopback ones always are.
    pub insecure_registries: Vec<String>,
    pub connect_timeout: Duration,
    pub pull_timeout: Duration,
}

impl OciRuntimeConfig {
    pub fn new(socket: PathBuf, data_dir: &Path, node_name: &str) -> OciRuntimeConfig {
        OciRuntimeConfig {
            socket,
            namespace: "wasmkube".into(),
            state_dir: data_dir.join("containerd"),
            node_name: node_name.to_string(),
            insecure_registries: Vec::new(),
            connect_timeout: Duration::from_secs(3),
            pull_timeout: Duration::from_secs(300),
        }
    }
}

/// Linux containers run by containerd and runc.
pub struct OciRuntime {
    ctrd: Containerd,
    registry: RegistryClient,
    config: OciRuntimeConfig,
    version: String,
    snapshotter: &'static str,
    cgroups: Arc<Cgroups>,
    swap_accounting: bool,
    images: Mutex<HashMap<String, ImageRecord>>,
    /// One pull of an image at a time (the first pulls, the others find it present).
    pulling: tokio::sync::Mutex<()>,
}

impl OciRuntime {
    /// Connects to containerd and removes what an earlier run of this node left there (its
    /// pods come back as new containers). Fails when containerd is absent or silent.
    pub async fn connect(config: OciRuntimeConfig) -> Result<OciRuntime, Error> {
        let (ctrd, version) =
            Containerd::connect(&config.socket, &config.namespace, config.connect_timeout).await?;
        let snapshotter = ctrd.pick_snapshotter().await;
        let registry =
            RegistryClient::new(config.pull_timeout, config.insecure_registries.clone())?;
        std::fs::create_dir_all(config.state_dir.join("containers")).map_err(|source| {
            Error::Io {
                path: config.state_dir.clone(),
                source,
            }
        })?;
        let cgroups = Cgroups::detect();
        let rt = OciRuntime {
            swap_accounting: cgroups.swap_accounting(),
            cgroups: Arc::new(cgroups),
            ctrd,
            registry,
            version,
            snapshotter,
            images: Mutex::new(HashMap::new()),
            pulling: tokio::sync::Mutex::new(()),
            config,
        };
        for id in rt
            .ctrd
            .containers_labelled(LABEL_NODE, &rt.config.node_name)
            .await?
        {
            if let Err(e) = rt.ctrd.remove_container(&id, rt.snapshotter).await {
                tracing::warn!(container = %id, error = %e, "removing a container of an earlier run");
            }
        }
        Ok(rt)
    }

    /// The snapshotter images are unpacked into (`overlayfs`, or `native` without overlay).
    pub fn snapshotter(&self) -> &'static str {
        self.snapshotter
    }

    fn pod_dir(&self, pod: &PodSandbox) -> PathBuf {
        self.config.state_dir.join("pods").join(&pod.uid)
    }

    async fn pull_inner(
        &self,
        image: &str,
        policy: PullPolicy,
        auth: &[RegistryAuth],
        progress: &PullProgress,
    ) -> Result<PulledImage, Error> {
        let r = Reference::parse(image)?;
        let name = pull::image_name(&r);
        let _one = self.pulling.lock().await;
        if policy != PullPolicy::Always {
            let cached = self
                .images
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(&name)
                .cloned();
            let present = match cached {
                Some(c) => Some(c),
                None => pull::local(&self.ctrd, &name, self.snapshotter).await?,
            };
            if let Some(rec) = present {
                self.remember(&rec);
                return Ok(PulledImage {
                    reference: image.to_string(),
                    image_id: rec.image_id,
                });
            }
            if policy == PullPolicy::Never {
                return Err(Error::NeverPull(image.to_string()));
            }
        }
        let creds = credentials_for(auth, &r.registry);
        let rec = tokio::time::timeout(
            self.config.pull_timeout,
            pull::pull(
                &self.ctrd,
                &self.registry,
                &r,
                creds,
                self.snapshotter,
                progress,
            ),
        )
        .await
        .map_err(|_| Error::Timeout(format!("pulling {image}")))??;
        self.remember(&rec);
        Ok(PulledImage {
            reference: image.to_string(),
            image_id: rec.image_id,
        })
    }

    fn remember(&self, rec: &ImageRecord) {
        self.images
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(rec.name.clone(), rec.clone());
    }

    fn image_record(&self, reference: &str) -> Option<ImageRecord> {
        let name = pull::image_name(&Reference::parse(reference).ok()?);
        self.images
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&name)
            .cloned()
    }

    async fn start_inner(
        &self,
        pod: &PodSandbox,
        config: ContainerConfig,
    ) -> Result<OciContainer, Error> {
        let rec = self
            .image_record(&config.image.reference)
            .ok_or_else(|| Error::Image(format!("{} is not pulled", config.image.reference)))?;
        // Only the newest exited instance of a container is kept, as the kubelet does.
        for old in self
            .ctrd
            .containers_labelled(LABEL_POD_UID, &pod.uid)
            .await?
        {
            if self.container_name_of(&old).await.as_deref() == Some(config.name.as_str()) {
                let _ = self.ctrd.remove_container(&old, self.snapshotter).await;
            }
        }
        let id = uuid::Uuid::new_v4().simple().to_string();
        let cgroups_path = format!("/wasmkube/{id}");
        let pod_dir = self.pod_dir(pod);
        let files = [
            (pod_dir.join("hosts"), "/etc/hosts"),
            (pod_dir.join("hostname"), "/etc/hostname"),
        ];
        let input = SpecInput {
            image: &rec.config,
            command: &config.command,
            args: &config.args,
            env: &config.env,
            working_dir: config.working_dir.as_deref(),
            hostname: &pod.hostname,
            mounts: &config.mounts,
            files: &files,
            resources: &config.resources,
            security: &config.security,
            network_namespace: pod.network_namespace.as_deref(),
            cgroups_path: &cgroups_path,
            swap_accounting: self.swap_accounting,
        };
        let runtime_spec = spec::runtime_spec(&input)?;
        let process = runtime_spec["process"].clone();
        let spec_any = prost_types::Any {
            type_url: SPEC_TYPE_URL.into(),
            value: serde_json::to_vec(&runtime_spec)
                .map_err(|e| Error::Image(format!("encoding the runtime spec: {e}")))?,
        };
        let mut labels = HashMap::new();
        labels.insert(LABEL_NODE.to_string(), self.config.node_name.clone());
        labels.insert(LABEL_POD_UID.to_string(), pod.uid.clone());
        labels.insert(LABEL_POD_NAME.to_string(), pod.name.clone());
        labels.insert(LABEL_POD_NAMESPACE.to_string(), pod.namespace.clone());
        labels.insert(LABEL_CONTAINER_NAME.to_string(), config.name.clone());

        let mounts = self
            .ctrd
            .prepare_snapshot(self.snapshotter, &id, &rec.top_chain_id, None)
            .await?;
        let created = self
            .ctrd
            .create_container(&id, &rec.name, labels, spec_any, self.snapshotter)
            .await;
        if let Err(e) = created {
            let _ = self.ctrd.remove_container(&id, self.snapshotter).await;
            return Err(e);
        }
        match self
            .start_task(&id, mounts, &config, &cgroups_path, process)
            .await
        {
            Ok(c) => Ok(c),
            Err(e) => {
                let _ = self.ctrd.remove_container(&id, self.snapshotter).await;
                let _ = std::fs::remove_dir_all(self.config.state_dir.join("containers").join(&id));
                Err(e)
            }
        }
    }

    async fn start_task(
        &self,
        id: &str,
        rootfs: Vec<containerd_client::types::Mount>,
        config: &ContainerConfig,
        cgroups_path: &str,
        process: serde_json::Value,
    ) -> Result<OciContainer, Error> {
        let dir = self.config.state_dir.join("containers").join(id);
        std::fs::create_dir_all(&dir).map_err(|source| Error::Io {
            path: dir.clone(),
            source,
        })?;
        let io_err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| Error::Io { path, source }
        };
        let (out_path, err_path) = (dir.join("stdout"), dir.join("stderr"));
        // The read ends first: the shim opens the write ends while creating the task.
        let out_rx = crate::logs::fifo(&out_path).map_err(io_err(&out_path))?;
        let err_rx = crate::logs::fifo(&err_path).map_err(io_err(&err_path))?;
        let log = crate::logs::LogFile::open(&config.log);
        let exited = CancellationToken::new();
        let readers = vec![
            tokio::spawn(crate::logs::copy(
                out_rx,
                "stdout",
                log.clone(),
                exited.clone(),
            )),
            tokio::spawn(crate::logs::copy(err_rx, "stderr", log, exited.clone())),
        ];
        let req = CreateTaskRequest {
            container_id: id.into(),
            rootfs,
            stdin: String::new(),
            stdout: out_path.display().to_string(),
            stderr: err_path.display().to_string(),
            terminal: false,
            ..Default::default()
        };
        let tasks = self.ctrd.tasks();
        let stop_readers = || exited.cancel();
        if let Err(source) = tasks.clone().create(self.ctrd.req(req)).await {
            stop_readers();
            return Err(Error::Rpc {
                what: "creating the task",
                source,
            });
        }
        let start = StartRequest {
            container_id: id.into(),
            exec_id: String::new(),
        };
        if let Err(source) = tasks.clone().start(self.ctrd.req(start)).await {
            stop_readers();
            return Err(Error::Rpc {
                what: "starting the task",
                source,
            });
        }
        let started_at = SystemTime::now();
        let (tx, rx) = watch::channel(None);
        tokio::spawn(watch_exit(
            self.ctrd.clone(),
            id.to_string(),
            started_at,
            self.cgroups.clone(),
            cgroups_path.to_string(),
            exited,
            readers,
            tx,
        ));
        Ok(OciContainer {
            id: id.to_string(),
            started_at,
            exit: rx,
            ctrd: self.ctrd.clone(),
            process,
            dir,
            cgroups: self.cgroups.clone(),
            cgroups_path: cgroups_path.to_string(),
        })
    }

    async fn container_name_of(&self, id: &str) -> Option<String> {
        let req = containerd_client::services::v1::GetContainerRequest { id: id.into() };
        let c = self.ctrd.containers().get(self.ctrd.req(req)).await.ok()?;
        c.into_inner()
            .container?
            .labels
            .get(LABEL_CONTAINER_NAME)
            .cloned()
    }

    async fn remove_pod(&self, pod: &PodSandbox) -> Result<(), Error> {
        for id in self
            .ctrd
            .containers_labelled(LABEL_POD_UID, &pod.uid)
            .await?
        {
            self.ctrd.remove_container(&id, self.snapshotter).await?;
            let _ = std::fs::remove_dir_all(self.config.state_dir.join("containers").join(&id));
        }
        let _ = std::fs::remove_dir_all(self.pod_dir(pod));
        Ok(())
    }
}

fn to_runtime_error(image_or_container: &str, pulling: bool, e: Error) -> RuntimeError {
    let message = crate::error_chain(&e);
    match e {
        Error::NeverPull(image) => RuntimeError::ImageNeverPull { image },
        Error::Reference(_) => RuntimeError::InvalidImage {
            image: image_or_container.to_string(),
            message,
        },
        Error::Registry(wasmkube_runtime_wasm::oci::OciError::Status { status: 404, .. })
            if pulling =>
        {
            RuntimeError::ImageNotFound {
                image: image_or_container.to_string(),
            }
        }
        _ if pulling => RuntimeError::ImagePull {
            image: image_or_container.to_string(),
            message,
        },
        _ => RuntimeError::Create {
            container: image_or_container.to_string(),
            message,
        },
    }
}

impl Runtime for OciRuntime {
    fn handler(&self) -> &'static str {
        "runc"
    }

    fn version(&self) -> String {
        format!("containerd {}", self.version)
    }

    fn needs_network_namespace(&self) -> bool {
        true
    }

    fn pull_with_progress<'a>(
        &'a self,
        image: &'a str,
        policy: PullPolicy,
        auth: &'a [RegistryAuth],
        progress: &'a PullProgress,
    ) -> BoxFuture<'a, Result<PulledImage, RuntimeError>> {
        Box::pin(async move {
            self.pull_inner(image, policy, auth, progress)
                .await
                .map_err(|e| to_runtime_error(image, true, e))
        })
    }

    fn create_sandbox<'a>(
        &'a self,
        pod: &'a PodSandbox,
    ) -> BoxFuture<'a, Result<(), RuntimeError>> {
        Box::pin(async move {
            let dir = self.pod_dir(pod);
            std::fs::create_dir_all(&dir)?;
            // The pod's own name resolves to itself, as in a Kubernetes pod.
            std::fs::write(
                dir.join("hosts"),
                format!(
                    "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.0.1\t{}\n",
                    pod.hostname
                ),
            )?;
            std::fs::write(dir.join("hostname"), format!("{}\n", pod.hostname))?;
            Ok(())
        })
    }

    fn start<'a>(
        &'a self,
        pod: &'a PodSandbox,
        config: ContainerConfig,
    ) -> BoxFuture<'a, Result<Box<dyn Container>, RuntimeError>> {
        Box::pin(async move {
            let name = config.name.clone();
            self.start_inner(pod, config)
                .await
                .map(|c| Box::new(c) as Box<dyn Container>)
                .map_err(|e| to_runtime_error(&name, false, e))
        })
    }

    fn remove_sandbox<'a>(
        &'a self,
        pod: &'a PodSandbox,
    ) -> BoxFuture<'a, Result<(), RuntimeError>> {
        Box::pin(async move {
            self.remove_pod(pod)
                .await
                .map_err(|e| RuntimeError::Create {
                    container: pod.name.clone(),
                    message: crate::error_chain(&e),
                })
        })
    }
}
