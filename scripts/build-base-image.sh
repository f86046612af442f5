#!/usr/bin/env bash
# Build the local base image local/python:bookworm (Debian bookworm minbase + python3)
# without a registry: debootstrap a root filesystem and `docker import` it.
# Idempotent: skips when the image exists (FORCE=1 rebuilds it).
# Needs a running daemon (scripts/start-docker.sh).
set -euo pipefail

IMAGE=${BASE_IMAGE:-local/python:bookworm}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

if [[ "${FORCE:-0}" != 1 ]] && docker image inspect "$IMAGE" >/dev/null 2>&1; then
  echo "build-base-image: $IMAGE already exists"
  exit 0
fi

for cmd in docker debootstrap; do
  if ! command -v "$cmd" >/dev/null 2>&1; then
    echo "build-base-image: $cmd not found; run scripts/install-system-deps.sh" >&2
    exit 1
  fi
done
if ! docker info >/dev/null 2>&1; then
  echo "build-base-image: the Docker daemon does not answer; run scripts/start-docker.sh" >&2
  exit 1
fi

ROOTFS=$(mktemp -d /tmp/pytest-release-rootfs.XXXXXX)
trap 'rm -rf "$ROOTFS"' EXIT

echo "build-base-image: debootstrap bookworm into $ROOTFS (about a minute)"
debootstrap --variant=minbase --include=python3 bookworm "$ROOTFS" "$MIRROR" >/tmp/debootstrap.log 2>&1 || {
  echo "build-base-image: debootstrap failed; last lines of /tmp/debootstrap.log:" >&2
  tail -n 30 /tmp/debootstrap.log >&2
  exit 1
}
# Keep the image small (vfs copies every file for each layer and container): package
# caches, lists, documentation and translations are not needed at run time.
rm -rf "$ROOTFS"/var/cache/apt/archives/*.deb "$ROOTFS"/var/lib/apt/lists/* \
  "$ROOTFS"/usr/share/doc/* "$ROOTFS"/usr/share/man/* "$ROOTFS"/usr/share/info/* \
  "$ROOTFS"/usr/share/locale/*
# mktemp -d made the directory 0700; it becomes the image's "/", which non-root
# container users must be able to traverse.
chmod 0755 "$ROOTFS"

tar -C "$ROOTFS" -c . | docker import -c 'CMD ["python3"]' - "$IMAGE" >/dev/null
echo "build-base-image: imported $IMAGE"
