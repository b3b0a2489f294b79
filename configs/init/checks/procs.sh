# Process and snapshot checks for test-init-systems.sh: the agent found by
# its binary ($bin), its pidfiles and children, its metrics file's lines.
# Sourced after test-lib.sh; plain POSIX sh, no procps.
# shellcheck shell=sh disable=SC2034,SC2154 # variables shared with the driver
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
