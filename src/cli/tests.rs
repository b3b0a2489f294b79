//! Parsing of flags, durations, sizes and the config file.
use super::*;

#[test]
fn durations() {
    assert_eq!(parse_duration("500ms").unwrap(), 500_000_000);
    assert_eq!(parse_duration("15s").unwrap(), 15_000_000_000);
    assert_eq!(parse_duration("15m").unwrap(), 900_000_000_000);
    assert_eq!(parse_duration("1h").unwrap(), 3_600_000_000_000);
    assert_eq!(parse_duration("1m30s").unwrap(), 90_000_000_000);
    for bad in ["", "5", "ms", "5x", "-5s", "1.5s", "99999999999999999h"] {
        assert!(parse_duration(bad).is_err(), "{bad}");
    }
    assert!(parse_interval("50ms").is_err());
}

#[test]
fn sizes_and_flags() {
    assert_eq!(parse_size("4096").unwrap(), 4096);
    assert_eq!(parse_size("8M").unwrap(), 8 << 20);
    assert!(parse_size("8G").is_err());
    assert!(parse_ring_size("3K").is_err());
    assert!(parse_ring_size("1K").is_err());
    assert_eq!(parse_ring_size("4K").unwrap(), 4096);
    assert!(parse_bool("maybe").is_err());
    assert!(parse_count("0").is_err());
    let cli = Cli::from_args(
        &["kestrel"],
        &["run", "--interval", "1s", "--output", "stdout"],
    )
    .unwrap();
    let Command::Run(r) = cli.cmd else {
        panic!("run parsed as another command")
    };
    assert_eq!(r.interval, Some(1_000_000_000));
    assert!(Cli::from_args(&["kestrel"], &["run", "--interval", "fast"]).is_err());
    assert!(Cli::from_args(&["kestrel"], &["run", "--bogus"]).is_err());
}

fn conf(text: &str) -> String {
    let p = crate::testing::scratch(&format!("conf-{}", text.len()));
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

#[test]
fn config_file_fills_and_flags_win() {
    let p =
        conf("interval = \"15s\"\nduration = \"1m\"\noutput = [\"stdout\"]\nfd_table_size = 99\n");
    let r = run_args_with_config(&["--config", &p, "--interval", "1s"]).unwrap();
    assert_eq!(r.interval, Some(1_000_000_000), "the flag wins");
    assert_eq!(r.duration, Some(60_000_000_000), "the file fills");
    assert_eq!(r.fd_table_size, Some(99));
    assert_eq!(r.output, vec![OutputSpec::Stdout]);
}

#[test]
fn config_file_errors_name_file_line_and_key() {
    let p = conf("interval = \"15s\"\n\ncolour = \"red\"\n");
    let e = run_args_with_config(&["--config", &p]).unwrap_err();
    assert_eq!(e, format!("{p}:3: key 'colour': unknown key"));
    let p = conf("# knobs\ninterval = \"soon\"\n");
    let e = run_args_with_config(&["--config", &p]).unwrap_err();
    assert!(e.starts_with(&format!("{p}:2: key 'interval': ")), "{e}");
    assert!(e.contains("bad duration"), "{e}");
    let p = conf("\"a\\nb\" = 1\n");
    let e = run_args_with_config(&["--config", &p]).unwrap_err();
    assert_eq!(e, format!("{p}:1: key 'a\\x0ab': unknown key"));
    let p = conf("libbpf_stats_enabled = \"maybe\"\n");
    let e = run_args_with_config(&["--config", &p]).unwrap_err();
    assert!(
        e.starts_with(&format!("{p}:1: key 'libbpf_stats_enabled'")),
        "{e}"
    );
}

#[test]
fn the_command_line_drops_the_files_value_of_each_flag_it_gives() {
    let p = conf("verbose = true\noutput = [\"stdout\", \"file:/tmp/x\"]\nenter_events = true\nring_buffer_size = \"8K\"\n");
    let r = run_args_with_config(&["--config", &p, "-v", "--output", "file:/tmp/y"]).unwrap();
    assert!(r.verbose && r.enter_events);
    assert_eq!(
        r.output,
        vec![OutputSpec::File("/tmp/y".into())],
        "the file's outputs go"
    );
    assert_eq!(r.ring_buffer_size, Some(8192), "the file fills the rest");
}
