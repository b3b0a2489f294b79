//! The benchmark floor: a no-op program on sys_exit, loaded beside the probe
//! so one run measures both on the same syscalls. Never used by the agent.

use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd};

use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use libbpf_rs::{Link, OpenObject};

use super::ProgStats;

#[allow(
    clippy::all,
    clippy::undocumented_unsafe_blocks,
    dead_code,
    non_camel_case_types,
    non_snake_case,
    non_upper_case_globals,
    unused_imports,
    missing_docs
)]
mod skel {
    include!(concat!(env!("OUT_DIR"), "/floor.skel.rs"));
}

pub struct Floor<'obj> {
    skel: skel::FloorSkel<'obj>,
    _links: [Link; 3],
}

impl<'obj> Floor<'obj> {
    pub fn attach(storage: &'obj mut MaybeUninit<OpenObject>) -> Result<Floor<'obj>, String> {
        let open = skel::FloorSkelBuilder::default()
            .open(storage)
            .map_err(|e| format!("floor: {e}"))?;
        let skel = open.load().map_err(|e| format!("floor: {e}"))?;
        let attach = |p: &libbpf_rs::ProgramMut<'_>| p.attach().map_err(|e| format!("floor: {e}"));
        let links = [
            attach(&skel.progs.floor_sys_exit)?,
            attach(&skel.progs.floor_compat)?,
            attach(&skel.progs.floor_raw_step)?,
        ];
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

    fn prog_stats(prog: &libbpf_rs::ProgramMut<'_>, name: &'static str) -> ProgStats {
        let mut info = libbpf_rs::libbpf_sys::bpf_prog_info::default();
        let mut len = std::mem::size_of::<libbpf_rs::libbpf_sys::bpf_prog_info>() as u32;
        // SAFETY: info is a zeroed bpf_prog_info and len its size.
        unsafe {
            libbpf_rs::libbpf_sys::bpf_prog_get_info_by_fd(
                prog.as_fd().as_raw_fd(),
                &mut info,
                &mut len,
            )
        };
        ProgStats {
            name,
            run_cnt: info.run_cnt,
            run_time_ns: info.run_time_ns,
        }
    }
}
