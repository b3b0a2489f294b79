#!/usr/bin/env bash
# Boot a kernel under QEMU (TCG) with a busybox initramfs and run a guest script.
#
# Usage: tests/qemu/run.sh ARCH KERNEL BINARY GUEST_SCRIPT [EXTRA...]
#   ARCH          arm64|aarch64, amd64|x86_64 or arm|armhf|armv7 (32-bit ARM)
#   KERNEL        a version from fetch.sh (6.12, 6.1, 5.10) or build-kernel.sh
#                 (arm64 6.1-nobtf; arm64/amd64 5.4, 5.4-nobtf), looked up as
#                 $CACHE/kernels/<arch>-<KERNEL>/vmlinuz, or a path to a vmlinuz
#   BINARY        static binary installed as /bin/kestrel ("-" for none)
#   GUEST_SCRIPT  POSIX sh script installed as /test.sh and run by /init
#   EXTRA         extra files: SRC (-> /extra/<basename>) or SRC:/abs/dest
#
# Exit status: 0 PASS, 1 FAIL line seen, 2 no result line (timeout, panic,
# crash), 3 a KESTREL-FILE transfer was corrupt, 64 usage error.
#
# Env:
#   KESTREL_QEMU_CACHE    cache from fetch.sh (default /var/cache/kestrel-qemu)
#   KESTREL_QEMU_OUTDIR   output directory (default: new mktemp -d, printed)
#   KESTREL_QEMU_TIMEOUT  seconds before QEMU is killed (default 120)
#   KESTREL_QEMU_MEM      guest MiB (default 1024)
#   KESTREL_QEMU_SMP      guest CPUs (default 1)
#   KESTREL_QEMU_CPU      -cpu model (default cortex-a57 on arm64, cortex-a15 on
#                         arm, qemu64 on x86)
#   KESTREL_QEMU_APPEND   extra kernel command line
#   KESTREL_QEMU_LOGLEVEL console loglevel while /test.sh runs (default 2, so
#                         kernel messages do not interleave with output lines)
#   KESTREL_QEMU_VERBOSE  1: stream the console to stderr while running
#
# Output files in $KESTREL_QEMU_OUTDIR:
#   console.log   serial console (CR stripped)
#   out.txt       lines the guest printed as "KESTREL-OUT: <line>" (prefix removed)
#   files/NAME    files the guest sent with "kestrel-put FILE [NAME]"
#   result        PASS | FAIL <reason> | NORESULT
#   timing        wall_seconds=<host time QEMU start..exit>  guest_uptime=<s at result>
#   initrd.gz     the initramfs used
#
# Guest side: /init mounts proc, sysfs, devtmpfs, tracefs (/sys/kernel/tracing),
# bpffs (/sys/fs/bpf), debugfs; raises no rlimits; runs `sh /test.sh` with
# stdout/stderr on the console; prints "KESTREL-QEMU-RESULT: PASS run=<id>" if it
# exits 0, else "KESTREL-QEMU-RESULT: FAIL run=<id> <reason>" (reason: exit
# status plus the first line of /tmp/kestrel-fail-reason if the script wrote
# it, then a dmesg tail); then poweroff -f.
# Helpers in the guest: kestrel-out [FILE...] (prefix lines with KESTREL-OUT:),
# kestrel-put FILE [NAME] (base64 transfer into files/NAME, SHA-256 checked).
set -euo pipefail

CACHE=${KESTREL_QEMU_CACHE:-/var/cache/kestrel-qemu}
TIMEOUT=${KESTREL_QEMU_TIMEOUT:-120}
MEM=${KESTREL_QEMU_MEM:-1024}
SMP=${KESTREL_QEMU_SMP:-1}
LOGLEVEL=${KESTREL_QEMU_LOGLEVEL:-2}
VERBOSE=${KESTREL_QEMU_VERBOSE:-0}

usage() { sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 64; }
die() { echo "run.sh: ERROR: $*" >&2; exit 64; }

[ $# -ge 4 ] || usage
ARCH=$1 KERNEL=$2 BINARY=$3 SCRIPT=$4
shift 4

case $ARCH in
    arm64|aarch64) ARCH=arm64; QEMU=qemu-system-aarch64; CONSOLE=ttyAMA0
                   CPU=${KESTREL_QEMU_CPU:-cortex-a57} ;;
    amd64|x86_64)  ARCH=amd64; QEMU=qemu-system-x86_64; CONSOLE=ttyS0
                   CPU=${KESTREL_QEMU_CPU:-qemu64} ;;
    arm|armhf|armv7) ARCH=arm; QEMU=qemu-system-arm; CONSOLE=ttyAMA0
                   CPU=${KESTREL_QEMU_CPU:-cortex-a15} ;;
    *) die "unknown ARCH '$ARCH' (arm64|amd64|arm)" ;;
esac
BBARCH=$ARCH
[ "$ARCH" = arm ] && BBARCH=armhf

if [ -f "$KERNEL" ]; then
    VMLINUZ=$KERNEL
else
    VMLINUZ=$CACHE/kernels/$ARCH-$KERNEL/vmlinuz
    if [ ! -f "$VMLINUZ" ]; then
        case $KERNEL in
            6.12|6.1|5.10) die "no kernel $VMLINUZ (run tests/qemu/fetch.sh, or give a path)" ;;
            *) die "no kernel $VMLINUZ (run tests/qemu/build-kernel.sh $ARCH $KERNEL, or give a path)" ;;
        esac
    fi
fi
BUSYBOX=$CACHE/busybox/$BBARCH/busybox
[ -x "$BUSYBOX" ] || die "no $BUSYBOX (run tests/qemu/fetch.sh)"
# Cached artefacts must come from a .deb that pins.sha256 still pins, or (kernels
# build-kernel-git.sh built) from a commit that kernel/sources still lists.
PINS=$(dirname "$0")/pins.sha256
markers=("$(dirname "$BUSYBOX")/deb.sha256")
if [ "$VMLINUZ" != "$KERNEL" ]; then
    kdir=$(dirname "$VMLINUZ")
    if [ -f "$kdir/source" ]; then
        commit=$(sed -n 's/^git \([0-9a-f]\{40\}\)$/\1/p' "$kdir/source")
        awk -v c="${commit:-none}" '$1 !~ /^#/ && $2 == c { f = 1 } END { exit !f }' "$(dirname "$0")/kernel/sources" ||
            die "$kdir was built from commit ${commit:-?}, which tests/qemu/kernel/sources does not list (rebuild: tests/qemu/build-kernel.sh $ARCH $KERNEL)"
    else
        markers+=("$kdir/deb.sha256")
    fi
fi
for marker in "${markers[@]}"; do
    sum=$(cat "$marker" 2>/dev/null || true)
    # fetch.sh's substitutions (a pinned version the archive dropped) count too.
    subs=$CACHE/substitutions
    [ -f "$subs" ] || subs=/dev/null
    if [ -z "$sum" ] || ! grep -q "^$sum " "$PINS" "$subs"; then
        die "${marker%/deb.sha256} is not from a pinned package (re-run tests/qemu/fetch.sh)"
    fi
done
[ -f "$SCRIPT" ] || die "guest script '$SCRIPT' not found"
[ "$BINARY" = - ] || [ -f "$BINARY" ] || die "binary '$BINARY' not found"
command -v "$QEMU" >/dev/null || die "$QEMU not installed (run tests/qemu/fetch.sh)"
command -v cpio >/dev/null || die "cpio not installed (run tests/qemu/fetch.sh)"

if [ "$BINARY" != - ] && command -v readelf >/dev/null &&
   readelf -l "$BINARY" 2>/dev/null | grep -q 'program interpreter'; then
    echo "run.sh: WARNING: $BINARY is dynamically linked; it will not run in the guest" >&2
fi

OUTDIR=${KESTREL_QEMU_OUTDIR:-}
if [ -z "$OUTDIR" ]; then OUTDIR=$(mktemp -d /tmp/kestrel-qemu.XXXXXX); fi
mkdir -p "$OUTDIR"
rm -rf "$OUTDIR/files" "$OUTDIR/console.log" "$OUTDIR/out.txt" "$OUTDIR/result" "$OUTDIR/timing"
mkdir -p "$OUTDIR/files"

RUNID=$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')
ROOT=$(mktemp -d /tmp/kestrel-qemu-root.XXXXXX)
trap 'rm -rf "$ROOT"' EXIT

# ---------------------------------------------------------------- initramfs
mkdir -p "$ROOT"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,tmp,run,root,etc,extra}
install -m 0755 "$BUSYBOX" "$ROOT/bin/busybox"
# Applet list from the host-runnable (amd64) busybox of the same package version;
# /init falls back to `busybox --install -s` if it is not runnable here.
LISTBB=$CACHE/busybox/amd64/busybox
if [ -x "$LISTBB" ] && applets=$("$LISTBB" --list-full 2>/dev/null); then
    while read -r a; do
        [ -n "$a" ] && [ ! -e "$ROOT/$a" ] && ln -s /bin/busybox "$ROOT/$a"
    done <<<"$applets"
fi
mknod -m 600 "$ROOT/dev/console" c 5 1 2>/dev/null || true
mknod -m 666 "$ROOT/dev/null" c 1 3 2>/dev/null || true
[ "$BINARY" = - ] || install -m 0755 "$BINARY" "$ROOT/bin/kestrel"
install -m 0755 "$SCRIPT" "$ROOT/test.sh"
mkdir -p "$ROOT/lib"
install -m 0644 "$(dirname "$0")/guest/lib.sh" "$ROOT/lib/kestrel-guest.sh"
for x in "$@"; do
    src=${x%%:*}; dst=/extra/$(basename "$src")
    case $x in *:/*) dst=${x#*:} ;; esac
    [ -e "$src" ] || die "extra file '$src' not found"
    mkdir -p "$ROOT$(dirname "$dst")"
    cp -a "$src" "$ROOT$dst"
done
echo "root:x:0:0:root:/root:/bin/sh" > "$ROOT/etc/passwd"
echo "root:x:0:" > "$ROOT/etc/group"

cat > "$ROOT/bin/kestrel-out" <<'EOF'
#!/bin/sh
# kestrel-out [FILE...]: copy lines to the host (run.sh collects them in out.txt)
awk '{ print "KESTREL-OUT: " $0 }' "$@"
EOF
cat > "$ROOT/bin/kestrel-put" <<'EOF'
#!/bin/sh
# kestrel-put FILE [NAME]: send a file to the host (run.sh writes files/NAME)
f=$1; n=${2:-$(basename "$1")}
[ -f "$f" ] || { echo "kestrel-put: no file $f" >&2; exit 1; }
s=$(sha256sum "$f" | cut -d' ' -f1)
echo "KESTREL-FILE-BEGIN: $n"
base64 "$f" | awk -v n="$n" '{ print "KESTREL-FILE: " n " " $0 }'
echo "KESTREL-FILE-END: $n $s"
EOF
chmod 0755 "$ROOT/bin/kestrel-out" "$ROOT/bin/kestrel-put"

cat > "$ROOT/init" <<EOF
#!/bin/busybox sh
RUNID=$RUNID
LOGLEVEL=$LOGLEVEL
EOF
cat >> "$ROOT/init" <<'EOF'
export PATH=/bin:/sbin:/usr/bin:/usr/sbin HOME=/root
[ -e /bin/mount ] || /bin/busybox --install -s
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
exec </dev/console >/dev/console 2>&1
mount -t tmpfs tmpfs /tmp
mount -t tracefs tracefs /sys/kernel/tracing || echo "init: tracefs mount failed"
mount -t bpf bpf /sys/fs/bpf || echo "init: bpffs mount failed"
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
hostname kestrel-guest
echo "$LOGLEVEL" > /proc/sys/kernel/printk
echo "KESTREL-QEMU: guest up, kernel $(uname -r) $(uname -m), uptime $(cut -d' ' -f1 /proc/uptime)s"
cd /
sh /test.sh
rc=$?
up=$(cut -d' ' -f1 /proc/uptime)
echo "KESTREL-QEMU-UPTIME: $up"
if [ "$rc" -eq 0 ]; then
    echo "KESTREL-QEMU-RESULT: PASS run=$RUNID"
else
    reason="test.sh exit $rc"
    [ -s /tmp/kestrel-fail-reason ] && reason="$reason: $(head -n1 /tmp/kestrel-fail-reason)"
    echo "--- dmesg tail ---"
    dmesg | tail -n 20
    echo "KESTREL-QEMU-RESULT: FAIL run=$RUNID $reason"
fi
sync
poweroff -f
EOF
chmod 0755 "$ROOT/init"

(cd "$ROOT" && find . -print0 | LC_ALL=C sort -z | cpio --null -o -H newc -R 0:0 --quiet) \
    | gzip -1 > "$OUTDIR/initrd.gz"

# --------------------------------------------------------------------- boot
APPEND="console=$CONSOLE panic=-1 oops=panic rdinit=/init ${KESTREL_QEMU_APPEND:-}"
if [ "$ARCH" = arm64 ] || [ "$ARCH" = arm ]; then
    QARGS=(-M virt -cpu "$CPU")
else
    QARGS=(-M pc -accel tcg -cpu "$CPU")
fi
QARGS+=(-m "$MEM" -smp "$SMP" -nographic -no-reboot -nic none
        -kernel "$VMLINUZ" -initrd "$OUTDIR/initrd.gz" -append "$APPEND")

echo "run.sh: $ARCH kernel $VMLINUZ, timeout ${TIMEOUT}s, output $OUTDIR" >&2
RAW=$OUTDIR/console.raw
start=$(date +%s.%N)
load_start=$(cut -d' ' -f1 /proc/loadavg)
set +e
if [ "$VERBOSE" = 1 ]; then
    timeout -k 5 "$TIMEOUT" "$QEMU" "${QARGS[@]}" </dev/null 2>&1 | tee "$RAW" >&2
    qrc=${PIPESTATUS[0]}
else
    timeout -k 5 "$TIMEOUT" "$QEMU" "${QARGS[@]}" </dev/null >"$RAW" 2>&1
    qrc=$?
fi
set -e
end=$(date +%s.%N)
# A TCG guest starved by the host runs many times slower: the host's load
# beside a slow or timed-out run says whether that was it.
load_end=$(cut -d' ' -f1 /proc/loadavg)
{ tr -d '\r' < "$RAW"; echo; } > "$OUTDIR/console.log"
rm -f "$RAW"
LOG=$OUTDIR/console.log

wall=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.2f", b - a }')
uptime=$(sed -n 's/^KESTREL-QEMU-UPTIME: //p' "$LOG" | tail -n1)
echo "wall_seconds=$wall guest_uptime=${uptime:-none} qemu_status=$qrc host_load_1m=$load_start/$load_end" > "$OUTDIR/timing"

sed -n 's/^KESTREL-OUT: //p' "$LOG" > "$OUTDIR/out.txt"

# KESTREL-FILE transfers
xfer_bad=0
while read -r name sum; do
    safe=$(printf '%s' "$name" | tr -c 'A-Za-z0-9._-' '_')
    awk -v n="$name" '$1 == "KESTREL-FILE:" && $2 == n { print $3 }' "$LOG" \
        | base64 -d > "$OUTDIR/files/$safe" 2>/dev/null || true
    got=$(sha256sum "$OUTDIR/files/$safe" | cut -d' ' -f1)
    if [ "$got" != "$sum" ]; then
        echo "run.sh: transfer of '$name' corrupt (sha256 $got, guest said $sum)" >&2
        xfer_bad=1
    fi
done < <(sed -n 's/^KESTREL-FILE-END: //p' "$LOG")

line=$(grep -a "^KESTREL-QEMU-RESULT: [A-Z]* run=$RUNID" "$LOG" | tail -n1 || true)
case $line in
    "KESTREL-QEMU-RESULT: PASS run=$RUNID")
        echo PASS > "$OUTDIR/result"; rc=0 ;;
    "KESTREL-QEMU-RESULT: FAIL run=$RUNID"*)
        echo "FAIL ${line#"KESTREL-QEMU-RESULT: FAIL run=$RUNID "}" > "$OUTDIR/result"; rc=1 ;;
    *)
        if [ "$qrc" = 124 ] || [ "$qrc" = 137 ]; then
            why="timeout after ${TIMEOUT}s (host load average 1 min at start/end: $load_start/$load_end)"
        else why="QEMU exited $qrc without a result line (panic or crash?)"; fi
        echo "NORESULT $why" > "$OUTDIR/result"; rc=2 ;;
esac
[ "$rc" -eq 0 ] && [ "$xfer_bad" -ne 0 ] && rc=3

echo "run.sh: $(cat "$OUTDIR/result") ($ARCH $(basename "$(dirname "$VMLINUZ")"), wall ${wall}s, guest uptime ${uptime:-?}s)" >&2
if [ "$rc" -ne 0 ] && [ "$VERBOSE" != 1 ]; then
    echo "----- console tail ($LOG) -----" >&2
    tail -n 40 "$LOG" >&2
    echo "-------------------------------" >&2
fi
echo "$OUTDIR"
exit "$rc"
