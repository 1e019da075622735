//! The subset of kubectl's JSONPath templates scripts commonly use: `{.a.b}`, `[n]`, `[*]`,
//! `[a:b]`, `['key']`, `..name`, filters `[?(@.type=="Ready")]`, `{range …}{end}` and string
//! literals such as `{"\n"}`. Missing fields print nothing, as with `kubectl get -o jsonpath`.

use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
enum Node {
    Text(String),
    Path(Vec<Step>),
    Range(Vec<Step>, Vec<Node>),
}

#[derive(Debug, Clone, PartialEq)]
enum Step {
    Field(String),
    /// `..name`: every descendant field with that name.
    Recursive(String),
    Wildcard,
    Index(i64),
    Slice(Option<i64>, Option<i64>),
    Filter(Filter),
}

#[derive(Debug, Clone, PartialEq)]
struct Filter {
    path: Vec<Step>,
    /// `None`: the path only has to exist.
    cmp: Option<(Op, Value)>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

/// A parsed template.
#[derive(Debug, Clone)]
pub struct Template {
    nodes: Vec<Node>,
}

impl Template {
    pub fn parse(template: &str) -> anyhow::Result<Self> {
        let tokens = tokenize(template)?;
        let mut pos = 0;
        let nodes = build(&tokens, &mut pos, false)?;
        Ok(Self { nodes })
    }

    /// Renders the template against `root`.
    pub fn render(&self, root: &Value) -> String {
        let mut out = String::new();
        render_nodes(&self.nodes, root, &mut out);
        out
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Text(String),
    Expr(String),
}

fn tokenize(template: &str) -> anyhow::Result<Vec<Token>> {
    let mut tokens = Vec::new();
    let mut text = String::new();
    let mut chars = template.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '{' {
            text.push(c);
            continue;
        }
        if !text.is_empty() {
            tokens.push(Token::Text(std::mem::take(&mut text)));
        }
        let mut expr = String::new();
        let mut quote: Option<char> = None;
        let mut closed = false;
        while let Some(c) = chars.next() {
            match quote {
                Some(q) => {
                    expr.push(c);
                    if c == '\\' {
                        if let Some(n) = chars.next() {
                            expr.push(n);
                        }
                    } else if c == q {
                        quote = None;
                    }
                }
                None if c == '"' || c == '\'' => {
                    quote = Some(c);
                    expr.push(c);
                }
                None if c == '}' => {
                    closed = true;
                    break;
                }
                None => expr.push(c),
            }
        }
        if !closed {
            anyhow::bail!("error parsing jsonpath {template}: unclosed action");
        }
        tokens.push(Token::Expr(expr.trim().to_string()));
    }
    if !text.is_empty() {
        tokens.push(Token::Text(text));
    }
    Ok(tokens)
}

fn build(tokens: &[Token], pos: &mut usize, in_range: bool) -> anyhow::Result<Vec<Node>> {
    let mut nodes = Vec::new();
    while *pos < tokens.len() {
        let token = &tokens[*pos];
        *pos += 1;
        match token {
            Token::Text(t) => nodes.push(Node::Text(t.clone())),
            Token::Expr(e) if e == "end" => {
                if in_range {
                    return Ok(nodes);
                }
                anyhow::bail!("error parsing jsonpath: not in range, nothing to end");
            }
            Token::Expr(e) => {
                if let Some(rest) = e.strip_prefix("range ") {
                    let path = parse_path(rest.trim())?;
                    let body = build(tokens, pos, true)?;
                    nodes.push(Node::Range(path, body));
                } else if let Some(lit) = string_literal(e) {
                    nodes.push(Node::Text(lit));
                } else {
                    nodes.push(Node::Path(parse_path(e)?));
                }
            }
        }
    }
    if in_range {
        anyhow::bail!("error parsing jsonpath: unclosed range");
    }
    Ok(nodes)
}

/// `"\n"`, `'x'`: a literal with Go-style escapes.
fn string_literal(e: &str) -> Option<String> {
    let q = e.chars().next()?;
    if (q != '"' && q != '\'') || e.len() < 2 || !e.ends_with(q) {
        return None;
    }
    let inner = &e[1..e.len() - 1];
    let mut out = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    Some(out)
}

fn parse_path(expr: &str) -> anyhow::Result<Vec<Step>> {
    let chars: Vec<char> = expr.chars().collect();
    let mut i = 0;
    if chars.first().is_some_and(|c| *c == '$' || *c == '@') {
        i = 1;
    }
    let mut steps = Vec::new();
    let field = |chars: &[char], i: &mut usize| -> String {
        let mut name = String::new();
        while *i < chars.len() && chars[*i] != '.' && chars[*i] != '[' {
            if chars[*i] == '\\' && *i + 1 < chars.len() {
                *i += 1;
            }
            name.push(chars[*i]);
            *i += 1;
        }
        name
    };
    while i < chars.len() {
        match chars[i] {
            '.' if chars.get(i + 1) == Some(&'.') => {
                i += 2;
                let name = field(&chars, &mut i);
                if name.is_empty() {
                    anyhow::bail!("error parsing jsonpath {expr}: missing field after ..");
                }
                steps.push(Step::Recursive(name));
            }
            '.' => {
                i += 1;
                let name = field(&chars, &mut i);
                match name.as_str() {
                    "" => {}
                    "*" => steps.push(Step::Wildcard),
                    _ => steps.push(Step::Field(name)),
                }
            }
            '[' => {
                let close = find_bracket_end(&chars, i).ok_or_else(|| {
                    anyhow::anyhow!("error parsing jsonpath {expr}: unterminated [")
                })?;
                let inner: String = chars[i + 1..close].iter().collect();
                steps.push(parse_bracket(inner.trim(), expr)?);
                i = close + 1;
            }
            _ => {
                // A bare first field (`{metadata.name}`) is accepted as kubectl does.
                let name = field(&chars, &mut i);
                if name.is_empty() {
                    anyhow::bail!("error parsing jsonpath {expr}: unexpected {:?}", chars[i]);
                }
                steps.push(Step::Field(name));
            }
        }
    }
    Ok(steps)
}

fn find_bracket_end(chars: &[char], open: usize) -> Option<usize> {
    let mut depth = 0;
    let mut quote: Option<char> = None;
    for (j, &c) in chars.iter().enumerate().skip(open) {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None => match c {
                '\'' | '"' => quote = Some(c),
                '[' => depth += 1,
                ']' => {
                    depth -= 1;
                    if depth == 0 {
                        return Some(j);
                    }
                }
                _ => {}
            },
        }
    }
    None
}

fn parse_bracket(inner: &str, expr: &str) -> anyhow::Result<Step> {
    if inner == "*" {
        return Ok(Step::Wildcard);
    }
    if let Some(lit) = string_literal(inner) {
        return Ok(Step::Field(lit));
    }
    if let Some(filter) = inner.strip_prefix("?(").and_then(|f| f.strip_suffix(')')) {
        return Ok(Step::Filter(parse_filter(filter.trim(), expr)?));
    }
    if let Some((a, b)) = inner.split_once(':') {
        let num = |s: &str| -> anyhow::Result<Option<i64>> {
            let s = s.split(':').next().unwrap_or_default().trim();
            if s.is_empty() {
                Ok(None)
            } else {
                s.parse()
                    .map(Some)
                    .map_err(|_| anyhow::anyhow!("error parsing jsonpath {expr}: bad index {s:?}"))
            }
        };
        return Ok(Step::Slice(num(a)?, num(b)?));
    }
    inner
        .parse::<i64>()
        .map(Step::Index)
        .map_err(|_| anyhow::anyhow!("error parsing jsonpath {expr}: bad index {inner:?}"))
}

fn parse_filter(filter: &str, expr: &str) -> anyhow::Result<Filter> {
    for (token, op) in [
        ("==", Op::Eq),
        ("!=", Op::Ne),
        ("<=", Op::Le),
        (">=", Op::Ge),
        ("<", Op::Lt),
        (">", Op::Gt),
    ] {
        if let Some((lhs, rhs)) = filter.split_once(token) {
            let rhs = rhs.trim();
            let value = match string_literal(rhs) {
                Some(s) => Value::String(s),
                None => serde_json::from_str(rhs).map_err(|_| {
                    anyhow::anyhow!("error parsing jsonpath {expr}: bad literal {rhs:?}")
                })?,
            };
            return Ok(Filter {
                path: parse_path(lhs.trim())?,
                cmp: Some((op, value)),
            });
        }
    }
    Ok(Filter {
        path: parse_path(filter)?,
        cmp: None,
    })
}

fn eval<'a>(steps: &[Step], start: &'a Value) -> Vec<&'a Value> {
    let mut current = vec![start];
    for step in steps {
        let mut next = Vec::new();
        for v in current {
            apply_step(step, v, &mut next);
        }
        current = next;
    }
    current
}

fn apply_step<'a>(step: &Step, v: &'a Value, out: &mut Vec<&'a Value>) {
    match step {
        Step::Field(name) => {
            if let Some(x) = v.get(name.as_str()) {
                out.push(x);
            }
        }
        Step::Recursive(name) => collect_recursive(name, v, out),
        Step::Wildcard => match v {
            Value::Array(a) => out.extend(a.iter()),
            Value::Object(m) => out.extend(m.values()),
            _ => {}
        },
        Step::Index(i) => {
            if let Value::Array(a) = v {
                let idx = if *i < 0 { a.len() as i64 + i } else { *i };
                if let Some(x) = usize::try_from(idx).ok().and_then(|i| a.get(i)) {
                    out.push(x);
                }
            }
        }
        Step::Slice(from, to) => {
            if let Value::Array(a) = v {
                let len = a.len() as i64;
                let norm = |x: i64| if x < 0 { (len + x).max(0) } else { x.min(len) };
                let start = from.map(norm).unwrap_or(0);
                let end = to.map(norm).unwrap_or(len);
                if start < end {
                    out.extend(&a[start as usize..end as usize]);
                }
            }
        }
        Step::Filter(f) => {
            let items: Vec<&Value> = match v {
                Value::Array(a) => a.iter().collect(),
                other => vec![other],
            };
            for item in items {
                let found = eval(&f.path, item);
                let keep = match &f.cmp {
                    None => !found.is_empty(),
                    Some((op, lit)) => found.iter().any(|x| compare(x, *op, lit)),
                };
                if keep {
                    out.push(item);
                }
            }
        }
    }
}

fn collect_recursive<'a>(name: &str, v: &'a Value, out: &mut Vec<&'a Value>) {
    match v {
        Value::Object(m) => {
            if let Some(x) = m.get(name) {
                out.push(x);
            }
            for child in m.values() {
                collect_recursive(name, child, out);
            }
        }
        Value::Array(a) => {
            for child in a {
                collect_recursive(name, child, out);
            }
        }
        _ => {}
    }
}

fn compare(x: &Value, op: Op, lit: &Value) -> bool {
    if let (Some(a), Some(b)) = (x.as_f64(), lit.as_f64()) {
        return match op {
            Op::Eq => a == b,
            Op::Ne => a != b,
            Op::Lt => a < b,
            Op::Le => a <= b,
            Op::Gt => a > b,
            Op::Ge => a >= b,
        };
    }
    let a = text(x);
    let b = text(lit);
    match op {
        Op::Eq => a == b,
        Op::Ne => a != b,
        Op::Lt => a < b,
        Op::Le => a <= b,
        Op::Gt => a > b,
        Op::Ge => a >= b,
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn render_nodes(nodes: &[Node], cur: &Value, out: &mut String) {
    for node in nodes {
        match node {
            Node::Text(t) => out.push_str(t),
            Node::Path(steps) => {
                let values: Vec<String> = eval(steps, cur).into_iter().map(text).collect();
                out.push_str(&values.join(" "));
            }
            Node::Range(steps, body) => {
                for v in eval(steps, cur) {
                    match v {
                        Value::Array(items) => {
                            for item in items {
                                render_nodes(body, item, out);
                            }
                        }
                        other => render_nodes(body, other, out),
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn list() -> Value {
        json!({"kind": "List", "items": [
            {"metadata": {"name": "a", "labels": {"app.kubernetes.io/name": "x"}},
             "status": {"conditions": [{"type": "Ready", "status": "True"}, {"type": "Other", "status": "False"}],
                        "replicas": 2}},
            {"metadata": {"name": "b"}, "status": {"conditions": [{"type": "Ready", "status": "False"}], "replicas": 0}},
        ]})
    }

    fn render(t: &str, v: &Value) -> String {
        Template::parse(t).expect("parse").render(v)
    }

    #[test]
    fn fields_wildcards_and_indexes() {
        let l = list();
        assert_eq!(render("{.items[*].metadata.name}", &l), "a b");
        assert_eq!(render("{.items[0].metadata.name}", &l), "a");
        assert_eq!(render("{.items[-1].metadata.name}", &l), "b");
        assert_eq!(render("{.items[0:1].metadata.name}", &l), "a");
        assert_eq!(render("{.kind}", &l), "List");
        assert_eq!(render("{.missing}", &l), "");
        assert_eq!(
            render("{.items[0].metadata.labels.app\\.kubernetes\\.io/name}", &l),
            "x"
        );
        assert_eq!(
            render("{.items[0].metadata.labels['app.kubernetes.io/name']}", &l),
            "x"
        );
        assert_eq!(render("{..name}", &l), "a b");
        assert_eq!(render("{.items[0].status.replicas}", &l), "2");
    }

    #[test]
    fn filters() {
        let l = list();
        assert_eq!(
            render(
                "{.items[0].status.conditions[?(@.type==\"Ready\")].status}",
                &l
            ),
            "True"
        );
        assert_eq!(
            render("{.items[?(@.status.replicas>1)].metadata.name}", &l),
            "a"
        );
        assert_eq!(
            render("{.items[?(@.status.replicas)].metadata.name}", &l),
            "a b"
        );
    }

    #[test]
    fn ranges_and_literals() {
        let l = list();
        assert_eq!(
            render(
                "{range .items[*]}{.metadata.name}{\"\\t\"}{.status.replicas}{\"\\n\"}{end}",
                &l
            ),
            "a\t2\nb\t0\n"
        );
        assert_eq!(render("name: {.items[1].metadata.name}!", &l), "name: b!");
    }

    #[test]
    fn parse_errors() {
        assert!(Template::parse("{.a").is_err());
        assert!(Template::parse("{range .items[*]}{.a}").is_err());
        assert!(Template::parse("{end}").is_err());
        assert!(Template::parse("{.items[x]}").is_err());
    }
}
