//! The per-arch syscall table: which syscalls the probe can decode, how, and
//! under which drop category Falco counts them. The probe holds no syscall
//! numbers of its own; user space writes `call_table` from this list before
//! load, so one probe source serves every arch.

use super::skel::types::{kestrel_category as Cat, kestrel_handler as H, kestrel_sel as Sel};

/// One selectable syscall. `nr` is `None` where the arch lacks it (arm64 has
/// no open, creat, fork, vfork, dup2 ...). On 32-bit ARM the native ABI is
/// EABI (`nr`), and there is no 32-bit compat ABI (`compat_nr` is `None`).
#[derive(Clone, Copy, Debug)]
pub struct Syscall {
    pub name: &'static str,
    pub nr: Option<u16>,
    /// The number a 32-bit task uses on this kernel: i386 on x86_64, ARM EABI
    /// on arm64. Where the 32-bit ABI has a 16-bit-uid call and a `*32` one
    /// (chown, setresuid ...), this is the `*32` one every current libc uses.
    /// i386 has no accept (only socketcall, which is not decoded).
    pub compat_nr: Option<u16>,
    pub handler: H,
    pub category: Cat,
    /// Part of the default set: what the thread and fd tables need.
    pub default: bool,
}

macro_rules! table {
    ($( $name:literal, $x86:expr, $arm:expr, $i386:expr, $eabi:expr, $h:ident, $c:ident,
        $def:literal; )*) => {
        /// Every syscall Kestrel can select, with this build's arch numbers.
        pub const SYSCALLS: &[Syscall] = &[
            $( Syscall {
                name: $name,
                nr: pick($x86, $arm, $eabi),
                compat_nr: pick($i386, $eabi, N),
                handler: H::$h,
                category: Cat::$c,
                default: $def,
            }, )*
        ];

        /// Every ABI's number of each syscall, whatever this build's arch.
        #[cfg(test)]
        const NUMBERS: &[(&str, [Option<u16>; 4])] = &[ $( ($name, [$x86, $arm, $i386, $eabi]), )* ];
    };
}

const N: Option<u16> = None;
const fn s(n: u16) -> Option<u16> {
    Some(n)
}

/// This build's column: x86_64, arm64 or 32-bit ARM.
const fn pick(x86: Option<u16>, arm64: Option<u16>, arm: Option<u16>) -> Option<u16> {
    if cfg!(target_arch = "x86_64") {
        x86
    } else if cfg!(target_arch = "arm") {
        arm
    } else {
        arm64
    }
}

// name, x86_64, arm64 (asm-generic), i386, ARM EABI, handler, drop category, default.
// Checked against the kernel's UAPI headers by the tests below. Categories
// follow libs 0.25.4 driver/modern_bpf/helpers/base/stats.h
// (compute_event_types_stats); the syscalls it counts under none go to
// Kestrel's own KC_OTHER (memfd_create, the module loads, chdir, fchdir,
// setuid, setgid, sendto, kill, tkill). The KH_ARGS / KH_STR_* handlers send
// KR_SYSCALL records with the arguments (and strings) the rules read.
table! {
    "clone", s(56), s(220), s(120), s(120), KH_CLONE, KC_CLONE_FORK, true;
    "clone3", s(435), s(435), s(435), s(435), KH_CLONE3, KC_CLONE_FORK, true;
    "fork", s(57), N, s(2), s(2), KH_FORK, KC_CLONE_FORK, true;
    "vfork", s(58), N, s(190), s(190), KH_FORK, KC_CLONE_FORK, true;
    "execve", s(59), s(221), s(11), s(11), KH_EXECVE, KC_EXECVE, true;
    "execveat", s(322), s(281), s(358), s(387), KH_EXECVE, KC_EXECVE, true;
    "open", s(2), N, s(5), s(5), KH_OPEN, KC_OPEN, true;
    "creat", s(85), N, s(8), s(8), KH_CREAT, KC_OPEN, true;
    "openat", s(257), s(56), s(295), s(322), KH_OPENAT, KC_OPEN, true;
    "openat2", s(437), s(437), s(437), s(437), KH_OPENAT2, KC_OPEN, true;
    "open_by_handle_at", s(304), s(265), s(342), s(371), KH_OPEN_BY_HANDLE, KC_OPEN, true;
    "close", s(3), s(57), s(6), s(6), KH_CLOSE, KC_CLOSE, true;
    "dup", s(32), s(23), s(41), s(41), KH_DUP, KC_DUP, true;
    "dup2", s(33), N, s(63), s(63), KH_DUP2, KC_DUP, true;
    "dup3", s(292), s(24), s(330), s(358), KH_DUP3, KC_DUP, true;
    "socket", s(41), s(198), s(359), s(281), KH_SOCKET, KC_SOCKET, true;
    "connect", s(42), s(203), s(362), s(283), KH_CONNECT, KC_CONNECT, true;
    "accept", s(43), s(202), N, s(285), KH_ACCEPT, KC_SOCKET, true;
    "accept4", s(288), s(242), s(364), s(366), KH_ACCEPT4, KC_SOCKET, true;
    "chmod", s(90), N, s(15), s(15), KH_GENERIC, KC_DIR_FILE, false;
    "fchmod", s(91), s(52), s(94), s(94), KH_GENERIC, KC_DIR_FILE, false;
    "fchmodat", s(268), s(53), s(306), s(333), KH_GENERIC, KC_DIR_FILE, false;
    "chown", s(92), N, s(212), s(212), KH_GENERIC, KC_DIR_FILE, false;
    "fchown", s(93), s(55), s(207), s(207), KH_GENERIC, KC_DIR_FILE, false;
    "lchown", s(94), N, s(198), s(198), KH_GENERIC, KC_DIR_FILE, false;
    "fchownat", s(260), s(54), s(298), s(325), KH_GENERIC, KC_DIR_FILE, false;
    "link", s(86), N, s(9), s(9), KH_STR_A0_A1, KC_DIR_FILE, false;
    "linkat", s(265), s(37), s(303), s(330), KH_STR_A1_A3, KC_DIR_FILE, false;
    "mkdir", s(83), N, s(39), s(39), KH_STR_A0, KC_DIR_FILE, false;
    "mkdirat", s(258), s(34), s(296), s(323), KH_STR_A1, KC_DIR_FILE, false;
    "mount", s(165), s(40), s(21), s(21), KH_GENERIC, KC_DIR_FILE, false;
    "umount2", s(166), s(39), s(52), s(52), KH_GENERIC, KC_DIR_FILE, false;
    "rename", s(82), N, s(38), s(38), KH_STR_A0_A1, KC_DIR_FILE, false;
    "renameat", s(264), s(38), s(302), s(329), KH_STR_A1_A3, KC_DIR_FILE, false;
    "renameat2", s(316), s(276), s(353), s(382), KH_STR_A1_A3, KC_DIR_FILE, false;
    "rmdir", s(84), N, s(40), s(40), KH_STR_A0, KC_DIR_FILE, false;
    "symlink", s(88), N, s(83), s(83), KH_STR_A0_A1, KC_DIR_FILE, false;
    "symlinkat", s(266), s(36), s(304), s(331), KH_STR_A0_A2, KC_DIR_FILE, false;
    "unlink", s(87), N, s(10), s(10), KH_STR_A0, KC_DIR_FILE, false;
    "unlinkat", s(263), s(35), s(301), s(328), KH_STR_A1, KC_DIR_FILE, false;
    "bpf", s(321), s(280), s(357), s(386), KH_GENERIC, KC_OTHER_INTEREST, false;
    "setpgid", s(109), s(154), s(57), s(57), KH_GENERIC, KC_OTHER_INTEREST, false;
    "ptrace", s(101), s(117), s(26), s(26), KH_ARGS, KC_OTHER_INTEREST, false;
    "seccomp", s(317), s(277), s(354), s(383), KH_GENERIC, KC_OTHER_INTEREST, false;
    "setns", s(308), s(268), s(346), s(375), KH_GENERIC, KC_OTHER_INTEREST, false;
    "setresgid", s(119), s(149), s(210), s(210), KH_ARGS, KC_OTHER_INTEREST, false;
    "setresuid", s(117), s(147), s(208), s(208), KH_ARGS, KC_OTHER_INTEREST, false;
    "setsid", s(112), s(157), s(66), s(66), KH_GENERIC, KC_OTHER_INTEREST, false;
    "unshare", s(272), s(97), s(310), s(337), KH_GENERIC, KC_OTHER_INTEREST, false;
    "capset", s(126), s(91), s(185), s(185), KH_GENERIC, KC_OTHER_INTEREST, false;
    "memfd_create", s(319), s(279), s(356), s(385), KH_STR_A0, KC_OTHER, false;
    "init_module", s(175), s(105), s(128), s(128), KH_ARGS, KC_OTHER, false;
    "finit_module", s(313), s(273), s(350), s(379), KH_ARGS, KC_OTHER, false;
    "chdir", s(80), s(49), s(12), s(12), KH_STR_A0, KC_OTHER, false;
    "fchdir", s(81), s(50), s(133), s(133), KH_ARGS, KC_OTHER, false;
    "setuid", s(105), s(146), s(213), s(213), KH_ARGS, KC_OTHER, false;
    "setgid", s(106), s(144), s(214), s(214), KH_ARGS, KC_OTHER, false;
    "sendto", s(44), s(206), s(369), s(290), KH_ARGS, KC_OTHER, false;
    "kill", s(62), s(129), s(37), s(37), KH_ARGS, KC_OTHER, false;
    "tkill", s(200), s(130), s(238), s(238), KH_ARGS, KC_OTHER, false;
}

pub fn by_name(name: &str) -> Option<&'static Syscall> {
    SYSCALLS.iter().find(|s| s.name == name)
}

/// One ABI's 16-bit entry for a syscall (see bpf/kestrel.h `kestrel_sel`).
pub fn table_entry(sc: &Syscall, enter: bool) -> u16 {
    let mut sel = Sel::KSEL_EXIT.0;
    if enter {
        sel |= Sel::KSEL_ENTER.0;
    }
    (sel | (sc.category.0 << Sel::KSEL_CAT_SHIFT.0) | (sc.handler.0 << Sel::KSEL_HANDLER_SHIFT.0))
        as u16
}

/// Where an ABI's entry sits in its number's `call_table` word.
pub fn table_word(entry: u16, compat: bool) -> u32 {
    let shift = if compat { Sel::KSEL_COMPAT_SHIFT.0 } else { 0 };
    u32::from(entry) << shift
}

/// Which syscalls to trace: the default set, none, or an explicit list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Selection {
    Default,
    None,
    Names(Vec<String>),
}

impl Selection {
    /// Parses `default`, `none`, or a comma list where `default` may appear as
    /// one item (e.g. `default,mkdirat,unlinkat`).
    pub fn parse(s: &str) -> Result<Selection, String> {
        match s {
            "default" => return Ok(Selection::Default),
            "none" => return Ok(Selection::None),
            _ => {}
        }
        let mut names = Vec::new();
        for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            if item != "default" && by_name(item).is_none() {
                return Err(format!("unknown syscall '{item}'"));
            }
            names.push(item.to_string());
        }
        if names.is_empty() {
            return Err("empty syscall list".into());
        }
        Ok(Selection::Names(names))
    }

    /// The syscalls this selection traces on this arch.
    pub fn resolve(&self) -> Vec<&'static Syscall> {
        let wanted = |sc: &Syscall| match self {
            Selection::Default => sc.default,
            Selection::None => false,
            Selection::Names(n) => n
                .iter()
                .any(|n| n == sc.name || (n == "default" && sc.default)),
        };
        SYSCALLS
            .iter()
            .filter(|sc| (sc.nr.is_some() || sc.compat_nr.is_some()) && wanted(sc))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::super::skel::types::kestrel_limits;
    use super::*;

    /// `#define __NR_<name> <n>` (or `(__NR_SYSCALL_BASE + n)`, base 0 on EABI).
    fn uapi_number(text: &str, name: &str) -> Option<u16> {
        let key = format!("__NR_{name}");
        text.lines().find_map(|l| {
            let mut it = l.split_whitespace();
            if it.next() != Some("#define") || it.next() != Some(key.as_str()) {
                return None;
            }
            let v: String = it.collect();
            let v = v
                .trim_start_matches("(__NR_SYSCALL_BASE+")
                .trim_end_matches(')');
            Some(v.parse().expect("a plain number"))
        })
    }

    #[test]
    fn numbers_match_the_kernel_uapi_headers() {
        const HEADERS: [&str; 4] = [
            "/usr/include/x86_64-linux-gnu/asm/unistd_64.h",
            "/usr/include/asm-generic/unistd.h",
            "/usr/include/x86_64-linux-gnu/asm/unistd_32.h",
            "/usr/arm-linux-gnueabihf/include/asm/unistd-eabi.h",
        ];
        let texts = HEADERS.map(crate::testing::uapi_header);
        for (name, nrs) in NUMBERS {
            for (abi, (header, nr)) in HEADERS.iter().zip(nrs).enumerate() {
                let Some(text) = &texts[abi] else {
                    continue;
                };
                // The 32-bit ABIs keep 16-bit-uid calls under the plain name.
                let uapi_name = match (abi, *name) {
                    (
                        2 | 3,
                        "chown" | "fchown" | "lchown" | "setresuid" | "setresgid" | "setuid"
                        | "setgid",
                    ) => {
                        format!("{name}32")
                    }
                    _ => name.to_string(),
                };
                assert_eq!(*nr, uapi_number(text, &uapi_name), "{name} in {header}");
                let max = kestrel_limits::KESTREL_SYSCALL_MAX.0 as usize;
                assert!(nr.is_none_or(|n| usize::from(n) < max), "{name} >= {max}");
            }
        }
    }

    #[test]
    fn selection_parsing() {
        assert_eq!(Selection::parse("default").unwrap(), Selection::Default);
        assert_eq!(Selection::parse("none").unwrap(), Selection::None);
        assert!(Selection::parse("openat,bogus").is_err());
        assert!(Selection::parse(",").is_err());
        let s = Selection::parse("default,mkdirat").unwrap();
        let r = s.resolve();
        assert!(r.iter().any(|s| s.name == "mkdirat"));
        assert!(r.iter().any(|s| s.name == "openat"));
        assert!(Selection::None.resolve().is_empty());
    }

    #[test]
    fn table_entry_packs_handler_and_category() {
        let sc = by_name("openat").unwrap();
        let e = table_entry(sc, true);
        assert_eq!(e & 0x3, 0x3);
        assert_eq!((e >> 4) & 0xf, Cat::KC_OPEN.0 as u16);
        assert_eq!(e >> 8, H::KH_OPENAT.0 as u16);
    }

    #[test]
    fn table_word_keeps_each_abi_in_its_half() {
        let open = table_entry(by_name("open").unwrap(), false);
        let close = table_entry(by_name("close").unwrap(), false);
        // One number can select different syscalls under its two ABIs.
        let w = table_word(open, false) | table_word(close, true);
        assert_eq!(w & 0xffff, u32::from(open));
        assert_eq!(w >> 16, u32::from(close));
        assert_eq!(table_word(open, true) & 0xffff, 0);
    }
}
