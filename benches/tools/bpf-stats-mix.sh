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
here=$(cd "$(dirname "$0")" && pwd)
for tool in bpftool cc; do
    command -v "$tool" >/dev/null 2>&1 || { echo "bpf-stats-mix: $tool missing" >&2; exit 2; }
done
[ -x "$bin" ] || { echo "bpf-stats-mix: no kestrel binary at $bin (cargo build --release)" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cc -O2 -o "$work/mixloop" "$here/mixloop.c"

# One line per program with stats: "id name run_cnt run_time_ns".
snapshot() {
    bpftool prog show | awk '
        /^[0-9]+:/ { id = $1; name = ""; for (i = 2; i < NF; i++) if ($i == "name") name = $(i + 1) }
        /run_time_ns/ { for (i = 1; i < NF; i++) { if ($i == "run_time_ns") t = $(i + 1); if ($i == "run_cnt") c = $(i + 1) }
                        if (name != "") print id, name, c, t }' | sort
}
out=$work/agent
# shellcheck disable=SC2086 # the agent's flags, split on purpose
"$bin" run --interval 1h --output "file:$out" --libbpf-stats-enabled true $flags 2>/dev/null &
agent=$!
while [ ! -s "$out" ]; do
    kill -0 "$agent" 2>/dev/null || { echo "bpf-stats-mix: the agent did not start" >&2; exit 1; }
    sleep 0.05
done
snapshot > "$work/before"
secs=$("$work/mixloop" "$iters" "$every")
snapshot > "$work/after"
kill -TERM "$agent"
wait "$agent" || true
echo "mix: $iters iterations in $secs s"
join "$work/before" "$work/after" | awk -v n="$iters" '
    { runs = $6 - $3; ns = $7 - $4
      if (runs > 0) printf "%-20s runs %9d  ns/run %6.1f  ns/iteration %6.1f\n", $2, runs, ns / runs, ns / n }'
