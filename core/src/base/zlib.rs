//! Inflating what build.rs embedded compressed (the probe object, the
//! built-in rules) and the kernel's /proc/config.gz, with the zlib
//! libbpf-sys already links for libelf: no decompressor of our own in a
//! binary with a 2.0 MB budget.

use core::ffi::{c_char, c_int, c_ulong, c_void};
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

extern "C" {
    /// zlib's one-shot inflate (zlib.h `uncompress`).
    fn uncompress(
        dest: *mut u8,
        dest_len: *mut c_ulong,
        source: *const u8,
        source_len: c_ulong,
    ) -> c_int;
    fn gzopen(path: *const c_char, mode: *const c_char) -> *mut c_void;
    fn gzgets(file: *mut c_void, buf: *mut c_char, len: c_int) -> *mut c_char;
    fn gzclose(file: *mut c_void) -> c_int;
}

/// `z` inflated, when it holds exactly `len` bytes; None otherwise.
pub fn inflate(z: &[u8], len: usize) -> Option<Box<[u8]>> {
    let mut out = vec![0u8; len].into_boxed_slice();
    let mut got = len as c_ulong;
    // SAFETY: dest is out's buffer with its length in `got`; source is `z`
    // with its length. zlib writes at most `got` bytes and stores the count.
    let rc = unsafe { uncompress(out.as_mut_ptr(), &mut got, z.as_ptr(), z.len() as c_ulong) };
    (rc == 0 && got as usize == len).then_some(out)
}

/// Each line of a gzip file (or of a plain one: zlib reads it through) to
/// `f`, newline removed, until `f` returns false. Lines past 511 bytes
/// arrive in pieces. Err only when the file cannot be opened.
pub fn gz_lines(path: &Path, mut f: impl FnMut(&[u8]) -> bool) -> std::io::Result<()> {
    let c_path = CString::new(path.as_os_str().as_bytes())?;
    // SAFETY: both arguments are NUL-terminated strings that outlive the call.
    let file = unsafe { gzopen(c_path.as_ptr(), c"rb".as_ptr()) };
    if file.is_null() {
        return Err(std::io::Error::last_os_error());
    }
    let mut buf = [0u8; 512];
    loop {
        // SAFETY: file is open; zlib writes at most len - 1 bytes and a NUL.
        let got = unsafe { gzgets(file, buf.as_mut_ptr().cast(), buf.len() as c_int) };
        if got.is_null() {
            break;
        }
        let n = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
        let line = buf[..n].strip_suffix(b"\n").unwrap_or(&buf[..n]);
        if !f(line) {
            break;
        }
    }
    // SAFETY: file came from gzopen and is closed once.
    unsafe { gzclose(file) };
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_wrong_length_or_corrupt_input_is_none() {
        // zlib of "kestrel" (level 9), made with python's zlib.compress.
        let z = [
            120, 218, 203, 78, 45, 46, 41, 74, 205, 1, 0, 11, 237, 2, 251,
        ];
        assert_eq!(super::inflate(&z, 7).as_deref(), Some(&b"kestrel"[..]));
        assert_eq!(super::inflate(&z, 6), None);
        assert_eq!(super::inflate(&z[..5], 7), None);
    }

    #[test]
    fn gz_lines_reads_gzip_and_plain_files() {
        let dir = crate::testing::scratch("gz-lines");
        std::fs::create_dir_all(&dir).unwrap();
        // gzip of "a\nCONFIG_X=y\n" (python's gzip.compress, mtime 0).
        let gz = [
            31, 139, 8, 0, 0, 0, 0, 0, 2, 3, 75, 228, 114, 246, 247, 115, 243, 116, 143, 143, 176,
            173, 228, 2, 0, 79, 181, 48, 170, 13, 0, 0, 0,
        ];
        for (name, bytes) in [("c.gz", &gz[..]), ("c", b"a\nCONFIG_X=y\n")] {
            let p = dir.join(name);
            std::fs::write(&p, bytes).unwrap();
            let mut lines = Vec::new();
            super::gz_lines(&p, |l| {
                lines.push(l.to_vec());
                true
            })
            .unwrap();
            assert_eq!(lines, [b"a".to_vec(), b"CONFIG_X=y".to_vec()], "{name}");
        }
        assert!(super::gz_lines(&dir.join("none"), |_| true).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
