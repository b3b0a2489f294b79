//! From collected items to the compiled, indexed rule set (falco
//! rule_loader_compiler.cpp `compile_list_infos`, `compile_macros_infos`,
//! `compile_rule_infos`; falco_engine.cpp `load_rules`). Disabled rules are
//! compiled too, so their errors still fail the load, as in Falco.

use std::collections::HashMap;

use super::compile::{compile, CompileError};
use super::condition::{self, Expr};
use super::events::{self, EvtSet, N_CODES};
use super::loader::{Collector, Origin};
use super::program::Program;
use super::resolve::{expand, list_items, substitute_lists, with_exceptions, Macros};
use super::{format, LoadError, Priority, Rule, RuleSet, Skipped};

/// Depth allowed once macros are expanded (a parsed condition stops at
/// condition::MAX_DEPTH; macros nest subtrees under it).
pub const MAX_EXPANDED_DEPTH: usize = 4 * condition::MAX_DEPTH;

fn err(at: &Origin, item: &str, msg: impl Into<String>) -> LoadError {
    LoadError::at(&at.file, at.line, item, msg)
}

fn parse(text: &str, at: &Origin, item: &str) -> Result<Expr, LoadError> {
    condition::parse(text).map_err(|e| {
        // A byte offset means little in a folded YAML block: name the text.
        let from = text[..e.pos.min(text.len())]
            .char_indices()
            .rev()
            .nth(30)
            .map_or(0, |(i, _)| i);
        let near = text[from..e.pos.min(text.len())].trim();
        err(at, item, format!("condition: {} (near '{near}')", e.msg))
    })
}

/// Depth of a tree, without recursion.
fn depth(e: &Expr) -> usize {
    let mut max = 0;
    let mut stack = vec![(e, 1usize)];
    while let Some((e, d)) = stack.pop() {
        max = max.max(d);
        match e {
            Expr::And(v) | Expr::Or(v) => stack.extend(v.iter().map(|x| (x, d + 1))),
            Expr::Not(x) => stack.push((x, d + 1)),
            _ => {}
        }
    }
    max
}

fn expanded(e: &Expr, macros: &Macros, at: &Origin, item: &str) -> Result<Expr, LoadError> {
    let mut nodes = 0;
    let x = expand(e, macros, &mut nodes).map_err(|m| err(at, item, m))?;
    if depth(&x) > MAX_EXPANDED_DEPTH {
        return Err(err(
            at,
            item,
            format!("condition nested deeper than {MAX_EXPANDED_DEPTH} once macros are expanded"),
        ));
    }
    Ok(x)
}

pub fn build(c: Collector, min_priority: Priority) -> Result<RuleSet, LoadError> {
    let lists = list_items(&c.lists);
    let mut macros: Macros = HashMap::new();
    for m in &c.macros {
        let text = substitute_lists(&m.condition, &lists);
        let tree = parse(&text, &m.at, &m.name)?;
        // A macro sees only the macros defined before it.
        let tree = expanded(&tree, &macros, &m.at, &m.name)?;
        macros.insert(m.name.clone(), tree);
    }
    let mut set = RuleSet::empty();
    set.warnings = c.warnings;
    for r in &c.rules {
        let cond =
            with_exceptions(&r.condition, &r.exceptions).map_err(|m| err(&r.at, &r.name, m))?;
        let text = substitute_lists(&cond, &lists);
        let tree = parse(&text, &r.at, &r.name)?;
        let tree = expanded(&tree, &macros, &r.at, &r.name)?;
        let compiled = compile(&tree).and_then(|n| Ok((n, format::compile(&r.output)?)));
        let skip = |set: &mut RuleSet, reason: String| {
            if r.enabled {
                set.skipped.push(Skipped {
                    rule: r.name.clone(),
                    reason,
                });
            }
        };
        let (node, output) = match compiled {
            Ok(x) => x,
            Err(CompileError::Unsupported(m)) => {
                skip(&mut set, m);
                continue;
            }
            Err(CompileError::Invalid(m)) if r.skip_if_unknown_filter && is_unknown_field(&m) => {
                skip(&mut set, format!("{m} (skip-if-unknown-filter)"));
                continue;
            }
            Err(CompileError::Invalid(m)) => return Err(err(&r.at, &r.name, m)),
        };
        let mut names = Vec::new();
        events::mentioned(&node, &mut names);
        let mut uncaptured = Vec::new();
        for n in names {
            let n = String::from_utf8_lossy(n);
            if !events::known(&n) {
                return Err(err(&r.at, &r.name, format!("unknown event type {n}")));
            }
            if events::code_of(&n).is_none() && !uncaptured.contains(&n.to_string()) {
                uncaptured.push(n.to_string());
            }
        }
        if r.source != "syscall" {
            skip(
                &mut set,
                format!("source '{}' is not supported (only syscall)", r.source),
            );
            continue;
        }
        let codes = events::codes(&node, false);
        if codes == EvtSet::NONE {
            skip(
                &mut set,
                format!(
                    "matches only events Kestrel does not capture ({})",
                    uncaptured.join(", ")
                ),
            );
            continue;
        }
        if !uncaptured.is_empty() && r.enabled {
            set.warnings.push(format!(
                "rule '{}': evt.type {} not captured; it runs on the other event types",
                r.name,
                uncaptured.join(", ")
            ));
        }
        if !r.enabled {
            set.disabled += 1;
            continue;
        }
        if r.priority > min_priority {
            set.below_priority += 1;
            continue;
        }
        let id = set.rules.len() as u16;
        for code in codes.codes() {
            set.index[usize::from(code)].push(id);
        }
        set.rules.push(Rule {
            name: r.name.clone(),
            priority: r.priority,
            tags: r.tags.clone(),
            source: r.source.clone(),
            condition: Program::new(node, codes),
            output,
            codes,
        });
    }
    debug_assert_eq!(set.index.len(), N_CODES);
    Ok(set)
}

/// The errors skip-if-unknown-filter turns into a skip
/// (falco_load_result.cpp err_is_unknown_type_or_field).
fn is_unknown_field(m: &str) -> bool {
    [
        "nonexistent field",
        "invalid formatting token",
        "unknown event type",
        "unknown filter:",
    ]
    .iter()
    .any(|p| m.contains(p))
}
