#!/usr/bin/env bash
# Kernel matrix for the real agent: boots Debian's arm64 6.1 and 5.10 and amd64
# 6.1 kernels under QEMU (TCG) and runs guest/kestrel.sh against the static
# musl binaries (known fork/exec/open workload, counter checks; see that script).
#
# Usage: tests/qemu/matrix.sh [--aarch64 BIN] [--x86_64 BIN] [ARCH:KERNEL ...]
#   --aarch64 BIN / --x86_64 BIN   use these static binaries instead of building
#   ARCH:KERNEL                    default: arm64:6.1 arm64:5.10 amd64:6.1
#
# Without a binary for an arch it builds one:
#   scripts/install-build-deps.sh [--aarch64]     (idempotent; installs what is missing)
#   cargo build --release --target <triple>-unknown-linux-musl
# (CARGO_TARGET_DIR is honoured: set it to keep these builds apart from another
# cargo using the repository's target/.) Then tests/qemu/fetch.sh (host tools and
# pinned kernels; a no-op when cached), then tests/qemu/run.sh per target.
#
# Prints one line per kernel (result, boot-to-result seconds, agent start to
# probe attached and to first snapshot in ms, fork/exec deltas) and exits 1 if
# any target fails, 64 on usage or setup errors.
# Env: KESTREL_QEMU_* as for run.sh; KESTREL_QEMU_MATRIX_OUT (default
# /tmp/kestrel-qemu-matrix) holds one run.sh output directory per target.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
OUT=${KESTREL_QEMU_MATRIX_OUT:-/tmp/kestrel-qemu-matrix}
BIN_arm64=
BIN_amd64=
TARGETS=()

usage() { sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 64; }
while [ $# -gt 0 ]; do
    case $1 in
        --aarch64|--arm64) [ $# -ge 2 ] || usage; BIN_arm64=$2; shift 2 ;;
        --x86_64|--amd64) [ $# -ge 2 ] || usage; BIN_amd64=$2; shift 2 ;;
        -h|--help) usage ;;
        -*) echo "matrix.sh: unknown option $1" >&2; usage ;;
        *:*) TARGETS+=("$1"); shift ;;
        *) echo "matrix.sh: bad target '$1' (ARCH:KERNEL)" >&2; usage ;;
    esac
done
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(arm64:6.1 arm64:5.10 amd64:6.1)

t_start=$(date +%s)
need_arm64=0 need_amd64=0
for t in "${TARGETS[@]}"; do
    case ${t%%:*} in
        arm64|aarch64) need_arm64=1 ;;
        amd64|x86_64) need_amd64=1 ;;
        *) echo "matrix.sh: unknown arch in '$t'" >&2; exit 64 ;;
    esac
done

# ------------------------------------------------------------------ binaries
build() { # build TRIPLE -> prints the binary path
    local triple=$1
    local dir=${CARGO_TARGET_DIR:-$REPO/target}
    echo "matrix.sh: cargo build --release --target $triple (target dir $dir)" >&2
    (cd "$REPO" && cargo build --release --locked --target "$triple" >&2)
    echo "$dir/$triple/release/kestrel"
}
if { [ $need_arm64 = 1 ] && [ -z "$BIN_arm64" ]; } || { [ $need_amd64 = 1 ] && [ -z "$BIN_amd64" ]; }; then
    deps=()
    [ $need_arm64 = 1 ] && [ -z "$BIN_arm64" ] && deps=(--aarch64)
    "$REPO/scripts/install-build-deps.sh" "${deps[@]}" >&2
fi
[ $need_arm64 = 1 ] && [ -z "$BIN_arm64" ] && BIN_arm64=$(build aarch64-unknown-linux-musl)
[ $need_amd64 = 1 ] && [ -z "$BIN_amd64" ] && BIN_amd64=$(build x86_64-unknown-linux-musl)
for a in arm64 amd64; do
    var=BIN_$a
    [ -n "${!var}" ] || continue
    [ -f "${!var}" ] || { echo "matrix.sh: no binary ${!var}" >&2; exit 64; }
    echo "matrix.sh: $a binary ${!var} ($(stat -c %s "${!var}") bytes)" >&2
done
t_built=$(date +%s)

# -------------------------------------------------------------- kernels, run
"$HERE/fetch.sh" >&2 || { echo "matrix.sh: fetch.sh failed" >&2; exit 64; }

mkdir -p "$OUT"
fails=0
lines=()
kv() { sed -n "s/^$1=\([^ ]*\).*/\1/p" "$2" | head -n1; }
for t in "${TARGETS[@]}"; do
    arch=${t%%:*} kver=${t#*:}
    case $arch in aarch64) arch=arm64 ;; x86_64) arch=amd64 ;; esac
    var=BIN_$arch
    dir=$OUT/$arch-$kver
    rc=0
    KESTREL_QEMU_OUTDIR=$dir "$HERE/run.sh" "$arch" "$kver" "${!var}" "$HERE/guest/kestrel.sh" \
        >/dev/null || rc=$?
    res=$(cat "$dir/result" 2>/dev/null || echo "NORESULT")
    verdict=PASS
    if [ "$rc" -ne 0 ]; then
        verdict="FAIL(run.sh=$rc: $res)"
    elif ! grep -qx 'result=PASS' "$dir/out.txt"; then
        verdict="FAIL(no result=PASS in out.txt)"
    elif [ ! -s "$dir/files/snapshot.json" ]; then
        verdict="FAIL(no files/snapshot.json)"
    fi
    [ "$verdict" = PASS ] || fails=$((fails + 1))
    wall=$(sed -n 's/.*wall_seconds=\([^ ]*\).*/\1/p' "$dir/timing" 2>/dev/null)
    up=$(sed -n 's/.*guest_uptime=\([^ ]*\).*/\1/p' "$dir/timing" 2>/dev/null)
    lines+=("$(printf '%-11s %-17s %-5s boot-to-result %6ss (guest %5ss)  attach %5sms  first-snapshot %5sms  threads +%s/%s  execs +%s/%s' \
        "$arch:$kver" "$(kv kernel "$dir/out.txt")" "${verdict%%(*}" "${wall:-?}" "${up:-?}" \
        "$(kv start_to_attach_ms "$dir/out.txt")" "$(kv start_to_first_snapshot_ms "$dir/out.txt")" \
        "$(kv d_n_added_threads "$dir/out.txt")" "$(sed -n 's/^d_n_added_threads=[^ ]* expected=\([0-9]*\).*/\1/p' "$dir/out.txt")" \
        "$(kv d_sched_p_exec_run_cnt "$dir/out.txt")" "$(sed -n 's/^d_sched_p_exec_run_cnt=[^ ]* expected=\([0-9]*\).*/\1/p' "$dir/out.txt")")")
    [ "$verdict" = PASS ] || lines+=("            $verdict  (console: $dir/console.log)")
done
t_end=$(date +%s)

echo
printf '%s\n' "${lines[@]}"
echo "matrix: $((${#TARGETS[@]} - fails))/${#TARGETS[@]} passed; build $((t_built - t_start))s, total $((t_end - t_start))s; outputs in $OUT"
[ "$fails" -eq 0 ]
