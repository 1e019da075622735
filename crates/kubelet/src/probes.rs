//! Startup, liveness and readiness probes.
//!
//! One prober task per probe of a running container instance. It applies Kubernetes' timing
//! (`initialDelaySeconds`, `periodSeconds`, `timeoutSeconds`) and thresholds
//! (`successThreshold`, `failureThreshold`) itself and tells the pod worker only what changes
//! its decisions: a result crossing a threshold, and each failure (for `Unhealthy` events).
//! The worker cancels the task when the instance ends.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Probe;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::pod::error_chain;
use crate::runtime::Container;

/// Which probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProbeKind {
    Startup,
    Liveness,
    Readiness,
}

impl ProbeKind {
    pub fn name(self) -> &'static str {
        match self {
            ProbeKind::Startup => "Startup",
            ProbeKind::Liveness => "Liveness",
            ProbeKind::Readiness => "Readiness",
        }
    }

    /// What a probe reports before its first result: a container is not ready and not
    /// started until proven so, but alive until proven dead.
    fn initial(self) -> bool {
        matches!(self, ProbeKind::Liveness)
    }
}

/// What a prober tells the pod worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeEvent {
    /// The probe's result crossed its threshold and is now this.
    Result(bool),
    /// One attempt failed, with why.
    Failed(String),
}

/// A message from a prober.
#[derive(Debug, Clone)]
pub struct ProbeUpdate {
    pub container: String,
    /// The container instance (its restart count when it started).
    pub instance: u32,
    pub kind: ProbeKind,
    pub event: ProbeEvent,
}

/// What a probe is aimed at.
#[derive(Clone)]
pub struct ProbeTarget {
    pub container: String,
    pub instance: u32,
    pub pod_ip: IpAddr,
    /// The pod's network namespace, if it has one: a tcpSocket probe of the pod IP connects
    /// inside it (the kubelet's forwarder would accept on the pod IP even with nothing
    /// listening behind it).
    pub network_namespace: Option<std::path::PathBuf>,
    /// The container's named ports.
    pub ports: Vec<(String, u16)>,
    pub handle: Arc<dyn Container>,
}

/// The outcome of one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Failure(String),
}

fn secs(v: Option<i32>, default: i32) -> Duration {
    Duration::from_secs(v.unwrap_or(default).max(0) as u64)
}

/// Starts the prober of `kind` for `target`. It ends by itself once a liveness or startup
/// probe has failed (the container is about to be restarted) or a startup probe succeeded.
pub fn spawn(
    kind: ProbeKind,
    probe: Probe,
    target: ProbeTarget,
    http: reqwest::Client,
    tx: mpsc::Sender<ProbeUpdate>,
    cancel: CancellationToken,
) {
    tokio::spawn(async move {
        tokio::select! {
            _ = cancel.cancelled() => {}
            _ = run(kind, probe, target, http, tx) => {}
        }
    });
}

async fn run(
    kind: ProbeKind,
    probe: Probe,
    target: ProbeTarget,
    http: reqwest::Client,
    tx: mpsc::Sender<ProbeUpdate>,
) {
    let period = secs(probe.period_seconds, 10).max(Duration::from_secs(1));
    let timeout = secs(probe.timeout_seconds, 1).max(Duration::from_secs(1));
    let success_threshold = probe.success_threshold.unwrap_or(1).max(1) as u32;
    let failure_threshold = probe.failure_threshold.unwrap_or(3).max(1) as u32;
    tokio::time::sleep(secs(probe.initial_delay_seconds, 0)).await;
    let send = |event| {
        let tx = tx.clone();
        let update = ProbeUpdate {
            container: target.container.clone(),
            instance: target.instance,
            kind,
            event,
        };
        async move { tx.send(update).await.is_ok() }
    };
    let mut last = kind.initial();
    let (mut successes, mut failures) = (0u32, 0u32);
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let outcome = match tokio::time::timeout(
            timeout,
            probe_once(&probe, &target, &http, timeout),
        )
        .await
        {
            Ok(o) => o,
            Err(_) => Outcome::Failure(format!(
                "{} probe timed out after {}s",
                kind.name(),
                timeout.as_secs()
            )),
        };
        match outcome {
            Outcome::Success => {
                failures = 0;
                successes = successes.saturating_add(1);
                if successes >= success_threshold && !last {
                    last = true;
                    if !send(ProbeEvent::Result(true)).await {
                        return;
                    }
                }
                if kind == ProbeKind::Startup && last {
                    return;
                }
            }
            Outcome::Failure(why) => {
                successes = 0;
                failures = failures.saturating_add(1);
                if !send(ProbeEvent::Failed(why)).await {
                    return;
                }
                // A startup probe never reported success is "not yet", not a change: it is
                // its failure threshold that counts.
                let crossed = failures >= failure_threshold && (last || kind == ProbeKind::Startup);
                if crossed {
                    last = false;
                    if !send(ProbeEvent::Result(false)).await {
                        return;
                    }
                    if kind != ProbeKind::Readiness {
                        return;
                    }
                }
            }
        }
    }
}

/// Resolves a probe's port: a number, or the name of one of the container's ports.
fn port(p: &IntOrString, target: &ProbeTarget) -> Result<u16, String> {
    match p {
        IntOrString::Int(n) => u16::try_from(*n)
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| format!("invalid port {n}")),
        IntOrString::String(name) => {
            if let Ok(n) = name.parse::<u16>() {
                return Ok(n);
            }
            target
                .ports
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, p)| *p)
                .ok_or_else(|| format!("port {name:?} is not a named port of the container"))
        }
    }
}

/// One probe attempt.
pub async fn probe_once(
    probe: &Probe,
    target: &ProbeTarget,
    http: &reqwest::Client,
    timeout: Duration,
) -> Outcome {
    if let Some(get) = &probe.http_get {
        let port = match port(&get.port, target) {
            Ok(p) => p,
            Err(e) => return Outcome::Failure(e),
        };
        let host = get
            .host
            .clone()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| target.pod_ip.to_string());
        let host = if host.contains(':') && !host.starts_with('[') {
            format!("[{host}]")
        } else {
            host
        };
        let scheme = get.scheme.as_deref().unwrap_or("HTTP").to_ascii_lowercase();
        let path = get.path.clone().unwrap_or_default();
        let path = if path.starts_with('/') {
            path
        } else {
            format!("/{path}")
        };
        let url = format!("{scheme}://{host}:{port}{path}");
        let mut req = http
            .get(&url)
            .timeout(timeout)
            .header("User-Agent", "kube-probe/1.37")
            .header("Accept", "*/*");
        for h in get.http_headers.iter().flatten() {
            req = req.header(h.name.as_str(), h.value.as_str());
        }
        return match req.send().await {
            Ok(resp) if (200..400).contains(&resp.status().as_u16()) => Outcome::Success,
            Ok(resp) => Outcome::Failure(format!(
                "HTTP probe failed with statuscode: {}",
                resp.status().as_u16()
            )),
            Err(e) => Outcome::Failure(format!("Get {url:?}: {}", error_chain(&e))),
        };
    }
    if let Some(tcp) = &probe.tcp_socket {
        let port = match port(&tcp.port, target) {
            Ok(p) => p,
            Err(e) => return Outcome::Failure(e),
        };
        let host: IpAddr = tcp
            .host
            .as_deref()
            .and_then(|h| h.parse().ok())
            .unwrap_or(target.pod_ip);
        let connected = match &target.network_namespace {
            Some(ns) if host == target.pod_ip => crate::netns::connect(ns, port).await,
            _ => tokio::net::TcpStream::connect((host, port)).await,
        };
        return match connected {
            Ok(_) => Outcome::Success,
            Err(e) => Outcome::Failure(format!("dial tcp {host}:{port}: {e}")),
        };
    }
    if let Some(exec) = &probe.exec {
        let command = exec.command.clone().unwrap_or_default();
        if command.is_empty() {
            return Outcome::Failure("exec probe has no command".into());
        }
        return match target.handle.exec(command, timeout).await {
            Ok(out) if out.exit_code == 0 => Outcome::Success,
            Ok(out) => {
                let text = String::from_utf8_lossy(if out.stdout.is_empty() {
                    &out.stderr
                } else {
                    &out.stdout
                })
                .trim()
                .chars()
                .take(1024)
                .collect::<String>();
                Outcome::Failure(if text.is_empty() {
                    format!("command exited with code {}", out.exit_code)
                } else {
                    text
                })
            }
            Err(e) => Outcome::Failure(format!("exec probe failed: {e}")),
        };
    }
    if probe.grpc.is_some() {
        return Outcome::Failure("gRPC probes are not supported by this node".into());
    }
    Outcome::Failure("the probe names no handler (httpGet, tcpSocket or exec)".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::{ExecOutput, ExitStatus, RuntimeError};
    use futures::future::BoxFuture;
    use k8s_openapi::api::core::v1::{ExecAction, HTTPGetAction, TCPSocketAction};
    use std::time::SystemTime;

    struct Fake;
    impl Container for Fake {
        fn id(&self) -> &str {
            "fake"
        }
        fn started_at(&self) -> SystemTime {
            SystemTime::now()
        }
        fn wait(&self) -> BoxFuture<'_, ExitStatus> {
            Box::pin(futures::future::pending())
        }
        fn stop(&self, _grace: Duration) -> BoxFuture<'_, ExitStatus> {
            Box::pin(futures::future::pending())
        }
        fn exec_with_stdin(
            &self,
            command: Vec<String>,
            _stdin: Vec<u8>,
            _timeout: Duration,
        ) -> BoxFuture<'_, Result<ExecOutput, RuntimeError>> {
            Box::pin(async move {
                Ok(ExecOutput {
                    exit_code: if command[0] == "ok" { 0 } else { 2 },
                    stdout: b"not healthy\n".to_vec(),
                    stderr: vec![],
                })
            })
        }
    }

    fn target(ports: Vec<(String, u16)>) -> ProbeTarget {
        ProbeTarget {
            container: "c".into(),
            instance: 0,
            pod_ip: "127.0.0.1".parse().expect("ip"),
            network_namespace: None,
            ports,
            handle: Arc::new(Fake),
        }
    }

    async fn http_server(status: u16) -> u16 {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            while let Ok((mut s, _)) = listener.accept().await {
                let mut buf = [0u8; 1024];
                let _ = s.read(&mut buf).await;
                let reply = format!(
                    "HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                );
                let _ = s.write_all(reply.as_bytes()).await;
            }
        });
        port
    }

    #[tokio::test]
    async fn http_tcp_and_exec_attempts() {
        let http = reqwest::Client::new();
        let t = Duration::from_secs(1);
        let ok = http_server(200).await;
        let bad = http_server(503).await;
        let get = |port: IntOrString| Probe {
            http_get: Some(HTTPGetAction {
                path: Some("/healthz".into()),
                port,
                ..Default::default()
            }),
            ..Default::default()
        };
        let tgt = target(vec![("http".into(), ok)]);
        assert_eq!(
            probe_once(&get(IntOrString::String("http".into())), &tgt, &http, t).await,
            Outcome::Success
        );
        assert_eq!(
            probe_once(&get(IntOrString::Int(bad as i32)), &tgt, &http, t).await,
            Outcome::Failure("HTTP probe failed with statuscode: 503".into())
        );
        assert!(matches!(
            probe_once(&get(IntOrString::String("nope".into())), &tgt, &http, t).await,
            Outcome::Failure(m) if m.contains("named port")
        ));
        let tcp = |port: i32| Probe {
            tcp_socket: Some(TCPSocketAction {
                port: IntOrString::Int(port),
                host: None,
            }),
            ..Default::default()
        };
        assert_eq!(
            probe_once(&tcp(ok as i32), &tgt, &http, t).await,
            Outcome::Success
        );
        let closed = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            l.local_addr().expect("addr").port()
        };
        assert!(matches!(
            probe_once(&tcp(closed as i32), &tgt, &http, t).await,
            Outcome::Failure(_)
        ));
        let exec = |cmd: &str| Probe {
            exec: Some(ExecAction {
                command: Some(vec![cmd.into()]),
            }),
            ..Default::default()
        };
        assert_eq!(
            probe_once(&exec("ok"), &tgt, &http, t).await,
            Outcome::Success
        );
        assert_eq!(
            probe_once(&exec("fail"), &tgt, &http, t).await,
            Outcome::Failure("not healthy".into())
        );
    }

    #[tokio::test(start_paused = true)]
    async fn thresholds_gate_reported_results() {
        let http = reqwest::Client::new();
        let (tx, mut rx) = mpsc::channel(16);
        let probe = Probe {
            exec: Some(ExecAction {
                command: Some(vec!["fail".into()]),
            }),
            failure_threshold: Some(2),
            period_seconds: Some(1),
            ..Default::default()
        };
        spawn(
            ProbeKind::Liveness,
            probe,
            target(vec![]),
            http,
            tx,
            CancellationToken::new(),
        );
        let mut events = vec![];
        while let Some(u) = rx.recv().await {
            events.push(u.event);
        }
        assert_eq!(
            events,
            vec![
                ProbeEvent::Failed("not healthy".into()),
                ProbeEvent::Failed("not healthy".into()),
                ProbeEvent::Result(false)
            ]
        );
    }
}
