#!/usr/bin/env bash
# Runs apiportal's benchmarks: builds optimised binaries, then `cargo bench` prints each figure beside its
# baseline, then the Backstage catalog's (backstage-module/bench.sh: a delta refresh beside a full one, in a real
# Backstage backend). Sizes: APIPORTAL_BENCH_PRODUCTS=1000,10000 APIPORTAL_BENCH_APPROVALS=1000
# APIPORTAL_BENCH_KEYS=50000 APIPORTAL_BENCH_CATALOG_PRODUCTS=10000; APIPORTAL_BENCH_ONLY=view,cli,approval,memory,catalog
# runs some.
set -euo pipefail
cd "$(dirname "$0")/.."
export APIPORTAL_CACHE="${APIPORTAL_CACHE:-$HOME/.cache/apiportal}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$APIPORTAL_CACHE/target}"
wanted() { [[ ,${APIPORTAL_BENCH_ONLY:-view,cli,approval,memory,catalog}, == *,$1,* ]]; }
if wanted view || wanted cli || wanted approval || wanted memory; then
  tests/cluster/build-tools.sh cluster
  cargo build --release --locked --bins -p kubectl-apiportal -p apiportal-bridge
  cargo bench --locked -p apiportal-tests --bench bench
fi
if wanted catalog; then
  backstage-module/bench.sh
fi
