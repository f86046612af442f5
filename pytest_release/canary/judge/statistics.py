"""The judge's statistics: the tests its checks call and how the false-alarm budget is
spent over the looks of a hold (see docs/judge.md).  The numerics are
:mod:`pytest_release.canary.stats`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pytest_release.canary.judge.config import JudgeConfig
from pytest_release.canary.judge.evidence import Window
from pytest_release.canary.samples import Sample
from pytest_release.canary.stats import binomial_sf

P95 = 95.0  # the percentile of the p95 latency check
COMPARISON_TESTS = 2  # errors and latency share judge.comparison.alpha


@dataclass(frozen=True)
class BinomialTest:
    """The canary's count over the limit in one window, and stable's for the control."""

    window: Window
    k: int
    n: int
    p_value: float
    stable_k: int
    stable_n: int


def binomial_in_windows(
    windows: Sequence[Window],
    limit: float,
    count: Callable[[Sequence[Sample]], tuple[int, int]],
) -> BinomialTest:
    """The window with the smallest p-value of "the canary's share is at most ``limit``"
    (exact binomial), with stable's counts in the same window."""
    best: BinomialTest | None = None
    for window in windows:
        k, n = count(window.canary)
        stable_k, stable_n = count(window.stable)
        p = binomial_sf(k, n, limit) if n else 1.0
        test = BinomialTest(window, k, n, p, stable_k, stable_n)
        if best is None or test.p_value < best.p_value:
            best = test
    assert best is not None  # windows is never empty
    return best


def errors_of(chosen: Sequence[Sample]) -> tuple[int, int]:
    """(errors, requests) of ``chosen``."""
    return sum(1 for s in chosen if not s.ok), len(chosen)


@dataclass(frozen=True)
class Budget:
    """A false-alarm budget ``alpha`` shared by ``tests`` tests over the planned looks,
    each tested in up to two windows at each look."""

    alpha: float
    tests: int
    planned_looks: int
    setting: str  # the configuration key, for messages ("judge.alpha 0.005")

    @property
    def per_test(self) -> float:
        """Level of each test at each look and window (Bonferroni over the tests, the two
        windows and the planned looks)."""
        return self.alpha / (self.tests * 2 * self.planned_looks)

    def at_look(self, windows: int) -> float:
        """Level of one test at a look with ``windows`` windows: both windows share the
        look's budget; a single window (first look) uses it all."""
        return self.per_test * 2 / windows

    def beyond_plan(self, look: int) -> str | None:
        """Why ``look`` has no budget left, or ``None`` while it is within the plan."""
        if look <= self.planned_looks:
            return None
        return (
            f"look {look} is beyond the {self.planned_looks} planned looks: the false-alarm "
            f"budget ({self.setting}) is spent; the gate plans ceil(hold / interval) looks "
            "(judge.comparison.planned_looks is the fallback)"
        )


def comparison_budget(config: JudgeConfig, planned_looks: int) -> Budget:
    """judge.comparison.alpha shared by both comparison tests of every source."""
    return Budget(
        config.comparison.alpha,
        COMPARISON_TESTS * len(config.evidence),
        planned_looks,
        f"judge.comparison.alpha {config.comparison.alpha}",
    )


def threshold_budget(config: JudgeConfig, planned_looks: int) -> Budget:
    """judge.alpha shared by the statistical threshold checks (error rate and p95 latency
    of every source, the /health failure share)."""
    health = 1 if config.max_health_failure_share is not None else 0
    return Budget(
        config.alpha,
        2 * len(config.evidence) + health,
        planned_looks,
        f"judge.alpha {config.alpha}",
    )
