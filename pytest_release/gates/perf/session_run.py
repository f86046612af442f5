"""Running Locust for one perf gate, once per session across processes, and finding
the Locust executable."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import pytest

from pytest_release.errors import GateSetupError
from pytest_release.gates.perf.config import INSTALL_HINT, PerfGateConfig
from pytest_release.gates.perf.runner import (
    LocustCommand,
    PerfOutcome,
    failed,
    refused,
    run_locust,
)

if TYPE_CHECKING:
    from pytest_release.stage.session import StageSession


class LocustSetupError(GateSetupError):
    """Locust cannot be started (not installed)."""


def resolve_path(rootdir: Path, value: str) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else rootdir / path


@dataclass(frozen=True)
class PerfRun:
    """Runs Locust for one gate, once per session across processes."""

    gate_name: str
    gate: PerfGateConfig
    rootdir: Path
    locustfile: Path | None
    setup_problem: str | None
    report_dir: Path

    @property
    def html(self) -> Path:
        return self.report_dir / f"{self.gate_name}.html"

    @property
    def csv_prefix(self) -> Path:
        return self.report_dir / self.gate_name

    def outcome(self, config: pytest.Config) -> PerfOutcome:
        session = stage_session(config)
        value = session.run_dir.run_once(f"perf:{self.gate_name}", lambda: self._run().to_json())
        return PerfOutcome.from_json(cast("Mapping[str, Any]", value))

    def _run(self) -> PerfOutcome:
        if self.setup_problem is not None or self.locustfile is None:
            return failed(f"Locust was not started: {self.setup_problem}")
        try:
            binary = resolve_locust(self.gate.locust, self.rootdir, self.gate_name)
        except LocustSetupError as exc:
            return failed(str(exc))
        why = refused(self.gate.host)
        if why is not None:
            return failed(
                f"the target {self.gate.host} refused the connection ({why}): the service is "
                f"not running there; start it before this gate or fix host in "
                f"[tool.pytest-release.gates.{self.gate_name}]. Locust was not started."
            )
        gate = self.gate
        command = LocustCommand(
            binary=binary,
            locustfile=self.locustfile,
            host=gate.host,
            users=gate.users,
            spawn_rate=gate.spawn_rate if gate.spawn_rate is not None else float(gate.users),
            duration=gate.duration,
            csv_prefix=self.csv_prefix,
            html=self.html,
            timeout=gate.timeout,
            args=gate.args,
        )
        try:
            return run_locust(command, cwd=self.rootdir)
        except Exception as exc:  # an unexpected crash must still fail the status item
            return failed(f"running Locust failed unexpectedly: {exc!r}")


def resolve_locust(configured: str | None, rootdir: Path, gate_name: str) -> str:
    """The Locust executable: the configured one, else the one installed beside the
    running Python, else PATH; :class:`LocustSetupError` with the install command."""
    hint = INSTALL_HINT.format(gate=gate_name)
    if configured is not None:
        if "/" in configured or os.sep in configured:
            path = resolve_path(rootdir, configured)
            if path.is_file() and os.access(path, os.X_OK):
                return str(path)
            state = "is not executable" if path.is_file() else "does not exist"
            raise LocustSetupError(
                f"Locust is not installed: locust = {configured!r} (gate {gate_name!r}) "
                f"{state} at {path}; {hint}"
            )
        found = shutil.which(configured)
        if found:
            return found
        raise LocustSetupError(
            f"Locust is not installed: locust = {configured!r} (gate {gate_name!r}) is not on "
            f"PATH; {hint}"
        )
    beside = Path(sys.executable).parent / "locust"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("locust")
    if found:
        return found
    raise LocustSetupError(
        f"Locust is not installed: looked for {beside} and for 'locust' on PATH; {hint}"
    )


def stage_session(config: pytest.Config) -> StageSession:
    from pytest_release.stage.session import require_stage_session

    return require_stage_session(config)
