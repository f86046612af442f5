"""The judge's configuration and false-alarm budget, shared by its checks: planned looks,
alpha per test and window, the windows a look tests."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pytest_release.canary.judge_config import _COMPARISON_TESTS, JudgeConfig
from pytest_release.canary.samples import Sample
from pytest_release.canary.verdicts import _canary_http, _stable_http


@dataclass(frozen=True)
class _Window:
    """One window a statistical check tests at a look."""

    label: str  # "since the hold began" / "in the interval"
    start: float
    end: float
    canary: tuple[Sample, ...]
    stable: tuple[Sample, ...]


@dataclass(frozen=True)
class _BinomialTest:
    """The canary's count over the limit in one window, and stable's for the control."""

    window: _Window
    k: int
    n: int
    p_value: float
    stable_k: int
    stable_n: int


class JudgeBase:
    """The judge's configuration and false-alarm budget, shared by its checks."""

    def __init__(self, config: JudgeConfig, *, planned_looks: int | None = None) -> None:
        if planned_looks is not None and planned_looks < 1:
            raise ValueError(f"planned_looks must be at least 1, got {planned_looks}")
        self.config = config
        self.planned_looks = planned_looks or config.comparison.planned_looks
        self._looks = 0

    @property
    def threshold_checks(self) -> int:
        """Statistical threshold checks sharing ``judge.alpha``."""
        health = 1 if self.config.max_health_failure_share is not None else 0
        return 2 * len(self.config.evidence) + health

    @property
    def alpha_per_test(self) -> float:
        """Significance level of each comparison test at each look and window (Bonferroni
        over both tests, the two windows and the planned looks)."""
        tests = _COMPARISON_TESTS * len(self.config.evidence)
        return self.config.comparison.alpha / (tests * 2 * self.planned_looks)

    @property
    def threshold_alpha_per_test(self) -> float:
        """Significance level of each threshold test at each look and window."""
        return self.config.alpha / (self.threshold_checks * 2 * self.planned_looks)

    @staticmethod
    def _windows(
        everything: Sequence[Sample],
        samples: Sequence[Sample],
        hold_start: float,
        start: float,
        end: float,
    ) -> list[_Window]:
        """The windows tested at this look: since the hold began, and (from the second
        look on, when it differs) the current interval."""
        cumulative = _Window(
            "since the hold began",
            hold_start,
            end,
            tuple(_canary_http(everything)),
            tuple(_stable_http(everything)),
        )
        if hold_start >= start:
            return [cumulative]
        interval = _Window(
            "in the interval",
            start,
            end,
            tuple(_canary_http(samples)),
            tuple(_stable_http(samples)),
        )
        return [cumulative, interval]

    def _look_alpha(self, per_test: float, windows: Sequence[_Window]) -> float:
        # Both windows share the look's budget; a single window (first look) uses it all.
        return per_test * 2 / len(windows)

    def _beyond_plan(self, look: int, budget: str) -> str | None:
        if look <= self.planned_looks:
            return None
        return (
            f"look {look} is beyond the {self.planned_looks} planned looks: the false-alarm "
            f"budget ({budget}) is spent; the gate plans ceil(hold / interval) looks "
            "(judge.comparison.planned_looks is the fallback)"
        )
