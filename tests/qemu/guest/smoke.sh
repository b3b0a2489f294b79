#!/bin/sh
# Guest-side smoke test (busybox sh): kernel features the agent needs, plus
# the host<->guest output channels.
fail() {
    echo "$*" > /tmp/kestrel-fail-reason
    echo "smoke: FAIL: $*"
    exit 1
}
echo "smoke: uname -r: $(uname -r)"
[ -e /sys/kernel/btf/vmlinux ] || fail "no /sys/kernel/btf/vmlinux"
[ -d /sys/kernel/tracing/events/raw_syscalls ] || fail "no tracefs events/raw_syscalls"
[ -d /sys/kernel/tracing/events/sched/sched_process_fork ] ||
    fail "no tracefs events/sched/sched_process_fork"
grep -q ' /sys/fs/bpf bpf ' /proc/mounts || fail "bpffs not mounted"
# /bin/kestrel is src/hello.c (static musl) or, without a cross compiler, busybox
bin_out=$(/bin/kestrel 2>&1)
case $bin_out in
    kestrel-smoke-binary-ok*) echo "smoke: /bin/kestrel says: $bin_out" ;;
    *) ln -s /bin/kestrel /tmp/busybox
       if ! /tmp/busybox true; then fail "/bin/kestrel did not run: $bin_out"; fi
       echo "smoke: /bin/kestrel is busybox" ;;
esac
btf=$(wc -c < /sys/kernel/btf/vmlinux)
printf '{"kernel":"%s","machine":"%s","btf_bytes":%s}\n' "$(uname -r)" "$(uname -m)" "$btf" \
    > /tmp/snapshot.json
kestrel-out /tmp/snapshot.json
kestrel-put /tmp/snapshot.json snapshot.json
echo "smoke: ok"
