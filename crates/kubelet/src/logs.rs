//! Container logs in the CRI format the runtimes write (`<RFC3339Nano> <stream> <P|F> <text>`),
//! read back the way `kubectl logs` asks: `tailLines`, `sinceSeconds`/`sinceTime`,
//! `timestamps`, `limitBytes`, and following a file as it grows.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncSeekExt, BufReader};

/// One record of a CRI log file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRecord<'a> {
    pub time: &'a str,
    pub stream: &'a str,
    /// `false` for a partial line (`P`) that continues in the next record.
    pub full: bool,
    pub text: &'a str,
}

/// Parses one line of a CRI log file; `None` for a malformed line.
pub fn parse(line: &str) -> Option<LogRecord<'_>> {
    let mut parts = line.splitn(4, ' ');
    let time = parts.next()?;
    let stream = parts.next()?;
    let tag = parts.next()?;
    let text = parts.next().unwrap_or("");
    Some(LogRecord {
        time,
        stream,
        full: !tag.starts_with('P'),
        text,
    })
}

/// Formats one record.
pub fn format_record(time: jiff::Timestamp, stream: &str, full: bool, text: &str) -> String {
    format!(
        "{} {stream} {} {text}\n",
        time.strftime("%Y-%m-%dT%H:%M:%S%.9fZ"),
        if full { "F" } else { "P" }
    )
}

/// What a `pods/log` request asks for.
#[derive(Debug, Clone, Default)]
pub struct LogOptions {
    pub follow: bool,
    pub tail_lines: Option<usize>,
    pub since: Option<jiff::Timestamp>,
    pub timestamps: bool,
    pub limit_bytes: Option<usize>,
}

/// The output text of the records in `content` selected by `opts` (not following).
pub fn select(content: &str, opts: &LogOptions) -> String {
    let mut lines: Vec<String> = Vec::new();
    let mut pending = String::new();
    for line in content.lines() {
        let Some(rec) = parse(line) else { continue };
        if let Some(since) = opts.since {
            match rec.time.parse::<jiff::Timestamp>() {
                Ok(t) if t < since => continue,
                _ => {}
            }
        }
        if pending.is_empty() && opts.timestamps {
            pending.push_str(rec.time);
            pending.push(' ');
        }
        pending.push_str(rec.text);
        if rec.full {
            pending.push('\n');
            lines.push(std::mem::take(&mut pending));
        }
    }
    if !pending.is_empty() {
        lines.push(pending);
    }
    let start = opts
        .tail_lines
        .map(|n| lines.len().saturating_sub(n))
        .unwrap_or(0);
    let mut out: String = lines[start..].concat();
    if let Some(limit) = opts.limit_bytes
        && out.len() > limit
    {
        let mut cut = limit;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
    }
    out
}

/// The log file of a container instance: `<pods dir>/<ns>_<pod>_<uid>/<container>/<restart>.log`.
pub fn log_path(pod_dir: &Path, container: &str, restart_count: u32) -> PathBuf {
    pod_dir
        .join("logs")
        .join(container)
        .join(format!("{restart_count}.log"))
}

/// Streams a log file: what is there now (per `opts`), then, when following, each new line as
/// it is written until `done` resolves (the container stopped) and the file is drained.
pub fn stream(
    path: PathBuf,
    opts: LogOptions,
    done: impl std::future::Future<Output = ()> + Send + 'static,
) -> impl futures::Stream<Item = std::io::Result<bytes::Bytes>> + Send + 'static {
    async_stream_impl(path, opts, done)
}

fn async_stream_impl(
    path: PathBuf,
    opts: LogOptions,
    done: impl std::future::Future<Output = ()> + Send + 'static,
) -> impl futures::Stream<Item = std::io::Result<bytes::Bytes>> + Send + 'static {
    futures::stream::unfold(
        State::Start {
            path,
            opts,
            done: Box::pin(done),
        },
        |state| async move {
            match state {
                State::Start { path, opts, done } => {
                    let content = match tokio::fs::read(&path).await {
                        Ok(c) => c,
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
                        Err(e) => return Some((Err(e), State::End)),
                    };
                    let text = select(&String::from_utf8_lossy(&content), &opts);
                    if !opts.follow {
                        return Some((Ok(bytes::Bytes::from(text)), State::End));
                    }
                    let file = match tokio::fs::File::open(&path).await {
                        Ok(mut f) => {
                            let _ = f.seek(std::io::SeekFrom::Start(content.len() as u64)).await;
                            Some(BufReader::new(f))
                        }
                        Err(_) => None,
                    };
                    Some((
                        Ok(bytes::Bytes::from(text)),
                        State::Follow {
                            path,
                            file,
                            opts,
                            done,
                            finished: false,
                        },
                    ))
                }
                State::Follow {
                    path,
                    mut file,
                    opts,
                    mut done,
                    mut finished,
                } => loop {
                    if file.is_none() {
                        file = tokio::fs::File::open(&path).await.ok().map(BufReader::new);
                    }
                    if let Some(reader) = file.as_mut() {
                        let mut line = String::new();
                        match reader.read_line(&mut line).await {
                            Ok(n) if n > 0 && line.ends_with('\n') => {
                                let text = select(
                                    &line,
                                    &LogOptions {
                                        timestamps: opts.timestamps,
                                        ..Default::default()
                                    },
                                );
                                return Some((
                                    Ok(bytes::Bytes::from(text)),
                                    State::Follow {
                                        path,
                                        file,
                                        opts,
                                        done,
                                        finished,
                                    },
                                ));
                            }
                            Ok(_) => {}
                            Err(e) => return Some((Err(e), State::End)),
                        }
                    }
                    if finished {
                        return None;
                    }
                    tokio::select! {
                        _ = &mut done => finished = true,
                        _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                    }
                },
                State::End => None,
            }
        },
    )
}

enum State {
    Start {
        path: PathBuf,
        opts: LogOptions,
        done: std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>,
    },
    Follow {
        path: PathBuf,
        file: Option<BufReader<tokio::fs::File>>,
        opts: LogOptions,
        done: std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>,
        finished: bool,
    },
    End,
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = "2026-01-01T00:00:01.000000000Z stdout F one\n\
2026-01-01T00:00:02.000000000Z stderr P tw\n\
2026-01-01T00:00:02.500000000Z stderr F o\n\
2026-01-01T00:00:03.000000000Z stdout F three\n";

    #[test]
    fn selection() {
        assert_eq!(select(LOG, &LogOptions::default()), "one\ntwo\nthree\n");
        let tail = LogOptions {
            tail_lines: Some(2),
            ..Default::default()
        };
        assert_eq!(select(LOG, &tail), "two\nthree\n");
        let since = LogOptions {
            since: "2026-01-01T00:00:02.9Z".parse().ok(),
            ..Default::default()
        };
        assert_eq!(select(LOG, &since), "three\n");
        let ts = LogOptions {
            timestamps: true,
            tail_lines: Some(1),
            ..Default::default()
        };
        assert_eq!(select(LOG, &ts), "2026-01-01T00:00:03.000000000Z three\n");
        let limit = LogOptions {
            limit_bytes: Some(5),
            ..Default::default()
        };
        assert_eq!(select(LOG, &limit), "one\nt");
    }

    #[tokio::test]
    async fn follow_until_done() {
        use futures::StreamExt;
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("0.log");
        std::fs::write(&path, "2026-01-01T00:00:01Z stdout F first\n").expect("write");
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let s = stream(
            path.clone(),
            LogOptions {
                follow: true,
                ..Default::default()
            },
            async move {
                let _ = rx.await;
            },
        );
        futures::pin_mut!(s);
        assert_eq!(s.next().await.expect("first").expect("ok"), "first\n");
        {
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .open(&path)
                .expect("open");
            writeln!(f, "2026-01-01T00:00:02Z stdout F second").expect("append");
        }
        let next = tokio::time::timeout(Duration::from_secs(5), s.next())
            .await
            .expect("in time");
        assert_eq!(next.expect("second").expect("ok"), "second\n");
        let _ = tx.send(());
        let end = tokio::time::timeout(Duration::from_secs(5), s.next())
            .await
            .expect("ends");
        assert!(end.is_none());
    }
}
