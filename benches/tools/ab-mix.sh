#!/bin/sh
# Two builds' mix overhead, A against B (issue 22): the C loop (mixloop.c, no
# exec) on CPU 1, each agent on CPU 0 with its defaults, ROUNDS rounds of the
# bare attach (A's) and then A and B in alternating order, so that a drift of
# the host falls on both. Prints each build's median ns per iteration over the
# bare attach, and the median and quartiles of B minus A within a round, also
# split by order (which leaves out what the second run of a round pays); then
# the same for the agents' own CPU time during the loop (schedstat), which is
# what an agent-side change moves (on one core it adds to the workload's).
# Root; needs cc, taskset, 2+ CPUs.
#
#   benches/tools/ab-mix.sh A_BIN B_BIN [ROUNDS [ITERS]]      (20, 200000)
set -eu
[ $# -ge 2 ] || { echo "usage: ab-mix.sh A_BIN B_BIN [ROUNDS [ITERS]]" >&2; exit 2; }
a=$1
b=$2
rounds=${3:-20}
iters=${4:-200000}
name=ab-mix
bin=$a
# shellcheck source=benches/tools/lib.sh
. "$(dirname "$0")/lib.sh"
need cc taskset
[ -x "$b" ] || { echo "ab-mix: no kestrel binary at $b" >&2; exit 2; }
[ "$(nproc)" -ge 2 ] || { echo "ab-mix: needs 2 CPUs (loop and agent apart)" >&2; exit 2; }
build_mixloop

# timed BIN FLAGS...: the loop's seconds under BIN's agent, and the agent's
# CPU ns during the loop.
timed() {
    bin=$1
    shift
    start_agent "$work/snapshot.json" 0 "$@"
    before=$(agent_cpu_ns)
    secs=$(loop_apart "$iters")
    echo "$secs $(($(agent_cpu_ns) - before))"
    stop_agent
    rm -f "$work/snapshot.json"
}

: > "$work/rounds"
i=0
while [ "$i" -lt "$rounds" ]; do
    bare=$(timed "$a" --syscalls none)
    bare=${bare%% *}
    if [ $((i % 2)) = 0 ]; then
        ta=$(timed "$a")
        tb=$(timed "$b")
    else
        tb=$(timed "$b")
        ta=$(timed "$a")
    fi
    echo "$bare $ta $tb" >>"$work/rounds"
    i=$((i + 1))
done
awk -v n="$iters" '
function median(v, k,   i, j, t) {
    for (i = 2; i <= k; i++)
        for (j = i; j > 1 && v[j - 1] > v[j]; j--) { t = v[j]; v[j] = v[j - 1]; v[j - 1] = t }
    return v[int((k + 1) / 2)]
}
# $1 bare s; $2 A s, $3 A agent ns; $4 B s, $5 B agent ns
{
    oa[NR] = ($2 - $1) / n * 1e9; ob[NR] = ($4 - $1) / n * 1e9; d[NR] = ($4 - $2) / n * 1e9
    ca[NR] = $3 / n; cb[NR] = $5 / n; dc[NR] = ($5 - $3) / n
    if (NR % 2) dab[++kab] = d[NR]; else dba[++kba] = d[NR]
}
END {
    ma = median(oa, NR); mb = median(ob, NR); md = median(d, NR)
    printf "%d rounds of %d iterations: A +%.1f, B +%.1f ns an iteration over the bare attach (medians)\n", NR, n, ma, mb
    printf "B - A within a round: median %+.1f ns, quartiles %+.1f and %+.1f\n", md, d[int(NR / 4) + 1], d[int(3 * NR / 4)]
    # Rounds alternate the order (odd NR: A ran first). Whatever the second
    # run of a round pays for its place falls on B in one half and on A in
    # the other: their mean leaves it out, half their gap is its size.
    if (kab > 0 && kba > 0) {
        mab = median(dab, kab); mba = median(dba, kba)
        printf "B - A by order: A first %+.1f, B first %+.1f (medians): the builds %+.1f, running second %+.1f ns\n", mab, mba, (mab + mba) / 2, (mab - mba) / 2
    }
    ma = median(ca, NR); mb = median(cb, NR); md = median(dc, NR)
    printf "agent CPU: A %.1f, B %.1f ns an iteration (medians); B - A within a round: median %+.1f ns, quartiles %+.1f and %+.1f\n", ma, mb, md, dc[int(NR / 4) + 1], dc[int(3 * NR / 4)]
}' "$work/rounds"
