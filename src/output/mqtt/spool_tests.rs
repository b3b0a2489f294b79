use super::*;

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("kestrel-spool-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&d);
    d
}

fn drain(s: &mut Spool) -> Vec<(u8, Vec<u8>, Pos)> {
    let mut out = Vec::new();
    let mut buf = Vec::new();
    while let Some(r) = s.next(&mut buf) {
        if let Ok((k, p)) = r {
            out.push((k, buf.clone(), p));
        }
    }
    out
}

#[test]
fn crc32_matches_the_standard_check_value() {
    assert_eq!(crc32(&[b"1234", b"56789"]), 0xcbf4_3926);
}

#[test]
fn replays_in_order_across_segments_and_restarts() {
    let d = tmp("order");
    let (mut s, log) = Spool::open(&d, 64 * 1024).unwrap();
    assert!(log.is_empty());
    for i in 0..100u32 {
        let (dropped, err) = s.append(
            (i % 2) as u8,
            format!("msg {i:04} {}", "x".repeat(200)).as_bytes(),
        );
        assert_eq!((dropped, err), (0, None));
    }
    drop(s);
    let (mut s, _) = Spool::open(&d, 64 * 1024).unwrap();
    assert_eq!(s.pending(), 100);
    let got = drain(&mut s);
    assert_eq!(got.len(), 100);
    for (i, (k, m, _)) in got.iter().enumerate() {
        assert_eq!(*k, (i % 2) as u8);
        assert!(m.starts_with(format!("msg {i:04} ").as_bytes()));
    }
    assert!(s.drained());
    // Acked halfway: the first segments go, a rewind resumes after them.
    s.ack_to(got[50].2);
    s.rewind();
    let again = drain(&mut s);
    assert_eq!(again.len(), 50);
    s.ack_to(s.cursor);
    assert_eq!(
        fs::read_dir(&d).unwrap().count(),
        0,
        "delivered spool removed"
    );
    fs::remove_dir_all(&d).unwrap();
}

#[test]
fn full_spool_drops_the_oldest_and_counts_exactly() {
    let d = tmp("full");
    let (mut s, _) = Spool::open(&d, 32 * 1024).unwrap();
    let mut dropped = 0;
    for i in 0..1000u32 {
        dropped += s
            .append(0, format!("{i:06}{}", "y".repeat(100)).as_bytes())
            .0;
    }
    let got = drain(&mut s);
    assert_eq!(got.len() as u64 + dropped, 1000);
    assert!(dropped > 0);
    let first: u32 = std::str::from_utf8(&got[0].1[..6])
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(u64::from(first), dropped, "the oldest went first");
    let last: u32 = std::str::from_utf8(&got.last().unwrap().1[..6])
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(last, 999);
    assert!(s.total <= 32 * 1024);
    fs::remove_dir_all(&d).unwrap();
}

#[test]
fn torn_record_is_detected_and_never_delivered() {
    let d = tmp("torn");
    let (mut s, _) = Spool::open(&d, 1 << 20).unwrap();
    for i in 0..5u32 {
        s.append(0, format!("record {i}").as_bytes());
    }
    drop(s);
    // A crash inside a write: the last record loses its tail.
    let p = seg_path(&d, 1);
    let len = fs::metadata(&p).unwrap().len();
    let f = OpenOptions::new().write(true).open(&p).unwrap();
    f.set_len(len - 3).unwrap();
    drop(f);
    let (mut s, log) = Spool::open(&d, 1 << 20).unwrap();
    assert_eq!(log.len(), 1, "{log:?}");
    s.append(0, b"after restart");
    let got: Vec<_> = drain(&mut s).into_iter().map(|g| g.1).collect();
    assert_eq!(got.len(), 5);
    assert_eq!(got[3], b"record 3");
    assert_eq!(got[4], b"after restart");
    // A flipped bit in the middle: its CRC fails, the rest of the segment goes.
    drop(s);
    let mut data = fs::read(&p).unwrap();
    data[HDR + 3] ^= 0x40;
    fs::write(&p, &data).unwrap();
    let (mut s, log) = Spool::open(&d, 1 << 20).unwrap();
    assert_eq!(log.len(), 1);
    assert!(drain(&mut s).is_empty());
    fs::remove_dir_all(&d).unwrap();
}
