//! Compiles the probe for the target arch and generates its skeleton; the
//! record layouts in bpf/kestrel.h reach Rust only through that skeleton.
use std::env;
use std::path::PathBuf;

use libbpf_cargo::SkeletonBuilder;

/// (source, skeleton file): the probe, and the no-op floor for benchmarks
/// (built only with the `bench` feature).
const PROBES: [(&str, &str); 2] = [
    ("bpf/kestrel.bpf.c", "kestrel.skel.rs"),
    ("bpf/floor.bpf.c", "floor.skel.rs"),
];

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR is set by cargo"));
    let clang = env::var_os("KESTREL_CLANG").unwrap_or_else(|| "clang".into());
    let strip = env::var_os("KESTREL_LLVM_STRIP").unwrap_or_else(|| "llvm-strip".into());
    // The floor is bench-only: not built, so not shipped, without the feature.
    let bench = env::var_os("CARGO_FEATURE_BENCH").is_some();
    for (src, skel) in PROBES
        .into_iter()
        .filter(|(src, _)| bench || !src.ends_with("floor.bpf.c"))
    {
        let obj = out.join(skel.replace(".skel.rs", ".bpf.o"));
        let mut builder = SkeletonBuilder::new();
        builder
            .source(src)
            .obj(&obj)
            .clang(&clang)
            .clang_args(clang_args(&clang))
            .build()
            .unwrap_or_else(|e| panic!("building the probe {src} failed: {e:#}"));
        // -g makes clang emit BTF; the DWARF beside it is dead weight in the
        // binary (libbpf reads only .BTF and .BTF.ext, which strip -g keeps).
        let stripped = std::process::Command::new(&strip)
            .arg("-g")
            .arg(&obj)
            .status()
            .unwrap_or_else(|e| panic!("running {strip:?} (from llvm): {e}"));
        assert!(stripped.success(), "llvm-strip -g {} failed", obj.display());
        builder
            .generate(out.join(skel))
            .unwrap_or_else(|e| panic!("generating the skeleton of {src} failed: {e:#}"));
        expose_object(&out.join(skel));
        println!("cargo:rerun-if-changed={src}");
    }
    for f in [
        "bpf/kestrel.h",
        "bpf/kernel_types.h",
        "bpf/emit.h",
        "bpf/syscall.h",
        "bpf/handlers.h",
        "bpf/exec.h",
    ] {
        println!("cargo:rerun-if-changed={f}");
    }
    println!("cargo:rerun-if-env-changed=KESTREL_CLANG");
    println!("cargo:rerun-if-env-changed=KESTREL_LLVM_STRIP");
}

/// The clang whose warnings the probe is kept clean for (Debian 12's).
const PINNED_CLANG_MAJOR: u32 = 14;

/// -Werror only with the pinned clang: a newer one may warn about code that
/// is fine, and a user's build should not fail on that. Its warnings still
/// show (libbpf-cargo prints the compiler's output).
fn clang_args(clang: &std::ffi::OsStr) -> Vec<&'static str> {
    let mut args = vec!["-Ibpf", "-O2", "-g", "-Wall"];
    let version = std::process::Command::new(clang)
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    let major = version
        .split("clang version ")
        .nth(1)
        .and_then(|v| v.split('.').next())
        .and_then(|m| m.trim().parse::<u32>().ok());
    if major == Some(PINNED_CLANG_MAJOR) {
        args.push("-Werror");
    } else {
        println!(
            "cargo:warning=clang {major:?} is not the pinned {PINNED_CLANG_MAJOR}: probe warnings are not errors"
        );
    }
    args
}

/// The skeleton embeds the object as a private `DATA`; `kestrel export-probe`
/// writes those exact bytes out (for `bpftool gen min_core_btf`), so make it
/// reachable instead of embedding a second copy. The match does not depend on
/// layout: libbpf-cargo runs rustfmt on the skeleton only when one is on PATH.
fn expose_object(skel: &std::path::Path) {
    let text = std::fs::read_to_string(skel).expect("generated skeleton is readable");
    let needle = "static DATA: [u8;";
    assert_eq!(
        text.matches(needle).count(),
        1,
        "libbpf-cargo changed how it embeds the object; update build.rs"
    );
    let text = text.replace(needle, "pub static DATA: [u8;");
    std::fs::write(skel, text).expect("generated skeleton is writable");
}
