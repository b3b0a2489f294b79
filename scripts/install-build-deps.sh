#!/bin/sh
# Install everything needed to build Kestrel on Debian 12 (bookworm) without Docker:
#   - host (x86_64-unknown-linux-gnu) build
#   - x86_64-unknown-linux-musl, fully static            (always)
#   - aarch64-unknown-linux-musl, fully static, cross     (with --aarch64)
#   - armv7-unknown-linux-musleabihf, fully static, cross (with --armv7; std from rust-src)
#
# Usage (as root, or as a user with sudo; rustup must already be installed):
#   scripts/install-build-deps.sh [--aarch64] [--armv7] [--no-rustup]
#
# Idempotent: apt only runs (with `apt-get update` first) when a package is missing;
# `dpkg --add-architecture arm64` (armhf) only when it is not yet a foreign architecture.
# --aarch64 and --armv7 are opt-in because each adds an architecture to dpkg (bigger apt
# lists) and ~150 MB of cross toolchain.
#
# Afterwards:
#   cargo build --release                                      # glibc host build
#   cargo build --release --target x86_64-unknown-linux-musl
#   cargo build --release --target aarch64-unknown-linux-musl
#   scripts/build-static.sh armv7-unknown-linux-musleabihf    # rustup has no std for it
# (.cargo/config.toml wires the musl C compiler wrappers in cross/.)
set -eu

want_arm64=0
want_armhf=0
want_rustup=1
for arg in "$@"; do
    case $arg in
    --aarch64 | --arm64) want_arm64=1 ;;
    --armv7 | --armhf) want_armhf=1 ;;
    --no-rustup) want_rustup=0 ;;
    -h | --help)
        sed -n '2,22p' "$0"
        exit 0
        ;;
    *)
        echo "install-build-deps: unknown argument '$arg'" >&2
        exit 2
        ;;
    esac
done

repo=$(CDPATH='' cd -- "$(dirname -- "$0")/.." && pwd)

if [ "$(id -u)" -eq 0 ]; then
    SUDO=
elif command -v sudo >/dev/null 2>&1; then
    SUDO=sudo
else
    echo "install-build-deps: need root (or sudo) for apt-get" >&2
    exit 1
fi

# Host + x86_64 musl:
#   clang/llvm          compile the .bpf.c programs (libbpf-cargo runs `clang -target bpf`)
#   gcc, libc6-dev, make, pkg-config
#   autoconf automake autopoint flex bison gawk
#                       libbpf-sys builds vendored elfutils (autoreconf + maintainer mode)
#   musl-tools          x86_64-linux-musl-gcc (depends on musl-dev, the amd64 musl headers/libs)
#   linux-libc-dev      kernel UAPI headers (linux/, asm/, asm-generic/) for libbpf
#   libelf-dev zlib1g-dev  the host copy of libbpf inside libbpf-cargo (skeleton generation)
#   file                scripts/test.sh checks that the musl binary is static
#   linux-libc-dev-armhf-cross  ARM EABI syscall numbers; a unit test checks the compat table
#                       against them (x86_64/i386/asm-generic come with linux-libc-dev)
# Never gcc-multilib: Debian makes it conflict with (and remove) the aarch64 cross gcc.
pkgs="clang llvm gcc libc6-dev make pkg-config autoconf automake autopoint flex bison gawk
musl-tools linux-libc-dev libelf-dev zlib1g-dev file linux-libc-dev-armhf-cross"
if [ "$want_arm64" -eq 1 ]; then
    #   gcc-aarch64-linux-gnu        cross gcc; used as the link driver and by the musl wrapper
    #   linux-libc-dev-arm64-cross   arm64 kernel UAPI headers (/usr/aarch64-linux-gnu/include)
    #   musl-dev:arm64               aarch64-linux-musl-gcc wrapper + arm64 musl headers/libs
    pkgs="$pkgs gcc-aarch64-linux-gnu binutils-aarch64-linux-gnu linux-libc-dev-arm64-cross musl-dev:arm64"
fi
if [ "$want_armhf" -eq 1 ]; then
    #   gcc-arm-linux-gnueabihf      cross gcc (armv7-a, VFPv3-D16, hard float: the Rust
    #                                target's defaults); musl-dev:armhf's wrapper drives it
    #   musl-dev:armhf               arm-linux-musleabihf-gcc wrapper, crt1.o and libc.a: the
    #                                link takes them (no self-contained ones without rust-std)
    #   (linux-libc-dev-armhf-cross, the kernel UAPI headers, is in the base set; libbpf-sys'
    #   bindgen loads libclang, which clang brings)
    pkgs="$pkgs gcc-arm-linux-gnueabihf binutils-arm-linux-gnueabihf musl-dev:armhf"
fi

is_installed() {
    # one line per installed architecture of a Multi-Arch: same package
    dpkg-query -W -f='${db:Status-Status}\n' "$1" 2>/dev/null | grep -qx installed
}

need_update=0
add_arch() { # add_arch WANTED ARCH
    if [ "$1" -eq 1 ] && ! dpkg --print-foreign-architectures | grep -qx "$2"; then
        echo "+ dpkg --add-architecture $2"
        $SUDO dpkg --add-architecture "$2"
        need_update=1
    fi
}
add_arch "$want_arm64" arm64
add_arch "$want_armhf" armhf

missing=
for p in $pkgs; do
    is_installed "$p" || missing="$missing $p"
done

# A failed index (a mirror mid-sync) is one line, not the end: see apt-update.sh.
apt_update() {
    $SUDO "$(dirname "$0")/apt-update.sh"
}

if [ -n "$missing" ]; then
    echo "+ apt-get install:$missing"
    apt_update
    # shellcheck disable=SC2086
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $missing
elif [ "$need_update" -eq 1 ]; then
    apt_update
else
    echo "apt packages: all present"
fi

if [ "$want_rustup" -eq 1 ]; then
    if command -v rustup >/dev/null 2>&1; then
        targets=x86_64-unknown-linux-musl
        [ "$want_arm64" -eq 1 ] && targets="$targets aarch64-unknown-linux-musl"
        # shellcheck disable=SC2086
        rustup target add $targets
        # scripts/build-static.sh builds std from source for the shipped binary (size);
        # armv7 musl has no rustup std here at all: rust-src is its only std.
        rustup component add rust-src
    else
        echo "install-build-deps: rustup not found in PATH; add the musl targets yourself" >&2
    fi
fi

# just, the justfile's runner: Debian 12 does not package it; build it from its crate.
if ! command -v just >/dev/null 2>&1; then
    if command -v cargo >/dev/null 2>&1; then
        echo "+ cargo install --locked just"
        cargo install --locked --quiet just
    else
        echo "install-build-deps: cargo not found; install just yourself (cargo install --locked just)" >&2
    fi
fi

# Generate cross/.kheaders/<arch> (symlinks to the kernel UAPI headers; git-ignored) through
# the compiler wrappers, and check that a musl compile sees both musl and kernel headers.
check_cc() {
    printf '#include <stdio.h>\n#include <argp.h>\n#include <asm/unistd.h>\n#include <linux/bpf.h>\nint main(void){return __NR_bpf + BPF_PROG_LOAD;}\n' |
        "$repo/cross/$1" -x c -c -o /dev/null - ||
        {
            echo "install-build-deps: $1 cannot compile a test program" >&2
            exit 1
        }
    echo "ok: cross/$1"
}
check_cc x86_64-linux-musl-cc
[ "$want_arm64" -eq 1 ] && check_cc aarch64-linux-musl-cc
[ "$want_armhf" -eq 1 ] && check_cc armv7-linux-musl-cc

echo "done."
