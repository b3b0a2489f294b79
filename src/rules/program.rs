//! A compiled condition as the per-event path runs it: the checks in one
//! array, each with the next step when it holds and when it does not. The
//! tree's `and`, `or` and `not` become those jumps (a `not` swaps them), so
//! a rule is a loop over checks with no recursion and no node dispatch: the
//! short-circuit order is exactly the tree's (libs filter.cpp
//! sinsp_filter_expression::compare walks children in order and stops at
//! the first that decides).

use super::compile::{Cmp, Node};

/// Where a step goes: another step's index, or a verdict.
const ACCEPT: u32 = u32::MAX;
const REJECT: u32 = u32::MAX - 1;

pub struct Step {
    pub cmp: Cmp,
    on_true: u32,
    on_false: u32,
}

pub struct Program {
    steps: Box<[Step]>,
    entry: u32,
}

/// Where the walk goes next, or the condition's verdict.
pub enum Next {
    Step(u32),
    Verdict(bool),
}

impl Program {
    /// `n` with its `and`s already ordered (compile::compile).
    pub fn new(n: Node) -> Program {
        let mut steps = Vec::new();
        let entry = emit(n, ACCEPT, REJECT, &mut steps);
        Program {
            steps: steps.into_boxed_slice(),
            entry,
        }
    }

    pub fn entry(&self) -> Next {
        next(self.entry)
    }

    pub fn step(&self, i: u32) -> Option<&Step> {
        self.steps.get(i as usize)
    }

    pub fn len(&self) -> usize {
        self.steps.len()
    }

    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
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

/// Appends `n`'s steps, going to `t` when it holds and `f` when not; the
/// index of its first step. An empty `and` holds, an empty `or` does not.
fn emit(n: Node, t: u32, f: u32, out: &mut Vec<Step>) -> u32 {
    match n {
        Node::Check(cmp) => {
            out.push(Step {
                cmp: *cmp,
                on_true: t,
                on_false: f,
            });
            (out.len() - 1) as u32
        }
        Node::Not(x) => emit(*x, f, t, out),
        Node::And(v) => v
            .into_vec()
            .into_iter()
            .rev()
            .fold(t, |next, x| emit(x, next, f, out)),
        Node::Or(v) => v
            .into_vec()
            .into_iter()
            .rev()
            .fold(f, |next, x| emit(x, t, next, out)),
    }
}
