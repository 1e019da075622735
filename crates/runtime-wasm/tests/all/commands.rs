//! Command containers: output, exit codes, traps, stop.

use std::time::{Duration, Instant};

use wasmkube_kubelet::runtime::{Container, Runtime};

use crate::harness::{log_lines, log_records, module, node, pod};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hello_prints_args_and_env_to_the_log() {
    let n = node();
    let img = n
        .image(
            "hello:v1",
            &module(
                "",
                "(call $dump_args (i32.const 1)) (call $dump_env (i32.const 2))",
            ),
        )
        .await;
    let mut c = n.container("hello", img.clone());
    c.args = vec!["one".into(), "two words".into()];
    c.env = vec![
        ("GREETING".into(), "hi".into()),
        ("EMPTY".into(), "".into()),
    ];
    let status = n.run(c).await;
    assert_eq!(
        (status.exit_code, status.reason.as_str()),
        (0, "Completed"),
        "{status:?}"
    );
    assert!(status.finished_at >= status.started_at);
    let log = n.log_path("hello");
    // argv[0] is the container name when no command is given.
    assert_eq!(log_lines(&log, "stdout"), vec!["hello", "one", "two words"]);
    // Only the container's env: nothing leaks from the host (PATH, HOME, ...).
    assert_eq!(log_lines(&log, "stderr"), vec!["GREETING=hi", "EMPTY="]);
    assert!(log_records(&log).iter().all(|(_, tag, _)| tag == "F"));

    // With a command, argv is command + args.
    let mut c = n.container("hello2", img);
    c.command = vec!["/bin/greet".into(), "--loud".into()];
    c.args = vec!["x".into()];
    n.run(c).await;
    assert_eq!(
        log_lines(&n.log_path("hello2"), "stdout"),
        vec!["/bin/greet", "--loud", "x"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_codes_become_the_containers() {
    let n = node();
    let img = n
        .image("exit3", &module("", "(call $proc_exit (i32.const 3))"))
        .await;
    let s = n.run(n.container("exit3", img)).await;
    assert_eq!(
        (s.exit_code, s.reason.as_str(), s.message.as_deref()),
        (3, "Error", None)
    );
    let img = n
        .image("exit0", &module("", "(call $proc_exit (i32.const 0))"))
        .await;
    let s = n.run(n.container("exit0", img)).await;
    assert_eq!((s.exit_code, s.reason.as_str()), (0, "Completed"));
    // A partial last line is still logged, as a full record.
    let img = n
        .image(
            "partial",
            &module(
                r#"(data (i32.const 64) "no newline")"#,
                "(call $print (i32.const 64) (i32.const 10))",
            ),
        )
        .await;
    n.run(n.container("partial", img)).await;
    assert_eq!(
        log_lines(&n.log_path("partial"), "stdout"),
        vec!["no newline"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trap_is_an_error_with_the_trap_message() {
    let n = node();
    let img = n.image("trap", &module("", "unreachable")).await;
    let s = n.run(n.container("trap", img)).await;
    assert_eq!((s.exit_code, s.reason.as_str()), (1, "Error"), "{s:?}");
    let msg = s.message.unwrap_or_default();
    assert!(msg.contains("unreachable"), "{msg}");
    let err = log_lines(&n.log_path("trap"), "stderr");
    assert!(err.iter().any(|l| l.contains("wasm trap")), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_interrupts_an_infinite_loop_and_a_sleeper() {
    let n = node();
    let spin = n.image("spin", &module("", "(loop $l (br $l))")).await;
    let c =
        n.rt.start(&pod(), n.container("spin", spin))
            .await
            .expect("start");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(c.usage().cpu_nanos > 0, "spinner was charged no cpu");
    let t = Instant::now();
    let s = tokio::time::timeout(Duration::from_secs(5), c.stop(Duration::from_secs(30)))
        .await
        .expect("stop hung");
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "stop took {:?}",
        t.elapsed()
    );
    assert_eq!((s.exit_code, s.reason.as_str()), (137, "Error"), "{s:?}");
    // Stopping again returns the same status.
    assert_eq!(c.stop(Duration::ZERO).await.exit_code, 137);

    // A guest blocked in a host call (a one-hour poll_oneoff) never reaches an epoch check.
    let sleeper = module(
        "",
        r#"
        ;; subscription at 2048: clock, monotonic, 3600 s relative
        (i64.store (i32.const 2048) (i64.const 7))
        (i32.store8 (i32.const 2056) (i32.const 0))
        (i32.store (i32.const 2064) (i32.const 1))
        (i64.store (i32.const 2072) (i64.const 3600000000000))
        (i64.store (i32.const 2080) (i64.const 0))
        (i32.store16 (i32.const 2088) (i32.const 0))
        (drop (call $poll_oneoff (i32.const 2048) (i32.const 3072) (i32.const 1) (i32.const 40)))"#,
    );
    let img = n.image("sleeper", &sleeper).await;
    let c =
        n.rt.start(&pod(), n.container("sleeper", img))
            .await
            .expect("start");
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(c.status_is_running());
    let t = Instant::now();
    let s = tokio::time::timeout(Duration::from_secs(5), c.stop(Duration::from_secs(30)))
        .await
        .expect("stop hung");
    assert!(t.elapsed() < Duration::from_secs(2));
    assert_eq!(s.exit_code, 137);
}

trait Running {
    fn status_is_running(&self) -> bool;
}

impl Running for Box<dyn Container> {
    fn status_is_running(&self) -> bool {
        futures::FutureExt::now_or_never(self.wait()).is_none()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_floods_are_bounded_and_logs_capped() {
    let n = node();
    // Writes a 40 KiB line without newline 200 times: 8 MB of output, split into 16 KiB records.
    let flood = module(
        "",
        r#"(local $i i32)
        (memory.fill (i32.const 8192) (i32.const 97) (i32.const 40960))
        (block $d (loop $l
          (br_if $d (i32.ge_u (local.get $i) (i32.const 200)))
          (call $print (i32.const 8192) (i32.const 40960))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br $l)))"#,
    );
    let img = n.image("flood", &flood).await;
    let mut c = n.container("flood", img);
    c.log.max_bytes = 1 << 20;
    let t = Instant::now();
    let flooding = n.rt.start(&pod(), c).await.expect("start");

    // Meanwhile other containers are unaffected: a quick one finishes promptly.
    let quick = n
        .image(
            "quick",
            &module(
                r#"(data (i32.const 64) "done\n")"#,
                "(call $print (i32.const 64) (i32.const 5))",
            ),
        )
        .await;
    let q = Instant::now();
    n.run(n.container("quick", quick)).await;
    assert!(
        q.elapsed() < Duration::from_secs(2),
        "a quick container took {:?} next to a flood",
        q.elapsed()
    );
    assert_eq!(log_lines(&n.log_path("quick"), "stdout"), vec!["done"]);

    let s = tokio::time::timeout(Duration::from_secs(60), flooding.wait())
        .await
        .expect("flood did not finish");
    assert_eq!(s.exit_code, 0);
    eprintln!("8 MB flood logged in {:?}", t.elapsed());
    let size = std::fs::metadata(n.log_path("flood")).expect("log").len();
    assert!(size <= 1 << 20, "log is {size} bytes, over its cap");
    let recs = log_records(&n.log_path("flood"));
    assert!(
        recs.iter()
            .all(|(_, tag, text)| text.len() <= 16 * 1024 && (tag == "P" || tag == "F"))
    );
    assert!(recs.iter().filter(|(_, tag, _)| tag == "P").count() > 10);
}
