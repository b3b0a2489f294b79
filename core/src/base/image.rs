//! The binary's own pages after start. Loading the probe, parsing the
//! configuration and compiling the rules touch code and read-only data that
//! never run again (libbpf's ELF loader, the YAML and TOML parsers, the
//! embedded BPF object: about half the image). They stay resident until the
//! kernel needs the memory, and count in the agent's RSS all along. Dropping
//! them once, when the loop is about to start, leaves resident only what the
//! loop touches; a later use faults a page back in from the page cache,
//! unchanged (a minor fault, microseconds, and only for cold code).
//!
//! Only mappings of the executable that are private, not writable and hold
//! no anonymous (copied-on-write) pages qualify: their contents are the
//! file's, so dropping them loses nothing. A relocated RELRO page of a
//! dynamic build is anonymous and is kept.

use std::path::Path;

/// One mapping of /proc/self/smaps: address range, whether it qualifies.
struct Mapping {
    start: usize,
    end: usize,
    file_backed_ro: bool,
    anonymous_kb: u64,
}

/// Parses smaps text into the executable's read-only private mappings.
fn image_mappings(smaps: &str, exe: &str) -> Vec<Mapping> {
    let mut out: Vec<Mapping> = Vec::new();
    for line in smaps.lines() {
        let mut words = line.split_ascii_whitespace();
        let Some(first) = words.next() else { continue };
        if let Some((a, b)) = first.split_once('-') {
            let (Ok(start), Ok(end)) = (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16))
            else {
                continue;
            };
            let perms = words.next().unwrap_or("");
            let path = words.nth(3).unwrap_or("");
            out.push(Mapping {
                start,
                end,
                file_backed_ro: path == exe
                    && perms.starts_with('r')
                    && perms.ends_with('p')
                    && !perms.contains('w'),
                anonymous_kb: 0,
            });
        } else if first == "Anonymous:" {
            if let (Some(m), Some(kb)) = (out.last_mut(), words.next()) {
                m.anonymous_kb = kb.parse().unwrap_or(u64::MAX);
            }
        }
    }
    out.retain(|m| m.file_backed_ro && m.anonymous_kb == 0 && m.end > m.start);
    out
}

/// No transparent huge pages for this process. The tables stay non-resident
/// until used, but on a kernel with THP "always" (Debian's) one touched page
/// of a 2 MB-aligned span of them became 2 MB resident (32-bit ARM at rest:
/// 4.3 MB instead of 2.4, in some runs). Before 3.15 the call fails and
/// nothing changes.
pub fn no_huge_pages() {
    // SAFETY: prctl with integer arguments only; it changes no memory.
    unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
}

/// Drops the executable's clean read-only pages from this process (see the
/// module doc). Returns the bytes released from the mapping, 0 when
/// /proc is unreadable (nothing is released then).
pub fn release_startup_pages() -> usize {
    let Ok(exe) = std::fs::read_link("/proc/self/exe") else {
        return 0;
    };
    let Ok(smaps) = std::fs::read_to_string(Path::new("/proc/self/smaps")) else {
        return 0;
    };
    let Some(exe) = exe.to_str() else { return 0 };
    let mut released = 0;
    for m in image_mappings(&smaps, exe) {
        // SAFETY: a private, read-only, file-backed mapping of our own
        // executable with no anonymous pages: MADV_DONTNEED only unmaps
        // its pages, and a later access reads the same bytes back from
        // the file. Nothing in it was ever written.
        let r = unsafe {
            rustix::mm::madvise(
                m.start as *mut core::ffi::c_void,
                m.end - m.start,
                rustix::mm::Advice::LinuxDontNeed,
            )
        };
        if r.is_ok() {
            released += m.end - m.start;
        }
    }
    released
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMAPS: &str = "\
00400000-00401000 r--p 00000000 fd:01 42 /opt/kestrel
Rss:                   4 kB
Anonymous:             0 kB
00401000-005b5000 r-xp 00001000 fd:01 42 /opt/kestrel
Anonymous:             0 kB
0069f000-006a0000 r--p 0029e000 fd:01 42 /opt/kestrel
Anonymous:             4 kB
006a0000-006a4000 rw-p 0029f000 fd:01 42 /opt/kestrel
Anonymous:            16 kB
7f0000000000-7f0000001000 r--p 00000000 fd:01 7 /usr/lib/libc.so
Anonymous:             0 kB
7f0000002000-7f0000003000 r--s 00000000 00:0e 9 anon_inode:bpf-map
Anonymous:             0 kB
";

    #[test]
    fn only_the_executables_clean_read_only_mappings_qualify() {
        let m = image_mappings(SMAPS, "/opt/kestrel");
        let ranges: Vec<_> = m.iter().map(|m| (m.start, m.end)).collect();
        // The relocated RELRO page (anonymous), the writable data, another
        // file and the shared BPF map stay.
        assert_eq!(ranges, [(0x400000, 0x401000), (0x401000, 0x5b5000)]);
    }

    #[test]
    fn released_pages_come_back_unchanged() {
        static PROBE: [u8; 3] = *b"abc";
        let before = std::hint::black_box(&PROBE)[1];
        let _ = release_startup_pages();
        assert_eq!(std::hint::black_box(&PROBE)[1], before);
        assert_eq!(std::hint::black_box(&PROBE), b"abc");
    }
}
