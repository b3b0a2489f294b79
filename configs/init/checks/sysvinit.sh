# sysvinit part of test-init-systems.sh (sourced): the LSB script under
# dpkg's start-stop-daemon.
# shellcheck shell=sh disable=SC2034,SC2154 # variables shared with the driver
section=sysvinit
echo "== sysvinit: LSB script + dpkg's start-stop-daemon ($(dpkg-query -W -f='dpkg ${Version}' dpkg))"
s=$tmp/sysv
mkdir -p "$s"
export KESTREL_BIN="$bin"
export KESTREL_PIDFILE="$s/kestrel.pid"
export KESTREL_DEFAULTS="$s/default-kestrel"
cat >"$KESTREL_DEFAULTS" <<EOF
KESTREL_CONFIG=""
KESTREL_LOGDIR="$s/log"
KESTREL_LOG="$s/log/kestrel.log"
KESTREL_ARGS="--interval 1s --output file:$s/log/metrics.json"
EOF
logs="$s/log/kestrel.log"
m=$s/log/metrics.json
sysv() {
	out=$(timeout 60 sh "$here/sysvinit/kestrel" "$@" 2>&1)
	rc=$?
	[ -n "$verbose" ] && echo "  \$ /etc/init.d/kestrel $* -> $rc: $out"
	return 0
}
sysv status
expect_rc 3 "status before start"
sysv start
expect_rc 0 "start"
p1=$(read_pid "$KESTREL_PIDFILE")
remember "$p1"
check "pidfile names the running agent ($bin)" is_agent "$p1"
check "agent writes snapshots" snapshots_after "$m" 0
check "snapshots are Falco metrics" has_falco_metrics "$m"
check "agent's stderr in KESTREL_LOG (probe loaded)" grep -q 'probe attached' "$s/log/kestrel.log"
sysv start
expect_rc 0 "second start"
check "second start kept the agent" test "$(read_pid "$KESTREL_PIDFILE")" = "$p1"
sysv status
expect_rc 0 "status while running"
mv "$m" "$m.1"
sysv reload
expect_rc 0 "reload"
check "reload: agent reopened its output (new metrics.json)" snapshots_after "$m" 0
check "reload: same agent" is_agent "$p1"
sed -i 's/--interval 1s/--interval 1h/' "$KESTREL_DEFAULTS"
t0=$(date +%s%N)
sysv restart
expect_rc 0 "restart"
p2=$(read_pid "$KESTREL_PIDFILE")
remember "$p2"
check "restart: old agent gone" gone_within "$p1" 50
if [ "$p2" != "$p1" ] && is_agent "$p2"; then ok "restart: new agent running"; else fail "restart: pid $p1 -> $p2"; fi
check "restart: new settings (--interval 1h)" \
	has_arg "$p2" 1h
check "restart: the new agent's first snapshot" snapshot_since "$m" "$t0"
n=$(lines "$m")
sysv stop
expect_rc 0 "stop"
check "stop: agent gone" gone_within "$p2" 50
check "stop: final snapshot written (SIGTERM)" final_snapshot "$m" "$n"
check "stop: pidfile removed" test ! -e "$KESTREL_PIDFILE"
sysv status
expect_rc 3 "status after stop"
sysv stop
expect_rc 0 "stop when stopped"
sysv reload
expect_rc 7 "reload when stopped"
# A bad flag: start fails, shows the agent's message, leaves no pidfile.
echo 'KESTREL_ARGS="--no-such-flag"' >>"$KESTREL_DEFAULTS"
sysv start
expect_rc 1 "start with a bad flag"
case $out in *no-such-flag*) ok "failed start shows the agent's message" ;; *) fail "no agent message in: $out" ;; esac
case $out in *"probe attached"*) fail "failed start shows an earlier run's log lines: $out" ;; *) ok "failed start shows only this start's log" ;; esac
check "failed start leaves no pidfile" test ! -e "$KESTREL_PIDFILE"
sysv status
expect_rc 3 "status after failed start"
# KESTREL_USER: the agent drops to that user after attach; the script hands
# it the log directory, so it can reopen a rotated output.
cat >>"$KESTREL_DEFAULTS" <<EOF
KESTREL_ARGS="--interval 1s --output file:$s/log/metrics.json"
KESTREL_USER=$run_user
EOF
sysv start
expect_rc 0 "start with KESTREL_USER=$run_user"
p3=$(read_pid "$KESTREL_PIDFILE")
remember "$p3"
check "KESTREL_USER: agent runs as $run_user" runs_as "$p3"
check "KESTREL_USER: log directory given to $run_user" owned_by_user "$s/log"
mv "$m" "$m.2"
sysv reload
expect_rc 0 "KESTREL_USER: reload"
check "KESTREL_USER: agent reopened its output as $run_user" snapshots_after "$m" 0
check "KESTREL_USER: new output owned by $run_user" owned_by_user "$m"
sysv stop
expect_rc 0 "KESTREL_USER: stop"
check "KESTREL_USER: agent gone" gone_within "$p3" 50
check "KESTREL_USER: pidfile removed" test ! -e "$KESTREL_PIDFILE"
