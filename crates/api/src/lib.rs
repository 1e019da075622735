//! The wasmkube object model: which Kubernetes resources exist and how their objects are checked,
//! defaulted, selected, patched and printed. Pure functions over `serde_json::Value` and the
//! k8s-openapi types; no tokio, no IO, so every higher crate (and the CLI) can use it.
//!
//! # Layout
//! - [`registry`]: the static table of served resources (group/version/resource ↔ kind, scope,
//!   short names, categories, subresources) and storage key layout.
//! - [`defaults`]: per-kind defaulting, as the Kubernetes API server applies it on write.
//! - [`validate_kinds`]: per-kind validation producing Kubernetes field errors.
//! - [`validation`]: name, label and field-error primitives shared by the validators.
//! - [`selector`]: label and field selectors.
//! - [`quantity`]: resource quantities.
//! - [`patch`] and [`patch_meta`]: JSON, merge and strategic merge patches, and the merge keys.
//! - [`protobuf`]: Kubernetes protobuf request bodies decoded into the object's JSON form.
//! - [`strategy`]: per-kind write rules of Kubernetes' registry strategies (a Job's generated
//!   selector, what a `/status` write keeps, the default garbage collection policy).
//! - [`storage`]: well-known annotations, provisioner and finalizer names of volume binding.
//! - [`table`]: the `kubectl get` columns of each kind (meta.k8s.io Table rows).

pub mod defaults;
pub mod patch;
pub mod patch_meta;
pub mod protobuf;
pub mod quantity;
pub mod registry;
pub mod selector;
pub mod storage;
pub mod strategy;
pub mod table;
pub mod validate_kinds;
pub mod validation;
