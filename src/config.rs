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

/// The one TOML type (or pair of types) each key takes. A value of any
/// other type is an error, never stringified: `pidfile = true` must not
/// become a file named `true`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A switch flag: true adds it, false omits it.
    Switch,
    Bool,
    Text,
    /// An integer, in decimal.
    Whole,
    /// An integer or a float.
    Number,
    /// A string or a decimal integer: `ring_buffer_size = "1M"` or `1048576`.
    TextOrWhole,
    /// A string or a list of strings.
    Texts,
}

/// Every `run` flag as a key (a unit test holds this to `run --help`).
pub const KEYS: &[(&str, Kind)] = &[
    ("output", Kind::Texts),
    ("interval", Kind::Text),
    ("duration", Kind::Text),
    ("ring-buffer-size", Kind::TextOrWhole),
    ("syscalls", Kind::Text),
    ("enter-events", Kind::Switch),
    ("thread-table-size", Kind::Whole),
    ("fd-table-size", Kind::Whole),
    ("resource-utilization-enabled", Kind::Bool),
    ("state-counters-enabled", Kind::Bool),
    ("kernel-event-counters-enabled", Kind::Bool),
    ("kernel-event-counters-per-cpu-enabled", Kind::Bool),
    ("libbpf-stats-enabled", Kind::Bool),
    ("convert-memory-to-mb", Kind::Bool),
    ("include-empty-values", Kind::Bool),
    ("schema", Kind::Text),
    ("syscall-event-drops-actions", Kind::Texts),
    ("syscall-event-drops-threshold", Kind::Number),
    ("syscall-event-drops-rate", Kind::Number),
    ("syscall-event-drops-max-burst", Kind::Number),
    ("thread-timeout", Kind::Text),
    ("thread-purge-interval", Kind::Text),
    ("pidfile", Kind::Text),
    ("culprits", Kind::Bool),
    ("culprit-top-syscalls", Kind::Whole),
    ("culprit-top-procs", Kind::Whole),
    ("culprit-capacity", Kind::Whole),
    ("culprit-sample-period", Kind::Whole),
    ("attach", Kind::Text),
    ("event-buffer", Kind::Text),
    ("stage-records", Kind::Bool),
    ("btf", Kind::Text),
    ("prometheus", Kind::TextOrWhole),
    ("prometheus-names", Kind::Text),
    ("prometheus-web-config", Kind::Text),
    ("user", Kind::TextOrWhole),
    ("allow-special-outputs", Kind::Switch),
    ("verbose", Kind::Switch),
    ("rules", Kind::Texts),
    ("min-priority", Kind::Text),
    ("rules-counters-enabled", Kind::Bool),
    ("outputs-rate", Kind::Number),
    ("outputs-max-burst", Kind::Number),
    ("rule-matching", Kind::Text),
];

/// The kind of a key (dashed spelling); None: not a key.
pub fn kind_of(key: &str) -> Option<Kind> {
    KEYS.iter().find(|(k, _)| *k == key).map(|&(_, kind)| kind)
}

impl Kind {
    fn expected(self) -> &'static str {
        match self {
            Kind::Switch | Kind::Bool => "true or false",
            Kind::Text => "a string",
            Kind::Whole => "a whole number",
            Kind::Number => "a number",
            Kind::TextOrWhole => "a string or a whole number",
            Kind::Texts => "a string or a list of strings",
        }
    }

    /// The flag's value for one TOML scalar of the right type.
    fn value(self, v: &DeValue<'_>) -> Option<String> {
        match (self, v) {
            (Kind::Bool, DeValue::Boolean(b)) => Some(b.to_string()),
            (Kind::Text | Kind::TextOrWhole | Kind::Texts, DeValue::String(s)) => {
                Some(s.to_string())
            }
            (Kind::Whole | Kind::Number | Kind::TextOrWhole, DeValue::Integer(i))
                if i.radix() == 10 =>
            {
                Some(i.as_str().replace('_', ""))
            }
            (Kind::Number, DeValue::Float(f)) => Some(f.as_str().replace('_', "")),
            _ => None,
        }
    }
}

/// The key whose list becomes one comma-separated value.
const LIST_KEY: &str = "syscall-event-drops-actions";

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
            // Empty, it is judged as the key it names.
            DeValue::Table(t) if !t.is_empty() => {
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
        let Some(kind) = kind_of(&key) else {
            // An empty table is a section with nothing set in it.
            let section = KEYS.iter().any(|(k, _)| k.starts_with(&format!("{key}-")));
            if section && matches!(v, DeValue::Table(t) if t.is_empty()) {
                continue;
            }
            return Err(bad("unknown key"));
        };
        let wrong = || {
            bad(&format!(
                "expected {}, not {}",
                kind.expected(),
                v.type_str()
            ))
        };
        let flag = format!("--{key}");
        let tokens = match (kind, v) {
            (Kind::Switch, DeValue::Boolean(true)) => vec![flag],
            (Kind::Switch, DeValue::Boolean(false)) => vec![],
            (Kind::Texts, DeValue::Array(items)) => {
                let mut all = Vec::new();
                for item in items {
                    let item = item.get_ref();
                    all.push(kind.value(item).ok_or_else(|| {
                        bad(&format!(
                            "expected a string in the list, not {}",
                            item.type_str()
                        ))
                    })?);
                }
                if key == LIST_KEY {
                    vec![flag, all.join(",")]
                } else {
                    all.into_iter().flat_map(|s| [flag.clone(), s]).collect()
                }
            }
            _ => vec![flag, kind.value(v).ok_or_else(wrong)?],
        };
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
        assert_eq!(
            e,
            "k.conf:2: key 'verbose': expected true or false, not string"
        );
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
    fn every_key_has_one_type() {
        for (text, want) in [
            (
                "pidfile = true",
                "key 'pidfile': expected a string, not boolean",
            ),
            (
                "pidfile = -1",
                "key 'pidfile': expected a string, not integer",
            ),
            (
                "pidfile = nan",
                "key 'pidfile': expected a string, not float",
            ),
            (
                "pidfile = 1.5",
                "key 'pidfile': expected a string, not float",
            ),
            (
                "interval = {}",
                "key 'interval': expected a string, not table",
            ),
            (
                "culprits = \"yes\"",
                "key 'culprits': expected true or false, not string",
            ),
            (
                "fd_table_size = \"8\"",
                "expected a whole number, not string",
            ),
            ("fd_table_size = 8.0", "expected a whole number, not float"),
            ("threshold = 0.5\n[x]", "key 'threshold': unknown key"),
            (
                "output = [\"stdout\", 1]",
                "expected a string in the list, not integer",
            ),
            ("nosuch = {}", "key 'nosuch': unknown key"),
        ] {
            let e = parse("k.conf", text).unwrap_err();
            assert!(
                e.starts_with("k.conf:1: ") && e.ends_with(want),
                "{text}: {e}"
            );
        }
        // Both of a two-type key's types, a section left empty, falco.yaml's floats.
        let ok = "ring_buffer_size = 4096\nprometheus = \"[::1]:9\"\nuser = 65534\n\
                  [syscall_event_drops]\nthreshold = 1\nrate = 1e-2\n[culprit]\n";
        assert_eq!(parse("k.conf", ok).unwrap().len(), 5);
    }

    /// The table names every flag of `run` and nothing else.
    #[test]
    fn keys_are_the_run_flags() {
        use argh::FromArgs;
        let help = crate::cli::Cli::from_args(&["kestrel"], &["run", "--help"])
            .err()
            .unwrap()
            .output;
        let mut flags: Vec<&str> = help
            .lines()
            .filter(|l| l.trim_start().starts_with('-'))
            .filter_map(|l| l.split_whitespace().find_map(|w| w.strip_prefix("--")))
            .map(|f| f.trim_end_matches(','))
            .filter(|f| !["help", "config"].contains(f))
            .collect();
        let mut keys: Vec<&str> = KEYS.iter().map(|(k, _)| *k).collect();
        flags.sort_unstable();
        keys.sort_unstable();
        assert_eq!(flags, keys);
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
