#!/usr/bin/env bash
# A real local Kubernetes control plane for apiportal's tests and demo: etcd and kube-apiserver (built from
# the Go module proxy by build-tools.sh) on 127.0.0.1 with free ports, TLS, RBAC, static tokens for each persona,
# a kubeconfig with one context per persona, and every CRD apiportal reads or defines.
#
#   cluster.sh up DIR [--owner-pid PID]   start; with --owner-pid, stop by itself once PID has exited
#   cluster.sh down DIR                   stop what `up` started in DIR and delete DIR
#   cluster.sh restart-apiserver DIR [S]  stop kube-apiserver for S seconds (default 3), then start it again
#   cluster.sh start-authorino DIR        start Kuadrant's Authorino against the cluster (AUTHORINO_URL in DIR/env)
#   cluster.sh restart-authorino DIR      stop it and start a fresh one (empty caches; the new AUTHORINO_URL last in DIR/env)
#
# After `up`, DIR/kubeconfig has contexts admin (system:masters), apiportal-admin, owner, owner2, consumer,
# consumer2, bridge, backstage and nobody (no rights at all); DIR/env has KUBECONFIG and the persona tokens as shell variables.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
CACHE="${APIPORTAL_CACHE:-$HOME/.cache/apiportal}"
BIN="$CACHE/bin"

log() { printf '[cluster] %s\n' "$*" >&2; }
die() { printf '[cluster] error: %s\n' "$*" >&2; exit 1; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

stop_pid() {
  local pidfile=$1 pid
  [[ -f $pidfile ]] || return 0
  pid=$(cat "$pidfile")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$pidfile"
}

down() {
  local dir=$1
  [[ -d $dir ]] || return 0
  stop_pid "$dir/watchdog.pid"
  stop_pid "$dir/authorino.pid"
  stop_pid "$dir/kube-apiserver.pid"
  stop_pid "$dir/etcd.pid"
  stop_pid "$dir/oidc-issuer.pid"
  rm -rf "$dir"
}

make_certs() {
  local d=$1/pki
  mkdir -p "$d"
  openssl req -x509 -newkey rsa:2048 -nodes -keyout "$d/ca.key" -out "$d/ca.crt" -days 30 -subj /CN=apiportal-test-ca 2>/dev/null
  # rustls refuses a self-signed certificate used as its own CA: sign a serving leaf with the CA.
  openssl req -newkey rsa:2048 -nodes -keyout "$d/serving.key" -out "$d/serving.csr" -subj /CN=127.0.0.1 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n' > "$d/ext.cnf"
  openssl x509 -req -in "$d/serving.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -CAcreateserial -out "$d/serving.crt" \
    -days 30 -extfile "$d/ext.cnf" 2>/dev/null
  openssl genrsa -out "$d/sa.key" 2048 2>/dev/null
  openssl rsa -in "$d/sa.key" -pubout -out "$d/sa.pub" 2>/dev/null
  # The test OIDC issuer's signing key (tests sign user tokens with it).
  openssl genrsa -out "$d/oidc.key" 2048 2>/dev/null
}

# An OIDC issuer on 127.0.0.1 (its serving certificate is the harness CA's) and the AuthenticationConfiguration
# that makes kube-apiserver accept its tokens for the audience `apiportal-bridge`: user names are `oidc:<sub>`.
start_oidc_issuer() {
  local dir=$1 port modulus
  port=$(free_port)
  modulus=$(openssl rsa -in "$dir/pki/oidc.key" -noout -modulus | sed 's/^Modulus=//')
  setsid python3 "$HERE/oidc-issuer.py" "$port" "$dir/pki/serving.crt" "$dir/pki/serving.key" "$modulus" test-key \
    > "$dir/logs/oidc-issuer.log" 2>&1 < /dev/null &
  echo $! > "$dir/oidc-issuer.pid"
  {
    echo "apiVersion: apiserver.config.k8s.io/v1"
    echo "kind: AuthenticationConfiguration"
    echo "jwt:"
    echo "- issuer:"
    echo "    url: https://127.0.0.1:$port"
    echo "    audiences: [apiportal-bridge]"
    echo "    certificateAuthority: |"
    sed 's/^/      /' "$dir/pki/ca.crt"
    echo "  claimMappings:"
    echo "    username: {claim: sub, prefix: 'oidc:'}"
    echo "    groups: {claim: groups, prefix: ''}"
  } > "$dir/authentication.yaml"
  printf 'OIDC_ISSUER=https://127.0.0.1:%s\nOIDC_KEY=%s\nOIDC_KID=test-key\n' "$port" "$dir/pki/oidc.key" >> "$dir/env"
}

# The authorizer chain: RBAC, after a webhook (served by a test, on a port chosen here) that is asked only about
# one ServiceAccount's namespaced requests, `flood/flooder`: a test makes those reviews as slow as it likes, to
# show that one caller's slow reviews cannot starve the bridge's other callers. With nothing listening, the
# webhook has no opinion and RBAC decides alone.
write_authorization_config() {
  local dir=$1 port
  port=$(free_port)
  cat > "$dir/authorization-webhook.kubeconfig" <<YAML
apiVersion: v1
kind: Config
clusters: [{name: test-authorizer, cluster: {server: "http://127.0.0.1:$port/authorize"}}]
users: [{name: apiserver, user: {}}]
contexts: [{name: test-authorizer, context: {cluster: test-authorizer, user: apiserver}}]
current-context: test-authorizer
YAML
  cat > "$dir/authorization.yaml" <<YAML
apiVersion: apiserver.config.k8s.io/v1
kind: AuthorizationConfiguration
authorizers:
- type: Webhook
  name: test-slow-authorizer
  webhook:
    timeout: 30s
    authorizedTTL: 0s
    unauthorizedTTL: 0s
    cacheAuthorizedRequests: false
    cacheUnauthorizedRequests: false
    subjectAccessReviewVersion: v1
    matchConditionSubjectAccessReviewVersion: v1
    failurePolicy: NoOpinion
    connectionInfo: {type: KubeConfigFile, kubeConfigFile: "$dir/authorization-webhook.kubeconfig"}
    matchConditions:
    - expression: "request.user == 'system:serviceaccount:flood:flooder'"
    - expression: "has(request.resourceAttributes) && has(request.resourceAttributes.namespace) && request.resourceAttributes.namespace != ''"
- type: RBAC
  name: rbac
YAML
  printf 'AUTHZ_WEBHOOK_PORT=%s\n' "$port" >> "$dir/env"
}

# persona username uid groups
PERSONAS=(
  "admin|harness-admin|system:masters"
  "apiportal-admin|carol|apiportal:admins"
  "owner|bob|apiportal:owners"
  "owner2|erin|apiportal:owners"
  "consumer|alice|apiportal:consumers"
  "consumer2|dan|apiportal:consumers"
  "bridge|system:serviceaccount:apiportal-system:apiportal-bridge|system:serviceaccounts,system:serviceaccounts:apiportal-system"
  "backstage|system:serviceaccount:backstage:backstage|system:serviceaccounts,system:serviceaccounts:backstage"
  "nobody|mallory|apiportal:nobody"
)

write_tokens_and_kubeconfig() {
  local dir=$1 server=$2
  : > "$dir/tokens.csv"
  : > "$dir/env"
  {
    echo "apiVersion: v1"; echo "kind: Config"; echo "current-context: admin"
    echo "clusters:"; echo "- name: apiportal-local"; echo "  cluster:"
    echo "    server: $server"; echo "    certificate-authority: $dir/pki/ca.crt"
    echo "users:"
  } > "$dir/kubeconfig"
  local contexts="contexts:"
  for entry in "${PERSONAS[@]}"; do
    IFS='|' read -r persona user groups <<< "$entry"
    local token; token=$(openssl rand -hex 24)
    printf '%s,%s,%s,"%s"\n' "$token" "$user" "$user" "$groups" >> "$dir/tokens.csv"
    local var; var="TOKEN_$(echo "$persona" | tr 'a-z-' 'A-Z_')"
    printf '%s=%s\n' "$var" "$token" >> "$dir/env"
    printf -- '- name: %s\n  user:\n    token: %s\n' "$persona" "$token" >> "$dir/kubeconfig"
    contexts+=$'\n'"- name: $persona"$'\n'"  context:"$'\n'"    cluster: apiportal-local"$'\n'"    user: $persona"
  done
  echo "$contexts" >> "$dir/kubeconfig"
  chmod 600 "$dir/kubeconfig" "$dir/tokens.csv" "$dir/env"
  printf 'KUBECONFIG=%s\nAPISERVER=%s\n' "$dir/kubeconfig" "$server" >> "$dir/env"
}

install_crds() {
  local dir=$1 kubectl=("$BIN/kubectl" --kubeconfig "$dir/kubeconfig" --context admin)
  log "installing CRDs, RBAC and the admission policy"
  "${kubectl[@]}" apply --server-side --field-manager=apiportal-harness -f "$CACHE/crds/httproutes.yaml" \
    -f "$HERE/crds/kuadrant/" -f "$CACHE/crds/authconfigs.yaml" >/dev/null
  "${kubectl[@]}" wait --for condition=established --timeout=60s \
    crd/httproutes.gateway.networking.k8s.io crd/authpolicies.kuadrant.io crd/planpolicies.extensions.kuadrant.io \
    crd/authconfigs.authorino.kuadrant.io >/dev/null
  # APIPORTAL_BARE_CLUSTER=1 leaves apiportal itself out, as on a cluster where nobody ran install yet.
  if [[ ${APIPORTAL_BARE_CLUSTER:-0} != 1 ]]; then
    "${kubectl[@]}" apply --server-side --field-manager=apiportal-harness -f "$REPO/deploy/crds/" >/dev/null
    "${kubectl[@]}" wait --for condition=established --timeout=60s \
      crd/apiproducts.devportal.kuadrant.io crd/apikeys.devportal.kuadrant.io >/dev/null
    "${kubectl[@]}" apply --server-side --field-manager=apiportal-harness -f "$REPO/deploy/rbac/" -f "$REPO/deploy/admission/" >/dev/null
    await_admission_policy "$dir"
  fi
  # Cluster-wide halves of the persona bindings (the namespaced halves are made per namespace by whoever
  # needs them: the tests, the demo).
  "${kubectl[@]}" apply --server-side --field-manager=apiportal-harness -f - >/dev/null <<YAML
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: apiportal-catalog-readers}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: apiportal-catalog-reader}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: Group, name: "apiportal:consumers"}
- {apiGroup: rbac.authorization.k8s.io, kind: Group, name: "apiportal:owners"}
- {kind: ServiceAccount, name: backstage, namespace: backstage}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: apiportal-request-reviewers}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: apiportal-request-reviewer}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: Group, name: "apiportal:owners"}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: apiportal-admins}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: apiportal-admin}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: Group, name: "apiportal:admins"}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: apiportal-key-readers}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: apiportal-key-reader}
subjects:
- {kind: ServiceAccount, name: backstage, namespace: backstage}
---
# Real ServiceAccounts, so the tests can request audience-bound tokens for them (TokenRequest): Backstage, and a
# Prometheus allowed to read /metrics.
apiVersion: v1
kind: Namespace
metadata: {name: backstage}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: backstage, namespace: backstage}
---
apiVersion: v1
kind: Namespace
metadata: {name: monitoring}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: prometheus, namespace: monitoring}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: test-prometheus-monitoring}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: system:monitoring}
subjects:
- {kind: ServiceAccount, name: prometheus, namespace: monitoring}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: apiportal-bridge}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: apiportal-bridge}
subjects:
- {kind: ServiceAccount, name: apiportal-bridge, namespace: apiportal-system}
YAML
}

# kube-apiserver loads a new ValidatingAdmissionPolicy asynchronously: until it does, writes it should refuse are
# admitted. No object condition says "loaded", so this asks the API server itself, with server-side dry runs that
# the policy refuses (a request in someone else's name, a decision signed by someone else) and that change nothing.
await_admission_policy() {
  local dir=$1 kubectl=("$BIN/kubectl" --kubeconfig "$dir/kubeconfig" --context admin)
  local me probe='apiportal-admission-probe' deadline=$((SECONDS + 60))
  me=$("${kubectl[@]}" auth whoami -o jsonpath='{.status.userInfo.username}')
  key() {
    printf '{"apiVersion":"devportal.kuadrant.io/v1alpha1","kind":"APIKey","metadata":{"name":"%s","namespace":"default"},"spec":{"apiProductRef":{"name":"probe"},"planTier":"probe","requestedBy":{"userId":"%s"}}}' "$probe" "$1"
  }
  # Everything is retried: kubectl's discovery of a just-established CRD can lag its Established condition.
  local created=0
  while :; do
    local create status
    if ((!created)) && key "$me" | "${kubectl[@]}" create -f - >/dev/null 2>&1; then created=1; fi
    create=$(key "$probe" | "${kubectl[@]}" create --dry-run=server -f - 2>&1 >/dev/null || true)
    status=$("${kubectl[@]}" patch apikey "$probe" -n default --subresource=status --type=merge --dry-run=server \
      -p "{\"status\":{\"phase\":\"Approved\",\"reviewedBy\":\"$probe\",\"reviewedAt\":\"2026-01-01T00:00:00Z\"}}" 2>&1 >/dev/null || true)
    if [[ $create == *"must be the requesting user"* && $status == *"must be the deciding user"* ]]; then break; fi
    if ((SECONDS > deadline)); then
      log "the admission policy is not in effect after 60 s: create said: ${create:-admitted}; status said: ${status:-admitted}"
      exit 1
    fi
    sleep 0.2
  done
  # The finalizer policy gave the probe the bridge's finalizer, and no bridge runs here to release it.
  "${kubectl[@]}" patch apikey "$probe" -n default --type=merge -p '{"metadata":{"finalizers":null}}' >/dev/null
  "${kubectl[@]}" delete apikey "$probe" -n default --wait=false >/dev/null
}

start_apiserver() {
  local dir=$1
  setsid bash "$dir/kube-apiserver.cmd" >> "$dir/logs/kube-apiserver.log" 2>&1 < /dev/null &
  echo $! > "$dir/kube-apiserver.pid"
}

wait_ready() {
  local dir=$1 token server
  token=$(sed -n 's/^TOKEN_ADMIN=//p' "$dir/env")
  server=$(sed -n 's/^APISERVER=//p' "$dir/env")
  log "waiting for kube-apiserver on $server"
  for i in $(seq 1 120); do
    if curl -fsS --cacert "$dir/pki/ca.crt" -H "Authorization: Bearer $token" "$server/readyz" >/dev/null 2>&1; then return 0; fi
    kill -0 "$(cat "$dir/kube-apiserver.pid")" 2>/dev/null || { tail -20 "$dir/logs/kube-apiserver.log" >&2; die "kube-apiserver exited"; }
    [[ $i == 120 ]] && { tail -20 "$dir/logs/kube-apiserver.log" >&2; die "kube-apiserver not ready after 60s"; }
    sleep 0.5
  done
}

# Stops kube-apiserver (etcd and its data stay), waits, and starts it again on the same port.
restart_apiserver() {
  local dir=$1 down_seconds=${2:-3}
  stop_pid "$dir/kube-apiserver.pid"
  sleep "$down_seconds"
  start_apiserver "$dir"
  wait_ready "$dir"
}

# Authorino as the gateway would run it, reduced to its raw HTTP check interface on a free loopback port (every
# other listener off or on a free port), reading AuthConfigs and Secrets as the harness's admin. Ready once the
# check interface answers (404: no AuthConfig for that host).
start_authorino() {
  local dir=$1 port
  [[ -f $dir/authorino.pid ]] && kill -0 "$(cat "$dir/authorino.pid")" 2>/dev/null && return 0
  port=$(free_port)
  KUBECONFIG="$dir/kubeconfig" setsid "$BIN/authorino" server --ext-auth-http-port "$port" --ext-auth-grpc-port 0 \
    --oidc-http-port 0 --metrics-addr 127.0.0.1:0 --health-probe-addr 127.0.0.1:0 --pprof-bind-address 0 \
    --log-level error > "$dir/logs/authorino.log" 2>&1 < /dev/null &
  echo $! > "$dir/authorino.pid"
  for i in $(seq 1 120); do
    local code
    code=$(curl -s -o /dev/null -w '%{http_code}' -H 'Host: harness.invalid' "http://127.0.0.1:$port/check" || true)
    [[ $code == 404 ]] && break
    kill -0 "$(cat "$dir/authorino.pid")" 2>/dev/null || { tail -20 "$dir/logs/authorino.log" >&2; die "authorino exited"; }
    [[ $i == 120 ]] && { tail -20 "$dir/logs/authorino.log" >&2; die "authorino not ready after 60s"; }
    sleep 0.5
  done
  printf 'AUTHORINO_URL=http://127.0.0.1:%s\n' "$port" >> "$dir/env"
  log "authorino ready on http://127.0.0.1:$port"
}

up() {
  local dir=$1 owner_pid=${2:-}
  [[ -e $dir/kube-apiserver.pid ]] && die "a cluster is already running in $dir; stop it with: $0 down $dir"
  "$HERE/build-tools.sh" cluster
  command -v openssl >/dev/null || die "openssl is required (apt-get install openssl)"
  mkdir -p "$dir/etcd-data" "$dir/logs"
  dir=$(cd "$dir" && pwd)
  local etcd_port peer_port api_port
  etcd_port=$(free_port); peer_port=$(free_port); api_port=$(free_port)
  make_certs "$dir"
  write_tokens_and_kubeconfig "$dir" "https://127.0.0.1:$api_port"
  start_oidc_issuer "$dir"
  write_authorization_config "$dir"

  setsid "$BIN/etcd" --data-dir "$dir/etcd-data" --listen-client-urls "http://127.0.0.1:$etcd_port" \
    --advertise-client-urls "http://127.0.0.1:$etcd_port" --listen-peer-urls "http://127.0.0.1:$peer_port" \
    --initial-advertise-peer-urls "http://127.0.0.1:$peer_port" \
    --initial-cluster "default=http://127.0.0.1:$peer_port" --log-level warn \
    > "$dir/logs/etcd.log" 2>&1 < /dev/null &
  echo $! > "$dir/etcd.pid"

  # Kept so `restart-apiserver` can start it again exactly as before (same port, same etcd).
  cat > "$dir/kube-apiserver.cmd" <<CMD
exec "$BIN/kube-apiserver" --etcd-servers="http://127.0.0.1:$etcd_port" --bind-address=127.0.0.1 \\
  --secure-port="$api_port" --tls-cert-file="$dir/pki/serving.crt" --tls-private-key-file="$dir/pki/serving.key" \\
  --client-ca-file="$dir/pki/ca.crt" \\
  --service-account-key-file="$dir/pki/sa.pub" --service-account-signing-key-file="$dir/pki/sa.key" \\
  --service-account-issuer=https://kubernetes.default.svc --api-audiences=https://kubernetes.default.svc \\
  --authorization-config="$dir/authorization.yaml" --token-auth-file="$dir/tokens.csv" --authentication-config="$dir/authentication.yaml" \\
  --service-cluster-ip-range=10.0.0.0/24 --cert-dir="$dir/pki" --shutdown-delay-duration=0s \\
  --profiling=false --v=0
CMD
  start_apiserver "$dir"

  if [[ -n $owner_pid ]]; then
    # Stops the cluster once the process that asked for it is gone, even if that process was killed.
    setsid bash -c "while kill -0 $owner_pid 2>/dev/null; do sleep 1; done; rm -f '$dir/watchdog.pid'; exec '$0' down '$dir'" \
      > /dev/null 2>&1 < /dev/null &
    echo $! > "$dir/watchdog.pid"
  fi

  wait_ready "$dir"
  install_crds "$dir"
  log "ready: export KUBECONFIG=$dir/kubeconfig (contexts: admin apiportal-admin owner owner2 consumer consumer2 bridge backstage nobody)"
}

cmd=${1:-}; dir=${2:-}
[[ -n $cmd && -n $dir ]] || { sed -n '2,14p' "$0" >&2; exit 2; }
case "$cmd" in
  up)
    owner=""
    if [[ ${3:-} == --owner-pid ]]; then owner=${4:?--owner-pid needs a PID}; fi
    up "$dir" "$owner" ;;
  down) down "$dir" ;;
  restart-apiserver) restart_apiserver "$dir" "${3:-3}" ;;
  start-authorino) start_authorino "$dir" ;;
  restart-authorino) stop_pid "$dir/authorino.pid"; start_authorino "$dir" ;;
  *) sed -n '2,14p' "$0" >&2; exit 2 ;;
esac
