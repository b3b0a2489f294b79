//! A position in the input by line and byte column, and the line-level
//! tests that the block, flow and scalar parsers share. Every read is
//! bounds-checked: past the end of a line the cursor sees byte 0 (raw
//! control characters were refused before parsing, so 0 means only that).

use super::YamlError;

#[derive(Clone, Copy)]
pub(super) struct Cursor<'a> {
    lines: &'a [&'a str],
    /// The input ends with a line break (its last line has one).
    final_break: bool,
    /// 0-based index into `lines`.
    pub line: usize,
    /// Byte offset into the current line; always on a char boundary since
    /// the parser stops only at ASCII bytes.
    pub col: usize,
}

impl<'a> Cursor<'a> {
    pub fn new(lines: &'a [&'a str], final_break: bool) -> Self {
        Cursor {
            lines,
            final_break,
            line: 0,
            col: 0,
        }
    }

    pub fn eof(&self) -> bool {
        self.line >= self.lines.len()
    }

    /// The current line ends with a line break (all but maybe the last do).
    pub fn has_break(&self) -> bool {
        self.line + 1 < self.lines.len() || self.final_break
    }

    /// The current line, or "" past the end.
    pub fn text(&self) -> &'a str {
        self.lines.get(self.line).copied().unwrap_or("")
    }

    pub fn bytes(&self) -> &'a [u8] {
        self.text().as_bytes()
    }

    pub fn peek(&self) -> u8 {
        self.peek_at(0)
    }

    pub fn peek_at(&self, off: usize) -> u8 {
        let at = self.col.saturating_add(off);
        self.bytes().get(at).copied().unwrap_or(0)
    }

    /// Part of the current line; "" if the range is not valid.
    pub fn slice(&self, from: usize, to: usize) -> &'a str {
        self.text().get(from..to).unwrap_or("")
    }

    /// The current line from the cursor on.
    pub fn rest(&self) -> &'a str {
        self.text().get(self.col..).unwrap_or("")
    }

    pub fn line_no(&self) -> u32 {
        u32::try_from(self.line)
            .unwrap_or(u32::MAX)
            .saturating_add(1)
    }

    pub fn err(&self, msg: impl Into<String>) -> YamlError {
        YamlError {
            line: self.line_no(),
            msg: msg.into(),
        }
    }

    pub fn next_line(&mut self) {
        self.line = self.line.saturating_add(1);
        self.col = 0;
    }

    pub fn skip_space(&mut self) {
        while is_ws(self.peek()) {
            self.col += 1;
        }
    }

    /// At the end of the line or at a comment; `#` starts one only at the
    /// start of a line or after whitespace (`a#b` is text).
    pub fn at_line_end(&self) -> bool {
        match self.peek() {
            0 => true,
            b'#' => self.after_space(),
            _ => false,
        }
    }

    /// The cursor is at the start of the line or just after a space or tab.
    pub fn after_space(&self) -> bool {
        match self.col.checked_sub(1) {
            None => true,
            Some(i) => self.bytes().get(i).is_some_and(|&b| is_ws(b)),
        }
    }

    /// The current line is `---` or `...` (column 0 only).
    pub fn at_doc_marker(&self) -> bool {
        !self.eof() && (is_marker(self.text(), "---") || is_marker(self.text(), "..."))
    }

    /// Skips blank and comment-only lines.
    pub fn skip_blank_lines(&mut self) {
        while !self.eof() && is_blank(self.text()) {
            self.next_line();
        }
    }

    /// Moves to the next line with content and puts the cursor at its
    /// indentation, which it returns; `None` at the end or at a document
    /// marker. Tabs in the indentation are an error: their width is anyone's
    /// guess, so the structure would be too.
    pub fn next_content(&mut self) -> Result<Option<usize>, YamlError> {
        self.skip_blank_lines();
        if self.eof() || self.at_doc_marker() {
            return Ok(None);
        }
        let indent = indent_of(self.text());
        self.col = indent;
        if self.peek() == b'\t' {
            return Err(self.err("tabs are not allowed in indentation"));
        }
        Ok(Some(indent))
    }
}

pub(super) fn is_ws(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// `marker` (`---` or `...`) at the start of `line`, alone or followed by
/// whitespace.
pub(super) fn is_marker(line: &str, marker: &str) -> bool {
    line.strip_prefix(marker)
        .is_some_and(|rest| rest.bytes().next().is_none_or(is_ws))
}

/// Only whitespace, or a comment.
fn is_blank(line: &str) -> bool {
    let t = line.trim_start_matches([' ', '\t']);
    t.is_empty() || t.starts_with('#')
}

/// The number of leading spaces.
pub(super) fn indent_of(line: &str) -> usize {
    line.len() - line.trim_start_matches(' ').len()
}
