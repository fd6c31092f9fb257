//! Scenario errors that point at the file, the line and the key.
//!
//! Fatal to the load: a scenario with any error does not run. Every variant renders as
//! `file:line:col: path [rule]: message` (or `file: message` where there is no line or key), so editors can jump to it.
//!
//! Locating is one pass: [`Source`] parses the file's spans once (with `toml_edit`) into a
//! path -> offset index and keeps the line starts, so each problem costs a few lookups, not a
//! parse of the file. At most [`MAX_REPORTED_PROBLEMS`] problems are reported; the rest are
//! counted in one last line.

use crate::api::problem::Problem;
use std::cell::OnceCell;
use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use toml_edit::{Item, TableLike, Value};

/// Most problems reported for one file: enough to fix a file in one go, few enough that a
/// generated file with thousands of mistakes gets a readable answer at once.
pub const MAX_REPORTED_PROBLEMS: usize = 100;

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
        // One layout everywhere (validate, scenarios, reports): `file:line:col: path [rule]: message`.
        write!(f, ": ")?;
        match (&self.key, &self.rule) {
            (Some(k), Some(r)) => write!(f, "{k} [{r}]: ")?,
            (Some(k), None) => write!(f, "{k}: ")?,
            (None, Some(r)) => write!(f, "[{r}]: ")?,
            (None, None) => {}
        }
        write!(f, "{}", self.message)
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

    /// The problems, at most [`MAX_REPORTED_PROBLEMS`] of them, then one line that counts the
    /// ones left out.
    pub fn capped(mut problems: Vec<Located>) -> Self {
        if problems.len() > MAX_REPORTED_PROBLEMS {
            let left_out = problems.len() - MAX_REPORTED_PROBLEMS;
            let file = problems[0].file.clone();
            problems.truncate(MAX_REPORTED_PROBLEMS);
            problems.push(Located {
                file,
                line_col: None,
                key: None,
                rule: None,
                message: format!(
                    "{left_out} more problems left out (only the first {MAX_REPORTED_PROBLEMS} are reported); fix these and check again"
                ),
            });
        }
        ScenarioError { problems }
    }

    /// One problem at a byte offset of `src`.
    pub fn at(
        file: &Path,
        src: &Source,
        offset: Option<usize>,
        key: &str,
        message: impl Into<String>,
    ) -> Self {
        ScenarioError {
            problems: vec![Located {
                file: file.display().to_string(),
                line_col: offset.map(|o| src.line_col(o)),
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
    /// located at its key in the TOML text; otherwise it names the JSON file and the path. Only
    /// the first [`MAX_REPORTED_PROBLEMS`] are located and kept.
    pub fn from_api(file: &Path, toml_src: Option<&Source>, problems: &[Problem]) -> Self {
        let mut located: Vec<Located> = problems
            .iter()
            .take(MAX_REPORTED_PROBLEMS)
            .map(|p| located_api_problem(file, toml_src, p))
            .collect();
        // Placeholders for the rest, so that `capped` counts them without locating them.
        located.extend(
            problems
                .iter()
                .skip(MAX_REPORTED_PROBLEMS)
                .map(|_| Located {
                    file: String::new(),
                    line_col: None,
                    key: None,
                    rule: None,
                    message: String::new(),
                }),
        );
        ScenarioError::capped(located)
    }
}

/// An API problem located in a scenario file (also used for warnings).
pub fn located_api_problem(file: &Path, toml_src: Option<&Source>, p: &Problem) -> Located {
    Located {
        file: file.display().to_string(),
        line_col: toml_src.and_then(|src| src.locate(&p.path).map(|o| src.line_col(o))),
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

/// A scenario's text with what locating problems in it needs, built once on first use: the
/// offset of every key path and the start of every line.
pub struct Source<'a> {
    text: &'a str,
    index: OnceCell<KeyIndex>,
    line_starts: OnceCell<Vec<usize>>,
}

impl<'a> Source<'a> {
    pub fn new(text: &'a str) -> Self {
        Source {
            text,
            index: OnceCell::new(),
            line_starts: OnceCell::new(),
        }
    }

    /// Byte offset of the deepest key of `path` (e.g. `pool.members[1].role`) found in the
    /// text: a missing key (a `required` problem) points at the deepest part that exists.
    pub fn locate(&self, path: &str) -> Option<usize> {
        let index = self.index.get_or_init(|| KeyIndex::new(self.text));
        let mut best = None;
        let mut prefix = String::new();
        for seg in segments(path) {
            match seg {
                Seg::Key(k) => {
                    if !prefix.is_empty() {
                        prefix.push('.');
                    }
                    prefix.push_str(k);
                }
                Seg::Index(i) => prefix.push_str(&format!("[{i}]")),
            }
            match index.offsets.get(&prefix) {
                Some(at) => best = at.or(best),
                None => break,
            }
        }
        best
    }

    /// 1-based line and column of a byte offset (a binary search in the line starts).
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let starts = self.line_starts.get_or_init(|| {
            std::iter::once(0)
                .chain(self.text.match_indices('\n').map(|(i, _)| i + 1))
                .collect()
        });
        let line = starts.partition_point(|&s| s <= offset);
        (line, offset - starts[line - 1] + 1)
    }
}

/// Every key path of a TOML document (`a.b[2].c`, the form problems use) with the byte offset
/// of its key (of its value for array items, of its header for array-of-tables entries; `None`
/// when `toml_edit` kept no span).
struct KeyIndex {
    offsets: HashMap<String, Option<usize>>,
}

impl KeyIndex {
    fn new(src: &str) -> Self {
        let mut offsets = HashMap::new();
        if let Ok(doc) = toml_edit::ImDocument::parse(src) {
            index_table(doc.as_table(), "", &mut offsets);
        }
        KeyIndex { offsets }
    }
}

fn index_table(t: &dyn TableLike, prefix: &str, out: &mut HashMap<String, Option<usize>>) {
    for (k, item) in t.iter() {
        let path = join_key(prefix, k);
        let at = t.key(k).and_then(|key| key.span()).map(|s| s.start);
        index_item(item, &path, out);
        out.insert(path, at);
    }
}

fn index_item(item: &Item, path: &str, out: &mut HashMap<String, Option<usize>>) {
    match item {
        Item::Table(t) => index_table(t, path, out),
        Item::ArrayOfTables(a) => {
            for (i, t) in a.iter().enumerate() {
                let p = format!("{path}[{i}]");
                index_table(t, &p, out);
                out.insert(p, t.span().map(|s| s.start));
            }
        }
        Item::Value(v) => index_value(v, path, out),
        Item::None => {}
    }
}

fn index_value(v: &Value, path: &str, out: &mut HashMap<String, Option<usize>>) {
    match v {
        Value::InlineTable(t) => index_table(t, path, out),
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                let p = format!("{path}[{i}]");
                index_value(x, &p, out);
                out.insert(p, x.span().map(|s| s.start));
            }
        }
        _ => {}
    }
}

/// Byte offset of the deepest key of `path` found in `src` (one lookup; to locate many
/// problems, keep one [`Source`]).
pub fn locate(src: &str, path: &str) -> Option<usize> {
    Source::new(src).locate(path)
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
