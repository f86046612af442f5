"""A directory shared by the controller and its xdist workers for one session.

The controller creates it and hands its path to workers through ``workerinput``; it
carries the gate membership, the closed gates and results of tools run once per
session.  Without xdist the single process owns it.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from pytest_release.system.atomic import write_text_atomic

WORKERINPUT_KEY = "pytest_release_run_dir"

T = TypeVar("T")


def membership_file(run_dir: Path, worker_id: str) -> Path:
    """Where a worker records which gate each collected item belongs to."""
    return run_dir / f"members-{worker_id}.json"


class RunDir:
    def __init__(self, path: Path, *, owner: bool) -> None:
        self.path = path
        self.owner = owner

    @classmethod
    def create(cls) -> RunDir:
        return cls(Path(tempfile.mkdtemp(prefix="pytest-release-")), owner=True)

    def remove(self) -> None:
        if self.owner:
            shutil.rmtree(self.path, ignore_errors=True)

    def run_once(self, key: str, compute: Callable[[], T]) -> T | Any:
        """Run ``compute`` once per session across all processes; others get its
        JSON-serialisable result.  Used to run an external tool once and fan its
        results out to items on any worker."""
        digest = hashlib.sha256(key.encode()).hexdigest()[:24]
        target = self.path / f"once-{digest}.json"
        from filelock import FileLock  # only gates that run a tool once need the lock

        with FileLock(str(target) + ".lock"):
            if target.exists():
                return json.loads(target.read_text(encoding="utf-8"))
            value = compute()
            write_text_atomic(target, json.dumps(value))
            return value
