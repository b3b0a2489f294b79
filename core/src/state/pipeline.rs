//! The per-event path: decode one ring-buffer record and apply it to the
//! state tables (and, when the culprit counters are on, to the per-process
//! activity table) and to the rules. Called from the ring buffer callback; never allocates,
//! formats or reads /proc except through the state's bounded lookup fallback.

use super::activity::Activity;
use super::State;
use crate::capture::record::{decode, Record};
use crate::capture::skel::types::kestrel_flags as KF;
use crate::rules::engine::Engine;

/// Decode + state update: the whole per-event path.
pub struct Pipeline {
    pub state: State,
    pub num_evts: u64,
    /// Records of 32-bit tasks' syscalls, decoded with their ABI's table.
    pub num_compat_evts: u64,
    /// Records with no enter event in Falco 0.37 (process exits, the child
    /// side of forks): metrics::units turns records into 0.37's events.
    pub num_evts_no_enter: u64,
    /// Traced events per process this interval (culprit counters).
    pub activity: Option<Activity>,
    /// The rules, run on every record after it was applied.
    pub rules: Option<Engine>,
}

impl Pipeline {
    /// `activity`: the culprit counters' per-process table, when they are on.
    pub fn new(state: State, activity: Option<Activity>) -> Pipeline {
        Pipeline {
            state,
            num_evts: 0,
            num_compat_evts: 0,
            num_evts_no_enter: 0,
            activity,
            rules: None,
        }
    }

    /// Enter records are captured (`--enter-events`).
    pub fn enter_events(&self) -> bool {
        self.state.pairing
    }

    /// Not `#[inline]`: then it is compiled here, at this crate's opt-level 3,
    /// not in the ring callback's crate, which is built for size.
    pub fn on_record(&mut self, data: &[u8]) {
        self.num_evts += 1;
        match decode(data) {
            Ok(rec) => {
                self.num_compat_evts += u64::from(rec.has_flag(KF::KF_COMPAT));
                self.num_evts_no_enter += u64::from(matches!(
                    rec,
                    Record::ProcExit { .. }
                        | Record::Clone {
                            child_side: true,
                            ..
                        }
                ));
                self.state.apply(&rec);
                if let Some(e) = &mut self.rules {
                    e.on_record(&rec, &self.state, self.num_evts);
                }
                if let Some(a) = &mut self.activity {
                    let state = &self.state;
                    let pid = rec.hdr().pid;
                    a.count(pid, || state.thread(pid).map_or([0; 16], |t| t.comm));
                }
            }
            Err(_) => self.state.count_decode_error(),
        }
    }
}
