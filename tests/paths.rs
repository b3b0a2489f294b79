//! Paths and input, as a hostile user would try them: FIFOs and devices as
//! outputs, symlinks at the pidfile and in directory components (also
//! swapped in by an unprivileged user via setpriv after start), --user,
//! capacities beyond RLIMIT_AS, oversized and binary configs, help and check
//! into a closed pipe. The bad-input ones need no probe and run anywhere.

use std::os::unix::fs::MetadataExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, Stdio};
use std::time::Duration;

mod common;
use common::paths::{as_nobody, assert_bad_input, fresh_dir, nobodys_dir, run};
use common::SpawnGuarded;
use common::{
    agent, bin, pipe, probe_lock, serial, signal, spawn_agent, term, tmp, wait_for_lines,
    written_lines,
};

#[test]
fn fifo_socket_and_device_outputs_are_refused() {
    let d = fresh_dir("special");
    let fifo = format!("{d}/f");
    rustix::fs::mkfifoat(
        rustix::fs::CWD,
        fifo.as_str(),
        rustix::fs::Mode::from(0o600),
    )
    .unwrap();
    let sock = format!("{d}/s");
    let _l = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    // Before the fix a FIFO hung the start forever.
    let o = run(&["run", "--output", &format!("file:{fifo}")]);
    assert_bad_input(&o, "is a FIFO");
    assert_bad_input(
        &run(&["run", "--output", &format!("file:{sock}")]),
        "is a socket",
    );
    assert_bad_input(
        &run(&["run", "--output", "file:/dev/null"]),
        "character device",
    );
}

#[test]
fn pidfile_symlink_is_refused_and_nothing_is_created() {
    let d = fresh_dir("pidlink");
    std::fs::write(format!("{d}/victim"), "precious\n").unwrap();
    std::os::unix::fs::symlink(format!("{d}/victim"), format!("{d}/k.pid")).unwrap();
    let out = format!("{d}/out.json");
    let o = run(&[
        "run",
        "--pidfile",
        &format!("{d}/k.pid"),
        "--output",
        &format!("file:{out}"),
    ]);
    assert_bad_input(&o, "symlink");
    assert_eq!(
        std::fs::read_to_string(format!("{d}/victim")).unwrap(),
        "precious\n"
    );
    assert!(
        !std::path::Path::new(&out).exists(),
        "validated before creating"
    );
    // A pidfile in a missing directory: also nothing created.
    let o = run(&[
        "run",
        "--pidfile",
        &format!("{d}/no/k.pid"),
        "--output",
        &format!("file:{out}"),
    ]);
    assert_bad_input(&o, "does not exist");
    assert!(!std::path::Path::new(&out).exists());
}

#[test]
fn symlink_in_a_directory_component_is_refused() {
    let d = fresh_dir("dirlink");
    std::fs::create_dir(format!("{d}/real")).unwrap();
    std::os::unix::fs::symlink(format!("{d}/real"), format!("{d}/link")).unwrap();
    let o = run(&["run", "--output", &format!("file:{d}/link/out.json")]);
    assert_bad_input(&o, "symlink");
    assert!(!std::path::Path::new(&format!("{d}/real/out.json")).exists());
    let o = run(&["run", "--pidfile", &format!("{d}/link/k.pid")]);
    assert_bad_input(&o, "symlink");
    // The same through the O_NOFOLLOW walk kernels before 5.6 get.
    let o = Command::new(bin())
        .args(["run", "--output", &format!("file:{d}/link/out.json")])
        .env("KESTREL_NO_OPENAT2", "1")
        .output()
        .unwrap();
    assert_bad_input(&o, "symlink");
}

#[test]
fn capacities_beyond_rlimit_as_are_one_line_not_an_abort() {
    let mut cmd = Command::new(bin());
    cmd.args([
        "run",
        "--thread-table-size",
        "16777216",
        "--fd-table-size",
        "16777216",
    ]);
    // SAFETY: setrlimit between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            let l = libc::rlimit {
                rlim_cur: 256 << 20,
                rlim_max: 256 << 20,
            };
            libc::setrlimit(libc::RLIMIT_AS, &l);
            Ok(())
        })
    };
    let o = cmd.output().unwrap();
    assert_eq!(o.status.signal(), None, "no abort");
    assert_bad_input(&o, "RLIMIT_AS");
}

#[test]
fn hostile_names_are_refused() {
    let o = Command::new(bin())
        .args(["run"])
        .env("FALCO_HOSTNAME", "h".repeat(15_000))
        .output()
        .unwrap();
    assert_bad_input(&o, "FALCO_HOSTNAME");
    let o = run(&["run", "--output", "syslog://127.0.0.1:514?hostname=gw 1"]);
    assert_bad_input(&o, "printable ASCII");
    assert_bad_input(
        &run(&["run", "--user", "no-such-user-kestrel"]),
        "does not exist",
    );
    let o = run(&["run", "--output", "file:/tmp/a\nb/c"]);
    assert_bad_input(&o, "\\x0a");
}

#[test]
fn oversized_binary_and_multiline_configs_get_one_line() {
    let d = fresh_dir("conf");
    let big = format!("{d}/big.toml");
    // 200,000 short lines: rejected by size, at once.
    std::fs::write(&big, "a = 1\n".repeat(200_000)).unwrap();
    assert_bad_input(&run(&["run", "--config", &big]), "larger than 1024 KiB");
    assert_bad_input(
        &run(&["run", "--config", "/dev/urandom"]),
        "not a regular file",
    );
    // Just under the cap: parsed in linear time, the error names line 1.
    let many = format!("{d}/many.toml");
    let text: String = (0..80_000).map(|i| format!("k{i} = 1\n")).collect();
    assert!(text.len() < 1 << 20);
    std::fs::write(&many, text).unwrap();
    assert_bad_input(
        &run(&["run", "--config", &many]),
        ":1: key 'k0': unknown key",
    );
    let nl = format!("{d}/nl.toml");
    std::fs::write(&nl, "\"a\\nb\" = 1\n").unwrap();
    assert_bad_input(&run(&["run", "--config", &nl]), "key 'a\\x0ab'");
}

fn closed_pipe() -> Stdio {
    let (r, w) = pipe();
    drop(r);
    Stdio::from(w)
}

#[test]
fn help_and_check_into_a_closed_pipe_do_not_abort() {
    let _g = serial();
    let st = Command::new(bin())
        .args(["run", "--help"])
        .stdout(closed_pipe())
        .output()
        .unwrap();
    assert_eq!(st.status.code(), Some(0), "{}", st.status);
    let o = Command::new(bin())
        .arg("check")
        .stdout(closed_pipe())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    // Ends like cat would (SIGPIPE), never SIGABRT or a panic message.
    assert_ne!(o.status.signal(), Some(libc::SIGABRT), "{err}");
    assert_ne!(o.status.code(), Some(134), "{err}");
    assert!(
        !err.contains("panicked") && !err.contains("Broken pipe"),
        "{err}"
    );
}

/// A user who owns a directory on the output path swaps a component for a
/// symlink to a root-owned directory, then the agent gets SIGHUP.
#[test]
#[cfg_attr(not(kestrel_ci), ignore = "needs root: loads the probe")]
fn sighup_reopen_never_follows_a_swapped_directory() {
    let _g = probe_lock();
    let d = fresh_dir("swap");
    std::fs::create_dir(format!("{d}/victim")).unwrap();
    std::fs::write(format!("{d}/victim/out.json"), "precious\n").unwrap();
    nobodys_dir(&format!("{d}/u"));
    as_nobody(&format!("mkdir {d}/u/logs"));
    let out = format!("{d}/u/logs/out.json");
    let mut agent = spawn_agent(&out, &["--interval", "100ms"]);
    wait_for_lines(&out, 1, Duration::from_secs(30));
    as_nobody(&format!(
        "mv {d}/u/logs {d}/u/old && ln -s {d}/victim {d}/u/logs"
    ));
    signal(&agent, libc::SIGHUP);
    let n = written_lines(&format!("{d}/u/old/out.json")).len();
    wait_for_lines(
        &format!("{d}/u/old/out.json"),
        n + 3,
        Duration::from_secs(30),
    );
    assert!(term(&mut agent).success());
    assert_eq!(
        std::fs::read_to_string(format!("{d}/victim/out.json")).unwrap(),
        "precious\n"
    );
    assert_eq!(std::fs::read_dir(format!("{d}/victim")).unwrap().count(), 1);
}

/// --user: uid switched after attach with CAP_BPF kept; reopens are checked
/// as that user (allowed in its directory, refused in root's).
#[test]
#[cfg_attr(not(kestrel_ci), ignore = "needs root: loads the probe")]
fn user_switch_keeps_cap_bpf_and_reopens_as_the_user() {
    let _g = probe_lock();
    let d = fresh_dir("user");
    nobodys_dir(&format!("{d}/mine"));
    let (root_out, user_out) = (format!("{d}/root.json"), format!("{d}/mine/out.json"));
    let err = tmp("user.err");
    let mut agent = agent(&root_out, &["--user", "nobody", "--interval", "100ms"])
        .args(["--output", &format!("file:{user_out}")])
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn_guarded();
    wait_for_lines(&user_out, 2, Duration::from_secs(30));
    let status = std::fs::read_to_string(format!("/proc/{}/status", agent.id())).unwrap();
    let get = |k: &str| {
        status
            .lines()
            .find(|l| l.starts_with(k))
            .unwrap()
            .to_string()
    };
    assert!(
        get("Uid:").split_whitespace().skip(1).all(|u| u == "65534"),
        "{}",
        get("Uid:")
    );
    assert!(get("Gid:").split_whitespace().skip(1).all(|g| g == "65534"));
    let eff = u64::from_str_radix(get("CapEff:").split_whitespace().nth(1).unwrap(), 16).unwrap();
    assert_eq!(eff, 1 << 39, "only CAP_BPF effective");
    std::fs::rename(&root_out, format!("{root_out}.1")).unwrap();
    std::fs::rename(&user_out, format!("{user_out}.1")).unwrap();
    signal(&agent, libc::SIGHUP);
    wait_for_lines(&user_out, 1, Duration::from_secs(30));
    assert!(term(&mut agent).success());
    assert_eq!(
        std::fs::metadata(&user_out).unwrap().uid(),
        65534,
        "created as the user"
    );
    assert!(
        !std::path::Path::new(&root_out).exists(),
        "root's directory refused it"
    );
    let text = std::fs::read_to_string(&err).unwrap();
    assert!(text.contains("Permission denied"), "{text}");
    assert!(text.contains("running as nobody"), "{text}");
}
