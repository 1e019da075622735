//! A container's stdout and stderr: FIFOs the shim writes into, read here and written to the
//! kubelet's log file in the CRI format (`<RFC3339Nano> stdout|stderr F|P <text>`).
//!
//! The read end is opened read-write, so it never sees end-of-file while the shim has not
//! opened its end yet; the end of the output is learned from the process's exit instead, after
//! which what is still buffered in the FIFO is drained.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::unix::pipe;
use tokio_util::sync::CancellationToken;
use wasmkube_kubelet::runtime::LogSink;

/// Lines longer than this are split into `P` records, as containerd's CRI does.
const MAX_LINE: usize = 16 * 1024;

/// How long the FIFO must stay quiet after the exit before the output counts as complete.
const DRAIN_QUIET: Duration = Duration::from_millis(100);

/// Makes a FIFO at `path` and opens its read end.
pub fn fifo(path: &Path) -> std::io::Result<pipe::Receiver> {
    make_fifo(path)?;
    pipe::OpenOptions::new()
        .read_write(true)
        .open_receiver(path)
}

/// A new FIFO at `path`, opened for writing without waiting for a reader (read-write, as
/// [`fifo`] does, so it never blocks and never gets EPIPE before the reader comes).
pub fn fifo_sender(path: &Path) -> std::io::Result<pipe::Sender> {
    make_fifo(path)?;
    pipe::OpenOptions::new().read_write(true).open_sender(path)
}

/// A fresh FIFO at `path` (one left by an earlier run is replaced), private to the node.
fn make_fifo(path: &Path) -> std::io::Result<()> {
    let _ = std::fs::remove_file(path);
    nix::unistd::mkfifo(path, nix::sys::stat::Mode::from_bits_truncate(0o600))
        .map_err(std::io::Error::from)
}

/// The log file, shared by the stdout and stderr readers of one container.
pub struct LogFile {
    path: PathBuf,
    max_bytes: u64,
    file: Mutex<Option<(std::fs::File, u64)>>,
}

impl LogFile {
    pub fn open(sink: &LogSink) -> Arc<LogFile> {
        if let Some(dir) = sink.path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&sink.path)
            .map_err(|e| {
                tracing::warn!(path = %sink.path.display(), error = %e, "cannot open container log; output is dropped");
            })
            .ok()
            .map(|f| {
                let len = f.metadata().map(|m| m.len()).unwrap_or(0);
                (f, len)
            });
        Arc::new(LogFile {
            path: sink.path.clone(),
            max_bytes: sink.max_bytes,
            file: Mutex::new(file),
        })
    }

    fn record(&self, stream: &str, tag: char, text: &[u8]) {
        let mut line = format!("{} {stream} {tag} ", jiff::Timestamp::now()).into_bytes();
        line.extend_from_slice(text);
        line.push(b'\n');
        let mut guard = self.file.lock().unwrap_or_else(|p| p.into_inner());
        let Some((file, len)) = guard.as_mut() else {
            return;
        };
        if file.write_all(&line).is_ok() {
            *len += line.len() as u64;
        }
        if self.max_bytes > 0 && *len > self.max_bytes {
            // Keep the newest half, from a line start, as the kubelet's rotation would.
            if let Ok(kept) = keep_tail(&self.path, self.max_bytes / 2) {
                *len = kept;
            }
        }
    }

    /// Splits `buf` into records; returns what is left of an unfinished line.
    fn lines(&self, stream: &str, buf: &mut Vec<u8>) {
        while let Some(i) = buf.iter().position(|&b| b == b'\n') {
            let rest = buf.split_off(i + 1);
            buf.pop();
            self.record(stream, 'F', buf);
            *buf = rest;
        }
        while buf.len() > MAX_LINE {
            let rest = buf.split_off(MAX_LINE);
            self.record(stream, 'P', buf);
            *buf = rest;
        }
    }
}

fn keep_tail(path: &Path, keep: u64) -> std::io::Result<u64> {
    let data = std::fs::read(path)?;
    let start = data.len().saturating_sub(keep as usize);
    let start = data[start..]
        .iter()
        .position(|&b| b == b'\n')
        .map(|i| start + i + 1)
        .unwrap_or(data.len());
    std::fs::write(path, &data[start..])?;
    Ok((data.len() - start) as u64)
}

/// Copies one stream into `log` until `exited` and the FIFO has drained.
pub async fn copy(
    mut rx: pipe::Receiver,
    stream: &'static str,
    log: Arc<LogFile>,
    exited: CancellationToken,
) {
    let mut chunk = vec![0u8; 32 * 1024];
    let mut line = Vec::new();
    loop {
        tokio::select! {
            n = rx.read(&mut chunk) => match n {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    line.extend_from_slice(&chunk[..n]);
                    log.lines(stream, &mut line);
                }
            },
            _ = exited.cancelled() => {
                while let Ok(Ok(n)) = tokio::time::timeout(DRAIN_QUIET, rx.read(&mut chunk)).await {
                    if n == 0 {
                        break;
                    }
                    line.extend_from_slice(&chunk[..n]);
                    log.lines(stream, &mut line);
                }
                break;
            }
        }
    }
    if !line.is_empty() {
        log.record(stream, 'F', &line);
    }
}

/// Collects one stream of an exec into memory (at most `limit` bytes kept).
pub async fn collect(mut rx: pipe::Receiver, exited: CancellationToken, limit: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut chunk = vec![0u8; 16 * 1024];
    let push = |out: &mut Vec<u8>, b: &[u8]| {
        let room = limit.saturating_sub(out.len());
        out.extend_from_slice(&b[..b.len().min(room)]);
    };
    loop {
        tokio::select! {
            n = rx.read(&mut chunk) => match n {
                Ok(0) | Err(_) => break,
                Ok(n) => push(&mut out, &chunk[..n]),
            },
            _ = exited.cancelled() => {
                while let Ok(Ok(n)) = tokio::time::timeout(DRAIN_QUIET, rx.read(&mut chunk)).await {
                    if n == 0 {
                        break;
                    }
                    push(&mut out, &chunk[..n]);
                }
                break;
            }
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    #[tokio::test]
    async fn fifo_output_becomes_cri_records() {
        let dir = tempfile::tempdir().unwrap();
        let sink = LogSink {
            path: dir.path().join("c.log"),
            max_bytes: 1 << 20,
        };
        let log = LogFile::open(&sink);
        let path = dir.path().join("stdout");
        let rx = fifo(&path).unwrap();
        let exited = CancellationToken::new();
        let reader = tokio::spawn(copy(rx, "stdout", log, exited.clone()));
        let mut tx = pipe::OpenOptions::new().open_sender(&path).unwrap();
        tx.write_all(b"one\ntwo\npartial").await.unwrap();
        drop(tx);
        exited.cancel();
        reader.await.unwrap();
        let text = std::fs::read_to_string(&sink.path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        for (l, want) in lines.iter().zip(["one", "two", "partial"]) {
            let mut parts = l.splitn(4, ' ');
            let ts = parts.next().unwrap();
            assert!(ts.parse::<jiff::Timestamp>().is_ok(), "{ts}");
            assert_eq!(parts.next(), Some("stdout"));
            assert_eq!(parts.next(), Some("F"));
            assert_eq!(parts.next(), Some(want));
        }
    }
}
