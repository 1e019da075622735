//! Finding and loading the kubeconfig, and turning it (plus command-line overrides) into a
//! client.
//!
//! Order, like kubectl plus one wasmkube addition: `--kubeconfig`, `$KUBECONFIG` (a path list,
//! merged), `~/.kube/config`, then the admin kubeconfig `wasmkube server` writes into its data
//! directory, so `wasmkube get pods` works on the server's machine with no setup.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use kube::config::{AuthInfo, Config, KubeConfigOptions, Kubeconfig};

use super::GlobalArgs;

/// The paths to read, in precedence order, or `None` when no kubeconfig exists anywhere.
pub fn locate(
    flag: Option<&Path>,
    env: Option<&std::ffi::OsStr>,
    home: Option<&Path>,
    data_dir: &Path,
) -> anyhow::Result<Option<Vec<PathBuf>>> {
    if let Some(path) = flag {
        if !path.exists() {
            bail!("stat {}: no such file or directory", path.display());
        }
        return Ok(Some(vec![path.to_path_buf()]));
    }
    if let Some(value) = env {
        // Missing files in $KUBECONFIG are skipped, as client-go does.
        let paths: Vec<PathBuf> = std::env::split_paths(value)
            .filter(|p| !p.as_os_str().is_empty() && p.exists())
            .collect();
        if !paths.is_empty() {
            return Ok(Some(paths));
        }
    }
    if let Some(home) = home {
        let p = home.join(".kube").join("config");
        if p.exists() {
            return Ok(Some(vec![p]));
        }
    }
    let p = data_dir.join("kubeconfig.yaml");
    if p.exists() {
        return Ok(Some(vec![p]));
    }
    Ok(None)
}

fn data_dir() -> PathBuf {
    std::env::var_os("WASMKUBE_DATA_DIR")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/lib/wasmkube"))
}

fn read(paths: &[PathBuf]) -> anyhow::Result<Kubeconfig> {
    let mut merged: Option<Kubeconfig> = None;
    for p in paths {
        let kc = Kubeconfig::read_from(p)
            .with_context(|| format!("reading kubeconfig {}", p.display()))?;
        merged = Some(match merged {
            None => kc,
            Some(m) => m
                .merge(kc)
                .with_context(|| format!("merging kubeconfig {}", p.display()))?,
        });
    }
    Ok(merged.unwrap_or_default())
}

/// A client config with the flags applied; its `default_namespace` is the chosen context's.
pub async fn load(global: &GlobalArgs) -> anyhow::Result<Config> {
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let env = std::env::var_os("KUBECONFIG");
    let paths = locate(
        global.kubeconfig.as_deref(),
        env.as_deref(),
        home.as_deref(),
        &data_dir(),
    )?;
    let mut config = match paths {
        Some(paths) => {
            let kc = read(&paths)?;
            if let Some(ctx) = &global.context
                && !kc.contexts.iter().any(|c| &c.name == ctx)
            {
                bail!("context was not found for specified context: {ctx}");
            }
            let options = KubeConfigOptions {
                context: global.context.clone(),
                cluster: global.cluster.clone(),
                user: global.user.clone(),
            };

            match Config::from_custom_kubeconfig(kc, &options).await {
                Ok(c) => c,
                // A kubeconfig without a server is still usable when --server supplies one.
                Err(_) if global.server.is_some() => {
                    Config::new(parse_server(global.server.as_deref())?)
                }
                Err(e) => {
                    let names: Vec<String> =
                        paths.iter().map(|p| p.display().to_string()).collect();
                    bail!("invalid configuration in {}: {e}", names.join(":"));
                }
            }
        }
        None => match &global.server {
            Some(server) => Config::new(parse_server(Some(server))?),
            None => bail!(
                "no kubeconfig found: pass --kubeconfig, set $KUBECONFIG, create ~/.kube/config, or start `wasmkube server` (it writes {}/kubeconfig.yaml)",
                data_dir().display()
            ),
        },
    };
    if let Some(server) = &global.server {
        config.cluster_url = parse_server(Some(server))?;
    }
    if let Some(token) = &global.token {
        // AuthInfo keeps tokens in a secret string type; building it through serde avoids a
        // direct dependency on that crate.
        config.auth_info =
            serde_json::from_value::<AuthInfo>(serde_json::json!({ "token": token }))
                .context("invalid --token")?;
    }
    if global.insecure_skip_tls_verify {
        config.accept_invalid_certs = true;
    }
    // Watches and `logs -f` stay open for as long as the user wants.
    config.read_timeout = None;
    // kube-rs retries 429/503/504 up to 15 times with growing delays, a policy made for
    // controllers; a user at a terminal wants the server's answer now, as kubectl gives it.
    config.default_retry = false;
    Ok(config)
}

fn parse_server(server: Option<&str>) -> anyhow::Result<http::Uri> {
    let server = server.unwrap_or_default();
    // kubectl accepts a bare host:port and assumes HTTPS.
    let with_scheme = if server.contains("://") {
        server.to_string()
    } else {
        format!("https://{server}")
    };
    with_scheme
        .parse::<http::Uri>()
        .with_context(|| format!("invalid --server {server:?}"))
}

/// `host:port` of the server URL, as kubectl names it in connection errors.
pub fn server_authority(uri: &http::Uri) -> String {
    match (uri.host(), uri.port_u16()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) if uri.scheme_str() == Some("http") => format!("{h}:80"),
        (Some(h), None) => format!("{h}:443"),
        _ => uri.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precedence_flag_env_home_data_dir() {
        let dir = tempfile::tempdir().expect("tempdir");
        let flag = dir.path().join("flag.yaml");
        let env1 = dir.path().join("env1.yaml");
        let home = dir.path().join("home");
        let data = dir.path().join("data");
        std::fs::create_dir_all(home.join(".kube")).expect("mkdir");
        std::fs::create_dir_all(&data).expect("mkdir");
        for p in [
            &flag,
            &env1,
            &home.join(".kube/config"),
            &data.join("kubeconfig.yaml"),
        ] {
            std::fs::write(p, "apiVersion: v1\nkind: Config\n").expect("write");
        }
        let missing = dir.path().join("missing.yaml");
        let env = std::env::join_paths([&missing, &env1]).expect("join");

        let got = locate(Some(&flag), Some(&env), Some(&home), &data).expect("ok");
        assert_eq!(got, Some(vec![flag.clone()]));
        let got = locate(None, Some(&env), Some(&home), &data).expect("ok");
        assert_eq!(got, Some(vec![env1.clone()]));
        let only_missing = std::env::join_paths([&missing]).expect("join");
        let got = locate(None, Some(&only_missing), Some(&home), &data).expect("ok");
        assert_eq!(got, Some(vec![home.join(".kube/config")]));
        let got = locate(None, None, Some(&dir.path().join("nohome")), &data).expect("ok");
        assert_eq!(got, Some(vec![data.join("kubeconfig.yaml")]));
        let got = locate(None, None, None, &dir.path().join("nodata")).expect("ok");
        assert_eq!(got, None);
        assert!(locate(Some(&missing), None, None, &data).is_err());
    }

    #[test]
    fn server_names() {
        assert_eq!(
            parse_server(Some("127.0.0.1:6443"))
                .map(|u| u.to_string())
                .ok(),
            Some("https://127.0.0.1:6443/".into())
        );
        let u: http::Uri = "https://127.0.0.1:16443".parse().expect("uri");
        assert_eq!(server_authority(&u), "127.0.0.1:16443");
        let u: http::Uri = "http://localhost".parse().expect("uri");
        assert_eq!(server_authority(&u), "localhost:80");
    }
}
