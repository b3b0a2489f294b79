//! Where CO-RE gets its kernel types, and which attach path fits.
//!
//! tp_btf programs need the running kernel's own BTF; raw_tp programs run
//! without it, and then CO-RE relocates against a BTF file made offline from
//! the kernel's build (pahole). The search order is fixed and short so that
//! `kestrel check` and a failed start can name every place tried.

use std::fmt;
use std::path::{Path, PathBuf};

pub const KERNEL_BTF: &str = "/sys/kernel/btf/vmlinux";
const SEARCH_DIRS: [&str; 2] = ["/etc/kestrel/btf", "/usr/lib/kestrel/btf"];

/// Which tracepoint flavour the probe attaches with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttachMode {
    /// tp_btf where the kernel has BTF, else raw_tp.
    Auto,
    TpBtf,
    RawTp,
}

impl AttachMode {
    pub fn parse(s: &str) -> Result<AttachMode, String> {
        match s {
            "auto" => Ok(AttachMode::Auto),
            "tp_btf" => Ok(AttachMode::TpBtf),
            "raw_tp" => Ok(AttachMode::RawTp),
            _ => Err(format!("attach '{s}' is not auto, tp_btf or raw_tp")),
        }
    }
}

/// The attach path actually taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttachPath {
    TpBtf,
    RawTp,
}

impl AttachPath {
    pub fn name(self) -> &'static str {
        match self {
            AttachPath::TpBtf => "tp_btf",
            AttachPath::RawTp => "raw_tp",
        }
    }
}

/// Where CO-RE relocations come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BtfSource {
    Kernel,
    File(PathBuf),
}

impl fmt::Display for BtfSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BtfSource::Kernel => write!(f, "kernel BTF ({KERNEL_BTF})"),
            BtfSource::File(p) => write!(f, "external file {}", p.display()),
        }
    }
}

/// No BTF anywhere: every place tried, and how to make the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoBtf {
    pub release: String,
    pub tried: Vec<PathBuf>,
}

impl NoBtf {
    pub fn fix(&self) -> String {
        format!(
            "make one from this kernel's vmlinux (with DWARF) and install it as {}: \
             pahole -J --btf_encode_detached={0} vmlinux (add --skip_encoding_btf_enum64 before 6.0), \
             or pass --btf FILE",
            search_paths(&self.release)[0].display()
        )
    }
}

impl fmt::Display for NoBtf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tried: Vec<String> = self.tried.iter().map(|p| p.display().to_string()).collect();
        write!(
            f,
            "no BTF for kernel {}: tried {}; {}",
            self.release,
            tried.join(", "),
            self.fix()
        )
    }
}

/// The per-release files searched when the kernel has no BTF of its own.
pub fn search_paths(release: &str) -> [PathBuf; 2] {
    SEARCH_DIRS.map(|d| Path::new(d).join(format!("{release}.btf")))
}

pub fn kernel_release() -> String {
    rustix::system::uname()
        .release()
        .to_string_lossy()
        .into_owned()
}

/// An explicit file wins; then the kernel's own BTF; then the search paths.
pub fn locate(
    explicit: Option<&Path>,
    kernel_btf: &Path,
    release: &str,
) -> Result<BtfSource, NoBtf> {
    if let Some(p) = explicit {
        return Ok(BtfSource::File(p.to_path_buf()));
    }
    if kernel_btf.exists() {
        return Ok(BtfSource::Kernel);
    }
    let candidates = search_paths(release);
    if let Some(found) = candidates.iter().find(|p| p.is_file()) {
        return Ok(BtfSource::File(found.clone()));
    }
    let mut tried = vec![kernel_btf.to_path_buf()];
    tried.extend(candidates);
    Err(NoBtf {
        release: release.to_string(),
        tried,
    })
}

/// Whether tp_btf can work here: the kernel's own BTF, with the
/// `btf_trace_<tracepoint>` types tp_btf attaches through (5.5+; a 5.4
/// kernel can have BTF without them). Read in chunks: the file is MBs.
pub fn kernel_can_tp_btf() -> bool {
    const NEEDLE: &[u8] = b"btf_trace_sys_exit\0";
    let Ok(mut f) = std::fs::File::open(KERNEL_BTF) else {
        return false;
    };
    let mut buf = vec![0u8; 64 * 1024];
    let mut kept = 0;
    loop {
        let n = match std::io::Read::read(&mut f, &mut buf[kept..]) {
            Ok(0) | Err(_) => return false,
            Ok(n) => n,
        };
        let end = kept + n;
        if buf[..end].windows(NEEDLE.len()).any(|w| w == NEEDLE) {
            return true;
        }
        // Keep the tail: the name may straddle two reads.
        kept = (NEEDLE.len() - 1).min(end);
        buf.copy_within(end - kept..end, 0);
    }
}

/// tp_btf needs the kernel's own BTF whatever CO-RE relocates against.
/// 32-bit ARM takes raw_tp even then: its JIT cannot compile tp_btf's BTF
/// pointer loads (BPF_PROBE_MEM), so those programs would run interpreted.
pub fn choose_path(mode: AttachMode, kernel_has_btf: bool) -> Result<AttachPath, String> {
    if cfg!(target_arch = "arm") {
        return match mode {
            AttachMode::Auto | AttachMode::RawTp => Ok(AttachPath::RawTp),
            AttachMode::TpBtf => Err(
                "--attach tp_btf is not offered on 32-bit ARM (its BPF JIT cannot compile tp_btf's pointer loads); use --attach raw_tp or auto".into(),
            ),
        };
    }
    match (mode, kernel_has_btf) {
        (AttachMode::Auto | AttachMode::TpBtf, true) => Ok(AttachPath::TpBtf),
        (AttachMode::Auto | AttachMode::RawTp, _) => Ok(AttachPath::RawTp),
        (AttachMode::TpBtf, false) => Err(format!(
            "--attach tp_btf needs the kernel's own BTF ({KERNEL_BTF}) and BPF tracing programs (5.5+); use --attach raw_tp or auto"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_file_wins_then_kernel_then_search() {
        let dir = crate::testing::scratch("btf");
        std::fs::create_dir_all(&dir).unwrap();
        let kernel = dir.join("vmlinux");
        let file = dir.join("given.btf");
        assert_eq!(
            locate(Some(&file), &kernel, "6.1.0"),
            Ok(BtfSource::File(file.clone()))
        );
        let err = locate(None, &kernel, "6.1.0-test-nobtf").unwrap_err();
        assert_eq!(err.tried.len(), 3);
        assert_eq!(err.tried[0], kernel);
        assert_eq!(
            err.tried[1],
            Path::new("/etc/kestrel/btf/6.1.0-test-nobtf.btf")
        );
        let line = err.to_string();
        assert!(!line.contains('\n'));
        for t in &err.tried {
            assert!(line.contains(&t.display().to_string()), "{line}");
        }
        assert!(line.contains("pahole -J --btf_encode_detached="), "{line}");
        std::fs::write(&kernel, b"x").unwrap();
        assert_eq!(locate(None, &kernel, "6.1.0"), Ok(BtfSource::Kernel));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn attach_path_follows_kernel_btf() {
        if cfg!(target_arch = "arm") {
            assert_eq!(choose_path(AttachMode::Auto, true), Ok(AttachPath::RawTp));
            assert!(choose_path(AttachMode::TpBtf, true).is_err());
            return;
        }
        assert_eq!(choose_path(AttachMode::Auto, true), Ok(AttachPath::TpBtf));
        assert_eq!(choose_path(AttachMode::Auto, false), Ok(AttachPath::RawTp));
        assert_eq!(choose_path(AttachMode::RawTp, true), Ok(AttachPath::RawTp));
        assert!(choose_path(AttachMode::TpBtf, false).is_err());
        assert!(AttachMode::parse("kprobe").is_err());
    }
}
