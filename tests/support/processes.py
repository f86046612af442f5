"""Processes a test starts and must end, also when it fails (the controllers of the test
beds: Argo Rollouts, Flagger)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def running_process(command: Sequence[str], log: Path) -> Iterator[int]:
    """``command`` running with its output in ``log``; yields its PID and ends it (SIGTERM,
    then SIGKILL after 30 s) when the block is left."""
    with log.open("w") as out:
        process = subprocess.Popen(list(command), stdout=out, stderr=subprocess.STDOUT)
    try:
        yield process.pid
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=30)
