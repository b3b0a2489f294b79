//! From a parsed, macro-free condition to the form the per-event path
//! walks: every field resolved to an extractor, every value parsed once for
//! its field's type, every list sorted for a binary search. What Falco
//! rejects is an error; what Falco accepts and Kestrel cannot answer is
//! `Unsupported`, so the loader skips the rule and says why.

use super::condition::{Check, Expr, FieldRef, Op, Operand, Rhs as AstRhs};
use super::fields::{self, Arg, Field, Ty};
use super::value::{self, Rhs};

#[derive(Clone, Debug, PartialEq)]
pub enum CompileError {
    /// Valid for Falco, beyond what Kestrel captures: skip the rule.
    Unsupported(String),
    /// Falco would refuse it too: the load fails.
    Invalid(String),
}

/// A transformer on the left side (libs filter/parser.cpp, 0.17-0.19).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Xform {
    Lower,
    Upper,
    Basename,
    Len,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Lhs {
    pub field: Field,
    pub arg: Option<u32>,
    pub xform: Option<Xform>,
    /// The type compared: the field's, or Int after `len`.
    pub ty: Ty,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Cmp {
    pub lhs: Lhs,
    pub op: Op,
    pub rhs: Rhs,
    /// `val(field)`: compared against another field of the same event.
    pub rhs_field: Option<Lhs>,
    /// evt.type `=`/`!=`/`in` as a set of event codes: a bit test instead
    /// of string compares (codes and captured names are one to one).
    pub codes: Option<super::events::EvtSet>,
    /// The left side is a bare field (no argument, transform or field on
    /// the right): its value may come from the source's fast paths.
    pub plain: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Node {
    And(Box<[Node]>),
    Or(Box<[Node]>),
    Not(Box<Node>),
    Check(Box<Cmp>),
}

/// Compiles `e`, then orders each `and` so that the checks most likely to
/// be false run first. Checks are pure and the logic two-valued, so the
/// order changes how much work a non-matching event costs, never a result.
pub fn compile(e: &Expr) -> Result<Node, CompileError> {
    let mut n = compile_tree(e)?;
    reorder(&mut n);
    Ok(n)
}

/// A node's expected cost on an event (rough instructions) and the chance
/// it is true, for ordering. An `and` runs its operands by cost over chance
/// of being false, the order that minimises expected work for independent
/// tests; an `or` by cost over chance of being true. Checks are pure and
/// the logic two-valued, so the order changes work, never a result.
/// Chances are priors: a value set or an equality rarely holds, a negated
/// one nearly always, a flag or a bound about half the time.
fn estimate(n: &Node) -> (f32, f32) {
    match n {
        Node::Check(c) if c.codes.is_some() => (2.0, 0.9),
        Node::Check(c) => {
            let mut cost = field_cost(c.lhs.field);
            cost += c.rhs_field.as_ref().map_or(0.0, |l| field_cost(l.field));
            if c.lhs.xform.is_some() {
                cost += 30.0;
            }
            if matches!(c.rhs, Rhs::StrSet(_) | Rhs::Paths(_) | Rhs::Nets(_)) {
                cost += 15.0;
            }
            let p = match c.op {
                Op::Ne | Op::Exists => 0.9,
                Op::Lt | Op::Le | Op::Gt | Op::Ge => 0.5,
                _ if c.lhs.ty == Ty::Bool => 0.5,
                // A field of a few values (a kind, a protocol) matches often.
                _ if matches!(
                    c.lhs.field,
                    Field::FdTypechar | Field::FdType | Field::FdL4proto | Field::EvtDir
                ) =>
                {
                    0.5
                }
                _ => 0.05,
            };
            (cost, p)
        }
        Node::Not(x) => {
            let (c, p) = estimate(x);
            (c, 1.0 - p)
        }
        Node::And(v) => v.iter().fold((0.0, 1.0), |(c, p), x| {
            let (xc, xp) = estimate(x);
            (c + p * xc, p * xp)
        }),
        Node::Or(v) => v.iter().fold((0.0, 0.0), |(c, p), x| {
            let (xc, xp) = estimate(x);
            (c + (1.0 - p) * xc, p + (1.0 - p) * xp)
        }),
    }
}

/// What reaching a field's value costs: the record alone, the thread
/// table, the fd table or the path scan, a parent, or composing text.
fn field_cost(f: Field) -> f32 {
    use Field::*;
    match f {
        EvtType | EvtDir | EvtNum | EvtRawres | EvtIsOpenRead | EvtIsOpenWrite | EvtIsOpenExec
        | ThreadTid | ContainerId | ContainerName => 3.0,
        ProcName | ProcPid | ProcSid | ProcTty | ProcIsExeFromMemfd | UserUid | UserLoginuid
        | GroupGid | ProcExepath | ProcExe | ProcPpid | FdNum | FdTypechar | FdType | FdL4proto => {
            25.0
        }
        FdName | FdNameraw | FdDirectory | FdFilename => 50.0,
        ProcPname | ProcPexe | ProcPexepath => 60.0,
        ProcAname | ProcAexepath => 300.0,
        f if composed(f) => 100.0,
        _ => 40.0,
    }
}

/// Sort key: expected cost over the chance of settling the node.
fn key(n: &Node, settles_when: bool) -> f32 {
    let (c, p) = estimate(n);
    let settle = if settles_when { p } else { 1.0 - p };
    c / settle.max(0.01)
}

fn composed(f: Field) -> bool {
    matches!(
        f,
        Field::EvtArgFlags
            | Field::EvtRes
            | Field::ProcArgs
            | Field::ProcCmdline
            | Field::ProcPcmdline
            | Field::ProcAname
            | Field::ProcCwd
            | Field::UserName
            | Field::GroupName
            | Field::EvtTimeIso
    )
}

/// Nested `and`s (and `or`s) from macros join their parent, so every
/// operand is ordered against every other; then each `and` is sorted by cost.
fn reorder(n: &mut Node) {
    let is_and = matches!(n, Node::And(_));
    match n {
        Node::And(v) | Node::Or(v) => {
            let mut flat = Vec::with_capacity(v.len());
            for mut c in std::mem::take(v).into_vec() {
                reorder(&mut c);
                match c {
                    Node::And(inner) if is_and => flat.extend(inner.into_vec()),
                    Node::Or(inner) if !is_and => flat.extend(inner.into_vec()),
                    c => flat.push(c),
                }
            }
            // Stable: ties keep the rule writer's order.
            flat.sort_by(|a, b| key(a, !is_and).total_cmp(&key(b, !is_and)));
            *v = flat.into_boxed_slice();
        }
        Node::Not(x) => reorder(x),
        Node::Check(_) => {}
    }
}

fn compile_tree(e: &Expr) -> Result<Node, CompileError> {
    Ok(match e {
        Expr::And(v) => Node::And(v.iter().map(compile_tree).collect::<Result<_, _>>()?),
        Expr::Or(v) => Node::Or(v.iter().map(compile_tree).collect::<Result<_, _>>()?),
        Expr::Not(x) => Node::Not(Box::new(compile_tree(x)?)),
        Expr::Check(c) => Node::Check(Box::new(check(c)?)),
        Expr::Macro(m) => return Err(CompileError::Invalid(format!("undefined macro '{m}'"))),
    })
}

/// A field name, resolved; `Unsupported` for one Falco has and Kestrel lacks.
pub fn resolve_field(f: &FieldRef) -> Result<(Field, Option<u32>, Ty), CompileError> {
    let Some(info) = fields::lookup(&f.name) else {
        if let Some(why) = fields::unavailable(&f.name) {
            return Err(CompileError::Unsupported(format!("{}: {why}", f.name)));
        }
        if f.name.starts_with("evt.arg") {
            return Err(CompileError::Unsupported(format!(
                "{}: this argument is not captured",
                f.name
            )));
        }
        return Err(CompileError::Invalid(format!(
            "filter_check called with nonexistent field {}",
            f.name
        )));
    };
    let arg = match (&f.arg, info.arg) {
        (None, _) => None,
        (Some(a), Arg::Index) => Some(a.parse::<u32>().map_err(|_| {
            CompileError::Invalid(format!("{}[{a}]: the argument must be a number", f.name))
        })?),
        (Some(a), Arg::None) => {
            return Err(CompileError::Invalid(format!(
                "{}[{a}]: the field takes no argument",
                f.name
            )))
        }
    };
    Ok((info.field, arg, info.ty))
}

fn lhs(o: &Operand) -> Result<Lhs, CompileError> {
    match o {
        Operand::Field(f) => {
            let (field, arg, ty) = resolve_field(f)?;
            Ok(Lhs {
                field,
                arg,
                xform: None,
                ty,
            })
        }
        Operand::Transform(name, args) => {
            let x = match name.as_str() {
                "tolower" => Xform::Lower,
                "toupper" => Xform::Upper,
                "basename" => Xform::Basename,
                "len" => Xform::Len,
                "val" => {
                    return Err(CompileError::Invalid(
                        "val() is only allowed on the right of an operator".into(),
                    ))
                }
                _ => {
                    return Err(CompileError::Unsupported(format!(
                        "the {name}() transformer is not implemented"
                    )))
                }
            };
            let [Operand::Field(f)] = args.as_slice() else {
                return Err(CompileError::Unsupported(format!(
                    "{name}() over a transformer or several fields is not implemented"
                )));
            };
            let (field, arg, ty) = resolve_field(f)?;
            if ty != Ty::Str {
                return Err(CompileError::Invalid(format!(
                    "{name}() needs a string field, {} is not one",
                    f.name
                )));
            }
            if field == Field::ProcAname && arg.is_none() {
                return Err(CompileError::Invalid(
                    "proc.aname does not take transformers".into(),
                ));
            }
            let ty = if x == Xform::Len { Ty::Int } else { Ty::Str };
            Ok(Lhs {
                field,
                arg,
                xform: Some(x),
                ty,
            })
        }
    }
}

fn allowed(ty: Ty, op: Op) -> bool {
    use Op::*;
    match ty {
        Ty::Str => !matches!(op, BContains | BStartsWith),
        Ty::Int => matches!(op, Eq | Ne | Lt | Le | Gt | Ge | In | Intersects | Exists),
        Ty::Bool | Ty::Ip | Ty::Net => matches!(op, Eq | Ne | In | Intersects | Exists),
    }
}

fn check(c: &Check) -> Result<Cmp, CompileError> {
    let l = lhs(&c.lhs)?;
    if !allowed(l.ty, c.op) {
        return Err(CompileError::Invalid(format!(
            "operator {:?} is not compatible with the field's type ({:?})",
            c.op, l.ty
        )));
    }
    if c.op == Op::Regex {
        return Err(CompileError::Unsupported(
            "the regex operator is not implemented".into(),
        ));
    }
    let invalid = CompileError::Invalid;
    let (rhs, rhs_field) = match &c.rhs {
        AstRhs::None => (Rhs::None, None),
        AstRhs::Operand(Operand::Transform(n, args)) if n == "val" => {
            let [o] = args.as_slice() else {
                return Err(invalid("val() takes one field".into()));
            };
            let r = lhs(o)?;
            if r.ty != l.ty {
                return Err(invalid("val() compares fields of different types".into()));
            }
            (Rhs::None, Some(r))
        }
        AstRhs::Operand(o) => {
            let r = lhs(o)?;
            if r.ty != l.ty {
                return Err(invalid("a transformer compares different types".into()));
            }
            (Rhs::None, Some(r))
        }
        AstRhs::Value(v) => {
            if matches!(c.op, Op::In | Op::Intersects | Op::Pmatch) {
                return Err(invalid(format!("{:?} needs a list", c.op)));
            }
            let ty = match (l.ty, c.op) {
                // Ordering on a string field compares with a number's text.
                (Ty::Str, Op::Lt | Op::Le | Op::Gt | Op::Ge) => Ty::Str,
                (ty, _) => ty,
            };
            let r = value::parse_one(ty, v).map_err(invalid)?;
            (r, None)
        }
        AstRhs::List(items) => {
            if !matches!(c.op, Op::In | Op::Intersects | Op::Pmatch) {
                return Err(invalid(format!("{:?} does not take a list", c.op)));
            }
            if c.op == Op::Pmatch {
                if l.ty != Ty::Str {
                    return Err(invalid("pmatch needs a string field".into()));
                }
                (value::parse_paths(items), None)
            } else {
                (value::parse_list(l.ty, items).map_err(invalid)?, None)
            }
        }
    };
    let codes = (l.field == Field::EvtType
        && l.xform.is_none()
        && rhs_field.is_none()
        && matches!(c.op, Op::Eq | Op::Ne | Op::In | Op::Intersects))
    .then(|| super::events::set_of_rhs(&rhs));
    let plain = l.arg.is_none() && l.xform.is_none() && rhs_field.is_none();
    Ok(Cmp {
        lhs: l,
        op: c.op,
        rhs,
        rhs_field,
        codes,
        plain,
    })
}
