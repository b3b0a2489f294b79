#!/bin/sh
# Guest script with no Kestrel in it: enables and disables the tracepoints the
# probe attaches to (raw_syscalls sys_exit, sched_switch, hrtimer_expire_entry)
# through tracefs, 600 times, while /extra/sysloop keeps every vCPU making
# syscalls. Each enable and disable patches kernel text on every vCPU
# (text_poke_bp, an IPI to each), as the probe's attach and detach do. On a
# 4-vCPU TCG guest over 2 host cores this stalls now and then (BENCHMARKS.md,
# "The 4-vCPU drops are bursts"): the harness's, not the agent's.
#
#   KESTREL_QEMU_SMP=4 KESTREL_QEMU_LOGLEVEL=7 tests/qemu/run.sh amd64 6.1 - \
#       tests/qemu/guest/toggle.sh SYSLOOP:/extra/sysloop
# (SYSLOOP: tests/qemu/src/sysloop.c, built static, as cpus.sh builds it.)
T=/sys/kernel/tracing/events
[ -x /extra/sysloop ] || { echo "toggle.sh: no /extra/sysloop" >&2; exit 1; }
/extra/sysloop 4 400000 > /dev/null &
loop=$!
i=0
while [ "$i" -lt 600 ]; do
    for e in raw_syscalls/sys_exit sched/sched_switch timer/hrtimer_expire_entry; do
        echo 1 > "$T/$e/enable" || exit 1
    done
    for e in raw_syscalls/sys_exit sched/sched_switch timer/hrtimer_expire_entry; do
        echo 0 > "$T/$e/enable" || exit 1
    done
    i=$((i + 1))
    [ $((i % 50)) = 0 ] && echo "kestrel-guest: toggles $i"
done
kill "$loop"
exit 0
