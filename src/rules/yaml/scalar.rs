//! Plain and quoted scalars, which may span lines: line breaks fold to a
//! space, and each blank line in between to a newline.

use super::cursor::{indent_of, is_ws, Cursor};
use super::{Node, Value, YamlError};

/// A scalar node; the plain `~`, `null`, `Null`, `NULL` and "" are null.
pub(super) fn node(text: String, quoted: bool, line: u32) -> Node {
    let null = !quoted && matches!(text.as_str(), "" | "~" | "null" | "Null" | "NULL");
    let value = if null {
        Value::Null
    } else {
        Value::Scalar { text, quoted }
    };
    Node { line, value }
}

fn is_flow_indicator(b: u8) -> bool {
    matches!(b, b',' | b'[' | b']' | b'{' | b'}')
}

/// Whether a plain scalar may start at the cursor, with a message naming
/// the construct if not.
pub(super) fn check_plain_start(c: &Cursor, flow: bool) -> Result<(), YamlError> {
    let next = c.peek_at(1);
    // `-x`, `?x`, `:x` are text; followed by a space they are indicators.
    let safe_next = next != 0 && !is_ws(next) && !(flow && is_flow_indicator(next));
    let msg = match c.peek() {
        b'&' => "anchors are not supported".to_string(),
        b'*' => "aliases are not supported".to_string(),
        b'!' => "tags are not supported".to_string(),
        b'-' | b'?' | b':' if safe_next => return Ok(()),
        b'-' => "a block sequence entry is not allowed here".to_string(),
        b'?' => "complex keys ('? ') are not supported".to_string(),
        b':' => "missing key before ':'".to_string(),
        b'|' | b'>' => "block scalars are not allowed inside flow collections".to_string(),
        b'%' | b'@' | b'`' => format!(
            "'{}' cannot start a plain scalar; quote the value",
            c.peek() as char
        ),
        b',' | b'[' | b']' | b'{' | b'}' | b'#' => format!("unexpected '{}'", c.peek() as char),
        0 => "unexpected end of line".to_string(),
        _ => return Ok(()),
    };
    Err(c.err(msg))
}

/// On one line from `start`: the end of a plain scalar's text (trailing
/// whitespace excluded) and where scanning stopped (a comment, a `: `,
/// a flow indicator in flow context, or the end of the line).
pub(super) fn plain_end(s: &[u8], start: usize, flow: bool) -> (usize, usize) {
    let mut i = start;
    while let Some(&b) = s.get(i) {
        let next = s.get(i + 1).copied().unwrap_or(0);
        let prev_ws = i
            .checked_sub(1)
            .and_then(|p| s.get(p))
            .is_some_and(|&p| is_ws(p));
        let stop = match b {
            b'#' => prev_ws,
            b':' => next == 0 || is_ws(next) || (flow && is_flow_indicator(next)),
            _ => flow && is_flow_indicator(b),
        };
        if stop {
            break;
        }
        i += 1;
    }
    let mut end = i;
    while end > start && s.get(end - 1).is_some_and(|&b| is_ws(b)) {
        end -= 1;
    }
    (end, i)
}

/// A plain scalar from the cursor (whose first character was checked),
/// folded over continuation lines indented more than `parent`. Leaves the
/// cursor where the text stopped.
pub(super) fn plain(c: &mut Cursor, parent: isize, flow: bool) -> String {
    let mut out = String::new();
    loop {
        let (end, stop) = plain_end(c.bytes(), c.col, flow);
        out.push_str(c.slice(c.col, end));
        c.col = end;
        if stop < c.bytes().len() {
            return out; // a comment, `: ` or flow indicator ends it
        }
        let Some((line, col, breaks)) = continuation(c, parent) else {
            return out;
        };
        c.line = line;
        c.col = col;
        let (end, _) = plain_end(c.bytes(), col, flow);
        if end > col {
            fold(&mut out, breaks);
        }
    }
}

/// The next line a plain scalar continues on: its index, the column of
/// its text, and the line breaks crossed. Blank lines are crossed; a
/// comment, a document marker or a line not indented past `parent` ends
/// the scalar.
fn continuation(c: &Cursor, parent: isize) -> Option<(usize, usize, usize)> {
    let mut k = *c;
    let mut breaks = 0;
    loop {
        k.next_line();
        breaks += 1;
        if k.eof() || k.at_doc_marker() {
            return None;
        }
        k.skip_space();
        if k.peek() == 0 {
            continue;
        }
        let indented = indent_of(k.text()) as isize > parent;
        return (k.peek() != b'#' && indented).then_some((k.line, k.col, breaks));
    }
}

/// One line break is a space; n breaks are n-1 newlines.
fn fold(out: &mut String, breaks: usize) {
    if breaks <= 1 {
        out.push(' ');
    } else {
        out.extend(std::iter::repeat_n('\n', breaks - 1));
    }
}

/// A single- or double-quoted scalar from the cursor (at the quote); with
/// `one_line`, an error if it does not end on its line. Leaves the cursor
/// after the closing quote.
pub(super) fn quoted(c: &mut Cursor, one_line: bool) -> Result<String, YamlError> {
    let double = c.peek() == b'"';
    let start = c.line_no();
    let unterminated = || YamlError {
        line: start,
        msg: format!(
            "unterminated {}-quoted string",
            if double { "double" } else { "single" }
        ),
    };
    c.col += 1;
    let mut out = String::new();
    // Where the unescaped whitespace at the end of `out` starts: a line
    // break drops it.
    let mut trail: Option<usize> = None;
    loop {
        match c.peek() {
            0 if one_line => return Err(unterminated()),
            0 => {
                if let Some(t) = trail.take() {
                    out.truncate(t);
                }
                let breaks = skip_breaks(c).ok_or_else(unterminated)?;
                fold(&mut out, breaks);
            }
            b'\'' if !double && c.peek_at(1) == b'\'' => {
                out.push('\'');
                c.col += 2;
                trail = None;
            }
            b'\'' if !double => break,
            b'"' if double => break,
            b'\\' if double && c.peek_at(1) == 0 => {
                // An escaped line break joins the lines with nothing between.
                if one_line {
                    return Err(unterminated());
                }
                c.col += 1;
                let breaks = skip_breaks(c).ok_or_else(unterminated)?;
                out.extend(std::iter::repeat_n('\n', breaks - 1));
                trail = None;
            }
            b'\\' if double => {
                out.push(escape(c)?);
                trail = None;
            }
            b' ' | b'\t' => {
                trail.get_or_insert(out.len());
                out.push(c.peek() as char);
                c.col += 1;
            }
            _ => {
                let run = c.rest();
                let len = run
                    .find(['\'', '"', '\\', ' ', '\t'])
                    .unwrap_or(run.len())
                    .max(1);
                let piece = run.get(..len).unwrap_or(run);
                out.push_str(piece);
                c.col += piece.len().max(1);
                trail = None;
            }
        }
    }
    c.col += 1;
    Ok(out)
}

/// From the end of a line inside a quoted scalar to the next text: the
/// line breaks crossed, or `None` at the end of the input or a document
/// marker.
fn skip_breaks(c: &mut Cursor) -> Option<usize> {
    let mut breaks = 0;
    loop {
        c.next_line();
        breaks += 1;
        if c.eof() || c.at_doc_marker() {
            return None;
        }
        c.skip_space();
        if c.peek() != 0 {
            return Some(breaks);
        }
    }
}

/// The escape at the cursor (at the backslash) in a double-quoted scalar.
fn escape(c: &mut Cursor) -> Result<char, YamlError> {
    let code = c.peek_at(1);
    c.col += 2;
    let ch = match code {
        b'0' => '\0',
        b'a' => '\x07',
        b'b' => '\x08',
        b't' | b'\t' => '\t',
        b'n' => '\n',
        b'v' => '\x0b',
        b'f' => '\x0c',
        b'r' => '\r',
        b'e' => '\x1b',
        b' ' => ' ',
        b'"' => '"',
        b'/' => '/',
        b'\\' => '\\',
        b'N' => '\u{85}',
        b'_' => '\u{a0}',
        b'L' => '\u{2028}',
        b'P' => '\u{2029}',
        b'x' => hex(c, 2)?,
        b'u' => hex(c, 4)?,
        b'U' => hex(c, 8)?,
        _ => {
            let shown: String = c
                .slice(c.col.saturating_sub(1), c.bytes().len())
                .chars()
                .take(1)
                .collect();
            return Err(c.err(format!(
                "invalid escape '\\{shown}' in double-quoted string"
            )));
        }
    };
    Ok(ch)
}

/// `digits` hex digits at the cursor, as a character.
fn hex(c: &mut Cursor, digits: usize) -> Result<char, YamlError> {
    let text = c.slice(c.col, c.col + digits);
    let valid = text.len() == digits && text.bytes().all(|b| b.is_ascii_hexdigit());
    let code = if valid {
        u32::from_str_radix(text, 16).ok()
    } else {
        None
    };
    let Some(code) = code else {
        return Err(c.err(format!("invalid escape: expected {digits} hex digits")));
    };
    c.col += digits;
    char::from_u32(code)
        .ok_or_else(|| c.err(format!("invalid unicode escape (code point 0x{code:x})")))
}
