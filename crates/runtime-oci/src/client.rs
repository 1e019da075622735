//! A connection to containerd: the gRPC channel and the namespace every request carries.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use containerd_client::services::v1::container::Runtime as ContainerRuntime;
use containerd_client::services::v1::snapshots::{
    PrepareSnapshotRequest, RemoveSnapshotRequest, snapshots_client::SnapshotsClient,
};
use containerd_client::services::v1::{
    Container, CreateContainerRequest, DeleteContainerRequest, DeleteTaskRequest, KillRequest,
    ListContainersRequest, PluginsRequest, WaitRequest, containers_client::ContainersClient,
    content_client::ContentClient, diff_client::DiffClient, images_client::ImagesClient,
    introspection_client::IntrospectionClient, leases_client::LeasesClient,
    tasks_client::TasksClient, version_client::VersionClient,
};
use containerd_client::types::Mount as CtrdMount;
use tonic::transport::Channel;
use tonic::{Code, Request};

use crate::Error;

/// The runc shim containers run under.
pub const RUNC_SHIM: &str = "io.containerd.runc.v2";

/// A containerd endpoint in one namespace. Cheap to clone (the channel is shared).
#[derive(Clone)]
pub struct Containerd {
    channel: Channel,
    namespace: String,
}

impl Containerd {
    /// Connects to the socket and checks containerd answers, within `timeout`.
    pub async fn connect(
        socket: &Path,
        namespace: &str,
        timeout: Duration,
    ) -> Result<(Containerd, String), Error> {
        if !socket.exists() {
            return Err(Error::NoSocket(socket.to_path_buf()));
        }
        let channel = tokio::time::timeout(timeout, containerd_client::connect(socket))
            .await
            .map_err(|_| Error::Timeout(format!("connecting to {}", socket.display())))?
            .map_err(|e| Error::Connect {
                socket: socket.to_path_buf(),
                message: e.to_string(),
            })?;
        let c = Containerd {
            channel,
            namespace: namespace.to_string(),
        };
        let version = tokio::time::timeout(timeout, c.version().version(()))
            .await
            .map_err(|_| Error::Timeout(format!("asking {} its version", socket.display())))?
            .map_err(|source| Error::Rpc {
                what: "version",
                source,
            })?
            .into_inner()
            .version;
        Ok((c, version))
    }

    /// `msg` as a request in our namespace.
    pub fn req<T>(&self, msg: T) -> Request<T> {
        self.req_lease(msg, None)
    }

    /// `msg` as a request in our namespace, holding what it creates under `lease` (so the
    /// garbage collector leaves a half-pulled image alone).
    pub fn req_lease<T>(&self, msg: T, lease: Option<&str>) -> Request<T> {
        let mut req = Request::new(msg);
        if let Ok(ns) = self.namespace.parse() {
            req.metadata_mut().insert("containerd-namespace", ns);
        }
        if let Some(l) = lease.and_then(|l| l.parse().ok()) {
            req.metadata_mut().insert("containerd-lease", l);
        }
        req
    }

    pub fn version(&self) -> VersionClient<Channel> {
        VersionClient::new(self.channel.clone())
    }
    pub fn containers(&self) -> ContainersClient<Channel> {
        ContainersClient::new(self.channel.clone())
    }
    pub fn content(&self) -> ContentClient<Channel> {
        // Layers come in 1 MiB writes, but a read answer may be larger.
        ContentClient::new(self.channel.clone()).max_decoding_message_size(64 << 20)
    }
    pub fn diff(&self) -> DiffClient<Channel> {
        DiffClient::new(self.channel.clone())
    }
    pub fn images(&self) -> ImagesClient<Channel> {
        ImagesClient::new(self.channel.clone())
    }
    pub fn leases(&self) -> LeasesClient<Channel> {
        LeasesClient::new(self.channel.clone())
    }
    pub fn snapshots(&self) -> SnapshotsClient<Channel> {
        SnapshotsClient::new(self.channel.clone())
    }
    pub fn tasks(&self) -> TasksClient<Channel> {
        TasksClient::new(self.channel.clone())
    }
    pub fn introspection(&self) -> IntrospectionClient<Channel> {
        IntrospectionClient::new(self.channel.clone())
    }

    /// The snapshotter to use: overlayfs when containerd could load it here, else native
    /// (plain copies; works on any filesystem, e.g. when the root is itself on overlayfs).
    pub async fn pick_snapshotter(&self) -> &'static str {
        let req = PluginsRequest {
            filters: vec!["type==io.containerd.snapshotter.v1".into()],
        };
        match self.introspection().plugins(self.req(req)).await {
            Ok(resp) => {
                let ok = resp
                    .into_inner()
                    .plugins
                    .iter()
                    .any(|p| p.id == "overlayfs" && p.init_err.is_none());
                if ok { "overlayfs" } else { "native" }
            }
            Err(_) => "native",
        }
    }

    /// A writable snapshot `key` over `parent`, and how to mount it.
    pub async fn prepare_snapshot(
        &self,
        snapshotter: &str,
        key: &str,
        parent: &str,
        lease: Option<&str>,
    ) -> Result<Vec<CtrdMount>, Error> {
        let req = PrepareSnapshotRequest {
            snapshotter: snapshotter.into(),
            key: key.into(),
            parent: parent.into(),
            labels: HashMap::new(),
        };
        Ok(self
            .snapshots()
            .prepare(self.req_lease(req, lease))
            .await
            .map_err(|source| Error::Rpc {
                what: "preparing a snapshot",
                source,
            })?
            .into_inner()
            .mounts)
    }

    pub async fn create_container(
        &self,
        id: &str,
        image: &str,
        labels: HashMap<String, String>,
        spec: prost_types::Any,
        snapshotter: &str,
    ) -> Result<(), Error> {
        let container = Container {
            id: id.into(),
            labels,
            image: image.into(),
            runtime: Some(ContainerRuntime {
                name: RUNC_SHIM.into(),
                options: None,
            }),
            spec: Some(spec),
            snapshotter: snapshotter.into(),
            snapshot_key: id.into(),
            ..Default::default()
        };
        let req = CreateContainerRequest {
            container: Some(container),
        };
        self.containers()
            .create(self.req(req))
            .await
            .map_err(|source| Error::Rpc {
                what: "creating the container",
                source,
            })?;
        Ok(())
    }

    /// Ids of our containers whose labels match `label==value`.
    pub async fn containers_labelled(
        &self,
        label: &str,
        value: &str,
    ) -> Result<Vec<String>, Error> {
        let req = ListContainersRequest {
            filters: vec![format!("labels.\"{label}\"=={value}")],
        };
        Ok(self
            .containers()
            .list(self.req(req))
            .await
            .map_err(|source| Error::Rpc {
                what: "listing containers",
                source,
            })?
            .into_inner()
            .containers
            .into_iter()
            .map(|c| c.id)
            .collect())
    }

    /// Removes a container with everything it holds: its task (killed if still running),
    /// the container record and its snapshot. What is already gone is not an error.
    pub async fn remove_container(&self, id: &str, snapshotter: &str) -> Result<(), Error> {
        let gone = |s: &tonic::Status| s.code() == Code::NotFound;
        let kill = KillRequest {
            container_id: id.into(),
            exec_id: String::new(),
            signal: nix::sys::signal::Signal::SIGKILL as u32,
            all: true,
        };
        if self.tasks().kill(self.req(kill)).await.is_ok() {
            let wait = WaitRequest {
                container_id: id.into(),
                exec_id: String::new(),
            };
            let _ =
                tokio::time::timeout(Duration::from_secs(10), self.tasks().wait(self.req(wait)))
                    .await;
        }
        match self
            .tasks()
            .delete(self.req(DeleteTaskRequest {
                container_id: id.into(),
            }))
            .await
        {
            Ok(_) => {}
            Err(s) if gone(&s) => {}
            Err(source) => {
                return Err(Error::Rpc {
                    what: "deleting the task",
                    source,
                });
            }
        }
        match self
            .containers()
            .delete(self.req(DeleteContainerRequest { id: id.into() }))
            .await
        {
            Ok(_) => {}
            Err(s) if gone(&s) => {}
            Err(source) => {
                return Err(Error::Rpc {
                    what: "deleting the container",
                    source,
                });
            }
        }
        let req = RemoveSnapshotRequest {
            snapshotter: snapshotter.into(),
            key: id.into(),
        };
        match self.snapshots().remove(self.req(req)).await {
            Ok(_) => Ok(()),
            Err(s) if gone(&s) => Ok(()),
            Err(source) => Err(Error::Rpc {
                what: "removing the snapshot",
                source,
            }),
        }
    }
}
