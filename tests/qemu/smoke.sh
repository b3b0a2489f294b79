#!/usr/bin/env bash
# Smoke test for the QEMU harness: boots every fetched kernel with a tiny static
# binary and guest/smoke.sh, checks the KESTREL-OUT / kestrel-put channels and
# prints boot-to-result times. Also runs the 32-bit busybox (armhf on arm64,
# i386 on amd64) in the guest; on a *-nobtf kernel it checks BTF is absent.
#
# Usage: tests/qemu/smoke.sh [ARCH:KERNEL ...]   (default: arm64:6.1 arm64:5.10 amd64:6.1;
#        arm64:6.1-nobtf needs tests/qemu/build-kernel.sh first, ARCH:5.4 and ARCH:5.4-nobtf
#        tests/qemu/build-kernel.sh ARCH 5.4)
# Env:   KESTREL_QEMU_* as for run.sh; KESTREL_QEMU_SMOKE_OUT (default /tmp/kestrel-qemu-smoke)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE=${KESTREL_QEMU_CACHE:-/var/cache/kestrel-qemu}
OUT=${KESTREL_QEMU_SMOKE_OUT:-/tmp/kestrel-qemu-smoke}
if [ $# -gt 0 ]; then TARGETS=("$@"); else TARGETS=(arm64:6.1 arm64:5.10 amd64:6.1); fi
mkdir -p "$OUT"

# binary: static musl build of src/hello.c if a compiler is around, else busybox
build_bin() {
    local arch=$1 cc=""
    case $arch in
        arm64) command -v aarch64-linux-musl-gcc >/dev/null && cc=aarch64-linux-musl-gcc ;;
        amd64) for c in x86_64-linux-musl-gcc musl-gcc; do
                   command -v "$c" >/dev/null && { cc=$c; break; }
               done ;;
    esac
    if [ -n "$cc" ] && "$cc" -static -Os -s -o "$OUT/hello-$arch" "$HERE/src/hello.c" 2>/dev/null; then
        echo "$OUT/hello-$arch"
    else
        echo "$CACHE/busybox/$arch/busybox"
    fi
}

fails=0
summary=()
for t in "${TARGETS[@]}"; do
    arch=${t%%:*} kver=${t#*:}
    bin=$(build_bin "$arch")
    dir=$OUT/$arch-$kver
    mkdir -p "$dir"
    bb32=armhf
    [ "$arch" = amd64 ] && bb32=i386
    echo "KT_COMPAT=/opt/compat/busybox" > "$dir/test.env"
    case $kver in *-nobtf) echo "KT_BTF=none" >> "$dir/test.env" ;; esac
    rc=0
    KESTREL_QEMU_OUTDIR=$dir "$HERE/run.sh" "$arch" "$kver" "$bin" "$HERE/guest/smoke.sh" \
        "$CACHE/busybox/$bb32/busybox:/opt/compat/busybox" "$dir/test.env:/etc/kestrel-test.env" \
        >/dev/null || rc=$?
    verdict=PASS
    if [ "$rc" -ne 0 ]; then
        verdict="FAIL(run.sh=$rc)"
    elif ! grep -q '^{"kernel":"[^"]*","machine":"[^"]*","btf_bytes":[0-9]*}$' "$dir/out.txt"; then
        verdict="FAIL(out.txt)"
    elif ! cmp -s "$dir/out.txt" "$dir/files/snapshot.json"; then
        verdict="FAIL(files/snapshot.json)"
    fi
    [ "$verdict" = PASS ] || fails=$((fails + 1))
    release=$(sed -n 's/^smoke: uname -r: //p' "$dir/console.log" | head -n1)
    summary+=("$(printf '%-11s %-18s %-6s %s' "$arch:$kver" "${release:-?}" "$verdict" "$(cat "$dir/timing" 2>/dev/null)")")
done

echo
printf '%-11s %-18s %-6s %s\n' TARGET "UNAME -R" RESULT TIMING
printf '%s\n' "${summary[@]}"
echo "(outputs in $OUT)"
[ "$fails" -eq 0 ]
