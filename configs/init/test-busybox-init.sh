#!/bin/sh
# Exercises configs/init/busybox/kestrel under BusyBox's own sh and applets
# against a stub agent (traps TERM and HUP, writes its pidfile after a fake
# probe load, like the real one). Three ways of signalling: BusyBox's
# start-stop-daemon, the host's (Debian's) start-stop-daemon if present, and
# none (pidfile + kill). Needs no root. Exit status non-zero on any failure.
# Without busybox it skips (exit 0), unless CI=true.
#
#   sh configs/init/test-busybox-init.sh [-v]

# Under nohup SIGHUP is ignored, and a shell cannot trap a signal that was
# ignored when it started: the stub's reload check would fail. Run again with
# SIGHUP back to its default (coreutils env); init systems start agents so.
if [ -z "${KESTREL_HUP_DEFAULT:-}" ] && env --default-signal=HUP true 2>/dev/null; then
	KESTREL_HUP_DEFAULT=1 exec env --default-signal=HUP sh "$0" "$@"
fi

here=$(cd "$(dirname "$0")" && pwd)
script=$here/busybox/kestrel
verbose=
[ "$1" = -v ] && verbose=1

bb=$(command -v busybox 2>/dev/null)
if [ -z "$bb" ]; then
	if [ "$CI" = true ]; then
		echo "FAIL: busybox not installed (apt-get install busybox-static)" >&2
		exit 1
	fi
	echo "SKIP: busybox not installed (apt-get install busybox-static)" >&2
	exit 0
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/kestrel-init-test.XXXXXX") || exit 1
cleanup() {
	# Only processes this test started: pids the stub recorded.
	if [ -r "$tmp/stub.pids" ]; then
		while read -r p; do
			kill -KILL "$p" 2>/dev/null
		done <"$tmp/stub.pids"
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# Every applet as a symlink, first in PATH: the script runs on BusyBox tools.
mkdir -p "$tmp/bb" "$tmp/bin"
"$bb" --install -s "$tmp/bb" || {
	for a in $("$bb" --list); do ln -s "$bb" "$tmp/bb/$a"; done
}
PATH=$tmp/bb:$PATH
export PATH

# The stub agent. It is named kestrel: the script checks /proc/PID/cmdline.
cat >"$tmp/bin/kestrel" <<EOF
#!$bb sh
log=\${KESTREL_STUB_LOG:?}
echo "\$\$" >>"$tmp/stub.pids"
echo "args: \$*" >>"\$log"
pidfile=
prev=
for a in "\$@"; do
	[ "\$prev" = --pidfile ] && pidfile=\$a
	prev=\$a
done
if [ "\$KESTREL_STUB_IGNORE_TERM" = 1 ]; then
	trap 'echo TERM-ignored >>"\$log"' TERM
else
	trap 'echo TERM >>"\$log"; rm -f "\$pidfile"; exit 0' TERM
fi
trap 'echo HUP >>"\$log"' HUP
if [ "\$KESTREL_STUB_FAIL" = 1 ]; then
	echo "kestrel: permission denied loading the probe (stub)" >&2
	exit 1
fi
sleep 0.3 # probe load
[ -n "\$pidfile" ] && echo "\$\$" >"\$pidfile"
echo ready >>"\$log"
while :; do
	sleep 0.2 &
	wait \$!
done
EOF
chmod +x "$tmp/bin/kestrel"

export KESTREL_BIN="$tmp/bin/kestrel"
export KESTREL_PIDFILE="$tmp/run/kestrel.pid"
export KESTREL_LOGDIR="$tmp/log"
export KESTREL_LOG="$tmp/log/kestrel.log"
export KESTREL_DEFAULTS="$tmp/default-kestrel"
export KESTREL_STUB_LOG="$tmp/stub.log"
export KESTREL_START_WAIT=5
export KESTREL_STOP_WAIT=5
: >"$KESTREL_DEFAULTS"

# shellcheck source-path=SCRIPTDIR source=test-lib.sh
. "$here/test-lib.sh"
fail_details() { # the stub's log and the agent log
	if [ -r "$KESTREL_STUB_LOG" ]; then sed 's/^/    stub: /' "$KESTREL_STUB_LOG"; fi
	if [ -r "$KESTREL_LOG" ]; then sed 's/^/    log: /' "$KESTREL_LOG"; fi
	return 0
}

# Runs the init script under busybox sh (30 s at most, so a hang fails
# instead of blocking CI); output in $out, status in $rc.
init() {
	out=$("$bb" timeout 30 "$bb" sh "$script" "$@" 2>&1)
	rc=$?
	[ -n "$verbose" ] && echo "  \$ kestrel $* -> $rc: $out"
	return 0
}
stub_log_has() { # line, description; waits up to 10 s (a loaded CI machine is slow)
	i=0
	while [ $i -lt 100 ]; do
		grep -qx "$1" "$KESTREL_STUB_LOG" 2>/dev/null && {
			ok "$2"
			return 0
		}
		sleep 0.1
		i=$((i + 1))
	done
	fail "$2: no '$1' line in the stub log"
}
pid_now() { cat "$KESTREL_PIDFILE" 2>/dev/null; }
alive() { kill -0 "$1" 2>/dev/null && [ -n "$(tr -d '\000' <"/proc/$1/cmdline" 2>/dev/null)" ]; }
fresh() {
	rm -rf "$tmp/run" "$tmp/log" "$tmp/kestrel.conf"
	: >"$KESTREL_STUB_LOG"
	unset KESTREL_STUB_FAIL KESTREL_STUB_IGNORE_TERM KESTREL_CONFIG KESTREL_ARGS
	export KESTREL_CONFIG="$tmp/kestrel.conf"
}

run_suite() {
	fresh
	init status
	expect_rc 3 "status before start"

	init start
	expect_rc 0 "start"
	p1=$(pid_now)
	if [ -n "$p1" ] && alive "$p1"; then ok "pidfile names a live agent"; else fail "no live pid after start ($p1)"; fi
	check "default flags" grep -qx \
		"args: run --output file:$KESTREL_LOGDIR/metrics.json --pidfile $KESTREL_PIDFILE" "$KESTREL_STUB_LOG"
	check "start returned after the load" grep -qx ready "$KESTREL_STUB_LOG"

	init start
	expect_rc 0 "second start"
	case $out in *"already running (pid $p1)"*) ok "second start is a no-op" ;; *) fail "second start: $out" ;; esac

	init status
	expect_rc 0 "status while running"

	init reload
	expect_rc 0 "reload"
	stub_log_has HUP "reload delivers SIGHUP"
	check "agent survives reload" alive "$p1"

	init restart
	expect_rc 0 "restart"
	p2=$(pid_now)
	if [ -n "$p2" ] && [ "$p2" != "$p1" ] && alive "$p2" && ! alive "$p1"; then
		ok "restart replaced the agent"
	else
		fail "restart: old $p1 new $p2"
	fi

	init stop
	expect_rc 0 "stop"
	stub_log_has TERM "stop delivers SIGTERM"
	check_not "agent gone after stop" alive "$p2"
	check_not "pidfile removed by stop" test -e "$KESTREL_PIDFILE"
	init status
	expect_rc 3 "status after stop"
	init stop
	expect_rc 0 "stop when stopped"
	init reload
	expect_rc 7 "reload when stopped"

	# A stale pidfile naming some other live process is not kestrel.
	mkdir -p "$tmp/run"
	sleep 30 &
	other=$!
	echo "$other" >"$KESTREL_PIDFILE"
	init status
	expect_rc 1 "status with a stale pidfile"
	init stop
	expect_rc 0 "stop with a stale pidfile"
	check "stop left the unrelated pid alone" alive "$other"
	kill "$other" 2>/dev/null
	wait "$other" 2>/dev/null

	# Config file present: --config, and no default --output.
	fresh
	echo 'interval = "1s"' >"$tmp/kestrel.conf"
	echo 'KESTREL_ARGS="--interval 2s -v"' >"$KESTREL_DEFAULTS"
	init start
	expect_rc 0 "start with config + KESTREL_ARGS"
	check "config + args flags" grep -qx \
		"args: run --config $tmp/kestrel.conf --interval 2s -v --pidfile $KESTREL_PIDFILE" "$KESTREL_STUB_LOG"
	init stop
	expect_rc 0 "stop"
	: >"$KESTREL_DEFAULTS"

	# KESTREL_ARGS words are taken literally: no globbing, & is no operator.
	fresh
	export KESTREL_ARGS="--output syslog://192.0.2.1:514?format=3164&app=k* -v"
	init start
	expect_rc 0 "start with a syslog URL"
	check "syslog URL passed as one word" grep -qxF \
		"args: run --output syslog://192.0.2.1:514?format=3164&app=k* -v --pidfile $KESTREL_PIDFILE" "$KESTREL_STUB_LOG"
	init stop
	expect_rc 0 "stop"
	unset KESTREL_ARGS

	# Load failure: start reports it and shows the log.
	fresh
	export KESTREL_STUB_FAIL=1
	init start
	expect_rc 1 "start of a failing agent"
	case $out in *"permission denied loading the probe"*) ok "failure shows the log" ;; *) fail "no log in: $out" ;; esac
	unset KESTREL_STUB_FAIL
	init status
	expect_rc 3 "status after failed start"

	# An agent that ignores SIGTERM is killed after KESTREL_STOP_WAIT.
	fresh
	export KESTREL_STUB_IGNORE_TERM=1
	init start
	expect_rc 0 "start (TERM-ignoring stub)"
	p3=$(pid_now)
	KESTREL_STOP_WAIT=1 init stop
	expect_rc 0 "stop escalates"
	case $out in *killed*) ok "stop says killed" ;; *) fail "stop output: $out" ;; esac
	sleep 0.2
	check_not "TERM-ignoring agent killed" alive "$p3"
	unset KESTREL_STUB_IGNORE_TERM
}

modes="busybox-ssd none"
[ -x /usr/sbin/start-stop-daemon ] && ! [ -L /usr/sbin/start-stop-daemon ] && modes="$modes host-ssd"
for section in $modes; do
	echo "== $section"
	case $section in
	busybox-ssd) unset KESTREL_SSD ;; # found in PATH: the busybox applet
	none) export KESTREL_SSD=none ;;
	host-ssd) export KESTREL_SSD=/usr/sbin/start-stop-daemon ;;
	esac
	run_suite
done

# The foreground action (inittab respawn) execs the agent in place.
section=foreground
fresh
unset KESTREL_SSD
"$bb" sh "$script" foreground &
fg=$!
i=0
while [ $i -lt 30 ] && [ "$(pid_now)" != "$fg" ]; do
	sleep 0.1
	i=$((i + 1))
done
check "foreground execs the agent (same pid $fg)" test "$(pid_now)" = "$fg"
kill -TERM "$fg"
wait "$fg"
rc=$?
expect_rc 0 "foreground agent exits 0 on SIGTERM"

summary
