//! Rule outputs: `%field` tokens compiled once (libs eventformatter.cpp
//! `set_format`: `%`, an optional width, then the longest prefix that names
//! a field, with its `[arg]`), rendered per alert into a fixed buffer.
//! Falco prepends `*` to every format, so a missing value renders `<NA>`
//! instead of dropping the line.

use super::compile::{resolve_field, CompileError, Lhs};
use super::condition::FieldRef;
use super::eval::Source;
use super::value::{Buf, V};

#[derive(Clone, Debug, PartialEq)]
pub enum Token {
    Text(String),
    Field {
        /// As written, `[arg]` included: the key in output_fields.
        name: String,
        lhs: Lhs,
        width: usize,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub struct Format {
    pub tokens: Vec<Token>,
    /// Field tokens by name, each name once: output_fields' key order.
    pub sorted: Vec<usize>,
}

fn field_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'.'
}

/// Compiles a rule's output; `Unsupported` when it names a field Kestrel
/// cannot answer.
pub fn compile(out: &str) -> Result<Format, CompileError> {
    let b = out.as_bytes();
    let mut tokens = Vec::new();
    let mut text = String::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'%' {
            let next = out[i..].find('%').map_or(b.len(), |o| i + o);
            text.push_str(&out[i..next]);
            i = next;
            continue;
        }
        i += 1;
        if i >= b.len() {
            return Err(CompileError::Invalid("the output ends in '%'".into()));
        }
        let ws = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let width = out[ws..i].parse::<usize>().unwrap_or(0).min(1024);
        let start = i;
        while i < b.len() && field_char(b[i]) {
            i += 1;
        }
        let mut end = i;
        // The longest prefix that names a field wins (`%proc.name.` works).
        let (name, lhs) = loop {
            let cand = out[start..end].trim_end_matches('.');
            if cand.is_empty() {
                return Err(CompileError::Invalid(format!(
                    "invalid formatting token at '%{}'",
                    &out[start..i.min(start + 20)]
                )));
            }
            let mut name = cand.to_string();
            let mut arg = None;
            let mut after = start + cand.len();
            if b.get(after) == Some(&b'[') {
                if let Some(close) = out[after..].find(']') {
                    arg = Some(out[after + 1..after + close].to_string());
                    name = out[start..after + close + 1].to_string();
                    after += close + 1;
                }
            }
            if cand == "container.info" {
                // Deprecated; Falco replaces it with nothing.
                i = after;
                break (String::new(), None);
            }
            let f = FieldRef {
                name: cand.to_string(),
                arg,
            };
            match resolve_field(&f) {
                Ok((field, arg, ty)) => {
                    i = after;
                    break (
                        name,
                        Some(Lhs {
                            field,
                            arg,
                            xform: None,
                            ty,
                        }),
                    );
                }
                Err(CompileError::Invalid(_)) if cand.contains('.') => {
                    end = start + cand.rfind('.').unwrap_or(0);
                    if end <= start {
                        return Err(CompileError::Invalid(format!("unknown filter: {cand}")));
                    }
                }
                Err(CompileError::Unsupported(m)) => {
                    return Err(CompileError::Unsupported(format!("output {m}")))
                }
                Err(_) => return Err(CompileError::Invalid(format!("unknown filter: {cand}"))),
            }
        };
        if let Some(lhs) = lhs {
            if !text.is_empty() {
                tokens.push(Token::Text(std::mem::take(&mut text)));
            }
            tokens.push(Token::Field { name, lhs, width });
        }
    }
    if !text.is_empty() {
        tokens.push(Token::Text(text));
    }
    let name = |i: &usize| match &tokens[*i] {
        Token::Field { name, .. } => name.as_str(),
        Token::Text(_) => "",
    };
    let mut sorted: Vec<usize> = (0..tokens.len())
        .filter(|&i| matches!(tokens[i], Token::Field { .. }))
        .collect();
    // By name, then position: the stable order, without the stable sort's
    // code (~4 KB of a binary with a 2 MB budget).
    sorted.sort_unstable_by(|a, b| name(a).cmp(name(b)).then(a.cmp(b)));
    sorted.dedup_by(|a, b| name(a) == name(b));
    Ok(Format { tokens, sorted })
}

/// A value as text, the way Falco prints it in an output line.
pub fn write_value(v: V<'_>, out: &mut Buf) {
    match v {
        V::Missing => {
            let _ = out.extend_from_slice(b"<NA>");
        }
        V::Str(s) => {
            let room = out.capacity() - out.len();
            let _ = out.extend_from_slice(&s[..s.len().min(room)]);
        }
        V::Int(i) => {
            let _ = out.extend_from_slice(itoa_buf(i).bytes());
        }
        V::Bool(b) => {
            let _ = out.extend_from_slice(if b { b"true" } else { b"false" });
        }
        V::Ip(ip) => ip.write(out),
    }
}

pub struct Num {
    buf: [u8; 24],
    start: usize,
}

impl Num {
    pub fn bytes(&self) -> &[u8] {
        &self.buf[self.start..]
    }
}

pub fn itoa_buf(i: i64) -> Num {
    let mut buf = [0u8; 24];
    let mut n = i.unsigned_abs();
    let mut p = buf.len();
    loop {
        p -= 1;
        buf[p] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    if i < 0 {
        p -= 1;
        buf[p] = b'-';
    }
    Num { buf, start: p }
}

/// The rendered output text (without Falco's time/priority prefix).
pub fn render(f: &Format, src: &dyn Source, out: &mut Buf, tmp: &mut Buf) {
    for t in &f.tokens {
        match t {
            Token::Text(s) => {
                let room = out.capacity() - out.len();
                let _ = out.extend_from_slice(&s.as_bytes()[..s.len().min(room)]);
            }
            Token::Field { lhs, width, .. } => {
                tmp.clear();
                let v = src.value(lhs.field, lhs.arg, tmp);
                let mut one = Buf::new();
                write_value(v, &mut one);
                if *width > 0 {
                    one.truncate(*width);
                    while one.len() < *width && one.push(b' ').is_ok() {}
                }
                let room = out.capacity() - out.len();
                let _ = out.extend_from_slice(&one[..one.len().min(room)]);
            }
        }
    }
}
