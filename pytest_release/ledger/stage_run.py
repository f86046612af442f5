"""What a stage run is (resolved settings) and how it ended."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    # Types only: a worker builds its run from the controller's plan, with no pydantic.
    from pytest_release.config.plain_tables import StageConfig
    from pytest_release.config.plan import StagePlan
    from pytest_release.config.release_config import ReleaseConfig

StageResult = Literal[
    "running", "passed", "failed", "rolled-back", "interrupted", "rollback-failed"
]
GateStatus = Literal["passed", "failed", "skipped", "closed", "empty", "interrupted"]


@dataclass(frozen=True)
class StageRun:
    """Everything the plugin resolved for this session (CLI > ini > config > default)."""

    stage: str
    release_id: str
    image: str | None
    config: ReleaseConfig
    plan: StagePlan
    rootdir: Path
    reports_dir: Path
    ledger_path: Path
    override_requires: str | None
    approved_via: str | None = None

    @property
    def stage_config(self) -> StageConfig:
        return self.config.stages[self.stage]

    @property
    def partial(self) -> bool:
        """Only some of the stage's gates run (``--gate``)."""
        return set(self.plan.order) != set(self.stage_config.gates)

    @property
    def junit_path(self) -> Path:
        return self.reports_dir / f"{self.stage}.xml"

    def relative(self, path: str | Path) -> str:
        """``path`` relative to the rootdir when inside it (reports use repo-relative paths)."""
        resolved = Path(path)
        if not resolved.is_absolute():
            return resolved.as_posix()
        try:
            return resolved.relative_to(self.rootdir).as_posix()
        except ValueError:
            return resolved.as_posix()


@dataclass(frozen=True)
class GateResult:
    gate: str
    status: GateStatus
    passed: int
    failed: int
    skipped: int
    closed: int
    duration: float
    reason: str = ""
    not_run: int = 0  # selected items that never reported an outcome (interrupted)
    xfailed: int = 0  # expected failures (pytest's "xfailed"), not skips

    @property
    def total(self) -> int:
        return self.passed + self.failed + self.skipped + self.closed + self.not_run + self.xfailed


@dataclass(frozen=True)
class StageOutcome:
    result: StageResult
    gates: tuple[GateResult, ...]
    message: str = ""
    partial: str | None = None  # why this run does not count as the whole stage

    @property
    def passed(self) -> bool:
        return self.result == "passed"


def shown_result(run: StageRun, outcome: StageOutcome) -> str:
    """The result as the stage's banner and step summary show it, marked as
    ``--release-status`` marks it: ``passed (partial: lint)`` when only some gates ran
    (``--gate``), ``passed (partial run)`` when fewer items ran (``-k``, node ids: the
    reason is shown beside it); a partial run satisfies no stage's ``requires``."""
    marks = []
    if run.partial:
        marks.append(f"partial: {', '.join(run.plan.order)}")
    if outcome.partial:
        marks.append("partial run")
    return f"{outcome.result} ({'; '.join(marks)})" if marks else outcome.result
