//! Compiles the probe for the target arch and generates its skeleton; the
//! record layouts in bpf/kestrel.h reach Rust only through that skeleton.
use std::env;
use std::path::PathBuf;

use libbpf_cargo::SkeletonBuilder;

/// (source, skeleton file): the probe, and the no-op floor for benchmarks.
const PROBES: [(&str, &str); 2] = [
    ("bpf/kestrel.bpf.c", "kestrel.skel.rs"),
    ("bpf/floor.bpf.c", "floor.skel.rs"),
];

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR is set by cargo"));
    let clang = env::var_os("KESTREL_CLANG").unwrap_or_else(|| "clang".into());
    let strip = env::var_os("KESTREL_LLVM_STRIP").unwrap_or_else(|| "llvm-strip".into());
    for (src, skel) in PROBES {
        let obj = out.join(skel.replace(".skel.rs", ".bpf.o"));
        let mut builder = SkeletonBuilder::new();
        builder
            .source(src)
            .obj(&obj)
            .clang(&clang)
            .clang_args(["-Ibpf", "-O2", "-g", "-Wall", "-Werror"])
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
    ] {
        println!("cargo:rerun-if-changed={f}");
    }
    println!("cargo:rerun-if-env-changed=KESTREL_CLANG");
    println!("cargo:rerun-if-env-changed=KESTREL_LLVM_STRIP");
}

/// The skeleton embeds the object as a private `DATA`; `kestrel export-probe`
/// writes those exact bytes out (for `bpftool gen min_core_btf`), so make it
/// reachable instead of embedding a second copy.
fn expose_object(skel: &std::path::Path) {
    let text = std::fs::read_to_string(skel).expect("generated skeleton is readable");
    let needle = "\n    static DATA: [u8;";
    assert_eq!(
        text.matches(needle).count(),
        1,
        "libbpf-cargo changed how it embeds the object; update build.rs"
    );
    let text = text.replace(needle, "\n    pub static DATA: [u8;");
    std::fs::write(skel, text).expect("generated skeleton is writable");
}
