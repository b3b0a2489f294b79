//! Bounded fuzzing in the ordinary suite: a fixed seed, a fixed number of
//! random inputs (a few seconds), no panic allowed. Targets: record decoding
//! plus the state update behind it (mutated real records and raw bytes), the
//! config file parser with the flag validation behind it, and the output
//! spec / duration parsers. An error is fine; a panic fails the test, and a
//! rejection must be one line.

use kestrel::capture::record::synth;
use kestrel::capture::skel::types::{kestrel_hdr, kestrel_record_type as T};
use kestrel::state::pipeline::Pipeline;
use kestrel::state::State;
use kestrel::testing::Rng;

fn seeds() -> Vec<Vec<u8>> {
    let chdir = kestrel::capture::syscalls::by_name("chdir")
        .and_then(|s| s.nr)
        .unwrap() as i16;
    let img = synth::Image {
        path: "/bin/x",
        argv: &["x", "-c", "arg"],
        exepath: "/usr/bin/x",
        cwd: "/srv/app",
        flags: 0,
    };
    vec![
        synth::clone(10, 10, 11, false, false),
        synth::clone(11, 11, 0, true, true),
        synth::exec(11, 11, 11, "/usr/bin/x"),
        synth::exec_image(12, 11, 11, &img),
        synth::exec_failed(11, 11, 59, -2),
        synth::syscall(11, 11, chdir, 0, [0; 6], Some("../a/./b"), None),
        synth::syscall(11, 11, 82, 0, [1, 2, 3, 4, 5, 6], Some("/a"), Some("/b")),
        synth::syscall(11, 11, 101, 0, [16, 12, 0, 0, 0, 0], None, None),
        synth::open(11, 11, 3, 0, "/etc/passwd"),
        synth::socket(11, 11, 4),
        synth::sockaddr(T::KR_CONNECT, 11, 11, 4, 0),
        synth::fd(T::KR_DUP, 11, 11, 3, 5, true),
        synth::fd(T::KR_CLOSE, 11, 11, 3, 0, false),
        synth::enter(11, 11, 2),
        synth::exit(11, 11, true),
    ]
}

fn mutate(rng: &mut Rng, base: &[u8]) -> Vec<u8> {
    let mut v = base.to_vec();
    match rng.below(4) {
        0 => {
            for _ in 0..1 + rng.below(8) {
                if !v.is_empty() {
                    let i = rng.below(v.len());
                    v[i] = rng.next() as u8;
                }
            }
        }
        1 => v.truncate(rng.below(v.len() + 1)),
        2 => v.extend((0..rng.below(64)).map(|_| rng.next() as u8)),
        _ => v = (0..rng.below(256)).map(|_| rng.next() as u8).collect(),
    }
    // Often keep the header's length field consistent so decoding goes deep.
    let at = core::mem::offset_of!(kestrel_hdr, len);
    if v.len() >= at + 2 && rng.below(2) == 0 {
        let len = (v.len() as u16).to_ne_bytes();
        v[at..at + 2].copy_from_slice(&len);
    }
    v
}

#[test]
fn records_decode_and_apply_without_panicking() {
    let mut rng = Rng(0x6b65_7374_7265_6c31);
    let seeds = seeds();
    // With the culprit table, so its per-event path is fuzzed too.
    let mut p = Pipeline::new(
        State::new(64, 64, 1, true),
        Some(kestrel::state::activity::Activity::with_capacity(8)),
    );
    for _ in 0..300_000 {
        let base = &seeds[rng.below(seeds.len())];
        let rec = mutate(&mut rng, base);
        p.on_record(&rec);
    }
    assert_eq!(p.num_evts, 300_000);
    assert!(
        p.state.counters.n_decode_errors > 0,
        "mutations reached the error paths"
    );
    let errors = p.state.counters.n_decode_errors;
    assert!(
        errors < 300_000 * 3 / 4,
        "{errors} decode errors: too few mutations reach the state rules"
    );
    assert!(
        p.state.n_threads() <= 64 + kestrel::state::OWN_THREAD_RESERVE,
        "capacity holds"
    );
}

/// Keys that are not flags, beside every flag's key (kestrel::config::KEYS).
const ODD_KEYS: &[&str] = &["config", "colour", "syscall_event_drops", "table"];
/// Every TOML value type, and values each parser must judge.
const VALUES: &[&str] = &[
    "\"15s\"",
    "\"1m30s\"",
    "\"0ms\"",
    "\"99999999999999999h\"",
    "1048576",
    "4096",
    "-1",
    "true",
    "false",
    "[\"stdout\", \"file:/tmp/x\"]",
    "[1, 2]",
    "[]",
    "\"syslog://h:1?hostname=a b\"",
    "\"default,openat\"",
    "1979-05-27",
    "07:32:00",
    "1979-05-27T07:32:00Z",
    "{ a = 1 }",
    "{}",
    "\"\\u0000\"",
    "\"a\\nb\"",
    "3.5",
    "nan",
    "inf",
    "1e400",
    "0x10",
    "18446744073709551616",
    "\"\"",
    "[",
    "\"unterminated",
];

fn random_key(rng: &mut Rng) -> String {
    let keys = kestrel::config::KEYS;
    let i = rng.below(keys.len() + ODD_KEYS.len());
    let k = keys
        .get(i)
        .map_or_else(|| ODD_KEYS[i - keys.len()], |k| k.0);
    // Either spelling.
    if rng.below(2) == 0 {
        k.replace('-', "_")
    } else {
        k.to_string()
    }
}

fn random_config(rng: &mut Rng) -> String {
    let mut s = String::new();
    for _ in 0..rng.below(8) {
        match rng.below(10) {
            0 => s.push_str("# comment\n"),
            1 => s.push_str("[table]\n"),
            2 => {
                let junk: String = (0..rng.below(20))
                    .map(|_| (rng.next() % 128) as u8 as char)
                    .collect();
                s.push_str(&junk);
                s.push('\n');
            }
            _ => {
                let k = random_key(rng);
                let v = VALUES[rng.below(VALUES.len())];
                s.push_str(&format!("{k} = {v}\n"));
            }
        }
    }
    s
}

#[test]
fn configs_parse_and_validate_without_panicking() {
    use kestrel::cli::run_args_with_config;
    let mut rng = Rng(0x636f_6e66_6967_2121);
    let path = kestrel::testing::scratch("fuzz.toml")
        .to_string_lossy()
        .into_owned();
    let (mut ok, mut bad) = (0, 0);
    for i in 0..20_000 {
        let text = random_config(&mut rng);
        let _ = kestrel::config::parse("f.toml", &text);
        // The whole path (file, per-key flag validation) for a share of them.
        if i % 8 == 0 {
            let mut bytes = text.into_bytes();
            // Now and then a byte that is not UTF-8.
            if i % 64 == 0 && !bytes.is_empty() {
                let at = rng.below(bytes.len());
                bytes[at] = 0x80 | rng.next() as u8;
            }
            std::fs::write(&path, &bytes).unwrap();
            match run_args_with_config(&["--config", &path]) {
                Ok(_) => ok += 1,
                Err(e) => {
                    assert!(!e.contains('\n'), "one line: {e:?}");
                    bad += 1;
                }
            }
        }
    }
    let _ = std::fs::remove_file(&path);
    assert!(
        ok > 0 && bad > 0,
        "both outcomes reached: {ok} ok, {bad} rejected"
    );
}

/// Every key with a value of every TOML type: a type the key does not take
/// is refused with its file, line and key, whatever the value would mean
/// to the flag's own parser.
#[test]
fn every_key_with_every_toml_type() {
    use kestrel::config::{Kind, KEYS};
    let samples: &[(&str, &str)] = &[
        ("\"1\"", "string"),
        ("1", "integer"),
        ("1.5", "float"),
        ("nan", "float"),
        ("true", "boolean"),
        ("1979-05-27", "datetime"),
        ("[\"1\"]", "array"),
        ("[1]", "array"),
        ("{}", "table"),
    ];
    for (key, kind) in KEYS {
        for (value, ty) in samples {
            let text = format!("# first\n{key} = {value}\n");
            let takes = match kind {
                Kind::Switch | Kind::Bool => *ty == "boolean",
                Kind::Text => *ty == "string",
                Kind::Whole => *value == "1",
                Kind::Number => ["integer", "float"].contains(ty),
                Kind::TextOrWhole => *ty == "string" || *value == "1",
                Kind::Texts => *ty == "string" || *value == "[\"1\"]",
            };
            match kestrel::config::parse("f.toml", &text) {
                Ok(_) => assert!(takes, "{key} = {value} accepted"),
                Err(e) => {
                    assert!(!takes, "{key} = {value}: {e}");
                    assert!(e.starts_with(&format!("f.toml:2: key '{key}': ")), "{e}");
                    assert!(!e.contains('\n'), "{e}");
                }
            }
        }
    }
}

#[test]
fn output_specs_and_durations_parse_without_panicking() {
    let mut rng = Rng(0x6f75_7470_7574_7321);
    let alphabet = b"syslog://file:stdout[]:?&=0123456789hms.-_ abc\n\x7f";
    for _ in 0..100_000 {
        let s: String = (0..rng.below(40))
            .map(|_| alphabet[rng.below(alphabet.len())] as char)
            .collect();
        if let Err(e) = kestrel::output::OutputSpec::parse(&s) {
            assert!(!e.is_empty());
        }
        let _ = kestrel::cli::parse_duration(&s);
    }
}

/// argv is bytes: random flags and values, a share of them not UTF-8, must
/// come back as a parse or one line, never a panic.
#[test]
fn command_lines_of_any_bytes_parse_without_panicking() {
    use kestrel::cli::{parse_args, Early};
    use std::ffi::OsString;
    use std::os::unix::ffi::OsStringExt;
    let mut rng = Rng(0x6172_6776_2121_2121);
    let words: &[&[u8]] = &[
        b"run",
        b"check",
        b"export-probe",
        b"--interval",
        b"--output",
        b"--pidfile",
        b"--ring-buffer-size",
        b"--syscall-event-drops-max-burst",
        b"--culprit-capacity",
        b"--prometheus",
        b"-v",
        b"--help",
        b"1s",
        b"file:/tmp/x",
        b"\xff",
        b"\xc3",
        b"a\xe2\x82",
        b"18446744073709551616",
    ];
    let (mut bad, mut non_utf8) = (0, 0);
    for _ in 0..20_000 {
        let mut args = vec![OsString::from("kestrel")];
        for _ in 0..rng.below(6) {
            let arg = if rng.below(4) == 0 {
                (0..rng.below(12)).map(|_| rng.next() as u8).collect()
            } else {
                words[rng.below(words.len())].to_vec()
            };
            args.push(OsString::from_vec(arg));
        }
        if let Err(Early::Bad(line)) = parse_args(&args) {
            assert!(
                !line.contains('\n') && !line.is_empty(),
                "one line: {line:?}"
            );
            non_utf8 += usize::from(line.contains("not valid UTF-8"));
            bad += 1;
        }
    }
    assert!(
        bad > 0 && non_utf8 > 0,
        "{bad} rejected, {non_utf8} for bytes"
    );
}
