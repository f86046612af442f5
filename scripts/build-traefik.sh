#!/usr/bin/env bash
# Build Traefik for the real one-node test cluster (tests/kubernetes_node) from the wrapper
# module tools/traefik (the Go module proxy only, no release download), and extract the
# Traefik CRDs and the Gateway API CRDs that ship in the module cache. Cached outside the
# repository, keyed by version, built only when missing: a cold build takes 15-20 min on two
# busy cores, a warm run well under a second. One build at a time (flock); the test bed
# build (scripts/build-k8s-testbed.sh) calls this script, and CI may start it in the
# background earlier.
#
#   scripts/build-traefik.sh              build what is missing, print the directory
#   scripts/build-traefik.sh --print-dir  print the directory, build nothing
#
# The directory holds: traefik, traefik-crds.yml, gateway-api-crds.yml.
# Environment: PYTEST_RELEASE_K8S_CACHE (default /var/cache/pytest-release/k8s-testbed),
# K8S_TESTBED_JOBS (parallel compile jobs, default 2), FORCE=1 to rebuild.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
module="$repo/tools/traefik"

traefik_version="$(awk '$1 == "github.com/traefik/traefik/v3" {print $2; exit}' "$module/go.mod")"
gateway_version="$(awk '$1 == "sigs.k8s.io/gateway-api" {print $2; exit}' "$module/go.mod")"
[[ -n "$traefik_version" && -n "$gateway_version" ]] || {
  echo "build-traefik: cannot read the Traefik and gateway-api versions from $module/go.mod" >&2
  exit 2
}
cache_root="${PYTEST_RELEASE_K8S_CACHE:-/var/cache/pytest-release/k8s-testbed}"
out_dir="$cache_root/traefik-$traefik_version"

if [[ "${1:-}" == "--print-dir" ]]; then
  echo "$out_dir"
  exit 0
fi

files=(traefik traefik-crds.yml gateway-api-crds.yml)
missing() {
  local f
  for f in "${files[@]}"; do [[ -s "$out_dir/$f" ]] || return 0; done
  return 1
}

mkdir -p "$cache_root"
# One Traefik build at a time; a lock of its own so that it can run beside the test bed build.
exec 9>"$cache_root/.build-traefik.lock"
flock 9

if [[ "${FORCE:-0}" != "1" ]] && ! missing; then
  echo "$out_dir"
  exit 0
fi

command -v go >/dev/null || {
  echo "build-traefik: 'go' (>= 1.25) is not on PATH: install Go to build Traefik" >&2
  exit 2
}
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=readonly
jobs="${K8S_TESTBED_JOBS:-2}"
mkdir -p "$out_dir"
tmp="$(mktemp -d "$cache_root/.build-traefik.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT

cd "$module"
if [[ "${FORCE:-0}" == "1" || ! -x "$out_dir/traefik" ]]; then
  echo "build-traefik: building traefik $traefik_version (cold: 15-20 min)" >&2
  start=$SECONDS
  nice -n 10 go build -p "$jobs" -trimpath \
    -ldflags "-s -w -X github.com/traefik/traefik/v3/pkg/version.Version=$traefik_version" \
    -o "$tmp/traefik" github.com/traefik/traefik/v3/cmd/traefik
  mv "$tmp/traefik" "$out_dir/traefik"
  echo "build-traefik: traefik built in $((SECONDS - start)) s" >&2
fi
# The CRDs ship in the modules: Traefik's (IngressRoute, TraefikService, ...) and the Gateway
# API's experimental channel that Traefik's own integration tests apply.
traefik_src="$(go list -m -f '{{.Dir}}' github.com/traefik/traefik/v3)"
[[ -d "$traefik_src" ]] || go mod download github.com/traefik/traefik/v3
traefik_src="$(go list -m -f '{{.Dir}}' github.com/traefik/traefik/v3)"
cp "$traefik_src/docs/content/reference/dynamic-configuration/kubernetes-crd-definition-v1.yml" \
  "$tmp/traefik-crds.yml"
cp "$traefik_src/integration/fixtures/k8s/00-experimental-${gateway_version}.yml" \
  "$tmp/gateway-api-crds.yml"
chmod 0644 "$tmp/traefik-crds.yml" "$tmp/gateway-api-crds.yml"
mv "$tmp/traefik-crds.yml" "$tmp/gateway-api-crds.yml" "$out_dir/"
"$out_dir/traefik" version >&2
echo "$out_dir"
