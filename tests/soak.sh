#!/usr/bin/env bash
# Runs the adversary (tests/tests/adversary.rs) for as long as asked, on its own cluster, bridge and Authorino,
# and prints steps per minute and the invariant checks it made. A failure prints the seed, the step and the log,
# and replays shorter logs to find a smaller one.
#
#   tests/soak.sh [SEED] [STEPS|DURATION]     e.g. tests/soak.sh 42 30m, tests/soak.sh "" 500
set -euo pipefail
cd "$(dirname "$0")/.."
export APIPORTAL_CACHE="${APIPORTAL_CACHE:-$HOME/.cache/apiportal}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$APIPORTAL_CACHE/target}"
seed=${1:-}
amount=${2:-30m}
tests/cluster/build-tools.sh cluster >/dev/null
cargo build --workspace --bins --locked
binary=$(cargo test -p apiportal-tests --test adversary --no-run --locked 2>&1 | grep -oE "$CARGO_TARGET_DIR/debug/deps/adversary-[a-f0-9]+" | tail -1)
export APIPORTAL_ADVERSARY_SHRINK=1
[[ -n $seed ]] && export APIPORTAL_ADVERSARY_SEED=$seed
if [[ $amount =~ ^[0-9]+$ ]]; then
  export APIPORTAL_ADVERSARY_STEPS=$amount
else
  export APIPORTAL_ADVERSARY_DURATION=$amount APIPORTAL_ADVERSARY_STEPS=${APIPORTAL_ADVERSARY_STEPS:-200}
fi
exec "$binary" --nocapture --test-threads 1
