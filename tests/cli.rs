//! The command line without a workload: bad flags and config files get one
//! line and exit 2, the shipped config loads, a config file drives a run,
//! `export-probe` writes the object, and `kestrel check` answers on one
//! screen, in text and JSON, with and without privileges.

use std::process::Command;

mod common;
use common::{bin, field, probe_lock, snapshots, tmp};

#[test]
fn bad_flags_get_one_line_and_exit_2() {
    for args in [
        &["run", "--interval", "soon"][..],
        &["run", "--bogus"],
        &["run", "--output", "kafka://x"],
        &["run", "--output", "mqtt://h:1/p?qos=3"],
        &["run", "--output", "mqtt://h:1/"],
        &["run", "--output", "mqtts://h/p?bogus=1"],
        &["run", "--output", "mqtt://h/p?ca=/x"],
        &["run", "--output", "syslog+tls://h?ca=/x"],
        &["run", "--output", "syslog+tcp://h:0"],
        &["run", "--syscalls", "openat,nosuch"],
        &["run", "--interval", "10ms"],
        &["run", "--attach", "kprobe"],
        &["run", "--culprit-sample-period", "48"],
        &["run", "--culprit-sample-period", "131072"],
        &["run", "--btf", "/nonexistent/kestrel.btf"],
        &["run", "--btf", "/tmp"],
        &["check", "--btf", "/nonexistent/kestrel.btf"],
        &["export-probe"],
        &["export-probe", "/nonexistent/dir/kestrel.bpf.o"],
        // --duration: accepted, they would run (it did) and end.
        &[
            "run",
            "--duration",
            "1ms",
            "--syscall-event-drops-max-burst",
            "18446744073709551616",
        ],
        &[
            "run",
            "--duration",
            "1ms",
            "--syscall-event-drops-max-burst",
            "4294967296",
        ],
    ] {
        let o = Command::new(bin()).args(args).output().unwrap();
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8(o.stderr).unwrap();
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(o.stdout.is_empty());
    }
}

/// Arguments are bytes: a value that is not UTF-8 is one line and exit 2,
/// never a backtrace (it aborted with status 134).
#[test]
fn non_utf8_arguments_get_one_line_and_exit_2() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let ff = OsStr::from_bytes(b"\xff");
    let path = OsStr::from_bytes(b"file:/tmp/\xff.json");
    for args in [
        &[OsStr::new("run"), OsStr::new("--interval"), ff][..],
        &[ff],
        &[OsStr::new("run"), OsStr::new("--output"), path],
        &[OsStr::new("run"), OsStr::new("--config"), ff],
        &[OsStr::new("run"), OsStr::new("--pidfile"), ff],
        &[OsStr::new("check"), OsStr::new("--btf"), ff],
        &[OsStr::new("export-probe"), ff],
    ] {
        let o = Command::new(bin()).args(args).output().unwrap();
        let err = String::from_utf8(o.stderr).unwrap();
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains("not valid UTF-8"), "{args:?}: {err}");
        assert!(o.stdout.is_empty());
    }
    let o = Command::new(bin())
        .args([OsStr::new("run"), OsStr::new("--output"), path])
        .output()
        .unwrap();
    let err = String::from_utf8(o.stderr).unwrap();
    assert!(
        err.contains("'file:/tmp/\\xff.json'"),
        "names the bytes: {err}"
    );
    let o = Command::new(bin())
        .arg("run")
        .env("FALCO_HOSTNAME", ff)
        .output()
        .unwrap();
    let err = String::from_utf8(o.stderr).unwrap();
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("FALCO_HOSTNAME is not valid UTF-8"), "{err}");
}

#[test]
fn export_probe_writes_the_bpf_object() {
    let out = tmp("export.bpf.o");
    let o = Command::new(bin())
        .args(["export-probe", &out])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0));
    let obj = std::fs::read(&out).unwrap();
    let _ = std::fs::remove_file(&out);
    assert_eq!(&obj[..4], b"\x7fELF");
    let e_machine = u16::from_le_bytes([obj[18], obj[19]]);
    assert_eq!(e_machine, 247, "EM_BPF");
}

#[test]
fn shipped_config_file_loads_and_a_bad_one_names_its_line() {
    let shipped = concat!(env!("CARGO_MANIFEST_DIR"), "/configs/kestrel.toml");
    // Every key of the shipped file is valid: with a bad interval flag added,
    // the only complaint is about that flag.
    let o = Command::new(bin())
        .args(["run", "--config", shipped, "--interval", "1ms"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8(o.stderr).unwrap();
    assert!(err.contains("below the 100ms minimum"), "{err}");
    let bad = tmp("bad.toml");
    std::fs::write(&bad, "interval = \"1s\"\nring_buffer_size = \"3K\"\n").unwrap();
    let o = Command::new(bin())
        .args(["run", "--config", &bad])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8(o.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains(&format!("{bad}:2: key 'ring_buffer_size'")),
        "{err}"
    );
}

/// Each key has one TOML type: `pidfile = true` created `./true`, and
/// `interval = {}` was ignored, both with exit 0.
#[test]
fn config_values_of_the_wrong_type_get_one_line_and_exit_2() {
    let dir = tmp("conftypes");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for (text, key, got) in [
        ("interval = {}", "interval", "table"),
        ("pidfile = true", "pidfile", "boolean"),
        ("pidfile = -1", "pidfile", "integer"),
        ("pidfile = nan", "pidfile", "float"),
        ("pidfile = 1.5", "pidfile", "float"),
        ("output = 1", "output", "integer"),
        ("culprits = \"false\"", "culprits", "string"),
        ("thread_table_size = 1e3", "thread_table_size", "float"),
        ("user = false", "user", "boolean"),
    ] {
        let conf = format!("{dir}/k.toml");
        std::fs::write(&conf, format!("# line 1\n{text}\n")).unwrap();
        // In the scratch directory, so a file named after the value would show.
        let o = Command::new(bin())
            .args(["run", "--config", &conf, "--duration", "1ms"])
            .current_dir(&dir)
            .output()
            .unwrap();
        let err = String::from_utf8(o.stderr).unwrap();
        assert_eq!(o.status.code(), Some(2), "{text}: {err}");
        assert_eq!(err.lines().count(), 1, "{text}: {err}");
        let want = format!("{conf}:2: key '{key}': expected ");
        assert!(err.contains(&want), "{text}: {err}");
        assert!(
            err.trim_end().ends_with(&format!("not {got}")),
            "{text}: {err}"
        );
        let left: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
        assert_eq!(left.len(), 1, "{text}: only k.toml in {dir}");
    }
}

#[test]
#[cfg_attr(not(kestrel_ci), ignore = "needs root: loads the probe")]
fn config_file_drives_a_real_run() {
    let _g = probe_lock();
    let out = tmp("conf.json");
    let conf = tmp("run.toml");
    std::fs::write(
        &conf,
        format!(
            "output = [\"file:{out}\"]\ninterval = \"200ms\"\nduration = \"1s\"\n\
             libbpf_stats_enabled = true\ninclude_empty_values = true\n"
        ),
    )
    .unwrap();
    let st = Command::new(bin())
        .args(["run", "--config", &conf])
        .status()
        .unwrap();
    assert!(st.success());
    let snaps = snapshots(&out);
    assert!(snaps.len() >= 4, "{} snapshots", snaps.len());
    let last = snaps.last().unwrap();
    assert!(
        field(last, "scap.sys_exit.run_cnt") > 0,
        "stats on from the file"
    );
    assert!(
        last["output_fields"].get("scap.n_drops_bug").is_some(),
        "empty values kept"
    );
}

/// `check --json` run by `cmd` (the binary, or a wrapper that runs it),
/// which must exit with `code`; its parsed report.
fn check_json(mut cmd: Command, code: i32) -> serde_json::Value {
    let o = cmd.args(["check", "--json"]).output().unwrap();
    assert_eq!(o.status.code(), Some(code));
    serde_json::from_slice(&o.stdout).unwrap()
}

/// The names of the report's checks that `keep` selects.
fn check_names(v: &serde_json::Value, keep: impl Fn(&serde_json::Value) -> bool) -> Vec<&str> {
    v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| keep(c))
        .map(|c| c["name"].as_str().unwrap())
        .collect()
}

#[test]
#[cfg_attr(not(kestrel_ci), ignore = "needs root: loads the probe")]
fn check_says_this_host_can_run_and_the_json_agrees() {
    let _g = probe_lock();
    let o = Command::new(bin()).arg("check").output().unwrap();
    let text = String::from_utf8(o.stdout).unwrap();
    assert_eq!(o.status.code(), Some(0), "{text}");
    assert!(
        text.starts_with("kestrel check: this host CAN run the probe"),
        "{text}"
    );
    assert!(text.lines().count() <= 25, "fits one screen");
    let v = check_json(Command::new(bin()), 0);
    assert_eq!(v["can_run"], true);
    let names = check_names(&v, |_| true);
    for n in [
        "arch",
        "kernel",
        "btf",
        "capabilities",
        "bpf",
        "event_buffer",
        "memlock",
    ] {
        assert!(names.contains(&n), "{n} missing from {names:?}");
    }
    for n in ["tracefs", "tracepoints", "bpf_stats", "probe"] {
        assert!(names.contains(&n), "{n} missing from {names:?}");
    }
    let probe = v["checks"].as_array().unwrap().last().unwrap();
    assert_eq!(probe["ok"], true, "the probe really loaded: {probe}");
}

#[test]
#[cfg_attr(not(kestrel_ci), ignore = "needs root: loads the probe")]
fn check_without_privileges_names_exactly_the_failing_lines() {
    let _g = probe_lock();
    // setpriv (util-linux) drops to nobody with no capabilities.
    let mut nobody = Command::new("setpriv");
    nobody.args([
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "--inh-caps=-all",
        &bin(),
    ]);
    let v = check_json(nobody, 1);
    assert_eq!(v["can_run"], false);
    let failed = check_names(&v, |c| c["ok"] == false && c["required"] == true);
    assert_eq!(failed, ["capabilities", "bpf", "probe"], "{v}");
}

/// A /proc scan that fills more than half a table is named at start, one
/// line per table, with the flag that raises it and the cost of an entry.
#[test]
#[cfg_attr(not(kestrel_ci), ignore = "needs root: loads the probe")]
fn tables_the_scan_fills_beyond_half_are_named_at_start() {
    let _g = probe_lock();
    let out = tmp("tables.json");
    let run = |fds: &str| {
        let o = Command::new(bin())
            .args(["run", "--duration", "1ms", "--output"])
            .arg(format!("file:{out}"))
            .args(["--fd-table-size", fds])
            .output()
            .unwrap();
        assert!(o.status.success());
        String::from_utf8(o.stderr).unwrap()
    };
    // Four entries: any host's scan (the test runner's own stdio alone)
    // fills more than two; a CI machine with few processes seeded only 28.
    let err = run("4");
    let lines: Vec<&str> = err.lines().filter(|l| l.contains("fd table:")).collect();
    assert_eq!(lines.len(), 1, "{err}");
    let per_fd = kestrel::state::State::bytes_per_fd();
    assert!(
        lines[0].contains(&format!("raise --fd-table-size ({per_fd} bytes per entry)")),
        "{err}"
    );
    assert!(
        !run("1000000").contains("fd table:"),
        "room to spare: silent"
    );
}
