#!/bin/sh
# Every static check, in one place (scripts/test.sh and `just lint` run it):
# Runs shellcheck on every shell script, clang-format on the probe (the pinned
# clang's: another version formats differently), then rustfmt and clippy
# (warnings as errors; a SAFETY comment on every unsafe block, see Cargo.toml).
set -eu
cd "$(dirname "$0")/.."
echo "== shellcheck"
shellcheck -s sh scripts/*.sh .ci/run configs/init/busybox/kestrel configs/init/openwrt/kestrel \
    configs/init/sysvinit/kestrel configs/init/openrc/kestrel tests/qemu/guest/*.sh
shellcheck -s sh -x configs/init/test-*.sh configs/init/checks/*.sh
shellcheck tests/qemu/*.sh
shellcheck -x benches/tools/*.sh
echo "== clang-format --dry-run (bpf/, .clang-format)"
command -v clang-format-14 >/dev/null || { echo "clang-format-14 missing: apt-get install clang-format-14" >&2; exit 1; }
clang-format-14 --dry-run --Werror bpf/*.h bpf/*.c
echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy -D warnings"
cargo clippy --workspace --all-targets --features bench -q -- -D warnings
