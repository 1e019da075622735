//! A started container: its containerd task watched until it exits, stop as SIGTERM then
//! SIGKILL, exec as an extra process in the task, usage from its cgroup.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use containerd_client::services::v1::{
    CloseIoRequest, DeleteProcessRequest, DeleteTaskRequest, ExecProcessRequest, KillRequest,
    StartRequest, WaitRequest,
};
use futures::future::BoxFuture;
use nix::sys::signal::Signal;
use serde_json::Value;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use wasmkube_kubelet::runtime::{Container, ExecOutput, ExitStatus, RuntimeError, Usage};

use crate::cgroups::Cgroups;
use crate::client::Containerd;
use crate::logs;

/// How much of an exec's output is kept per stream.
const EXEC_OUTPUT_LIMIT: usize = 1 << 20;

pub struct OciContainer {
    pub(crate) id: String,
    pub(crate) started_at: SystemTime,
    pub(crate) exit: watch::Receiver<Option<ExitStatus>>,
    pub(crate) ctrd: Containerd,
    /// The process spec it was started with: the base of every exec.
    pub(crate) process: Value,
    /// Its FIFOs.
    pub(crate) dir: PathBuf,
    pub(crate) cgroups: Arc<Cgroups>,
    pub(crate) cgroups_path: String,
}

/// Waits for the task to exit, classifies the exit (OOM from the cgroup), lets the log readers
/// drain, deletes the task (freeing its cgroup) and publishes the status.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn watch_exit(
    ctrd: Containerd,
    id: String,
    started_at: SystemTime,
    cgroups: Arc<Cgroups>,
    cgroups_path: String,
    exited: CancellationToken,
    readers: Vec<tokio::task::JoinHandle<()>>,
    tx: watch::Sender<Option<ExitStatus>>,
) {
    let wait = WaitRequest {
        container_id: id.clone(),
        exec_id: String::new(),
    };
    let result = ctrd.tasks().wait(ctrd.req(wait)).await;
    let finished_at = SystemTime::now();
    let oom = cgroups.oom_killed(&cgroups_path);
    exited.cancel();
    for r in readers {
        let _ = r.await;
    }
    let status = match result {
        Ok(resp) => {
            let code = resp.into_inner().exit_status as i32;
            let reason = if oom {
                "OOMKilled"
            } else if code == 0 {
                "Completed"
            } else {
                "Error"
            };
            ExitStatus {
                exit_code: if oom && code == 0 { 137 } else { code },
                reason: reason.into(),
                message: None,
                started_at,
                finished_at,
            }
        }
        Err(e) => ExitStatus {
            exit_code: 255,
            reason: "Error".into(),
            message: Some(format!("lost the task in containerd: {}", e.message())),
            started_at,
            finished_at,
        },
    };
    let _ = ctrd
        .tasks()
        .delete(ctrd.req(DeleteTaskRequest {
            container_id: id.clone(),
        }))
        .await;
    let _ = tx.send(Some(status));
}

impl OciContainer {
    async fn wait_exit(&self) -> ExitStatus {
        let mut rx = self.exit.clone();
        match rx.wait_for(|s| s.is_some()).await {
            Ok(s) => s.clone().unwrap_or_else(|| self.lost()),
            Err(_) => self.lost(),
        }
    }

    fn lost(&self) -> ExitStatus {
        ExitStatus {
            exit_code: 255,
            reason: "Error".into(),
            message: Some("the container's exit watcher ended".into()),
            started_at: self.started_at,
            finished_at: SystemTime::now(),
        }
    }

    async fn kill(&self, signal: Signal, all: bool) {
        let req = KillRequest {
            container_id: self.id.clone(),
            exec_id: String::new(),
            signal: signal as u32,
            all,
        };
        if let Err(e) = self.ctrd.tasks().kill(self.ctrd.req(req)).await {
            tracing::debug!(container = %self.id, error = %e.message(), "kill");
        }
    }

    async fn exec_inner(
        &self,
        command: Vec<String>,
        stdin: Vec<u8>,
        timeout: Duration,
    ) -> Result<ExecOutput, RuntimeError> {
        let fail = |message: String| RuntimeError::Create {
            container: self.id.clone(),
            message,
        };
        let exec_id = format!("exec-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
        let out_path = self.dir.join(format!("{exec_id}-stdout"));
        let err_path = self.dir.join(format!("{exec_id}-stderr"));
        let out_rx = logs::fifo(&out_path)?;
        let err_rx = logs::fifo(&err_path)?;
        // Standard input through a FIFO too, but only when there is some: without one the shim
        // gives the process /dev/null, as `kubectl exec` without `-i` expects. Opened here
        // read-write so the FIFO (and what is written into it) outlives the gap before the
        // shim opens its end.
        let in_path = self.dir.join(format!("{exec_id}-stdin"));
        let stdin_tx = if stdin.is_empty() {
            None
        } else {
            Some(logs::fifo_sender(&in_path)?)
        };
        let mut process = self.process.clone();
        process["args"] = serde_json::json!(command);
        let spec = prost_types::Any {
            type_url: "types.containerd.io/opencontainers/runtime-spec/1/Process".into(),
            value: serde_json::to_vec(&process).map_err(|e| fail(e.to_string()))?,
        };
        let req = ExecProcessRequest {
            container_id: self.id.clone(),
            stdin: if stdin_tx.is_some() {
                in_path.display().to_string()
            } else {
                String::new()
            },
            stdout: out_path.display().to_string(),
            stderr: err_path.display().to_string(),
            terminal: false,
            spec: Some(spec),
            exec_id: exec_id.clone(),
        };
        let cleanup = || {
            let _ = std::fs::remove_file(&out_path);
            let _ = std::fs::remove_file(&err_path);
            let _ = std::fs::remove_file(&in_path);
        };
        if let Err(e) = self.ctrd.tasks().exec(self.ctrd.req(req)).await {
            cleanup();
            return Err(fail(format!("exec: {}", e.message())));
        }
        let exited = CancellationToken::new();
        let out = tokio::spawn(logs::collect(out_rx, exited.clone(), EXEC_OUTPUT_LIMIT));
        let err = tokio::spawn(logs::collect(err_rx, exited.clone(), EXEC_OUTPUT_LIMIT));
        let start = StartRequest {
            container_id: self.id.clone(),
            exec_id: exec_id.clone(),
        };
        let started = self.ctrd.tasks().start(self.ctrd.req(start)).await;
        // The shim has its end open once the process started: write the input, then close
        // it. A process that never reads only loses its input (the writer is dropped with
        // the exec).
        let feeder = stdin_tx.map(|mut tx| {
            let (ctrd, container_id, exec_id) =
                (self.ctrd.clone(), self.id.clone(), exec_id.clone());
            tokio::spawn(async move {
                use tokio::io::AsyncWriteExt;
                let _ = tx.write_all(&stdin).await;
                drop(tx);
                // The shim keeps the process's stdin open (for attaching again) until told
                // otherwise: CloseIO is what gives the process its end-of-file.
                let close = CloseIoRequest {
                    container_id,
                    exec_id,
                    stdin: true,
                };
                let _ = ctrd.tasks().close_io(ctrd.req(close)).await;
            })
        });
        let code = match started {
            Err(e) => {
                exited.cancel();
                Err(fail(format!("starting the exec: {}", e.message())))
            }
            Ok(_) => {
                let wait = WaitRequest {
                    container_id: self.id.clone(),
                    exec_id: exec_id.clone(),
                };
                let waited =
                    tokio::time::timeout(timeout, self.ctrd.tasks().wait(self.ctrd.req(wait)))
                        .await;
                let code = match waited {
                    Ok(Ok(resp)) => Ok(resp.into_inner().exit_status as i32),
                    Ok(Err(e)) => Err(fail(format!("waiting for the exec: {}", e.message()))),
                    Err(_) => {
                        let kill = KillRequest {
                            container_id: self.id.clone(),
                            exec_id: exec_id.clone(),
                            signal: Signal::SIGKILL as u32,
                            all: false,
                        };
                        let _ = self.ctrd.tasks().kill(self.ctrd.req(kill)).await;
                        Err(fail(format!(
                            "command timed out after {}s",
                            timeout.as_secs_f64()
                        )))
                    }
                };
                exited.cancel();
                code
            }
        };
        if let Some(feeder) = feeder {
            feeder.abort();
        }
        let stdout = out.await.unwrap_or_default();
        let stderr = err.await.unwrap_or_default();
        let _ = self
            .ctrd
            .tasks()
            .delete_process(self.ctrd.req(DeleteProcessRequest {
                container_id: self.id.clone(),
                exec_id,
            }))
            .await;
        cleanup();
        Ok(ExecOutput {
            exit_code: code?,
            stdout,
            stderr,
        })
    }
}

impl Container for OciContainer {
    fn id(&self) -> &str {
        &self.id
    }

    fn started_at(&self) -> SystemTime {
        self.started_at
    }

    fn wait(&self) -> BoxFuture<'_, ExitStatus> {
        Box::pin(self.wait_exit())
    }

    fn stop(&self, grace: Duration) -> BoxFuture<'_, ExitStatus> {
        Box::pin(async move {
            let done = self.exit.borrow().clone();
            if let Some(s) = done {
                return s;
            }
            self.kill(Signal::SIGTERM, false).await;
            match tokio::time::timeout(grace, self.wait_exit()).await {
                Ok(s) => s,
                Err(_) => {
                    self.kill(Signal::SIGKILL, true).await;
                    self.wait_exit().await
                }
            }
        })
    }

    fn exec_with_stdin(
        &self,
        command: Vec<String>,
        stdin: Vec<u8>,
        timeout: Duration,
    ) -> BoxFuture<'_, Result<ExecOutput, RuntimeError>> {
        Box::pin(self.exec_inner(command, stdin, timeout))
    }

    fn usage(&self) -> Usage {
        self.cgroups.usage(&self.cgroups_path)
    }
}
