#!/bin/sh
# Falco's capture floor for the side-by-side bench: falcosecurity/libs' `scap-open` example with
# the modern_bpf engine, built without Docker from Debian 12 packages (cmake clang llvm bpftool
# libbpf-dev libelf-dev zlib1g-dev uthash-dev pkg-config make g++).
#
#   scripts/build-scap-open.sh [LIBS_SOURCE_DIR]    (default /opt/src/libs)
#
# Prints the binary's path on stdout (progress on stderr). Cached under
# /var/cache/kestrel-bench/ (KESTREL_BENCH_CACHE) by the content of the source tree, of this
# script and of the toolchain's package versions: a second run with the same inputs builds
# nothing. A missing source tree is one line and exit 2.
#
# The source tree is copied, never touched. Two adjustments are made on the copy's build, both
# to fit this host and Debian 12, neither on the measured path:
# - libbpf-dev 1.1's bpf_tracing.h has no PT_REGS_PARM6_CORE_SYSCALL (a later libbpf's): the
#   build sees a copy of the system's bpf/ headers with that one macro added (x86_64: r9,
#   arm64: regs[5]), through LIBBPF_INCLUDE. The library linked is still the system's libbpf.
# - libpman fails outright when it cannot raise RLIMIT_MEMLOCK to infinity, which needs
#   CAP_SYS_RESOURCE (absent here, even as root). Since Linux 5.11 BPF memory is charged to the
#   memory cgroup and the limit is not consulted, so the copy logs the failure and goes on.
# - scap-open asks for BPF iterators (the start-up task and file dump, not the capture path); on
#   Linux 6.18 the verifier rejects 0.25.4's `dump_task` (bpf_d_path on an untrusted pointer,
#   EACCES) and the whole skeleton fails to load. The copy's scap-open sets disable_iterators,
#   libpman's own switch, so those two programs are not loaded.
# - Three capture programs do not load on this kernel with Debian 12's clang 14: recvmmsg_x and
#   sendmmsg_x pass the verifier's 1M-instruction limit (E2BIG), signal_deliver is rejected
#   (EACCES). The two tail-called ones are left out of the build (MODERN_BPF_EXCLUDE_PROGS,
#   which libpman supports); signal_deliver is not autoloaded and its attach is a no-op. None
#   of the three is on the rig's mix (no recvmmsg/sendmmsg, no signal delivered).
# - libpman reads libbpf's private ring_buffer struct, as laid out by libbpf >= 1.3 (the version
#   libs bundles: `struct ring **rings`); libbpf 1.1 has `struct ring *rings`, an array. With
#   libbpf < 1.3 the copy declares and indexes the array (scap-open otherwise crashes on the
#   first read: a NULL ring).
# libs' libsinsp is skipped (HAVE_LIBSINSP=ON): scap-open needs only libscap.
set -eu
src=${1:-/opt/src/libs}
cache=${KESTREL_BENCH_CACHE:-/var/cache/kestrel-bench}
if [ ! -f "$src/userspace/libscap/examples/01-open/scap_open.c" ]; then
    echo "build-scap-open: no falcosecurity/libs source tree at $src (git archive 0.25.4 | tar -x -C $src; see BENCHMARKS.md)" >&2
    exit 2
fi
missing=
for tool in cmake clang llc bpftool make cc c++ pkg-config; do
    command -v "$tool" >/dev/null 2>&1 || missing="$missing $tool"
done
for header in bpf/libbpf.h gelf.h zlib.h uthash.h; do
    [ -f "/usr/include/$header" ] || missing="$missing $header"
done
if [ -n "$missing" ]; then
    echo "build-scap-open: missing$missing (apt-get install cmake clang llvm bpftool libbpf-dev libelf-dev zlib1g-dev uthash-dev pkg-config make g++)" >&2
    exit 1
fi

here=$(cd "$(dirname "$0")" && pwd)/$(basename "$0")
versions=$(dpkg-query -W -f '${Package} ${Version}\n' clang bpftool libbpf-dev libelf-dev cmake 2>/dev/null || true)
key=$({
    cat "$here"
    echo "$versions"
    uname -m
    (cd "$src" && find . -type f | LC_ALL=C sort | while IFS= read -r f; do sha256sum "$f"; done)
} | sha256sum | cut -c1-16)
out=$cache/scap-open-$key
if [ -x "$out/scap-open" ]; then
    echo "$out/scap-open"
    exit 0
fi

mkdir -p "$cache"
work=$cache/work-$key
rm -rf "$work"
mkdir -p "$work/include" "$work/build"
cp -a "$src" "$work/src"

# Each adjustment first checks that its pattern appears as often as this
# script expects; a changed source tree stops the build with one line.
expect() { # FILE PATTERN COUNT
    n=$(grep -c -- "$2" "$1" || true)
    [ "$n" = "$3" ] || {
        echo "build-scap-open: $1 changed shape ('$2' seen $n times, expected $3): adjust this script" >&2
        exit 1
    }
}

# RLIMIT_MEMLOCK: log, do not fail (see above).
conf=$work/src/userspace/libpman/src/configuration.c
expect "$conf" 'unable to bump RLIMIT_MEMLOCK' 1
sed -i '/unable to bump RLIMIT_MEMLOCK/{n;s|return -1;|/* kestrel bench: memcg-charged BPF, go on */|}' "$conf"
grep -q 'kestrel bench: memcg-charged BPF' "$conf" || {
    echo "build-scap-open: RLIMIT_MEMLOCK adjustment did not apply to $conf" >&2
    exit 1
}

# BPF iterators off in scap-open (see above), also exactly once.
open_c=$work/src/userspace/libscap/examples/01-open/scap_open.c
expect "$open_c" 'modern_bpf_params.disable_iterators = false;' 1
sed -i 's/modern_bpf_params.disable_iterators = false;/modern_bpf_params.disable_iterators = true;/' "$open_c"

# signal_deliver: not loaded, not attached (see above).
life_c=$work/src/userspace/libpman/src/lifecycle.c
progs_c=$work/src/userspace/libpman/src/programs.c
expect "$life_c" '^int pman_prepare_progs_before_loading() {$' 1
expect "$progs_c" '^int pman_attach_signal_deliver() {$' 1
sed -i '/^int pman_prepare_progs_before_loading() {$/a\
\tdisable_prog_autoloading("signal_deliver"); /* kestrel bench: fails the verifier here */' "$life_c"
sed -i '/^int pman_attach_signal_deliver() {$/a\
\tif(bpf_program__fd(g_state.skel->progs.signal_deliver) < 0) { return 0; } /* kestrel bench */' "$progs_c"

# libbpf < 1.3: its ring_buffer holds an array of rings, not an array of pointers (see above).
major=$(sed -n 's/^#define LIBBPF_MAJOR_VERSION \([0-9]*\)$/\1/p' /usr/include/bpf/libbpf_version.h)
minor=$(sed -n 's/^#define LIBBPF_MINOR_VERSION \([0-9]*\)$/\1/p' /usr/include/bpf/libbpf_version.h)
if [ "${major:-0}" -lt 1 ] || { [ "$major" = 1 ] && [ "${minor:-0}" -lt 3 ]; }; then
    defs=$work/src/userspace/libpman/src/ringbuffer_definitions.h
    ring_c=$work/src/userspace/libpman/src/ringbuffer.c
    expect "$defs" '^	struct ring \*\*rings;$' 1
    expect "$ring_c" 'rb->rings\[' 2
    sed -i 's/^	struct ring \*\*rings;$/	struct ring *rings; \/* kestrel bench: libbpf < 1.3 *\//' "$defs"
    sed -i 's/rb->rings\[\([a-z_.]*\)\]/\&rb->rings[\1]/' "$ring_c"
fi

# bpf/ headers: the system's, with PT_REGS_PARM6_CORE_SYSCALL when libbpf lacks it.
cp -a /usr/include/bpf "$work/include/"
if ! grep -q PT_REGS_PARM6_CORE_SYSCALL /usr/include/bpf/bpf_tracing.h; then
    cat >>"$work/include/bpf/bpf_tracing.h" <<'EOF'

/* Added by kestrel's scripts/build-scap-open.sh: libbpf 1.1 has no PARM6 for syscalls. */
#ifndef PT_REGS_PARM6_CORE_SYSCALL
#if defined(bpf_target_x86)
#define PT_REGS_PARM6_CORE_SYSCALL(x) BPF_CORE_READ(__PT_REGS_CAST(x), r9)
#elif defined(bpf_target_arm64)
#define PT_REGS_PARM6_CORE_SYSCALL(x) BPF_CORE_READ(__PT_REGS_CAST(x), regs[5])
#endif
#endif
EOF
fi

echo "build-scap-open: building in $work/build (log: $work/build.log)" >&2
if ! (
    cd "$work/build"
    cmake -DCMAKE_BUILD_TYPE=Release -DUSE_BUNDLED_DEPS=OFF -DHAVE_LIBSINSP=ON \
        -DBUILD_LIBSCAP_MODERN_BPF=ON -DBUILD_LIBSCAP_GVISOR=OFF -DBUILD_DRIVER=OFF \
        -DBUILD_BPF=OFF -DCREATE_TEST_TARGETS=OFF -DENABLE_DRIVERS_TESTS=OFF \
        -DLIBBPF_INCLUDE="$work/include" -DMODERN_BPF_EXCLUDE_PROGS='^(recvmmsg|sendmmsg)$' \
        "$work/src"
    make -j"${JOBS:-2}" scap-open
) >"$work/build.log" 2>&1; then
    tail -n 20 "$work/build.log" >&2
    echo "build-scap-open: build failed; full log in $work/build.log" >&2
    exit 1
fi
mkdir -p "$out"
cp "$work/build/libscap/examples/01-open/scap-open" "$out/scap-open.tmp"
cp "$work/build.log" "$out/build.log"
mv "$out/scap-open.tmp" "$out/scap-open"
rm -rf "$work"
echo "$out/scap-open"
