//! A port-forward session: Kubernetes' `portforward.k8s.io` protocol over a SPDY connection,
//! as the kubelet serves it.
//!
//! For every local connection the client opens two streams carrying the same `requestid` and
//! `port` headers: an `error` stream (the server writes why forwarding failed, then closes
//! it) and a `data` stream (the bytes of the connection, both ways). The session answers each
//! SYN_STREAM at once (client-go waits for the reply), and once both streams of a request are
//! there it connects to the pod's IP on that port and copies. When one direction ends, the
//! other gets a moment to finish too (as containerd's port forwarding does), then both
//! streams are closed: the client handles a connection until its error stream closes.
//!
//! The session is transport-agnostic: it reads raw connection bytes from one channel and
//! writes raw bytes to another, so the same code serves SPDY tunnelled in WebSocket messages
//! (what kubectl 1.30+ sends) and, if ever needed, a plain upgraded connection.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::spdy::{self, Decoder, Encoder, Frame};

/// The SPDY subprotocol of port forwarding, and its WebSocket-tunnelled form (KEP-4006).
pub const PROTOCOL_V1: &str = "portforward.k8s.io";
pub const TUNNELED_PROTOCOL_V1: &str = "SPDY/3.1+portforward.k8s.io";

/// How long connecting to the pod may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// After one direction of a forwarded connection ends, how long the other gets.
const LINGER: Duration = Duration::from_secs(1);
/// Bytes read from the pod per DATA frame.
const CHUNK: usize = 32 * 1024;
/// SPDY's initial flow-control window; consumed bytes are handed back in WINDOW_UPDATEs.
const WINDOW: u32 = 64 * 1024;

/// The pod a session forwards to.
#[derive(Debug, Clone)]
pub struct Target {
    pub namespace: String,
    pub pod: String,
    pub uid: String,
    pub ip: IpAddr,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StreamType {
    Data,
    Error,
}

/// The streams of one forwarded connection, as they arrive.
#[derive(Default)]
struct Pair {
    port: Option<u16>,
    data: Option<u32>,
    error: Option<u32>,
    /// Client → pod bytes of the data stream (`None` = the client closed its side), buffered
    /// until the pair is complete.
    rx: Option<mpsc::UnboundedReceiver<Option<Bytes>>>,
    started: bool,
}

struct StreamEntry {
    kind: StreamType,
    request_id: String,
    to_pod: Option<mpsc::UnboundedSender<Option<Bytes>>>,
    unacked: u32,
}

/// Serves one session until the client goes away (`incoming` ends) or `shutdown`.
pub async fn serve(
    mut incoming: mpsc::Receiver<Bytes>,
    outgoing: mpsc::Sender<Bytes>,
    target: Target,
    shutdown: CancellationToken,
) {
    let done = shutdown.child_token();
    let (frames, frames_rx) = mpsc::unbounded_channel::<Frame>();
    let writer = tokio::spawn(write_frames(frames_rx, outgoing, done.clone()));
    let mut decoder = Decoder::new();
    let mut buf = BytesMut::new();
    let mut streams: HashMap<u32, StreamEntry> = HashMap::new();
    let mut pairs: HashMap<String, Pair> = HashMap::new();
    let mut session_unacked = 0u32;
    'session: loop {
        let chunk = tokio::select! {
            c = incoming.recv() => c,
            _ = done.cancelled() => None,
        };
        let Some(chunk) = chunk else { break };
        buf.extend_from_slice(&chunk);
        loop {
            let frame = match decoder.decode(&mut buf) {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(e) => {
                    tracing::debug!(pod = %target.pod, error = %e, "port-forward: bad SPDY frame");
                    let _ = frames.send(Frame::GoAway {
                        last_good_stream_id: streams.keys().copied().max().unwrap_or(0),
                        status: 1,
                    });
                    break 'session;
                }
            };
            match frame {
                Frame::SynStream {
                    stream_id, headers, ..
                } => {
                    let _ = frames.send(Frame::SynReply {
                        stream_id,
                        fin: false,
                        headers: Vec::new(),
                    });
                    let kind = match spdy::header(&headers, "streamtype") {
                        Some("data") => StreamType::Data,
                        Some("error") => StreamType::Error,
                        other => {
                            tracing::debug!(?other, "port-forward: unknown stream type");
                            let _ = frames.send(Frame::RstStream {
                                stream_id,
                                status: spdy::RST_PROTOCOL_ERROR,
                            });
                            continue;
                        }
                    };
                    let request_id = spdy::header(&headers, "requestid")
                        .unwrap_or("")
                        .to_string();
                    let port = spdy::header(&headers, "port").and_then(|p| p.parse::<u16>().ok());
                    let pair = pairs.entry(request_id.clone()).or_default();
                    pair.port = pair.port.or(port);
                    let mut to_pod = None;
                    match kind {
                        StreamType::Data => {
                            let (tx, rx) = mpsc::unbounded_channel();
                            to_pod = Some(tx);
                            pair.data = Some(stream_id);
                            pair.rx = Some(rx);
                        }
                        StreamType::Error => pair.error = Some(stream_id),
                    }
                    streams.insert(
                        stream_id,
                        StreamEntry {
                            kind,
                            request_id: request_id.clone(),
                            to_pod,
                            unacked: 0,
                        },
                    );
                    if let (Some(data), Some(error), false) = (pair.data, pair.error, pair.started)
                    {
                        pair.started = true;
                        let rx = pair.rx.take();
                        let port = pair.port;
                        tokio::spawn(forward(
                            target.clone(),
                            port,
                            data,
                            error,
                            rx,
                            frames.clone(),
                            done.clone(),
                        ));
                    }
                }
                Frame::Data {
                    stream_id,
                    fin,
                    data,
                } => {
                    let len = data.len() as u32;
                    let Some(entry) = streams.get_mut(&stream_id) else {
                        continue;
                    };
                    if entry.kind == StreamType::Data
                        && let Some(tx) = &entry.to_pod
                    {
                        if !data.is_empty() {
                            let _ = tx.send(Some(data));
                        }
                        if fin {
                            let _ = tx.send(None);
                            entry.to_pod = None;
                        }
                    }
                    // Give the window back as it is used, for peers that keep to it.
                    entry.unacked += len;
                    session_unacked += len;
                    if entry.unacked >= WINDOW / 2 && !fin {
                        let _ = frames.send(Frame::WindowUpdate {
                            stream_id,
                            delta: entry.unacked,
                        });
                        entry.unacked = 0;
                    }
                    if session_unacked >= WINDOW / 2 {
                        let _ = frames.send(Frame::WindowUpdate {
                            stream_id: 0,
                            delta: session_unacked,
                        });
                        session_unacked = 0;
                    }
                }
                Frame::RstStream { stream_id, .. } => {
                    if let Some(entry) = streams.remove(&stream_id) {
                        if let Some(tx) = entry.to_pod {
                            let _ = tx.send(None);
                        }
                        pairs.remove(&entry.request_id);
                    }
                }
                // Answer the client's keep-alive pings (kubectl sends one every 10 s).
                Frame::Ping { id } => {
                    let _ = frames.send(Frame::Ping { id });
                }
                Frame::GoAway { .. } => break 'session,
                Frame::SynReply { .. }
                | Frame::Headers { .. }
                | Frame::Settings { .. }
                | Frame::WindowUpdate { .. }
                | Frame::Unknown { .. } => {}
            }
        }
    }
    // The client is gone: so are its connections to the pod.
    done.cancel();
    drop(frames);
    let _ = writer.await;
}

/// Encodes frames in order onto the connection.
async fn write_frames(
    mut frames: mpsc::UnboundedReceiver<Frame>,
    outgoing: mpsc::Sender<Bytes>,
    done: CancellationToken,
) {
    let mut encoder = Encoder::new();
    loop {
        let frame = tokio::select! {
            f = frames.recv() => f,
            _ = done.cancelled() => None,
        };
        let Some(frame) = frame else { return };
        let mut out = BytesMut::new();
        if let Err(e) = encoder.encode(&frame, &mut out) {
            tracing::debug!(error = %e, "port-forward: frame not encodable");
            continue;
        }
        // Whatever else is ready goes out in the same message.
        while let Ok(next) = frames.try_recv() {
            if encoder.encode(&next, &mut out).is_err() {
                break;
            }
        }
        if outgoing.send(out.freeze()).await.is_err() {
            return;
        }
    }
}

/// Forwards one connection: connects to the pod, copies both ways, closes both streams.
async fn forward(
    target: Target,
    port: Option<u16>,
    data: u32,
    error: u32,
    rx: Option<mpsc::UnboundedReceiver<Option<Bytes>>>,
    frames: mpsc::UnboundedSender<Frame>,
    done: CancellationToken,
) {
    let fin = |stream_id: u32, data: Bytes| Frame::Data {
        stream_id,
        fin: true,
        data,
    };
    let fail = |why: String| {
        // The client prints this as "error forwarding port N to pod P, uid U: <why>".
        let _ = frames.send(fin(error, Bytes::from(why)));
        let _ = frames.send(fin(data, Bytes::new()));
    };
    let Some(port) = port.filter(|p| *p != 0) else {
        fail("invalid port: a port must be a number from 1 to 65535".into());
        return;
    };
    let (Some(mut rx), addr) = (rx, SocketAddr::new(target.ip, port)) else {
        fail("the data stream went away".into());
        return;
    };
    let conn = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => {
            fail(format!(
                "error forwarding port {port} to pod {}, uid {}: failed to connect to {addr}: {e}",
                target.pod, target.uid
            ));
            return;
        }
        Err(_) => {
            fail(format!(
                "error forwarding port {port} to pod {}, uid {}: timed out connecting to {addr}",
                target.pod, target.uid
            ));
            return;
        }
    };
    let _ = conn.set_nodelay(true);
    let (mut from_pod, mut to_pod) = conn.into_split();
    let upstream = {
        let frames = frames.clone();
        async move {
            let mut buf = vec![0u8; CHUNK];
            loop {
                match from_pod.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        let chunk = Bytes::copy_from_slice(&buf[..n]);
                        if frames
                            .send(Frame::Data {
                                stream_id: data,
                                fin: false,
                                data: chunk,
                            })
                            .is_err()
                        {
                            break;
                        }
                    }
                }
            }
            let _ = frames.send(fin(data, Bytes::new()));
        }
    };
    let downstream = async move {
        while let Some(Some(chunk)) = rx.recv().await {
            if to_pod.write_all(&chunk).await.is_err() {
                break;
            }
        }
        let _ = to_pod.shutdown().await;
    };
    tokio::pin!(upstream);
    tokio::pin!(downstream);
    let copy = async {
        tokio::select! {
            _ = &mut upstream => {
                let _ = tokio::time::timeout(LINGER, &mut downstream).await;
            }
            _ = &mut downstream => {
                let _ = tokio::time::timeout(LINGER, &mut upstream).await;
            }
        }
    };
    tokio::select! {
        _ = copy => {}
        _ = done.cancelled() => return,
    }
    let _ = frames.send(fin(data, Bytes::new()));
    let _ = frames.send(fin(error, Bytes::new()));
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    /// A client speaking the protocol with the codec, as client-go's port forwarder does.
    struct Client {
        enc: Encoder,
        dec: Decoder,
        buf: BytesMut,
        tx: mpsc::Sender<Bytes>,
        rx: mpsc::Receiver<Bytes>,
    }

    impl Client {
        async fn send(&mut self, frame: Frame) {
            let mut out = BytesMut::new();
            self.enc.encode(&frame, &mut out).expect("encode");
            self.tx.send(out.freeze()).await.expect("send");
        }

        async fn next(&mut self) -> Frame {
            loop {
                if let Some(f) = self.dec.decode(&mut self.buf).expect("decode") {
                    return f;
                }
                let chunk = tokio::time::timeout(Duration::from_secs(10), self.rx.recv())
                    .await
                    .expect("a frame in time")
                    .expect("session open");
                self.buf.extend_from_slice(&chunk);
            }
        }

        async fn open(&mut self, id: u32, kind: &str, port: u16, request: &str) {
            self.send(Frame::SynStream {
                stream_id: id,
                associated_to: 0,
                priority: 0,
                fin: false,
                unidirectional: false,
                headers: vec![
                    ("streamtype".into(), kind.into()),
                    ("port".into(), port.to_string()),
                    ("requestid".into(), request.into()),
                ],
            })
            .await;
        }
    }

    fn session() -> (Client, CancellationToken) {
        let (to_session, incoming) = mpsc::channel(16);
        let (outgoing, from_session) = mpsc::channel(16);
        let shutdown = CancellationToken::new();
        let target = Target {
            namespace: "default".into(),
            pod: "web".into(),
            uid: "u1".into(),
            ip: "127.0.0.1".parse().expect("ip"),
        };
        tokio::spawn(serve(incoming, outgoing, target, shutdown.clone()));
        (
            Client {
                enc: Encoder::new(),
                dec: Decoder::new(),
                buf: BytesMut::new(),
                tx: to_session,
                rx: from_session,
            },
            shutdown,
        )
    }

    #[tokio::test]
    async fn forwards_a_connection_both_ways_and_closes_both_streams() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        tokio::spawn(async move {
            let (mut conn, _) = listener.accept().await.expect("accept");
            let mut got = Vec::new();
            conn.read_to_end(&mut got).await.expect("read");
            conn.write_all(b"echo:").await.expect("write");
            conn.write_all(&got).await.expect("write");
        });
        let (mut client, _shutdown) = session();
        client.send(Frame::Ping { id: 1 }).await;
        assert_eq!(client.next().await, Frame::Ping { id: 1 });
        client.open(1, "error", port, "0").await;
        client.open(3, "data", port, "0").await;
        for id in [1, 3] {
            assert!(
                matches!(client.next().await, Frame::SynReply { stream_id, .. } if stream_id == id)
            );
        }
        client
            .send(Frame::Data {
                stream_id: 3,
                fin: true,
                data: Bytes::from_static(b"hello"),
            })
            .await;
        let mut received = Vec::new();
        let mut data_closed = false;
        let mut error_closed = false;
        while !(data_closed && error_closed) {
            match client.next().await {
                Frame::Data {
                    stream_id: 3,
                    fin,
                    data,
                } => {
                    received.extend_from_slice(&data);
                    data_closed |= fin;
                }
                Frame::Data {
                    stream_id: 1,
                    fin,
                    data,
                } => {
                    assert!(data.is_empty(), "no error expected: {data:?}");
                    error_closed |= fin;
                }
                Frame::WindowUpdate { .. } => {}
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(received, b"echo:hello");
    }

    #[tokio::test]
    async fn a_refused_connection_is_reported_on_the_error_stream() {
        // A port nothing listens on: bind, take the port, close.
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            l.local_addr().expect("addr").port()
        };
        let (mut client, _shutdown) = session();
        client.open(3, "data", port, "7").await;
        client.open(5, "error", port, "7").await;
        let mut message = Vec::new();
        let mut closed = (false, false);
        while closed != (true, true) {
            match client.next().await {
                Frame::SynReply { .. } => {}
                Frame::Data {
                    stream_id: 5,
                    fin,
                    data,
                } => {
                    message.extend_from_slice(&data);
                    closed.0 |= fin;
                }
                Frame::Data {
                    stream_id: 3, fin, ..
                } => closed.1 |= fin,
                other => panic!("unexpected {other:?}"),
            }
        }
        let message = String::from_utf8_lossy(&message);
        assert!(
            message.contains(&format!("error forwarding port {port} to pod web"))
                && message.contains("refused"),
            "{message}"
        );
    }
}
