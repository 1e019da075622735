//! [`WasmContainer`]: what the kubelet holds for a started container, and how a guest's end
//! becomes an `ExitStatus`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use futures::future::BoxFuture;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use wasmkube_kubelet::runtime::{Container, ExecOutput, ExitStatus, Mount, RuntimeError, Usage};
use wasmtime_wasi::{FsPerms, WasiCtxBuilder};

use crate::exec::ExecContext;
use crate::guest::{Interrupt, OutboundPolicy, UsageCounters, find_interrupt};

/// Exit code Kubernetes reports for a container killed by SIGKILL (128 + 9), used for
/// guests the runtime interrupts and for out-of-memory kills.
pub(crate) const KILLED_EXIT_CODE: i32 = 137;

/// Longest `message` kept in an `ExitStatus` (a trap's backtrace can be long).
const MAX_MESSAGE: usize = 4096;

/// How the runtime tells a container's tasks to stop.
pub(crate) struct Control {
    /// Read by the epoch callback of every store of the container.
    pub(crate) kill_flag: Arc<AtomicBool>,
    /// Wakes tasks whose guest is blocked in a host call (where no epoch check happens).
    pub(crate) kill: CancellationToken,
    /// HTTP containers: stop accepting connections and let in-flight requests finish.
    pub(crate) shutdown: CancellationToken,
}

impl Control {
    pub(crate) fn new() -> Arc<Control> {
        Arc::new(Control {
            kill_flag: Arc::new(AtomicBool::new(false)),
            kill: CancellationToken::new(),
            shutdown: CancellationToken::new(),
        })
    }

    pub(crate) fn kill(&self) {
        self.kill_flag.store(true, Ordering::Relaxed);
        self.shutdown.cancel();
        self.kill.cancel();
    }
}

/// Whether `stop` interrupts at once (a command can't be asked to exit) or first drains.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StopMode {
    Interrupt,
    Drain,
}

/// A started Wasm container.
pub struct WasmContainer {
    id: String,
    started_at: SystemTime,
    status: watch::Receiver<Option<ExitStatus>>,
    control: Arc<Control>,
    usage: Arc<UsageCounters>,
    stop_mode: StopMode,
    /// Present when the image can run as a command (see [`ExecContext::supported`]).
    exec: Option<Arc<ExecContext>>,
}

impl WasmContainer {
    pub(crate) fn new(
        started_at: SystemTime,
        status: watch::Receiver<Option<ExitStatus>>,
        control: Arc<Control>,
        usage: Arc<UsageCounters>,
        stop_mode: StopMode,
    ) -> WasmContainer {
        WasmContainer {
            id: new_id(),
            started_at,
            status,
            control,
            usage,
            stop_mode,
            exec: None,
        }
    }

    /// Lets `exec` run commands from this container's image, if it can run as a command.
    pub(crate) fn with_exec(mut self, ctx: ExecContext) -> WasmContainer {
        if ExecContext::supported(&ctx.prepared) {
            self.exec = Some(Arc::new(ctx));
        }
        self
    }

    /// The exit status if the container has ended.
    pub fn status(&self) -> Option<ExitStatus> {
        self.status.borrow().clone()
    }

    async fn wait_exit(&self) -> ExitStatus {
        let mut rx = self.status.clone();
        let result = rx.wait_for(Option::is_some).await.map(|s| s.clone());
        match result {
            Ok(Some(s)) => s,
            // The reporter publishes even when its task panics; this is belt and braces.
            _ => lost_status(self.started_at),
        }
    }
}

fn new_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

fn lost_status(started_at: SystemTime) -> ExitStatus {
    ExitStatus {
        exit_code: 128,
        reason: "Error".into(),
        message: Some("the runtime lost track of the container".into()),
        started_at,
        finished_at: SystemTime::now(),
    }
}

impl Container for WasmContainer {
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
            if let Some(s) = self.status() {
                return s;
            }
            match self.stop_mode {
                // A Wasm guest has no signal handler to run: waiting out the grace period
                // would only delay the inevitable kill.
                StopMode::Interrupt => self.control.kill(),
                StopMode::Drain => {
                    self.control.shutdown.cancel();
                    if tokio::time::timeout(grace, self.wait_exit()).await.is_err() {
                        self.control.kill();
                    }
                }
            }
            self.wait_exit().await
        })
    }

    fn exec_with_stdin(
        &self,
        command: Vec<String>,
        stdin: Vec<u8>,
        timeout: Duration,
    ) -> BoxFuture<'_, Result<ExecOutput, RuntimeError>> {
        Box::pin(async move {
            let Some(ctx) = &self.exec else {
                return Err(RuntimeError::Unsupported("exec"));
            };
            if self.status().is_some() {
                // As with a process container: there is nothing left to exec into.
                return Err(RuntimeError::Io(std::io::Error::other(
                    "the container is not running",
                )));
            }
            crate::exec::exec(ctx, &self.control, &self.usage, command, stdin, timeout).await
        })
    }

    fn usage(&self) -> Usage {
        Usage {
            memory_bytes: self.usage.memory_bytes.load(Ordering::Relaxed),
            cpu_nanos: self.usage.cpu_nanos.load(Ordering::Relaxed),
        }
    }
}

/// Publishes a container's exit status exactly once, even if the task running the
/// container panics (then as an error), so `wait` never hangs.
pub(crate) struct ExitReporter {
    tx: Option<watch::Sender<Option<ExitStatus>>>,
    started_at: SystemTime,
}

impl ExitReporter {
    pub(crate) fn new(
        started_at: SystemTime,
    ) -> (ExitReporter, watch::Receiver<Option<ExitStatus>>) {
        let (tx, rx) = watch::channel(None);
        (
            ExitReporter {
                tx: Some(tx),
                started_at,
            },
            rx,
        )
    }

    pub(crate) fn started_at(&self) -> SystemTime {
        self.started_at
    }

    pub(crate) fn publish(mut self, outcome: Outcome) {
        if let Some(tx) = self.tx.take() {
            let _ = tx.send(Some(outcome.into_status(self.started_at)));
        }
    }
}

impl Drop for ExitReporter {
    fn drop(&mut self) {
        if let Some(tx) = self.tx.take() {
            let _ = tx.send(Some(
                Outcome::Trapped("the runtime task ended unexpectedly".into())
                    .into_status(self.started_at),
            ));
        }
    }
}

/// How a guest's execution ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// It returned or called exit with this code.
    Exited(i32),
    /// It trapped (or failed in a way attributable to the guest).
    Trapped(String),
    /// It exceeded its memory limit.
    OutOfMemory(String),
    /// The runtime stopped it.
    Killed,
    /// It ran past its deadline.
    DeadlineExceeded(String),
}

impl Outcome {
    /// Classifies the result of running a guest. `oom` is the store's limiter flag (a
    /// failed growth may surface as a plain trap, e.g. through `memory_grow_failed`).
    pub(crate) fn of(result: wasmtime::Result<()>, oom: bool) -> Outcome {
        let e = match result {
            Ok(()) => return Outcome::Exited(0),
            Err(e) => e,
        };
        if let Some(exit) = e.downcast_ref::<wasmtime_wasi::I32Exit>() {
            return Outcome::Exited(exit.0);
        }
        match find_interrupt(&e) {
            Some(Interrupt::Killed) => Outcome::Killed,
            Some(i @ Interrupt::OutOfMemory { .. }) => Outcome::OutOfMemory(i.to_string()),
            Some(i @ Interrupt::DeadlineExceeded(_)) => Outcome::DeadlineExceeded(i.to_string()),
            None if oom => Outcome::OutOfMemory(trap_message(&e)),
            None => Outcome::Trapped(trap_message(&e)),
        }
    }

    pub(crate) fn into_status(self, started_at: SystemTime) -> ExitStatus {
        let (exit_code, reason, message) = match self {
            Outcome::Exited(0) => (0, "Completed", None),
            Outcome::Exited(n) => (n, "Error", None),
            Outcome::Trapped(m) => (1, "Error", Some(m)),
            Outcome::OutOfMemory(m) => (KILLED_EXIT_CODE, "OOMKilled", Some(m)),
            Outcome::Killed => (
                KILLED_EXIT_CODE,
                "Error",
                Some("killed: the guest was interrupted when the container was stopped".into()),
            ),
            Outcome::DeadlineExceeded(m) => (KILLED_EXIT_CODE, "DeadlineExceeded", Some(m)),
        };
        ExitStatus {
            exit_code,
            reason: reason.into(),
            message,
            started_at,
            finished_at: SystemTime::now(),
        }
    }
}

/// A trap's cause and, when available, the guest backtrace, bounded in size.
pub(crate) fn trap_message(e: &wasmtime::Error) -> String {
    let mut msg = e.root_cause().to_string();
    if let Some(bt) = e.downcast_ref::<wasmtime::WasmBacktrace>() {
        let bt = bt.to_string();
        if !bt.trim().is_empty() {
            msg.push('\n');
            msg.push_str(bt.trim_end());
        }
    }
    truncate(msg, MAX_MESSAGE)
}

fn truncate(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s.push('…');
    }
    s
}

/// What every instance of a container gets: its argv, env, mounts and limits, resolved from
/// the `ContainerConfig` once.
#[derive(Clone)]
pub(crate) struct GuestSpec {
    pub(crate) argv: Vec<String>,
    pub(crate) env: Vec<(String, String)>,
    pub(crate) cwd: Option<String>,
    pub(crate) mounts: Vec<Mount>,
    pub(crate) memory_limit: Option<u64>,
    pub(crate) outbound: OutboundPolicy,
}

impl GuestSpec {
    /// A WASI context builder with the spec applied: no host environment, no sockets, only
    /// the container's mounts as preopened directories, read-only ones without write access.
    /// `env` overrides the container's own variables of the same name.
    pub(crate) fn wasi_builder(
        &self,
        extra_env: &[(String, String)],
    ) -> std::io::Result<WasiCtxBuilder> {
        let mut b = WasiCtxBuilder::new();
        b.args(&self.argv);
        for (k, v) in &self.env {
            if !extra_env.iter().any(|(ek, _)| ek == k) {
                b.env(k, v);
            }
        }
        for (k, v) in extra_env {
            b.env(k, v);
        }
        if let Some(cwd) = &self.cwd {
            b.initial_cwd(cwd);
        }
        b.allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false);
        for m in &self.mounts {
            let perms = if m.read_only {
                FsPerms::ReadOnly
            } else {
                FsPerms::ReadWrite
            };
            b.preopened_dir(&m.host_path, &m.container_path, perms)
                .map_err(|e| {
                    std::io::Error::other(format!(
                        "mounting {} at {}: {e:#}",
                        m.host_path.display(),
                        m.container_path
                    ))
                })?;
        }
        Ok(b)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;

    #[test]
    fn outcomes_map_to_kubernetes_statuses() {
        let t = SystemTime::now();
        let s = Outcome::Exited(0).into_status(t);
        assert_eq!((s.exit_code, s.reason.as_str()), (0, "Completed"));
        let s = Outcome::Exited(3).into_status(t);
        assert_eq!((s.exit_code, s.reason.as_str()), (3, "Error"));
        let s = Outcome::OutOfMemory("x".into()).into_status(t);
        assert_eq!((s.exit_code, s.reason.as_str()), (137, "OOMKilled"));
        let s = Outcome::Killed.into_status(t);
        assert_eq!((s.exit_code, s.reason.as_str()), (137, "Error"));
        let e = wasmtime::Error::new(wasmtime_wasi::I32Exit(7));
        assert_eq!(Outcome::of(Err(e), false), Outcome::Exited(7));
        let e = wasmtime::Error::new(Interrupt::Killed);
        assert_eq!(Outcome::of(Err(e), false), Outcome::Killed);
        assert_eq!(truncate("ééé".into(), 3), "é…");
    }
}
