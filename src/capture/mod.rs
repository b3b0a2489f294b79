//! Capture: loads and attaches the CO-RE probe, exposes its ring buffer, and
//! reads the kernel-side counters and BPF run-time stats at snapshot time.
//! Everything here happens at start or once per snapshot; the per-event path
//! is the ring-buffer callback, which lives with the state tables.

pub mod btf;
pub mod buffer;
mod config;
#[cfg(feature = "bench")]
pub mod floor;
mod ia32;
mod kfunc;
pub mod perf;
mod progs;
pub mod source;
mod stage;
mod stats;

// The per-event half lives in kestrel-core (built for speed), under the same paths.
pub use config::{
    stage_bytes, wake_check_mask, CaptureError, ProbeConfig, DEFAULT_CULPRIT_CAPACITY,
    DEFAULT_RING_BYTES,
};
pub use kestrel_core::capture::{
    abi, probe_object, record, ring, skel, syscall_names, syscalls, Comm, SyscallCounts,
    CALLS_SAMPLE_PERIOD, COMM_LEN, KA_MAX, KC_MAX, KD_MAX, SYSCALL_SLOTS,
};
pub use progs::Prog;
pub use stats::{KernelCounters, ProgStats, StatsSource};

use std::ffi::CString;
use std::mem::{size_of, MaybeUninit};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::Mutex;

use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use libbpf_rs::{Link, MapCore, OpenObject};

use btf::{AttachPath, BtfSource};
use buffer::BufferKind;
use skel::types::kestrel_counters;
use skel::{KestrelSkel, KestrelSkelBuilder};

/// The attached probe.
pub struct Probe<'obj> {
    skel: KestrelSkel<'obj>,
    path: AttachPath,
    btf: BtfSource,
    buffer: (BufferKind, &'static str),
    links: Vec<Link>,
    /// Attached programs; kept after detach so final stats still list them.
    attached: Vec<Prog>,
    counter_buf: Vec<u8>,
    /// The last good counter read, and how many reads failed since load.
    last_counters: KernelCounters,
    counter_read_errors: u64,
    stats_fd: Option<OwnedFd>,
    /// What attach_all attaches.
    wanted: [(Prog, bool); 7],
    /// enable_stats set kernel.bpf_stats_enabled itself (before 5.8).
    stats_sysctl_set: bool,
    /// sys_exit counts every syscall (culprits): sys_exit_ran can tell.
    counts_syscalls: bool,
    /// The kernel has an ia32 syscall entry (ia32.rs).
    ia32_entry: bool,
    /// The syscall programs read the running task through bpf_rdonly_cast
    /// (kfunc.rs).
    task_cast: bool,
    /// Records still staged when detach gave up waiting (stage.rs), by
    /// category and direction: counted as drops.
    stranded: [[u64; abi::KD_MAX]; abi::KC_MAX],
}

// libbpf's messages during load, kept so a verifier rejection can show its tail.
static LIBBPF_LOG: Mutex<String> = Mutex::new(String::new());

fn libbpf_print(_level: libbpf_rs::PrintLevel, msg: String) {
    if let Ok(mut log) = LIBBPF_LOG.lock() {
        log.push_str(&msg);
        let excess = log.len().saturating_sub(64 * 1024);
        if excess > 0 {
            log.drain(..excess);
        }
    }
}

fn log_tail(lines: usize) -> String {
    let log = LIBBPF_LOG.lock().map(|l| l.clone()).unwrap_or_default();
    let v: Vec<&str> = log.lines().filter(|l| !l.trim().is_empty()).collect();
    v[v.len().saturating_sub(lines)..].join(" | ")
}

/// Before 5.11 the kernel charges BPF memory to RLIMIT_MEMLOCK; raise it as
/// far as allowed. Failure is not fatal: newer kernels charge the cgroup.
fn raise_memlock() {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let unlimited = Rlimit {
        current: None,
        maximum: None,
    };
    if setrlimit(Resource::Memlock, unlimited).is_ok() {
        return;
    }
    let cur = getrlimit(Resource::Memlock);
    let _ = setrlimit(
        Resource::Memlock,
        Rlimit {
            current: cur.maximum,
            maximum: cur.maximum,
        },
    );
}

fn classify(err: libbpf_rs::Error, prog: Option<&str>) -> CaptureError {
    let text = format!("{err}");
    let log = log_tail(8);
    // A verifier rejection also reports EACCES/EPERM; the log tells them apart.
    let verifier = log.contains("processed ") || log.contains("END PROG LOAD LOG");
    if verifier {
        let named = log
            .split("prog '")
            .nth(1)
            .and_then(|s| s.split('\'').next());
        return CaptureError::Verifier {
            prog: named.or(prog).unwrap_or("?").to_string(),
            log_tail: log,
        };
    }
    if matches!(err.kind(), libbpf_rs::ErrorKind::PermissionDenied) || text.contains("EPERM") {
        return CaptureError::Permission(text);
    }
    CaptureError::Load(format!("{text}; libbpf: {log}"))
}

impl<'obj> Probe<'obj> {
    /// Opens, configures, loads and attaches the probe.
    pub fn load(
        storage: &'obj mut MaybeUninit<OpenObject>,
        cfg: &ProbeConfig,
    ) -> Result<Probe<'obj>, CaptureError> {
        let mut probe = Probe::load_detached(storage, cfg)?;
        probe.attach_all()?;
        Ok(probe)
    }

    /// Opens, configures and loads the probe without attaching it: perf
    /// buffers must be open before the first record, or it is lost (its
    /// CPU's slot in perf_events is empty).
    pub fn load_detached(
        storage: &'obj mut MaybeUninit<OpenObject>,
        cfg: &ProbeConfig,
    ) -> Result<Probe<'obj>, CaptureError> {
        kfunc::load_or_load_plain(storage, |slot, cast, patched| {
            Probe::load_once(slot, cfg, cast, patched)
        })
    }

    /// One attempt; `try_cast`: patch bpf_rdonly_cast in where it fits,
    /// saying in `patched` whether it did.
    fn load_once(
        storage: &'obj mut MaybeUninit<OpenObject>,
        cfg: &ProbeConfig,
        try_cast: bool,
        patched: &std::cell::Cell<bool>,
    ) -> Result<Probe<'obj>, CaptureError> {
        let kernel_btf = Path::new(btf::KERNEL_BTF);
        let source = btf::locate(cfg.btf.as_deref(), kernel_btf, &btf::kernel_release())
            .map_err(CaptureError::NoBtf)?;
        let path = btf::choose_path(cfg.attach, btf::kernel_can_tp_btf())
            .map_err(CaptureError::BadAttach)?;
        let buffer = buffer::choose(cfg.event_buffer, buffer::kernel_has_ringbuf())
            .map_err(CaptureError::BadBuffer)?;
        let r = cfg.ring_bytes;
        if !r.is_power_of_two() || !(4096..=1 << 30).contains(&r) {
            return Err(CaptureError::BadRingSize(r));
        }
        libbpf_rs::set_print(Some((libbpf_rs::PrintLevel::Info, libbpf_print)));
        raise_memlock();

        let selected = cfg.selection.resolve();
        let mut open = open_skel(storage, &source)?;
        let rodata = open
            .maps
            .rodata_data
            .as_deref_mut()
            .ok_or_else(|| CaptureError::Load("probe has no .rodata".into()))?;
        for sc in &selected {
            let entry = syscalls::table_entry(sc, cfg.enter_events);
            if let Some(nr) = sc.nr {
                rodata.call_table[usize::from(nr)] |= syscalls::table_word(entry, false);
            }
            if let Some(nr) = sc.compat_nr {
                rodata.call_table[usize::from(nr)] |= syscalls::table_word(entry, true);
            }
        }
        let ia32_entry = ia32::entry_available();
        rodata.ia32_entry = ia32_entry;
        rodata.wakeup_bytes = cfg.wakeup_bytes;
        rodata.count_syscalls = cfg.culprits;
        rodata.failed_open_paths = cfg.failed_open_paths;
        rodata.count_drops_by_pid = cfg.culprits;
        let period = cfg.calls_sample_period;
        if period != 0 && !period.is_power_of_two() {
            return Err(CaptureError::Load(format!(
                "sample period {period} is not a power of two"
            )));
        }
        rodata.calls_sample_period = if cfg.culprits { period } else { 0 };
        for map in [&mut open.maps.drops_by_pid, &mut open.maps.calls_by_pid] {
            map.set_max_entries(cfg.culprit_capacity.max(1))
                .map_err(|e| classify(e, None))?;
        }
        rodata.wake_check_mask = wake_check_mask(cfg.ring_bytes);
        let perf = buffer.0 == BufferKind::Perf;
        rodata.use_perf = perf;
        // The probe never stages on 32-bit ARM (bpf/stage.h).
        let stage = cfg.stage_records && !perf && cfg!(not(target_arch = "arm"));
        rodata.use_stage = stage;
        rodata.stage_bytes = stage_bytes(cfg.ring_bytes);
        // Only the maps in use are created: a pre-5.8 kernel refuses a ring.
        open.maps
            .events
            .set_max_entries(cfg.ring_bytes)
            .and_then(|_| open.maps.events.set_autocreate(!perf))
            .and_then(|_| open.maps.perf_events.set_autocreate(perf))
            .and_then(|_| open.maps.stage.set_autocreate(stage))
            .map_err(|e| classify(e, None))?;

        let wants =
            |family: skel::types::kestrel_category| selected.iter().any(|s| s.category == family);
        let fork_tp = cfg!(not(target_arch = "x86_64"))
            && wants(skel::types::kestrel_category::KC_CLONE_FORK);
        let exec_tp = wants(skel::types::kestrel_category::KC_EXECVE);
        let wanted = [
            (Prog::SysExit, true),
            (Prog::SysEnter, cfg.enter_events),
            (Prog::SchedFork, fork_tp),
            (Prog::SchedExec, exec_tp),
            (Prog::SchedExit, true),
            (Prog::SchedSwitch, stage),
            (Prog::HrtimerExpire, stage),
        ];
        for (prog, on) in wanted {
            for p in [AttachPath::TpBtf, AttachPath::RawTp] {
                progs::open_prog(&mut open.progs, prog, p).set_autoload(on && p == path);
            }
        }
        let task_cast = try_cast && kfunc::enable(&mut open.progs, path, stage);
        patched.set(task_cast);
        if let Some(rodata) = open.maps.rodata_data.as_deref_mut() {
            rodata.task_cast = task_cast;
        }

        let skel = open.load().map_err(|e| classify(e, None))?;
        let ncpus =
            libbpf_rs::num_possible_cpus().map_err(|e| CaptureError::Load(e.to_string()))?;
        let stride = size_of::<kestrel_counters>().next_multiple_of(8);
        Ok(Probe {
            skel,
            path,
            btf: source,
            buffer,
            links: Vec::new(),
            attached: Vec::new(),
            counter_buf: vec![0u8; stride * ncpus],
            last_counters: KernelCounters::default(),
            counter_read_errors: 0,
            stats_fd: None,
            wanted,
            stats_sysctl_set: false,
            counts_syscalls: cfg.culprits,
            ia32_entry,
            task_cast,
            stranded: Default::default(),
        })
    }

    /// Attaches every program the configuration wants (once).
    pub fn attach_all(&mut self) -> Result<(), CaptureError> {
        if !self.links.is_empty() {
            return Ok(());
        }
        for (prog, on) in self.wanted {
            if on {
                self.attach(prog)?;
            }
        }
        Ok(())
    }

    /// Detaches `p` and attaches it again (see agent::run: a sys_exit that
    /// never ran).
    pub fn reattach(&mut self, p: Prog) -> Result<(), CaptureError> {
        if let Some(i) = self.attached.iter().position(|&q| q == p) {
            drop(self.links.remove(i));
            self.attached.remove(i);
        }
        self.attach(p)
    }

    /// The event buffer in use and why it was chosen.
    pub fn buffer(&self) -> (BufferKind, &'static str) {
        self.buffer
    }

    /// The attach path taken and where CO-RE got its types.
    pub fn attach_path(&self) -> AttachPath {
        self.path
    }

    pub fn btf_source(&self) -> &BtfSource {
        &self.btf
    }

    /// False on an x86_64 kernel without an ia32 syscall entry.
    pub fn ia32_entry(&self) -> bool {
        self.ia32_entry
    }

    fn prog(&self, p: Prog) -> &libbpf_rs::ProgramMut<'obj> {
        progs::loaded_prog(&self.skel.progs, p, self.path)
    }

    fn attach(&mut self, p: Prog) -> Result<(), CaptureError> {
        let link = self.prog(p).attach().map_err(|e| CaptureError::Attach {
            prog: p.name(),
            err: e.to_string(),
        })?;
        self.links.push(link);
        self.attached.push(p);
        Ok(())
    }

    /// How many attached programs the kernel JIT-compiled; the others run
    /// in its interpreter (the JIT is off, or cannot compile them).
    pub fn jited(&self) -> usize {
        use libbpf_rs::libbpf_sys::{bpf_prog_get_info_by_fd, bpf_prog_info};
        use std::os::fd::{AsFd, AsRawFd};
        let jited = |p: Prog| {
            let mut info = bpf_prog_info::default();
            let mut len = size_of::<bpf_prog_info>() as u32;
            let fd = self.prog(p).as_fd().as_raw_fd();
            // SAFETY: info is a zeroed bpf_prog_info of `len` bytes; the
            // kernel writes at most that and updates len.
            let rc = unsafe { bpf_prog_get_info_by_fd(fd, &mut info, &mut len) };
            rc == 0 && info.jited_prog_len > 0
        };
        self.attached.iter().filter(|&&p| jited(p)).count()
    }

    /// Names of the attached programs, in attach order.
    pub fn attached(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.attached.iter().map(|p| p.name())
    }

    /// Detaches every program; the ring buffer and counters stay readable, so
    /// a final drain and read account for every record exactly. The
    /// programs that send the CPUs' stages go last (stage.rs).
    pub fn detach(&mut self) {
        let links = std::mem::take(&mut self.links);
        let flushers: Vec<Link> = links
            .into_iter()
            .zip(&self.attached)
            .filter(|(_, p)| stage::is_flusher(**p))
            .map(|(l, _)| l)
            .collect();
        if !flushers.is_empty() {
            self.stranded = stage::wait_sent(&self.skel.maps.stage);
        }
    }

    pub fn events_map(&self) -> &dyn MapCore {
        &self.skel.maps.events
    }

    pub fn perf_map(&self) -> &dyn MapCore {
        &self.skel.maps.perf_events
    }
}

/// Opens the skeleton; with an external BTF file CO-RE relocates against it.
fn open_skel<'obj>(
    storage: &'obj mut MaybeUninit<OpenObject>,
    source: &BtfSource,
) -> Result<skel::OpenKestrelSkel<'obj>, CaptureError> {
    let BtfSource::File(path) = source else {
        return KestrelSkelBuilder::default()
            .open(storage)
            .map_err(|e| classify(e, None));
    };
    if let Err(e) = std::fs::metadata(path).and_then(|m| {
        if m.is_file() {
            Ok(())
        } else {
            Err(std::io::Error::other("not a regular file"))
        }
    }) {
        return Err(CaptureError::BtfFile {
            path: path.clone(),
            err: e.to_string(),
        });
    }
    let c_path = CString::new(path.as_os_str().as_bytes()).map_err(|_| CaptureError::BtfFile {
        path: path.clone(),
        err: "path contains a NUL byte".into(),
    })?;
    let opts = libbpf_rs::libbpf_sys::bpf_object_open_opts {
        sz: size_of::<libbpf_rs::libbpf_sys::bpf_object_open_opts>() as _,
        btf_custom_path: c_path.as_ptr(),
        ..Default::default()
    };
    // libbpf copies btf_custom_path during open; c_path outlives the call.
    KestrelSkelBuilder::default()
        .open_opts(opts, storage)
        .map_err(|e| classify(e, None))
}
