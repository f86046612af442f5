"""The canary judge: a verdict per interval and for the stage, from live measurements.

Every verdict is one of ``pass``, ``fail`` or ``insufficient`` (not enough evidence).
Insufficient evidence is never a pass: an interval is ``insufficient`` as soon as one
check lacks data (and none failed), and a stage passes only when at least one interval
passed and no more than ``max_insufficient_intervals`` were insufficient.

Checks per interval (names are stable; the gate, plot and reports key on them):

==============================  ====================================================
``error_rate``                  canary HTTP error rate <= ``max_error_rate``, judged with
                                evidence (see below; insufficient below ``min_requests``
                                canary requests in the interval)
``p95_latency``                 canary p95 latency <= ``max_p95_latency_ms``, judged with
                                evidence: "p95 <= L" is "at most 5 % of responses slower
                                than L"
``health_failure_share``        share of failed /health probes per canary replica
                                <= ``max_health_failure_share``, judged with evidence
``restarts``                    restarts of canary replicas (platform status) <= ``max_restarts``
``health_consecutive_failures`` consecutive failed canary /health probes per replica
                                <= ``max_consecutive_health_failures``
``no_success``                  no stretch of ``no_success_window`` seconds without a
                                successful canary request
``sustained_error_rate``        the error rate (rolling over a quarter of the window) did
                                not stay above ``sustained_error_rate`` for
                                ``sustained_error_window`` seconds
``slow_responses``              the median latency (rolling likewise) did not stay above
                                ``slow_response_ms`` for ``slow_response_window`` seconds
``compare_error_rate``          canary error rate not significantly higher than stable's
``compare_latency``             canary latency not significantly higher than stable's
==============================  ====================================================

The alarm rules (restarts, health, no-success, sustained, slow) are the seed's
deterministic rules: they look at the whole history so a condition that began in an
earlier interval is measured in full, and report a condition that is still going on in,
or ended in, the current interval.

Threshold checks with evidence
------------------------------
``error_rate``, ``p95_latency`` and ``health_failure_share`` keep the user's contract
("error rate <= 1 %", "p95 <= 500 ms", "at most 5 % of /health probes fail") but judge
it with a one-sided exact binomial test (Clopper-Pearson bound) instead of a point
estimate:

* **fail** when the data say, at the configured confidence, that the canary is over the
  threshold: the lower confidence bound of the canary's error rate (share of responses
  slower than the limit; share of failed probes of a replica) is above the limit;
* **pass** when the data are consistent with being within it (the lower bound is at or
  below the limit) and there is enough data (``min_requests`` canary requests in the
  interval; at least one /health probe);
* **insufficient** otherwise (too little data, or the look is beyond the planned ones).

At every look each check tests two windows: everything since the hold began (power for
small excesses) and the current interval (a fault that starts late is not diluted by
the good part of the hold).

False-alarm guarantee over all looks
------------------------------------
``judge.alpha`` (default 0.005) is the false-alarm budget of the threshold checks over
the whole hold; ``judge.comparison.alpha`` (default 0.005) that of the comparison.  Each
budget is spent by Bonferroni over its tests, the two windows and the planned looks
(``ceil(hold / interval)``, passed by the gate): a threshold test runs at ``alpha / (checks
* 2 * planned_looks)`` (the first look has one window and uses both shares).  By the
union bound, whatever the correlation between looks:

* a canary whose true error rate, share of responses slower than the p95 limit and share
  of failed /health probes are all within their limits fails a threshold check at some
  look of the hold with probability at most ``judge.alpha``;
* a canary that behaves exactly like stable fails the comparison at some look with
  probability at most ``judge.comparison.alpha``;

so an A/A canary is rolled back by the statistical checks with probability at most
``judge.alpha + judge.comparison.alpha`` (1 % by default).  A look beyond the plan has no
alpha left: the statistical checks report ``insufficient`` instead of testing.  The bound
assumes independent requests; it is conservative (Bonferroni ignores the overlap of the
looks and the binomial is discrete), the benchmark measures the real rate.

Stable is the control
---------------------
Stable is measured in the same window by the same sampler.  When a threshold check finds
the canary over the limit and stable's own estimate in that window is over it too, the
check says "stable also exceeds ...: the environment, not the canary" and does not blame
the canary: ``judge.stable_exceeds`` decides the verdict -- ``insufficient`` (default; it
counts against ``max_insufficient_intervals``), ``hold`` (insufficient, but the interval
does not count against ``max_insufficient_intervals``; the stage still needs a passing
interval) or ``fail`` (the absolute contract wins).  Never ``pass``.  A canary that is
worse than stable is caught by the comparison regardless.

Canary-versus-stable comparison
-------------------------------
Two one-sided tests on the same two windows:

* errors: Fisher's exact test (hypergeometric tail) that the canary's error proportion is
  higher than stable's; it fails only when also ``canary rate - stable rate >
  error_rate_margin``;
* latency: Mann-Whitney U (normal approximation, tie and continuity corrections) that the
  canary's latencies are stochastically greater than stable's *shifted by the tolerance*
  (``stable * (1 + latency_tolerance) + latency_tolerance_ms``), i.e. the null hypothesis is
  "the canary is at most that much slower".  Host load that slows both versions in the
  window slows stable too, so it does not fail the canary.

Below ``min_samples`` per version the comparison is ``insufficient``.

Stopping early
--------------
:meth:`Judge.stage_can_still_pass` tells the controller, after each interval, whether
the stage can still pass with the looks that remain (a failed interval, or more
insufficient intervals than ``max_insufficient_intervals`` allows, or no look left
without a pass): if not, roll back at once.
"""

from __future__ import annotations

import bisect
import itertools
import math
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from pytest_release.canary.samples import ReplicaStatus, Sample
from pytest_release.canary.stats import (
    binomial_lower_bound,
    binomial_sf,
    fisher_exact_greater,
    mann_whitney_greater,
    median,
    percentile,
)
from pytest_release.config_types import parse_duration

Verdict = Literal["pass", "fail", "insufficient"]
VERDICTS: tuple[Verdict, ...] = ("pass", "fail", "insufficient")
_SEVERITY: Mapping[str, int] = {"pass": 0, "insufficient": 1, "fail": 2}
_COMPARISON_TESTS = 2  # errors and latency share alpha
_P95 = 95.0


class ComparisonConfig(BaseModel):
    """Statistical canary-versus-stable comparison (the ``judge.comparison`` table)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(
        default=True,
        description="Run the compare_error_rate and compare_latency checks of the canary "
        "against stable; false: thresholds only.",
    )
    alpha: float = Field(
        default=0.005,
        gt=0.0,
        lt=1.0,
        description="False-alarm budget of the comparison over the whole hold: a canary that "
        "behaves like stable fails compare_error_rate or compare_latency at some look with "
        "probability at most this (Bonferroni over both tests, two windows and the planned "
        "looks). Together with judge.alpha: 1 % false rollbacks of an A/A canary at most.",
    )
    planned_looks: int = Field(
        default=15, ge=1, description="Intervals alpha is spread over (ceil(hold/interval))."
    )
    min_samples: int = Field(default=30, ge=2, description="Per version, else insufficient.")
    error_rate_margin: float = Field(
        default=0.0,
        ge=0.0,
        le=1.0,
        description="Fail only if canary error rate exceeds stable's by more than this.",
    )
    latency_tolerance: float = Field(
        default=0.2, ge=0.0, description="Relative slowdown tolerated (0.2 = 20 %)."
    )
    latency_tolerance_ms: float = Field(
        default=5.0, ge=0.0, description="Absolute slowdown tolerated, in ms."
    )


class JudgeConfig(BaseModel):
    """Thresholds of the canary judge (the ``judge`` sub-table of the canary gate)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_error_rate: float = Field(
        default=0.01,
        ge=0.0,
        le=1.0,
        description="The canary's HTTP error rate must be at most this fraction (default "
        "0.01: error rate <= 1 %). Judged with evidence: an interval fails when the lower "
        "confidence bound of the error rate (since the hold began, or in the interval) is "
        "above it.",
    )
    max_p95_latency_ms: float = Field(
        default=500.0,
        gt=0.0,
        description="The canary's p95 latency must be at most this, in ms (default: p95 <= "
        "500 ms). Judged with evidence: an interval fails when the data show, at the "
        "configured confidence, more than 5 % of canary responses slower than this.",
    )
    alpha: float = Field(
        default=0.005,
        gt=0.0,
        lt=1.0,
        description="False-alarm budget of the threshold checks (error_rate, p95_latency, "
        "health_failure_share) over the whole hold: a canary within all of them fails one at "
        "some look with probability at most this (Bonferroni over the checks, two windows and "
        "the planned looks; see docs/judge.md).",
    )
    stable_exceeds: Literal["insufficient", "hold", "fail"] = Field(
        default="insufficient",
        description="Verdict of a threshold check when the canary is over the threshold and "
        "stable, measured in the same window, is over it too (the environment, not the "
        "canary): insufficient (counts against max_insufficient_intervals), hold "
        "(insufficient, but the interval does not count against max_insufficient_intervals) "
        "or fail (the absolute threshold wins). Never pass.",
    )
    max_health_failure_share: float | None = Field(
        default=0.05,
        ge=0.0,
        le=1.0,
        description="Share of failed /health probes allowed per canary replica (default 0.05: "
        "5 %), judged with evidence like the error rate; false: check off. At 5 % random "
        "failures a 3-failures-in-a-row readiness rule evicts a replica about once in 8000 "
        "probes (2 h at 1 s probes); at 20 % every 2 minutes: flapping shows above 5 %.",
    )
    max_restarts: int | None = Field(
        default=0,
        ge=0,
        description="Canary replica restarts allowed in total (default 0: any restart "
        "fails); false: check off.",
    )
    max_consecutive_health_failures: int | None = Field(
        default=3,
        ge=0,
        description="Fail when more than this many /health probes of one canary replica "
        "fail in a row (default 3); false: check off.",
    )
    no_success_window: float = Field(
        default=30.0,
        description="Fail when this many seconds pass without a successful canary request.",
    )
    sustained_error_rate: float = Field(
        default=0.05,
        ge=0.0,
        le=1.0,
        description="Alarm error rate, a fraction (0.05 = 5 %): fail when the canary's "
        "rolling error rate stays above it for sustained_error_window.",
    )
    sustained_error_window: float = Field(
        default=120.0,
        description="Seconds the error rate must stay above sustained_error_rate to fail "
        "(the rate rolls over a quarter of this window).",
    )
    slow_response_ms: float = Field(
        default=5000.0,
        gt=0.0,
        description="Alarm latency, in ms: fail when the canary's rolling median latency "
        "stays above it for slow_response_window.",
    )
    slow_response_window: float = Field(
        default=60.0,
        description="Seconds the median latency must stay above slow_response_ms to fail "
        "(the median rolls over a quarter of this window).",
    )
    min_requests: int = Field(
        default=20, ge=1, description="Canary requests an interval needs, else insufficient."
    )
    max_insufficient_intervals: int = Field(
        default=0, ge=0, description="Insufficient intervals a passing stage may contain."
    )
    comparison: ComparisonConfig = Field(
        default_factory=ComparisonConfig,
        description="Statistical comparison of the canary with stable.",
    )
    http_checks: bool = Field(
        default=True,
        description="false: judge the canary on platform status only (restarts, and Prometheus "
        "queries if any), for platforms whose pods this process cannot send requests to.",
    )

    @field_validator("max_health_failure_share", mode="before")
    @classmethod
    def _disable_share(cls, value: object) -> object:
        if value is False:
            return None
        if value is True:
            raise ValueError("expected a fraction such as 0.05, or false to disable the check")
        return value

    @field_validator("max_restarts", "max_consecutive_health_failures", mode="before")
    @classmethod
    def _disable(cls, value: object) -> object:
        # TOML has no null: ``false`` switches the check off.
        if value is False:
            return None
        if value is True:
            raise ValueError("expected a whole number, or false to disable the check, got true")
        return value

    @field_validator(
        "no_success_window", "sustained_error_window", "slow_response_window", mode="before"
    )
    @classmethod
    def _window(cls, value: object) -> float:
        seconds = parse_duration(value)
        if seconds <= 0:
            raise ValueError(f"a window must be longer than 0 s, got {value!r}")
        return seconds


@dataclass(frozen=True)
class CheckResult:
    """One check of one interval (or of the stage): what was measured against what."""

    name: str
    verdict: Verdict
    value: float | None
    threshold: float | None
    unit: str
    window_start: float
    window_end: float
    samples: int
    message: str
    # True when stable, measured in the same window, is over the threshold too: the
    # environment, not the canary (the verdict then follows judge.stable_exceeds).
    stable_exceeds: bool = False
    # Extra (key, value) pairs reported as JUnit properties judge.<check>.<key>, e.g. the
    # failed /health probes per replica.
    details: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class CanaryVerdict:
    verdict: Verdict
    checks: tuple[CheckResult, ...]
    window_start: float
    window_end: float

    def check(self, name: str) -> CheckResult | None:
        return next((c for c in self.checks if c.name == name), None)

    @property
    def failed_checks(self) -> tuple[CheckResult, ...]:
        return tuple(c for c in self.checks if c.verdict == "fail")

    def properties(self) -> list[tuple[str, str]]:
        """JUnit ``user_properties``: the verdict, then value/threshold/window/samples per
        check, all as strings (``judge.<check>.<field>``)."""
        props: list[tuple[str, str]] = [
            ("judge.verdict", self.verdict),
            ("judge.window", format_window(self.window_start, self.window_end)),
            ("judge.window_start", _iso(self.window_start)),
            ("judge.window_end", _iso(self.window_end)),
        ]
        for check in self.checks:
            prefix = f"judge.{check.name}"
            props.extend(
                [
                    (f"{prefix}.verdict", check.verdict),
                    (f"{prefix}.value", _number(check.value)),
                    (f"{prefix}.threshold", _number(check.threshold)),
                    (f"{prefix}.unit", check.unit),
                    (f"{prefix}.window", format_window(check.window_start, check.window_end)),
                    (f"{prefix}.samples", str(check.samples)),
                ]
            )
            if check.stable_exceeds:
                props.append((f"{prefix}.stable_exceeds", "true"))
            props.extend((f"{prefix}.{key}", value) for key, value in check.details)
        return props

    def failure_message(self) -> str:
        """Human text: every failing check with value and threshold (or, for an
        insufficient verdict, what evidence was missing)."""
        window = format_window(self.window_start, self.window_end)
        if self.verdict == "fail":
            return "\n".join(c.message for c in self.checks if c.verdict == "fail")
        if self.verdict == "insufficient":
            missing = [c.message for c in self.checks if c.verdict == "insufficient"]
            lines = [f"insufficient evidence over {window}:"]
            lines.extend(f"  {m}" for m in missing)
            return "\n".join(lines) if missing else f"insufficient evidence over {window}"
        return f"all {len(self.checks)} canary checks passed over {window}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (for xdist workers, run dirs, the ledger)."""
        return {
            "verdict": self.verdict,
            "window_start": self.window_start,
            "window_end": self.window_end,
            "checks": [asdict(c) for c in self.checks],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CanaryVerdict:
        return cls(
            verdict=_verdict(data["verdict"]),
            window_start=float(data["window_start"]),
            window_end=float(data["window_end"]),
            checks=tuple(
                CheckResult(
                    **{
                        **c,
                        "verdict": _verdict(c["verdict"]),
                        "details": tuple((str(k), str(v)) for k, v in c.get("details", ())),
                    }
                )
                for c in data["checks"]
            ),
        )


def _verdict(value: object) -> Verdict:
    for verdict in VERDICTS:
        if value == verdict:
            return verdict
    raise ValueError(f"unknown verdict {value!r}, expected one of {', '.join(VERDICTS)}")


# -- formatting ------------------------------------------------------------------------


def _clock(timestamp: float) -> str:
    return time.strftime("%H:%M:%S", time.gmtime(timestamp))


def _iso(timestamp: float) -> str:
    whole = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(timestamp))
    return f"{whole}.{round((timestamp % 1) * 1000) % 1000:03d}Z"


def format_window(start: float, end: float) -> str:
    return f"{_clock(start)}-{_clock(end)} UTC"


def format_percent(fraction: float) -> str:
    percent = fraction * 100.0
    if percent == 0.0 or percent >= 0.1:
        return f"{percent:.1f}%"
    return f"{percent:.2g}%"


def format_ms(value: float) -> str:
    return f"{value:.0f} ms" if abs(value) >= 10 else f"{value:.1f} ms"


def format_seconds(value: float) -> str:
    return f"{value:.0f} s" if abs(value) >= 10 else f"{value:.1f} s"


def format_confidence(alpha: float) -> str:
    """``1 - alpha`` as a percentage with the digits that matter (99.98%)."""
    confidence = (1.0 - alpha) * 100.0
    for digits in range(0, 8):
        text = f"{confidence:.{digits}f}"
        if float(text) < 100.0 and abs(float(text) - confidence) <= alpha * 100.0 / 2:
            return f"{text}%"
    return f"{confidence:.8f}%"


def threshold_text(name: str, limit: float, unit: str) -> str:
    if name == "p95_latency":
        return "the p95 limit"
    return format_percent(limit)


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:.6g}"


# -- helpers over samples --------------------------------------------------------------


def _canary_http(samples: Iterable[Sample]) -> list[Sample]:
    return [s for s in samples if s.target == "canary" and s.kind == "http"]


def _stable_http(samples: Iterable[Sample]) -> list[Sample]:
    return [s for s in samples if s.target == "stable" and s.kind == "http"]


def _sustained_runs(
    samples: Sequence[Sample],
    lookback: float,
    add: Callable[[Sample], None],
    remove: Callable[[Sample], None],
    condition: Callable[[], bool],
) -> list[tuple[float, float]]:
    """Runs (first, last timestamp) of consecutive samples at which ``condition`` held,
    evaluated at each sample over the samples of the trailing ``lookback`` seconds
    (maintained incrementally through ``add``/``remove``)."""
    runs: list[tuple[float, float]] = []
    window: deque[Sample] = deque()
    run_start: float | None = None
    last_true = 0.0
    for sample in samples:
        window.append(sample)
        add(sample)
        while window and window[0].timestamp <= sample.timestamp - lookback:
            remove(window.popleft())
        if condition():
            if run_start is None:
                run_start = sample.timestamp
            last_true = sample.timestamp
        elif run_start is not None:
            runs.append((run_start, last_true))
            run_start = None
    if run_start is not None:
        runs.append((run_start, last_true))
    return runs


# -- the judge ------------------------------------------------------------------------


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


class Judge:
    """Turns samples and replica statuses into verdicts (see the module docstring)."""

    def __init__(self, config: JudgeConfig, *, planned_looks: int | None = None) -> None:
        if planned_looks is not None and planned_looks < 1:
            raise ValueError(f"planned_looks must be at least 1, got {planned_looks}")
        self.config = config
        self.planned_looks = planned_looks or config.comparison.planned_looks
        self._looks = 0

    @property
    def threshold_checks(self) -> int:
        """Statistical threshold checks sharing ``judge.alpha``."""
        return 3 if self.config.max_health_failure_share is not None else 2

    @property
    def alpha_per_test(self) -> float:
        """Significance level of each comparison test at each look and window (Bonferroni
        over both tests, the two windows and the planned looks)."""
        return self.config.comparison.alpha / (_COMPARISON_TESTS * 2 * self.planned_looks)

    @property
    def threshold_alpha_per_test(self) -> float:
        """Significance level of each threshold test at each look and window."""
        return self.config.alpha / (self.threshold_checks * 2 * self.planned_looks)

    # -- interval ----------------------------------------------------------------------
    def judge_interval(
        self,
        samples: Sequence[Sample],
        statuses: Sequence[ReplicaStatus],
        window_start: float,
        window_end: float,
        history: Sequence[Sample] = (),
        *,
        look: int | None = None,
    ) -> CanaryVerdict:
        """Verdict for ``[window_start, window_end)``.

        ``samples`` are the interval's samples; ``history`` all samples of the hold so far
        (with or without the current interval: only its part before ``window_start`` is
        used).  ``look`` is the 1-based interval number; by default the judge counts calls.
        """
        if window_end < window_start:
            raise ValueError(f"window ends before it starts: {window_start!r} > {window_end!r}")
        self._looks += 1
        look_number = look if look is not None else self._looks
        earlier = [s for s in history if s.timestamp < window_start]
        everything = sorted([*earlier, *samples], key=lambda s: s.timestamp)
        hold_start = min(window_start, everything[0].timestamp) if everything else window_start
        current = _canary_http(samples)
        windows = self._windows(everything, samples, hold_start, window_start, window_end)
        cfg = self.config
        checks: list[CheckResult] = [
            self._error_rate(windows, len(current), window_start, window_end, look_number),
            self._p95(windows, current, window_start, window_end, look_number),
        ]
        if cfg.max_restarts is not None:
            checks.append(self._restarts(statuses, cfg.max_restarts, window_start, window_end))
        if not cfg.http_checks:
            checks = [c for c in checks if c.name == "restarts"]
            return CanaryVerdict(
                verdict=_worst(c.verdict for c in checks) if checks else "insufficient",
                checks=tuple(checks),
                window_start=window_start,
                window_end=window_end,
            )
        if cfg.max_health_failure_share is not None:
            checks.append(
                self._health_share(everything, hold_start, window_start, window_end, look_number)
            )
        if cfg.max_consecutive_health_failures is not None:
            checks.append(
                self._health(
                    everything, cfg.max_consecutive_health_failures, window_start, window_end
                )
            )
        canary_all = _canary_http(everything)
        checks.append(self._no_success(canary_all, hold_start, window_start, window_end))
        checks.append(self._sustained_errors(canary_all, window_start, window_end))
        checks.append(self._slow(canary_all, window_start, window_end))
        if cfg.comparison.enabled:
            checks.extend(self._compare(windows, hold_start, window_end, look_number))
        return CanaryVerdict(
            verdict=_worst(c.verdict for c in checks),
            checks=tuple(checks),
            window_start=window_start,
            window_end=window_end,
        )

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

    def _binomial(
        self,
        windows: Sequence[_Window],
        limit: float,
        count: Callable[[Sequence[Sample]], tuple[int, int]],
    ) -> _BinomialTest:
        """The window with the smallest p-value of "the canary's share is at most
        ``limit``" (exact binomial), with stable's counts in the same window."""
        best: _BinomialTest | None = None
        for window in windows:
            k, n = count(window.canary)
            stable_k, stable_n = count(window.stable)
            p = binomial_sf(k, n, limit) if n else 1.0
            test = _BinomialTest(window, k, n, p, stable_k, stable_n)
            if best is None or test.p_value < best.p_value:
                best = test
        assert best is not None
        return best

    def _threshold_result(
        self,
        *,
        name: str,
        test: _BinomialTest,
        alpha: float,
        limit: float,
        value: float | None,
        threshold: float,
        unit: str,
        estimate: str,
        over: str,
        within: str,
        stable_estimate: str,
        stable_over: bool,
        counts: str,
        details: tuple[tuple[str, str], ...] = (),
    ) -> CheckResult:
        lower = binomial_lower_bound(test.k, test.n, alpha) if test.n else 0.0
        confidence = f"{format_confidence(alpha)} confidence"
        window = test.window
        where = f"over {format_window(window.start, window.end)} ({window.label})"
        credible = test.p_value < alpha
        verdict: Verdict
        if credible and stable_over:
            mode = self.config.stable_exceeds
            verdict = "fail" if mode == "fail" else "insufficient"
            message = (
                f"{estimate} {over}, but stable also exceeds {threshold_text(name, limit, unit)} "
                f"({stable_estimate}) in the same window: the environment, not the canary "
                f"(judge.stable_exceeds = {mode}) {where} ({counts})"
            )
        elif credible:
            verdict = "fail"
            message = (
                f"{estimate} {over}: the lower {confidence} bound {format_percent(lower)} is "
                f"above {format_percent(limit)} {where} ({counts})"
            )
        else:
            verdict = "pass"
            message = (
                f"{estimate} consistent with {within} (lower {confidence} bound "
                f"{format_percent(lower)}) {where} ({counts})"
            )
        return CheckResult(
            name=name,
            verdict=verdict,
            value=value,
            threshold=threshold,
            unit=unit,
            window_start=window.start,
            window_end=window.end,
            samples=test.n,
            message=message,
            stable_exceeds=credible and stable_over,
            details=details,
        )

    def _error_rate(
        self, windows: Sequence[_Window], in_interval: int, start: float, end: float, look: int
    ) -> CheckResult:
        limit = self.config.max_error_rate
        window = format_window(start, end)
        beyond = self._beyond_plan(look, f"judge.alpha {self.config.alpha}")
        if in_interval < self.config.min_requests or beyond:
            return CheckResult(
                name="error_rate",
                verdict="insufficient",
                value=None,
                threshold=limit * 100.0,
                unit="%",
                window_start=start,
                window_end=end,
                samples=in_interval,
                message=beyond
                or f"canary error rate: only {in_interval} canary requests over {window}, "
                f"need at least {self.config.min_requests} (judge.min_requests)",
            )

        def count(chosen: Sequence[Sample]) -> tuple[int, int]:
            return sum(1 for s in chosen if not s.ok), len(chosen)

        test = self._binomial(windows, limit, count)
        rate = test.k / test.n
        stable_rate = test.stable_k / test.stable_n if test.stable_n else None
        return self._threshold_result(
            name="error_rate",
            test=test,
            alpha=self._look_alpha(self.threshold_alpha_per_test, windows),
            limit=limit,
            value=rate * 100.0,
            threshold=limit * 100.0,
            unit="%",
            estimate=f"canary error rate {format_percent(rate)}",
            over=f"> {format_percent(limit)}",
            within=f"<= {format_percent(limit)}",
            stable_estimate="no stable requests"
            if stable_rate is None
            else f"stable error rate {format_percent(stable_rate)}, n={test.stable_n}",
            stable_over=stable_rate is not None and stable_rate > limit,
            counts=f"n={test.n}, {test.k} errors; stable n={test.stable_n}, {test.stable_k} errors",
        )

    def _p95(
        self,
        windows: Sequence[_Window],
        current: Sequence[Sample],
        start: float,
        end: float,
        look: int,
    ) -> CheckResult:
        limit = self.config.max_p95_latency_ms
        window = format_window(start, end)
        n_current = sum(1 for s in current if s.latency_ms is not None)
        beyond = self._beyond_plan(look, f"judge.alpha {self.config.alpha}")
        if n_current < self.config.min_requests or beyond:
            return CheckResult(
                name="p95_latency",
                verdict="insufficient",
                value=None,
                threshold=limit,
                unit="ms",
                window_start=start,
                window_end=end,
                samples=n_current,
                message=beyond
                or f"canary p95 latency: only {n_current} canary responses over {window}, "
                f"need at least {self.config.min_requests} (judge.min_requests)",
            )

        def count(chosen: Sequence[Sample]) -> tuple[int, int]:
            latencies = [s.latency_ms for s in chosen if s.latency_ms is not None]
            return sum(1 for v in latencies if v > limit), len(latencies)

        share = 1.0 - _P95 / 100.0
        test = self._binomial(windows, share, count)
        canary_latencies = [s.latency_ms for s in test.window.canary if s.latency_ms is not None]
        stable_latencies = [s.latency_ms for s in test.window.stable if s.latency_ms is not None]
        p95 = percentile(canary_latencies, _P95)
        stable_p95 = percentile(stable_latencies, _P95) if stable_latencies else None
        return self._threshold_result(
            name="p95_latency",
            test=test,
            alpha=self._look_alpha(self.threshold_alpha_per_test, windows),
            limit=share,
            value=p95,
            threshold=limit,
            unit="ms",
            estimate=f"canary p95 latency {format_ms(p95)} "
            f"({format_percent(test.k / test.n)} of responses slower than {format_ms(limit)})",
            over=f"> {format_ms(limit)}",
            within=f"p95 <= {format_ms(limit)}",
            stable_estimate="no stable responses"
            if stable_p95 is None
            else f"stable p95 {format_ms(stable_p95)}, n={test.stable_n}",
            stable_over=stable_p95 is not None and stable_p95 > limit,
            counts=f"n={test.n}, {test.k} slower than {format_ms(limit)}; stable n="
            f"{test.stable_n}, {test.stable_k} slower",
        )

    def _health_share(
        self,
        everything: Sequence[Sample],
        hold_start: float,
        start: float,
        end: float,
        look: int,
    ) -> CheckResult:
        limit = self.config.max_health_failure_share
        assert limit is not None
        probes = [s for s in everything if s.kind == "health" and s.timestamp < end]
        canary = [s for s in probes if s.target == "canary"]
        stable = [s for s in probes if s.target == "stable"]
        in_window = sum(1 for s in canary if s.timestamp >= start)
        beyond = self._beyond_plan(look, f"judge.alpha {self.config.alpha}")
        # A loaded sampler can miss the probes of one short interval: the hold's probes
        # so far are the evidence; none at all is insufficient.
        if not canary or beyond:
            return CheckResult(
                name="health_failure_share",
                verdict="insufficient",
                value=None,
                threshold=limit * 100.0,
                unit="%",
                window_start=start,
                window_end=end,
                samples=in_window,
                message=beyond
                or f"canary health: no /health probe of the canary since the hold began "
                f"({format_window(hold_start, end)}; set judge.max_health_failure_share = "
                "false to disable this check)",
            )
        by_replica: dict[str, list[Sample]] = {}
        for probe in canary:
            by_replica.setdefault(probe.replica or "canary", []).append(probe)
        details: list[tuple[str, str]] = []
        per_replica: list[str] = []
        for replica, replica_probes in sorted(by_replica.items()):
            failed = sum(1 for s in replica_probes if not s.ok)
            details += [
                (f"{replica}.probes", str(len(replica_probes))),
                (f"{replica}.failed", str(failed)),
                (f"{replica}.failed_share", _number(failed / len(replica_probes))),
            ]
            per_replica.append(
                f"{replica} {failed} of {len(replica_probes)} failed "
                f"({format_percent(failed / len(replica_probes))})"
            )
        # Bonferroni over the replicas too: the worst replica is tested.
        replicas = len(by_replica)
        worst: tuple[_BinomialTest, str] | None = None
        for replica, replica_probes in by_replica.items():
            windows = [
                _Window("since the hold began", hold_start, end, tuple(replica_probes), ()),
            ]
            if hold_start < start:
                recent = tuple(s for s in replica_probes if s.timestamp >= start)
                windows.append(_Window("in the interval", start, end, recent, ()))

            def count(chosen: Sequence[Sample]) -> tuple[int, int]:
                return sum(1 for s in chosen if not s.ok), len(chosen)

            test = self._binomial(windows, limit, count)
            if worst is None or test.p_value < worst[0].p_value:
                worst = (test, replica)
        assert worst is not None
        test, replica = worst
        n_windows = 2 if hold_start < start else 1
        alpha = self.threshold_alpha_per_test * 2 / n_windows / replicas
        stable_failed = sum(1 for s in stable if not s.ok)
        stable_share = stable_failed / len(stable) if stable else None
        return self._threshold_result(
            name="health_failure_share",
            test=test,
            alpha=alpha,
            limit=limit,
            value=test.k / test.n * 100.0 if test.n else 0.0,
            threshold=limit * 100.0,
            unit="%",
            estimate=f"canary /health failures on {replica} "
            f"{format_percent(test.k / test.n if test.n else 0.0)} of probes",
            over=f"> {format_percent(limit)}",
            within=f"<= {format_percent(limit)}",
            stable_estimate="no stable probes"
            if stable_share is None
            else f"stable {format_percent(stable_share)} of {len(stable)} probes failed",
            stable_over=stable_share is not None and stable_share > limit,
            counts="; ".join(per_replica),
            details=tuple(details),
        )

    @staticmethod
    def _restarts(
        statuses: Sequence[ReplicaStatus], limit: int, start: float, end: float
    ) -> CheckResult:
        canary = [s for s in statuses if s.version == "canary"]
        window = format_window(start, end)
        if not canary:
            return CheckResult(
                name="restarts",
                verdict="insufficient",
                value=None,
                threshold=float(limit),
                unit="restarts",
                window_start=start,
                window_end=end,
                samples=0,
                message=f"canary restarts: the platform reported no canary replica over "
                f"{window} (set judge.max_restarts = false to disable this check)",
            )
        per_replica: dict[str, int] = {}
        for status in canary:
            per_replica[status.name] = max(per_replica.get(status.name, 0), status.restarts)
        total = sum(per_replica.values())
        failed = total > limit
        restarted = ", ".join(f"{name} x{count}" for name, count in per_replica.items() if count)
        detail = f" ({restarted})" if restarted else ""
        return CheckResult(
            name="restarts",
            verdict="fail" if failed else "pass",
            value=float(total),
            threshold=float(limit),
            unit="restarts",
            window_start=start,
            window_end=end,
            samples=len(canary),
            message=f"canary replicas restarted {total} times{detail} "
            f"{'>' if failed else '<='} {limit} over {window} "
            f"({len(per_replica)} replicas, {len(canary)} status reports)",
        )

    @staticmethod
    def _health(everything: Sequence[Sample], limit: int, start: float, end: float) -> CheckResult:
        probes = [s for s in everything if s.target == "canary" and s.kind == "health"]
        in_window = sum(1 for s in probes if s.timestamp >= start)
        window = format_window(start, end)
        # A loaded sampler can miss the probes of one short interval; runs of failures
        # are measured over the whole hold, so only no probe at all is insufficient.
        if not probes:
            return CheckResult(
                name="health_consecutive_failures",
                verdict="insufficient",
                value=None,
                threshold=float(limit),
                unit="probes",
                window_start=start,
                window_end=end,
                samples=0,
                message=f"canary health: no /health probe of the canary over {window} (set "
                "judge.max_consecutive_health_failures = false to disable this check)",
            )
        by_replica: dict[str, list[Sample]] = {}
        for probe in probes:
            by_replica.setdefault(probe.replica or "canary", []).append(probe)
        worst = (0, start, start, "")
        for replica, replica_probes in by_replica.items():
            run = 0
            run_start = run_end = 0.0
            pending: list[Sample | None] = [*replica_probes, None]
            for maybe in pending:
                if maybe is not None and not maybe.ok:
                    probe = maybe
                    if run == 0:
                        run_start = probe.timestamp
                    run += 1
                    run_end = probe.timestamp
                    continue
                # A run ended (or the probes did): count it if it reaches this window.
                if run and run_end >= start and run > worst[0]:
                    worst = (run, run_start, run_end, replica)
                run = 0
        longest, run_start, run_end, replica = worst
        failed = longest > limit
        where = (
            f" on {replica} from {_clock(run_start)} to {_clock(run_end)} UTC" if longest else ""
        )
        return CheckResult(
            name="health_consecutive_failures",
            verdict="fail" if failed else "pass",
            value=float(longest),
            threshold=float(limit),
            unit="probes",
            window_start=run_start if longest else start,
            window_end=run_end if longest else end,
            samples=in_window,
            message=f"canary /health failed {longest} times in a row{where} "
            f"({'>' if failed else '<='} {limit} allowed; {in_window} probes over {window})",
        )

    def _no_success(
        self, canary: Sequence[Sample], hold_start: float, start: float, end: float
    ) -> CheckResult:
        limit = self.config.no_success_window
        successes = [s.timestamp for s in canary if s.ok and s.timestamp <= end]
        points = [hold_start, *successes, end]
        longest, gap_start, gap_end = 0.0, start, start
        for before, after in itertools.pairwise(points):
            if after > start and after - before > longest:
                longest, gap_start, gap_end = after - before, before, after
        failed = longest >= limit
        n = sum(1 for s in canary if start <= s.timestamp <= end)
        if failed:
            message = (
                f"no successful canary request for {format_seconds(longest)} "
                f"(>= {format_seconds(limit)}) over {format_window(gap_start, gap_end)} "
                f"(n={n} canary requests in the interval)"
            )
        else:
            message = (
                f"longest stretch without a successful canary request "
                f"{format_seconds(longest)} (< {format_seconds(limit)}) over "
                f"{format_window(start, end)} (n={n} canary requests)"
            )
        return CheckResult(
            name="no_success",
            verdict="fail" if failed else "pass",
            value=longest,
            threshold=limit,
            unit="s",
            window_start=gap_start,
            window_end=gap_end,
            samples=n,
            message=message,
        )

    def _sustained_errors(self, canary: Sequence[Sample], start: float, end: float) -> CheckResult:
        cfg = self.config
        counts = [0, 0]  # requests, errors

        def add(s: Sample) -> None:
            counts[0] += 1
            counts[1] += 0 if s.ok else 1

        def remove(s: Sample) -> None:
            counts[0] -= 1
            counts[1] -= 0 if s.ok else 1

        def above() -> bool:
            return counts[0] > 0 and counts[1] / counts[0] > cfg.sustained_error_rate

        window_s = cfg.sustained_error_window
        runs = _sustained_runs(canary, window_s / 4.0, add, remove, above)
        return self._sustained_result(
            "sustained_error_rate",
            runs,
            canary,
            start,
            end,
            window_s,
            f"canary error rate above {format_percent(cfg.sustained_error_rate)}",
            lambda chosen: f"{format_percent(_rate(chosen))} errors",
        )

    def _slow(self, canary: Sequence[Sample], start: float, end: float) -> CheckResult:
        cfg = self.config
        ordered: list[float] = []

        def add(s: Sample) -> None:
            if s.latency_ms is not None:
                bisect.insort(ordered, s.latency_ms)

        def remove(s: Sample) -> None:
            if s.latency_ms is not None:
                del ordered[bisect.bisect_left(ordered, s.latency_ms)]

        def slow() -> bool:
            if not ordered:
                return False
            middle = len(ordered) // 2
            value = (
                ordered[middle]
                if len(ordered) % 2
                else (ordered[middle - 1] + ordered[middle]) / 2.0
            )
            return value > cfg.slow_response_ms

        window_s = cfg.slow_response_window
        runs = _sustained_runs(canary, window_s / 4.0, add, remove, slow)

        def describe(chosen: Sequence[Sample]) -> str:
            latencies = [s.latency_ms for s in chosen if s.latency_ms is not None]
            return f"median {format_ms(median(latencies))}" if latencies else "no responses"

        return self._sustained_result(
            "slow_responses",
            runs,
            canary,
            start,
            end,
            window_s,
            f"canary median response time above {format_ms(cfg.slow_response_ms)}",
            describe,
        )

    @staticmethod
    def _sustained_result(
        name: str,
        runs: Sequence[tuple[float, float]],
        canary: Sequence[Sample],
        start: float,
        end: float,
        limit: float,
        what: str,
        describe: Callable[[Sequence[Sample]], str],
    ) -> CheckResult:
        relevant = [(a, b) for a, b in runs if b >= start]
        longest, run_start, run_end = 0.0, start, start
        for a, b in relevant:
            if b - a >= longest:
                longest, run_start, run_end = b - a, a, b
        failed = longest >= limit
        n = sum(1 for s in canary if start <= s.timestamp <= end)
        if relevant:
            chosen = [s for s in canary if run_start <= s.timestamp <= run_end]
            span = f"from {_clock(run_start)} to {_clock(run_end)} UTC, {describe(chosen)}"
        else:
            span = f"not at any time over {format_window(start, end)}"
        return CheckResult(
            name=name,
            verdict="fail" if failed else "pass",
            value=longest,
            threshold=limit,
            unit="s",
            window_start=run_start if relevant else start,
            window_end=run_end if relevant else end,
            samples=n,
            message=f"{what} for {format_seconds(longest)} "
            f"({'>=' if failed else '<'} {format_seconds(limit)}): {span}",
        )

    # -- comparison --------------------------------------------------------------------
    def _compare(
        self, windows: Sequence[_Window], hold_start: float, end: float, look: int
    ) -> list[CheckResult]:
        cmp = self.config.comparison
        cumulative = windows[0]
        alpha = self._look_alpha(self.alpha_per_test, windows)

        def insufficient(name: str, n_c: int, n_s: int, why: str) -> CheckResult:
            return CheckResult(
                name=name,
                verdict="insufficient",
                value=None,
                threshold=alpha,
                unit="p",
                window_start=hold_start,
                window_end=end,
                samples=n_c + n_s,
                message=why,
            )

        n_c, n_s = len(cumulative.canary), len(cumulative.stable)
        beyond = self._beyond_plan(look, f"judge.comparison.alpha {cmp.alpha}")
        if beyond:
            return [
                insufficient("compare_error_rate", n_c, n_s, beyond),
                insufficient("compare_latency", n_c, n_s, beyond),
            ]
        return [self._compare_errors(windows, alpha), self._compare_latency(windows, alpha)]

    def _compare_errors(self, windows: Sequence[_Window], alpha: float) -> CheckResult:
        cmp = self.config.comparison
        tested: list[tuple[float, _Window, int, int, int, int]] = []
        for window in windows:
            n_c, n_s = len(window.canary), len(window.stable)
            if min(n_c, n_s) < cmp.min_samples:
                continue
            e_c = sum(1 for s in window.canary if not s.ok)
            e_s = sum(1 for s in window.stable if not s.ok)
            p = fisher_exact_greater(e_c, n_c, e_s, n_s)
            if e_c / n_c - e_s / n_s <= cmp.error_rate_margin:
                p = max(p, alpha)  # within the margin: not a failure whatever p says
            tested.append((p, window, e_c, n_c, e_s, n_s))
        if not tested:
            cumulative = windows[0]
            n_c, n_s = len(cumulative.canary), len(cumulative.stable)
            return CheckResult(
                name="compare_error_rate",
                verdict="insufficient",
                value=None,
                threshold=alpha,
                unit="p",
                window_start=cumulative.start,
                window_end=cumulative.end,
                samples=n_c + n_s,
                message=f"canary vs stable error rate: {n_c} canary and {n_s} stable requests "
                f"over {format_window(cumulative.start, cumulative.end)}, need "
                f"{cmp.min_samples} each (judge.comparison.min_samples)",
            )
        p, window, e_c, n_c, e_s, n_s = min(tested, key=lambda t: t[0])
        rate_c, rate_s = e_c / n_c, e_s / n_s
        failed = p < alpha
        relation = "significantly higher than" if failed else "not significantly above"
        margin = (
            f", margin {format_percent(cmp.error_rate_margin)}" if cmp.error_rate_margin else ""
        )
        return CheckResult(
            name="compare_error_rate",
            verdict="fail" if failed else "pass",
            value=p,
            threshold=alpha,
            unit="p",
            window_start=window.start,
            window_end=window.end,
            samples=n_c + n_s,
            message=f"canary error rate {format_percent(rate_c)} {relation} stable "
            f"{format_percent(rate_s)} (Fisher exact one-sided p={p:.2g} "
            f"{'<' if failed else '>='} alpha {alpha:.2g}{margin}) over "
            f"{format_window(window.start, window.end)} ({window.label}; n={n_c} canary, "
            f"{n_s} stable)",
        )

    def _compare_latency(self, windows: Sequence[_Window], alpha: float) -> CheckResult:
        cmp = self.config.comparison
        tested: list[tuple[float, _Window, list[float], list[float]]] = []
        for window in windows:
            lat_c = [s.latency_ms for s in window.canary if s.latency_ms is not None]
            lat_s = [s.latency_ms for s in window.stable if s.latency_ms is not None]
            if min(len(lat_c), len(lat_s)) < cmp.min_samples:
                continue
            shifted = [v * (1.0 + cmp.latency_tolerance) + cmp.latency_tolerance_ms for v in lat_s]
            tested.append((mann_whitney_greater(lat_c, shifted).p_value, window, lat_c, lat_s))
        if not tested:
            cumulative = windows[0]
            n_c = sum(1 for s in cumulative.canary if s.latency_ms is not None)
            n_s = sum(1 for s in cumulative.stable if s.latency_ms is not None)
            return CheckResult(
                name="compare_latency",
                verdict="insufficient",
                value=None,
                threshold=alpha,
                unit="p",
                window_start=cumulative.start,
                window_end=cumulative.end,
                samples=n_c + n_s,
                message=f"canary vs stable latency: {n_c} canary and {n_s} stable responses "
                f"over {format_window(cumulative.start, cumulative.end)}, need "
                f"{cmp.min_samples} each (judge.comparison.min_samples)",
            )
        p, window, lat_c, lat_s = min(tested, key=lambda t: t[0])
        failed = p < alpha
        relation = "significantly slower than" if failed else "not significantly slower than"
        tolerance = (
            f"stable +{cmp.latency_tolerance * 100:.0f}% +{format_ms(cmp.latency_tolerance_ms)}"
        )
        return CheckResult(
            name="compare_latency",
            verdict="fail" if failed else "pass",
            value=p,
            threshold=alpha,
            unit="p",
            window_start=window.start,
            window_end=window.end,
            samples=len(lat_c) + len(lat_s),
            message=f"canary latency (median {format_ms(median(lat_c))}, p95 "
            f"{format_ms(percentile(lat_c, 95.0))}) {relation} {tolerance} "
            f"(median {format_ms(median(lat_s))}, p95 "
            f"{format_ms(percentile(lat_s, 95.0))}, same window, same sampler; Mann-Whitney "
            f"one-sided p={p:.2g} {'<' if failed else '>='} alpha {alpha:.2g}) over "
            f"{format_window(window.start, window.end)} ({window.label}; n={len(lat_c)} "
            f"canary, {len(lat_s)} stable)",
        )

    # -- stage -------------------------------------------------------------------------
    def _held(self, verdict: CanaryVerdict) -> bool:
        """An insufficient interval only because stable exceeds a threshold too, with
        ``judge.stable_exceeds = "hold"``: it does not count against
        ``max_insufficient_intervals``."""
        if self.config.stable_exceeds != "hold" or verdict.verdict != "insufficient":
            return False
        lacking = [c for c in verdict.checks if c.verdict == "insufficient"]
        return bool(lacking) and all(c.stable_exceeds for c in lacking)

    def _counts(self, verdicts: Sequence[CanaryVerdict]) -> dict[str, int]:
        counts = {name: 0 for name in (*VERDICTS, "held")}
        for verdict in verdicts:
            counts["held" if self._held(verdict) else verdict.verdict] += 1
        return counts

    def stage_can_still_pass(
        self, verdicts: Sequence[CanaryVerdict], remaining_looks: int
    ) -> str | None:
        """``None`` while the stage can still pass; otherwise the reason it cannot, for
        the controller to roll back at once instead of keeping the canary for the rest
        of the hold.  Call it after every interval with the verdicts so far and the
        number of intervals still to come.

        It cannot pass when an interval failed, when more intervals were insufficient
        than ``max_insufficient_intervals`` allows (an insufficient interval never turns
        into a pass later), or when no look remains and none passed.
        """
        if remaining_looks < 0:
            raise ValueError(f"remaining_looks must not be negative, got {remaining_looks}")
        counts = self._counts(verdicts)
        allowed = self.config.max_insufficient_intervals
        if counts["fail"]:
            first = next(v for v in verdicts if v.verdict == "fail")
            return (
                f"an interval failed ({format_window(first.window_start, first.window_end)}): "
                + "; ".join(c.message for c in first.failed_checks)
            )
        if counts["insufficient"] > allowed:
            return (
                f"{counts['insufficient']} of {len(verdicts)} intervals so far had insufficient "
                f"evidence, more than judge.max_insufficient_intervals = {allowed} allows: "
                f"the stage can no longer pass, {remaining_looks} looks early"
            )
        if remaining_looks == 0 and counts["pass"] == 0:
            return f"no interval passed in {len(verdicts)} looks and none remains"
        return None

    def judge_stage(self, verdicts: Sequence[CanaryVerdict]) -> CanaryVerdict:
        """Overall verdict: any failing interval fails the stage; otherwise the stage
        passes only if an interval passed and at most ``max_insufficient_intervals`` were
        insufficient (intervals held because stable exceeded a threshold too, with
        ``judge.stable_exceeds = "hold"``, do not count).  Checks: an ``intervals``
        summary, then per check name its first failure, else (insufficient stage) its
        first insufficient result, else its latest.
        """
        if not verdicts:
            now = time.time()
            return CanaryVerdict(
                verdict="insufficient",
                checks=(
                    CheckResult(
                        name="intervals",
                        verdict="insufficient",
                        value=0.0,
                        threshold=1.0,
                        unit="intervals",
                        window_start=now,
                        window_end=now,
                        samples=0,
                        message="no interval was judged: the canary was not observed",
                    ),
                ),
                window_start=now,
                window_end=now,
            )
        start = min(v.window_start for v in verdicts)
        end = max(v.window_end for v in verdicts)
        counts = self._counts(verdicts)
        allowed = self.config.max_insufficient_intervals
        if counts["fail"]:
            overall: Verdict = "fail"
        elif counts["insufficient"] > allowed or counts["pass"] == 0:
            overall = "insufficient"
        else:
            overall = "pass"
        total = len(verdicts)
        held = (
            f", {counts['held']} held (stable also exceeded a threshold: the environment)"
            if counts["held"]
            else ""
        )
        summary = CheckResult(
            name="intervals",
            verdict=overall,
            value=float(counts["pass"]),
            threshold=float(total - allowed if total > allowed else 1),
            unit="intervals",
            window_start=start,
            window_end=end,
            samples=total,
            message=f"{counts['pass']} of {total} intervals passed, {counts['fail']} failed, "
            f"{counts['insufficient']} insufficient (judge.max_insufficient_intervals="
            f"{allowed}){held} over {format_window(start, end)}",
        )
        by_name: dict[str, list[CheckResult]] = {}
        for verdict in verdicts:
            for check in verdict.checks:
                by_name.setdefault(check.name, []).append(check)
        checks = [summary]
        for results in by_name.values():
            failing = [c for c in results if c.verdict == "fail"]
            lacking = [c for c in results if c.verdict == "insufficient"]
            if failing:
                checks.append(failing[0])
            elif overall == "insufficient" and lacking:
                checks.append(lacking[0])
            else:
                checks.append(results[-1])
        return CanaryVerdict(
            verdict=overall, checks=tuple(checks), window_start=start, window_end=end
        )


def _worst(verdicts: Iterable[Verdict]) -> Verdict:
    worst: Verdict = "pass"
    for verdict in verdicts:
        if _SEVERITY[verdict] > _SEVERITY[worst]:
            worst = verdict
    return worst


def _rate(samples: Sequence[Sample]) -> float:
    return sum(1 for s in samples if not s.ok) / len(samples) if samples else 0.0


def planned_looks(hold: float, interval: float) -> int:
    """Number of intervals in a hold: what the gate passes as ``planned_looks``."""
    if interval <= 0:
        raise ValueError(f"interval must be longer than 0 s, got {interval!r}")
    return max(1, math.ceil(hold / interval - 1e-9))
