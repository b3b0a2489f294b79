#!/bin/bash
# Kernel-side cost per program call (BPF run-time stats) under a fixed
# syscall-heavy workload, with the default syscall set and with none
# selected, plus the stripped static binary size. Run as root:
#   scripts/bench.sh [SECONDS]
set -eu
cd "$(dirname "$0")/.."
secs=${1:-4}
cargo build --release -q --target x86_64-unknown-linux-musl
bin=target/x86_64-unknown-linux-musl/release/kestrel
out=$(mktemp -d)

# Fixed workload: untraced read/write traffic plus traced open/close pairs.
workload() {
    dd if=/dev/zero of=/dev/null bs=1 count=3000000 2>/dev/null &
    for _ in $(seq 60000); do : </etc/hostname; done
    wait
}

measure() { # name, syscalls
    "$bin" run --output "file:$out/$1.json" --interval 1h --syscalls "$2" \
        --libbpf-stats-enabled true 2>/dev/null &
    local pid=$!
    sleep 1
    workload
    kill -TERM $pid
    wait $pid
    tail -n 1 "$out/$1.json" | python3 -c '
import json, sys
f = json.load(sys.stdin)["output_fields"]
for p in ("sys_exit", "sched_p_exec", "sched_proc_exit"):
    if f"scap.{p}.run_cnt" in f:
        print(f"  {p:16s} avg {f[f"scap.{p}.avg_time_ns"]:5d} ns over {f[f"scap.{p}.run_cnt"]:9d} calls")
print(f"  events {f.get(\"scap.n_evts\", 0)}, drops {f.get(\"scap.n_drops\", 0)}, rss {f.get(\"falco.memory_rss\", 0)} MB")'
}

echo "machine: $(uname -r), $(nproc) CPUs; $(date -u +%F)"
for round in 1 2; do
    echo "round $round: default set"; measure "default$round" default
    echo "round $round: nothing selected"; measure "none$round" none
done
cp "$bin" "$out/stripped" && strip "$out/stripped" 2>/dev/null || true
echo "binary: $(stat -c %s "$out/stripped") bytes stripped (x86_64-unknown-linux-musl)"
rm -rf "$out"
