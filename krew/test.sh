#!/usr/bin/env bash
# Checks the release packaging against krew's own rules: builds the archive and manifest, runs krew's
# validator, installs the archive with the real krew into a temporary KREW_ROOT, runs the plugin through
# kubectl, and uninstalls it.
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE="${APIPORTAL_CACHE:-$HOME/.cache/apiportal}"
tests/cluster/build-tools.sh krew >/dev/null
tests/cluster/build-tools.sh cluster >/dev/null
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
passed=0; failed=0
check() {
  local name=$1; shift
  if "$@"; then echo "ok - $name"; passed=$((passed + 1)); else echo "not ok - $name"; failed=$((failed + 1)); fi
}

# What is checked here is the packaging, the manifest and krew's install, not the optimiser: without LTO the
# release build after a code change takes about a minute instead of four on 2 cores. A real release
# (krew/package on its own) keeps the full release profile.
manifest=$(CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 krew/package --out "$work/dist" | tail -1)
archive=$(ls "$work"/dist/kubectl-apiportal_*_linux_amd64.tar.gz)

short_ok() { local s; s=$(sed -n 's/^  shortDescription: //p' "$manifest"); ((${#s} <= 50)); }
wrapped_ok() { ! awk '/^  description: \|/{d=1;next} /^  [a-z]/{d=0} d && length($0) > 84' "$manifest" | grep -q .; }
sha_ok() { [[ $(sed -n 's/^    sha256: //p' "$manifest") == $(sha256sum "$archive" | cut -d' ' -f1) ]]; }
license_in_archive() { tar -tzf "$archive" | grep -qx LICENSE; }
check "shortDescription is at most 50 characters" short_ok
check "description is wrapped at 80 columns" wrapped_ok
check "the manifest's sha256 is the archive's" sha_ok
check "the archive carries a LICENSE" license_in_archive
check "krew's validator accepts the manifest" "$CACHE/bin/validate-krew-manifest" -manifest "$manifest" -skip-install

export KREW_ROOT="$work/krew-root" PATH="$work/krew-root/bin:$CACHE/bin:$PATH"
# krew refuses some commands without a plugin index, and `krew update` would clone it from the network: an
# empty local index is enough, since the plugin comes from --manifest and --archive.
mkdir -p "$KREW_ROOT/index/default/plugins"
git -C "$KREW_ROOT/index/default" init -q
check "krew installs it from the archive" kubectl krew install --manifest="$manifest" --archive="$archive"
version_via_kubectl() { kubectl apiportal version --kubeconfig /dev/null | grep -q "^Client Version: v"; }
check "kubectl apiportal version runs the installed plugin" version_via_kubectl
check "krew uninstalls it" kubectl krew uninstall apiportal
gone() { [[ ! -e $KREW_ROOT/bin/kubectl-apiportal ]]; }
check "nothing of it is left on PATH" gone

echo "krew: $passed passed, $failed failed"
((failed == 0))
