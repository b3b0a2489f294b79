#!/bin/sh
# Where the mix's extra time goes under the agent (issue 22): the C loop
# (mixloop.c, no exec) pinned to CPU 1 under `perf record -e cpu-clock` of
# that CPU, with the bare attach (--syscalls none) and with the defaults (the
# agent pinned to CPU 0), alternated ROUNDS times; the samples of each setup,
# summed over its rounds, are turned into ns per iteration by group of kernel
# and user functions. One round's groups move by a few percent (the rest of
# the kernel by up to 300 ns), so read the probe's own groups, or many rounds.
# Then each symbol that moved by more than 8 ns an iteration.
# Root; needs perf, cc, 2+ CPUs.
#
#   benches/tools/profile-mix.sh [KESTREL_BIN [ROUNDS [ITERS [FREQ]]]]
#       (target/release/kestrel, 3, 1000000, 20000)
set -eu
bin=${1:-target/release/kestrel}
rounds=${2:-3}
iters=${3:-1000000}
freq=${4:-20000}
name=profile-mix
# shellcheck source=benches/tools/lib.sh
. "$(dirname "$0")/lib.sh"
need perf cc taskset
[ "$(nproc)" -ge 2 ] || { echo "profile-mix: needs 2 CPUs (loop and agent apart)" >&2; exit 2; }
build_mixloop

# profile NAME AGENT-ARGS: samples per symbol appended to $work/NAME.txt ("count [k|.] symbol")
profile() {
    # shellcheck disable=SC2086 # $2: the agent's flags, split on purpose
    start_agent "$work/agent-$1" 0 $2
    perf record -q -e cpu-clock -F "$freq" -C 1 -o "$work/$1.data" -- \
        taskset -c 1 "$work/mixloop" "$iters" 0 >/dev/null
    stop_agent
    perf report -i "$work/$1.data" --no-children --sort sym -q -n -g none 2>/dev/null |
        awk 'NF >= 4 { print $2, $3, $4 }' >> "$work/$1.txt"
}
: > "$work/bare.txt"
: > "$work/defaults.txt"
i=0
while [ "$i" -lt "$rounds" ]; do
    profile bare "--syscalls none"
    profile defaults ""
    i=$((i + 1))
done

# One sample is 1/FREQ s of CPU 1, spread over ITERS iterations of each round.
ns=$(awk -v f="$freq" -v n="$iters" -v r="$rounds" 'BEGIN { print 1e9 / f / n / r }')
awk -v ns="$ns" '
BEGIN {
    n = split("the probe'"'"'s programs;user copies: the path read, and the read syscall'"'"'s own checks in both;current-task helpers;ring buffer helpers;the rest of the kernel;user space", names, ";")
}
# The index of a function group in names.
function group(kind, sym) {
    if (sym ~ /^bpf_prog_/) return 1
    if (sym ~ /^(bpf_probe_read_user(_str)?|copy_from_user_nofault|strncpy_from_user_nofault|nmi_uaccess_okay|bpf_loaded_mm_is_foreign|__check_object_size|check_stack_object)$/)
        return 2
    if (sym ~ /^bpf_get_current_/) return 3
    if (sym ~ /^bpf_ringbuf_/) return 4
    if (kind == "[.]") return 6
    return 5
}
FNR == 1 { file++ }
{ g = group($2, $3); if (file == 1) b[g] += $1 * ns; else d[g] += $1 * ns }
END {
    print "| where (ns per iteration) | bare attach | defaults | difference |"
    print "|---|---|---|---|"
    for (i = 1; i <= n; i++) {
        printf "| %s | %.0f | %.0f | %+.0f |\n", names[i], b[i], d[i], d[i] - b[i]
        tb += b[i]
        td += d[i]
    }
    printf "| all | %.0f | %.0f | %+.0f |\n", tb, td, td - tb
}' "$work/bare.txt" "$work/defaults.txt"

# The symbols themselves, where the groups hide which one moved: each that
# differs by more than 8 ns an iteration between the two setups.
echo
echo "| symbol (moved by more than 8 ns an iteration) | bare attach | defaults | difference |"
echo "|---|---|---|---|"
awk -v ns="$ns" '
FNR == 1 { file++ }
{ if (file == 1) b[$3] += $1 * ns; else d[$3] += $1 * ns; seen[$3] = 1 }
END {
    for (s in seen) if (d[s] - b[s] > 8 || b[s] - d[s] > 8)
        printf "| %s | %.1f | %.1f | %+.1f |\n", s, b[s], d[s], d[s] - b[s]
}' "$work/bare.txt" "$work/defaults.txt" | sort -t'|' -k5 -g -r
