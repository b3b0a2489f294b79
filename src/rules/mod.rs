//! Falco rules on the device. Rule files in Falco's YAML format are read
//! (`loader`), their conditions resolved as Falco resolves them (`resolve`:
//! lists as text, exceptions, macros as trees), parsed (`condition`) and
//! compiled once (`compile`) into trees the per-event path walks without
//! allocating (`eval`), indexed by event type (`events`) so that an event
//! no rule can match costs one lookup. A rule naming something Kestrel does
//! not capture is skipped with its reason; nothing is evaluated with a
//! made-up value. What an alert looks like is `alert`'s business.

pub mod alert;
pub mod compile;
pub mod condition;
pub mod engine;
mod escape;
pub mod eval;
pub mod events;
pub mod extract;
mod extract_args;
mod extract_fd;
pub mod fields;
pub mod files;
pub mod format;
pub mod loader;
mod loader_rule;
pub mod names;
pub mod paths;
pub mod program;
pub mod resolve;
pub mod users;
pub mod value;
pub mod yaml;

use std::fmt;

use compile::CompileError;
use events::{EvtSet, N_CODES};
use format::Format;
use loader::Collector;
use program::Program;

/// Falco's priorities; the value is the syslog severity (falco_common.cpp).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Priority {
    Emergency = 0,
    Alert,
    Critical,
    Error,
    Warning,
    Notice,
    Informational,
    Debug,
}

impl Priority {
    pub const ALL: [Priority; 8] = [
        Priority::Emergency,
        Priority::Alert,
        Priority::Critical,
        Priority::Error,
        Priority::Warning,
        Priority::Notice,
        Priority::Informational,
        Priority::Debug,
    ];

    /// Case-insensitive; `info` too (falco_common.cpp parse_priority).
    pub fn parse(s: &str) -> Option<Priority> {
        let l = s.to_ascii_lowercase();
        if l == "info" {
            return Some(Priority::Informational);
        }
        Priority::ALL
            .into_iter()
            .find(|p| p.name().eq_ignore_ascii_case(&l))
    }

    pub fn name(self) -> &'static str {
        match self {
            Priority::Emergency => "Emergency",
            Priority::Alert => "Alert",
            Priority::Critical => "Critical",
            Priority::Error => "Error",
            Priority::Warning => "Warning",
            Priority::Notice => "Notice",
            Priority::Informational => "Informational",
            Priority::Debug => "Debug",
        }
    }

    pub fn severity(self) -> u8 {
        self as u8
    }
}

/// A rule file that cannot load: file, line, item and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadError {
    pub file: String,
    pub line: u32,
    pub item: String,
    pub msg: String,
}

impl LoadError {
    pub fn at(file: &str, line: u32, item: &str, msg: impl Into<String>) -> LoadError {
        LoadError {
            file: file.into(),
            line,
            item: item.into(),
            msg: msg.into(),
        }
    }
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: ", self.file, self.line)?;
        if !self.item.is_empty() {
            write!(f, "'{}': ", self.item)?;
        }
        let msg = self.msg.replace(['\n', '\r'], " ");
        f.write_str(&msg)
    }
}

/// One compiled rule.
pub struct Rule {
    pub name: String,
    pub priority: Priority,
    pub tags: Vec<String>,
    pub source: String,
    pub condition: Program,
    pub output: Format,
    pub codes: EvtSet,
}

/// A rule left out, and why (`kestrel.rules_skipped`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skipped {
    pub rule: String,
    pub reason: String,
}

/// The loaded rules: enabled ones in load order, indexed by event code.
pub struct RuleSet {
    pub rules: Vec<Rule>,
    /// Rules per event code, in load order (indexable_ruleset.h appends).
    pub index: Vec<Vec<u16>>,
    pub skipped: Vec<Skipped>,
    /// Enabled and loaded, but below --min-priority.
    pub below_priority: usize,
    pub disabled: usize,
    pub warnings: Vec<String>,
}

/// The loader thread's stack: a 1000-deep condition needs a few MB in a
/// debug build; only the pages used become resident.
pub const LOAD_STACK_BYTES: usize = 64 << 20;

/// Largest rule file accepted: Falco's own is about 60 KB.
pub const MAX_FILE_BYTES: usize = 4 << 20;

pub struct RuleFile<'a> {
    pub name: &'a str,
    pub text: &'a [u8],
}

impl RuleSet {
    /// Reads the files in order and compiles the result. The work runs on
    /// a thread of its own with a large stack: Falco allows conditions 1000
    /// levels deep and the parser and compiler recurse once per level. The
    /// stack is released when the load ends.
    pub fn load(files: &[RuleFile<'_>], min_priority: Priority) -> Result<RuleSet, LoadError> {
        std::thread::scope(|s| {
            match std::thread::Builder::new()
                .name("kestrel-rules".into())
                .stack_size(LOAD_STACK_BYTES)
                .spawn_scoped(s, || Self::load_here(files, min_priority))
            {
                Ok(h) => h
                    .join()
                    .unwrap_or_else(|_| Err(LoadError::at("", 0, "", "the rule loader failed"))),
                // No room for that stack (a tight RLIMIT_AS): the main thread's
                // 8 MiB holds a release build's deepest condition too.
                Err(_) => Self::load_here(files, min_priority),
            }
        })
    }

    /// `load` on the calling thread, which must have a stack of
    /// LOAD_STACK_BYTES (the fuzz test runs many loads on one such thread).
    pub fn load_here(files: &[RuleFile<'_>], min_priority: Priority) -> Result<RuleSet, LoadError> {
        let mut c = Collector::default();
        for f in files {
            if f.text.len() > MAX_FILE_BYTES {
                return Err(LoadError::at(
                    f.name,
                    0,
                    "",
                    format!("larger than {} MiB", MAX_FILE_BYTES >> 20),
                ));
            }
            let text = std::str::from_utf8(f.text).map_err(|e| {
                let line = f.text[..e.valid_up_to()]
                    .iter()
                    .filter(|&&b| b == b'\n')
                    .count()
                    + 1;
                LoadError::at(f.name, line as u32, "", "not valid UTF-8")
            })?;
            let docs = yaml::parse(text).map_err(|e| {
                LoadError::at(f.name, e.line, "", format!("invalid YAML: {}", e.msg))
            })?;
            c.read(f.name, &docs)?;
        }
        build::build(c, min_priority)
    }

    /// The rules that may match an event of this code.
    pub fn candidates(&self, code: u16) -> &[u16] {
        self.index
            .get(usize::from(code))
            .map_or(&[], |v| v.as_slice())
    }

    /// Every code some rule can match: what the probe must capture.
    pub fn wanted_codes(&self) -> EvtSet {
        EvtSet(self.rules.iter().fold(0, |a, r| a | r.codes.0))
    }

    pub fn empty() -> RuleSet {
        RuleSet {
            rules: Vec::new(),
            index: vec![Vec::new(); N_CODES],
            skipped: Vec::new(),
            below_priority: 0,
            disabled: 0,
            warnings: Vec::new(),
        }
    }
}

mod build;

impl From<CompileError> for String {
    fn from(e: CompileError) -> String {
        match e {
            CompileError::Unsupported(m) | CompileError::Invalid(m) => m,
        }
    }
}

#[cfg(test)]
mod tests;
