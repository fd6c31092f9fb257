//! Scenario errors that point at the file, the line and the key.
//!
//! Fatal to the load: a scenario with any error does not run. Every variant renders as
//! `file:line:col: message` (or `file: message` where there is no line), so editors can jump to it.

use crate::api::problem::Problem;
use std::fmt;
use std::path::Path;
use toml_edit::{Item, TableLike, Value};

/// One problem in a scenario file.
#[derive(Debug, Clone, PartialEq)]
pub struct Located {
    pub file: String,
    /// 1-based line and column, when known.
    pub line_col: Option<(usize, usize)>,
    /// The key path, e.g. `faults[0].kind` or `pool.healthmonitor.delay`.
    pub key: Option<String>,
    pub rule: Option<String>,
    pub message: String,
}

impl fmt::Display for Located {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some((l, c)) = self.line_col {
            write!(f, ":{l}:{c}")?;
        }
        write!(f, ": ")?;
        if let Some(k) = &self.key {
            write!(f, "{k}: ")?;
        }
        write!(f, "{}", self.message)?;
        if let Some(r) = &self.rule {
            write!(f, " [{r}]")?;
        }
        Ok(())
    }
}

/// A scenario that cannot run, with every problem found.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub struct ScenarioError {
    pub problems: Vec<Located>,
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

impl ScenarioError {
    /// One problem with no location beyond the file.
    pub fn file(file: &Path, message: impl Into<String>) -> Self {
        ScenarioError {
            problems: vec![Located {
                file: file.display().to_string(),
                line_col: None,
                key: None,
                rule: None,
                message: message.into(),
            }],
        }
    }

    /// One problem at a byte offset of `src`.
    pub fn at(
        file: &Path,
        src: &str,
        offset: Option<usize>,
        key: &str,
        message: impl Into<String>,
    ) -> Self {
        ScenarioError {
            problems: vec![Located {
                file: file.display().to_string(),
                line_col: offset.map(|o| line_col(src, o)),
                key: Some(key.to_string()),
                rule: None,
                message: message.into(),
            }],
        }
    }

    /// A TOML syntax or shape error from the `toml` crate, with a suggestion for unknown keys.
    pub fn from_toml(file: &Path, src: &str, e: &toml::de::Error) -> Self {
        let mut message = e.message().trim().to_string();
        if let Some(s) = suggest_unknown_field(&message) {
            message.push_str(&s);
        }
        ScenarioError {
            problems: vec![Located {
                file: file.display().to_string(),
                line_col: e.span().map(|s| line_col(src, s.start)),
                key: e.span().and_then(|s| key_at_offset(src, s.start)),
                rule: None,
                message,
            }],
        }
    }

    /// API problems of the pool body. With `toml_src`, the pool is inline and each problem is
    /// located at its key in the TOML text; otherwise it names the JSON file and the path.
    pub fn from_api(file: &Path, toml_src: Option<&str>, problems: &[Problem]) -> Self {
        ScenarioError {
            problems: problems
                .iter()
                .map(|p| located_api_problem(file, toml_src, p))
                .collect(),
        }
    }
}

/// An API problem located in a scenario file (also used for warnings).
pub fn located_api_problem(file: &Path, toml_src: Option<&str>, p: &Problem) -> Located {
    Located {
        file: file.display().to_string(),
        line_col: toml_src.and_then(|src| locate(src, &p.path).map(|o| line_col(src, o))),
        key: Some(p.path.clone()),
        rule: Some(p.rule.clone()),
        message: p.message.clone(),
    }
}

/// 1-based line and column of a byte offset.
pub fn line_col(src: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(src.len());
    let before = &src.as_bytes()[..offset];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let col = before.iter().rev().take_while(|&&b| b != b'\n').count() + 1;
    (line, col)
}

/// serde's "unknown field `x`, expected one of `a`, `b`" gains "; did you mean `a`?".
fn suggest_unknown_field(message: &str) -> Option<String> {
    let rest = message.strip_prefix("unknown field `")?;
    let (unknown, rest) = rest.split_once('`')?;
    let known: Vec<&str> = rest.split('`').skip(1).step_by(2).collect();
    crate::api::read::closest_field(unknown, &known).map(|k| format!("; did you mean `{k}`?"))
}

/// One step of a JSON-style path.
enum Seg<'a> {
    Key(&'a str),
    Index(usize),
}

fn segments(path: &str) -> Vec<Seg<'_>> {
    let mut out = Vec::new();
    for part in path.split('.') {
        let (key, mut rest) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if !key.is_empty() {
            out.push(Seg::Key(key));
        }
        while let Some(close) = rest.find(']') {
            if let Ok(i) = rest[1..close].parse() {
                out.push(Seg::Index(i));
            }
            rest = &rest[close + 1..];
        }
    }
    out
}

/// A node of the TOML document while walking a path.
enum Node<'a> {
    Table(&'a dyn TableLike),
    Item(&'a Item),
    Value(&'a Value),
}

/// Byte offset of the deepest key of `path` (e.g. `pool.members[1].role`) found in `src`.
pub fn locate(src: &str, path: &str) -> Option<usize> {
    let doc = toml_edit::ImDocument::parse(src.to_string()).ok()?;
    let mut node = Node::Table(doc.as_table());
    let mut best = None;
    for seg in segments(path) {
        let next = match (seg, node) {
            (Seg::Key(k), Node::Table(t)) => descend_key(t, k, &mut best),
            (Seg::Key(k), Node::Item(i)) => {
                i.as_table_like().and_then(|t| descend_key(t, k, &mut best))
            }
            (Seg::Key(k), Node::Value(Value::InlineTable(t))) => descend_key(t, k, &mut best),
            (Seg::Index(n), Node::Item(Item::ArrayOfTables(a))) => a.get(n).map(|t| {
                best = t.span().map(|s| s.start).or(best);
                Node::Table(t)
            }),
            (Seg::Index(n), Node::Item(Item::Value(Value::Array(a))))
            | (Seg::Index(n), Node::Value(Value::Array(a))) => a.get(n).map(|v| {
                best = v.span().map(|s| s.start).or(best);
                Node::Value(v)
            }),
            _ => None,
        };
        // A missing key (a `required` problem) points at the deepest part that exists.
        match next {
            Some(n) => node = n,
            None => break,
        }
    }
    best
}

/// The key path (e.g. `faults[0].at`) of the deepest key or value at byte `offset` of `src`.
pub fn key_at_offset(src: &str, offset: usize) -> Option<String> {
    let doc = toml_edit::ImDocument::parse(src.to_string()).ok()?;
    let mut best = None;
    walk_table(doc.as_table(), "", offset, &mut best);
    best
}

fn covers(span: Option<std::ops::Range<usize>>, offset: usize) -> bool {
    span.is_some_and(|s| s.start <= offset && offset < s.end.max(s.start + 1))
}

fn join_key(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}.{key}")
    }
}

fn walk_table(t: &dyn TableLike, prefix: &str, offset: usize, best: &mut Option<String>) {
    for (k, item) in t.iter() {
        let path = join_key(prefix, k);
        let key_span = t.key(k).and_then(|key| key.span());
        if covers(key_span, offset) || covers(item.span(), offset) {
            *best = Some(path.clone());
        }
        walk_item(item, &path, offset, best);
    }
}

fn walk_item(item: &Item, path: &str, offset: usize, best: &mut Option<String>) {
    match item {
        Item::Table(t) => walk_table(t, path, offset, best),
        Item::ArrayOfTables(a) => {
            for (i, t) in a.iter().enumerate() {
                walk_table(t, &format!("{path}[{i}]"), offset, best);
            }
        }
        Item::Value(v) => walk_value(v, path, offset, best),
        Item::None => {}
    }
}

fn walk_value(v: &Value, path: &str, offset: usize, best: &mut Option<String>) {
    match v {
        Value::InlineTable(t) => walk_table(t, path, offset, best),
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                let p = format!("{path}[{i}]");
                if covers(x.span(), offset) {
                    *best = Some(p.clone());
                }
                walk_value(x, &p, offset, best);
            }
        }
        _ => {}
    }
}

fn descend_key<'a>(t: &'a dyn TableLike, k: &str, best: &mut Option<usize>) -> Option<Node<'a>> {
    let (key, item) = t.get_key_value(k)?;
    *best = key.span().map(|s| s.start).or(*best);
    Some(Node::Item(item))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRC: &str = "name = \"x\"\n[pool]\nprotocol = \"TCP\"\n[pool.healthmonitor]\ndelay = 0\n[[pool.members]]\nrole = \"master\"\n[[pool.members]]\nrole = \"boss\"\n";

    #[test]
    fn locates_nested_keys_and_array_items() {
        let at = |p| locate(SRC, p).map(|o| line_col(SRC, o));
        assert_eq!(at("pool.healthmonitor.delay"), Some((5, 1)));
        assert_eq!(at("pool.members[1].role"), Some((9, 1)));
        assert_eq!(at("pool.protocol"), Some((3, 1)));
        // A missing key points at the deepest part that exists.
        assert_eq!(at("pool.healthmonitor.timeout"), Some((4, 7)));
    }

    #[test]
    fn finds_the_key_at_an_offset() {
        let src = "a = 1\n[[faults]]\nat = \"1s\"\n[[faults]]\nat = \"5 parsecs\"\nrtt = { median = \"x\" }\n";
        let at = |needle: &str| key_at_offset(src, src.find(needle).unwrap());
        assert_eq!(at("5 parsecs").as_deref(), Some("faults[1].at"));
        assert_eq!(at("\"x\"").as_deref(), Some("faults[1].rtt.median"));
        assert_eq!(at("a =").as_deref(), Some("a"));
    }

    #[test]
    fn unknown_field_messages_gain_a_suggestion() {
        let s = suggest_unknown_field("unknown field `dealy`, expected one of `delay`, `timeout`");
        assert_eq!(s.as_deref(), Some("; did you mean `delay`?"));
    }
}
