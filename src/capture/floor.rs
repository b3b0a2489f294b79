//! The benchmark floor: a no-op program on sys_exit, loaded beside the probe
//! so one run measures both on the same syscalls. Never used by the agent.

use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd};

use libbpf_rs::skel::{OpenSkel, Skel, SkelBuilder};
use libbpf_rs::{Link, OpenObject};

use super::ProgStats;

use kestrel_core::capture::floor_skel as skel;

pub struct Floor<'obj> {
    skel: skel::FloorSkel<'obj>,
    _links: Vec<Link>,
}

/// The raw_tp first-step alternatives, then the helpers a traced tp_btf
/// call makes (`Floor::attach_steps`), by program. (x86_64 only:
/// floor_raw_nr, floor_raw_full, floor_task, floor_ids, floor_user64.)
pub const STEPS: [&str; 9] = [
    "floor_raw_noop",
    "floor_tp_noop",
    "floor_tp_id",
    "floor_raw_nr",
    "floor_raw_step",
    "floor_raw_full",
    "floor_task",
    "floor_ids",
    "floor_user64",
];

impl<'obj> Floor<'obj> {
    pub fn attach(storage: &'obj mut MaybeUninit<OpenObject>) -> Result<Floor<'obj>, String> {
        Self::attach_some(
            storage,
            &["floor_sys_exit", "floor_compat", "floor_raw_step"],
        )
    }

    /// The no-op and every first-step alternative in `STEPS`.
    pub fn attach_steps(storage: &'obj mut MaybeUninit<OpenObject>) -> Result<Floor<'obj>, String> {
        let mut names = vec!["floor_sys_exit"];
        names.extend(STEPS);
        Self::attach_some(storage, &names)
    }

    /// Only the programs named (wall-clock comparisons of attach paths).
    pub fn attach_some(
        storage: &'obj mut MaybeUninit<OpenObject>,
        names: &[&str],
    ) -> Result<Floor<'obj>, String> {
        let open = skel::FloorSkelBuilder::default()
            .open(storage)
            .map_err(|e| format!("floor: {e}"))?;
        let mut skel = open.load().map_err(|e| format!("floor: {e}"))?;
        let mut links = Vec::new();
        for p in skel.object_mut().progs_mut() {
            if names.iter().any(|n| p.name().to_str() == Some(n)) {
                links.push(p.attach().map_err(|e| format!("floor: {e}"))?);
            }
        }
        Ok(Floor {
            skel,
            _links: links,
        })
    }

    /// Run-time stats of the no-op (counted only while BPF stats are on).
    pub fn stats(&self) -> ProgStats {
        Self::prog_stats(&self.skel.progs.floor_sys_exit, "floor_sys_exit")
    }

    /// Run-time stats of the no-op plus the probe's first step on every
    /// syscall (number and ABI), tp_btf and raw_tp.
    pub fn step_stats(&self) -> [ProgStats; 2] {
        [
            Self::prog_stats(&self.skel.progs.floor_compat, "floor_compat"),
            Self::prog_stats(&self.skel.progs.floor_raw_step, "floor_raw_step"),
        ]
    }

    /// Run-time stats of each program in `STEPS`, in that order.
    pub fn steps(&self) -> Vec<ProgStats> {
        STEPS
            .iter()
            .map(|n| {
                let p = self
                    .skel
                    .object()
                    .progs()
                    .find(|p| p.name().to_str() == Some(n));
                p.map_or(
                    ProgStats {
                        name: "",
                        run_cnt: 0,
                        run_time_ns: 0,
                    },
                    |p| Self::stats_of(p.as_fd(), n),
                )
            })
            .collect()
    }

    fn prog_stats(prog: &libbpf_rs::ProgramMut<'_>, name: &'static str) -> ProgStats {
        Self::stats_of(prog.as_fd(), name)
    }

    fn stats_of(fd: std::os::fd::BorrowedFd<'_>, name: &'static str) -> ProgStats {
        let mut info = libbpf_rs::libbpf_sys::bpf_prog_info::default();
        let mut len = std::mem::size_of::<libbpf_rs::libbpf_sys::bpf_prog_info>() as u32;
        // SAFETY: info is a zeroed bpf_prog_info and len its size.
        unsafe {
            libbpf_rs::libbpf_sys::bpf_prog_get_info_by_fd(fd.as_raw_fd(), &mut info, &mut len)
        };
        ProgStats {
            name,
            run_cnt: info.run_cnt,
            run_time_ns: info.run_time_ns,
        }
    }
}
