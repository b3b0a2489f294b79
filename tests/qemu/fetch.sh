#!/usr/bin/env bash
# Fetch the guest kernels and busybox-static used by the Kestrel QEMU harness.
#
# Usage: tests/qemu/fetch.sh [--update-pins] [--no-host-deps] [--arm]
#
# Downloads Debian packages with a PRIVATE apt configuration (own sources list,
# lists, status file, cache and architecture; the host's apt state is not read
# or written), verifies each .deb against tests/qemu/pins.sha256, and extracts
#   $CACHE/kernels/<role>/{vmlinuz,config,release,package}
#   $CACHE/busybox/<arch>/busybox            (arm64, amd64, armhf, i386)
#   $CACHE/debs/linux-source-6.1_*_all.deb   (not extracted; build-kernel.sh)
#   $CACHE/kernels/arm-<ver>/vmlinux.btf     (--arm: pahole BTF of the -dbg vmlinux)
# where CACHE=${KESTREL_QEMU_CACHE:-/var/cache/kestrel-qemu}.
#
# --update-pins  resolve the newest matching package the archive serves now,
#                download it and rewrite pins.sha256 (review the diff!).
# --no-host-deps do not apt-get install missing host tools (qemu, cpio, ...).
# --arm          also the 32-bit ARM kernels (armmp-lpae 6.1, 5.10) and their BTF.
#                They have none of their own: the first run downloads each -dbg
#                package (620 and 570 MB), encodes BTF from its DWARF with pahole
#                (~1.5 min each) and deletes the package; later runs find the BTF
#                (btf.deb.sha256).
#
# Env: KESTREL_QEMU_CACHE, KESTREL_QEMU_MIRROR (Debian mirror URI; default:
#      the first .../debian URI in the host's /etc/apt/sources.list*),
#      KESTREL_QEMU_SECURITY_MIRROR (default: the mirror's URI + -security).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PINS=${KESTREL_QEMU_PINS:-$HERE/pins.sha256}
CACHE=${KESTREL_QEMU_CACHE:-/var/cache/kestrel-qemu}
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
UPDATE_PINS=0
HOST_DEPS=1
WANT_ARM=0

die() { echo "fetch.sh: ERROR: $*" >&2; exit 1; }
log() { echo "fetch.sh: $*" >&2; }

for a in "$@"; do
    case $a in
        --update-pins) UPDATE_PINS=1 ;;
        --no-host-deps) HOST_DEPS=0 ;;
        --arm) WANT_ARM=1 ;;
        -h|--help) sed -n '2,26p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown argument: $a" ;;
    esac
done

# role | apt environment (suite/arch) | package-name regex (anchored by apt-cache
# search) | .deb architecture if not the environment's (e.g. "all") | "arm": only
# with --arm. A role ending in -btf is a -dbg package: BTF for the kernel role
# before it, the package deleted once encoded.
ROLES=(
    "arm64-6.1|bookworm-arm64|^linux-image-6\.1[.0-9-]*-arm64-unsigned$"
    "arm64-5.10|bullseye-arm64|^linux-image-5\.10[.0-9-]*-arm64-unsigned$"
    "amd64-6.1|bookworm-amd64|^linux-image-6\.1[.0-9-]*-amd64-unsigned$"
    "arm64-6.12|bookworm-security-arm64|^linux-image-6\.12[.0-9]*\+deb12-arm64-unsigned$"
    "amd64-6.12|bookworm-security-amd64|^linux-image-6\.12[.0-9]*\+deb12-amd64-unsigned$"
    "busybox-arm64|bookworm-arm64|^busybox-static$"
    "busybox-amd64|bookworm-amd64|^busybox-static$"
    "busybox-armhf|bookworm-armhf|^busybox-static$"
    "busybox-i386|bookworm-i386|^busybox-static$"
    "src-6.1|bookworm-arm64|^linux-source-6\.1$|all"
    "arm-6.1|bookworm-armhf|^linux-image-6\.1[.0-9-]*-armmp-lpae$||arm"
    "arm-6.1-btf|bookworm-armhf|^linux-image-6\.1[.0-9-]*-armmp-lpae-dbg$||arm"
    "arm-5.10|bullseye-armhf|^linux-image-5\.10[.0-9-]*-armmp-lpae$||arm"
    "arm-5.10-btf|bullseye-armhf|^linux-image-5\.10[.0-9-]*-armmp-lpae-dbg$||arm"
)

# ---------------------------------------------------------------- host tools
install_host_deps() {
    local -A need=(
        [qemu-system-aarch64]=qemu-system-arm
        [qemu-system-x86_64]=qemu-system-x86
        [cpio]=cpio
        [gzip]=gzip
        [dpkg-deb]=dpkg
        [sha256sum]=coreutils
        [timeout]=coreutils
        [base64]=coreutils
        [qemu-aarch64-static]=qemu-user-static
        [qemu-arm-static]=qemu-user-static
        [bpftool]=bpftool
        [pahole]=dwarves
        [jq]=jq
    )
    local cmd missing=()
    for cmd in "${!need[@]}"; do
        command -v "$cmd" >/dev/null 2>&1 || missing+=("${need[$cmd]}")
    done
    [ -e "$KEYRING" ] || missing+=(debian-archive-keyring)
    [ ${#missing[@]} -eq 0 ] && return 0
    mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
    if [ "$HOST_DEPS" -eq 0 ]; then
        die "missing host packages: ${missing[*]} (run without --no-host-deps)"
    fi
    log "installing host packages: ${missing[*]}"
    "$HERE/../../scripts/apt-update.sh"
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
}

# ------------------------------------------------------------ mirror lookup
detect_mirror() {
    if [ -n "${KESTREL_QEMU_MIRROR:-}" ]; then echo "$KESTREL_QEMU_MIRROR"; return; fi
    local f uri
    {
        for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
            [ -f "$f" ] || continue
            sed -nE 's/^[[:space:]]*deb[[:space:]]+(\[[^]]*\][[:space:]]+)?([^[:space:]]+).*/\2/p' "$f"
        done
        for f in /etc/apt/sources.list.d/*.sources; do
            [ -f "$f" ] || continue
            sed -nE 's/^[[:space:]]*URIs:[[:space:]]*//Ip' "$f" | tr -s '[:blank:]' '\n'
        done
    } | while read -r uri; do
        case $uri in
            */debian|*/debian/) echo "${uri%/}"; break ;;
        esac
    done | head -n1
}

# ------------------------------------------------------ private apt config
# apt_env NAME -> prints the path of the APT_CONFIG file for environment NAME
# (NAME = <suite>-<arch>); creates it on first use. A -security suite (where
# Debian 12 carries its 6.12 kernels) lives beside the mirror, in -security.
apt_env() {
    local name=$1 suite=${1%-*} arch=${1##*-} uri=$MIRROR
    case $suite in *-security) uri=${KESTREL_QEMU_SECURITY_MIRROR:-$MIRROR-security} ;; esac
    local d=$CACHE/apt/$name
    mkdir -p "$d/lists/partial" "$d/cache/archives/partial" "$d/state" \
             "$d/etc/sources.list.d" "$d/etc/preferences.d" "$d/etc/trusted.gpg.d"
    [ -e "$d/status" ] || : > "$d/status"
    printf 'deb [arch=%s signed-by=%s] %s %s main\n' "$arch" "$KEYRING" "$uri" "$suite" \
        > "$d/etc/sources.list"
    cat > "$d/apt.conf" <<EOF
Dir::Etc::SourceList "$d/etc/sources.list";
Dir::Etc::SourceParts "$d/etc/sources.list.d";
Dir::Etc::Preferences "$d/etc/preferences";
Dir::Etc::PreferencesParts "$d/etc/preferences.d";
Dir::Etc::TrustedParts "$d/etc/trusted.gpg.d";
Dir::State "$d/state";
Dir::State::Lists "$d/lists";
Dir::State::status "$d/status";
Dir::Cache "$d/cache";
Dir::Cache::archives "$d/cache/archives";
APT::Architecture "$arch";
APT::Architectures { "$arch"; };
APT::Sandbox::User "root";
Acquire::Languages "none";
Acquire::IndexTargets::deb::DEP-11::DefaultEnabled "false";
Acquire::IndexTargets::deb::DEP-11-icons::DefaultEnabled "false";
Acquire::IndexTargets::deb::DEP-11-icons-small::DefaultEnabled "false";
Acquire::IndexTargets::deb::DEP-11-icons-hidpi::DefaultEnabled "false";
Acquire::IndexTargets::deb::Contents-deb::DefaultEnabled "false";
EOF
    echo "$d/apt.conf"
}

declare -A UPDATED=()
apt_update_once() {
    local name=$1 cfg
    [ -n "${UPDATED[$name]:-}" ] && return 0
    cfg=$(apt_env "$name")
    log "apt-get update ($name, private config $cfg)"
    APT_CONFIG=$cfg "$HERE/../../scripts/apt-update.sh" -q >&2
    UPDATED[$name]=1
}

# resolve_newest ENV REGEX -> "package version" of the highest candidate version
resolve_newest() {
    local name=$1 re=$2 cfg p v best_p="" best_v=""
    cfg=$(apt_env "$name")
    while read -r p _; do
        v=$(APT_CONFIG=$cfg apt-cache show --no-all-versions "$p" 2>/dev/null \
            | sed -n 's/^Version: //p' | head -n1)
        [ -n "$v" ] || continue
        if [ -z "$best_v" ] || dpkg --compare-versions "$v" gt "$best_v"; then
            best_p=$p; best_v=$v
        fi
    done < <(APT_CONFIG=$cfg apt-cache search --names-only "$re")
    [ -n "$best_p" ] || die "no package matching '$re' in $name"
    echo "$best_p $best_v"
}

# deb file name as apt-get download writes it
deb_name() { local v=${2//:/%3a}; echo "${1}_${v}_${3}.deb"; }

# pinned_file ROLE REGEX ARCH -> file name from pins.sha256, or nothing
pinned_file() {
    local re=$2 arch=$3 sum file
    [ -f "$PINS" ] || return 0
    re=${re#^}; re=${re%$}
    while read -r sum file; do
        case $sum in ''|'#'*) continue ;; esac
        if [[ $file =~ ^${re}_[^_]+_${arch}\.deb$ ]]; then echo "$file"; return 0; fi
    done < "$PINS"
}

pinned_sum() { awk -v f="$1" '$1 !~ /^#/ && $2 == f { print $1; exit }' "$PINS" 2>/dev/null; }

# download ENV PACKAGE VERSION ARCH -> path of the .deb in $CACHE/debs
download() {
    local name=$1 pkg=$2 ver=$3 arch=$4 cfg file
    file=$(deb_name "$pkg" "$ver" "$arch")
    if [ -f "$CACHE/debs/$file" ]; then echo "$CACHE/debs/$file"; return 0; fi
    cfg=$(apt_env "$name")
    log "downloading $pkg=$ver ($arch)"
    local tmp
    tmp=$(mktemp -d "$CACHE/debs/.dl.XXXXXX")
    if ! (cd "$tmp" && APT_CONFIG=$cfg apt-get -q download "$pkg=$ver" >&2); then
        rm -rf "$tmp"
        log "could not download $pkg=$ver from $MIRROR ($name)"
        return 1
    fi
    [ -f "$tmp/$file" ] || { rm -rf "$tmp"; die "apt-get download did not produce $file"; }
    mv "$tmp/$file" "$CACHE/debs/$file"
    rm -rf "$tmp"
    echo "$CACHE/debs/$file"
}

extract_kernel() {
    local role=$1 deb=$2 sum=$3 out=$CACHE/kernels/$1 tmp vmlinuz rel
    if [ -f "$out/vmlinuz" ] && [ "$(cat "$out/deb.sha256" 2>/dev/null)" = "$sum" ]; then return 0; fi
    tmp=$(mktemp -d "$CACHE/.x.XXXXXX")
    dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$tmp" --wildcards './boot/*'
    vmlinuz=$(find "$tmp/boot" -name 'vmlinuz-*' | head -n1)
    [ -n "$vmlinuz" ] || { rm -rf "$tmp"; die "no vmlinuz in $deb"; }
    rel=${vmlinuz##*/vmlinuz-}
    rm -rf "$out"; mkdir -p "$out"
    cp "$vmlinuz" "$out/vmlinuz"
    cp "$tmp/boot/config-$rel" "$out/config" 2>/dev/null || true
    echo "$rel" > "$out/release"
    basename "$deb" > "$out/package"
    echo "$sum" > "$out/deb.sha256"
    rm -rf "$tmp"
    log "kernel $role: $rel -> $out/vmlinuz"
}

# BTF of a kernel without its own (no /sys/kernel/btf/vmlinux), from the DWARF
# vmlinux of its -dbg package, beside the kernel; the 620 MB package goes.
extract_btf() {
    local role=$1 deb=$2 sum=$3 out=$CACHE/kernels/${1%-btf} tmp vmlinux
    tmp=$(mktemp -d "$CACHE/.x.XXXXXX")
    dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$tmp" --wildcards './usr/lib/debug/boot/vmlinux-*'
    vmlinux=$(find "$tmp" -type f -name 'vmlinux-*' | head -n1)
    [ -n "$vmlinux" ] || { rm -rf "$tmp"; die "no vmlinux in $deb"; }
    [ "${vmlinux##*/vmlinux-}" = "$(cat "$out/release")" ] ||
        { rm -rf "$tmp"; die "$deb is not for $(cat "$out/release")"; }
    # The flags the kernel's own build gives pahole 1.24 (scripts/pahole-flags.sh);
    # kernels before 6.0 know no BTF_KIND_ENUM64.
    local flags=(-J -j --btf_gen_floats)
    case $(cat "$out/release") in [1-5].*) flags+=(--skip_encoding_btf_enum64) ;; esac
    pahole "${flags[@]}" --btf_encode_detached="$out/vmlinux.btf.tmp" "$vmlinux" >&2 ||
        { rm -rf "$tmp" "$out/vmlinux.btf.tmp"; die "pahole failed on $vmlinux"; }
    mv "$out/vmlinux.btf.tmp" "$out/vmlinux.btf"
    echo "$sum" > "$out/btf.deb.sha256"
    rm -rf "$tmp"
    rm -f "$deb"
    log "BTF $role: $(stat -c %s "$out/vmlinux.btf") bytes -> $out/vmlinux.btf (package deleted)"
}
btf_cached() { # btf_cached ROLE SHA256
    local out=$CACHE/kernels/${1%-btf}
    [ -s "$out/vmlinux.btf" ] && [ "$(cat "$out/btf.deb.sha256" 2>/dev/null)" = "$2" ]
}

extract_busybox() {
    local arch=$1 deb=$2 sum=$3 out=$CACHE/busybox/$1 tmp
    if [ -x "$out/busybox" ] && [ "$(cat "$out/deb.sha256" 2>/dev/null)" = "$sum" ]; then return 0; fi
    tmp=$(mktemp -d "$CACHE/.x.XXXXXX")
    dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$tmp" ./bin/busybox
    rm -rf "$out"; mkdir -p "$out"
    install -m 0755 "$tmp/bin/busybox" "$out/busybox"
    echo "$sum" > "$out/deb.sha256"
    rm -rf "$tmp"
    log "busybox $arch -> $out/busybox"
}

# ---------------------------------------------------------------------- main
install_host_deps
MIRROR=$(detect_mirror)
[ -n "$MIRROR" ] || die "no Debian mirror (…/debian) found in /etc/apt/sources.list*; set KESTREL_QEMU_MIRROR"
log "mirror: $MIRROR, cache: $CACHE"
mkdir -p "$CACHE/debs" "$CACHE/kernels" "$CACHE/busybox"

new_pins=()
status=0
for entry in "${ROLES[@]}"; do
    IFS='|' read -r role env re debarch opt <<<"$entry"
    arch=${debarch:-${env##*-}}
    file=$(pinned_file "$role" "$re" "$arch")
    if [ "$opt" = arm ] && [ "$WANT_ARM" -eq 0 ]; then
        # Not fetched; --update-pins keeps its pin as it is.
        [ -z "$file" ] || new_pins+=("$(pinned_sum "$file")  $file")
        continue
    fi
    if [ "$UPDATE_PINS" -eq 1 ]; then
        apt_update_once "$env"
        pv=$(resolve_newest "$env" "$re") || exit 1
        pkg=${pv%% *}; ver=${pv#* }
        file=$(deb_name "$pkg" "$ver" "$arch")
        expect=""
    else
        [ -n "$file" ] || die "no pin for $role in $PINS; run with --update-pins"
        pkg=${file%%_*}; ver=${file#*_}; ver=${ver%_*}; ver=${ver//%3a/:}
        expect=$(pinned_sum "$file")
        if [[ $role == *-btf ]] && btf_cached "$role" "$expect"; then
            new_pins+=("$expect  $file")
            log "ok $role: BTF cached for $file"
            continue
        fi
    fi
    [ -f "$CACHE/debs/$(deb_name "$pkg" "$ver" "$arch")" ] || apt_update_once "$env"
    substitute=
    if ! deb=$(download "$env" "$pkg" "$ver" "$arch"); then
        [ -n "$expect" ] || die "could not download $pkg=$ver"
        # The archive dropped the pinned version (security kernels move): take
        # the newest of the same series. apt-get checks it against the
        # archive's index, whose signature it verifies with the Debian keyring
        # (signed-by above); the pin itself stays for review.
        pv=$(resolve_newest "$env" "$re") || exit 1
        pkg=${pv%% *}; ver=${pv#* }
        log "SUBSTITUTION: pinned $file is gone from the archive; using $pkg $ver" \
            "(newest of the series, verified by apt against the signed index)"
        deb=$(download "$env" "$pkg" "$ver" "$arch") || die "could not download $pkg=$ver either"
        substitute=$file
        file=$(deb_name "$pkg" "$ver" "$arch")
        expect=""
    fi
    sum=$(sha256sum "$deb" | awk '{print $1}')
    if [ -n "$substitute" ]; then
        # run.sh and build-kernel.sh accept what this file lists beside the pins.
        grep -q "^$sum " "$CACHE/substitutions" 2>/dev/null ||
            echo "$sum  $file  $substitute" >> "$CACHE/substitutions"
    fi
    if [ -n "$expect" ] && [ "$sum" != "$expect" ]; then
        echo "fetch.sh: ERROR: SHA-256 MISMATCH for $file" >&2
        echo "  pinned:     $expect" >&2
        echo "  downloaded: $sum ($deb)" >&2
        echo "  The file was moved aside to $deb.bad; not extracting." >&2
        mv -f "$deb" "$deb.bad"
        status=1
        continue
    fi
    new_pins+=("$sum  $file")
    case $role in
        busybox-*) extract_busybox "$arch" "$deb" "$sum" ;;
        src-*) ;; # kernel source: tests/qemu/build-kernel.sh unpacks it
        *-btf) extract_btf "$role" "$deb" "$sum" ;;
        *) extract_kernel "$role" "$deb" "$sum" ;;
    esac
    log "ok $role: $pkg $ver"
done
[ "$status" -eq 0 ] || die "pin verification failed"

if [ "$UPDATE_PINS" -eq 1 ]; then
    {
        echo "# SHA-256 pins for tests/qemu/fetch.sh (sha256sum format; file = package_version_arch.deb)."
        echo "# Regenerate with: tests/qemu/fetch.sh --update-pins"
        printf '%s\n' "${new_pins[@]}"
    } > "$PINS"
    log "wrote $PINS"
fi
log "done"
