//! Test support: an event made of field values (`Fake`), and a condition
//! compiled as a rule's would be, without a rule file (loading rule files
//! is kestrel's). For the tests here and kestrel's.

use super::compile::compile;
use super::condition::parse;
use super::eval::Source;
use super::events;
use super::fields::Field;
use super::program::Program;
use super::value::{Buf, Ip, V};

/// `text` parsed and compiled, indexed by the event codes it can match.
/// Inline lists only: no named lists or macros.
pub fn condition(text: &str) -> Program {
    let tree = parse(text).unwrap_or_else(|e| panic!("{text}: {e:?}"));
    let node = compile(&tree).unwrap_or_else(|e| panic!("{text}: {e:?}"));
    let codes = events::codes(&node, false);
    Program::new(node, codes)
}

#[derive(Clone)]
pub enum Val {
    S(&'static str),
    I(i64),
    B(bool),
    Ip(Ip),
}

/// An event as a table of field values; absent fields are missing.
#[derive(Default)]
pub struct Fake(pub Vec<(Field, Option<u32>, Val)>);

impl Fake {
    pub fn with(mut self, f: Field, v: Val) -> Fake {
        self.0.push((f, None, v));
        self
    }
    pub fn at(mut self, f: Field, arg: u32, v: Val) -> Fake {
        self.0.push((f, Some(arg), v));
        self
    }
}

impl Source for Fake {
    /// The code of its evt.type, so rules run their known-code walk.
    fn code(&self) -> Option<u16> {
        self.0.iter().find_map(|(f, _, v)| match (f, v) {
            (Field::EvtType, Val::S(s)) => super::events::code_of(s),
            _ => None,
        })
    }

    fn value<'a>(&'a self, f: Field, arg: Option<u32>, _buf: &'a mut Buf) -> V<'a> {
        match self.0.iter().find(|(g, a, _)| *g == f && *a == arg) {
            Some((_, _, Val::S(s))) => V::Str(s.as_bytes()),
            Some((_, _, Val::I(i))) => V::Int(*i),
            Some((_, _, Val::B(b))) => V::Bool(*b),
            Some((_, _, Val::Ip(ip))) => V::Ip(*ip),
            None => V::Missing,
        }
    }
}
