#!/bin/sh
# Every static check, in one place (scripts/test.sh and `just lint` run it):
# Runs shellcheck on every shell script, then rustfmt and clippy (warnings as errors).
set -eu
cd "$(dirname "$0")/.."
echo "== shellcheck"
shellcheck -s sh scripts/*.sh .ci/run configs/init/busybox/kestrel configs/init/openwrt/kestrel \
    configs/init/sysvinit/kestrel configs/init/openrc/kestrel configs/init/test-*.sh \
    tests/qemu/guest/*.sh
shellcheck tests/qemu/*.sh
echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy -D warnings"
cargo clippy --all-targets --features bench -q -- -D warnings
