"""A rollout stage's lease: a file its process renews while it runs.

The rollout lock (an ``flock``) says whether a rollout runs *now*; it vanishes with the
process, whatever killed it.  The lease stays: ``<ledger>.leases/<host>-<pid>-<token>.json``
holds who took it (host, pid, when) and when it was last renewed.  A daemon thread of
the stage renews it every quarter of its time to live and the stage removes it when it
ends, so a lease that is still there after it expired belongs to a stage that died
without running its handlers (SIGKILL, the OOM killer, a lost runner, a reboot): an
*abandoned* rollout, whose canary may still take traffic unjudged.  The local platform's
replica supervisor watches it too (its dead man's switch, docs/outcomes.md).

The file format is plain JSON so the supervisor (standard library only) reads it::

    {"format": "pytest-release/lease", "owner": "...", "host": "...", "pid": 123,
     "started": "2026-12-06T21:00:00+00:00", "renewed": 1796590800.5, "ttl": 10.0}
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from pytest_release.system.atomic import write_text_atomic

LEASE_FORMAT = "pytest-release/lease"


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class Lease:
    """A stage's lease as its backend stores it: ``location`` says where (a lease file,
    or a Kubernetes Lease object), for the messages and for the store to remove it."""

    location: str
    owner: str
    host: str
    pid: int
    started: str
    renewed: float  # epoch seconds of the last renewal
    ttl: float

    @property
    def expires(self) -> float:
        return self.renewed + self.ttl

    def expired(self, now: float | None = None) -> bool:
        return (time.time() if now is None else now) > self.expires

    def describe(self) -> str:
        return (
            f"{self.owner} (host {self.host}, pid {self.pid}, started {self.started}); its "
            f"last heartbeat was {_iso(self.renewed)}, the lease expired {_iso(self.expires)}"
        )


def read_lease(path: Path) -> Lease | None:
    """The lease in ``path``; None when there is none (or it is not a lease file)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None  # written atomically: a missing or foreign file, not a torn one
    if not isinstance(data, dict) or data.get("format") != LEASE_FORMAT:
        return None
    try:
        return Lease(
            location=str(path),
            owner=str(data["owner"]),
            host=str(data["host"]),
            pid=int(data["pid"]),
            started=str(data["started"]),
            renewed=float(data["renewed"]),
            ttl=float(data["ttl"]),
        )
    except (KeyError, TypeError, ValueError):
        return None


def expired_leases(directory: Path, now: float | None = None) -> list[Lease]:
    """Every expired lease under ``directory``, oldest first."""
    if not directory.is_dir():
        return []
    leases = [read_lease(path) for path in sorted(directory.glob("*.json"))]
    return sorted(
        (lease for lease in leases if lease is not None and lease.expired(now)),
        key=lambda lease: lease.renewed,
    )


class LeaseHolder:
    """Writes a lease and renews it from a daemon thread until :meth:`release`."""

    def __init__(self, directory: Path, owner: str, ttl: float) -> None:
        self.host = socket.gethostname()
        self.pid = os.getpid()
        # A token too: a later process with a reused pid must not overwrite a dead one's.
        self.path = directory / f"{self.host}-{self.pid}-{uuid.uuid4().hex[:8]}.json"
        self.owner = owner
        self.ttl = ttl
        self.started = datetime.now(UTC).isoformat(timespec="seconds")
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _write(self) -> None:
        document = {
            "format": LEASE_FORMAT,
            "owner": self.owner,
            "host": self.host,
            "pid": self.pid,
            "started": self.started,
            "renewed": time.time(),
            "ttl": self.ttl,
        }
        write_text_atomic(self.path, json.dumps(document))

    def _renew(self) -> None:
        # A quarter of the time to live: three renewals can be late before it expires.
        while not self._stop.wait(max(0.2, self.ttl / 4)):
            try:
                self._write()
            except OSError:
                continue  # a full or read-only disk: the lease expires, loudly, later

    def start(self) -> LeaseHolder:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._write()
        self._thread = threading.Thread(target=self._renew, name="pytest-release-lease")
        self._thread.daemon = True
        self._thread.start()
        return self

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        self.path.unlink(missing_ok=True)
