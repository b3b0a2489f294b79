use kestrel::agent;
use std::path::PathBuf;

use kestrel::alerts::EXIT_ON_DROPS;
use kestrel::capture::btf::AttachMode;
use kestrel::capture::ProbeConfig;
use kestrel::cli::{self, Command};
use kestrel::rules::Priority;
use kestrel::state::{DEFAULT_FD_CAPACITY, DEFAULT_THREAD_CAPACITY};

fn main() {
    // Before anything opens a file: closed 0-2 get /dev/null, stderr goes
    // non-blocking.
    kestrel::log::init();
    let cli = cli::parse_or_exit();
    let a = match cli.cmd {
        Command::Run(a) => a,
        Command::ExportProbe(e) => export_probe(&e.file),
        Command::Check(c) => check(c),
    };
    let threads = a.thread_table_size.unwrap_or(DEFAULT_THREAD_CAPACITY);
    let fds = a.fd_table_size.unwrap_or(DEFAULT_FD_CAPACITY);
    // Everything that can be wrong with the input, before anything is created.
    let checked =
        match kestrel::preflight::check(a.pidfile.as_deref(), a.user.as_deref(), threads, fds) {
            Ok(c) => c,
            Err(e) => cli::bad_input(&e),
        };
    let rules =
        match kestrel::rules::files::load(&a.rules, a.min_priority.unwrap_or(Priority::Debug)) {
            Ok(r) => r,
            Err(e) => cli::bad_input(&format!("rules: {e}")),
        };
    let tokens = cli::run_tokens();
    let mut cfg = agent::build::agent_config(a, threads, fds, rules);
    cfg.reload_tokens = tokens;
    match agent::run(cfg, checked) {
        Ok(agent::RunEnd::Stopped) => {}
        Ok(agent::RunEnd::DropExit) => std::process::exit(EXIT_ON_DROPS),
        Err(e) => {
            kestrel::log_line!("{}", e.0);
            std::process::exit(e.1);
        }
    }
}

/// `kestrel check`: the report, exit 0 when this host can run the probe.
fn check(c: cli::CheckArgs) -> ! {
    let probe = ProbeConfig {
        attach: c.attach.unwrap_or(AttachMode::Auto),
        event_buffer: c.event_buffer.unwrap_or_default(),
        btf: c.btf.map(PathBuf::from),
        ..ProbeConfig::default()
    };
    // A one-shot report: into a closed pipe it ends quietly the way cat
    // does (SIGPIPE), never with a panic.
    // SAFETY: restoring the default disposition of one signal.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    let report = kestrel::check::run(&probe);
    if c.json {
        kestrel::check::print_json(&report);
    } else {
        kestrel::check::print_text(&report);
    }
    std::process::exit(if report.can_run { 0 } else { 1 });
}

/// Writes the embedded BPF object; exit 2 when the file cannot be written.
fn export_probe(file: &str) -> ! {
    let obj = kestrel::capture::probe_object();
    match std::fs::write(file, obj) {
        Ok(()) => {
            println!(
                "kestrel: wrote the probe object ({} bytes) to {file}",
                obj.len()
            );
            std::process::exit(0)
        }
        Err(e) => {
            eprintln!("kestrel: export-probe: cannot write {file}: {e}");
            std::process::exit(2)
        }
    }
}
