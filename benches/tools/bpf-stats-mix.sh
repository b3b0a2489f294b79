#!/bin/sh
# The probe's BPF run time over one mix (issue 22): each program's runs and
# ns per run, and ns per mix iteration, from the kernel's BPF stats (the
# agent's --libbpf-stats-enabled) read with bpftool before and after the C
# loop (mixloop.c). Alternate two builds by hand to compare them:
#
#   benches/tools/bpf-stats-mix.sh [KESTREL_BIN [ITERS [EXEC_EVERY [AGENT_FLAGS]]]]
#       (target/release/kestrel, 200000, 0, none: the defaults)
set -eu
bin=${1:-target/release/kestrel}
iters=${2:-200000}
every=${3:-0}
flags=${4:-}
name=bpf-stats-mix
# shellcheck source=benches/tools/lib.sh
. "$(dirname "$0")/lib.sh"
need bpftool cc
build_mixloop

# One line per program with stats: "id name run_cnt run_time_ns".
snapshot() {
    bpftool prog show | awk '
        /^[0-9]+:/ { id = $1; name = ""; for (i = 2; i < NF; i++) if ($i == "name") name = $(i + 1) }
        /run_time_ns/ { for (i = 1; i < NF; i++) { if ($i == "run_time_ns") t = $(i + 1); if ($i == "run_cnt") c = $(i + 1) }
                        if (name != "") print id, name, c, t }' | sort
}
# shellcheck disable=SC2086 # the agent's flags, split on purpose
start_agent "$work/agent" any --libbpf-stats-enabled true $flags
snapshot > "$work/before"
secs=$("$work/mixloop" "$iters" "$every")
snapshot > "$work/after"
stop_agent
echo "mix: $iters iterations in $secs s"
join "$work/before" "$work/after" | awk -v n="$iters" '
    { runs = $6 - $3; ns = $7 - $4
      if (runs > 0) printf "%-20s runs %9d  ns/run %6.1f  ns/iteration %6.1f\n", $2, runs, ns / runs, ns / n }'
