#!/bin/sh
# Issue 22's rows in one session, one log a row (BENCHMARKS.md, "Every growth row and goal
# at one head"): table sizes, rule sets, event rates, the side-by-side goals on two cores and
# on one, the per-call tables, the shipped binary's VmRSS by table size, and the QEMU vCPU
# rows. Root. Run it on a quiet host: every row is a ratio within its own run, but a busy
# neighbour moves the spread.
#
#   benches/tools/sweep.sh [OUT]        (default /tmp/kestrel-sweep)
#
# KESTREL_BENCH_SCAP_OPEN (scripts/build-scap-open.sh prints it) adds Falco's anchor to the
# side-by-side rows; KESTREL_SWEEP_QEMU=0 leaves out the vCPU rows (about 6 minutes).
set -eu

out=${1:-/tmp/kestrel-sweep}
cd "$(dirname "$0")/../.."
mkdir -p "$out"
static=target/x86_64-unknown-linux-musl/release/kestrel

step() {
    echo "== $(date -u +%H:%M:%S) load $(cut -d' ' -f1 /proc/loadavg) $1" | tee -a "$out/index.log"
}

rig() {
    cargo bench --features bench --bench rig >"$out/$1.log" 2>&1
}

step build
{
    cargo build --release
    scripts/build-static.sh x86_64-unknown-linux-musl
    cargo bench --features bench --bench rig --no-run
    cargo bench --bench scale --no-run
    cargo bench --bench replay --no-run
} >"$out/build.log" 2>&1
ls -l "$static" >>"$out/index.log"

step scale
cargo bench --bench scale >"$out/scale.log" 2>&1
step replay
cargo bench --bench replay >"$out/replay.log" 2>&1
step rates
KESTREL_BENCH_ONLY=rates rig rates
step side
KESTREL_BENCH_ONLY=side KESTREL_BENCH_REPS=21 rig side
step side-one-core
KESTREL_BENCH_CPU=1 KESTREL_BENCH_ONLY=side KESTREL_BENCH_REPS=11 rig side-one-core
step mix-parts
KESTREL_BENCH_ONLY=mix KESTREL_BENCH_REPS=21 \
    KESTREL_BENCH_MIX_ARGS="--rules none;--rules none --culprits false" rig mix-parts
step traced
KESTREL_BENCH_ONLY=traced KESTREL_BENCH_REPS=9 rig traced
step untraced
KESTREL_BENCH_ONLY=untraced KESTREL_BENCH_REPS=9 rig untraced

step rss
for n in 4096 16384 65536 262144; do
    for rep in 1 2; do
        "$static" run --interval 1h --thread-table-size "$n" --fd-table-size "$n" \
            >/dev/null 2>"$out/rss-$n-$rep.err" &
        agent=$!
        sleep 3
        echo "$n rep$rep $(grep VmRSS "/proc/$agent/status")" >>"$out/rss.log"
        kill "$agent"
        wait "$agent" || true
    done
done

if [ "${KESTREL_SWEEP_QEMU:-1}" != 0 ]; then
    step cpus-arm64
    scripts/build-static.sh aarch64-unknown-linux-musl >>"$out/build.log" 2>&1
    tests/qemu/cpus.sh --aarch64 target/aarch64-unknown-linux-musl/release/kestrel \
        >"$out/cpus-arm64.log" 2>&1
    step cpus-amd64
    tests/qemu/cpus.sh --x86_64 "$static" --iters 20000 >"$out/cpus-amd64.log" 2>&1
fi
step finished
