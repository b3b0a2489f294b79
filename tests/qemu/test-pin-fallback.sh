#!/usr/bin/env bash
# fetch.sh when the archive has dropped a pinned version: it must take the
# newest package of the same series (apt verifies it against the signed
# index), log the substitution, record it for run.sh, and keep the pin.
# Works on a scratch cache hard-linked from the real one, so only the
# faked package is downloaded.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REAL=${KESTREL_QEMU_CACHE:-/var/cache/kestrel-qemu}
SCRATCH=$(mktemp -d /tmp/kestrel-pin-fallback.XXXXXX)
trap 'rm -rf "$SCRATCH"' EXIT

"$HERE/fetch.sh" --no-host-deps >/dev/null 2>&1 || "$HERE/fetch.sh" >/dev/null
mkdir -p "$SCRATCH/cache"
cp -al "$REAL/debs" "$SCRATCH/cache/"
[ -d "$REAL/apt" ] && cp -a "$REAL/apt" "$SCRATCH/cache/"
# A version of the armhf busybox that never existed: "deb12u1" -> "deb12u0".
sed 's/\(busybox-static_[^ ]*\)deb12u1\(+b1_armhf\.deb\)/\1deb12u0\2/' "$HERE/pins.sha256" \
    > "$SCRATCH/pins.sha256"
grep -q 'deb12u0+b1_armhf' "$SCRATCH/pins.sha256" || { echo "FAIL: could not fake a pin" >&2; exit 1; }
cp "$SCRATCH/pins.sha256" "$SCRATCH/pins.before"

KESTREL_QEMU_CACHE=$SCRATCH/cache KESTREL_QEMU_PINS=$SCRATCH/pins.sha256 \
    "$HERE/fetch.sh" --no-host-deps > "$SCRATCH/log" 2>&1 || { cat "$SCRATCH/log" >&2; exit 1; }

fail() { echo "FAIL: $*" >&2; cat "$SCRATCH/log" >&2; exit 1; }
grep -q 'SUBSTITUTION: pinned busybox-static_.*deb12u0+b1_armhf.deb is gone' "$SCRATCH/log" ||
    fail "no substitution logged"
grep -q 'deb12u0+b1_armhf.deb$' "$SCRATCH/cache/substitutions" || fail "substitution not recorded"
[ -x "$SCRATCH/cache/busybox/armhf/busybox" ] || fail "substituted busybox not extracted"
cmp -s "$SCRATCH/pins.sha256" "$SCRATCH/pins.before" || fail "the pins file changed"
echo "pin fallback: PASS ($(grep SUBSTITUTION "$SCRATCH/log" | sed 's/.*using //'))"
