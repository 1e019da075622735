//! `meta.k8s.io/v1` Table answers: what `kubectl get` asks for, so the server decides the columns
//! and every client prints the same thing.

use serde_json::{Value, json};
use wasmkube_api::registry::ResourceInfo;

/// Builds a Table of `items`. `include_object` follows the `includeObject` parameter: `None`
/// (kubectl's default for get) embeds PartialObjectMetadata, `Object` the whole object.
pub fn table_of(
    info: &ResourceInfo,
    items: &[Value],
    list_meta: Value,
    include_object: Option<&str>,
) -> Value {
    let columns: Vec<Value> = wasmkube_api::table::columns(info)
        .into_iter()
        .map(|c| {
            json!({
                "name": c.name,
                "type": c.type_,
                "format": c.format,
                "description": c.description,
                "priority": c.priority,
            })
        })
        .collect();
    let now = jiff::Timestamp::now();
    let rows: Vec<Value> = items
        .iter()
        .map(|obj| {
            json!({
                "cells": wasmkube_api::table::row_cells(info, obj, now),
                "object": embedded(obj, include_object),
            })
        })
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": list_meta,
        "columnDefinitions": columns,
        "rows": rows,
    })
}

fn embedded(obj: &Value, include_object: Option<&str>) -> Value {
    match include_object {
        Some("Object") => obj.clone(),
        Some("None") => Value::Null,
        _ => json!({
            "kind": "PartialObjectMetadata",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": obj.get("metadata").cloned().unwrap_or_else(|| json!({})),
        }),
    }
}
