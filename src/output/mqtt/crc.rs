//! CRC-32 (IEEE, as zlib's), bitwise: spool records are small and written
//! only during outages, so no table is worth its 1 KiB.

pub fn crc32(data: &[&[u8]]) -> u32 {
    let mut c = !0u32;
    for d in data {
        for &b in *d {
            c ^= u32::from(b);
            for _ in 0..8 {
                c = (c >> 1) ^ (0xedb8_8320 & (c & 1).wrapping_neg());
            }
        }
    }
    !c
}
