//! A closed-loop HTTP/1.1 load generator: N keep-alive connections, each sending the next
//! request as soon as the previous response's body has been read, for a bounded time.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;

use super::Percentiles;

pub(crate) struct LoadResult {
    /// Responses completed inside the measured window.
    pub ok: u64,
    /// Responses that were not 2xx (counted, not in `ok`).
    pub non_2xx: u64,
    /// Connection or protocol errors (each one reconnects).
    pub errors: u64,
    pub first_error: Option<String>,
    pub window: Duration,
    pub latency: Option<Percentiles>,
}

impl LoadResult {
    pub fn rps(&self) -> f64 {
        self.ok as f64 / self.window.as_secs_f64()
    }
}

#[derive(Default)]
struct ConnStats {
    ok: u64,
    non_2xx: u64,
    errors: u64,
    first_error: Option<String>,
    latencies: Vec<Duration>,
}

/// Drives `GET path` at `addr` over `connections` connections: `warmup` unmeasured, then
/// `window` measured (requests that start inside it and end before it closes).
pub(crate) async fn run(
    addr: SocketAddr,
    path: &str,
    connections: usize,
    warmup: Duration,
    window: Duration,
) -> LoadResult {
    let measure_from = Instant::now() + warmup;
    let end = measure_from + window;
    let mut tasks = Vec::with_capacity(connections);
    for _ in 0..connections {
        let path = path.to_string();
        tasks.push(tokio::spawn(connection(addr, path, measure_from, end)));
    }
    let mut total = ConnStats::default();
    for t in tasks {
        let s = match t.await {
            Ok(s) => s,
            Err(e) => ConnStats {
                errors: 1,
                first_error: Some(format!("load task: {e}")),
                ..Default::default()
            },
        };
        total.ok += s.ok;
        total.non_2xx += s.non_2xx;
        total.errors += s.errors;
        total.first_error = total.first_error.or(s.first_error);
        total.latencies.extend(s.latencies);
    }
    LoadResult {
        ok: total.ok,
        non_2xx: total.non_2xx,
        errors: total.errors,
        first_error: total.first_error,
        window,
        latency: Percentiles::of(&mut total.latencies),
    }
}

async fn connection(
    addr: SocketAddr,
    path: String,
    measure_from: Instant,
    end: Instant,
) -> ConnStats {
    let mut stats = ConnStats::default();
    let authority = addr.to_string();
    // Every loop is bounded by `end`; a failing target costs a short pause per reconnect.
    'connect: while Instant::now() < end {
        let stream = match tokio::net::TcpStream::connect(addr).await {
            Ok(s) => s,
            Err(e) => {
                fail(&mut stats, format!("connect {addr}: {e}"));
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let (mut sender, conn) =
            match hyper::client::conn::http1::handshake(TokioIo::new(stream)).await {
                Ok(x) => x,
                Err(e) => {
                    fail(&mut stats, format!("handshake: {e}"));
                    continue;
                }
            };
        tokio::spawn(conn);
        while Instant::now() < end {
            let req = match http::Request::get(path.as_str())
                .header(http::header::HOST, authority.as_str())
                .body(Empty::<Bytes>::new())
            {
                Ok(r) => r,
                Err(e) => {
                    fail(&mut stats, format!("building the request: {e}"));
                    return stats;
                }
            };
            let started = Instant::now();
            let resp = match sender.send_request(req).await {
                Ok(r) => r,
                Err(e) => {
                    fail(&mut stats, format!("request: {e}"));
                    continue 'connect;
                }
            };
            let status = resp.status();
            if let Err(e) = resp.into_body().collect().await {
                fail(&mut stats, format!("reading the body: {e}"));
                continue 'connect;
            }
            let done = Instant::now();
            if started >= measure_from && done <= end {
                if status.is_success() {
                    stats.ok += 1;
                    stats.latencies.push(done - started);
                } else {
                    stats.non_2xx += 1;
                    if stats.first_error.is_none() {
                        stats.first_error = Some(format!("status {status}"));
                    }
                }
            }
        }
    }
    stats
}

fn fail(stats: &mut ConnStats, e: String) {
    stats.errors += 1;
    stats.first_error.get_or_insert(e);
}
