//! The names Falco prints for flag and enum arguments and return values
//! (libs driver/flags_table.c `file_flags`, `ptrace_requests`,
//! `socket_families`; event.cpp get_param_as_str joins flags with `|` in
//! table order, taking each flag's bits out once matched, and prints the
//! decimal value when nothing matched).

use super::value::Buf;

// Falco's PPM_O_* bits (driver/ppm_events_public.h).
const RDONLY: u32 = 1 << 0;
const WRONLY: u32 = 1 << 1;
const RDWR: u32 = RDONLY | WRONLY;
const CREAT: u32 = 1 << 2;
const APPEND: u32 = 1 << 3;
const DSYNC: u32 = 1 << 4;
const EXCL: u32 = 1 << 5;
const NONBLOCK: u32 = 1 << 6;
const SYNC: u32 = 1 << 7;
const TRUNC: u32 = 1 << 8;
const DIRECT: u32 = 1 << 9;
const DIRECTORY: u32 = 1 << 10;
const LARGEFILE: u32 = 1 << 11;
const CLOEXEC: u32 = 1 << 12;
const TMPFILE: u32 = 1 << 13;
const NOFOLLOW: u32 = 1 << 14;

const FILE_FLAGS: &[(&str, u32)] = &[
    ("O_LARGEFILE", LARGEFILE),
    ("O_DIRECTORY", DIRECTORY),
    ("O_DIRECT", DIRECT),
    ("O_TRUNC", TRUNC),
    ("O_SYNC", SYNC),
    ("O_NONBLOCK", NONBLOCK),
    ("O_EXCL", EXCL),
    ("O_DSYNC", DSYNC),
    ("O_APPEND", APPEND),
    ("O_CREAT", CREAT),
    ("O_RDWR", RDWR),
    ("O_WRONLY", WRONLY),
    ("O_RDONLY", RDONLY),
    ("O_CLOEXEC", CLOEXEC),
    ("O_TMPFILE", TMPFILE),
    ("O_NOFOLLOW", NOFOLLOW),
];

/// Kernel open flags to Falco's bits. `arm32`: a 32-bit ARM task's
/// O_DIRECTORY/O_NOFOLLOW/O_DIRECT/O_LARGEFILE values (arch/arm fcntl.h);
/// x86_64 and arm64 use asm-generic's.
pub fn open_flags(k: u32, arm32: bool) -> u32 {
    let mut f = match k & 3 {
        0 => RDONLY,
        1 => WRONLY,
        _ => RDWR,
    };
    let (dir, nofollow, direct, large) = if arm32 {
        (0o40000, 0o100000, 0o200000, 0o400000)
    } else {
        (0o200000, 0o400000, 0o40000, 0o100000)
    };
    let map = [
        (0o100, CREAT),
        (0o200, EXCL),
        (0o1000, TRUNC),
        (0o2000, APPEND),
        (0o4000, NONBLOCK),
        (0o10000, DSYNC),
        (0o4010000, SYNC),
        (0o2000000, CLOEXEC),
        (dir, DIRECTORY),
        (nofollow, NOFOLLOW),
        (direct, DIRECT),
        (large, LARGEFILE),
    ];
    for (kbit, p) in map {
        if k & kbit == kbit {
            f |= p;
        }
    }
    if k & 0o20000000 != 0 {
        f |= TMPFILE;
    }
    f
}

/// evt.is_open_read from the kernel's flags: the access mode alone, as
/// `open_flags` maps it (O_RDONLY or O_RDWR), without the full mapping.
pub fn is_read(k: u32) -> bool {
    k & 3 != 1
}

/// evt.is_open_write: O_WRONLY or O_RDWR (3, invalid, maps to O_RDWR).
pub fn is_write(k: u32) -> bool {
    k & 3 != 0
}

/// `A|B|C` in table order, each matched flag's bits taken out.
pub fn write_flags(mut v: u32, table: &[(&str, u32)], out: &mut Buf) {
    let orig = v;
    let start = out.len();
    for &(name, bits) in table {
        if bits != 0 && v != 0 && v & bits == bits {
            if out.len() > start {
                let _ = out.push(b'|');
            }
            let _ = out.extend_from_slice(name.as_bytes());
            v &= !bits;
        }
    }
    if out.len() == start {
        let _ = out.extend_from_slice(super::format::itoa_buf(i64::from(orig)).bytes());
    }
}

pub fn write_open_flags(ppm: u32, out: &mut Buf) {
    write_flags(ppm, FILE_FLAGS, out)
}

/// execve's flags parameter (ppm_events_public.h PPM_EXE_*).
pub const EXE_FLAGS: &[(&str, u32)] = &[
    ("EXE_WRITABLE", 1 << 0),
    ("EXE_UPPER_LAYER", 1 << 1),
    ("EXE_FROM_MEMFD", 1 << 2),
    ("EXE_LOWER_LAYER", 1 << 3),
];
pub const EXE_FROM_MEMFD: u32 = 1 << 2;

pub fn ptrace_request(r: u64) -> Option<&'static str> {
    Some(match r {
        0 => "PTRACE_TRACEME",
        1 => "PTRACE_PEEKTEXT",
        2 => "PTRACE_PEEKDATA",
        3 => "PTRACE_PEEKUSR",
        4 => "PTRACE_POKETEXT",
        5 => "PTRACE_POKEDATA",
        6 => "PTRACE_POKEUSR",
        7 => "PTRACE_CONT",
        8 => "PTRACE_KILL",
        9 => "PTRACE_SINGLESTEP",
        12 => "PTRACE_GETREGS",
        13 => "PTRACE_SETREGS",
        14 => "PTRACE_GETFPREGS",
        15 => "PTRACE_SETFPREGS",
        16 => "PTRACE_ATTACH",
        17 => "PTRACE_DETACH",
        18 => "PTRACE_GETFPXREGS",
        19 => "PTRACE_SETFPXREGS",
        24 => "PTRACE_SYSCALL",
        0x4200 => "PTRACE_SETOPTIONS",
        0x4201 => "PTRACE_GETEVENTMSG",
        0x4202 => "PTRACE_GETSIGINFO",
        0x4203 => "PTRACE_SETSIGINFO",
        0x4204 => "PTRACE_GETREGSET",
        0x4205 => "PTRACE_SETREGSET",
        0x4206 => "PTRACE_SEIZE",
        0x4207 => "PTRACE_INTERRUPT",
        0x4208 => "PTRACE_LISTEN",
        0x4209 => "PTRACE_PEEKSIGINFO",
        _ => return None,
    })
}

pub fn socket_family(d: u64) -> Option<&'static str> {
    Some(match d {
        0 => "AF_UNSPEC",
        1 => "AF_UNIX",
        2 => "AF_INET",
        10 => "AF_INET6",
        16 => "AF_NETLINK",
        17 => "AF_PACKET",
        31 => "AF_BLUETOOTH",
        38 => "AF_ALG",
        40 => "AF_VSOCK",
        44 => "AF_XDP",
        _ => return None,
    })
}

/// errno names by number (asm-generic/errno-base.h and errno.h; x86_64 and
/// arm64 share them), `-` for a gap.
const ERRNO: &str = concat!(
    "- EPERM ENOENT ESRCH EINTR EIO ENXIO E2BIG ENOEXEC EBADF ECHILD EAGAIN ENOMEM EACCES ",
    "EFAULT ENOTBLK EBUSY EEXIST EXDEV ENODEV ENOTDIR EISDIR EINVAL ENFILE EMFILE ENOTTY ",
    "ETXTBSY EFBIG ENOSPC ESPIPE EROFS EMLINK EPIPE EDOM ERANGE EDEADLK ENAMETOOLONG ENOLCK ",
    "ENOSYS ENOTEMPTY ELOOP - ENOMSG EIDRM ECHRNG EL2NSYNC EL3HLT EL3RST ELNRNG EUNATCH ",
    "ENOCSI EL2HLT EBADE EBADR EXFULL ENOANO EBADRQC EBADSLT - EBFONT ENOSTR ENODATA ETIME ",
    "ENOSR ENONET ENOPKG EREMOTE ENOLINK EADV ESRMNT ECOMM EPROTO EMULTIHOP EDOTDOT EBADMSG ",
    "EOVERFLOW ENOTUNIQ EBADFD EREMCHG ELIBACC ELIBBAD ELIBSCN ELIBMAX ELIBEXEC EILSEQ ",
    "ERESTART ESTRPIPE EUSERS ENOTSOCK EDESTADDRREQ EMSGSIZE EPROTOTYPE ENOPROTOOPT ",
    "EPROTONOSUPPORT ESOCKTNOSUPPORT EOPNOTSUPP EPFNOSUPPORT EAFNOSUPPORT EADDRINUSE ",
    "EADDRNOTAVAIL ENETDOWN ENETUNREACH ENETRESET ECONNABORTED ECONNRESET ENOBUFS EISCONN ",
    "ENOTCONN ESHUTDOWN ETOOMANYREFS ETIMEDOUT ECONNREFUSED EHOSTDOWN EHOSTUNREACH EALREADY ",
    "EINPROGRESS ESTALE EUCLEAN ENOTNAM ENAVAIL EISNAM EREMOTEIO EDQUOT ENOMEDIUM EMEDIUMTYPE ",
    "ECANCELED ENOKEY EKEYEXPIRED EKEYREVOKED EKEYREJECTED EOWNERDEAD ENOTRECOVERABLE ERFKILL ",
    "EHWPOISON"
);

/// `SUCCESS` for a non-negative return, else the errno's name (or the
/// number when the name is unknown).
pub fn write_res(ret: i64, out: &mut Buf) {
    if ret >= 0 {
        let _ = out.extend_from_slice(b"SUCCESS");
        return;
    }
    let n = ret.unsigned_abs();
    match usize::try_from(n)
        .ok()
        .and_then(|n| ERRNO.split(' ').nth(n))
        .filter(|s| *s != "-")
    {
        Some(name) => {
            let _ = out.extend_from_slice(name.as_bytes());
        }
        None => {
            let _ = out.extend_from_slice(super::format::itoa_buf(ret).bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn access_mode_tests_agree_with_the_full_mapping() {
        for k in [0u32, 1, 2, 3, 0o1001, 0o2002, 0o100] {
            let p = open_flags(k, false);
            assert_eq!(is_read(k), p & RDONLY != 0, "{k:o}");
            assert_eq!(is_write(k), p & WRONLY != 0, "{k:o}");
        }
    }

    use super::*;

    #[test]
    fn flags_render_in_falco_order() {
        let mut b = Buf::new();
        write_open_flags(open_flags(0o1101 | 0o2000000, false), &mut b);
        assert_eq!(&b[..], b"O_TRUNC|O_CREAT|O_WRONLY|O_CLOEXEC");
        b.clear();
        write_open_flags(open_flags(2, false), &mut b);
        assert_eq!(&b[..], b"O_RDWR");
        b.clear();
        write_open_flags(open_flags(0, false), &mut b);
        assert_eq!(&b[..], b"O_RDONLY");
    }

    #[test]
    fn errno_names() {
        let mut b = Buf::new();
        write_res(-2, &mut b);
        assert_eq!(&b[..], b"ENOENT");
        b.clear();
        write_res(-111, &mut b);
        assert_eq!(&b[..], b"ECONNREFUSED");
        b.clear();
        write_res(-133, &mut b);
        assert_eq!(&b[..], b"EHWPOISON");
        b.clear();
        write_res(3, &mut b);
        assert_eq!(&b[..], b"SUCCESS");
        b.clear();
        write_res(-9999, &mut b);
        assert_eq!(&b[..], b"-9999");
    }
}
