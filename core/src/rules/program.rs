//! A compiled condition as the per-event path runs it: the checks in one
//! array and the steps that visit them, each with the next step when its
//! check holds and when it does not. The tree's `and`, `or` and `not`
//! become those jumps (a `not` swaps them), so a rule is a loop over
//! checks with no recursion and no node dispatch, short-circuiting in the
//! tree's order (libs filter.cpp sinsp_filter_expression::compare).
//!
//! Two walks share the checks: one for any event, and one for an event
//! whose code is among the rule's, where every evt.type check that code
//! decides is already decided. The rule index only hands a rule such
//! events, so its `evt.type in (...)` costs nothing there, as in Falco,
//! whose ruleset index stands in for the same checks.

use super::compile::{Cmp, Node};
use super::condition::Op;
use super::events::EvtSet;
use super::fields::Field;
use super::value::Rhs;

/// Where a step goes: another step's index, or a verdict.
const ACCEPT: u32 = u32::MAX;
const REJECT: u32 = u32::MAX - 1;

pub struct Step {
    cmp: u32,
    on_true: u32,
    on_false: u32,
}

pub struct Program {
    cmps: Box<[Cmp]>,
    steps: Box<[Step]>,
    /// First step for any event; for an event of one of `codes`.
    any: u32,
    known: u32,
    /// Every code the condition can hold for (events::codes).
    codes: EvtSet,
}

/// Where the walk goes next, or the condition's verdict.
pub enum Next {
    Step(u32),
    Verdict(bool),
}

/// The condition with its checks moved out, each named by index.
enum Shape {
    Check(u32),
    Not(Box<Shape>),
    And(Vec<Shape>),
    Or(Vec<Shape>),
}

impl Program {
    /// `n` with its `and`s already ordered (compile::compile); `codes`
    /// what it can match (events::codes).
    pub fn new(n: Node, codes: EvtSet) -> Program {
        let mut cmps = Vec::new();
        let shape = take_checks(n, &mut cmps);
        let mut steps = Vec::new();
        let any = emit(&shape, ACCEPT, REJECT, None, &cmps, &mut steps);
        let known = emit(&shape, ACCEPT, REJECT, Some(codes), &cmps, &mut steps);
        Program {
            cmps: cmps.into_boxed_slice(),
            steps: steps.into_boxed_slice(),
            any,
            known,
            codes,
        }
    }

    /// The first step for an event of this code (None: not known).
    #[inline(always)]
    pub fn start(&self, code: Option<u16>) -> Next {
        match code {
            Some(c) if !self.codes.has(c) => Next::Verdict(false),
            Some(_) => next(self.known),
            None => next(self.any),
        }
    }

    #[inline(always)]
    pub fn step(&self, i: u32) -> Option<(&Cmp, &Step)> {
        let s = self.steps.get(i as usize)?;
        Some((self.cmps.get(s.cmp as usize)?, s))
    }

    /// Checks, each once.
    pub fn checks(&self) -> usize {
        self.cmps.len()
    }
}

impl Step {
    #[inline(always)]
    pub fn after(&self, held: bool) -> Next {
        next(if held { self.on_true } else { self.on_false })
    }
}

#[inline(always)]
fn next(i: u32) -> Next {
    match i {
        ACCEPT => Next::Verdict(true),
        REJECT => Next::Verdict(false),
        i => Next::Step(i),
    }
}

fn take_checks(n: Node, cmps: &mut Vec<Cmp>) -> Shape {
    match n {
        Node::Check(c) => {
            cmps.push(*c);
            Shape::Check((cmps.len() - 1) as u32)
        }
        Node::Not(x) => Shape::Not(Box::new(take_checks(*x, cmps))),
        Node::And(v) => Shape::And(
            v.into_vec()
                .into_iter()
                .map(|x| take_checks(x, cmps))
                .collect(),
        ),
        Node::Or(v) => Shape::Or(
            v.into_vec()
                .into_iter()
                .map(|x| take_checks(x, cmps))
                .collect(),
        ),
    }
}

/// What a check says for every event of `known`, if one thing: an evt.type
/// check that the code decides, or `evt.num = 0`, the `never_true` macro
/// of Falco's rule files (evt.num counts from 1: state/pipeline.rs).
fn decided(c: &Cmp, known: EvtSet) -> Option<bool> {
    if c.lhs.field == Field::EvtNum && c.plain && c.rhs == Rhs::Int(0) {
        return match c.op {
            Op::Eq | Op::In | Op::Le | Op::Lt => Some(false),
            Op::Ne | Op::Gt => Some(true),
            _ => None,
        };
    }
    let set = c.codes?;
    let hit = if known.0 & !set.0 == 0 {
        true
    } else if known.0 & set.0 == 0 {
        false
    } else {
        return None;
    };
    Some(if c.op == Op::Ne { !hit } else { hit })
}

/// Appends `s`'s steps, going to `t` when it holds and `f` when not; the
/// index of its first step (or `t`/`f` when nothing is left to check). An
/// empty `and` holds, an empty `or` does not.
fn emit(
    s: &Shape,
    t: u32,
    f: u32,
    known: Option<EvtSet>,
    cmps: &[Cmp],
    out: &mut Vec<Step>,
) -> u32 {
    match s {
        Shape::Check(i) => {
            match known.and_then(|k| decided(&cmps[*i as usize], k)) {
                Some(true) => return t,
                Some(false) => return f,
                None => {}
            }
            out.push(Step {
                cmp: *i,
                on_true: t,
                on_false: f,
            });
            (out.len() - 1) as u32
        }
        Shape::Not(x) => emit(x, f, t, known, cmps, out),
        Shape::And(v) => v
            .iter()
            .rev()
            .fold(t, |next, x| emit(x, next, f, known, cmps, out)),
        Shape::Or(v) => v
            .iter()
            .rev()
            .fold(f, |next, x| emit(x, t, next, known, cmps, out)),
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::eval::{eval, Scratch, Source};
    use crate::rules::fake::{condition, Fake, Val};
    use crate::rules::fields::Field;
    use crate::rules::value::{Buf, V};

    /// The same event with its code hidden: the walk for any event.
    struct NoCode<'a>(&'a Fake);

    impl Source for NoCode<'_> {
        fn value<'a>(&'a self, f: Field, arg: Option<u32>, buf: &'a mut Buf) -> V<'a> {
            self.0.value(f, arg, buf)
        }
    }

    #[test]
    fn the_known_code_walk_agrees_with_the_full_one() {
        let conditions = [
            "evt.type in (open, openat) and fd.name = /etc/shadow",
            "evt.type = openat and not evt.type = execve and fd.name = /x",
            "(evt.type = connect or (evt.type in (sendto, sendmsg) and fd.name = y)) and fd.num > 2",
            "not evt.type in (open, openat) or fd.name = /x",
            "evt.type != openat and fd.num >= 0",
        ];
        // evt.num counts from 1 where the code is known (the agent's events).
        let p = condition("fd.num > 0 and not evt.num = 0");
        let ev = Fake::default()
            .with(Field::EvtType, Val::S("openat"))
            .with(Field::EvtNum, Val::I(7))
            .with(Field::FdNum, Val::I(3));
        let mut s = Scratch::default();
        assert!(eval(&p, &ev, &mut s));
        assert!(eval(&p, &NoCode(&ev), &mut s));
        let events = [
            ("openat", "/etc/shadow", 3),
            ("openat", "/x", 1),
            ("connect", "y", 5),
            ("sendto", "y", 5),
            ("sendto", "z", 9),
            ("execve", "/x", 3),
        ];
        for c in conditions {
            let p = &condition(c);
            for (ty, name, fd) in events {
                let ev = Fake::default()
                    .with(Field::EvtType, Val::S(ty))
                    .with(Field::FdName, Val::S(name))
                    .with(Field::FdNum, Val::I(fd));
                assert!(ev.code().is_some(), "{ty}");
                let mut s = Scratch::default();
                assert_eq!(
                    eval(p, &ev, &mut s),
                    eval(p, &NoCode(&ev), &mut s),
                    "{c} on {ty} {name} {fd}"
                );
            }
        }
    }
}
