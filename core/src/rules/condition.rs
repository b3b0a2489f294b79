//! Falco's condition language, parsed as libsinsp parses it (falcosecurity/
//! libs userspace/libsinsp/filter/parser.h, the grammar comment atop
//! `parser`, and parser.cpp): `or` binds loosest, then `and`, then `not`;
//! a check is a field (a dotted name with an optional `[arg]`), an operator
//! and a value, list or field; a bare identifier is a macro reference. Lists
//! were already substituted as text (see `lists`), so a list here is always
//! a parenthesised literal. Nesting deeper than Falco's limit (1000, set by
//! falco's rule_loader_compiler.cpp) is an error, never a stack overflow.

mod values;

use values::is_number;

/// Falco raises libsinsp's default depth of 100 to this.
pub const MAX_DEPTH: usize = 1000;

#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Not(Box<Expr>),
    Check(Check),
    Macro(String),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Check {
    pub lhs: Operand,
    pub op: Op,
    pub rhs: Rhs,
}

#[derive(Clone, Debug, PartialEq)]
pub struct FieldRef {
    pub name: String,
    pub arg: Option<String>,
}

/// A field, or a transformer applied to operands (`tolower(proc.name)`).
#[derive(Clone, Debug, PartialEq)]
pub enum Operand {
    Field(FieldRef),
    Transform(String, Vec<Operand>),
}

#[derive(Clone, Debug, PartialEq)]
pub enum Rhs {
    None,
    Value(String),
    List(Vec<String>),
    /// `val(field)` or a transformer: compares against another field.
    Operand(Operand),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Contains,
    IContains,
    BContains,
    StartsWith,
    BStartsWith,
    EndsWith,
    Glob,
    IGlob,
    Regex,
    In,
    Intersects,
    Pmatch,
    Exists,
}

/// What comes after an operator.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Unary,
    Num,
    Str,
    List,
}

// Longest first where one is a prefix of another.
const OPS: &[(&str, Op, Kind)] = &[
    ("exists", Op::Exists, Kind::Unary),
    ("<=", Op::Le, Kind::Num),
    ("<", Op::Lt, Kind::Num),
    (">=", Op::Ge, Kind::Num),
    (">", Op::Gt, Kind::Num),
    ("==", Op::Eq, Kind::Str),
    ("=", Op::Eq, Kind::Str),
    ("!=", Op::Ne, Kind::Str),
    ("contains", Op::Contains, Kind::Str),
    ("icontains", Op::IContains, Kind::Str),
    ("bcontains", Op::BContains, Kind::Str),
    ("startswith", Op::StartsWith, Kind::Str),
    ("bstartswith", Op::BStartsWith, Kind::Str),
    ("endswith", Op::EndsWith, Kind::Str),
    ("glob", Op::Glob, Kind::Str),
    ("iglob", Op::IGlob, Kind::Str),
    ("regex", Op::Regex, Kind::Str),
    ("intersects", Op::Intersects, Kind::List),
    ("in", Op::In, Kind::List),
    ("pmatch", Op::Pmatch, Kind::List),
];

/// Transformers libs 0.25 knows (parser.cpp); `val` only on the right.
const TRANSFORMERS: &[&str] = &[
    "tolower", "toupper", "b64", "basename", "len", "join", "concat", "getopt",
];

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    /// Byte offset in the condition text.
    pub pos: usize,
    pub msg: String,
}

pub fn parse(text: &str) -> Result<Expr, ParseError> {
    let mut p = Parser {
        s: text.as_bytes(),
        pos: 0,
        depth: 0,
    };
    let e = p.or()?;
    p.blanks();
    if p.pos < p.s.len() {
        return Err(p.err(format!(
            "unexpected token after '{}'",
            p.before().trim_end()
        )));
    }
    Ok(e)
}

struct Parser<'a> {
    s: &'a [u8],
    pos: usize,
    depth: usize,
}

fn is_blank(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

fn is_bare(b: u8) -> bool {
    !matches!(b, b'(' | b')' | b'"' | b'\'' | b'=' | b',') && !is_blank(b)
}

impl Parser<'_> {
    fn err(&self, msg: String) -> ParseError {
        ParseError { pos: self.pos, msg }
    }

    /// The text parsed so far, shortened for messages.
    fn before(&self) -> String {
        let start = self.pos.saturating_sub(40);
        let mut start = start;
        while start > 0 && !self.s.is_char_boundary_at(start) {
            start -= 1;
        }
        String::from_utf8_lossy(&self.s[start..self.pos]).into_owned()
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn blanks(&mut self) {
        while self.peek().is_some_and(is_blank) {
            self.pos += 1;
        }
    }

    /// A keyword (`and`, `or`, `not`) followed by a blank or `(`.
    fn keyword(&mut self, w: &str) -> bool {
        let end = self.pos + w.len();
        if self.s.get(self.pos..end) != Some(w.as_bytes()) {
            return false;
        }
        match self.s.get(end) {
            Some(&b) if is_blank(b) || b == b'(' => {
                self.pos = end;
                true
            }
            _ => false,
        }
    }

    fn enter(&mut self) -> Result<(), ParseError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.err(format!("condition nested deeper than {MAX_DEPTH}")));
        }
        Ok(())
    }

    fn or(&mut self) -> Result<Expr, ParseError> {
        self.enter()?;
        let mut v = vec![self.and()?];
        loop {
            self.blanks();
            if !self.keyword("or") {
                break;
            }
            v.push(self.and()?);
        }
        self.depth -= 1;
        Ok(if v.len() == 1 {
            v.remove(0)
        } else {
            Expr::Or(v)
        })
    }

    fn and(&mut self) -> Result<Expr, ParseError> {
        let mut v = vec![self.not()?];
        loop {
            self.blanks();
            if !self.keyword("and") {
                break;
            }
            v.push(self.not()?);
        }
        Ok(if v.len() == 1 {
            v.remove(0)
        } else {
            Expr::And(v)
        })
    }

    fn not(&mut self) -> Result<Expr, ParseError> {
        self.blanks();
        let mut n = 0usize;
        while self.keyword("not") {
            self.enter()?;
            n += 1;
            self.blanks();
        }
        let e = self.check()?;
        self.depth -= n;
        // Pairs of `not` cancel (parser.cpp parse_not).
        Ok(if n % 2 == 1 {
            Expr::Not(Box::new(e))
        } else {
            e
        })
    }

    fn check(&mut self) -> Result<Expr, ParseError> {
        self.blanks();
        if self.peek() == Some(b'(') {
            self.pos += 1;
            let e = self.or()?;
            self.blanks();
            if self.peek() != Some(b')') {
                return Err(self.err("expected ')'".into()));
            }
            self.pos += 1;
            return Ok(e);
        }
        let start = self.pos;
        let Some(name) = self.name() else {
            return Err(self.err(format!(
                "expected a field, a macro or '(' after '{}'",
                self.before().trim_end()
            )));
        };
        if !name.contains('.') && self.peek() != Some(b'(') {
            return Ok(Expr::Macro(name));
        }
        self.pos = start;
        let lhs = self.operand()?;
        self.condition(lhs)
    }

    /// `[a-zA-Z]+[a-zA-Z0-9_]*` segments joined by dots.
    fn name(&mut self) -> Option<String> {
        let start = self.pos;
        loop {
            if !self.peek().is_some_and(|b| b.is_ascii_alphabetic()) {
                break;
            }
            while self
                .peek()
                .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
            {
                self.pos += 1;
            }
            if self.peek() == Some(b'.')
                && self
                    .s
                    .get(self.pos + 1)
                    .is_some_and(|b| b.is_ascii_alphabetic())
            {
                self.pos += 1;
                continue;
            }
            break;
        }
        (self.pos > start).then(|| String::from_utf8_lossy(&self.s[start..self.pos]).into_owned())
    }

    /// A field with an optional `[arg]`, or a transformer call.
    fn operand(&mut self) -> Result<Operand, ParseError> {
        self.enter()?;
        let Some(name) = self.name() else {
            return Err(self.err("expected a field".into()));
        };
        let r = if !name.contains('.') {
            if !TRANSFORMERS.contains(&name.as_str()) && name != "val" {
                return Err(self.err(format!("unknown transformer '{name}'")));
            }
            self.pos += 1; // the '(' checked by the caller
            let mut args = Vec::new();
            loop {
                self.blanks();
                args.push(self.operand()?);
                self.blanks();
                match self.peek() {
                    Some(b',') => self.pos += 1,
                    Some(b')') => break,
                    _ => return Err(self.err(format!("expected ')' closing {name}(...)"))),
                }
            }
            self.pos += 1;
            Operand::Transform(name, args)
        } else {
            if !name.contains('.') {
                return Err(self.err(format!("'{name}' is not a field")));
            }
            let arg = if self.peek() == Some(b'[') {
                self.pos += 1;
                let a = self.field_arg()?;
                if self.peek() != Some(b']') {
                    return Err(self.err(format!("expected ']' after {name}[{a}")));
                }
                self.pos += 1;
                Some(a)
            } else {
                None
            };
            Operand::Field(FieldRef { name, arg })
        };
        self.depth -= 1;
        Ok(r)
    }

    fn operator(&mut self) -> Option<(Op, Kind)> {
        for &(w, op, kind) in OPS {
            let end = self.pos + w.len();
            if self.s.get(self.pos..end) != Some(w.as_bytes()) {
                continue;
            }
            let word = w.as_bytes()[0].is_ascii_alphabetic();
            // Word operators need a blank (or a list's parenthesis) after them.
            let next = self.s.get(end).copied();
            if word && !next.is_none_or(|b| is_blank(b) || (kind == Kind::List && b == b'(')) {
                continue;
            }
            self.pos = end;
            return Some((op, kind));
        }
        None
    }

    fn condition(&mut self, lhs: Operand) -> Result<Expr, ParseError> {
        self.blanks();
        let Some((op, kind)) = self.operator() else {
            return Err(self.err(format!(
                "expected an operator after '{}'",
                self.before().trim_end()
            )));
        };
        self.blanks();
        let rhs = match kind {
            Kind::Unary => Rhs::None,
            Kind::List => {
                if self.peek() == Some(b'(') {
                    Rhs::List(self.list()?)
                } else if self.rhs_operand_ahead() {
                    Rhs::Operand(self.rhs_operand()?)
                } else {
                    return Err(self.err(format!("expected a list after '{}'", self.before())));
                }
            }
            Kind::Num | Kind::Str => {
                if self.rhs_operand_ahead() {
                    Rhs::Operand(self.rhs_operand()?)
                } else {
                    let v = self.value()?;
                    if kind == Kind::Num && !is_number(&v) {
                        return Err(self.err(format!("'{v}' is not a number")));
                    }
                    Rhs::Value(v)
                }
            }
        };
        Ok(Expr::Check(Check { lhs, op, rhs }))
    }

    /// `val(` or a transformer name followed by `(`.
    fn rhs_operand_ahead(&self) -> bool {
        let rest = &self.s[self.pos..];
        let n = rest
            .iter()
            .take_while(|b| b.is_ascii_alphanumeric() || **b == b'_')
            .count();
        rest.get(n) == Some(&b'(')
            && (rest.starts_with(b"val(")
                || TRANSFORMERS.iter().any(|t| rest[..n] == *t.as_bytes()))
    }

    fn rhs_operand(&mut self) -> Result<Operand, ParseError> {
        if self.s[self.pos..].starts_with(b"val(") {
            self.pos += 4;
            self.blanks();
            let f = self.operand()?;
            self.blanks();
            if self.peek() != Some(b')') {
                return Err(self.err("expected ')' closing val(...)".into()));
            }
            self.pos += 1;
            return Ok(Operand::Transform("val".into(), vec![f]));
        }
        self.operand()
    }
}

trait CharBoundary {
    fn is_char_boundary_at(&self, i: usize) -> bool;
}

impl CharBoundary for [u8] {
    fn is_char_boundary_at(&self, i: usize) -> bool {
        self.get(i).is_none_or(|b| (*b as i8) >= -0x40)
    }
}

#[cfg(test)]
#[path = "condition_tests.rs"]
mod tests;
