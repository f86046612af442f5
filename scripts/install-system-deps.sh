#!/usr/bin/env bash
# System packages the gates and their tests use (Debian 12). Idempotent: installs only
# what is missing, so a warm machine spends no time here.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
declare -A want=(
  [git]=git
  [haproxy]=haproxy          # canary traffic router (HAProxy runtime API)
  [prometheus]=prometheus    # the judge's Prometheus evidence (tests start a real one)
  [prometheus-alertmanager]=prometheus-alertmanager  # the judge's alert trigger
  [dockerd]=docker.io        # docker gate, local platform containers
  [debootstrap]=debootstrap  # local base image without a registry
  [chromium]=chromium        # e2e gate (pytest-playwright with Debian's Chromium)
  [node]=nodejs
  [npm]=npm                  # newman
  [docker-registry]=docker-registry  # local registry for the build stage
  [curl]=curl
  [shellcheck]=shellcheck    # actionlint checks the workflow's run: scripts with it
  [valgrind]=valgrind        # benchmarks/overhead.py --instructions (cachegrind counts)
  # The real one-node Kubernetes cluster (tests/kubernetes_node): its own containerd with the
  # CRI plugin and runc, CNI bridge/host-local/loopback plugins, a network namespace with a
  # bridge (ip), per-cluster certificates (openssl), a static pause binary (gcc + libc.a).
  [containerd]=containerd
  [runc]=runc
  [/usr/lib/cni/bridge]=containernetworking-plugins
  [iptables]=iptables
  [nft]=nftables
  [ip]=iproute2
  [openssl]=openssl
  [gcc]=gcc
  [/usr/lib/x86_64-linux-gnu/libc.a]=libc6-dev
  [flock]=util-linux
)
missing=()
for probe in "${!want[@]}"; do
  if [[ "$probe" == /* ]]; then
    [[ -e "$probe" ]] || missing+=("${want[$probe]}")
  else
    command -v "$probe" >/dev/null 2>&1 || missing+=("${want[$probe]}")
  fi
done
if ((${#missing[@]})); then
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
