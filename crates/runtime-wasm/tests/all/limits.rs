//! Memory and CPU limits.

use std::time::Duration;

use wasmkube_kubelet::runtime::Runtime;

use crate::harness::{log_lines, module, node, pod};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_memory_bomb_is_oom_killed_and_the_node_survives() {
    let n = node();
    // Grows memory by 1 MiB until growth fails, then exits 0 (so only the limiter can make
    // this an OOM kill).
    let bomb = module(
        "",
        "(block $d (loop $l (br_if $d (i32.eq (memory.grow (i32.const 16)) (i32.const -1))) (br $l)))",
    );
    let img = n.image("bomb", &bomb).await;
    let mut c = n.container("bomb", img);
    c.resources.memory_limit_bytes = Some(64 << 20);
    let s = n.run(c).await;
    assert_eq!(
        (s.exit_code, s.reason.as_str()),
        (137, "OOMKilled"),
        "{s:?}"
    );
    assert!(
        s.message.as_deref().unwrap_or("").contains("limit"),
        "{s:?}"
    );

    // The node keeps running containers, including the same image within its limit.
    let ok = n
        .image(
            "ok",
            &module(
                r#"(data (i32.const 64) "alive\n")"#,
                "(call $print (i32.const 64) (i32.const 6))",
            ),
        )
        .await;
    let s = n.run(n.container("ok", ok)).await;
    assert_eq!(s.exit_code, 0);
    assert_eq!(log_lines(&n.log_path("ok"), "stdout"), vec!["alive"]);

    // A limit below the module's initial memory fails at start, not as a crash later.
    let mut c = n.container(
        "tiny",
        n.rt.pull("ok", wasmkube_kubelet::runtime::PullPolicy::Never, &[])
            .await
            .unwrap(),
    );
    c.resources.memory_limit_bytes = Some(64 << 10);
    assert!(n.rt.start(&pod(), c).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_usage_is_reported() {
    let n = node();
    let img = n
        .image(
            "idle",
            &module("", "(memory.grow (i32.const 30)) drop (loop $l (br $l))"),
        )
        .await;
    let c =
        n.rt.start(&pod(), n.container("idle", img))
            .await
            .expect("start");
    tokio::time::sleep(Duration::from_millis(50)).await;
    let u = c.usage();
    // 2 initial pages + 30 grown, 64 KiB each.
    assert_eq!(u.memory_bytes, 32 * 65536, "{u:?}");
    c.stop(Duration::ZERO).await;
    assert_eq!(c.usage().memory_bytes, 0);
}

/// A guest that prints a line every 2^18 loop iterations: its line count measures the CPU
/// it got.
fn spinner() -> String {
    module(
        r#"(data (i32.const 64) "x\n")"#,
        r#"(local $i i32)
        (loop $l
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (if (i32.eqz (i32.and (local.get $i) (i32.const 262143)))
            (then (call $print (i32.const 64) (i32.const 2))))
          (br $l))"#,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cpu_limit_throttles_a_spinner() {
    let n = node();
    let img = n.image("spinner", &spinner()).await;
    let mut limited = n.container("limited", img.clone());
    limited.resources.cpu_limit_millis = Some(100);
    let unlimited = n.container("unlimited", img);
    let a = n.rt.start(&pod(), limited).await.expect("start");
    let b = n.rt.start(&pod(), unlimited).await.expect("start");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (ua, ub) = (a.usage(), b.usage());
    a.stop(Duration::ZERO).await;
    b.stop(Duration::ZERO).await;
    let limited = log_lines(&n.log_path("limited"), "stdout").len();
    let unlimited = log_lines(&n.log_path("unlimited"), "stdout").len();
    eprintln!(
        "spinner progress in 1.5 s: 100m limit {limited} lines ({} ms cpu), unlimited {unlimited} lines ({} ms cpu)",
        ua.cpu_nanos / 1_000_000,
        ub.cpu_nanos / 1_000_000
    );
    assert!(
        unlimited >= 20,
        "the unlimited spinner barely ran: {unlimited}"
    );
    // 10% of a core vs (up to) a whole one; allow for a loaded machine.
    assert!(
        limited * 3 < unlimited,
        "limited {limited} vs unlimited {unlimited}"
    );
    assert!(
        ua.cpu_nanos < Duration::from_millis(400).as_nanos() as u64,
        "{ua:?}"
    );
}
