# systemd part of test-init-systems.sh (sourced): the unit checked with
# systemd-analyze verify and security --offline in a scratch root.
# shellcheck shell=sh disable=SC2034,SC2154 # variables shared with the driver
section=systemd
echo "== systemd: systemd-analyze verify ($(systemd-analyze --version | head -n 1))"
logs=
unit=$here/systemd/kestrel.service
root=$tmp/sysroot
mkdir -p "$root/usr/bin" "$root/usr/sbin" "$root/usr/lib/systemd" "$root/etc/systemd/system"
for d in bin sbin lib; do ln -s "usr/$d" "$root/$d"; done
# The targets the unit names (network.target, multi-user.target, ...).
cp -a /usr/lib/systemd/system "$root/usr/lib/systemd/"
cp "$unit" "$root/etc/systemd/system/kestrel.service"
start_path=$(sed -n 's/^ExecStart=[-@:+!]*\([^ ]*\).*/\1/p' "$unit")
check "ExecStart is /usr/sbin/kestrel (the path every README step installs to)" test "$start_path" = /usr/sbin/kestrel
install -D -m 0755 "$bin" "$root$start_path"
sed -n 's/^Exec[A-Za-z]*=[-@:+!]*\([^ ]*\).*/\1/p' "$unit" | sort -u | while read -r p; do
	[ "$p" = "$start_path" ] && continue
	install -D -m 0755 "$(readlink -f "$p")" "$root$p"
done
verify() { # root: output in $out, status in $rc
	out=$(systemd-analyze verify --man=no --root="$1" kestrel.service 2>&1)
	rc=$?
	[ -n "$verbose" ] && echo "  \$ systemd-analyze verify -> $rc: $out"
	return 0
}
verify "$root"
if [ "$rc" = 0 ] && ! printf '%s\n' "$out" | grep -qF kestrel.service; then
	ok "systemd-analyze verify: no error or warning about the unit"
else
	fail "systemd-analyze verify (exit $rc): $out"
fi
[ -n "$out" ] && printf '%s\n' "$out" | grep -vF kestrel.service | sed 's/^/  note (not about the unit): /'
# The check can fail: a missing binary is an error, a typo a warning.
mv "$root$start_path" "$tmp/kestrel.moved"
verify "$root"
if [ "$rc" != 0 ] && printf '%s\n' "$out" | grep -q "$start_path"; then
	ok "verify fails without the binary"
else
	fail "verify did not notice the missing binary (exit $rc): $out"
fi
mv "$tmp/kestrel.moved" "$root$start_path"
sed 's/^ProtectClock=/ProtectClockTypo=/' "$unit" >"$root/etc/systemd/system/kestrel.service"
verify "$root"
case $out in *kestrel.service*ProtectClockTypo*) ok "verify warns about an unknown key" ;; *) fail "verify missed a bad key: $out" ;; esac
cp "$unit" "$root/etc/systemd/system/kestrel.service"
out=$(systemd-analyze security --offline=true --root="$root" --threshold=39 --no-pager kestrel.service 2>&1)
rc=$?
expect_rc 0 "systemd-analyze security: exposure 3.9 or better ($(printf '%s\n' "$out" | sed -n 's/.*Overall exposure level for kestrel.service: //p'))"
