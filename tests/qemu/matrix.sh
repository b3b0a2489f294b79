#!/usr/bin/env bash
# Kernel matrix for the real agent: boots Debian's arm64 6.1 and 5.10 and amd64
# 6.1 kernels (and 32-bit ARM 6.1) under QEMU (TCG) and runs guest/kestrel.sh
# against the static musl binaries (known fork/exec/open workload, counter
# checks; see that script).
#
# Usage: tests/qemu/matrix.sh [--aarch64 BIN] [--x86_64 BIN] [--armv7 BIN] [ARCH:KERNEL[+VARIANT] ...]
#   --aarch64/--x86_64/--armv7 BIN use these static binaries instead of building
#   ARCH:KERNEL                    default: arm64:6.1 arm64:5.10 amd64:6.1, plus
#                                  arm64:5.4 and amd64:5.4 if their kernels are cached
#                                  (else one line says why each is left out)
#   KERNEL 6.12                    Debian 12's 6.12 (arm64, amd64; from its security
#                                  suite): tp_btf must read the running task without
#                                  a helper (KT_TASKCAST, see guest/kestrel.sh)
#   KERNEL 6.1-nobtf               arm64 kernel without BTF (build-kernel.sh)
#   KERNEL 5.4, 5.4-nobtf          arm64/amd64 Linux 5.4 with / without BTF, built
#                                  from a git tree (build-kernel.sh ARCH 5.4, which
#                                  runs build-kernel-git.sh); named explicitly and
#                                  neither cached nor buildable: one line, exit 64.
#                                  The agent must attach raw_tp there (tp_btf: 5.5+)
#   KERNEL 5.4-noia32              amd64 Linux 5.4 without BTF and without
#                                  IA32_EMULATION (the same build; --btf with its
#                                  pahole BTF): the start line must say "no ia32
#                                  syscall entry" (and on every other amd64 target
#                                  must not)
#   arm:6.1                        Debian's armmp-lpae kernel (no BTF of its own):
#                                  --btf with the minimal BTF for the binary's probe
#                                  (from the -dbg package's, see fetch.sh --arm),
#                                  the JIT turned on, check must say JIT-compiled
#   VARIANT (see guest/kestrel.sh, KT_*):
#     btf-file  --btf with the full BTF made by pahole (vmlinux.btf)
#     btf-min   no flag; `bpftool gen min_core_btf` output for this binary's
#               probe installed as /etc/kestrel/btf/$(uname -r).btf
#     no-btf    no BTF anywhere: `kestrel run` must refuse (exit 1, one line)
#     raw_tp    --attach raw_tp on a kernel with BTF
#     compat    the workload also in a 32-bit busybox (armhf on arm64, i386 on amd64)
#     smp2      the default checks on two guest CPUs (cross-CPU orderings)
#     perf      --event-buffer perf (the 5.4-5.7 path), same checks
#     perf-smp2 the same on two guest CPUs: per-CPU buffers merged by time
#
# Without a binary for an arch it builds one:
#   scripts/install-build-deps.sh [--aarch64]     (idempotent; installs what is missing)
#   scripts/build-static.sh <triple>-unknown-linux-musl
# (CARGO_TARGET_DIR is honoured: set it to keep these builds apart from another
# cargo using the repository's target/.) Then tests/qemu/fetch.sh (host tools and
# pinned kernels; a no-op when cached), then tests/qemu/run.sh per target.
#
# Prints one line per kernel (result, boot-to-result seconds, agent start to
# probe attached and to first snapshot in ms, fork/exec deltas) and exits 1 if
# any target fails, 64 on usage or setup errors.
# Env: KESTREL_QEMU_* as for run.sh; KESTREL_QEMU_MATRIX_OUT (default
# /tmp/kestrel-qemu-matrix) holds one run.sh output directory per target.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
OUT=${KESTREL_QEMU_MATRIX_OUT:-/tmp/kestrel-qemu-matrix}
BIN_arm64=
BIN_amd64=
BIN_arm=
TARGETS=()

usage() { sed -n '2,50p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 64; }
while [ $# -gt 0 ]; do
    case $1 in
        --aarch64|--arm64) [ $# -ge 2 ] || usage; BIN_arm64=$2; shift 2 ;;
        --x86_64|--amd64) [ $# -ge 2 ] || usage; BIN_amd64=$2; shift 2 ;;
        --armv7|--arm) [ $# -ge 2 ] || usage; BIN_arm=$2; shift 2 ;;
        -h|--help) usage ;;
        -*) echo "matrix.sh: unknown option $1" >&2; usage ;;
        *:*+*) case ${1#*+} in btf-file|btf-min|no-btf|raw_tp|compat|smp2|perf|perf-smp2) ;; *) usage ;; esac
               TARGETS+=("$1"); shift ;;
        *:*) TARGETS+=("$1"); shift ;;
        *) echo "matrix.sh: bad target '$1' (ARCH:KERNEL)" >&2; usage ;;
    esac
done
if [ ${#TARGETS[@]} -eq 0 ]; then
    TARGETS=(arm64:6.1 arm64:5.10 amd64:6.1)
    # Linux 5.4 is built from a git tree a CI machine may lack: in the default
    # matrix only when already cached (build-kernel-git.sh --cached says why not).
    for a in arm64 amd64; do
        if why=$("$HERE/build-kernel-git.sh" --cached "$a" 5.4 2>&1); then
            TARGETS+=("$a:5.4")
        else
            echo "matrix.sh: default matrix without $a:5.4: ${why#"build-kernel-git.sh: $a 5.4: "} (tests/qemu/build-kernel.sh $a 5.4 builds it)" >&2
        fi
    done
fi

t_start=$(date +%s)
need_arm64=0 need_amd64=0 need_arm=0
for t in "${TARGETS[@]}"; do
    case ${t%%:*} in
        arm64|aarch64) need_arm64=1 ;;
        amd64|x86_64) need_amd64=1 ;;
        arm|armhf|armv7) need_arm=1 ;;
        *) echo "matrix.sh: unknown arch in '$t'" >&2; exit 64 ;;
    esac
done

# ------------------------------------------------------------------ binaries
build() { # build TRIPLE -> prints the binary path
    local triple=$1
    local dir=${CARGO_TARGET_DIR:-$REPO/target}
    echo "matrix.sh: scripts/build-static.sh $triple (target dir $dir)" >&2
    "$REPO/scripts/build-static.sh" "$triple" >&2
    echo "$dir/$triple/release/kestrel"
}
if { [ $need_arm64 = 1 ] && [ -z "$BIN_arm64" ]; } || { [ $need_amd64 = 1 ] && [ -z "$BIN_amd64" ]; } ||
   { [ $need_arm = 1 ] && [ -z "$BIN_arm" ]; }; then
    deps=()
    [ $need_arm64 = 1 ] && [ -z "$BIN_arm64" ] && deps+=(--aarch64)
    [ $need_arm = 1 ] && [ -z "$BIN_arm" ] && deps+=(--armv7)
    "$REPO/scripts/install-build-deps.sh" "${deps[@]}" >&2
fi
[ $need_arm64 = 1 ] && [ -z "$BIN_arm64" ] && BIN_arm64=$(build aarch64-unknown-linux-musl)
[ $need_amd64 = 1 ] && [ -z "$BIN_amd64" ] && BIN_amd64=$(build x86_64-unknown-linux-musl)
[ $need_arm = 1 ] && [ -z "$BIN_arm" ] && BIN_arm=$(build armv7-unknown-linux-musleabihf)
for a in arm64 amd64 arm; do
    var=BIN_$a
    [ -n "${!var}" ] || continue
    [ -f "${!var}" ] || { echo "matrix.sh: no binary ${!var}" >&2; exit 64; }
    echo "matrix.sh: $a binary ${!var} ($(stat -c %s "${!var}") bytes)" >&2
done
t_built=$(date +%s)

# -------------------------------------------------------------- kernels, run
fetch_args=()
[ $need_arm = 1 ] && fetch_args=(--arm)
"$HERE/fetch.sh" "${fetch_args[@]}" >&2 || { echo "matrix.sh: fetch.sh failed" >&2; exit 64; }
case " ${TARGETS[*]}" in
    *:6.1-nobtf*) "$HERE/build-kernel.sh" >&2 || { echo "matrix.sh: build-kernel.sh failed" >&2; exit 64; } ;;
esac
# Kernels built from git (5.4): cached, or built now; exit 3 = neither cached nor
# buildable, and build-kernel-git.sh has said why on one line.
for a in arm64 amd64; do
    case " ${TARGETS[*]}" in
        *" $a:5.4"* | *" ${a/arm64/aarch64}:5.4"* | *" ${a/amd64/x86_64}:5.4"*)
            brc=0
            "$HERE/build-kernel.sh" "$a" 5.4 >&2 || brc=$?
            [ "$brc" = 0 ] && continue
            [ "$brc" = 3 ] || echo "matrix.sh: build-kernel.sh $a 5.4 failed" >&2
            exit 64 ;;
    esac
done
CACHE=${KESTREL_QEMU_CACHE:-/var/cache/kestrel-qemu}

# min_btf ARCH BIN FULL_BTF -> path of the minimal BTF for BIN's probe, cached in
# $CACHE/btf-min/ by probe object and full BTF. The probe object comes from
# `kestrel export-probe` (a foreign-arch binary runs under qemu-user-static).
min_btf() {
    local run=() obj key out
    case $1 in arm64) run=(qemu-aarch64-static) ;; arm) run=(qemu-arm-static) ;; esac
    obj=$(mktemp /tmp/kestrel-probe.XXXXXX.o)
    "${run[@]}" "$2" export-probe "$obj" >&2 || { rm -f "$obj"; return 1; }
    key=$(cat "$obj" "$3" | sha256sum | cut -c1-32)
    out=$CACHE/btf-min/$key.btf
    if [ ! -s "$out" ]; then
        mkdir -p "$CACHE/btf-min"
        if ! bpftool gen min_core_btf "$3" "$out.tmp" "$obj" >&2; then
            rm -f "$obj" "$out.tmp"
            return 1
        fi
        mv "$out.tmp" "$out"
    fi
    rm -f "$obj"
    echo "matrix.sh: minimal BTF $out: $(stat -c %s "$out") bytes (full $(stat -c %s "$3"))" >&2
    echo "$out"
}

# variant ARCH KERNEL VARIANT ENVFILE -> EXTRA arguments for run.sh, one per line;
# writes the guest's /etc/kestrel-test.env settings to ENVFILE.
variant() {
    local arch=$1 kver=$2 kdir=$CACHE/kernels/$1-$2 rel min
    : > "$4"
    case $kver in *-nobtf) echo "KT_BTF=none" >> "$4" ;; esac
    # x86: the start line says whether the kernel has an ia32 syscall entry.
    case $arch:$kver in
        amd64:*-noia32)
            printf '%s\n' "KT_BTF=none" "KT_IA32=none" "KT_ARGS='--btf /extra/vmlinux.btf'" \
                "KT_CHECK='external file /extra/vmlinux.btf'" >> "$4"
            echo "$kdir/vmlinux.btf" ;;
        amd64:*) echo "KT_IA32=entry" >> "$4" ;;
    esac
    if [ "$arch" = arm ]; then
        # No BTF of its own (the minimal one by --btf unless the variant says
        # otherwise); JIT off at boot; the package's config for check.
        rel=$(cat "$kdir/release")
        printf '%s\n' "KT_BTF=none" "KT_JIT=1" "KT_ATTACH=raw_tp" >> "$4"
        echo "$kdir/config:/boot/config-$rel"
        case $3 in
            btf-file|btf-min|no-btf) ;;
            compat|raw_tp)
                echo "matrix.sh: no $3 variant on 32-bit ARM (armhf is native; raw_tp is its only path)" >&2
                return 1 ;;
            *)
                min=$(min_btf arm "$BIN_arm" "$kdir/vmlinux.btf") || return 1
                printf '%s\n' "KT_ARGS='--btf /extra/kestrel.btf'" \
                    "KT_CHECK='external file /extra/kestrel.btf|JIT-compiled|CONFIG_BPF_JIT_ALWAYS_ON unset'" >> "$4"
                echo "$min:/extra/kestrel.btf" ;;
        esac
    fi
    case $3 in
        '') ;;
        btf-file)
            printf '%s\n' "KT_ARGS='--btf /extra/vmlinux.btf'" "KT_ATTACH=raw_tp" \
                "KT_CHECK='external file /extra/vmlinux.btf'" >> "$4"
            echo "$kdir/vmlinux.btf" ;;
        btf-min)
            local var=BIN_$arch
            min=$(min_btf "$arch" "${!var}" "$kdir/vmlinux.btf") || return 1
            rel=$(cat "$kdir/release")
            printf '%s\n' "KT_ATTACH=raw_tp" "KT_CHECK='external file /etc/kestrel/btf/$rel.btf'" >> "$4"
            echo "$min:/etc/kestrel/btf/$rel.btf" ;;
        no-btf)
            printf '%s\n' "KT_NOBTF=1" "KT_CHECK='none: tried'" >> "$4" ;;
        raw_tp)
            printf '%s\n' "KT_ARGS='--attach raw_tp'" "KT_ATTACH=raw_tp" "KT_CHECK='kernel BTF'" >> "$4" ;;
        smp2) ;; # the default checks on two guest CPUs: cross-CPU orderings
        perf|perf-smp2)
            # Appended to what arm set above (the guest sources the file).
            # shellcheck disable=SC2016
            printf '%s\n' 'KT_ARGS="${KT_ARGS:+$KT_ARGS }--event-buffer perf"' "KT_BUFFER=perf" \
                'KT_CHECK="${KT_CHECK:+$KT_CHECK|}perf buffer: forced by --event-buffer perf"' >> "$4" ;;
        compat)
            local bb32=armhf
            [ "$arch" = amd64 ] && bb32=i386
            # The agent sees its own /proc reads (7 opens per snapshot with
            # resource utilization on); windows spanning different numbers of
            # snapshots would differ in fd counts by that, so it is off here.
            printf '%s\n' "KT_COMPAT=/opt/compat/busybox" "KT_ATTACH=tp_btf" \
                "KT_ARGS='--resource-utilization-enabled false'" >> "$4"
            echo "$CACHE/busybox/$bb32/busybox:/opt/compat/busybox" ;;
    esac
    # Linux 5.4 has no tp_btf (5.5+): the agent must choose raw tracepoints, with
    # kernel BTF as well (this line comes last, so it overrides compat's tp_btf),
    # and no BPF ring buffer (5.8+): auto must choose the perf buffers.
    case $kver in
        5.4 | 5.4-*) printf '%s\n' "KT_ATTACH=raw_tp" "KT_BUFFER=perf" >> "$4"
                     [ -z "$3" ] && [ "$kver" = 5.4 ] && echo "KT_CHECK='kernel BTF'" >> "$4" ;;
    esac
    # tp_btf with the stage on 6.2+ patches bpf_rdonly_cast in (capture/kfunc.rs):
    # the 6.12 kernels must say so, the older ones and the other paths must not.
    case $arch:$kver:$3 in
        arm:*) ;;
        *:6.12:raw_tp | *:6.12:perf*) echo "KT_TASKCAST=no" >> "$4" ;;
        *:6.12:*) echo "KT_TASKCAST=yes" >> "$4" ;;
        *) echo "KT_TASKCAST=no" >> "$4" ;;
    esac
    echo "$4:/etc/kestrel-test.env"
}

mkdir -p "$OUT"
fails=0
lines=()
# overloaded TIMING: the host's 1-minute load at the run's start or end was at
# least its CPU count (run.sh writes host_load_1m=START/END).
overloaded() {
    sed -n 's/.*host_load_1m=\([^ ]*\).*/\1/p' "$1" | awk -F/ -v n="$(nproc)" '$1 >= n || $2 >= n { ok = 1 } END { exit !ok }'
}
kv() { sed -n "s/^$1=\([^ ]*\).*/\1/p" "$2" | head -n1; }
for t in "${TARGETS[@]}"; do
    arch=${t%%:*} kver=${t#*:} var_name=
    case $kver in *+*) var_name=${kver#*+}; kver=${kver%%+*} ;; esac
    case $arch in aarch64) arch=arm64 ;; x86_64) arch=amd64 ;; armhf|armv7) arch=arm ;; esac
    var=BIN_$arch
    dir=$OUT/$arch-$kver${var_name:++$var_name}
    mkdir -p "$dir"
    rc=0 retried=
    extra=()
    if extra_txt=$(variant "$arch" "$kver" "$var_name" "$dir/test.env"); then
        mapfile -t extra <<<"$extra_txt"
        smp=${KESTREL_QEMU_SMP:-1}
        case $var_name in smp2|perf-smp2) smp=2 ;; esac
        KESTREL_QEMU_SMP=$smp KESTREL_QEMU_OUTDIR=$dir "$HERE/run.sh" "$arch" "$kver" "${!var}" "$HERE/guest/kestrel.sh" \
            "${extra[@]}" >/dev/null || rc=$?
        # A TCG guest can crawl until the timeout, on a loaded host and, more
        # rarely, on an idle one (tests/qemu/README.md): a timeout is run again,
        # at most twice, and the line says so; a FAIL is never repeated.
        tries=1
        while [ "$rc" = 2 ] && [ "$tries" -le 2 ] && grep -q "timeout after" "$dir/result"; do
            load=$(sed -n 's/.*host_load_1m=\([^ ]*\).*/\1/p' "$dir/timing")
            overloaded "$dir/timing" && load="$load, overloaded"
            retried="${retried:+$retried; }retried: run $tries timed out at host load $load"
            echo "matrix.sh: $t: $retried" >&2
            tries=$((tries + 1)) rc=0
            KESTREL_QEMU_SMP=$smp KESTREL_QEMU_OUTDIR=$dir "$HERE/run.sh" "$arch" "$kver" "${!var}" "$HERE/guest/kestrel.sh" \
                "${extra[@]}" >/dev/null || rc=$?
        done
    else
        echo "NORESULT setup of variant $var_name failed" > "$dir/result"; rc=64
    fi
    res=$(cat "$dir/result" 2>/dev/null || echo "NORESULT")
    verdict=PASS
    if [ "$rc" -ne 0 ]; then
        verdict="FAIL(run.sh=$rc: $res)"
    elif ! grep -qx 'result=PASS' "$dir/out.txt"; then
        verdict="FAIL(no result=PASS in out.txt)"
    elif [ "$var_name" != no-btf ] && [ ! -s "$dir/files/snapshot.json" ]; then
        verdict="FAIL(no files/snapshot.json)"
    fi
    [ "$verdict" = PASS ] || fails=$((fails + 1))
    wall=$(sed -n 's/.*wall_seconds=\([^ ]*\).*/\1/p' "$dir/timing" 2>/dev/null)
    up=$(sed -n 's/.*guest_uptime=\([^ ]*\).*/\1/p' "$dir/timing" 2>/dev/null)
    notes=${retried:+"($retried) "}$(sed -n 's/^\(attach=.*\|buffer=.*\|d_n_compat_evts_c=.*\|nobtf_exit=.*\|rss_at_rest_kb=.*\)/\1/p' "$dir/out.txt" | tr '\n' ' ')
    lines+=("$(printf '%-11s %-17s %-5s boot-to-result %6ss (guest %5ss)  attach %5sms  first-snapshot %5sms  threads +%s/%s  execs +%s/%s  %s' \
        "$t" "$(kv kernel "$dir/out.txt")" "${verdict%%(*}" "${wall:-?}" "${up:-?}" \
        "$(kv start_to_attach_ms "$dir/out.txt")" "$(kv start_to_first_snapshot_ms "$dir/out.txt")" \
        "$(kv d_n_added_threads "$dir/out.txt")" "$(sed -n 's/^d_n_added_threads=[^ ]* expected=\([0-9]*\).*/\1/p' "$dir/out.txt")" \
        "$(kv d_sched_p_exec_run_cnt "$dir/out.txt")" "$(sed -n 's/^d_sched_p_exec_run_cnt=[^ ]* expected=\([0-9]*\).*/\1/p' "$dir/out.txt")" \
        "$notes")")
    [ "$verdict" = PASS ] || lines+=("            $verdict  (console: $dir/console.log)")
done
t_end=$(date +%s)

echo
printf '%s\n' "${lines[@]}"
echo "matrix: $((${#TARGETS[@]} - fails))/${#TARGETS[@]} passed; build $((t_built - t_start))s, total $((t_end - t_start))s; outputs in $OUT"
[ "$fails" -eq 0 ]
