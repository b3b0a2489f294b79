#!/usr/bin/env bash
# Build the arm64 kernel WITHOUT BTF used by the `arm64 6.1-nobtf` QEMU target,
# from Debian bookworm's linux-source-6.1 (fetched and SHA-256 pinned by fetch.sh),
# plus a full BTF file for it made offline with pahole.
#
# Usage: tests/qemu/build-kernel.sh [--no-host-deps] [ARCH KERNEL]
#   ARCH KERNEL: arm64 6.1-nobtf (the default; this script), or arm64|amd64 5.4
#   (or 5.4-nobtf), which this script hands to build-kernel-git.sh with all its
#   arguments (see there: Linux 5.4 from a git tree, with and without BTF).
#
# Config: `make ARCH=arm64 tinyconfig`, then every line of kernel/arm64-nobtf.config
# via scripts/config, then olddefconfig; the final .config must contain every line
# of the fragment (=n: unset) or the build fails. Build: make LLVM=1 -j$JOBS Image
# (clang/lld: Debian's gcc-aarch64-linux-gnu conflicts with gcc-multilib, clang
# does not, and the probe build needs clang anyway).
# Result in $CACHE/kernels/arm64-6.1-nobtf/ (CACHE=${KESTREL_QEMU_CACHE:-/var/cache/kestrel-qemu}):
#   Image, vmlinuz -> Image (what run.sh boots), vmlinux.btf (pahole -J), config,
#   release, deb.sha256 (the source .deb, checked against pins.sha256 by run.sh), key.
# key = sha256 of the fragment, the source .deb's sha256 and this script's build
# recipe (the lines between the RECIPE markers); a cached result with the same key
# is reused without building. The build tree is deleted afterwards.
# Env: KESTREL_QEMU_CACHE, KESTREL_QEMU_JOBS (default 2).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE=${KESTREL_QEMU_CACHE:-/var/cache/kestrel-qemu}
JOBS=${KESTREL_QEMU_JOBS:-2}
FRAGMENT=$HERE/kernel/arm64-nobtf.config
OUT=$CACHE/kernels/arm64-6.1-nobtf
HOST_DEPS=1
die() { echo "build-kernel.sh: ERROR: $*" >&2; exit 1; }
log() { echo "build-kernel.sh: $*" >&2; }
usage() { sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 64; }
args=()
for a in "$@"; do
    case $a in
        --no-host-deps) HOST_DEPS=0 ;;
        --cached) ;; # build-kernel-git.sh's
        -*) usage ;;
        *) args+=("$a") ;;
    esac
done
case ${#args[@]}:${args[*]} in
    0: | "2:arm64 6.1-nobtf" | "2:aarch64 6.1-nobtf") ;;
    2:*) exec "$HERE/build-kernel-git.sh" "$@" ;;
    *) usage ;;
esac

# The pinned source .deb (fetch.sh downloads and verifies it).
fetch_args=(); [ "$HOST_DEPS" = 1 ] || fetch_args=(--no-host-deps)
"$HERE/fetch.sh" "${fetch_args[@]}" || die "fetch.sh failed"
deb_file=$(awk '$1 !~ /^#/ && $2 ~ /^linux-source-6\.1_.*_all\.deb$/ { print $2; exit }' "$HERE/pins.sha256")
[ -n "$deb_file" ] || die "no linux-source-6.1 pin in pins.sha256"
# fetch.sh may have substituted the newest of the series for a dropped pin.
subs=$CACHE/substitutions
[ -f "$subs" ] || subs=/dev/null
sub=$(awk -v f="$deb_file" '$3 == f { s = $2 } END { print s }' "$subs")
DEB=$CACHE/debs/${sub:-$deb_file}
deb_sum=$(sha256sum "$DEB" | cut -d' ' -f1)
grep -q "^$deb_sum " "$HERE/pins.sha256" "$subs" ||
    die "$DEB matches neither its pin nor a fetch.sh substitution"

key=$( { cat "$FRAGMENT"; echo "$deb_sum"; sed -n '/^# RECIPE BEGIN/,/^# RECIPE END/p' "$0"; } \
       | sha256sum | cut -d' ' -f1)
if [ -f "$OUT/vmlinuz" ] && [ -s "$OUT/vmlinux.btf" ] && [ "$(cat "$OUT/key" 2>/dev/null)" = "$key" ]; then
    log "cached: $OUT (key $key, $(cat "$OUT/release"))"
    exit 0
fi

if [ "$HOST_DEPS" = 1 ]; then
    missing=()
    for p in clang lld llvm flex bison bc libssl-dev libelf-dev dwarves cpio kmod make xz-utils; do
        dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' || missing+=("$p")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        log "installing host packages: ${missing[*]}"
        "$HERE/../../scripts/apt-update.sh"
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
    fi
fi

t0=$(date +%s)
mkdir -p "$CACHE/kernels"
BUILD=$(mktemp -d "$CACHE/kernels/.build.XXXXXX")
trap 'rm -rf "$BUILD"' EXIT
log "unpacking $deb_file into $BUILD"
dpkg-deb --fsys-tarfile "$DEB" | tar -xO ./usr/src/linux-source-6.1.tar.xz | tar -xJ -C "$BUILD"
cd "$BUILD/linux-source-6.1"

# RECIPE BEGIN (hashed into the cache key)
export ARCH=arm64 LLVM=1
export KBUILD_BUILD_USER=kestrel KBUILD_BUILD_HOST=qemu KBUILD_BUILD_TIMESTAMP=2026-01-01
make -s tinyconfig
cfg_args=()
while IFS= read -r line; do
    case $line in
        "# CONFIG_"*" is not set") s=${line#"# CONFIG_"}; cfg_args+=(--disable "${s%" is not set"}") ;;
        '' | '#'*) ;;
        CONFIG_*=y) s=${line#CONFIG_}; cfg_args+=(--enable "${s%=y}") ;;
        CONFIG_*=\"*\") s=${line#CONFIG_}; v=${s#*=}; v=${v#\"}; cfg_args+=(--set-str "${s%%=*}" "${v%\"}") ;;
        CONFIG_*=*) s=${line#CONFIG_}; cfg_args+=(--set-val "${s%%=*}" "${s#*=}") ;;
        *) die "bad line in $FRAGMENT: $line" ;;
    esac
done < "$FRAGMENT"
scripts/config "${cfg_args[@]}"
make -s olddefconfig
bad=0
while IFS= read -r line; do
    case $line in
        "# CONFIG_"*" is not set") s=${line#"# "}; s=${s%" is not set"}
            if grep -q "^$s=" .config; then echo "  want unset: $(grep "^$s=" .config)" >&2; bad=1; fi ;;
        '' | '#'*) ;;
        *) grep -qxF "$line" .config || { echo "  missing: $line" >&2; bad=1; } ;;
    esac
done < "$FRAGMENT"
if grep -q '=m$' .config; then echo "  modules configured: $(grep '=m$' .config | tr '\n' ' ')" >&2; bad=1; fi
[ "$bad" = 0 ] || die "final .config lacks required settings (see above)"
make -s -j"$JOBS" Image
# Full BTF offline, with the pahole options the kernel's own BTF build would use
# (scripts/pahole-flags.sh: --btf_gen_floats for pahole >= 1.21, -j; a 6.1 tree
# encodes enum64, so no --skip_encoding_btf_enum64).
pahole -J -j --btf_gen_floats --btf_encode_detached=vmlinux.btf vmlinux
# RECIPE END

release=$(cat include/config/kernel.release)
rm -rf "$OUT"; mkdir -p "$OUT"
cp arch/arm64/boot/Image "$OUT/Image"
ln -s Image "$OUT/vmlinuz"
cp vmlinux.btf "$OUT/vmlinux.btf"
cp .config "$OUT/config"
echo "$release" > "$OUT/release"
echo "$deb_sum" > "$OUT/deb.sha256"
echo "$key" > "$OUT/key"
t1=$(date +%s)
log "built $release in $((t1 - t0)) s (wall, incl. unpack): $OUT" \
    "(Image $(stat -c %s "$OUT/Image") bytes, vmlinux.btf $(stat -c %s "$OUT/vmlinux.btf") bytes)"
