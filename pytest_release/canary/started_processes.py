"""Processes started for a project outside any stage, recorded so the teardown ends
exactly them.

The demo pipeline (``scripts/pipeline.py``) starts what its stages need when it is not
running yet: a Docker daemon (with the containerd it spawns) and an image registry.  It
records each one it started, by PID and start time, in
``<rootdir>/.pytest-release/started.json``; a daemon that was already running is not
recorded, so ``python -m pytest_release.canary.teardown`` leaves it alone.  The start
time makes the record safe against PID reuse: a PID that now belongs to another process
is never signalled.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_release.system.atomic import read_json, write_json_atomic
from pytest_release.system.processes import ProcessRef, terminate

__all__ = [
    "STARTED_FILE",
    "StartedProcess",
    "children_named",
    "record_started",
    "started_processes",
    "stop_started",
]

STARTED_FILE = ".pytest-release/started.json"


@dataclass(frozen=True)
class StartedProcess:
    """One process a set-up started: ``name`` (``registry``, ``dockerd``), what it is for
    the reader (``docker-registry on 127.0.0.1:5000``), and how long it may take to stop
    after SIGTERM before it is killed (dockerd stops its containers first)."""

    name: str
    what: str
    ref: ProcessRef
    stop_timeout: float = 10.0

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "what": self.what,
            **self.ref.to_json(),
            "stop_timeout": self.stop_timeout,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> StartedProcess:
        return cls(
            str(data["name"]),
            str(data.get("what", data["name"])),
            ProcessRef.from_json(data),
            float(data.get("stop_timeout", 10.0)),
        )


def _path(rootdir: Path) -> Path:
    return rootdir / STARTED_FILE


def started_processes(rootdir: Path) -> list[StartedProcess]:
    """The recorded processes that still run, in the order they were started."""
    data = read_json(_path(rootdir)) or {}
    found = [StartedProcess.from_json(entry) for entry in data.get("processes", [])]
    return [process for process in found if process.ref.alive()]


def record_started(rootdir: Path, process: StartedProcess) -> None:
    """Add ``process`` to the record (entries whose process ended are dropped)."""
    kept = [p for p in started_processes(rootdir) if p.ref != process.ref]
    write_json_atomic(_path(rootdir), {"processes": [p.to_json() for p in [*kept, process]]})


def stop_started(rootdir: Path) -> list[str]:
    """End every recorded process that still runs, the last started first (the registry
    before the Docker daemon, the daemon before its containerd), and remove the record;
    one line per process."""
    done = []
    for process in reversed(started_processes(rootdir)):
        ended = terminate(process.ref, timeout=process.stop_timeout)
        state = "ended" if ended else "had already ended"
        done.append(f"{process.name}: {state} {process.what} (pid {process.ref.pid})")
    _path(rootdir).unlink(missing_ok=True)
    return done


def children_named(parent: int, name: str) -> list[int]:
    """PIDs of the running children of ``parent`` whose command name is ``name`` (the
    containerd a dockerd started)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            raw = stat.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        command = raw[raw.find("(") + 1 : raw.rfind(")")]
        fields = raw[raw.rfind(")") + 2 :].split()
        if command == name and len(fields) > 1 and fields[1] == str(parent):
            found.append(int(stat.parent.name))
    return sorted(found)
