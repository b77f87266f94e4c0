#!/usr/bin/env bash
# Builds the module's npm package from this checkout: compiles TypeScript to dist/, copies the bridge's view schema
# (bridge/api/view.schema.json) into schema/, and packs both with config.d.ts and README.md into one tarball.
#
#   backstage-module/package.sh [--out DIR]
#
# Writes DIR/apiportal-backstage-plugin-catalog-backend-module-apiportal-<version>.tgz (DIR defaults to dist/ at
# the repository root, beside krew/package's archives) and prints its absolute path as the last line on stdout.
# Install it into a Backstage app as README.md's "Install" says: `--out vendor` from the app's root folder, then
# `yarn --cwd packages/backend add "@apiportal/...@file:../../vendor/<tarball>"`. The tarball is reproducible: npm
# pack fixes every entry's time and owner.
set -euo pipefail
module=$(cd "$(dirname "$0")" && pwd)
out="$module/../dist"
while (($#)); do
  case "$1" in
    --out) out=$2; shift 2 ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    *) echo "package.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
# shellcheck source=scripts/lib.sh
source "$module/scripts/lib.sh"
ci_if_needed "$module" backstage-module

mkdir -p "$out"
out=$(cd "$out" && pwd)
cd "$module"
# Builds write dist/ and schema/ in the module: one at a time.
exec 9>"$module/.package.sh.lock"
flock 9
# No compiled file of a source that no longer exists may end up in the package.
rm -rf dist schema
# npm pack runs `prepack` (npm run build: the schema copy and tsc) and prints the tarball's name last.
name=$(npm pack --silent --pack-destination "$out" | tail -1)
tarball="$out/$name"
[[ -f $tarball ]] || { echo "package.sh: npm pack did not write $tarball" >&2; exit 1; }
echo "==> $(du -h "$tarball" | cut -f1) $tarball" >&2
echo "$tarball"
