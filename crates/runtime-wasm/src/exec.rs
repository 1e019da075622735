//! `exec` in a running container (exec probes, `kubectl exec`): a Wasm guest has no
//! processes to join, so an exec runs a fresh instance of the container's own image as a
//! command, with the exec's argv and the container's env, mounts, working directory and
//! limits, its stdout and stderr captured (bounded) rather than logged.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use wasmkube_kubelet::runtime::{ExecOutput, RuntimeError};
use wasmtime::Store;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};
use wasmtime_wasi_http::WasiHttpCtx;

use crate::compile::Prepared;
use crate::container::{Control, GuestSpec, KILLED_EXIT_CODE, Outcome};
use crate::guest::{
    CpuBudget, EpochControl, MemoryLimiter, P1Host, P2Host, UsageCounters, install_epoch_control,
};

/// Most bytes of stdout, and of stderr, an exec keeps. The rest is discarded while the
/// guest's writes still succeed: a chatty command must not fail because of its own output,
/// and a probe only needs the exit code.
pub(crate) const MAX_EXEC_OUTPUT: usize = 1 << 20;

/// What a container keeps to run execs: its image, prepared, and how its guests are set up.
pub(crate) struct ExecContext {
    pub(crate) engine: wasmtime::Engine,
    pub(crate) prepared: Arc<Prepared>,
    pub(crate) spec: GuestSpec,
    pub(crate) cpu_limit_millis: Option<u64>,
    pub(crate) tick: Duration,
}

impl ExecContext {
    /// Whether the image can run as a command at all: a preview1 module with `_start`, or a
    /// component exporting `wasi:cli/run`. A `wasi:http/proxy`-only component has no entry
    /// point a command line could call.
    pub(crate) fn supported(prepared: &Prepared) -> bool {
        match prepared {
            Prepared::Core(core) => core.has_start,
            Prepared::Component { command, .. } => command.is_some(),
        }
    }
}

/// Runs `argv` as a new instance of the container's image, `stdin` its standard input. The exec shares the container's
/// usage counters (its memory and CPU show in the container's usage, as a process exec'd
/// into a cgroup does) and is interrupted when the container is stopped. Exceeding `timeout`
/// is an error of kind `TimedOut`, which the kubelet reports as a probe timeout.
pub(crate) async fn exec(
    ctx: &ExecContext,
    control: &Arc<Control>,
    usage: &Arc<UsageCounters>,
    argv: Vec<String>,
    stdin: Vec<u8>,
    timeout: Duration,
) -> Result<ExecOutput, RuntimeError> {
    if argv.is_empty() {
        return Err(RuntimeError::Io(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "exec needs a command",
        )));
    }
    if !ExecContext::supported(&ctx.prepared) {
        return Err(RuntimeError::Unsupported("exec"));
    }
    let spec = GuestSpec {
        argv,
        ..ctx.spec.clone()
    };
    let stdout = Capture::new(MAX_EXEC_OUTPUT);
    let stderr = Capture::new(MAX_EXEC_OUTPUT);
    let mut builder = spec.wasi_builder(&[]).map_err(RuntimeError::Io)?;
    builder
        .stdin(wasmtime_wasi::p2::pipe::MemoryInputPipe::new(Bytes::from(
            stdin,
        )))
        .stdout(stdout.clone())
        .stderr(stderr.clone());
    let limiter = MemoryLimiter::new(spec.memory_limit, usage.clone());
    let started = Instant::now();
    let epoch = EpochControl {
        budget: Arc::new(CpuBudget::new(ctx.cpu_limit_millis, usage.clone())),
        kill: control.kill_flag.clone(),
        deadline: Some((started + timeout, timeout)),
        tick: ctx.tick,
    };
    let instantiate_err =
        |e: wasmtime::Error| RuntimeError::Io(std::io::Error::other(format!("{e:#}")));

    // The epoch deadline ends a guest that computes; the timer ends one blocked in a host
    // call (sleeping, waiting on a stream), where no epoch check happens.
    let outcome = match &*ctx.prepared {
        Prepared::Core(core) => {
            let mut store = Store::new(
                &ctx.engine,
                P1Host {
                    wasi: builder.build_p1(),
                    limiter,
                },
            );
            store.limiter(|h| &mut h.limiter);
            install_epoch_control(&mut store, epoch);
            let instance = core
                .pre
                .instantiate_async(&mut store)
                .await
                .map_err(instantiate_err)?;
            let start = instance
                .get_typed_func::<(), ()>(&mut store, "_start")
                .map_err(instantiate_err)?;
            tokio::select! {
                biased;
                _ = control.kill.cancelled() => Outcome::Killed,
                _ = tokio::time::sleep(timeout) => Outcome::DeadlineExceeded(String::new()),
                r = start.call_async(&mut store, ()) => Outcome::of(r, store.data().limiter.oom),
            }
        }
        Prepared::Component {
            command: Some(pre), ..
        } => {
            let host = P2Host {
                wasi: builder.build(),
                table: ResourceTable::new(),
                http: WasiHttpCtx::new(),
                outbound: spec.outbound.clone(),
                limiter,
            };
            let mut store = Store::new(&ctx.engine, host);
            store.limiter(|h| &mut h.limiter);
            install_epoch_control(&mut store, epoch);
            let command = pre
                .instantiate_async(&mut store)
                .await
                .map_err(instantiate_err)?;
            tokio::select! {
                biased;
                _ = control.kill.cancelled() => Outcome::Killed,
                _ = tokio::time::sleep(timeout) => Outcome::DeadlineExceeded(String::new()),
                r = command.wasi_cli_run().call_run(&mut store) => match r {
                    Ok(Ok(())) => Outcome::Exited(0),
                    Ok(Err(())) => Outcome::Exited(1),
                    Err(e) => Outcome::of(Err(e), store.data().limiter.oom),
                },
            }
        }
        Prepared::Component { command: None, .. } => return Err(RuntimeError::Unsupported("exec")),
    };
    let exit_code = match outcome {
        Outcome::Exited(code) => code,
        Outcome::DeadlineExceeded(_) => {
            return Err(RuntimeError::Io(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("exec timed out after {timeout:?}"),
            )));
        }
        Outcome::Trapped(m) => {
            stderr.append_line(&format!("wasm trap: {}", m.lines().next().unwrap_or("")));
            1
        }
        Outcome::OutOfMemory(m) => {
            stderr.append_line(&m);
            KILLED_EXIT_CODE
        }
        Outcome::Killed => {
            stderr.append_line("killed: the container was stopped");
            KILLED_EXIT_CODE
        }
    };
    Ok(ExecOutput {
        exit_code,
        stdout: stdout.take(),
        stderr: stderr.take(),
    })
}

/// A bounded in-memory stdout/stderr. Unlike wasmtime's `MemoryOutputPipe`, which traps the
/// guest once full, it keeps the first `limit` bytes and discards the rest.
#[derive(Clone)]
struct Capture {
    buf: Arc<Mutex<Vec<u8>>>,
    limit: usize,
}

impl Capture {
    fn new(limit: usize) -> Capture {
        Capture {
            buf: Arc::new(Mutex::new(Vec::new())),
            limit,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<u8>> {
        self.buf.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn push(&self, bytes: &[u8]) {
        let mut buf = self.lock();
        let room = self.limit.saturating_sub(buf.len());
        buf.extend_from_slice(&bytes[..bytes.len().min(room)]);
    }

    /// Appends a runtime message on a line of its own.
    fn append_line(&self, line: &str) {
        let needs_newline = self.lock().last().is_some_and(|b| *b != b'\n');
        if needs_newline {
            self.push(b"\n");
        }
        self.push(line.as_bytes());
        self.push(b"\n");
    }

    fn take(&self) -> Vec<u8> {
        std::mem::take(&mut *self.lock())
    }
}

impl IsTerminal for Capture {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for Capture {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for Capture {
    async fn ready(&mut self) {}
}

impl OutputStream for Capture {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.push(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(64 * 1024)
    }
}

// Used by WASIp3 stdio only (not linked here).
impl tokio::io::AsyncWrite for Capture {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        self.push(buf);
        std::task::Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capture_is_bounded() {
        let c = Capture::new(5);
        c.push(b"abc");
        c.push(b"defg");
        c.append_line("x");
        assert_eq!(c.take(), b"abcde");
        let c = Capture::new(100);
        c.push(b"out");
        c.append_line("trap");
        assert_eq!(c.take(), b"out\ntrap\n");
    }
}
