//! Falco's own rules file (tests/rules/upstream, see its README), parsed
//! whole and as the seed of a mutation run.

use super::*;
use crate::testing::Rng;

const UPSTREAM: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/rules/upstream/falco_rules.yaml"
));

/// The top-level items of the upstream file.
fn upstream() -> Vec<Node> {
    let docs = parse(UPSTREAM).unwrap_or_else(|e| panic!("upstream rules: {e}"));
    assert_eq!(docs.len(), 1);
    docs[0].as_seq().expect("a sequence of items").to_vec()
}

/// The item whose `kind` key (rule, macro, list) is `name`.
fn item<'a>(items: &'a [Node], kind: &str, name: &str) -> &'a Node {
    items
        .iter()
        .find(|n| n.get(kind).and_then(Node::as_str) == Some(name))
        .unwrap_or_else(|| panic!("no {kind} {name}"))
}

fn texts(node: &Node) -> Vec<&str> {
    node.as_seq()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect()
}

#[test]
fn upstream_items_by_kind() {
    let items = upstream();
    let count = |kind: &str| items.iter().filter(|n| n.get(kind).is_some()).count();
    assert_eq!(items.len(), 163);
    assert_eq!((count("rule"), count("macro"), count("list")), (25, 87, 49));
    assert_eq!(
        items[0].get("required_engine_version").unwrap().as_str(),
        Some("0.57.0")
    );
    let plugins = items[1]
        .get("required_plugin_versions")
        .unwrap()
        .as_seq()
        .unwrap();
    assert_eq!(plugins[0].get("name").unwrap().as_str(), Some("container"));
    assert_eq!(plugins[0].get("version").unwrap().as_str(), Some("0.4.0"));
}

#[test]
fn upstream_lists() {
    let items = upstream();
    let shells = item(&items, "list", "shell_binaries").get("items").unwrap();
    assert_eq!(
        texts(shells),
        ["ash", "bash", "csh", "ksh", "sh", "tcsh", "zsh", "dash"]
    );
    // Wrapped over lines, with a quoted item whose quotes are content.
    let login = texts(item(&items, "list", "login_binaries").get("items").unwrap());
    assert_eq!(login.len(), 10);
    assert_eq!(login[2], "\"(systemd)\"");
    assert_eq!(login[9], "sg");
    let deb = texts(item(&items, "list", "deb_binaries").get("items").unwrap());
    assert_eq!((deb[0], deb[deb.len() - 1]), ("dpkg", "apt.systemd.dai"));
    // A block sequence of images.
    let falco = item(&items, "list", "falco_containers")
        .get("items")
        .unwrap();
    assert!(texts(falco).contains(&"docker.io/falcosecurity/falco"));
}

#[test]
fn upstream_macros_and_rules() {
    let items = upstream();
    let open_write = item(&items, "macro", "open_write")
        .get("condition")
        .unwrap();
    assert_eq!(
        open_write.as_str(),
        Some("(evt.type in (open,openat,openat2) and evt.is_open_write=true and fd.typechar='f' and fd.num>=0)")
    );
    // A plain scalar folded over three more-indented lines.
    let bench = item(&items, "macro", "linux_bench_reading_etc_shadow")
        .get("condition")
        .unwrap();
    assert_eq!(
        bench.as_str(),
        Some("((proc.aname[2]=linux-bench and proc.name in (awk,cut,grep)) and (fd.name=/etc/shadow or fd.directory=/etc/pam.d))")
    );
    let rule = item(&items, "rule", "Directory traversal monitored file read");
    let cond = rule.get("condition").unwrap().as_str().unwrap();
    // Folded: more-indented lines keep their breaks and indentation.
    assert!(cond.starts_with(
        "(open_read or open_file_failed) and (etc_dir or user_ssh_directory or\n     fd.name"
    ));
    assert!(cond.ends_with(
        "\"id_rsa\")\nand directory_traversal and not proc.pname in (shell_binaries)\n"
    ));
    assert_eq!(rule.get("enabled").unwrap().as_bool(), Some(true));
    assert_eq!(rule.get("priority").unwrap().as_str(), Some("WARNING"));
    assert_eq!(texts(rule.get("tags").unwrap())[0], "maturity_stable");
    let desc = rule.get("desc").unwrap().as_str().unwrap();
    assert!(
        desc.starts_with("Web applications can be vulnerable") && !desc.contains("\n("),
        "{desc:?}"
    );
}

#[test]
fn upstream_line_numbers() {
    let items = upstream();
    assert_eq!(items[0].line, 28);
    assert_eq!(items[1].get("required_plugin_versions").unwrap().line, 31);
    assert_eq!(item(&items, "macro", "open_write").line, 42);
    assert_eq!(item(&items, "list", "shell_binaries").line, 104);
    let rule = item(&items, "rule", "Directory traversal monitored file read");
    assert_eq!(
        (
            rule.line,
            rule.get("condition").unwrap().line,
            rule.get("tags").unwrap().line
        ),
        (318, 323, 333)
    );
}

/// One mutation of `lines` (a window of the upstream file, or all of it).
fn mutate(rng: &mut Rng, lines: &[&str]) -> Vec<u8> {
    let start = rng.below(lines.len());
    let len = if rng.below(100) == 0 {
        lines.len()
    } else {
        1 + rng.below(60)
    };
    let window = lines.iter().skip(start).take(len);
    let mut text: Vec<u8> = window.flat_map(|l| l.bytes().chain([b'\n'])).collect();
    for _ in 0..1 + rng.below(4) {
        if text.is_empty() {
            break;
        }
        let at = rng.below(text.len());
        match rng.below(6) {
            0 => text[at] = rng.next() as u8, // any byte, invalid UTF-8 too
            1 => text[at] = pick(rng, b"[]{}:-'\"|># \t\n,&*!?\\"),
            2 => text.truncate(at),
            3 => text.insert(at, pick(rng, b"[{'\"|>-: \n")),
            4 => {
                // Duplicate a line.
                let line_start = text[..at]
                    .iter()
                    .rposition(|&b| b == b'\n')
                    .map_or(0, |i| i + 1);
                let line_end = text[at..]
                    .iter()
                    .position(|&b| b == b'\n')
                    .map_or(text.len(), |i| at + i + 1);
                let line = text[line_start..line_end].to_vec();
                text.splice(line_start..line_start, line);
            }
            _ => {
                text.remove(at);
            }
        }
    }
    text
}

fn pick(rng: &mut Rng, set: &[u8]) -> u8 {
    set[rng.below(set.len())]
}

#[test]
fn mutations_never_panic() {
    let lines: Vec<&str> = UPSTREAM.lines().collect();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut parsed = 0;
    for _ in 0..20_000 {
        let input = mutate(&mut rng, &lines);
        if parse_bytes(&input).is_ok() {
            parsed += 1;
        }
    }
    // Most windows are still rule files; most damage is caught.
    eprintln!("parsed {parsed}");
    assert!(parsed > 1000 && parsed < 19_000, "parsed {parsed}");
}
