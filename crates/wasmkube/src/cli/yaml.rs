//! YAML output in the style kubectl prints (go-yaml v2 through sigs.k8s.io/yaml): block style,
//! two-space indentation, sequences not indented under their key, multi-line strings as
//! literal blocks, and strings quoted whenever a YAML 1.1 reader would take them for something
//! else. The last point is why this is not serde_yaml: it quotes for YAML 1.2 only, so
//! timestamps, `on`/`off`/`yes`/`no` and `0755` come out bare and PyYAML (YAML 1.1, what most
//! scripts use) reads them back as dates, booleans and octal numbers.

use std::fmt::Write as _;

use serde_json::{Map, Value};

/// One YAML document for `v`, ending with a newline.
pub fn to_string(v: &Value) -> String {
    let mut out = String::new();
    match v {
        Value::Object(m) if !m.is_empty() => write_map(&mut out, m, 0, false),
        Value::Array(a) if !a.is_empty() => write_seq(&mut out, a, 0, false),
        other => {
            out.push_str(&scalar(other, 0));
            out.push('\n');
        }
    }
    out
}

fn pad(out: &mut String, indent: usize) {
    out.extend(std::iter::repeat_n(' ', indent));
}

/// A map at `indent`; with `inline_first`, the first key continues the current line (after
/// `- `).
fn write_map(out: &mut String, m: &Map<String, Value>, indent: usize, inline_first: bool) {
    for (i, (k, v)) in m.iter().enumerate() {
        if i > 0 || !inline_first {
            pad(out, indent);
        }
        out.push_str(&string(k, indent, false));
        out.push(':');
        write_value(out, v, indent);
    }
}

/// What follows `key:`.
fn write_value(out: &mut String, v: &Value, key_indent: usize) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            out.push('\n');
            write_map(out, m, key_indent + 2, false);
        }
        Value::Array(a) if !a.is_empty() => {
            out.push('\n');
            write_seq(out, a, key_indent, false);
        }
        other => {
            out.push(' ');
            out.push_str(&scalar(other, key_indent));
            out.push('\n');
        }
    }
}

fn write_seq(out: &mut String, a: &[Value], indent: usize, inline_first: bool) {
    for (i, item) in a.iter().enumerate() {
        if i > 0 || !inline_first {
            pad(out, indent);
        }
        out.push_str("- ");
        match item {
            Value::Object(m) if !m.is_empty() => write_map(out, m, indent + 2, true),
            Value::Array(inner) if !inner.is_empty() => write_seq(out, inner, indent + 2, true),
            other => {
                out.push_str(&scalar(other, indent));
                out.push('\n');
            }
        }
    }
}

/// A scalar (or empty collection) written after `key: ` or `- ` at `indent`.
fn scalar(v: &Value, indent: usize) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => match n.as_f64() {
            Some(f) if n.is_f64() && f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", f as i64),
            _ => n.to_string(),
        },
        Value::String(s) => string(s, indent, true),
        Value::Array(_) => "[]".into(),
        Value::Object(_) => "{}".into(),
    }
}

/// A string in the style go-yaml picks: literal block for multi-line values, plain when that
/// reads back as the same string, otherwise single or double quotes.
fn string(s: &str, indent: usize, block_allowed: bool) -> String {
    if s.contains('\n') {
        if block_allowed && literal_allowed(s) {
            return literal(s, indent);
        }
        return double_quoted(s);
    }
    if resolves_to_non_string(s) {
        return double_quoted(s);
    }
    if plain_allowed(s) {
        return s.to_string();
    }
    if s.chars().any(is_special) {
        return double_quoted(s);
    }
    format!("'{}'", s.replace('\'', "''"))
}

fn is_special(c: char) -> bool {
    (c.is_control() && c != '\n') || c == '\u{feff}'
}

fn literal_allowed(s: &str) -> bool {
    !s.starts_with([' ', '\t', '\n'])
        && !s.chars().any(|c| is_special(c) && c != '\t')
        && !s.split('\n').any(|l| l.ends_with([' ', '\t']))
}

/// `|` (one trailing newline kept), `|-` (none) or `|+` (several), then the lines indented.
fn literal(s: &str, indent: usize) -> String {
    let chomp = if s.ends_with("\n\n") {
        "+"
    } else if s.ends_with('\n') {
        ""
    } else {
        "-"
    };
    let body = s.strip_suffix('\n').unwrap_or(s);
    let mut out = format!("|{chomp}");
    for line in body.split('\n') {
        out.push('\n');
        if !line.is_empty() {
            pad(&mut out, indent + 2);
            out.push_str(line);
        }
    }
    out
}

fn double_quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\0' => out.push_str("\\0"),
            c if is_special(c) => {
                let code = c as u32;
                if code <= 0xff {
                    let _ = write!(out, "\\x{code:02X}");
                } else {
                    let _ = write!(out, "\\u{code:04X}");
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// libyaml's test for a plain scalar in block context.
fn plain_allowed(s: &str) -> bool {
    let Some(first) = s.chars().next() else {
        return false;
    };
    if s.starts_with("---") || s.starts_with("...") {
        return false;
    }
    if "#,[]{}&*!|>'\"%@`".contains(first) {
        return false;
    }
    let second = s.chars().nth(1);
    if "-?:".contains(first) && second.is_none_or(|c| c == ' ' || c == '\t') {
        return false;
    }
    if s.starts_with([' ', '\t']) || s.ends_with([' ', '\t']) || s.ends_with(':') {
        return false;
    }
    if s.contains(": ") || s.contains(":\t") || s.contains(" #") || s.contains("\t#") {
        return false;
    }
    !s.chars().any(|c| is_special(c) || c == '\t')
}

/// Whether a YAML 1.1 reader (go-yaml v2, PyYAML) would resolve the plain scalar to a non-string:
/// null, booleans (`yes`, `on` …), numbers (including `0x`, octal, `1_000`, `1e3`, `.inf`),
/// sexagesimal numbers (`1:20`) and timestamps. Erring towards quoting only costs two quotes.
fn resolves_to_non_string(s: &str) -> bool {
    const WORDS: &[&str] = &[
        "", "~", "null", "Null", "NULL", "y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO",
        "true", "True", "TRUE", "false", "False", "FALSE", "on", "On", "ON", "off", "Off", "OFF",
        ".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", "-.inf", "-.Inf", "-.INF", ".nan",
        ".NaN", ".NAN", "<<", "=",
    ];
    if WORDS.contains(&s) {
        return true;
    }
    let unsigned = s.strip_prefix(['+', '-']).unwrap_or(s);
    let digits_with = |body: &str, ok: &dyn Fn(char) -> bool| {
        !body.is_empty() && body.chars().all(|c| ok(c) || c == '_') && body.chars().any(ok)
    };
    // Integers in any base Go's ParseInt(_, 0, 64) accepts, underscores removed as go-yaml does.
    let lower = unsigned.to_ascii_lowercase();
    if let Some(hex) = lower.strip_prefix("0x")
        && digits_with(hex, &|c| c.is_ascii_hexdigit())
    {
        return true;
    }
    if let Some(oct) = lower.strip_prefix("0o")
        && digits_with(oct, &|c| ('0'..='7').contains(&c))
    {
        return true;
    }
    if let Some(bin) = lower.strip_prefix("0b")
        && digits_with(bin, &|c| c == '0' || c == '1')
    {
        return true;
    }
    if digits_with(unsigned, &|c| c.is_ascii_digit()) {
        return true;
    }
    if is_float(unsigned) || is_base60(unsigned) || is_timestamp(s) {
        return true;
    }
    false
}

/// `(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?`, underscores allowed in the digits.
fn is_float(s: &str) -> bool {
    let (mantissa, exponent) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let digits = |t: &str| !t.is_empty() && t.chars().all(|c| c.is_ascii_digit() || c == '_');
    let mantissa_ok = match mantissa.split_once('.') {
        Some(("", frac)) => digits(frac),
        Some((int, frac)) => digits(int) && (frac.is_empty() || digits(frac)),
        None => digits(mantissa),
    };
    let exponent_ok = exponent.is_none_or(|e| digits(e.strip_prefix(['+', '-']).unwrap_or(e)));
    mantissa_ok && exponent_ok && (mantissa.contains('.') || exponent.is_some())
}

/// YAML 1.1 sexagesimal: `190:20:30`, `1:20.5`.
fn is_base60(s: &str) -> bool {
    let mut parts = s.split(':');
    let Some(head) = parts.next() else {
        return false;
    };
    if head.is_empty()
        || !head.starts_with(|c: char| c.is_ascii_digit())
        || !head.chars().all(|c| c.is_ascii_digit() || c == '_')
    {
        return false;
    }
    let rest: Vec<&str> = parts.collect();
    if rest.is_empty() {
        return false;
    }
    rest.iter().enumerate().all(|(i, p)| {
        let (whole, frac) = match p.split_once('.') {
            Some((w, f)) if i + 1 == rest.len() => (w, Some(f)),
            Some(_) => return false,
            None => (*p, None),
        };
        let ok_whole = !whole.is_empty()
            && whole.len() <= 2
            && whole.chars().all(|c| c.is_ascii_digit())
            && (whole.len() == 1 || whole.starts_with(['0', '1', '2', '3', '4', '5']));
        ok_whole && frac.is_none_or(|f| f.chars().all(|c| c.is_ascii_digit() || c == '_'))
    })
}

/// `YYYY-M-D`, optionally followed by a time (`T`, `t` or space).
fn is_timestamp(s: &str) -> bool {
    let date_end = s.find(['T', 't', ' ']).unwrap_or(s.len());
    let date = &s[..date_end];
    let parts: Vec<&str> = date.split('-').collect();
    parts.len() == 3
        && parts[0].len() == 4
        && (1..=2).contains(&parts[1].len())
        && (1..=2).contains(&parts[2].len())
        && parts.iter().all(|p| p.chars().all(|c| c.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn kubectl_layout() {
        let v = json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "p", "labels": {}, "annotations": {"a": "x"}},
            "spec": {"containers": [{"name": "c", "args": ["-c", "echo hi"], "ports": [{"containerPort": 80}]}],
                     "volumes": [], "nested": [[1, 2], []]},
            "status": null,
        });
        assert_eq!(
            to_string(&v),
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  labels: {}\n  annotations:\n    a: x\nspec:\n  containers:\n  - name: c\n    args:\n    - -c\n    - echo hi\n    ports:\n    - containerPort: 80\n  volumes: []\n  nested:\n  - - 1\n    - 2\n  - []\nstatus: null\n"
        );
    }

    #[test]
    fn yaml11_lookalikes_are_double_quoted() {
        for s in [
            "",
            "9",
            "0755",
            "1_000",
            "0x1F",
            "1.5",
            "1e3",
            ".inf",
            "yes",
            "on",
            "Off",
            "null",
            "~",
            "1:20",
            "2026-11-22T03:04:19Z",
            "2026-11-22",
        ] {
            assert_eq!(string(s, 0, true), format!("\"{s}\""), "{s:?}");
        }
        for s in [
            "v1",
            "hello-1",
            "25%",
            "IfNotPresent",
            "app=hello",
            "a:b",
            "1.2.3",
            "10.0.0.1",
            "ABC",
            "é",
        ] {
            assert_eq!(string(s, 0, true), s, "{s:?}");
        }
    }

    #[test]
    fn indicators_are_single_quoted() {
        assert_eq!(string("*", 0, true), "'*'");
        assert_eq!(string("- a", 0, true), "'- a'");
        assert_eq!(string("a: b", 0, true), "'a: b'");
        assert_eq!(string("it's", 0, true), "it's");
        assert_eq!(string("it's #1", 0, true), "'it''s #1'");
        assert_eq!(string("x #y", 0, true), "'x #y'");
        assert_eq!(string(" lead", 0, true), "' lead'");
        assert_eq!(string("{\"a\":1}", 0, true), "'{\"a\":1}'");
        assert_eq!(string("tab\there", 0, true), "\"tab\\there\"");
    }

    #[test]
    fn multi_line_strings_are_literal_blocks() {
        let v = json!({"data": {"clip": "a\nb\n", "strip": "a\nb", "keep": "a\n\n", "gap": "a\n\nb\n"},
                       "list": ["x\ny\n"]});
        assert_eq!(
            to_string(&v),
            "data:\n  clip: |\n    a\n    b\n  strip: |-\n    a\n    b\n  keep: |+\n    a\n\n  gap: |\n    a\n\n    b\nlist:\n- |\n  x\n  y\n"
        );
        assert_eq!(string(" lead\nx", 0, true), "\" lead\\nx\"");
        assert_eq!(string("trailing \nx", 0, true), "\"trailing \\nx\"");
    }

    #[test]
    fn numbers_and_scalars() {
        assert_eq!(
            to_string(&json!({"a": 1, "b": 2.5, "c": 3.0, "d": true, "e": -4})),
            "a: 1\nb: 2.5\nc: 3\nd: true\ne: -4\n"
        );
        assert_eq!(to_string(&json!("x")), "x\n");
        assert_eq!(to_string(&json!({"80": "http"})), "\"80\": http\n");
    }

    #[test]
    fn output_reads_back_identically() {
        let v = json!({"s": ["9", "yes", "", "a: b", "multi\nline\n", "x'y", "tab\t", "2026-01-02", "*", "-", "?x"],
                       "m": {"k": {"deep": [{"a": [1, {"b": null}]}]}}});
        let text = to_string(&v);
        let back: Value = serde_yaml_ng::from_str(&text).expect("valid yaml");
        assert_eq!(back, v, "{text}");
    }
}
