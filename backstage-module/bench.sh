#!/usr/bin/env bash
# The catalog benchmark (src/catalogRefresh.bench.ts): what one changed product among many costs a real Backstage
# backend (the app e2e/backend.sh prepares), a refresh that applies what changed beside one that applies everything.
# Prints a Markdown table of medians, full beside delta; asserts nothing about time. tests/bench.sh runs it.
#   APIPORTAL_BENCH_CATALOG_PRODUCTS (10000), APIPORTAL_BENCH_CATALOG_ROUNDS (5)
set -euo pipefail
cd "$(dirname "$0")"
# shellcheck source=scripts/lib.sh
source scripts/lib.sh
ci_if_needed "$PWD" backstage-module --native
export APIPORTAL_BACKSTAGE_E2E_DIR=${APIPORTAL_BACKSTAGE_E2E_DIR:-${APIPORTAL_CACHE:-$HOME/.cache/apiportal}/backstage-e2e}
./e2e/backend.sh "$APIPORTAL_BACKSTAGE_E2E_DIR" >/dev/null
node scripts/copy-schema.js
# Jest runs the TypeScript (as for the tests); its own report goes to stderr, the table to stdout.
exec npx jest --silent --forceExit --testMatch '**/catalogRefresh.bench.ts' --runTestsByPath src/catalogRefresh.bench.ts
