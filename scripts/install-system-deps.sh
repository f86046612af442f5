#!/usr/bin/env bash
# System packages the gates and their tests use (Debian). Idempotent; skips what is there.
set -euo pipefail
need=()
command -v git >/dev/null || need+=(git)
if ((${#need[@]})); then
  apt-get update -q
  apt-get install -y -q "${need[@]}"
fi
