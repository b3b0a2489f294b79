#!/usr/bin/env bash
# Rule tests that need a real kernel of their own: the built-in edge ruleset
# under QEMU (TCG) against actions this host's sandbox cannot take. Runs
# guest/rules.sh (see there) with `kestrel run` on its default rules:
#   Linux Kernel Module Injection Detected: insmod that fails (a file that is
#   not a module; a module of the kernel's package whose dependency is not
#   loaded) -> no alert; insmod of a module without dependencies -> exactly one
#   alert (Warning, finit_module/init_module, proc.name insmod, SUCCESS);
#   the same module again (EEXIST) -> still one.
#
# Usage: tests/qemu/rules.sh [--aarch64 BIN] [--x86_64 BIN] [--mechanics] [ARCH:KERNEL ...]
#   --aarch64 BIN / --x86_64 BIN   use these static binaries instead of building
#   --mechanics                    only the module loads (no rule or alert checks):
#                                  for an agent without the rule engine
#   ARCH:KERNEL                    default: arm64:6.1 amd64:6.1 arm64:5.10
#
# The modules come from the pinned linux-image .deb the guest kernel comes
# from (fetch.sh; SHA-256 checked against pins.sha256 again here): MODULE
# (drivers/net/dummy.ko: no dependencies, loads without hardware, makes one
# dummy0 netdev) and FAILMODULE (drivers/atm/adummy.ko: needs atm.ko, not
# loaded, so the load fails with "Unknown symbol"). Compressed modules
# (.ko.xz/.ko.zst/.ko.gz) are decompressed here, as busybox insmod may not.
# Cached in $CACHE/modules/<sha256 of the .deb>/.
#
# Without a binary for an arch it builds one, as matrix.sh does. Prints one line
# per target and exits 1 if any fails, 64 on usage or setup errors.
# Env: KESTREL_QEMU_* as for run.sh; KESTREL_QEMU_RULES_OUT (default
# /tmp/kestrel-qemu-rules) holds one run.sh output directory per target, with
# files/k.json (all the agent wrote) and files/alert.json.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
OUT=${KESTREL_QEMU_RULES_OUT:-/tmp/kestrel-qemu-rules}
CACHE=${KESTREL_QEMU_CACHE:-/var/cache/kestrel-qemu}
PINS=$HERE/pins.sha256
MODULE=kernel/drivers/net/dummy.ko
FAILMODULE=kernel/drivers/atm/adummy.ko
RULE='Linux Kernel Module Injection Detected'
BIN_arm64=
BIN_amd64=
ALERTS=1
TARGETS=()

usage() { sed -n '2,30p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 64; }
while [ $# -gt 0 ]; do
    case $1 in
        --aarch64|--arm64) [ $# -ge 2 ] || usage; BIN_arm64=$2; shift 2 ;;
        --x86_64|--amd64) [ $# -ge 2 ] || usage; BIN_amd64=$2; shift 2 ;;
        --mechanics) ALERTS=0; shift ;;
        -h|--help) usage ;;
        -*) echo "rules.sh: unknown option $1" >&2; usage ;;
        *:*-nobtf*) echo "rules.sh: '$1': the kernel without BTF has no modules" >&2; exit 64 ;;
        *:*) TARGETS+=("$1"); shift ;;
        *) echo "rules.sh: bad target '$1' (ARCH:KERNEL)" >&2; usage ;;
    esac
done
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(arm64:6.1 amd64:6.1 arm64:5.10)

t_start=$(date +%s)
need_arm64=0 need_amd64=0
for t in "${TARGETS[@]}"; do
    case ${t%%:*} in
        arm64|aarch64) need_arm64=1 ;;
        amd64|x86_64) need_amd64=1 ;;
        *) echo "rules.sh: unknown arch in '$t'" >&2; exit 64 ;;
    esac
done

# ------------------------------------------------------------------ binaries
build() { # build TRIPLE -> prints the binary path
    local triple=$1
    local dir=${CARGO_TARGET_DIR:-$REPO/target}
    echo "rules.sh: scripts/build-static.sh $triple (target dir $dir)" >&2
    "$REPO/scripts/build-static.sh" "$triple" >&2
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
    [ -f "${!var}" ] || { echo "rules.sh: no binary ${!var}" >&2; exit 64; }
done
t_built=$(date +%s)

"$HERE/fetch.sh" >&2 || { echo "rules.sh: fetch.sh failed" >&2; exit 64; }

# modules ARCH KERNEL -> directory holding the two modules (uncompressed),
# taken from the pinned .deb the cached kernel was extracted from.
modules() {
    local kdir=$CACHE/kernels/$1-$2 deb sum rel dir tmp m f subs
    sum=$(cat "$kdir/deb.sha256" 2>/dev/null) || { echo "rules.sh: no kernel $kdir (fetch.sh)" >&2; return 1; }
    deb=$CACHE/debs/$(cat "$kdir/package")
    rel=$(cat "$kdir/release")
    subs=$CACHE/substitutions # fetch.sh's stand-ins for a dropped pin count too
    [ -f "$subs" ] || subs=/dev/null
    grep -q "^$sum " "$PINS" "$subs" ||
        { echo "rules.sh: $deb is not pinned (re-run fetch.sh)" >&2; return 1; }
    dir=$CACHE/modules/$sum
    if [ -f "$dir/ok" ]; then echo "$dir"; return 0; fi
    [ "$(sha256sum "$deb" | cut -d' ' -f1)" = "$sum" ] ||
        { echo "rules.sh: $deb does not match its pin" >&2; return 1; }
    tmp=$(mktemp -d /tmp/kestrel-modules.XXXXXX)
    dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$tmp" --wildcards \
        "./lib/modules/$rel/$MODULE*" "./lib/modules/$rel/$FAILMODULE*" ||
        { rm -rf "$tmp"; echo "rules.sh: $MODULE or $FAILMODULE not in $deb" >&2; return 1; }
    rm -rf "$dir"; mkdir -p "$dir"
    for m in "$MODULE" "$FAILMODULE"; do
        f=$(find "$tmp/lib/modules/$rel/$(dirname "$m")" -name "$(basename "$m")*" | head -n1)
        case $f in
            *.ko) cp "$f" "$dir/" ;;
            *.ko.xz) xz -dc "$f" > "$dir/$(basename "$m")" ;;
            *.ko.zst) zstd -qdc "$f" > "$dir/$(basename "$m")" ;;
            *.ko.gz) gzip -dc "$f" > "$dir/$(basename "$m")" ;;
            *) rm -rf "$tmp" "$dir"; echo "rules.sh: no $m in $deb" >&2; return 1 ;;
        esac
    done
    rm -rf "$tmp"
    echo "$(basename "$deb") $rel" > "$dir/ok"
    echo "$dir"
}

mkdir -p "$OUT"
fails=0
lines=()
kv() { sed -n "s/^$1=\([^ ]*\).*/\1/p" "$2" | head -n1; }
for t in "${TARGETS[@]}"; do
    arch=${t%%:*} kver=${t#*:}
    case $arch in aarch64) arch=arm64 ;; x86_64) arch=amd64 ;; esac
    var=BIN_$arch
    dir=$OUT/$arch-$kver
    rm -rf "$dir"; mkdir -p "$dir"
    rc=0
    if mdir=$(modules "$arch" "$kver"); then
        printf '%s\n' "KR_MOD=/extra/modules/$(basename "$MODULE")" \
            "KR_FAILMOD=/extra/modules/$(basename "$FAILMODULE")" "KR_ALERTS=$ALERTS" > "$dir/test.env"
        KESTREL_QEMU_OUTDIR=$dir "$HERE/run.sh" "$arch" "$kver" "${!var}" "$HERE/guest/rules.sh" \
            "$dir/test.env:/etc/kestrel-test.env" \
            "$mdir/$(basename "$MODULE"):/extra/modules/$(basename "$MODULE")" \
            "$mdir/$(basename "$FAILMODULE"):/extra/modules/$(basename "$FAILMODULE")" >/dev/null || rc=$?
    else
        echo "NORESULT module extraction failed" > "$dir/result"; rc=64
    fi
    res=$(cat "$dir/result" 2>/dev/null || echo "NORESULT")
    verdict=PASS
    if [ "$rc" -ne 0 ]; then
        verdict="FAIL(run.sh=$rc: $res)"
    elif ! grep -qx 'result=PASS' "$dir/out.txt"; then
        verdict="FAIL(no result=PASS in out.txt)"
    elif [ "$ALERTS" = 1 ]; then
        # The host's own reading of the agent's file, with a JSON parser
        # (slurped: jq 1.6's -e looks at the last input line only).
        if ! command -v jq >/dev/null; then
            verdict="FAIL(jq not installed)"
        elif ! got=$(jq -c -s --arg r "$RULE" '[.[] | select(.rule == $r)]
                | [length] + map([.priority, .source, .output_fields["evt.type"],
                                  .output_fields["proc.name"], .output_fields["evt.res"]])' \
                "$dir/files/k.json"); then
            verdict="FAIL(host: files/k.json is not JSON lines)"
        else
            case $got in
                '[1,["Warning","syscall","finit_module","insmod","SUCCESS"]]' | \
                '[1,["Warning","syscall","init_module","insmod","SUCCESS"]]') ;;
                *) verdict="FAIL(host: [alerts of the rule, [priority, source, evt.type, proc.name, evt.res]...] = $got)" ;;
            esac
        fi
    fi
    [ "$verdict" = PASS ] || fails=$((fails + 1))
    wall=$(sed -n 's/.*wall_seconds=\([^ ]*\).*/\1/p' "$dir/timing" 2>/dev/null)
    up=$(sed -n 's/.*guest_uptime=\([^ ]*\).*/\1/p' "$dir/timing" 2>/dev/null)
    alert=$(sed -n 's/^alert priority=\([^ ]*\) source=[^ ]* evt.type=\([^ ]*\) proc.name=\([^ ]*\) evt.res=\([^ ]*\).*/\1 \2 \3 \4/p' "$dir/out.txt")
    lines+=("$(printf '%-10s %-16s %-5s boot-to-result %6ss (guest %5ss)  failed-loads %s alerts  load %s alert(s) %s in %sms  reload %s  rules %s' \
        "$t" "$(kv kernel "$dir/out.txt")" "${verdict%%(*}" "${wall:-?}" "${up:-?}" \
        "$(kv alerts_after_failed_loads "$dir/out.txt")" \
        "$(sed -n 's/.* module_alerts=\([0-9]*\).*/\1/p' "$dir/out.txt")" "${alert:-(none)}" \
        "$(kv load_to_alert_ms "$dir/out.txt")" "$(kv alerts_after_reload "$dir/out.txt")" \
        "$(kv rules_loaded "$dir/out.txt")")")
    [ "$verdict" = PASS ] || lines+=("           $verdict  (console: $dir/console.log)")
done
t_end=$(date +%s)

echo
printf '%s\n' "${lines[@]}"
echo "rules: $((${#TARGETS[@]} - fails))/${#TARGETS[@]} passed; build $((t_built - t_start))s, total $((t_end - t_start))s; outputs in $OUT"
[ "$fails" -eq 0 ]
