//! The agent's load balancer in front of the cluster's API servers (k3s'
//! `agent/loadbalancer`).
//!
//! An agent may be given several servers. Its own clients (kubelet, proxy) talk to one local
//! loopback address; each connection accepted there is passed, as raw bytes, to the server
//! that answered last, or to the next one that accepts a TCP connection. TLS stays end to
//! end: every server's certificate also names 127.0.0.1, so a client that dialled the balancer
//! still verifies the server it reached. When a server dies its connections break, the
//! clients' watches reconnect, and the new connections go to a live server.
//!
//! ```text
//!   accept ─► dial preferred ──ok──► pipe until either side closes
//!                 │ refused / timed out
//!                 ▼
//!             dial the next (in order, once round) ──none left──► drop the connection
//! ```

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// How long one dial may take before the next server is tried.
const DIAL_TIMEOUT: Duration = Duration::from_secs(3);

/// Why the balancer could not start.
#[derive(Debug, thiserror::Error)]
pub enum LbError {
    #[error("no API server addresses to balance over")]
    NoServers,
    #[error("binding the API server load balancer on {addr}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// A running balancer: its local address, and the server it currently prefers.
#[derive(Debug, Clone)]
pub struct ApiServerLb {
    local: SocketAddr,
    servers: Arc<Vec<String>>,
    preferred: Arc<AtomicUsize>,
}

impl ApiServerLb {
    /// Binds `bind` (port 0 for any) and serves until `shutdown`. `servers` are `HOST:PORT`
    /// addresses, tried in this order.
    pub async fn start(
        bind: SocketAddr,
        servers: Vec<String>,
        shutdown: CancellationToken,
    ) -> Result<ApiServerLb, LbError> {
        if servers.is_empty() {
            return Err(LbError::NoServers);
        }
        let listener = TcpListener::bind(bind)
            .await
            .map_err(|source| LbError::Bind { addr: bind, source })?;
        let local = listener
            .local_addr()
            .map_err(|source| LbError::Bind { addr: bind, source })?;
        let lb = ApiServerLb {
            local,
            servers: Arc::new(servers),
            preferred: Arc::new(AtomicUsize::new(0)),
        };
        let serving = lb.clone();
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    _ = shutdown.cancelled() => break,
                    accepted = listener.accept() => accepted,
                };
                let Ok((client, _)) = accepted else {
                    // Out of file descriptors or similar: back off instead of spinning.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                };
                let lb = serving.clone();
                let shutdown = shutdown.clone();
                tokio::spawn(async move { lb.forward(client, shutdown).await });
            }
        });
        Ok(lb)
    }

    /// The local address clients dial.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The server new connections go to first.
    pub fn preferred(&self) -> &str {
        let i = self.preferred.load(Ordering::Relaxed) % self.servers.len();
        &self.servers[i]
    }

    async fn forward(&self, mut client: TcpStream, shutdown: CancellationToken) {
        let Some(mut upstream) = self.dial().await else {
            tracing::warn!(servers = ?self.servers, "no API server reachable");
            return;
        };
        let _ = client.set_nodelay(true);
        let _ = upstream.set_nodelay(true);
        tokio::select! {
            _ = shutdown.cancelled() => {}
            _ = tokio::io::copy_bidirectional(&mut client, &mut upstream) => {}
        }
    }

    /// Dials the preferred server, then each other one in turn; the first that accepts
    /// becomes the preferred one.
    async fn dial(&self) -> Option<TcpStream> {
        let start = self.preferred.load(Ordering::Relaxed);
        for step in 0..self.servers.len() {
            let i = (start + step) % self.servers.len();
            let server = &self.servers[i];
            match tokio::time::timeout(DIAL_TIMEOUT, TcpStream::connect(server.as_str())).await {
                Ok(Ok(stream)) => {
                    if step > 0 {
                        tracing::info!(%server, "API server load balancer switched server");
                    }
                    self.preferred.store(i, Ordering::Relaxed);
                    return Some(stream);
                }
                Ok(Err(error)) => tracing::debug!(%server, %error, "API server not reachable"),
                Err(_) => tracing::debug!(%server, "API server dial timed out"),
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A server that answers every connection with its own name.
    async fn named(name: &'static str) -> (String, tokio::task::JoinHandle<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        let task = tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let _ = stream.write_all(name.as_bytes()).await;
            }
        });
        (addr, task)
    }

    async fn ask(lb: &ApiServerLb) -> String {
        let mut stream = TcpStream::connect(lb.local_addr()).await.expect("dial lb");
        let mut answer = String::new();
        let _ =
            tokio::time::timeout(Duration::from_secs(5), stream.read_to_string(&mut answer)).await;
        answer
    }

    #[tokio::test]
    async fn connections_go_to_a_live_server_and_stay_there() {
        let shutdown = CancellationToken::new();
        let (one, one_task) = named("one").await;
        let (two, _two_task) = named("two").await;
        let lb = ApiServerLb::start(
            "127.0.0.1:0".parse().expect("addr"),
            vec![one.clone(), two.clone()],
            shutdown.clone(),
        )
        .await
        .expect("start");
        assert_eq!(ask(&lb).await, "one");
        // The first server goes away: its port now refuses, and the next one answers.
        one_task.abort();
        let _ = one_task.await;
        assert_eq!(ask(&lb).await, "two");
        assert_eq!(lb.preferred(), two);
        assert_eq!(ask(&lb).await, "two");
        shutdown.cancel();
    }

    #[tokio::test]
    async fn no_servers_is_an_error() {
        let result = ApiServerLb::start(
            "127.0.0.1:0".parse().expect("addr"),
            Vec::new(),
            CancellationToken::new(),
        )
        .await;
        assert!(matches!(result, Err(LbError::NoServers)));
    }
}
