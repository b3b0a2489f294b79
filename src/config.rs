//! The `--config` file: TOML whose keys are the `run` flags' names (`-` and
//! `_` interchangeable, so falco.yaml's knob spellings work). Each entry is
//! turned back into the flag it names and validated by the very parser the
//! command line uses, so the file can express nothing the flags cannot.
//! Errors name the file, the line and the key.
//!
//! Limits: the file must be a regular file of at most 1 MiB (a device such
//! as /dev/urandom is refused before a byte is read), and everything here is
//! linear in its size. Control characters in keys and values are escaped in
//! messages, so an error is always one line.
//!
//! A table stands for its prefix, so falco.yaml's `syscall_event_drops:
//! {actions, threshold, rate, max_burst}` is written `[syscall_event_drops]`
//! with the same keys.

use std::path::Path;

use toml::de::{DeTable, DeValue};

/// One key of the file as the flag tokens it stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// As written in the file.
    pub key: String,
    pub line: usize,
    /// e.g. ["--interval", "15s"], or ["--output", "stdout", "--output", "file:/x"].
    pub tokens: Vec<String>,
}

/// Flags that are switches: a boolean value adds or omits the flag.
const SWITCHES: &[&str] = &["enter-events", "verbose", "allow-special-outputs"];
/// The key whose list becomes one comma-separated value.
const LIST_KEY: &str = "syscall-event-drops-actions";

/// Keys whose list becomes one flag per item.
const REPEATED: &[&str] = &["output", "rules"];

/// falco.yaml's names for Kestrel's flags.
fn alias(key: &str) -> String {
    match key {
        "rules-files" | "rules-file" => "rules",
        "priority" => "min-priority",
        "metrics-rules-counters-enabled" => "rules-counters-enabled",
        k => k,
    }
    .to_string()
}

/// Largest config file accepted.
pub const CONFIG_MAX: u64 = 1 << 20;

/// Line numbers by binary search over newline offsets: linear overall.
struct Lines(Vec<usize>);

impl Lines {
    fn new(text: &str) -> Lines {
        Lines(
            text.bytes()
                .enumerate()
                .filter(|(_, b)| *b == b'\n')
                .map(|(i, _)| i)
                .collect(),
        )
    }

    fn of(&self, offset: usize) -> usize {
        self.0.partition_point(|&nl| nl < offset) + 1
    }
}

fn scalar(v: &DeValue<'_>) -> Option<String> {
    match v {
        DeValue::String(s) => Some(s.to_string()),
        DeValue::Integer(i) if i.radix() == 10 => Some(i.as_str().replace('_', "")),
        DeValue::Float(f) => Some(f.as_str().replace('_', "")),
        DeValue::Boolean(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Parses the file's text into flag tokens. `name` is used in messages.
pub fn parse(name: &str, text: &str) -> Result<Vec<Entry>, String> {
    let lines = Lines::new(text);
    let table = DeTable::parse(text).map_err(|e| {
        let line = e.span().map_or(1, |s| lines.of(s.start));
        format!("{name}:{line}: {}", escape(e.message().trim()))
    })?;
    let mut out = Vec::new();
    let mut flat = Vec::new();
    for (k, v) in table.get_ref() {
        match v.get_ref() {
            DeValue::Table(t) => {
                for (k2, v2) in t {
                    let key = format!("{}_{}", k.get_ref(), k2.get_ref());
                    flat.push((key, k2.span().start, v2.get_ref()));
                }
            }
            other => flat.push((k.get_ref().to_string(), k.span().start, other)),
        }
    }
    for (written, at, v) in flat {
        let key = alias(&written.replace('_', "-"));
        let line = lines.of(at);
        let bad = |why: &str| format!("{name}:{line}: key '{}': {why}", escape(&written));
        if key == "config" {
            return Err(bad("a config file cannot name another"));
        }
        let mut tokens = Vec::new();
        if SWITCHES.contains(&key.as_str()) {
            match v {
                DeValue::Boolean(true) => tokens.push(format!("--{key}")),
                DeValue::Boolean(false) => {}
                _ => return Err(bad("expected true or false")),
            }
        } else if let DeValue::Array(items) = v {
            if key == LIST_KEY {
                let mut all = Vec::new();
                for item in items {
                    all.push(scalar(item.get_ref()).ok_or_else(|| bad("expected a string"))?);
                }
                tokens.push(format!("--{key}"));
                tokens.push(all.join(","));
            } else if !REPEATED.contains(&key.as_str()) {
                return Err(bad(
                    "only output, rules_files and syscall_event_drops.actions take a list",
                ));
            }
            for item in items.iter().filter(|_| REPEATED.contains(&key.as_str())) {
                let s = scalar(item.get_ref()).ok_or_else(|| bad("expected a string"))?;
                tokens.push(format!("--{key}"));
                tokens.push(s);
            }
        } else {
            let s = scalar(v).ok_or_else(|| {
                bad(&format!(
                    "expected a string, number or boolean, not {}",
                    v.type_str()
                ))
            })?;
            tokens.push(format!("--{key}"));
            tokens.push(s);
        }
        out.push(Entry {
            key: written.clone(),
            line,
            tokens,
        });
    }
    Ok(out)
}

fn escape(s: &str) -> String {
    crate::log::escape(s)
}

/// Reads at most CONFIG_MAX bytes of a regular file.
pub fn read_limited(path: &Path) -> Result<String, String> {
    use std::io::Read;
    let name = escape(&path.display().to_string());
    let f = std::fs::File::open(path).map_err(|e| format!("{name}: {e}"))?;
    let meta = f.metadata().map_err(|e| format!("{name}: {e}"))?;
    if !meta.is_file() {
        return Err(format!("{name}: not a regular file"));
    }
    let mut text = Vec::new();
    f.take(CONFIG_MAX + 1)
        .read_to_end(&mut text)
        .map_err(|e| format!("{name}: {e}"))?;
    if text.len() as u64 > CONFIG_MAX {
        return Err(format!("{name}: larger than {} KiB", CONFIG_MAX >> 10));
    }
    String::from_utf8(text).map_err(|_| format!("{name}: not UTF-8 text"))
}

pub fn load(path: &Path) -> Result<Vec<Entry>, String> {
    let text = read_limited(path)?;
    parse(&escape(&path.display().to_string()), &text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn turns_keys_into_flags() {
        let e = parse(
            "k.conf",
            "# comment\ninterval = \"15s\"\nring_buffer_size = 1_048_576\n\
             libbpf_stats_enabled = true\noutput = [\"stdout\", \"file:/x\"]\nenter-events = true\n\
             verbose = false\n",
        )
        .unwrap();
        let toks: Vec<Vec<String>> = e.iter().map(|e| e.tokens.clone()).collect();
        assert!(toks.contains(&vec!["--interval".into(), "15s".into()]));
        assert!(toks.contains(&vec!["--ring-buffer-size".into(), "1048576".into()]));
        assert!(toks.contains(&vec!["--libbpf-stats-enabled".into(), "true".into()]));
        assert!(toks.contains(&vec![
            "--output".into(),
            "stdout".into(),
            "--output".into(),
            "file:/x".into()
        ]));
        assert!(toks.contains(&vec!["--enter-events".into()]));
        assert!(toks.contains(&vec![]), "verbose = false adds nothing");
        assert_eq!(e.iter().find(|e| e.key == "interval").unwrap().line, 2);
    }

    #[test]
    fn falco_tables_and_lists() {
        let e = parse(
            "k.conf",
            "schema = \"falco-0.38\"\n[syscall_event_drops]\nactions = [\"log\", \"alert\"]\n\
             threshold = 0.1\nrate = 0.03333\nmax_burst = 1\n",
        )
        .unwrap();
        let toks: Vec<Vec<String>> = e.iter().map(|e| e.tokens.clone()).collect();
        assert!(toks.contains(&vec![
            "--syscall-event-drops-actions".into(),
            "log,alert".into()
        ]));
        assert!(toks.contains(&vec!["--syscall-event-drops-rate".into(), "0.03333".into()]));
        assert!(toks.contains(&vec!["--schema".into(), "falco-0.38".into()]));
        let m = e.iter().find(|e| e.key == "syscall_event_drops_max_burst");
        assert_eq!(m.unwrap().line, 6);
    }

    #[test]
    fn errors_name_file_line_and_key() {
        let e = parse("k.conf", "interval = \"1s\"\nverbose = \"yes\"\n").unwrap_err();
        assert_eq!(e, "k.conf:2: key 'verbose': expected true or false");
        let e = parse("k.conf", "\n\ninterval = [\"1s\"]\n").unwrap_err();
        assert!(e.starts_with("k.conf:3: key 'interval'"), "{e}");
        let e = parse("k.conf", "a = 1\nb = = 2\n").unwrap_err();
        assert!(e.starts_with("k.conf:2: "), "{e}");
        let e = parse("k.conf", "config = \"x\"\n").unwrap_err();
        assert!(e.contains("key 'config'"), "{e}");
        assert!(parse("k.conf", "t = 1979-05-27\n")
            .unwrap_err()
            .contains("key 't'"));
    }

    #[test]
    fn line_numbers_are_exact() {
        let l = Lines::new("a\nbb\n\nc");
        assert_eq!(
            [l.of(0), l.of(1), l.of(2), l.of(4), l.of(5), l.of(6)],
            [1, 1, 2, 2, 3, 4]
        );
    }
}
