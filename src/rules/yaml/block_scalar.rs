//! Block scalars: `|` keeps line breaks, `>` folds them; `-` strips the
//! final break, `+` keeps trailing blank lines, a digit fixes the
//! indentation. Falco's long `desc:` and `condition:` texts use `>`.

use super::cursor::{indent_of, Cursor};
use super::{Node, Value, YamlError};

#[derive(Clone, Copy, PartialEq)]
enum Chomp {
    Strip,
    Clip,
    Keep,
}

/// The block scalar whose indicator is at the cursor; `parent` is the
/// enclosing collection's indentation. Leaves the cursor at the first line
/// after its text.
pub(super) fn parse(c: &mut Cursor, parent: isize) -> Result<Node, YamlError> {
    let line = c.line_no();
    let folded = c.peek() == b'>';
    c.col += 1;
    let (chomp, explicit) = header(c)?;
    c.next_line();
    let indent = match explicit {
        Some(m) => Some((parent.max(0) as usize).saturating_add(m)),
        None => detect_indent(c, parent)?,
    };
    let first = c.line;
    let lines = match indent {
        Some(indent) => content(c, indent),
        None => blank_lines(c),
    };
    // The input may end without a break after the scalar's last line.
    let mut last = *c;
    last.line = last.line.saturating_sub(1);
    let unbroken = c.line > first && !last.has_break();
    let text = assemble(&lines, unbroken, folded, chomp);
    Ok(Node {
        line,
        value: Value::Scalar {
            text,
            quoted: false,
        },
    })
}

/// The indicators after `|` or `>`, in either order, then an optional
/// comment.
fn header(c: &mut Cursor) -> Result<(Chomp, Option<usize>), YamlError> {
    let mut chomp = None;
    let mut indent = None;
    loop {
        match c.peek() {
            b'-' if chomp.is_none() => chomp = Some(Chomp::Strip),
            b'+' if chomp.is_none() => chomp = Some(Chomp::Keep),
            d @ b'1'..=b'9' if indent.is_none() => indent = Some(usize::from(d - b'0')),
            _ => break,
        }
        c.col += 1;
    }
    c.skip_space();
    if !c.at_line_end() {
        return Err(c.err(
            "invalid block scalar header (expected '|' or '>', then '-', '+' or a digit 1-9)",
        ));
    }
    Ok((chomp.unwrap_or(Chomp::Clip), indent))
}

/// The indentation of the first line with text, if it is part of the
/// scalar (indented past `parent`); `None` for an empty scalar.
fn detect_indent(c: &Cursor, parent: isize) -> Result<Option<usize>, YamlError> {
    let mut k = *c;
    let mut widest_blank = 0;
    while !k.eof() && !k.at_doc_marker() {
        let text = k.text();
        let spaces = indent_of(text);
        if spaces < text.len() {
            if spaces as isize <= parent.max(0) {
                return Ok(None);
            }
            if widest_blank > spaces {
                return Err(c.err("a leading blank line of a block scalar has more spaces than its first text line"));
            }
            return Ok(Some(spaces));
        }
        widest_blank = widest_blank.max(spaces);
        k.next_line();
    }
    Ok(None)
}

/// The scalar's lines with `indent` spaces removed; `None` for a blank one.
/// Stops at the first line with text indented less, or a document marker.
fn content<'a>(c: &mut Cursor<'a>, indent: usize) -> Vec<Option<&'a str>> {
    let mut lines = Vec::new();
    while !c.eof() && !c.at_doc_marker() {
        let text = c.text();
        let spaces = indent_of(text);
        let line = if spaces >= indent {
            Some(text.get(indent..).unwrap_or("")).filter(|t| !t.is_empty())
        } else if spaces == text.len() {
            None
        } else {
            break;
        };
        lines.push(line);
        c.next_line();
    }
    lines
}

/// An empty scalar still owns the blank lines after its header (`|+`
/// keeps them).
fn blank_lines<'a>(c: &mut Cursor<'a>) -> Vec<Option<&'a str>> {
    let mut lines = Vec::new();
    while !c.eof() && !c.at_doc_marker() && c.text().bytes().all(|b| b == b' ') {
        lines.push(None);
        c.next_line();
    }
    lines
}

/// Joins the lines: `|` with newlines; `>` folds a break between two
/// lines that do not start with whitespace into a space (or drops it
/// before blank lines), and keeps the rest. Then chomping, of the breaks
/// after the last text (`unbroken`: the last line has none).
fn assemble(lines: &[Option<&str>], unbroken: bool, folded: bool, chomp: Chomp) -> String {
    let last_text = lines.iter().rposition(Option::is_some);
    let body_len = last_text.map_or(0, |i| i + 1);
    let mut out = String::new();
    let mut prev: Option<&str> = None;
    let mut blanks = 0;
    for line in lines.iter().take(body_len) {
        let Some(text) = line else {
            blanks += 1;
            continue;
        };
        if let Some(p) = prev {
            if !folded || starts_ws(p) || starts_ws(text) {
                out.push('\n');
            } else if blanks == 0 {
                out.push(' ');
            }
        }
        out.extend(std::iter::repeat_n('\n', blanks));
        out.push_str(text);
        blanks = 0;
        prev = Some(text);
    }
    let text_break = usize::from(prev.is_some());
    let final_breaks = (text_break + lines.len() - body_len).saturating_sub(usize::from(unbroken));
    match chomp {
        Chomp::Strip => {}
        Chomp::Clip => out.extend(std::iter::repeat_n('\n', final_breaks.min(text_break))),
        Chomp::Keep => out.extend(std::iter::repeat_n('\n', final_breaks)),
    }
    out
}

fn starts_ws(text: &str) -> bool {
    text.starts_with([' ', '\t'])
}
