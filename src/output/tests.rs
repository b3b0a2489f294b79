//! Unit tests of the output layer with real files, pipes and FIFOs.

use std::os::fd::OwnedFd;
use std::path::PathBuf;

use super::*;

fn scratch(name: &str) -> PathBuf {
    let dir = crate::testing::scratch(&format!("out-{name}"));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn open(specs: &[OutputSpec]) -> Result<Outputs, OpenError> {
    Outputs::open(specs, "h", OpenOptions::default())
}

#[test]
fn parses_specs() {
    assert_eq!(OutputSpec::parse("stdout").unwrap(), OutputSpec::Stdout);
    assert_eq!(
        OutputSpec::parse("file:/tmp/x").unwrap(),
        OutputSpec::File("/tmp/x".into())
    );
    assert!(OutputSpec::parse("file:").is_err());
    assert!(OutputSpec::parse("kafka://x").is_err());
}

#[test]
fn file_sink_appends_lines_and_reopens_after_rename() {
    let dir = scratch("rename");
    let p = dir.join("m.json");
    let mut o = open(&[OutputSpec::File(p.clone())]).unwrap();
    o.write(b"{\"a\":1}\n", "");
    std::fs::rename(&p, dir.join("m.json.1")).unwrap();
    o.write(b"{\"a\":2}\n", "");
    o.reopen();
    o.write(b"{\"a\":3}\n", "");
    let old = std::fs::read_to_string(dir.join("m.json.1")).unwrap();
    let new = std::fs::read_to_string(&p).unwrap();
    assert_eq!(old, "{\"a\":1}\n{\"a\":2}\n");
    assert_eq!(new, "{\"a\":3}\n");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
        0o640
    );
    assert_eq!((o.write_errors(), o.queue_drops()), (0, 0));
}

#[test]
fn symlink_at_output_path_is_refused() {
    let dir = scratch("link");
    let link = dir.join("m.json");
    std::os::unix::fs::symlink(dir.join("target"), &link).unwrap();
    let e = open(&[OutputSpec::File(link)]).err().unwrap();
    assert!(e.bad_input && e.msg.contains("symlink"), "{}", e.msg);
    assert!(!dir.join("target").exists());
}

#[test]
fn fifo_and_device_are_refused_unless_allowed_and_nothing_is_left_behind() {
    let dir = scratch("fifo");
    let fifo = dir.join("f");
    rustix::fs::mkfifoat(rustix::fs::CWD, &fifo, rustix::fs::Mode::from(0o600)).unwrap();
    let first = dir.join("first.json");
    // The first output is created, then the second is refused: the first goes.
    let e = open(&[
        OutputSpec::File(first.clone()),
        OutputSpec::File(fifo.clone()),
    ])
    .err()
    .unwrap();
    assert!(e.bad_input && e.msg.contains("a FIFO"), "{}", e.msg);
    assert!(!first.exists(), "a failed start leaves no new file");
    let e = open(&[OutputSpec::File("/dev/null".into())]).err().unwrap();
    assert!(e.msg.contains("character device"), "{}", e.msg);
    // Allowed, a FIFO without a reader fails at once instead of hanging.
    let allow = OpenOptions {
        allow_special: true,
    };
    let e = Outputs::open(&[OutputSpec::File(fifo)], "h", allow)
        .err()
        .unwrap();
    assert!(e.msg.contains("no reader"), "{}", e.msg);
}

/// A FIFO whose reader never reads: the loop-facing calls return at once,
/// whole lines queue, the overflow is dropped whole and counted.
#[test]
fn stalled_fifo_never_blocks_and_drops_whole_lines() {
    let dir = scratch("stall");
    let fifo = dir.join("f");
    rustix::fs::mkfifoat(rustix::fs::CWD, &fifo, rustix::fs::Mode::from(0o600)).unwrap();
    let reader: OwnedFd = rustix::fs::open(
        &fifo,
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::NONBLOCK,
        rustix::fs::Mode::empty(),
    )
    .unwrap();
    let allow = OpenOptions {
        allow_special: true,
    };
    let mut o = Outputs::open(&[OutputSpec::File(fifo)], "h", allow).unwrap();
    let mut line = vec![b'{'; 3000];
    *line.last_mut().unwrap() = b'\n';
    for _ in 0..200 {
        o.write(&line, "");
    }
    let out = &o.outputs()[0];
    // A 64 KiB pipe plus 16 queued lines hold ~40 of 200; the rest is dropped.
    assert!(out.queue_drops > 100, "drops {}", out.queue_drops);
    assert_eq!(
        out.written + out.queue_drops + o.list[0].queue.len() as u64,
        200
    );
    // Everything in the pipe is whole lines (3000 < PIPE_BUF: atomic).
    let mut buf = vec![0u8; 1 << 20];
    let n = rustix::io::read(&reader, &mut buf).unwrap();
    assert_eq!(n % 3000, 0);
    assert_eq!(n as u64 / 3000, out.written);
    // finish() gives up within its budget and counts what is left.
    let t = std::time::Instant::now();
    o.finish(200_000_000);
    assert!(t.elapsed() < std::time::Duration::from_secs(2));
    assert!(o.list[0].queue.is_empty());
    drop(reader);
}

/// A pipe whose reader is gone: EPIPE is counted per line, no panic.
#[test]
fn broken_pipe_counts_lost_lines() {
    let (r, w) = crate::log::test_pipe();
    drop(r);
    struct P(OwnedFd);
    impl Sink for P {
        fn name(&self) -> &str {
            "pipe"
        }
        fn write(&mut self, data: &[u8], _done: usize) -> Wrote {
            match rustix::io::write(&self.0, data) {
                Ok(_) => Wrote::All,
                Err(_) => Wrote::Lost("broken pipe"),
            }
        }
    }
    let mut o = Outputs::empty();
    o.add(Box::new(P(w)));
    o.write(b"{}\n", "");
    o.write(b"{}\n", "");
    assert_eq!((o.write_errors(), o.queue_drops()), (2, 0));
}
