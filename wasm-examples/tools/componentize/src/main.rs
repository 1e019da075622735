//! `componentize --adapter proxy|command|reactor IN.wasm OUT.wasm`
//!
//! Turns a WASI preview1 core module into a WASI 0.2 component: the adapter
//! (from `wasi-preview1-component-adapter-provider`, matching wasmtime 48)
//! implements the module's `wasi_snapshot_preview1` imports on top of WASI 0.2,
//! and `wit-component` reads the module's `component-type` custom section (the
//! one wit-bindgen emits) to lift its exports.
//!
//! - `command`: for a `_start` module; the component exports `wasi:cli/run`.
//! - `proxy`:   for a reactor exporting `wasi:http/incoming-handler`; the
//!   adapter then imports only what the `wasi:http/proxy` world has.
//! - `reactor`: for any other reactor.

use std::process::ExitCode;

use wasi_preview1_component_adapter_provider::{
    WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME, WASI_SNAPSHOT_PREVIEW1_COMMAND_ADAPTER,
    WASI_SNAPSHOT_PREVIEW1_PROXY_ADAPTER, WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
};
use wit_component::ComponentEncoder;

const USAGE: &str = "usage: componentize --adapter proxy|command|reactor IN.wasm OUT.wasm";

struct Args {
    adapter: &'static [u8],
    input: String,
    output: String,
}

fn parse_args() -> Result<Args, String> {
    let mut adapter = None;
    let mut paths = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--adapter" => {
                let kind = args.next().ok_or("--adapter needs a value")?;
                adapter = Some(match kind.as_str() {
                    "proxy" => WASI_SNAPSHOT_PREVIEW1_PROXY_ADAPTER,
                    "command" => WASI_SNAPSHOT_PREVIEW1_COMMAND_ADAPTER,
                    "reactor" => WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
                    other => return Err(format!("unknown adapter {other:?}")),
                });
            }
            "-h" | "--help" => return Err(String::new()),
            flag if flag.starts_with('-') => return Err(format!("unknown flag {flag:?}")),
            _ => paths.push(arg),
        }
    }
    let adapter = adapter.ok_or("--adapter is required")?;
    let [input, output]: [String; 2] = paths
        .try_into()
        .map_err(|_| "expected exactly two paths: IN.wasm OUT.wasm".to_string())?;
    Ok(Args { adapter, input, output })
}

fn run(args: &Args) -> anyhow::Result<()> {
    use anyhow::Context;
    let module =
        std::fs::read(&args.input).with_context(|| format!("cannot read {}", args.input))?;
    let component = ComponentEncoder::default()
        .validate(true)
        .module(&module)
        .with_context(|| format!("{} is not a usable core module", args.input))?
        .adapter(WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME, args.adapter)
        .context("cannot load the adapter")?
        .encode()
        .with_context(|| format!("cannot componentize {}", args.input))?;
    // Write then rename, so an interrupted run never leaves a half-written
    // output that build.sh would take as up to date.
    let tmp = format!("{}.tmp", args.output);
    std::fs::write(&tmp, &component).with_context(|| format!("cannot write {tmp}"))?;
    std::fs::rename(&tmp, &args.output)
        .with_context(|| format!("cannot rename {tmp} to {}", args.output))?;
    Ok(())
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(msg) => {
            if !msg.is_empty() {
                eprintln!("componentize: {msg}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("componentize: {err:#}");
            ExitCode::FAILURE
        }
    }
}
