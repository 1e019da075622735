//! The OCI runtime spec (config.json) of a container: what runc is told to make.
//!
//! It starts from containerd's default Linux spec (the mounts, masked and read-only paths,
//! default capability set and device rule `ctr run` uses) and applies the Kubernetes parts:
//! the image's entrypoint/cmd/env/workdir/user overridden by the pod spec, the pod's network
//! namespace, volume bind mounts, cgroup limits from resources, and the securityContext.
//! Pure data in, JSON out, so every rule is unit-tested here.

use std::path::PathBuf;

use serde_json::{Value, json};
use wasmkube_kubelet::runtime::{Mount, Resources, Security};

/// The type URL containerd stores a runtime spec under.
pub const SPEC_TYPE_URL: &str = "types.containerd.io/opencontainers/runtime-spec/1/Spec";

/// containerd's default capability set (`oci.WithDefaultSpec`), which Kubernetes on
/// containerd gives every container that asks for nothing else.
pub const DEFAULT_CAPABILITIES: [&str; 14] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// Every capability, for `privileged: true` and `add: [ALL]`.
const ALL_CAPABILITIES: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// The CFS period the quota is expressed in (Kubernetes' default, 100 ms).
pub const CPU_PERIOD_US: u64 = 100_000;

/// What an image's config says about running it (`config` of the OCI image config).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImageConfig {
    #[serde(default)]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default)]
    pub cmd: Option<Vec<String>>,
    #[serde(default)]
    pub env: Option<Vec<String>>,
    #[serde(default)]
    pub working_dir: Option<String>,
    #[serde(default)]
    pub user: Option<String>,
}

/// Everything the spec is made from.
#[derive(Debug, Clone)]
pub struct SpecInput<'a> {
    pub image: &'a ImageConfig,
    pub command: &'a [String],
    pub args: &'a [String],
    pub env: &'a [(String, String)],
    pub working_dir: Option<&'a str>,
    pub hostname: &'a str,
    pub mounts: &'a [Mount],
    /// Files the kubelet writes for the pod (`/etc/hosts`, `/etc/hostname`), bind-mounted.
    pub files: &'a [(PathBuf, &'static str)],
    pub resources: &'a Resources,
    pub security: &'a Security,
    pub network_namespace: Option<&'a std::path::Path>,
    pub cgroups_path: &'a str,
    /// Whether the memory cgroup accounts swap (v2, or v1 with memsw): then swap is capped
    /// at the memory limit too, so a hog is OOM-killed instead of swapping.
    pub swap_accounting: bool,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SpecError {
    #[error("the container has no command: neither the pod spec nor the image names one")]
    NoCommand,
    #[error("image user {0:?} is not numeric (uid[:gid]); set securityContext.runAsUser")]
    NamedUser(String),
    #[error("unknown capability {0:?}")]
    Capability(String),
}

/// The process to run: Kubernetes' rule is that `command` replaces the entrypoint (and drops
/// the image's cmd), `args` replaces the cmd.
pub fn process_args(image: &ImageConfig, command: &[String], args: &[String]) -> Vec<String> {
    let entrypoint = image.entrypoint.clone().unwrap_or_default();
    let cmd = image.cmd.clone().unwrap_or_default();
    match (command.is_empty(), args.is_empty()) {
        (false, false) => command.iter().chain(args).cloned().collect(),
        (false, true) => command.to_vec(),
        (true, false) => entrypoint.into_iter().chain(args.iter().cloned()).collect(),
        (true, true) => entrypoint.into_iter().chain(cmd).collect(),
    }
}

/// The image's env with the pod's on top (same name: the pod's wins), plus a default PATH.
pub fn process_env(image: &ImageConfig, env: &[(String, String)]) -> Vec<String> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut set = |k: &str, v: &str| match out.iter_mut().find(|(n, _)| n == k) {
        Some(e) => e.1 = v.to_string(),
        None => out.push((k.to_string(), v.to_string())),
    };
    set(
        "PATH",
        "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    );
    for kv in image.env.iter().flatten() {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        set(k, v);
    }
    for (k, v) in env {
        set(k, v);
    }
    out.into_iter().map(|(k, v)| format!("{k}={v}")).collect()
}

/// uid and gid: runAsUser/runAsGroup, else the image's numeric `User`, else root.
pub fn user(image: &ImageConfig, security: &Security) -> Result<(u32, u32), SpecError> {
    let (mut uid, mut gid) = (0u32, 0u32);
    if let Some(u) = image.user.as_deref().filter(|u| !u.is_empty()) {
        let (us, gs) = u.split_once(':').unwrap_or((u, ""));
        match us.parse::<u32>() {
            Ok(n) => uid = n,
            // A named user needs /etc/passwd of the image; unless runAsUser overrides it.
            Err(_) if security.run_as_user.is_none() => {
                return Err(SpecError::NamedUser(u.to_string()));
            }
            Err(_) => {}
        }
        if let Ok(n) = gs.parse::<u32>() {
            gid = n;
        }
    }
    if let Some(u) = security.run_as_user {
        uid = u.clamp(0, u32::MAX as i64) as u32;
    }
    if let Some(g) = security.run_as_group {
        gid = g.clamp(0, u32::MAX as i64) as u32;
    }
    Ok((uid, gid))
}

fn cap_name(s: &str) -> Result<String, SpecError> {
    let up = s.trim().to_ascii_uppercase();
    let name = if up.starts_with("CAP_") {
        up
    } else {
        format!("CAP_{up}")
    };
    if ALL_CAPABILITIES.contains(&name.as_str()) {
        Ok(name)
    } else {
        Err(SpecError::Capability(s.to_string()))
    }
}

/// The capability set: all for privileged, else containerd's defaults with `drop` removed
/// (`ALL` removes every one) and `add` added (`ALL` adds every one).
pub fn capabilities(security: &Security) -> Result<Vec<String>, SpecError> {
    if security.privileged {
        return Ok(ALL_CAPABILITIES.iter().map(|c| c.to_string()).collect());
    }
    let all = |v: &[String]| v.iter().any(|c| c.eq_ignore_ascii_case("ALL"));
    let mut caps: Vec<String> = if all(&security.capabilities_drop) {
        Vec::new()
    } else {
        let drop = security
            .capabilities_drop
            .iter()
            .map(|c| cap_name(c))
            .collect::<Result<Vec<_>, _>>()?;
        DEFAULT_CAPABILITIES
            .iter()
            .map(|c| c.to_string())
            .filter(|c| !drop.contains(c))
            .collect()
    };
    if all(&security.capabilities_add) {
        return Ok(ALL_CAPABILITIES.iter().map(|c| c.to_string()).collect());
    }
    for c in &security.capabilities_add {
        let c = cap_name(c)?;
        if !caps.contains(&c) {
            caps.push(c);
        }
    }
    Ok(caps)
}

/// cgroup CPU shares from the CPU request, as the kubelet computes them (1024 per core,
/// at least 2).
pub fn cpu_shares(request_millis: Option<u64>) -> u64 {
    match request_millis {
        Some(m) => (m * 1024 / 1000).max(2),
        None => 2,
    }
}

/// The CFS quota for a CPU limit over [`CPU_PERIOD_US`] (at least 1 ms, the kernel's floor).
pub fn cpu_quota(limit_millis: u64) -> u64 {
    (limit_millis * CPU_PERIOD_US / 1000).max(1000)
}

/// The process part of the spec (also the base of an exec's process).
pub fn process(input: &SpecInput<'_>) -> Result<Value, SpecError> {
    let args = process_args(input.image, input.command, input.args);
    if args.is_empty() {
        return Err(SpecError::NoCommand);
    }
    let (uid, gid) = user(input.image, input.security)?;
    let caps = capabilities(input.security)?;
    let cwd = input
        .working_dir
        .map(str::to_string)
        .or_else(|| input.image.working_dir.clone().filter(|w| !w.is_empty()))
        .unwrap_or_else(|| "/".to_string());
    // no_new_privs unless escalation is allowed explicitly, or the container is privileged.
    let no_new_privileges =
        !input.security.privileged && input.security.allow_privilege_escalation != Some(true);
    Ok(json!({
        "terminal": false,
        "user": {"uid": uid, "gid": gid},
        "args": args,
        "env": process_env(input.image, input.env),
        "cwd": cwd,
        "capabilities": {
            "bounding": caps,
            "effective": caps,
            "permitted": caps,
        },
        "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
        "noNewPrivileges": no_new_privileges,
    }))
}

/// The whole runtime spec.
pub fn runtime_spec(input: &SpecInput<'_>) -> Result<Value, SpecError> {
    let process = process(input)?;
    let privileged = input.security.privileged;
    let mut mounts = vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc",
            "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
            "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts",
            "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]}),
        json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
            "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]}),
        json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
            "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/sys", "type": "sysfs", "source": "sysfs",
            "options": ["nosuid", "noexec", "nodev", if privileged { "rw" } else { "ro" }]}),
        json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
            "options": ["nosuid", "noexec", "nodev", "relatime", if privileged { "rw" } else { "ro" }]}),
    ];
    for (path, dest) in input.files {
        mounts.push(json!({"destination": dest, "type": "bind",
            "source": path.display().to_string(), "options": ["rbind", "rprivate", "ro"]}));
    }
    for m in input.mounts {
        mounts.push(json!({"destination": m.container_path, "type": "bind",
            "source": m.host_path.display().to_string(),
            "options": ["rbind", "rprivate", if m.read_only { "ro" } else { "rw" }]}));
    }
    let mut namespaces = vec![
        json!({"type": "pid"}),
        json!({"type": "ipc"}),
        json!({"type": "uts"}),
        json!({"type": "mount"}),
    ];
    namespaces.push(match input.network_namespace {
        Some(p) => json!({"type": "network", "path": p.display().to_string()}),
        None => json!({"type": "network"}),
    });
    let r = input.resources;
    let mut memory = json!({});
    if let Some(limit) = r.memory_limit_bytes {
        memory["limit"] = json!(limit);
        if input.swap_accounting {
            memory["swap"] = json!(limit);
        }
    }
    let mut cpu = json!({"shares": cpu_shares(r.cpu_request_millis.or(r.cpu_limit_millis))});
    if let Some(limit) = r.cpu_limit_millis {
        cpu["quota"] = json!(cpu_quota(limit));
        cpu["period"] = json!(CPU_PERIOD_US);
    }
    let devices = if privileged {
        json!([{"allow": true, "access": "rwm"}])
    } else {
        json!([{"allow": false, "access": "rwm"}])
    };
    let mut linux = json!({
        "resources": {"devices": devices, "memory": memory, "cpu": cpu},
        "cgroupsPath": input.cgroups_path,
        "namespaces": namespaces,
    });
    if !privileged {
        linux["maskedPaths"] = json!([
            "/proc/acpi",
            "/proc/asound",
            "/proc/kcore",
            "/proc/keys",
            "/proc/latency_stats",
            "/proc/timer_list",
            "/proc/timer_stats",
            "/proc/sched_debug",
            "/sys/firmware",
            "/proc/scsi"
        ]);
        linux["readonlyPaths"] = json!([
            "/proc/bus",
            "/proc/fs",
            "/proc/irq",
            "/proc/sys",
            "/proc/sysrq-trigger"
        ]);
    }
    Ok(json!({
        "ociVersion": "1.0.2",
        "process": process,
        "root": {"path": "rootfs", "readonly": input.security.read_only_root_filesystem},
        "hostname": input.hostname,
        "mounts": mounts,
        "linux": linux,
    }))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    fn input<'a>(
        image: &'a ImageConfig,
        security: &'a Security,
        resources: &'a Resources,
        mounts: &'a [Mount],
    ) -> SpecInput<'a> {
        SpecInput {
            image,
            command: &[],
            args: &[],
            env: &[],
            working_dir: None,
            hostname: "web-0",
            mounts,
            files: &[],
            resources,
            security,
            network_namespace: Some(std::path::Path::new("/pods/x/netns")),
            cgroups_path: "/wasmkube/abc",
            swap_accounting: true,
        }
    }

    #[test]
    fn command_and_args_override_the_image_like_kubernetes() {
        let image = ImageConfig {
            entrypoint: Some(s(&["/ep"])),
            cmd: Some(s(&["a", "b"])),
            ..Default::default()
        };
        assert_eq!(process_args(&image, &[], &[]), s(&["/ep", "a", "b"]));
        assert_eq!(process_args(&image, &[], &s(&["x"])), s(&["/ep", "x"]));
        assert_eq!(process_args(&image, &s(&["/c"]), &[]), s(&["/c"]));
        assert_eq!(
            process_args(&image, &s(&["/c"]), &s(&["y"])),
            s(&["/c", "y"])
        );
    }

    #[test]
    fn pod_env_wins_over_image_env() {
        let image = ImageConfig {
            env: Some(s(&["PATH=/bin", "A=image", "B=image"])),
            ..Default::default()
        };
        let env = process_env(&image, &[("A".into(), "pod".into())]);
        assert_eq!(env, s(&["PATH=/bin", "A=pod", "B=image"]));
    }

    #[test]
    fn users_come_from_run_as_or_a_numeric_image_user() {
        let mut sec = Security::default();
        let image = ImageConfig {
            user: Some("1000:2000".into()),
            ..Default::default()
        };
        assert_eq!(user(&image, &sec), Ok((1000, 2000)));
        sec.run_as_user = Some(42);
        assert_eq!(user(&image, &sec), Ok((42, 2000)));
        sec.run_as_group = Some(7);
        assert_eq!(user(&image, &sec), Ok((42, 7)));
        let named = ImageConfig {
            user: Some("nobody".into()),
            ..Default::default()
        };
        assert_eq!(
            user(&named, &Security::default()),
            Err(SpecError::NamedUser("nobody".into()))
        );
        assert_eq!(
            user(&ImageConfig::default(), &Security::default()),
            Ok((0, 0))
        );
    }

    #[test]
    fn capabilities_drop_add_and_privileged() {
        let mut sec = Security::default();
        assert_eq!(
            capabilities(&sec).unwrap().len(),
            DEFAULT_CAPABILITIES.len()
        );
        sec.capabilities_drop = s(&["NET_RAW", "cap_chown"]);
        sec.capabilities_add = s(&["NET_ADMIN"]);
        let caps = capabilities(&sec).unwrap();
        assert!(!caps.contains(&"CAP_NET_RAW".to_string()));
        assert!(!caps.contains(&"CAP_CHOWN".to_string()));
        assert!(caps.contains(&"CAP_NET_ADMIN".to_string()));
        sec.capabilities_drop = s(&["ALL"]);
        sec.capabilities_add = s(&["KILL"]);
        assert_eq!(capabilities(&sec).unwrap(), s(&["CAP_KILL"]));
        sec.capabilities_add = s(&["NOT_A_CAP"]);
        assert!(capabilities(&sec).is_err());
        let privileged = Security {
            privileged: true,
            ..Default::default()
        };
        assert!(
            capabilities(&privileged)
                .unwrap()
                .contains(&"CAP_SYS_ADMIN".to_string())
        );
    }

    #[test]
    fn limits_become_cgroup_settings() {
        let image = ImageConfig {
            cmd: Some(s(&["sh"])),
            ..Default::default()
        };
        let res = Resources {
            memory_limit_bytes: Some(64 << 20),
            cpu_limit_millis: Some(500),
            memory_request_bytes: None,
            cpu_request_millis: Some(250),
        };
        let sec = Security::default();
        let spec = runtime_spec(&input(&image, &sec, &res, &[])).unwrap();
        let r = &spec["linux"]["resources"];
        assert_eq!(r["memory"]["limit"], json!(64u64 << 20));
        assert_eq!(r["memory"]["swap"], json!(64u64 << 20));
        assert_eq!(r["cpu"]["quota"], json!(50_000));
        assert_eq!(r["cpu"]["period"], json!(100_000));
        assert_eq!(r["cpu"]["shares"], json!(256));
        assert_eq!(spec["linux"]["cgroupsPath"], json!("/wasmkube/abc"));
        // No limits: no quota, minimal shares.
        let none = Resources::default();
        let spec = runtime_spec(&input(&image, &sec, &none, &[])).unwrap();
        assert_eq!(spec["linux"]["resources"]["cpu"], json!({"shares": 2}));
        assert_eq!(spec["linux"]["resources"]["memory"], json!({}));
    }

    #[test]
    fn network_namespace_mounts_and_security() {
        let image = ImageConfig {
            cmd: Some(s(&["sh"])),
            ..Default::default()
        };
        let mounts = [Mount {
            host_path: "/pods/x/volumes/data".into(),
            container_path: "/data".into(),
            read_only: true,
        }];
        let sec = Security {
            read_only_root_filesystem: true,
            ..Default::default()
        };
        let res = Resources::default();
        let spec = runtime_spec(&input(&image, &sec, &res, &mounts)).unwrap();
        let ns = spec["linux"]["namespaces"].as_array().unwrap();
        assert!(ns.contains(&json!({"type": "network", "path": "/pods/x/netns"})));
        assert_eq!(spec["root"]["readonly"], json!(true));
        let data = spec["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["destination"] == "/data")
            .unwrap();
        assert_eq!(data["source"], json!("/pods/x/volumes/data"));
        assert!(data["options"].as_array().unwrap().contains(&json!("ro")));
        assert_eq!(spec["process"]["noNewPrivileges"], json!(true));
        assert!(spec["linux"]["maskedPaths"].is_array());
        assert_eq!(
            spec["linux"]["resources"]["devices"],
            json!([{"allow": false, "access": "rwm"}])
        );
        let privileged = Security {
            privileged: true,
            ..Default::default()
        };
        let spec = runtime_spec(&input(&image, &privileged, &res, &[])).unwrap();
        assert_eq!(spec["process"]["noNewPrivileges"], json!(false));
        assert!(spec["linux"].get("maskedPaths").is_none());
    }

    #[test]
    fn a_container_without_any_command_is_refused() {
        let image = ImageConfig::default();
        let (sec, res) = (Security::default(), Resources::default());
        assert_eq!(
            runtime_spec(&input(&image, &sec, &res, &[])).unwrap_err(),
            SpecError::NoCommand
        );
    }
}
