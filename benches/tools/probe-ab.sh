#!/bin/sh
# Two builds' probe programs side by side (issue 22): probe-hot.sh over A and
# B, alternated ROUNDS times, each round printing both builds' ns per mix
# iteration in PROG, whole and split at its first helper call (before it:
# the path every syscall takes; from it on: mostly the selected calls'
# work), then the medians. A whole program reads 190-240 ns from run to run
# on a shared host; the part before the call moves less, so a change to the
# every-call path shows there first. Root; what probe-hot.sh needs.
#
#   benches/tools/probe-ab.sh A_BIN B_BIN [ROUNDS [PROG [AGENT_FLAGS]]]
#       (8 rounds, sys_exit, the defaults)
set -eu
a=$1
b=$2
rounds=${3:-8}
prog=${4:-sys_exit}
flags=${5:-}
hot=$(dirname "$0")/probe-hot.sh
out=$(mktemp)
trap 'rm -f "$out"' EXIT

# One run: "whole before after" in ns per iteration.
run() {
    "$hot" "$1" 1000000 "$prog" "$flags" 1 | awk '
        NR == 1 { whole = $(NF - 3) }
        /^split at/ { before = $(NF - 5); after = $(NF - 3) }
        END { print whole, before, after }'
}

echo "| round | A whole | A before | A from the call | B whole | B before | B from the call | B - A before |"
echo "|---|---|---|---|---|---|---|---|"
r=1
while [ "$r" -le "$rounds" ]; do
    line=$(echo "$r $(run "$a") $(run "$b")" | awk '{ printf "%s %.1f", $0, $6 - $3 }')
    echo "$line" >> "$out"
    echo "$line" | awk '{ printf "| %s | %s | %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6, $7, $8 }'
    r=$((r + 1))
done
# Medians per column, the lower one for an even count as ab-mix.sh takes
# it; the last is the median of the rounds' differences, which a drift of
# the host cancels.
printf "| median |"
for c in 2 3 4 5 6 7 8; do
    printf " %s |" "$(cut -d' ' -f"$c" "$out" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')"
done
echo
