#!/usr/bin/env bash
# Build the Argo Rollouts controller for the real one-node test cluster
# (tests/kubernetes_node/test_argo_rollouts.py) from the wrapper module tools/argo-rollouts
# (the Go module proxy only, no release download), and extract its CRDs (Rollout,
# AnalysisTemplate, AnalysisRun, ...) that ship in the module under manifests/crds/. Cached
# outside the repository, keyed by version, built only when missing; a warm run takes well
# under a second. One build at a time (flock); CI starts it in the background.
#
#   scripts/build-argo-rollouts.sh              build what is missing, print the binary path
#   scripts/build-argo-rollouts.sh --print-dir  print the directory, build nothing
#
# The directory holds: rollouts-controller, crds/*.yaml.
# Environment: PYTEST_RELEASE_K8S_CACHE (default /var/cache/pytest-release/k8s-testbed),
# K8S_TESTBED_JOBS (parallel compile jobs, default 2), FORCE=1 to rebuild.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
module="$repo/tools/argo-rollouts"

version="$(awk '$1 == "require" && $2 == "github.com/argoproj/argo-rollouts" {print $3; exit}
  $1 == "github.com/argoproj/argo-rollouts" {print $2; exit}' "$module/go.mod")"
[[ -n "$version" ]] || {
  echo "build-argo-rollouts: cannot read the argo-rollouts version from $module/go.mod" >&2
  exit 2
}
cache_root="${PYTEST_RELEASE_K8S_CACHE:-/var/cache/pytest-release/k8s-testbed}"
out_dir="$cache_root/argo-rollouts-$version"

if [[ "${1:-}" == "--print-dir" ]]; then
  echo "$out_dir"
  exit 0
fi

missing() {
  [[ -x "$out_dir/rollouts-controller" ]] || return 0
  compgen -G "$out_dir/crds/*.yaml" >/dev/null || return 0
  return 1
}

mkdir -p "$cache_root"
# One Argo Rollouts build at a time; a lock of its own so that it can run beside the others.
exec 9>"$cache_root/.build-argo-rollouts.lock"
flock 9

if [[ "${FORCE:-0}" != "1" ]] && ! missing; then
  echo "$out_dir/rollouts-controller"
  exit 0
fi

command -v go >/dev/null || {
  echo "build-argo-rollouts: 'go' (>= 1.26.1) is not on PATH: install Go to build Argo Rollouts" >&2
  exit 2
}
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=readonly
jobs="${K8S_TESTBED_JOBS:-2}"
mkdir -p "$out_dir"
tmp="$(mktemp -d "$cache_root/.build-argo-rollouts.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT

cd "$module"
if [[ "${FORCE:-0}" == "1" || ! -x "$out_dir/rollouts-controller" ]]; then
  echo "build-argo-rollouts: building rollouts-controller $version" >&2
  start=$SECONDS
  nice -n 10 go build -p "$jobs" -trimpath \
    -ldflags "-s -w -X github.com/argoproj/argo-rollouts/utils/version.version=${version#v}" \
    -o "$tmp/rollouts-controller" github.com/argoproj/argo-rollouts/cmd/rollouts-controller
  mv "$tmp/rollouts-controller" "$out_dir/rollouts-controller"
  echo "build-argo-rollouts: rollouts-controller built in $((SECONDS - start)) s" >&2
fi
src="$(go list -m -f '{{.Dir}}' github.com/argoproj/argo-rollouts)"
[[ -d "$src" ]] || go mod download github.com/argoproj/argo-rollouts
src="$(go list -m -f '{{.Dir}}' github.com/argoproj/argo-rollouts)"
mkdir -p "$tmp/crds"
cp "$src"/manifests/crds/*-crd.yaml "$tmp/crds/"
chmod 0644 "$tmp"/crds/*.yaml
rm -rf "$out_dir/crds"
mv "$tmp/crds" "$out_dir/crds"
echo "$out_dir/rollouts-controller"
