"""The controller's step dispatch (no platform: every step it runs here is replaced by a
recorder; what is under test is how an ending of a step decides the next ones)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import pytest

from pytest_release.canary.controller import Controller, StepSkipped
from pytest_release.config.tables import RolloutConfig
from pytest_release.errors import GateCheckFailed
from tests.canary.canary_support import haproxy_settings, platform_config


class Host:
    def __init__(self, root: Path) -> None:
        self.stage, self.release_id, self.image, self.rootdir = "canary-1", "r1", "v2", root
        self.run_dir = self.reports_dir = root
        self.results: list[str] = []

    def relative(self, path: Path) -> str:
        return str(path)

    def redact(self, text: str) -> str:
        return text

    def set_result(self, result: Literal["rolled-back"], message: str) -> None:
        self.results.append(message)

    def hold_display(self, hold_seconds: float) -> None:
        return None


def _controller(
    tmp_path: Path, outcomes: dict[str, BaseException | None]
) -> tuple[Controller, list[str]]:
    settings = haproxy_settings(platform_config())
    rollout = RolloutConfig(action="canary", replicas=1, weight=10, hold=2.0, interval=1.0)

    def no_rollout() -> Any:
        raise AssertionError("no step under test builds a rollout")

    controller = Controller(Host(tmp_path), settings, rollout, build_rollout=no_rollout)
    ran: list[str] = []

    def step(name: str) -> Any:
        def run(props: list[tuple[str, str]], window: Any) -> None:
            ran.append(name)
            outcome = outcomes.get(name)
            if outcome is not None:
                raise outcome

        return run

    controller._steps.update(
        {name: step(name) for name in ("deploy", "traffic", "health", "verdict")}
    )
    controller.touched = True  # as after a real deploy
    return controller, ran


def test_an_interval_the_stage_still_allows_to_be_insufficient_does_not_stop_it(
    tmp_path: Path,
) -> None:
    controller, ran = _controller(tmp_path, {"health": StepSkipped("insufficient evidence")})
    controller.execute("deploy", [])
    with pytest.raises(StepSkipped):
        controller.execute("health", [], (0.0, 1.0), "health@1s")
    assert controller.problem is None
    controller.execute("verdict", [])
    assert ran == ["deploy", "health", "verdict"]
    assert controller.rollback_needed() is None


def test_a_failed_step_stops_the_later_ones_and_asks_for_the_rollback(tmp_path: Path) -> None:
    controller, ran = _controller(tmp_path, {"health": GateCheckFailed("canary error rate")})
    controller.execute("deploy", [])
    with pytest.raises(GateCheckFailed):
        controller.execute("health", [], (0.0, 1.0), "health@1s")
    with pytest.raises(StepSkipped, match="not run: health@1s failed"):
        controller.execute("verdict", [])
    assert ran == ["deploy", "health"]
    assert controller.rollback_needed() == "health@1s failed"


def test_a_router_not_applying_the_split_fails_the_step_naming_both_splits() -> None:
    from pytest_release.canary.applied_split import require_split
    from pytest_release.canary.router import Weights

    props: list[tuple[str, str]] = []
    with pytest.raises(
        GateCheckFailed, match=r"^router applies stable 90% / canary 10%, expected stable 100%$"
    ):
        require_split(Weights(90, 10, canary_members=("a",)), 0, "stable 100%", props)
    assert props == [("router.stable_percent", "90"), ("router.canary_percent", "10")]
    props = []
    require_split(Weights(90, 10, canary_members=("a", "b")), 10, "canary 10%", props, members=True)
    assert props[-1] == ("router.canary_members", "a, b")
