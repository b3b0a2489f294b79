#!/usr/bin/env bash
# Build the kernels of the QEMU targets `ARCH:5.4` (BTF built in, as in Ubuntu
# 20.04's 5.4) and `ARCH:5.4-nobtf` from a git repository holding a 5.4 tree: no
# Debian suite reachable here has a 5.4 kernel. One build makes both kernels, and
# on amd64 a third, `amd64:5.4-noia32` (no BTF, no IA32_EMULATION).
#
# Usage: tests/qemu/build-kernel-git.sh [--no-host-deps] [--cached] ARCH VERSION
#   ARCH      arm64|aarch64 or amd64|x86_64
#   VERSION   5.4 (or 5.4-nobtf, 5.4-noia32: the same build)
#   --cached  build nothing: exit 0 if both kernels are cached under the current
#             key, else say why on one line and exit 3
#   --no-host-deps  do not apt-get install missing host packages
#
# Source: the first commit listed for VERSION in kernel/sources that the git
# repository $KESTREL_QEMU_LINUX_GIT (default $CACHE/src/linux-VERSION.git, bare or
# not) holds; blobs the repository lacks (a partial mirror) are left out, counted
# and named, and the build fails if it needs one.
# Config: `make tinyconfig`, then kernel/linux-5.4.config, kernel/linux-5.4-ARCH.config
# and kernel/linux-5.4-nobtf.config via scripts/config, then olddefconfig; every
# line must be in the final .config (=y set, "is not set" unset) and nothing =m.
# Build (-j$KESTREL_QEMU_JOBS, default 2): arm64 `Image` with gcc-aarch64-linux-gnu
# (CROSS_COMPILE=aarch64-linux-gnu-, the cross gcc the agent's own aarch64 build
# uses), amd64 `bzImage` with the host gcc; then
# `pahole -J --skip_encoding_btf_enum64 --btf_encode_detached=vmlinux.btf vmlinux`.
# Then kernel/linux-5.4-btf.config (DEBUG_INFO_BTF=y, other LOCALVERSION) and an
# incremental rebuild (on amd64 one more after it with linux-5.4-noia32.config in
# place of the BTF fragment and without the arch fragment's ia32 line, its BTF
# from pahole as for nobtf); the kernel's own link runs `$PAHOLE -J`, here a wrapper
# adding --skip_encoding_btf_enum64 (pahole 1.24 would otherwise emit ENUM64,
# which no 5.4 build ever had). Both BTFs must hold only kinds 5.4 knows (INT ..
# DATASEC; checked with bpftool).
# Results (CACHE=${KESTREL_QEMU_CACHE:-/var/cache/kestrel-qemu}):
#   kernels/ARCH-VERSION/        BTF built in (/sys/kernel/btf/vmlinux)
#   kernels/ARCH-VERSION-nobtf/  no BTF in the kernel
#   kernels/amd64-VERSION-noia32/ no BTF, no ia32 syscall entry
# each with Image (arm64) or bzImage (amd64), vmlinuz -> it (what run.sh boots),
# vmlinux.btf (the BTF: pahole's file, or the kernel's .BTF section), config,
# release, source ("git COMMIT": run.sh boots it only if kernel/sources lists the
# commit), stats (times, sizes) and key. key = sha256 of ARCH, VERSION, the four
# fragments, the commit id and this script's build recipe (the lines between the
# RECIPE markers); with an unchanged key nothing is built. The build tree is
# deleted afterwards.
# Exit: 0 built or cached, 1 build failed, 3 neither cached nor buildable (one
# line on stderr saying why), 64 usage.
# Env: KESTREL_QEMU_CACHE, KESTREL_QEMU_JOBS, KESTREL_QEMU_LINUX_GIT,
# KESTREL_QEMU_KEEP_BUILD=1 (keep the build tree when the build fails).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE=${KESTREL_QEMU_CACHE:-/var/cache/kestrel-qemu}
JOBS=${KESTREL_QEMU_JOBS:-2}
HOST_DEPS=1 CACHED_ONLY=0
die() { echo "build-kernel-git.sh: ERROR: $*" >&2; exit 1; }
log() { echo "build-kernel-git.sh: $*" >&2; }
usage() { sed -n '2,46p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 64; }
args=()
while [ $# -gt 0 ]; do
    case $1 in
        --no-host-deps) HOST_DEPS=0 ;;
        --cached) CACHED_ONLY=1 ;;
        -*) usage ;;
        *) args+=("$1") ;;
    esac
    shift
done
[ ${#args[@]} = 2 ] || usage
case ${args[0]} in
    arm64|aarch64) ARCH=arm64 ;;
    amd64|x86_64) ARCH=amd64 ;;
    *) usage ;;
esac
VERSION=${args[1]%-nobtf}
VERSION=${VERSION%-noia32}
case $VERSION in
    5.4) ;;
    *) echo "build-kernel-git.sh: no recipe for kernel '${args[1]}' (5.4, 5.4-nobtf, 5.4-noia32)" >&2; exit 64 ;;
esac
SOURCES=$HERE/kernel/sources
FRAG_COMMON=$HERE/kernel/linux-$VERSION.config
FRAG_ARCH=$HERE/kernel/linux-$VERSION-$ARCH.config
FRAG_NOBTF=$HERE/kernel/linux-$VERSION-nobtf.config
FRAG_BTF=$HERE/kernel/linux-$VERSION-btf.config
FRAG_NOIA32=$HERE/kernel/linux-$VERSION-noia32.config
OUT_BTF=$CACHE/kernels/$ARCH-$VERSION
OUT_NOBTF=$CACHE/kernels/$ARCH-$VERSION-nobtf
OUT_NOIA32=$CACHE/kernels/$ARCH-$VERSION-noia32
OUTS=("$OUT_BTF" "$OUT_NOBTF")
[ "$ARCH" = amd64 ] && OUTS+=("$OUT_NOIA32")
GITDIR=${KESTREL_QEMU_LINUX_GIT:-$CACHE/src/linux-$VERSION.git}
[ -d "$GITDIR/.git" ] && GITDIR=$GITDIR/.git

# The commits kernel/sources lists for VERSION, in order.
mapfile -t COMMITS < <(awk -v v="$VERSION" '$1 == v && $2 ~ /^[0-9a-f]{40}$/ { print $2 }' "$SOURCES")
[ ${#COMMITS[@]} -gt 0 ] || die "kernel/sources lists no commit for $VERSION"

key_of() { # key_of COMMIT
    { echo "$ARCH $VERSION"; cat "$FRAG_COMMON" "$FRAG_ARCH" "$FRAG_NOBTF" "$FRAG_BTF"; echo "$1"
      sed -n '/^# RECIPE BEGIN/,/^# RECIPE END/p' "$0"
      if [ "$ARCH" = amd64 ]; then
          cat "$FRAG_NOIA32"; sed -n '/^# NOIA32 RECIPE BEGIN/,/^# NOIA32 RECIPE END/p' "$0"
      fi; } | sha256sum | cut -d' ' -f1
}
# cache_state: prints "ok" or why the cache does not serve.
cache_state() {
    local d c
    for d in "${OUTS[@]}"; do
        if [ ! -f "$d/vmlinuz" ] || [ ! -s "$d/vmlinux.btf" ] || [ ! -f "$d/key" ]; then
            echo "not cached ($d)"; return
        fi
        c=$(sed -n 's/^git \([0-9a-f]\{40\}\)$/\1/p' "$d/source" 2>/dev/null)
        printf '%s\n' "${COMMITS[@]}" | grep -qx "${c:-none}" ||
            { echo "cached $d is from commit ${c:-?}, which kernel/sources does not list"; return; }
        [ "$(cat "$d/key")" = "$(key_of "$c")" ] ||
            { echo "cached $d was built by another recipe or config (stale key)"; return; }
    done
    echo ok
}
state=$(cache_state)
if [ "$state" = ok ]; then
    log "cached: $(for d in "${OUTS[@]}"; do printf '%s (%s) ' "$d" "$(cat "$d/release")"; done)"
    exit 0
fi
if [ "$CACHED_ONLY" = 1 ]; then
    echo "build-kernel-git.sh: $ARCH $VERSION: $state" >&2
    exit 3
fi

# Buildable? A repository that holds a listed commit.
if ! git --git-dir="$GITDIR" rev-parse --git-dir >/dev/null 2>&1; then
    echo "build-kernel-git.sh: cannot build $ARCH $VERSION: $state, and no git repository of a $VERSION tree at $GITDIR (set KESTREL_QEMU_LINUX_GIT; commits in tests/qemu/kernel/sources)" >&2
    exit 3
fi
COMMIT=
for c in "${COMMITS[@]}"; do
    if git --git-dir="$GITDIR" cat-file -e "$c^{commit}" 2>/dev/null; then COMMIT=$c; break; fi
done
if [ -z "$COMMIT" ]; then
    echo "build-kernel-git.sh: cannot build $ARCH $VERSION: $state, and $GITDIR has none of the commits tests/qemu/kernel/sources lists for $VERSION" >&2
    exit 3
fi
key=$(key_of "$COMMIT")

if [ "$HOST_DEPS" = 1 ]; then
    pkgs=(gcc make flex bison bc libssl-dev libelf-dev dwarves bpftool cpio kmod xz-utils git)
    # gcc-aarch64-linux-gnu: also what scripts/install-build-deps.sh --aarch64 installs.
    [ "$ARCH" = arm64 ] && pkgs+=(gcc-aarch64-linux-gnu binutils-aarch64-linux-gnu)
    missing=()
    for p in "${pkgs[@]}"; do
        dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' || missing+=("$p")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        case " ${missing[*]} " in
            *" gcc-aarch64-linux-gnu "*)
                # Debian makes it conflict with gcc-multilib; apt would remove that.
                if dpkg-query -W -f='${Status}\n' gcc-multilib 2>/dev/null | grep -q '^install ok installed$'; then
                    die "gcc-aarch64-linux-gnu is needed and conflicts with the installed gcc-multilib; not replacing it"
                fi ;;
        esac
        log "installing host packages: ${missing[*]}"
        "$HERE/../../scripts/apt-update.sh"
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
    fi
fi

t0=$(date +%s)
mkdir -p "$CACHE/kernels"
BUILD=$(mktemp -d "$CACHE/kernels/.build.XXXXXX")
if [ "${KESTREL_QEMU_KEEP_BUILD:-0}" = 1 ]; then
    # shellcheck disable=SC2154 # st is assigned in the trap itself
    trap 'st=$?; if [ "$st" = 0 ]; then rm -rf "$BUILD"; else log "build tree kept: $BUILD"; fi' EXIT
else
    trap 'rm -rf "$BUILD"' EXIT
fi
SRC=$BUILD/linux
mkdir -p "$SRC"
log "$ARCH $VERSION: checking out $COMMIT of $GITDIR into $SRC"
# read-tree + checkout-index rather than `git archive`, which stops at the first
# blob a partial mirror lacks.
export GIT_INDEX_FILE=$BUILD/index
git --git-dir="$GITDIR" read-tree "$COMMIT"
absent=$(git --git-dir="$GITDIR" ls-files -s |
         awk '{ print $2 }' | git --git-dir="$GITDIR" cat-file --batch-check='%(objectname) %(objecttype)' |
         awk '$2 == "missing" { print $1 }')
if [ -n "$absent" ]; then
    mapfile -t absent_paths < <(git --git-dir="$GITDIR" ls-files -s | awk 'NR == FNR { m[$1] = 1; next } ($2 in m) { sub(/^[^\t]*\t/, ""); print }' <(echo "$absent") -)
    log "the repository lacks ${#absent_paths[@]} blob(s), left out: ${absent_paths[*]}"
    git --git-dir="$GITDIR" update-index --force-remove -- "${absent_paths[@]}"
fi
git --git-dir="$GITDIR" --work-tree="$SRC" checkout-index -a -f
unset GIT_INDEX_FILE
if ! grep -qx "VERSION = ${VERSION%%.*}" "$SRC/Makefile" || ! grep -qx "PATCHLEVEL = ${VERSION#*.}" "$SRC/Makefile"; then
    die "$COMMIT is not a Linux $VERSION tree (its Makefile)"
fi
t_src=$(date +%s)
cd "$SRC"

# save DIR: the kernel just built (IMAGE_PATH, vmlinux.btf, .config) into DIR; the key last.
save() {
    local d=$1 now types
    now=$(date +%s)
    t_prev=${t_prev:-$t_src}
    types=$(bpftool btf dump file vmlinux.btf | grep -c '^\[')
    rm -rf "$d"
    mkdir -p "$d"
    cp "$IMAGE_PATH" "$d/$IMAGE"
    ln -s "$IMAGE" "$d/vmlinuz"
    cp vmlinux.btf "$d/vmlinux.btf"
    cp .config "$d/config"
    cat include/config/kernel.release > "$d/release"
    echo "git $COMMIT" > "$d/source"
    {
        echo "built=$(date -u +%Y-%m-%dT%H:%M:%SZ) host_cpus=$(nproc) jobs=$JOBS"
        echo "compiler=$("${CROSS}gcc" --version | head -n1 | tr ' ' _) pahole=$(pahole --version)"
        echo "seconds_checkout=$((t_src - t0)) seconds_this_kernel=$((now - t_prev)) seconds_since_checkout=$((now - t_src))"
        echo "bytes_image=$(stat -c %s "$IMAGE_PATH") bytes_vmlinux=$(stat -c %s vmlinux) bytes_btf=$(stat -c %s vmlinux.btf) btf_types=$types"
    } > "$d/stats"
    echo "$key" > "$d/key"
    log "saved $(cat "$d/release") in $d: $IMAGE $(stat -c %s "$d/$IMAGE") bytes, vmlinux.btf $(stat -c %s "$d/vmlinux.btf") bytes ($types types), built in $((now - t_prev)) s"
    t_prev=$now
}

# RECIPE BEGIN (hashed into the cache key)
export KBUILD_BUILD_USER=kestrel KBUILD_BUILD_HOST=qemu KBUILD_BUILD_TIMESTAMP=2026-01-01
case $ARCH in
    arm64) CROSS=aarch64-linux-gnu-; MK=(ARCH=arm64 "CROSS_COMPILE=$CROSS"); IMAGE=Image ;;
    amd64) CROSS=; MK=(ARCH=x86_64); IMAGE=bzImage ;;
esac
case $ARCH in
    arm64) IMAGE_PATH=arch/arm64/boot/Image ;;
    amd64) IMAGE_PATH=arch/x86/boot/bzImage ;;
esac
# scripts/link-vmlinux.sh runs `$PAHOLE -J vmlinux` for DEBUG_INFO_BTF.
printf '#!/bin/sh\nexec pahole --skip_encoding_btf_enum64 "$@"\n' > "$BUILD/pahole"
chmod +x "$BUILD/pahole"
MK+=("PAHOLE=$BUILD/pahole")
# configure FRAGMENT...: scripts/config, olddefconfig, then every line checked.
configure() {
    local f line s v cfg_args=() bad=0
    for f in "$@"; do
        while IFS= read -r line; do
            case $line in
                "# CONFIG_"*" is not set") s=${line#"# CONFIG_"}; cfg_args+=(--disable "${s%" is not set"}") ;;
                '' | '#'*) ;;
                CONFIG_*=y) s=${line#CONFIG_}; cfg_args+=(--enable "${s%=y}") ;;
                CONFIG_*=\"*\") s=${line#CONFIG_}; v=${s#*=}; v=${v#\"}; cfg_args+=(--set-str "${s%%=*}" "${v%\"}") ;;
                CONFIG_*=*) s=${line#CONFIG_}; cfg_args+=(--set-val "${s%%=*}" "${s#*=}") ;;
                *) die "bad line in $f: $line" ;;
            esac
        done < "$f"
    done
    scripts/config "${cfg_args[@]}"
    make "${MK[@]}" -s olddefconfig
    for f in "$@"; do
        while IFS= read -r line; do
            case $line in
                "# CONFIG_"*" is not set") s=${line#"# "}; s=${s%" is not set"}
                    if grep -q "^$s=" .config; then echo "  want unset: $(grep "^$s=" .config)" >&2; bad=1; fi ;;
                '' | '#'*) ;;
                *) grep -qxF "$line" .config || { echo "  missing: $line" >&2; bad=1; } ;;
            esac
        done < "$f"
    done
    if grep -q '=m$' .config; then echo "  modules configured: $(grep '=m$' .config | tr '\n' ' ')" >&2; bad=1; fi
    [ "$bad" = 0 ] || die "final .config lacks required settings (see above)"
}
# btf_check FILE: only the kinds a 5.4 kernel knows (include/uapi/linux/btf.h: up to DATASEC).
btf_check() {
    local other
    other=$(bpftool btf dump file "$1" | sed -n 's/^\[[0-9]*\] \([A-Z_0-9]*\) .*/\1/p' | sort | uniq -c |
            grep -vwE 'INT|PTR|ARRAY|STRUCT|UNION|ENUM|FWD|TYPEDEF|VOLATILE|CONST|RESTRICT|FUNC|FUNC_PROTO|VAR|DATASEC' || true)
    [ -z "$other" ] || die "$1 has BTF kinds Linux $VERSION does not know: $(echo "$other" | tr -s ' \n' ' ')"
}
make "${MK[@]}" -s tinyconfig >/dev/null
configure "$FRAG_COMMON" "$FRAG_ARCH" "$FRAG_NOBTF"
make "${MK[@]}" -s -j"$JOBS" "$IMAGE"
pahole -J --skip_encoding_btf_enum64 --btf_encode_detached=vmlinux.btf vmlinux
btf_check vmlinux.btf
save "$OUT_NOBTF"
configure "$FRAG_COMMON" "$FRAG_ARCH" "$FRAG_BTF"
make "${MK[@]}" -s -j"$JOBS" "$IMAGE"
"${CROSS}objcopy" -O binary --only-section=.BTF vmlinux vmlinux.btf
btf_check vmlinux.btf
save "$OUT_BTF"
# RECIPE END
# NOIA32 RECIPE BEGIN (amd64 only; hashed into amd64's key)
if [ "$ARCH" = amd64 ]; then
    # The arch fragment without its ia32 line, which the variant turns off.
    grep -v '^CONFIG_IA32_EMULATION=' "$FRAG_ARCH" > "$BUILD/arch-noia32.config"
    configure "$FRAG_COMMON" "$BUILD/arch-noia32.config" "$FRAG_NOIA32"
    make "${MK[@]}" -s -j"$JOBS" "$IMAGE"
    pahole -J --skip_encoding_btf_enum64 --btf_encode_detached=vmlinux.btf vmlinux
    btf_check vmlinux.btf
    save "$OUT_NOIA32"
fi
# NOIA32 RECIPE END

t1=$(date +%s)
log "built $ARCH $VERSION (commit $COMMIT) in $((t1 - t0)) s wall (checkout $((t_src - t0)) s): ${OUTS[*]}"
