//! Flow collections: `[a, b]` and `{k: v}`, nested, across lines (Falco's
//! long lists wrap). Indentation inside them is free, as in libyaml,
//! except that a plain scalar does not continue onto a line indented no
//! more than the enclosing block (`parent`): a forgotten `]` then fails
//! at the next rule, not at the end of the file.

use super::cursor::Cursor;
use super::{check_depth, scalar, Keys, Node, Value, YamlError};

/// A flow entry before we know whether it is a key.
enum Entry {
    Text {
        text: String,
        quoted: bool,
        line: u32,
    },
    Collection(Node),
}

impl Entry {
    fn into_node(self) -> Node {
        match self {
            Entry::Text { text, quoted, line } => scalar::node(text, quoted, line),
            Entry::Collection(node) => node,
        }
    }

    /// The text of a key; a collection cannot be one here.
    fn into_key(self) -> Result<String, YamlError> {
        match self {
            Entry::Text { text, .. } => Ok(text),
            Entry::Collection(node) => Err(YamlError {
                line: node.line,
                msg: "collections as keys are not supported".into(),
            }),
        }
    }
}

/// The collection at the cursor (`[` or `{`); leaves the cursor after it.
pub(super) fn collection(c: &mut Cursor, parent: isize, depth: u32) -> Result<Node, YamlError> {
    if c.peek() == b'[' {
        seq(c, parent, depth)
    } else {
        map(c, parent, depth)
    }
}

fn seq(c: &mut Cursor, parent: isize, depth: u32) -> Result<Node, YamlError> {
    check_depth(c, depth)?;
    let open = c.line_no();
    let what = "sequence";
    c.col += 1;
    let mut items = Vec::new();
    loop {
        skip_space(c, open, what)?;
        if c.peek() == b']' {
            break;
        }
        let entry = entry(c, parent, depth + 1)?;
        skip_space(c, open, what)?;
        let item = if c.peek() == b':' {
            // `[k: v]` is a sequence holding the map {k: v}.
            let line = c.line_no();
            let key = entry.into_key()?;
            let value = pair_value(c, parent, depth + 2, open, what, b']')?;
            Node {
                line,
                value: Value::Map(vec![(key, value)]),
            }
        } else {
            entry.into_node()
        };
        items.push(item);
        if !separator(c, open, what, b']')? {
            break;
        }
    }
    c.col += 1;
    Ok(Node {
        line: open,
        value: Value::Seq(items),
    })
}

fn map(c: &mut Cursor, parent: isize, depth: u32) -> Result<Node, YamlError> {
    check_depth(c, depth)?;
    let open = c.line_no();
    let what = "map";
    c.col += 1;
    let mut entries = Vec::new();
    let mut seen = Keys::default();
    loop {
        skip_space(c, open, what)?;
        if c.peek() == b'}' {
            break;
        }
        let key_line = c.line_no();
        let key = entry(c, parent, depth + 1)?.into_key()?;
        skip_space(c, open, what)?;
        let value = if c.peek() == b':' {
            pair_value(c, parent, depth + 1, open, what, b'}')?
        } else {
            Node {
                line: key_line,
                value: Value::Null,
            } // `{a, b}`: keys alone
        };
        seen.add(&key, key_line)?;
        entries.push((key, value));
        if !separator(c, open, what, b'}')? {
            break;
        }
    }
    c.col += 1;
    Ok(Node {
        line: open,
        value: Value::Map(entries),
    })
}

/// After a key and its `:` (at the cursor): the value, null if absent.
fn pair_value(
    c: &mut Cursor,
    parent: isize,
    depth: u32,
    open: u32,
    what: &str,
    close: u8,
) -> Result<Node, YamlError> {
    let line = c.line_no();
    c.col += 1;
    skip_space(c, open, what)?;
    if c.peek() == b',' || c.peek() == close {
        return Ok(Node {
            line,
            value: Value::Null,
        });
    }
    Ok(entry(c, parent, depth)?.into_node())
}

/// After an entry: `,` (true: more may follow) or the closing bracket
/// (false; the cursor stays on it).
fn separator(c: &mut Cursor, open: u32, what: &str, close: u8) -> Result<bool, YamlError> {
    skip_space(c, open, what)?;
    match c.peek() {
        b',' => {
            c.col += 1;
            Ok(true)
        }
        b if b == close => Ok(false),
        _ => Err(c.err(format!(
            "expected ',' or '{}' in the flow {what} opened on line {open}",
            close as char
        ))),
    }
}

/// One entry: a nested collection, a quoted or a plain scalar.
fn entry(c: &mut Cursor, parent: isize, depth: u32) -> Result<Entry, YamlError> {
    let line = c.line_no();
    match c.peek() {
        b'[' | b'{' => Ok(Entry::Collection(collection(c, parent, depth)?)),
        b'"' | b'\'' => Ok(Entry::Text {
            text: scalar::quoted(c, false)?,
            quoted: true,
            line,
        }),
        _ => {
            scalar::check_plain_start(c, true)?;
            Ok(Entry::Text {
                text: scalar::plain(c, parent, true),
                quoted: false,
                line,
            })
        }
    }
}

/// Skips whitespace, comments and line breaks; the input ending (or a
/// document marker) first is an unterminated collection.
fn skip_space(c: &mut Cursor, open: u32, what: &str) -> Result<(), YamlError> {
    loop {
        c.skip_space();
        if !c.at_line_end() {
            return Ok(());
        }
        c.next_line();
        if c.eof() || c.at_doc_marker() {
            return Err(YamlError {
                line: open,
                msg: format!("unterminated flow {what}"),
            });
        }
    }
}
