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

from pytest_release.config.plain_tables import LedgerConfig
from pytest_release.errors import LedgerError
from pytest_release.ledger.lease import Lease, LeaseHolder, expired_leases
from pytest_release.ledger.stage_run import GateResult, StageResult
from pytest_release.system.atomic import write_text_atomic

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
    partial: str | None = None  # why the run selected less than the stage (-k, node ids...)
    shard: str | None = None  # "K/N" (--release-shard): a part of the stage, merged later
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
        shard: str | None = None,
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
            shard=shard,
            approval=approval,
            ci=dict(ci or {}),
        )

    def finish(
        self,
        outcome: StageResult,
        gates: Iterable[GateResult],
        message: str = "",
        details: Mapping[str, Any] | None = None,
        partial: str | None = None,
    ) -> LedgerEntry:
        return replace(
            self,
            outcome=outcome,
            finished=utc_now(),
            message=message,
            partial=partial or self.partial,
            gates={
                g.gate: {
                    "status": g.status,
                    "passed": g.passed,
                    "failed": g.failed,
                    "skipped": g.skipped,
                    "closed": g.closed,
                    "not_run": g.not_run,
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
        run holds it (two rollouts of one service must never overlap).  While held, the
        stage's lease (:mod:`pytest_release.ledger.lease`) is renewed, so a stage that dies
        without ending leaves an expired lease behind."""
        ...

    def abandoned(self) -> list[Lease]:
        """Expired leases of rollout stages that died without ending (not this
        process's own), oldest first."""
        ...

    def settle(self, lease: Lease) -> None:
        """Remove an abandoned ``lease`` once its rollout was reconciled."""
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
    runs: Runs = document["runs"]
    problems = [problem for i, run in enumerate(runs) if (problem := _entry_problem(i, run))]
    if problems:
        shown = problems[:5] + ([f"... and {len(problems) - 5} more"] if len(problems) > 5 else [])
        raise LedgerError(
            f"the ledger {location} has {len(problems)} malformed entr"
            f"{'y' if len(problems) == 1 else 'ies'}; it was left untouched:\n"
            + "\n".join(f"  {line}" for line in shown)
            + "\nRepair or remove these entries (each is a JSON object with at least "
            f"{', '.join(_REQUIRED)}), restore the ledger from a backup or CI artifact, or "
            "move it away to start a new ledger"
        )
    return list(runs)


# Keys every entry has, and the JSON types of the others this module reads (keys it does
# not know are kept as they are: a newer pytest-release may add some).
_REQUIRED = ("run_id", "release_id", "stage", "outcome", "started")
_JSON_TYPES: dict[str, tuple[type, ...]] = {
    **{key: (str,) for key in _REQUIRED},
    "image": (str, type(None)),
    "finished": (str, type(None)),
    "host": (str,),
    "pid": (int,),
    "report": (str, type(None)),
    "gates": (dict,),
    "override_requires": (str, type(None)),
    "only_gates": (list, type(None)),
    "shard": (str, type(None)),
    "approval": (dict, type(None)),
    "ci": (dict,),
    "message": (str,),
    "details": (dict,),
}
_TYPE_NAMES = {str: "a string", int: "a number", dict: "an object", list: "a list"}


def _entry_problem(index: int, run: object) -> str | None:
    """What is wrong with ``runs[index]``, or None."""
    if not isinstance(run, dict):
        return f"runs[{index}] = {_short(run)}: not an object"
    missing = [key for key in _REQUIRED if key not in run]
    if missing:
        return f"runs[{index}] = {_short(run)}: misses {', '.join(missing)}"
    for key, types in _JSON_TYPES.items():
        if key in run and (not isinstance(run[key], types) or isinstance(run[key], bool)):
            expected = " or ".join(_TYPE_NAMES.get(t, "null") for t in types)
            return f"runs[{index}].{key} = {_short(run[key])}: expected {expected}"
    if isinstance(run.get("gates"), dict) and not all(
        isinstance(g, dict) for g in run["gates"].values()
    ):
        return f"runs[{index}].gates = {_short(run['gates'])}: expected an object per gate"
    return None


def _short(value: object) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 80 else text[:77] + "..."


def render_document(runs: Runs) -> str:
    """The ledger as JSON, one run per line: readable and diffable, and written by the
    json module's C encoder (``indent`` would take its pure-Python one, whose cost grew
    with the ledger three times per stage: 8 ms at 44 runs)."""
    lines = ",\n".join(f"  {json.dumps(run)}" for run in runs)
    head = f'{{"format": {json.dumps(LEDGER_FORMAT)}, "version": {json.dumps(LEDGER_VERSION)}'
    return f'{head}, "runs": [\n{lines}\n]}}\n' if runs else f'{head}, "runs": []}}\n'


class FileLedgerStore:
    """The default backend: one JSON file, rewritten atomically under a file lock."""

    def __init__(self, path: Path, lock_timeout: float = 60.0, lease_ttl: float = 10.0) -> None:
        self.path = path
        self.location = str(path)
        self.lock_timeout = lock_timeout
        self._lock = FileLock(str(path) + ".lock", timeout=lock_timeout)
        # The leases of rollout stages (:mod:`pytest_release.ledger.lease`); ``lease_path`` is
        # this process's while it holds the rollout lock.
        self.lease_dir = path.with_name(path.name + ".leases")
        self.lease_ttl = lease_ttl
        self.lease_path: Path | None = None

    def read(self) -> Runs:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise LedgerError(
                f"cannot read the ledger {self.path}: {exc.strerror or exc}; point --ledger "
                "(ledger.path) at a readable JSON file, or fix its permissions"
            ) from None
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise LedgerError(
                f"the ledger {self.path} is corrupt (not UTF-8 text: byte 0x{data[exc.start]:02x} "
                f"at offset {exc.start}); it was left untouched. Restore it from a backup or CI "
                "artifact, or move it away to start a new ledger"
            ) from None
        return parse_document(text, self.location)

    def modify(self, change: Change) -> None:
        self._ensure_dir()
        try:
            with self._lock:
                write_text_atomic(self.path, render_document(change(self.read())))
        except Timeout:
            raise LedgerError(
                f"the ledger lock {self._lock.lock_file} was held by another process for more "
                f"than {self.lock_timeout:g}s (another stage writing the ledger {self.path}, "
                "or one that hangs); the ledger was left untouched. Wait for it and run again, "
                "or raise ledger.lock_timeout"
            ) from None
        except OSError as exc:
            raise LedgerError(
                f"cannot write the ledger {self.path}: {exc.strerror or exc} ({exc.filename}); "
                f"make {self.path.parent} writable, or point --ledger (ledger.path) at a "
                "writable place"
            ) from None

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
        except OSError as exc:
            raise LedgerError(
                f"cannot take the rollout lock {lock_path}: {exc.strerror or exc}; make "
                f"{self.path.parent} writable, or point --ledger (ledger.path) at a writable "
                "place"
            ) from None
        lease: LeaseHolder | None = None
        try:
            holder.write_text(owner, encoding="utf-8")
            lease = LeaseHolder(self.lease_dir, owner, self.lease_ttl).start()
            self.lease_path = lease.path
            yield
        finally:
            if lease is not None:
                lease.release()
            self.lease_path = None
            holder.unlink(missing_ok=True)
            lock.release()

    def abandoned(self) -> list[Lease]:
        """Leases of rollout stages that died without ending (expired, still there)."""
        own = str(self.lease_path) if self.lease_path is not None else None
        return [lease for lease in expired_leases(self.lease_dir) if lease.location != own]

    def settle(self, lease: Lease) -> None:
        Path(lease.location).unlink(missing_ok=True)

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
        return FileLedgerStore(path, lock_timeout=config.lock_timeout, lease_ttl=config.lease_ttl)
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
            e
            for e in self.for_release(release_id)
            if e.stage == stage and e.only_gates is None and e.partial is None and e.shard is None
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


@dataclass(frozen=True)
class Abandoned:
    """A rollout stage whose lease expired: its process died without ending the stage.
    ``entry`` is its ledger entry (still ``running``), if it wrote one."""

    lease: Lease
    entry: LedgerEntry | None

    def warning(self) -> str:
        what = (
            f"stage '{self.entry.stage}' of release {self.entry.release_id}"
            if self.entry is not None
            else "a rollout stage (no ledger entry)"
        )
        release = f" --release-id={self.entry.release_id}" if self.entry is not None else ""
        return (
            f"!! ABANDONED: {what} died without ending: {self.lease.describe()}.\n"
            "!! Its canary may still take traffic unjudged (unless a dead man's switch set "
            "100% stable when the lease expired: the local platform's supervisor, the "
            "Kubernetes watchdog). Run "
            f"`pytest --stage=rollback{release}` to reconcile (100% stable, orphan canary "
            f"removed, recorded rolled-back (abandoned)). Lease: {self.lease.location}"
        )

    def ended(self, entry: LedgerEntry, outcome: StageResult, message: str, by: str) -> LedgerEntry:
        """``entry`` (this rollout's ``running`` one) as ended now with ``outcome`` and
        ``message``, its details saying what the lease knew and who reconciled it (``by``)."""
        lease = self.lease
        abandoned = {
            "host": lease.host,
            "pid": lease.pid,
            "last_heartbeat": lease.renewed,
            "expired": lease.expires,
            "reconciled_by": by,
        }
        return replace(
            entry,
            outcome=outcome,
            finished=utc_now(),
            message=message,
            details={**entry.details, "abandoned": abandoned},
        )


def abandoned_rollouts(store: LedgerStore, entries: Iterable[LedgerEntry]) -> list[Abandoned]:
    """Expired leases of the ``store`` with the ``running`` entries of the processes that
    held them."""
    running = [e for e in entries if e.outcome == "running"]
    found = []
    for lease in store.abandoned():
        mine = [e for e in running if e.host == lease.host and e.pid == lease.pid]
        found.append(Abandoned(lease, mine[-1] if mine else None))
    return found


def format_status(
    entries: list[LedgerEntry], release_id: str, abandoned: Iterable[Abandoned] = ()
) -> str:
    """A table of the stage runs recorded for a release (``pytest --release-status``)."""
    abandoned = list(abandoned)
    warnings = [a.warning() for a in abandoned]
    dead_runs = {a.entry.run_id for a in abandoned if a.entry is not None}
    if not entries:
        return "\n".join([f"release {release_id}: no stage has run yet", *warnings])
    lines = [f"release {release_id}:"]
    header = f"  {'stage':<12} {'outcome':<12} {'started':<26} {'finished':<26} {'host':<16} gates"
    lines.append(header)
    for e in entries:
        gates = ", ".join(f"{name} {g.get('status')}" for name, g in e.gates.items())
        outcome: str = "ABANDONED" if e.run_id in dead_runs else e.outcome
        if e.details.get("abandoned"):
            outcome = f"{e.outcome} (abandoned)"
        line = (
            f"  {e.stage:<12} {outcome:<12} {e.started:<26} {e.finished or '-':<26} "
            f"{e.host[:16]:<16} {gates}"
        )
        if e.only_gates is not None:
            line += f"  [partial: {', '.join(e.only_gates)}]"
        if e.partial:
            line += f"  [partial run: {e.partial}]"
        if e.shard:
            line += f"  [shard {e.shard}]"
        if e.approval:
            line += f"  [approved via {e.approval.get('via')} by {e.approval.get('actor', '?')}]"
        if e.override_requires:
            line += f"  [requires overridden: {e.override_requires}]"
        if e.message:
            line += f"  ({e.message})"
        if isinstance(e.details.get("rollback"), str):
            line += f"  [rollback: {e.details['rollback']}]"
        lines.append(line)
    failure = unresolved_rollback_failure(entries)
    if failure is not None:
        lines.append(rollback_failure_warning(failure))
    return "\n".join(lines + warnings)


def unresolved_rollback_failure(entries: Iterable[LedgerEntry]) -> LedgerEntry | None:
    """The last run whose rollback failed, unless a later run of a stage passed (a
    rollback stage or a rollout that reached a known state), else None."""
    failure: LedgerEntry | None = None
    for entry in entries:
        if entry.outcome == "rollback-failed":
            failure = entry
        elif (
            failure is not None
            and entry.outcome in ("passed", "rolled-back")
            and not (entry.partial or entry.only_gates or entry.shard)
        ):
            failure = None
    return failure


def rollback_failure_warning(entry: LedgerEntry) -> str:
    return (
        f"!! ROLLBACK FAILED in stage '{entry.stage}' of release {entry.release_id} "
        f"(started {entry.started}): {entry.message or 'no reason recorded'}\n"
        "!! The service may still run the canary or an unknown version. Fix the cause, then "
        "run `pytest --stage=rollback` (or roll back by hand) before any other rollout."
    )
