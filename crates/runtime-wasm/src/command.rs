//! Command containers: a guest that runs from `_start` (preview1) or `wasi:cli/run` (WASI
//! 0.2) to its exit, like a process.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use wasmtime::Store;
use wasmtime::component::ResourceTable;
use wasmtime_wasi_http::WasiHttpCtx;

use crate::compile::Prepared;
use crate::container::{Control, ExitReporter, GuestSpec, Outcome, StopMode, WasmContainer};
use crate::guest::{
    CpuBudget, EpochControl, MemoryLimiter, P1Host, P2Host, UsageCounters, install_epoch_control,
};
use crate::logs::{LogPipe, LogTx, Stream};

/// Why a command could not start.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CommandError {
    #[error("the module exports no `_start` function")]
    NoStart,
    #[error(
        "the component does not export wasi:cli/run (a wasi:http/proxy component is served only when the container declares a port)"
    )]
    NotCommand,
    #[error("setting up the guest: {0}")]
    Setup(#[source] std::io::Error),
    #[error("instantiating: {0}")]
    Instantiate(String),
}

/// What a command needs from the runtime.
pub(crate) struct CommandParams {
    pub(crate) spec: GuestSpec,
    pub(crate) cpu_limit_millis: Option<u64>,
    pub(crate) tick: Duration,
    pub(crate) log_tx: LogTx,
    pub(crate) log_writer: tokio::task::JoinHandle<()>,
}

/// Instantiates the command and starts running it on its own task. Instantiation errors
/// (missing imports, memory limit below the module's minimum, a full pool) are returned here
/// rather than reported as an exit, so the kubelet shows them as a failed create.
pub(crate) async fn start(
    engine: &wasmtime::Engine,
    prepared: Arc<Prepared>,
    p: CommandParams,
) -> Result<WasmContainer, CommandError> {
    let usage = Arc::new(UsageCounters::default());
    let control = Control::new();
    let budget = Arc::new(CpuBudget::new(p.cpu_limit_millis, usage.clone()));
    let stdout = LogPipe::new(Stream::Stdout, p.log_tx.clone());
    let stderr = LogPipe::new(Stream::Stderr, p.log_tx);
    let mut builder = p.spec.wasi_builder(&[]).map_err(CommandError::Setup)?;
    builder
        .stdout(stdout.wasi_stream())
        .stderr(stderr.wasi_stream());
    let limiter = MemoryLimiter::new(p.spec.memory_limit, usage.clone());
    let epoch = EpochControl {
        budget,
        kill: control.kill_flag.clone(),
        deadline: None,
        tick: p.tick,
    };
    let started_at = SystemTime::now();
    let (reporter, status) = ExitReporter::new(started_at);
    let pipes = (stdout, stderr, p.log_writer);

    match &*prepared {
        Prepared::Core(core) => {
            if !core.has_start {
                return Err(CommandError::NoStart);
            }
            let mut store = Store::new(
                engine,
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
                .map_err(|e| CommandError::Instantiate(format!("{e:#}")))?;
            let start = instance
                .get_typed_func::<(), ()>(&mut store, "_start")
                .map_err(|e| CommandError::Instantiate(format!("{e:#}")))?;
            let control2 = control.clone();
            tokio::spawn(async move {
                let outcome = tokio::select! {
                    biased;
                    _ = control2.kill.cancelled() => Outcome::Killed,
                    r = start.call_async(&mut store, ()) => Outcome::of(r, store.data().limiter.oom),
                };
                // Free the instance slot before anything that may wait.
                drop(store);
                finish(reporter, outcome, pipes).await;
            });
        }
        Prepared::Component {
            command: Some(pre), ..
        } => {
            let host = P2Host {
                wasi: builder.build(),
                table: ResourceTable::new(),
                http: WasiHttpCtx::new(),
                outbound: p.spec.outbound.clone(),
                limiter,
            };
            let mut store = Store::new(engine, host);
            store.limiter(|h| &mut h.limiter);
            install_epoch_control(&mut store, epoch);
            let command = pre
                .instantiate_async(&mut store)
                .await
                .map_err(|e| CommandError::Instantiate(format!("{e:#}")))?;
            let control2 = control.clone();
            tokio::spawn(async move {
                let outcome = tokio::select! {
                    biased;
                    _ = control2.kill.cancelled() => Outcome::Killed,
                    r = command.wasi_cli_run().call_run(&mut store) => match r {
                        Ok(Ok(())) => Outcome::Exited(0),
                        Ok(Err(())) => Outcome::Exited(1),
                        Err(e) => Outcome::of(Err(e), store.data().limiter.oom),
                    },
                };
                drop(store);
                finish(reporter, outcome, pipes).await;
            });
        }
        Prepared::Component { command: None, .. } => return Err(CommandError::NotCommand),
    }
    Ok(WasmContainer::new(
        started_at,
        status,
        control,
        usage,
        StopMode::Interrupt,
    ))
}

/// Flushes the logs (so they are complete when `wait` returns) and publishes the status.
async fn finish(
    reporter: ExitReporter,
    outcome: Outcome,
    (stdout, stderr, writer): (Arc<LogPipe>, Arc<LogPipe>, tokio::task::JoinHandle<()>),
) {
    match &outcome {
        Outcome::Trapped(m) => {
            stderr.runtime_line(&format!("wasm trap: {}", m.lines().next().unwrap_or("")))
        }
        Outcome::OutOfMemory(m) => stderr.runtime_line(m),
        _ => {}
    }
    stdout.finish().await;
    stderr.finish().await;
    drop((stdout, stderr));
    // A stuck disk must not keep the status from being reported.
    let _ = tokio::time::timeout(Duration::from_secs(10), writer).await;
    tracing::debug!(?outcome, started = ?reporter.started_at(), "wasm command exited");
    reporter.publish(outcome);
}
