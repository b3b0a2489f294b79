//! Seeds the thread table from /proc at start, so lookups for processes older
//! than the agent succeed. Runs once, before the first record; kernel threads
//! are skipped, as the probe skips them.

use std::fs;

use super::{bounded, State, Thread};
use crate::metrics::resources::{parse_u64, stat_fields_after_comm};

const PF_KTHREAD: u64 = 0x0020_0000;

/// Parsed fields of /proc/PID/task/TID/stat that the table keeps.
#[derive(Debug, PartialEq, Eq)]
pub struct TaskStat {
    pub comm: [u8; 16],
    pub ppid: u32,
    pub flags: u64,
    pub start_ticks: u64,
}

/// Parses a stat line: comm from between the first '(' and the last ')',
/// the rest through the shared /proc stat field reader.
pub fn parse_task_stat(line: &[u8]) -> Option<TaskStat> {
    let open = line.iter().position(|&b| b == b'(')?;
    let close = line.iter().rposition(|&b| b == b')')?;
    if close < open {
        return None;
    }
    let mut comm = [0u8; 16];
    for (d, s) in comm.iter_mut().zip(line[open + 1..close].iter().take(15)) {
        *d = *s;
    }
    // After comm: state(0) ppid(1) ... flags(6) ... starttime(19)
    let mut f = stat_fields_after_comm(line)?;
    let ppid = parse_u64(f.nth(1)?)?;
    let flags = parse_u64(f.nth(4)?)?;
    let start_ticks = parse_u64(f.nth(12)?)?;
    Some(TaskStat {
        comm,
        ppid: u32::try_from(ppid).ok()?,
        flags,
        start_ticks,
    })
}

fn uid_gid(status: &str) -> (u32, u32) {
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_ascii_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("Uid:"), field("Gid:"))
}

/// Adds every user thread under `proc_root`; returns how many were seeded.
pub fn seed(state: &mut State, proc_root: &str) -> usize {
    let Ok(dir) = fs::read_dir(proc_root) else {
        return 0;
    };
    let ticks = rustix::param::clock_ticks_per_second().max(1);
    let mut n = 0;
    for ent in dir.flatten() {
        let name = ent.file_name();
        let Some(pid) = name.to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let base = format!("{proc_root}/{pid}");
        let exe = fs::read_link(format!("{base}/exe")).unwrap_or_default();
        let exe = exe.as_os_str().as_encoded_bytes();
        let Ok(tasks) = fs::read_dir(format!("{base}/task")) else {
            continue;
        };
        for t in tasks.flatten() {
            let Some(tid) = t.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            let Ok(stat) = fs::read(format!("{base}/task/{tid}/stat")) else {
                continue;
            };
            let Some(st) = parse_task_stat(&stat) else {
                continue;
            };
            if st.flags & PF_KTHREAD != 0 {
                continue;
            }
            let status =
                fs::read_to_string(format!("{base}/task/{tid}/status")).unwrap_or_default();
            let (uid, gid) = uid_gid(&status);
            state.seed_thread(Thread {
                tid,
                pid,
                ppid: st.ppid,
                uid,
                gid,
                start_ns: st.start_ticks * 1_000_000_000 / ticks,
                comm: st.comm,
                exe: bounded(exe),
                ..Thread::default()
            });
            n += 1;
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_hostile_comm() {
        let line = b"42 (a) (b c) S 7 42 42 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 12345 1000 10";
        let st = parse_task_stat(line).unwrap();
        assert_eq!(&st.comm[..7], b"a) (b c");
        assert_eq!(st.ppid, 7);
        assert_eq!(st.flags, 4194560);
        assert_eq!(st.start_ticks, 12345);
        assert!(parse_task_stat(b"42 (x S 1").is_none());
        assert!(parse_task_stat(b"").is_none());
    }

    #[test]
    fn seeds_this_process_and_skips_kthreads() {
        let mut s = State::new(65536, 16, 0, false);
        let n = seed(&mut s, "/proc");
        assert!(n > 0);
        assert_eq!(s.n_threads(), n);
        let me = s.thread(std::process::id()).expect("own process seeded");
        assert_eq!(me.pid, std::process::id());
        assert!(!me.exe.is_empty());
        assert!(s.thread(2).is_none(), "kthreadd must be skipped");
        assert_eq!(s.counters.n_added_threads, 0, "seeding is not an add");
    }
}
