"""The canary gate's items: one per step of the stage's rollout, run by the gate's
:class:`~pytest_release.canary.controller.Controller` (one per gate and process)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import pytest

from pytest_release.canary.controller import Controller, Step, StepSkipped
from pytest_release.gates.canary.config import CanaryGateConfig, resolve_settings, rollout_config
from pytest_release.gating.gate_node import GateItem, GateNode
from pytest_release.stage.session import require_stage_session
from pytest_release.system.signals import raise_if_interrupted

if TYPE_CHECKING:
    from pytest_release.canary.hold import HoldDisplay
    from pytest_release.canary.judge import CanaryVerdict
    from pytest_release.canary.rollout import Rollout
    from pytest_release.canary.stats import IntervalStats
    from pytest_release.stage.session import StageSession

CONTROLLERS = pytest.StashKey[dict[str, Controller]]()


class CanaryItem(GateItem):
    """One step of the rollout; the gate's controller keeps the state between steps."""

    def __init__(
        self, *, step: Step, window: tuple[float, float] | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.step = step
        self.window = window

    def runtest(self) -> None:
        raise_if_interrupted()  # a SIGINT whose interrupt a finalizer swallowed
        properties: list[tuple[str, str]] = []
        try:
            controller_for(self).execute(self.step, properties, self.window, self.name)
        except StepSkipped as skipped:
            pytest.skip(str(skipped))
        finally:
            self.user_properties += properties


@contextmanager
def terminal(config: pytest.Config) -> Iterator[None]:
    """Write to the terminal while pytest captures output (the live hold display)."""
    capman = config.pluginmanager.get_plugin("capturemanager")
    if capman is None:
        yield
        return
    with capman.global_and_fixture_disabled():
        yield


@dataclass
class TerminalHoldDisplay:
    """:class:`~pytest_release.canary.progress.HoldProgress` on pytest's terminal."""

    config: pytest.Config
    progress: Any

    def update(self, elapsed: float, canary: IntervalStats, stable: IntervalStats) -> None:
        with terminal(self.config):
            self.progress.update(elapsed, canary, stable)

    def interval_done(self, verdict: CanaryVerdict) -> None:
        with terminal(self.config):
            self.progress.interval_done(verdict)

    def close(self) -> None:
        # A closed terminal (CI cancelled, pipe gone) must not stop a rollback.
        try:
            with terminal(self.config):
                self.progress.close()
        except Exception:
            pass


@dataclass(frozen=True)
class PytestStageHost:
    """:class:`~pytest_release.canary.controller.StageHost` of a pytest stage session:
    the names and directories of its run (fixed for the session) and its services."""

    config: pytest.Config
    session: StageSession
    stage: str
    release_id: str
    image: str | None
    rootdir: Path
    run_dir: Path
    reports_dir: Path

    @classmethod
    def of(cls, config: pytest.Config, session: StageSession) -> PytestStageHost:
        run = session.run
        return cls(
            config,
            session,
            stage=run.stage,
            release_id=run.release_id,
            image=run.image,
            rootdir=run.rootdir,
            run_dir=session.run_dir.path,
            reports_dir=run.reports_dir,
        )

    def relative(self, path: Path) -> str:
        return self.session.run.relative(path)

    def redact(self, text: str) -> str:
        return self.session.redact(text)

    def set_result(self, result: Literal["rolled-back"], message: str) -> None:
        self.session.set_result(result, message)

    def hold_display(self, hold_seconds: float) -> HoldDisplay | None:
        if hasattr(self.config, "workerinput"):
            return None  # a worker's terminal is not shown
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is None:
            return None
        from pytest_release.canary.progress import HoldProgress

        is_tty = bool(getattr(reporter, "isatty", False))
        with terminal(self.config):
            reporter.ensure_newline()
            progress = HoldProgress(reporter, hold_seconds, is_tty)
        return TerminalHoldDisplay(self.config, progress)


def controller_for(item: CanaryItem) -> Controller:
    parent = item.parent
    assert isinstance(parent, GateNode)
    controllers = item.config.stash.setdefault(CONTROLLERS, {})
    controller = controllers.get(parent.gate_name)
    if controller is None:
        assert isinstance(parent.gate, CanaryGateConfig)
        run = parent.run
        settings = resolve_settings(parent.gate_name, parent.gate, run)
        controller = Controller(
            PytestStageHost.of(item.config, require_stage_session(item.config)),
            settings,
            rollout_config(run, parent.gate_name),
            build_rollout=lambda: _build_rollout(settings, run.rootdir),
        )
        controllers[parent.gate_name] = controller
    return controller


def _build_rollout(settings: Any, rootdir: Path) -> Rollout:
    from pytest_release.canary.registry import build_rollout

    return build_rollout(settings, rootdir)
