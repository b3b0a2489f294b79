//! Event types: the names a rule's `evt.type` may use, the codes Kestrel's
//! records carry, and the set of codes each rule can match (libs
//! filter/ppm_codes.cpp: only `evt.type` with `=`, `==`, `!=` or `in`
//! narrows; `and` intersects, `or` unites, `not` is pushed down). The index
//! lets an event no rule can match cost one lookup.

use super::compile::{Cmp, Node};
use super::condition::Op;
use super::fields::Field;
use super::value::Rhs;
use crate::capture::syscall_names;
use crate::capture::syscalls::SYSCALLS;

/// A code per syscall Kestrel can capture (its position in SYSCALLS), then
/// the scheduler's process exit.
pub const PROCEXIT: u16 = SYSCALLS.len() as u16;
pub const N_CODES: usize = SYSCALLS.len() + 1;
const _: () = assert!(N_CODES <= 128, "event sets are one u128");

/// Falco's event names that are not syscalls (libs event_table.c).
const NON_SYSCALL: &[&str] = &[
    "procexit",
    "switch",
    "signaldeliver",
    "container",
    "asyncevent",
    "pluginevent",
    "procinfo",
    "notification",
    "infra",
    "drop",
    "cpu_hotplug",
    "page_fault",
    "k8s",
    "tracer",
    "mesos",
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EvtSet(pub u128);

impl EvtSet {
    pub const ALL: EvtSet = EvtSet(if N_CODES == 128 {
        u128::MAX
    } else {
        (1u128 << N_CODES) - 1
    });
    pub const NONE: EvtSet = EvtSet(0);

    pub fn has(self, code: u16) -> bool {
        usize::from(code) < N_CODES && self.0 & (1 << code) != 0
    }

    pub fn codes(self) -> impl Iterator<Item = u16> {
        (0..N_CODES as u16).filter(move |&c| self.has(c))
    }

    fn not(self) -> EvtSet {
        EvtSet(!self.0 & EvtSet::ALL.0)
    }
}

pub fn code_of(name: &str) -> Option<u16> {
    if name == "procexit" {
        return Some(PROCEXIT);
    }
    SYSCALLS
        .iter()
        .position(|s| s.name == name)
        .map(|p| p as u16)
}

pub fn name_of(code: u16) -> &'static str {
    match SYSCALLS.get(usize::from(code)) {
        Some(s) => s.name,
        None => "procexit",
    }
}

/// Whether Falco knows the name at all (any ABI's syscall, or an event).
pub fn known(name: &str) -> bool {
    NON_SYSCALL.contains(&name)
        || [
            syscall_names::X86_64,
            syscall_names::ASM_GENERIC,
            syscall_names::I386,
            syscall_names::ARM_EABI,
        ]
        .iter()
        .any(|t| t.split_ascii_whitespace().any(|n| n == name))
}

/// The event names a check on evt.type compares with, if it narrows.
fn names(c: &Cmp) -> Option<Vec<&[u8]>> {
    if c.lhs.field != Field::EvtType || c.lhs.xform.is_some() || c.rhs_field.is_some() {
        return None;
    }
    match (&c.rhs, c.op) {
        (Rhs::Str(s), Op::Eq | Op::Ne) => Some(vec![s]),
        (Rhs::StrSet(v), Op::In) => Some(v.iter().collect()),
        _ => None,
    }
}

fn set_of(names: &[&[u8]]) -> EvtSet {
    let mut s = EvtSet::NONE;
    for n in names {
        if let Some(c) = std::str::from_utf8(n).ok().and_then(code_of) {
            s.0 |= 1 << c;
        }
    }
    s
}

/// The codes an evt.type check's value names (uncaptured names: none).
pub fn set_of_rhs(r: &Rhs) -> EvtSet {
    match r {
        Rhs::Str(s) => set_of(&[s]),
        Rhs::StrSet(v) => set_of(&v.iter().collect::<Vec<_>>()),
        _ => EvtSet::NONE,
    }
}

/// The codes a condition can match; `negated` pushes a `not` down.
pub fn codes(n: &Node, negated: bool) -> EvtSet {
    match n {
        Node::And(v) if !negated => v
            .iter()
            .fold(EvtSet::ALL, |a, x| EvtSet(a.0 & codes(x, false).0)),
        Node::And(v) => v
            .iter()
            .fold(EvtSet::NONE, |a, x| EvtSet(a.0 | codes(x, true).0)),
        Node::Or(v) if !negated => v
            .iter()
            .fold(EvtSet::NONE, |a, x| EvtSet(a.0 | codes(x, false).0)),
        Node::Or(v) => v
            .iter()
            .fold(EvtSet::ALL, |a, x| EvtSet(a.0 & codes(x, true).0)),
        Node::Not(x) => codes(x, !negated),
        Node::Check(c) => match names(c) {
            Some(n) => {
                let s = set_of(&n);
                if (c.op == Op::Ne) != negated {
                    s.not()
                } else {
                    s
                }
            }
            None => EvtSet::ALL,
        },
    }
}

/// Every event name the condition compares evt.type with, for validation
/// and for the notes on what Kestrel does not capture.
pub fn mentioned<'a>(n: &'a Node, out: &mut Vec<&'a [u8]>) {
    match n {
        Node::And(v) | Node::Or(v) => v.iter().for_each(|x| mentioned(x, out)),
        Node::Not(x) => mentioned(x, out),
        Node::Check(c) => {
            if c.lhs.field == Field::EvtType {
                match &c.rhs {
                    Rhs::Str(s) => out.push(s),
                    Rhs::StrSet(v) => out.extend(v.iter()),
                    _ => {}
                }
            }
        }
    }
}

/// Syscall number → code, per ABI, built once.
pub struct CodeMap {
    native: Box<[u8]>,
    compat: Box<[u8]>,
}

const NO_CODE: u8 = u8::MAX;
const _: () = assert!(N_CODES < NO_CODE as usize);

impl Default for CodeMap {
    fn default() -> Self {
        let max = crate::capture::SYSCALL_SLOTS;
        let mut native = vec![NO_CODE; max];
        let mut compat = vec![NO_CODE; max];
        for (i, s) in SYSCALLS.iter().enumerate() {
            if let Some(n) = s.nr.filter(|&n| usize::from(n) < max) {
                native[usize::from(n)] = i as u8;
            }
            if let Some(n) = s.compat_nr.filter(|&n| usize::from(n) < max) {
                compat[usize::from(n)] = i as u8;
            }
        }
        CodeMap {
            native: native.into(),
            compat: compat.into(),
        }
    }
}

impl CodeMap {
    /// The code of a syscall record, None for a number Kestrel never selects.
    pub fn syscall(&self, nr: i16, compat: bool) -> Option<u16> {
        let t = if compat { &self.compat } else { &self.native };
        let c = *t.get(usize::try_from(nr).ok()?)?;
        (c != NO_CODE).then_some(u16::from(c))
    }
}
