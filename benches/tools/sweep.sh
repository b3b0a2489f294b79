#!/bin/sh
# Issue 22's rows in one session, one log a row (BENCHMARKS.md, "Every growth row and goal
# at one head"): table sizes, rule sets, event rates, the side-by-side goals on two cores and
# on one, the per-call tables, the shipped binary's VmRSS by table size, and the QEMU vCPU
# rows; the side-by-side goal also with the workload and the agent on fixed CPUs apart, and
# the mix with the agent stopped (benches/tools/consumer-off.sh). Root. Run it on a quiet
# host: every row is a ratio within its own run, but a busy neighbour moves the spread.
#
#   benches/tools/sweep.sh [LOGS]       (default /tmp/kestrel-sweep)
#
# KESTREL_BENCH_SCAP_OPEN (scripts/build-scap-open.sh prints it) adds Falco's anchor to the
# side-by-side rows; KESTREL_SWEEP_QEMU=0 leaves out the vCPU rows (about 6 minutes).
set -eu

logs=${1:-/tmp/kestrel-sweep}
cd "$(dirname "$0")/../.."
mkdir -p "$logs"
static=target/x86_64-unknown-linux-musl/release/kestrel

# A failed row stops the sweep (set -e); this line names it.
current=build
say_failed() {
    status=$?
    [ "$status" = 0 ] || echo "sweep: $current failed (exit $status); see $logs/$current.log" >&2
}
trap say_failed EXIT

step() {
    current=$1
    echo "== $(date -u +%H:%M:%S) load $(cut -d' ' -f1 /proc/loadavg) $1" | tee -a "$logs/index.log"
}

rig() {
    cargo bench --features bench --bench rig >"$logs/$1.log" 2>&1
}

step build
{
    cargo build --release
    scripts/build-static.sh x86_64-unknown-linux-musl
    cargo bench --features bench --bench rig --no-run
    cargo bench --bench scale --no-run
    cargo bench --bench replay --no-run
} >"$logs/build.log" 2>&1
ls -l "$static" >>"$logs/index.log"

step scale
cargo bench --bench scale >"$logs/scale.log" 2>&1
step replay
cargo bench --bench replay >"$logs/replay.log" 2>&1
step rates
KESTREL_BENCH_ONLY=rates rig rates
step side
KESTREL_BENCH_ONLY=side KESTREL_BENCH_REPS=21 rig side
step side-apart
KESTREL_BENCH_CPU=0 KESTREL_BENCH_AGENT_CPU=1 KESTREL_BENCH_ONLY=side KESTREL_BENCH_REPS=21 \
    rig side-apart
step side-one-core
KESTREL_BENCH_CPU=1 KESTREL_BENCH_ONLY=side KESTREL_BENCH_REPS=11 rig side-one-core
step consumer-off
benches/tools/consumer-off.sh target/release/kestrel 7 >"$logs/consumer-off.log" 2>&1
step mix-parts
KESTREL_BENCH_ONLY=mix KESTREL_BENCH_REPS=21 \
    KESTREL_BENCH_MIX_ARGS="--rules none;--rules none --culprits false" rig mix-parts
step traced
KESTREL_BENCH_ONLY=traced KESTREL_BENCH_REPS=9 rig traced
step untraced
KESTREL_BENCH_ONLY=untraced KESTREL_BENCH_REPS=9 rig untraced

# The shipped binary's VmRSS 3 s after its first snapshot (lib.sh: an agent
# that does not start stops the sweep instead of leaving a blank row).
step rss
name=sweep
bin=$static
# shellcheck source=benches/tools/lib.sh
. benches/tools/lib.sh
for n in 4096 16384 65536 262144; do
    for rep in 1 2; do
        rm -f "$logs/rss-snapshot.json"
        start_agent "$logs/rss-snapshot.json" any --thread-table-size "$n" --fd-table-size "$n"
        sleep 3
        echo "$n rep$rep $(grep VmRSS "/proc/$agent/status")" >>"$logs/rss.log"
        stop_agent
    done
done

if [ "${KESTREL_SWEEP_QEMU:-1}" != 0 ]; then
    step cpus-arm64
    scripts/build-static.sh aarch64-unknown-linux-musl >>"$logs/build.log" 2>&1
    tests/qemu/cpus.sh --aarch64 target/aarch64-unknown-linux-musl/release/kestrel \
        >"$logs/cpus-arm64.log" 2>&1
    step cpus-amd64
    tests/qemu/cpus.sh --x86_64 "$static" --iters 20000 >"$logs/cpus-amd64.log" 2>&1
fi
step finished
