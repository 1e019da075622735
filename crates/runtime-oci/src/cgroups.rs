//! Where a container's cgroup is on this machine (v1 hierarchies, as here, or the v2 unified
//! one), and what is read from it: whether the kernel OOM-killed in it, and usage.

use std::path::{Path, PathBuf};

use wasmkube_kubelet::runtime::Usage;

/// The cgroup layout of the node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cgroups {
    /// One hierarchy per controller under `root` (`root/memory`, `root/cpuacct`).
    V1 { root: PathBuf },
    /// The unified hierarchy at `root`.
    V2 { root: PathBuf },
}

impl Cgroups {
    /// Detects the layout under /sys/fs/cgroup.
    pub fn detect() -> Cgroups {
        let root = PathBuf::from("/sys/fs/cgroup");
        if root.join("cgroup.controllers").exists() {
            Cgroups::V2 { root }
        } else {
            Cgroups::V1 { root }
        }
    }

    /// Whether the memory controller accounts swap, so capping memory+swap is possible.
    pub fn swap_accounting(&self) -> bool {
        match self {
            Cgroups::V1 { root } => root.join("memory/memory.memsw.limit_in_bytes").exists(),
            Cgroups::V2 { root } => std::fs::read_dir(root)
                .map(|d| {
                    d.flatten()
                        .any(|e| e.path().join("memory.swap.max").exists())
                })
                .unwrap_or(false),
        }
    }

    fn dir(&self, controller: &str, path: &str) -> PathBuf {
        let rel = path.trim_start_matches('/');
        match self {
            Cgroups::V1 { root } => root.join(controller).join(rel),
            Cgroups::V2 { root } => root.join(rel),
        }
    }

    /// Whether the kernel's OOM killer killed a process of the cgroup at `path`:
    /// `oom_kill` in memory.oom_control (v1) or memory.events (v2).
    pub fn oom_killed(&self, path: &str) -> bool {
        let file = match self {
            Cgroups::V1 { .. } => self.dir("memory", path).join("memory.oom_control"),
            Cgroups::V2 { .. } => self.dir("memory", path).join("memory.events"),
        };
        read_key(&file, "oom_kill").is_some_and(|n| n > 0)
    }

    pub fn usage(&self, path: &str) -> Usage {
        match self {
            Cgroups::V1 { .. } => Usage {
                memory_bytes: read_u64(&self.dir("memory", path).join("memory.usage_in_bytes"))
                    .unwrap_or(0),
                cpu_nanos: read_u64(&self.dir("cpuacct", path).join("cpuacct.usage")).unwrap_or(0),
            },
            Cgroups::V2 { .. } => Usage {
                memory_bytes: read_u64(&self.dir("memory", path).join("memory.current"))
                    .unwrap_or(0),
                cpu_nanos: read_key(&self.dir("cpu", path).join("cpu.stat"), "usage_usec")
                    .unwrap_or(0)
                    .saturating_mul(1000),
            },
        }
    }
}

fn read_u64(path: &Path) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// The value of `key` in a flat-keyed cgroup file (`key value` lines).
fn read_key(path: &Path, key: &str) -> Option<u64> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines()
        .filter_map(|l| l.split_once(' '))
        .find(|(k, _)| *k == key)
        .and_then(|(_, v)| v.trim().parse().ok())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn oom_is_read_from_v1_and_v2_files() {
        let dir = tempfile::tempdir().unwrap();
        let v1 = Cgroups::V1 {
            root: dir.path().to_path_buf(),
        };
        let c = dir.path().join("memory/wasmkube/a");
        std::fs::create_dir_all(&c).unwrap();
        std::fs::write(
            c.join("memory.oom_control"),
            "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n",
        )
        .unwrap();
        assert!(v1.oom_killed("/wasmkube/a"));
        assert!(!v1.oom_killed("/wasmkube/missing"));
        let v2 = Cgroups::V2 {
            root: dir.path().to_path_buf(),
        };
        let c = dir.path().join("wasmkube/b");
        std::fs::create_dir_all(&c).unwrap();
        std::fs::write(
            c.join("memory.events"),
            "low 0\nhigh 0\nmax 3\noom 1\noom_kill 0\n",
        )
        .unwrap();
        assert!(!v2.oom_killed("/wasmkube/b"));
        std::fs::write(c.join("memory.events"), "oom 1\noom_kill 2\n").unwrap();
        assert!(v2.oom_killed("/wasmkube/b"));
        std::fs::write(c.join("memory.current"), "4096\n").unwrap();
        std::fs::write(c.join("cpu.stat"), "usage_usec 7\nuser_usec 5\n").unwrap();
        assert_eq!(
            v2.usage("/wasmkube/b"),
            Usage {
                memory_bytes: 4096,
                cpu_nanos: 7000
            }
        );
    }
}
