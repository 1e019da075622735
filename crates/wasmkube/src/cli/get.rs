//! `get`: lists and objects, printed from server-side Tables (default, `-o wide`) or as
//! YAML, JSON, names or JSONPath; `-w` follows the server's watch.

use std::process::ExitCode;

use serde_json::Value;

use super::client::{ACCEPT_JSON, ACCEPT_TABLE, CallError, with_query};
use super::jsonpath::Template;
use super::manifest::{self, Item};
use super::output::{self, OutputFormat, Row, Table, TableOptions, TablePrinter};
use super::resources::ResourceType;
use super::{GlobalArgs, Outcome, Session, meta_str, parse_type_args};

#[derive(clap::Args, Debug)]
pub struct GetArgs {
    /// TYPE[.GROUP] [NAME...], TYPE1,TYPE2, TYPE/NAME..., or `all`.
    pub args: Vec<String>,
    /// Output format: wide, yaml, json, name, jsonpath=TEMPLATE.
    #[arg(short = 'o', long)]
    pub output: Option<String>,
    /// Label selector to filter on (e.g. -l key1=value1,key2=value2).
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
    /// Field selector to filter on (e.g. --field-selector status.phase=Running).
    #[arg(long)]
    pub field_selector: Option<String>,
    /// List the requested objects across all namespaces.
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
    /// After listing/getting the requested objects, watch for changes.
    #[arg(short = 'w', long)]
    pub watch: bool,
    /// Watch for changes to the requested objects, without listing/getting first.
    #[arg(long)]
    pub watch_only: bool,
    /// Output watch event objects when --watch or --watch-only is used.
    #[arg(long)]
    pub output_watch_events: bool,
    /// Show all labels as the last column.
    #[arg(long)]
    pub show_labels: bool,
    /// Don't print headers.
    #[arg(long)]
    pub no_headers: bool,
    /// Labels to show as columns.
    #[arg(short = 'L', long = "label-columns", value_delimiter = ',')]
    pub label_columns: Vec<String>,
    /// List the resource type of each object.
    #[arg(long)]
    pub show_kind: bool,
    /// Treat "resource not found" as a successful retrieval.
    #[arg(long)]
    pub ignore_not_found: bool,
    /// Files identifying the resources to get.
    #[arg(short = 'f', long = "filename")]
    pub filenames: Vec<String>,
    /// Process the directory used in -f recursively.
    #[arg(short = 'R', long)]
    pub recursive: bool,
    #[command(flatten)]
    pub global: GlobalArgs,
}

/// One thing to fetch: a whole collection, or some named objects of one type.
#[derive(Debug, Clone)]
struct Request {
    rt: ResourceType,
    /// Empty: list.
    names: Vec<String>,
    /// `None`: all namespaces (or cluster-scoped).
    namespace: Option<String>,
}

pub async fn run(args: GetArgs) -> anyhow::Result<ExitCode> {
    let format = OutputFormat::parse(args.output.as_deref())?;
    let template = match &format {
        OutputFormat::JsonPath(t) => Some(Template::parse(t)?),
        _ => None,
    };
    if args.args.is_empty() && args.filenames.is_empty() {
        anyhow::bail!(
            "You must specify the type of resource to get. Use \"wasmkube api-resources\" for a complete list of supported resources."
        );
    }
    let session = Session::connect(&args.global).await?;
    let mut outcome = Outcome::default();
    let requests = build_requests(&args, &session, &mut outcome).await?;

    if args.watch || args.watch_only {
        if requests.len() != 1 || requests[0].names.len() > 1 {
            anyhow::bail!("you may only specify a single resource type");
        }
        return watch(&args, &session, &requests[0], &format, template.as_ref()).await;
    }

    if format.is_table() {
        print_tables(&args, &session, &requests, &format, &mut outcome).await;
    } else {
        print_objects(
            &args,
            &session,
            &requests,
            &format,
            template.as_ref(),
            &mut outcome,
        )
        .await;
    }
    outcome.print_deferred();
    Ok(outcome.code())
}

async fn build_requests(
    args: &GetArgs,
    session: &Session,
    outcome: &mut Outcome,
) -> anyhow::Result<Vec<Request>> {
    let discovery = session.discovery().await?;
    let ns = session.namespace().to_string();
    let mut requests: Vec<Request> = Vec::new();
    if !args.filenames.is_empty() {
        for item in manifest::read_sources(&args.filenames, args.recursive)? {
            let m = match item {
                Item::Object(m) => m,
                Item::Invalid { message, .. } => {
                    outcome.error(format!("error: {message}"));
                    continue;
                }
            };
            match super::apply::locate(session, discovery, &m) {
                // Objects of one type in one namespace share a table, as in kubectl.
                Ok((rt, namespace, name)) => match requests
                    .iter_mut()
                    .find(|r| r.rt == *rt && r.namespace == namespace)
                {
                    Some(r) => r.names.push(name),
                    None => requests.push(Request {
                        rt: rt.clone(),
                        names: vec![name],
                        namespace,
                    }),
                },
                Err(message) => outcome.error(message),
            }
        }
        return Ok(requests);
    }
    for (ty, names) in parse_type_args(&args.args)? {
        let types = if names.is_empty() {
            discovery.resolve_many(&ty)
        } else {
            discovery.resolve(&ty).map(|r| vec![r])
        };
        let Some(types) = types else {
            return Err(super::resources::unknown_type(&ty));
        };
        if args.all_namespaces && !names.is_empty() {
            anyhow::bail!("a resource cannot be retrieved by name across all namespaces");
        }
        for rt in types {
            if !rt.supports(if names.is_empty() { "list" } else { "get" }) {
                continue;
            }
            requests.push(Request {
                rt: rt.clone(),
                names: names.clone(),
                namespace: (!args.all_namespaces).then(|| ns.clone()),
            });
        }
    }
    Ok(requests)
}

fn list_url(args: &GetArgs, req: &Request) -> String {
    with_query(
        &req.rt.collection_path(req.namespace.as_deref()),
        &[
            ("labelSelector", args.selector.as_deref()),
            ("fieldSelector", args.field_selector.as_deref()),
        ],
    )
}

/// A Table for a request: what the server printed, or NAME/AGE when it sent plain objects.
async fn fetch_table(
    args: &GetArgs,
    session: &Session,
    req: &Request,
    outcome: &mut Outcome,
) -> Option<Table> {
    if req.names.is_empty() {
        match session.api.list(&list_url(args, req), ACCEPT_TABLE).await {
            Ok(v) => Some(as_table(&v)),
            Err(e) => {
                outcome.defer(e);
                None
            }
        }
    } else {
        let mut table = Table::default();
        for name in &req.names {
            let url = req.rt.object_path(req.namespace.as_deref(), name);
            match session.api.get_as(&url, ACCEPT_TABLE).await {
                Ok(v) => {
                    let t = as_table(&v);
                    if table.columns.is_empty() {
                        table.columns = t.columns;
                    }
                    table.rows.extend(t.rows);
                }
                Err(e) if e.is_not_found() && args.ignore_not_found => {}
                Err(e) => outcome.defer(e),
            }
        }
        Some(table)
    }
}

fn as_table(v: &Value) -> Table {
    if let Some(t) = Table::from_value(v) {
        return t;
    }
    match v.get("items").and_then(Value::as_array) {
        Some(items) => Table::generic(items),
        None => Table::generic(std::slice::from_ref(v)),
    }
}

fn table_options(args: &GetArgs, format: &OutputFormat) -> TableOptions {
    TableOptions {
        wide: *format == OutputFormat::Wide,
        with_namespace: args.all_namespaces,
        show_labels: args.show_labels,
        no_headers: args.no_headers,
        label_columns: args.label_columns.clone(),
        kind_prefix: None,
        with_event_type: args.output_watch_events,
    }
}

async fn print_tables(
    args: &GetArgs,
    session: &Session,
    requests: &[Request],
    format: &OutputFormat,
    outcome: &mut Outcome,
) {
    // kubectl prefixes names with their kind when what the server returned (lists, even empty
    // ones, and named objects found) spans several kinds.
    let mut fetched: Vec<(&Request, Table)> = Vec::new();
    for req in requests {
        if let Some(table) = fetch_table(args, session, req, outcome).await
            && (req.names.is_empty() || !table.rows.is_empty())
        {
            fetched.push((req, table));
        }
    }
    let several_kinds = fetched
        .iter()
        .any(|(r, _)| (&r.rt.group, &r.rt.kind) != (&fetched[0].0.rt.group, &fetched[0].0.rt.kind));
    let mut printer = TablePrinter::new(table_options(args, format));
    let mut printed = false;
    for (req, table) in fetched {
        if table.rows.is_empty() {
            continue;
        }
        if printed {
            outln!();
        }
        printer.reset();
        printer.options_mut().kind_prefix =
            (several_kinds || args.show_kind).then(|| req.rt.display_kind());
        out!("{}", printer.table(&table));
        printed = true;
    }
    if !printed && !outcome.failed() && requests.iter().all(|r| r.names.is_empty()) {
        eprintln!("{}", no_resources(args, session, requests));
    }
}

fn no_resources(args: &GetArgs, session: &Session, requests: &[Request]) -> String {
    let namespaced = requests.iter().any(|r| r.rt.namespaced);
    if args.all_namespaces || !namespaced {
        "No resources found".to_string()
    } else {
        format!("No resources found in {} namespace.", session.namespace())
    }
}

/// Gives list items the `apiVersion` and `kind` servers leave out of them.
fn with_type(rt: &ResourceType, mut obj: Value) -> Value {
    if let Value::Object(m) = &mut obj {
        m.entry("apiVersion")
            .or_insert_with(|| Value::String(rt.api_version()));
        m.entry("kind")
            .or_insert_with(|| Value::String(rt.kind.clone()));
    }
    obj
}

async fn fetch_objects(
    args: &GetArgs,
    session: &Session,
    req: &Request,
    outcome: &mut Outcome,
) -> Vec<Value> {
    if req.names.is_empty() {
        match session.api.list(&list_url(args, req), ACCEPT_JSON).await {
            Ok(v) => v
                .get("items")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .map(|o| with_type(&req.rt, o))
                .collect(),
            Err(e) => {
                outcome.defer(e);
                Vec::new()
            }
        }
    } else {
        let mut out = Vec::new();
        for name in &req.names {
            let url = req.rt.object_path(req.namespace.as_deref(), name);
            match session.api.get(&url).await {
                Ok(v) => out.push(with_type(&req.rt, v)),
                Err(e) if e.is_not_found() && args.ignore_not_found => {}
                Err(e) => outcome.defer(e),
            }
        }
        out
    }
}

async fn print_objects(
    args: &GetArgs,
    session: &Session,
    requests: &[Request],
    format: &OutputFormat,
    template: Option<&Template>,
    outcome: &mut Outcome,
) {
    let mut objects: Vec<(ResourceType, Value)> = Vec::new();
    for req in requests {
        for o in fetch_objects(args, session, req, outcome).await {
            objects.push((req.rt.clone(), o));
        }
    }
    let single = requests.len() == 1 && requests[0].names.len() == 1;
    if objects.is_empty() && !outcome.failed() && !single && *format == OutputFormat::Name {
        eprintln!("{}", no_resources(args, session, requests));
        return;
    }
    match format {
        OutputFormat::Name => {
            for (rt, o) in &objects {
                outln!("{}", rt.object_ref(meta_str(o, "name")));
            }
        }
        _ => {
            if objects.is_empty() && single {
                return;
            }
            let doc = if single && objects.len() == 1 {
                objects.remove(0).1
            } else {
                output::as_list(objects.into_iter().map(|(_, o)| o).collect())
            };
            print_document(&doc, format, template);
        }
    }
}

fn print_document(doc: &Value, format: &OutputFormat, template: Option<&Template>) {
    match format {
        OutputFormat::Json => out!("{}", output::to_json(doc)),
        OutputFormat::Yaml => out!("{}", output::to_yaml(doc)),
        OutputFormat::JsonPath(_) => {
            if let Some(t) = template {
                out!("{}", t.render(doc));
            }
        }
        _ => {}
    }
}

/// `-w`: the initial list (unless `--watch-only`), then one row or object per event until the
/// stream ends or the user interrupts.
async fn watch(
    args: &GetArgs,
    session: &Session,
    req: &Request,
    format: &OutputFormat,
    template: Option<&Template>,
) -> anyhow::Result<ExitCode> {
    // A named watch is a watch on the collection narrowed to that name, as kubectl does it.
    let name_selector = req.names.first().map(|n| format!("metadata.name={n}"));
    let field_selector = match (&args.field_selector, &name_selector) {
        (Some(f), Some(n)) => Some(format!("{f},{n}")),
        (Some(f), None) => Some(f.clone()),
        (None, n) => n.clone(),
    };
    let base = with_query(
        &req.rt.collection_path(req.namespace.as_deref()),
        &[
            ("labelSelector", args.selector.as_deref()),
            ("fieldSelector", field_selector.as_deref()),
        ],
    );
    let accept = if format.is_table() {
        ACCEPT_TABLE
    } else {
        ACCEPT_JSON
    };
    let list = session.api.list(&base, accept).await?;
    // Watching one named object that does not exist is an error, as in kubectl.
    if let Some(name) = req.names.first() {
        let empty = |field: &str| {
            list.get(field)
                .and_then(Value::as_array)
                .is_none_or(Vec::is_empty)
        };
        if empty("items") && empty("rows") && !args.ignore_not_found {
            return Err(CallError::not_found(&req.rt.group_resource(), name).into());
        }
    }
    let resource_version = list
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();

    let mut printer = TablePrinter::new(table_options(args, format));
    printer.options_mut().kind_prefix = args.show_kind.then(|| req.rt.display_kind());
    let mut columns = Vec::new();
    let mut header_printed = false;
    let mut docs_printed = 0usize;
    if format.is_table() {
        let mut table = as_table(&list);
        columns = table.columns.clone();
        if !args.watch_only {
            if table.rows.is_empty() {
                eprintln!("{}", no_resources(args, session, std::slice::from_ref(req)));
            } else {
                if args.output_watch_events {
                    for r in &mut table.rows {
                        r.event_type = Some("ADDED".into());
                    }
                }
                out!("{}", printer.table(&table));
                header_printed = true;
            }
        }
    } else if !args.watch_only {
        let items = list
            .get("items")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for o in items {
            print_watch_object(
                &req.rt,
                &with_type(&req.rt, o),
                "ADDED",
                args,
                format,
                template,
                &mut docs_printed,
            );
        }
    }

    let url = with_query(
        &format!(
            "{base}{}watch=true",
            if base.contains('?') { '&' } else { '?' }
        ),
        &[("resourceVersion", Some(resource_version.as_str()))],
    );
    let mut lines = session.api.lines(&url, accept).await?;
    loop {
        let line = tokio::select! {
            line = lines.next_line() => line,
            _ = tokio::signal::ctrl_c() => return Ok(ExitCode::SUCCESS),
        };
        let Some(line) = line else { break };
        let line = line?;
        let Ok(event) = serde_json::from_str::<Value>(&line) else {
            anyhow::bail!("the server sent a watch event that is not JSON: {line}");
        };
        let kind = event
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let object = event.get("object").cloned().unwrap_or(Value::Null);
        match kind.as_str() {
            "ERROR" => {
                let status = serde_json::from_value(object)
                    .map_err(|e| anyhow::anyhow!("bad watch error: {e}"))?;
                return Err(CallError::Server(Box::new(status)).into());
            }
            "BOOKMARK" => continue,
            _ => {}
        }
        if format.is_table() {
            let mut table = as_table(&object);
            if !table.columns.is_empty() {
                columns = table.columns.clone();
            }
            for r in &mut table.rows {
                r.event_type = Some(kind.clone());
            }
            if !header_printed {
                printer.header_only(&columns);
                header_printed = true;
            }
            let rows: Vec<Row> = table.rows;
            out!("{}", printer.rows(&columns, &rows));
        } else {
            print_watch_object(
                &req.rt,
                &with_type(&req.rt, object),
                &kind,
                args,
                format,
                template,
                &mut docs_printed,
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_watch_object(
    rt: &ResourceType,
    obj: &Value,
    event_type: &str,
    args: &GetArgs,
    format: &OutputFormat,
    template: Option<&Template>,
    printed: &mut usize,
) {
    let doc = if args.output_watch_events {
        serde_json::json!({"type": event_type, "object": obj})
    } else {
        obj.clone()
    };
    match format {
        OutputFormat::Name => outln!("{}", rt.object_ref(meta_str(obj, "name"))),
        OutputFormat::Yaml => {
            if *printed > 0 {
                outln!("---");
            }
            out!("{}", output::to_yaml(&doc));
        }
        _ => print_document(&doc, format, template),
    }
    *printed += 1;
}
