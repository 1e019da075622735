//! `wasmkube`: one binary for the whole cluster.
//!
//! - `wasmkube server`: API server, embedded store, the cluster's own components and a node.
//! - `wasmkube agent`: one more node joined to a server.
//! - `wasmkube <verb>`: the command-line client (apply, get, describe, delete, …), speaking the
//!   Kubernetes API through the same kubeconfig kubectl uses.
//!
//! # Layout
//! - `server.rs`: the `server` subcommand (flags, data directory, start-up and shutdown).
//! - `agent.rs`: the `agent` subcommand (joining a server with a join token).
//! - `node.rs`: the node both run: flags, the Wasm runtime, the kubelet.
//! - `proxy.rs`: the service proxy, Ingress and cluster DNS both run (crates/proxy).
//! - `snapshot.rs`: the `snapshot save|restore` subcommands and the server's snapshot route.
//! - `bench/`: the `bench` subcommand (figures as ratios against same-run references).
//! - `cli/`: one file per client verb, plus shared kubeconfig and output helpers.

mod agent;
mod bench;
mod cli;
mod node;
mod proxy;
mod server;
mod snapshot;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "wasmkube",
    version,
    about = "A Kubernetes-compatible orchestrator for WebAssembly and containers"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a whole cluster on this machine: API server, store, and the cluster components.
    // Boxed: the server's flags dwarf every other command's.
    Server(Box<server::ServerArgs>),
    /// Run one more node, joined to a server.
    Agent(agent::AgentArgs),
    /// Measure performance against references taken in the same run.
    Bench(bench::BenchArgs),
    /// Save a snapshot of a running cluster's state, or restore one into a new store.
    Snapshot(snapshot::SnapshotArgs),
    #[command(flatten)]
    Client(cli::ClientCommand),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Server(args) => server::run(*args).await,
            Command::Agent(args) => agent::run(args).await,
            Command::Bench(args) => bench::run(args).await,
            Command::Snapshot(args) => snapshot::run(args).await,
            Command::Client(cmd) => cli::run(cmd).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
