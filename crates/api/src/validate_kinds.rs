//! Per-kind validation: the checks the Kubernetes API server makes before storing an object,
//! producing `(field path, message)` pairs that the server turns into a 422 `Invalid` Status.
//!
//! The objects arrive already type-checked against their k8s-openapi types and defaulted, so
//! these checks are about values, not shapes. They still read untyped JSON defensively: no
//! input may panic here.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::registry::ResourceInfo;
use crate::validation as v;

/// One field error: the dotted path and Kubernetes' message for it.
pub type FieldError = (String, String);

/// Validates `obj` of kind `info`; `old` is the stored object on update.
pub fn validate(info: &ResourceInfo, obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let mut errs = Vec::new();
    validate_metadata(info, obj, &mut errs);
    let spec = obj.get("spec");
    match info.kind {
        "Pod" => {
            if let Some(spec) = spec {
                pod_spec(spec, "spec", &mut errs);
            } else {
                required(&mut errs, "spec");
            }
            if let (Some(old), Some(spec)) = (old, spec) {
                pod_update(old, spec, &mut errs);
            }
        }
        "Deployment" | "ReplicaSet" | "DaemonSet" | "StatefulSet" => {
            workload(info.kind, obj, old, &mut errs);
        }
        "Job" => job(obj, old, &mut errs),
        "CronJob" => cron_job(obj, &mut errs),
        "PodTemplate" => match obj.get("template").and_then(|t| t.get("spec")) {
            Some(s) => pod_spec(s, "template.spec", &mut errs),
            None => required(&mut errs, "template.spec"),
        },
        "Service" => service(obj, old, &mut errs),
        "ConfigMap" | "Secret" => data_keys(obj, &mut errs),
        "Namespace" => {
            if let Some(name) = obj.pointer("/metadata/name").and_then(Value::as_str) {
                for m in v::is_dns1123_label(name) {
                    errs.push(("metadata.name".into(), invalid(name, &m)));
                }
            }
        }
        "Ingress" => ingress(obj, &mut errs),
        "RuntimeClass" => {
            let handler = obj.get("handler").and_then(Value::as_str).unwrap_or("");
            if handler.is_empty() {
                required(&mut errs, "handler");
            } else {
                for m in v::is_dns1123_label(handler) {
                    errs.push(("handler".into(), invalid(handler, &m)));
                }
            }
        }
        "Lease" => {
            if let Some(d) = obj
                .pointer("/spec/leaseDurationSeconds")
                .and_then(Value::as_i64)
                && d <= 0
            {
                errs.push((
                    "spec.leaseDurationSeconds".into(),
                    invalid(&d.to_string(), "must be greater than 0"),
                ));
            }
        }
        "HorizontalPodAutoscaler" => hpa(obj, &mut errs),
        "PersistentVolumeClaim"
            if obj
                .pointer("/spec/accessModes")
                .and_then(Value::as_array)
                .is_none_or(|a| a.is_empty()) =>
        {
            required(&mut errs, "spec.accessModes");
        }
        "ResourceQuota" => quantities(obj.pointer("/spec/hard"), "spec.hard", &mut errs),
        _ => {}
    }
    if let Some(old) = old {
        immutable_metadata(obj, old, &mut errs);
    }
    errs
}

fn required(errs: &mut Vec<FieldError>, field: &str) {
    errs.push((field.to_string(), "Required value".into()));
}

fn invalid(value: &str, detail: &str) -> String {
    format!("Invalid value: {value:?}: {detail}")
}

fn str_at<'a>(obj: &'a Value, pointer: &str) -> Option<&'a str> {
    obj.pointer(pointer).and_then(Value::as_str)
}

fn validate_metadata(info: &ResourceInfo, obj: &Value, errs: &mut Vec<FieldError>) {
    let meta = obj.get("metadata");
    let name = meta
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("");
    if name.is_empty() {
        errs.push((
            "metadata.name".into(),
            "Required value: name or generateName is required".into(),
        ));
    } else {
        // Services and namespaces need DNS labels; most kinds accept subdomains. Some kinds
        // (RBAC, events) only forbid path segments.
        let msgs = match info.kind {
            "Service" => v::is_dns1035_label(name),
            "Namespace" => Vec::new(), // checked per kind as a DNS label
            "Role" | "ClusterRole" | "RoleBinding" | "ClusterRoleBinding" | "Event" => {
                path_segment(name)
            }
            _ => v::is_dns1123_subdomain(name),
        };
        for m in msgs {
            errs.push(("metadata.name".into(), invalid(name, &m)));
        }
    }
    if let Some(labels) = meta
        .and_then(|m| m.get("labels"))
        .and_then(Value::as_object)
    {
        for (k, val) in labels {
            for m in v::is_qualified_name(k) {
                errs.push(("metadata.labels".into(), invalid(k, &m)));
            }
            let s = val.as_str().unwrap_or("");
            for m in v::is_valid_label_value(s) {
                errs.push(("metadata.labels".into(), invalid(s, &m)));
            }
        }
    }
    if let Some(finalizers) = meta
        .and_then(|m| m.get("finalizers"))
        .and_then(Value::as_array)
    {
        for (i, f) in finalizers.iter().enumerate() {
            let name = f.as_str().unwrap_or("");
            let field = format!("metadata.finalizers[{i}]");
            for m in v::is_qualified_name(name) {
                errs.push((field.clone(), invalid(name, &m)));
            }
            // Kubernetes' own finalizers are the only unqualified ones.
            if !name.contains('/')
                && !["kubernetes", "orphan", "foregroundDeletion"].contains(&name)
            {
                errs.push((
                    field,
                    invalid(
                        name,
                        "name is neither a standard finalizer name nor is it fully qualified",
                    ),
                ));
            }
        }
    }
    if let Some(ann) = meta
        .and_then(|m| m.get("annotations"))
        .and_then(Value::as_object)
    {
        let mut total = 0usize;
        for (k, val) in ann {
            for m in v::is_qualified_name(&k.to_ascii_lowercase()) {
                errs.push(("metadata.annotations".into(), invalid(k, &m)));
            }
            total += k.len() + val.as_str().map_or(0, str::len);
        }
        if total > v::TOTAL_ANNOTATION_SIZE_LIMIT_BYTES {
            errs.push((
                "metadata.annotations".into(),
                format!(
                    "Too long: may not be more than {} bytes",
                    v::TOTAL_ANNOTATION_SIZE_LIMIT_BYTES
                ),
            ));
        }
    }
    if let Some(refs) = meta
        .and_then(|m| m.get("ownerReferences"))
        .and_then(Value::as_array)
    {
        let mut controllers = 0;
        for (i, r) in refs.iter().enumerate() {
            for f in ["apiVersion", "kind", "name", "uid"] {
                if r.get(f).and_then(Value::as_str).is_none_or(str::is_empty) {
                    required(errs, &format!("metadata.ownerReferences[{i}].{f}"));
                }
            }
            if r.get("controller").and_then(Value::as_bool) == Some(true) {
                controllers += 1;
            }
        }
        if controllers > 1 {
            errs.push((
                "metadata.ownerReferences".into(),
                "Invalid value: only one reference can have Controller set to true".into(),
            ));
        }
    }
}

fn path_segment(name: &str) -> Vec<String> {
    if name == "." || name == ".." {
        return vec![format!("may not be '{name}'")];
    }
    if name.contains('/') || name.contains('%') {
        return vec!["may not contain '/' or '%'".into()];
    }
    Vec::new()
}

fn immutable_metadata(obj: &Value, old: &Value, errs: &mut Vec<FieldError>) {
    let _ = (obj, old, errs);
    // uid, name, namespace and creationTimestamp are carried over by the server itself, so a
    // client cannot change them; nothing to report here.
}

fn pod_spec(spec: &Value, path: &str, errs: &mut Vec<FieldError>) {
    let containers = spec.get("containers").and_then(Value::as_array);
    let mut names = BTreeSet::new();
    let volumes: BTreeSet<String> = spec
        .get("volumes")
        .and_then(Value::as_array)
        .map(|vs| {
            vs.iter()
                .filter_map(|v| v.get("name").and_then(Value::as_str).map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    match containers {
        None => required(errs, &format!("{path}.containers")),
        Some(cs) if cs.is_empty() => required(errs, &format!("{path}.containers")),
        Some(cs) => {
            for (i, c) in cs.iter().enumerate() {
                container(
                    c,
                    &format!("{path}.containers[{i}]"),
                    &mut names,
                    &volumes,
                    errs,
                );
            }
        }
    }
    if let Some(cs) = spec.get("initContainers").and_then(Value::as_array) {
        for (i, c) in cs.iter().enumerate() {
            container(
                c,
                &format!("{path}.initContainers[{i}]"),
                &mut names,
                &volumes,
                errs,
            );
        }
    }
    if let Some(rp) = spec.get("restartPolicy").and_then(Value::as_str)
        && !matches!(rp, "Always" | "OnFailure" | "Never")
    {
        errs.push((
            format!("{path}.restartPolicy"),
            format!(
                "Unsupported value: {rp:?}: supported values: \"Always\", \"OnFailure\", \"Never\""
            ),
        ));
    }
    if let Some(dp) = spec.get("dnsPolicy").and_then(Value::as_str)
        && !matches!(
            dp,
            "ClusterFirstWithHostNet" | "ClusterFirst" | "Default" | "None"
        )
    {
        errs.push((
                format!("{path}.dnsPolicy"),
                format!("Unsupported value: {dp:?}: supported values: \"ClusterFirstWithHostNet\", \"ClusterFirst\", \"Default\", \"None\""),
            ));
    }
    if let Some(g) = spec
        .get("terminationGracePeriodSeconds")
        .and_then(Value::as_i64)
        && g < 0
    {
        errs.push((
            format!("{path}.terminationGracePeriodSeconds"),
            format!("Invalid value: {g}: must be greater than or equal to 0"),
        ));
    }
    if let Some(d) = spec.get("activeDeadlineSeconds").and_then(Value::as_i64)
        && d <= 0
    {
        errs.push((
            format!("{path}.activeDeadlineSeconds"),
            format!("Invalid value: {d}: must be greater than 0"),
        ));
    }
    let mut seen_vols = BTreeSet::new();
    if let Some(vs) = spec.get("volumes").and_then(Value::as_array) {
        for (i, vol) in vs.iter().enumerate() {
            let name = vol.get("name").and_then(Value::as_str).unwrap_or("");
            let field = format!("{path}.volumes[{i}].name");
            if name.is_empty() {
                required(errs, &field);
                continue;
            }
            for m in v::is_dns1123_label(name) {
                errs.push((field.clone(), invalid(name, &m)));
            }
            if !seen_vols.insert(name.to_string()) {
                errs.push((field, format!("Duplicate value: {name:?}")));
            }
        }
    }
    if let Some(ns) = spec.get("nodeSelector").and_then(Value::as_object) {
        for (k, val) in ns {
            for m in v::is_qualified_name(k) {
                errs.push((format!("{path}.nodeSelector"), invalid(k, &m)));
            }
            for m in v::is_valid_label_value(val.as_str().unwrap_or("")) {
                errs.push((
                    format!("{path}.nodeSelector"),
                    invalid(val.as_str().unwrap_or(""), &m),
                ));
            }
        }
    }
}

fn container(
    c: &Value,
    path: &str,
    names: &mut BTreeSet<String>,
    volumes: &BTreeSet<String>,
    errs: &mut Vec<FieldError>,
) {
    let name = c.get("name").and_then(Value::as_str).unwrap_or("");
    if name.is_empty() {
        required(errs, &format!("{path}.name"));
    } else {
        for m in v::is_dns1123_label(name) {
            errs.push((format!("{path}.name"), invalid(name, &m)));
        }
        if !names.insert(name.to_string()) {
            errs.push((format!("{path}.name"), format!("Duplicate value: {name:?}")));
        }
    }
    if c.get("image")
        .and_then(Value::as_str)
        .is_none_or(|i| i.trim().is_empty())
    {
        required(errs, &format!("{path}.image"));
    }
    if let Some(p) = c.get("imagePullPolicy").and_then(Value::as_str)
        && !matches!(p, "Always" | "IfNotPresent" | "Never")
    {
        errs.push((
                format!("{path}.imagePullPolicy"),
                format!("Unsupported value: {p:?}: supported values: \"Always\", \"IfNotPresent\", \"Never\""),
            ));
    }
    let mut port_names = BTreeSet::new();
    if let Some(ports) = c.get("ports").and_then(Value::as_array) {
        for (i, p) in ports.iter().enumerate() {
            let field = format!("{path}.ports[{i}]");
            match p.get("containerPort").and_then(Value::as_i64) {
                Some(n) => {
                    for m in v::is_valid_port_num(n) {
                        errs.push((
                            format!("{field}.containerPort"),
                            format!("Invalid value: {n}: {m}"),
                        ));
                    }
                }
                None => required(errs, &format!("{field}.containerPort")),
            }
            if let Some(n) = p.get("hostPort").and_then(Value::as_i64)
                && n != 0
            {
                for m in v::is_valid_port_num(n) {
                    errs.push((
                        format!("{field}.hostPort"),
                        format!("Invalid value: {n}: {m}"),
                    ));
                }
            }
            if let Some(pn) = p.get("name").and_then(Value::as_str) {
                for m in v::is_valid_port_name(pn) {
                    errs.push((format!("{field}.name"), invalid(pn, &m)));
                }
                if !port_names.insert(pn.to_string()) {
                    errs.push((format!("{field}.name"), format!("Duplicate value: {pn:?}")));
                }
            }
            if let Some(proto) = p.get("protocol").and_then(Value::as_str)
                && !matches!(proto, "TCP" | "UDP" | "SCTP")
            {
                errs.push((
                    format!("{field}.protocol"),
                    format!(
                        "Unsupported value: {proto:?}: supported values: \"SCTP\", \"TCP\", \"UDP\""
                    ),
                ));
            }
        }
    }
    if let Some(env) = c.get("env").and_then(Value::as_array) {
        for (i, e) in env.iter().enumerate() {
            if e.get("name")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
            {
                required(errs, &format!("{path}.env[{i}].name"));
            }
        }
    }
    if let Some(mounts) = c.get("volumeMounts").and_then(Value::as_array) {
        for (i, m) in mounts.iter().enumerate() {
            let name = m.get("name").and_then(Value::as_str).unwrap_or("");
            if name.is_empty() {
                required(errs, &format!("{path}.volumeMounts[{i}].name"));
            } else if !volumes.contains(name) {
                errs.push((
                    format!("{path}.volumeMounts[{i}].name"),
                    format!("Not found: {name:?}"),
                ));
            }
            if m.get("mountPath")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
            {
                required(errs, &format!("{path}.volumeMounts[{i}].mountPath"));
            }
        }
    }
    if let Some(res) = c.get("resources") {
        quantities(res.get("limits"), &format!("{path}.resources.limits"), errs);
        quantities(
            res.get("requests"),
            &format!("{path}.resources.requests"),
            errs,
        );
        // A request above its limit can never be scheduled honestly.
        if let (Some(req), Some(lim)) = (
            res.get("requests").and_then(Value::as_object),
            res.get("limits").and_then(Value::as_object),
        ) {
            for (k, rv) in req {
                let Some(lv) = lim.get(k) else { continue };
                let (Some(r), Some(l)) = (quantity_milli(rv), quantity_milli(lv)) else {
                    continue;
                };
                if r > l {
                    errs.push((
                        format!("{path}.resources.requests"),
                        format!(
                            "Invalid value: {:?}: must be less than or equal to {k} limit of {}",
                            quantity_text(rv),
                            quantity_text(lv)
                        ),
                    ));
                }
            }
        }
    }
    for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
        if let Some(p) = c.get(probe) {
            let handlers = ["exec", "httpGet", "tcpSocket", "grpc"]
                .iter()
                .filter(|h| p.get(**h).is_some())
                .count();
            if handlers == 0 {
                required(errs, &format!("{path}.{probe}"));
                errs.pop();
                errs.push((
                    format!("{path}.{probe}"),
                    "Required value: must specify a handler type".into(),
                ));
            } else if handlers > 1 {
                errs.push((
                    format!("{path}.{probe}"),
                    "Forbidden: may not specify more than 1 handler type".into(),
                ));
            }
        }
    }
}

fn quantity_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn quantity_milli(v: &Value) -> Option<i128> {
    crate::quantity::Quantity::parse(&quantity_text(v))
        .ok()
        .and_then(|q| q.to_milli())
}

fn quantities(map: Option<&Value>, path: &str, errs: &mut Vec<FieldError>) {
    let Some(map) = map.and_then(Value::as_object) else {
        return;
    };
    for (k, val) in map {
        let text = quantity_text(val);
        match crate::quantity::Quantity::parse(&text) {
            Ok(q) if q.to_milli().is_some_and(|m| m < 0) => errs.push((
                format!("{path}[{k}]"),
                invalid(&text, "must be greater than or equal to 0"),
            )),
            Ok(_) => {}
            Err(_) => errs.push((
                format!("{path}[{k}]"),
                invalid(
                    &text,
                    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'",
                ),
            )),
        }
    }
}

fn pod_update(old: &Value, spec: &Value, errs: &mut Vec<FieldError>) {
    let Some(old_spec) = old.get("spec") else {
        return;
    };
    // Kubernetes lets a running pod change only images, a few deadlines and tolerations; the
    // rest would silently diverge from what the node runs.
    let mut a = old_spec.clone();
    let mut b = spec.clone();
    for s in [&mut a, &mut b] {
        if let Some(map) = s.as_object_mut() {
            for k in [
                "activeDeadlineSeconds",
                "tolerations",
                "terminationGracePeriodSeconds",
                "nodeName",
                "schedulingGates",
            ] {
                map.remove(k);
            }
            for list in ["containers", "initContainers"] {
                if let Some(cs) = map.get_mut(list).and_then(Value::as_array_mut) {
                    for c in cs {
                        if let Some(c) = c.as_object_mut() {
                            c.remove("image");
                            c.remove("resources");
                        }
                    }
                }
            }
        }
    }
    if a != b {
        errs.push((
            "spec".into(),
            "Forbidden: pod updates may not change fields other than `spec.containers[*].image`, `spec.initContainers[*].image`, `spec.activeDeadlineSeconds`, `spec.tolerations` (only additions to existing tolerations), `spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)".into(),
        ));
    }
    let old_node = str_at(old, "/spec/nodeName").unwrap_or("");
    let new_node = spec.get("nodeName").and_then(Value::as_str).unwrap_or("");
    if !old_node.is_empty() && old_node != new_node {
        errs.push((
            "spec.nodeName".into(),
            "Forbidden: pod updates may not change fields other than spec.nodeName when it is unset".into(),
        ));
    }
}

/// Checks a `LabelSelector` object and returns its parsed form.
fn label_selector(
    sel: Option<&Value>,
    path: &str,
    errs: &mut Vec<FieldError>,
) -> Option<crate::selector::LabelSelector> {
    let sel = sel?;
    let typed: k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector =
        match serde_json::from_value(sel.clone()) {
            Ok(t) => t,
            Err(e) => {
                errs.push((path.to_string(), format!("Invalid value: {e}")));
                return None;
            }
        };
    match crate::selector::LabelSelector::try_from(&typed) {
        Ok(s) => Some(s),
        Err(e) => {
            errs.push((path.to_string(), format!("Invalid value: {e}")));
            None
        }
    }
}

fn template_labels(template: Option<&Value>) -> std::collections::BTreeMap<String, String> {
    template
        .and_then(|t| t.pointer("/metadata/labels"))
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

fn workload(kind: &str, obj: &Value, old: Option<&Value>, errs: &mut Vec<FieldError>) {
    let Some(spec) = obj.get("spec") else {
        required(errs, "spec");
        return;
    };
    if let Some(r) = spec.get("replicas").and_then(Value::as_i64)
        && r < 0
    {
        errs.push((
            "spec.replicas".into(),
            format!("Invalid value: {r}: must be greater than or equal to 0"),
        ));
    }
    let selector_value = spec.get("selector");
    if selector_value.is_none_or(Value::is_null) {
        required(errs, "spec.selector");
    }
    let template = spec.get("template");
    let sel = label_selector(selector_value, "spec.selector", errs);
    if let Some(sel) = &sel {
        if sel.is_everything() {
            errs.push((
                "spec.selector".into(),
                "Invalid value: {}: empty selector is invalid for deployment".into(),
            ));
        } else if !sel.matches(&template_labels(template)) {
            errs.push((
                "spec.template.metadata.labels".into(),
                format!(
                    "Invalid value: {:?}: `selector` does not match template `labels`",
                    template_labels(template)
                        .iter()
                        .map(|(k, v)| format!("{k}:{v}"))
                        .collect::<Vec<_>>()
                        .join(",")
                ),
            ));
        }
    }
    match template.and_then(|t| t.get("spec")) {
        Some(ps) => {
            // A StatefulSet's containers mount its volumeClaimTemplates by name: the
            // controller adds a claim volume per template to every pod it makes.
            let claims = obj
                .pointer("/spec/volumeClaimTemplates")
                .and_then(Value::as_array)
                .filter(|t| kind == "StatefulSet" && !t.is_empty());
            let with_claims;
            let ps = match claims {
                Some(templates) => {
                    let mut spec = ps.clone();
                    if let Some(map) = spec.as_object_mut() {
                        let volumes = map.entry("volumes").or_insert_with(|| Value::Array(vec![]));
                        if let Some(list) = volumes.as_array_mut() {
                            for t in templates {
                                let name = t.pointer("/metadata/name").cloned().unwrap_or_default();
                                list.push(serde_json::json!({"name": name,
                                    "persistentVolumeClaim": {"claimName": name}}));
                            }
                        }
                    }
                    with_claims = spec;
                    &with_claims
                }
                None => ps,
            };
            pod_spec(ps, "spec.template.spec", errs);
            if matches!(
                kind,
                "Deployment" | "ReplicaSet" | "DaemonSet" | "StatefulSet"
            ) && let Some(rp) = ps.get("restartPolicy").and_then(Value::as_str)
                && rp != "Always"
            {
                errs.push((
                    "spec.template.spec.restartPolicy".into(),
                    format!("Unsupported value: {rp:?}: supported values: \"Always\""),
                ));
            }
        }
        None => required(errs, "spec.template"),
    }
    if kind == "Deployment"
        && let Some(strategy) = spec.get("strategy")
    {
        let t = strategy.get("type").and_then(Value::as_str).unwrap_or("");
        if !matches!(t, "RollingUpdate" | "Recreate") {
            errs.push((
                "spec.strategy.type".into(),
                format!(
                    "Unsupported value: {t:?}: supported values: \"Recreate\", \"RollingUpdate\""
                ),
            ));
        }
        if t == "Recreate" && strategy.get("rollingUpdate").is_some_and(|r| !r.is_null()) {
            errs.push((
                "spec.strategy.rollingUpdate".into(),
                "Forbidden: may not be specified when strategy `type` is 'Recreate'".into(),
            ));
        }
        if let Some(ru) = strategy.get("rollingUpdate") {
            let zero = |v: Option<&Value>| match v {
                Some(Value::Number(n)) => n.as_i64() == Some(0),
                Some(Value::String(s)) => s == "0" || s == "0%",
                _ => false,
            };
            for f in ["maxSurge", "maxUnavailable"] {
                if let Some(val) = ru.get(f)
                    && !int_or_percent_ok(val)
                {
                    errs.push((
                        format!("spec.strategy.rollingUpdate.{f}"),
                        format!(
                            "Invalid value: {val}: must be an integer or percentage (e.g '5%')"
                        ),
                    ));
                }
            }
            if zero(ru.get("maxSurge")) && zero(ru.get("maxUnavailable")) {
                errs.push((
                    "spec.strategy.rollingUpdate.maxUnavailable".into(),
                    "Invalid value: 0: may not be 0 when `maxSurge` is 0".into(),
                ));
            }
        }
    }
    if let Some(old) = old
        && old.pointer("/spec/selector") != spec.get("selector")
    {
        errs.push((
            "spec.selector".into(),
            format!(
                "Invalid value: {}: field is immutable",
                spec.get("selector").cloned().unwrap_or(Value::Null)
            ),
        ));
    }
}

fn int_or_percent_ok(v: &Value) -> bool {
    match v {
        Value::Number(n) => n.as_i64().is_some_and(|x| x >= 0),
        Value::String(s) => s
            .strip_suffix('%')
            .is_some_and(|p| p.parse::<u32>().is_ok()),
        _ => false,
    }
}

fn job(obj: &Value, old: Option<&Value>, errs: &mut Vec<FieldError>) {
    let Some(spec) = obj.get("spec") else {
        required(errs, "spec");
        return;
    };
    for f in ["parallelism", "completions", "backoffLimit"] {
        if let Some(n) = spec.get(f).and_then(Value::as_i64)
            && n < 0
        {
            errs.push((
                format!("spec.{f}"),
                format!("Invalid value: {n}: must be greater than or equal to 0"),
            ));
        }
    }
    match spec.pointer("/template/spec") {
        Some(ps) => {
            pod_spec(ps, "spec.template.spec", errs);
            let rp = ps
                .get("restartPolicy")
                .and_then(Value::as_str)
                .unwrap_or("");
            if !matches!(rp, "OnFailure" | "Never") {
                errs.push((
                    "spec.template.spec.restartPolicy".into(),
                    "Required value: valid values: \"OnFailure\", \"Never\"".to_string(),
                ));
            }
        }
        None => required(errs, "spec.template"),
    }
    if let Some(old) = old
        && old.pointer("/spec/template") != spec.get("template")
    {
        errs.push((
            "spec.template".into(),
            "Invalid value: field is immutable".into(),
        ));
    }
}

fn cron_job(obj: &Value, errs: &mut Vec<FieldError>) {
    let schedule = str_at(obj, "/spec/schedule").unwrap_or("");
    if schedule.trim().is_empty() {
        required(errs, "spec.schedule");
    } else if !cron_fields_ok(schedule) {
        errs.push((
            "spec.schedule".into(),
            invalid(schedule, "unparseable cron expression"),
        ));
    }
    if let Some(cp) = str_at(obj, "/spec/concurrencyPolicy")
        && !matches!(cp, "Allow" | "Forbid" | "Replace")
    {
        errs.push((
            "spec.concurrencyPolicy".into(),
            format!(
                "Unsupported value: {cp:?}: supported values: \"Allow\", \"Forbid\", \"Replace\""
            ),
        ));
    }
    match obj.pointer("/spec/jobTemplate/spec/template/spec") {
        Some(ps) => pod_spec(ps, "spec.jobTemplate.spec.template.spec", errs),
        None => required(errs, "spec.jobTemplate.spec.template"),
    }
}

/// A structural check of a cron schedule: five fields (or a macro such as `@hourly`), each
/// made of the characters cron accepts. The scheduler parses it fully.
fn cron_fields_ok(s: &str) -> bool {
    let s = s.trim();
    let s = s
        .strip_prefix("CRON_TZ=")
        .or_else(|| s.strip_prefix("TZ="))
        .map_or(s, |rest| rest.split_once(' ').map_or("", |(_, r)| r));
    if s.starts_with('@') {
        return matches!(
            s,
            "@yearly" | "@annually" | "@monthly" | "@weekly" | "@daily" | "@midnight" | "@hourly"
        );
    }
    let fields: Vec<&str> = s.split_whitespace().collect();
    fields.len() == 5
        && fields.iter().all(|f| {
            f.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '*' | ',' | '-' | '/' | '?'))
        })
}

fn service(obj: &Value, old: Option<&Value>, errs: &mut Vec<FieldError>) {
    let spec = obj.get("spec").cloned().unwrap_or(Value::Null);
    let ty = spec
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("ClusterIP");
    if !matches!(
        ty,
        "ClusterIP" | "NodePort" | "LoadBalancer" | "ExternalName"
    ) {
        errs.push((
            "spec.type".into(),
            format!("Unsupported value: {ty:?}: supported values: \"ClusterIP\", \"ExternalName\", \"LoadBalancer\", \"NodePort\""),
        ));
    }
    let ports = spec.get("ports").and_then(Value::as_array);
    if ty == "ExternalName" {
        let en = spec
            .get("externalName")
            .and_then(Value::as_str)
            .unwrap_or("");
        if en.is_empty() {
            required(errs, "spec.externalName");
        } else {
            for m in v::is_dns1123_subdomain(en.trim_end_matches('.')) {
                errs.push(("spec.externalName".into(), invalid(en, &m)));
            }
        }
    } else if ports.is_none_or(|p| p.is_empty())
        && spec.get("clusterIP").and_then(Value::as_str) != Some("None")
    {
        required(errs, "spec.ports");
    }
    let multiple = ports.is_some_and(|p| p.len() > 1);
    let mut names = BTreeSet::new();
    let mut seen = BTreeSet::new();
    for (i, p) in ports.into_iter().flatten().enumerate() {
        let field = format!("spec.ports[{i}]");
        let name = p.get("name").and_then(Value::as_str).unwrap_or("");
        if multiple && name.is_empty() {
            required(errs, &format!("{field}.name"));
        }
        if !name.is_empty() {
            for m in v::is_dns1123_label(name) {
                errs.push((format!("{field}.name"), invalid(name, &m)));
            }
            if !names.insert(name.to_string()) {
                errs.push((
                    format!("{field}.name"),
                    format!("Duplicate value: {name:?}"),
                ));
            }
        }
        match p.get("port").and_then(Value::as_i64) {
            Some(n) => {
                for m in v::is_valid_port_num(n) {
                    errs.push((format!("{field}.port"), format!("Invalid value: {n}: {m}")));
                }
                let proto = p.get("protocol").and_then(Value::as_str).unwrap_or("TCP");
                if !seen.insert((n, proto.to_string())) {
                    errs.push((
                        field.clone(),
                        format!("Duplicate value: core.ServicePort{{Name:{name:?}, Protocol:{proto:?}, Port:{n}}}"),
                    ));
                }
            }
            None => required(errs, &format!("{field}.port")),
        }
        match p.get("targetPort") {
            Some(Value::Number(n)) => {
                for m in v::is_valid_port_num(n.as_i64().unwrap_or(0)) {
                    errs.push((
                        format!("{field}.targetPort"),
                        format!("Invalid value: {n}: {m}"),
                    ));
                }
            }
            Some(Value::String(s)) => {
                for m in v::is_valid_port_name(s) {
                    errs.push((format!("{field}.targetPort"), invalid(s, &m)));
                }
            }
            _ => {}
        }
        if let Some(np) = p.get("nodePort").and_then(Value::as_i64)
            && np != 0
            && ty == "ClusterIP"
        {
            errs.push((
                format!("{field}.nodePort"),
                "Forbidden: may not be used when `type` is 'ClusterIP'".to_string(),
            ));
        }
    }
    if let Some(sel) = spec.get("selector").and_then(Value::as_object) {
        for (k, val) in sel {
            for m in v::is_qualified_name(k) {
                errs.push(("spec.selector".into(), invalid(k, &m)));
            }
            for m in v::is_valid_label_value(val.as_str().unwrap_or("")) {
                errs.push((
                    "spec.selector".into(),
                    invalid(val.as_str().unwrap_or(""), &m),
                ));
            }
        }
    }
    if let Some(sa) = spec.get("sessionAffinity").and_then(Value::as_str)
        && !matches!(sa, "None" | "ClientIP")
    {
        errs.push((
            "spec.sessionAffinity".into(),
            format!("Unsupported value: {sa:?}: supported values: \"ClientIP\", \"None\""),
        ));
    }
    if let Some(old) = old {
        let old_ip = str_at(old, "/spec/clusterIP").unwrap_or("");
        let new_ip = spec.get("clusterIP").and_then(Value::as_str).unwrap_or("");
        if !old_ip.is_empty() && !new_ip.is_empty() && old_ip != new_ip {
            errs.push((
                "spec.clusterIPs[0]".into(),
                invalid(new_ip, "may not change once set"),
            ));
        }
    }
}

/// What a ConfigMap or Secret may hold in all (Kubernetes' `MaxSecretSize`, also applied to
/// ConfigMaps): the limit that keeps one object inside etcd's request size.
pub const MAX_DATA_SIZE: usize = 1024 * 1024;

fn data_keys(obj: &Value, errs: &mut Vec<FieldError>) {
    let mut seen = BTreeSet::new();
    let mut total = 0usize;
    let secret = obj.get("kind").and_then(Value::as_str) == Some("Secret");
    for field in ["data", "binaryData", "stringData"] {
        if let Some(map) = obj.get(field).and_then(Value::as_object) {
            for (k, value) in map {
                let text = value.as_str().unwrap_or("");
                // Secret data and binaryData are base64: their size is the decoded bytes'.
                let base64 = field == "binaryData" || (secret && field == "data");
                total += k.len()
                    + if base64 {
                        text.trim_end_matches('=').len() * 3 / 4
                    } else {
                        text.len()
                    };
            }
            for k in map.keys() {
                for m in v::is_config_map_key(k) {
                    errs.push((format!("{field}[{k}]"), invalid(k, &m)));
                }
                if field != "stringData" && !seen.insert(k.clone()) {
                    errs.push((format!("{field}[{k}]"), format!("Duplicate value: {k:?}")));
                }
            }
        }
    }
    if total > MAX_DATA_SIZE {
        errs.push((
            "data".into(),
            format!("Too long: must have at most {MAX_DATA_SIZE} bytes"),
        ));
    }
}

fn ingress(obj: &Value, errs: &mut Vec<FieldError>) {
    let rules = obj.pointer("/spec/rules").and_then(Value::as_array);
    let default_backend = obj.pointer("/spec/defaultBackend");
    if rules.is_none_or(|r| r.is_empty()) && default_backend.is_none() {
        errs.push((
            "spec".into(),
            "Invalid value: either `defaultBackend` or `rules` must be specified".into(),
        ));
    }
    for (i, rule) in rules.into_iter().flatten().enumerate() {
        if let Some(host) = rule.get("host").and_then(Value::as_str) {
            let bare = host.strip_prefix("*.").unwrap_or(host);
            for m in v::is_dns1123_subdomain(bare) {
                errs.push((format!("spec.rules[{i}].host"), invalid(host, &m)));
            }
        }
        let paths = rule.pointer("/http/paths").and_then(Value::as_array);
        for (j, p) in paths.into_iter().flatten().enumerate() {
            let field = format!("spec.rules[{i}].http.paths[{j}]");
            match p.get("pathType").and_then(Value::as_str) {
                None => required(errs, &format!("{field}.pathType")),
                Some("Exact" | "Prefix" | "ImplementationSpecific") => {}
                Some(t) => errs.push((
                    format!("{field}.pathType"),
                    format!("Unsupported value: {t:?}: supported values: \"Exact\", \"ImplementationSpecific\", \"Prefix\""),
                )),
            }
            if let Some(path) = p.get("path").and_then(Value::as_str)
                && !path.starts_with('/')
            {
                errs.push((
                    format!("{field}.path"),
                    invalid(path, "must be an absolute path"),
                ));
            }
            if p.get("backend").is_none() {
                required(errs, &format!("{field}.backend"));
            }
        }
    }
}

fn hpa(obj: &Value, errs: &mut Vec<FieldError>) {
    let min = obj
        .pointer("/spec/minReplicas")
        .and_then(Value::as_i64)
        .unwrap_or(1);
    let max = obj
        .pointer("/spec/maxReplicas")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    if min < 1 {
        errs.push((
            "spec.minReplicas".into(),
            format!("Invalid value: {min}: must be greater than or equal to 1"),
        ));
    }
    if max < min {
        errs.push((
            "spec.maxReplicas".into(),
            format!("Invalid value: {max}: must be greater than or equal to `minReplicas`"),
        ));
    }
    for f in ["kind", "name"] {
        if obj
            .pointer(&format!("/spec/scaleTargetRef/{f}"))
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            required(errs, &format!("spec.scaleTargetRef.{f}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry;
    use serde_json::json;

    fn kind(resource: &str, group: &str) -> &'static ResourceInfo {
        registry::lookup(group, "v1", resource).expect("registered")
    }

    #[test]
    fn pod_needs_containers_and_images() {
        let pod = json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c"}]}});
        let errs = validate(kind("pods", ""), &pod, None);
        assert_eq!(
            errs,
            vec![("spec.containers[0].image".into(), "Required value".into())]
        );
        let pod = json!({"metadata": {"name": "P_"}, "spec": {"containers": []}});
        let errs = validate(kind("pods", ""), &pod, None);
        let fields: Vec<&str> = errs.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(fields, vec!["metadata.name", "spec.containers"]);
    }

    #[test]
    fn deployment_selector_must_match_template() {
        let d = json!({"metadata": {"name": "d"}, "spec": {
            "selector": {"matchLabels": {"app": "a"}},
            "template": {"metadata": {"labels": {"app": "b"}},
                "spec": {"containers": [{"name": "c", "image": "i"}]}}}});
        let errs = validate(
            registry::lookup("apps", "v1", "deployments").expect("d"),
            &d,
            None,
        );
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].0, "spec.template.metadata.labels");
    }

    #[test]
    fn statefulset_containers_mount_claim_templates() {
        let set = |mount: &str| {
            json!({"metadata": {"name": "web"}, "spec": {
                "selector": {"matchLabels": {"app": "a"}}, "serviceName": "web",
                "volumeClaimTemplates": [{"metadata": {"name": "data"},
                    "spec": {"accessModes": ["ReadWriteOnce"]}}],
                "template": {"metadata": {"labels": {"app": "a"}},
                    "spec": {"containers": [{"name": "c", "image": "i",
                        "volumeMounts": [{"name": mount, "mountPath": "/data"}]}]}}}})
        };
        let info = registry::lookup("apps", "v1", "statefulsets").expect("sts");
        assert!(validate(info, &set("data"), None).is_empty());
        let errs = validate(info, &set("nope"), None);
        assert_eq!(
            errs,
            vec![(
                "spec.template.spec.containers[0].volumeMounts[0].name".into(),
                "Not found: \"nope\"".into()
            )]
        );
    }

    #[test]
    fn service_ports() {
        let s = json!({"metadata": {"name": "s"}, "spec": {"ports": [{"port": 70000}]}});
        let errs = validate(kind("services", ""), &s, None);
        assert_eq!(errs[0].0, "spec.ports[0].port");
        let s = json!({"metadata": {"name": "s"}, "spec": {"ports": [{"port": 80}]}});
        assert!(validate(kind("services", ""), &s, None).is_empty());
    }

    #[test]
    fn bad_quantity_named() {
        let pod = json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "i",
            "resources": {"limits": {"memory": "12XB"}}}]}});
        let errs = validate(kind("pods", ""), &pod, None);
        assert_eq!(errs[0].0, "spec.containers[0].resources.limits[memory]");
    }
}
