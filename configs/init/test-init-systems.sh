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
# The checks, one file per part: each runs in this shell, so a part sees the
# helpers and settings above it and those of the parts before it.
# shellcheck source-path=SCRIPTDIR source=checks/procs.sh
. "$here/checks/procs.sh"
# shellcheck source-path=SCRIPTDIR source=checks/systemd.sh
. "$here/checks/systemd.sh"
# shellcheck source-path=SCRIPTDIR source=checks/openrc.sh
. "$here/checks/openrc.sh"
# shellcheck source-path=SCRIPTDIR source=checks/sysvinit.sh
. "$here/checks/sysvinit.sh"

summary
