#!/usr/bin/env bash
# Start a Docker daemon for the docker gate and its tests (this machine: no iptables,
# no bridge, vfs storage). Idempotent: does nothing when the socket already answers.
# The daemon outlives this script (setsid + nohup); its log is /tmp/dockerd.log. It says
# "started dockerd (pid N)" when it started one (the demo pipeline records that PID).
set -euo pipefail

SOCKET=/var/run/docker.sock
LOG=${DOCKERD_LOG:-/tmp/dockerd.log}
TIMEOUT=${DOCKERD_START_TIMEOUT:-60}

answers() {
  DOCKER_HOST="unix://$SOCKET" docker info >/dev/null 2>&1
}

if answers; then
  echo "start-docker: dockerd already answers on $SOCKET"
  exit 0
fi

if ! command -v dockerd >/dev/null 2>&1; then
  echo "start-docker: dockerd not found; install it with 'apt-get install -y docker.io'" \
    "(or run scripts/install-system-deps.sh)" >&2
  exit 1
fi

echo "start-docker: starting dockerd (log: $LOG)"
setsid nohup dockerd \
  --host="unix://$SOCKET" \
  --storage-driver=vfs \
  --iptables=false \
  --ip6tables=false \
  --bridge=none \
  >"$LOG" 2>&1 </dev/null &
pid=$! # setsid and nohup exec in place: this is dockerd's PID

for ((i = 0; i < TIMEOUT; i++)); do
  if answers; then
    echo "start-docker: started dockerd (pid $pid), ready after ${i}s"
    exit 0
  fi
  sleep 1
done

echo "start-docker: dockerd did not answer on $SOCKET within ${TIMEOUT}s; last lines of $LOG:" >&2
tail -n 30 "$LOG" >&2 || true
exit 1
