#!/usr/bin/env bash
# The end-to-end test (src/e2e.test.ts): prepares a Backstage app made like the template's, with the module
# installed by README.md's steps (e2e/backend.sh, into $APIPORTAL_BACKSTAGE_E2E_DIR, default
# ${APIPORTAL_CACHE:-~/.cache/apiportal}/backstage-e2e), then runs the test against its real backend.
# `npm run test:e2e` runs this; extra arguments go to Jest.
#   APIPORTAL_BRIDGE_URL / APIPORTAL_BRIDGE_TOKEN (/ APIPORTAL_BRIDGE_CA_FILE): run against that real bridge
#   instead of the fake ones (see README.md).
set -euo pipefail
module=$(cd "$(dirname "$0")/.." && pwd)
export APIPORTAL_BACKSTAGE_E2E_DIR=${APIPORTAL_BACKSTAGE_E2E_DIR:-${APIPORTAL_CACHE:-$HOME/.cache/apiportal}/backstage-e2e}
"$module/e2e/backend.sh" "$APIPORTAL_BACKSTAGE_E2E_DIR" >/dev/null
cd "$module"
# --forceExit: a failure half-way through starting a backend must never hang CI.
exec npx jest --forceExit --runTestsByPath src/e2e.test.ts "$@"
