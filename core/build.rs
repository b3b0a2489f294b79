//! Compiles the probe (../bpf) for the target arch and generates its
//! skeleton; the record layouts in bpf/kestrel.h reach Rust only through that
//! skeleton. The link arguments of the
//! shipped binary are the kestrel package's (../build.rs).
use std::env;
use std::path::{Path, PathBuf};

use libbpf_cargo::SkeletonBuilder;

#[path = "build_embed.rs"]
mod embed;
use embed::embed_zlib;

/// (source, skeleton file): the probe, and the no-op floor for benchmarks
/// (built only with the `bench` feature).
const PROBES: [(&str, &str); 2] = [
    ("../bpf/kestrel.bpf.c", "kestrel.skel.rs"),
    ("../bpf/floor.bpf.c", "floor.skel.rs"),
];

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR is set by cargo"));
    let clang = env::var_os("KESTREL_CLANG").unwrap_or_else(|| "clang".into());
    let strip = env::var_os("KESTREL_LLVM_STRIP").unwrap_or_else(|| "llvm-strip".into());
    // The floor is bench-only: not built, so not shipped, without the feature.
    let bench = env::var_os("CARGO_FEATURE_BENCH").is_some();
    let args = clang_args(&clang);
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
            .clang_args(&args)
            .build()
            .unwrap_or_else(|e| panic!("building the probe {src} failed: {e:#}"));
        // -g makes clang emit BTF; the DWARF beside it is dead weight in the
        // binary (libbpf reads only .BTF and .BTF.ext, which strip -g keeps).
        // So are the basic-block labels (LBB*: no relocation names them),
        // a tenth of the object.
        let stripped = std::process::Command::new(&strip)
            .args(["-g", "--wildcard", "--strip-symbol=LBB*"])
            .arg(&obj)
            .status()
            .unwrap_or_else(|e| panic!("running {strip:?} (from llvm): {e}"));
        assert!(stripped.success(), "llvm-strip {} failed", obj.display());
        drop_line_info(&obj);
        builder
            .generate(out.join(skel))
            .unwrap_or_else(|e| panic!("generating the skeleton of {src} failed: {e:#}"));
        if skel == "kestrel.skel.rs" {
            if env::var("CARGO_CFG_TARGET_ARCH").as_deref() == Ok("arm") {
                check_arm32_jit(&obj);
            }
            embed_compressed(&out.join(skel), &obj);
        }
        println!("cargo:rerun-if-changed={src}");
    }
    check_headers(&clang, &args, &out);
    println!("cargo:rerun-if-env-changed=KESTREL_CLANG");
    println!("cargo:rerun-if-env-changed=KESTREL_LLVM_STRIP");
}

/// Every header in bpf/ compiles on its own (it includes what it uses), on
/// every arch the probe builds for, with the probe's own flags.
fn check_headers(clang: &std::ffi::OsStr, args: &[&str], out: &std::path::Path) {
    let inc = out.join("libbpf-include");
    std::fs::create_dir_all(inc.join("bpf")).expect("OUT_DIR is writable");
    for (name, text) in libbpf_rs::libbpf_sys::API_HEADERS {
        std::fs::write(inc.join("bpf").join(name), text).expect("OUT_DIR is writable");
    }
    let mut headers: Vec<PathBuf> = std::fs::read_dir("../bpf")
        .expect("bpf/ is readable")
        .map(|e| e.expect("bpf/ is readable").path())
        .filter(|p| p.extension().is_some_and(|e| e == "h"))
        .collect();
    headers.sort();
    // A header added later reruns this too.
    println!("cargo:rerun-if-changed=../bpf");
    for h in &headers {
        println!("cargo:rerun-if-changed={}", h.display());
        for arch in ["x86", "arm64", "arm"] {
            // An empty main file: a header's static functions are not "unused".
            let status = std::process::Command::new(clang)
                .args(["-target", "bpf", "-fsyntax-only", "-x", "c", "/dev/null"])
                .args(args)
                .arg(format!("-D__TARGET_ARCH_{arch}"))
                .arg("-I")
                .arg(&inc)
                .arg("-include")
                .arg(h)
                .status()
                .unwrap_or_else(|e| panic!("running {clang:?}: {e}"));
            assert!(
                status.success(),
                "{} does not compile on its own ({arch})",
                h.display()
            );
        }
    }
}

/// The ARM32 JIT (arch/arm/net/bpf_jit_32.c, 6.1) has no atomics, 64-bit
/// division or BPF-to-BPF calls: a program with one runs in the interpreter,
/// or does not load with the JIT always on. None may reach the arm probe.
fn check_arm32_jit(obj: &std::path::Path) {
    let open = libbpf_rs::ObjectBuilder::default()
        .open_file(obj)
        .unwrap_or_else(|e| panic!("opening {}: {e}", obj.display()));
    for prog in open.progs() {
        for (i, insn) in prog.insns().iter().enumerate() {
            let what = match (insn.code, insn.src_reg()) {
                (0xc3 | 0xdb, _) => "an atomic",
                (0x37 | 0x3f | 0x97 | 0x9f, _) => "a 64-bit division",
                (0x85, 1) => "a BPF-to-BPF call",
                (0x18, 4) => "a callback's address",
                _ => continue,
            };
            panic!(
                "{:?}: instruction {i} is {what}, which the ARM32 JIT cannot compile",
                prog.name()
            );
        }
    }
}

/// The clang whose warnings the probe is kept clean for (Debian 12's).
const PINNED_CLANG_MAJOR: u32 = 14;

/// -Werror only with the pinned clang: a newer one may warn about code that
/// is fine, and a user's build should not fail on that. Its warnings still
/// show (libbpf-cargo prints the compiler's output).
fn clang_args(clang: &std::ffi::OsStr) -> Vec<&'static str> {
    let mut args = vec!["-I../bpf", "-O2", "-g", "-Wall"];
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

/// The shipped probe is embedded zlib-compressed (160 KB -> ~35 KB of the
/// 2.0 MB budget): the skeleton's own copy of the object goes, and its
/// open reads `crate::capture::probe_object()`, which inflates the
/// compressed bytes once (with the zlib libbpf-sys already links).
fn embed_compressed(skel: &std::path::Path, obj: &std::path::Path) {
    let text = std::fs::read_to_string(skel).expect("generated skeleton is readable");
    let (open, data) = (
        "ObjectSkeletonConfigBuilder::new(&DATA)",
        "static DATA: [u8;",
    );
    assert!(
        text.matches(open).count() == 1 && text.matches(data).count() == 1,
        "libbpf-cargo changed how it embeds the object; update build.rs"
    );
    let mut start = text.find(data).expect("counted above");
    // Its attribute (a link_section) goes with it.
    let line = text[..start].trim_end().rfind('\n').map_or(0, |i| i + 1);
    if text[line..start].contains("link_section") {
        start = line;
    }
    let end = start + text[start..].find("];").expect("the array ends") + 2;
    let text = format!("{}{}", &text[..start], &text[end..]).replace(
        open,
        "ObjectSkeletonConfigBuilder::new(crate::capture::probe_object())",
    );
    std::fs::write(skel, text).expect("generated skeleton is writable");
    embed_zlib(obj, &obj.with_extension("o.z"), "PROBE_OBJECT_LEN");
}

/// Empties .BTF.ext's line_info (source lines for verifier logs, 60 % of
/// .BTF.ext): the length goes to 0 and the records to zeros, which the
/// embedded copy compresses to nothing. libbpf skips an empty line_info
/// (btf.c btf_ext_setup_info); func_info and CO-RE relocations stay.
/// KESTREL_KEEP_LINE_INFO=1 keeps them for reading a verifier log.
fn drop_line_info(obj: &Path) {
    println!("cargo:rerun-if-env-changed=KESTREL_KEEP_LINE_INFO");
    if env::var_os("KESTREL_KEEP_LINE_INFO").is_some() {
        return;
    }
    let mut b = std::fs::read(obj).expect("read the probe object");
    let u16_at = |b: &[u8], o: usize| u16::from_le_bytes([b[o], b[o + 1]]) as usize;
    let u32_at = |b: &[u8], o: usize| u32::from_le_bytes(b[o..o + 4].try_into().unwrap()) as usize;
    let u64_at = |b: &[u8], o: usize| u64::from_le_bytes(b[o..o + 8].try_into().unwrap()) as usize;
    // ELF64 little-endian, as clang's bpf target emits on every host here.
    assert!(
        b[..4] == *b"\x7fELF" && b[4] == 2 && b[5] == 1,
        "probe object: not ELF64 LE"
    );
    let (shoff, shentsize, shnum, shstrndx) = (
        u64_at(&b, 0x28),
        u16_at(&b, 0x3a),
        u16_at(&b, 0x3c),
        u16_at(&b, 0x3e),
    );
    let sh = |i: usize| shoff + i * shentsize;
    let strtab = u64_at(&b, sh(shstrndx) + 24);
    let ext = (0..shnum).map(sh).find(|&h| {
        let name = strtab + u32_at(&b, h);
        b[name..].starts_with(b".BTF.ext\0")
    });
    let Some(h) = ext else { return };
    let (off, size) = (u64_at(&b, h + 24), u64_at(&b, h + 32));
    assert!(
        size >= 24 && u16_at(&b, off) == 0xeb9f,
        "probe object: bad .BTF.ext"
    );
    let hdr_len = u32_at(&b, off + 4);
    let (li_off, li_len) = (u32_at(&b, off + 16), u32_at(&b, off + 20));
    let start = off + hdr_len + li_off;
    assert!(
        start + li_len <= off + size,
        "probe object: line_info past .BTF.ext"
    );
    b[start..start + li_len].fill(0);
    b[off + 20..off + 24].fill(0);
    std::fs::write(obj, b).expect("write the probe object");
}
