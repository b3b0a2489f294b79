# OpenRC part of test-init-systems.sh (sourced): rc-service, openrc-run and
# supervise-daemon in the driver's private mount namespace (an overlay on /etc).
# shellcheck shell=sh disable=SC2034,SC2154 # variables shared with the driver
section=openrc
echo "== OpenRC: rc-service + openrc-run + supervise-daemon ($(/sbin/openrc --version 2>/dev/null | head -n 1))"
o=$tmp/openrc
mkdir -p "$o/etc-upper" "$o/etc-work"
# /etc as the README installs into it, in this namespace only: an overlay
# whose writes land in $o/etc-upper.
mount -t overlay kestrel-etc -o "lowerdir=/etc,upperdir=$o/etc-upper,workdir=$o/etc-work" /etc || {
	echo "FAIL: cannot mount an overlay on /etc in a private mount namespace" >&2
	exit 1
}
mkdir -p /etc/init.d /etc/conf.d
install -m 0755 "$here/openrc/kestrel" /etc/init.d/kestrel
install -m 0644 "$here/openrc/kestrel.confd" /etc/conf.d/kestrel
# depend() says `need localmount`: Debian's OpenRC has no such service, so a
# stub stands in, and starting kestrel must start it first.
printf '%s\n' '#!/sbin/openrc-run' 'description="stub for the kestrel init test"' \
	'start() { ebegin "Mounting local filesystems (stub)"; eend 0; }' >/etc/init.d/localmount
chmod 755 /etc/init.d/localmount
# The runtime directory OpenRC creates at boot, empty.
for d in daemons exclusive failed hotplugged inactive options scheduled started starting stopping tmp wasinactive; do
	mkdir -p "/run/openrc/$d"
done
: >/run/openrc/softlevel
# openrc-run clears the environment: settings go in conf.d (appended to the
# shipped one, whose lines are all comments).
{
	echo "KESTREL_BIN=\"$bin\""
	echo 'KESTREL_CONFIG=""'
	echo "KESTREL_LOGDIR=\"$o/log\""
	echo "KESTREL_ARGS=\"--interval 1s --output file:$o/log/metrics.json --output syslog://127.0.0.1:9?format=3164&app=kestrel\""
	echo 'respawn_delay=1'
} >>/etc/conf.d/kestrel
# rc_ulimit="-l unlimited" needs CAP_SYS_RESOURCE; a container may lack it.
ulimit_ok=1
# shellcheck disable=SC3045 # dash and busybox sh have ulimit -l, as openrc-run relies on
if ! (ulimit -l unlimited) 2>/dev/null; then
	ulimit_ok=
	echo 'rc_ulimit=""' >>/etc/conf.d/kestrel
	echo '  note: cannot raise RLIMIT_MEMLOCK here (no CAP_SYS_RESOURCE): rc_ulimit="" in conf.d'
fi
logs="$o/log/kestrel.log"
orc() {
	out=$(timeout 60 rc-service kestrel "$@" 2>&1)
	rc=$?
	[ -n "$verbose" ] && echo "  \$ rc-service kestrel $* -> $rc: $out"
	case $out in *"unable to apply RC_ULIMIT"*) fail "rc_ulimit error: $out" ;; esac
	return 0
}
# The supervisor and its agent in $sup and $agent, remembered for cleanup.
# `start` returns once supervise-daemon has forked: the pidfile and the
# agent may come a moment later (5 s at most).
supervised() {
	i=0
	while :; do
		sup=$(read_pid "$pf")
		agent=
		[ -n "$sup" ] && agent=$(agent_under "$sup")
		[ -n "$agent" ] || [ "$i" -ge 50 ] && break
		sleep 0.1
		i=$((i + 1))
	done
	remember_sup "$sup"
	remember "$agent"
}
pf=/run/kestrel.pid
m=$o/log/metrics.json
orc status
expect_rc 3 "status before start"
orc start
expect_rc 0 "start"
supervised
check "depend(): need localmount started it first" test -e /run/openrc/started/localmount
check "start_pre made the log directory (0750)" test "$(stat -c %a "$o/log" 2>/dev/null)" = 750
check "pidfile names supervise-daemon" test "$(readlink "/proc/$sup/exe")" = "$(readlink -f /sbin/supervise-daemon)"
a1=$agent
check "supervise-daemon runs the agent ($bin)" is_agent "$a1"
check "KESTREL_ARGS reach the agent word by word (? and & literal)" \
	has_arg "$a1" "syslog://127.0.0.1:9?format=3164&app=kestrel"
if [ -n "$ulimit_ok" ]; then
	check "rc_ulimit: agent's memlock limit unlimited" grep -Eq '^Max locked memory +unlimited' "/proc/$a1/limits"
fi
check "agent writes snapshots" snapshots_after "$m" 0
check "snapshots are Falco metrics" has_falco_metrics "$m"
check "agent's stderr in kestrel.log (probe loaded)" grep -q 'probe attached' "$o/log/kestrel.log"
orc status
expect_rc 0 "status while running"
mv "$m" "$m.1"
orc reload
expect_rc 0 "reload"
check "reload: agent reopened its output (new metrics.json)" snapshots_after "$m" 0
check "reload: same agent" is_agent "$a1"
kill -KILL "$a1"
i=0
a2=
while [ "$i" -lt 100 ]; do
	a2=$(agent_under "$sup")
	[ -n "$a2" ] && [ "$a2" != "$a1" ] && break
	sleep 0.1
	i=$((i + 1))
done
remember "$a2"
if [ -n "$a2" ] && [ "$a2" != "$a1" ] && is_agent "$a2"; then ok "killed agent respawned (respawn_delay)"; else fail "no respawn after kill ($a1 -> $a2)"; fi
sup1=$sup
sed -i 's/--interval 1s/--interval 1h/' /etc/conf.d/kestrel
t0=$(date +%s%N)
orc restart
expect_rc 0 "restart"
check "restart: old agent gone" gone_within "$a2" 50
check "restart: old supervise-daemon gone" gone_within "$sup1" 50
supervised
a3=$agent
check "restart: new agent runs" is_agent "$a3"
check "restart: new settings (--interval 1h)" has_arg "$a3" 1h
# The stop's count starts after the new agent's first snapshot, which may land
# after the restart returns.
check "restart: the new agent's first snapshot" snapshot_since "$m" "$t0"
orc status
expect_rc 0 "status after restart"
n=$(lines "$m")
orc stop
expect_rc 0 "stop"
check "stop: agent gone" gone_within "$a3" 50
check "stop: supervise-daemon gone" gone_within "$sup" 50
check "stop: final snapshot written (SIGTERM)" final_snapshot "$m" "$n"
check "stop: pidfile removed" test ! -e "$pf"
orc status
expect_rc 3 "status after stop"
# KESTREL_USER: the agent drops to that user after attach; checkpath hands
# it the log directory, so it can reopen a rotated output.
echo "KESTREL_USER=$run_user" >>/etc/conf.d/kestrel
sed -i 's/--interval 1h/--interval 1s/' /etc/conf.d/kestrel
orc start
expect_rc 0 "start with KESTREL_USER=$run_user"
supervised
check "KESTREL_USER: agent runs as $run_user" runs_as "$agent"
check "KESTREL_USER: log directory given to $run_user" owned_by_user "$o/log"
mv "$m" "$m.2"
orc reload
expect_rc 0 "KESTREL_USER: reload"
check "KESTREL_USER: agent reopened its output as $run_user" snapshots_after "$m" 0
check "KESTREL_USER: new output owned by $run_user" owned_by_user "$m"
orc stop
expect_rc 0 "KESTREL_USER: stop"
check "KESTREL_USER: agent gone" gone_within "$agent" 50
check "KESTREL_USER: pidfile removed" test ! -e "$pf"
