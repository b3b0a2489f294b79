//! Walking a compiled condition over one event. `and`/`or` short-circuit
//! and the logic is two-valued (libs filter.cpp sinsp_filter_expression::
//! compare); a missing value makes a check false whatever the operator,
//! `!=` and `exists` included (sinsp_filtercheck.cpp compare_nocache). No
//! allocation: composed values go to the caller's scratch buffers.

use super::compile::{Cmp, Xform};
use super::condition::Op;
use super::fields::{Field, Ty};
use super::program::{Next, Program};
use super::value::{components, Buf, Ip, Rhs, V};

/// Where values come from: the agent's event view, or a test's table.
pub trait Source {
    /// The value of `field` (with its `[arg]`), composed into `buf` when
    /// it is not stored whole anywhere.
    fn value<'a>(&'a self, field: Field, arg: Option<u32>, buf: &'a mut Buf) -> V<'a>;
    /// The event's code, when the source has one (evt.type as a bit test).
    fn code(&self) -> Option<u16> {
        None
    }
    /// A string field's value when it can be had without composing
    /// anything (a fast path; None: ask `value`). Must equal `value`'s.
    fn plain_str(&self, _field: Field) -> Option<&[u8]> {
        None
    }
    /// An integer or flag field's value the same way (flags as 0/1):
    /// Some(None) when it has no value. Must equal `value`'s.
    fn plain_num(&self, _field: Field) -> Option<Option<i64>> {
        None
    }
}

/// Ancestors walked for `proc.aname` without an index (libsinsp's thread
/// manager bounds its walks the same way against loops).
pub const MAX_ANCESTORS: u32 = 64;

pub struct Scratch {
    a: Buf,
    b: Buf,
}

impl Default for Scratch {
    fn default() -> Self {
        Scratch {
            a: Buf::new(),
            b: Buf::new(),
        }
    }
}

/// Whether the compiled condition holds for the event `src` describes.
/// Generic so the agent's source inlines into the walk (a dyn call per
/// check cost a store-forwarding stall on every returned value).
pub fn eval<S: Source + ?Sized>(p: &Program, src: &S, s: &mut Scratch) -> bool {
    let mut at = p.start(src.code());
    loop {
        match at {
            Next::Verdict(v) => return v,
            Next::Step(i) => {
                let Some((cmp, step)) = p.step(i) else {
                    return false;
                };
                at = step.after(check(cmp, src, s));
            }
        }
    }
}

#[inline(always)]
fn check<S: Source + ?Sized>(c: &Cmp, src: &S, s: &mut Scratch) -> bool {
    if let (Some(codes), Some(code)) = (c.codes, src.code()) {
        let hit = codes.has(code);
        return if c.op == Op::Ne { !hit } else { hit };
    }
    let f = c.lhs.field;
    if c.plain {
        match c.lhs.ty {
            Ty::Str => {
                if let Some(v) = src.plain_str(f) {
                    return compare(V::Str(v), c, V::Missing);
                }
            }
            Ty::Int | Ty::Bool => {
                if let Some(v) = src.plain_num(f) {
                    return compare_num(v, c);
                }
            }
            _ => {}
        }
    }
    // Multi-valued fields (libsinsp compare_full_aname, compare_ip/net).
    if f == Field::ProcAname && c.lhs.arg.is_none() {
        return any_ancestor(c, src, s);
    }
    if matches!(f, Field::FdIp | Field::FdNet) {
        return either_endpoint(c, src, s);
    }
    let Scratch { a, b } = s;
    a.clear();
    let v = transformed(src.value(f, c.lhs.arg, a), c.lhs.xform);
    let r = match &c.rhs_field {
        Some(l) => {
            b.clear();
            let r = src.value(l.field, l.arg, b);
            if r == V::Missing {
                return false;
            }
            r
        }
        None => V::Missing,
    };
    compare(v, c, r)
}

/// proc.aname OP x with no index: true when some ancestor, from the parent
/// up, matches (libsinsp compare_full_aname); the walk ends at a gap.
fn any_ancestor<S: Source + ?Sized>(c: &Cmp, src: &S, s: &mut Scratch) -> bool {
    for i in 1..=MAX_ANCESTORS {
        s.a.clear();
        let v = src.value(Field::ProcAname, Some(i), &mut s.a);
        if v == V::Missing {
            return false;
        }
        if compare(v, c, V::Missing) {
            return true;
        }
    }
    false
}

/// fd.ip / fd.net: `=` and `in` match either endpoint, `!=` needs both to
/// differ (libsinsp sinsp_filter_check_fd compare_ip, compare_net).
fn either_endpoint<S: Source + ?Sized>(c: &Cmp, src: &S, s: &mut Scratch) -> bool {
    let (cip, sip) = (Field::FdCip, Field::FdSip);
    let hit = |f: Field, s: &mut Scratch| -> Option<bool> {
        s.a.clear();
        match src.value(f, None, &mut s.a) {
            V::Ip(ip) => Some(ip_matches(&ip, &c.rhs)),
            _ => None,
        }
    };
    let (a, b) = (hit(cip, s), hit(sip, s));
    match c.op {
        Op::Exists => a.is_some() || b.is_some(),
        Op::Ne => match (a, b) {
            (Some(x), Some(y)) => !x && !y,
            _ => false,
        },
        _ => a.unwrap_or(false) || b.unwrap_or(false),
    }
}

fn ip_matches(ip: &Ip, rhs: &Rhs) -> bool {
    match rhs {
        Rhs::Ip(r) => r == ip,
        Rhs::IpSet(set) => set.binary_search(ip).is_ok(),
        Rhs::Nets(nets) => nets.iter().any(|n| n.contains(ip)),
        _ => false,
    }
}

fn transformed(v: V<'_>, x: Option<Xform>) -> V<'_> {
    let (Some(x), V::Str(s)) = (x, v) else {
        return v;
    };
    match x {
        Xform::Len => V::Int(s.len() as i64),
        Xform::Basename => V::Str(s.rsplit(|&b| b == b'/').next().unwrap_or(s)),
        // Case transforms are folded into the comparison below.
        Xform::Lower | Xform::Upper => v,
    }
}

fn fold(b: u8, x: Option<Xform>) -> u8 {
    match x {
        Some(Xform::Lower) => b.to_ascii_lowercase(),
        Some(Xform::Upper) => b.to_ascii_uppercase(),
        _ => b,
    }
}

/// Byte equality after the left side's case transform.
fn eq_folded(l: &[u8], r: &[u8], x: Option<Xform>) -> bool {
    l.len() == r.len() && l.iter().zip(r).all(|(&a, &b)| fold(a, x) == b)
}

#[inline(always)]
fn compare(v: V<'_>, c: &Cmp, rf: V<'_>) -> bool {
    // The common shapes first: a string in a set, a string equal to one.
    if let (V::Str(s), None) = (v, c.lhs.xform) {
        match (&c.rhs, c.op) {
            (Rhs::StrSet(set), Op::In | Op::Intersects) => return set.contains(s),
            (Rhs::Str(r), Op::Eq) => return s == &r[..],
            _ => {}
        }
    }
    compare_any(v, c, rf)
}

/// A bare integer or flag against constants, without building a value:
/// `compare_any`'s rules for V::Int and V::Bool, with no field on the right.
#[inline]
fn compare_num(v: Option<i64>, c: &Cmp) -> bool {
    let Some(i) = v else { return false };
    if c.op == Op::Exists {
        return true;
    }
    if c.lhs.ty == Ty::Bool {
        let b = i != 0;
        return match &c.rhs {
            Rhs::Bool(r) if c.op == Op::Ne => b != *r,
            Rhs::Bool(r) => b == *r,
            Rhs::BoolSet(set) => set.contains(&b),
            _ => false,
        };
    }
    let r = match &c.rhs {
        Rhs::Int(r) => *r,
        Rhs::IntSet(set) => return set.binary_search(&i).is_ok(),
        _ => return false,
    };
    int_holds(c.op, i, r)
}

/// An integer comparison under `op` (`in` against one value is `=`).
#[inline(always)]
fn int_holds(op: Op, i: i64, r: i64) -> bool {
    match op {
        Op::Eq | Op::In | Op::Intersects => i == r,
        Op::Ne => i != r,
        Op::Lt => i < r,
        Op::Le => i <= r,
        Op::Gt => i > r,
        Op::Ge => i >= r,
        _ => false,
    }
}

fn compare_any(v: V<'_>, c: &Cmp, rf: V<'_>) -> bool {
    if v == V::Missing {
        return false;
    }
    if c.op == Op::Exists {
        return true;
    }
    let x = c
        .lhs
        .xform
        .filter(|x| matches!(x, Xform::Lower | Xform::Upper));
    let rhs_str: Option<&[u8]> = match (&c.rhs, rf) {
        (Rhs::Str(s), _) => Some(s),
        (_, V::Str(s)) => Some(s),
        _ => None,
    };
    match v {
        V::Str(s) => match (c.op, rhs_str) {
            (Op::Eq, Some(r)) => eq_folded(s, r, x),
            (Op::Ne, Some(r)) => !eq_folded(s, r, x),
            (Op::Contains, Some(r)) => find(s, r, |a, b| fold(a, x) == b),
            (Op::IContains, Some(r)) => find(s, r, |a, b| a.eq_ignore_ascii_case(&b)),
            (Op::StartsWith | Op::BStartsWith, Some(r)) => {
                s.len() >= r.len() && eq_folded(&s[..r.len()], r, x)
            }
            (Op::EndsWith, Some(r)) => {
                s.len() >= r.len() && eq_folded(&s[s.len() - r.len()..], r, x)
            }
            (Op::Glob, Some(r)) => glob(r, s, false),
            (Op::IGlob, Some(r)) => glob(r, s, true),
            (Op::Lt, Some(r)) => s < r,
            (Op::Le, Some(r)) => s <= r,
            (Op::Gt, Some(r)) => s > r,
            (Op::Ge, Some(r)) => s >= r,
            (Op::In | Op::Intersects, _) => match &c.rhs {
                Rhs::StrSet(set) if x.is_none() => set.contains(s),
                Rhs::StrSet(set) => set.iter().any(|e| eq_folded(s, e, x)),
                _ => false,
            },
            (Op::Pmatch, _) => match &c.rhs {
                Rhs::Paths(paths) => paths.iter().any(|p| prefix_match(p, s)),
                _ => false,
            },
            _ => false,
        },
        V::Int(i) => {
            let r = match (&c.rhs, rf) {
                (Rhs::Int(r), _) => *r,
                (_, V::Int(r)) => r,
                (Rhs::IntSet(set), _) => return set.binary_search(&i).is_ok(),
                _ => return false,
            };
            int_holds(c.op, i, r)
        }
        V::Bool(b) => {
            let r = match (&c.rhs, rf) {
                (Rhs::Bool(r), _) => *r,
                (_, V::Bool(r)) => r,
                (Rhs::BoolSet(set), _) => return set.contains(&b),
                _ => return false,
            };
            if c.op == Op::Ne {
                b != r
            } else {
                b == r
            }
        }
        V::Ip(ip) => {
            let hit = match rf {
                V::Ip(r) => r == ip,
                _ => ip_matches(&ip, &c.rhs),
            };
            if c.op == Op::Ne {
                !hit
            } else {
                hit
            }
        }
        V::Missing => false,
    }
}

fn find(hay: &[u8], needle: &[u8], eq: impl Fn(u8, u8) -> bool) -> bool {
    needle.is_empty()
        || (needle.len() <= hay.len()
            && hay
                .windows(needle.len())
                .any(|w| w.iter().zip(needle).all(|(&a, &b)| eq(a, b))))
}

/// pmatch (libs prefix_search.cpp): every component of `prefix` matches the
/// value's component at the same depth, as a glob.
fn prefix_match(prefix: &[Box<[u8]>], path: &[u8]) -> bool {
    let mut comps = components(path);
    prefix
        .iter()
        .all(|p| comps.next().is_some_and(|c| glob(p, c, false)))
}

/// fnmatch(pattern, s, 0) (libs utils.cpp glob_match): `*` also crosses
/// `/` since FNM_PATHNAME is not set; `?`, `[...]`, `[!...]`, `\x`.
/// Iterative with one backtrack point: linear in practice, never recursive.
pub fn glob(pat: &[u8], s: &[u8], fold: bool) -> bool {
    let eq = |a: u8, b: u8| {
        if fold {
            a.eq_ignore_ascii_case(&b)
        } else {
            a == b
        }
    };
    let (mut p, mut i) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while i < s.len() {
        let step = match pat.get(p) {
            Some(b'*') => {
                star = Some((p, i));
                p += 1;
                continue;
            }
            Some(b'?') => Some(p + 1),
            Some(b'[') => class(pat, p, s[i], fold),
            Some(b'\\') if p + 1 < pat.len() => eq(pat[p + 1], s[i]).then_some(p + 2),
            Some(&c) => eq(c, s[i]).then_some(p + 1),
            None => None,
        };
        match (step, star) {
            (Some(np), _) => {
                p = np;
                i += 1;
            }
            (None, Some((sp, si))) => {
                p = sp + 1;
                i = si + 1;
                star = Some((sp, si + 1));
            }
            (None, None) => return false,
        }
    }
    pat[p.min(pat.len())..].iter().all(|&c| c == b'*')
}

/// A `[...]` class at `p`: the position after it when `c` matches.
fn class(pat: &[u8], p: usize, c: u8, fold: bool) -> Option<usize> {
    let mut j = p + 1;
    let neg = matches!(pat.get(j), Some(b'!' | b'^'));
    if neg {
        j += 1;
    }
    let c = if fold { c.to_ascii_lowercase() } else { c };
    let mut hit = false;
    let mut first = true;
    loop {
        let lo = *pat.get(j)?;
        if lo == b']' && !first {
            break;
        }
        first = false;
        let lo = if fold { lo.to_ascii_lowercase() } else { lo };
        if pat.get(j + 1) == Some(&b'-') && pat.get(j + 2).is_some_and(|&h| h != b']') {
            let hi = pat[j + 2];
            let hi = if fold { hi.to_ascii_lowercase() } else { hi };
            hit |= lo <= c && c <= hi;
            j += 3;
        } else {
            hit |= lo == c;
            j += 1;
        }
    }
    (hit != neg).then_some(j + 1)
}
