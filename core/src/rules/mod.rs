//! Falco rules on the device. Conditions, resolved from the rule files by
//! `kestrel::rules` (YAML, lists, macros, exceptions), are parsed
//! (`condition`) and compiled once (`compile`) into trees the per-event path walks without
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
#[cfg(any(test, feature = "testing"))]
pub mod fake;
pub mod fields;
pub mod format;
pub mod names;
pub mod paths;
pub mod program;
pub mod users;
pub mod value;

use compile::CompileError;
use events::{EvtSet, N_CODES};
use format::Format;
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

impl RuleSet {
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

impl From<CompileError> for String {
    fn from(e: CompileError) -> String {
        match e {
            CompileError::Unsupported(m) | CompileError::Invalid(m) => m,
        }
    }
}
