//! The engine end to end on made-up events: loading (lists, macros,
//! append, override, exceptions), Falco's evaluation rules, the event-type
//! index, outputs and the alert line.

use super::eval::{eval, Scratch};
use super::events::code_of;
use super::fake::{Fake, Val};
use super::fields::Field;
use super::value::{Buf, Ip};
use super::*;

pub fn load(text: &str) -> Result<RuleSet, LoadError> {
    super::load(
        &[RuleFile {
            name: "t.yaml",
            text: text.as_bytes(),
        }],
        Priority::Debug,
    )
}

fn cond(c: &str) -> RuleSet {
    let y = format!(
        "- rule: r\n  desc: d\n  condition: {}\n  output: o\n  priority: WARNING\n",
        serde_json::to_string(c).unwrap()
    );
    load(&y).unwrap_or_else(|e| panic!("{c}: {e}"))
}

fn matches(c: &str, ev: &Fake) -> bool {
    let set = cond(c);
    eval(&set.rules[0].condition, ev, &mut Scratch::default())
}

fn exec_of(name: &'static str) -> Fake {
    Fake::default()
        .with(Field::EvtType, Val::S("execve"))
        .with(Field::ProcName, Val::S(name))
}

#[test]
fn missing_values_fail_every_operator_but_not_negation() {
    let ev = Fake::default().with(Field::EvtType, Val::S("execve"));
    assert!(!matches("fd.name != x", &ev));
    assert!(!matches("fd.name exists", &ev));
    assert!(matches("not fd.name = x", &ev));
    assert!(matches("not fd.name exists", &ev));
}

#[test]
fn string_operators() {
    let ev = exec_of("bash").with(Field::FdName, Val::S("/etc/shadow"));
    for c in [
        "fd.name = /etc/shadow",
        "fd.name startswith /etc/",
        "fd.name endswith shadow",
        "fd.name contains etc/sh",
        "fd.name icontains ETC/SH",
        "fd.name glob '/etc/*'",
        "fd.name glob '/e?c/[a-s]hadow'",
        "fd.name pmatch (/etc)",
        "fd.name pmatch (/usr, /e*)",
        "fd.name in (/etc/shadow, /etc/passwd)",
        "fd.name intersects (/etc/shadow)",
        "proc.name in (sh, bash)",
        "tolower(fd.name) = /etc/shadow",
        "toupper(proc.name) = BASH",
        "basename(fd.name) = shadow",
        "len(proc.name) = 4",
    ] {
        assert!(matches(c, &ev), "{c}");
    }
    for c in [
        "fd.name pmatch (/et)",
        "fd.name = /etc",
        "fd.name in ()",
        "fd.name glob '/etc'",
        "proc.name = Bash",
    ] {
        assert!(!matches(c, &ev), "{c}");
    }
}

#[test]
fn numbers_bools_and_addresses() {
    let ev = exec_of("nc")
        .with(Field::EvtRawres, Val::I(-115))
        .with(Field::FdSport, Val::I(4444))
        .with(Field::EvtIsOpenRead, Val::B(false))
        .with(Field::FdSip, Val::Ip(Ip::parse("192.168.1.9").unwrap()))
        .with(Field::FdSnet, Val::Ip(Ip::parse("192.168.1.9").unwrap()))
        .with(Field::FdCip, Val::Ip(Ip::parse("10.1.1.1").unwrap()));
    for c in [
        "evt.rawres < 0",
        "evt.rawres in (-115, 0)",
        "fd.sport >= 4444 and fd.sport <= 0x115c",
        "evt.is_open_read = false",
        "fd.sip = 192.168.1.9",
        "fd.snet in (\"192.168.0.0/16\")",
        "fd.ip = 10.1.1.1",
        "fd.net = \"10.0.0.0/8\"",
        "fd.ip != 1.2.3.4",
    ] {
        assert!(matches(c, &ev), "{c}");
    }
    // fd.ip != needs both ends to differ (libsinsp compare_ip).
    assert!(!matches("fd.ip != 10.1.1.1", &ev));
    assert!(!matches("fd.snet in (\"10.0.0.0/8\")", &ev));
}

#[test]
fn ancestors_any_and_indexed() {
    let ev = exec_of("sh")
        .at(Field::ProcAname, 1, Val::S("lighttpd"))
        .at(Field::ProcAname, 2, Val::S("procd"));
    assert!(matches("proc.aname = procd", &ev));
    assert!(matches("proc.aname in (x, lighttpd)", &ev));
    assert!(!matches("proc.aname = sh", &ev), "self is not an ancestor");
    assert!(matches("proc.aname[2] = procd", &ev));
    assert!(!matches("proc.aname[3] exists", &ev));
}

#[test]
fn lists_macros_append_override() {
    let y = r#"
- list: shells
  items: [sh, bash]
- list: more
  items: [shells, zsh]
- macro: is_shell
  condition: proc.name in (more)
- rule: shell
  desc: d
  condition: evt.type = execve and is_shell
  output: "shell %proc.name"
  priority: notice
  tags: [b, a]
- list: shells
  items: [ash]
  append: true
- macro: is_shell
  condition: or proc.name = fish
  override:
    condition: append
- rule: shell
  output: "(%proc.pname)"
  tags: [c]
  override:
    output: append
    tags: append
"#;
    let set = load(y).unwrap();
    let r = &set.rules[0];
    assert_eq!(r.tags, ["a", "b", "c"]);
    assert_eq!(r.priority, Priority::Notice);
    let s = Scratch::default;
    // `more` expands `shells` at compile time, after the append.
    assert!(eval(&r.condition, &exec_of("zsh"), &mut s()));
    assert!(eval(&r.condition, &exec_of("fish"), &mut s()));
    assert!(eval(&r.condition, &exec_of("ash"), &mut s()));
    assert!(!eval(&r.condition, &exec_of("ksh"), &mut s()));
    let mut out = Buf::new();
    format::render(
        &r.output,
        &exec_of("sh").with(Field::ProcPname, Val::S("init")),
        &mut out,
        &mut Buf::new(),
    );
    assert_eq!(&out[..], b"shell sh (init)");
}

#[test]
fn exceptions_and_disable() {
    let y = r#"
- rule: r
  desc: d
  condition: evt.type = execve
  output: o
  priority: WARNING
  exceptions:
    - name: by_name
      fields: [proc.name, proc.pname]
      comps: [=, in]
      values:
        - [sh, init]
    - name: one
      fields: proc.name
      comps: in
      values: [busybox]
- rule: r
  exceptions:
    - name: by_name
      values:
        - [ash, [x, y]]
  override:
    exceptions: append
- rule: other
  desc: d
  condition: evt.type = open
  output: o
  priority: WARNING
  enabled: false
"#;
    let set = load(y).unwrap();
    assert_eq!(set.rules.len(), 1);
    assert_eq!(set.disabled, 1);
    let c = &set.rules[0].condition;
    let s = Scratch::default;
    assert!(!eval(
        c,
        &exec_of("sh").with(Field::ProcPname, Val::S("init")),
        &mut s()
    ));
    assert!(eval(
        c,
        &exec_of("sh").with(Field::ProcPname, Val::S("x")),
        &mut s()
    ));
    assert!(!eval(
        c,
        &exec_of("ash").with(Field::ProcPname, Val::S("y")),
        &mut s()
    ));
    assert!(!eval(c, &exec_of("busybox"), &mut s()));
}

#[test]
fn evttype_index() {
    let set = load(
        r#"
- rule: a
  desc: d
  condition: evt.type in (open, openat) and proc.name = x
  output: o
  priority: WARNING
- rule: b
  desc: d
  condition: not evt.type = openat and proc.name = y
  output: o
  priority: WARNING
"#,
    )
    .unwrap();
    let openat = code_of("openat").unwrap();
    let execve = code_of("execve").unwrap();
    assert_eq!(set.candidates(openat), &[0]);
    assert_eq!(set.candidates(execve), &[1]);
    assert_eq!(
        set.rules[0].codes.codes().count(),
        2 - usize::from(code_of("open").is_none())
    );
}

#[test]
fn unsupported_rules_are_skipped_with_their_reason() {
    let set = load(
        r#"
- rule: caps
  desc: d
  condition: evt.type = execve and thread.cap_effective contains sys_admin
  output: o
  priority: WARNING
- rule: k8s
  desc: d
  condition: evt.type = execve
  output: "%k8s.ns.name"
  priority: WARNING
- rule: read
  desc: d
  condition: evt.type = read
  output: o
  priority: WARNING
- rule: ok
  desc: d
  condition: evt.type = execve
  output: o
  priority: WARNING
"#,
    )
    .unwrap();
    let names: Vec<_> = set.skipped.iter().map(|s| s.rule.as_str()).collect();
    assert_eq!(names, ["caps", "k8s", "read"]);
    assert!(set.skipped[0].reason.contains("capabilities"));
    assert!(set.skipped[2].reason.contains("does not capture"));
    assert_eq!(set.rules.len(), 1);
}

#[test]
fn bad_files_name_file_line_and_item() {
    let cases = [
        ("- rule: r\n  desc: d\n  condition: evt.type = execve and nosuch\n  output: o\n  priority: WARNING\n", "Undefined macro"),
        ("- rule: r\n  desc: d\n  condition: proc.nosuch = 1\n  output: o\n  priority: WARNING\n", "nonexistent field"),
        ("- rule: r\n  desc: d\n  condition: evt.type = nosuchevent\n  output: o\n  priority: WARNING\n", "unknown event type"),
        ("- rule: r\n  desc: d\n  condition: (evt.type = execve\n  output: o\n  priority: WARNING\n", "expected ')'"),
        ("- rule: r\n  desc: d\n  condition: evt.type = execve\n  output: o\n  priority: LOUD\n", "priority"),
        ("- rule: r\n  desc: d\n  condition: evt.type = execve\n  priority: WARNING\n", "output"),
        ("- macro: a\n  condition: b\n- macro: b\n  condition: a\n", "Undefined macro 'b'"),
        ("- rule: r\n  condition: x\n  append: true\n", "no earlier rule"),
        ("- required_engine_version: 9.0.0\n", "engine version"),
        ("- rule: r\n  desc: d\n  condition: proc.pid contains 1\n  output: o\n  priority: WARNING\n", "not compatible"),
    ];
    for (y, want) in cases {
        let e = load(y).err().unwrap_or_else(|| panic!("accepted: {y}"));
        let line = e.to_string();
        assert!(line.starts_with("t.yaml:"), "{line}");
        assert!(line.contains(want), "{line} lacks {want}");
        assert!(!line.contains('\n'));
    }
    assert!(load(
        "- rule: r\n  desc: d\n  condition: evt.type = execve\n  output: o\n  priority: WARNING\n"
    )
    .is_ok());
}

#[test]
fn min_priority_leaves_rules_out() {
    let y = "- rule: r\n  desc: d\n  condition: evt.type = execve\n  output: o\n  priority: INFO\n";
    let set = super::load(
        &[RuleFile {
            name: "t",
            text: y.as_bytes(),
        }],
        Priority::Warning,
    )
    .unwrap();
    assert!(set.rules.is_empty());
    assert_eq!(set.below_priority, 1);
}

#[test]
fn alert_line_is_falcos_json() {
    let set = load(
        r#"
- rule: Shell
  desc: d
  condition: evt.type = execve
  output: "shell %proc.name (parent=%proc.pname uid=%user.uid x=%fd.name)"
  priority: WARNING
  tags: [z, a]
"#,
    )
    .unwrap();
    let ev = exec_of("sh\"q").with(Field::UserUid, Val::I(0));
    let mut w = alert::AlertWriter::new("gw-1");
    let line = w
        .render(&set.rules[0], &ev, 1_706_043_847_488_647_460)
        .to_vec();
    assert!(line.ends_with(b"\n"));
    let v: serde_json::Value = serde_json::from_slice(&line).unwrap();
    let keys: Vec<_> = v.as_object().unwrap().keys().cloned().collect();
    assert_eq!(
        keys,
        [
            "hostname",
            "output",
            "output_fields",
            "priority",
            "rule",
            "source",
            "tags",
            "time"
        ]
    );
    assert_eq!(v["rule"], "Shell");
    assert_eq!(v["priority"], "Warning");
    assert_eq!(v["source"], "syscall");
    assert_eq!(v["time"], "2024-01-23T21:04:07.488647460Z");
    assert_eq!(v["tags"], serde_json::json!(["a", "z"]));
    let f = &v["output_fields"];
    assert_eq!(f["proc.name"], "sh\"q");
    assert_eq!(f["user.uid"], 0);
    assert!(f["proc.pname"].is_null());
    assert!(f["fd.name"].is_null());
    assert_eq!(f["evt.time"], 1_706_043_847_488_647_460u64);
    let out = v["output"].as_str().unwrap();
    assert!(
        out.ends_with(": Warning shell sh\"q (parent=<NA> uid=0 x=<NA>)"),
        "{out}"
    );
}
