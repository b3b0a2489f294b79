//! Block structure: maps and sequences laid out by indentation, and the
//! value that follows a `key:`, a `- ` or a `---`.
//!
//! Convention: parsing a block node leaves the cursor past its last line
//! (a value ending mid-line takes the rest of it, which may only be a
//! comment); the caller then looks for the next line with content.
//! `parent` is the indentation of the enclosing block collection (-1 at
//! the top): a node's continuation lines must be indented more than it.

use super::cursor::{is_ws, Cursor};
use super::{block_scalar, check_depth, flow, scalar, Keys, Node, Value, YamlError};

/// What the value follows; it decides what may start on the same line.
#[derive(Clone, Copy, PartialEq)]
pub(super) enum After {
    Key,
    Item,
    Doc,
}

/// The node starting at the cursor, which is at its line's indentation.
pub(super) fn block_node(c: &mut Cursor, parent: isize, depth: u32) -> Result<Node, YamlError> {
    let indent = c.col;
    if is_seq_entry(c) {
        return block_seq(c, indent, depth);
    }
    if find_key(c).is_some() {
        return block_map(c, indent, depth);
    }
    inline_node(c, parent, depth)
}

/// The value after an indicator; the cursor is just past it. `line` is
/// the indicator's, which an empty value takes.
pub(super) fn value_after(
    c: &mut Cursor,
    parent: isize,
    after: After,
    line: u32,
    depth: u32,
) -> Result<Node, YamlError> {
    c.skip_space();
    if c.at_line_end() {
        c.next_line();
        return match c.next_content()? {
            Some(indent) if indent as isize > parent => block_node(c, parent, depth),
            // `key:` then `- item` at the key's own indentation is allowed.
            Some(indent) if after == After::Key && indent as isize == parent && is_seq_entry(c) => {
                block_seq(c, indent, depth)
            }
            _ => Ok(Node {
                line,
                value: Value::Null,
            }),
        };
    }
    // `- - a` and `- key: v`: a collection may start on an entry's line,
    // indented by where it starts.
    if after == After::Item {
        if is_seq_entry(c) {
            return block_seq(c, c.col, depth);
        }
        if find_key(c).is_some() {
            return block_map(c, c.col, depth);
        }
    }
    inline_node(c, parent, depth)
}

fn block_seq(c: &mut Cursor, indent: usize, depth: u32) -> Result<Node, YamlError> {
    check_depth(c, depth)?;
    let line = c.line_no();
    let mut items = Vec::new();
    loop {
        let item_line = c.line_no();
        c.col += 1; // the '-'
        items.push(value_after(
            c,
            indent as isize,
            After::Item,
            item_line,
            depth + 1,
        )?);
        match c.next_content()? {
            Some(i) if i == indent && is_seq_entry(c) => {}
            Some(i) if i > indent => return Err(c.err("bad indentation of a sequence entry")),
            // Less indented, or a key of the map this sequence is a value in.
            _ => break,
        }
    }
    Ok(Node {
        line,
        value: Value::Seq(items),
    })
}

fn block_map(c: &mut Cursor, indent: usize, depth: u32) -> Result<Node, YamlError> {
    check_depth(c, depth)?;
    let line = c.line_no();
    let mut entries = Vec::new();
    let mut seen = Keys::default();
    loop {
        let key_line = c.line_no();
        let Some((key, after)) = find_key(c) else {
            return Err(c.err(if is_seq_entry(c) {
                "expected a map key, found a sequence entry"
            } else {
                "expected a map key ('key: value')"
            }));
        };
        seen.add(&key, key_line)?;
        c.col = after;
        let value = value_after(c, indent as isize, After::Key, key_line, depth + 1)?;
        entries.push((key, value));
        match c.next_content()? {
            Some(i) if i == indent => {}
            Some(i) if i > indent => return Err(c.err("bad indentation of a map entry")),
            _ => break,
        }
    }
    Ok(Node {
        line,
        value: Value::Map(entries),
    })
}

/// A scalar or flow collection in block context, and the rest of its line.
fn inline_node(c: &mut Cursor, parent: isize, depth: u32) -> Result<Node, YamlError> {
    let line = c.line_no();
    let node = match c.peek() {
        b'|' | b'>' => return block_scalar::parse(c, parent),
        b'[' | b'{' => flow::collection(c, parent, depth)?,
        b'"' | b'\'' => {
            let text = scalar::quoted(c, false)?;
            Node {
                line,
                value: Value::Scalar { text, quoted: true },
            }
        }
        _ => {
            scalar::check_plain_start(c, false)?;
            let text = scalar::plain(c, parent, false);
            scalar::node(text, false, line)
        }
    };
    end_of_value(c, &node)?;
    Ok(node)
}

/// After a value only a comment may follow on its line.
fn end_of_value(c: &mut Cursor, node: &Node) -> Result<(), YamlError> {
    c.skip_space();
    if c.at_line_end() {
        c.next_line();
        return Ok(());
    }
    Err(c.err(match (c.peek(), &node.value) {
        (b':', Value::Seq(_) | Value::Map(_)) => "collections as keys are not supported",
        (b':', _) => "mapping values are not allowed here (check the indentation, or quote a value containing ': ')",
        _ => "unexpected text after the value",
    }))
}

/// `-` followed by whitespace or the end of the line.
fn is_seq_entry(c: &Cursor) -> bool {
    c.peek() == b'-' && (c.peek_at(1) == 0 || is_ws(c.peek_at(1)))
}

/// A `key:` on one line at the cursor: the key and the column after the
/// colon. Plain or quoted keys only.
fn find_key(c: &Cursor) -> Option<(String, usize)> {
    let mut k = *c;
    let key = match c.peek() {
        b'"' | b'\'' => {
            let text = scalar::quoted(&mut k, true).ok()?;
            k.skip_space();
            text
        }
        _ => {
            scalar::check_plain_start(c, false).ok()?;
            let (end, stop) = scalar::plain_end(c.bytes(), c.col, false);
            k.col = stop;
            c.slice(c.col, end).to_string()
        }
    };
    let colon = k.peek() == b':' && (k.peek_at(1) == 0 || is_ws(k.peek_at(1)));
    colon.then_some((key, k.col + 1))
}
