# Check bookkeeping shared by the init-script tests (test-busybox-init.sh,
# test-init-systems.sh); sourced, plain POSIX sh. The sourcing test sets
# $section to the part under test and $verbose for a line per passed check,
# and defines fail_details to show what explains a failure (its logs).
# shellcheck shell=sh

failures=0
checks=0
section=
fail() {
	failures=$((failures + 1))
	echo "  FAIL [$section] $*" >&2
	fail_details >&2
	return 0
}
ok() {
	checks=$((checks + 1))
	[ -n "$verbose" ] && echo "  ok [$section] $*"
	return 0
}
check() { # description, command...: the command must succeed
	d=$1
	shift
	if "$@"; then ok "$d"; else fail "$d"; fi
}
check_not() { # description, command...: the command must fail
	d=$1
	shift
	if "$@"; then fail "$d"; else ok "$d"; fi
}
# shellcheck disable=SC2154 # $rc and $out: set by the sourcing test's runs
expect_rc() { # want, description
	if [ "$rc" = "$1" ]; then ok "$2 (exit $rc)"; else fail "$2: exit $rc, want $1: $out"; fi
}
# The last line of a test: the counts, and its exit status.
summary() {
	echo "$checks checks passed, $failures failed"
	[ "$failures" -eq 0 ]
}
