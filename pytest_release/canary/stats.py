"""Statistics for the canary judge, in pure Python (no numpy/scipy).

* :func:`percentile` -- linear interpolation between closest ranks (numpy's default,
  R type 7), used for p95 latency.
* :func:`fisher_exact_greater` -- one-sided Fisher exact test on two error counts: the
  probability, under "both versions have the same error rate", of the canary having at
  least as many of the observed errors as it did, conditional on the total.  Computed
  exactly from the hypergeometric distribution (log-gamma terms, so large counts are fine).
* :func:`mann_whitney_greater` -- one-sided Mann-Whitney U (Wilcoxon rank-sum) test that
  ``x`` is stochastically greater than ``y``: midranks for ties, the tie-corrected variance
  and the normal approximation with a continuity correction of 1/2 (as
  ``scipy.stats.mannwhitneyu(x, y, alternative="greater", method="asymptotic")``).
* :class:`IntervalStats` / :func:`interval_stats` -- the per-interval numbers shown in
  the terminal, the plot and the step summary.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from pytest_release.canary.samples import Sample, SampleKind, Target

__all__ = [
    "IntervalStats",
    "MannWhitneyResult",
    "fisher_exact_greater",
    "interval_stats",
    "mann_whitney_greater",
    "median",
    "normal_sf",
    "percentile",
]


def percentile(values: Iterable[float], q: float) -> float:
    """The ``q``-th percentile (0-100) by linear interpolation (numpy ``method="linear"``).

    Raises ``ValueError`` for an empty input or ``q`` outside 0-100.
    """
    if not 0.0 <= q <= 100.0:
        raise ValueError(f"percentile must be between 0 and 100, got {q!r}")
    ordered = sorted(values)
    if not ordered:
        raise ValueError("percentile of an empty sequence")
    position = (len(ordered) - 1) * q / 100.0
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    fraction = position - low
    return ordered[low] + (ordered[high] - ordered[low]) * fraction


def median(values: Iterable[float]) -> float:
    return percentile(values, 50.0)


def normal_sf(z: float) -> float:
    """Upper tail of the standard normal distribution, ``P(Z >= z)``."""
    return 0.5 * math.erfc(z / math.sqrt(2.0))


def _log_comb(n: int, k: int) -> float:
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)


def fisher_exact_greater(errors_a: int, total_a: int, errors_b: int, total_b: int) -> float:
    """One-sided Fisher exact p-value that group A's error proportion exceeds group B's.

    The 2x2 table is ``[[errors_a, total_a - errors_a], [errors_b, total_b - errors_b]]``;
    the p-value is ``P(X >= errors_a)`` for ``X ~ Hypergeometric(N=total_a + total_b,
    K=errors_a + errors_b, n=total_a)`` -- ``scipy.stats.fisher_exact(table,
    alternative="greater")``.
    """
    for name, value in (
        ("errors_a", errors_a),
        ("total_a", total_a),
        ("errors_b", errors_b),
        ("total_b", total_b),
    ):
        if value < 0:
            raise ValueError(f"{name} must not be negative, got {value}")
    if errors_a > total_a or errors_b > total_b:
        raise ValueError(
            f"more errors than requests: {errors_a}/{total_a} and {errors_b}/{total_b}"
        )
    population = total_a + total_b
    successes = errors_a + errors_b
    if population == 0 or successes == 0:
        return 1.0
    log_denominator = _log_comb(population, total_a)
    highest = min(successes, total_a)
    lowest_possible = max(0, total_a - (population - successes))
    if errors_a <= lowest_possible:
        return 1.0
    tail = 0.0
    for x in range(errors_a, highest + 1):
        log_pmf = (
            _log_comb(successes, x)
            + _log_comb(population - successes, total_a - x)
            - log_denominator
        )
        term = math.exp(log_pmf)
        tail += term
        # Past the mode the terms only shrink; stop once they cannot matter.
        if term < tail * 1e-17:
            break
    return min(1.0, tail)


@dataclass(frozen=True)
class MannWhitneyResult:
    """``u`` is the statistic of ``x`` (pairs where x > y, ties counting 1/2)."""

    u: float
    z: float
    p_value: float
    n_x: int
    n_y: int


def mann_whitney_greater(x: Sequence[float], y: Sequence[float]) -> MannWhitneyResult:
    """One-sided Mann-Whitney U test that ``x`` is stochastically greater than ``y``.

    Normal approximation with tie correction and continuity correction.  When every value
    is tied (zero variance) there is no evidence either way and the p-value is 1.
    """
    n_x, n_y = len(x), len(y)
    if n_x == 0 or n_y == 0:
        raise ValueError(f"Mann-Whitney needs two non-empty samples, got {n_x} and {n_y}")
    combined = sorted([(float(v), 0) for v in x] + [(float(v), 1) for v in y])
    n = n_x + n_y
    rank_sum_x = 0.0
    tie_term = 0.0
    i = 0
    while i < n:
        j = i
        while j + 1 < n and combined[j + 1][0] == combined[i][0]:
            j += 1
        midrank = (i + j) / 2.0 + 1.0  # ranks are 1-based
        tied = j - i + 1
        if tied > 1:
            tie_term += tied**3 - tied
        for k in range(i, j + 1):
            if combined[k][1] == 0:
                rank_sum_x += midrank
        i = j + 1
    u = rank_sum_x - n_x * (n_x + 1) / 2.0
    mean = n_x * n_y / 2.0
    variance = n_x * n_y / 12.0 * ((n + 1) - tie_term / (n * (n - 1))) if n > 1 else 0.0
    if variance <= 0.0:
        return MannWhitneyResult(u=u, z=0.0, p_value=1.0, n_x=n_x, n_y=n_y)
    z = (u - mean - 0.5) / math.sqrt(variance)
    return MannWhitneyResult(u=u, z=z, p_value=normal_sf(z), n_x=n_x, n_y=n_y)


@dataclass(frozen=True)
class IntervalStats:
    """Requests, errors and latency of one target over one window."""

    requests: int
    errors: int
    error_rate: float | None  # None without requests
    p95_ms: float | None  # None without a response that carried a latency

    @property
    def has_data(self) -> bool:
        return self.requests > 0


def interval_stats(
    samples: Iterable[Sample],
    target: Target = "canary",
    *,
    kind: SampleKind = "http",
    window_start: float | None = None,
    window_end: float | None = None,
) -> IntervalStats:
    """Stats of ``target``'s ``kind`` samples, optionally restricted to
    ``window_start <= timestamp < window_end``."""
    requests = errors = 0
    latencies: list[float] = []
    for sample in samples:
        if sample.target != target or sample.kind != kind:
            continue
        if window_start is not None and sample.timestamp < window_start:
            continue
        if window_end is not None and sample.timestamp >= window_end:
            continue
        requests += 1
        if not sample.ok:
            errors += 1
        if sample.latency_ms is not None:
            latencies.append(sample.latency_ms)
    return IntervalStats(
        requests=requests,
        errors=errors,
        error_rate=errors / requests if requests else None,
        p95_ms=percentile(latencies, 95.0) if latencies else None,
    )
