//! Inflating what build.rs embedded compressed (the probe object, the
//! built-in rules), with the zlib libbpf-sys already links for libelf: no
//! decompressor of our own in a binary with a 2.0 MB budget.

use core::ffi::{c_int, c_ulong};

extern "C" {
    /// zlib's one-shot inflate (zlib.h `uncompress`).
    fn uncompress(
        dest: *mut u8,
        dest_len: *mut c_ulong,
        source: *const u8,
        source_len: c_ulong,
    ) -> c_int;
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
}
