//! Shared by both build scripts (core/build.rs, build.rs): a file embedded
//! zlib-compressed, which base::zlib inflates at run time.

/// `src` zlib-compressed at `dest`, its length as a const at `dest`.len.rs
/// (base::zlib inflates it).
pub fn embed_zlib(src: &std::path::Path, dest: &std::path::Path, len_name: &str) {
    let bytes = std::fs::read(src).unwrap_or_else(|e| panic!("{}: {e}", src.display()));
    let z = miniz_oxide::deflate::compress_to_vec_zlib(&bytes, 10);
    std::fs::write(dest, z).expect("OUT_DIR is writable");
    let len = format!("pub const {len_name}: usize = {};\n", bytes.len());
    let mut len_file = dest.as_os_str().to_owned();
    len_file.push(".len.rs");
    std::fs::write(len_file, len).expect("OUT_DIR is writable");
}
