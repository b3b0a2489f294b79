# shellcheck shell=sh disable=SC3045,SC2034
# (busybox ash has read -t; NOW is read by the sourcing scripts.)
# Helpers every guest script shares; run.sh installs this file at
# /lib/kestrel-guest.sh and the scripts source it. Builtins only: inside a
# workload window a fork or an fd would be counted. nap reads fd 4, a FIFO
# the sourcing script opens and nobody writes; KPID is its agent's pid.

# Sleep $1 seconds without a fork: read with a timeout on the FIFO.
nap() { read -r -t "$1" -u 4 _; }
# NOW = centiseconds since boot (/proc/uptime, 10 ms steps).
now_cs() {
    read -r _up _ < /proc/uptime
    _s=${_up%.*}
    _f=${_up#*.}
    NOW=$((_s * 100 + ${_f#0}))
}
# The agent has exited but was not yet reaped.
is_zombie() {
    [ -r "/proc/$KPID/stat" ] || return 1
    read -r _ _ _st _ < "/proc/$KPID/stat"
    [ "$_st" = Z ]
}
