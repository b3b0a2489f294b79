#!/bin/sh
# busybox ash: read -t and read -u exist there, though POSIX leaves them out.
# shellcheck disable=SC3045
# Guest-side rule test (busybox sh, POSIX): the built-in edge ruleset against
# real actions that cannot be taken on the build host. Run by tests/qemu/rules.sh.
#
# Linux Kernel Module Injection Detected
#   condition: evt.type in (init_module, finit_module) and evt.rawres >= 0
#              and not proc.name in (allowed_kernel_module_loaders)
# `kestrel run` with its default rules (no --rules), snapshots every 500 ms and
# alerts in /tmp/k.json. In order:
#   1. benign twins: `insmod` that fails, twice: a file that is not a module
#      (ENOEXEC) and a real module of the kernel's own package whose
#      dependency is not loaded ($KR_FAILMOD, "Unknown symbol": ENOENT). Busybox
#      insmod tries finit_module, then init_module with the image: four failed
#      calls, rawres < 0. Then the agent must pass a point after them (below);
#      no alert of the rule may be in the file by then.
#   2. the real load: `insmod $KR_MOD` (no dependencies) must exit 0 and the
#      module appear in /proc/modules; the alert must follow.
#   3. a benign twin after the real load: the same module again (EEXIST).
# The agent is stopped with SIGTERM (final drain); the file must then hold
# exactly one alert of the rule, with priority Warning, source syscall,
# output_fields evt.type in (init_module, finit_module), proc.name insmod (the
# busybox applet, exec'd by its absolute path /sbin/insmod so comm is insmod),
# evt.res SUCCESS and proc.args the module's path.
#
# "The agent passed a point": the second snapshot started after it is in the
# file. The agent drains its ring at least every 100 ms and writes alerts after a
# drain, snapshots every 500 ms, all to the same file in order: a record taken
# before the point has been drained and its alert written before that second
# snapshot. No sleeps decide anything: waits poll the file (builtins only) up to
# a timeout, and only a timeout fails.
#
# Settings (/etc/kestrel-test.env, written by tests/qemu/rules.sh):
#   KR_MOD      path of the module to load (default /extra/modules/dummy.ko)
#   KR_FAILMOD  path of a module whose load fails (default /extra/modules/adummy.ko)
#   KT_ARGS     extra flags for `kestrel run` (split on blanks)
#   KR_ALERTS   1 (default) | 0: only the mechanics (the agent runs, the loads
#               fail and succeed as above), no check of rules or alerts; for an
#               agent without the rule engine
# Output: "kestrel-guest: key=value" lines on the console and via kestrel-out
# (out.txt on the host); files k.json (everything the agent wrote) and
# alert.json (the module alert line) via kestrel-put.

RULE='Linux Kernel Module Injection Detected'
SNAPRULE='Falco internal: metrics snapshot'
START_TIMEOUT_CS=9000 # 90 s for load + first snapshot (TCG is slow)
POINT_TIMEOUT_CS=1000 # 10 s for two snapshots
ALERT_TIMEOUT_CS=1000 # 10 s from the load to its alert

KR_MOD=/extra/modules/dummy.ko KR_FAILMOD=/extra/modules/adummy.ko KT_ARGS='' KR_ALERTS=1
# shellcheck source=/dev/null
[ -f /etc/kestrel-test.env ] && . /etc/kestrel-test.env

OUT=/tmp/kestrel-results.txt
: > "$OUT"
FIFO=/tmp/kestrel-tick
rm -f "$FIFO"
mkfifo "$FIFO"
exec 4<> "$FIFO"
KPID=

say() { echo "kestrel-guest: $*"; }
result() { say "$*"; echo "$*" >> "$OUT"; }
fail() {
    echo "$*" > /tmp/kestrel-fail-reason
    say "FAIL: $*"
    [ -s /tmp/k.err ] && sed 's/^/kestrel-guest: agent stderr: /' /tmp/k.err | tail -n 20
    echo "result=FAIL $*" >> "$OUT"
    kestrel-out "$OUT"
    [ -n "$KPID" ] && kill -TERM "$KPID" 2>/dev/null
    [ -s /tmp/k.json ] && kestrel-put /tmp/k.json k.json
    exit 1
}
# shellcheck source=tests/qemu/guest/lib.sh
. /lib/kestrel-guest.sh # nap, now_cs, is_zombie (tests/qemu/guest/lib.sh)
agent_gone() { [ ! -d "/proc/$KPID" ] || is_zombie; }

# scan: reads what is new in /tmp/k.json (kept open on fd 3) and counts
# complete lines: NSNAP snapshots, NALERT alerts of $RULE (ALERT = the last),
# NOTHER other lines (other rules, drop alerts; OTHER = the last).
NSNAP=0 NALERT=0 NOTHER=0 PART='' KFD=0 SNAP='' ALERT='' OTHER=''
scan() {
    if [ "$KFD" = 0 ]; then
        [ -f /tmp/k.json ] || return 0
        exec 3< /tmp/k.json
        KFD=1
    fi
    while IFS= read -r -u 3 _l; do
        _l=$PART$_l
        PART=''
        case $_l in
            *"\"rule\":\"$SNAPRULE\""*) NSNAP=$((NSNAP + 1)); SNAP=$_l ;;
            *"\"rule\":\"$RULE\""*) NALERT=$((NALERT + 1)); ALERT=$_l ;;
            '') ;;
            *) NOTHER=$((NOTHER + 1)); OTHER=$_l ;;
        esac
    done
    PART=$PART$_l
}
# wait_until VAR MIN CS WHAT: polls scan until $VAR >= MIN; fails after about
# CS centiseconds (counted in 20 ms naps).
wait_until() {
    _left=$(($3 / 2))
    while :; do
        scan
        _v=0
        eval "_v=\$$1"
        [ "$_v" -ge "$2" ] && return 0
        [ "$_left" -gt 0 ] || { agent_gone && fail "agent exited while waiting for $4"; fail "no $4 within $(($3 / 100)) s"; }
        _left=$((_left - 1))
        nap 0.02
    done
}
# passed NAME: waits for the second snapshot started after this call.
passed() {
    scan
    wait_until NSNAP $((NSNAP + 2)) "$POINT_TIMEOUT_CS" "the second snapshot after $1"
}
# jget LINE KEY: a string or number value of KEY in a one-line JSON object.
jget() { printf '%s\n' "$1" | sed -n "s/.*\"$2\":\"\{0,1\}\([^,\"}]*\).*/\1/p" | head -n1; }
loaded() { grep -q "^$1 " /proc/modules; }
modname() { _n=$(basename "$1" .ko); echo "$_n" | tr - _; }
# insmod_expect WHAT WANT FILE: /sbin/insmod FILE; WANT = ok | fail.
insmod_expect() {
    /sbin/insmod "$3" > /tmp/insmod.out 2>&1
    _rc=$?
    result "insmod_$1_rc=$_rc file=$3 msg=$(head -n1 /tmp/insmod.out)"
    case $2 in
        ok) [ "$_rc" -eq 0 ] || fail "insmod $3 ($1) exited $_rc: $(head -n1 /tmp/insmod.out)" ;;
        fail) [ "$_rc" -ne 0 ] || fail "insmod $3 ($1) succeeded; it was to fail" ;;
    esac
}

REL=$(uname -r)
result "kernel=$REL"
result "machine=$(uname -m)"
[ -x /bin/kestrel ] || fail "no /bin/kestrel"
[ -e /sbin/insmod ] || fail "busybox has no insmod applet"
[ -f /proc/modules ] || fail "kernel without module support (/proc/modules)"
for m in "$KR_MOD" "$KR_FAILMOD"; do
    [ -f "$m" ] || fail "no module file $m"
    loaded "$(modname "$m")" && fail "$(modname "$m") is loaded before the test"
done
result "module=$KR_MOD fail_module=$KR_FAILMOD"
printf 'this is not a kernel module\n' > /tmp/not-a-module.ko

# ------------------------------------------------------------------ start
rm -f /tmp/k.json
: > /tmp/k.err
now_cs
T0=$NOW
# shellcheck disable=SC2086 # KT_ARGS: flags split on blanks
/bin/kestrel run $KT_ARGS --output file:/tmp/k.json --interval 500ms 2> /tmp/k.err 4<&- &
KPID=$!
wait_until NSNAP 1 "$START_TIMEOUT_CS" "first snapshot"
now_cs
result "start_to_first_snapshot_ms=$(((NOW - T0) * 10))"
say "agent: $(grep -m1 'probe attached' /tmp/k.err)"
result "rules_loaded=$(jget "$SNAP" kestrel.rules_loaded) rules_skipped=$(jget "$SNAP" kestrel.rules_skipped)"
grep -qi "rule" /tmp/k.err && sed -n '/[Rr]ule/s/^/kestrel-guest: agent stderr: /p' /tmp/k.err | head -n 5
case $KR_ALERTS$(jget "$SNAP" kestrel.rules_loaded) in
    0*) result "alerts=not checked (KR_ALERTS=0)" ;;
    1 | 10) fail "the first snapshot has no rules loaded (kestrel.rules_loaded '$(jget "$SNAP" kestrel.rules_loaded)')" ;;
esac
# The agent's own start may not have tripped the rule.
[ "$NALERT" -eq 0 ] || fail "an alert of '$RULE' before any insmod"

# ----------------------------------------------------- 1. benign twins
insmod_expect notmodule fail /tmp/not-a-module.ko
insmod_expect faildeps fail "$KR_FAILMOD"
loaded "$(modname "$KR_FAILMOD")" && fail "$(modname "$KR_FAILMOD") got loaded"
passed "the failed loads"
result "alerts_after_failed_loads=$NALERT snapshots=$NSNAP"
[ "$NALERT" -eq 0 ] || fail "failed insmod raised '$RULE': $ALERT"

# ------------------------------------------------------- 2. the real load
now_cs
T2=$NOW
insmod_expect load ok "$KR_MOD"
loaded "$(modname "$KR_MOD")" || fail "$(modname "$KR_MOD") not in /proc/modules after insmod"
result "module_loaded=$(modname "$KR_MOD")"
if [ "$KR_ALERTS" = 1 ]; then
    wait_until NALERT 1 "$ALERT_TIMEOUT_CS" "alert '$RULE' after insmod $KR_MOD"
    now_cs
    result "load_to_alert_ms=$(((NOW - T2) * 10))"
fi
passed "the real load"
result "alerts_after_load=$NALERT"

# ------------------------------------------ 3. benign twin after the load
insmod_expect again fail "$KR_MOD"
passed "the second load of the same module"
result "alerts_after_reload=$NALERT"

# ------------------------------------------------------------------- stop
kill -TERM "$KPID" || fail "kill -TERM $KPID failed"
now_cs
_deadline=$((NOW + 3000))
while ! agent_gone; do
    now_cs
    [ "$NOW" -lt "$_deadline" ] || fail "agent still running 30 s after SIGTERM"
    nap 0.05
done
wait "$KPID"
krc=$?
KPID=
[ "$krc" -eq 0 ] || fail "agent exited $krc after SIGTERM"
scan
kestrel-put /tmp/k.json k.json
printf '%s\n' "$ALERT" > /tmp/alert.json
kestrel-put /tmp/alert.json alert.json
result "lines snapshots=$NSNAP module_alerts=$NALERT other=$NOTHER"
[ "$NOTHER" -eq 0 ] || say "other lines: $NOTHER, the last: $OTHER"
result "final_matches_total=$(jget "$SNAP" falco.rules.matches_total) alerts_emitted=$(jget "$SNAP" kestrel.alerts_emitted)"

# ----------------------------------------------------------------- checks
if [ "$KR_ALERTS" = 0 ]; then
    result "result=PASS"
    kestrel-out "$OUT"
    say "ok (mechanics only)"
    exit 0
fi
[ "$NALERT" -eq 1 ] || fail "$NALERT alerts of '$RULE', expected exactly 1"
prio=$(jget "$ALERT" priority)
src=$(jget "$ALERT" source)
etype=$(jget "$ALERT" evt.type)
pname=$(jget "$ALERT" proc.name)
eres=$(jget "$ALERT" evt.res)
pargs=$(jget "$ALERT" proc.args)
result "alert priority=$prio source=$src evt.type=$etype proc.name=$pname evt.res=$eres proc.args=$pargs"
[ "$prio" = Warning ] || fail "alert priority '$prio', expected Warning"
[ "$src" = syscall ] || fail "alert source '$src', expected syscall"
case $etype in init_module | finit_module) ;; *) fail "alert evt.type '$etype', expected init_module or finit_module" ;; esac
[ "$pname" = insmod ] || fail "alert proc.name '$pname', expected insmod"
[ "$eres" = SUCCESS ] || fail "alert evt.res '$eres', expected SUCCESS"
case $pargs in *"$KR_MOD"*) ;; *) fail "alert proc.args '$pargs' does not name $KR_MOD" ;; esac
result "result=PASS"
kestrel-out "$OUT"
say "ok"
