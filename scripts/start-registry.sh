#!/usr/bin/env bash
# A local image registry on 127.0.0.1 (Debian's docker-registry), for the build stage
# of the demo pipeline. Idempotent: does nothing when a registry already answers on the
# port; refuses when something else does (it would receive the release images).
# Usage: start-registry.sh [PORT] ; prints the registry address on stdout and what it
# found or started on stderr.
set -euo pipefail
port=${1:-${REGISTRY_PORT:-5000}}
state=${REGISTRY_DIR:-/var/lib/pytest-release/registry-$port}
# A registry speaks the Docker Registry HTTP API V2: /v2/ answers 200 (or 401 when it
# wants a login) with the header Docker-Distribution-API-Version: registry/2.0.
is_registry() {
  curl -sS -o /dev/null -D - --max-time 5 "http://127.0.0.1:$port/v2/" 2>/dev/null |
    tr -d '\r' | grep -qi '^docker-distribution-api-version: *registry/2'
}
answers() {
  curl -sS -o /dev/null --max-time 5 "http://127.0.0.1:$port/" >/dev/null 2>&1 ||
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null
}
if is_registry; then
  echo "127.0.0.1:$port"
  echo "reusing the registry that already answers on 127.0.0.1:$port (its /v2/ API says registry/2.0)" >&2
  exit 0
fi
if answers; then
  echo "127.0.0.1:$port is taken by something that is not a registry (its /v2/ has no Docker-Distribution-API-Version: registry/2.0 header): stop it, or give another port" >&2
  exit 1
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
  if is_registry; then
    echo "127.0.0.1:$port"
    echo "started docker-registry on 127.0.0.1:$port (pid $(cat "$state/registry.pid"), data in $state)" >&2
    exit 0
  fi
  sleep 0.1
done
echo "the registry did not start on 127.0.0.1:$port; see $state/registry.log" >&2
exit 1
