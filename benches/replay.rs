//! Replay benchmark: synthetic records through decode + state update (and
//! the rules) on one core; prints events/s. `cargo bench --bench replay`.
//! Rows: no rules; the built-in edge ruleset; Falco's upstream stable rules
//! (what of them loads); ten copies of the built-in set under new names;
//! then none and the built-in set again with each close riding on its open
//! as a tail, as the staging probe sends it (`+tails`).

mod replay_core;

use kestrel::rules::{files, Priority, RuleFile, RuleSet};
use kestrel::state::State;

fn ruleset(name: &str) -> Option<RuleSet> {
    let load = |text: &str| {
        kestrel::rules::load(
            &[RuleFile {
                name,
                text: text.as_bytes(),
            }],
            Priority::Debug,
        )
        .unwrap_or_else(|e| panic!("{name}: {e}"))
    };
    match name {
        "none" => None,
        // Any rules file: `cargo bench --bench replay -- file:PATH`.
        f if f.starts_with("file:") => Some(load(
            &std::fs::read_to_string(&f[5..]).unwrap_or_else(|e| panic!("{f}: {e}")),
        )),
        "default" => Some(load(&files::default_rules())),
        "upstream" => Some(load(
            &std::fs::read_to_string(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/rules/upstream/falco_rules.yaml"
            ))
            .expect("tests/rules/upstream/falco_rules.yaml"),
        )),
        _ => {
            // Ten renamed copies of every rule: ten times the rule work.
            let base = files::default_rules();
            let mut text = base.to_string();
            for i in 1..10 {
                let copy: String = base
                    .lines()
                    .filter(|l| !l.starts_with("- required_engine_version"))
                    .map(|l| match l.strip_prefix("- rule: ") {
                        Some(n) => format!("- rule: {n} (copy {i})\n"),
                        None => format!("{l}\n"),
                    })
                    .collect();
                text.push_str(&copy);
            }
            Some(load(&text))
        }
    }
}

fn main() {
    let only = std::env::args().nth(1).filter(|a| !a.starts_with('-'));
    let file_row = only.clone().filter(|o| o.starts_with("file:"));
    let rows: Vec<String> = match file_row {
        Some(f) => vec![f],
        None => [
            "none",
            "default",
            "upstream",
            "synthetic10x",
            "none+tails",
            "default+tails",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect(),
    };
    for name in rows.iter().map(String::as_str) {
        if only.as_deref().is_some_and(|o| o != name) {
            continue;
        }
        // +tails: closes ride on their opens, as the staging probe sends them.
        let (rules, tails) = name
            .strip_suffix("+tails")
            .map_or((name, false), |r| (r, true));
        let set = ruleset(rules);
        let n = set.as_ref().map_or(0, |s| s.rules.len());
        // KESTREL_REPLAY_ROUNDS: fewer passes, e.g. under callgrind.
        let rounds = std::env::var("KESTREL_REPLAY_ROUNDS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(200);
        let runs = if rounds < 200 { 1 } else { 5 };
        let (best, recs) = replay_core::best_of_rules(runs, rounds, set, tails);
        println!(
            "replay rules={name} ({n} rules): {:.2} M events/s ({recs} records per round)",
            best / 1e6
        );
    }
    println!(
        "bytes/thread entry {}, bytes/fd entry {}",
        State::bytes_per_thread(),
        State::bytes_per_fd()
    );
}
