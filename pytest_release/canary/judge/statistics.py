"""The judge's statistics: the tests its checks call and how the false-alarm budget is
spent over the looks of a hold (see docs/judge.md).  The numerics are
:mod:`pytest_release.canary.stats`."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pytest_release.canary.judge.config import JudgeConfig
from pytest_release.canary.judge.evidence import Window
from pytest_release.canary.samples import Sample
from pytest_release.canary.stats import binomial_lower_bound, binomial_sf

P95 = 95.0  # the percentile of the p95 latency check


def errors_of(chosen: Sequence[Sample]) -> tuple[int, int]:
    """(errors, requests) of ``chosen``."""
    return sum(1 for s in chosen if not s.ok), len(chosen)


# The alternatives the always-valid threshold test mixes over: the canary's share at
# these multiples of the limit (capped below 1), with equal weights.  Spread from "just
# over" to "broken" so that a small excess is found with a long hold and a gross one at
# the first look.
MIXTURE_RATIOS = (1.25, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0)
# How a check's alpha is split (ThresholdPlan, ComparisonPlan; union bound): the hold so
# far at every look (the always-valid test, or the comparison's spending plan), the hold
# so far once more at the last planned look by the fixed-sample test (which has the
# power of a test that knows the hold's sample: the sequential part pays for looking at
# every interval with a higher bar), and the late-fault window (the rest).  Chosen with
# benchmarks/canary_power.py: from 75 % sequential and 25 % late (no fixed-sample part),
# a 5 % canary at 30 req/s, 10 %, 60 s / 5 s was failed in 69 % of holds; with 40/40/20,
# 84 % (the oracle: 90 %), at one interval more in the median.
CUMULATIVE_SHARE = 0.4
FINAL_SHARE = 0.4
LATE_SHARE = 1.0 - CUMULATIVE_SHARE - FINAL_SHARE


def mixture_likelihood_ratio(k: int, n: int, limit: float) -> float:
    """The test martingale of "the share is at most ``limit``" after ``k`` events in ``n``
    trials: the average over :data:`MIXTURE_RATIOS` of the likelihood ratio of the share
    ``r * limit`` against ``limit``.

    Under any share ``<= limit`` each ratio (and so their average) is a nonnegative
    supermartingale in ``n`` with mean at most 1, so by Ville's inequality it ever
    reaches ``1 / alpha`` with probability at most ``alpha``, however often it is looked
    at (Robbins 1970; Howard, Ramdas, McAuliffe & Sekhon 2021): an always-valid test.
    """
    if limit >= 1.0:  # no share can be over it
        return 0.0
    if limit <= 0.0:  # any event is over it
        return 0.0 if k == 0 else math.inf
    total = 0.0
    alternatives = [min(ratio * limit, (1.0 + limit) / 2.0) for ratio in MIXTURE_RATIOS]
    for share in alternatives:
        log_ratio = k * math.log(share / limit) + (n - k) * math.log((1.0 - share) / (1.0 - limit))
        total += math.exp(min(log_ratio, 700.0))
    return total / len(alternatives)


def always_valid_lower_bound(k: int, n: int, alpha: float) -> float:
    """The lower end of the always-valid one-sided confidence sequence for a share: the
    smallest limit ``p`` the mixture test does not reject at ``alpha`` (0 when none)."""
    if k == 0 or mixture_likelihood_ratio(k, n, 1e-12) < 1.0 / alpha:
        return 0.0
    low, high = 1e-12, 1.0 - 1e-12
    for _ in range(60):
        middle = (low + high) / 2.0
        if mixture_likelihood_ratio(k, n, middle) >= 1.0 / alpha:
            low = middle
        else:
            high = middle
    return low


@dataclass(frozen=True)
class ShareTest:
    """One threshold test of a look: "the canary's share is at most the limit"."""

    window: Window
    k: int
    n: int
    stable_k: int
    stable_n: int
    alpha: float  # the level this window was tested at
    credible: bool  # over the limit at that level
    lower: float  # lower confidence bound of the canary's share at that level
    method: str  # how it was tested, for the message


@dataclass(frozen=True)
class ThresholdPlan:
    """How one threshold check spends its share ``alpha`` of ``judge.alpha`` (union
    bound): 40 % on an always-valid test of the evidence since the hold began (valid at
    every look, planned or not), 40 % on the exact binomial test of the same evidence at
    the last planned look only, 20 % on the late-fault window (the current interval,
    exact binomial), spent evenly over the planned looks 2..``planned_looks``.  With a
    single planned look there is no late window: its share goes to the final test."""

    alpha: float
    planned_looks: int

    @property
    def cumulative_alpha(self) -> float:
        return self.alpha * CUMULATIVE_SHARE

    def final_alpha(self, look: int) -> float | None:
        """The fixed-sample test's level at ``look``: only at the last planned look."""
        if look != self.planned_looks:
            return None
        late = LATE_SHARE if self.planned_looks == 1 else 0.0
        return self.alpha * (FINAL_SHARE + late)

    def late_alpha(self, look: int) -> float | None:
        """The late window's level at ``look``; ``None`` when it has none (the first look,
        or a look beyond the plan)."""
        if look < 2 or look > self.planned_looks:
            return None
        return self.alpha * LATE_SHARE / (self.planned_looks - 1)

    def split(self, parts: int) -> ThresholdPlan:
        """The plan of one of ``parts`` tests sharing this one (Bonferroni)."""
        return ThresholdPlan(self.alpha / parts, self.planned_looks)


def share_test(
    windows: Sequence[Window],
    limit: float,
    count: Callable[[Sequence[Sample]], tuple[int, int]],
    plan: ThresholdPlan,
    look: int,
) -> ShareTest:
    """The look's test of the canary's share against ``limit``: the cumulative window by
    the always-valid test (and at the last planned look by the exact binomial), the late
    window (when it has budget) by the exact binomial; the credible one with the higher
    lower bound if any, else the cumulative one."""
    tests: list[ShareTest] = []
    for window in windows:
        k, n = count(window.canary)
        stable_k, stable_n = count(window.stable)
        exact: float | None  # the level of the window's exact binomial test, if it has one
        if window is windows[0]:
            alpha = plan.cumulative_alpha
            credible = n > 0 and mixture_likelihood_ratio(k, n, limit) >= 1.0 / alpha
            lower = always_valid_lower_bound(k, n, alpha) if n else 0.0
            method = "always-valid"
            tests.append(
                ShareTest(window, k, n, stable_k, stable_n, alpha, credible, lower, method)
            )
            exact, method = plan.final_alpha(look), "exact binomial, the planned end"
        else:
            exact, method = plan.late_alpha(look), "exact binomial"
        if exact is None:
            continue
        credible = n > 0 and binomial_sf(k, n, limit) < exact
        lower = binomial_lower_bound(k, n, exact) if n else 0.0
        tests.append(ShareTest(window, k, n, stable_k, stable_n, exact, credible, lower, method))
    over = [t for t in tests if t.credible]
    return max(over, key=lambda t: t.lower) if over else tests[0]


def threshold_plan(config: JudgeConfig, planned_looks: int) -> ThresholdPlan:
    """One threshold check's plan: judge.alpha shared by the statistical threshold checks
    (error rate, p95 latency, the /health failure share; Bonferroni)."""
    return ThresholdPlan(config.alpha / threshold_tests(config), planned_looks)


def threshold_tests(config: JudgeConfig) -> int:
    health = 1 if config.max_health_failure_share is not None else 0
    latency = 1 if "sampler" in config.evidence else 0
    counted = [source for source in config.evidence if source != "sampler"]
    # error rate on the combined evidence, p95 on the sampler's (the counted p95 compares
    # an average, no test), the error rate of a second counted source (judge.checks_for)
    return 1 + latency + health + max(0, len(counted) - 1)


def spent(alpha: float, fraction: float) -> float:
    """Lan-DeMets spending function of Pocock type: the part of ``alpha`` spent by the
    information ``fraction`` (0-1) of the hold, ``alpha * ln(1 + (e - 1) * t)``."""
    return alpha * math.log(1.0 + (math.e - 1.0) * min(1.0, max(0.0, fraction)))


@dataclass(frozen=True)
class ComparisonPlan:
    """How one comparison test spends its share ``alpha`` of ``judge.comparison.alpha``
    (union bound): 40 % on the evidence since the hold began, spent over the planned
    looks by a Lan-DeMets spending function of Pocock type (the look's increment tested
    on its own: the union bound keeps the total at most that part, whatever the
    correlation between looks), 40 % more on the same evidence at the last planned look,
    20 % on the late-fault window, evenly over looks 2..``planned_looks`` (with a single
    planned look, its share goes to the last look's)."""

    alpha: float
    planned_looks: int
    setting: str  # the configuration key, for messages

    def cumulative_alpha(self, look: int) -> float:
        looks = self.planned_looks
        sequential = self.alpha * CUMULATIVE_SHARE
        level = spent(sequential, look / looks) - spent(sequential, (look - 1) / looks)
        if look == looks:
            level += self.alpha * (FINAL_SHARE + (LATE_SHARE if looks == 1 else 0.0))
        return level

    def late_alpha(self, look: int) -> float | None:
        if look < 2 or look > self.planned_looks:
            return None
        return self.alpha * LATE_SHARE / (self.planned_looks - 1)

    def beyond_plan(self, look: int) -> str | None:
        """Why ``look`` has no budget left, or ``None`` while it is within the plan."""
        if look <= self.planned_looks:
            return None
        return (
            f"look {look} is beyond the {self.planned_looks} planned looks: the false-alarm "
            f"budget ({self.setting}) is spent; the gate plans ceil(hold / interval) looks "
            "(judge.comparison.planned_looks is the fallback)"
        )

    def window_alphas(self, look: int, windows: int) -> list[float]:
        """The level of each window at ``look`` (the cumulative one first)."""
        late = self.late_alpha(look)
        levels = [self.cumulative_alpha(look)]
        if windows > 1:
            levels.append(late if late is not None else 0.0)
        return levels


def comparison_plan(config: JudgeConfig, planned_looks: int) -> ComparisonPlan:
    """One comparison test's plan: judge.comparison.alpha shared by the statistical
    comparison tests of each evidence the comparison runs on (Bonferroni): Fisher's on
    the error rates, and Mann-Whitney on the latencies where the sampler measures them
    (counted evidence has averages only: its latency comparison is no test and spends
    nothing)."""
    counted = [source for source in config.evidence if source != "sampler"]
    evidences = 1 + max(0, len(counted) - 1)
    tests = 2 if "sampler" in config.evidence else 1
    return ComparisonPlan(
        config.comparison.alpha / (tests * evidences),
        planned_looks,
        f"judge.comparison.alpha {config.comparison.alpha}",
    )
