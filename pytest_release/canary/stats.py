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
* :func:`binomial_sf` -- exact binomial upper tail ``P(X >= k)`` through the regularized
  incomplete beta function (continued fraction), and from it the one-sided exact
  (Clopper-Pearson) bounds :func:`binomial_lower_bound` / :func:`binomial_upper_bound`:
  the judge's threshold checks ("error rate <= 1 %", "p95 <= 500 ms" as "at most 5 % of
  responses slower than 500 ms", "/health failure share <= 5 %") are one-sided exact
  binomial tests of these.
* :func:`main_errors_credibly_above` -- the rule for rollback / promotion checks
  (``verify_main``): is main's error count credibly above stable's own rate measured
  before the change?
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
    "betainc",
    "binomial_lower_bound",
    "binomial_sf",
    "binomial_upper_bound",
    "fisher_exact_greater",
    "interval_stats",
    "main_errors_credibly_above",
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


def _beta_continued_fraction(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz)."""
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c = 1.0
    d = 1.0 - qab * x / qap
    d = tiny if abs(d) < tiny else d
    d = 1.0 / d
    h = d
    for m in range(1, 10_000):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = tiny if abs(d) < tiny else d
        c = 1.0 + aa / c
        c = tiny if abs(c) < tiny else c
        d = 1.0 / d
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = tiny if abs(d) < tiny else d
        c = 1.0 + aa / c
        c = tiny if abs(c) < tiny else c
        d = 1.0 / d
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-15:
            break
    return h


def betainc(a: float, b: float, x: float) -> float:
    """Regularized incomplete beta function ``I_x(a, b)`` (``scipy.special.betainc``)."""
    if a <= 0 or b <= 0:
        raise ValueError(f"betainc needs a > 0 and b > 0, got a={a!r}, b={b!r}")
    if not 0.0 <= x <= 1.0:
        raise ValueError(f"betainc needs 0 <= x <= 1, got {x!r}")
    if x in (0.0, 1.0):
        return x
    log_front = (
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    front = math.exp(log_front)
    if x < (a + 1.0) / (a + b + 2.0):
        return min(1.0, front * _beta_continued_fraction(a, b, x) / a)
    return max(0.0, 1.0 - front * _beta_continued_fraction(b, a, 1.0 - x) / b)


def _check_counts(k: int, n: int) -> None:
    if n < 0 or k < 0 or k > n:
        raise ValueError(f"need 0 <= events <= trials, got {k} of {n}")


def binomial_sf(k: int, n: int, p: float) -> float:
    """``P(X >= k)`` for ``X ~ Binomial(n, p)``, exactly (``scipy.stats.binom.sf(k - 1, n,
    p)``): ``I_p(k, n - k + 1)``."""
    _check_counts(k, n)
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"a probability must be between 0 and 1, got {p!r}")
    if k == 0:
        return 1.0
    if p == 0.0:
        return 0.0
    if p == 1.0:
        return 1.0
    return betainc(float(k), float(n - k + 1), p)


def binomial_lower_bound(k: int, n: int, alpha: float) -> float:
    """One-sided exact (Clopper-Pearson) lower confidence bound at level ``1 - alpha`` for
    a proportion seen ``k`` times in ``n`` trials: the smallest ``p`` with
    ``P_p(X >= k) >= alpha``.  The true proportion is below it with probability at most
    ``alpha``; ``binomial_lower_bound(k, n, a) > p0`` exactly when
    ``binomial_sf(k, n, p0) < a``."""
    _check_counts(k, n)
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be between 0 and 1, got {alpha!r}")
    if k == 0:
        return 0.0
    low, high = 0.0, 1.0
    for _ in range(60):
        middle = (low + high) / 2.0
        if binomial_sf(k, n, middle) < alpha:
            low = middle
        else:
            high = middle
    return low


def binomial_upper_bound(k: int, n: int, alpha: float) -> float:
    """One-sided exact (Clopper-Pearson) upper confidence bound at level ``1 - alpha``:
    the largest ``p`` with ``P_p(X <= k) >= alpha`` (1 when ``k == n``)."""
    _check_counts(k, n)
    if k == n:
        return 1.0
    return 1.0 - binomial_lower_bound(n - k, n, alpha)


def main_errors_credibly_above(
    errors: int,
    total: int,
    baseline_errors: int,
    baseline_total: int,
    alpha: float = 0.01,
    *,
    fallback_rate: float = 0.0,
) -> bool:
    """Whether main's ``errors`` out of ``total`` requests (checked after a rollback or a
    promotion) are credibly above stable's own error rate measured before the change,
    ``baseline_errors`` out of ``baseline_total`` (e.g. the sampler's stable samples of
    the hold, or a burst of requests to main before the rollback).

    The rule is the one-sided Fisher exact test of "main's error proportion is higher
    than the baseline's" at level ``alpha``: ``True`` (verification fails) when its
    p-value is below ``alpha``.  For a main whose rate equals the baseline's the check
    fails with probability at most ``alpha`` (it is conditional on the total number of
    errors, so it does not need the true rate), so a healthy stable with 0.5 % errors no
    longer fails 1 verification in 7 as "20 of 20 must succeed" did; a main answering
    3 of 20 requests with errors over a 0.5 % baseline still fails (p about 1e-4).

    Without a baseline (``baseline_total == 0``) it is a one-sided exact binomial test
    against ``fallback_rate``: with the default 0 any error counts as credibly above,
    which is the old "every request must succeed" rule.
    """
    _check_counts(errors, total)
    _check_counts(baseline_errors, baseline_total)
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be between 0 and 1, got {alpha!r}")
    if errors == 0:
        return False
    if baseline_total == 0:
        return binomial_sf(errors, total, fallback_rate) < alpha
    return fisher_exact_greater(errors, total, baseline_errors, baseline_total) < alpha


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
