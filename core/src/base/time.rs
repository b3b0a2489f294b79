//! Clocks and the RFC 3339 timestamp of a snapshot, formatted without
//! allocation.

use rustix::time::{clock_gettime, ClockId};

pub fn realtime_ns() -> u64 {
    let t = clock_gettime(ClockId::Realtime);
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}

pub fn monotonic_ns() -> u64 {
    let t = clock_gettime(ClockId::Monotonic);
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}

/// Boot time as wall-clock ns, for when /proc/stat's btime is not read.
pub fn boot_ts_ns() -> u64 {
    let since_boot = clock_gettime(ClockId::Boottime);
    let since = since_boot.tv_sec as u64 * 1_000_000_000 + since_boot.tv_nsec as u64;
    // Falco's field has whole-second resolution (btime).
    (realtime_ns().saturating_sub(since)) / 1_000_000_000 * 1_000_000_000
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// `2024-01-23T21:04:07.488647460Z` into `buf`.
pub fn rfc3339_nanos(ns: u64, buf: &mut [u8; 40]) -> &str {
    use core::fmt::Write;
    struct W<'a>(&'a mut [u8], usize);
    impl Write for W<'_> {
        fn write_str(&mut self, s: &str) -> core::fmt::Result {
            let end = self.1 + s.len();
            self.0
                .get_mut(self.1..end)
                .ok_or(core::fmt::Error)?
                .copy_from_slice(s.as_bytes());
            self.1 = end;
            Ok(())
        }
    }
    let secs = (ns / 1_000_000_000) as i64;
    let (y, mo, d) = civil_from_days(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400);
    let mut w = W(&mut buf[..], 0);
    let _ = write!(
        w,
        "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}.{:09}Z",
        sod / 3600,
        sod / 60 % 60,
        sod % 60,
        ns % 1_000_000_000
    );
    let n = w.1;
    core::str::from_utf8(&buf[..n]).unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_seed_timestamp() {
        let mut b = [0u8; 40];
        assert_eq!(
            rfc3339_nanos(1_706_043_847_488_647_460, &mut b),
            "2024-01-23T21:04:07.488647460Z"
        );
        assert_eq!(rfc3339_nanos(0, &mut b), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(
            rfc3339_nanos(951_782_400_000_000_001, &mut b),
            "2000-02-29T00:00:00.000000001Z"
        );
    }
}
