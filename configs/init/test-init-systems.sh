#!/bin/sh
# Runs the init integrations with Debian's own tools and a real agent:
#   systemd   `systemd-analyze verify` of systemd/kestrel.service in a scratch
#             root holding the kestrel binary at the unit's ExecStart path (and
#             every other Exec*= program); any message about the unit fails.
#             Then `systemd-analyze security --offline` must stay at 3.9 or
#             better (configs/README.md says 3.9). systemd itself is not PID 1
#             here, so the unit is checked, not run.
#   OpenRC    openrc/kestrel and kestrel.confd installed as the README says,
#             run with Debian's rc-service/openrc-run and supervise-daemon:
#             start (depend()'s `need localmount` honoured), status, reload
#             (SIGHUP reopens the output), respawn after a kill, restart with
#             new settings, stop (final snapshot); KESTREL_USER=nobody.
#   sysvinit  sysvinit/kestrel under dpkg's start-stop-daemon: start, status,
#             reload, restart, stop, a failing start, KESTREL_USER=nobody;
#             pidfile checked.
# OpenWrt's procd script is not run: Debian has no procd/ubus.
#
# Why the OpenRC part needs tricks: openrc-run keeps service state in
# /run/openrc (fixed at build time; Debian's 0.45 has no RC_SVCDIR override)
# and refuses to run a service on a system OpenRC did not boot unless
# /run/openrc/softlevel exists; it reads a service's settings from
# /etc/conf.d and builds its dependency tree from /etc/init.d only. So
# everything below runs in a private mount namespace (unshare -m) with a
# scratch directory bind-mounted on /run and an overlay on /etc whose writes
# go to the scratch directory: the host's /run and /etc are untouched.
# Debian's OpenRC has no localmount service (a stub stands in) and ships no
# start-stop-daemon of its own (dpkg's lacks --stdout/--stderr), so only the
# default supervisor, supervise-daemon, can run: supervisor="" (OpenRC's own
# start-stop-daemon) is Alpine-only and untested here.
#
# Needs root (installs systemd/openrc if missing, loads the probe, unshare).
# Not root: skips (exit 0), unless CI=true. Exit status non-zero on any failure.
#
#   sh configs/init/test-init-systems.sh [-v]
# KESTREL_TEST_BIN=PATH tests that binary; default: the static musl release
# build of this tree (cargo build --release --target <arch>-unknown-linux-musl,
# a no-op when up to date).

here=$(cd "$(dirname "$0")" && pwd)
self=$here/${0##*/}
repo=${here%/configs/init}
verbose=
[ "${1:-}" = -v ] && verbose=1

skip() {
	if [ "${CI:-}" = true ]; then
		echo "FAIL: $*" >&2
		exit 1
	fi
	echo "SKIP: $*" >&2
	exit 0
}

if [ -z "${KESTREL_INIT_TEST_NS:-}" ]; then
	[ "$(id -u)" = 0 ] || skip "init systems test needs root (packages, BPF, mount namespace)"
	# Debian's tools: systemd-analyze (systemd), openrc-run and
	# supervise-daemon (openrc), start-stop-daemon (dpkg, essential),
	# /lib/lsb/init-functions (sysvinit-utils, essential), unshare (util-linux).
	for want in /usr/bin/systemd-analyze:systemd /sbin/openrc-run:openrc /sbin/supervise-daemon:openrc; do
		[ -x "${want%%:*}" ] && continue
		pkg=${want#*:}
		echo "+ apt-get install $pkg"
		{ apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$pkg"; } ||
			{
				echo "FAIL: cannot install $pkg" >&2
				exit 1
			}
	done
	for t in start-stop-daemon unshare mount; do
		command -v "$t" >/dev/null 2>&1 || {
			echo "FAIL: $t not found" >&2
			exit 1
		}
	done
	if [ -z "${KESTREL_TEST_BIN:-}" ]; then
		triple=$(uname -m)-unknown-linux-musl
		echo "+ cargo build --release --target $triple"
		(cd "$repo" && cargo build --release -q --target "$triple") || exit 1
		tdir=${CARGO_TARGET_DIR:-target}
		case $tdir in /*) ;; *) tdir=$repo/$tdir ;; esac
		KESTREL_TEST_BIN=$tdir/$triple/release/kestrel
	fi
	case $KESTREL_TEST_BIN in /*) ;; *) KESTREL_TEST_BIN=$PWD/$KESTREL_TEST_BIN ;; esac
	[ -x "$KESTREL_TEST_BIN" ] || {
		echo "FAIL: no kestrel binary at $KESTREL_TEST_BIN" >&2
		exit 1
	}
	export KESTREL_TEST_BIN
	# The rest runs in a private mount namespace (see the top).
	KESTREL_INIT_TEST_NS=1 exec unshare --mount --propagation private sh "$self" "$@"
fi

bin=$KESTREL_TEST_BIN
tmp=$(mktemp -d "${TMPDIR:-/tmp}/kestrel-init-systems.XXXXXX") || exit 1
chmod 755 "$tmp"
cleanup() {
	# Only processes this test started: the pids it saw in its pidfiles.
	# Supervisors first, so that no agent is respawned.
	for f in "$tmp/sup.pids" "$tmp/pids"; do
		[ -r "$f" ] || continue
		while read -r p; do
			kill -KILL "$p" 2>/dev/null
		done <"$f"
	done
	# This namespace's mounts (gone with it anyway).
	umount /etc 2>/dev/null
	umount /run 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
mkdir -p "$tmp/run"
mount --bind "$tmp/run" /run || {
	echo "FAIL: cannot bind-mount a scratch /run in a private mount namespace" >&2
	exit 1
}
# No redirect of init scripts to systemctl (lsb init-functions), whatever the host.
SYSTEMCTL_SKIP_REDIRECT=1
export SYSTEMCTL_SKIP_REDIRECT

# shellcheck source-path=SCRIPTDIR source=test-lib.sh
. "$here/test-lib.sh"
fail_details() { # the tail of this section's logs
	for f in $logs; do
		[ -s "$f" ] && tail -n 5 "$f" | sed "s|^|    ${f##*/}: |"
	done
	return 0
}
# A live (not zombie) process.
alive() {
	[ -n "$1" ] || return 1
	st=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	st=${st##*) }
	[ "${st%% *}" != Z ]
}
gone_within() { # pid, tenths of a second
	i=0
	while alive "$1"; do
		[ "$i" -ge "$2" ] && return 1
		sleep 0.1
		i=$((i + 1))
	done
}
# The real agent: this binary, named kestrel.
is_agent() {
	alive "$1" && [ "$(readlink "/proc/$1/exe")" = "$bin" ] &&
		[ "$(cat "/proc/$1/comm" 2>/dev/null)" = kestrel ]
}
# One word of a process's command line, exactly.
has_arg() { tr '\000' '\n' <"/proc/$1/cmdline" | grep -qxF -- "$2"; }
remember() { [ -n "$1" ] && echo "$1" >>"$tmp/pids"; }
remember_sup() { [ -n "$1" ] && echo "$1" >>"$tmp/sup.pids"; }
read_pid() { cat "$1" 2>/dev/null; }
# Children of a pid (no procps needed).
child_of() {
	for _stat in /proc/[0-9]*/stat; do
		_l=$(cat "$_stat" 2>/dev/null) || continue
		_l=${_l##*) }
		set -f
		# shellcheck disable=SC2086 # split the stat fields
		set -- $_l
		set +f
		[ "$2" = "$parent" ] && {
			_p=${_stat#/proc/}
			echo "${_p%/stat}"
		}
	done
}
agent_under() { # supervisor pid: its kestrel child
	parent=$1
	for c in $(child_of); do
		is_agent "$c" && echo "$c"
	done
}
lines() { if [ -r "$1" ]; then wc -l <"$1" | tr -d ' '; else echo 0; fi; }
# The agent writes one last snapshot on SIGTERM. Checked with a 1 h interval,
# so that no interval snapshot can stand in for it.
final_snapshot() { # file, lines before the stop
	[ "$(lines "$1")" = $(($2 + 1)) ] && has_falco_metrics "$1"
}
snapshots_after() { # file, count: waits up to 10 s for more than count lines
	i=0
	while [ "$(lines "$1")" -le "$2" ]; do
		[ "$i" -ge 100 ] && return 1
		sleep 0.1
		i=$((i + 1))
	done
}
snapshot_since() { # file, ns since the epoch: waits up to 10 s for a snapshot of an agent started after it
	i=0
	until grep -o '"falco.start_ts":[0-9]*' "$1" 2>/dev/null | cut -d: -f2 |
		awk -v t="$2" '$1 > t { found = 1 } END { exit !found }'; do
		[ "$i" -ge 100 ] && return 1
		sleep 0.1
		i=$((i + 1))
	done
}
has_falco_metrics() { grep -q '"rule":"Falco internal: metrics snapshot"' "$1"; }
# KESTREL_USER runs: the agent drops to this user after attach.
run_user=nobody
run_uid=$(id -u "$run_user" 2>/dev/null)
is_uid() { [ -n "$run_uid" ] && grep -Eq "^Uid:[[:space:]]+${run_uid}[[:space:]]" "/proc/$1/status"; }
# The agent drops to the user only once the probe is attached (verifier
# time): wait up to 5 s for it, as CI once checked before the drop.
runs_as() {
	i=0
	until is_uid "$1"; do
		[ "$i" -ge 50 ] && return 1
		sleep 0.1
		i=$((i + 1))
	done
}
owned_by_user() { [ "$(stat -c %u "$1" 2>/dev/null)" = "$run_uid" ]; }

# ---------------------------------------------------------------- systemd
section=systemd
echo "== systemd: systemd-analyze verify ($(systemd-analyze --version | head -n 1))"
logs=
unit=$here/systemd/kestrel.service
root=$tmp/sysroot
mkdir -p "$root/usr/bin" "$root/usr/sbin" "$root/usr/lib/systemd" "$root/etc/systemd/system"
for d in bin sbin lib; do ln -s "usr/$d" "$root/$d"; done
# The targets the unit names (network.target, multi-user.target, ...).
cp -a /usr/lib/systemd/system "$root/usr/lib/systemd/"
cp "$unit" "$root/etc/systemd/system/kestrel.service"
start_path=$(sed -n 's/^ExecStart=[-@:+!]*\([^ ]*\).*/\1/p' "$unit")
check "ExecStart is /usr/sbin/kestrel (the path every README step installs to)" test "$start_path" = /usr/sbin/kestrel
install -D -m 0755 "$bin" "$root$start_path"
sed -n 's/^Exec[A-Za-z]*=[-@:+!]*\([^ ]*\).*/\1/p' "$unit" | sort -u | while read -r p; do
	[ "$p" = "$start_path" ] && continue
	install -D -m 0755 "$(readlink -f "$p")" "$root$p"
done
verify() { # root: output in $out, status in $rc
	out=$(systemd-analyze verify --man=no --root="$1" kestrel.service 2>&1)
	rc=$?
	[ -n "$verbose" ] && echo "  \$ systemd-analyze verify -> $rc: $out"
	return 0
}
verify "$root"
if [ "$rc" = 0 ] && ! printf '%s\n' "$out" | grep -qF kestrel.service; then
	ok "systemd-analyze verify: no error or warning about the unit"
else
	fail "systemd-analyze verify (exit $rc): $out"
fi
[ -n "$out" ] && printf '%s\n' "$out" | grep -vF kestrel.service | sed 's/^/  note (not about the unit): /'
# The check can fail: a missing binary is an error, a typo a warning.
mv "$root$start_path" "$tmp/kestrel.moved"
verify "$root"
if [ "$rc" != 0 ] && printf '%s\n' "$out" | grep -q "$start_path"; then
	ok "verify fails without the binary"
else
	fail "verify did not notice the missing binary (exit $rc): $out"
fi
mv "$tmp/kestrel.moved" "$root$start_path"
sed 's/^ProtectClock=/ProtectClockTypo=/' "$unit" >"$root/etc/systemd/system/kestrel.service"
verify "$root"
case $out in *kestrel.service*ProtectClockTypo*) ok "verify warns about an unknown key" ;; *) fail "verify missed a bad key: $out" ;; esac
cp "$unit" "$root/etc/systemd/system/kestrel.service"
out=$(systemd-analyze security --offline=true --root="$root" --threshold=39 --no-pager kestrel.service 2>&1)
rc=$?
expect_rc 0 "systemd-analyze security: exposure 3.9 or better ($(printf '%s\n' "$out" | sed -n 's/.*Overall exposure level for kestrel.service: //p'))"

# ---------------------------------------------------------------- OpenRC
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

# ---------------------------------------------------------------- sysvinit
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

summary
