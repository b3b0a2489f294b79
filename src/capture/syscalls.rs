//! The per-arch syscall table: which syscalls the probe can decode, how, and
//! under which drop category Falco counts them. The probe holds no syscall
//! numbers of its own; user space writes `sys_table` from this list before
//! load, so one probe source serves every arch.

use super::skel::types::{kestrel_category as Cat, kestrel_handler as H, kestrel_sel as Sel};

/// One selectable syscall. `nr` is `None` where the arch lacks it (arm64 has
/// no open, creat, fork, vfork, dup2 ...).
#[derive(Clone, Copy, Debug)]
pub struct Syscall {
    pub name: &'static str,
    pub nr: Option<u16>,
    pub handler: H,
    pub category: Cat,
    /// Part of the default set: what the thread and fd tables need.
    pub default: bool,
}

macro_rules! table {
    ($( $name:literal, $x86:expr, $arm:expr, $h:ident, $c:ident, $def:literal; )*) => {
        /// Every syscall Kestrel can select, with this build's arch numbers.
        pub const SYSCALLS: &[Syscall] = &[
            $( Syscall {
                name: $name,
                nr: if cfg!(target_arch = "x86_64") { $x86 } else { $arm },
                handler: H::$h,
                category: Cat::$c,
                default: $def,
            }, )*
        ];
    };
}

const N: Option<u16> = None;
const fn s(n: u16) -> Option<u16> {
    Some(n)
}

// name, x86_64, arm64 (asm-generic), handler, drop category, default
table! {
    "clone", s(56), s(220), KH_CLONE, KC_CLONE_FORK, true;
    "clone3", s(435), s(435), KH_CLONE3, KC_CLONE_FORK, true;
    "fork", s(57), N, KH_FORK, KC_CLONE_FORK, true;
    "vfork", s(58), N, KH_FORK, KC_CLONE_FORK, true;
    "execve", s(59), s(221), KH_EXECVE, KC_EXECVE, true;
    "execveat", s(322), s(281), KH_EXECVE, KC_EXECVE, true;
    "open", s(2), N, KH_OPEN, KC_OPEN, true;
    "creat", s(85), N, KH_CREAT, KC_OPEN, true;
    "openat", s(257), s(56), KH_OPENAT, KC_OPEN, true;
    "openat2", s(437), s(437), KH_OPENAT2, KC_OPEN, true;
    "open_by_handle_at", s(304), s(265), KH_OPEN_BY_HANDLE, KC_OPEN, true;
    "close", s(3), s(57), KH_CLOSE, KC_CLOSE, true;
    "dup", s(32), s(23), KH_DUP, KC_DUP, true;
    "dup2", s(33), N, KH_DUP2, KC_DUP, true;
    "dup3", s(292), s(24), KH_DUP3, KC_DUP, true;
    "socket", s(41), s(198), KH_SOCKET, KC_SOCKET, true;
    "connect", s(42), s(203), KH_CONNECT, KC_CONNECT, true;
    "accept", s(43), s(202), KH_ACCEPT, KC_SOCKET, true;
    "accept4", s(288), s(242), KH_ACCEPT4, KC_SOCKET, true;
    "chmod", s(90), N, KH_GENERIC, KC_DIR_FILE, false;
    "fchmod", s(91), s(52), KH_GENERIC, KC_DIR_FILE, false;
    "fchmodat", s(268), s(53), KH_GENERIC, KC_DIR_FILE, false;
    "chown", s(92), N, KH_GENERIC, KC_DIR_FILE, false;
    "fchown", s(93), s(55), KH_GENERIC, KC_DIR_FILE, false;
    "lchown", s(94), N, KH_GENERIC, KC_DIR_FILE, false;
    "fchownat", s(260), s(54), KH_GENERIC, KC_DIR_FILE, false;
    "link", s(86), N, KH_GENERIC, KC_DIR_FILE, false;
    "linkat", s(265), s(37), KH_GENERIC, KC_DIR_FILE, false;
    "mkdir", s(83), N, KH_GENERIC, KC_DIR_FILE, false;
    "mkdirat", s(258), s(34), KH_GENERIC, KC_DIR_FILE, false;
    "mount", s(165), s(40), KH_GENERIC, KC_DIR_FILE, false;
    "umount2", s(166), s(39), KH_GENERIC, KC_DIR_FILE, false;
    "rename", s(82), N, KH_GENERIC, KC_DIR_FILE, false;
    "renameat", s(264), s(38), KH_GENERIC, KC_DIR_FILE, false;
    "renameat2", s(316), s(276), KH_GENERIC, KC_DIR_FILE, false;
    "rmdir", s(84), N, KH_GENERIC, KC_DIR_FILE, false;
    "symlink", s(88), N, KH_GENERIC, KC_DIR_FILE, false;
    "symlinkat", s(266), s(36), KH_GENERIC, KC_DIR_FILE, false;
    "unlink", s(87), N, KH_GENERIC, KC_DIR_FILE, false;
    "unlinkat", s(263), s(35), KH_GENERIC, KC_DIR_FILE, false;
    "bpf", s(321), s(280), KH_GENERIC, KC_OTHER_INTEREST, false;
    "setpgid", s(109), s(154), KH_GENERIC, KC_OTHER_INTEREST, false;
    "ptrace", s(101), s(117), KH_GENERIC, KC_OTHER_INTEREST, false;
    "seccomp", s(317), s(277), KH_GENERIC, KC_OTHER_INTEREST, false;
    "setns", s(308), s(268), KH_GENERIC, KC_OTHER_INTEREST, false;
    "setresgid", s(119), s(149), KH_GENERIC, KC_OTHER_INTEREST, false;
    "setresuid", s(117), s(147), KH_GENERIC, KC_OTHER_INTEREST, false;
    "setsid", s(112), s(157), KH_GENERIC, KC_OTHER_INTEREST, false;
    "unshare", s(272), s(97), KH_GENERIC, KC_OTHER_INTEREST, false;
    "capset", s(126), s(91), KH_GENERIC, KC_OTHER_INTEREST, false;
}

pub fn by_name(name: &str) -> Option<&'static Syscall> {
    SYSCALLS.iter().find(|s| s.name == name)
}

/// The `sys_table` entry for one syscall (see bpf/kestrel.h).
pub fn table_entry(sc: &Syscall, enter: bool) -> u16 {
    let mut sel = Sel::KSEL_EXIT.0;
    if enter {
        sel |= Sel::KSEL_ENTER.0;
    }
    (sel | (sc.category.0 << Sel::KSEL_CAT_SHIFT.0) | (sc.handler.0 << Sel::KSEL_HANDLER_SHIFT.0))
        as u16
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
            .filter(|sc| sc.nr.is_some() && wanted(sc))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_unique_and_in_range() {
        let mut seen = std::collections::HashSet::new();
        for sc in SYSCALLS.iter().filter(|s| s.nr.is_some()) {
            let nr = sc.nr.unwrap();
            assert!((nr as usize) < 512, "{} out of range", sc.name);
            assert!(seen.insert(nr), "{} shares number {nr}", sc.name);
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
}
