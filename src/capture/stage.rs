//! User space's side of the probe's per-CPU stages (bpf/stage.h): small
//! records wait there until a CPU sends them to the ring as one. Detaching
//! the producers first and the programs that only send stages last lets
//! every staged record reach the ring before the final drain; what a CPU
//! still holds after STAGE_WAIT is counted as dropped, in its own category.

use std::mem::offset_of;
use std::time::{Duration, Instant};

use libbpf_rs::{MapCore, MapFlags};

use super::abi::{KC_MAX, KD_MAX};
use super::progs::Prog;
use super::skel::types::stage;

/// How long detach waits for the CPUs' stages to empty: each is sent within
/// a jiffy or two (10 ms at HZ=100) by the tick or a task switch.
const STAGE_WAIT: Duration = Duration::from_millis(250);

/// Programs that only send staged records: detached after the others.
pub fn is_flusher(p: Prog) -> bool {
    matches!(p, Prog::SchedSwitch | Prog::HrtimerExpire)
}

/// Records still staged, by category and direction, summed over CPUs;
/// None when the map cannot be read.
pub fn staged(map: &dyn MapCore) -> Option<[[u64; KD_MAX]; KC_MAX]> {
    let values = map
        .lookup_percpu(&0u32.to_ne_bytes(), MapFlags::ANY)
        .ok()??;
    let mut out = [[0u64; KD_MAX]; KC_MAX];
    let n_at = offset_of!(stage, n);
    for v in &values {
        for (slot, count) in v
            .get(n_at..)?
            .chunks_exact(2)
            .take(KC_MAX * KD_MAX)
            .enumerate()
        {
            out[slot / KD_MAX][slot % KD_MAX] +=
                u64::from(u16::from_ne_bytes([count[0], count[1]]));
        }
    }
    Some(out)
}

/// How many CPUs have learned where a task's saved registers sit
/// (`regs_from_stack`, bpf/maps.h): the task cast is in use there.
pub fn cpus_learned(map: &dyn MapCore) -> usize {
    let at = offset_of!(stage, regs_from_stack);
    let values = map.lookup_percpu(&0u32.to_ne_bytes(), MapFlags::ANY);
    values.ok().flatten().map_or(0, |v| {
        v.iter()
            .filter_map(|cpu| cpu.get(at..at + 8))
            .filter(|b| b.iter().any(|&x| x != 0))
            .count()
    })
}

/// Waits until no CPU stages a record (the producers detached); returns
/// what is left after STAGE_WAIT, to be counted as dropped.
pub fn wait_sent(map: &dyn MapCore) -> [[u64; KD_MAX]; KC_MAX] {
    let start = Instant::now();
    loop {
        let left = staged(map).unwrap_or_default();
        if left.iter().flatten().all(|&n| n == 0) || start.elapsed() >= STAGE_WAIT {
            return left;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}
