#!/bin/sh
# busybox ash: read -t and read -u exist there, though POSIX leaves them out.
# shellcheck disable=SC3045
# Guest side of tests/qemu/cpus.sh: what the agent costs as CPUs grow, on
# however many vCPUs this guest has (N). Ratios only: under TCG absolute
# times mean nothing.
#
# ring: /extra/sysloop N ITERS (N processes opening and closing a file, all
#   CPUs sending records to the probe's one ring at once) without the agent,
#   then with `kestrel run` at its defaults (built-in rules, culprit counters),
#   REPS times interleaved: ring_off=NS / ring_on=NS per repetition, and the
#   agent's n_evts / n_drops of that repetition (its final snapshot: each
#   repetition starts a fresh agent).
# probe: PROBE_REPS more sysloop runs under an agent with BPF stats on: the
#   probe's sys_exit time per call (ring reserve/commit included).
# snap: the agent's CPU (its threads' schedstat run time) over WINDOW_CS on
#   an idle guest with --interval 100ms (the minimum), then with --interval 1h
#   (no snapshot in the window: drains and timers only), SNAP_REPS times; the
#   difference over the snapshots written in the window is the CPU one
#   snapshot costs, the per-CPU counters' summing included.
#
# Settings: /etc/kestrel-test.env (written by cpus.sh): REPS, PROBE_REPS,
# SNAP_REPS, ITERS, WINDOW_CS, and AGENT_FLAGS for the ring rows' agent.
# Output: "key=value" lines via kestrel-out (out.txt on the host).

REPS=5 PROBE_REPS=3 SNAP_REPS=3 ITERS=5000 WINDOW_CS=300 AGENT_FLAGS=
# shellcheck source=/dev/null
[ -f /etc/kestrel-test.env ] && . /etc/kestrel-test.env

OUT=/tmp/kestrel-results.txt
: > "$OUT"
FIFO=/tmp/kestrel-tick
mkfifo "$FIFO"
exec 4<> "$FIFO"
KPID=
# shellcheck source=tests/qemu/guest/lib.sh
. /lib/kestrel-guest.sh # nap, now_cs, is_zombie (tests/qemu/guest/lib.sh)
result() { echo "kestrel-guest: $*"; echo "$*" >> "$OUT"; }
fail() {
    echo "$*" > /tmp/kestrel-fail-reason
    [ -s /tmp/k.err ] && sed 's/^/kestrel-guest: agent stderr: /' /tmp/k.err | tail -n 20
    echo "result=FAIL $*" >> "$OUT"
    kestrel-out "$OUT"
    [ -n "$KPID" ] && kill -TERM "$KPID" 2>/dev/null
    exit 1
}
# NS: CPU time the agent's threads have run so far (schedstat, in ns; the
# utime/stime ticks of /proc/PID/stat are too coarse for a few ms).
agent_ns() {
    NS=0
    for _f in "/proc/$KPID"/task/*/schedstat; do
        read -r _n _ < "$_f"
        NS=$((NS + _n))
    done
}
# LINES: snapshots in /tmp/k.json so far (alert lines not counted).
lines() {
    LINES=0
    # grep -c exits 1 on none (the file exists before the first snapshot)
    [ ! -f /tmp/k.json ] || LINES=$(grep -c '"Falco metrics snapshot"' /tmp/k.json)
    return 0
}
# start_agent ARGS...: waits for the first snapshot (written once start-up:
# probe load, /proc scan, rules, is over; at 100ms one more), then a second
# for the records of this polling's own forks to be drained.
start_agent() {
    rm -f /tmp/k.json
    : > /tmp/k.err
    /bin/kestrel run --output file:/tmp/k.json "$@" 2> /tmp/k.err 4<&- &
    KPID=$!
    _left=1800 # 90 s in 50 ms naps: TCG loads slowly
    _want=1
    [ "$1" = --interval ] && [ "$2" = 100ms ] && _want=2
    while lines && [ "$LINES" -lt "$_want" ]; do
        [ -d "/proc/$KPID" ] || fail "agent exited at start"
        _left=$((_left - 1))
        [ "$_left" -gt 0 ] || fail "no snapshot within 90 s"
        nap 0.05
    done
    nap 1
}
# diag WHY: the agent's and the loops' threads (state, utime, stime, wchan,
# kernel stack) on the console, for a run that stalls (three did: BENCHMARKS.md,
# "The 4-vCPU drops are bursts").
diag() {
    echo "kestrel-guest: DIAG $*"
    for p in /proc/[0-9]*; do
        read -r st < "$p/stat" 2>/dev/null || continue
        case $st in *kestrel*|*sysloop*) ;; *) continue ;; esac
        echo "kestrel-guest: DIAG stat $st"
        for t in "$p"/task/*; do
            echo "kestrel-guest: DIAG task $t wchan=$(cat "$t/wchan" 2>/dev/null) $(cut -d' ' -f3,14,15 "$t/stat")"
            sed 's/^/kestrel-guest: DIAG stack /' "$t/stack" 2>/dev/null
        done
    done
    echo "kestrel-guest: DIAG loadavg $(cat /proc/loadavg)"
}
stop_agent() {
    kill -TERM "$KPID" || fail "kill -TERM $KPID"
    _w=0
    while [ -d "/proc/$KPID" ] && ! is_zombie "$KPID"; do
        _w=$((_w + 1))
        [ "$_w" = 200 ] && diag "agent $KPID alive 10 s after SIGTERM"
        nap 0.05
    done
    wait "$KPID" || fail "agent exited $? after SIGTERM"
    KPID=
}
jget() { sed -n "s/.*\"$2\":\"\{0,1\}\([^,\"}]*\).*/\1/p" "$1"; }
# num FILE KEY: the integer KEY of the one-line JSON FILE, else fail (the file
# goes to the host).
num() {
    _v=$(jget "$1" "$2")
    case $_v in '' | *[!0-9]*)
        kestrel-put "$1" "bad-$(basename "$1")"
        fail "$2 missing or not an integer in $1: '$_v'" ;;
    esac
    NUM=$_v
}

N=$(grep -c '^processor' /proc/cpuinfo)
result "kernel=$(uname -r) machine=$(uname -m) vcpus=$N possible=$(cat /sys/devices/system/cpu/possible)"
{ [ -x /bin/kestrel ] && [ -x /extra/sysloop ]; } || fail "no /bin/kestrel or /extra/sysloop"

# ------------------------------------------------------------------ ring
/extra/sysloop "$N" 200 > /dev/null || fail "sysloop warm-up failed"
r=1
while [ "$r" -le "$REPS" ]; do
    echo "kestrel-guest: STEP rep $r off"
    o=$(/extra/sysloop "$N" "$ITERS") || fail "sysloop failed"
    echo "kestrel-guest: STEP rep $r start"
    # shellcheck disable=SC2086 # words, as cpus.sh --agent-flags says
    start_agent $AGENT_FLAGS
    echo "kestrel-guest: STEP rep $r on"
    # A loaded run takes about a second here: one still going at 30 s is stuck.
    ( sleep 30; diag "30 s into rep $r on" ) &
    _dg=$!
    a=$(/extra/sysloop "$N" "$ITERS") || fail "sysloop failed under the agent"
    kill "$_dg" 2>/dev/null
    echo "kestrel-guest: STEP rep $r stop"
    stop_agent
    grep '"Falco metrics snapshot"' /tmp/k.json | tail -n 1 > /tmp/final.json
    num /tmp/final.json scap.n_evts
    # Every open and close is a record: fewer means the run began before the
    # probe was attached.
    [ "$NUM" -ge $((2 * N * ITERS)) ] || fail "rep $r: n_evts $NUM < $((2 * N * ITERS)) calls"
    result "rep=$r ring_off_${o%% *} ring_on_${a%% *} ${a#* } n_evts=$NUM n_drops=$(jget /tmp/final.json scap.n_drops)"
    r=$((r + 1))
done

# ----------------------------------------------------------------- probe
# The probe alone: sys_exit's BPF run time per call (--libbpf-stats-enabled)
# over one sysloop run, from the first snapshot to the final one. It holds
# the ring's reserve and commit, so contention shows here without the agent's
# user space competing for the vCPUs.
r=1
while [ "$r" -le "$PROBE_REPS" ]; do
    start_agent --libbpf-stats-enabled true
    grep -m 1 '"Falco metrics snapshot"' /tmp/k.json > /tmp/p0.json
    /extra/sysloop "$N" "$ITERS" > /dev/null || fail "sysloop failed under the agent"
    stop_agent
    grep '"Falco metrics snapshot"' /tmp/k.json | tail -n 1 > /tmp/p1.json
    num /tmp/p1.json scap.sys_exit.run_time_ns
    t=$NUM
    num /tmp/p0.json scap.sys_exit.run_time_ns
    t=$((t - NUM))
    num /tmp/p1.json scap.sys_exit.run_cnt
    c=$NUM
    num /tmp/p0.json scap.sys_exit.run_cnt
    c=$((c - NUM))
    [ "$c" -gt 0 ] || fail "no sys_exit runs counted"
    result "probe rep=$r sys_exit_ns_per_call=$((t / c)) calls=$c"
    r=$((r + 1))
done

# ------------------------------------------------------------------ snap
# snap_window INTERVAL: the agent's CPU ns and snapshots over WINDOW_CS on
# the idle guest.
snap_window() {
    start_agent --interval "$1"
    lines
    _l0=$LINES
    agent_ns
    _n0=$NS
    now_cs
    _c0=$NOW
    nap "$((WINDOW_CS / 100)).$((WINDOW_CS % 100 / 10))$((WINDOW_CS % 10))"
    agent_ns
    now_cs
    lines
    result "snap rep=$r interval=$1 cpu_ns=$((NS - _n0)) snapshots=$((LINES - _l0)) window_cs=$((NOW - _c0))"
    stop_agent
}
r=1
while [ "$r" -le "$SNAP_REPS" ]; do
    snap_window 100ms
    snap_window 1h
    r=$((r + 1))
done

result "result=PASS"
kestrel-out "$OUT"
