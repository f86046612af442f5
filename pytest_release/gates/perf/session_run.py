"""Running Locust for one perf gate, once per session across processes, and finding
the Locust executable."""

from __future__ import annotations

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
from pytest_release.gates.tool_command import installed_executable
from pytest_release.gates.tool_verdict import stage_session

if TYPE_CHECKING:
    pass


class LocustSetupError(GateSetupError):
    """Locust cannot be started (not installed)."""


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
    beside = Path(sys.executable).parent / "locust"
    try:
        return installed_executable(
            configured, rootdir, "Locust", "locust", gate_name, hint, beside
        )
    except LookupError as exc:
        raise LocustSetupError(str(exc)) from None
