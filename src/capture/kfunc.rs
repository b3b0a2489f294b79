//! The probe's one kfunc call, bpf_rdonly_cast, made without a kfunc extern.
//!
//! An extern would make libbpf load the running kernel's own BTF for the
//! whole object (libbpf.c `obj_needs_vmlinux_btf`), and the probe would stop
//! loading on kernels without BTF, where raw_tp relocates against a file. So
//! the probe calls a placeholder helper number (bpf/syscall.h `task_from`)
//! and this module, only on the tp_btf path, finds the kfunc's id in the
//! kernel's BTF and rewrites each placeholder into the kfunc call libbpf
//! would have made (src_reg BPF_PSEUDO_KFUNC_CALL, imm the id). Unpatched,
//! the probe's `task_cast` stays false and the verifier prunes the calls.

use std::cell::Cell;
use std::mem::MaybeUninit;

use libbpf_rs::libbpf_sys;
use libbpf_rs::{AsRawLibbpf, OpenObject, OpenProgramMut};
use libbpf_sys::bpf_insn;

use super::btf::AttachPath;
use super::progs::{open_prog, Prog};
use super::skel::types::kestrel_patch;
use super::skel::OpenKestrelProgs;
use super::{CaptureError, Probe};

const CALL: u8 = 0x85; // BPF_JMP | BPF_CALL

/// Patches the syscall programs where the probe can use the cast: x86_64
/// and arm64 (the arches whose saved registers it checks), tp_btf (a
/// raw_tp program cannot read through the task), with staging (the stage
/// keeps the task). True if it did: the probe's `task_cast` may be set.
pub(super) fn enable(progs: &mut OpenKestrelProgs<'_>, path: AttachPath, staging: bool) -> bool {
    let arch = cfg!(any(target_arch = "x86_64", target_arch = "aarch64"));
    if !arch || path != AttachPath::TpBtf || !staging {
        return false;
    }
    let Some(id) = rdonly_cast_id() else {
        return false;
    };
    let mut patched = 0;
    for p in [Prog::SysExit, Prog::SysEnter] {
        match patch_prog(open_prog(progs, p, path), id) {
            Ok(n) => patched += n,
            Err(e) => {
                // Left unset, task_cast keeps any patched call dead.
                crate::log_line!("{e}; the probe fetches the running task with a helper");
                return false;
            }
        }
    }
    patched > 0
}

impl Probe<'_> {
    /// The probe reads the running task without a helper call: its kfunc
    /// call is patched in.
    pub fn task_cast(&self) -> bool {
        self.task_cast
    }

    /// ... and this many CPUs have learned where a task's saved registers
    /// sit, which a CPU's first selected call teaches it.
    pub fn task_cast_cpus(&self) -> usize {
        if !self.task_cast {
            return 0;
        }
        super::stage::cpus_learned(&self.skel.maps.stage)
    }
}

/// Loads with the cast where it fits; if a verifier refuses the probe that
/// had it patched in (a kernel whose verifier this build was not tried on),
/// logs one line and loads the probe without it, as every kernel took it
/// before the cast. `load` says through its Cell whether it patched.
pub(super) fn load_or_load_plain<'obj, T>(
    storage: &'obj mut MaybeUninit<OpenObject>,
    load: impl Fn(&'obj mut MaybeUninit<OpenObject>, bool, &Cell<bool>) -> Result<T, CaptureError>,
) -> Result<T, CaptureError> {
    let slot: *mut MaybeUninit<OpenObject> = storage;
    let patched = Cell::new(false);
    // SAFETY: slot comes from a unique borrow for 'obj. The first attempt's
    // borrow ends with its Err, which holds no reference: its skeleton is
    // dropped by then (closing its object and leaving the slot
    // uninitialised), so the second attempt's borrow is again the only one.
    // The pointer stands in for the reborrow the borrow checker cannot yet
    // end on one arm of a match only.
    match load(unsafe { &mut *slot }, true, &patched) {
        Err(CaptureError::Verifier { prog, log_tail }) if patched.get() => {
            crate::log_line!(
                "the verifier refused {prog} with the running task read through bpf_rdonly_cast ({}); trying without it",
                verifier_reason(&log_tail)
            );
            // SAFETY: as above; the first attempt is over.
            load(unsafe { &mut *slot }, false, &patched)
        }
        other => other,
    }
}

/// The verifier's reason in a log tail (lines joined by " | "): the line
/// before its "processed N insns".
fn verifier_reason(log_tail: &str) -> &str {
    let lines: Vec<&str> = log_tail.split(" | ").collect();
    let at = lines.iter().position(|l| l.starts_with("processed "));
    at.and_then(|i| lines.get(i.checked_sub(1)?))
        .copied()
        .unwrap_or("")
}

/// bpf_rdonly_cast's id in the running kernel's BTF (6.2+), or None.
fn rdonly_cast_id() -> Option<u32> {
    // SAFETY: libbpf returns an owned BTF or NULL; it is freed once, below.
    let btf = unsafe { libbpf_sys::btf__load_vmlinux_btf() };
    if btf.is_null() {
        return None;
    }
    // SAFETY: btf is valid until freed; the name is NUL-terminated.
    let id = unsafe {
        libbpf_sys::btf__find_by_name_kind(
            btf,
            c"bpf_rdonly_cast".as_ptr(),
            libbpf_sys::BTF_KIND_FUNC,
        )
    };
    // SAFETY: btf came from btf__load_vmlinux_btf and is not used again.
    unsafe { libbpf_sys::btf__free(btf) };
    u32::try_from(id).ok().filter(|&id| id > 0)
}

/// Rewrites every placeholder call in `insns` into the kfunc call; returns
/// how many it rewrote.
fn patch(insns: &mut [bpf_insn], kfunc_id: u32) -> usize {
    let placeholder = kestrel_patch::KESTREL_RDONLY_CAST_CALL.0 as i32;
    let mut n = 0;
    for insn in insns.iter_mut() {
        if insn.code == CALL && insn.src_reg() == 0 && insn.imm == placeholder {
            insn.set_src_reg(libbpf_sys::BPF_PSEUDO_KFUNC_CALL as u8);
            insn.off = 0; // the kfunc lives in vmlinux, not in a module
            insn.imm = kfunc_id as i32;
            n += 1;
        }
    }
    n
}

/// Patches one program before load; returns how many calls it rewrote.
fn patch_prog(prog: &mut OpenProgramMut<'_>, kfunc_id: u32) -> Result<usize, String> {
    let mut insns = prog.insns().to_vec();
    let n = patch(&mut insns, kfunc_id);
    if n == 0 {
        return Ok(0);
    }
    let raw = prog.as_libbpf_object().as_ptr();
    // SAFETY: the object is open, not loaded, and libbpf copies the
    // instructions; their count is unchanged, so its relocation indexes hold.
    let rc =
        unsafe { libbpf_sys::bpf_program__set_insns(raw, insns.as_mut_ptr(), insns.len() as _) };
    if rc != 0 {
        return Err(format!(
            "patching bpf_rdonly_cast into {:?}: error {rc}",
            prog.name()
        ));
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(imm: i32) -> bpf_insn {
        let mut i = bpf_insn {
            code: CALL,
            imm,
            ..Default::default()
        };
        i.set_dst_reg(0);
        i
    }

    #[test]
    fn a_refused_cast_loads_once_more_without_it_and_nothing_else_does() {
        // What 6.12's verifier said of the first version (BENCHMARKS.md).
        let refused = || CaptureError::Verifier {
            prog: "sys_exit".into(),
            log_tail: "83: (1f) r2 -= r1 | math between trusted_ptr_ pointer and register with \
                       unbounded min value is not allowed | processed 153 insns (limit 1000000) | \
                       -- END PROG | libbpf: failed to load BPF skeleton 'kestrel_bpf': -EINVAL"
                .into(),
        };
        let tries = std::cell::RefCell::new(Vec::new());
        let mut storage = MaybeUninit::uninit();
        // The cast patched in and refused: once more without it.
        let got = load_or_load_plain(&mut storage, |_, cast, patched| {
            tries.borrow_mut().push(cast);
            patched.set(cast);
            if cast {
                Err(refused())
            } else {
                Ok(7)
            }
        });
        assert_eq!(got.unwrap(), 7);
        assert_eq!(*tries.borrow(), [true, false]);
        tries.borrow_mut().clear();
        // Refused without the cast in it (raw_tp, an old kernel): no retry.
        let mut storage = MaybeUninit::uninit();
        let got: Result<u8, _> = load_or_load_plain(&mut storage, |_, cast, _| {
            tries.borrow_mut().push(cast);
            Err(refused())
        });
        assert!(matches!(got, Err(CaptureError::Verifier { .. })));
        assert_eq!(*tries.borrow(), [true]);
        tries.borrow_mut().clear();
        let mut storage = MaybeUninit::uninit();
        let got: Result<u8, _> = load_or_load_plain(&mut storage, |_, cast, patched| {
            tries.borrow_mut().push(cast);
            patched.set(cast);
            Err(CaptureError::Load("no memory".into()))
        });
        assert!(matches!(got, Err(CaptureError::Load(_))), "no second try");
        assert_eq!(*tries.borrow(), [true]);
        let CaptureError::Verifier { log_tail, .. } = refused() else {
            unreachable!()
        };
        assert_eq!(
            verifier_reason(&log_tail),
            "math between trusted_ptr_ pointer and register with unbounded min value is not allowed"
        );
        assert_eq!(verifier_reason("no such line"), "");
    }

    #[test]
    fn only_placeholders_become_kfunc_calls() {
        let ph = kestrel_patch::KESTREL_RDONLY_CAST_CALL.0 as i32;
        let mut subprog = call(ph);
        subprog.set_src_reg(1); // a BPF-to-BPF call with the same imm stays
        let mov = bpf_insn {
            code: 0xb7, // mov64 imm
            imm: ph,
            ..Default::default()
        };
        let mut insns = [call(ph), call(14), subprog, mov, call(ph)];
        assert_eq!(patch(&mut insns, 98765), 2);
        for i in [0, 4] {
            assert_eq!(insns[i].src_reg(), libbpf_sys::BPF_PSEUDO_KFUNC_CALL as u8);
            assert_eq!(insns[i].imm, 98765);
            assert_eq!(insns[i].off, 0);
        }
        assert_eq!((insns[1].src_reg(), insns[1].imm), (0, 14));
        assert_eq!((insns[2].src_reg(), insns[2].imm), (1, ph));
        assert_eq!((insns[3].code, insns[3].imm), (0xb7, ph));
        assert_eq!(patch(&mut insns, 98765), 0, "nothing left to patch");
    }
}
