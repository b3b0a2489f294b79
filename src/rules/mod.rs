//! Reading Falco rule files: Falco's YAML (`yaml`), its items collected
//! (`loader`), conditions resolved as Falco resolves them (`resolve`: lists
//! as text, exceptions, macros as trees) and then parsed and compiled by
//! kestrel-core's `rules` (`build`), whose types and evaluation are
//! re-exported here. Loading runs at start and on SIGHUP, so it stays out of
//! the crate built for speed (lib.rs of kestrel-core).

pub use kestrel_core::rules::*;

mod build;
pub mod files;
pub mod loader;
mod loader_rule;
pub mod resolve;
pub mod yaml;

use std::fmt;

use loader::Collector;

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

/// The loader thread's stack: a 1000-deep condition needs a few MB in a
/// debug build; only the pages used become resident.
pub const LOAD_STACK_BYTES: usize = 64 << 20;

/// Largest rule file accepted: Falco's own is about 60 KB.
pub const MAX_FILE_BYTES: usize = 4 << 20;

pub struct RuleFile<'a> {
    pub name: &'a str,
    pub text: &'a [u8],
}

/// Reads the files in order and compiles the result. The work runs on
/// a thread of its own with a large stack: Falco allows conditions 1000
/// levels deep and the parser and compiler recurse once per level. The
/// stack is released when the load ends.
pub fn load(files: &[RuleFile<'_>], min_priority: Priority) -> Result<RuleSet, LoadError> {
    std::thread::scope(|s| {
        match std::thread::Builder::new()
            .name("kestrel-rules".into())
            .stack_size(LOAD_STACK_BYTES)
            .spawn_scoped(s, || load_here(files, min_priority))
        {
            Ok(h) => h
                .join()
                .unwrap_or_else(|_| Err(LoadError::at("", 0, "", "the rule loader failed"))),
            // No room for that stack (a tight RLIMIT_AS): the main thread's
            // 8 MiB holds a release build's deepest condition too.
            Err(_) => load_here(files, min_priority),
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
        let docs = yaml::parse(text)
            .map_err(|e| LoadError::at(f.name, e.line, "", format!("invalid YAML: {}", e.msg)))?;
        c.read(f.name, &docs)?;
    }
    build::build(c, min_priority)
}

#[cfg(test)]
mod tests;
