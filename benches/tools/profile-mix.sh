#!/bin/sh
# Where the mix's extra time goes under the agent (issue 22): the C loop
# (mixloop.c, no exec) pinned to CPU 1 under `perf record -e cpu-clock` of
# that CPU, with the bare attach (--syscalls none) and with the defaults (the
# agent pinned to CPU 0), alternated ROUNDS times; the samples of each setup,
# summed over its rounds, are turned into ns per iteration by group of kernel
# and user functions. One round's groups move by a few percent (the rest of
# the kernel by up to 300 ns), so read the probe's own groups, or many rounds.
# Root; needs perf, cc, 2+ CPUs.
#
#   benches/tools/profile-mix.sh [KESTREL_BIN [ROUNDS [ITERS [FREQ]]]]
#       (target/release/kestrel, 3, 1000000, 20000)
set -eu
bin=${1:-target/release/kestrel}
rounds=${2:-3}
iters=${3:-1000000}
freq=${4:-20000}
here=$(cd "$(dirname "$0")" && pwd)
for tool in perf cc taskset; do
    command -v "$tool" >/dev/null 2>&1 || { echo "profile-mix: $tool missing" >&2; exit 2; }
done
[ -x "$bin" ] || { echo "profile-mix: no kestrel binary at $bin (cargo build --release)" >&2; exit 2; }
[ "$(nproc)" -ge 2 ] || { echo "profile-mix: needs 2 CPUs (loop and agent apart)" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cc -O2 -o "$work/mixloop" "$here/mixloop.c"

# profile NAME AGENT-ARGS: samples per symbol appended to $work/NAME.txt ("count [k|.] symbol")
profile() {
    out=$work/agent-$1
    # shellcheck disable=SC2086 # $2: the agent's flags, split on purpose
    taskset -c 0 "$bin" run --interval 1h --output "file:$out" $2 2>/dev/null &
    agent=$!
    while [ ! -s "$out" ]; do
        kill -0 "$agent" 2>/dev/null || { echo "profile-mix: the agent did not start" >&2; exit 1; }
        sleep 0.05
    done
    perf record -q -e cpu-clock -F "$freq" -C 1 -o "$work/$1.data" -- \
        taskset -c 1 "$work/mixloop" "$iters" 0 >/dev/null
    kill -TERM "$agent"
    wait "$agent" || true
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
awk -v ns="$(awk -v f="$freq" -v n="$iters" -v r="$rounds" 'BEGIN { print 1e9 / f / n / r }')" '
function group(kind, sym) {
    if (sym ~ /^bpf_prog_/) return "the probe'"'"'s programs"
    if (sym ~ /^(bpf_probe_read_user(_str)?|copy_from_user_nofault|strncpy_from_user_nofault|nmi_uaccess_okay|bpf_loaded_mm_is_foreign|__check_object_size|check_stack_object)$/)
        return "user copies: the path read, and the read syscall'"'"'s own checks in both"
    if (sym ~ /^bpf_ringbuf_/) return "ring buffer helpers"
    if (sym ~ /^bpf_get_current_/) return "current-task helpers"
    if (kind == "[.]") return "user space"
    return "the rest of the kernel"
}
FNR == 1 { file++ }
{ g = group($2, $3); if (file == 1) b[g] += $1 * ns; else d[g] += $1 * ns }
END {
    print "| where (ns per iteration) | bare attach | defaults | difference |"
    print "|---|---|---|---|"
    n = split("the probe'"'"'s programs;user copies: the path read, and the read syscall'"'"'s own checks in both;current-task helpers;ring buffer helpers;the rest of the kernel;user space", order, ";")
    for (i = 1; i <= n; i++) {
        g = order[i]
        printf "| %s | %.0f | %.0f | %+.0f |\n", g, b[g], d[g], d[g] - b[g]
        tb += b[g]
        td += d[g]
    }
    printf "| all | %.0f | %.0f | %+.0f |\n", tb, td, td - tb
}' "$work/bare.txt" "$work/defaults.txt"
