//! The probe's programs: one table names each and its two twins in the
//! skeleton (tp_btf, raw_tp). The enum, the names and both lookups come from
//! it, and every match is exhaustive: a program added to the table is
//! reachable everywhere, and one missing from the skeleton does not compile.

use libbpf_rs::{OpenProgramMut, ProgramMut};

use super::btf::AttachPath;
use super::skel::{KestrelProgs, OpenKestrelProgs};

macro_rules! programs {
    ($($prog:ident => $btf:ident, $raw:ident;)*) => {
        /// One program, on whichever attach path was chosen.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum Prog {
            $($prog,)*
        }

        impl Prog {
            /// The name the stats show: the tp_btf twin's (raw_tp reports it too).
            pub fn name(self) -> &'static str {
                match self {
                    $(Prog::$prog => stringify!($btf),)*
                }
            }
        }

        /// The program behind `p` on one attach path, before load.
        pub(super) fn open_prog<'a, 'obj>(
            progs: &'a mut OpenKestrelProgs<'obj>,
            p: Prog,
            path: AttachPath,
        ) -> &'a mut OpenProgramMut<'obj> {
            match (p, path) {
                $((Prog::$prog, AttachPath::TpBtf) => &mut progs.$btf,
                  (Prog::$prog, AttachPath::RawTp) => &mut progs.$raw,)*
            }
        }

        /// The program behind `p` on one attach path, once loaded.
        pub(super) fn loaded_prog<'a, 'obj>(
            progs: &'a KestrelProgs<'obj>,
            p: Prog,
            path: AttachPath,
        ) -> &'a ProgramMut<'obj> {
            match (p, path) {
                $((Prog::$prog, AttachPath::TpBtf) => &progs.$btf,
                  (Prog::$prog, AttachPath::RawTp) => &progs.$raw,)*
            }
        }
    };
}

programs! {
    SysExit => sys_exit, raw_sys_exit;
    SysEnter => sys_enter, raw_sys_enter;
    SchedFork => sched_p_fork, raw_p_fork;
    SchedExec => sched_p_exec, raw_p_exec;
    SchedExit => sched_proc_exit, raw_proc_exit;
    SchedSwitch => sched_switch, raw_sched_switch;
    HrtimerExpire => hrtimer_expire, raw_hrtimer_expire;
}
