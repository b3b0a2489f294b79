#!/bin/sh
# Where the probe's own time goes, instruction by instruction (issue 22): the C
# loop (mixloop.c, no exec) on CPU 1 under `perf record -e cpu-clock` of that
# CPU while the agent (CPU 0) runs with AGENT_FLAGS; the samples that land in
# the program PROG are counted per offset of its JIT image (jit-image.c) and
# laid beside objdump's listing of it, in ns per loop iteration. perf cannot
# annotate a JITed program here (Debian's perf has no libopcodes), so this is
# the only way to see inside the ~100 ns the programs add (profile-mix.sh).
#
# Read the rows with skid in mind: a sample lands on the instruction after the
# one that stalled, so a helper call's return (and its SRSO return thunk on
# AMD) shows on the first instruction after the call, and the program's entry
# (the tracepoint's indirect call) on its first instructions. Root; needs
# perf, cc, objdump, gawk, 2+ CPUs; x86_64 or aarch64 hosts.
#
#   benches/tools/probe-hot.sh [KESTREL_BIN [ITERS [PROG [AGENT_FLAGS [ROWS]]]]]
#       (target/release/kestrel, 1000000, sys_exit, none, 30)
set -eu
bin=${1:-target/release/kestrel}
iters=${2:-1000000}
prog=${3:-sys_exit}
flags=${4:-}
rows=${5:-30}
freq=20000
name=probe-hot
# shellcheck source=benches/tools/lib.sh
. "$(dirname "$0")/lib.sh"
need perf cc objdump taskset gawk
[ "$(nproc)" -ge 2 ] || { echo "probe-hot: needs 2 CPUs (loop and agent apart)" >&2; exit 2; }
case $(uname -m) in
x86_64) arch=i386:x86-64 ;;
aarch64) arch=aarch64 ;;
*) echo "probe-hot: objdump of a $(uname -m) JIT image is not set up" >&2; exit 2 ;;
esac
build_mixloop
cc -O2 -o "$work/jit-image" "$(dirname "$0")/jit-image.c"

# shellcheck disable=SC2086 # the agent's flags, split on purpose
start_agent "$work/agent" 0 $flags
perf record -q -e cpu-clock -F "$freq" -C 1 -o "$work/perf.data" -- \
    taskset -c 1 "$work/mixloop" "$iters" 0 >/dev/null
tag=$("$work/jit-image" "$prog" "$work/image")
base=$(awk -v t="bpf_prog_${tag}_" 'index($3, t) == 1 { print $1; exit }' /proc/kallsyms)
stop_agent
[ -n "$base" ] || { echo "probe-hot: bpf_prog_${tag}_ not in /proc/kallsyms (net.core.bpf_jit_kallsyms=1?)" >&2; exit 1; }

# The sampled addresses on the loop's CPU; counted by offset into the image
# below, not by perf's symbol names: BPF images reuse addresses, and perf
# names a sample after whichever program it saw there first.
perf script -i "$work/perf.data" -F ip 2>/dev/null > "$work/ips"
objdump -D -b binary -m "$arch" "$work/image" | awk '/^ *[0-9a-f]+:\t/' > "$work/listing"
# Kernel symbols by address, for the calls' targets (hex strings of one width
# compare as numbers do).
awk '{ print $1, $3 }' /proc/kallsyms | LC_ALL=C sort > "$work/kallsyms"

# objdump numbers the image from 0, so a call's target is relative to it; the
# symbol's address is where it runs. Sums and differences in 32-bit halves:
# awk's numbers are doubles, exact only below 2^53 (gawk: strtonum).
gawk -v base="$base" -v len="$(wc -c < "$work/image")" -v ns="$(awk -v f="$freq" -v n="$iters" 'BEGIN { print 1e9 / f / n }')" -v rows="$rows" -v prog="$prog" '
function hex(s) { return strtonum("0x" s) }
function add64(a, b,   lo, hi) {
    a = sprintf("%016s", a); b = sprintf("%016s", b)
    gsub(/ /, "0", a); gsub(/ /, "0", b)
    lo = hex(substr(a, 9)) + hex(substr(b, 9))
    hi = (hex(substr(a, 1, 8)) + hex(substr(b, 1, 8)) + int(lo / 4294967296)) % 4294967296
    return sprintf("%08x%08x", hi, lo % 4294967296)
}
function sub64(a, b) { return (hex(substr(a, 1, 8)) - hex(substr(b, 1, 8))) * 4294967296 + hex(substr(a, 9)) - hex(substr(b, 9)) }
FILENAME ~ /ips$/ {
    o = length($1) == 16 ? sub64($1, base) : -1
    if (o >= 0 && o < len) { n[sprintf("%x", o)]++; total++ }
    next
}
FILENAME ~ /kallsyms$/ { addr[++k] = $1; sym[k] = $2; next }
{
    off = $1; sub(/:$/, "", off)
    line[++m] = $0; at[m] = off
    if ($0 ~ /\tcall +0x[0-9a-f]+/) {
        t = $0; sub(/.*call +0x/, "", t); sub(/ .*/, "", t)
        # A call inside the image goes to a function of the program itself.
        target[m] = hex(t) < len ? "+" t : add64(base, t)
    }
}
# The kernel symbol holding address a (binary search over the sorted table).
function owner(a,   lo, hi, mid) {
    if (a ~ /^\+/) return "its own function at " a
    lo = 1; hi = k
    while (lo < hi) { mid = int((lo + hi + 1) / 2); if (addr[mid] <= a) lo = mid; else hi = mid - 1 }
    # A call lands on a function entry; elsewhere the address is only inside sym.
    return addr[lo] == a ? sym[lo] : "0x" a " (inside " sym[lo] ")"
}
END {
    printf "%s: %d samples, %.1f ns per iteration\n", prog, total, total * ns
    # Before the first kernel helper call is the path every call takes (entry,
    # counters, filter); from it on, mostly the work of selected calls.
    for (i = 1; i <= m && !(i in target && target[i] !~ /^\+/); i++) before += n[at[i]]
    printf "split at the first helper call (+%s): %.1f before, %.1f from it on\n\n", at[i], before * ns, (total - before) * ns
    print "| offset | ns per iteration | instruction |"
    print "|---|---|---|"
    for (i = 1; i <= m; i++) if (at[i] in n) order[i] = n[at[i]]
    for (r = 0; r < rows; r++) {
        best = 0
        for (i in order) if (order[i] > order[best] || best == 0) best = i
        if (best == 0 || order[best] == 0) break
        ins = line[best]; sub(/^ *[0-9a-f]+:\t([0-9a-f][0-9a-f] )+ *\t/, "", ins)
        note = (best > 1 && (best - 1) in target) ? " (after the call to " owner(target[best - 1]) ")" : ""
        printf "| %s | %.1f | `%s`%s |\n", at[best], order[best] * ns, ins, note
        delete order[best]
    }
    print "\n| call to | its return: ns per iteration on the next two instructions |"
    print "|---|---|"
    for (i = 1; i <= m; i++) if (i in target) {
        s = n[at[i + 1]] + n[at[i + 2]]
        if (s) by[owner(target[i])] += s
    }
    for (f in by) printf "| %s | %.1f |\n", f, by[f] * ns | "sort -t\"|\" -k3 -rn"
}' "$work/ips" "$work/kallsyms" "$work/listing"
