//! The image store and the compiled-module cache.

use std::time::{Duration, Instant};

use wasmkube_kubelet::runtime::{PullPolicy, Runtime, RuntimeError};
use wasmkube_runtime_wasm::{ImageStore, WasmRuntime};

use crate::harness::{config, module, node};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_list_resolve_remove() {
    let n = node();
    let store = n.rt.images();
    let wat_file = n.dir.path().join("hello.wat");
    std::fs::write(&wat_file, module("", "")).unwrap();
    let d1 = store.import(&wat_file, "hello").expect("import wat");
    let wasm = wat::parse_str(module("", "nop")).unwrap();
    let wasm_file = n.dir.path().join("other.wasm");
    std::fs::write(&wasm_file, &wasm).unwrap();
    let d2 = store.import(&wasm_file, "other:v2").expect("import wasm");
    assert_ne!(d1, d2);
    assert!(store.blob_path(&d2).is_file());
    assert_eq!(std::fs::read(store.blob_path(&d2)).unwrap(), wasm);
    let names: Vec<String> = store.list().into_iter().map(|i| i.name).collect();
    assert_eq!(names, vec!["hello:latest", "other:v2"]);
    assert_eq!(store.resolve("hello").unwrap().digest, d1);
    assert_eq!(store.resolve(d2.as_str()).unwrap().name, "other:v2");
    assert_eq!(store.resolve(&format!("anything@{d2}")).unwrap().digest, d2);
    assert!(store.resolve("other").is_none());

    // Not wasm at all.
    let bad = n.dir.path().join("bad.bin");
    std::fs::write(&bad, b"\x7fELF\x02\x01\x01\0garbage").unwrap();
    assert!(store.import(&bad, "bad").is_err());

    // pull honours the local store and the policy.
    let pulled =
        n.rt.pull("hello", PullPolicy::IfNotPresent, &[])
            .await
            .expect("pull");
    assert_eq!(pulled.image_id, format!("hello@{d1}"));
    assert!(matches!(
        n.rt.pull("nope:v1", PullPolicy::Never, &[]).await,
        Err(RuntimeError::ImageNeverPull { .. })
    ));
    assert!(n.rt.recognizes("hello:latest").await);

    // The index survives a reopen; remove drops the tag and the unreferenced blob.
    let rt2 = WasmRuntime::new(config(n.dir.path())).unwrap();
    assert_eq!(rt2.images().list().len(), 2);
    let removed = rt2.images().remove("other:v2").expect("remove");
    assert_eq!(removed.digest, d2);
    assert!(!rt2.images().blob_path(&d2).exists());
    assert!(rt2.images().remove("other:v2").is_err());
    assert_eq!(rt2.images().list().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compiled_modules_survive_a_restart() {
    let n = node();
    let img = n.image("cached", &module("", "")).await;
    assert_eq!(n.rt.stats().compilations, 0, "import must not compile");
    n.run(n.container("a", img.clone())).await;
    assert_eq!(n.rt.stats().compilations, 1);
    n.run(n.container("b", img.clone())).await;
    let s = n.rt.stats();
    assert_eq!((s.compilations, s.memory_cache_hits), (1, 1), "{s:?}");

    // A new runtime on the same data dir loads the artifact from disk instead of compiling.
    let rt2 = WasmRuntime::new(config(n.dir.path())).unwrap();
    let c = rt2
        .start(&crate::harness::pod(), n.container("c", img))
        .await
        .expect("start");
    assert_eq!(c.wait().await.exit_code, 0);
    let s = rt2.stats();
    assert_eq!((s.compilations, s.disk_cache_hits), (0, 1), "{s:?}");
}

/// Rough cost of starting a cached command module, against raw wasmtime instantiation of
/// the same module in the same run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_cached_command_start() {
    let n = node();
    let img = n.image("noop", &module("", "")).await;
    n.run(n.container("warm", img.clone())).await;
    const N: u32 = 200;
    let mut start_total = Duration::ZERO;
    let mut samples = Vec::with_capacity(N as usize);
    let t = Instant::now();
    for i in 0..N {
        let mut c = n.container(&format!("c{i}"), img.clone());
        c.log.path = n.dir.path().join("bench.log");
        let s = Instant::now();
        let c = n.rt.start(&crate::harness::pod(), c).await.expect("start");
        start_total += s.elapsed();
        samples.push(s.elapsed());
        c.wait().await;
    }
    let per_run = t.elapsed() / N;
    samples.sort();
    let (p50, p90, min) = (
        samples[samples.len() / 2],
        samples[samples.len() * 9 / 10],
        samples[0],
    );
    let per_start = start_total / N;

    // Reference: InstancePre + WASI context + instantiate + _start, nothing else.
    let engine = n.rt.engine().clone();
    let wasm = wat::parse_str(module("", "")).unwrap();
    let m = wasmtime::Module::new(&engine, &wasm).unwrap();
    let mut linker: wasmtime::Linker<wasmtime_wasi::p1::WasiP1Ctx> = wasmtime::Linker::new(&engine);
    wasmtime_wasi::p1::add_to_linker_async(&mut linker, |t| t).unwrap();
    let pre = linker.instantiate_pre(&m).unwrap();
    let t = Instant::now();
    for _ in 0..N {
        let mut store =
            wasmtime::Store::new(&engine, wasmtime_wasi::WasiCtxBuilder::new().build_p1());
        store.set_epoch_deadline(1_000_000);
        let i = pre.instantiate_async(&mut store).await.unwrap();
        let f = i.get_typed_func::<(), ()>(&mut store, "_start").unwrap();
        f.call_async(&mut store, ()).await.unwrap();
    }
    let raw = t.elapsed() / N;
    eprintln!(
        "cached command: start() mean {per_start:?} (min {min:?}, p50 {p50:?}, p90 {p90:?}), start+run+exit+log flush {per_run:?}; raw wasmtime instantiate+run {raw:?} (p50 start/raw = {:.1}x)",
        p50.as_secs_f64() / raw.as_secs_f64()
    );
    assert_eq!(n.rt.stats().compilations, 1);
}

/// A distinct small module per `i`.
fn numbered(i: usize) -> Vec<u8> {
    wat::parse_str(format!("(module (func (export \"f{i}\")))")).unwrap()
}

#[test]
fn two_stores_on_one_directory_see_each_others_writes() {
    let dir = tempfile::tempdir().unwrap();
    let root = wasmkube_runtime_wasm::image_store_dir(dir.path());
    assert!(root.ends_with("wasm/images"), "{}", root.display());
    // As the node and `wasmkube image` each open the store.
    let a = ImageStore::open(&root).unwrap();
    let b = ImageStore::open(&root).unwrap();

    let d = a.import_bytes(&numbered(0), "one:v1", "one").unwrap();
    assert_eq!(b.resolve("one:v1").unwrap().digest, d);
    // Rewriting a tag is seen too, even within the same second and with the same length.
    let d2 = b.import_bytes(&numbered(1), "one:v1", "one").unwrap();
    assert_eq!(a.resolve("one:v1").unwrap().digest, d2);
    b.remove("one:v1").unwrap();
    assert!(a.resolve("one:v1").is_none());
    assert!(a.list().is_empty());
    assert!(a.remove("one:v1").is_err());

    // Concurrent writers through both stores lose no update.
    std::thread::scope(|s| {
        for (t, store) in [&a, &b].into_iter().enumerate() {
            s.spawn(move || {
                for i in 0..20 {
                    store
                        .import_bytes(&numbered(100 * t + i), &format!("img{t}-{i}"), "x")
                        .unwrap();
                }
            });
        }
    });
    assert_eq!(a.list().len(), 40);
    assert_eq!(b.list().len(), 40);
    assert_eq!(ImageStore::open(&root).unwrap().list(), a.list());

    // A blob tagged twice stays until its last tag goes, whichever store removes it.
    let shared = a.import_bytes(&numbered(999), "s1", "x").unwrap();
    b.import_bytes(&numbered(999), "s2", "x").unwrap();
    a.remove("s1").unwrap();
    assert!(b.has_blob(&shared));
    b.remove("s2").unwrap();
    assert!(!a.has_blob(&shared));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_node_sees_images_imported_by_another_process() {
    let n = node();
    assert!(matches!(
        n.rt.pull("late", PullPolicy::Never, &[]).await,
        Err(RuntimeError::ImageNeverPull { .. })
    ));
    // What `wasmkube image import` does from its own process.
    let cli = ImageStore::open(n.rt.config().image_store_dir()).unwrap();
    let d = cli
        .import_bytes(module("", "").as_bytes(), "late", "late.wat")
        .unwrap();
    let img = n.rt.pull("late", PullPolicy::Never, &[]).await.unwrap();
    assert_eq!(img.image_id, format!("late@{d}"));
    assert_eq!(n.run(n.container("late", img)).await.exit_code, 0);
    cli.remove("late").unwrap();
    assert!(n.rt.images().resolve("late").is_none());
}
