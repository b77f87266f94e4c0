#!/usr/bin/env bash
# Installs (from package-lock.json, only when needed), type-checks, lints (ESLint) and tests (Jest) the Backstage
# module, then packs it and runs the end-to-end test in a real Backstage backend that has the packed tarball
# installed (e2e/test.sh; the backend package is installed once into
# ${APIPORTAL_CACHE:-~/.cache/apiportal}/backstage-e2e and reused).
#   APIPORTAL_BRIDGE_URL / APIPORTAL_BRIDGE_TOKEN: run the end-to-end test against that real bridge instead of the
#   fake ones (see README.md).
set -euo pipefail
cd "$(dirname "$0")"
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

step() {
  local name=$1 start=$SECONDS
  shift
  echo "==> $name (backstage-module)"
  "$@"
  echo "$name took $((SECONDS - start)) s"
}

ci_if_needed "$PWD" backstage-module --native
step typecheck npm run --silent typecheck
step lint npm run --silent lint
step "unit tests" npm test --silent
step "end-to-end test (packed tarball in a real Backstage backend)" ./e2e/test.sh
