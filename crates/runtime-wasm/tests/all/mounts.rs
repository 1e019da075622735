//! Volumes: guests see only their mounts, read-only ones without write access.

use crate::harness::{log_lines, module, mount, node};

/// Exit code bits: 1 = read `hello.txt`, 2 = creating `new.txt` failed, 4 = opening
/// `../secret.txt` failed, 8 = opening `/etc/passwd` failed.
fn prober() -> String {
    module(
        r#"(data (i32.const 64) "hello.txt")
           (data (i32.const 80) "new.txt")
           (data (i32.const 96) "../secret.txt")
           (data (i32.const 112) "/etc/passwd")"#,
        r#"(local $code i32)
        (if (i32.eqz (call $path_open (i32.const 3) (i32.const 0) (i32.const 64) (i32.const 9) (i32.const 0) (i64.const 2) (i64.const 0) (i32.const 0) (i32.const 40)))
          (then
            (i32.store (i32.const 48) (i32.const 8192))
            (i32.store (i32.const 52) (i32.const 1024))
            (if (i32.eqz (call $fd_read (i32.load (i32.const 40)) (i32.const 48) (i32.const 1) (i32.const 44)))
              (then
                (call $print (i32.const 8192) (i32.load (i32.const 44)))
                (local.set $code (i32.or (local.get $code) (i32.const 1)))))))
        (if (call $path_open (i32.const 3) (i32.const 0) (i32.const 80) (i32.const 7) (i32.const 1) (i64.const 64) (i64.const 0) (i32.const 0) (i32.const 40))
          (then (local.set $code (i32.or (local.get $code) (i32.const 2))))
          (else (call $write (i32.load (i32.const 40)) (i32.const 64) (i32.const 5))))
        (if (call $path_open (i32.const 3) (i32.const 0) (i32.const 96) (i32.const 13) (i32.const 0) (i64.const 2) (i64.const 0) (i32.const 0) (i32.const 40))
          (then (local.set $code (i32.or (local.get $code) (i32.const 4)))))
        (if (call $path_open (i32.const 3) (i32.const 0) (i32.const 112) (i32.const 11) (i32.const 0) (i64.const 2) (i64.const 0) (i32.const 0) (i32.const 40))
          (then (local.set $code (i32.or (local.get $code) (i32.const 8)))))
        (call $proc_exit (local.get $code))"#,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_mounts_refuse_writes_and_nothing_outside_is_reachable() {
    let n = node();
    let vol = n.dir.path().join("vol");
    std::fs::create_dir_all(vol.join("data")).unwrap();
    std::fs::write(vol.join("data/hello.txt"), "from the volume\n").unwrap();
    std::fs::write(vol.join("secret.txt"), "outside\n").unwrap();
    let img = n.image("prober", &prober()).await;

    let mut c = n.container("ro", img.clone());
    c.mounts = vec![mount(&vol.join("data"), "/data", true)];
    let s = n.run(c).await;
    assert_eq!(s.exit_code, 1 | 2 | 4 | 8, "{s:?}");
    assert_eq!(
        log_lines(&n.log_path("ro"), "stdout"),
        vec!["from the volume"]
    );
    assert!(!vol.join("data/new.txt").exists());

    let mut c = n.container("rw", img.clone());
    c.mounts = vec![mount(&vol.join("data"), "/data", false)];
    let s = n.run(c).await;
    assert_eq!(s.exit_code, 1 | 4 | 8, "{s:?}");
    assert_eq!(
        std::fs::read_to_string(vol.join("data/new.txt")).unwrap(),
        "hello"
    );

    // No mounts: nothing at all is readable.
    let s = n.run(n.container("none", img)).await;
    assert_eq!(s.exit_code, 2 | 4 | 8, "{s:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_mount_is_a_create_error() {
    use wasmkube_kubelet::runtime::Runtime;
    let n = node();
    let file = n.dir.path().join("file.txt");
    std::fs::write(&file, "x").unwrap();
    let img = n.image("prober", &prober()).await;
    let mut c = n.container("filemount", img);
    c.mounts = vec![mount(&file, "/etc/config", true)];
    let err =
        n.rt.start(&crate::harness::pod(), c)
            .await
            .err()
            .expect("start should fail");
    assert_eq!(err.reason(), "CreateContainerError", "{err}");
}
