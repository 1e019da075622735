//! HTTP containers served WAGI-style.

use std::time::{Duration, Instant};

use wasmkube_kubelet::runtime::Runtime;

use crate::harness::{free_port, log_lines, module, node, pod, port};

/// A WAGI guest: echoes its CGI environment and request body; a body starting with `t`
/// makes it trap, one starting with `s` makes it spin forever.
fn wagi() -> String {
    module(
        r#"(data (i32.const 64) "Content-Type: text/plain\nX-Guest: wagi\n\n")
           (data (i32.const 200) "served a request\n")"#,
        r#"(call $print (i32.const 64) (i32.const 40))
        (call $dump_env (i32.const 1))
        (i32.store (i32.const 48) (i32.const 16384))
        (i32.store (i32.const 52) (i32.const 4096))
        (drop (call $fd_read (i32.const 0) (i32.const 48) (i32.const 1) (i32.const 44)))
        (if (i32.eq (i32.load8_u (i32.const 16384)) (i32.const 116)) (then unreachable))
        (if (i32.eq (i32.load8_u (i32.const 16384)) (i32.const 115)) (then (loop $l (br $l))))
        (call $print (i32.const 16384) (i32.load (i32.const 44)))
        (call $eprint (i32.const 200) (i32.const 17))"#,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wagi_serves_requests_with_cgi_env() {
    let n = node();
    let img = n.image("wagi", &wagi()).await;
    let p = free_port();
    let mut c = n.container("web", img);
    c.ports = vec![port(p)];
    c.env = vec![("MY_VAR".into(), "hello".into())];
    let web = n.rt.start(&pod(), c).await.expect("start");
    let client = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{p}/some/path?x=1");
    let resp = client
        .post(&url)
        .header("content-type", "text/x-test")
        .header("x-custom", "v")
        .body("ping")
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-guest"], "wagi");
    let body = resp.text().await.unwrap();
    for want in [
        "REQUEST_METHOD=POST",
        "PATH_INFO=/some/path",
        "QUERY_STRING=x=1",
        "SERVER_NAME=127.0.0.1",
        &format!("SERVER_PORT={p}"),
        "CONTENT_TYPE=text/x-test",
        "CONTENT_LENGTH=4",
        "HTTP_X_CUSTOM=v",
        "MY_VAR=hello",
    ] {
        assert!(
            body.lines().any(|l| l == want),
            "missing {want} in:\n{body}"
        );
    }
    assert!(body.ends_with("ping"), "{body}");

    // A trapping request answers 500 and the pod keeps serving.
    let resp = client.post(&url).body("trap").send().await.unwrap();
    assert_eq!(resp.status(), 500);
    let resp = client.get(&url).send().await.unwrap();
    assert_eq!(resp.status(), 200);

    // stderr of requests goes to the log; the runtime notes failures there too.
    let log = n.log_path("web");
    assert!(
        crate::harness::eventually(Duration::from_secs(2), || log_lines(&log, "stderr").len()
            >= 3)
        .await
    );
    let err = log_lines(&log, "stderr");
    assert_eq!(
        err.iter().filter(|l| *l == "served a request").count(),
        2,
        "{err:?}"
    );
    assert!(err.iter().any(|l| l.contains("wasm trap")), "{err:?}");

    // An idle HTTP pod holds no instance.
    assert_eq!(web.usage().memory_bytes, 0);

    // Stop drains and completes.
    let s = web.stop(Duration::from_secs(5)).await;
    assert_eq!((s.exit_code, s.reason.as_str()), (0, "Completed"), "{s:?}");
    assert!(
        client.get(&url).send().await.is_err(),
        "listener still open after stop"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spinning_request_hits_its_deadline_and_stop_kills_in_flight() {
    let n = node();
    let img = n.image("wagi", &wagi()).await;
    let p = free_port();
    let mut c = n.container("web", img);
    c.ports = vec![port(p)];
    let web = n.rt.start(&pod(), c).await.expect("start");
    let client = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{p}/");
    // The harness sets a 5 s request timeout.
    let t = Instant::now();
    let resp = client.post(&url).body("spin").send().await.unwrap();
    assert_eq!(resp.status(), 504);
    assert!(t.elapsed() < Duration::from_secs(8));

    // A spinning in-flight request is interrupted once the grace period ends.
    let spinning = tokio::spawn({
        let client = client.clone();
        let url = url.clone();
        async move {
            client
                .post(&url)
                .body("spin")
                .send()
                .await
                .map(|r| r.status().as_u16())
        }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let t = Instant::now();
    let s = web.stop(Duration::from_millis(300)).await;
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "stop took {:?}",
        t.elapsed()
    );
    assert_eq!((s.exit_code, s.reason.as_str()), (137, "Error"), "{s:?}");
    let status = spinning.await.unwrap();
    assert!(matches!(status, Ok(503) | Err(_)), "{status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_taken_port_fails_the_start() {
    let n = node();
    let img = n.image("wagi", &wagi()).await;
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut c = n.container("web", img);
    c.ports = vec![port(taken.local_addr().unwrap().port())];
    let err = n.rt.start(&pod(), c).await.err().expect("start must fail");
    assert_eq!(err.reason(), "CreateContainerError");
}

/// Rough cost of one WAGI request (keep-alive client, sequential), against a plain hyper
/// server answering the same client in the same run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_wagi_request() {
    let n = node();
    let hello = module(
        r#"(data (i32.const 64) "Content-Type: text/plain\n\nhi")"#,
        "(call $print (i32.const 64) (i32.const 28))",
    );
    let img = n.image("hi", &hello).await;
    let p = free_port();
    let mut c = n.container("hi", img);
    c.ports = vec![port(p)];
    let web = n.rt.start(&pod(), c).await.expect("start");
    let client = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{p}/");
    assert_eq!(
        client.get(&url).send().await.unwrap().text().await.unwrap(),
        "hi"
    );
    const N: u32 = 300;
    let t = Instant::now();
    for _ in 0..N {
        let r = client.get(&url).send().await.unwrap();
        assert_eq!(r.status(), 200);
        r.bytes().await.unwrap();
    }
    let wagi = t.elapsed() / N;

    // Reference: hyper answering "hi" directly.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let ref_url = format!("http://{}/", listener.local_addr().unwrap());
    let server = tokio::spawn(async move {
        loop {
            let Ok((s, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(|_req| async {
                    Ok::<_, std::convert::Infallible>(hyper::Response::new(
                        http_body_util::Full::new(bytes::Bytes::from_static(b"hi")),
                    ))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(s), svc)
                    .await;
            });
        }
    });
    client.get(&ref_url).send().await.unwrap();
    let t = Instant::now();
    for _ in 0..N {
        client
            .get(&ref_url)
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
    }
    let plain = t.elapsed() / N;
    server.abort();
    eprintln!(
        "WAGI request {wagi:?} vs plain hyper {plain:?} ({:.1}x); per-request instance overhead ~{:?}",
        wagi.as_secs_f64() / plain.as_secs_f64(),
        wagi.saturating_sub(plain)
    );
    web.stop(Duration::from_secs(1)).await;
}
