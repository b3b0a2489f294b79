//! A rule's alert as Falco writes it with `json_output: true` (falco
//! userspace/engine/formats.cpp `format_event`, falco_outputs.cpp): one
//! object with nlohmann's sorted keys: hostname, output (`<time>: <Priority>
//! <rendered output>`, the time as %evt.time, local HH:MM:SS.nnnnnnnnn),
//! output_fields (each field as written, typed: numbers, bools, strings,
//! null when missing, plus evt.time as integer ns), priority, rule, source,
//! tags (sorted), time (UTC RFC 3339 with ns). Rendered into fixed buffers:
//! no allocation per alert.

use super::eval::Source;
use super::format::{itoa_buf, render, write_value, Token};
use super::value::{Buf, V};
use super::Rule;

/// Largest alert line; longer outputs are cut at a character boundary.
pub const ALERT_MAX: usize = 8192;
pub type Line = heapless::Vec<u8, ALERT_MAX>;

pub struct AlertWriter {
    hostname: String,
    text: Buf,
    tmp: Buf,
    pub line: Line,
}

fn push(l: &mut Line, b: &[u8]) {
    let room = l.capacity() - l.len();
    let _ = l.extend_from_slice(&b[..b.len().min(room)]);
}

/// A JSON string: quotes, escapes, and U+FFFD for bytes that are not UTF-8.
fn push_str(l: &mut Line, s: &[u8]) {
    push(l, b"\"");
    for chunk in s.utf8_chunks() {
        for c in chunk.valid().chars() {
            let mut tmp = [0u8; 8];
            let b: &[u8] = match c {
                '"' => b"\\\"",
                '\\' => b"\\\\",
                '\n' => b"\\n",
                '\r' => b"\\r",
                '\t' => b"\\t",
                c if (c as u32) < 0x20 => {
                    let hex = b"0123456789abcdef";
                    tmp[..4].copy_from_slice(b"\\u00");
                    tmp[4] = hex[(c as usize) >> 4];
                    tmp[5] = hex[(c as usize) & 15];
                    &tmp[..6]
                }
                c => c.encode_utf8(&mut tmp).as_bytes(),
            };
            push(l, b);
        }
        if !chunk.invalid().is_empty() {
            push(l, "\u{fffd}".as_bytes());
        }
    }
    push(l, b"\"");
}

fn push_value(l: &mut Line, v: V<'_>, tmp: &mut Buf) {
    match v {
        V::Missing => push(l, b"null"),
        V::Int(i) => push(l, itoa_buf(i).bytes()),
        V::Bool(b) => push(l, if b { b"true" } else { b"false" }),
        V::Str(s) => push_str(l, s),
        V::Ip(_) => {
            tmp.clear();
            write_value(v, tmp);
            push_str(l, tmp);
        }
    }
}

/// Local wall-clock time as Falco's %evt.time: `HH:MM:SS.nnnnnnnnn`.
pub fn local_time(ns: u64, out: &mut Buf) {
    // The libc crate marks time_t deprecated on musl (its width changed in
    // musl 1.2 on 32-bit); the type is the one localtime_r takes either way.
    #[allow(deprecated)]
    let secs = (ns / 1_000_000_000) as libc::time_t;
    // SAFETY: localtime_r writes only into the zeroed tm we pass.
    let tm = unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        libc::localtime_r(&secs, &mut tm);
        tm
    };
    let frac = ns % 1_000_000_000;
    let parts = [tm.tm_hour as u64, tm.tm_min as u64, tm.tm_sec as u64];
    for (i, p) in parts.iter().enumerate() {
        let _ = out.push(b'0' + (p / 10 % 10) as u8);
        let _ = out.push(b'0' + (p % 10) as u8);
        let _ = out.push(if i < 2 { b':' } else { b'.' });
    }
    let mut d = [b'0'; 9];
    let mut f = frac;
    for i in (0..9).rev() {
        d[i] = b'0' + (f % 10) as u8;
        f /= 10;
    }
    let _ = out.extend_from_slice(&d);
}

impl AlertWriter {
    pub fn new(hostname: &str) -> AlertWriter {
        AlertWriter {
            hostname: hostname.to_string(),
            text: Buf::new(),
            tmp: Buf::new(),
            line: Line::new(),
        }
    }

    /// Renders `rule`'s alert for the event behind `src` at `time_ns`
    /// (epoch); the JSON line (with a newline) is in `self.line`.
    pub fn render(&mut self, rule: &Rule, src: &dyn Source, time_ns: u64) -> &[u8] {
        let (l, text, tmp) = (&mut self.line, &mut self.text, &mut self.tmp);
        l.clear();
        push(l, b"{\"hostname\":");
        push_str(l, self.hostname.as_bytes());
        push(l, b",\"output\":");
        text.clear();
        local_time(time_ns, text);
        let _ = text.extend_from_slice(b": ");
        let _ = text.extend_from_slice(rule.priority.name().as_bytes());
        let _ = text.push(b' ');
        let mut body = Buf::new();
        render(&rule.output, src, &mut body, tmp);
        let room = text.capacity() - text.len();
        let _ = text.extend_from_slice(&body[..body.len().min(room)]);
        push_str(l, text);
        push(l, b",\"output_fields\":{");
        let mut first = true;
        let mut time_done = false;
        for &i in &rule.output.sorted {
            let Token::Field { name, lhs, .. } = &rule.output.tokens[i] else {
                continue;
            };
            if !time_done && name.as_str() > "evt.time" {
                push_time_field(l, &mut first, time_ns);
                time_done = true;
            }
            if name == "evt.time" {
                continue;
            }
            if !first {
                push(l, b",");
            }
            first = false;
            push_str(l, name.as_bytes());
            push(l, b":");
            tmp.clear();
            let v = src.value(lhs.field, lhs.arg, tmp);
            let mut t2 = Buf::new();
            push_value(l, v, &mut t2);
        }
        if !time_done {
            push_time_field(l, &mut first, time_ns);
        }
        push(l, b"},\"priority\":");
        push_str(l, rule.priority.name().as_bytes());
        push(l, b",\"rule\":");
        push_str(l, rule.name.as_bytes());
        push(l, b",\"source\":");
        push_str(l, rule.source.as_bytes());
        push(l, b",\"tags\":[");
        for (i, t) in rule.tags.iter().enumerate() {
            if i > 0 {
                push(l, b",");
            }
            push_str(l, t.as_bytes());
        }
        push(l, b"],\"time\":\"");
        let mut tb = [0u8; 40];
        push(
            l,
            crate::base::time::rfc3339_nanos(time_ns, &mut tb).as_bytes(),
        );
        push(l, b"\"}");
        // A line cut short is closed so it still ends the record.
        if l.len() == l.capacity() {
            l.truncate(l.capacity() - 3);
            while l.last().is_some_and(|b| b & 0xc0 == 0x80) {
                l.pop();
            }
            push(l, b"\"}");
        }
        push(l, b"\n");
        &self.line
    }
}

fn push_time_field(l: &mut Line, first: &mut bool, ns: u64) {
    if !*first {
        push(l, b",");
    }
    *first = false;
    push(l, b"\"evt.time\":");
    push(l, itoa_buf(ns as i64).bytes());
}
