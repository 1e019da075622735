//! Field selectors: which fields each kind may be selected by, and matching objects against them.
//!
//! Kubernetes only indexes a few fields per kind; a selector naming any other field is refused
//! with the same message the Kubernetes API server gives, so clients learn it at once.

use serde_json::Value;
use wasmkube_api::registry::ResourceInfo;
use wasmkube_api::selector::FieldSelector;

use crate::error::{ApiError, ApiResult};

/// The selectable fields of a kind, beyond metadata.name and metadata.namespace.
fn extra_fields(kind: &str) -> &'static [&'static str] {
    match kind {
        "Pod" => &[
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "spec.hostNetwork",
            "status.phase",
            "status.podIP",
            "status.podIPs",
            "status.nominatedNodeName",
        ],
        "Event" => &[
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "reason",
            "reportingComponent",
            "source",
            "type",
            "regarding.kind",
            "regarding.name",
            "regarding.namespace",
            "regarding.uid",
        ],
        "Secret" => &["type"],
        "Node" => &["spec.unschedulable"],
        "Namespace" => &["status.phase"],
        "ReplicaSet" => &["status.replicas"],
        "Job" => &["status.successful"],
        "Service" => &["spec.clusterIP", "spec.type"],
        "PersistentVolume" => &["name"],
        "PersistentVolumeClaim" => &["name"],
        _ => &[],
    }
}

/// A parsed field selector bound to the kind it filters.
#[derive(Debug, Clone, Default)]
pub struct FieldFilter {
    selector: Option<FieldSelector>,
}

impl FieldFilter {
    pub fn parse(info: &ResourceInfo, raw: Option<&str>) -> ApiResult<Self> {
        let Some(raw) = raw else {
            return Ok(Self::default());
        };
        let selector = FieldSelector::parse(raw)
            .map_err(|e| ApiError::bad_request(format!("invalid field selector: {e}")))?;
        for req in selector.requirements() {
            let field = req.field();
            let known = matches!(field, "metadata.name" | "metadata.namespace")
                || extra_fields(info.kind).contains(&field);
            if !known {
                return Err(ApiError::bad_request(format!(
                    "field label not supported: {field}"
                )));
            }
        }
        Ok(Self {
            selector: Some(selector),
        })
    }

    pub fn matches(&self, obj: &Value) -> bool {
        match &self.selector {
            None => true,
            Some(sel) => sel.matches(|field| field_value(obj, field)),
        }
    }

    pub fn is_everything(&self) -> bool {
        self.selector.is_none()
    }
}

/// A field's value as Kubernetes compares it: strings as they are, booleans and numbers as
/// text, absent fields as the empty string.
fn field_value(obj: &Value, field: &str) -> Option<String> {
    let field = if field == "name" {
        "metadata.name"
    } else {
        field
    };
    let source_special = field == "source";
    let mut cur = obj;
    if source_special {
        return obj
            .pointer("/source/component")
            .and_then(Value::as_str)
            .map(str::to_string)
            .or(Some(String::new()));
    }
    for part in field.split('.') {
        match cur.get(part) {
            Some(v) => cur = v,
            None => return Some(String::new()),
        }
    }
    Some(match cur {
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Null => String::new(),
        Value::Array(a) => a
            .first()
            .and_then(|x| x.get("ip"))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
        Value::Object(_) => String::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use wasmkube_api::registry;

    #[test]
    fn pods_by_node_and_phase() {
        let pods = registry::lookup("", "v1", "pods").expect("pods");
        let f = FieldFilter::parse(pods, Some("spec.nodeName=n1,status.phase!=Running"))
            .expect("valid");
        assert!(f.matches(&json!({"spec": {"nodeName": "n1"}, "status": {"phase": "Pending"}})));
        assert!(!f.matches(&json!({"spec": {"nodeName": "n1"}, "status": {"phase": "Running"}})));
        assert!(!f.matches(&json!({"spec": {}, "status": {"phase": "Pending"}})));
        let unbound = FieldFilter::parse(pods, Some("spec.nodeName=")).expect("valid");
        assert!(unbound.matches(&json!({"spec": {}})));
    }

    #[test]
    fn unsupported_field_refused() {
        let cms = registry::lookup("", "v1", "configmaps").expect("configmaps");
        let err = FieldFilter::parse(cms, Some("data.x=1")).expect_err("unsupported");
        assert_eq!(err.code, 400);
        assert!(err.message.contains("field label not supported: data.x"));
    }
}
