#!/usr/bin/env bash
# Deployment test under QEMU: `kestrel check` (good host, BTF hidden, tracefs
# unmounted) and the BusyBox init script, on Debian's arm64 6.1 kernel.
# Usage: tests/qemu/deploy.sh AARCH64_STATIC_BINARY [ARCH KERNEL]
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
bin=${1:?usage: deploy.sh STATIC_BINARY [ARCH KERNEL]}
arch=${2:-arm64}
kver=${3:-6.1}
"$HERE/fetch.sh" >&2
out=${KESTREL_QEMU_DEPLOY_OUT:-/tmp/kestrel-qemu-deploy}
rm -rf "$out"
rc=0
KESTREL_QEMU_OUTDIR=$out "$HERE/run.sh" "$arch" "$kver" "$bin" "$HERE/guest/deploy.sh" \
    "$REPO/configs/init/busybox/kestrel:/etc/init.d/kestrel" >/dev/null || rc=$?
grep '^deploy:' "$out/console.log" || true
echo "deploy ($arch $kver): $(cat "$out/result" 2>/dev/null || echo NORESULT)"
exit "$rc"
