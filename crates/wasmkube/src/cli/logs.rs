//! `logs`: a container's log from `pods/NAME/log`, streamed as it arrives.

use std::process::ExitCode;

use serde_json::Value;

use super::client::{ACCEPT_JSON, CallError, with_query};
use super::{GlobalArgs, Session, meta_str, parse_duration};

#[derive(clap::Args, Debug)]
pub struct LogsArgs {
    /// POD, TYPE/NAME (a deployment, replica set, job … picks one of its pods), optionally
    /// followed by a container name.
    pub args: Vec<String>,
    /// Print the logs of this container.
    #[arg(short = 'c', long)]
    pub container: Option<String>,
    /// Get all containers' logs in the pod(s).
    #[arg(long)]
    pub all_containers: bool,
    /// Specify if the logs should be streamed.
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// Print the logs for the previous instance of the container.
    #[arg(short = 'p', long)]
    pub previous: bool,
    /// Lines of recent log file to display; -1 shows all.
    #[arg(long, default_value_t = -1, allow_negative_numbers = true)]
    pub tail: i64,
    /// Only return logs newer than a relative duration like 5s, 2m, or 3h.
    #[arg(long)]
    pub since: Option<String>,
    /// Only return logs after a specific date (RFC 3339).
    #[arg(long)]
    pub since_time: Option<String>,
    /// Include timestamps on each line.
    #[arg(long)]
    pub timestamps: bool,
    /// Maximum bytes of logs to return.
    #[arg(long)]
    pub limit_bytes: Option<i64>,
    /// Selector (label query): logs of every matching pod.
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
    /// Prefix each log line with the log source (pod name and container name).
    #[arg(long)]
    pub prefix: bool,
    #[command(flatten)]
    pub global: GlobalArgs,
}

/// One log stream to read.
struct Source {
    pod: String,
    container: String,
}

pub async fn run(args: LogsArgs) -> anyhow::Result<ExitCode> {
    if args.since.is_some() && args.since_time.is_some() {
        anyhow::bail!("at most one of `sinceTime` or `sinceSeconds` may be specified");
    }
    let since_seconds = match &args.since {
        Some(s) => Some(parse_duration(s)?.as_secs().max(1).to_string()),
        None => None,
    };
    let session = Session::connect(&args.global).await?;
    let ns = session.namespace().to_string();
    let pods_rt = session.resolve("pods").await?;

    let (pods, positional_container): (Vec<Value>, Option<String>) =
        match (&args.selector, args.args.as_slice()) {
            (Some(sel), []) => {
                let url = with_query(
                    &pods_rt.collection_path(Some(&ns)),
                    &[("labelSelector", Some(sel))],
                );
                let list = session.api.list(&url, ACCEPT_JSON).await?;
                let pods: Vec<Value> = list
                    .get("items")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                if pods.is_empty() {
                    eprintln!("No resources found in {ns} namespace.");
                    return Ok(ExitCode::SUCCESS);
                }
                (pods, None)
            }
            (Some(_), _) => anyhow::bail!("only a selector (-l) or a POD name is allowed"),
            (None, []) => anyhow::bail!("expected POD or TYPE/NAME as an argument"),
            (None, [target, rest @ ..]) => {
                if rest.len() > 1 {
                    anyhow::bail!("expected at most POD and CONTAINER as arguments");
                }
                let pod = pick_pod(&session, &ns, target).await?;
                (vec![pod], rest.first().cloned())
            }
        };
    let container = args.container.clone().or(positional_container);
    let many_pods = pods.len() > 1;

    let mut sources = Vec::new();
    for pod in &pods {
        let name = meta_str(pod, "name").to_string();
        let names = container_names(pod);
        let chosen: Vec<String> = if args.all_containers {
            names
        } else if let Some(c) = &container {
            vec![c.clone()]
        } else {
            let default = pod
                .pointer("/metadata/annotations")
                .and_then(|a| a.get("kubectl.kubernetes.io/default-container"))
                .and_then(Value::as_str)
                .map(str::to_string);
            let regular = regular_container_names(pod);
            match default.or_else(|| regular.first().cloned()) {
                Some(c) => {
                    if regular.len() > 1 && !many_pods {
                        eprintln!("Defaulted container \"{c}\" out of: {}", regular.join(", "));
                    }
                    vec![c]
                }
                None => anyhow::bail!("pod {name} has no containers"),
            }
        };
        sources.extend(chosen.into_iter().map(|c| Source {
            pod: name.clone(),
            container: c,
        }));
    }

    let query = |s: &Source| {
        let tail = (args.tail >= 0).then(|| args.tail.to_string());
        let limit = args.limit_bytes.map(|l| l.to_string());
        with_query(
            &format!("{}/log", pods_rt.object_path(Some(&ns), &s.pod)),
            &[
                ("container", Some(s.container.as_str())),
                ("follow", args.follow.then_some("true")),
                ("previous", args.previous.then_some("true")),
                ("tailLines", tail.as_deref()),
                ("sinceSeconds", since_seconds.as_deref()),
                ("sinceTime", args.since_time.as_deref()),
                ("timestamps", args.timestamps.then_some("true")),
                ("limitBytes", limit.as_deref()),
            ],
        )
    };

    let prefix = args.prefix;
    if sources.len() == 1 && !prefix {
        // One stream: copy bytes as they come, so partial lines (prompts, progress) show at once.
        let mut chunks = session.api.chunks(&query(&sources[0])).await?;
        loop {
            let next = tokio::select! {
                c = chunks.next_chunk() => c,
                _ = tokio::signal::ctrl_c() => break,
            };
            match next {
                Some(Ok(bytes)) => out!("{}", String::from_utf8_lossy(&bytes)),
                Some(Err(e)) => return Err(e.into()),
                None => break,
            }
        }
        return Ok(ExitCode::SUCCESS);
    }

    // Several streams: whole lines, so lines of different containers never interleave.
    let streams = sources.iter().map(|s| {
        let url = query(s);
        let label = format!("[pod/{}/{}] ", s.pod, s.container);
        let api = session.api.clone();
        async move {
            let mut lines = api.lines(&url, "*/*").await?;
            while let Some(line) = lines.next_line().await {
                let line = line?;
                if prefix {
                    outln!("{label}{line}");
                } else {
                    outln!("{line}");
                }
            }
            Ok::<(), CallError>(())
        }
    });
    let results = if args.follow {
        tokio::select! {
            r = futures::future::join_all(streams) => r,
            _ = tokio::signal::ctrl_c() => return Ok(ExitCode::SUCCESS),
        }
    } else {
        let mut results = Vec::new();
        for s in streams {
            results.push(s.await);
        }
        results
    };
    let mut code = ExitCode::SUCCESS;
    for r in results {
        if let Err(e) = r {
            eprintln!("{e}");
            code = ExitCode::FAILURE;
        }
    }
    Ok(code)
}

fn regular_container_names(pod: &Value) -> Vec<String> {
    pod.pointer("/spec/containers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| c.get("name").and_then(Value::as_str))
        .map(str::to_string)
        .collect()
}

fn container_names(pod: &Value) -> Vec<String> {
    let mut names: Vec<String> = pod
        .pointer("/spec/initContainers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| c.get("name").and_then(Value::as_str))
        .map(str::to_string)
        .collect();
    names.extend(regular_container_names(pod));
    names
}

/// `POD` or `TYPE/NAME`: a workload resolves to one of its pods, as kubectl does.
async fn pick_pod(session: &Session, ns: &str, target: &str) -> anyhow::Result<Value> {
    let (ty, name) = match target.split_once('/') {
        Some((t, n)) => (t, n),
        None => ("pods", target),
    };
    let rt = session.resolve(ty).await?;
    let obj = session.api.get(&rt.object_path(Some(ns), name)).await?;
    if rt.group.is_empty() && rt.kind == "Pod" {
        return Ok(obj);
    }
    let selector = selector_of(&obj).ok_or_else(|| {
        anyhow::anyhow!(
            "cannot get the logs from {}: it has no pod selector",
            rt.object_ref(name)
        )
    })?;
    let pods_rt = session.resolve("pods").await?;
    let url = with_query(
        &pods_rt.collection_path(Some(ns)),
        &[("labelSelector", Some(&selector))],
    );
    let list = session.api.list(&url, ACCEPT_JSON).await?;
    let mut pods: Vec<Value> = list
        .get("items")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if pods.is_empty() {
        anyhow::bail!("timed out waiting for the condition");
    }
    // Prefer a running pod, then the oldest: its log is the one most likely to say something.
    pods.sort_by_key(|p| {
        let running = p.pointer("/status/phase").and_then(Value::as_str) == Some("Running");
        (!running, meta_str(p, "creationTimestamp").to_string())
    });
    let total = pods.len();
    let pod = pods.swap_remove(0);
    if total > 1 {
        eprintln!("Found {total} pods, using pod/{}", meta_str(&pod, "name"));
    }
    Ok(pod)
}

/// A workload's pod selector as a label-selector string.
pub fn selector_of(obj: &Value) -> Option<String> {
    let sel = obj.pointer("/spec/selector")?;
    // Services and replication controllers use a plain map; the others a LabelSelector.
    let is_label_selector =
        sel.get("matchLabels").is_some() || sel.get("matchExpressions").is_some();
    let mut parts = Vec::new();
    let labels = if is_label_selector {
        sel.get("matchLabels")
    } else {
        Some(sel)
    };
    if let Some(Value::Object(m)) = labels {
        for (k, v) in m {
            parts.push(format!("{k}={}", v.as_str().unwrap_or_default()));
        }
    }
    for e in sel
        .get("matchExpressions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let key = e.get("key").and_then(Value::as_str).unwrap_or_default();
        let values: Vec<&str> = e
            .get("values")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        match e
            .get("operator")
            .and_then(Value::as_str)
            .unwrap_or_default()
        {
            "In" => parts.push(format!("{key} in ({})", values.join(","))),
            "NotIn" => parts.push(format!("{key} notin ({})", values.join(","))),
            "Exists" => parts.push(key.to_string()),
            "DoesNotExist" => parts.push(format!("!{key}")),
            _ => {}
        }
    }
    (!parts.is_empty()).then(|| parts.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn selectors_from_workloads_and_services() {
        let deploy = json!({"spec": {"selector": {"matchLabels": {"app": "a"},
            "matchExpressions": [{"key": "tier", "operator": "In", "values": ["x", "y"]},
                                 {"key": "gone", "operator": "DoesNotExist"}]}}});
        assert_eq!(
            selector_of(&deploy).as_deref(),
            Some("app=a,tier in (x,y),!gone")
        );
        let svc = json!({"spec": {"selector": {"app": "b"}}});
        assert_eq!(selector_of(&svc).as_deref(), Some("app=b"));
        assert_eq!(selector_of(&json!({"spec": {}})), None);
    }

    #[test]
    fn container_order_init_first() {
        let pod = json!({"spec": {"initContainers": [{"name": "i"}], "containers": [{"name": "a"}, {"name": "b"}]}});
        assert_eq!(container_names(&pod), ["i", "a", "b"]);
        assert_eq!(regular_container_names(&pod), ["a", "b"]);
    }
}
