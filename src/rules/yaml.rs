//! A parser for the block-YAML subset that Falco rule files use, producing a
//! tree whose every node knows its line. No YAML crate: the binary-size
//! budget has no room for one, and rule errors must name a line.
//!
//! Supported: block maps and sequences (compact `- key: v` too), flow
//! sequences and maps spanning lines, plain scalars folded over lines,
//! single- and double-quoted scalars, `|`/`>` block scalars with chomping
//! and indentation indicators, comments, `---`/`...` documents.
//! Rejected with an error: anchors, aliases, tags, directives, `?` keys,
//! collections as keys, duplicate keys, tabs as indentation.
//!
//! The input is untrusted (a root agent reads it): the parser never panics,
//! nests at most [`MAX_DEPTH`] collections (a counter, not the stack, says
//! no), and builds a tree linear in the input (no aliases to expand).
//! Scalars are not typed: `true` and `12` stay text; only the empty value,
//! `~` and `null` (unquoted) become [`Value::Null`].

mod block;
mod block_scalar;
mod cursor;
mod flow;
mod scalar;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_upstream;

use cursor::Cursor;
use std::collections::HashMap;
use std::fmt;

/// Collections nested deeper than this are an error.
pub const MAX_DEPTH: u32 = 64;

#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// The empty value, `~` or `null`.
    Null,
    /// Plain, quoted or block scalar text; `quoted` for `'..'` and `".."`.
    Scalar {
        text: String,
        quoted: bool,
    },
    Seq(Vec<Node>),
    /// Keys in document order, each once.
    Map(Vec<(String, Node)>),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    /// 1-based line where the node starts (for an empty value: its key's).
    pub line: u32,
    pub value: Value,
}

#[derive(Clone, Debug, PartialEq)]
pub struct YamlError {
    pub line: u32,
    pub msg: String,
}

impl fmt::Display for YamlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.msg)
    }
}

impl std::error::Error for YamlError {}

impl Node {
    /// The text of a scalar (plain, quoted or block).
    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Scalar { text, .. } => Some(text),
            _ => None,
        }
    }

    /// The value of `key` in a map.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.as_map()?
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }

    pub fn as_seq(&self) -> Option<&[Node]> {
        match &self.value {
            Value::Seq(items) => Some(items),
            _ => None,
        }
    }

    pub fn as_map(&self) -> Option<&[(String, Node)]> {
        match &self.value {
            Value::Map(entries) => Some(entries),
            _ => None,
        }
    }

    pub fn is_null(&self) -> bool {
        self.value == Value::Null
    }

    /// An unquoted YAML 1.2 boolean: true/True/TRUE, false/False/FALSE.
    pub fn as_bool(&self) -> Option<bool> {
        match &self.value {
            Value::Scalar {
                text,
                quoted: false,
            } => match text.as_str() {
                "true" | "True" | "TRUE" => Some(true),
                "false" | "False" | "FALSE" => Some(false),
                _ => None,
            },
            _ => None,
        }
    }

    /// What the node is, for messages like "expected a sequence, found a map".
    pub fn kind(&self) -> &'static str {
        match self.value {
            Value::Null => "null",
            Value::Scalar { .. } => "scalar",
            Value::Seq(_) => "sequence",
            Value::Map(_) => "map",
        }
    }
}

/// Parses every document in `text`: one node per document, none for a
/// stream holding only comments and blank lines.
pub fn parse(text: &str) -> Result<Vec<Node>, YamlError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    check_chars(text)?;
    let lines: Vec<&str> = text.lines().collect();
    let mut c = Cursor::new(&lines, text.ends_with('\n'));
    let mut docs = Vec::new();
    loop {
        c.skip_blank_lines();
        if c.eof() {
            return Ok(docs);
        }
        if cursor::is_marker(c.text(), "...") {
            // An end marker with no document before it ends nothing.
            end_marker(&mut c)?;
            continue;
        }
        docs.push(document(&mut c)?);
    }
}

/// Like [`parse`], for bytes not yet known to be UTF-8.
pub fn parse_bytes(bytes: &[u8]) -> Result<Vec<Node>, YamlError> {
    match std::str::from_utf8(bytes) {
        Ok(text) => parse(text),
        Err(e) => {
            let good = bytes.get(..e.valid_up_to()).unwrap_or_default();
            let byte = bytes.get(e.valid_up_to()).copied().unwrap_or(0);
            Err(YamlError {
                line: line_count(good),
                msg: format!("invalid utf-8 (byte 0x{byte:02x})"),
            })
        }
    }
}

/// One document, from a non-blank line that is not `...`; leaves the cursor at the next
/// document marker or the end.
fn document(c: &mut Cursor) -> Result<Node, YamlError> {
    let text = c.text();
    if text.starts_with('%') {
        return Err(c.err("directives ('%') are not supported"));
    }
    let node = if cursor::is_marker(text, "---") {
        let line = c.line_no();
        c.col = 3;
        block::value_after(c, -1, block::After::Doc, line, 1)?
    } else {
        c.next_content()?;
        block::block_node(c, -1, 1)?
    };
    if c.next_content()?.is_some() {
        return Err(c.err("unexpected content after the top-level node; check the indentation"));
    }
    if cursor::is_marker(c.text(), "...") {
        end_marker(c)?;
    }
    Ok(node)
}

/// Consumes a `...` line, which may only carry a comment.
fn end_marker(c: &mut Cursor) -> Result<(), YamlError> {
    c.col = 3;
    c.skip_space();
    if !c.at_line_end() {
        return Err(c.err("unexpected text after '...'"));
    }
    c.next_line();
    Ok(())
}

/// YAML forbids raw control characters; refusing them up front also lets
/// the scanner use 0 as its end-of-line sentinel.
fn check_chars(text: &str) -> Result<(), YamlError> {
    let bad = text
        .bytes()
        .position(|b| (b < 0x20 && b != b'\t' && b != b'\n' && b != b'\r') || b == 0x7f);
    match bad {
        None => Ok(()),
        Some(at) => {
            let bytes = text.as_bytes();
            Err(YamlError {
                line: line_count(bytes.get(..at).unwrap_or_default()),
                msg: format!(
                    "control character 0x{:02x} is not allowed",
                    bytes.get(at).copied().unwrap_or(0)
                ),
            })
        }
    }
}

/// The 1-based line on which the byte after `before` sits.
fn line_count(before: &[u8]) -> u32 {
    let n = before.iter().filter(|&&b| b == b'\n').count();
    u32::try_from(n).unwrap_or(u32::MAX).saturating_add(1)
}

/// The error for a collection at `depth` when that is too deep.
fn check_depth(c: &Cursor, depth: u32) -> Result<(), YamlError> {
    if depth > MAX_DEPTH {
        return Err(c.err(format!("nesting deeper than {MAX_DEPTH} levels")));
    }
    Ok(())
}

/// The keys of one map so far, with their lines: a key used twice is an
/// error naming both (a hash map: a file may have many keys).
#[derive(Default)]
struct Keys(HashMap<String, u32>);

impl Keys {
    fn add(&mut self, key: &str, line: u32) -> Result<(), YamlError> {
        if let Some(&first) = self.0.get(key) {
            // Cut short and escaped, so the message stays one short line.
            let mut shown: String = key.chars().take(60).flat_map(char::escape_debug).collect();
            if key.chars().nth(60).is_some() {
                shown.push_str("...");
            }
            let msg = format!("duplicate key '{shown}' (first on line {first})");
            return Err(YamlError { line, msg });
        }
        self.0.insert(key.to_string(), line);
        Ok(())
    }
}
