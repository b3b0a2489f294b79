#!/bin/sh
# busybox ash: read -t and ulimit -l exist there, though POSIX leaves them out.
# shellcheck disable=SC3045
# Guest-side end-to-end test of the real agent (busybox sh, POSIX).
#
# Starts /bin/kestrel with 500 ms snapshots to a file, waits for the first
# snapshot (the time from start to it is measured here), runs a workload with known
# counts between two snapshots, stops the agent with SIGTERM and checks the
# snapshots with busybox tools.
#
# Workload (between snapshot B "before" and snapshot A "after"):
#   NFORK  subshells `( : )`     one fork each, the child exits at once
#   NEXEC  `/bin/true`          one fork + one execve each (an absolute path:
#                               ash really execs it, no NOFORK applet shortcut)
#   NOPEN  `read -r x </etc/passwd`  one open each, no fork (shell builtin)
#
# The window is quiet by construction: waiting and polling use only shell
# builtins (`read -t` on a FIFO instead of `sleep`, which busybox runs as
# fork + re-exec; a `read` loop instead of `wc`; parameter expansion instead of
# sed), so the test shell creates no task in the window; the FIFO and the
# snapshot file stay open on fds 4 and 3, so polling opens, dups and closes
# nothing either (fd counts are the workload's). The other user tasks
# are /init (blocked in wait) and the agent (one thread, never forks). Kernel
# threads are skipped by the probe. So the deltas A - B of threads added and
# removed must be exactly NFORK+NEXEC and of execs exactly NEXEC; the accepted
# range is [expected, expected + SLACK] with SLACK=2, for a kernel user-mode
# helper (modprobe/hotplug, which the agent rightly counts) that might run in
# the window. Lower than expected is always a failure (a missed event).
# sched_p_fork's run_cnt also counts kernel-thread forks (the program runs and
# returns), so it is checked as >= expected, next to the guest's own count of
# new PIDs (/proc/loadavg's last PID) over the workload.
#
# Output: "kestrel-guest: key=value" result lines on the console and via
# kestrel-out (out.txt on the host); files snapshot.json (final snapshot),
# before.json and after.json via kestrel-put.
#
# Variants: /etc/kestrel-test.env (optional, written by matrix.sh) may set
#   KT_ARGS    extra flags for `kestrel check` and `kestrel run` (--btf FILE,
#              --attach raw_tp); split on blanks
#   KT_BTF     kernel (default) | none: /sys/kernel/btf/vmlinux must exist | not exist
#   KT_CHECK   texts the output of `kestrel check $KT_ARGS` must contain (its BTF
#              line ...), separated by '|'; `check` must then exit 0, or 1 with
#              KT_NOBTF=1
#   KT_JIT     1: turn the BPF JIT on (net.core.bpf_jit_enable) before anything
#              runs (Debian's 32-bit ARM kernels boot with it off)
#   KT_ATTACH  tp_btf | raw_tp: required "kestrel.attach" of the final snapshot
#   KT_NOBTF   1: `kestrel run` must refuse to start: exit 1 and exactly one line
#              on stderr containing "no BTF" and every path it tried
#   KT_BUFFER  ring | perf: the event buffer the start line must name ("events
#              via the perf buffer"); perf is forced with KT_ARGS='--event-buffer perf'
#   KT_IA32    none | entry (x86): the start line must | must not say "no ia32
#              syscall entry"; with none the child that tried int 0x80 left no
#              fault line in the kernel log
#   KT_TASKCAST yes | no: the start line must | must not say "the running task
#              read without a helper" (tp_btf with the stage, x86_64 and arm64,
#              6.2+: bpf_rdonly_cast patched in)
#   KT_COMPAT  path of a 32-bit (armhf/i386) static busybox: after the window
#              above (w, the 64-bit baseline) the same workload runs in the
#              32-bit busybox sh (window c: one fork+exec more, for the sh) and
#              then in this shell again (w3). Checks: threads/execs exact in all
#              windows; kestrel.n_compat_evts delta > 0 in c and 0 in w and w3;
#              falco.n_failed_fd_lookups and every n_drops* counter: delta in c
#              <= in w, in w3 == in w; n_added_fds/n_removed_fds: w3 == w
#              (compat records disturbed no 64-bit fd state).

NFORK=20
NEXEC=10
NOPEN=10
SLACK=2
START_TIMEOUT_CS=9000 # 90 s for load + first snapshot (TCG is slow)

OUT=/tmp/kestrel-results.txt
: > "$OUT"
FIFO=/tmp/kestrel-tick
rm -f "$FIFO"
mkfifo "$FIFO"

KT_ARGS='' KT_BTF=kernel KT_CHECK='' KT_ATTACH='' KT_NOBTF=0 KT_COMPAT='' KT_BUFFER='' KT_JIT=0 KT_IA32='' KT_TASKCAST=''
# shellcheck source=/dev/null
[ -f /etc/kestrel-test.env ] && . /etc/kestrel-test.env

say() { echo "kestrel-guest: $*"; }
result() { say "$*"; echo "$*" >> "$OUT"; }
fail() {
    echo "$*" > /tmp/kestrel-fail-reason
    say "FAIL: $*"
    [ -s /tmp/k.err ] && sed 's/^/kestrel-guest: agent stderr: /' /tmp/k.err | tail -n 20
    echo "result=FAIL $*" >> "$OUT"
    kestrel-out "$OUT"
    [ -n "$KPID" ] && kill -TERM "$KPID" 2>/dev/null
    exit 1
}
# Polling inside a workload window must neither fork nor touch a file
# descriptor (open, dup, close would be fd events in the counts): the FIFO and
# the snapshot file are opened once, on fds 4 and 3, and read with `read -u`.
exec 4<> "$FIFO"
# now_cs opens /proc/uptime: not inside windows.
# shellcheck source=tests/qemu/guest/lib.sh
. /lib/kestrel-guest.sh # nap, now_cs, is_zombie (tests/qemu/guest/lib.sh)
# NLINES = complete lines of /tmp/k.json so far, LAST = the last one. Reads
# only what is new (busybox read takes one byte per read(2); rereading the
# whole file every poll grew slower with every snapshot). A line the agent is
# still writing is kept in PART until its newline arrives.
NLINES=0 PART='' KFD=0
# shellcheck disable=SC2034 # LAST is read through eval in window()
count_lines() {
    if [ "$KFD" = 0 ]; then
        [ -f /tmp/k.json ] || return 0
        exec 3< /tmp/k.json
        KFD=1
    fi
    while IFS= read -r -u 3 _l; do
        NLINES=$((NLINES + 1))
        LAST=$PART$_l
        PART=''
    done
    PART=$PART$_l
}
# Waits until /tmp/k.json holds at least $1 complete lines; fails after about
# $2 cs (counted in 20 ms naps: no clock read, no /proc access while waiting).
wait_lines() {
    _left=$(($2 / 2))
    while :; do
        count_lines
        [ "$NLINES" -ge "$1" ] && return 0
        if [ "$_left" -le 0 ]; then
            { [ ! -d "/proc/$KPID" ] || is_zombie; } && fail "agent exited before snapshot $1"
            fail "no snapshot $1 within $(($2 / 100)) s"
        fi
        _left=$((_left - 1))
        nap 0.02
    done
}
last_pid() { read -r _ _ _ _ LASTPID < /proc/loadavg; }

ARCH=$(uname -m)
REL=$(uname -r)
result "kernel=$REL"
result "machine=$ARCH"
[ -x /bin/kestrel ] || fail "no /bin/kestrel"
if [ "$KT_BTF" = none ]; then
    [ ! -e /sys/kernel/btf/vmlinux ] || fail "kernel has /sys/kernel/btf/vmlinux, expected none"
else
    [ -e /sys/kernel/btf/vmlinux ] || fail "no /sys/kernel/btf/vmlinux"
fi
result "btf=$KT_BTF agent_args=$KT_ARGS"
if [ "$KT_JIT" = 1 ]; then
    echo 1 > /proc/sys/net/core/bpf_jit_enable || fail "cannot turn the BPF JIT on"
    result "jit=on"
fi
say "memlock limit before start: $(ulimit -l 2>/dev/null)"
# shellcheck disable=SC2086 # KT_ARGS: flags split on blanks
if [ -n "$KT_CHECK" ]; then
    /bin/kestrel check $KT_ARGS > /tmp/check.txt 2>&1
    crc=$?
    sed 's/^/kestrel-guest: check: /' /tmp/check.txt
    _ifs=$IFS IFS='|'
    for _want in $KT_CHECK; do
        grep -qF "$_want" /tmp/check.txt || fail "kestrel check does not say '$_want'"
    done
    IFS=$_ifs
    [ "$crc" -eq "$KT_NOBTF" ] || fail "kestrel check exited $crc, expected $KT_NOBTF"
    result "check_exit=$crc check_btf_ok=1"
fi
# shellcheck disable=SC2086
if [ "$KT_NOBTF" = 1 ]; then
    /bin/kestrel run $KT_ARGS --output file:/tmp/k.json --interval 500ms 2> /tmp/k.err
    krc=$?
    sed 's/^/kestrel-guest: agent stderr: /' /tmp/k.err
    [ "$krc" -eq 1 ] || fail "kestrel run without BTF exited $krc, expected 1"
    [ "$(wc -l < /tmp/k.err)" -eq 1 ] || fail "kestrel run wrote $(wc -l < /tmp/k.err) lines on stderr, expected 1"
    for want in "no BTF" /sys/kernel/btf/vmlinux "/etc/kestrel/btf/$REL.btf" "/usr/lib/kestrel/btf/$REL.btf"; do
        grep -qF "$want" /tmp/k.err || fail "stderr line lacks '$want'"
    done
    [ ! -s /tmp/k.json ] || fail "a snapshot was written without BTF"
    result "nobtf_exit=$krc stderr_lines=1"
    result "result=PASS"
    kestrel-out "$OUT"
    exit 0
fi

# ------------------------------------------------------------------ start
KPID=
rm -f /tmp/k.json
: > /tmp/k.err
now_cs
T0=$NOW
# shellcheck disable=SC2086
/bin/kestrel run $KT_ARGS --output file:/tmp/k.json --interval 500ms \
    --libbpf-stats-enabled true --include-empty-values true 2> /tmp/k.err 4<&- &
KPID=$!
# Time to "probe attached" on stderr (exec, BTF, load, verify, attach, /proc
# seeding), then to the first snapshot, which the agent writes right after
# start (as Falco does), not one interval later. /proc/uptime: 10 ms steps.
_deadline=$((T0 + START_TIMEOUT_CS))
TA=
while [ -z "$TA" ]; do
    while IFS= read -r _l; do
        case $_l in *"probe attached"*) now_cs; TA=$NOW ;; esac
    done < /tmp/k.err
    [ -n "$TA" ] && break
    { [ ! -d "/proc/$KPID" ] || is_zombie; } && fail "agent exited at start"
    now_cs
    [ "$NOW" -lt "$_deadline" ] || fail "agent did not report 'probe attached' within $((START_TIMEOUT_CS / 100)) s"
    nap 0.01
done
wait_lines 1 "$START_TIMEOUT_CS"
now_cs
T1=$NOW
result "start_to_attach_ms=$(((TA - T0) * 10))"
result "start_to_first_snapshot_ms=$(((T1 - T0) * 10))"
attach=$(grep -m1 'probe attached' /tmp/k.err)
say "agent: $attach"
case $attach in *"probe attached"*) ;; *) fail "agent did not report 'probe attached'" ;; esac
if [ -n "$KT_BUFFER" ]; then
    result "buffer=$KT_BUFFER"
    case $attach in *"events via the $KT_BUFFER buffer"*) ;; *) fail "start line does not say 'events via the $KT_BUFFER buffer'" ;; esac
fi
case $KT_IA32 in
    none)
        result "ia32=none"
        case $attach in *"no ia32 syscall entry"*) ;; *) fail "start line does not say 'no ia32 syscall entry'" ;; esac
        dmesg | grep -q "general protection" && fail "the kernel logged the ia32 probe's fault: $(dmesg | grep -m1 'general protection')" ;;
    entry)
        case $attach in *"no ia32 syscall entry"*) fail "start line says 'no ia32 syscall entry' on a kernel with one" ;; esac ;;
esac
case $KT_TASKCAST in
    yes)
        result "task_cast=yes"
        case $attach in *"the running task read without a helper"*) ;; *) fail "start line does not say 'the running task read without a helper'" ;; esac ;;
    no)
        case $attach in *"the running task read without a helper"*) fail "start line says 'the running task read without a helper' where it cannot" ;; esac ;;
esac

# -------------------------------------------------------------- workload
# workload TRUE: the workload as shell text (built before any window opens).
workload() {
    echo "i=0; while [ \$i -lt $NFORK ]; do ( : ); i=\$((i + 1)); done"
    echo "i=0; while [ \$i -lt $NEXEC ]; do $1; i=\$((i + 1)); done"
    echo "i=0; while [ \$i -lt $NOPEN ]; do read -r _ < /etc/passwd; i=\$((i + 1)); done"
}
W64=$(workload /bin/true)
if [ -n "$KT_COMPAT" ]; then
    ln -sf "$(basename "$KT_COMPAT")" "$(dirname "$KT_COMPAT")/true"
    "$KT_COMPAT" true || fail "32-bit busybox $KT_COMPAT does not run"
    W32="$(workload "$(dirname "$KT_COMPAT")/true")
exit 0"
    result "compat_busybox=$KT_COMPAT"
fi
# window NAME CMD...: snapshot B, CMD, snapshot A. B and A are each the second
# snapshot started after what precedes them, so the agent's 100 ms drain has
# delivered every earlier record (the setup's before B, CMD's before A).
# B_NAME, A_NAME: the snapshot lines; PIDS_NAME: PIDs allocated during CMD.
# Waiting and bookkeeping use builtins only (no fork, no open in the window).
window() {
    _w=$1
    shift
    # The guest's load and the agent's CPU ticks: a slow window says whose.
    say "window $_w (guest load $(cut -d' ' -f1-3 /proc/loadavg), agent utime+stime $(awk '{ print $14 + $15 }' "/proc/$KPID/stat") ticks)"
    count_lines
    wait_lines $((NLINES + 2)) 1000
    eval "B_$_w=\$LAST"
    last_pid
    _p0=$LASTPID
    "$@"
    last_pid
    eval "PIDS_$_w=$((LASTPID - _p0))"
    count_lines
    wait_lines $((NLINES + 2)) 1000
    eval "A_$_w=\$LAST"
}
# At rest: one snapshot past the first (start-up pages dropped), no workload.
# VmRSS and its anon, file, shmem and huge-page parts (forks: outside windows).
read_rss() {
    awk '/^VmRSS:/ { r = $2 } /^RssAnon:/ { a = $2 } /^RssFile:/ { f = $2 } /^RssShmem:/ { s = $2 }
        END { printf "%s anon=%s file=%s shmem=%s", r, a, f, s }' "/proc/$KPID/status"
    awk '/^AnonHugePages:/ { printf " thp=%s", $2 }' "/proc/$KPID/smaps_rollup" 2>/dev/null
}
count_lines
wait_lines $((NLINES + 1)) 1000
result "rss_at_rest_kb=$(read_rss)"
window w eval "$W64"
if [ -n "$KT_COMPAT" ]; then
    window c "$KT_COMPAT" sh -c "$W32"
    window w3 eval "$W64"
fi

result "rss_after_kb=$(read_rss)"

# ------------------------------------------------------------------- stop
kill -TERM "$KPID" || fail "kill -TERM $KPID failed"
now_cs
_deadline=$((NOW + 3000))
while ! is_zombie && [ -d "/proc/$KPID" ]; do
    now_cs
    [ "$NOW" -lt "$_deadline" ] || fail "agent still running 30 s after SIGTERM"
    nap 0.05
done
wait "$KPID"
krc=$?
KPID=
[ "$krc" -eq 0 ] || fail "agent exited $krc after SIGTERM"
say "snapshots written: $(wc -l < /tmp/k.json)"

# ----------------------------------------------------------------- checks
FINAL=/tmp/snapshot.json
tail -n 1 /tmp/k.json > "$FINAL"
kestrel-put "$FINAL" snapshot.json
for w in w c w3; do
    _b='' _a=''
    eval "_b=\${B_$w:-} _a=\${A_$w:-}"
    [ -n "$_b" ] || continue
    printf '%s\n' "$_b" > "/tmp/$w.before.json"
    printf '%s\n' "$_a" > "/tmp/$w.after.json"
    p=$w.
    [ "$w" = w ] && p=
    kestrel-put "/tmp/$w.before.json" "${p}before.json"
    kestrel-put "/tmp/$w.after.json" "${p}after.json"
done

# jget FILE KEY: value of KEY in the one-line JSON FILE (busybox sed).
jget() { sed -n "s/.*\"$2\":\"\{0,1\}\([^,\"}]*\).*/\1/p" "$1"; }
num() { # num FILE KEY -> integer or fail
    _v=$(jget "$1" "$2")
    case $_v in '' | *[!0-9]*) fail "$2 missing or not an integer in $(basename "$1"): '$_v'" ;; esac
    echo "$_v"
}
# delta WINDOW KEY: after - before
delta() { echo $(($(num "/tmp/$1.after.json" "$2") - $(num "/tmp/$1.before.json" "$2"))); }
# in_range NAME GOT EXPECTED: EXPECTED <= GOT <= EXPECTED + SLACK
in_range() {
    result "$1=$2 expected=$3 (accepted $3..$(($3 + SLACK)))"
    if [ "$2" -lt "$3" ] || [ "$2" -gt $(($3 + SLACK)) ]; then
        fail "$1 delta $2, expected $3 (+$SLACK)"
    fi
}

[ "$(jget "$FINAL" falco.kernel_release)" = "$REL" ] ||
    fail "falco.kernel_release '$(jget "$FINAL" falco.kernel_release)' != uname -r '$REL'"
[ "$(jget "$FINAL" scap.engine_name)" = kestrel_bpf ] || fail "scap.engine_name is not kestrel_bpf"

n_evts=$(num "$FINAL" scap.n_evts)
num_evts=$(num "$FINAL" falco.num_evts)
n_drops=$(num "$FINAL" scap.n_drops)
result "final n_evts=$n_evts num_evts=$num_evts n_drops=$n_drops"
[ "$n_evts" -gt 0 ] || fail "scap.n_evts is 0"
[ "$n_evts" -eq $((num_evts + n_drops)) ] ||
    fail "scap.n_evts $n_evts != falco.num_evts $num_evts + scap.n_drops $n_drops"
[ "$(num "$FINAL" kestrel.n_decode_errors)" -eq 0 ] || fail "kestrel.n_decode_errors > 0"
if [ -n "$KT_ATTACH" ]; then
    attach=$(jget "$FINAL" kestrel.attach)
    result "attach=$attach"
    [ "$attach" = "$KT_ATTACH" ] || fail "kestrel.attach is '$attach', expected $KT_ATTACH"
fi

WANT_THREADS=$((NFORK + NEXEC))
exec_total=$(num "$FINAL" scap.sched_p_exec.run_cnt)
added_total=$(num "$FINAL" falco.n_added_threads)
removed_total=$(num "$FINAL" falco.n_removed_threads)
result "final sched_p_exec.run_cnt=$exec_total n_added_threads=$added_total n_removed_threads=$removed_total"
[ "$exec_total" -ge "$NEXEC" ] || fail "sched_p_exec.run_cnt $exec_total < $NEXEC"
[ "$added_total" -ge "$WANT_THREADS" ] || fail "n_added_threads $added_total < $WANT_THREADS"
[ "$removed_total" -ge "$WANT_THREADS" ] || fail "n_removed_threads $removed_total < $WANT_THREADS"
case $ARCH in
    x86_64)
        # By design the fork tracepoint is not attached on x86_64 (the child
        # returns through sys_exit there).
        [ -z "$(jget "$FINAL" scap.sched_p_fork.run_cnt)" ] ||
            fail "sched_p_fork attached on x86_64"
        ;;
    *)
        fork_total=$(num "$FINAL" scap.sched_p_fork.run_cnt)
        result "final sched_p_fork.run_cnt=$fork_total"
        [ "$fork_total" -ge "$WANT_THREADS" ] || fail "sched_p_fork.run_cnt $fork_total < $WANT_THREADS"
        ;;
esac

# Deltas over a workload window, against the known counts.
# check_window WINDOW EXTRA: EXTRA = tasks beyond the workload's (the 32-bit sh)
check_window() {
    _t=$((NFORK + NEXEC + $2))
    _x=$((NEXEC + $2))
    _np=0
    eval "_np=\$PIDS_$1"
    _s=
    [ "$1" = w ] || _s=_$1
    result "workload$_s forks=$NFORK execs=$NEXEC opens=$NOPEN extra_tasks=$2 new_pids=$_np"
    in_range "d_n_added_threads$_s" "$(delta "$1" falco.n_added_threads)" "$_t"
    in_range "d_n_removed_threads$_s" "$(delta "$1" falco.n_removed_threads)" "$_t"
    in_range "d_sched_p_exec_run_cnt$_s" "$(delta "$1" scap.sched_p_exec.run_cnt)" "$_x"
    [ "$_np" -ge "$_t" ] || fail "$1: only $_np new PIDs for $_t forks"
    if [ "$ARCH" != x86_64 ]; then
        _d=$(delta "$1" scap.sched_p_fork.run_cnt)
        result "d_sched_p_fork_run_cnt$_s=$_d expected>=$_t (new_pids=$_np)"
        [ "$_d" -ge "$_t" ] || fail "$1: sched_p_fork.run_cnt delta $_d < $_t"
    fi
    _d=$(delta "$1" falco.n_added_fds)
    result "d_n_added_fds$_s=$_d expected>=$NOPEN"
    [ "$_d" -ge "$NOPEN" ] || fail "$1: n_added_fds delta $_d < $NOPEN opens"
    result "d_n_evts$_s=$(delta "$1" scap.n_evts) d_num_evts$_s=$(delta "$1" falco.num_evts) d_n_drops$_s=$(delta "$1" scap.n_drops)"
}
check_window w 0
if [ -n "$KT_COMPAT" ]; then
    check_window c 1
    check_window w3 0
    # 32-bit records are counted (and decoded, not skipped) in c only.
    for w in w c w3; do
        d=$(delta "$w" kestrel.n_compat_evts)
        result "d_n_compat_evts_$w=$d"
        case $w in
            c) [ "$d" -gt 0 ] || fail "no 32-bit records counted in the compat window" ;;
            *) [ "$d" -eq 0 ] || fail "$d 32-bit records counted in 64-bit window $w" ;;
        esac
    done
    # The compat window costs no more failed fd lookups and no more drops than
    # the 64-bit baseline w, and the 64-bit workload after it (w3) has exactly
    # w's fd bookkeeping: compat records touched no 64-bit fd state.
    for k in falco.n_failed_fd_lookups scap.n_drops scap.n_drops_buffer_total \
             scap.n_drops_bug scap.n_drops_scratch_map scap.n_drops_page_faults \
             falco.n_drops_full_threadtable kestrel.n_drops_full_fdtable \
             falco.n_added_fds falco.n_removed_fds; do
        b=$(delta w "$k") c=$(delta c "$k") w3=$(delta w3 "$k")
        result "d_$k: w=$b c=$c w3=$w3"
        [ "$w3" -eq "$b" ] || fail "$k: delta $w3 after the compat window, $b before"
        case $k in *fds) continue ;; esac
        [ "$c" -le "$b" ] || fail "$k: delta $c in the compat window, $b in the 64-bit baseline"
    done
fi
result "falco.memory_rss=$(jget "$FINAL" falco.memory_rss) (MB)"
result "result=PASS"
kestrel-out "$OUT"
say "ok"
