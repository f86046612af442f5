"""The ledger: a durable record of every stage run, per release.

File backend: one JSON document, rewritten atomically (temp file + fsync + rename)
under a file lock, so concurrent stage runs on one machine never lose an entry and a
crash never leaves half a file.  A file that is not valid JSON or not a ledger is an
error, never overwritten.
"""

from __future__ import annotations

import json
import os
import socket
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from filelock import FileLock, Timeout

from pytest_release.atomic import write_text_atomic
from pytest_release.config import LedgerConfig
from pytest_release.errors import LedgerError
from pytest_release.stage import GateResult, StageResult

LEDGER_FORMAT = "pytest-release/ledger"
LEDGER_VERSION = 1


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class LedgerEntry:
    run_id: str
    release_id: str
    stage: str
    outcome: StageResult
    started: str
    image: str | None = None
    finished: str | None = None
    host: str = field(default_factory=socket.gethostname)
    pid: int = field(default_factory=os.getpid)
    report: str | None = None
    gates: dict[str, dict[str, Any]] = field(default_factory=dict)
    override_requires: str | None = None
    only_gates: list[str] | None = None  # a partial run (--gate) satisfies no requires
    approval: dict[str, str] | None = None  # --approved-via: through what, who, which run
    ci: dict[str, str] = field(default_factory=dict)  # CI run context (GitHub Actions)
    message: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def start(
        cls,
        *,
        release_id: str,
        stage: str,
        image: str | None,
        report: str | None,
        override_requires: str | None,
        only_gates: list[str] | None = None,
        approval: dict[str, str] | None = None,
        ci: dict[str, str] | None = None,
    ) -> LedgerEntry:
        return cls(
            run_id=uuid.uuid4().hex,
            release_id=release_id,
            stage=stage,
            outcome="running",
            started=utc_now(),
            image=image,
            report=report,
            override_requires=override_requires,
            only_gates=only_gates,
            approval=approval,
            ci=dict(ci or {}),
        )

    def finish(
        self,
        outcome: StageResult,
        gates: Iterable[GateResult],
        message: str = "",
        details: Mapping[str, Any] | None = None,
    ) -> LedgerEntry:
        return replace(
            self,
            outcome=outcome,
            finished=utc_now(),
            message=message,
            gates={
                g.gate: {
                    "status": g.status,
                    "passed": g.passed,
                    "failed": g.failed,
                    "skipped": g.skipped,
                    "closed": g.closed,
                    "xfailed": g.xfailed,
                    "duration": round(g.duration, 3),
                }
                for g in gates
            },
            details={**self.details, **(details or {})},
        )

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> LedgerEntry:
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})


Runs = list[dict[str, Any]]
Change = Callable[[Runs], Runs]


class LedgerStore(Protocol):
    """Where the ledger document lives.  ``modify`` must be atomic with respect to other
    writers (file lock + rename, or optimistic concurrency on a ConfigMap)."""

    location: str

    def read(self) -> Runs: ...

    def modify(self, change: Change) -> None: ...

    def rollout_lock(self, owner: str) -> AbstractContextManager[None]:
        """Held for a whole rollout stage; raises :class:`LedgerError` when another
        run holds it (two rollouts of one service must never overlap)."""
        ...


def parse_document(text: str, location: str) -> Runs:
    """The runs of a ledger document; a clear :class:`LedgerError` for anything else."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise LedgerError(
            f"the ledger {location} is corrupt (not valid JSON: {exc}); it was left "
            "untouched. Restore it from a backup or CI artifact, or move it away to "
            "start a new ledger"
        ) from None
    if (
        not isinstance(document, dict)
        or document.get("format") != LEDGER_FORMAT
        or not isinstance(document.get("runs"), list)
    ):
        raise LedgerError(
            f"{location} is not a pytest-release ledger (expected a JSON object with "
            f'"format": "{LEDGER_FORMAT}"); it was left untouched. Point --ledger at '
            "another path or move the file away"
        )
    if document.get("version") != LEDGER_VERSION:
        raise LedgerError(
            f"the ledger {location} has version {document.get('version')!r}; this "
            f"pytest-release reads version {LEDGER_VERSION}. Upgrade pytest-release"
        )
    return list(document["runs"])


def render_document(runs: Runs) -> str:
    document = {"format": LEDGER_FORMAT, "version": LEDGER_VERSION, "runs": runs}
    return json.dumps(document, indent=2) + "\n"


class FileLedgerStore:
    """The default backend: one JSON file, rewritten atomically under a file lock."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.location = str(path)
        self._lock = FileLock(str(path) + ".lock", timeout=60)

    def read(self) -> Runs:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise LedgerError(f"cannot read the ledger {self.path}: {exc}") from None
        return parse_document(text, self.location)

    def modify(self, change: Change) -> None:
        self._ensure_dir()
        with self._lock:
            write_text_atomic(self.path, render_document(change(self.read())))

    @contextmanager
    def rollout_lock(self, owner: str) -> Iterator[None]:
        self._ensure_dir()
        lock_path = self.path.with_name(self.path.name + ".rollout.lock")
        holder = self.path.with_name(self.path.name + ".rollout.owner")
        lock = FileLock(str(lock_path), timeout=0)
        try:
            lock.acquire()
        except Timeout:
            current = holder.read_text(encoding="utf-8") if holder.exists() else "unknown"
            raise LedgerError(
                f"another rollout holds the lock ({current}); wait for it to finish. "
                f"Lock file: {lock_path}"
            ) from None
        try:
            holder.write_text(owner, encoding="utf-8")
            yield
        finally:
            holder.unlink(missing_ok=True)
            lock.release()

    def _ensure_dir(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise LedgerError(
                f"cannot create the ledger directory {self.path.parent}: {exc}"
            ) from None


def open_store(config: LedgerConfig, path: Path, rootdir: Path, hook: Any) -> LedgerStore:
    """The store of ``[tool.pytest-release.ledger]``: the file ``path``, or the store a
    plugin offers for ``backend`` through ``pytest_release_ledger_store`` (the Kubernetes
    platform offers ``kubernetes``), so the spine imports no platform."""
    if config.backend == "file":
        return FileLedgerStore(path)
    store: LedgerStore | None = hook.pytest_release_ledger_store(
        ledger=config, path=path, rootdir=rootdir
    )
    if store is None:
        raise LedgerError(
            f"ledger.backend = {config.backend!r}: no plugin provides this ledger backend; "
            "use backend = 'file', or install the plugin that provides it"
        )
    return store


class Ledger:
    """Queries and updates over a :class:`LedgerStore`."""

    def __init__(self, store: LedgerStore | Path) -> None:
        self.store: LedgerStore = FileLedgerStore(store) if isinstance(store, Path) else store

    @property
    def location(self) -> str:
        return self.store.location

    # -- reading ----------------------------------------------------------------------
    def entries(self) -> list[LedgerEntry]:
        return [LedgerEntry.from_json(e) for e in self.store.read()]

    def for_release(self, release_id: str) -> list[LedgerEntry]:
        return [e for e in self.entries() if e.release_id == release_id]

    def latest(self, release_id: str, stage: str) -> LedgerEntry | None:
        runs = [
            e for e in self.for_release(release_id) if e.stage == stage and e.only_gates is None
        ]
        return runs[-1] if runs else None

    def unmet_requirements(
        self, release_id: str, requires: Iterable[str]
    ) -> list[tuple[str, LedgerEntry | None]]:
        """Required stages whose latest run for ``release_id`` did not pass."""
        unmet = []
        for stage in requires:
            latest = self.latest(release_id, stage)
            if latest is None or latest.outcome != "passed":
                unmet.append((stage, latest))
        return unmet

    # -- writing ----------------------------------------------------------------------
    def append(self, entry: LedgerEntry) -> None:
        self.store.modify(lambda runs: [*runs, entry.to_json()])

    def update(self, entry: LedgerEntry) -> None:
        def change(runs: Runs) -> Runs:
            for position, run in enumerate(runs):
                if run.get("run_id") == entry.run_id:
                    runs[position] = entry.to_json()
                    return runs
            return [*runs, entry.to_json()]

        self.store.modify(change)


def format_status(entries: list[LedgerEntry], release_id: str) -> str:
    """A table of the stage runs recorded for a release (``pytest --release-status``)."""
    if not entries:
        return f"release {release_id}: no stage has run yet"
    lines = [f"release {release_id}:"]
    header = f"  {'stage':<12} {'outcome':<12} {'started':<26} {'finished':<26} {'host':<16} gates"
    lines.append(header)
    for e in entries:
        gates = ", ".join(f"{name} {g.get('status')}" for name, g in e.gates.items())
        line = (
            f"  {e.stage:<12} {e.outcome:<12} {e.started:<26} {e.finished or '-':<26} "
            f"{e.host[:16]:<16} {gates}"
        )
        if e.only_gates is not None:
            line += f"  [partial: {', '.join(e.only_gates)}]"
        if e.approval:
            line += f"  [approved via {e.approval.get('via')} by {e.approval.get('actor', '?')}]"
        if e.override_requires:
            line += f"  [requires overridden: {e.override_requires}]"
        if e.message:
            line += f"  ({e.message})"
        lines.append(line)
    return "\n".join(lines)
