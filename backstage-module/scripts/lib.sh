# Sourced by the module's scripts (test.sh, package.sh, e2e/backend.sh): Node's headers for native builds, and an
# `npm ci` that runs only when a folder's node_modules does not match its lockfile.

# better-sqlite3 (the catalog's database, in the tests and the end-to-end backend) is built from source: its
# prebuilt download is not reachable here. node-gyp needs Node's headers; point it at the local ones so it never
# downloads them.
if [[ -z "${npm_config_nodedir:-}" ]]; then
  if [[ -f /usr/include/node/node_api.h ]]; then
    npm_config_nodedir=/usr
  else
    npm_config_nodedir="$(dirname "$(dirname "$(readlink -f "$(command -v node)")")")"
  fi
fi
export npm_config_nodedir

# needs_ci DIR: true when DIR's node_modules is missing, older than its lockfile, or holds a better-sqlite3 built
# for another Node.js (or broken by an interrupted install).
needs_ci() {
  local dir=$1
  [[ ! -d $dir/node_modules ]] && return 0
  # npm ci writes node_modules/.package-lock.json; an older one means the lockfile changed since.
  [[ ! -f $dir/node_modules/.package-lock.json || $dir/package-lock.json -nt $dir/node_modules/.package-lock.json ]] && return 0
  (cd "$dir" && node -e 'new (require("better-sqlite3"))(":memory:").close()') >/dev/null 2>&1 || return 0
  return 1
}

# ci_if_needed DIR LABEL: `npm ci` in DIR when needs_ci, timed, progress on stderr.
ci_if_needed() {
  local dir=$1 label=$2 start=$SECONDS
  if needs_ci "$dir"; then
    echo "==> npm ci ($label)" >&2
    (cd "$dir" && npm ci --no-audit --no-fund >&2)
    echo "npm ci ($label) took $((SECONDS - start)) s" >&2
  fi
}
