//! Applying a PATCH body to a stored object, per the request's content type. The patch
//! semantics live in `wasmkube_api::patch`; this maps them onto HTTP answers.

use serde_json::Value;
use wasmkube_api::patch::{self, PatchError, PatchType};
use wasmkube_api::patch_meta::PatchSchema;
use wasmkube_api::registry::ResourceInfo;

use crate::error::{ApiError, ApiResult};
use crate::request::BodyFormat;

/// Applies `patch` to `current` (an object of kind `info`) and returns the patched object.
pub fn apply(
    format: BodyFormat,
    info: &ResourceInfo,
    current: &Value,
    patch_body: &Value,
) -> ApiResult<Value> {
    let patch_type = match format {
        BodyFormat::JsonPatch => PatchType::Json,
        BodyFormat::MergePatch | BodyFormat::Json => PatchType::Merge,
        BodyFormat::StrategicMergePatch => PatchType::StrategicMerge,
        BodyFormat::Yaml | BodyFormat::ApplyPatch | BodyFormat::Protobuf => {
            return Err(ApiError::unsupported_media_type(
                "application/apply-patch+yaml",
            ));
        }
    };
    let schema = PatchSchema::for_type(info.definition).unwrap_or_else(PatchSchema::unstructured);
    patch::apply_patch(patch_type, current, patch_body, &schema).map_err(|e| match e {
        // A JSON patch whose operations cannot apply (a `test` failing, a missing path) is a
        // semantic failure of a well-formed request.
        PatchError::JsonPatch(_) => ApiError::new(
            422,
            "Invalid",
            format!("the server rejected our request due to an error in our request: {e}"),
        ),
        other => ApiError::bad_request(format!("the patch could not be applied: {other}")),
    })
}
