"""A rollout stage's lease in the cluster: the Kubernetes form of
:mod:`pytest_release.ledger.lease`.

The rollout lock (the Lease ``pytest-release-rollout-<application>``) says whether a
rollout runs *now*; the next run takes it over once it expired, and with that the trace
of a stage that died would be gone.  So each rollout stage also holds a Lease of its own,
``<lock>-stage-<token>``, labelled ``pytest-release/stage-lease=true``, with who took it
in its annotations (owner, host, pid, started, the time to live ``ledger.lease_ttl``).
A daemon thread renews its ``spec.renewTime`` every quarter of that time to live and the
stage deletes it when it ends, so a stage Lease that is still there after it expired
belongs to a stage that died without running its handlers (SIGKILL, the OOM killer, a
lost runner): an *abandoned* rollout.  ``--release-status`` shows it, every other stage
refuses, and ``pytest --stage=rollback`` reconciles it and deletes the Lease; the
watchdog (:mod:`pytest_release.canary.platforms.kubernetes.watchdog`) watches the same
Leases.
"""

from __future__ import annotations

import math
import os
import socket
import threading
import time
import uuid
from datetime import UTC, datetime

from pytest_release.canary.platforms.kubernetes.client import JSON, LEASES, KubeApi, KubeApiError
from pytest_release.ledger.lease import Lease

STAGE_LEASE_LABEL = "pytest-release/stage-lease"
ANNOTATION = "pytest-release/"  # prefix of owner, host, pid, started, ttl, lock


def micro_time(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(value: object) -> float | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def location(namespace: str, name: str) -> str:
    return f"Lease {namespace}/{name} (Kubernetes)"


def name_in(lease: Lease, namespace: str) -> str | None:
    """The Lease name of a ``lease`` this namespace's store read, else None."""
    prefix, suffix = f"Lease {namespace}/", " (Kubernetes)"
    if not (lease.location.startswith(prefix) and lease.location.endswith(suffix)):
        return None
    return lease.location[len(prefix) : -len(suffix)]


def read_stage_lease(obj: JSON, namespace: str) -> Lease | None:
    """The :class:`Lease` a stage Lease object holds; None for a foreign or torn one."""
    metadata = obj.get("metadata") or {}
    notes = metadata.get("annotations") or {}
    spec = obj.get("spec") or {}
    renewed = parse_time(spec.get("renewTime")) or parse_time(spec.get("acquireTime"))
    try:
        ttl = float(notes.get(ANNOTATION + "ttl") or spec["leaseDurationSeconds"])
        pid = int(notes[ANNOTATION + "pid"])
    except (KeyError, TypeError, ValueError):
        return None
    if renewed is None or not metadata.get("name"):
        return None
    return Lease(
        location=location(namespace, str(metadata["name"])),
        owner=str(notes.get(ANNOTATION + "owner") or spec.get("holderIdentity") or "?"),
        host=str(notes.get(ANNOTATION + "host") or "?"),
        pid=pid,
        started=str(notes.get(ANNOTATION + "started") or spec.get("acquireTime") or "?"),
        renewed=renewed,
        ttl=ttl,
    )


def stage_leases(api: KubeApi, namespace: str, lock: str) -> list[tuple[Lease, str]]:
    """Every stage Lease of the rollout lock ``lock``, with its holder identity."""
    found = []
    for obj in api.list(LEASES, namespace, f"{STAGE_LEASE_LABEL}=true"):
        notes = (obj.get("metadata") or {}).get("annotations") or {}
        if notes.get(ANNOTATION + "lock") != lock:
            continue
        lease = read_stage_lease(obj, namespace)
        if lease is not None:
            found.append((lease, str((obj.get("spec") or {}).get("holderIdentity") or "")))
    return sorted(found, key=lambda pair: pair[0].renewed)


class StageLeaseHolder:
    """Creates a stage Lease and renews it from a daemon thread until :meth:`release`."""

    def __init__(
        self, api: KubeApi, namespace: str, lock: str, identity: str, owner: str, ttl: float
    ) -> None:
        self.api = api
        self.namespace = namespace
        self.lock = lock
        self.identity = identity
        self.owner = owner
        self.ttl = ttl
        self.name = f"{lock}-stage-{uuid.uuid4().hex[:8]}"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def location(self) -> str:
        return location(self.namespace, self.name)

    def _body(self) -> JSON:
        now = micro_time(time.time())
        return {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {
                "name": self.name,
                "namespace": self.namespace,
                "labels": {
                    "app.kubernetes.io/managed-by": "pytest-release",
                    STAGE_LEASE_LABEL: "true",
                },
                "annotations": {
                    ANNOTATION + "lock": self.lock,
                    ANNOTATION + "owner": self.owner,
                    ANNOTATION + "host": socket.gethostname(),
                    ANNOTATION + "pid": str(os.getpid()),
                    ANNOTATION + "started": datetime.now(UTC).isoformat(timespec="seconds"),
                    ANNOTATION + "ttl": repr(self.ttl),
                },
            },
            "spec": {
                "holderIdentity": self.identity,
                # Whole seconds for other readers; pytest-release reads the ttl annotation.
                "leaseDurationSeconds": max(1, math.ceil(self.ttl)),
                "acquireTime": now,
                "renewTime": now,
            },
        }

    def start(self) -> StageLeaseHolder:
        self.api.create(LEASES, self.namespace, self._body())
        self._thread = threading.Thread(target=self._renew, name="pytest-release-stage-lease")
        self._thread.daemon = True
        self._thread.start()
        return self

    def _renew(self) -> None:
        # A quarter of the time to live: three renewals can be late before it expires.
        while not self._stop.wait(max(0.2, self.ttl / 4)):
            try:
                self.api.merge_patch(
                    LEASES,
                    self.namespace,
                    self.name,
                    {"spec": {"renewTime": micro_time(time.time())}},
                )
            except KubeApiError:
                continue  # unreachable for now: the lease expires, loudly, if it stays so

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        try:
            self.api.delete(LEASES, self.namespace, self.name)
        except KubeApiError:
            # Unreachable: the Lease expires and reads as abandoned, which errs on the
            # side of a rollback (an untrue "all clear" would be worse).
            return
