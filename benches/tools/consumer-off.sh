#!/bin/sh
# What the agent's reading of the ring costs the workload on another CPU
# (issue 22): the C loop (mixloop.c, no exec) on CPU 1 with the agent on
# CPU 0, alternated ROUNDS times, under the bare attach, under the defaults
# with the agent consuming, and under the defaults with the agent stopped
# (SIGSTOP) for the whole loop. The ring is 64 MiB so that a stopped agent
# drops nothing (the script checks: a drop makes the stopped row a different
# path, and it says so); the agent takes the backlog after the loop, outside
# the timing. Running minus stopped is what the agent's reading costs the
# workload; stopped minus bare is the probe's own share.
# Root; needs cc, taskset, 2+ CPUs.
#
#   benches/tools/consumer-off.sh [KESTREL_BIN [ROUNDS [ITERS]]]
#       (target/release/kestrel, 7, 200000)
set -eu
bin=${1:-target/release/kestrel}
rounds=${2:-7}
iters=${3:-200000}
name=consumer-off
# shellcheck source=benches/tools/lib.sh
. "$(dirname "$0")/lib.sh"
need cc taskset
[ "$(nproc)" -ge 2 ] || { echo "consumer-off: needs 2 CPUs (loop and agent apart)" >&2; exit 2; }
build_mixloop

# The final snapshot's scap.n_drops (stop_agent has written it).
drops() {
    tail -n 1 "$1" | grep -o '"scap.n_drops":[0-9]*' | cut -d: -f2
}

: > "$work/times"
i=0
while [ "$i" -lt "$rounds" ]; do
    start_agent "$work/bare.json" 0 --syscalls none
    echo "bare $(loop_apart "$iters")" >>"$work/times"
    stop_agent
    start_agent "$work/running.json" 0 --ring-buffer-size 64M
    echo "running $(loop_apart "$iters")" >>"$work/times"
    stop_agent
    start_agent "$work/stopped.json" 0 --ring-buffer-size 64M
    kill -STOP "$agent"
    echo "stopped $(loop_apart "$iters")" >>"$work/times"
    kill -CONT "$agent"
    # The backlog first: a snapshot taken before it is read would miss it.
    sleep 1
    stop_agent
    d=$(drops "$work/stopped.json")
    [ "${d:-0}" = 0 ] || echo "consumer-off: $d drops with the agent stopped: raise the ring or lower ITERS" >&2
    rm -f "$work/bare.json" "$work/running.json" "$work/stopped.json"
    i=$((i + 1))
done

# Medians per setup, then ns per iteration over the bare attach.
for setup in bare running stopped; do
    grep "^$setup " "$work/times" | cut -d' ' -f2 | sort -g |
        awk -v s="$setup" '{ v[NR] = $1 } END { print s, v[int((NR + 1) / 2)] }'
done | awk -v n="$iters" '
{ t[$1] = $2 }
END {
    printf "| setup (%d iterations, medians) | s | ns per iteration over the bare attach |\n", n
    print "|---|---|---|"
    printf "| bare attach | %.4f | - |\n", t["bare"]
    printf "| defaults, agent consuming | %.4f | %+.1f |\n", t["running"], (t["running"] - t["bare"]) / n * 1e9
    printf "| defaults, agent stopped | %.4f | %+.1f |\n", t["stopped"], (t["stopped"] - t["bare"]) / n * 1e9
}'
