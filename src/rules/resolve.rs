//! What Falco does to a condition before compiling it (falco
//! userspace/engine/rule_loader_compiler.cpp): lists are substituted as
//! text (`resolve_list`), exceptions become an `and not (...)` suffix
//! (`build_rule_exception_infos`), and macros are substituted into the
//! parsed tree (filter_macro_resolver.cpp), each macro seeing only the
//! macros defined before it.

use std::collections::HashMap;

use super::condition::Expr;
use super::loader::{ExValue, Exception, ListInfo};

/// Expanded trees larger than this are refused: macros that reference
/// each other twice per level grow exponentially.
pub const MAX_NODES: usize = 200_000;

/// Each list's items, an item naming an earlier list expanded one level
/// from that list's raw items (compile_list_infos).
pub fn list_items(lists: &[ListInfo]) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = Vec::with_capacity(lists.len());
    for (i, l) in lists.iter().enumerate() {
        let mut items = Vec::new();
        for it in &l.items {
            match lists[..i].iter().find(|e| &e.name == it) {
                Some(e) => items.extend(e.items.iter().cloned()),
                None => items.push(it.clone()),
            }
        }
        out.push((l.name.clone(), items));
    }
    out
}

fn is_delim(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | b'(' | b')' | b',' | b'=')
}

fn quoted_item(s: &str) -> String {
    let q = s.starts_with('"') || s.starts_with('\'');
    if s.contains(' ') && !q {
        format!("\"{s}\"")
    } else {
        s.to_string()
    }
}

/// Every delimited occurrence of each list's name replaced by its items
/// joined with ", "; an empty list also takes a neighbouring comma.
pub fn substitute_lists(text: &str, lists: &[(String, Vec<String>)]) -> String {
    let mut s = text.to_string();
    for (name, items) in lists {
        if !s.contains(name.as_str()) {
            continue;
        }
        let joined = items
            .iter()
            .map(|i| quoted_item(i))
            .collect::<Vec<_>>()
            .join(", ");
        let mut out = String::with_capacity(s.len());
        let b = s.as_bytes();
        let mut i = 0;
        while let Some(off) = s[i..].find(name.as_str()) {
            let at = i + off;
            let end = at + name.len();
            let before_ok = at == 0 || is_delim(b[at - 1]);
            let after_ok = end >= b.len() || is_delim(b[end]);
            out.push_str(&s[i..at]);
            if before_ok && after_ok {
                if items.is_empty() {
                    remove_neighbour_comma(&mut out, &s, &mut i, end);
                    continue;
                }
                out.push_str(&joined);
            } else {
                out.push_str(name);
            }
            i = end;
        }
        out.push_str(&s[i..]);
        s = out;
    }
    s
}

/// An empty list leaves no dangling comma: drop the one before it, or else
/// the one after it.
fn remove_neighbour_comma(out: &mut String, s: &str, i: &mut usize, end: usize) {
    let trimmed = out.trim_end().len();
    if out[..trimmed].ends_with(',') {
        out.truncate(trimmed - 1);
        *i = end;
        return;
    }
    let rest = &s[end..];
    let lead = rest.len() - rest.trim_start().len();
    *i = if rest.trim_start().starts_with(',') {
        end + lead + 1
    } else {
        end
    };
}

fn render_value(v: &str) -> String {
    if v.contains(' ') && !v.starts_with('"') {
        format!("\"{v}\"")
    } else {
        v.to_string()
    }
}

fn render_cell(c: &ExValue, list_op: bool) -> String {
    match c {
        ExValue::One(v) if list_op => format!("({})", render_value(v)),
        ExValue::One(v) => render_value(v),
        ExValue::List(l) => format!(
            "({})",
            l.iter()
                .map(|v| render_value(v))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

fn is_list_op(c: &str) -> bool {
    matches!(c, "in" | "pmatch" | "intersects")
}

/// The condition with its exceptions, or an error naming the exception.
pub fn with_exceptions(cond: &str, ex: &[Exception]) -> Result<String, String> {
    let mut terms = Vec::new();
    for e in ex {
        if e.fields_is_list {
            let comps: Vec<String> = if e.comps.is_empty() {
                vec!["=".into(); e.fields.len()]
            } else {
                e.comps.clone()
            };
            if comps.len() != e.fields.len() {
                return Err(format!(
                    "exception '{}': fields and comps differ in length",
                    e.name
                ));
            }
            for row in &e.values {
                if row.len() != e.fields.len() {
                    return Err(format!(
                        "exception '{}': a value has {} items for {} fields",
                        e.name,
                        row.len(),
                        e.fields.len()
                    ));
                }
                let parts: Vec<String> = e
                    .fields
                    .iter()
                    .zip(&comps)
                    .zip(row)
                    .map(|((f, c), v)| format!("{f} {c} {}", render_cell(v, is_list_op(c))))
                    .collect();
                terms.push(format!("({})", parts.join(" and ")));
            }
        } else {
            let comp = e.comps.first().map_or("in", String::as_str);
            if !matches!(comp, "in" | "pmatch" | "intersects") {
                return Err(format!(
                    "exception '{}': comp '{comp}' needs a list of fields",
                    e.name
                ));
            }
            let vals: Vec<String> = e
                .values
                .iter()
                .flatten()
                .map(|v| match v {
                    ExValue::One(s) => render_value(s),
                    ExValue::List(l) => l
                        .iter()
                        .map(|s| render_value(s))
                        .collect::<Vec<_>>()
                        .join(", "),
                })
                .collect();
            if !vals.is_empty() {
                terms.push(format!("({} {comp} ({}))", e.fields[0], vals.join(", ")));
            }
        }
    }
    Ok(if terms.is_empty() {
        cond.to_string()
    } else {
        format!("({cond}) and not ({})", terms.join(" or "))
    })
}

/// Macro bodies by name, each already expanded.
pub type Macros = HashMap<String, Expr>;

/// Replaces every macro reference; `Err(name)` for an undefined one, or a
/// message when the tree grows past MAX_NODES.
pub fn expand(e: &Expr, macros: &Macros, nodes: &mut usize) -> Result<Expr, String> {
    *nodes += 1;
    if *nodes > MAX_NODES {
        return Err(format!(
            "condition larger than {MAX_NODES} nodes once macros are expanded"
        ));
    }
    Ok(match e {
        Expr::And(v) => Expr::And(
            v.iter()
                .map(|x| expand(x, macros, nodes))
                .collect::<Result<_, _>>()?,
        ),
        Expr::Or(v) => Expr::Or(
            v.iter()
                .map(|x| expand(x, macros, nodes))
                .collect::<Result<_, _>>()?,
        ),
        Expr::Not(x) => Expr::Not(Box::new(expand(x, macros, nodes)?)),
        Expr::Check(c) => Expr::Check(c.clone()),
        Expr::Macro(m) => {
            let body = macros
                .get(m)
                .ok_or_else(|| format!("Undefined macro '{m}' used in filter."))?;
            *nodes += count(body);
            if *nodes > MAX_NODES {
                return Err(format!(
                    "condition larger than {MAX_NODES} nodes once macros are expanded"
                ));
            }
            body.clone()
        }
    })
}

fn count(e: &Expr) -> usize {
    match e {
        Expr::And(v) | Expr::Or(v) => 1 + v.iter().map(count).sum::<usize>(),
        Expr::Not(x) => 1 + count(x),
        _ => 1,
    }
}
