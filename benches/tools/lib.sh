# shellcheck shell=sh
# Shared by the bench tools (sourced): the C loop built once into $work, and
# the agent started in the background until its first snapshot is written.
# The caller sets `name` (its own, for messages) and `bin` (the kestrel binary).
# shellcheck disable=SC2154 # name and bin: the caller's

# need TOOL...: one line and exit 2 when a tool is missing.
need() {
    for tool in "$@"; do
        command -v "$tool" >/dev/null 2>&1 || { echo "$name: $tool missing" >&2; exit 2; }
    done
    [ -x "$bin" ] || { echo "$name: no kestrel binary at $bin (cargo build --release)" >&2; exit 2; }
}

# Builds mixloop.c into a fresh $work, removed on exit.
build_mixloop() {
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
    cc -O2 -o "$work/mixloop" "$(dirname "$0")/mixloop.c"
}

# loop_apart ITERS: the C loop (no exec) on CPU 1, for tools that put the agent
# on CPU 0 (consumer-off, ab-mix; profile-mix runs the same under perf); prints seconds.
loop_apart() {
    taskset -c 1 "$work/mixloop" "$1" 0
}

# start_agent OUT CPUS FLAGS...: the agent in the background (its pid in
# $agent), on CPUS (a taskset list, or "any"), until its first snapshot is in OUT.
start_agent() {
    out=$1
    cpus=$2
    shift 2
    if [ "$cpus" = any ]; then
        "$bin" run --interval 1h --output "file:$out" "$@" 2>/dev/null &
    else
        taskset -c "$cpus" "$bin" run --interval 1h --output "file:$out" "$@" 2>/dev/null &
    fi
    agent=$!
    while [ ! -s "$out" ]; do
        kill -0 "$agent" 2>/dev/null || { echo "$name: the agent did not start" >&2; exit 1; }
        sleep 0.05
    done
}

# agent_cpu_ns: ns the started agent has run on a CPU so far, all its threads
# (schedstat; the ticks of /proc/PID/stat are too coarse).
agent_cpu_ns() {
    cat /proc/"$agent"/task/*/schedstat | awk '{ s += $1 } END { print s }'
}

stop_agent() {
    kill -TERM "$agent"
    wait "$agent" || true
}
