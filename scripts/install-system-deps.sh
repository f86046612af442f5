#!/usr/bin/env bash
# System packages the gates and their tests use (Debian 12). Idempotent: installs only
# what is missing, so a warm machine spends no time here.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
declare -A want=(
  [git]=git
  [haproxy]=haproxy          # canary traffic router (HAProxy runtime API)
  [dockerd]=docker.io        # docker gate, local platform containers
  [debootstrap]=debootstrap  # local base image without a registry
  [chromium]=chromium        # e2e gate (pytest-playwright with Debian's Chromium)
  [node]=nodejs
  [npm]=npm                  # newman
  [docker-registry]=docker-registry  # local registry for the build stage
  [curl]=curl
  [shellcheck]=shellcheck    # actionlint checks the workflow's run: scripts with it
)
missing=()
for cmd in "${!want[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${want[$cmd]}")
done
if ((${#missing[@]})); then
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
