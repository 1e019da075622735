//! Shared test helpers: a runtime on a temp dir, WAT guests, container configs, log reading.

#![allow(dead_code)]

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use wasmkube_kubelet::runtime::{
    ContainerConfig, ExitStatus, LogSink, Mount, PodSandbox, Port, PullPolicy, PulledImage,
    Resources, Runtime,
};
use wasmkube_runtime_wasm::{Allocation, PoolConfig, WasmRuntime, WasmRuntimeConfig};

pub struct Node {
    pub dir: tempfile::TempDir,
    pub rt: WasmRuntime,
}

pub fn config(dir: &Path) -> WasmRuntimeConfig {
    let mut c = WasmRuntimeConfig::new(dir.join("data"));
    // Small pools: many test runtimes exist at once, each reserving address space.
    c.allocation = Allocation::Pooling(PoolConfig::small(32));
    c.default_request_timeout = Duration::from_secs(5);
    c
}

pub fn node() -> Node {
    let dir = tempfile::tempdir().expect("tempdir");
    let rt = WasmRuntime::new(config(dir.path())).expect("runtime");
    Node { dir, rt }
}

pub fn pod() -> PodSandbox {
    PodSandbox {
        namespace: "default".into(),
        name: "p".into(),
        uid: "uid-1".into(),
        ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
        hostname: "p".into(),
        network_namespace: None,
    }
}

impl Node {
    /// Imports WAT text as `name` and pulls it (local store, policy Never).
    pub async fn image(&self, name: &str, wat: &str) -> PulledImage {
        self.rt
            .images()
            .import_bytes(wat.as_bytes(), name, name)
            .expect("import");
        self.rt
            .pull(name, PullPolicy::Never, &[])
            .await
            .expect("pull")
    }

    pub fn log_path(&self, container: &str) -> PathBuf {
        self.dir
            .path()
            .join("logs")
            .join(format!("{container}.log"))
    }

    pub fn container(&self, name: &str, image: PulledImage) -> ContainerConfig {
        ContainerConfig {
            name: name.into(),
            image,
            command: vec![],
            args: vec![],
            env: vec![],
            working_dir: None,
            mounts: vec![],
            ports: vec![],
            resources: Resources::default(),
            log: LogSink {
                path: self.log_path(name),
                max_bytes: 10 << 20,
            },
            allowed_outbound_hosts: vec![],
            security: Default::default(),
        }
    }

    pub async fn run(&self, config: ContainerConfig) -> ExitStatus {
        let c = self.rt.start(&pod(), config).await.expect("start");
        tokio::time::timeout(Duration::from_secs(30), c.wait())
            .await
            .expect("container did not exit in time")
    }
}

pub fn port(p: u16) -> Port {
    Port {
        name: None,
        container_port: p,
        protocol: "TCP".into(),
    }
}

pub fn mount(host: &Path, at: &str, read_only: bool) -> Mount {
    Mount {
        host_path: host.to_path_buf(),
        container_path: at.into(),
        read_only,
    }
}

/// CRI log records of a file as (stream, tag, text).
pub fn log_records(path: &Path) -> Vec<(String, String, String)> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .map(|l| {
            let mut it = l.splitn(4, ' ');
            let ts = it.next().unwrap_or("");
            assert!(
                ts.ends_with('Z') && ts.len() == 30,
                "bad timestamp in {l:?}"
            );
            (
                it.next().unwrap_or("").into(),
                it.next().unwrap_or("").into(),
                it.next().unwrap_or("").into(),
            )
        })
        .collect()
}

pub fn log_lines(path: &Path, stream: &str) -> Vec<String> {
    log_records(path)
        .into_iter()
        .filter(|(s, _, _)| s == stream)
        .map(|(_, _, t)| t)
        .collect()
}

/// A free loopback port (bound then released).
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// Waits until `f` holds, up to `timeout`.
pub async fn eventually(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if f() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    f()
}

/// WASI preview1 imports and helpers shared by the WAT guests:
/// `$print(ptr, len)` / `$eprint(ptr, len)` write to stdout / stderr,
/// `$nul_to_nl(ptr, len)` turns NUL separators into newlines.
/// Memory map: 0..64 scratch, 64..1024 data segments, 1024..8192 pointer arrays, 8192.. buffers.
pub const PRELUDE: &str = r#"
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (import "wasi_snapshot_preview1" "args_sizes_get" (func $args_sizes_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_get" (func $args_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_sizes_get" (func $environ_sizes_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_get" (func $environ_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll_oneoff (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_open" (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (memory (export "memory") 2)
  (func $write (param $fd i32) (param $p i32) (param $n i32)
    (i32.store (i32.const 16) (local.get $p))
    (i32.store (i32.const 20) (local.get $n))
    (drop (call $fd_write (local.get $fd) (i32.const 16) (i32.const 1) (i32.const 32))))
  (func $print (param $p i32) (param $n i32) (call $write (i32.const 1) (local.get $p) (local.get $n)))
  (func $eprint (param $p i32) (param $n i32) (call $write (i32.const 2) (local.get $p) (local.get $n)))
  (func $nul_to_nl (param $p i32) (param $n i32)
    (local $i i32)
    (block $done (loop $l
      (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
      (if (i32.eqz (i32.load8_u (i32.add (local.get $p) (local.get $i))))
        (then (i32.store8 (i32.add (local.get $p) (local.get $i)) (i32.const 10))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $l))))
  ;; Writes argv to stdout and the environment to `fd`, one per line.
  (func $dump_args (param $fd i32)
    (drop (call $args_sizes_get (i32.const 0) (i32.const 4)))
    (drop (call $args_get (i32.const 1024) (i32.const 8192)))
    (call $nul_to_nl (i32.const 8192) (i32.load (i32.const 4)))
    (call $write (local.get $fd) (i32.const 8192) (i32.load (i32.const 4))))
  (func $dump_env (param $fd i32)
    (drop (call $environ_sizes_get (i32.const 0) (i32.const 4)))
    (drop (call $environ_get (i32.const 1024) (i32.const 8192)))
    (call $nul_to_nl (i32.const 8192) (i32.load (i32.const 4)))
    (call $write (local.get $fd) (i32.const 8192) (i32.load (i32.const 4))))
"#;

/// A module made of the prelude, `extra` definitions and a `_start` body.
pub fn module(extra: &str, start: &str) -> String {
    format!("(module {PRELUDE} {extra} (func (export \"_start\") {start}))")
}
