//! The built-in rules (embedded compressed), the shipped binary's link
//! arguments, and the cfg that un-ignores the root tests under CI=true. The
//! probe and its skeleton are built by kestrel-core's (core/build.rs).
use std::env;
use std::path::PathBuf;

#[path = "core/build_embed.rs"]
mod embed;
use embed::embed_zlib;

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR is set by cargo"));
    // The built-in rules ship compressed too (18 KB -> ~5 KB).
    let rules = "configs/rules/kestrel_rules.yaml";
    embed_zlib(
        rules.as_ref(),
        &out.join("kestrel_rules.yaml.z"),
        "DEFAULT_RULES_LEN",
    );
    println!("cargo:rerun-if-changed={rules}");
    // CI=true: the root tests are not #[ignore]d, so none can pass unrun.
    println!("cargo::rustc-check-cfg=cfg(kestrel_ci)");
    println!("cargo:rerun-if-env-changed=CI");
    if env::var("CI").as_deref() == Ok("true") {
        println!("cargo:rustc-cfg=kestrel_ci");
    }
    static_musl_link_args();
}

/// The shipped static binary leaves out .eh_frame and its index (see
/// cross/discard-eh-frame.ld): ~250 KB that only unwinding would read, and
/// with panic = "abort" nothing unwinds.
fn static_musl_link_args() {
    let musl = env::var("CARGO_CFG_TARGET_ENV").as_deref() == Ok("musl");
    if !musl || env::var("CARGO_CFG_TARGET_OS").as_deref() != Ok("linux") {
        return;
    }
    let dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let script = dir.join("cross/discard-eh-frame.ld");
    println!("cargo:rerun-if-changed={}", script.display());
    println!("cargo:rustc-link-arg-bins=-Wl,-T,{}", script.display());
    println!("cargo:rustc-link-arg-bins=-Wl,--no-eh-frame-hdr");
    if env::var("CARGO_CFG_TARGET_ARCH").as_deref() == Ok("arm") {
        empty_libunwind();
    }
}

/// armv7 musl has no prebuilt std, so no self-contained libunwind.a for
/// std's `-lunwind`. With panic = "abort" and std built without backtraces
/// nothing calls an _Unwind_* function: an empty archive satisfies the
/// link, and a future reference would fail it loudly, not silently.
fn empty_libunwind() {
    let dir = PathBuf::from(env::var_os("OUT_DIR").expect("set by cargo")).join("unwind");
    std::fs::create_dir_all(&dir).expect("OUT_DIR is writable");
    std::fs::write(dir.join("libunwind.a"), b"!<arch>\n").expect("OUT_DIR is writable");
    println!("cargo:rustc-link-search=native={}", dir.display());
}
