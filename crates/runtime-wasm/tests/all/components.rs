//! WASI 0.2 components: a command made from a preview1 module with the command adapter, and
//! a `wasi:http/proxy` handler componentized in the test.

use std::path::PathBuf;
use std::time::Duration;

use wasmkube_kubelet::runtime::{PullPolicy, Runtime, RuntimeError};

use crate::harness::{free_port, log_lines, module, node, pod, port};

/// Componentizes a preview1 core module with the wasmtime command adapter.
pub fn command_component(wat: &str) -> Vec<u8> {
    let core = wat::parse_str(wat).expect("wat");
    wit_component::ComponentEncoder::default()
        .module(&core)
        .expect("module")
        .adapter(
            wasi_preview1_component_adapter_provider::WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME,
            wasi_preview1_component_adapter_provider::WASI_SNAPSHOT_PREVIEW1_COMMAND_ADAPTER,
        )
        .expect("adapter")
        .validate(true)
        .encode()
        .expect("encode")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wasi_p2_command_component_runs() {
    let n = node();
    let component = command_component(&module(
        "",
        "(call $dump_args (i32.const 1)) (call $dump_env (i32.const 2)) (call $proc_exit (i32.const 4))",
    ));
    n.rt.images()
        .import_bytes(&component, "p2cmd", "p2cmd")
        .expect("import");
    let img = n.rt.pull("p2cmd", PullPolicy::Never, &[]).await.unwrap();
    let mut c = n.container("p2", img.clone());
    c.args = vec!["a".into()];
    c.env = vec![("K".into(), "v".into())];
    let s = n.run(c).await;
    // The preview1 adapter (wasmtime 48's, like every release so far) implements proc_exit
    // with `exit(result)`, not `exit-with-code`, so any non-zero code becomes error, which
    // is exit code 1. Components calling exit-with-code themselves keep theirs (below).
    assert_eq!((s.exit_code, s.reason.as_str()), (1, "Error"), "{s:?}");
    assert_eq!(log_lines(&n.log_path("p2"), "stdout"), vec!["p2", "a"]);
    assert_eq!(log_lines(&n.log_path("p2"), "stderr"), vec!["K=v"]);

    // A command component declaring ports can't serve HTTP.
    let mut c = n.container("p2web", img);
    c.ports = vec![port(free_port())];
    assert!(n.rt.start(&pod(), c).await.is_err());
}

/// The WIT of `wasi:http` that wasmtime-wasi-http 48 ships, from cargo's registry sources.
fn wasi_http_wit() -> Option<PathBuf> {
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))?;
    std::fs::read_dir(home.join("registry").join("src"))
        .ok()?
        .flatten()
        .map(|d| d.path().join("wasmtime-wasi-http-48.0.8").join("wit"))
        .find(|p| p.join("deps").join("http.wit").is_file())
}

/// A `wasi:http/incoming-handler` written directly against the canonical ABI: answers 200
/// with header `x-guest: wat` and body `hello from a component\n`.
const PROXY_WAT: &str = r#"
(module
  (import "wasi:http/types@0.2.12" "[constructor]fields" (func $fields_new (result i32)))
  (import "wasi:http/types@0.2.12" "[method]fields.append" (func $fields_append (param i32 i32 i32 i32 i32 i32)))
  (import "wasi:http/types@0.2.12" "[constructor]outgoing-response" (func $response_new (param i32) (result i32)))
  (import "wasi:http/types@0.2.12" "[method]outgoing-response.body" (func $response_body (param i32 i32)))
  (import "wasi:http/types@0.2.12" "[method]outgoing-body.write" (func $body_write (param i32 i32)))
  (import "wasi:http/types@0.2.12" "[static]outgoing-body.finish" (func $body_finish (param i32 i32 i32 i32)))
  (import "wasi:http/types@0.2.12" "[static]response-outparam.set" (func $outparam_set (param i32 i32 i32 i32 i64 i32 i32 i32 i32)))
  (import "wasi:http/types@0.2.12" "[resource-drop]incoming-request" (func $drop_request (param i32)))
  (import "wasi:io/streams@0.2.12" "[method]output-stream.blocking-write-and-flush" (func $write_flush (param i32 i32 i32 i32)))
  (import "wasi:io/streams@0.2.12" "[resource-drop]output-stream" (func $drop_stream (param i32)))
  (memory (export "memory") 1)
  (global $heap (mut i32) (i32.const 4096))
  (data (i32.const 100) "x-guest")
  (data (i32.const 120) "wat")
  (data (i32.const 200) "hello from a component\n")
  (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32)
    (local $p i32)
    (local.set $p (i32.and (i32.add (global.get $heap) (i32.const 7)) (i32.const -8)))
    (global.set $heap (i32.add (local.get $p) (local.get 3)))
    (local.get $p))
  (func (export "wasi:http/incoming-handler@0.2.12#handle") (param $req i32) (param $out i32)
    (local $headers i32) (local $resp i32) (local $body i32) (local $stream i32)
    (call $drop_request (local.get $req))
    (local.set $headers (call $fields_new))
    (call $fields_append (local.get $headers) (i32.const 100) (i32.const 7) (i32.const 120) (i32.const 3) (i32.const 16))
    (local.set $resp (call $response_new (local.get $headers)))
    (call $response_body (local.get $resp) (i32.const 16))
    (local.set $body (i32.load (i32.const 20)))
    (call $body_write (local.get $body) (i32.const 16))
    (local.set $stream (i32.load (i32.const 20)))
    (call $outparam_set (local.get $out) (i32.const 0) (local.get $resp) (i32.const 0) (i64.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0))
    (call $write_flush (local.get $stream) (i32.const 200) (i32.const 23) (i32.const 16))
    (call $drop_stream (local.get $stream))
    (call $body_finish (local.get $body) (i32.const 0) (i32.const 0) (i32.const 16)))
)
"#;

fn proxy_component(wit: &std::path::Path) -> Vec<u8> {
    let mut resolve = wit_parser::Resolve::default();
    // The directory's own package includes the proxy world; deps/ come along.
    resolve.push_dir(wit).expect("wit");
    let http = resolve
        .packages
        .iter()
        .find(|(_, p)| p.name.namespace == "wasi" && p.name.name == "http")
        .map(|(id, _)| id)
        .expect("wasi:http package");
    let world = resolve
        .select_world(&[http], Some("proxy"))
        .expect("proxy world");
    let mut core = wat::parse_str(PROXY_WAT).expect("wat");
    wit_component::embed_component_metadata(
        &mut core,
        &resolve,
        world,
        wit_component::StringEncoding::UTF8,
    )
    .expect("embed");
    wit_component::ComponentEncoder::default()
        .module(&core)
        .expect("module")
        .validate(true)
        .encode()
        .expect("encode")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wasi_http_proxy_component_serves_requests() {
    let n = node();
    let from_wat = wasi_http_wit();
    let component = if let Some(wit) = &from_wat {
        proxy_component(wit)
    } else {
        let built = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../wasm-examples/build/hello-http-component.wasm");
        match std::fs::read(&built) {
            Ok(b) => b,
            Err(_) => {
                eprintln!(
                    "SKIPPED a_wasi_http_proxy_component_serves_requests: neither the wasi:http WIT in cargo's registry sources nor {} exist",
                    built.display()
                );
                return;
            }
        }
    };
    n.rt.images()
        .import_bytes(&component, "proxy", "proxy")
        .expect("import");
    let img = n.rt.pull("proxy", PullPolicy::Never, &[]).await.unwrap();
    let p = free_port();
    let mut c = n.container("proxy", img);
    c.ports = vec![port(p)];
    let web = n.rt.start(&pod(), c).await.expect("start");
    let client = reqwest::Client::new();
    for _ in 0..3 {
        let resp = client
            .get(format!("http://127.0.0.1:{p}/x"))
            .send()
            .await
            .expect("request");
        assert_eq!(resp.status(), 200);
        if from_wat.is_some() {
            assert_eq!(resp.headers()["x-guest"], "wat");
            assert_eq!(resp.text().await.unwrap(), "hello from a component\n");
        }
    }
    // A proxy-only component has no command entry point to exec.
    assert!(matches!(
        web.exec(vec!["x".into()], Duration::from_secs(1)).await,
        Err(RuntimeError::Unsupported("exec"))
    ));
    let s = web.stop(Duration::from_secs(2)).await;
    assert_eq!(s.exit_code, 0, "{s:?}");
}

/// The part of `wasi:cli` a command that exits with a code needs. The host links the whole
/// interface; a component may import a subset of it.
const EXIT_WIT: &str = r#"
package wasi:cli@0.2.12;
interface exit {
  exit: func(status: result);
  exit-with-code: func(status-code: u8);
}
interface run {
  run: func() -> result;
}
world exiter {
  import exit;
  export run;
}
"#;

/// A command component whose `run` calls `wasi:cli/exit.exit-with-code(code)`.
fn exit_with_code_component(code: u8) -> Vec<u8> {
    let mut resolve = wit_parser::Resolve::default();
    let pkg = resolve.push_str("exit.wit", EXIT_WIT).expect("wit");
    let world = resolve.select_world(&[pkg], Some("exiter")).expect("world");
    let mut core = wat::parse_str(format!(
        r#"(module
          (import "wasi:cli/exit@0.2.12" "exit-with-code" (func $exit (param i32)))
          (func (export "wasi:cli/run@0.2.12#run") (result i32)
            (call $exit (i32.const {code}))
            (i32.const 0)))"#
    ))
    .expect("wat");
    wit_component::embed_component_metadata(
        &mut core,
        &resolve,
        world,
        wit_component::StringEncoding::UTF8,
    )
    .expect("embed");
    wit_component::ComponentEncoder::default()
        .module(&core)
        .expect("module")
        .validate(true)
        .encode()
        .expect("encode")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_component_keeps_its_exit_with_code_status() {
    let n = node();
    for code in [3u8, 0, 255] {
        let name = format!("exit{code}");
        n.rt.images()
            .import_bytes(&exit_with_code_component(code), &name, &name)
            .expect("import");
        let img = n.rt.pull(&name, PullPolicy::Never, &[]).await.unwrap();
        let s = n.run(n.container(&name, img)).await;
        assert_eq!(s.exit_code, i32::from(code), "{s:?}");
    }
}
