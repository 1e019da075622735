//! `Container::exec`: a fresh instance of the container's image run as a command, with the
//! container's env and limits, output captured and bounded, and a timeout.

use std::time::{Duration, Instant};

use wasmkube_kubelet::runtime::{Container, PullPolicy, Runtime, RuntimeError};

use crate::harness::{Node, module, node, pod, port};

/// A guest whose behaviour depends on `argv[1]`: without one (the container itself) it sleeps
/// for an hour; `ok` prints argv to stdout and the environment to stderr; `exit` exits 3;
/// `sleep` sleeps; `loop` spins; `flood` writes 2.5 MiB; `mem` grows memory until refused;
/// `trap` traps.
pub fn exec_guest() -> String {
    module(
        r#"
        (func $sleep
          (i64.store (i32.const 2048) (i64.const 7))
          (i32.store8 (i32.const 2056) (i32.const 0))
          (i32.store (i32.const 2064) (i32.const 1))
          (i64.store (i32.const 2072) (i64.const 3600000000000))
          (i64.store (i32.const 2080) (i64.const 0))
          (i32.store16 (i32.const 2088) (i32.const 0))
          (drop (call $poll_oneoff (i32.const 2048) (i32.const 3072) (i32.const 1) (i32.const 40))))"#,
        r#"(local $mode i32) (local $i i32)
        (drop (call $args_sizes_get (i32.const 0) (i32.const 4)))
        (if (i32.lt_u (i32.load (i32.const 0)) (i32.const 2))
          (then (call $sleep) (return)))
        (drop (call $args_get (i32.const 1024) (i32.const 8192)))
        (local.set $mode (i32.load8_u (i32.load (i32.const 1028))))
        (if (i32.eq (local.get $mode) (i32.const 111)) ;; o
          (then (call $dump_args (i32.const 1)) (call $dump_env (i32.const 2)) (return)))
        (if (i32.eq (local.get $mode) (i32.const 101)) ;; e
          (then (call $proc_exit (i32.const 3))))
        (if (i32.eq (local.get $mode) (i32.const 115)) ;; s
          (then (call $sleep) (return)))
        (if (i32.eq (local.get $mode) (i32.const 108)) ;; l
          (then (loop $spin (br $spin))))
        (if (i32.eq (local.get $mode) (i32.const 102)) ;; f
          (then
            (memory.fill (i32.const 8192) (i32.const 97) (i32.const 65536))
            (block $d (loop $l
              (br_if $d (i32.ge_u (local.get $i) (i32.const 40)))
              (call $print (i32.const 8192) (i32.const 65536))
              (local.set $i (i32.add (local.get $i) (i32.const 1)))
              (br $l)))
            (return)))
        (if (i32.eq (local.get $mode) (i32.const 109)) ;; m
          (then
            (block $d (loop $l
              (br_if $d (i32.eq (memory.grow (i32.const 16)) (i32.const -1)))
              (br $l)))
            (return)))
        (if (i32.eq (local.get $mode) (i32.const 116)) ;; t
          (then unreachable))"#,
    )
}

fn argv(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

async fn start_sleeper(n: &Node, name: &str) -> Box<dyn Container> {
    let img = n.image(name, &exec_guest()).await;
    let mut c = n.container(name, img);
    c.env = vec![("K".into(), "v".into())];
    c.resources.memory_limit_bytes = Some(64 << 20);
    n.rt.start(&pod(), c).await.expect("start")
}

fn is_timeout(e: &RuntimeError) -> bool {
    matches!(e, RuntimeError::Io(io) if io.kind() == std::io::ErrorKind::TimedOut)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_runs_the_image_as_a_command_with_the_containers_env() {
    let n = node();
    let c = start_sleeper(&n, "probe").await;
    let secs = Duration::from_secs(10);

    let out = c.exec(argv(&["check", "ok", "a b"]), secs).await.unwrap();
    assert_eq!(out.exit_code, 0);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "check\nok\na b\n");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "K=v\n");

    let out = c.exec(argv(&["check", "exit"]), secs).await.unwrap();
    assert_eq!(out.exit_code, 3);

    // Output is captured up to 1 MiB per stream; the guest still finishes normally.
    let out = c.exec(argv(&["check", "flood"]), secs).await.unwrap();
    assert_eq!((out.exit_code, out.stdout.len()), (0, 1 << 20));

    // The container's memory limit applies to the exec's instance.
    let out = c.exec(argv(&["check", "mem"]), secs).await.unwrap();
    assert_eq!(out.exit_code, 137, "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("out of memory"),
        "{out:?}"
    );

    let out = c.exec(argv(&["check", "trap"]), secs).await.unwrap();
    assert_eq!(out.exit_code, 1);
    assert!(String::from_utf8_lossy(&out.stderr).contains("wasm trap"));

    // Timeouts, whether the guest is blocked in a host call or computing.
    for mode in ["sleep", "loop"] {
        let t = Instant::now();
        let e = c
            .exec(argv(&["check", mode]), Duration::from_millis(300))
            .await
            .expect_err("timed out");
        assert!(is_timeout(&e), "{mode}: {e:?}");
        assert!(
            t.elapsed() < Duration::from_secs(3),
            "{mode}: {:?}",
            t.elapsed()
        );
    }

    assert!(c.exec(vec![], secs).await.is_err());

    // None of it disturbed the container; once stopped there is nothing to exec into.
    assert!(futures::FutureExt::now_or_never(c.wait()).is_none());
    c.stop(Duration::from_secs(1)).await;
    assert!(c.exec(argv(&["check", "ok"]), secs).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_the_container_ends_a_running_exec() {
    let n = node();
    let c = std::sync::Arc::new(start_sleeper(&n, "stopme").await);
    let c2 = c.clone();
    let exec = tokio::spawn(async move {
        c2.exec(argv(&["check", "sleep"]), Duration::from_secs(60))
            .await
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    c.stop(Duration::from_secs(1)).await;
    let out = tokio::time::timeout(Duration::from_secs(5), exec)
        .await
        .expect("exec outlived its container")
        .unwrap()
        .unwrap();
    assert_eq!(out.exit_code, 137);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_in_wagi_and_component_containers() {
    let n = node();
    // A WAGI container's module is a command too.
    let img = n.image("wagi", &exec_guest()).await;
    let mut c = n.container("wagi", img);
    c.ports = vec![port(crate::harness::free_port())];
    let web = n.rt.start(&pod(), c).await.expect("start");
    let out = web
        .exec(argv(&["x", "ok"]), Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "x\nok\n");
    web.stop(Duration::from_secs(1)).await;

    // A WASI 0.2 command component.
    let component = crate::components::command_component(&exec_guest());
    n.rt.images()
        .import_bytes(&component, "p2exec", "p2exec")
        .unwrap();
    let img = n.rt.pull("p2exec", PullPolicy::Never, &[]).await.unwrap();
    let c = n.rt.start(&pod(), n.container("p2", img)).await.unwrap();
    let out = c
        .exec(argv(&["y", "ok", "z"]), Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(
        (out.exit_code, String::from_utf8_lossy(&out.stdout).as_ref()),
        (0, "y\nok\nz\n")
    );
    let e = c
        .exec(argv(&["y", "sleep"]), Duration::from_millis(200))
        .await
        .expect_err("timeout");
    assert!(is_timeout(&e), "{e:?}");
    c.stop(Duration::from_secs(1)).await;
}
