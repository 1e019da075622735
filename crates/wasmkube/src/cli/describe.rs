//! `describe`: kubectl's human-readable reports, for Pod, Deployment, ReplicaSet, Service,
//! Node, Namespace, ConfigMap, Secret and Job, and a generic one for every other kind.
//!
//! The layouts follow kubectl's describers line for line (same labels, same tab stops through
//! the same tabwriter), so what users know from kubectl reads the same here.

use std::collections::BTreeMap;
use std::process::ExitCode;

use serde_json::{Map, Value};
use wasmkube_api::quantity::Quantity;

use super::client::{ACCEPT_JSON, CallError, with_query};
use super::events;
use super::output::{age, describe_time, human_duration};
use super::resources::ResourceType;
use super::tabwriter::TabWriter;
use super::{GlobalArgs, Outcome, Session, meta_str, parse_type_args};

#[derive(clap::Args, Debug)]
pub struct DescribeArgs {
    /// TYPE [NAME_PREFIX...] or TYPE/NAME...
    #[arg(required = true)]
    pub args: Vec<String>,
    /// Selector (label query) to filter on.
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
    /// Describe the requested objects across all namespaces.
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
    /// Show events related to the described object.
    #[arg(long, num_args = 0..=1, default_value = "true", default_missing_value = "true", action = clap::ArgAction::Set)]
    pub show_events: bool,
    #[command(flatten)]
    pub global: GlobalArgs,
}

pub async fn run(args: DescribeArgs) -> anyhow::Result<ExitCode> {
    let session = Session::connect(&args.global).await?;
    let discovery = session.discovery().await?;
    let mut outcome = Outcome::default();
    let mut objects: Vec<(ResourceType, Value)> = Vec::new();
    for (ty, names) in parse_type_args(&args.args)? {
        let types = if names.is_empty() {
            discovery.resolve_many(&ty)
        } else {
            discovery.resolve(&ty).map(|r| vec![r])
        }
        .ok_or_else(|| super::resources::unknown_type(&ty))?;
        for rt in types {
            let ns =
                (rt.namespaced && !args.all_namespaces).then(|| session.namespace().to_string());
            if names.is_empty() {
                let url = with_query(
                    &rt.collection_path(ns.as_deref()),
                    &[("labelSelector", args.selector.as_deref())],
                );
                match session.api.list(&url, ACCEPT_JSON).await {
                    Ok(list) => objects.extend(items(&list).into_iter().map(|o| (rt.clone(), o))),
                    Err(e) => outcome.error(e),
                }
                continue;
            }
            for name in &names {
                match session.api.get(&rt.object_path(ns.as_deref(), name)).await {
                    Ok(o) => objects.push((rt.clone(), o)),
                    // Like kubectl, a name that matches nothing exactly describes every object
                    // whose name starts with it (`describe pod web` finds `web-7d9f…`).
                    Err(e) if e.is_not_found() => {
                        let list = session
                            .api
                            .list(&rt.collection_path(ns.as_deref()), ACCEPT_JSON)
                            .await;
                        let matching: Vec<Value> = list
                            .map(|l| items(&l))
                            .unwrap_or_default()
                            .into_iter()
                            .filter(|o| meta_str(o, "name").starts_with(name.as_str()))
                            .collect();
                        if matching.is_empty() {
                            outcome.error(e);
                        }
                        objects.extend(matching.into_iter().map(|o| (rt.clone(), o)));
                    }
                    Err(e) => outcome.error(e),
                }
            }
        }
    }
    if objects.is_empty() && !outcome.failed() {
        if args.all_namespaces {
            eprintln!("No resources found");
        } else {
            eprintln!("No resources found in {} namespace.", session.namespace());
        }
    }
    let mut first = true;
    for (rt, obj) in objects {
        let text = describe(&session, &rt, &obj, args.show_events).await;
        if first {
            out!("{text}");
            first = false;
        } else {
            out!("\n\n{text}");
        }
    }
    Ok(outcome.code())
}

fn items(list: &Value) -> Vec<Value> {
    list.get("items")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

/// Dispatches to the describer of the object's kind.
async fn describe(session: &Session, rt: &ResourceType, obj: &Value, show_events: bool) -> String {
    let mut w = Writer::default();
    let events = if show_events {
        Some(find_events(session, rt, obj).await)
    } else {
        None
    };
    match (rt.group.as_str(), rt.kind.as_str()) {
        ("", "Pod") => describe_pod(&mut w, obj),
        ("apps", "Deployment") => {
            let rs = owned(session, "replicasets.apps", obj).await;
            describe_deployment(&mut w, obj, &rs);
        }
        ("apps", "ReplicaSet") => {
            let pods = owned(session, "pods", obj).await;
            describe_replicaset(&mut w, obj, &pods);
        }
        ("apps", "StatefulSet") => {
            let pods = owned(session, "pods", obj).await;
            describe_statefulset(&mut w, obj, &pods);
        }
        ("apps", "DaemonSet") => {
            let pods = owned(session, "pods", obj).await;
            describe_daemonset(&mut w, obj, &pods);
        }
        ("", "Service") => {
            let endpoints = service_endpoints(session, obj).await;
            describe_service(&mut w, obj, &endpoints);
        }
        ("", "Node") => {
            let extra = node_extras(session, obj).await;
            describe_node(&mut w, obj, &extra);
        }
        ("", "Namespace") => {
            let ns = meta_str(obj, "name").to_string();
            let quotas = list_in(session, "resourcequotas", &ns).await;
            let limits = list_in(session, "limitranges", &ns).await;
            describe_namespace(&mut w, obj, quotas.as_deref(), limits.as_deref());
            // kubectl shows no events for namespaces.
            return w.finish();
        }
        ("", "ConfigMap") => describe_configmap(&mut w, obj),
        ("", "Secret") => {
            describe_secret(&mut w, obj);
            // Nor for secrets.
            return w.finish();
        }
        ("batch", "Job") => describe_job(&mut w, obj),
        _ => describe_generic(&mut w, obj),
    }
    if let Some(events) = events {
        describe_events(&mut w, &events);
    }
    w.finish()
}

// ---------------------------------------------------------------------------------------------
// Fetching what describers need besides the object.

/// Events about the object: the server's field selector narrows them, and the same test runs
/// here so a server that ignores the selector still gives the right answer.
async fn find_events(session: &Session, rt: &ResourceType, obj: &Value) -> Vec<Value> {
    let name = meta_str(obj, "name");
    let ns = meta_str(obj, "namespace");
    let uid = meta_str(obj, "uid");
    let is_node = rt.group.is_empty() && rt.kind == "Node";
    let mut fields = vec![
        format!("involvedObject.name={name}"),
        format!("involvedObject.namespace={ns}"),
        format!("involvedObject.kind={}", rt.kind),
    ];
    // Node events carry the node's name or its uid as the uid, depending on who wrote them.
    if !uid.is_empty() && !is_node {
        fields.push(format!("involvedObject.uid={uid}"));
    }
    let Ok(events_rt) = session.resolve("events").await else {
        return Vec::new();
    };
    let scope = (!ns.is_empty()).then_some(ns);
    let selector = fields.join(",");
    let url = with_query(
        &events_rt.collection_path(scope),
        &[("fieldSelector", Some(&selector))],
    );
    let list = match session.api.list(&url, ACCEPT_JSON).await {
        Ok(l) => l,
        // A server that does not index these fields: filter the namespace's events here.
        Err(_) => match session
            .api
            .list(&events_rt.collection_path(scope), ACCEPT_JSON)
            .await
        {
            Ok(l) => l,
            Err(_) => return Vec::new(),
        },
    };
    let mut found: Vec<Value> = items(&list)
        .into_iter()
        .filter(|e| {
            let io = |f: &str| {
                e.pointer(&format!("/involvedObject/{f}"))
                    .and_then(Value::as_str)
                    .unwrap_or_default()
            };
            io("name") == name
                && io("namespace") == ns
                && (io("kind").is_empty() || io("kind") == rt.kind)
                && (is_node || uid.is_empty() || io("uid").is_empty() || io("uid") == uid)
        })
        .collect();
    events::sort_events(&mut found);
    found
}

/// Objects of `resource` in the owner's namespace whose controller is `owner`.
async fn owned(session: &Session, resource: &str, owner: &Value) -> Vec<Value> {
    let Ok(rt) = session.resolve(resource).await else {
        return Vec::new();
    };
    let ns = meta_str(owner, "namespace");
    let uid = meta_str(owner, "uid");
    let selector = owner.pointer("/spec/selector").map(format_label_selector);
    let url = with_query(
        &rt.collection_path(Some(ns)),
        &[(
            "labelSelector",
            selector.as_deref().filter(|s| *s != "<none>"),
        )],
    );
    match session.api.list(&url, ACCEPT_JSON).await {
        Ok(list) => items(&list)
            .into_iter()
            .filter(|o| {
                controller_of(o).is_some_and(|c| c.get("uid").and_then(Value::as_str) == Some(uid))
            })
            .collect(),
        Err(_) => Vec::new(),
    }
}

async fn list_in(session: &Session, resource: &str, ns: &str) -> Option<Vec<Value>> {
    let rt = session.resolve(resource).await.ok()?;
    session
        .api
        .list(&rt.collection_path(Some(ns)), ACCEPT_JSON)
        .await
        .ok()
        .map(|l| items(&l))
}

/// A service's endpoints as `ip:port` per service port name, from EndpointSlices (or the older
/// Endpoints object when the server has no slices).
async fn service_endpoints(session: &Session, svc: &Value) -> Vec<Value> {
    let ns = meta_str(svc, "namespace");
    let name = meta_str(svc, "name");
    if let Ok(rt) = session.resolve("endpointslices.discovery.k8s.io").await {
        let sel = format!("kubernetes.io/service-name={name}");
        let url = with_query(
            &rt.collection_path(Some(ns)),
            &[("labelSelector", Some(&sel))],
        );
        if let Ok(list) = session.api.list(&url, ACCEPT_JSON).await {
            return items(&list);
        }
    }
    Vec::new()
}

#[derive(Default)]
struct NodeExtras {
    /// The node's Lease, or why it could not be read.
    lease: Option<Result<Value, String>>,
    pods: Option<Vec<Value>>,
}

async fn node_extras(session: &Session, node: &Value) -> NodeExtras {
    let name = meta_str(node, "name");
    let lease = match session.resolve("leases.coordination.k8s.io").await {
        Ok(rt) => Some(
            session
                .api
                .get(&rt.object_path(Some("kube-node-lease"), name))
                .await
                .map_err(|e| match e.status() {
                    Some(s) => s.message.clone(),
                    None => e.to_string(),
                }),
        ),
        Err(_) => None,
    };
    let pods = match session.resolve("pods").await {
        Ok(rt) => {
            let sel = format!("spec.nodeName={name},status.phase!=Succeeded,status.phase!=Failed");
            let url = with_query(&rt.collection_path(None), &[("fieldSelector", Some(&sel))]);
            match session.api.list(&url, ACCEPT_JSON).await {
                Ok(l) => Some(items(&l)),
                Err(CallError::Server(_)) | Err(CallError::Transport(_)) => None,
            }
        }
        Err(_) => None,
    };
    NodeExtras { lease, pods }
}

// ---------------------------------------------------------------------------------------------
// The writer: kubectl's PrefixWriter over a tabwriter.

struct Writer {
    tw: TabWriter,
    out: String,
}

impl Default for Writer {
    fn default() -> Self {
        Self {
            tw: TabWriter::for_describe(),
            out: String::new(),
        }
    }
}

impl Writer {
    /// Writes `text` indented by `level` steps of two spaces.
    fn w(&mut self, level: usize, text: &str) {
        if level > 0 {
            self.tw.write(&"  ".repeat(level));
        }
        self.tw.write(text);
    }

    /// Ends the current alignment block.
    fn flush(&mut self) {
        let text = self.tw.flush();
        self.out.push_str(&text);
    }

    fn finish(mut self) -> String {
        self.flush();
        self.out
    }
}

// ---------------------------------------------------------------------------------------------
// Reading values.

fn s<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
}

fn int(v: &Value, pointer: &str) -> Option<i64> {
    v.pointer(pointer).and_then(Value::as_i64)
}

fn arr<'a>(v: &'a Value, pointer: &str) -> &'a [Value] {
    v.pointer(pointer)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

fn boolean(v: &Value, pointer: &str) -> Option<bool> {
    v.pointer(pointer).and_then(Value::as_bool)
}

/// A map of strings, sorted by key.
/// `k=v,k2=v2` as describe prints selectors, or `<none>`.
fn pairs_or_none(map: &BTreeMap<String, String>) -> String {
    if map.is_empty() {
        return "<none>".to_string();
    }
    map.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

fn string_map(v: &Value, pointer: &str) -> BTreeMap<String, String> {
    v.pointer(pointer)
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        v.as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| v.to_string()),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Go's `%v` for a JSON scalar.
fn plain(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "<nil>".into(),
        other => other.to_string(),
    }
}

fn or_none(s: &str) -> &str {
    if s.is_empty() { "<none>" } else { s }
}

fn time_or(v: &Value, pointer: &str, missing: &str) -> String {
    match v.pointer(pointer).and_then(Value::as_str) {
        Some(t) if !t.is_empty() => describe_time(t),
        _ => missing.to_string(),
    }
}

fn controller_of(obj: &Value) -> Option<&Value> {
    arr(obj, "/metadata/ownerReferences")
        .iter()
        .find(|r| r.get("controller").and_then(Value::as_bool) == Some(true))
}

/// `Kind/name` of the controlling owner.
fn controlled_by(obj: &Value) -> Option<String> {
    controller_of(obj).map(|r| format!("{}/{}", s(r, "/kind"), s(r, "/name")))
}

/// `metav1.FormatLabelSelector`: requirements sorted by key, `<none>` for an empty selector.
pub fn format_label_selector(sel: &Value) -> String {
    let mut parts: Vec<(String, String)> = Vec::new();
    let is_label_selector =
        sel.get("matchLabels").is_some() || sel.get("matchExpressions").is_some();
    let labels = if is_label_selector {
        sel.get("matchLabels")
    } else {
        Some(sel)
    };
    if let Some(Value::Object(m)) = labels {
        for (k, v) in m {
            parts.push((k.clone(), format!("{k}={}", plain(v))));
        }
    }
    for e in sel
        .get("matchExpressions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let key = s(e, "/key").to_string();
        let mut values: Vec<String> = arr(e, "/values").iter().map(plain).collect();
        values.sort();
        let text = match s(e, "/operator") {
            "In" => format!("{key} in ({})", values.join(",")),
            "NotIn" => format!("{key} notin ({})", values.join(",")),
            "Exists" => key.clone(),
            "DoesNotExist" => format!("!{key}"),
            other => format!("{key} {other} ({})", values.join(",")),
        };
        parts.push((key, text));
    }
    if parts.is_empty() {
        return "<none>".into();
    }
    parts.sort();
    parts
        .into_iter()
        .map(|(_, t)| t)
        .collect::<Vec<_>>()
        .join(",")
}

/// `LabelSelectorAsSelector(...).String()`: like [`format_label_selector`] but empty, not
/// `<none>`, for a missing selector (what Deployment, Job, StatefulSet and DaemonSet show).
fn selector_string(obj: &Value) -> String {
    match obj.pointer("/spec/selector").map(format_label_selector) {
        Some(s) if s != "<none>" => s,
        _ => String::new(),
    }
}

// ---------------------------------------------------------------------------------------------
// Shared sections.

/// `printLabelsMultilineWithIndent`.
fn labels_multiline(
    w: &mut Writer,
    initial_indent: &str,
    title: &str,
    inner_indent: &str,
    labels: &BTreeMap<String, String>,
) {
    w.w(0, &format!("{initial_indent}{title}:{inner_indent}"));
    if labels.is_empty() {
        w.w(0, "<none>\n");
        return;
    }
    for (i, (k, v)) in labels.iter().enumerate() {
        if i != 0 {
            w.w(0, initial_indent);
            w.w(0, inner_indent);
        }
        w.w(0, &format!("{k}={v}\n"));
    }
}

fn labels(w: &mut Writer, title: &str, labels: &BTreeMap<String, String>) {
    labels_multiline(w, "", title, "\t", labels);
}

const MAX_ANNOTATION_LEN: usize = 140;

/// `printAnnotationsMultiline`: long or multi-line values go on their own lines, shortened.
fn annotations(w: &mut Writer, title: &str, annotations: &BTreeMap<String, String>) {
    w.w(0, &format!("{title}:\t"));
    let keys: Vec<&String> = annotations
        .keys()
        .filter(|k| k.as_str() != super::apply::LAST_APPLIED)
        .collect();
    if keys.is_empty() {
        w.w(0, "<none>\n");
        return;
    }
    for (i, key) in keys.iter().enumerate() {
        if i != 0 {
            w.w(0, "\t");
        }
        let value = annotations[*key].trim_end_matches('\n');
        if value.len() + key.len() + 2 > MAX_ANNOTATION_LEN || value.contains('\n') {
            w.w(0, &format!("{key}:\n"));
            for line in value.split('\n') {
                w.w(
                    0,
                    &format!("\t  {}\n", shorten(line, MAX_ANNOTATION_LEN - 2)),
                );
            }
        } else {
            w.w(0, &format!("{key}: {value}\n"));
        }
    }
}

fn shorten(s: &str, max: usize) -> String {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}...", &s[..end])
    } else {
        s.to_string()
    }
}

fn name_namespace_labels_annotations(w: &mut Writer, obj: &Value) {
    w.w(0, &format!("Name:\t{}\n", meta_str(obj, "name")));
    w.w(0, &format!("Namespace:\t{}\n", meta_str(obj, "namespace")));
    labels(w, "Labels", &string_map(obj, "/metadata/labels"));
    annotations(w, "Annotations", &string_map(obj, "/metadata/annotations"));
}

/// `DescribeEvents`.
fn describe_events(w: &mut Writer, events: &[Value]) {
    if events.is_empty() {
        w.w(0, "Events:\t<none>\n");
        return;
    }
    w.flush();
    w.w(0, "Events:\n  Type\tReason\tAge\tFrom\tMessage\n");
    w.w(1, "----\t------\t----\t----\t-------\n");
    for e in events {
        let mut source = s(e, "/source/component");
        if source.is_empty() {
            source = s(e, "/reportingController");
        }
        w.w(
            1,
            &format!(
                "{}\t{}\t{}\t{}\t{}\n",
                s(e, "/type"),
                s(e, "/reason"),
                events::interval(e),
                source,
                s(e, "/message").trim()
            ),
        );
    }
}

fn tolerations(w: &mut Writer, initial_indent: &str, title: &str, tolerations: &[Value]) {
    w.w(0, &format!("{initial_indent}{title}:\t"));
    if tolerations.is_empty() {
        w.w(0, "<none>\n");
        return;
    }
    let mut sorted: Vec<&Value> = tolerations.iter().collect();
    sorted.sort_by_key(|t| s(t, "/key").to_string());
    for (i, t) in sorted.iter().enumerate() {
        if i != 0 {
            w.w(0, initial_indent);
            w.w(0, "\t");
        }
        let (key, value, effect) = (s(t, "/key"), s(t, "/value"), s(t, "/effect"));
        let mut text = key.to_string();
        if !value.is_empty() {
            text.push_str(&format!("={value}"));
        }
        if !effect.is_empty() {
            text.push_str(&format!(":{effect}"));
        }
        if s(t, "/operator") == "Exists" && value.is_empty() {
            text.push_str(if key.is_empty() && effect.is_empty() {
                "op=Exists"
            } else {
                " op=Exists"
            });
        }
        if let Some(secs) = int(t, "/tolerationSeconds") {
            text.push_str(&format!(" for {secs}s"));
        }
        w.w(0, &format!("{text}\n"));
    }
}

fn taints(w: &mut Writer, taints: &[Value]) {
    w.w(0, "Taints:\t");
    if taints.is_empty() {
        w.w(0, "<none>\n");
        return;
    }
    for (i, t) in taints.iter().enumerate() {
        if i != 0 {
            w.w(0, "\t");
        }
        let value = s(t, "/value");
        let text = if value.is_empty() {
            format!("{}:{}", s(t, "/key"), s(t, "/effect"))
        } else {
            format!("{}={value}:{}", s(t, "/key"), s(t, "/effect"))
        };
        w.w(0, &format!("{text}\n"));
    }
}

fn conditions_with_reason(w: &mut Writer, obj: &Value) {
    let conditions = arr(obj, "/status/conditions");
    if conditions.is_empty() {
        return;
    }
    w.w(0, "Conditions:\n  Type\tStatus\tReason\n");
    w.w(1, "----\t------\t------\n");
    for c in conditions {
        w.w(
            1,
            &format!(
                "{} \t{}\t{}\n",
                s(c, "/type"),
                s(c, "/status"),
                s(c, "/reason")
            ),
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Containers and volumes.

fn port_list(ports: &[Value], field: &str) -> String {
    ports
        .iter()
        .map(|p| {
            let proto = match s(p, "/protocol") {
                "" => "TCP",
                other => other,
            };
            format!("{}/{proto}", int(p, field).unwrap_or(0))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn describe_probe(p: &Value) -> String {
    let attrs = format!(
        "delay={}s timeout={}s period={}s successThreshold={} failureThreshold={}",
        int(p, "/initialDelaySeconds").unwrap_or(0),
        int(p, "/timeoutSeconds").unwrap_or(1),
        int(p, "/periodSeconds").unwrap_or(10),
        int(p, "/successThreshold").unwrap_or(1),
        int(p, "/failureThreshold").unwrap_or(3)
    );
    if let Some(exec) = p.get("exec") {
        let cmd: Vec<String> = arr(exec, "/command").iter().map(plain).collect();
        return format!("exec [{}] {attrs}", cmd.join(" "));
    }
    if let Some(h) = p.get("httpGet") {
        let scheme = match s(h, "/scheme") {
            "" => "http".to_string(),
            other => other.to_lowercase(),
        };
        let port = h.get("port").map(plain).unwrap_or_default();
        let host = s(h, "/host");
        let hostport = if port.is_empty() {
            host.to_string()
        } else {
            format!("{host}:{port}")
        };
        return format!("http-get {scheme}://{hostport}{} {attrs}", s(h, "/path"));
    }
    if let Some(t) = p.get("tcpSocket") {
        let port = t.get("port").map(plain).unwrap_or_default();
        return format!("tcp-socket {}:{port} {attrs}", s(t, "/host"));
    }
    if let Some(g) = p.get("grpc") {
        return format!(
            "grpc <pod>:{} {} {attrs}",
            int(g, "/port").unwrap_or(0),
            s(g, "/service")
        );
    }
    format!("unknown {attrs}")
}

fn container_state(w: &mut Writer, name: &str, state: &Value) {
    if let Some(r) = state.get("running") {
        w.w(2, &format!("{name}:\tRunning\n"));
        w.w(3, &format!("Started:\t{}\n", time_or(r, "/startedAt", "")));
    } else if let Some(wt) = state.get("waiting") {
        w.w(2, &format!("{name}:\tWaiting\n"));
        if !s(wt, "/reason").is_empty() {
            w.w(3, &format!("Reason:\t{}\n", s(wt, "/reason")));
        }
    } else if let Some(t) = state.get("terminated") {
        w.w(2, &format!("{name}:\tTerminated\n"));
        if !s(t, "/reason").is_empty() {
            w.w(3, &format!("Reason:\t{}\n", s(t, "/reason")));
        }
        if !s(t, "/message").is_empty() {
            w.w(3, &format!("Message:\t{}\n", s(t, "/message")));
        }
        w.w(
            3,
            &format!("Exit Code:\t{}\n", int(t, "/exitCode").unwrap_or(0)),
        );
        if let Some(sig) = int(t, "/signal").filter(|s| *s > 0) {
            w.w(3, &format!("Signal:\t{sig}\n"));
        }
        w.w(3, &format!("Started:\t{}\n", time_or(t, "/startedAt", "")));
        w.w(
            3,
            &format!("Finished:\t{}\n", time_or(t, "/finishedAt", "")),
        );
    } else {
        w.w(2, &format!("{name}:\tWaiting\n"));
    }
}

/// `describeContainers`: `space` is the indentation of the section ("" in a pod, "  " in a
/// pod template).
fn describe_containers(
    w: &mut Writer,
    label: &str,
    containers: &[Value],
    statuses: &[Value],
    space: &str,
) {
    if containers.is_empty() {
        w.w(0, &format!("{space}{label}:\t<none>\n"));
        return;
    }
    w.w(0, &format!("{space}{label}:\n"));
    let name_indent = if space.is_empty() { "" } else { " " };
    for c in containers {
        let name = s(c, "/name");
        let status = statuses.iter().find(|st| s(st, "/name") == name);
        w.w(1, &format!("{name_indent}{name}:\n"));
        if let Some(st) = status {
            w.w(2, &format!("Container ID:\t{}\n", s(st, "/containerID")));
        }
        w.w(2, &format!("Image:\t{}\n", s(c, "/image")));
        if let Some(st) = status {
            w.w(2, &format!("Image ID:\t{}\n", s(st, "/imageID")));
        }
        let ports = arr(c, "/ports");
        let port_text = port_list(ports, "/containerPort");
        if port_text.contains(',') {
            w.w(2, &format!("Ports:\t{port_text}\n"));
        } else {
            w.w(2, &format!("Port:\t{}\n", or_none(&port_text)));
        }
        let host_text = port_list(ports, "/hostPort");
        if host_text.contains(',') {
            w.w(2, &format!("Host Ports:\t{host_text}\n"));
        } else {
            w.w(2, &format!("Host Port:\t{}\n", or_none(&host_text)));
        }
        if !s(c, "/restartPolicy").is_empty() {
            w.w(2, &format!("Restart Policy:\t{}\n", s(c, "/restartPolicy")));
        }
        for (field, title) in [("/command", "Command"), ("/args", "Args")] {
            let parts = arr(c, field);
            if !parts.is_empty() {
                w.w(2, &format!("{title}:\n"));
                for p in parts {
                    for line in plain(p).split('\n') {
                        w.w(3, &format!("{line}\n"));
                    }
                }
            }
        }
        if let Some(st) = status {
            container_state(w, "State", st.get("state").unwrap_or(&Value::Null));
            if st.pointer("/lastState/terminated").is_some() {
                container_state(w, "Last State", st.get("lastState").unwrap_or(&Value::Null));
            }
            let ready = if boolean(st, "/ready") == Some(true) {
                "True"
            } else {
                "False"
            };
            w.w(2, &format!("Ready:\t{ready}\n"));
            w.w(
                2,
                &format!(
                    "Restart Count:\t{}\n",
                    int(st, "/restartCount").unwrap_or(0)
                ),
            );
        }
        for (field, title) in [
            ("/resources/limits", "Limits"),
            ("/resources/requests", "Requests"),
        ] {
            let list = string_map(c, field);
            if !list.is_empty() {
                w.w(2, &format!("{title}:\n"));
                for (k, v) in list {
                    w.w(3, &format!("{k}:\t{v}\n"));
                }
            }
        }
        for (field, title) in [
            ("/livenessProbe", "Liveness"),
            ("/readinessProbe", "Readiness"),
            ("/startupProbe", "Startup"),
        ] {
            if let Some(p) = c.pointer(field) {
                w.w(2, &format!("{title}:\t{}\n", describe_probe(p)));
            }
        }
        let env_from = arr(c, "/envFrom");
        if !env_from.is_empty() {
            w.w(2, "Environment Variables from:\n");
            for e in env_from {
                let (from, r) = match (e.get("configMapRef"), e.get("secretRef")) {
                    (Some(r), _) => ("ConfigMap", r),
                    (_, Some(r)) => ("Secret", r),
                    _ => continue,
                };
                let optional = boolean(r, "/optional").unwrap_or(false);
                let prefix = s(e, "/prefix");
                if prefix.is_empty() {
                    w.w(
                        3,
                        &format!("{}\t{from}\tOptional: {optional}\n", s(r, "/name")),
                    );
                } else {
                    w.w(
                        3,
                        &format!(
                            "{}\t{from} with prefix '{prefix}'\tOptional: {optional}\n",
                            s(r, "/name")
                        ),
                    );
                }
            }
        }
        let env = arr(c, "/env");
        w.w(
            2,
            &format!(
                "Environment:{}\n",
                if env.is_empty() { "\t<none>" } else { "" }
            ),
        );
        for e in env {
            let name = s(e, "/name");
            match e.get("valueFrom") {
                None => {
                    for (i, line) in s(e, "/value").split('\n').enumerate() {
                        if i == 0 {
                            w.w(3, &format!("{name}:\t{line}\n"));
                        } else {
                            w.w(3, &format!("\t{line}\n"));
                        }
                    }
                }
                Some(from) => {
                    if let Some(f) = from.get("fieldRef") {
                        w.w(
                            3,
                            &format!(
                                "{name}:\t ({}:{})\n",
                                s(f, "/apiVersion"),
                                s(f, "/fieldPath")
                            ),
                        );
                    } else if let Some(r) = from.get("resourceFieldRef") {
                        w.w(3, &format!("{name}:\t ({})\n", s(r, "/resource")));
                    } else if let Some(k) = from.get("secretKeyRef") {
                        w.w(
                            3,
                            &format!(
                                "{name}:\t<set to the key '{}' in secret '{}'>\tOptional: {}\n",
                                s(k, "/key"),
                                s(k, "/name"),
                                boolean(k, "/optional").unwrap_or(false)
                            ),
                        );
                    } else if let Some(k) = from.get("configMapKeyRef") {
                        w.w(
                            3,
                            &format!(
                                "{name}:\t<set to the key '{}' of config map '{}'>\tOptional: {}\n",
                                s(k, "/key"),
                                s(k, "/name"),
                                boolean(k, "/optional").unwrap_or(false)
                            ),
                        );
                    }
                }
            }
        }
        let mut mounts: Vec<&Value> = arr(c, "/volumeMounts").iter().collect();
        mounts.sort_by_key(|m| s(m, "/mountPath").to_string());
        w.w(
            2,
            &format!(
                "Mounts:{}\n",
                if mounts.is_empty() { "\t<none>" } else { "" }
            ),
        );
        for m in mounts {
            let mut flags = vec![if boolean(m, "/readOnly") == Some(true) {
                "ro".to_string()
            } else {
                "rw".to_string()
            }];
            if !s(m, "/subPath").is_empty() {
                flags.push(format!("path={:?}", s(m, "/subPath")));
            }
            w.w(
                3,
                &format!(
                    "{} from {} ({})\n",
                    s(m, "/mountPath"),
                    s(m, "/name"),
                    flags.join(",")
                ),
            );
        }
    }
}

fn describe_volumes(w: &mut Writer, volumes: &[Value], space: &str) {
    if volumes.is_empty() {
        w.w(0, &format!("{space}Volumes:\t<none>\n"));
        return;
    }
    w.w(0, &format!("{space}Volumes:\n"));
    let name_indent = if space.is_empty() { "" } else { " " };
    for v in volumes {
        w.w(1, &format!("{name_indent}{}:\n", s(v, "/name")));
        if let Some(h) = v.get("hostPath") {
            w.w(2, &format!(
                "Type:\tHostPath (bare host directory volume)\n    Path:\t{}\n    HostPathType:\t{}\n",
                s(h, "/path"),
                s(h, "/type")
            ));
        } else if let Some(e) = v.get("emptyDir") {
            let limit = e
                .get("sizeLimit")
                .map(plain)
                .unwrap_or_else(|| "<unset>".into());
            w.w(2, &format!(
                "Type:\tEmptyDir (a temporary directory that shares a pod's lifetime)\n    Medium:\t{}\n    SizeLimit:\t{limit}\n",
                s(e, "/medium")
            ));
        } else if let Some(sec) = v.get("secret") {
            w.w(2, &format!(
                "Type:\tSecret (a volume populated by a Secret)\n    SecretName:\t{}\n    Optional:\t{}\n",
                s(sec, "/secretName"),
                boolean(sec, "/optional").unwrap_or(false)
            ));
        } else if let Some(cm) = v.get("configMap") {
            w.w(2, &format!(
                "Type:\tConfigMap (a volume populated by a ConfigMap)\n    Name:\t{}\n    Optional:\t{}\n",
                s(cm, "/name"),
                boolean(cm, "/optional").unwrap_or(false)
            ));
        } else if let Some(pvc) = v.get("persistentVolumeClaim") {
            w.w(2, &format!(
                "Type:\tPersistentVolumeClaim (a reference to a PersistentVolumeClaim in the same namespace)\n    ClaimName:\t{}\n    ReadOnly:\t{}\n",
                s(pvc, "/claimName"),
                boolean(pvc, "/readOnly").unwrap_or(false)
            ));
        } else if let Some(p) = v.get("projected") {
            w.w(
                2,
                "Type:\tProjected (a volume that contains injected data from multiple sources)\n",
            );
            for src in arr(p, "/sources") {
                if let Some(t) = src.get("serviceAccountToken") {
                    w.w(
                        0,
                        &format!(
                            "    TokenExpirationSeconds:\t{}\n",
                            int(t, "/expirationSeconds").unwrap_or(3607)
                        ),
                    );
                }
                if let Some(cm) = src.get("configMap") {
                    w.w(
                        0,
                        &format!(
                            "    ConfigMapName:\t{}\n    Optional:\t{}\n",
                            s(cm, "/name"),
                            boolean(cm, "/optional").unwrap_or(false)
                        ),
                    );
                }
                if src.get("downwardAPI").is_some() {
                    w.w(0, "    DownwardAPI:\ttrue\n");
                }
                if let Some(sec) = src.get("secret") {
                    w.w(
                        0,
                        &format!(
                            "    SecretName:\t{}\n    Optional:\t{}\n",
                            s(sec, "/name"),
                            boolean(sec, "/optional").unwrap_or(false)
                        ),
                    );
                }
            }
        } else if v.get("downwardAPI").is_some() {
            w.w(
                2,
                "Type:\tDownwardAPI (a volume populated by information about the pod)\n",
            );
        } else {
            w.w(1, "<unknown>\n");
        }
    }
}

/// `DescribePodTemplate`.
fn describe_pod_template(w: &mut Writer, template: Option<&Value>) {
    w.w(0, "Pod Template:\n");
    let Some(t) = template else {
        w.w(1, "<unset>");
        return;
    };
    labels_multiline(w, "", "  Labels", "\t", &string_map(t, "/metadata/labels"));
    let ann = string_map(t, "/metadata/annotations");
    if !ann.is_empty() {
        annotations(w, "  Annotations", &ann);
    }
    if !s(t, "/spec/serviceAccountName").is_empty() {
        w.w(
            1,
            &format!("Service Account:\t{}\n", s(t, "/spec/serviceAccountName")),
        );
    }
    let init = arr(t, "/spec/initContainers");
    if !init.is_empty() {
        describe_containers(w, "Init Containers", init, &[], "  ");
    }
    describe_containers(w, "Containers", arr(t, "/spec/containers"), &[], "  ");
    describe_volumes(w, arr(t, "/spec/volumes"), "  ");
    if !s(t, "/spec/priorityClassName").is_empty() {
        w.w(
            1,
            &format!(
                "Priority Class Name:\t{}\n",
                s(t, "/spec/priorityClassName")
            ),
        );
    }
    labels_multiline(
        w,
        "",
        "  Node-Selectors",
        "\t",
        &string_map(t, "/spec/nodeSelector"),
    );
    tolerations(w, "  ", "Tolerations", arr(t, "/spec/tolerations"));
}

// ---------------------------------------------------------------------------------------------
// Describers.

/// The pod's QoS class: the status's, or computed as the API server would.
fn qos_class(pod: &Value) -> String {
    let reported = s(pod, "/status/qosClass");
    if !reported.is_empty() {
        return reported.to_string();
    }
    let containers: Vec<&Value> = arr(pod, "/spec/containers")
        .iter()
        .chain(arr(pod, "/spec/initContainers"))
        .collect();
    let mut any = false;
    let mut guaranteed = true;
    for c in &containers {
        let req = string_map(c, "/resources/requests");
        let lim = string_map(c, "/resources/limits");
        any |= !req.is_empty() || !lim.is_empty();
        for r in ["cpu", "memory"] {
            match lim.get(r) {
                Some(l) => {
                    if req.get(r).is_some_and(|q| q != l) {
                        guaranteed = false;
                    }
                }
                None => guaranteed = false,
            }
        }
    }
    if !any {
        "BestEffort".into()
    } else if guaranteed {
        "Guaranteed".into()
    } else {
        "Burstable".into()
    }
}

fn describe_pod(w: &mut Writer, pod: &Value) {
    w.w(0, &format!("Name:\t{}\n", meta_str(pod, "name")));
    w.w(0, &format!("Namespace:\t{}\n", meta_str(pod, "namespace")));
    if let Some(p) = int(pod, "/spec/priority") {
        w.w(0, &format!("Priority:\t{p}\n"));
    }
    for (field, title) in [
        ("/spec/priorityClassName", "Priority Class Name"),
        ("/spec/runtimeClassName", "Runtime Class Name"),
        ("/spec/serviceAccountName", "Service Account"),
    ] {
        if !s(pod, field).is_empty() {
            w.w(0, &format!("{title}:\t{}\n", s(pod, field)));
        }
    }
    let node = s(pod, "/spec/nodeName");
    if node.is_empty() {
        w.w(0, "Node:\t<none>\n");
    } else {
        w.w(0, &format!("Node:\t{node}/{}\n", s(pod, "/status/hostIP")));
    }
    if !s(pod, "/status/startTime").is_empty() {
        w.w(
            0,
            &format!(
                "Start Time:\t{}\n",
                describe_time(s(pod, "/status/startTime"))
            ),
        );
    }
    labels(w, "Labels", &string_map(pod, "/metadata/labels"));
    annotations(w, "Annotations", &string_map(pod, "/metadata/annotations"));
    let phase = s(pod, "/status/phase");
    let deleting = s(pod, "/metadata/deletionTimestamp");
    if !deleting.is_empty() && phase != "Failed" && phase != "Succeeded" {
        w.w(
            0,
            &format!("Status:\tTerminating (lasts {})\n", age(Some(deleting))),
        );
        w.w(
            0,
            &format!(
                "Termination Grace Period:\t{}s\n",
                int(pod, "/metadata/deletionGracePeriodSeconds").unwrap_or(0)
            ),
        );
    } else {
        w.w(0, &format!("Status:\t{phase}\n"));
    }
    if !s(pod, "/status/reason").is_empty() {
        w.w(0, &format!("Reason:\t{}\n", s(pod, "/status/reason")));
    }
    if !s(pod, "/status/message").is_empty() {
        w.w(0, &format!("Message:\t{}\n", s(pod, "/status/message")));
    }
    w.w(0, &format!("IP:\t{}\n", s(pod, "/status/podIP")));
    let ips = arr(pod, "/status/podIPs");
    if ips.is_empty() {
        w.w(0, "IPs:\t<none>\n");
    } else {
        w.w(0, "IPs:\n");
        for ip in ips {
            w.w(1, &format!("IP:\t{}\n", s(ip, "/ip")));
        }
    }
    if let Some(c) = controlled_by(pod) {
        w.w(0, &format!("Controlled By:\t{c}\n"));
    }
    if !s(pod, "/status/nominatedNodeName").is_empty() {
        w.w(
            0,
            &format!(
                "NominatedNodeName:\t{}\n",
                s(pod, "/status/nominatedNodeName")
            ),
        );
    }
    let init = arr(pod, "/spec/initContainers");
    if !init.is_empty() {
        describe_containers(
            w,
            "Init Containers",
            init,
            arr(pod, "/status/initContainerStatuses"),
            "",
        );
    }
    describe_containers(
        w,
        "Containers",
        arr(pod, "/spec/containers"),
        arr(pod, "/status/containerStatuses"),
        "",
    );
    let conditions = arr(pod, "/status/conditions");
    if !conditions.is_empty() {
        w.w(0, "Conditions:\n  Type\tStatus\n");
        for c in conditions {
            w.w(1, &format!("{} \t{} \n", s(c, "/type"), s(c, "/status")));
        }
    }
    describe_volumes(w, arr(pod, "/spec/volumes"), "");
    w.w(0, &format!("QoS Class:\t{}\n", qos_class(pod)));
    labels(w, "Node-Selectors", &string_map(pod, "/spec/nodeSelector"));
    tolerations(w, "", "Tolerations", arr(pod, "/spec/tolerations"));
}

/// The template without the label the controller adds, to compare a ReplicaSet's template with
/// its Deployment's.
fn template_without_hash(t: Option<&Value>) -> Value {
    let mut t = t.cloned().unwrap_or(Value::Null);
    if let Some(l) = t
        .pointer_mut("/metadata/labels")
        .and_then(Value::as_object_mut)
    {
        l.remove("pod-template-hash");
    }
    t
}

fn rs_summary(rs: &[&Value]) -> String {
    let list: Vec<String> = rs
        .iter()
        .map(|r| {
            format!(
                "{} ({}/{} replicas created)",
                meta_str(r, "name"),
                int(r, "/status/replicas").unwrap_or(0),
                int(r, "/spec/replicas").unwrap_or(0)
            )
        })
        .collect();
    if list.is_empty() {
        "<none>".into()
    } else {
        list.join(", ")
    }
}

fn describe_deployment(w: &mut Writer, d: &Value, replica_sets: &[Value]) {
    w.w(0, &format!("Name:\t{}\n", meta_str(d, "name")));
    w.w(0, &format!("Namespace:\t{}\n", meta_str(d, "namespace")));
    w.w(
        0,
        &format!(
            "CreationTimestamp:\t{}\n",
            time_or(d, "/metadata/creationTimestamp", "")
        ),
    );
    labels(w, "Labels", &string_map(d, "/metadata/labels"));
    annotations(w, "Annotations", &string_map(d, "/metadata/annotations"));
    w.w(0, &format!("Selector:\t{}\n", selector_string(d)));
    w.w(
        0,
        &format!(
            "Replicas:\t{} desired | {} updated | {} total | {} available | {} unavailable\n",
            int(d, "/spec/replicas").unwrap_or(1),
            int(d, "/status/updatedReplicas").unwrap_or(0),
            int(d, "/status/replicas").unwrap_or(0),
            int(d, "/status/availableReplicas").unwrap_or(0),
            int(d, "/status/unavailableReplicas").unwrap_or(0)
        ),
    );
    w.w(
        0,
        &format!("StrategyType:\t{}\n", s(d, "/spec/strategy/type")),
    );
    w.w(
        0,
        &format!(
            "MinReadySeconds:\t{}\n",
            int(d, "/spec/minReadySeconds").unwrap_or(0)
        ),
    );
    if let Some(ru) = d.pointer("/spec/strategy/rollingUpdate") {
        let f = |k: &str| ru.get(k).map(plain).unwrap_or_else(|| "25%".into());
        w.w(
            0,
            &format!(
                "RollingUpdateStrategy:\t{} max unavailable, {} max surge\n",
                f("maxUnavailable"),
                f("maxSurge")
            ),
        );
    }
    describe_pod_template(w, d.pointer("/spec/template"));
    conditions_with_reason(w, d);
    let template = template_without_hash(d.pointer("/spec/template"));
    let revision = s(
        d,
        "/metadata/annotations/deployment.kubernetes.io~1revision",
    );
    let new_rs = replica_sets
        .iter()
        .find(|r| template_without_hash(r.pointer("/spec/template")) == template)
        .or_else(|| {
            replica_sets.iter().find(|r| {
                !revision.is_empty()
                    && s(
                        r,
                        "/metadata/annotations/deployment.kubernetes.io~1revision",
                    ) == revision
            })
        });
    let new_name = new_rs.map(|r| meta_str(r, "name"));
    let old: Vec<&Value> = replica_sets
        .iter()
        .filter(|r| {
            Some(meta_str(r, "name")) != new_name && int(r, "/spec/replicas").unwrap_or(0) != 0
        })
        .collect();
    w.w(0, &format!("OldReplicaSets:\t{}\n", rs_summary(&old)));
    w.w(
        0,
        &format!(
            "NewReplicaSet:\t{}\n",
            rs_summary(&new_rs.into_iter().collect::<Vec<_>>())
        ),
    );
}

fn describe_replicaset(w: &mut Writer, rs: &Value, pods: &[Value]) {
    w.w(0, &format!("Name:\t{}\n", meta_str(rs, "name")));
    w.w(0, &format!("Namespace:\t{}\n", meta_str(rs, "namespace")));
    w.w(
        0,
        &format!(
            "Selector:\t{}\n",
            rs.pointer("/spec/selector")
                .map(format_label_selector)
                .unwrap_or_else(|| "<none>".into())
        ),
    );
    labels(w, "Labels", &string_map(rs, "/metadata/labels"));
    annotations(w, "Annotations", &string_map(rs, "/metadata/annotations"));
    if let Some(c) = controlled_by(rs) {
        w.w(0, &format!("Controlled By:\t{c}\n"));
    }
    w.w(
        0,
        &format!(
            "Replicas:\t{} current / {} desired\n",
            int(rs, "/status/replicas").unwrap_or(0),
            int(rs, "/spec/replicas").unwrap_or(1)
        ),
    );
    pods_status(w, pods);
    describe_pod_template(w, rs.pointer("/spec/template"));
    conditions_with_reason(w, rs);
}

fn pods_status(w: &mut Writer, pods: &[Value]) {
    let count = |phase: &str| {
        pods.iter()
            .filter(|p| s(p, "/status/phase") == phase)
            .count()
    };
    w.w(
        0,
        &format!(
            "Pods Status:\t{} Running / {} Waiting / {} Succeeded / {} Failed\n",
            count("Running"),
            count("Pending"),
            count("Succeeded"),
            count("Failed")
        ),
    );
}

fn describe_statefulset(w: &mut Writer, sts: &Value, pods: &[Value]) {
    w.w(0, &format!("Name:\t{}\n", meta_str(sts, "name")));
    w.w(0, &format!("Namespace:\t{}\n", meta_str(sts, "namespace")));
    w.w(
        0,
        &format!(
            "CreationTimestamp:\t{}\n",
            time_or(sts, "/metadata/creationTimestamp", "")
        ),
    );
    w.w(0, &format!("Selector:\t{}\n", selector_string(sts)));
    labels(w, "Labels", &string_map(sts, "/metadata/labels"));
    annotations(w, "Annotations", &string_map(sts, "/metadata/annotations"));
    w.w(
        0,
        &format!("Service Name:\t{}\n", s(sts, "/spec/serviceName")),
    );
    w.w(
        0,
        &format!(
            "Pod Management Policy:\t{}\n",
            s(sts, "/spec/podManagementPolicy")
        ),
    );
    w.w(
        0,
        &format!(
            "Replicas:\t{} desired | {} total\n",
            int(sts, "/spec/replicas").unwrap_or(1),
            int(sts, "/status/replicas").unwrap_or(0)
        ),
    );
    w.w(
        0,
        &format!(
            "Update Strategy:\t{}\n",
            s(sts, "/spec/updateStrategy/type")
        ),
    );
    if let Some(ru) = sts.pointer("/spec/updateStrategy/rollingUpdate")
        && let Some(partition) = int(ru, "/partition")
    {
        w.w(1, &format!("Partition:\t{partition}\n"));
        if let Some(max) = ru.get("maxUnavailable") {
            w.w(1, &format!("MaxUnavailable:\t{}\n", plain(max)));
        }
    }
    if let Some(policy) = sts.pointer("/spec/persistentVolumeClaimRetentionPolicy") {
        w.w(0, "Persistent Volume Claim Retention Policy:\n");
        w.w(1, &format!("WhenDeleted:\t{}\n", s(policy, "/whenDeleted")));
        w.w(1, &format!("WhenScaled:\t{}\n", s(policy, "/whenScaled")));
    }
    pods_status(w, pods);
    describe_pod_template(w, sts.pointer("/spec/template"));
    let claims = arr(sts, "/spec/volumeClaimTemplates");
    if claims.is_empty() {
        w.w(0, "Volume Claims:\t<none>\n");
        return;
    }
    w.w(0, "Volume Claims:\n");
    for pvc in claims {
        w.w(1, &format!("Name:\t{}\n", meta_str(pvc, "name")));
        let class = match s(pvc, "/spec/storageClassName") {
            "" => s(
                pvc,
                "/metadata/annotations/volume.beta.kubernetes.io~1storage-class",
            ),
            c => c,
        };
        w.w(1, &format!("StorageClass:\t{class}\n"));
        labels_multiline(
            w,
            "  ",
            "Labels",
            "\t",
            &string_map(pvc, "/metadata/labels"),
        );
        labels_multiline(
            w,
            "  ",
            "Annotations",
            "\t",
            &string_map(pvc, "/metadata/annotations"),
        );
        let capacity = match s(pvc, "/spec/resources/requests/storage") {
            "" => "<default>",
            c => c,
        };
        w.w(1, &format!("Capacity:\t{capacity}\n"));
        let modes: Vec<String> = arr(pvc, "/spec/accessModes").iter().map(plain).collect();
        w.w(1, &format!("Access Modes:\t[{}]\n", modes.join(" ")));
    }
}

fn describe_daemonset(w: &mut Writer, ds: &Value, pods: &[Value]) {
    w.w(0, &format!("Name:\t{}\n", meta_str(ds, "name")));
    w.w(0, &format!("Namespace:\t{}\n", meta_str(ds, "namespace")));
    w.w(0, &format!("Selector:\t{}\n", selector_string(ds)));
    let node_selector = pairs_or_none(&string_map(ds, "/spec/template/spec/nodeSelector"));
    w.w(0, &format!("Node-Selector:\t{node_selector}\n"));
    labels(w, "Labels", &string_map(ds, "/metadata/labels"));
    annotations(w, "Annotations", &string_map(ds, "/metadata/annotations"));
    let n = |f: &str| int(ds, &format!("/status/{f}")).unwrap_or(0);
    w.w(
        0,
        &format!(
            "Desired Number of Nodes Scheduled: {}\n",
            n("desiredNumberScheduled")
        ),
    );
    w.w(
        0,
        &format!(
            "Current Number of Nodes Scheduled: {}\n",
            n("currentNumberScheduled")
        ),
    );
    w.w(
        0,
        &format!(
            "Number of Nodes Scheduled with Up-to-date Pods: {}\n",
            n("updatedNumberScheduled")
        ),
    );
    w.w(
        0,
        &format!(
            "Number of Nodes Scheduled with Available Pods: {}\n",
            n("numberAvailable")
        ),
    );
    w.w(
        0,
        &format!(
            "Number of Nodes Misscheduled: {}\n",
            n("numberMisscheduled")
        ),
    );
    pods_status(w, pods);
    describe_pod_template(w, ds.pointer("/spec/template"));
}

/// `formatEndpointSlices` for one service port name: ready `ip:port`s, three at most.
fn format_endpoints(slices: &[Value], port_name: &str) -> String {
    if slices.is_empty() {
        return "<none>".into();
    }
    const MAX: usize = 3;
    let mut list: Vec<String> = Vec::new();
    let mut more = false;
    let mut count = 0;
    for slice in slices {
        let ports = arr(slice, "/ports");
        let ready = |e: &Value| boolean(e, "/conditions/ready") != Some(false);
        if ports.is_empty() {
            for e in arr(slice, "/endpoints") {
                if list.len() == MAX {
                    more = true;
                }
                if !more
                    && ready(e)
                    && let Some(a) = arr(e, "/addresses").first()
                {
                    list.push(plain(a));
                }
                count += 1;
            }
            continue;
        }
        for p in ports.iter().filter(|p| s(p, "/name") == port_name) {
            for e in arr(slice, "/endpoints") {
                if list.len() == MAX {
                    more = true;
                }
                if !more
                    && ready(e)
                    && let Some(a) = arr(e, "/addresses").first()
                {
                    let addr = plain(a);
                    let port = int(p, "/port").unwrap_or(0);
                    list.push(if addr.contains(':') {
                        format!("[{addr}]:{port}")
                    } else {
                        format!("{addr}:{port}")
                    });
                }
                count += 1;
            }
        }
    }
    let text = list.join(",");
    if more {
        format!("{text} + {} more...", count - MAX)
    } else {
        text
    }
}

fn describe_service(w: &mut Writer, svc: &Value, slices: &[Value]) {
    name_namespace_labels_annotations(w, svc);
    let sel_text = pairs_or_none(&string_map(svc, "/spec/selector"));
    w.w(0, &format!("Selector:\t{sel_text}\n"));
    w.w(0, &format!("Type:\t{}\n", s(svc, "/spec/type")));
    if !s(svc, "/spec/ipFamilyPolicy").is_empty() {
        w.w(
            0,
            &format!("IP Family Policy:\t{}\n", s(svc, "/spec/ipFamilyPolicy")),
        );
    }
    let families: Vec<String> = arr(svc, "/spec/ipFamilies").iter().map(plain).collect();
    w.w(
        0,
        &format!("IP Families:\t{}\n", or_none(&families.join(","))),
    );
    w.w(0, &format!("IP:\t{}\n", s(svc, "/spec/clusterIP")));
    let ips: Vec<String> = arr(svc, "/spec/clusterIPs").iter().map(plain).collect();
    w.w(0, &format!("IPs:\t{}\n", or_none(&ips.join(","))));
    let external: Vec<String> = arr(svc, "/spec/externalIPs").iter().map(plain).collect();
    if !external.is_empty() {
        w.w(0, &format!("External IPs:\t{}\n", external.join(",")));
    }
    if !s(svc, "/spec/loadBalancerIP").is_empty() {
        w.w(0, &format!("IP:\t{}\n", s(svc, "/spec/loadBalancerIP")));
    }
    if !s(svc, "/spec/externalName").is_empty() {
        w.w(
            0,
            &format!("External Name:\t{}\n", s(svc, "/spec/externalName")),
        );
    }
    let ingress: Vec<String> = arr(svc, "/status/loadBalancer/ingress")
        .iter()
        .map(|i| {
            if s(i, "/ip").is_empty() {
                s(i, "/hostname").to_string()
            } else {
                s(i, "/ip").to_string()
            }
        })
        .collect();
    if !ingress.is_empty() {
        w.w(
            0,
            &format!("LoadBalancer Ingress:\t{}\n", ingress.join(", ")),
        );
    }
    for p in arr(svc, "/spec/ports") {
        let name = match s(p, "/name") {
            "" => "<unset>",
            n => n,
        };
        let proto = match s(p, "/protocol") {
            "" => "TCP",
            other => other,
        };
        w.w(
            0,
            &format!("Port:\t{name}\t{}/{proto}\n", int(p, "/port").unwrap_or(0)),
        );
        let target = p
            .get("targetPort")
            .map(plain)
            .unwrap_or_else(|| int(p, "/port").unwrap_or(0).to_string());
        w.w(0, &format!("TargetPort:\t{target}/{proto}\n"));
        if let Some(np) = int(p, "/nodePort").filter(|n| *n != 0) {
            w.w(0, &format!("NodePort:\t{name}\t{np}/{proto}\n"));
        }
        w.w(
            0,
            &format!("Endpoints:\t{}\n", format_endpoints(slices, s(p, "/name"))),
        );
    }
    w.w(
        0,
        &format!("Session Affinity:\t{}\n", s(svc, "/spec/sessionAffinity")),
    );
    if !s(svc, "/spec/externalTrafficPolicy").is_empty() {
        w.w(
            0,
            &format!(
                "External Traffic Policy:\t{}\n",
                s(svc, "/spec/externalTrafficPolicy")
            ),
        );
    }
    if !s(svc, "/spec/internalTrafficPolicy").is_empty() {
        w.w(
            0,
            &format!(
                "Internal Traffic Policy:\t{}\n",
                s(svc, "/spec/internalTrafficPolicy")
            ),
        );
    }
}

fn quantity(v: &Value, pointer: &str) -> Quantity {
    v.pointer(pointer)
        .map(plain)
        .and_then(|t| Quantity::parse(&t).ok())
        .unwrap_or_else(|| Quantity::from_milli(0))
}

/// Requests and limits of a pod as the scheduler counts them: the sum over containers, or the
/// largest init container when that is bigger.
fn pod_resources(pod: &Value, kind: &str, resource: &str) -> Quantity {
    let field = format!("/resources/{kind}/{resource}");
    let mut sum = Quantity::from_milli(0);
    for c in arr(pod, "/spec/containers") {
        sum = sum.checked_add(&quantity(c, &field)).unwrap_or(sum);
    }
    for c in arr(pod, "/spec/initContainers") {
        let q = quantity(c, &field);
        if q.to_milli() > sum.to_milli() {
            sum = q;
        }
    }
    sum
}

fn percent(part: &Quantity, whole: &Quantity, milli: bool) -> i64 {
    let (p, w) = if milli {
        (part.to_milli(), whole.to_milli())
    } else {
        (part.value(), whole.value())
    };
    match (p, w) {
        (Some(p), Some(w)) if w != 0 => i64::try_from(p * 100 / w).unwrap_or(0),
        _ => 0,
    }
}

fn describe_node(w: &mut Writer, node: &Value, extra: &NodeExtras) {
    w.w(0, &format!("Name:\t{}\n", meta_str(node, "name")));
    let labels_map = string_map(node, "/metadata/labels");
    let mut roles: Vec<String> = labels_map
        .iter()
        .filter_map(|(k, v)| {
            k.strip_prefix("node-role.kubernetes.io/")
                .map(str::to_string)
                .or_else(|| (k == "kubernetes.io/role").then(|| v.clone()))
        })
        .filter(|r| !r.is_empty())
        .collect();
    roles.sort();
    roles.dedup();
    w.w(0, &format!("Roles:\t{}\n", or_none(&roles.join(","))));
    labels(w, "Labels", &labels_map);
    annotations(w, "Annotations", &string_map(node, "/metadata/annotations"));
    w.w(
        0,
        &format!(
            "CreationTimestamp:\t{}\n",
            time_or(node, "/metadata/creationTimestamp", "")
        ),
    );
    taints(w, arr(node, "/spec/taints"));
    w.w(
        0,
        &format!(
            "Unschedulable:\t{}\n",
            boolean(node, "/spec/unschedulable").unwrap_or(false)
        ),
    );
    if let Some(Err(e)) = &extra.lease {
        w.w(0, &format!("Lease:\tFailed to get lease: {e}\n"));
    }
    if let Some(Ok(lease)) = &extra.lease {
        w.w(0, "Lease:\n");
        w.w(
            1,
            &format!(
                "HolderIdentity:\t{}\n",
                match s(lease, "/spec/holderIdentity") {
                    "" => "<unset>",
                    h => h,
                }
            ),
        );
        w.w(
            1,
            &format!(
                "AcquireTime:\t{}\n",
                time_or(lease, "/spec/acquireTime", "<unset>")
            ),
        );
        w.w(
            1,
            &format!(
                "RenewTime:\t{}\n",
                time_or(lease, "/spec/renewTime", "<unset>")
            ),
        );
    }
    let conditions = arr(node, "/status/conditions");
    if !conditions.is_empty() {
        w.w(
            0,
            "Conditions:\n  Type\tStatus\tLastHeartbeatTime\tLastTransitionTime\tReason\tMessage\n",
        );
        w.w(
            1,
            "----\t------\t-----------------\t------------------\t------\t-------\n",
        );
        for c in conditions {
            w.w(
                1,
                &format!(
                    "{} \t{} \t{} \t{} \t{} \t{}\n",
                    s(c, "/type"),
                    s(c, "/status"),
                    time_or(c, "/lastHeartbeatTime", ""),
                    time_or(c, "/lastTransitionTime", ""),
                    s(c, "/reason"),
                    s(c, "/message")
                ),
            );
        }
    }
    w.w(0, "Addresses:\n");
    for a in arr(node, "/status/addresses") {
        w.w(1, &format!("{}:\t{}\n", s(a, "/type"), s(a, "/address")));
    }
    for (field, title) in [
        ("/status/capacity", "Capacity"),
        ("/status/allocatable", "Allocatable"),
    ] {
        let list = string_map(node, field);
        if !list.is_empty() {
            w.w(0, &format!("{title}:\n"));
            for (k, v) in list {
                w.w(0, &format!("  {k}:\t{v}\n"));
            }
        }
    }
    w.w(0, "System Info:\n");
    for (field, title) in [
        ("machineID", "Machine ID"),
        ("systemUUID", "System UUID"),
        ("bootID", "Boot ID"),
        ("kernelVersion", "Kernel Version"),
        ("osImage", "OS Image"),
        ("operatingSystem", "Operating System"),
        ("architecture", "Architecture"),
        ("containerRuntimeVersion", "Container Runtime Version"),
        ("kubeletVersion", "Kubelet Version"),
    ] {
        w.w(
            0,
            &format!(
                "  {title}:\t{}\n",
                s(node, &format!("/status/nodeInfo/{field}"))
            ),
        );
    }
    // Deprecated and no longer reported by kubelets; kubectl shows it only when set.
    let proxy = s(node, "/status/nodeInfo/kubeProxyVersion");
    if !proxy.is_empty() {
        w.w(0, &format!("  Kube-Proxy Version:\t{proxy}\n"));
    }
    if !s(node, "/spec/podCIDR").is_empty() {
        w.w(0, &format!("PodCIDR:\t{}\n", s(node, "/spec/podCIDR")));
    }
    let cidrs: Vec<String> = arr(node, "/spec/podCIDRs").iter().map(plain).collect();
    if !cidrs.is_empty() {
        w.w(0, &format!("PodCIDRs:\t{}\n", cidrs.join(",")));
    }
    if !s(node, "/spec/providerID").is_empty() {
        w.w(
            0,
            &format!("ProviderID:\t{}\n", s(node, "/spec/providerID")),
        );
    }
    let Some(pods) = &extra.pods else {
        w.w(0, "Pods:\tnot authorized\n");
        return;
    };
    let allocatable = if node
        .pointer("/status/allocatable")
        .is_some_and(|a| a.as_object().is_some_and(|m| !m.is_empty()))
    {
        "/status/allocatable"
    } else {
        "/status/capacity"
    };
    let alloc_cpu = quantity(node, &format!("{allocatable}/cpu"));
    let alloc_mem = quantity(node, &format!("{allocatable}/memory"));
    let alloc_eph = quantity(node, &format!("{allocatable}/ephemeral-storage"));
    w.w(
        0,
        &format!("Non-terminated Pods:\t({} in total)\n", pods.len()),
    );
    w.w(
        1,
        "Namespace\tName\t\tCPU Requests\tCPU Limits\tMemory Requests\tMemory Limits\tAge\n",
    );
    w.w(
        1,
        "---------\t----\t\t------------\t----------\t---------------\t-------------\t---\n",
    );
    let zero = Quantity::from_milli(0);
    let mut totals = [zero, zero, zero, zero, zero, zero];
    for p in pods {
        let vals = [
            pod_resources(p, "requests", "cpu"),
            pod_resources(p, "limits", "cpu"),
            pod_resources(p, "requests", "memory"),
            pod_resources(p, "limits", "memory"),
            pod_resources(p, "requests", "ephemeral-storage"),
            pod_resources(p, "limits", "ephemeral-storage"),
        ];
        for (t, v) in totals.iter_mut().zip(vals.iter()) {
            *t = t.checked_add(v).unwrap_or(*t);
        }
        w.w(
            1,
            &format!(
                "{}\t{}\t\t{} ({}%)\t{} ({}%)\t{} ({}%)\t{} ({}%)\t{}\n",
                meta_str(p, "namespace"),
                meta_str(p, "name"),
                vals[0].canonical(),
                percent(&vals[0], &alloc_cpu, true),
                vals[1].canonical(),
                percent(&vals[1], &alloc_cpu, true),
                vals[2].canonical(),
                percent(&vals[2], &alloc_mem, false),
                vals[3].canonical(),
                percent(&vals[3], &alloc_mem, false),
                age(p
                    .pointer("/metadata/creationTimestamp")
                    .and_then(Value::as_str))
            ),
        );
    }
    w.w(
        0,
        "Allocated resources:\n  (Total limits may be over 100 percent, i.e., overcommitted.)\n",
    );
    w.w(1, "Resource\tRequests\tLimits\n");
    w.w(1, "--------\t--------\t------\n");
    let rows = [
        ("cpu", &totals[0], &totals[1], &alloc_cpu, true),
        ("memory", &totals[2], &totals[3], &alloc_mem, false),
        (
            "ephemeral-storage",
            &totals[4],
            &totals[5],
            &alloc_eph,
            false,
        ),
    ];
    for (name, req, lim, alloc, milli) in rows {
        w.w(
            1,
            &format!(
                "{name}\t{} ({}%)\t{} ({}%)\n",
                req.canonical(),
                percent(req, alloc, milli),
                lim.canonical(),
                percent(lim, alloc, milli)
            ),
        );
    }
}

fn describe_namespace(
    w: &mut Writer,
    ns: &Value,
    quotas: Option<&[Value]>,
    limits: Option<&[Value]>,
) {
    w.w(0, &format!("Name:\t{}\n", meta_str(ns, "name")));
    labels(w, "Labels", &string_map(ns, "/metadata/labels"));
    annotations(w, "Annotations", &string_map(ns, "/metadata/annotations"));
    w.w(0, &format!("Status:\t{}\n", s(ns, "/status/phase")));
    let conditions = arr(ns, "/status/conditions");
    if !conditions.is_empty() {
        w.w(0, "Conditions:\n");
        w.w(1, "Type\tStatus\tLastTransitionTime\tReason\tMessage\n");
        w.w(1, "----\t------\t------------------\t------\t-------\n");
        for c in conditions {
            w.w(
                1,
                &format!(
                    "{}\t{}\t{}\t{}\t{}\n",
                    s(c, "/type"),
                    s(c, "/status"),
                    time_or(c, "/lastTransitionTime", ""),
                    s(c, "/reason"),
                    s(c, "/message")
                ),
            );
        }
    }
    if let Some(quotas) = quotas {
        w.w(0, "\n");
        if quotas.is_empty() {
            w.w(0, "No resource quota.\n");
        } else {
            w.w(0, "Resource Quotas\n");
            for q in quotas {
                w.w(1, &format!("Name:\t{}\n", meta_str(q, "name")));
                w.w(1, "Resource\tUsed\tHard\n");
                w.w(1, "--------\t---\t---\n");
                let used = string_map(q, "/status/used");
                for (k, hard) in string_map(q, "/status/hard") {
                    w.w(
                        1,
                        &format!(
                            "{k}\t{}\t{hard}\n",
                            used.get(&k).map(String::as_str).unwrap_or("0")
                        ),
                    );
                }
            }
        }
    }
    if let Some(limits) = limits {
        w.w(0, "\n");
        if limits.is_empty() {
            w.w(0, "No LimitRange resource.\n");
        } else {
            w.w(0, "Resource Limits\n Type\tResource\tMin\tMax\tDefault Request\tDefault Limit\tMax Limit/Request Ratio\n");
            w.w(0, " ----\t--------\t---\t---\t---------------\t-------------\t-----------------------\n");
            for lr in limits {
                for item in arr(lr, "/spec/limits") {
                    let mut resources: Vec<String> = Vec::new();
                    for f in [
                        "min",
                        "max",
                        "default",
                        "defaultRequest",
                        "maxLimitRequestRatio",
                    ] {
                        for k in string_map(item, &format!("/{f}")).into_keys() {
                            if !resources.contains(&k) {
                                resources.push(k);
                            }
                        }
                    }
                    resources.sort();
                    for r in resources {
                        let get = |f: &str| {
                            item.pointer(&format!("/{f}/{r}"))
                                .map(plain)
                                .unwrap_or_else(|| "-".into())
                        };
                        w.w(
                            0,
                            &format!(
                                " {}\t{r}\t{}\t{}\t{}\t{}\t{}\n",
                                s(item, "/type"),
                                get("min"),
                                get("max"),
                                get("defaultRequest"),
                                get("default"),
                                get("maxLimitRequestRatio")
                            ),
                        );
                    }
                }
            }
        }
    }
}

fn describe_configmap(w: &mut Writer, cm: &Value) {
    name_namespace_labels_annotations(w, cm);
    w.w(0, "\nData\n====\n");
    for (k, v) in string_map(cm, "/data") {
        w.w(0, &format!("{k}:\n----\n"));
        w.w(0, &format!("{v}\n"));
        w.w(0, "\n");
    }
    w.w(0, "\nBinaryData\n====\n");
    for (k, v) in string_map(cm, "/binaryData") {
        w.w(0, &format!("{k}: {} bytes\n", decoded_len(&v)));
    }
    w.w(0, "\n");
}

/// The length of base64 data without decoding it into memory we do not need.
fn decoded_len(b64: &str) -> usize {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .map(|d| d.len())
        .unwrap_or_else(|_| b64.len() * 3 / 4)
}

fn describe_secret(w: &mut Writer, secret: &Value) {
    name_namespace_labels_annotations(w, secret);
    w.w(0, &format!("\nType:\t{}\n", s(secret, "/type")));
    w.w(0, "\nData\n====\n");
    // Values stay hidden: only their sizes are shown.
    for (k, v) in string_map(secret, "/data") {
        w.w(0, &format!("{k}:\t{} bytes\n", decoded_len(&v)));
    }
}

fn describe_job(w: &mut Writer, job: &Value) {
    w.w(0, &format!("Name:\t{}\n", meta_str(job, "name")));
    w.w(0, &format!("Namespace:\t{}\n", meta_str(job, "namespace")));
    w.w(0, &format!("Selector:\t{}\n", selector_string(job)));
    labels(w, "Labels", &string_map(job, "/metadata/labels"));
    annotations(w, "Annotations", &string_map(job, "/metadata/annotations"));
    if let Some(c) = controlled_by(job) {
        w.w(0, &format!("Controlled By:\t{c}\n"));
    }
    if let Some(p) = int(job, "/spec/parallelism") {
        w.w(0, &format!("Parallelism:\t{p}\n"));
    }
    match int(job, "/spec/completions") {
        Some(c) => w.w(0, &format!("Completions:\t{c}\n")),
        None => w.w(0, "Completions:\t<unset>\n"),
    }
    if !s(job, "/spec/completionMode").is_empty() {
        w.w(
            0,
            &format!("Completion Mode:\t{}\n", s(job, "/spec/completionMode")),
        );
    }
    if let Some(b) = boolean(job, "/spec/suspend") {
        w.w(0, &format!("Suspend:\t{b}\n"));
    }
    if let Some(b) = int(job, "/spec/backoffLimit") {
        w.w(0, &format!("Backoff Limit:\t{b}\n"));
    }
    if let Some(t) = int(job, "/spec/ttlSecondsAfterFinished") {
        w.w(0, &format!("TTL Seconds After Finished:\t{t}\n"));
    }
    let start = s(job, "/status/startTime");
    let done = s(job, "/status/completionTime");
    if !start.is_empty() {
        w.w(0, &format!("Start Time:\t{}\n", describe_time(start)));
    }
    if !done.is_empty() {
        w.w(0, &format!("Completed At:\t{}\n", describe_time(done)));
    }
    if let (Ok(a), Ok(b)) = (
        start.parse::<jiff::Timestamp>(),
        done.parse::<jiff::Timestamp>(),
    ) {
        w.w(
            0,
            &format!(
                "Duration:\t{}\n",
                human_duration(b.as_second() - a.as_second())
            ),
        );
    }
    if let Some(d) = int(job, "/spec/activeDeadlineSeconds") {
        w.w(0, &format!("Active Deadline Seconds:\t{d}s\n"));
    }
    let active = int(job, "/status/active").unwrap_or(0);
    let succeeded = int(job, "/status/succeeded").unwrap_or(0);
    let failed = int(job, "/status/failed").unwrap_or(0);
    match int(job, "/status/ready") {
        Some(ready) => w.w(0, &format!(
            "Pods Statuses:\t{active} Active ({ready} Ready) / {succeeded} Succeeded / {failed} Failed\n"
        )),
        None => w.w(0, &format!("Pods Statuses:\t{active} Active / {succeeded} Succeeded / {failed} Failed\n")),
    }
    if s(job, "/spec/completionMode") == "Indexed" {
        w.w(
            0,
            &format!(
                "Completed Indexes:\t{}\n",
                or_none(s(job, "/status/completedIndexes"))
            ),
        );
    }
    describe_pod_template(w, job.pointer("/spec/template"));
}

/// kubectl's `smartLabelFor`: `creationTimestamp` → `Creation Timestamp`, `apiVersion` →
/// `API Version`.
fn smart_label(field: &str) -> String {
    if field.chars().any(|c| !c.is_alphabetic() && c != '-') {
        return field.to_string();
    }
    let mut words: Vec<String> = Vec::new();
    let chars: Vec<char> = field.chars().collect();
    let mut current = String::new();
    for (i, &c) in chars.iter().enumerate() {
        let boundary = i > 0
            && c.is_uppercase()
            && (chars[i - 1].is_lowercase() || chars.get(i + 1).is_some_and(|n| n.is_lowercase()));
        if boundary && !current.is_empty() {
            words.push(std::mem::take(&mut current));
        }
        current.push(c);
    }
    if !current.is_empty() {
        words.push(current);
    }
    words
        .into_iter()
        .map(|w| {
            let upper = w.to_uppercase();
            if ["API", "URL", "UID", "OSB", "GUID"].contains(&upper.as_str()) {
                upper
            } else {
                let mut cs = w.chars();
                match cs.next() {
                    Some(f) => f.to_uppercase().chain(cs).collect(),
                    None => String::new(),
                }
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn unstructured(
    w: &mut Writer,
    level: usize,
    content: &Map<String, Value>,
    prefix: &str,
    skip: &[&str],
) {
    let mut fields: Vec<&String> = content.keys().collect();
    fields.sort();
    for field in fields {
        let path = format!("{prefix}.{field}");
        if skip.contains(&path.as_str()) {
            continue;
        }
        match &content[field] {
            Value::Object(m) => {
                w.w(level, &format!("{}:\n", smart_label(field)));
                unstructured(w, level + 1, m, &path, skip);
            }
            Value::Array(items) => {
                w.w(level, &format!("{}:\n", smart_label(field)));
                for item in items {
                    match item {
                        Value::Object(m) => unstructured(w, level + 1, m, &path, skip),
                        other => w.w(level + 1, &format!("{}\n", plain(other))),
                    }
                }
            }
            other => w.w(
                level,
                &format!("{}:\t{}\n", smart_label(field), plain(other)),
            ),
        }
    }
}

fn describe_generic(w: &mut Writer, obj: &Value) {
    name_namespace_labels_annotations(w, obj);
    if let Some(m) = obj.as_object() {
        unstructured(
            w,
            0,
            m,
            "",
            &[
                ".metadata.managedFields",
                ".metadata.name",
                ".metadata.namespace",
                ".metadata.labels",
                ".metadata.annotations",
            ],
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn render(f: impl FnOnce(&mut Writer)) -> String {
        let mut w = Writer::default();
        f(&mut w);
        w.finish()
    }

    #[test]
    fn labels_and_annotations_blocks() {
        let text = render(|w| {
            w.w(0, "Name:\tx\n");
            labels(
                w,
                "Labels",
                &BTreeMap::from([("app".into(), "a".into()), ("tier".into(), "web".into())]),
            );
            annotations(
                w,
                "Annotations",
                &BTreeMap::from([(super::super::apply::LAST_APPLIED.to_string(), "{}".into())]),
            );
        });
        assert_eq!(
            text,
            "Name:         x\nLabels:       app=a\n              tier=web\nAnnotations:  <none>\n"
        );
    }

    #[test]
    fn events_table_and_none() {
        assert_eq!(render(|w| describe_events(w, &[])), "Events:  <none>\n");
        let e = json!({"type": "Normal", "reason": "Scheduled", "source": {"component": "default-scheduler"},
            "message": "Successfully assigned default/p to n1"});
        assert_eq!(
            render(|w| describe_events(w, &[e])),
            "Events:\n  Type    Reason     Age        From               Message\n  ----    ------     ----       ----               -------\n  Normal  Scheduled  <unknown>  default-scheduler  Successfully assigned default/p to n1\n"
        );
    }

    #[test]
    fn pod_report_layout() {
        let pod = json!({
            "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"},
                "ownerReferences": [{"kind": "ReplicaSet", "name": "web-1", "controller": true, "uid": "u"}]},
            "spec": {"nodeName": "n1", "serviceAccountName": "default",
                "containers": [{"name": "c", "image": "busybox", "ports": [{"containerPort": 80}],
                    "env": [{"name": "A", "value": "1"}],
                    "volumeMounts": [{"name": "data", "mountPath": "/data", "readOnly": true}]}],
                "volumes": [{"name": "data", "emptyDir": {}}]},
            "status": {"phase": "Running", "hostIP": "10.0.0.1", "podIP": "10.1.0.5", "podIPs": [{"ip": "10.1.0.5"}],
                "containerStatuses": [{"name": "c", "ready": true, "restartCount": 0, "containerID": "wasm://1", "imageID": "",
                    "state": {"waiting": {"reason": "ContainerCreating"}}}],
                "conditions": [{"type": "Ready", "status": "True"}]}
        });
        let text = render(|w| describe_pod(w, &pod));
        let expected = "\
Name:             web
Namespace:        default
Service Account:  default
Node:             n1/10.0.0.1
Labels:           app=web
Annotations:      <none>
Status:           Running
IP:               10.1.0.5
IPs:
  IP:           10.1.0.5
Controlled By:  ReplicaSet/web-1
Containers:
  c:
    Container ID:   wasm://1
    Image:          busybox
    Image ID:       
    Port:           80/TCP
    Host Port:      0/TCP
    State:          Waiting
      Reason:       ContainerCreating
    Ready:          True
    Restart Count:  0
    Environment:
      A:  1
    Mounts:
      /data from data (ro)
Conditions:
  Type    Status
  Ready   True 
Volumes:
  data:
    Type:        EmptyDir (a temporary directory that shares a pod's lifetime)
    Medium:      
    SizeLimit:   <unset>
QoS Class:       BestEffort
Node-Selectors:  <none>
Tolerations:     <none>
";
        assert_eq!(text, expected);
    }

    #[test]
    fn selectors_format_sorted() {
        assert_eq!(
            format_label_selector(&json!({"matchLabels": {"b": "2", "a": "1"}})),
            "a=1,b=2"
        );
        assert_eq!(format_label_selector(&json!({})), "<none>");
        assert_eq!(
            format_label_selector(
                &json!({"matchExpressions": [{"key": "x", "operator": "NotIn", "values": ["b", "a"]}]})
            ),
            "x notin (a,b)"
        );
    }

    #[test]
    fn secrets_show_sizes_only() {
        let secret = json!({"metadata": {"name": "s", "namespace": "default"}, "type": "Opaque",
            "data": {"password": "aHVudGVyMg=="}});
        let text = render(|w| describe_secret(w, &secret));
        assert!(text.contains("password:  7 bytes\n"), "{text}");
        assert!(!text.contains("hunter2"));
    }

    #[test]
    fn generic_fallback_uses_smart_labels() {
        assert_eq!(smart_label("creationTimestamp"), "Creation Timestamp");
        assert_eq!(smart_label("apiVersion"), "API Version");
        assert_eq!(smart_label("podIP"), "Pod IP");
        assert_eq!(smart_label("with.dot"), "with.dot");
        let obj = json!({"apiVersion": "example.com/v1", "kind": "Widget",
            "metadata": {"name": "w", "namespace": "default", "uid": "1"},
            "spec": {"size": 3, "tags": ["a", "b"]}});
        let text = render(|w| describe_generic(w, &obj));
        assert!(text.contains("API Version:  example.com/v1\n"), "{text}");
        assert!(
            text.contains("Spec:\n  Size:  3\n  Tags:\n    a\n    b\n"),
            "{text}"
        );
        assert!(!text.contains("  Name:"), "{text}");
    }

    #[test]
    fn endpoints_listed_per_port_name() {
        let slices = vec![json!({"ports": [{"name": "http", "port": 8080}],
            "endpoints": [{"addresses": ["10.0.0.1"], "conditions": {"ready": true}},
                          {"addresses": ["10.0.0.2"], "conditions": {"ready": false}}]})];
        assert_eq!(format_endpoints(&slices, "http"), "10.0.0.1:8080");
        assert_eq!(format_endpoints(&slices, "other"), "");
        assert_eq!(format_endpoints(&[], "http"), "<none>");
    }
}
