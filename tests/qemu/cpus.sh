#!/usr/bin/env bash
# What the agent costs as CPUs grow (BENCHMARKS.md, "How cost grows"): boots
# one cached Debian kernel under QEMU (TCG) with 1, 2 and 4 vCPUs and runs
# guest/cpus.sh in each: ring contention (N processes of syscalls on N vCPUs,
# without and with the agent, interleaved) and the agent's CPU per snapshot on
# an idle guest (per-CPU counters summed at snapshot time). TCG times mean
# nothing on their own: it prints ratios within a guest and to the 1-vCPU one.
#
# Usage: tests/qemu/cpus.sh [--aarch64 BIN | --x86_64 BIN] [--reps R] [--iters I]
#                           [--probe-reps P] [--snap-reps S] [--window-cs CS]
#                           [--agent-flags F] [VCPUS ...]
#   --aarch64 BIN   the static agent for an arm64 guest (default arch, the edge
#                   gateways'); --x86_64 BIN boots amd64 instead (faster under
#                   TCG: give it more --iters)
#   --reps R        interleaved without/with-agent repetitions (default 5)
#   --probe-reps P  runs under an agent with BPF stats on (default 3)
#   --iters I       open+close pairs per process and run (default 5000)
#   --snap-reps S   idle-window pairs (100ms, 1h) for the snapshot CPU (default 3)
#   --window-cs CS  each idle window, centiseconds (default 300)
#   --agent-flags F the ring rows' agent gets these flags too, e.g.
#                   "--ring-buffer-size 8M" (words split at spaces)
#   VCPUS           default: 1 2 4
# Without a binary it builds one (scripts/build-static.sh; CARGO_TARGET_DIR is
# honoured). The load helper (src/sysloop.c) is built with the arch's musl gcc
# (scripts/install-build-deps.sh [--aarch64] installs it).
# Env: KESTREL_QEMU_* as for run.sh; KESTREL_QEMU_CPUS_OUT (default
# /tmp/kestrel-qemu-cpus) holds one run.sh output directory per vCPU count.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
OUT=${KESTREL_QEMU_CPUS_OUT:-/tmp/kestrel-qemu-cpus}
ARCH=arm64 BIN='' REPS=5 PROBE_REPS=3 SNAP_REPS=3 ITERS=5000 WINDOW_CS=300 AGENT_FLAGS=''
VCPUS=()

usage() { sed -n '2,27p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 64; }
while [ $# -gt 0 ]; do
    case $1 in
        --aarch64|--arm64) [ $# -ge 2 ] || usage; ARCH=arm64; BIN=$2; shift 2 ;;
        --x86_64|--amd64) [ $# -ge 2 ] || usage; ARCH=amd64; BIN=$2; shift 2 ;;
        --reps) [ $# -ge 2 ] || usage; REPS=$2; shift 2 ;;
        --probe-reps) [ $# -ge 2 ] || usage; PROBE_REPS=$2; shift 2 ;;
        --iters) [ $# -ge 2 ] || usage; ITERS=$2; shift 2 ;;
        --snap-reps) [ $# -ge 2 ] || usage; SNAP_REPS=$2; shift 2 ;;
        --window-cs) [ $# -ge 2 ] || usage; WINDOW_CS=$2; shift 2 ;;
        --agent-flags) [ $# -ge 2 ] || usage; AGENT_FLAGS=$2; shift 2 ;;
        [0-9]*) VCPUS+=("$1"); shift ;;
        *) usage ;;
    esac
done
[ ${#VCPUS[@]} -gt 0 ] || VCPUS=(1 2 4)
case $AGENT_FLAGS in *[!A-Za-z0-9\ =._-]*)
    echo "cpus.sh: --agent-flags: only letters, digits, spaces and = . _ - (it is sourced in the guest)" >&2; exit 64 ;;
esac

triple=aarch64 cc=aarch64-linux-musl-gcc
[ "$ARCH" = amd64 ] && triple=x86_64 cc=x86_64-linux-musl-gcc
if [ -z "$BIN" ]; then
    "$REPO/scripts/build-static.sh" "$triple-unknown-linux-musl" >&2
    BIN=${CARGO_TARGET_DIR:-$REPO/target}/$triple-unknown-linux-musl/release/kestrel
fi
[ -f "$BIN" ] || { echo "cpus.sh: no binary $BIN" >&2; exit 64; }
"$HERE/fetch.sh" --no-host-deps >&2 || { echo "cpus.sh: fetch.sh failed" >&2; exit 64; }
mkdir -p "$OUT"
"$cc" -static -O2 -s -o "$OUT/sysloop" "$HERE/src/sysloop.c" ||
    { echo "cpus.sh: $cc failed (scripts/install-build-deps.sh)" >&2; exit 64; }
printf '%s\n' "REPS=$REPS" "PROBE_REPS=$PROBE_REPS" "SNAP_REPS=$SNAP_REPS" "ITERS=$ITERS" "WINDOW_CS=$WINDOW_CS" \
    "AGENT_FLAGS='$AGENT_FLAGS'" > "$OUT/test.env"

# median of the numbers on stdin
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
fails=0
rows=()
base_snap=
for n in "${VCPUS[@]}"; do
    dir=$OUT/smp$n
    load=$(cut -d' ' -f1 /proc/loadavg) # the host's, at this guest's start
    rc=0
    KESTREL_QEMU_SMP=$n KESTREL_QEMU_TIMEOUT=${KESTREL_QEMU_TIMEOUT:-600} KESTREL_QEMU_OUTDIR=$dir \
        "$HERE/run.sh" "$ARCH" 6.1 "$BIN" "$HERE/guest/cpus.sh" \
        "$OUT/sysloop:/extra/sysloop" "$OUT/test.env:/etc/kestrel-test.env" >/dev/null || rc=$?
    f=$dir/out.txt
    if [ "$rc" -ne 0 ] || ! grep -qx 'result=PASS' "$f"; then
        fails=$((fails + 1))
        rows+=("$(printf '%-5s FAIL (run.sh=%s: %s; console %s)' "$n" "$rc" "$(cat "$dir/result" 2>/dev/null)" "$dir/console.log")")
        continue
    fi
    # ring: on/off per repetition, its median; the agent's events and drops
    pairs=$(sed -n 's/.*ring_off_ns=\([0-9]*\) ring_on_ns=\([0-9]*\).*/\2 \1/p' "$f")
    slow=$(awk '{ printf "%.2f\n", $1 / $2 }' <<<"$pairs" | median)
    # the fastest on over the fastest off: the runs the host disturbed least
    best=$(awk 'NR == 1 || $1 < a { a = $1 } NR == 1 || $2 < b { b = $2 } END { printf "%.2f", a / b }' <<<"$pairs")
    evts=$(sed -n 's/.* n_evts=\([0-9]*\).*/\1/p' "$f" | awk '{ s += $1 } END { print s + 0 }')
    drops=$(sed -n 's/.* n_drops=\([0-9]*\).*/\1/p' "$f" | awk '{ s += $1 } END { print s + 0 }')
    # snap: guest CPU ms a snapshot, per pair of windows: (ns at 100ms - ns at
    # 1h scaled to the same window) / snapshots in it; the median of the pairs
    snap=$(awk '$1 == "snap" { split($0, w, /[ =]/); v[w[5]] = w[7]; c[w[5]] = w[9]
                               s[w[5]] = w[11] }
                $1 == "snap" && w[5] == "1h" && c["100ms"] > 0 {
                    printf "%.3f\n", (v["100ms"] - v["1h"] * s["100ms"] / s["1h"]) / c["100ms"] / 1e6 }' "$f" | median)
    # probe: sys_exit's BPF ns per call (median)
    probe=$(sed -n 's/^probe .*sys_exit_ns_per_call=\([0-9]*\).*/\1/p' "$f" | median | cut -d. -f1)
    [ -n "$base_snap" ] || base_snap=$snap base_probe=$probe
    rows+=("$(printf '%-5s %-7s %-8s %-9s %-7s %-9s %-6s %-11s %-6s %s' "$n" "${slow}x" "${best}x" "$evts" "$drops" \
        "$probe" "$(ratio "$probe" "$base_probe")" "$snap" "$(ratio "$snap" "$base_snap")" "$load")")
done

echo
printf '%-5s %-7s %-8s %-9s %-7s %-9s %-6s %-11s %-6s %s\n' vCPUs on/off "min/min" n_evts n_drops "probe ns" ratio "snapshot ms" ratio "host load"
printf '%s\n' "${rows[@]}"
echo "($ARCH 6.1; on/off: median of $REPS reps, N procs x $ITERS open+close; probe: median of $PROBE_REPS;" \
    "snapshot: median of $SNAP_REPS pairs of ${WINDOW_CS} cs windows;" \
    "host load at each guest's start, 1 min; outputs in $OUT)"
[ "$fails" -eq 0 ]
