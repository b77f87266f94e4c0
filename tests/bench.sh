#!/usr/bin/env bash
# Runs apiportal's benchmarks: builds optimised binaries, then `cargo bench` prints each figure beside its
# baseline. Sizes: APIPORTAL_BENCH_PRODUCTS=1000,10000 APIPORTAL_BENCH_APPROVALS=1000 APIPORTAL_BENCH_KEYS=50000.
set -euo pipefail
cd "$(dirname "$0")/.."
export APIPORTAL_CACHE="${APIPORTAL_CACHE:-$HOME/.cache/apiportal}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$APIPORTAL_CACHE/target}"
tests/cluster/build-tools.sh cluster
cargo build --release --locked --bins -p kubectl-apiportal -p apiportal-bridge
cargo bench --locked -p apiportal-tests --bench bench
