//! Probe-side parts of the "never lose the loop" work: the ring-fill check
//! period shrinks with the ring.

use kestrel::capture::wake_check_mask;

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
