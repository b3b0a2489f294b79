//! Rule files as users hand them over: Falco's upstream file unchanged, the
//! built-in set, bad files (one line naming file, line and item; exit 2),
//! and a fuzz run of the loader (no panic, bounded work).

use std::process::Command;
use std::time::Instant;

use kestrel::rules::{files, Priority, RuleFile, RuleSet, LOAD_STACK_BYTES};
use kestrel::testing::Rng;

const UPSTREAM: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/rules/upstream/falco_rules.yaml"
);

fn load(name: &str, text: &[u8]) -> Result<RuleSet, kestrel::rules::LoadError> {
    kestrel::rules::load(&[RuleFile { name, text }], Priority::Debug)
}

/// Falco's stable rules load unchanged; what runs and what is skipped (and
/// why) is exactly what the README states.
#[test]
fn upstream_stable_rules_load_unchanged() {
    let text = std::fs::read(UPSTREAM).unwrap();
    let set = load("falco_rules.yaml", &text).unwrap_or_else(|e| panic!("{e}"));
    let total = set.rules.len() + set.skipped.len();
    assert_eq!(total, 25, "every rule either runs or is listed as skipped");
    let mut skipped: Vec<(&str, &str)> = set
        .skipped
        .iter()
        .map(|s| (s.rule.as_str(), s.reason.as_str()))
        .collect();
    skipped.sort();
    for (rule, reason) in &skipped {
        println!("skipped: {rule}: {reason}");
    }
    for r in &set.rules {
        println!("runs: {}", r.name);
    }
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    // Lines wrap anywhere: compare with whitespace collapsed.
    let readme = readme.split_whitespace().collect::<Vec<_>>().join(" ");
    let claim = format!("{} of the 25 stable rules run", set.rules.len());
    assert!(readme.contains(&claim), "README must say '{claim}'");
    for (rule, _) in &skipped {
        assert!(
            readme.contains(rule),
            "README must name the skipped rule '{rule}'"
        );
    }
    for must in [
        "Read sensitive file untrusted",
        "Run shell untrusted",
        "Fileless execution via memfd_create",
        "PTRACE attached to process",
        "Execution from /dev/shm",
        "Search Private Keys or Passwords",
    ] {
        assert!(set.rules.iter().any(|r| r.name == must), "{must} must run");
    }
}

#[test]
fn builtin_ruleset_loads_and_matches_the_shipped_file() {
    let shipped = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/configs/rules/kestrel_rules.yaml"
    ))
    .unwrap();
    assert_eq!(shipped, files::default_rules());
    let set = load("kestrel_rules.yaml", shipped.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
    assert!(set.skipped.is_empty(), "{:?}", set.skipped);
    assert!(set.rules.len() >= 13, "{}", set.rules.len());
}

fn run_with_rules(path: &str) -> (i32, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_kestrel"))
        .args(["run", "--rules", path, "--duration", "1s"])
        .output()
        .unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// Bad rule files: exit 2 and one line naming the file, the line and the
/// rule, before anything is created (no root needed: the rules load first).
#[test]
fn bad_rule_files_exit_2_with_one_line() {
    let dir = kestrel::testing::scratch("bad-rules");
    std::fs::create_dir_all(&dir).unwrap();
    let deep = format!(
        "- rule: deep\n  desc: d\n  condition: {}evt.type = execve{}\n  output: o\n  priority: WARNING\n",
        "(".repeat(10_000),
        ")".repeat(10_000)
    );
    let big = format!("# {}\n", "x".repeat(10 << 20));
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("malformed.yaml", b"- rule: r\n  desc: [unclosed\n".to_vec(), "malformed.yaml:"),
        ("field.yaml", b"- rule: r\n  desc: d\n  condition: proc.nosuch = 1\n  output: o\n  priority: WARNING\n".to_vec(), "'r'"),
        ("macro.yaml", b"- rule: r\n  desc: d\n  condition: evt.type = execve and not_defined\n  output: o\n  priority: WARNING\n".to_vec(), "Undefined macro"),
        ("cycle.yaml", b"- macro: a\n  condition: b\n- macro: b\n  condition: a\n".to_vec(), "'a'"),
        ("deep.yaml", deep.into_bytes(), "deeper"),
        ("big.yaml", big.into_bytes(), "larger than"),
        ("utf8.yaml", b"- rule: r\n  desc: \xff\xfe\n".to_vec(), "UTF-8"),
    ];
    for (name, body, want) in cases {
        let p = dir.join(name);
        std::fs::write(&p, body).unwrap();
        let (code, err) = run_with_rules(p.to_str().unwrap());
        assert_eq!(code, 2, "{name}: {err}");
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(lines.len(), 1, "{name}: one line, got {err}");
        assert!(lines[0].contains(name), "{name}: {err}");
        assert!(lines[0].contains(want), "{name}: {err} lacks {want}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

fn mutate(rng: &mut Rng, base: &[u8]) -> Vec<u8> {
    let mut v = base.to_vec();
    for _ in 0..1 + rng.below(4) {
        if v.is_empty() {
            break;
        }
        let at = rng.below(v.len());
        match rng.below(5) {
            0 => v[at] = rng.next() as u8,
            1 => v.truncate(at),
            2 => {
                let end = (at + rng.below(64)).min(v.len());
                let chunk = v[at..end].to_vec();
                v.splice(at..at, chunk);
            }
            3 => {
                let tok: &[u8] = [
                    &b" and "[..],
                    b" or ",
                    b"not ",
                    b"(",
                    b")",
                    b"\"",
                    b"'",
                    b"%",
                    b"[",
                    b"]",
                    b"\n- ",
                    b": >\n",
                    b"\t",
                ][rng.below(13)];
                v.splice(at..at, tok.iter().copied());
            }
            _ => {
                let end = (at + rng.below(32)).min(v.len());
                v.drain(at..end);
            }
        }
    }
    v
}

/// At least 100k mutated inputs through the whole loader: every one is Ok or a
/// one-line error, none panics.
#[test]
fn rule_loader_fuzz() {
    let t = std::thread::Builder::new()
        .stack_size(LOAD_STACK_BYTES)
        .spawn(|| {
            let upstream = std::fs::read(UPSTREAM).unwrap();
            let small = b"- list: l\n  items: [a, \"b c\"]\n- macro: m\n  condition: proc.name in (l) or fd.name pmatch (/etc)\n- rule: r\n  desc: d\n  condition: evt.type in (execve, openat) and m and not proc.aname[2] glob 'x*' and evt.rawres >= 0\n  output: \"%proc.name %fd.name %evt.arg.flags\"\n  priority: WARNING\n  exceptions:\n    - name: e\n      fields: [proc.name]\n      values: [[sh]]\n";
            let default = files::default_rules();
            let mut rng = Rng(0x5eed_1234_abcd);
            let started = Instant::now();
            let (mut ok, mut err) = (0u64, 0u64);
            for i in 0..100_000u32 {
                let base: &[u8] = if i % 500 == 0 {
                    if i % 1000 == 0 { &upstream } else { default.as_bytes() }
                } else {
                    small
                };
                let input = mutate(&mut rng, base);
                match kestrel::rules::load_here(&[RuleFile { name: "f", text: &input }], Priority::Debug) {
                    Ok(_) => ok += 1,
                    Err(e) => {
                        assert!(!e.to_string().contains('\n'));
                        err += 1;
                    }
                }
            }
            println!("fuzz: {ok} loaded, {err} refused in {:?}", started.elapsed());
            assert!(ok > 0 && err > 0);
        })
        .unwrap();
    t.join().expect("no input panics the loader");
}

/// falco.yaml's names in the config file: rules_files (a list, in order),
/// priority, outputs.rate/max_burst, rule_matching.
#[test]
fn config_file_rule_keys() {
    let conf = kestrel::testing::scratch("rules.toml");
    std::fs::write(
        &conf,
        "rules_files = [\"a.yaml\", \"b.yaml\"]\npriority = \"notice\"\nrule_matching = \"all\"\n\
         rules_counters_enabled = false\n[outputs]\nrate = 2.5\nmax_burst = 7\n",
    )
    .unwrap();
    let r = kestrel::cli::run_args_with_config(&["--config", conf.to_str().unwrap()]).unwrap();
    assert_eq!(r.rules, ["a.yaml", "b.yaml"]);
    assert_eq!(r.min_priority, Some(Priority::Notice));
    assert_eq!(r.rule_matching, Some(true));
    assert_eq!(r.rules_counters_enabled, Some(false));
    assert_eq!(r.outputs_rate, Some(2.5));
    assert_eq!(r.outputs_max_burst, Some(7.0));
    std::fs::write(&conf, "rules_files = 3\n").unwrap();
    let e = kestrel::cli::run_args_with_config(&["--config", conf.to_str().unwrap()]).unwrap_err();
    assert!(e.contains("rules_files"), "{e}");
    let _ = std::fs::remove_file(&conf);
}
