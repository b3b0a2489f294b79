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
# snap: the agent's CPU (utime + stime, /proc/PID/stat) over WINDOW_CS on an
#   idle guest with --interval 100ms (the minimum), then with --interval 1h
#   (no snapshot in the window: drains and timers only); the difference over
#   the snapshots written in the window is the CPU one snapshot costs,
#   the per-CPU counters' summing included.
#
# Settings: /etc/kestrel-test.env (written by cpus.sh): REPS, ITERS, WINDOW_CS.
# Output: "key=value" lines via kestrel-out (out.txt on the host).

REPS=5 ITERS=5000 WINDOW_CS=1000
# shellcheck source=/dev/null
[ -f /etc/kestrel-test.env ] && . /etc/kestrel-test.env

OUT=/tmp/kestrel-results.txt
: > "$OUT"
FIFO=/tmp/kestrel-tick
mkfifo "$FIFO"
exec 4<> "$FIFO"
KPID=
nap() { read -r -t "$1" -u 4 _; }
result() { echo "kestrel-guest: $*"; echo "$*" >> "$OUT"; }
fail() {
    echo "$*" > /tmp/kestrel-fail-reason
    [ -s /tmp/k.err ] && sed 's/^/kestrel-guest: agent stderr: /' /tmp/k.err | tail -n 20
    echo "result=FAIL $*" >> "$OUT"
    kestrel-out "$OUT"
    [ -n "$KPID" ] && kill -TERM "$KPID" 2>/dev/null
    exit 1
}
# Centiseconds since boot (/proc/uptime, 10 ms steps).
now_cs() {
    read -r _up _ < /proc/uptime
    _s=${_up%.*}
    _f=${_up#*.}
    NOW=$((_s * 100 + ${_f#0}))
}
# CPU ticks (USER_HZ) the agent used so far: utime + stime. Its comm has no
# blanks, so the fields split plainly.
agent_ticks() {
    read -r _ _ _ _ _ _ _ _ _ _ _ _ _ _ut _st _ < "/proc/$KPID/stat"
    TICKS=$((_ut + _st))
}
# LINES: snapshots in /tmp/k.json so far (alert lines not counted).
lines() {
    LINES=0
    [ ! -f /tmp/k.json ] || LINES=$(grep -c '"Falco metrics snapshot"' /tmp/k.json)
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
stop_agent() {
    kill -TERM "$KPID" || fail "kill -TERM $KPID"
    wait "$KPID" || fail "agent exited $? after SIGTERM"
    KPID=
}
jget() { sed -n "s/.*\"$2\":\"\{0,1\}\([^,\"}]*\).*/\1/p" "$1"; }

N=$(grep -c '^processor' /proc/cpuinfo)
result "kernel=$(uname -r) machine=$(uname -m) vcpus=$N possible=$(cat /sys/devices/system/cpu/possible)"
{ [ -x /bin/kestrel ] && [ -x /extra/sysloop ]; } || fail "no /bin/kestrel or /extra/sysloop"

# ------------------------------------------------------------------ ring
/extra/sysloop "$N" 200 > /dev/null || fail "sysloop warm-up failed"
r=1
while [ "$r" -le "$REPS" ]; do
    o=$(/extra/sysloop "$N" "$ITERS") || fail "sysloop failed"
    start_agent
    a=$(/extra/sysloop "$N" "$ITERS") || fail "sysloop failed under the agent"
    stop_agent
    grep '"Falco metrics snapshot"' /tmp/k.json | tail -n 1 > /tmp/final.json
    result "rep=$r ring_off_${o%% *} ring_on_${a%% *} ${a#* } n_evts=$(jget /tmp/final.json scap.n_evts) n_drops=$(jget /tmp/final.json scap.n_drops)"
    r=$((r + 1))
done

# ------------------------------------------------------------------ snap
# snap_window INTERVAL: ticks and snapshots over WINDOW_CS on the idle guest.
snap_window() {
    start_agent --interval "$1"
    lines
    _l0=$LINES
    agent_ticks
    _t0=$TICKS
    now_cs
    _c0=$NOW
    nap "$((WINDOW_CS / 100)).$((WINDOW_CS % 100 / 10))$((WINDOW_CS % 10))"
    agent_ticks
    now_cs
    lines
    result "snap interval=$1 ticks=$((TICKS - _t0)) snapshots=$((LINES - _l0)) window_cs=$((NOW - _c0))"
    stop_agent
}
snap_window 100ms
snap_window 1h

result "result=PASS"
kestrel-out "$OUT"
