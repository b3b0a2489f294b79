#!/bin/sh
# Guest-side smoke test (busybox sh): kernel features the agent needs, plus
# the host<->guest output channels.
fail() {
    echo "$*" > /tmp/kestrel-fail-reason
    echo "smoke: FAIL: $*"
    exit 1
}
# /etc/kestrel-test.env (from smoke.sh): KT_BTF=kernel|none, KT_COMPAT=32-bit busybox
KT_BTF=kernel KT_COMPAT=''
# shellcheck source=/dev/null
[ -f /etc/kestrel-test.env ] && . /etc/kestrel-test.env
echo "smoke: uname -r: $(uname -r)"
if [ "$KT_BTF" = none ]; then
    [ ! -e /sys/kernel/btf/vmlinux ] || fail "/sys/kernel/btf/vmlinux exists, expected no BTF"
    echo "smoke: no /sys/kernel/btf/vmlinux, as expected"
else
    [ -e /sys/kernel/btf/vmlinux ] || fail "no /sys/kernel/btf/vmlinux"
fi
if [ -n "$KT_COMPAT" ]; then
    # 32-bit userland: sh with a fork, an exec of an applet by path, an open
    ln -s busybox "$(dirname "$KT_COMPAT")/true"
    c=$("$KT_COMPAT" sh -c "( : ) && $(dirname "$KT_COMPAT")/true && read -r l < /etc/passwd && echo \"\${l%%:*}\"") ||
        fail "32-bit busybox $KT_COMPAT failed"
    [ "$c" = root ] || fail "32-bit busybox sh printed '$c'"
    echo "smoke: 32-bit busybox ok"
fi
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
btf=0
[ "$KT_BTF" = none ] || btf=$(wc -c < /sys/kernel/btf/vmlinux)
printf '{"kernel":"%s","machine":"%s","btf_bytes":%s}\n' "$(uname -r)" "$(uname -m)" "$btf" \
    > /tmp/snapshot.json
kestrel-out /tmp/snapshot.json
kestrel-put /tmp/snapshot.json snapshot.json
echo "smoke: ok"
