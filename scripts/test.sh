#!/bin/sh
# The whole test suite, on a fresh Debian 12 machine with rustup (run as root:
# the live tests load the probe). Installs what it lacks first.
#   scripts/test.sh            unit, live-probe and agent tests, lint, static build
# Under CI=true the BPF tests must run; outside CI they skip loudly when not root.
set -eu
cd "$(dirname "$0")/.."

scripts/install-build-deps.sh
# Real peers and tools the tests use.
# mosquitto, mosquitto-clients, rsyslog-gnutls, openssl: the MQTT and syslog-over-TLS peers.
for pkg in rsyslog shellcheck busybox-static bpftool prometheus systemd openrc \
    mosquitto mosquitto-clients rsyslog-gnutls openssl; do
    if ! dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null | grep -qx installed; then
        apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$pkg"
    fi
done
# tracefs is not needed by the probe (tp_btf attaches through BTF), but
# `kestrel check` and people debugging with it expect it mounted.
if [ -d /sys/kernel/tracing ] && ! grep -qs ' /sys/kernel/tracing ' /proc/mounts; then
    mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null || true
fi

scripts/lint.sh
echo "== BusyBox init script, on this host"
sh configs/init/test-busybox-init.sh
echo "== init systems: systemd-analyze, openrc-run, start-stop-daemon"
sh configs/init/test-init-systems.sh
echo "== just"
just --list >/dev/null
echo "== cargo test (unit, live probe, agent; the root-only tests are #[ignore]d and included here)"
cargo test --lib --bins --tests -- --test-threads=2 --include-ignored
if [ "${CI:-}" = true ]; then
    echo "== just test-fast as an ordinary user (root-only tests show as ignored)"
    scripts/test-unprivileged.sh
else
    echo "== just test-fast as an ordinary user: CI only (it creates the user kestrel-dev); just test-unprivileged"
fi
echo "== static x86_64 musl release build"
cargo build --release -q --target x86_64-unknown-linux-musl
bin=target/x86_64-unknown-linux-musl/release/kestrel
file "$bin"
# x86_64 musl links static-pie: still no interpreter, no shared libraries.
file "$bin" | grep -Eq 'statically linked|static-pie linked' || { echo "FAIL: $bin is not static" >&2; exit 1; }
ls -l "$bin"
echo "== Prometheus exporter under hostile clients, shipped binary with the built-in rules (5 MB RSS goal)"
KESTREL_TEST_BIN="$bin" cargo test -q --test prometheus_hostile -- --include-ignored
echo "== MQTT/TLS and syslog over TLS against mosquitto and rsyslog, shipped binary (5 MB RSS goal)"
KESTREL_TEST_BIN="$bin" cargo test -q --test mqtt_live --test mqtt_hostile -- --include-ignored --test-threads=1
echo "== QEMU kernel matrix: Debian arm64 6.1 / 5.10 and amd64 6.1 (one with 2 CPUs), raw_tp,"
echo "   an arm64 6.1 built without BTF (full, minimal and no BTF file), 32-bit userlands"
tests/qemu/matrix.sh --x86_64 "$bin" arm64:6.1 arm64:5.10 amd64:6.1 arm64:6.1+smp2 arm64:6.1+raw_tp \
    arm64:6.1-nobtf+btf-file arm64:6.1-nobtf+btf-min arm64:6.1-nobtf+no-btf \
    arm64:6.1+compat amd64:6.1+compat
echo "== QEMU rules: the built-in ruleset against a real kernel module load (arm64 6.1 / 5.10, amd64 6.1)"
tests/qemu/rules.sh --x86_64 "$bin" --aarch64 "${CARGO_TARGET_DIR:-target}/aarch64-unknown-linux-musl/release/kestrel"
echo "== QEMU pins: a dropped pinned version is replaced by the newest of its series"
tests/qemu/test-pin-fallback.sh
echo "== QEMU deployment: kestrel check and the BusyBox init script in an arm64 guest"
tests/qemu/deploy.sh "${CARGO_TARGET_DIR:-target}/aarch64-unknown-linux-musl/release/kestrel"
echo "== all tests passed"
