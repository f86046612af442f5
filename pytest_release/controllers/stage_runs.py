"""Stage runs a webhook starts: ``pytest --stage=<stage> --release-id=<release>`` as a
process of its own, once per stage and release, its output in a log file.

A webhook answer must come within the controller's timeout, a stage takes its hold: so
the run is started in the background and the answer is read from the ledger the run
writes. What is kept here is what the ledger cannot say: that a run was started and has
not written its entry yet, or that it ended without writing one (a usage error: exit 4).
"""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class StartedRun:
    """A run started here: its process id, its exit code once it ended, its log."""

    stage: str
    release: str
    pid: int
    exit_code: int | None
    log: Path

    def log_tail(self, limit: int = 1500) -> str:
        try:
            return self.log.read_text(encoding="utf-8", errors="replace")[-limit:].strip()
        except OSError as exc:
            return f"(its log {self.log} cannot be read: {exc})"


class StageRuns:
    """Starts stage runs and remembers them (one per stage and release)."""

    def __init__(
        self,
        rootdir: Path,
        release_configs: Sequence[str],
        pytest_args: Sequence[str],
        log_dir: Path,
    ) -> None:
        self.rootdir = rootdir
        self.release_configs = tuple(release_configs)
        self.pytest_args = tuple(pytest_args)
        self.log_dir = log_dir
        self._lock = threading.Lock()
        self._processes: dict[tuple[str, str], tuple[subprocess.Popen[bytes], Path]] = {}

    def command(self, stage: str, release: str) -> list[str]:
        configs = [f"--release-config={c}" for c in self.release_configs]
        return [
            sys.executable, "-m", "pytest", f"--stage={stage}", f"--release-id={release}",
            *configs, "-p", "no:cacheprovider", *self.pytest_args,
        ]  # fmt: skip

    def start(self, stage: str, release: str) -> StartedRun:
        """The run of ``stage`` for ``release``: started now unless it was started before."""
        with self._lock:
            if (stage, release) not in self._processes:
                self.log_dir.mkdir(parents=True, exist_ok=True)
                log = self.log_dir / f"{stage}-{release}.log"
                with log.open("wb") as out:
                    process = subprocess.Popen(
                        self.command(stage, release),
                        cwd=self.rootdir,
                        stdin=subprocess.DEVNULL,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                    )
                self._processes[(stage, release)] = (process, log)
        found = self.started(stage, release)
        assert found is not None
        return found

    def started(self, stage: str, release: str) -> StartedRun | None:
        """The run started here, or None when none was."""
        with self._lock:
            known = self._processes.get((stage, release))
        if known is None:
            return None
        process, log = known
        return StartedRun(stage, release, process.pid, process.poll(), log)

    def stop(self, timeout: float = 60.0) -> None:
        """End the runs still going (SIGTERM: each stage records itself as interrupted)."""
        with self._lock:
            processes = [p for p, _ in self._processes.values() if p.poll() is None]
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=timeout)
