#!/bin/sh
# Guest-side deployment test (busybox sh): `kestrel check` on a good host, with
# BTF hidden (exactly that line fails, exit 1) and with tracefs unmounted (check
# mounts it back), then the BusyBox init script for real: start, snapshots
# flow, reload, stop cleanly with a final snapshot.
# Expects /bin/kestrel and /etc/init.d/kestrel (configs/init/busybox/kestrel).

fail() {
    echo "$*" > /tmp/kestrel-fail-reason
    echo "deploy: FAIL: $*"
    exit 1
}
count_lines() { # file -> number of lines (builtins only)
    n=0
    if [ -f "$1" ]; then
        while IFS= read -r _; do n=$((n + 1)); done < "$1"
    fi
    echo "$n"
}

echo "deploy: kernel $(uname -r) $(uname -m)"

# 1. A good host.
/bin/kestrel check > /tmp/check-ok.txt; rc=$?
cat /tmp/check-ok.txt
[ "$rc" -eq 0 ] || fail "check exited $rc on a good host"
grep -q "this host CAN run" /tmp/check-ok.txt || fail "check did not say CAN"

# 2. BTF hidden: the btf line (and only the prerequisites it implies) fails.
mount -t tmpfs none /sys/kernel/btf || fail "cannot hide BTF"
/bin/kestrel check > /tmp/check-btf.txt; rc=$?
umount /sys/kernel/btf
cat /tmp/check-btf.txt
[ "$rc" -eq 1 ] || fail "check exited $rc without BTF (want 1)"
fails=$(grep -c '^  FAIL' /tmp/check-btf.txt)
grep -q '^  FAIL  btf ' /tmp/check-btf.txt || fail "no FAIL line for btf"
grep -q '^  FAIL  probe ' /tmp/check-btf.txt || fail "no FAIL line for probe"
[ "$fails" -eq 2 ] || fail "want exactly btf and probe failing, got $fails FAIL lines"

# 3. tracefs unmounted: check mounts it again and passes.
umount /sys/kernel/tracing 2>/dev/null
/bin/kestrel check > /tmp/check-tfs.txt; rc=$?
cat /tmp/check-tfs.txt
[ "$rc" -eq 0 ] || fail "check exited $rc with tracefs unmounted"
grep -q "tracefs .*mounted it" /tmp/check-tfs.txt || fail "check did not mount tracefs"

# 4. BusyBox init script.
mkdir -p /etc/default /var/log/kestrel /run
cat > /etc/default/kestrel <<EOT
KESTREL_BIN=/bin/kestrel
KESTREL_ARGS="--output file:/var/log/kestrel/metrics.json --interval 300ms"
EOT
/etc/init.d/kestrel start || fail "init script start failed: $(tail -n 3 /var/log/kestrel/kestrel.log)"
pid=$(cat /run/kestrel.pid 2>/dev/null)
if [ -z "$pid" ] || ! kill -0 "$pid"; then fail "no running agent after start"; fi
/etc/init.d/kestrel status || fail "status says not running"
i=0
while [ "$(count_lines /var/log/kestrel/metrics.json)" -lt 3 ]; do
    i=$((i + 1))
    [ "$i" -lt 300 ] || fail "snapshots did not flow"
    sleep 0.1
done
mv /var/log/kestrel/metrics.json /var/log/kestrel/metrics.json.1
/etc/init.d/kestrel reload || fail "reload failed"
i=0
while [ ! -s /var/log/kestrel/metrics.json ]; do
    i=$((i + 1))
    [ "$i" -lt 100 ] || fail "no new output file after reload"
    sleep 0.1
done
before=$(count_lines /var/log/kestrel/metrics.json)
/etc/init.d/kestrel stop || fail "stop failed"
kill -0 "$pid" 2>/dev/null && fail "agent still running after stop"
[ -e /run/kestrel.pid ] && fail "pidfile left behind"
after=$(count_lines /var/log/kestrel/metrics.json)
[ "$after" -gt "$before" ] || fail "no final snapshot on stop ($before -> $after)"
tail -n 1 /var/log/kestrel/metrics.json | grep -q '"rule":"Falco internal: metrics snapshot"' ||
    fail "last line is not a snapshot"
echo "deploy: init script ok: $(count_lines /var/log/kestrel/metrics.json.1) lines before rotation, $after after"
echo "deploy: ok"
