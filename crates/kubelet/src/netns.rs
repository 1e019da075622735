//! Pod network namespaces and the forwarding that makes a pod's IP reach into one.
//!
//! A pod whose containers run in Linux namespaces (runc) gets its own network namespace, made
//! here by the kubelet rather than by the container runtime so that every runtime of a mixed
//! pod can use the same one: runc containers join it through the OCI spec's namespace path,
//! and a Wasm container of the same pod binds its HTTP listeners inside it. The namespace is
//! kept alive as a bind mount of its nsfs file under the pod's directory (what `ip netns add`
//! does under /run/netns), so it outlives the thread that made it and needs no process.
//!
//! Inside the namespace only `lo` exists (brought up here), so nothing in it can reach any
//! other address. The pod's 127.x IP lives in the host namespace: for each containerPort the
//! kubelet listens on podIP:port there and splices every connection to a socket connected to
//! 127.0.0.1:port *inside* the namespace ([`connect`]), which is how Services, probes,
//! port-forward and Ingress reach such a pod without knowing about namespaces.
//!
//! A socket belongs to the namespace it was created in, whatever thread uses it later: each
//! socket is created on a short-lived thread that entered the namespace ([`setns`] affects
//! only the calling thread), then handed back to the async runtime.
//!
//! [`setns`]: nix::sched::setns

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags};
use nix::sched::CloneFlags;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

#[derive(Debug, thiserror::Error)]
pub enum NetnsError {
    #[error("creating the network namespace file {path}")]
    File {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("unsharing a new network namespace")]
    Unshare(#[source] nix::Error),
    #[error("pinning the network namespace at {path}")]
    Mount {
        path: PathBuf,
        #[source]
        source: nix::Error,
    },
    #[error("entering the network namespace {path}")]
    Enter {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("bringing up lo in the network namespace: {0}")]
    Loopback(String),
    #[error("the namespace thread ended without an answer")]
    Thread,
    #[error("listening on {addr} for the pod's network namespace")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// Runs `f` on a fresh thread that has entered the network namespace at `path`; the thread
/// ends afterwards, so no pooled thread is ever left in a pod's namespace.
async fn in_namespace<T: Send + 'static>(
    path: &Path,
    f: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> Result<std::io::Result<T>, NetnsError> {
    let path = path.to_path_buf();
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let entered = std::fs::File::open(&path).and_then(|ns| {
            nix::sched::setns(ns.as_fd(), CloneFlags::CLONE_NEWNET).map_err(std::io::Error::from)
        });
        let result = match entered {
            Ok(()) => Ok(f()),
            Err(source) => Err(NetnsError::Enter { path, source }),
        };
        let _ = tx.send(result);
    });
    rx.await.map_err(|_| NetnsError::Thread)?
}

/// Creates a network namespace pinned at `path` with `lo` up. An existing namespace at `path`
/// (a kubelet restart) is kept.
pub async fn create(path: &Path) -> Result<(), NetnsError> {
    if is_pinned(path) {
        return Ok(());
    }
    let file_err = |source| NetnsError::File {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(file_err)?;
    }
    std::fs::File::create(path).map_err(file_err)?;
    let target = path.to_path_buf();
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let result = (|| -> Result<(), NetnsError> {
            nix::sched::unshare(CloneFlags::CLONE_NEWNET).map_err(NetnsError::Unshare)?;
            nix::mount::mount(
                Some("/proc/thread-self/ns/net"),
                &target,
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )
            .map_err(|source| NetnsError::Mount {
                path: target.clone(),
                source,
            })?;
            // A child inherits the namespaces of the thread that forks it: `ip` runs in the
            // new namespace. (Setting IFF_UP directly needs an ioctl, i.e. unsafe code.)
            let out = std::process::Command::new("ip")
                .args(["link", "set", "lo", "up"])
                .output()
                .map_err(|e| NetnsError::Loopback(format!("running ip: {e}")))?;
            if !out.status.success() {
                return Err(NetnsError::Loopback(
                    String::from_utf8_lossy(&out.stderr).trim().to_string(),
                ));
            }
            Ok(())
        })();
        let _ = tx.send(result);
    });
    let result = rx.await.map_err(|_| NetnsError::Thread)?;
    if result.is_err() {
        remove(path);
    }
    result
}

/// Whether `path` is a pinned namespace (an nsfs bind mount, not the empty file under it).
fn is_pinned(path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let (Ok(file), Some(parent)) = (std::fs::metadata(path), path.parent()) else {
        return false;
    };
    std::fs::metadata(parent).is_ok_and(|p| p.dev() != file.dev())
}

/// Unpins and removes the namespace at `path`; it goes away once nothing uses it.
pub fn remove(path: &Path) {
    let _ = nix::mount::umount2(path, MntFlags::MNT_DETACH);
    let _ = std::fs::remove_file(path);
}

/// A TCP connection to `127.0.0.1:port` inside the namespace at `path`.
pub async fn connect(path: &Path, port: u16) -> std::io::Result<TcpStream> {
    let socket = in_namespace(path, || {
        let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
        s.set_nonblocking(true)?;
        Ok(s)
    })
    .await
    .map_err(std::io::Error::other)??;
    let socket = tokio::net::TcpSocket::from_std_stream(socket.into());
    socket
        .connect(SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port)))
        .await
}

/// A listener on `0.0.0.0:port` inside the namespace at `path` (a Wasm container's HTTP port in a
/// pod shared with Linux containers).
pub async fn listen(path: &Path, port: u16) -> std::io::Result<TcpListener> {
    let listener = in_namespace(path, move || {
        let l = std::net::TcpListener::bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port))?;
        l.set_nonblocking(true)?;
        Ok(l)
    })
    .await
    .map_err(std::io::Error::other)??;
    TcpListener::from_std(listener)
}

/// Forwards `ip:port` in the host namespace into `127.0.0.1:port` of the namespace at `path`
/// for each port, until `cancel`. Binds before returning, so a bind error is the caller's.
pub async fn forward(
    path: &Path,
    ip: std::net::IpAddr,
    ports: &[u16],
    cancel: CancellationToken,
) -> Result<(), NetnsError> {
    let mut listeners = Vec::new();
    for &port in ports {
        let addr = SocketAddr::new(ip, port);
        let l = TcpListener::bind(addr)
            .await
            .map_err(|source| NetnsError::Listen { addr, source })?;
        listeners.push((port, l));
    }
    for (port, listener) in listeners {
        let path = path.to_path_buf();
        let cancel = cancel.clone();
        tokio::spawn(async move {
            loop {
                let (mut inbound, _) = tokio::select! {
                    _ = cancel.cancelled() => return,
                    accepted = listener.accept() => match accepted {
                        Ok(a) => a,
                        Err(e) => {
                            tracing::debug!(error = %e, "accepting a forwarded connection");
                            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                            continue;
                        }
                    },
                };
                let path = path.clone();
                let cancel = cancel.clone();
                tokio::spawn(async move {
                    // Nothing listening inside: the client sees its connection closed, as
                    // it would see a reset from a real pod.
                    let Ok(mut outbound) = connect(&path, port).await else {
                        return;
                    };
                    let _ = inbound.set_nodelay(true);
                    let _ = outbound.set_nodelay(true);
                    tokio::select! {
                        _ = cancel.cancelled() => {}
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                    }
                });
            }
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Needs root (unshare, mount); the e2e tests run as root too, so no skip here either.
    #[tokio::test]
    async fn a_listener_inside_is_reached_through_the_forwarder() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ns = dir.path().join("netns");
        create(&ns).await.expect("create namespace");
        assert!(is_pinned(&ns));
        let inside = listen(&ns, 18080).await.expect("listen inside");
        // The port is free in the host namespace: the listener is not there.
        let host = std::net::TcpListener::bind("127.0.0.1:18080").expect("host port free");
        drop(host);
        let ip: std::net::IpAddr = "127.200.0.9".parse().expect("ip");
        let cancel = CancellationToken::new();
        forward(&ns, ip, &[18080], cancel.clone())
            .await
            .expect("forward");
        let server = tokio::spawn(async move {
            let (mut s, _) = inside.accept().await.expect("accept");
            s.write_all(b"hello from inside").await.expect("write");
        });
        let mut c = TcpStream::connect((ip, 18080)).await.expect("connect");
        let mut got = String::new();
        c.read_to_string(&mut got).await.expect("read");
        assert_eq!(got, "hello from inside");
        server.await.expect("server");
        cancel.cancel();
        remove(&ns);
        assert!(!ns.exists());
    }
}
