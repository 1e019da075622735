//! Container logs in the CRI format the kubelet serves `pods/log` from:
//! `<RFC3339Nano UTC> <stdout|stderr> <F|P> <text>\n`, `P` marking a partial line continued
//! by the next record.
//!
//! Lines are assembled inside the guest's output stream ([`LogPipe`]), timestamped when they
//! complete, formatted there and queued, already formatted, to one writer task per container
//! through a bounded channel. A guest that writes faster than the disk takes is suspended on
//! its own write (never anyone else's), and the writer appends in large batches.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;
use wasmkube_kubelet::runtime::LogSink;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

/// Lines longer than this are split into `P` records, as containerd does.
pub(crate) const MAX_LINE: usize = 16 * 1024;

/// Formatted but unsent output above which the guest's writes wait for the writer.
const HIGH_WATER: usize = 256 * 1024;

/// How much one `check_write` permits: one write's worth.
const WRITE_PERMIT: usize = 64 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// The sending side of a container's log writer.
pub(crate) type LogTx = mpsc::Sender<Bytes>;

/// Starts the writer task of `sink`; it ends when every sender is gone, after writing all
/// that was queued. Returns the sender and the task's handle.
pub(crate) fn spawn_writer(sink: &LogSink, queue: usize) -> (LogTx, tokio::task::JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(queue.max(1));
    let handle = tokio::spawn(write_loop(sink.path.clone(), sink.max_bytes, rx));
    (tx, handle)
}

async fn write_loop(path: PathBuf, max_bytes: u64, mut rx: mpsc::Receiver<Bytes>) {
    let mut file = match open_append(&path).await {
        Ok(f) => Some(f),
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "cannot open container log; output is dropped");
            None
        }
    };
    let mut size = match &file {
        Some(_) => tokio::fs::metadata(&path)
            .await
            .map(|m| m.len())
            .unwrap_or(0),
        None => 0,
    };
    while let Some(first) = rx.recv().await {
        let Some(f) = file.as_mut() else { continue };
        let mut batch = BytesMut::from(&first[..]);
        // Coalesce what is already queued into one write.
        while batch.len() < (1 << 20) {
            match rx.try_recv() {
                Ok(more) => batch.extend_from_slice(&more),
                Err(_) => break,
            }
        }
        if let Err(e) = f.write_all(&batch).await.and(f.flush().await) {
            tracing::warn!(path = %path.display(), error = %e, "writing container log");
            continue;
        }
        size += batch.len() as u64;
        if max_bytes > 0 && size > max_bytes {
            // Truncate to the newest half so the file stays under the cap with room to grow.
            // Close before the file is replaced underneath.
            drop(file.take());
            let (p, keep) = (path.clone(), max_bytes / 2);
            match tokio::task::spawn_blocking(move || keep_tail(&p, keep)).await {
                Ok(Ok(n)) => size = n,
                Ok(Err(e)) => {
                    tracing::warn!(path = %path.display(), error = %e, "truncating container log")
                }
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "truncating container log")
                }
            }
            file = open_append(&path).await.ok();
        }
    }
    if let Some(mut f) = file {
        let _ = f.flush().await;
    }
}

async fn open_append(path: &Path) -> std::io::Result<tokio::fs::File> {
    if let Some(dir) = path.parent() {
        tokio::fs::create_dir_all(dir).await?;
    }
    tokio::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .await
}

/// Rewrites `path` to its last `keep` bytes, starting at a line boundary, through a
/// temporary file renamed into place (readers never see a half-written log).
fn keep_tail(path: &Path, keep: u64) -> std::io::Result<u64> {
    use std::io::{Read, Seek, SeekFrom, Write};
    let mut f = std::fs::File::open(path)?;
    let len = f.metadata()?.len();
    let start = len.saturating_sub(keep);
    f.seek(SeekFrom::Start(start))?;
    let mut tail = Vec::with_capacity((len - start) as usize);
    f.read_to_end(&mut tail)?;
    let from = if start == 0 {
        0
    } else {
        tail.iter()
            .position(|&b| b == b'\n')
            .map(|i| i + 1)
            .unwrap_or(tail.len())
    };
    let tmp = path.with_extension("truncating");
    let mut out = std::fs::File::create(&tmp)?;
    out.write_all(&tail[from..])?;
    std::fs::rename(&tmp, path)?;
    Ok((tail.len() - from) as u64)
}

/// Appends `<ts> <stream> <tag> <line>\n` to `out`.
pub(crate) fn format_record(
    out: &mut BytesMut,
    ts: SystemTime,
    stream: Stream,
    partial: bool,
    line: &[u8],
) {
    out.extend_from_slice(rfc3339_nano(ts).as_bytes());
    out.extend_from_slice(b" ");
    out.extend_from_slice(stream.as_str().as_bytes());
    out.extend_from_slice(if partial { b" P " } else { b" F " });
    out.extend_from_slice(line);
    out.extend_from_slice(b"\n");
}

/// `2026-01-02T03:04:05.123456789Z`: UTC with nanoseconds, fixed width.
pub(crate) fn rfc3339_nano(ts: SystemTime) -> String {
    let d = ts.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:09}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_nanos()
    )
}

/// One guest output stream (stdout or stderr of one store) feeding a container's log.
pub(crate) struct LogPipe {
    stream: Stream,
    state: Mutex<PipeState>,
}

struct PipeState {
    /// The current incomplete line.
    partial: BytesMut,
    /// Formatted records not yet handed to the writer.
    out: BytesMut,
    /// `None` once finished.
    tx: Option<LogTx>,
}

impl LogPipe {
    pub(crate) fn new(stream: Stream, tx: LogTx) -> Arc<LogPipe> {
        Arc::new(LogPipe {
            stream,
            state: Mutex::new(PipeState {
                partial: BytesMut::new(),
                out: BytesMut::new(),
                tx: Some(tx),
            }),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, PipeState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Splits `data` into records.
    fn ingest(&self, mut data: &[u8]) {
        let mut st = self.lock();
        if st.tx.is_none() {
            return;
        }
        let now = SystemTime::now();
        let PipeState { partial, out, .. } = &mut *st;
        while !data.is_empty() {
            match data.iter().position(|&b| b == b'\n') {
                Some(i) if partial.len() + i <= MAX_LINE => {
                    partial.extend_from_slice(&data[..i]);
                    format_record(out, now, self.stream, false, partial);
                    partial.clear();
                    data = &data[i + 1..];
                }
                _ => {
                    // No newline within reach: fill the partial line up to the limit and, if
                    // it is full, emit it as a P record.
                    let room = MAX_LINE - partial.len();
                    let take = room.min(data.len());
                    partial.extend_from_slice(&data[..take]);
                    data = &data[take..];
                    if partial.len() == MAX_LINE && !data.is_empty() {
                        format_record(out, now, self.stream, true, partial);
                        partial.clear();
                    }
                }
            }
        }
    }

    /// Hands formatted output to the writer if the queue has room; returns the backlog.
    fn try_send(&self) -> usize {
        let mut st = self.lock();
        if st.out.is_empty() {
            return 0;
        }
        let Some(tx) = st.tx.clone() else { return 0 };
        match tx.try_reserve() {
            Ok(permit) => {
                permit.send(st.out.split().freeze());
                0
            }
            Err(mpsc::error::TrySendError::Full(())) => st.out.len(),
            Err(mpsc::error::TrySendError::Closed(())) => {
                // The writer is gone (its file can't be written): drop output rather than
                // block the guest forever.
                st.out.clear();
                0
            }
        }
    }

    /// Waits until the backlog is handed to the writer.
    async fn drain(&self) {
        loop {
            let (tx, chunk) = {
                let mut st = self.lock();
                match (&st.tx, st.out.is_empty()) {
                    (Some(tx), false) => (tx.clone(), st.out.split().freeze()),
                    _ => return,
                }
            };
            // Only this stream's guest waits here; the lock is not held across the await.
            let _ = tx.send(chunk).await;
        }
    }

    /// Emits a trailing incomplete line, sends everything and releases the writer.
    pub(crate) async fn finish(&self) {
        {
            let mut st = self.lock();
            if !st.partial.is_empty() {
                let PipeState { partial, out, .. } = &mut *st;
                format_record(out, SystemTime::now(), self.stream, false, partial);
                partial.clear();
            }
        }
        self.drain().await;
        self.lock().tx = None;
    }

    /// Writes one complete line from the runtime itself (e.g. why a request failed).
    pub(crate) fn runtime_line(&self, line: &str) {
        let mut st = self.lock();
        if st.tx.is_none() {
            return;
        }
        let mut rec = BytesMut::new();
        for chunk in line.as_bytes().chunks(MAX_LINE) {
            format_record(&mut rec, SystemTime::now(), self.stream, false, chunk);
        }
        st.out.extend_from_slice(&rec);
        drop(st);
        self.try_send();
    }

    /// The WASI stdout/stderr implementation writing here.
    pub(crate) fn wasi_stream(self: &Arc<Self>) -> GuestLog {
        GuestLog(self.clone())
    }
}

/// `StdoutStream` for a [`LogPipe`].
pub(crate) struct GuestLog(Arc<LogPipe>);

impl IsTerminal for GuestLog {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestLog {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(LogOutput(self.0.clone()))
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(LogOutput(self.0.clone()))
    }
}

struct LogOutput(Arc<LogPipe>);

#[wasmtime_wasi::async_trait]
impl Pollable for LogOutput {
    async fn ready(&mut self) {
        self.0.drain().await;
    }
}

impl OutputStream for LogOutput {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.0.ingest(&bytes);
        self.0.try_send();
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        self.0.try_send();
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        // Backpressure: once the backlog is large, the guest waits in `ready` for the writer.
        if self.0.try_send() >= HIGH_WATER {
            Ok(0)
        } else {
            Ok(WRITE_PERMIT)
        }
    }
}

// Used by WASIp3 stdio only (not linked here); same behaviour: accept, queue, and make the
// writer wait when the backlog is large.
impl tokio::io::AsyncWrite for LogOutput {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        if self.0.try_send() >= HIGH_WATER {
            // Re-poll soon; the writer drains in the meantime.
            cx.waker().wake_by_ref();
            return std::task::Poll::Pending;
        }
        self.0.ingest(buf);
        self.0.try_send();
        std::task::Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        self.0.try_send();
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        assert_eq!(rfc3339_nano(UNIX_EPOCH), "1970-01-01T00:00:00.000000000Z");
        let t = UNIX_EPOCH + std::time::Duration::new(1_767_323_045, 123_456_789);
        assert_eq!(rfc3339_nano(t), "2026-01-02T03:04:05.123456789Z");
        let leap = UNIX_EPOCH + std::time::Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(&rfc3339_nano(leap)[..10], "2000-02-29");
    }

    fn records(pipe: &LogPipe) -> Vec<String> {
        let st = pipe.lock();
        String::from_utf8_lossy(&st.out)
            .lines()
            .map(|l| l.split_once(' ').map(|x| x.1).unwrap_or("").to_string())
            .collect()
    }

    #[tokio::test]
    async fn lines_split_and_long_lines_partial() {
        let (tx, _rx) = mpsc::channel(1);
        let pipe = LogPipe::new(Stream::Stdout, tx);
        // Fill the queue so records stay in `out` where the test can read them.
        pipe.ingest(b"x\n");
        pipe.try_send();
        pipe.ingest(b"hello\nwor");
        pipe.ingest(b"ld\n\n");
        let long = vec![b'a'; MAX_LINE * 2 + 10];
        pipe.ingest(&long);
        pipe.ingest(b"\n");
        let r = records(&pipe);
        assert_eq!(r[0], "stdout F hello");
        assert_eq!(r[1], "stdout F world");
        assert_eq!(r[2], "stdout F ");
        assert_eq!(r[3], format!("stdout P {}", "a".repeat(MAX_LINE)));
        assert_eq!(r[4], format!("stdout P {}", "a".repeat(MAX_LINE)));
        assert_eq!(r[5], format!("stdout F {}", "a".repeat(10)));
        assert_eq!(r.len(), 6);
    }

    #[test]
    fn tail_keeps_newest_lines() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("log");
        let content: String = (0..100).map(|i| format!("line {i:03}\n")).collect();
        std::fs::write(&p, &content).unwrap();
        let n = keep_tail(&p, 95).unwrap();
        let kept = std::fs::read_to_string(&p).unwrap();
        assert_eq!(kept.len() as u64, n);
        assert!(
            kept.starts_with("line ") && kept.ends_with("line 099\n"),
            "{kept}"
        );
        assert!(n <= 95);
    }
}
