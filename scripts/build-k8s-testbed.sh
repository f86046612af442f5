#!/usr/bin/env bash
# Build the binaries of the test clusters from Go modules: kube-apiserver,
# kube-controller-manager, kube-scheduler, kubectl, kubelet and etcd from the wrapper module
# tools/k8s-testbed, kwok/kwokctl with `go install` (the kwok cluster, tests/kubernetes), and
# Traefik with scripts/build-traefik.sh (the real one-node cluster, tests/kubernetes_node).
# No release downloads: only the Go module proxy. Binaries are cached outside the repository, keyed by version, and built only
# when missing (a cold build takes 20-40 min on 2 cores; a warm run takes a second).
#
#   scripts/build-k8s-testbed.sh              build what is missing, print the binary dir
#                                             (last line of stdout; Traefik's directory is
#                                             `scripts/build-traefik.sh --print-dir`)
#   scripts/build-k8s-testbed.sh --print-dir  print the binary dir, build nothing
#
# Environment: PYTEST_RELEASE_K8S_CACHE (default /var/cache/pytest-release/k8s-testbed),
# K8S_TESTBED_JOBS (parallel compile jobs, default 2), FORCE=1 to rebuild.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
module="$repo/tools/k8s-testbed"
kwok_version="v0.8.0"

k8s_version="$(awk '$1 == "k8s.io/kubernetes" {print $2; exit}' "$module/go.mod")"
etcd_version="$(awk '$1 == "go.etcd.io/etcd/server/v3" {print $2; exit}' "$module/go.mod")"
[[ -n "$k8s_version" && -n "$etcd_version" ]] || {
  echo "build-k8s-testbed: cannot read the k8s.io/kubernetes and etcd versions from $module/go.mod" >&2
  exit 2
}
cache_root="${PYTEST_RELEASE_K8S_CACHE:-/var/cache/pytest-release/k8s-testbed}"
bin_dir="$cache_root/kubernetes-$k8s_version-etcd-$etcd_version-kwok-$kwok_version"

if [[ "${1:-}" == "--print-dir" ]]; then
  echo "$bin_dir"
  exit 0
fi

k8s_bins=(kube-apiserver kube-controller-manager kube-scheduler kubectl kubelet)
all_bins=("${k8s_bins[@]}" etcd kwok kwokctl)
missing() {
  local b
  for b in "${all_bins[@]}"; do [[ -x "$bin_dir/$b" ]] || return 0; done
  return 1
}

mkdir -p "$cache_root"
# One build at a time (CI and xdist workers may call this together).
exec 9>"$cache_root/.build.lock"
flock 9

traefik() {
  # Its own lock and cache directory; warm, it returns at once. Its directory goes to stderr
  # so that the binary dir stays the last line of stdout.
  bash "$repo/scripts/build-traefik.sh" >&2
}

if [[ "${FORCE:-0}" != "1" ]] && ! missing; then
  flock -u 9
  traefik
  echo "$bin_dir"
  exit 0
fi

command -v go >/dev/null || {
  echo "build-k8s-testbed: 'go' (>= 1.26) is not on PATH: install Go to build the test cluster" >&2
  exit 2
}
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=readonly
jobs="${K8S_TESTBED_JOBS:-2}"
mkdir -p "$bin_dir"
tmp="$(mktemp -d "$cache_root/.build.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT

minor="${k8s_version#v1.}"
minor="${minor%%.*}"
build_date="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
version_flags=""
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  version_flags+=" -X $pkg.gitVersion=$k8s_version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
  version_flags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=$build_date"
done

cd "$module"
for b in "${k8s_bins[@]}"; do
  if [[ "${FORCE:-0}" == "1" || ! -x "$bin_dir/$b" ]]; then
    echo "build-k8s-testbed: building $b $k8s_version" >&2
    nice -n 10 go build -p "$jobs" -trimpath -ldflags "-s -w$version_flags" \
      -o "$tmp/$b" "k8s.io/kubernetes/cmd/$b"
    mv "$tmp/$b" "$bin_dir/$b"
  fi
done
if [[ "${FORCE:-0}" == "1" || ! -x "$bin_dir/etcd" ]]; then
  echo "build-k8s-testbed: building etcd $etcd_version" >&2
  nice -n 10 go build -p "$jobs" -trimpath -ldflags "-s -w" -o "$tmp/etcd" go.etcd.io/etcd/server/v3
  mv "$tmp/etcd" "$bin_dir/etcd"
fi
if [[ "${FORCE:-0}" == "1" || ! -x "$bin_dir/kwok" || ! -x "$bin_dir/kwokctl" ]]; then
  echo "build-k8s-testbed: installing kwok and kwokctl $kwok_version" >&2
  (
    cd "$tmp"
    GOBIN="$tmp" GOFLAGS= nice -n 10 go install -p "$jobs" -trimpath -ldflags "-s -w" \
      "sigs.k8s.io/kwok/cmd/kwok@$kwok_version" "sigs.k8s.io/kwok/cmd/kwokctl@$kwok_version"
  )
  mv "$tmp/kwok" "$tmp/kwokctl" "$bin_dir/"
fi
"$bin_dir/kube-apiserver" --version >&2
# Not `| head -1`: under pipefail, head closing the pipe kills etcd with SIGPIPE and fails the build.
etcd_version_line="$("$bin_dir/etcd" --version)"
echo "${etcd_version_line%%$'\n'*}" >&2
"$bin_dir/kwokctl" --version >&2
"$bin_dir/kubelet" --version >&2
flock -u 9
traefik
echo "$bin_dir"
