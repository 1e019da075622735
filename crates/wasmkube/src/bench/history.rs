//! The figures of earlier runs, so a benchmark can print each figure beside the one its
//! previous run measured.
//!
//! A small JSON file (`--history FILE`, default `$XDG_CACHE_HOME/wasmkube/bench-history.json`
//! or `~/.cache/wasmkube/bench-history.json`) maps `benchmark/figure` to the last value, its
//! unit, when it was measured and with which build profile (a debug figure beside a release
//! one says so rather than pretending to compare).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

#[derive(clap::Args, Debug, Clone)]
pub struct HistoryArg {
    /// JSON file with the figures of previous runs (read, then updated with this run's).
    /// Default: $XDG_CACHE_HOME/wasmkube/bench-history.json (~/.cache/... without it).
    #[arg(long)]
    pub history: Option<PathBuf>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Entry {
    pub value: f64,
    pub unit: String,
    /// RFC 3339 time of the run.
    pub at: String,
    /// `release` or `debug`.
    pub profile: String,
}

pub(crate) struct History {
    path: PathBuf,
    entries: BTreeMap<String, Entry>,
}

/// The build profile of this binary.
pub(crate) fn profile() -> &'static str {
    if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    }
}

fn default_path() -> anyhow::Result<PathBuf> {
    let cache = match std::env::var_os("XDG_CACHE_HOME").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(
            std::env::var_os("HOME").context("neither XDG_CACHE_HOME nor HOME is set")?,
        )
        .join(".cache"),
    };
    Ok(cache.join("wasmkube").join("bench-history.json"))
}

impl History {
    /// Reads the history at `arg` (or the default place). A missing file is an empty
    /// history; an unreadable one is an error, so a typo never silently loses figures.
    pub(crate) fn open(arg: &HistoryArg) -> anyhow::Result<History> {
        let path = match &arg.history {
            Some(p) => p.clone(),
            None => default_path()?,
        };
        let entries = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .with_context(|| format!("reading benchmark history {}", path.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => {
                return Err(e).with_context(|| format!("reading {}", path.display()));
            }
        };
        Ok(History { path, entries })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// `value unit (previous run: …)` for figure `key`, recording `value` for the next run.
    pub(crate) fn beside(&mut self, key: &str, value: f64, unit: &str) -> String {
        let now = format!("{value:.1} {unit}");
        let before = match self.entries.get(key) {
            Some(prev) if prev.unit == unit => {
                let change = if prev.value > 0.0 {
                    format!(", now {:.2}× that", value / prev.value)
                } else {
                    String::new()
                };
                let profile = if prev.profile == profile() {
                    String::new()
                } else {
                    format!(", {} build", prev.profile)
                };
                format!(
                    "previous run: {:.1} {unit} at {}{profile}{change}",
                    prev.value, prev.at
                )
            }
            _ => "no previous run".to_string(),
        };
        self.entries.insert(
            key.to_string(),
            Entry {
                value,
                unit: unit.to_string(),
                at: jiff::Timestamp::now()
                    .strftime("%Y-%m-%dT%H:%M:%SZ")
                    .to_string(),
                profile: profile().to_string(),
            },
        );
        format!("{now} ({before})")
    }

    /// Writes the history back (atomically: a temporary file renamed over the old one).
    pub(crate) fn save(&self) -> anyhow::Result<()> {
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let tmp = self.path.with_extension("json.tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(&self.entries)?)
            .with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, &self.path)
            .with_context(|| format!("replacing {}", self.path.display()))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_figure_is_printed_beside_the_previous_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        let arg = HistoryArg {
            history: Some(dir.path().join("h.json")),
        };
        let mut h = History::open(&arg).expect("empty history");
        assert_eq!(
            h.beside("scheduler/10", 100.0, "pods/s"),
            "100.0 pods/s (no previous run)"
        );
        h.save().expect("save");
        let mut h = History::open(&arg).expect("history");
        let line = h.beside("scheduler/10", 150.0, "pods/s");
        assert!(
            line.starts_with("150.0 pods/s (previous run: 100.0 pods/s at "),
            "{line}"
        );
        assert!(line.ends_with(", now 1.50× that)"), "{line}");
        std::fs::write(dir.path().join("h.json"), "not json").expect("write");
        assert!(History::open(&arg).is_err());
    }
}
