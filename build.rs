//! Compiles the probe for the target arch and generates its skeleton; the
//! record layouts in bpf/kestrel.h reach Rust only through that skeleton.
use std::env;
use std::path::PathBuf;

use libbpf_cargo::SkeletonBuilder;

const SRC: &str = "bpf/kestrel.bpf.c";

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR is set by cargo"));
    let clang = env::var_os("KESTREL_CLANG").unwrap_or_else(|| "clang".into());
    SkeletonBuilder::new()
        .source(SRC)
        .clang(clang)
        .clang_args(["-Ibpf", "-O2", "-g", "-Wall", "-Werror"])
        .build_and_generate(out.join("kestrel.skel.rs"))
        .unwrap_or_else(|e| panic!("building the probe {SRC} failed: {e:#}"));
    for f in ["bpf/kestrel.bpf.c", "bpf/kestrel.h", "bpf/kernel_types.h"] {
        println!("cargo:rerun-if-changed={f}");
    }
    println!("cargo:rerun-if-env-changed=KESTREL_CLANG");
}
