//! Output shared by the verbs: kubectl's table layout for `meta.k8s.io` Tables, ages, YAML and
//! JSON printing, and `-o` parsing.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::{Map, Value, json};

use super::tabwriter::TabWriter;

/// Writes to stdout. A reader that went away (`| head`) ends the process quietly, as it ends
/// kubectl, instead of panicking like `print!`.
pub fn emit(text: &str) {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        && e.kind() == std::io::ErrorKind::BrokenPipe
    {
        std::process::exit(0);
    }
}

/// An `-o` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutputFormat {
    /// Server-side Table columns of priority 0.
    Default,
    /// Every Table column.
    Wide,
    Yaml,
    Json,
    /// `kind.group/name`.
    Name,
    JsonPath(String),
}

impl OutputFormat {
    pub fn parse(raw: Option<&str>) -> anyhow::Result<Self> {
        let Some(raw) = raw else {
            return Ok(Self::Default);
        };
        Ok(match raw {
            "" => Self::Default,
            "wide" => Self::Wide,
            "yaml" => Self::Yaml,
            "json" => Self::Json,
            "name" => Self::Name,
            _ => match raw.split_once('=') {
                Some(("jsonpath", expr)) => Self::JsonPath(expr.to_string()),
                _ => anyhow::bail!(
                    "unable to match a printer suitable for the output format \"{raw}\", allowed formats are: json,jsonpath,name,wide,yaml"
                ),
            },
        })
    }

    pub fn is_table(&self) -> bool {
        matches!(self, Self::Default | Self::Wide)
    }
}

/// Recursively sorts object keys: kubectl prints unstructured objects, whose maps Go always
/// marshals in key order, so sorted output is what users (and diffs) expect.
pub fn sorted(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let mut out = Map::new();
            for k in keys {
                out.insert(k.clone(), sorted(&m[k]));
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(a.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

/// `-o json`: four-space indentation like kubectl, keys sorted.
pub fn to_json(v: &Value) -> String {
    let mut buf = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
    // Serialising a Value into memory cannot fail.
    let _ = serde::Serialize::serialize(&sorted(v), &mut ser);
    let mut s = String::from_utf8(buf).unwrap_or_default();
    s.push('\n');
    s
}

/// `-o yaml`, keys sorted, in kubectl's YAML style.
pub fn to_yaml(v: &Value) -> String {
    super::yaml::to_string(&sorted(v))
}

/// Several objects as kubectl prints them: a `v1` `List`.
pub fn as_list(items: Vec<Value>) -> Value {
    json!({
        "apiVersion": "v1",
        "items": items,
        "kind": "List",
        "metadata": {"resourceVersion": ""},
    })
}

/// kubectl's `duration.HumanDuration`: the AGE column and event intervals.
pub fn human_duration(seconds: i64) -> String {
    if seconds < -1 {
        return "<invalid>".into();
    }
    if seconds < 0 {
        return "0s".into();
    }
    if seconds < 120 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        let s = seconds % 60;
        return if s == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{s}s")
        };
    }
    if minutes < 180 {
        return format!("{minutes}m");
    }
    let hours = seconds / 3600;
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 {
            format!("{}d", hours / 24)
        } else {
            format!("{}d{h}h", hours / 24)
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        let dy = (hours / 24) % 365;
        return if dy == 0 {
            format!("{}y", hours / 24 / 365)
        } else {
            format!("{}y{dy}d", hours / 24 / 365)
        };
    }
    format!("{}y", hours / 24 / 365)
}

/// The age of an RFC 3339 timestamp, or `<unknown>` like kubectl when it is absent or invalid.
pub fn age(timestamp: Option<&str>) -> String {
    match timestamp.and_then(|t| t.parse::<jiff::Timestamp>().ok()) {
        Some(ts) => human_duration(jiff::Timestamp::now().as_second() - ts.as_second()),
        None => "<unknown>".into(),
    }
}

/// A timestamp as `describe` prints it: RFC 1123 with a numeric zone, in local time.
pub fn describe_time(timestamp: &str) -> String {
    match timestamp.parse::<jiff::Timestamp>() {
        Ok(ts) => ts
            .to_zoned(jiff::tz::TimeZone::system())
            .strftime("%a, %d %b %Y %H:%M:%S %z")
            .to_string(),
        Err(_) => timestamp.to_string(),
    }
}

/// A table cell as kubectl prints it.
pub fn cell_text(v: &Value) -> String {
    match v {
        Value::Null => "<none>".into(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => match n.as_f64() {
            Some(f) if n.is_f64() && f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", f as i64),
            _ => n.to_string(),
        },
        Value::Array(a) => {
            let parts: Vec<String> = a.iter().map(cell_text).collect();
            format!("[{}]", parts.join(" "))
        }
        Value::Object(_) => v.to_string(),
    }
}

/// `key=value,...` sorted, or `<none>`: the LABELS column.
pub fn labels_text(labels: Option<&Value>) -> String {
    let Some(Value::Object(m)) = labels else {
        return "<none>".into();
    };
    if m.is_empty() {
        return "<none>".into();
    }
    let sorted: BTreeMap<&String, String> = m
        .iter()
        .map(|(k, v)| (k, v.as_str().unwrap_or_default().to_string()))
        .collect();
    sorted
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// How a Table is to be printed.
#[derive(Debug, Clone, Default)]
pub struct TableOptions {
    pub wide: bool,
    pub with_namespace: bool,
    pub show_labels: bool,
    pub no_headers: bool,
    /// `-L` keys, each shown as its own column.
    pub label_columns: Vec<String>,
    /// `kind.group` prefixed to names when several kinds are printed.
    pub kind_prefix: Option<String>,
    /// An EVENT column first (`--output-watch-events`).
    pub with_event_type: bool,
}

/// One column of a Table, as the server described it.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    pub name: String,
    pub format: String,
    pub priority: i64,
}

/// A server Table decoded for printing.
#[derive(Debug, Clone, Default)]
pub struct Table {
    pub columns: Vec<Column>,
    pub rows: Vec<Row>,
}

#[derive(Debug, Clone)]
pub struct Row {
    pub cells: Vec<Value>,
    /// The embedded object (PartialObjectMetadata or the whole object).
    pub object: Value,
    /// ADDED/MODIFIED/DELETED for watch events.
    pub event_type: Option<String>,
}

impl Table {
    /// Decodes a `meta.k8s.io/v1` Table; `None` when `v` is not one.
    pub fn from_value(v: &Value) -> Option<Self> {
        if v.get("kind").and_then(Value::as_str) != Some("Table") {
            return None;
        }
        let columns = v
            .get("columnDefinitions")
            .and_then(Value::as_array)
            .map(|cols| {
                cols.iter()
                    .map(|c| Column {
                        name: c
                            .get("name")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .into(),
                        format: c
                            .get("format")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .into(),
                        priority: c.get("priority").and_then(Value::as_i64).unwrap_or(0),
                    })
                    .collect()
            })
            .unwrap_or_default();
        let rows = v
            .get("rows")
            .and_then(Value::as_array)
            .map(|rows| {
                rows.iter()
                    .map(|r| Row {
                        cells: r
                            .get("cells")
                            .and_then(Value::as_array)
                            .cloned()
                            .unwrap_or_default(),
                        object: r.get("object").cloned().unwrap_or(Value::Null),
                        event_type: None,
                    })
                    .collect()
            })
            .unwrap_or_default();
        Some(Self { columns, rows })
    }

    /// The table kubectl falls back to for objects without server-side columns: NAME and AGE.
    pub fn generic(objects: &[Value]) -> Self {
        let columns = vec![
            Column {
                name: "Name".into(),
                format: "name".into(),
                priority: 0,
            },
            Column {
                name: "Age".into(),
                format: String::new(),
                priority: 0,
            },
        ];
        let rows = objects
            .iter()
            .map(|o| Row {
                cells: vec![
                    o.pointer("/metadata/name").cloned().unwrap_or(Value::Null),
                    Value::String(age(o
                        .pointer("/metadata/creationTimestamp")
                        .and_then(Value::as_str))),
                ],
                object: o.clone(),
                event_type: None,
            })
            .collect();
        Self { columns, rows }
    }
}

/// Prints Tables through one tabwriter, so rows printed later (watch events) stay aligned
/// with the ones before them.
#[derive(Debug)]
pub struct TablePrinter {
    writer: TabWriter,
    opts: TableOptions,
}

impl TablePrinter {
    pub fn new(opts: TableOptions) -> Self {
        Self {
            writer: TabWriter::for_tables(),
            opts,
        }
    }

    pub fn options_mut(&mut self) -> &mut TableOptions {
        &mut self.opts
    }

    /// Starts a new table: column widths of the previous one no longer apply.
    pub fn reset(&mut self) {
        self.writer.reset_widths();
    }

    fn visible<'a>(&self, columns: &'a [Column]) -> Vec<(usize, &'a Column)> {
        columns
            .iter()
            .enumerate()
            .filter(|(_, c)| self.opts.wide || c.priority == 0)
            .collect()
    }

    /// The header line, without printing it.
    pub fn header(&mut self, columns: &[Column]) -> String {
        let mut cells: Vec<String> = Vec::new();
        if self.opts.with_event_type {
            cells.push("EVENT".into());
        }
        if self.opts.with_namespace {
            cells.push("NAMESPACE".into());
        }
        for (_, c) in self.visible(columns) {
            cells.push(c.name.to_uppercase());
        }
        for key in &self.opts.label_columns {
            let short = key.rsplit('/').next().unwrap_or(key);
            cells.push(short.to_uppercase());
        }
        if self.opts.show_labels {
            cells.push("LABELS".into());
        }
        let mut line = cells.join("\t");
        line.push('\n');
        line
    }

    fn row_line(&self, columns: &[Column], row: &Row) -> String {
        let mut cells: Vec<String> = Vec::new();
        let meta = row.object.get("metadata");
        if self.opts.with_event_type {
            cells.push(row.event_type.clone().unwrap_or_default());
        }
        if self.opts.with_namespace {
            cells.push(
                meta.and_then(|m| m.get("namespace"))
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
            );
        }
        // The name column is the one the server marks with format "name", else the first.
        let name_col = columns.iter().position(|c| c.format == "name").unwrap_or(0);
        for (i, _) in self.visible(columns) {
            let mut text = row.cells.get(i).map(cell_text).unwrap_or_default();
            if i == name_col
                && let Some(prefix) = &self.opts.kind_prefix
            {
                text = format!("{prefix}/{text}");
            }
            cells.push(sanitize(&text));
        }
        let labels = meta.and_then(|m| m.get("labels"));
        for key in &self.opts.label_columns {
            cells.push(
                labels
                    .and_then(|l| l.get(key))
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
            );
        }
        if self.opts.show_labels {
            cells.push(labels_text(labels));
        }
        let mut line = cells.join("\t");
        line.push('\n');
        line
    }

    /// Formats a whole table (header unless `--no-headers`, then rows).
    pub fn table(&mut self, table: &Table) -> String {
        if !self.opts.no_headers {
            let header = self.header(&table.columns);
            self.writer.write(&header);
        }
        self.rows(&table.columns, &table.rows)
    }

    /// Formats rows only, aligned with what was printed before.
    pub fn rows(&mut self, columns: &[Column], rows: &[Row]) -> String {
        for row in rows {
            let line = self.row_line(columns, row);
            self.writer.write(&line);
        }
        self.writer.flush()
    }

    /// Formats a header line alone (for `--watch-only`, printed with the first event).
    pub fn header_only(&mut self, columns: &[Column]) {
        if !self.opts.no_headers {
            let header = self.header(columns);
            self.writer.write(&header);
        }
    }
}

/// Keeps a cell on one line: kubectl prints control characters escaped.
fn sanitize(s: &str) -> String {
    if !s.chars().any(|c| c.is_control()) {
        return s.to_string();
    }
    let mut out = String::new();
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_durations_match_kubectl() {
        assert_eq!(human_duration(-5), "<invalid>");
        assert_eq!(human_duration(-1), "0s");
        assert_eq!(human_duration(5), "5s");
        assert_eq!(human_duration(119), "119s");
        assert_eq!(human_duration(120), "2m");
        assert_eq!(human_duration(125), "2m5s");
        assert_eq!(human_duration(600), "10m");
        assert_eq!(human_duration(3 * 3600), "3h");
        assert_eq!(human_duration(3 * 3600 + 60 * 5), "3h5m");
        assert_eq!(human_duration(10 * 3600), "10h");
        assert_eq!(human_duration(3 * 86400 + 3600), "3d1h");
        assert_eq!(human_duration(30 * 86400), "30d");
        assert_eq!(human_duration(3 * 365 * 86400 + 86400 * 5), "3y5d");
        assert_eq!(human_duration(10 * 365 * 86400), "10y");
    }

    #[test]
    fn output_formats_parse() {
        assert_eq!(OutputFormat::parse(None).ok(), Some(OutputFormat::Default));
        assert_eq!(
            OutputFormat::parse(Some("wide")).ok(),
            Some(OutputFormat::Wide)
        );
        assert_eq!(
            OutputFormat::parse(Some("jsonpath={.a}")).ok(),
            Some(OutputFormat::JsonPath("{.a}".into()))
        );
        assert!(OutputFormat::parse(Some("xml")).is_err());
    }

    fn sample_table() -> Value {
        json!({
            "kind": "Table",
            "apiVersion": "meta.k8s.io/v1",
            "columnDefinitions": [
                {"name": "Name", "type": "string", "format": "name", "priority": 0},
                {"name": "Ready", "type": "string", "format": "", "priority": 0},
                {"name": "Restarts", "type": "integer", "format": "", "priority": 0},
                {"name": "IP", "type": "string", "format": "", "priority": 1},
            ],
            "rows": [
                {"cells": ["hello-1", "1/1", 0, "10.0.0.1"],
                 "object": {"metadata": {"name": "hello-1", "namespace": "default", "labels": {"b": "2", "a": "1"}}}},
                {"cells": ["web", "0/1", 3, null],
                 "object": {"metadata": {"name": "web", "namespace": "prod"}}},
            ]
        })
    }

    #[test]
    fn default_table_hides_priority_columns() {
        let t = Table::from_value(&sample_table()).expect("table");
        let mut p = TablePrinter::new(TableOptions::default());
        assert_eq!(
            p.table(&t),
            "NAME      READY   RESTARTS\nhello-1   1/1     0\nweb       0/1     3\n"
        );
    }

    #[test]
    fn wide_all_namespaces_labels_and_kind() {
        let t = Table::from_value(&sample_table()).expect("table");
        let mut p = TablePrinter::new(TableOptions {
            wide: true,
            with_namespace: true,
            show_labels: true,
            kind_prefix: Some("pod".into()),
            ..Default::default()
        });
        assert_eq!(
            p.table(&t),
            "NAMESPACE   NAME          READY   RESTARTS   IP         LABELS\n\
             default     pod/hello-1   1/1     0          10.0.0.1   a=1,b=2\n\
             prod        pod/web       0/1     3          <none>     <none>\n"
        );
    }

    #[test]
    fn no_headers_and_label_columns() {
        let t = Table::from_value(&sample_table()).expect("table");
        let mut p = TablePrinter::new(TableOptions {
            no_headers: true,
            label_columns: vec!["a".into()],
            ..Default::default()
        });
        assert_eq!(
            p.table(&t),
            "hello-1   1/1   0     1\nweb       0/1   3     \n"
        );
        let mut p = TablePrinter::new(TableOptions {
            label_columns: vec!["example.com/a".into()],
            ..Default::default()
        });
        assert!(p.table(&t).starts_with("NAME      READY   RESTARTS   A\n"));
        let mut p = TablePrinter::new(TableOptions {
            label_columns: vec!["example.com/tier".into()],
            ..Default::default()
        });
        assert!(
            p.table(&t)
                .starts_with("NAME      READY   RESTARTS   TIER\n")
        );
    }

    #[test]
    fn json_and_yaml_sort_keys() {
        let v = json!({"kind": "Pod", "apiVersion": "v1", "metadata": {"name": "a"}});
        assert_eq!(
            to_json(&v),
            "{\n    \"apiVersion\": \"v1\",\n    \"kind\": \"Pod\",\n    \"metadata\": {\n        \"name\": \"a\"\n    }\n}\n"
        );
        assert_eq!(
            to_yaml(&v),
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: a\n"
        );
    }

    #[test]
    fn cells_print_like_kubectl() {
        assert_eq!(cell_text(&json!(null)), "<none>");
        assert_eq!(cell_text(&json!(3)), "3");
        assert_eq!(cell_text(&json!(2.0)), "2");
        assert_eq!(cell_text(&json!(true)), "true");
        assert_eq!(labels_text(Some(&json!({"b": "1", "a": "2"}))), "a=2,b=1");
        assert_eq!(labels_text(None), "<none>");
    }

    #[test]
    fn generic_table_has_name_and_age() {
        let t = Table::generic(&[json!({"metadata": {"name": "x"}})]);
        let mut p = TablePrinter::new(TableOptions::default());
        assert_eq!(p.table(&t), "NAME   AGE\nx      <unknown>\n");
    }
}
