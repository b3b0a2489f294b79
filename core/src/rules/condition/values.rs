//! The values of a condition: quoted and bare strings, list literals and
//! field arguments (libs filter/parser.cpp; escapes as filter/escaping.cpp).

use super::{is_bare, is_blank, ParseError, Parser};
use crate::rules::escape::unescape;

impl Parser<'_> {
    pub(super) fn field_arg(&mut self) -> Result<String, ParseError> {
        if matches!(self.peek(), Some(b'"' | b'\'')) {
            return self.quoted();
        }
        let start = self.pos;
        while self
            .peek()
            .is_some_and(|b| !matches!(b, b']' | b'[' | b'"' | b'\'') && !is_blank(b))
        {
            self.pos += 1;
        }
        if self.pos == start {
            return Err(self.err("empty field argument".into()));
        }
        Ok(String::from_utf8_lossy(&self.s[start..self.pos]).into_owned())
    }

    pub(super) fn value(&mut self) -> Result<String, ParseError> {
        match self.peek() {
            Some(b'"' | b'\'') => self.quoted(),
            _ => {
                let start = self.pos;
                while self.peek().is_some_and(is_bare) {
                    self.pos += 1;
                }
                if self.pos == start {
                    return Err(self.err(format!("expected a value after '{}'", self.before())));
                }
                Ok(String::from_utf8_lossy(&self.s[start..self.pos]).into_owned())
            }
        }
    }

    pub(super) fn list(&mut self) -> Result<Vec<String>, ParseError> {
        self.pos += 1;
        let mut v = Vec::new();
        self.blanks();
        if self.peek() == Some(b')') {
            self.pos += 1;
            return Ok(v);
        }
        loop {
            self.blanks();
            v.push(self.value()?);
            self.blanks();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b')') => {
                    self.pos += 1;
                    return Ok(v);
                }
                _ => return Err(self.err("expected ',' or ')' in a list".into())),
            }
        }
    }

    pub(super) fn quoted(&mut self) -> Result<String, ParseError> {
        let q = self.s[self.pos];
        let start = self.pos + 1;
        let mut i = start;
        while i < self.s.len() {
            match self.s[i] {
                b'\\' => i += 2,
                b if b == q => break,
                _ => i += 1,
            }
        }
        if i >= self.s.len() {
            return Err(self.err("unterminated quoted string".into()));
        }
        let raw = &self.s[start..i];
        self.pos = i + 1;
        unescape(raw, q).map_err(|m| ParseError { pos: start, msg: m })
    }
}

/// Decimal, float or 0x hex, as libsinsp's numeric values.
pub(super) fn is_number(v: &str) -> bool {
    let t = v.strip_prefix('-').unwrap_or(v);
    if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        return !h.is_empty() && h.bytes().all(|b| b.is_ascii_hexdigit());
    }
    !t.is_empty() && t.parse::<f64>().is_ok() && t.bytes().all(|b| b.is_ascii_digit() || b == b'.')
}
