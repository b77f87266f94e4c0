#!/usr/bin/env bash
# Prepares a REAL Backstage backend with this module installed from its packed tarball, the way a user installs
# it: a fresh backend package outside the module (Backstage's app template versions: @backstage/backend-defaults
# 0.19.0, @backstage/plugin-catalog-backend 4.0.5, better-sqlite3 12), then `npm install` of the tarball.
#
#   backstage-module/e2e/backend.sh DIR
#
# Contract:
# - DIR is created if needed. The backend package (e2e/backend/package.json and its lockfile) is installed into
#   DIR with `npm ci` only when DIR has none yet or the lockfile changed (npm's cache in ~/.npm makes a re-install
#   fast; the first one builds better-sqlite3 from source, ~1.5 to 2 min on 2 cores). Keep DIR between runs, e.g.
#   ${APIPORTAL_CACHE:-~/.cache/apiportal}/backstage-e2e, which is what test.sh uses.
# - The module is packed from this checkout with package.sh (or taken from $APIPORTAL_BACKSTAGE_TARBALL) and
#   installed into DIR whenever its sha256 differs from the one installed.
# - Progress goes to stderr. On success the last line on stdout is the command that starts the backend:
#       node DIR/start.js CONFIG.yaml [MORE.yaml ...]
#   start.js (e2e/backend/start.js, copied into DIR) starts createBackend() with the catalog and this module with
#   the given app-config(s) on top of an in-memory SQLite database; Backstage's REST API then accepts
#   `Authorization: Bearer $APIPORTAL_BACKSTAGE_TOKEN` (default apiportal-e2e-token) through a static
#   external-access token; it listens on 127.0.0.1 on $APIPORTAL_BACKSTAGE_PORT or a free port, prints exactly one
#   line on stdout, `listening on http://127.0.0.1:PORT`, once Backstage reports itself ready (logs go to
#   stderr), and stops and exits 0 on SIGTERM.
# - Exit status 0 when DIR is ready; non-zero, with the reason on stderr, when packing or installing failed.
#   Concurrent calls with the same DIR wait for each other (flock on DIR/.backend.sh.lock).
set -euo pipefail
[[ $# -eq 1 && $1 != -* ]] || { sed -n '2,24p' "$0" >&2; exit 2; }
module=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=../scripts/lib.sh
source "$module/scripts/lib.sh"
mkdir -p "$1"
dir=$(cd "$1" && pwd)
# Two callers preparing the same DIR at once wait for each other instead of installing over each other.
exec 9>"$dir/.backend.sh.lock"
flock 9

# The backend package: copy it only when it differs, so an unchanged lockfile keeps DIR's node_modules.
for f in package.json package-lock.json start.js; do
  cmp -s "$module/e2e/backend/$f" "$dir/$f" || cp "$module/e2e/backend/$f" "$dir/$f"
done
if needs_ci "$dir"; then
  rm -f "$dir/.apiportal-tarball.sha256"
fi
ci_if_needed "$dir" "fresh Backstage backend in $dir"

tarball=${APIPORTAL_BACKSTAGE_TARBALL:-}
if [[ -z $tarball ]]; then
  tarball=$("$module/package.sh" --out "$dir/tarball" | tail -1)
fi
[[ -f $tarball ]] || { echo "backend.sh: no tarball at $tarball" >&2; exit 1; }
sum=$(sha256sum "$tarball" | cut -d' ' -f1)
if [[ $(cat "$dir/.apiportal-tarball.sha256" 2>/dev/null) != "$sum" ]]; then
  echo "==> npm install $(basename "$tarball") into $dir" >&2
  start=$SECONDS
  # --no-save: DIR's package.json and lockfile stay the template's, so the next run can tell whether to npm ci.
  (cd "$dir" && npm install --no-save --no-audit --no-fund "$tarball" >&2)
  echo "$sum" > "$dir/.apiportal-tarball.sha256"
  echo "installing the tarball took $((SECONDS - start)) s" >&2
fi
echo "node $dir/start.js"
