#!/usr/bin/env bash
# Installs (from package-lock.json, only when needed), type-checks, lints (ESLint) and tests (Jest) the Backstage
# module, then runs the end-to-end test: README.md's install steps carried out in an app made like Backstage's
# template, and its real backend (e2e/test.sh; the app is installed once into
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
step "end-to-end test (the README's install steps in an app made like Backstage's template, its real backend)" ./e2e/test.sh
