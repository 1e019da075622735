//! One listening address of the service proxy (a ClusterIP, NodePort or LoadBalancer port)
//! and the connections it forwards.
//!
//! ```text
//!   Binding ──bound──► Serving ──cancelled──► Closed
//!      │  ▲                │
//!  error  └── retry ──  Standby ◄── accept failed for good
//!      └────────────────►  (address held by another node's proxy on this host, or not
//!                           local yet: try again every second)
//! ```
//!
//! Every node of a machine shares its loopback, so every node's proxy wants the same
//! ClusterIP addresses: the first to bind serves them for the whole machine, the others wait
//! in `Standby` and take over when it goes away. A listener lives as long as its Service
//! port; endpoint changes only swap the [`Target`] it reads for new connections, and
//! established connections are never cut by them.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio_util::sync::CancellationToken;

use crate::balancer::Balancer;

/// How long a connection attempt to one endpoint may take before the next is tried.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How often a listener in `Standby` tries to bind again.
const STANDBY_RETRY: Duration = Duration::from_secs(1);

/// What a listener forwards to: one Service port's balancer.
#[derive(Debug)]
pub struct Target {
    /// `namespace/name:port`, for logs.
    pub service: String,
    pub balancer: Arc<Mutex<Balancer>>,
}

/// The handle the service proxy keeps for a running listener.
pub struct Listener {
    target: Arc<RwLock<Arc<Target>>>,
    cancel: CancellationToken,
}

enum State {
    Binding,
    Standby { retry_at: tokio::time::Instant },
    Serving(TcpListener),
    Closed,
}

impl Listener {
    /// Starts listening on `addr`; the task ends when `cancel` fires (the Service port went
    /// away, or the proxy stops). Forwarded connections end with `shutdown` only.
    pub fn start(
        addr: SocketAddr,
        target: Arc<Target>,
        cancel: CancellationToken,
        shutdown: CancellationToken,
    ) -> Listener {
        let target = Arc::new(RwLock::new(target));
        tokio::spawn(run(addr, target.clone(), cancel.clone(), shutdown));
        Listener { target, cancel }
    }

    /// Points new connections at another Service port (a NodePort handed to another Service).
    pub fn retarget(&self, target: Arc<Target>) {
        if let Ok(mut t) = self.target.write() {
            *t = target;
        }
    }

    pub fn target(&self) -> Option<Arc<Target>> {
        self.target.read().ok().map(|t| t.clone())
    }

    pub fn close(&self) {
        self.cancel.cancel();
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

async fn run(
    addr: SocketAddr,
    target: Arc<RwLock<Arc<Target>>>,
    cancel: CancellationToken,
    shutdown: CancellationToken,
) {
    let mut state = State::Binding;
    let mut last_error = String::new();
    loop {
        state = match state {
            State::Binding => match bind(addr) {
                Ok(l) => {
                    tracing::debug!(%addr, "service proxy listening");
                    last_error.clear();
                    State::Serving(l)
                }
                Err(e) => {
                    let msg = e.to_string();
                    if msg != last_error {
                        if e.kind() == std::io::ErrorKind::AddrInUse {
                            tracing::debug!(%addr, "address held elsewhere (another node's proxy on this host?); standing by");
                        } else {
                            tracing::warn!(%addr, error = %e, "service proxy cannot listen; retrying");
                        }
                        last_error = msg;
                    }
                    State::Standby {
                        retry_at: tokio::time::Instant::now() + STANDBY_RETRY,
                    }
                }
            },
            State::Standby { retry_at } => tokio::select! {
                _ = tokio::time::sleep_until(retry_at) => State::Binding,
                _ = cancel.cancelled() => State::Closed,
            },
            State::Serving(listener) => serve(&listener, &target, &cancel, &shutdown).await,
            State::Closed => {
                tracing::debug!(%addr, "service proxy listener closed");
                return;
            }
        };
    }
}

/// Binds without SO_REUSEPORT on purpose: a second proxy on this host must fail and stand by,
/// not split the connections (and the session affinity) with the first.
fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    // A restarted proxy rebinds at once despite connections in TIME_WAIT.
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

async fn serve(
    listener: &TcpListener,
    target: &Arc<RwLock<Arc<Target>>>,
    cancel: &CancellationToken,
    shutdown: &CancellationToken,
) -> State {
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = cancel.cancelled() => return State::Closed,
        };
        match accepted {
            Ok((stream, peer)) => {
                let Ok(t) = target.read().map(|t| t.clone()) else {
                    return State::Closed;
                };
                tokio::spawn(forward(stream, peer, t, shutdown.clone()));
            }
            Err(e) if is_transient(&e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(error = %e, "accepting a connection");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "service proxy listener failed; re-binding");
                return State::Standby {
                    retry_at: tokio::time::Instant::now() + STANDBY_RETRY,
                };
            }
        }
    }
}

fn is_transient(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionAborted | ConnectionReset | Interrupted | WouldBlock
    ) || e.raw_os_error().is_some_and(|c| c == 23 || c == 24) // ENFILE, EMFILE
}

/// Forwards one client connection to an endpoint of `target`, trying the next endpoint when
/// one refuses. With no endpoint left the client gets a TCP reset at once, which clients
/// report as "connection reset" immediately instead of hanging.
async fn forward(
    client: TcpStream,
    peer: SocketAddr,
    target: Arc<Target>,
    shutdown: CancellationToken,
) {
    let mut tried: Vec<SocketAddr> = Vec::new();
    loop {
        let pick = match target.balancer.lock() {
            Ok(mut b) => b.pick(peer.ip(), Instant::now(), &tried),
            Err(_) => None,
        };
        let Some(endpoint) = pick else {
            if tried.is_empty() {
                tracing::debug!(service = %target.service, client = %peer, "no ready endpoints; resetting");
            } else {
                tracing::debug!(service = %target.service, client = %peer, ?tried, "every endpoint refused; resetting");
            }
            reset(client);
            return;
        };
        match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(endpoint)).await {
            Ok(Ok(mut upstream)) => {
                if let Ok(mut b) = target.balancer.lock() {
                    b.connected(peer.ip(), endpoint, Instant::now());
                }
                let _ = upstream.set_nodelay(true);
                let _ = client.set_nodelay(true);
                let mut client = client;
                tokio::select! {
                    _ = tokio::io::copy_bidirectional(&mut client, &mut upstream) => {}
                    _ = shutdown.cancelled() => {}
                }
                return;
            }
            Ok(Err(e)) => {
                tracing::debug!(service = %target.service, %endpoint, error = %e, "endpoint refused; trying the next");
            }
            Err(_) => {
                tracing::debug!(service = %target.service, %endpoint, "endpoint did not answer; trying the next");
            }
        }
        tried.push(endpoint);
    }
}

/// Closes with RST rather than FIN (SO_LINGER 0).
fn reset(stream: TcpStream) {
    let _ = socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO));
    drop(stream);
}
