//! Probe-side parts of the "never lose the loop" work, with the real probe:
//! the agent's own /proc seeding is not traced (ignore_process), and the
//! ring-fill check period shrinks with the ring.

use std::mem::MaybeUninit;
use std::time::Duration;

use kestrel::capture::record::decode;
use kestrel::capture::{wake_check_mask, Probe, ProbeConfig};

mod common;
use common::{open_close_n, probe_lock, tmp};

#[test]
fn fill_check_period_follows_the_ring_size() {
    assert_eq!(wake_check_mask(4096), 0, "a 4 KiB ring checks every record");
    assert_eq!(wake_check_mask(1 << 20), 63);
    assert_eq!(wake_check_mask(1 << 30), 63);
    for r in (12..=30).map(|s| 1u32 << s) {
        let m = wake_check_mask(r);
        assert!((m + 1).is_power_of_two() && m < 64, "{r}: {m}");
    }
}

/// Opens by this process while it is ignored leave no record; after it is
/// resumed they do again.
#[test]
#[cfg_attr(not(kestrel_ci), ignore = "needs root: loads the probe")]
fn an_ignored_process_is_not_traced_until_resumed() {
    let _g = probe_lock();
    let me = std::process::id();
    // Before the probe: a first scratch path sets up (and tidies) the scratch
    // directory, syscalls that would be counted as the ignored process's.
    let path = tmp("ignored");
    let mut storage = MaybeUninit::uninit();
    let mut probe = Probe::load(&mut storage, &ProbeConfig::default()).unwrap();
    let mine = std::cell::Cell::new(0u64);
    let mut b = libbpf_rs::RingBufferBuilder::new();
    b.add(probe.events_map(), |d: &[u8]| {
        if decode(d).is_ok_and(|r| r.hdr().pid == me) {
            mine.set(mine.get() + 1);
        }
        0
    })
    .unwrap();
    let ring = b.build().unwrap();
    probe.ignore_process(Some(me));
    open_close_n(&path, 500);
    let _ = ring.poll(Duration::from_millis(50));
    ring.consume().unwrap();
    let while_ignored = mine.get();
    probe.ignore_process(None);
    open_close_n(&path, 500);
    probe.detach();
    ring.consume().unwrap();
    let after = mine.get() - while_ignored;
    assert_eq!(while_ignored, 0, "no record of the ignored process");
    assert!(after >= 1000, "traced again after resume: {after}");
}
