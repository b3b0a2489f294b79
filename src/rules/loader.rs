//! Reading rule files into lists, macros and rules, as Falco's rule loader
//! does (falco userspace/engine/rule_loader_reader.cpp `read_item`,
//! rule_loader_collector.cpp `define_info`, `append`, `selective_replace`):
//! the item kind is its first known key; a same-named item replaces the
//! earlier one in its original position; `append: true` and `override:`
//! extend or replace single keys. Nothing is compiled here.

use super::yaml::{Node, Value};
use super::{LoadError, Priority};

#[derive(Clone, Debug, Default)]
pub struct Origin {
    pub file: String,
    pub line: u32,
}

#[derive(Clone, Debug)]
pub struct ListInfo {
    pub name: String,
    pub items: Vec<String>,
    pub at: Origin,
}

#[derive(Clone, Debug)]
pub struct MacroInfo {
    pub name: String,
    pub condition: String,
    pub at: Origin,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Exception {
    pub name: String,
    /// One field (`fields: proc.name`) or a tuple of fields.
    pub fields: Vec<String>,
    pub fields_is_list: bool,
    pub comps: Vec<String>,
    /// Each value: one entry per field; a nested list stays a list.
    pub values: Vec<Vec<ExValue>>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ExValue {
    One(String),
    List(Vec<String>),
}

#[derive(Clone, Debug)]
pub struct RuleInfo {
    pub name: String,
    pub desc: String,
    pub condition: String,
    pub output: String,
    pub priority: Priority,
    pub tags: Vec<String>,
    pub enabled: bool,
    pub source: String,
    pub exceptions: Vec<Exception>,
    pub skip_if_unknown_filter: bool,
    pub at: Origin,
}

/// Everything read so far, in definition order.
#[derive(Default)]
pub struct Collector {
    pub lists: Vec<ListInfo>,
    pub macros: Vec<MacroInfo>,
    pub rules: Vec<RuleInfo>,
    pub warnings: Vec<String>,
}

/// The engine version Kestrel's rule support corresponds to (Falco 0.44.1,
/// userspace/engine/falco_engine_version.h).
pub const ENGINE_VERSION: (u64, u64, u64) = (0, 62, 0);

pub(super) struct Item<'a> {
    pub node: &'a Node,
    pub file: &'a str,
    pub name: String,
}

impl Item<'_> {
    pub fn err(&self, msg: impl Into<String>) -> LoadError {
        self.err_at(self.node.line, msg)
    }

    pub fn err_at(&self, line: u32, msg: impl Into<String>) -> LoadError {
        LoadError {
            file: self.file.to_string(),
            line,
            item: self.name.clone(),
            msg: msg.into(),
        }
    }

    fn origin(&self) -> Origin {
        Origin {
            file: self.file.to_string(),
            line: self.node.line,
        }
    }

    pub fn get(&self, key: &str) -> Option<&Node> {
        match &self.node.value {
            Value::Map(m) => m.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn keys(&self) -> impl Iterator<Item = &str> {
        let m: &[(String, Node)] = match &self.node.value {
            Value::Map(m) => m,
            _ => &[],
        };
        m.iter().map(|(k, _)| k.as_str())
    }

    pub fn str(&self, key: &str) -> Result<Option<String>, LoadError> {
        match self.get(key) {
            None => Ok(None),
            Some(n) => scalar(n)
                .map(|s| Some(s.to_string()))
                .ok_or_else(|| self.err_at(n.line, format!("'{key}' must be a string"))),
        }
    }

    pub fn bool(&self, key: &str) -> Result<Option<bool>, LoadError> {
        match self.get(key) {
            None => Ok(None),
            Some(n) => match scalar(n) {
                Some("true") => Ok(Some(true)),
                Some("false") => Ok(Some(false)),
                _ => Err(self.err_at(n.line, format!("'{key}' must be true or false"))),
            },
        }
    }

    pub fn strings(&self, key: &str) -> Result<Option<Vec<String>>, LoadError> {
        let Some(n) = self.get(key) else {
            return Ok(None);
        };
        match &n.value {
            Value::Seq(v) => v
                .iter()
                .map(|i| {
                    scalar(i).map(str::to_string).ok_or_else(|| {
                        self.err_at(i.line, format!("'{key}' items must be strings"))
                    })
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Value::Null => Ok(Some(Vec::new())),
            _ => Err(self.err_at(n.line, format!("'{key}' must be a list"))),
        }
    }
}

pub fn scalar(n: &Node) -> Option<&str> {
    match &n.value {
        Value::Scalar { text, .. } => Some(text),
        _ => None,
    }
}

/// What an `override:` asks for one key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum How {
    Append,
    Replace,
}

/// `override:` as (key, how) pairs, each key allowed only the listed ops.
pub(super) fn overrides(
    it: &Item<'_>,
    allowed: &[(&str, bool, bool)],
) -> Result<Vec<(String, How)>, LoadError> {
    let Some(n) = it.get("override") else {
        return Ok(Vec::new());
    };
    let Value::Map(m) = &n.value else {
        return Err(it.err_at(n.line, "'override' must be a map"));
    };
    let mut v = Vec::new();
    for (k, op) in m {
        let how = match scalar(op) {
            Some("append") => How::Append,
            Some("replace") => How::Replace,
            _ => {
                return Err(it.err_at(
                    op.line,
                    format!("override of '{k}' must be append or replace"),
                ))
            }
        };
        let Some(&(_, app, rep)) = allowed.iter().find(|(a, _, _)| a == k) else {
            return Err(it.err_at(op.line, format!("key '{k}' cannot be overridden")));
        };
        if (how == How::Append && !app) || (how == How::Replace && !rep) {
            return Err(it.err_at(op.line, format!("'{k}' does not allow override {how:?}")));
        }
        if it.get(k).is_none() {
            return Err(it.err_at(
                op.line,
                format!("override of '{k}' but the item has no '{k}'"),
            ));
        }
        v.push((k.clone(), how));
    }
    Ok(v)
}

/// Version strings as Falco takes them: `N` means 0.N.0.
pub(super) fn check_engine_version(it: &Item<'_>, n: &Node) -> Result<(), LoadError> {
    let s =
        scalar(n).ok_or_else(|| it.err_at(n.line, "required_engine_version must be a version"))?;
    let parts: Vec<&str> = s.split('.').collect();
    let num = |p: &str| p.parse::<u64>().ok();
    let v = match parts.as_slice() {
        [n] => num(n).map(|n| (0, n, 0)),
        [a, b, c] => match (num(a), num(b), num(c)) {
            (Some(a), Some(b), Some(c)) => Some((a, b, c)),
            _ => None,
        },
        _ => None,
    };
    let Some(v) = v else {
        return Err(it.err_at(n.line, format!("'{s}' is not a version")));
    };
    if v.0 != ENGINE_VERSION.0 || v > ENGINE_VERSION {
        return Err(it.err_at(
            n.line,
            format!(
                "rules require engine version {s}, Kestrel implements {}.{}.{}",
                ENGINE_VERSION.0, ENGINE_VERSION.1, ENGINE_VERSION.2
            ),
        ));
    }
    Ok(())
}

impl Collector {
    /// One file's items, in order.
    pub fn read(&mut self, file: &str, docs: &[Node]) -> Result<(), LoadError> {
        for doc in docs {
            let items = match &doc.value {
                Value::Null => continue,
                Value::Seq(v) => v,
                _ => {
                    return Err(LoadError::at(
                        file,
                        doc.line,
                        "",
                        "rules content is not a list",
                    ));
                }
            };
            for node in items {
                if node.value == Value::Null {
                    continue;
                }
                if !matches!(node.value, Value::Map(_)) {
                    return Err(LoadError::at(file, node.line, "", "an item is not a map"));
                }
                self.item(file, node)?;
            }
        }
        Ok(())
    }

    fn item(&mut self, file: &str, node: &Node) -> Result<(), LoadError> {
        let mut it = Item {
            node,
            file,
            name: String::new(),
        };
        const KINDS: [&str; 5] = [
            "required_engine_version",
            "required_plugin_versions",
            "list",
            "macro",
            "rule",
        ];
        let Some(kind) = KINDS.iter().find(|k| it.get(k).is_some()) else {
            self.warnings.push(format!(
                "{file}:{}: unknown top level item, ignored",
                node.line
            ));
            return Ok(());
        };
        let n = it.get(kind).cloned().unwrap_or(Node {
            line: node.line,
            value: Value::Null,
        });
        match *kind {
            "required_engine_version" => check_engine_version(&it, &n),
            // Plugins are Falco's; Kestrel answers the container fields as a host.
            "required_plugin_versions" => Ok(()),
            _ => {
                it.name = scalar(&n)
                    .filter(|s| !s.is_empty())
                    .ok_or_else(|| it.err_at(n.line, format!("'{kind}' must name the item")))?
                    .to_string();
                match *kind {
                    "list" => self.list(&it),
                    "macro" => self.macro_item(&it),
                    _ => self.rule(&it),
                }
            }
        }
    }

    fn list(&mut self, it: &Item<'_>) -> Result<(), LoadError> {
        self.warn_unknown(it, &["list", "items", "append", "override"]);
        let items = it
            .strings("items")?
            .ok_or_else(|| it.err("list has no 'items'"))?;
        let ov = overrides(it, &[("items", true, true)])?;
        let append = it.bool("append")?.unwrap_or(false) || ov.iter().any(|o| o.1 == How::Append);
        check_append_override(it)?;
        let pos = self.lists.iter().position(|l| l.name == it.name);
        match (append, pos) {
            (true, Some(p)) => self.lists[p].items.extend(items),
            (true, None) => {
                return Err(it.err(format!(
                    "list '{}' has no earlier definition to append to",
                    it.name
                )))
            }
            (false, Some(p)) => self.lists[p].items = items,
            (false, None) => self.lists.push(ListInfo {
                name: it.name.clone(),
                items,
                at: it.origin(),
            }),
        }
        Ok(())
    }

    fn macro_item(&mut self, it: &Item<'_>) -> Result<(), LoadError> {
        self.warn_unknown(it, &["macro", "condition", "append", "override"]);
        let cond = it
            .str("condition")?
            .ok_or_else(|| it.err("macro has no 'condition'"))?;
        let ov = overrides(it, &[("condition", true, true)])?;
        let append = it.bool("append")?.unwrap_or(false) || ov.iter().any(|o| o.1 == How::Append);
        check_append_override(it)?;
        let pos = self.macros.iter().position(|m| m.name == it.name);
        match (append, pos) {
            (true, Some(p)) => {
                let m = &mut self.macros[p];
                m.condition.push(' ');
                m.condition.push_str(&cond);
            }
            (true, None) => {
                return Err(it.err(format!(
                    "macro '{}' has no earlier definition to append to",
                    it.name
                )))
            }
            (false, Some(p)) => self.macros[p].condition = cond,
            (false, None) => self.macros.push(MacroInfo {
                name: it.name.clone(),
                condition: cond,
                at: it.origin(),
            }),
        }
        Ok(())
    }

    pub(super) fn warn_unknown(&mut self, it: &Item<'_>, known: &[&str]) {
        for k in it.keys() {
            if !known.contains(&k) {
                self.warnings.push(format!(
                    "{}:{}: {}: unknown key '{k}', ignored",
                    it.file, it.node.line, it.name
                ));
            }
        }
    }
}

pub(super) fn check_append_override(it: &Item<'_>) -> Result<(), LoadError> {
    if it.get("append").is_some() && it.get("override").is_some() {
        return Err(it.err("'append' and 'override' cannot be combined"));
    }
    Ok(())
}
