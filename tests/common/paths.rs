//! Paths and input as a hostile user tries them: the agent run for its
//! exit status and one line, scratch directories, another user's directory.

use std::process::{Command, Output};

use super::{bin, tmp};

pub fn run(args: &[&str]) -> Output {
    Command::new(bin()).args(args).output().unwrap()
}

/// Exit 2, one line on stderr containing `want`, nothing on stdout.
pub fn assert_bad_input(o: &Output, want: &str) {
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{}: {err}", o.status);
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(err.contains(want), "{want:?} in {err}");
    assert!(o.stdout.is_empty());
}

pub fn fresh_dir(name: &str) -> String {
    let d = tmp(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Creates `path` as a directory owned by nobody.
pub fn nobodys_dir(path: &str) {
    std::fs::create_dir(path).unwrap();
    std::os::unix::fs::chown(path, Some(65534), Some(65534)).unwrap();
}

pub fn as_nobody(script: &str) {
    let st = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "sh",
            "-c",
            script,
        ])
        .status()
        .unwrap();
    assert!(st.success(), "setpriv sh -c {script}");
}
