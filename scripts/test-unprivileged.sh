#!/bin/sh
# `just test-fast` as an ordinary user, the way a contributor without root
# runs it: a clone of HEAD in the user's home, the machine's Rust toolchain
# read-only, the user's own cargo registry and target directory. Passes when
# the run passes, the root-only tests show as ignored (never as passed), and
# nothing failed. Run as root (it creates the user `kestrel-dev` once and
# bind-mounts the toolchain for the run); scripts/test.sh runs it under CI.
set -eu
cd "$(dirname "$0")/.."
repo=$(pwd)
user=kestrel-dev

[ "$(id -u)" = 0 ] || { echo "test-unprivileged: run as root (it sets up the user)" >&2; exit 2; }
id "$user" >/dev/null 2>&1 || useradd --create-home --shell /bin/sh "$user"
home=$(getent passwd "$user" | cut -d: -f6)

# The toolchain: rustup's home, shared read-only at the same place in the
# user's home (root's home is not traversable by others).
rustup_home=${RUSTUP_HOME:-$HOME/.rustup}
[ -d "$rustup_home/toolchains" ] || { echo "test-unprivileged: no rustup toolchains in $rustup_home" >&2; exit 2; }
mkdir -p "$home/.rustup" "$home/bin"
mountpoint -q "$home/.rustup" || mount --bind "$rustup_home" "$home/.rustup"
mount -o remount,bind,ro "$home/.rustup"
trap 'umount "$home/.rustup" 2>/dev/null || true' EXIT INT TERM
for tool in rustup cargo rustc just; do
    src=$(command -v "$tool") || { echo "test-unprivileged: $tool is not installed" >&2; exit 2; }
    # rustup's proxies are links to rustup: copy the binary under each name.
    cp -L "$src" "$home/bin/$tool"
done

rm -rf "$home/kestrel"
git clone -q "$repo" "$home/kestrel"
git -C "$home/kestrel" checkout -q "$(git rev-parse HEAD)"
chown -R "$user:" "$home/bin" "$home/kestrel"

log=$(mktemp)
start=$(date +%s)
# A clean environment: nothing of root's (CARGO_HOME, CARGO_TARGET_DIR) leaks in.
if ! runuser -u "$user" -- env -i HOME="$home" USER="$user" PATH="$home/bin:/usr/local/bin:/usr/bin:/bin" \
    RUSTUP_HOME="$home/.rustup" CARGO_HOME="$home/.cargo" CARGO_TARGET_DIR="$home/target" \
    sh -c "cd '$home/kestrel' && just test-fast" >"$log" 2>&1; then
    tail -50 "$log"
    echo "FAIL: just test-fast as $user" >&2
    exit 1
fi
secs=$(( $(date +%s) - start ))
# Sum libtest's result lines. A root-only test that was not ignored would
# fail (probe_lock asserts root), so "0 failed" with ignored tests means
# each of them showed as ignored, none as passed.
read -r passed failed ignored <<EOF
$(awk '/^test result:/ { p += $4; f += $6; i += $8 } END { print p+0, f+0, i+0 }' "$log")
EOF
echo "just test-fast as $user: $passed passed, $failed failed, $ignored ignored (root-only) in ${secs}s"
if [ "$failed" != 0 ] || [ "$passed" = 0 ] || [ "$ignored" = 0 ]; then
    echo "FAIL: expected passes, no failure and the root-only tests ignored" >&2
    exit 1
fi
rm -f "$log"
