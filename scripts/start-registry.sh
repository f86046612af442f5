#!/usr/bin/env bash
# A local image registry on 127.0.0.1 (Debian's docker-registry), for the build stage
# of the demo pipeline. Idempotent: does nothing when one already answers on the port.
# Usage: start-registry.sh [PORT] ; prints the registry address.
set -euo pipefail
port=${1:-${REGISTRY_PORT:-5000}}
state=${REGISTRY_DIR:-/var/lib/pytest-release/registry-$port}
if curl -fsS "http://127.0.0.1:$port/v2/" >/dev/null 2>&1; then
  echo "127.0.0.1:$port"
  exit 0
fi
command -v docker-registry >/dev/null || {
  echo "docker-registry is not installed: apt-get install -y docker-registry" >&2
  exit 1
}
mkdir -p "$state/data"
cat > "$state/config.yml" <<YAML
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $state/data
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
YAML
setsid nohup docker-registry serve "$state/config.yml" >"$state/registry.log" 2>&1 < /dev/null &
echo $! > "$state/registry.pid"
for _ in $(seq 1 100); do
  if curl -fsS "http://127.0.0.1:$port/v2/" >/dev/null 2>&1; then
    echo "127.0.0.1:$port"
    exit 0
  fi
  sleep 0.1
done
echo "the registry did not start on 127.0.0.1:$port; see $state/registry.log" >&2
exit 1
