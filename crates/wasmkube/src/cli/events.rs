//! `events`: the namespace's (or every namespace's) events, oldest first, as `kubectl events`
//! prints them.

use std::process::ExitCode;

use serde_json::Value;

use super::client::{ACCEPT_JSON, CallError, with_query};
use super::output::{self, age};
use super::tabwriter::TabWriter;
use super::{GlobalArgs, Session, meta_str};

#[derive(clap::Args, Debug)]
pub struct EventsArgs {
    /// List events across all namespaces.
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
    /// Only events about this object (TYPE/NAME).
    #[arg(long = "for")]
    pub for_object: Option<String>,
    /// Only events of these types (Normal, Warning).
    #[arg(long, value_delimiter = ',')]
    pub types: Vec<String>,
    /// After listing the events, watch for new ones.
    #[arg(short = 'w', long)]
    pub watch: bool,
    /// yaml or json.
    #[arg(short = 'o', long)]
    pub output: Option<String>,
    /// Don't print headers.
    #[arg(long)]
    pub no_headers: bool,
    #[command(flatten)]
    pub global: GlobalArgs,
}

fn ts<'a>(e: &'a Value, pointer: &str) -> Option<&'a str> {
    e.pointer(pointer)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// When an event last happened, for sorting: kubectl's `eventTime` (series, then
/// lastTimestamp, then eventTime; events with none sort first).
fn last_seen(e: &Value) -> String {
    ts(e, "/series/lastObservedTime")
        .or_else(|| ts(e, "/lastTimestamp"))
        .or_else(|| ts(e, "/eventTime"))
        .and_then(|t| t.parse::<jiff::Timestamp>().ok())
        .map(|t| format!("{:020}", t.as_nanosecond()))
        .unwrap_or_default()
}

/// kubectl's event interval: `5m`, or `2m (x3 over 10m)` for repeated events.
pub fn interval(e: &Value) -> String {
    let first = age(ts(e, "/eventTime").or_else(|| ts(e, "/firstTimestamp")));
    if let Some(series) = e.get("series").filter(|s| s.is_object()) {
        let count = series.get("count").and_then(Value::as_i64).unwrap_or(0);
        return format!(
            "{} (x{count} over {first})",
            age(ts(series, "/lastObservedTime"))
        );
    }
    let count = e.get("count").and_then(Value::as_i64).unwrap_or(0);
    if count > 1 {
        return format!("{} (x{count} over {first})", age(ts(e, "/lastTimestamp")));
    }
    first
}

/// Sorts events oldest first, as both `events` and `describe` show them.
pub fn sort_events(events: &mut [Value]) {
    events.sort_by_cached_key(last_seen);
}

fn row(e: &Value, all_namespaces: bool) -> String {
    let mut line = String::new();
    if all_namespaces {
        line.push_str(meta_str(e, "namespace"));
        line.push('\t');
    }
    let s = |p: &str| e.pointer(p).and_then(Value::as_str).unwrap_or_default();
    line.push_str(&format!(
        "{}\t{}\t{}\t{}/{}\t{}\n",
        interval(e),
        s("/type"),
        s("/reason"),
        s("/involvedObject/kind"),
        s("/involvedObject/name"),
        s("/message").trim().replace('\n', " "),
    ));
    line
}

fn header(all_namespaces: bool) -> &'static str {
    if all_namespaces {
        "NAMESPACE\tLAST SEEN\tTYPE\tREASON\tOBJECT\tMESSAGE\n"
    } else {
        "LAST SEEN\tTYPE\tREASON\tOBJECT\tMESSAGE\n"
    }
}

pub async fn run(args: EventsArgs) -> anyhow::Result<ExitCode> {
    if let Some(o) = &args.output
        && o != "yaml"
        && o != "json"
    {
        anyhow::bail!("--output must be 'yaml' or 'json'");
    }
    let session = Session::connect(&args.global).await?;
    let rt = session.resolve("events").await?;
    let ns = (!args.all_namespaces).then(|| session.namespace().to_string());
    let mut fields: Vec<String> = Vec::new();
    if let Some(target) = &args.for_object {
        let (ty, name) = target
            .split_once('/')
            .ok_or_else(|| anyhow::anyhow!("--for must be in resource/name form"))?;
        let target_rt = session.resolve(ty).await?;
        fields.push(format!("involvedObject.kind={}", target_rt.kind));
        fields.push(format!("involvedObject.name={name}"));
    }
    if args.types.len() == 1 {
        fields.push(format!("type={}", args.types[0]));
    }
    let field_selector = fields.join(",");
    let base = with_query(
        &rt.collection_path(ns.as_deref()),
        &[("fieldSelector", Some(&field_selector))],
    );
    let list = session.api.list(&base, ACCEPT_JSON).await?;
    let wanted = |e: &Value| {
        args.types.is_empty()
            || args.types.iter().any(|t| {
                t.eq_ignore_ascii_case(e.get("type").and_then(Value::as_str).unwrap_or_default())
            })
    };
    let mut events: Vec<Value> = list
        .get("items")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|e| wanted(e))
        .collect();
    sort_events(&mut events);

    if let Some(o) = &args.output {
        let items = events
            .into_iter()
            .map(|mut e| {
                if let Value::Object(m) = &mut e {
                    m.entry("apiVersion")
                        .or_insert_with(|| Value::String("v1".into()));
                    m.entry("kind")
                        .or_insert_with(|| Value::String("Event".into()));
                }
                e
            })
            .collect();
        let doc = output::as_list(items);
        out!(
            "{}",
            if o == "json" {
                output::to_json(&doc)
            } else {
                output::to_yaml(&doc)
            }
        );
        return Ok(ExitCode::SUCCESS);
    }

    let mut w = TabWriter::for_tables();
    let mut header_done = args.no_headers;
    if events.is_empty() {
        match &ns {
            Some(ns) => eprintln!("No events found in {ns} namespace."),
            None => eprintln!("No events found."),
        }
    } else {
        w.write(header(args.all_namespaces));
        header_done = true;
        for e in &events {
            w.write(&row(e, args.all_namespaces));
        }
        out!("{}", w.flush());
    }
    if !args.watch {
        return Ok(ExitCode::SUCCESS);
    }
    let rv = list
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let url = with_query(
        &format!(
            "{base}{}watch=true",
            if base.contains('?') { '&' } else { '?' }
        ),
        &[("resourceVersion", Some(rv))],
    );
    let mut lines = session.api.lines(&url, ACCEPT_JSON).await?;
    loop {
        let line = tokio::select! {
            l = lines.next_line() => l,
            _ = tokio::signal::ctrl_c() => break,
        };
        let Some(line) = line else { break };
        let event: Value = serde_json::from_str(&line?)?;
        match event.get("type").and_then(Value::as_str) {
            Some("ADDED" | "MODIFIED") => {}
            Some("ERROR") => {
                let status = serde_json::from_value(event["object"].clone())?;
                return Err(CallError::Server(Box::new(status)).into());
            }
            _ => continue,
        }
        let e = &event["object"];
        if !wanted(e) {
            continue;
        }
        if !header_done {
            w.write(header(args.all_namespaces));
            header_done = true;
        }
        w.write(&row(e, args.all_namespaces));
        out!("{}", w.flush());
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn intervals_and_order() {
        let now = jiff::Timestamp::now();
        let ago = |s: i64| (now - jiff::SignedDuration::from_secs(s)).to_string();
        let single = json!({"firstTimestamp": ago(30), "lastTimestamp": ago(30), "count": 1});
        assert_eq!(interval(&single), "30s");
        let repeated = json!({"firstTimestamp": ago(600), "lastTimestamp": ago(60), "count": 4});
        assert_eq!(interval(&repeated), "60s (x4 over 10m)");
        let series =
            json!({"eventTime": ago(300), "series": {"count": 2, "lastObservedTime": ago(10)}});
        assert_eq!(interval(&series), "10s (x2 over 5m)");
        let mut events = vec![
            json!({"metadata": {"name": "b"}, "lastTimestamp": ago(5)}),
            json!({"metadata": {"name": "a"}, "lastTimestamp": ago(50)}),
        ];
        sort_events(&mut events);
        assert_eq!(events[0]["metadata"]["name"], json!("a"));
    }

    #[test]
    fn rows_name_kind_and_object() {
        let e = json!({"metadata": {"namespace": "default"}, "type": "Normal", "reason": "Scheduled",
            "involvedObject": {"kind": "Pod", "name": "web"}, "message": "assigned\n"});
        let r = row(&e, true);
        assert!(
            r.starts_with("default\t<unknown>\tNormal\tScheduled\tPod/web\tassigned\n"),
            "{r}"
        );
    }
}
