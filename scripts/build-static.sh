#!/bin/sh
# The shipped static binary for one musl target: scripts/build-static.sh TRIPLE [cargo args].
# (x86_64-unknown-linux-musl, aarch64-unknown-linux-musl, armv7-unknown-linux-musleabihf.)
#
# With rustup's rust-src (scripts/install-build-deps.sh adds it) the standard library is built
# with the binary, without its `backtrace` feature: no DWARF symbolizer (gimli, addr2line,
# miniz: ~230 KB) in a binary that ships stripped, so it could print no names anyway. A panic
# still prints its message, without its file and line (-Zlocation-detail=none: ~50 KB of
# location records). The standard library's `optimize_for_size` feature picks core's smaller
# sorts and integer printing (~62 KB; nothing on the per-event path sorts or prints: the
# agent's CPU over the mix and a /metrics scrape measured the same, BENCHMARKS.md). All three
# need nightly-only flags, enabled on the stable toolchain with RUSTC_BOOTSTRAP=1 for this one
# build; without rust-src the build falls back to the prebuilt standard library, and says so
# (a larger binary, nothing else).
set -eu
triple=${1:?usage: scripts/build-static.sh TRIPLE [cargo args]}
shift
cd "$(dirname "$0")/.."
sysroot=$(rustc --print sysroot)
if [ -d "$sysroot/lib/rustlib/src/rust/library" ]; then
    RUSTC_BOOTSTRAP=1 exec cargo build --release --locked --target "$triple" \
        -Z build-std=std,panic_abort -Z build-std-features=optimize_for_size \
        --config "target.$triple.rustflags=['-Zlocation-detail=none']" "$@"
fi
case $triple in
armv7-*)
    # rustup ships no std for armv7 musl here: it is built from rust-src or not at all.
    echo "build-static: $triple needs rust-src (rustup component add rust-src)" >&2
    exit 1
    ;;
esac
echo "build-static: rust-src missing (rustup component add rust-src): prebuilt std, ~300 KB larger" >&2
exec cargo build --release --locked --target "$triple" "$@"
