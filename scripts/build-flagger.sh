#!/usr/bin/env bash
# Build the Flagger controller (tests/kubernetes/test_flagger_controller.py, on the kwok
# API server; not built by .ci/run: docs/flagger.md, "Limits") from the Go module proxy, no
# release download, and copy its CRDs (Canary, MetricTemplate, AlertProvider) that ship in
# the module as artifacts/flagger/crd.yaml. Flagger's go.mod has no replace directives, so `go install
# MODULE@VERSION` builds it directly (go.sum checked against the checksum database); the
# Go module and build caches are the ones the Argo Rollouts build uses. Cached outside the
# repository, keyed by version, built only when missing; a warm run takes well under a
# second. One build at a time (flock). Measured here under load (load average about 20 on 2
# cores), with the Argo Rollouts build's caches warm: cold 896 s wall (128 s user CPU),
# warm 0.04 s.
#
#   scripts/build-flagger.sh              build what is missing, print the binary path
#   scripts/build-flagger.sh --print-dir  print the directory, build nothing
#
# The directory holds: flagger, crds/crd.yaml.
# Environment: PYTEST_RELEASE_K8S_CACHE (default /var/cache/pytest-release/k8s-testbed),
# K8S_TESTBED_JOBS (parallel compile jobs, default 2), FORCE=1 to rebuild.
set -euo pipefail
# The version the tests vendor the CRDs of (tests/data/flagger/crd-v1.36.1.yaml).
version="v1.36.1"
cache_root="${PYTEST_RELEASE_K8S_CACHE:-/var/cache/pytest-release/k8s-testbed}"
out_dir="$cache_root/flagger-$version"

if [[ "${1:-}" == "--print-dir" ]]; then
  echo "$out_dir"
  exit 0
fi

missing() {
  [[ -x "$out_dir/flagger" ]] || return 0
  [[ -f "$out_dir/crds/crd.yaml" ]] || return 0
  return 1
}

mkdir -p "$cache_root"
exec 9>"$cache_root/.build-flagger.lock"
flock 9

if [[ "${FORCE:-0}" != "1" ]] && ! missing; then
  echo "$out_dir/flagger"
  exit 0
fi

command -v go >/dev/null || {
  echo "build-flagger: 'go' is not on PATH: install Go to build Flagger" >&2
  exit 2
}
export GOTOOLCHAIN=local CGO_ENABLED=0
jobs="${K8S_TESTBED_JOBS:-2}"
mkdir -p "$out_dir"
tmp="$(mktemp -d "$cache_root/.build-flagger.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT

if [[ "${FORCE:-0}" == "1" || ! -x "$out_dir/flagger" ]]; then
  echo "build-flagger: building flagger $version" >&2
  start=$SECONDS
  GOBIN="$tmp/bin" nice -n 10 go install -p "$jobs" -trimpath \
    -ldflags "-s -w -X github.com/fluxcd/flagger/pkg/version.VERSION=${version#v}" \
    "github.com/fluxcd/flagger/cmd/flagger@$version"
  mv "$tmp/bin/flagger" "$out_dir/flagger"
  echo "build-flagger: flagger built in $((SECONDS - start)) s" >&2
fi
src="$(go env GOMODCACHE)/github.com/fluxcd/flagger@$version"
[[ -f "$src/artifacts/flagger/crd.yaml" ]] || GOFLAGS=-mod=mod go mod download "github.com/fluxcd/flagger@$version"
mkdir -p "$tmp/crds"
cp "$src/artifacts/flagger/crd.yaml" "$tmp/crds/crd.yaml"
chmod 0644 "$tmp/crds/crd.yaml"
rm -rf "$out_dir/crds"
mv "$tmp/crds" "$out_dir/crds"
echo "$out_dir/flagger"
