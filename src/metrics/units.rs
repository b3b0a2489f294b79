//! What an "event" is in each schema. Falco 0.37 (libs 0.14 modern_bpf)
//! sent an enter and an exit event for every syscall, so its `scap.n_evts`,
//! `falco.num_evts` and their rates count both (libpman stats.c
//! pman_get_scap_stats counts every event the probe tried to send;
//! sinsp::next counts every event read). Libs 0.22+ (Falco 0.42+) sends
//! exits only, as Kestrel does unless `--enter-events` is on.
//!
//! The rule for the falco-0.37 schema, records captured without enters:
//! every syscall record stands for two events, the enter 0.37's driver sent
//! before it and the exit, and the enter shares its exit's fate (delivered
//! with it, or dropped with it: a full ring drops both). Two records have
//! no enter in 0.37: a thread's exit (PPME_PROCEXIT_1_E alone) and the
//! child's return from a fork (the child never entered the call). The drop
//! buckets follow: each category's enter bucket gets the drops of its exit
//! bucket that had an enter (for clone_fork, less the dropped child sides).
//! With `--enter-events` the records are already 0.37's events. Kestrel's
//! record counts stay under `kestrel.n_evts`, `kestrel.num_evts` and
//! `kestrel.n_drops`.

use super::schema::has_enter_side;
use super::{Inputs, Schema};
use crate::capture::skel::types::kestrel_category as Cat;
use crate::capture::KernelCounters;

/// `inp` in the schema's event unit.
pub(super) fn in_schema_unit<'a>(schema: Schema, inp: &Inputs<'a>) -> Inputs<'a> {
    if !converts(schema, inp.enter_events) {
        return Inputs { ..*inp };
    }
    Inputs {
        num_evts: twice(inp.num_evts, inp.num_evts_no_enter),
        kernel: falco037_kernel(&inp.kernel),
        ..*inp
    }
}

/// Whether records are not the schema's events: falco-0.37 without enters.
pub fn converts(schema: Schema, enter_events: bool) -> bool {
    schema == Schema::Falco037 && !enter_events
}

/// The kernel counters in the schema's event unit (the drop alerts').
pub fn kernel_in_schema_unit(
    schema: Schema,
    enter_events: bool,
    k: &KernelCounters,
) -> KernelCounters {
    if converts(schema, enter_events) {
        falco037_kernel(k)
    } else {
        *k
    }
}

/// `n` records of which `single` have no enter: 2n − single events.
fn twice(n: u64, single: u64) -> u64 {
    n.saturating_mul(2).saturating_sub(single.min(n))
}

fn falco037_kernel(k: &KernelCounters) -> KernelCounters {
    let clone_fork = Cat::KC_CLONE_FORK.0 as usize;
    let proc_exit = Cat::KC_PROC_EXIT.0 as usize;
    // The no-enter drops are fixed-size records: all are ring-full drops,
    // in the proc_exit bucket or (child sides) the clone_fork one.
    let child_drops = k
        .n_drops_no_enter
        .saturating_sub(k.n_drops_buffer[proc_exit][1]);
    let mut out = *k;
    out.n_evts = twice(k.n_evts, k.n_evts_no_enter);
    out.n_drops_buffer_total = twice(k.n_drops_buffer_total, k.n_drops_no_enter);
    out.n_drops_scratch_map = twice(k.n_drops_scratch_map, 0);
    out.n_drops_bug = twice(k.n_drops_bug, 0);
    for (cat, dirs) in out.n_drops_buffer.iter_mut().enumerate() {
        if !has_enter_side(cat) {
            continue;
        }
        let single = if cat == clone_fork { child_drops } else { 0 };
        dirs[0] = dirs[0].saturating_add(dirs[1].saturating_sub(single));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records() -> KernelCounters {
        let mut k = KernelCounters {
            n_evts: 1000,
            n_drops_buffer_total: 100,
            n_drops_scratch_map: 3,
            n_evts_no_enter: 40,
            n_drops_no_enter: 15,
            ..Default::default()
        };
        let open = Cat::KC_OPEN.0 as usize;
        k.n_drops_buffer[open][1] = 70;
        k.n_drops_buffer[Cat::KC_CLONE_FORK.0 as usize][1] = 20; // 5 of them child sides
        k.n_drops_buffer[Cat::KC_PROC_EXIT.0 as usize][1] = 10;
        k
    }

    #[test]
    fn a_syscall_record_is_two_events_and_exits_and_fork_children_one() {
        let k = falco037_kernel(&records());
        assert_eq!(k.n_evts, 2 * 1000 - 40);
        assert_eq!(k.n_drops_buffer_total, 2 * 100 - 15);
        assert_eq!(k.n_drops_scratch_map, 6);
        assert_eq!(k.n_drops(), 2 * 103 - 15);
        assert_eq!(k.n_drops_buffer[Cat::KC_OPEN.0 as usize], [70, 70]);
        assert_eq!(k.n_drops_buffer[Cat::KC_CLONE_FORK.0 as usize], [15, 20]);
        assert_eq!(k.n_drops_buffer[Cat::KC_PROC_EXIT.0 as usize], [0, 10]);
        let buckets: u64 = k.n_drops_buffer.iter().flatten().sum();
        assert_eq!(buckets, k.n_drops_buffer_total, "buckets still add up");
    }

    #[test]
    fn delivered_plus_dropped_is_tried_in_both_units() {
        // Final snapshot, nothing in flight: of the 40 exits and fork
        // children tried, 15 dropped and 25 delivered.
        let k = records();
        let (num, num_single) = (k.n_evts - k.n_drops(), 40 - 15);
        assert_eq!(num + k.n_drops(), k.n_evts);
        let k37 = falco037_kernel(&k);
        assert_eq!(twice(num, num_single) + k37.n_drops(), k37.n_evts);
    }
}
