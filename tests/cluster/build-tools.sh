#!/usr/bin/env bash
# Builds the real Kubernetes components the tests and the local demo run on (kube-apiserver, kubectl, etcd),
# Kuadrant's Authorino (the gateway's key check) and krew's own tools, from the Go module proxy, once. Binaries and Go caches live under one cache folder
# (APIPORTAL_CACHE, default ~/.cache/apiportal) keyed by version, so only the first run pays for Go.
set -euo pipefail

KUBE_VERSION="${KUBE_VERSION:-v1.37.2}"
ETCD_VERSION="${ETCD_VERSION:-v3.6.4}"
KREW_VERSION="${KREW_VERSION:-v0.4.3}"
# Kuadrant's Authorino, the gateway's API-key check, for tests that ask the real gateway. The newest release the
# Go module proxy serves (checked against the checksum database like every other module here).
AUTHORINO_VERSION="${AUTHORINO_VERSION:-v0.27.0}"
GATEWAY_API_VERSION="${GATEWAY_API_VERSION:-v1.4.1}"

CACHE="${APIPORTAL_CACHE:-$HOME/.cache/apiportal}"
BIN="$CACHE/bin"
export GOMODCACHE="$CACHE/go/mod" GOCACHE="$CACHE/go/build" GOFLAGS="-buildvcs=false" GOTOOLCHAIN=local
mkdir -p "$BIN"

log() { printf '[build-tools] %s\n' "$*" >&2; }

# The staging modules k8s.io/kubernetes replaces with ./staging/src/...: each gets the matching v0.x release.
kube_replaces() {
  local gomod staging_version="v0.${KUBE_VERSION#v1.}"
  gomod=$(go mod download -json "k8s.io/kubernetes@$KUBE_VERSION" | sed -n 's/^\s*"GoMod": "\(.*\)",\?$/\1/p')
  grep -oE '^\s*k8s.io/[a-z0-9-]+ => \./staging' "$gomod" | awk '{print $1}' | sort -u |
    while read -r mod; do printf 'replace %s => %s %s\n' "$mod" "$mod" "$staging_version"; done
}

build_kube() {
  local out_api="$BIN/kube-apiserver-$KUBE_VERSION" out_ctl="$BIN/kubectl-$KUBE_VERSION"
  [[ -x $out_api && -x $out_ctl ]] && return
  log "building kube-apiserver and kubectl $KUBE_VERSION (about 6 minutes cold)"
  local dir; dir=$(mktemp -d); trap 'rm -rf "$dir"' RETURN
  mkdir -p "$dir/kube-apiserver" "$dir/kubectl"
  cat > "$dir/kube-apiserver/main.go" <<'GO'
package main

import (
	"os"

	"k8s.io/component-base/cli"
	"k8s.io/kubernetes/cmd/kube-apiserver/app"
)

func main() { os.Exit(cli.Run(app.NewAPIServerCommand())) }
GO
  cat > "$dir/kubectl/main.go" <<'GO'
package main

import (
	"k8s.io/component-base/cli"
	"k8s.io/kubectl/pkg/cmd"
	"k8s.io/kubectl/pkg/cmd/util"
)

func main() {
	if err := cli.RunNoErrOutput(cmd.NewDefaultKubectlCommand()); err != nil {
		util.CheckErr(err)
	}
}
GO
  { echo "module apiportal.test/kube"; echo; echo "go 1.26"; echo
    echo "require k8s.io/kubernetes $KUBE_VERSION"; kube_replaces; } > "$dir/go.mod"
  local minor="${KUBE_VERSION#v1.}"; minor="${minor%%.*}"
  local ldflags=""
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $pkg.gitVersion=$KUBE_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
  done
  (cd "$dir" && go mod tidy >/dev/null 2>&1 && \
    go build -ldflags "$ldflags" -o "$out_api.tmp" ./kube-apiserver && \
    go build -ldflags "$ldflags" -o "$out_ctl.tmp" ./kubectl)
  mv "$out_api.tmp" "$out_api"; mv "$out_ctl.tmp" "$out_ctl"
}

build_etcd() {
  local out="$BIN/etcd-$ETCD_VERSION"
  [[ -x $out ]] && return
  log "building etcd $ETCD_VERSION"
  local dir; dir=$(mktemp -d); trap 'rm -rf "$dir"' RETURN
  cat > "$dir/main.go" <<'GO'
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO
  printf 'module apiportal.test/etcd\n\ngo 1.26\n\nrequire go.etcd.io/etcd/server/v3 %s\n' "$ETCD_VERSION" > "$dir/go.mod"
  (cd "$dir" && go mod tidy >/dev/null 2>&1 && go build -o "$out.tmp" .)
  mv "$out.tmp" "$out"
}

build_krew() {
  local out_krew="$BIN/kubectl-krew-$KREW_VERSION" out_val="$BIN/validate-krew-manifest-$KREW_VERSION"
  [[ -x $out_krew && -x $out_val ]] && return
  log "building krew and validate-krew-manifest $KREW_VERSION"
  local dir; dir=$(mktemp -d); trap 'rm -rf "$dir"' RETURN
  printf 'module apiportal.test/krew\n\ngo 1.26\n\nrequire sigs.k8s.io/krew %s\n' "$KREW_VERSION" > "$dir/go.mod"
  printf 'package tools\n\nimport (\n\t_ "sigs.k8s.io/krew/cmd/krew"\n\t_ "sigs.k8s.io/krew/cmd/validate-krew-manifest"\n)\n' > "$dir/tools.go"
  (cd "$dir" && go mod tidy >/dev/null 2>&1 && \
    go build -o "$out_krew.tmp" sigs.k8s.io/krew/cmd/krew && \
    go build -o "$out_val.tmp" sigs.k8s.io/krew/cmd/validate-krew-manifest)
  mv "$out_krew.tmp" "$out_krew"; mv "$out_val.tmp" "$out_val"
}

# Authorino is a module of its own (its repository root is its main package): built in the module cache's copy of
# its source, with its own go.mod and go.sum, so its dependencies are exactly the ones it pins. Its AuthConfig CRD
# comes from the same source.
build_authorino() {
  local out="$BIN/authorino-$AUTHORINO_VERSION" crd="$CACHE/crds/authorino-$AUTHORINO_VERSION/authconfigs.yaml"
  [[ -x $out && -s $crd ]] && return
  log "building authorino $AUTHORINO_VERSION (about 4 minutes cold)"
  local dir; dir=$(go mod download -json "github.com/kuadrant/authorino@$AUTHORINO_VERSION" | sed -n 's/^\s*"Dir": "\(.*\)",\?$/\1/p')
  [[ -n $dir ]] || { log "the Go module proxy did not serve github.com/kuadrant/authorino@$AUTHORINO_VERSION"; exit 1; }
  (cd "$dir" && go mod download >/dev/null 2>&1 && go build -o "$out.tmp" .)
  mv "$out.tmp" "$out"
  mkdir -p "$(dirname "$crd")"
  cp "$dir/install/crd/authorino.kuadrant.io_authconfigs.yaml" "$crd.tmp"
  mv "$crd.tmp" "$crd"
}

# Gateway API's HTTPRoute CRD comes from its Go module, so the harness installs the real schema.
fetch_gateway_api_crds() {
  local out="$CACHE/crds/gateway-api-$GATEWAY_API_VERSION/httproutes.yaml"
  [[ -s $out ]] && return
  log "fetching Gateway API $GATEWAY_API_VERSION CRDs"
  local dir; dir=$(go mod download -json "sigs.k8s.io/gateway-api@$GATEWAY_API_VERSION" | sed -n 's/^\s*"Dir": "\(.*\)",\?$/\1/p')
  mkdir -p "$(dirname "$out")"
  cp "$dir/config/crd/standard/gateway.networking.k8s.io_httproutes.yaml" "$out.tmp"
  mv "$out.tmp" "$out"
}

what="${1:-all}"
case "$what" in
  all) fetch_gateway_api_crds; build_etcd; build_kube; build_authorino; build_krew ;;
  cluster) fetch_gateway_api_crds; build_etcd; build_kube; build_authorino ;;
  krew) build_krew ;;
  authorino) build_authorino ;;
  *) echo "usage: $0 [all|cluster|krew|authorino]" >&2; exit 2 ;;
esac
# Stable names for callers.
ln -sf "kube-apiserver-$KUBE_VERSION" "$BIN/kube-apiserver" 2>/dev/null || true
[[ -x $BIN/kubectl-$KUBE_VERSION ]] && ln -sf "kubectl-$KUBE_VERSION" "$BIN/kubectl"
[[ -x $BIN/etcd-$ETCD_VERSION ]] && ln -sf "etcd-$ETCD_VERSION" "$BIN/etcd"
[[ -x $BIN/kubectl-krew-$KREW_VERSION ]] && ln -sf "kubectl-krew-$KREW_VERSION" "$BIN/kubectl-krew"
[[ -x $BIN/validate-krew-manifest-$KREW_VERSION ]] && ln -sf "validate-krew-manifest-$KREW_VERSION" "$BIN/validate-krew-manifest"
[[ -x $BIN/authorino-$AUTHORINO_VERSION ]] && ln -sf "authorino-$AUTHORINO_VERSION" "$BIN/authorino"
[[ -s $CACHE/crds/authorino-$AUTHORINO_VERSION/authconfigs.yaml ]] && ln -sf "authorino-$AUTHORINO_VERSION/authconfigs.yaml" "$CACHE/crds/authconfigs.yaml"
[[ -s $CACHE/crds/gateway-api-$GATEWAY_API_VERSION/httproutes.yaml ]] && ln -sf "gateway-api-$GATEWAY_API_VERSION/httproutes.yaml" "$CACHE/crds/httproutes.yaml"
log "tools ready in $BIN"
