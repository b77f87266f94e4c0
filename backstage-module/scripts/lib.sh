# Sourced by the module's scripts (test.sh, package.sh, e2e/backend.sh): Node's headers for native builds, and an
# `npm ci` that runs only when the module's node_modules does not match its lockfile.

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

# needs_ci DIR [--native]: true when DIR's node_modules is missing or older than its lockfile; with --native also
# when its better-sqlite3 (the tests' database) does not load in this Node.js (built for another one, or broken by
# an interrupted install). Packing needs no native module, so package.sh does not ask, and works under any Node.js.
needs_ci() {
  local dir=$1 native=${2:-}
  [[ ! -d $dir/node_modules ]] && return 0
  # npm ci writes node_modules/.package-lock.json; an older one means the lockfile changed since.
  [[ ! -f $dir/node_modules/.package-lock.json || $dir/package-lock.json -nt $dir/node_modules/.package-lock.json ]] && return 0
  if [[ $native == --native ]]; then
    (cd "$dir" && node -e 'new (require("better-sqlite3"))(":memory:").close()') >/dev/null 2>&1 || return 0
  fi
  return 1
}

# ci_if_needed DIR LABEL [--native]: `npm ci` in DIR when needs_ci, timed, progress on stderr.
ci_if_needed() {
  local dir=$1 label=$2 native=${3:-} start=$SECONDS
  if needs_ci "$dir" "$native"; then
    echo "==> npm ci ($label)" >&2
    (cd "$dir" && npm ci --no-audit --no-fund >&2)
    echo "npm ci ($label) took $((SECONDS - start)) s" >&2
  fi
}
