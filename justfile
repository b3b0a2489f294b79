# Kestrel's one entry point. `just` lists the recipes.
# Install just: `cargo install --locked just` (or Debian's `just` where packaged);
# scripts/install-build-deps.sh installs it.

# list the recipes
default:
    @just --list

# build deps (clang, musl, autotools; apt + rustup target), once per machine
deps:
    scripts/install-build-deps.sh --aarch64 --armv7

# static x86_64 musl release binary
build:
    scripts/build-static.sh x86_64-unknown-linux-musl

# static aarch64 musl release binary (cross, no Docker)
build-aarch64:
    scripts/build-static.sh aarch64-unknown-linux-musl

# static armv7 (32-bit ARM, hard float) musl release binary (cross, no Docker; std from rust-src)
build-armv7:
    scripts/build-static.sh armv7-unknown-linux-musleabihf

# the README's full suite: lint, unit, live probe (root), agent, QEMU matrix
test:
    scripts/test.sh

# unit, decode, config and fuzz tests: no root, no BPF, no QEMU; root-only tests show as ignored
test-fast:
    cargo test --locked --workspace --lib --bins --tests

# test-fast as the ordinary user kestrel-dev (created once; run as root), on a clone of HEAD
test-unprivileged:
    scripts/test-unprivileged.sh

# the QEMU kernel matrix (arm64 6.12 / 6.1 / 5.10 / 6.1 without BTF, amd64 6.12 / 6.1, 32-bit userlands, 32-bit ARM 6.1 / 5.10)
qemu: build build-aarch64 build-armv7
    tests/qemu/matrix.sh --x86_64 target/x86_64-unknown-linux-musl/release/kestrel --aarch64 target/aarch64-unknown-linux-musl/release/kestrel --armv7 target/armv7-unknown-linux-musleabihf/release/kestrel arm64:6.1 arm64:5.10 amd64:6.1 arm64:6.1+smp2 arm64:6.1+raw_tp arm64:6.1-nobtf+btf-file arm64:6.1-nobtf+btf-min arm64:6.1-nobtf+no-btf arm64:6.1+compat amd64:6.1+compat arm:6.1 arm:6.1+smp2 arm:5.10 arm64:6.12 amd64:6.12 amd64:6.12+compat

# the built-in rules against real actions in QEMU guests (kernel module load: arm64 6.1 and 5.10, amd64 6.1)
qemu-rules: build build-aarch64
    tests/qemu/rules.sh --x86_64 target/x86_64-unknown-linux-musl/release/kestrel --aarch64 target/aarch64-unknown-linux-musl/release/kestrel

# the benchmark rig (root): every figure in BENCHMARKS.md
bench: build
    cargo bench --features bench --bench rig

# where the mix's extra time goes under the agent, by function group (root, perf; rounds of bare and defaults)
bench-profile rounds="3":
    cargo build --release
    benches/tools/profile-mix.sh target/release/kestrel {{rounds}}

# the probe's BPF run time per mix iteration, per program (root, bpftool); alternate builds by hand
bench-bpf-stats bin="target/release/kestrel":
    cargo build --release
    benches/tools/bpf-stats-mix.sh {{bin}}

# the probe's program instruction by instruction over the mix, ns per iteration (root, perf, objdump); flags: the agent's
bench-probe-hot flags="":
    cargo build --release
    benches/tools/probe-hot.sh target/release/kestrel 1000000 sys_exit "{{flags}}"

# what the agent's reading of the ring costs a workload on another CPU: the mix with it consuming, and stopped (root)
bench-consumer-off rounds="7":
    cargo build --release
    benches/tools/consumer-off.sh target/release/kestrel {{rounds}}

# two builds' mix overhead and agent CPU in alternating rounds, loop and agents on fixed CPUs (root)
bench-ab a b rounds="20":
    benches/tools/ab-mix.sh {{a}} {{b}} {{rounds}}

# two builds' probe programs over the mix in alternating rounds, ns per iteration, split at the first helper call (root, perf, objdump)
bench-probe-ab a b rounds="8":
    benches/tools/probe-ab.sh {{a}} {{b}} {{rounds}}

# issue 22's growth rows and goals in one session, a log a row (root; BENCHMARKS.md)
bench-sweep out="/tmp/kestrel-sweep":
    benches/tools/sweep.sh {{out}}

# the agent's cost on 1, 2 and 4 vCPUs in QEMU (ring contention, CPU per snapshot; ratios only)
bench-cpus: build-aarch64
    tests/qemu/cpus.sh --aarch64 target/aarch64-unknown-linux-musl/release/kestrel

# will this host run the probe? (one screen)
check:
    cargo run --release --quiet -- check

# format the code
fmt:
    cargo fmt --all

# shellcheck, clang-format check of bpf/, rustfmt check, clippy -D warnings (scripts/lint.sh, as the suite runs them)
lint:
    scripts/lint.sh
