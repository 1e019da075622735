//! Label and field selectors, as `k8s.io/apimachinery/pkg/labels` and `.../fields` define them.
//!
//! A [`LabelSelector`] comes from the string form used in `?labelSelector=` and `kubectl -l`
//! (`app=web,tier in (a,b),!canary`) or from the `metav1.LabelSelector` of a workload spec
//! (`matchLabels` + `matchExpressions`). Both are validated like Kubernetes validates them, and
//! both print back in the canonical string form (requirements sorted by key, values sorted).
//!
//! A [`FieldSelector`] is the `?fieldSelector=` form (`metadata.name=x,status.phase!=Running`).
//! Which field names exist depends on the resource, so matching takes a lookup function and
//! [`FieldSelector::check_supported`] lets the caller reject unknown fields with Kubernetes'
//! message.

use std::collections::BTreeMap;
use std::fmt;

use k8s_openapi::apimachinery::pkg::apis::meta::v1 as metav1;

use crate::validation::{go_quote, is_qualified_name, is_valid_label_value};

/// Errors from parsing or building selectors.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum SelectorError {
    /// The string form of a label selector does not parse or validate.
    #[error("invalid label selector {}: {reason}", go_quote(.selector))]
    Label {
        /// The whole selector as given.
        selector: String,
        /// What is wrong, worded as Kubernetes words it.
        reason: String,
    },
    /// A requirement built from `matchLabels` / `matchExpressions` or by hand is invalid.
    #[error("invalid label selector requirement: {reason}")]
    Requirement {
        /// What is wrong.
        reason: String,
    },
    /// A `matchExpressions` operator other than In, NotIn, Exists and DoesNotExist.
    #[error("{} is not a valid label selector operator", go_quote(.operator))]
    UnknownOperator {
        /// The operator as given.
        operator: String,
    },
    /// The string form of a field selector does not parse.
    #[error("invalid field selector {}: {reason}", go_quote(.selector))]
    Field {
        /// The whole selector as given.
        selector: String,
        /// What is wrong.
        reason: String,
    },
    /// A field selector names a field the resource does not support.
    #[error("field label not supported: {field}")]
    UnsupportedField {
        /// The field name.
        field: String,
    },
}

/// The operator of a label [`Requirement`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Operator {
    /// `key=value`.
    Equals,
    /// `key==value` (same meaning as `=`; kept so the selector prints back as written).
    DoubleEquals,
    /// `key!=value`: matches when the label is missing too.
    NotEquals,
    /// `key in (a,b)`.
    In,
    /// `key notin (a,b)`: matches when the label is missing too.
    NotIn,
    /// `key`.
    Exists,
    /// `!key`.
    DoesNotExist,
    /// `key>5`: the label value is an integer greater than the given one (node affinity `Gt`).
    GreaterThan,
    /// `key<5`: the label value is an integer less than the given one (node affinity `Lt`).
    LessThan,
}

/// One requirement of a label selector: a key, an operator and values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Requirement {
    key: String,
    operator: Operator,
    values: Vec<String>,
}

impl Requirement {
    /// Builds a requirement, validating it like Kubernetes' `labels.NewRequirement`: the key is a
    /// qualified name, each value a label value, `In`/`NotIn` have at least one value, the
    /// equality operators exactly one, `Exists`/`DoesNotExist` none, and `Gt`/`Lt` one integer.
    ///
    /// Values are sorted and deduplicated: they are a set.
    pub fn new(
        key: impl Into<String>,
        operator: Operator,
        values: impl IntoIterator<Item = String>,
    ) -> Result<Self, SelectorError> {
        let key = key.into();
        let mut values: Vec<String> = values.into_iter().collect();
        values.sort();
        values.dedup();
        let problems = requirement_problems(&key, operator, &values);
        if problems.is_empty() {
            Ok(Requirement {
                key,
                operator,
                values,
            })
        } else {
            Err(SelectorError::Requirement {
                reason: problems.join("; "),
            })
        }
    }

    /// The label key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The operator.
    pub fn operator(&self) -> Operator {
        self.operator
    }

    /// The values, sorted.
    pub fn values(&self) -> &[String] {
        &self.values
    }

    /// Whether a set of labels satisfies this requirement.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let value = labels.get(&self.key);
        let has_value = |v: &String| self.values.binary_search(v).is_ok();
        match self.operator {
            Operator::Equals | Operator::DoubleEquals | Operator::In => {
                value.is_some_and(has_value)
            }
            Operator::NotEquals | Operator::NotIn => !value.is_some_and(has_value),
            Operator::Exists => value.is_some(),
            Operator::DoesNotExist => value.is_none(),
            Operator::GreaterThan | Operator::LessThan => {
                let (Some(actual), [wanted]) = (value, self.values.as_slice()) else {
                    return false;
                };
                match (actual.parse::<i64>(), wanted.parse::<i64>()) {
                    (Ok(actual), Ok(wanted)) => {
                        if self.operator == Operator::GreaterThan {
                            actual > wanted
                        } else {
                            actual < wanted
                        }
                    }
                    // A label that is not an integer never satisfies Gt/Lt, as in Kubernetes.
                    _ => false,
                }
            }
        }
    }
}

/// Everything wrong with a requirement, in Kubernetes' words.
fn requirement_problems(key: &str, operator: Operator, values: &[String]) -> Vec<String> {
    let mut problems = Vec::new();
    let key_errs = is_qualified_name(key);
    if !key_errs.is_empty() {
        problems.push(format!(
            "key: Invalid value: {}: {}",
            go_quote(key),
            key_errs.join("; ")
        ));
    }
    match operator {
        Operator::In | Operator::NotIn if values.is_empty() => {
            problems.push("values: for 'in', 'notin' operators, values set can't be empty".into());
        }
        Operator::Equals | Operator::DoubleEquals | Operator::NotEquals if values.len() != 1 => {
            problems.push("values: exact-match compatibility requires one single value".into());
        }
        Operator::Exists | Operator::DoesNotExist if !values.is_empty() => {
            problems.push("values: values set must be empty for exists and does not exist".into());
        }
        Operator::GreaterThan | Operator::LessThan => {
            if values.len() != 1 {
                problems
                    .push("values: for 'Gt', 'Lt' operators, exactly one value is required".into());
            }
            for (i, value) in values.iter().enumerate() {
                if value.parse::<i64>().is_err() {
                    problems.push(format!(
                        "values[{i}]: Invalid value: {}: for 'Gt', 'Lt' operators, the value must be an integer",
                        go_quote(value)
                    ));
                }
            }
        }
        _ => {}
    }
    for (i, value) in values.iter().enumerate() {
        let errs = is_valid_label_value(value);
        if !errs.is_empty() {
            problems.push(format!(
                "values[{i}][{key}]: Invalid value: {}: {}",
                go_quote(value),
                errs.join("; ")
            ));
        }
    }
    problems
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let first = self.values.first().map(String::as_str).unwrap_or("");
        match self.operator {
            Operator::Exists => write!(f, "{}", self.key),
            Operator::DoesNotExist => write!(f, "!{}", self.key),
            Operator::Equals => write!(f, "{}={first}", self.key),
            Operator::DoubleEquals => write!(f, "{}=={first}", self.key),
            Operator::NotEquals => write!(f, "{}!={first}", self.key),
            Operator::GreaterThan => write!(f, "{}>{first}", self.key),
            Operator::LessThan => write!(f, "{}<{first}", self.key),
            Operator::In => write!(f, "{} in ({})", self.key, self.values.join(",")),
            Operator::NotIn => write!(f, "{} notin ({})", self.key, self.values.join(",")),
        }
    }
}

/// What a label selector selects.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Selects {
    /// Objects satisfying all requirements (none: everything).
    All(Vec<Requirement>),
    /// Nothing at all: what a missing (`null`) `metav1.LabelSelector` means.
    Nothing,
}

/// A label selector: requirements that must all hold.
///
/// The empty selector matches everything; [`LabelSelector::nothing`] (a `null` selector in a
/// spec) matches nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LabelSelector {
    selects: Selects,
}

impl Default for LabelSelector {
    fn default() -> Self {
        LabelSelector::everything()
    }
}

impl LabelSelector {
    /// The selector that matches every object (the empty string).
    pub fn everything() -> Self {
        LabelSelector {
            selects: Selects::All(Vec::new()),
        }
    }

    /// The selector that matches no object, as Kubernetes reads a missing selector.
    pub fn nothing() -> Self {
        LabelSelector {
            selects: Selects::Nothing,
        }
    }

    /// A selector from requirements, sorted by key as Kubernetes keeps them.
    pub fn from_requirements(mut requirements: Vec<Requirement>) -> Self {
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        LabelSelector {
            selects: Selects::All(requirements),
        }
    }

    /// Parses the string form (`a=b,c!=d,e in (f,g),h notin (i),j,!k`).
    ///
    /// Whitespace between tokens is ignored; a value after `=`, `==` or `!=` may be empty.
    pub fn parse(selector: &str) -> Result<Self, SelectorError> {
        let tokens = lex(selector).map_err(|reason| SelectorError::Label {
            selector: selector.to_owned(),
            reason,
        })?;
        let requirements =
            Parser { tokens, pos: 0 }
                .parse()
                .map_err(|reason| SelectorError::Label {
                    selector: selector.to_owned(),
                    reason,
                })?;
        Ok(LabelSelector::from_requirements(requirements))
    }

    /// Converts an optional `metav1.LabelSelector` the way Kubernetes' `LabelSelectorAsSelector`
    /// does: `None` selects nothing, an empty selector everything.
    pub fn from_optional(selector: Option<&metav1::LabelSelector>) -> Result<Self, SelectorError> {
        match selector {
            None => Ok(LabelSelector::nothing()),
            Some(selector) => LabelSelector::try_from(selector),
        }
    }

    /// The requirements (empty for both "everything" and "nothing").
    pub fn requirements(&self) -> &[Requirement] {
        match &self.selects {
            Selects::All(requirements) => requirements,
            Selects::Nothing => &[],
        }
    }

    /// Whether this selector matches every object.
    pub fn is_everything(&self) -> bool {
        matches!(&self.selects, Selects::All(r) if r.is_empty())
    }

    /// Whether this selector matches no object at all.
    pub fn is_nothing(&self) -> bool {
        self.selects == Selects::Nothing
    }

    /// Whether a set of labels satisfies every requirement.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        match &self.selects {
            Selects::All(requirements) => requirements.iter().all(|r| r.matches(labels)),
            Selects::Nothing => false,
        }
    }

    /// Like [`LabelSelector::matches`], for an object's optional `metadata.labels`.
    pub fn matches_opt(&self, labels: Option<&BTreeMap<String, String>>) -> bool {
        match labels {
            Some(labels) => self.matches(labels),
            None => self.matches(&BTreeMap::new()),
        }
    }
}

impl TryFrom<&metav1::LabelSelector> for LabelSelector {
    type Error = SelectorError;

    /// `matchLabels` become `key=value` requirements and `matchExpressions` are validated like
    /// Kubernetes validates them; the result is the AND of all.
    fn try_from(selector: &metav1::LabelSelector) -> Result<Self, SelectorError> {
        let mut requirements = Vec::new();
        for (key, value) in selector.match_labels.iter().flatten() {
            requirements.push(Requirement::new(
                key.clone(),
                Operator::Equals,
                [value.clone()],
            )?);
        }
        for expr in selector.match_expressions.iter().flatten() {
            let operator = match expr.operator.as_str() {
                "In" => Operator::In,
                "NotIn" => Operator::NotIn,
                "Exists" => Operator::Exists,
                "DoesNotExist" => Operator::DoesNotExist,
                other => {
                    return Err(SelectorError::UnknownOperator {
                        operator: other.to_owned(),
                    });
                }
            };
            requirements.push(Requirement::new(
                expr.key.clone(),
                operator,
                expr.values.iter().flatten().cloned(),
            )?);
        }
        Ok(LabelSelector::from_requirements(requirements))
    }
}

impl std::str::FromStr for LabelSelector {
    type Err = SelectorError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        LabelSelector::parse(s)
    }
}

impl fmt::Display for LabelSelector {
    /// The canonical string form; "nothing" prints as the empty string, as in Kubernetes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, requirement) in self.requirements().iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{requirement}")?;
        }
        Ok(())
    }
}

/// A token of the label selector string form.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Token {
    Identifier(String),
    /// `!`
    Not,
    /// `=`
    Equals,
    /// `==`
    DoubleEquals,
    /// `!=`
    NotEquals,
    /// `>`
    GreaterThan,
    /// `<`
    LessThan,
    /// `in`
    In,
    /// `notin`
    NotIn,
    /// `(`
    OpenPar,
    /// `)`
    ClosedPar,
    /// `,`
    Comma,
    End,
}

impl Token {
    /// The literal Kubernetes quotes in its parse errors.
    fn literal(&self) -> &str {
        match self {
            Token::Identifier(s) => s,
            Token::Not => "!",
            Token::Equals => "=",
            Token::DoubleEquals => "==",
            Token::NotEquals => "!=",
            Token::GreaterThan => ">",
            Token::LessThan => "<",
            Token::In => "in",
            Token::NotIn => "notin",
            Token::OpenPar => "(",
            Token::ClosedPar => ")",
            Token::Comma => ",",
            Token::End => "",
        }
    }

    /// `in` and `notin` are keywords only in operator position; elsewhere (keys, values) they
    /// are ordinary identifiers, as Kubernetes' parser treats them.
    fn as_identifier(&self) -> Option<&str> {
        match self {
            Token::Identifier(s) => Some(s),
            Token::In => Some("in"),
            Token::NotIn => Some("notin"),
            _ => None,
        }
    }
}

fn is_special(c: char) -> bool {
    matches!(c, '=' | '!' | '(' | ')' | ',' | '>' | '<')
}

fn special_token(s: &str) -> Option<Token> {
    Some(match s {
        "!" => Token::Not,
        "=" => Token::Equals,
        "==" => Token::DoubleEquals,
        "!=" => Token::NotEquals,
        ">" => Token::GreaterThan,
        "<" => Token::LessThan,
        "(" => Token::OpenPar,
        ")" => Token::ClosedPar,
        "," => Token::Comma,
        _ => return None,
    })
}

/// Splits a label selector into tokens, scanning special symbols greedily (`!=`, `==`) like
/// Kubernetes' lexer.
fn lex(input: &str) -> Result<Vec<Token>, String> {
    let chars: Vec<char> = input.chars().collect();
    let is_space = |c: char| matches!(c, ' ' | '\t' | '\r' | '\n');
    let mut tokens = Vec::new();
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        if is_space(c) {
            i += 1;
        } else if is_special(c) {
            // The longest run of special symbols that is still a token.
            let mut buffer = String::new();
            let mut best: Option<(Token, usize)> = None;
            let mut j = i;
            while let Some(&c) = chars.get(j).filter(|c| is_special(**c)) {
                buffer.push(c);
                match special_token(&buffer) {
                    Some(token) => best = Some((token, j + 1)),
                    None if best.is_some() => break,
                    None => {}
                }
                j += 1;
            }
            let Some((token, end)) = best else {
                return Err(format!("error expected: keyword found '{buffer}'"));
            };
            tokens.push(token);
            i = end;
        } else {
            let mut word = String::new();
            while let Some(&c) = chars.get(i).filter(|c| !is_special(**c) && !is_space(**c)) {
                word.push(c);
                i += 1;
            }
            tokens.push(match word.as_str() {
                "in" => Token::In,
                "notin" => Token::NotIn,
                _ => Token::Identifier(word),
            });
        }
    }
    tokens.push(Token::End);
    Ok(tokens)
}

/// A recursive-descent parser with Kubernetes' grammar and error messages.
struct Parser {
    tokens: Vec<Token>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> &Token {
        self.tokens.get(self.pos).unwrap_or(&Token::End)
    }

    fn next(&mut self) -> Token {
        let token = self.peek().clone();
        if self.pos < self.tokens.len() {
            self.pos += 1;
        }
        token
    }

    fn parse(&mut self) -> Result<Vec<Requirement>, String> {
        let mut requirements = Vec::new();
        loop {
            match self.peek() {
                Token::End => return Ok(requirements),
                Token::Not => {}
                t if t.as_identifier().is_some() => {}
                t => {
                    return Err(format!(
                        "found '{}', expected: !, identifier, or 'end of string'",
                        t.literal()
                    ));
                }
            }
            requirements.push(self.parse_requirement()?);
            match self.next() {
                Token::End => return Ok(requirements),
                Token::Comma => {
                    let next = self.peek();
                    if next.as_identifier().is_none() && *next != Token::Not {
                        return Err(format!(
                            "found '{}', expected: identifier after ','",
                            next.literal()
                        ));
                    }
                }
                t => {
                    return Err(format!(
                        "found '{}', expected: ',' or 'end of string'",
                        t.literal()
                    ));
                }
            }
        }
    }

    fn parse_requirement(&mut self) -> Result<Requirement, String> {
        let mut token = self.next();
        let negated = token == Token::Not;
        if negated {
            token = self.next();
        }
        let Some(key) = token.as_identifier().map(str::to_owned) else {
            return Err(format!("found '{}', expected: identifier", token.literal()));
        };
        let key_errs = is_qualified_name(&key);
        if !key_errs.is_empty() {
            return Err(format!(
                "invalid label key {}: {}",
                go_quote(&key),
                key_errs.join("; ")
            ));
        }
        let at_end = matches!(self.peek(), Token::End | Token::Comma);
        if negated {
            return build(key, Operator::DoesNotExist, Vec::new());
        }
        if at_end {
            return build(key, Operator::Exists, Vec::new());
        }
        let operator = match self.next() {
            Token::In => Operator::In,
            Token::NotIn => Operator::NotIn,
            Token::Equals => Operator::Equals,
            Token::DoubleEquals => Operator::DoubleEquals,
            Token::NotEquals => Operator::NotEquals,
            Token::GreaterThan => Operator::GreaterThan,
            Token::LessThan => Operator::LessThan,
            t => {
                return Err(format!(
                    "found '{}', expected: in, notin, =, ==, !=, gt, lt",
                    t.literal()
                ));
            }
        };
        let values = match operator {
            Operator::In | Operator::NotIn => self.parse_values()?,
            _ => self.parse_exact_value()?,
        };
        build(key, operator, values)
    }

    /// `(a,b,c)`; empty entries (`()`, `(a,)`) mean the empty value, as in Kubernetes.
    fn parse_values(&mut self) -> Result<Vec<String>, String> {
        let open = self.next();
        if open != Token::OpenPar {
            return Err(format!("found '{}' expected: '('", open.literal()));
        }
        match self.peek().clone() {
            Token::ClosedPar => {
                self.next();
                Ok(vec![String::new()])
            }
            t if t.as_identifier().is_some() || t == Token::Comma => {
                let values = self.parse_identifiers_list()?;
                let close = self.next();
                if close != Token::ClosedPar {
                    return Err(format!("found '{}', expected: ')'", close.literal()));
                }
                Ok(values)
            }
            t => Err(format!(
                "found '{}', expected: ',', ')' or identifier",
                t.literal()
            )),
        }
    }

    fn parse_identifiers_list(&mut self) -> Result<Vec<String>, String> {
        let mut values = Vec::new();
        loop {
            let token = self.next();
            if let Some(value) = token.as_identifier() {
                values.push(value.to_owned());
                match self.peek() {
                    Token::Comma => continue,
                    Token::ClosedPar => return Ok(values),
                    t => return Err(format!("found '{}', expected: ',' or ')'", t.literal())),
                }
            } else if token == Token::Comma {
                if values.is_empty() {
                    // `(,a)`: an empty value before the comma.
                    values.push(String::new());
                }
                match self.peek() {
                    Token::ClosedPar => {
                        // `(a,)`: an empty value after the comma.
                        values.push(String::new());
                        return Ok(values);
                    }
                    Token::Comma => {
                        // `(a,,b)`: an empty value between the commas.
                        self.next();
                        values.push(String::new());
                    }
                    _ => {}
                }
            } else {
                return Err(format!(
                    "found '{}', expected: ',', or identifier",
                    token.literal()
                ));
            }
        }
    }

    /// The single value after `=`, `==`, `!=`, `>` or `<`; nothing before `,` or the end means
    /// the empty value.
    fn parse_exact_value(&mut self) -> Result<Vec<String>, String> {
        if matches!(self.peek(), Token::End | Token::Comma) {
            return Ok(vec![String::new()]);
        }
        let token = self.next();
        match token.as_identifier() {
            Some(value) => Ok(vec![value.to_owned()]),
            None => Err(format!("found '{}', expected: identifier", token.literal())),
        }
    }
}

fn build(key: String, operator: Operator, values: Vec<String>) -> Result<Requirement, String> {
    Requirement::new(key, operator, values).map_err(|err| match err {
        SelectorError::Requirement { reason } => reason,
        other => other.to_string(),
    })
}

/// The operator of a field selector term.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FieldOperator {
    /// `field=value`.
    Equals,
    /// `field==value`.
    DoubleEquals,
    /// `field!=value`.
    NotEquals,
}

/// One term of a field selector.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldRequirement {
    field: String,
    operator: FieldOperator,
    value: String,
}

impl FieldRequirement {
    /// The field name, e.g. `metadata.name`.
    pub fn field(&self) -> &str {
        &self.field
    }

    /// The operator.
    pub fn operator(&self) -> FieldOperator {
        self.operator
    }

    /// The value (unescaped).
    pub fn value(&self) -> &str {
        &self.value
    }

    /// Whether the object's field value satisfies this term; a missing field counts as the
    /// empty string, as in Kubernetes' `fields.Set`.
    pub fn matches(&self, actual: Option<&str>) -> bool {
        let equal = actual.unwrap_or("") == self.value;
        match self.operator {
            FieldOperator::Equals | FieldOperator::DoubleEquals => equal,
            FieldOperator::NotEquals => !equal,
        }
    }
}

impl fmt::Display for FieldRequirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let op = match self.operator {
            FieldOperator::Equals => "=",
            FieldOperator::DoubleEquals => "==",
            FieldOperator::NotEquals => "!=",
        };
        write!(f, "{}{op}{}", self.field, escape_field_value(&self.value))
    }
}

/// A field selector: terms that must all hold. The empty selector matches everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldSelector {
    requirements: Vec<FieldRequirement>,
}

impl FieldSelector {
    /// Parses `metadata.name=x,status.phase!=Running`.
    ///
    /// As in Kubernetes, `\,`, `\=` and `\\` escape those characters in values, and the first
    /// operator in a term splits it. Unlike Kubernetes, whitespace around field names and values
    /// is ignored: no field name contains spaces, so trimming only forgives typing.
    pub fn parse(selector: &str) -> Result<Self, SelectorError> {
        let err = |reason: String| SelectorError::Field {
            selector: selector.to_owned(),
            reason,
        };
        let mut requirements = Vec::new();
        for term in split_field_terms(selector) {
            if term.trim().is_empty() {
                continue;
            }
            let Some((field, operator, value)) = split_field_term(term) else {
                return Err(err(format!("can't understand '{term}'")));
            };
            let value = unescape_field_value(value.trim()).map_err(err)?;
            requirements.push(FieldRequirement {
                field: field.trim().to_owned(),
                operator,
                value,
            });
        }
        requirements.sort_by(|a, b| a.field.cmp(&b.field));
        Ok(FieldSelector { requirements })
    }

    /// The terms, sorted by field name.
    pub fn requirements(&self) -> &[FieldRequirement] {
        &self.requirements
    }

    /// Whether this selector matches everything.
    pub fn is_everything(&self) -> bool {
        self.requirements.is_empty()
    }

    /// The value a term requires for `field` with `=`/`==`, if any (handy to turn
    /// `metadata.name=x` into a direct lookup).
    pub fn required_value(&self, field: &str) -> Option<&str> {
        self.requirements
            .iter()
            .find(|r| r.field == field && r.operator != FieldOperator::NotEquals)
            .map(|r| r.value.as_str())
    }

    /// Rejects fields outside `supported` with Kubernetes' `field label not supported: X`.
    pub fn check_supported(&self, supported: &[&str]) -> Result<(), SelectorError> {
        match self
            .requirements
            .iter()
            .find(|r| !supported.contains(&r.field.as_str()))
        {
            Some(r) => Err(SelectorError::UnsupportedField {
                field: r.field.clone(),
            }),
            None => Ok(()),
        }
    }

    /// Whether an object matches; `get` returns the object's value of a field name.
    pub fn matches(&self, get: impl Fn(&str) -> Option<String>) -> bool {
        self.requirements
            .iter()
            .all(|r| r.matches(get(&r.field).as_deref()))
    }
}

impl std::str::FromStr for FieldSelector {
    type Err = SelectorError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        FieldSelector::parse(s)
    }
}

impl fmt::Display for FieldSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, requirement) in self.requirements.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{requirement}")?;
        }
        Ok(())
    }
}

/// Splits at commas not escaped with a backslash.
fn split_field_terms(selector: &str) -> Vec<&str> {
    let mut terms = Vec::new();
    let mut start = 0;
    let mut escaped = false;
    for (i, c) in selector.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == ',' {
            terms.push(selector.get(start..i).unwrap_or_default());
            start = i + 1;
        }
    }
    terms.push(selector.get(start..).unwrap_or_default());
    terms
}

/// Splits a term at its first operator; `!=` and `==` win over `=` at the same position.
fn split_field_term(term: &str) -> Option<(&str, FieldOperator, &str)> {
    for (i, _) in term.char_indices() {
        let rest = term.get(i..)?;
        for (op, operator) in [
            ("!=", FieldOperator::NotEquals),
            ("==", FieldOperator::DoubleEquals),
            ("=", FieldOperator::Equals),
        ] {
            if let Some(value) = rest.strip_prefix(op) {
                return Some((term.get(..i)?, operator, value));
            }
        }
    }
    None
}

fn unescape_field_value(value: &str) -> Result<String, String> {
    let mut out = String::with_capacity(value.len());
    let mut escaped = false;
    for c in value.chars() {
        if escaped {
            match c {
                '\\' | ',' | '=' => out.push(c),
                other => return Err(format!("invalid escape sequence: \\{other}")),
            }
            escaped = false;
        } else {
            match c {
                '\\' => escaped = true,
                ',' | '=' => return Err(format!("unescaped character in value: {c}")),
                other => out.push(other),
            }
        }
    }
    if escaped {
        return Err("invalid escape sequence: \\".to_owned());
    }
    Ok(out)
}

fn escape_field_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if matches!(c, '\\' | ',' | '=') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn parses_and_prints_canonically() {
        let cases = [
            ("", ""),
            ("x=a", "x=a"),
            ("x=a,y=b,z=c", "x=a,y=b,z=c"),
            ("z=c,x=a,y=b", "x=a,y=b,z=c"),
            ("x==a", "x==a"),
            ("x!=a", "x!=a"),
            ("x=", "x="),
            ("x= ", "x="),
            ("x=,z= ", "x=,z="),
            ("x= ,z= ", "x=,z="),
            ("x>1", "x>1"),
            ("x<1", "x<1"),
            ("x", "x"),
            ("!x", "!x"),
            ("! x", "!x"),
            ("x in (b,a)", "x in (a,b)"),
            ("x in(a)", "x in (a)"),
            ("x notin (a)", "x notin (a)"),
            ("x in (a,a)", "x in (a)"),
            ("x in ()", "x in ()"),
            ("x in (a,)", "x in (,a)"),
            ("x in (,a)", "x in (,a)"),
            ("x in (a,,b)", "x in (,a,b)"),
            ("  x  in  ( a , b )  ,  !y , z != c ", "x in (a,b),!y,z!=c"),
            ("x in (in,notin)", "x in (in,notin)"),
            ("in=notin", "in=notin"),
            ("example.com/app=web,tier", "example.com/app=web,tier"),
            ("a=b\t,\nc", "a=b,c"),
        ];
        for (input, want) in cases {
            let sel = LabelSelector::parse(input)
                .unwrap_or_else(|e| panic!("{input:?} should parse: {e}"));
            assert_eq!(sel.to_string(), want, "{input:?}");
            // The canonical form parses back to the same selector.
            assert_eq!(
                LabelSelector::parse(want).ok(),
                Some(sel.clone()),
                "{want:?}"
            );
        }
    }

    #[test]
    fn rejects_bad_selectors_naming_the_problem() {
        let cases = [
            (
                "x in x",
                "invalid label selector \"x in x\": found 'x' expected: '('",
            ),
            (
                "a in x",
                "invalid label selector \"a in x\": found 'x' expected: '('",
            ),
            (
                "x in (a",
                "invalid label selector \"x in (a\": found '', expected: ',' or ')'",
            ),
            (
                "x in (a b)",
                "invalid label selector \"x in (a b)\": found 'b', expected: ',' or ')'",
            ),
            (
                "x=a,",
                "invalid label selector \"x=a,\": found '', expected: identifier after ','",
            ),
            (
                "x=a b",
                "invalid label selector \"x=a b\": found 'b', expected: ',' or 'end of string'",
            ),
            (
                "!x=a",
                "invalid label selector \"!x=a\": found '=', expected: ',' or 'end of string'",
            ),
            (
                ",x",
                "invalid label selector \",x\": found ',', expected: !, identifier, or 'end of string'",
            ),
            (
                "x in",
                "invalid label selector \"x in\": found '' expected: '('",
            ),
            (
                "x (a)",
                "invalid label selector \"x (a)\": found '(', expected: in, notin, =, ==, !=, gt, lt",
            ),
            (
                "x=(",
                "invalid label selector \"x=(\": found '(', expected: identifier",
            ),
            (
                "x in ())",
                "invalid label selector \"x in ())\": found ')', expected: ',' or 'end of string'",
            ),
            (
                "x>a",
                "invalid label selector \"x>a\": values[0]: Invalid value: \"a\": for 'Gt', 'Lt' operators, the value must be an integer",
            ),
        ];
        for (input, want) in cases {
            let err = LabelSelector::parse(input).expect_err(input);
            assert_eq!(err.to_string(), want, "{input:?}");
        }
        // Invalid keys and values name the offending part.
        let err = LabelSelector::parse("x=a||y=b")
            .expect_err("| is not an operator")
            .to_string();
        assert!(
            err.contains("values[0][x]: Invalid value: \"a||y\""),
            "{err}"
        );
        let err = LabelSelector::parse("a b=c").expect_err("space in key");
        assert!(err.to_string().contains("found 'b'"), "{err}");
        let err = LabelSelector::parse("-a=c")
            .expect_err("bad key")
            .to_string();
        assert!(
            err.starts_with(
                "invalid label selector \"-a=c\": invalid label key \"-a\": name part must consist"
            ),
            "{err}"
        );
        let err = LabelSelector::parse("a=-c")
            .expect_err("bad value")
            .to_string();
        assert!(
            err.contains("values[0][a]: Invalid value: \"-c\": a valid label must be"),
            "{err}"
        );
        let err = LabelSelector::parse(&format!("a={}", "v".repeat(64)))
            .expect_err("long value")
            .to_string();
        assert!(err.contains("must be no more than 63 characters"), "{err}");
    }

    #[test]
    fn matching() {
        let web = labels(&[("app", "web"), ("tier", "front"), ("n", "5")]);
        let empty = labels(&[]);
        let cases = [
            ("", true, true),
            ("app=web", true, false),
            ("app==web", true, false),
            ("app=db", false, false),
            ("app!=db", true, true),
            ("app!=web", false, true),
            ("app in (web,db)", true, false),
            ("app notin (web,db)", false, true),
            ("app notin (db)", true, true),
            ("app", true, false),
            ("!app", false, true),
            ("missing=", false, false),
            ("missing!=", true, true),
            ("app=web,tier=front", true, false),
            ("app=web,tier=back", false, false),
            ("n>4", true, false),
            ("n>5", false, false),
            ("n<6", true, false),
            ("app>1", false, false),
        ];
        for (selector, on_web, on_empty) in cases {
            let sel = LabelSelector::parse(selector).expect(selector);
            assert_eq!(sel.matches(&web), on_web, "{selector:?} on web");
            assert_eq!(sel.matches(&empty), on_empty, "{selector:?} on empty");
        }
        assert!(!LabelSelector::nothing().matches(&web));
        assert!(LabelSelector::everything().matches(&web));
        assert!(LabelSelector::everything().matches_opt(None));
        assert!(LabelSelector::parse("!a").expect("valid").matches_opt(None));
        assert_eq!(LabelSelector::nothing().to_string(), "");
    }

    #[test]
    fn from_metav1() {
        let sel = metav1::LabelSelector {
            match_labels: Some(BTreeMap::from([
                ("tier".to_owned(), "front".to_owned()),
                ("app".to_owned(), "web".to_owned()),
            ])),
            match_expressions: Some(vec![
                metav1::LabelSelectorRequirement {
                    key: "env".into(),
                    operator: "In".into(),
                    values: Some(vec!["prod".into(), "dev".into()]),
                },
                metav1::LabelSelectorRequirement {
                    key: "canary".into(),
                    operator: "DoesNotExist".into(),
                    values: None,
                },
                metav1::LabelSelectorRequirement {
                    key: "zone".into(),
                    operator: "Exists".into(),
                    values: Some(vec![]),
                },
                metav1::LabelSelectorRequirement {
                    key: "track".into(),
                    operator: "NotIn".into(),
                    values: Some(vec!["beta".into()]),
                },
            ]),
        };
        let parsed = LabelSelector::try_from(&sel).expect("valid selector");
        assert_eq!(
            parsed.to_string(),
            "app=web,!canary,env in (dev,prod),tier=front,track notin (beta),zone"
        );
        let pod = labels(&[
            ("app", "web"),
            ("tier", "front"),
            ("env", "dev"),
            ("zone", "a"),
        ]);
        assert!(parsed.matches(&pod));

        assert!(
            LabelSelector::try_from(&metav1::LabelSelector::default())
                .expect("empty is valid")
                .is_everything()
        );
        assert!(
            LabelSelector::from_optional(None)
                .expect("none is valid")
                .is_nothing()
        );

        let bad = |operator: &str, values: Option<Vec<String>>| {
            LabelSelector::try_from(&metav1::LabelSelector {
                match_labels: None,
                match_expressions: Some(vec![metav1::LabelSelectorRequirement {
                    key: "k".into(),
                    operator: operator.into(),
                    values,
                }]),
            })
            .expect_err(operator)
            .to_string()
        };
        assert_eq!(
            bad("In", None),
            "invalid label selector requirement: values: for 'in', 'notin' operators, values set can't be empty"
        );
        assert_eq!(
            bad("NotIn", Some(vec![])),
            "invalid label selector requirement: values: for 'in', 'notin' operators, values set can't be empty"
        );
        assert_eq!(
            bad("Exists", Some(vec!["x".into()])),
            "invalid label selector requirement: values: values set must be empty for exists and does not exist"
        );
        assert_eq!(
            bad("DoesNotExist", Some(vec!["x".into()])),
            "invalid label selector requirement: values: values set must be empty for exists and does not exist"
        );
        assert_eq!(
            bad("Gt", Some(vec!["1".into()])),
            "\"Gt\" is not a valid label selector operator"
        );
        assert_eq!(
            bad("in", Some(vec!["1".into()])),
            "\"in\" is not a valid label selector operator"
        );

        let bad_label = LabelSelector::try_from(&metav1::LabelSelector {
            match_labels: Some(BTreeMap::from([("a b".to_owned(), "x".to_owned())])),
            match_expressions: None,
        })
        .expect_err("bad key")
        .to_string();
        assert!(bad_label.starts_with("invalid label selector requirement: key: Invalid value: \"a b\": name part must consist"), "{bad_label}");
    }

    #[test]
    fn requirement_validation() {
        assert!(Requirement::new("a", Operator::Equals, Vec::<String>::new()).is_err());
        assert!(Requirement::new("a", Operator::Equals, ["x".to_owned(), "y".to_owned()]).is_err());
        assert!(Requirement::new("a", Operator::GreaterThan, ["x".to_owned()]).is_err());
        let r =
            Requirement::new("a", Operator::In, ["y".to_owned(), "x".to_owned()]).expect("valid");
        assert_eq!(r.values(), ["x", "y"]);
        assert_eq!(r.key(), "a");
        assert_eq!(r.operator(), Operator::In);
    }

    #[test]
    fn field_selectors() {
        let pod = |name: &str, phase: Option<&str>| {
            let name = name.to_owned();
            let phase = phase.map(str::to_owned);
            move |field: &str| match field {
                "metadata.name" => Some(name.clone()),
                "status.phase" => phase.clone(),
                _ => None,
            }
        };
        let cases = [
            ("", ""),
            ("metadata.name=x", "metadata.name=x"),
            ("metadata.name==x", "metadata.name==x"),
            (
                "status.phase!=Running,metadata.name=x",
                "metadata.name=x,status.phase!=Running",
            ),
            (" metadata.name = x ", "metadata.name=x"),
            ("metadata.name=a\\,b\\=c\\\\", "metadata.name=a\\,b\\=c\\\\"),
            ("spec.nodeName=", "spec.nodeName="),
            ("a=b,,c=d", "a=b,c=d"),
        ];
        for (input, want) in cases {
            let sel = FieldSelector::parse(input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
            assert_eq!(sel.to_string(), want, "{input:?}");
        }

        let sel = FieldSelector::parse("metadata.name=x,status.phase!=Running").expect("valid");
        assert!(sel.matches(pod("x", Some("Pending"))));
        assert!(sel.matches(pod("x", None)));
        assert!(!sel.matches(pod("x", Some("Running"))));
        assert!(!sel.matches(pod("y", Some("Pending"))));
        assert_eq!(sel.required_value("metadata.name"), Some("x"));
        assert_eq!(sel.required_value("status.phase"), None);
        assert!(
            sel.check_supported(&["metadata.name", "status.phase"])
                .is_ok()
        );
        assert_eq!(
            sel.check_supported(&["metadata.name"])
                .expect_err("unsupported")
                .to_string(),
            "field label not supported: status.phase"
        );
        // A missing field counts as empty.
        let empty = FieldSelector::parse("spec.nodeName=").expect("valid");
        assert!(empty.matches(|_| None));
        assert!(
            FieldSelector::parse("a=a\\,b")
                .expect("valid")
                .matches(|_| Some("a,b".into()))
        );

        let bad = [
            (
                "metadata.name",
                "invalid field selector \"metadata.name\": can't understand 'metadata.name'",
            ),
            (
                "a=b=c",
                "invalid field selector \"a=b=c\": unescaped character in value: =",
            ),
            (
                "a=b\\x",
                "invalid field selector \"a=b\\\\x\": invalid escape sequence: \\x",
            ),
            (
                "a=b\\",
                "invalid field selector \"a=b\\\\\": invalid escape sequence: \\",
            ),
            (
                "a<b",
                "invalid field selector \"a<b\": can't understand 'a<b'",
            ),
        ];
        for (input, want) in bad {
            assert_eq!(
                FieldSelector::parse(input).expect_err(input).to_string(),
                want
            );
        }
    }
}
