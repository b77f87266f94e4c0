#!/usr/bin/env bash
# Installs (from package-lock.json, only when needed), type-checks, lints (ESLint) and tests (Jest) the Backstage
# module: unit tests plus an end-to-end test inside a real Backstage backend.
#   APIPORTAL_BRIDGE_URL / APIPORTAL_BRIDGE_TOKEN: run the end-to-end test against that real bridge
#   instead of the built-in fake one (see README.md).
set -euo pipefail
cd "$(dirname "$0")"

# better-sqlite3 (the catalog's in-memory database in the tests) is built from source: its prebuilt download
# is not reachable. node-gyp needs Node's headers; point it at the local ones so it never downloads them.
if [[ -z "${npm_config_nodedir:-}" ]]; then
  if [[ -f /usr/include/node/node_api.h ]]; then
    npm_config_nodedir=/usr
  else
    npm_config_nodedir="$(dirname "$(dirname "$(readlink -f "$(command -v node)")")")"
  fi
fi
export npm_config_nodedir

needs_install() {
  [[ ! -d node_modules ]] && return 0
  # npm ci writes node_modules/.package-lock.json; an older one means the lockfile changed since.
  [[ ! -f node_modules/.package-lock.json || package-lock.json -nt node_modules/.package-lock.json ]] && return 0
  # A native module built for another Node.js (or a broken earlier install).
  node -e 'new (require("better-sqlite3"))(":memory:").close()' >/dev/null 2>&1 || return 0
  return 1
}

if needs_install; then
  echo "==> npm ci (backstage-module)"
  start=$SECONDS
  npm ci --no-audit --no-fund
  echo "npm ci took $((SECONDS - start)) s"
fi

echo "==> typecheck (backstage-module)"
npm run --silent typecheck

echo "==> lint (backstage-module)"
npm run --silent lint

echo "==> tests (backstage-module)"
npm test
