//! Rule items: a full definition, `append: true`, `override:`, or the
//! deprecated enabled-only toggle (falco rule_loader_reader.cpp `read_item`
//! for the keys and defaults, rule_loader_collector.cpp `append` and
//! `selective_replace` for what each operation does).

use super::loader::{
    check_append_override, overrides, scalar, Collector, ExValue, Exception, How, Item, RuleInfo,
};
use super::yaml::{Node, Value};
use super::{LoadError, Priority};

const KEYS: &[&str] = &[
    "rule",
    "condition",
    "output",
    "desc",
    "priority",
    "source",
    "enabled",
    "tags",
    "exceptions",
    "warn_evttypes",
    "skip-if-unknown-filter",
    "capture",
    "capture_duration",
    "append",
    "override",
];

/// (key, append allowed, replace allowed)
const OVERRIDABLE: &[(&str, bool, bool)] = &[
    ("condition", true, true),
    ("output", true, true),
    ("desc", true, true),
    ("priority", false, true),
    ("enabled", false, true),
    ("tags", true, true),
    ("exceptions", true, true),
    ("warn_evttypes", false, true),
    ("skip-if-unknown-filter", false, true),
    ("capture", false, true),
    ("capture_duration", false, true),
];

impl Collector {
    pub(super) fn rule(&mut self, it: &Item<'_>) -> Result<(), LoadError> {
        self.warn_unknown(it, KEYS);
        check_append_override(it)?;
        let pos = self.rules.iter().position(|r| r.name == it.name);
        if it.get("override").is_some() {
            let ov = overrides(it, OVERRIDABLE)?;
            for (k, _, _) in OVERRIDABLE {
                if it.get(k).is_some() && !ov.iter().any(|(o, _)| o == k) {
                    return Err(it.err(format!(
                        "Unexpected key '{k}': no corresponding entry under 'override'"
                    )));
                }
            }
            let p =
                pos.ok_or_else(|| it.err(format!("no earlier rule '{}' to override", it.name)))?;
            let mut r = self.rules[p].clone();
            for (k, how) in ov {
                apply(&mut r, it, &k, how)?;
            }
            self.rules[p] = r;
            return Ok(());
        }
        if it.bool("append")?.unwrap_or(false) {
            let p =
                pos.ok_or_else(|| it.err(format!("no earlier rule '{}' to append to", it.name)))?;
            let mut r = self.rules[p].clone();
            if let Some(c) = it.str("condition")? {
                r.condition.push(' ');
                r.condition.push_str(&c);
            }
            if let Some(ex) = exceptions(it)? {
                merge_exceptions(&mut r.exceptions, ex, it)?;
            }
            self.rules[p] = r;
            return Ok(());
        }
        let full = ["condition", "output", "desc", "priority"]
            .iter()
            .any(|k| it.get(k).is_some());
        if !full {
            // The deprecated toggle: only `enabled` on an earlier rule.
            let e = it
                .bool("enabled")?
                .ok_or_else(|| it.err("rule has no condition"))?;
            let p = pos.ok_or_else(|| {
                it.err(format!(
                    "no earlier rule '{}' to enable or disable",
                    it.name
                ))
            })?;
            self.rules[p].enabled = e;
            return Ok(());
        }
        let r = definition(it)?;
        match pos {
            Some(p) => {
                if self.rules[p].source != r.source {
                    return Err(it.err("a rule redefined with another source"));
                }
                let at = self.rules[p].at.clone();
                self.rules[p] = RuleInfo { at, ..r };
            }
            None => self.rules.push(r),
        }
        Ok(())
    }
}

fn definition(it: &Item<'_>) -> Result<RuleInfo, LoadError> {
    let need = |k: &str| -> Result<String, LoadError> {
        it.str(k)?
            .ok_or_else(|| it.err(format!("rule has no '{k}'")))
    };
    let p = need("priority")?;
    Ok(RuleInfo {
        name: it.name.clone(),
        desc: need("desc")?,
        condition: need("condition")?,
        output: need("output")?.trim().to_string(),
        priority: Priority::parse(&p).ok_or_else(|| it.err(format!("invalid priority '{p}'")))?,
        tags: sorted(it.strings("tags")?.unwrap_or_default()),
        enabled: it.bool("enabled")?.unwrap_or(true),
        source: it.str("source")?.unwrap_or_else(|| "syscall".into()),
        exceptions: exceptions(it)?.unwrap_or_default(),
        skip_if_unknown_filter: it.bool("skip-if-unknown-filter")?.unwrap_or(false),
        at: super::loader::Origin {
            file: it.file.to_string(),
            line: it.node.line,
        },
    })
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    // Equal strings are alike: the stable sort's order, without its code.
    v.sort_unstable();
    v.dedup();
    v
}

fn apply(r: &mut RuleInfo, it: &Item<'_>, key: &str, how: How) -> Result<(), LoadError> {
    let text = |k: &str| -> Result<String, LoadError> { Ok(it.str(k)?.unwrap_or_default()) };
    let join = |old: &mut String, new: String| {
        if how == How::Append {
            old.push(' ');
            old.push_str(&new);
        } else {
            *old = new;
        }
    };
    match key {
        "condition" => join(&mut r.condition, text(key)?),
        "output" => join(&mut r.output, text(key)?.trim().to_string()),
        "desc" => join(&mut r.desc, text(key)?),
        "priority" => {
            let p = text(key)?;
            r.priority =
                Priority::parse(&p).ok_or_else(|| it.err(format!("invalid priority '{p}'")))?;
        }
        "enabled" => r.enabled = it.bool(key)?.unwrap_or(true),
        "tags" => {
            let t = it.strings(key)?.unwrap_or_default();
            if how == How::Append {
                r.tags.extend(t);
                r.tags = sorted(std::mem::take(&mut r.tags));
            } else {
                r.tags = sorted(t);
            }
        }
        "exceptions" => {
            let ex = exceptions(it)?.unwrap_or_default();
            if how == How::Append {
                merge_exceptions(&mut r.exceptions, ex, it)?;
            } else {
                r.exceptions = ex;
            }
        }
        "skip-if-unknown-filter" => r.skip_if_unknown_filter = it.bool(key)?.unwrap_or(false),
        _ => {}
    }
    Ok(())
}

/// New names are added (and need fields); known names get their values
/// appended and may not redefine fields or comps.
fn merge_exceptions(
    old: &mut Vec<Exception>,
    new: Vec<Exception>,
    it: &Item<'_>,
) -> Result<(), LoadError> {
    for e in new {
        match old.iter_mut().find(|o| o.name == e.name) {
            Some(o) => {
                if !e.fields.is_empty() || !e.comps.is_empty() {
                    return Err(it.err(format!(
                        "exception '{}': an append may not change fields or comps",
                        e.name
                    )));
                }
                o.values.extend(e.values);
            }
            None if e.fields.is_empty() => {
                return Err(it.err(format!("exception '{}' has no fields", e.name)))
            }
            None => old.push(e),
        }
    }
    Ok(())
}

fn exceptions(it: &Item<'_>) -> Result<Option<Vec<Exception>>, LoadError> {
    let Some(n) = it.get("exceptions") else {
        return Ok(None);
    };
    let items: &[Node] = match &n.value {
        Value::Seq(v) => v,
        Value::Null => &[],
        _ => return Err(it.err_at(n.line, "'exceptions' must be a list")),
    };
    items
        .iter()
        .map(|e| exception(it, e))
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

fn exception(it: &Item<'_>, n: &Node) -> Result<Exception, LoadError> {
    let Value::Map(m) = &n.value else {
        return Err(it.err_at(n.line, "an exception must be a map"));
    };
    let get = |k: &str| m.iter().find(|(key, _)| key == k).map(|(_, v)| v);
    let name = get("name")
        .and_then(scalar)
        .ok_or_else(|| it.err_at(n.line, "an exception needs a name"))?
        .to_string();
    let err = |line: u32, what: &str| it.err_at(line, format!("exception '{name}': {what}"));
    let strs = |node: &Node| -> Option<Vec<String>> {
        match &node.value {
            Value::Seq(v) => v.iter().map(|i| scalar(i).map(str::to_string)).collect(),
            Value::Scalar { text, .. } => Some(vec![text.clone()]),
            _ => None,
        }
    };
    let (fields, fields_is_list) = match get("fields") {
        None => (Vec::new(), true),
        Some(f) => (
            strs(f).ok_or_else(|| err(f.line, "fields must be a field or a list"))?,
            matches!(f.value, Value::Seq(_)),
        ),
    };
    let comps = match get("comps") {
        None => Vec::new(),
        Some(c) => strs(c).ok_or_else(|| err(c.line, "comps must be a list"))?,
    };
    let mut values = Vec::new();
    if let Some(v) = get("values") {
        let Value::Seq(rows) = &v.value else {
            return Err(err(v.line, "values must be a list"));
        };
        for row in rows {
            let cells = match &row.value {
                Value::Seq(cells) if fields_is_list => cells
                    .iter()
                    .map(|c| match &c.value {
                        Value::Seq(l) => l
                            .iter()
                            .map(|x| scalar(x).map(str::to_string))
                            .collect::<Option<Vec<_>>>()
                            .map(ExValue::List),
                        Value::Scalar { text, .. } => Some(ExValue::One(text.clone())),
                        _ => None,
                    })
                    .collect::<Option<Vec<_>>>(),
                Value::Scalar { text, .. } if !fields_is_list => {
                    Some(vec![ExValue::One(text.clone())])
                }
                _ => None,
            };
            values.push(cells.ok_or_else(|| err(row.line, "a value does not match fields"))?);
        }
    }
    Ok(Exception {
        name,
        fields,
        fields_is_list,
        comps,
        values,
    })
}
