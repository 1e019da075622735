//! Kubernetes name, label and port validation, with Kubernetes' exact error wording.
//!
//! The `is_*` functions mirror `k8s.io/apimachinery/pkg/util/validation`: each returns the list
//! of problems (empty when the value is valid), worded exactly as Kubernetes words them, because
//! clients and users compare these messages with what a real cluster says.
//!
//! [`FieldError`] and [`FieldErrors`] mirror `field.Error` / `field.ErrorList`: they render as
//! `spec.containers[0].name: Required value`, and [`FieldErrors::invalid_message`] builds the
//! message of the 422 `Invalid` status (`Pod "x" is invalid: [...]`).
//!
//! The patterns are matched by hand instead of with regular expressions: they are tiny, and the
//! crate stays free of a regex engine. The regex texts are still quoted in the messages because
//! Kubernetes quotes them.

use std::collections::BTreeMap;
use std::fmt;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::StatusCause;

/// Maximum length of a DNS-1123 label (`metadata.name` of most namespaced-name kinds).
pub const DNS1123_LABEL_MAX_LENGTH: usize = 63;
/// Maximum length of a DNS-1123 subdomain (most object names).
pub const DNS1123_SUBDOMAIN_MAX_LENGTH: usize = 253;
/// Maximum length of a DNS-1035 label (Service names).
pub const DNS1035_LABEL_MAX_LENGTH: usize = 63;
/// Maximum length of the name part of a qualified name (label and annotation keys).
pub const QUALIFIED_NAME_MAX_LENGTH: usize = 63;
/// Maximum length of a label value.
pub const LABEL_VALUE_MAX_LENGTH: usize = 63;
/// Maximum total size, in bytes, of all annotation keys and values of one object.
pub const TOTAL_ANNOTATION_SIZE_LIMIT_BYTES: usize = 256 * 1024;
/// Maximum length of an IANA service name (container port names).
pub const IANA_SVC_NAME_MAX_LENGTH: usize = 15;

const DNS1123_LABEL_FMT: &str = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";
const DNS1123_LABEL_ERR_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character";
const DNS1123_SUBDOMAIN_FMT: &str =
    "[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
const DNS1123_SUBDOMAIN_ERR_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character";
const DNS1035_LABEL_FMT: &str = "[a-z]([-a-z0-9]*[a-z0-9])?";
const DNS1035_LABEL_ERR_MSG: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character";
const QUALIFIED_NAME_FMT: &str = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
const QUALIFIED_NAME_ERR_MSG: &str = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const LABEL_VALUE_FMT: &str = "(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?";
const LABEL_VALUE_ERR_MSG: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";

/// `must be no more than N characters`.
pub fn max_len_error(length: usize) -> String {
    format!("must be no more than {length} characters")
}

/// `must be non-empty`.
pub fn empty_error() -> String {
    "must be non-empty".to_owned()
}

/// `must be between LO and HI, inclusive`.
pub fn inclusive_range_error(lo: i64, hi: i64) -> String {
    format!("must be between {lo} and {hi}, inclusive")
}

/// Kubernetes' `RegexError`: the message, examples and the regex used for validation.
///
/// The odd `',  or '` spacing between examples is Kubernetes' own and is kept on purpose.
pub fn regex_error(msg: &str, regex: &str, examples: &[&str]) -> String {
    if examples.is_empty() {
        return format!("{msg} (regex used for validation is '{regex}')");
    }
    let mut out = format!("{msg} (e.g. ");
    for (i, example) in examples.iter().enumerate() {
        if i > 0 {
            out.push_str(" or ");
        }
        out.push('\'');
        out.push_str(example);
        out.push_str("', ");
    }
    out.push_str("regex used for validation is '");
    out.push_str(regex);
    out.push_str("')");
    out
}

fn is_lower_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

/// `[a-z0-9]([-a-z0-9]*[a-z0-9])?`
fn matches_dns1123_label(value: &str) -> bool {
    let bytes = value.as_bytes();
    match (bytes.first(), bytes.last()) {
        (Some(&first), Some(&last)) => {
            is_lower_alnum(first)
                && is_lower_alnum(last)
                && bytes.iter().all(|&b| is_lower_alnum(b) || b == b'-')
        }
        _ => false,
    }
}

/// `[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*`
fn matches_dns1123_subdomain(value: &str) -> bool {
    value.split('.').all(matches_dns1123_label)
}

/// `[a-z]([-a-z0-9]*[a-z0-9])?`
fn matches_dns1035_label(value: &str) -> bool {
    value
        .as_bytes()
        .first()
        .is_some_and(|b| b.is_ascii_lowercase())
        && matches_dns1123_label(value)
}

/// `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`
fn matches_qualified_name(value: &str) -> bool {
    let bytes = value.as_bytes();
    match (bytes.first(), bytes.last()) {
        (Some(first), Some(last)) => {
            first.is_ascii_alphanumeric()
                && last.is_ascii_alphanumeric()
                && bytes
                    .iter()
                    .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        }
        _ => false,
    }
}

/// Checks a lowercase RFC 1123 label (at most 63 characters), e.g. a Namespace name.
pub fn is_dns1123_label(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > DNS1123_LABEL_MAX_LENGTH {
        errs.push(max_len_error(DNS1123_LABEL_MAX_LENGTH));
    }
    if !matches_dns1123_label(value) {
        if matches_dns1123_subdomain(value) {
            // A valid subdomain but not a valid label: the length was checked above, so the
            // only possible problem left is the dots.
            errs.push("must not contain dots".to_owned());
        } else {
            errs.push(regex_error(
                DNS1123_LABEL_ERR_MSG,
                DNS1123_LABEL_FMT,
                &["my-name", "123-abc"],
            ));
        }
    }
    errs
}

/// Checks a lowercase RFC 1123 subdomain (at most 253 characters), the rule for most names.
pub fn is_dns1123_subdomain(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > DNS1123_SUBDOMAIN_MAX_LENGTH {
        errs.push(max_len_error(DNS1123_SUBDOMAIN_MAX_LENGTH));
    }
    if !matches_dns1123_subdomain(value) {
        errs.push(regex_error(
            DNS1123_SUBDOMAIN_ERR_MSG,
            DNS1123_SUBDOMAIN_FMT,
            &["example.com"],
        ));
    }
    errs
}

/// Checks a DNS-1035 label (at most 63 characters, starts with a letter): Service names.
pub fn is_dns1035_label(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > DNS1035_LABEL_MAX_LENGTH {
        errs.push(max_len_error(DNS1035_LABEL_MAX_LENGTH));
    }
    if !matches_dns1035_label(value) {
        errs.push(regex_error(
            DNS1035_LABEL_ERR_MSG,
            DNS1035_LABEL_FMT,
            &["my-name", "abc-123"],
        ));
    }
    errs
}

/// Checks a qualified name: label keys, annotation keys, finalizers.
///
/// An optional DNS-1123 subdomain prefix and `/`, then a name of at most 63 characters.
pub fn is_qualified_name(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    let parts: Vec<&str> = value.split('/').collect();
    let name = match parts.as_slice() {
        [name] => *name,
        [prefix, name] => {
            if prefix.is_empty() {
                errs.push(format!("prefix part {}", empty_error()));
            } else {
                errs.extend(
                    is_dns1123_subdomain(prefix)
                        .into_iter()
                        .map(|msg| format!("prefix part {msg}")),
                );
            }
            *name
        }
        _ => {
            errs.push(format!(
                "a qualified name {} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
                regex_error(
                    QUALIFIED_NAME_ERR_MSG,
                    QUALIFIED_NAME_FMT,
                    &["MyName", "my.name", "123-abc"]
                )
            ));
            return errs;
        }
    };
    if name.is_empty() {
        errs.push(format!("name part {}", empty_error()));
    } else if name.len() > QUALIFIED_NAME_MAX_LENGTH {
        errs.push(format!(
            "name part {}",
            max_len_error(QUALIFIED_NAME_MAX_LENGTH)
        ));
    }
    if !matches_qualified_name(name) {
        errs.push(format!(
            "name part {}",
            regex_error(
                QUALIFIED_NAME_ERR_MSG,
                QUALIFIED_NAME_FMT,
                &["MyName", "my.name", "123-abc"]
            )
        ));
    }
    errs
}

/// Checks a label value: empty, or at most 63 characters of the qualified-name alphabet.
pub fn is_valid_label_value(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > LABEL_VALUE_MAX_LENGTH {
        errs.push(max_len_error(LABEL_VALUE_MAX_LENGTH));
    }
    if !value.is_empty() && !matches_qualified_name(value) {
        errs.push(regex_error(
            LABEL_VALUE_ERR_MSG,
            LABEL_VALUE_FMT,
            &["MyValue", "my_value", "12345"],
        ));
    }
    errs
}

const CONFIG_MAP_KEY_FMT: &str = "[-._a-zA-Z0-9]+";
const CONFIG_MAP_KEY_ERR_MSG: &str =
    "a valid config key must consist of alphanumeric characters, '-', '_' or '.'";

/// Checks a key of a ConfigMap's or Secret's data: at most 253 characters of `[-._a-zA-Z0-9]`,
/// and not `.`, `..` or `..`-prefixed (the keys become file names in volumes).
pub fn is_config_map_key(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > DNS1123_SUBDOMAIN_MAX_LENGTH {
        errs.push(max_len_error(DNS1123_SUBDOMAIN_MAX_LENGTH));
    }
    if value.is_empty()
        || !value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
    {
        errs.push(regex_error(
            CONFIG_MAP_KEY_ERR_MSG,
            CONFIG_MAP_KEY_FMT,
            &["key.name", "KEY_NAME", "key-name"],
        ));
    }
    if value == "." {
        errs.push("must not be '.'".to_owned());
    } else if value == ".." {
        errs.push("must not be '..'".to_owned());
    } else if value.starts_with("..") {
        errs.push("must not start with '..'".to_owned());
    }
    errs
}

/// Checks a port number: 1 to 65535.
pub fn is_valid_port_num(port: i64) -> Vec<String> {
    if (1..=65535).contains(&port) {
        Vec::new()
    } else {
        vec![inclusive_range_error(1, 65535)]
    }
}

/// Checks an IANA_SVC_NAME (RFC 6335), the syntax of container and service port names.
///
/// Like Kubernetes, only lower-case letters are accepted even though RFC 6335 is
/// case-insensitive.
pub fn is_valid_port_name(port: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if port.len() > IANA_SVC_NAME_MAX_LENGTH {
        errs.push(max_len_error(IANA_SVC_NAME_MAX_LENGTH));
    }
    if port.is_empty() || !port.bytes().all(|b| is_lower_alnum(b) || b == b'-') {
        errs.push(
            "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)".to_owned(),
        );
    }
    if !port.bytes().any(|b| b.is_ascii_lowercase()) {
        errs.push("must contain at least one letter (a-z)".to_owned());
    }
    if port.contains("--") {
        errs.push("must not contain consecutive hyphens".to_owned());
    }
    if port.starts_with('-') || port.ends_with('-') {
        errs.push("must not begin or end with a hyphen".to_owned());
    }
    errs
}

/// Checks that a name can be used as one segment of a REST path (every object name must).
pub fn is_valid_path_segment_name(name: &str) -> Vec<String> {
    for illegal in [".", ".."] {
        if name == illegal {
            return vec![format!("may not be '{illegal}'")];
        }
    }
    ["/", "%"]
        .into_iter()
        .filter(|illegal| name.contains(illegal))
        .map(|illegal| format!("may not contain '{illegal}'"))
        .collect()
}

/// Whether `name` is a name or a `generateName` prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NameKind {
    /// A complete `metadata.name`.
    Name,
    /// A `metadata.generateName` prefix: a random suffix is appended later, so a trailing `-`
    /// is fine.
    GenerateNamePrefix,
}

/// Kubernetes' `maskTrailingDash`: a prefix may end in `-` because a suffix follows it.
fn mask_trailing_dash(name: &str) -> String {
    match name.strip_suffix('-') {
        Some(rest) if !rest.is_empty() => {
            // Kubernetes replaces the last two bytes with "a". A non-ASCII character before the
            // dash fails validation either way, so it is kept to avoid cutting a character.
            let mut chars = rest.chars();
            match chars.next_back() {
                Some(c) if c.is_ascii() => format!("{}a", chars.as_str()),
                _ => format!("{rest}a"),
            }
        }
        _ => name.to_owned(),
    }
}

/// `NameIsDNSSubdomain`: the name rule of most kinds.
pub fn name_is_dns1123_subdomain(name: &str, kind: NameKind) -> Vec<String> {
    match kind {
        NameKind::Name => is_dns1123_subdomain(name),
        NameKind::GenerateNamePrefix => is_dns1123_subdomain(&mask_trailing_dash(name)),
    }
}

/// `NameIsDNSLabel`: the name rule of Namespaces and a few other kinds.
pub fn name_is_dns1123_label(name: &str, kind: NameKind) -> Vec<String> {
    match kind {
        NameKind::Name => is_dns1123_label(name),
        NameKind::GenerateNamePrefix => is_dns1123_label(&mask_trailing_dash(name)),
    }
}

/// `NameIsDNS1035Label`: the name rule of Services.
pub fn name_is_dns1035_label(name: &str, kind: NameKind) -> Vec<String> {
    match kind {
        NameKind::Name => is_dns1035_label(name),
        NameKind::GenerateNamePrefix => is_dns1035_label(&mask_trailing_dash(name)),
    }
}

/// `ValidateLabels`: every key a qualified name, every value a label value.
///
/// Like Kubernetes, errors carry the path of the whole map (`metadata.labels`), not of the key.
pub fn validate_labels(labels: &BTreeMap<String, String>, field: &str) -> FieldErrors {
    let mut errs = FieldErrors::new();
    for (key, value) in labels {
        for msg in is_qualified_name(key) {
            errs.push(FieldError::invalid(field, key.as_str(), msg));
        }
        for msg in is_valid_label_value(value) {
            errs.push(FieldError::invalid(field, value.as_str(), msg));
        }
    }
    errs
}

/// `ValidateAnnotations`: keys are qualified names (case-insensitively) and the total size of
/// keys and values is at most 256 KiB.
pub fn validate_annotations(annotations: &BTreeMap<String, String>, field: &str) -> FieldErrors {
    let mut errs = FieldErrors::new();
    let mut total = 0usize;
    for (key, value) in annotations {
        for msg in is_qualified_name(&key.to_lowercase()) {
            errs.push(FieldError::invalid(field, key.as_str(), msg));
        }
        total = total.saturating_add(key.len()).saturating_add(value.len());
    }
    if total > TOTAL_ANNOTATION_SIZE_LIMIT_BYTES {
        errs.push(FieldError::too_long(
            field,
            TOTAL_ANNOTATION_SIZE_LIMIT_BYTES,
        ));
    }
    errs
}

/// The kind of a [`FieldError`], as in `field.ErrorType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FieldErrorKind {
    /// `Not found`: a referenced object does not exist.
    NotFound,
    /// `Required value`.
    Required,
    /// `Duplicate value`.
    Duplicate,
    /// `Invalid value`.
    Invalid,
    /// `Unsupported value`: not one of an enumerated set.
    NotSupported,
    /// `Forbidden`.
    Forbidden,
    /// `Too long`.
    TooLong,
    /// `Too many`.
    TooMany,
    /// `Internal error`.
    Internal,
}

impl FieldErrorKind {
    /// The human-readable name Kubernetes prints (`Required value`, `Invalid value`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            FieldErrorKind::NotFound => "Not found",
            FieldErrorKind::Required => "Required value",
            FieldErrorKind::Duplicate => "Duplicate value",
            FieldErrorKind::Invalid => "Invalid value",
            FieldErrorKind::NotSupported => "Unsupported value",
            FieldErrorKind::Forbidden => "Forbidden",
            FieldErrorKind::TooLong => "Too long",
            FieldErrorKind::TooMany => "Too many",
            FieldErrorKind::Internal => "Internal error",
        }
    }

    /// The `reason` of the matching `StatusCause` (`FieldValueRequired`, ...).
    pub fn cause_reason(self) -> &'static str {
        match self {
            FieldErrorKind::NotFound => "FieldValueNotFound",
            FieldErrorKind::Required => "FieldValueRequired",
            FieldErrorKind::Duplicate => "FieldValueDuplicate",
            FieldErrorKind::Invalid => "FieldValueInvalid",
            FieldErrorKind::NotSupported => "FieldValueNotSupported",
            FieldErrorKind::Forbidden => "FieldValueForbidden",
            FieldErrorKind::TooLong => "FieldValueTooLong",
            FieldErrorKind::TooMany => "FieldValueTooMany",
            FieldErrorKind::Internal => "InternalError",
        }
    }

    /// Kinds whose message never shows the bad value.
    fn omits_value(self) -> bool {
        matches!(
            self,
            FieldErrorKind::Required
                | FieldErrorKind::Forbidden
                | FieldErrorKind::TooLong
                | FieldErrorKind::Internal
        )
    }
}

impl fmt::Display for FieldErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The offending value of a [`FieldError`], printed the way Kubernetes prints it: strings
/// quoted, numbers and booleans bare.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BadValue {
    /// A string, printed quoted (`"Foo"`).
    String(String),
    /// An integer, printed bare (`0`).
    Int(i64),
    /// A boolean, printed bare.
    Bool(bool),
    /// Anything else, printed exactly as given.
    Raw(String),
}

impl From<String> for BadValue {
    fn from(value: String) -> Self {
        BadValue::String(value)
    }
}

impl From<&str> for BadValue {
    fn from(value: &str) -> Self {
        BadValue::String(value.to_owned())
    }
}

impl From<&String> for BadValue {
    fn from(value: &String) -> Self {
        BadValue::String(value.clone())
    }
}

impl From<i64> for BadValue {
    fn from(value: i64) -> Self {
        BadValue::Int(value)
    }
}

impl From<i32> for BadValue {
    fn from(value: i32) -> Self {
        BadValue::Int(i64::from(value))
    }
}

impl From<u16> for BadValue {
    fn from(value: u16) -> Self {
        BadValue::Int(i64::from(value))
    }
}

impl From<bool> for BadValue {
    fn from(value: bool) -> Self {
        BadValue::Bool(value)
    }
}

impl fmt::Display for BadValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BadValue::String(s) => f.write_str(&go_quote(s)),
            BadValue::Int(i) => write!(f, "{i}"),
            BadValue::Bool(b) => write!(f, "{b}"),
            BadValue::Raw(s) => f.write_str(s),
        }
    }
}

/// Quotes like Go's `%q`, so messages match Kubernetes byte for byte for ordinary strings.
pub(crate) fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if c.is_control() => {
                if (c as u32) < 0x10000 {
                    out.push_str(&format!("\\u{:04x}", c as u32));
                } else {
                    out.push_str(&format!("\\U{:08x}", c as u32));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// One validation error of one field, as Kubernetes' `field.Error`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    /// What is wrong.
    pub kind: FieldErrorKind,
    /// The field path, e.g. `spec.containers[0].name` or `metadata.labels`.
    pub field: String,
    /// The offending value; `None` leaves it out of the message.
    pub value: Option<BadValue>,
    /// Details, e.g. the `is_dns1123_subdomain` message.
    pub detail: String,
}

impl FieldError {
    /// A field that must be set is missing.
    pub fn required(field: impl Into<String>, detail: impl Into<String>) -> Self {
        FieldError {
            kind: FieldErrorKind::Required,
            field: field.into(),
            value: None,
            detail: detail.into(),
        }
    }

    /// A field has a value that is not valid.
    pub fn invalid(
        field: impl Into<String>,
        value: impl Into<BadValue>,
        detail: impl Into<String>,
    ) -> Self {
        FieldError {
            kind: FieldErrorKind::Invalid,
            field: field.into(),
            value: Some(value.into()),
            detail: detail.into(),
        }
    }

    /// A field has a value outside an enumerated set; the detail lists the supported values
    /// (`supported values: "Always", "OnFailure", "Never"`).
    pub fn not_supported(
        field: impl Into<String>,
        value: impl Into<BadValue>,
        supported: &[&str],
    ) -> Self {
        let detail = if supported.is_empty() {
            String::new()
        } else {
            let quoted: Vec<String> = supported.iter().map(|v| go_quote(v)).collect();
            format!("supported values: {}", quoted.join(", "))
        };
        FieldError {
            kind: FieldErrorKind::NotSupported,
            field: field.into(),
            value: Some(value.into()),
            detail,
        }
    }

    /// A value appears twice where it must be unique.
    pub fn duplicate(field: impl Into<String>, value: impl Into<BadValue>) -> Self {
        FieldError {
            kind: FieldErrorKind::Duplicate,
            field: field.into(),
            value: Some(value.into()),
            detail: String::new(),
        }
    }

    /// A field may not be set (or changed) here.
    pub fn forbidden(field: impl Into<String>, detail: impl Into<String>) -> Self {
        FieldError {
            kind: FieldErrorKind::Forbidden,
            field: field.into(),
            value: None,
            detail: detail.into(),
        }
    }

    /// A value is longer than `max_bytes`.
    pub fn too_long(field: impl Into<String>, max_bytes: usize) -> Self {
        let unit = if max_bytes == 1 { "byte" } else { "bytes" };
        FieldError {
            kind: FieldErrorKind::TooLong,
            field: field.into(),
            value: None,
            detail: format!("may not be more than {max_bytes} {unit}"),
        }
    }

    /// The message without the field path (`Invalid value: "Foo": ...`): Kubernetes' `ErrorBody`,
    /// which is also the `message` of the `StatusCause`.
    pub fn body(&self) -> String {
        let mut out = self.kind.as_str().to_owned();
        if !self.kind.omits_value()
            && let Some(value) = &self.value
        {
            out.push_str(": ");
            out.push_str(&value.to_string());
        }
        if !self.detail.is_empty() {
            out.push_str(": ");
            out.push_str(&self.detail);
        }
        out
    }

    /// The `StatusCause` Kubernetes puts in `details.causes` of a 422 response.
    pub fn status_cause(&self) -> StatusCause {
        StatusCause {
            field: Some(self.field.clone()),
            message: Some(self.body()),
            reason: Some(self.kind.cause_reason().to_owned()),
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            f.write_str(&self.body())
        } else {
            write!(f, "{}: {}", self.field, self.body())
        }
    }
}

impl std::error::Error for FieldError {}

/// A list of [`FieldError`]s, as Kubernetes' `field.ErrorList`.
///
/// Its `Display` is Kubernetes' aggregate form: duplicates dropped, one error bare, several
/// joined with `, ` inside brackets.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldErrors(pub Vec<FieldError>);

impl FieldErrors {
    /// An empty list.
    pub fn new() -> Self {
        FieldErrors(Vec::new())
    }

    /// Appends one error.
    pub fn push(&mut self, err: FieldError) {
        self.0.push(err);
    }

    /// Appends all errors of `other`.
    pub fn append(&mut self, other: FieldErrors) {
        self.0.extend(other.0);
    }

    /// Whether there are no errors.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The number of errors.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Iterates over the errors.
    pub fn iter(&self) -> std::slice::Iter<'_, FieldError> {
        self.0.iter()
    }

    /// `Ok(())` when empty, the list as the error otherwise.
    pub fn into_result(self) -> Result<(), FieldErrors> {
        if self.is_empty() { Ok(()) } else { Err(self) }
    }

    /// The messages with duplicates removed, in first-seen order, as Kubernetes aggregates them.
    fn distinct_messages(&self) -> Vec<String> {
        let mut seen = std::collections::HashSet::new();
        self.0
            .iter()
            .map(ToString::to_string)
            .filter(|msg| seen.insert(msg.clone()))
            .collect()
    }

    /// The message of Kubernetes' 422 `Invalid` status: `Pod "x" is invalid: <errors>`.
    ///
    /// `qualified_kind` is the kind with its group, as [`qualified_kind`] builds it
    /// (`Pod`, `Deployment.apps`).
    pub fn invalid_message(&self, qualified_kind: &str, name: &str) -> String {
        let quoted = go_quote(name);
        if self.is_empty() {
            format!("{qualified_kind} {quoted} is invalid")
        } else {
            format!("{qualified_kind} {quoted} is invalid: {self}")
        }
    }

    /// The `details.causes` of the 422 `Invalid` status, one per error.
    pub fn status_causes(&self) -> Vec<StatusCause> {
        self.0.iter().map(FieldError::status_cause).collect()
    }
}

/// `Kind.group` as Kubernetes prints a `GroupKind`: just `Kind` for the core group.
pub fn qualified_kind(group: &str, kind: &str) -> String {
    if group.is_empty() {
        kind.to_owned()
    } else {
        format!("{kind}.{group}")
    }
}

impl fmt::Display for FieldErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let messages = self.distinct_messages();
        match messages.as_slice() {
            [] => Ok(()),
            [one] => f.write_str(one),
            many => write!(f, "[{}]", many.join(", ")),
        }
    }
}

impl std::error::Error for FieldErrors {}

impl From<FieldError> for FieldErrors {
    fn from(err: FieldError) -> Self {
        FieldErrors(vec![err])
    }
}

impl From<Vec<FieldError>> for FieldErrors {
    fn from(errs: Vec<FieldError>) -> Self {
        FieldErrors(errs)
    }
}

impl Extend<FieldError> for FieldErrors {
    fn extend<T: IntoIterator<Item = FieldError>>(&mut self, iter: T) {
        self.0.extend(iter);
    }
}

impl FromIterator<FieldError> for FieldErrors {
    fn from_iter<T: IntoIterator<Item = FieldError>>(iter: T) -> Self {
        FieldErrors(iter.into_iter().collect())
    }
}

impl IntoIterator for FieldErrors {
    type Item = FieldError;
    type IntoIter = std::vec::IntoIter<FieldError>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<'a> IntoIterator for &'a FieldErrors {
    type Item = &'a FieldError;
    type IntoIter = std::slice::Iter<'a, FieldError>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
    const LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
    const DNS1035_MSG: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";
    const NAME_PART_MSG: &str = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
    const LABEL_VALUE_MSG: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";

    #[test]
    fn dns1123_subdomain() {
        let long_ok = format!("{}.{}", "a".repeat(63), "b".repeat(63));
        for ok in [
            "a",
            "ab",
            "a-b",
            "0",
            "a.b",
            "example.com",
            "a--b.c-d",
            "1.2.3.4",
            long_ok.as_str(),
        ] {
            assert!(is_dns1123_subdomain(ok).is_empty(), "{ok:?}");
        }
        for bad in [
            "", "A", "a_b", "-a", "a-", ".a", "a.", "a..b", "a.-b", "ä", "a b", "Foo",
        ] {
            assert_eq!(is_dns1123_subdomain(bad), vec![SUBDOMAIN_MSG], "{bad:?}");
        }
        let too_long = "a".repeat(254);
        assert_eq!(
            is_dns1123_subdomain(&too_long),
            vec!["must be no more than 253 characters"]
        );
        assert!(is_dns1123_subdomain(&"a".repeat(253)).is_empty());
    }

    #[test]
    fn dns1123_label() {
        for ok in ["a", "a-b", "0a", "abc-123", "a".repeat(63).as_str()] {
            assert!(is_dns1123_label(ok).is_empty(), "{ok:?}");
        }
        assert_eq!(is_dns1123_label("a.b"), vec!["must not contain dots"]);
        for bad in ["", "A", "-a", "a-", "a_b"] {
            assert_eq!(is_dns1123_label(bad), vec![LABEL_MSG], "{bad:?}");
        }
        assert_eq!(
            is_dns1123_label(&"a".repeat(64)),
            vec!["must be no more than 63 characters"]
        );
    }

    #[test]
    fn dns1035_label() {
        for ok in ["a", "my-name", "abc-123", "a0"] {
            assert!(is_dns1035_label(ok).is_empty(), "{ok:?}");
        }
        for bad in ["", "0a", "1-svc", "-a", "a-", "A", "a.b"] {
            assert_eq!(is_dns1035_label(bad), vec![DNS1035_MSG], "{bad:?}");
        }
        assert_eq!(
            is_dns1035_label(&"a".repeat(64)),
            vec!["must be no more than 63 characters"]
        );
    }

    #[test]
    fn qualified_names() {
        for ok in [
            "simple",
            "now-with-dashes",
            "1-starts-with-num",
            "1234",
            "simple/simple",
            "now-with-dashes/simple",
            "now-with-dashes/now-with-dashes",
            "now.with.dots/simple",
            "now-with.dashes-and.dots/simple",
            "1-num.2-num/3-num",
            "1234/5678",
            "1.2.3.4/5678",
            "Uppercase_Is_OK_123",
            "example.com/Uppercase_Is_OK_123",
            "requests.storage-foo",
            &"a".repeat(63),
            &format!("{}/{}", "a".repeat(253), "b".repeat(63)),
        ] {
            assert!(is_qualified_name(ok).is_empty(), "{ok:?}");
        }
        assert_eq!(
            is_qualified_name("/simple"),
            vec!["prefix part must be non-empty"]
        );
        assert_eq!(
            is_qualified_name("Example.com/x"),
            vec![format!("prefix part {SUBDOMAIN_MSG}")]
        );
        assert_eq!(
            is_qualified_name("example.com/"),
            vec![
                "name part must be non-empty".to_owned(),
                NAME_PART_MSG.to_owned()
            ]
        );
        assert_eq!(
            is_qualified_name(""),
            vec![
                "name part must be non-empty".to_owned(),
                NAME_PART_MSG.to_owned()
            ]
        );
        for bad in [
            "nospecialchars%^=@",
            "cantendwithadash-",
            "-cantstartwithadash",
            "only/one/slash",
            "a b",
        ] {
            assert!(!is_qualified_name(bad).is_empty(), "{bad:?}");
        }
        assert_eq!(is_qualified_name("a b"), vec![NAME_PART_MSG]);
        assert_eq!(
            is_qualified_name("a/b/c"),
            vec![
                "a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
            ]
        );
        assert_eq!(
            is_qualified_name(&"a".repeat(64)),
            vec!["name part must be no more than 63 characters"]
        );
    }

    #[test]
    fn label_values() {
        for ok in [
            "",
            "simple",
            "now-with-dashes",
            "1-starts-with-num",
            "end-with-num-1",
            "1234",
            "a_b.c-d",
            &"a".repeat(63),
        ] {
            assert!(is_valid_label_value(ok).is_empty(), "{ok:?}");
        }
        for bad in [
            "nospecialchars%^=@",
            "Tama-nui-te-rā.Atua-o-Māui",
            "-starts",
            "ends-",
            "a b",
            "a/b",
        ] {
            assert_eq!(is_valid_label_value(bad), vec![LABEL_VALUE_MSG], "{bad:?}");
        }
        assert_eq!(
            is_valid_label_value(&"a".repeat(64)),
            vec!["must be no more than 63 characters"]
        );
    }

    #[test]
    fn ports() {
        assert!(is_valid_port_num(1).is_empty());
        assert!(is_valid_port_num(65535).is_empty());
        for bad in [0, -1, 65536, i64::MAX] {
            assert_eq!(
                is_valid_port_num(bad),
                vec!["must be between 1 and 65535, inclusive"]
            );
        }
        for ok in [
            "telnet",
            "re-mail-ck",
            "pop3",
            "a",
            "a-1",
            "1-a",
            "a-1-b-2-c",
            "1-a-2-b-3",
            "http",
        ] {
            assert!(is_valid_port_name(ok).is_empty(), "{ok:?}");
        }
        let cases: &[(&str, &[&str])] = &[
            (
                "",
                &[
                    "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)",
                    "must contain at least one letter (a-z)",
                ],
            ),
            (
                "longerthan15characters",
                &["must be no more than 15 characters"],
            ),
            ("12345", &["must contain at least one letter (a-z)"]),
            (
                "Upper",
                &["must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)"],
            ),
            ("a--b", &["must not contain consecutive hyphens"]),
            ("-begin", &["must not begin or end with a hyphen"]),
            ("end-", &["must not begin or end with a hyphen"]),
            (
                "a_b",
                &["must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)"],
            ),
        ];
        for (name, want) in cases {
            assert_eq!(is_valid_port_name(name), *want, "{name:?}");
        }
    }

    #[test]
    fn config_map_keys() {
        for ok in ["a", "key.name", "KEY_NAME", "key-name", ".dotfile", "a..b"] {
            assert!(is_config_map_key(ok).is_empty(), "{ok:?}");
        }
        let msg = "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')";
        assert_eq!(is_config_map_key("a b"), vec![msg]);
        assert_eq!(is_config_map_key(""), vec![msg]);
        assert_eq!(is_config_map_key("."), vec!["must not be '.'"]);
        assert_eq!(is_config_map_key(".."), vec!["must not be '..'"]);
        assert_eq!(is_config_map_key("..a"), vec!["must not start with '..'"]);
        assert_eq!(
            is_config_map_key(&"a".repeat(254)),
            vec!["must be no more than 253 characters"]
        );
    }

    #[test]
    fn path_segment_names() {
        assert!(is_valid_path_segment_name("foo").is_empty());
        assert_eq!(is_valid_path_segment_name(".."), vec!["may not be '..'"]);
        assert_eq!(is_valid_path_segment_name("."), vec!["may not be '.'"]);
        assert_eq!(
            is_valid_path_segment_name("a/b%c"),
            vec!["may not contain '/'", "may not contain '%'"]
        );
    }

    #[test]
    fn generate_name_prefixes() {
        assert!(name_is_dns1123_subdomain("web-", NameKind::GenerateNamePrefix).is_empty());
        assert!(!name_is_dns1123_subdomain("web-", NameKind::Name).is_empty());
        assert!(!name_is_dns1123_subdomain("-", NameKind::GenerateNamePrefix).is_empty());
        assert!(!name_is_dns1123_subdomain("é-", NameKind::GenerateNamePrefix).is_empty());
        assert!(name_is_dns1035_label("svc-", NameKind::GenerateNamePrefix).is_empty());
        assert!(name_is_dns1123_label("ns-", NameKind::GenerateNamePrefix).is_empty());
    }

    #[test]
    fn labels_and_annotations() {
        let labels = BTreeMap::from([
            ("app".to_owned(), "web".to_owned()),
            ("bad key".to_owned(), "ok".to_owned()),
            ("k".to_owned(), "bad value".to_owned()),
        ]);
        let errs = validate_labels(&labels, "metadata.labels");
        assert_eq!(
            errs.iter().map(ToString::to_string).collect::<Vec<_>>(),
            vec![
                format!("metadata.labels: Invalid value: \"bad key\": {NAME_PART_MSG}"),
                format!("metadata.labels: Invalid value: \"bad value\": {LABEL_VALUE_MSG}"),
            ]
        );

        let ok = BTreeMap::from([("Example.com/Key".to_owned(), "anything at all".to_owned())]);
        assert!(validate_annotations(&ok, "metadata.annotations").is_empty());
        let big = BTreeMap::from([(
            "k".to_owned(),
            "v".repeat(TOTAL_ANNOTATION_SIZE_LIMIT_BYTES),
        )]);
        assert_eq!(
            validate_annotations(&big, "metadata.annotations").to_string(),
            "metadata.annotations: Too long: may not be more than 262144 bytes"
        );
        let exact = BTreeMap::from([(
            "k".to_owned(),
            "v".repeat(TOTAL_ANNOTATION_SIZE_LIMIT_BYTES - 1),
        )]);
        assert!(validate_annotations(&exact, "metadata.annotations").is_empty());
    }

    #[test]
    fn field_error_formatting() {
        let cases = [
            (
                FieldError::required("spec.containers[0].name", ""),
                "spec.containers[0].name: Required value",
            ),
            (
                FieldError::required("metadata.name", "name or generateName is required"),
                "metadata.name: Required value: name or generateName is required",
            ),
            (
                FieldError::invalid("metadata.name", "Foo", SUBDOMAIN_MSG),
                &format!("metadata.name: Invalid value: \"Foo\": {SUBDOMAIN_MSG}"),
            ),
            (
                FieldError::invalid(
                    "spec.containers[0].ports[0].containerPort",
                    0i32,
                    "must be between 1 and 65535, inclusive",
                ),
                "spec.containers[0].ports[0].containerPort: Invalid value: 0: must be between 1 and 65535, inclusive",
            ),
            (
                FieldError::not_supported(
                    "spec.restartPolicy",
                    "X",
                    &["Always", "OnFailure", "Never"],
                ),
                "spec.restartPolicy: Unsupported value: \"X\": supported values: \"Always\", \"OnFailure\", \"Never\"",
            ),
            (
                FieldError::duplicate("spec.containers[1].name", "web"),
                "spec.containers[1].name: Duplicate value: \"web\"",
            ),
            (
                FieldError::forbidden(
                    "spec",
                    "pod updates may not change fields other than `spec.containers[*].image`",
                ),
                "spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`",
            ),
            (
                FieldError::too_long("metadata.annotations", 1),
                "metadata.annotations: Too long: may not be more than 1 byte",
            ),
            (
                FieldError {
                    kind: FieldErrorKind::Required,
                    field: "spec.x".into(),
                    value: Some("ignored".into()),
                    detail: String::new(),
                },
                "spec.x: Required value",
            ),
            (
                FieldError::invalid("metadata.name", "a\"b\n", "bad"),
                "metadata.name: Invalid value: \"a\\\"b\\n\": bad",
            ),
        ];
        for (err, want) in cases {
            assert_eq!(err.to_string(), want);
        }
    }

    #[test]
    fn invalid_status_message() {
        let one = FieldErrors::from(FieldError::required("spec.containers", ""));
        assert_eq!(
            one.invalid_message("Pod", "x"),
            "Pod \"x\" is invalid: spec.containers: Required value"
        );
        let mut two = one.clone();
        two.push(FieldError::invalid("metadata.name", "Foo", "bad"));
        // A duplicate message is dropped, as Kubernetes' aggregate does.
        two.push(FieldError::required("spec.containers", ""));
        assert_eq!(
            two.invalid_message(&qualified_kind("apps", "Deployment"), "x"),
            "Deployment.apps \"x\" is invalid: [spec.containers: Required value, metadata.name: Invalid value: \"Foo\": bad]"
        );
        assert_eq!(
            FieldErrors::new().invalid_message("Pod", "x"),
            "Pod \"x\" is invalid"
        );
        assert_eq!(qualified_kind("", "Pod"), "Pod");

        let causes = two.status_causes();
        assert_eq!(causes.len(), 3);
        assert_eq!(causes[1].field.as_deref(), Some("metadata.name"));
        assert_eq!(
            causes[1].message.as_deref(),
            Some("Invalid value: \"Foo\": bad")
        );
        assert_eq!(causes[1].reason.as_deref(), Some("FieldValueInvalid"));
        assert!(FieldErrors::new().into_result().is_ok());
        assert!(two.into_result().is_err());
    }
}
