"""The canary judge: a verdict per interval and for the stage, from live measurements.

Every verdict is one of ``pass``, ``fail`` or ``insufficient`` (not enough evidence).
Insufficient evidence is never a pass: an interval is ``insufficient`` as soon as one
check lacks data (and none failed), and a stage passes only when at least one interval
passed and no more than ``max_insufficient_intervals`` were insufficient.

Checks per interval (names are stable; the gate, plot and reports key on them):

==============================  ====================================================
``error_rate``                  canary HTTP error rate in the interval <= ``max_error_rate``
                                (insufficient below ``min_requests`` requests)
``p95_latency``                 canary p95 latency in the interval <= ``max_p95_latency_ms``
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

The first two judge the interval's own samples; the alarm rules (health, no-success,
sustained, slow) look at the whole history so a condition that began in an earlier
interval is measured in full, and report a condition that is still going on in, or ended
in, the current interval.

Canary-versus-stable comparison and false-alarm control
-------------------------------------------------------
At every look (interval) the comparison uses all samples since the hold began
(cumulative), and runs two one-sided tests:

* errors: Fisher's exact test (hypergeometric tail) that the canary's error proportion is
  higher than stable's; it fails only when also ``canary rate - stable rate >
  error_rate_margin``;
* latency: Mann-Whitney U (normal approximation, tie and continuity corrections) that the
  canary's latencies are stochastically greater than stable's *shifted by the tolerance*
  (``stable * (1 + latency_tolerance) + latency_tolerance_ms``), i.e. the null hypothesis is
  "the canary is at most that much slower".

Repeated looks at accumulating data inflate the false-alarm rate if each look used the
full ``alpha``.  The judge spends ``alpha`` by Bonferroni over the planned looks and both
tests: each test at each look runs at ``alpha / (2 * planned_looks)``.  By the union
bound, the probability that an A/A canary (same version as stable) fails the comparison
at any look of the stage is at most ``alpha`` (default 5 %), whatever the correlation
between looks.  ``planned_looks`` is ``ceil(hold / interval)`` (the gate passes it; the
config value is the fallback).  A look beyond the plan has no alpha left: the comparison
reports ``insufficient`` instead of testing.  Below ``min_samples`` per version the
comparison is ``insufficient`` (the normal approximation and the power need samples).
Threshold checks are deterministic rules and are not part of the alpha budget.
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


class ComparisonConfig(BaseModel):
    """Statistical canary-versus-stable comparison (the ``judge.comparison`` table)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(
        default=True,
        description="Run the compare_error_rate and compare_latency checks of the canary "
        "against stable; false: thresholds only.",
    )
    alpha: float = Field(
        default=0.05,
        gt=0.0,
        lt=1.0,
        description="Probability of failing an A/A canary over the whole stage.",
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
        description="Fail an interval whose canary HTTP error rate is above this fraction "
        "(default 0.01: error rate <= 1 %).",
    )
    max_p95_latency_ms: float = Field(
        default=500.0,
        gt=0.0,
        description="Fail an interval whose canary p95 latency is above this, in ms "
        "(default: p95 <= 500 ms).",
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
                CheckResult(**{**c, "verdict": _verdict(c["verdict"])}) for c in data["checks"]
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


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:.6g}"


# -- helpers over samples --------------------------------------------------------------


def _canary_http(samples: Iterable[Sample]) -> list[Sample]:
    return [s for s in samples if s.target == "canary" and s.kind == "http"]


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


class Judge:
    """Turns samples and replica statuses into verdicts (see the module docstring)."""

    def __init__(self, config: JudgeConfig, *, planned_looks: int | None = None) -> None:
        if planned_looks is not None and planned_looks < 1:
            raise ValueError(f"planned_looks must be at least 1, got {planned_looks}")
        self.config = config
        self.planned_looks = planned_looks or config.comparison.planned_looks
        self._looks = 0

    @property
    def alpha_per_test(self) -> float:
        """Significance level of each comparison test at each look (Bonferroni)."""
        return self.config.comparison.alpha / (_COMPARISON_TESTS * self.planned_looks)

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
        cfg = self.config
        checks: list[CheckResult] = [
            self._error_rate(current, window_start, window_end),
            self._p95(current, window_start, window_end),
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
            checks.extend(self._compare(everything, hold_start, window_end, look_number))
        return CanaryVerdict(
            verdict=_worst(c.verdict for c in checks),
            checks=tuple(checks),
            window_start=window_start,
            window_end=window_end,
        )

    def _error_rate(self, canary: Sequence[Sample], start: float, end: float) -> CheckResult:
        n = len(canary)
        errors = sum(1 for s in canary if not s.ok)
        limit = self.config.max_error_rate
        window = format_window(start, end)
        rate = errors / n if n else None
        verdict: Verdict
        if n < self.config.min_requests or rate is None:
            verdict = "insufficient"
            message = (
                f"canary error rate: only {n} canary requests over {window}, "
                f"need at least {self.config.min_requests} (judge.min_requests)"
            )
        else:
            verdict = "fail" if rate > limit else "pass"
            message = (
                f"canary error rate {format_percent(rate)} "
                f"{'>' if verdict == 'fail' else '<='} {format_percent(limit)} "
                f"over {window} (n={n}, {errors} errors)"
            )
        return CheckResult(
            name="error_rate",
            verdict=verdict,
            value=None if rate is None else rate * 100.0,
            threshold=limit * 100.0,
            unit="%",
            window_start=start,
            window_end=end,
            samples=n,
            message=message,
        )

    def _p95(self, canary: Sequence[Sample], start: float, end: float) -> CheckResult:
        latencies = [s.latency_ms for s in canary if s.latency_ms is not None]
        n = len(latencies)
        limit = self.config.max_p95_latency_ms
        window = format_window(start, end)
        p95 = percentile(latencies, 95.0) if latencies else None
        verdict: Verdict
        if n < self.config.min_requests or p95 is None:
            verdict = "insufficient"
            message = (
                f"canary p95 latency: only {n} canary responses over {window}, "
                f"need at least {self.config.min_requests} (judge.min_requests)"
            )
        else:
            verdict = "fail" if p95 > limit else "pass"
            message = (
                f"canary p95 latency {format_ms(p95)} {'>' if verdict == 'fail' else '<='} "
                f"{format_ms(limit)} over {window} (n={n})"
            )
        return CheckResult(
            name="p95_latency",
            verdict=verdict,
            value=p95,
            threshold=limit,
            unit="ms",
            window_start=start,
            window_end=end,
            samples=n,
            message=message,
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
        if in_window == 0:
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
        self, everything: Sequence[Sample], hold_start: float, end: float, look: int
    ) -> list[CheckResult]:
        cmp = self.config.comparison
        canary = [s for s in everything if s.target == "canary" and s.kind == "http"]
        stable = [s for s in everything if s.target == "stable" and s.kind == "http"]
        window = format_window(hold_start, end)
        alpha = self.alpha_per_test

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

        if look > self.planned_looks:
            why = (
                f"look {look} is beyond the {self.planned_looks} planned looks: the "
                f"comparison's false-alarm budget (alpha {cmp.alpha}) is spent; raise "
                "judge.comparison.planned_looks to ceil(hold / interval)"
            )
            return [
                insufficient("compare_error_rate", len(canary), len(stable), why),
                insufficient("compare_latency", len(canary), len(stable), why),
            ]

        results: list[CheckResult] = []
        n_c, n_s = len(canary), len(stable)
        if min(n_c, n_s) < cmp.min_samples:
            results.append(
                insufficient(
                    "compare_error_rate",
                    n_c,
                    n_s,
                    f"canary vs stable error rate: {n_c} canary and {n_s} stable requests "
                    f"over {window}, need {cmp.min_samples} each "
                    "(judge.comparison.min_samples)",
                )
            )
        else:
            e_c = sum(1 for s in canary if not s.ok)
            e_s = sum(1 for s in stable if not s.ok)
            p = fisher_exact_greater(e_c, n_c, e_s, n_s)
            rate_c, rate_s = e_c / n_c, e_s / n_s
            failed = p < alpha and rate_c - rate_s > cmp.error_rate_margin
            relation = "significantly higher than" if failed else "not significantly above"
            margin = (
                f", margin {format_percent(cmp.error_rate_margin)}" if cmp.error_rate_margin else ""
            )
            results.append(
                CheckResult(
                    name="compare_error_rate",
                    verdict="fail" if failed else "pass",
                    value=p,
                    threshold=alpha,
                    unit="p",
                    window_start=hold_start,
                    window_end=end,
                    samples=n_c + n_s,
                    message=f"canary error rate {format_percent(rate_c)} {relation} stable "
                    f"{format_percent(rate_s)} (Fisher exact one-sided p={p:.2g} "
                    f"{'<' if p < alpha else '>='} alpha {alpha:.2g}{margin}) over {window} "
                    f"(n={n_c} canary, {n_s} stable)",
                )
            )

        lat_c = [s.latency_ms for s in canary if s.latency_ms is not None]
        lat_s = [s.latency_ms for s in stable if s.latency_ms is not None]
        if min(len(lat_c), len(lat_s)) < cmp.min_samples:
            results.append(
                insufficient(
                    "compare_latency",
                    len(lat_c),
                    len(lat_s),
                    f"canary vs stable latency: {len(lat_c)} canary and {len(lat_s)} stable "
                    f"responses over {window}, need {cmp.min_samples} each "
                    "(judge.comparison.min_samples)",
                )
            )
        else:
            shifted = [v * (1.0 + cmp.latency_tolerance) + cmp.latency_tolerance_ms for v in lat_s]
            test = mann_whitney_greater(lat_c, shifted)
            failed = test.p_value < alpha
            relation = "significantly slower than" if failed else "not significantly slower than"
            tolerance = (
                f"stable +{cmp.latency_tolerance * 100:.0f}% +{format_ms(cmp.latency_tolerance_ms)}"
            )
            results.append(
                CheckResult(
                    name="compare_latency",
                    verdict="fail" if failed else "pass",
                    value=test.p_value,
                    threshold=alpha,
                    unit="p",
                    window_start=hold_start,
                    window_end=end,
                    samples=len(lat_c) + len(lat_s),
                    message=f"canary latency (median {format_ms(median(lat_c))}, p95 "
                    f"{format_ms(percentile(lat_c, 95.0))}) {relation} {tolerance} "
                    f"(median {format_ms(median(lat_s))}, p95 "
                    f"{format_ms(percentile(lat_s, 95.0))}; Mann-Whitney one-sided "
                    f"p={test.p_value:.2g} {'<' if failed else '>='} alpha {alpha:.2g}) "
                    f"over {window} (n={len(lat_c)} canary, {len(lat_s)} stable)",
                )
            )
        return results

    # -- stage -------------------------------------------------------------------------
    def judge_stage(self, verdicts: Sequence[CanaryVerdict]) -> CanaryVerdict:
        """Overall verdict: any failing interval fails the stage; otherwise the stage
        passes only if an interval passed and at most ``max_insufficient_intervals`` were
        insufficient.  Checks: an ``intervals`` summary, then per check name its first
        failure, else (insufficient stage) its first insufficient result, else its latest.
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
        counts = {name: sum(1 for v in verdicts if v.verdict == name) for name in VERDICTS}
        allowed = self.config.max_insufficient_intervals
        if counts["fail"]:
            overall: Verdict = "fail"
        elif counts["insufficient"] > allowed or counts["pass"] == 0:
            overall = "insufficient"
        else:
            overall = "pass"
        total = len(verdicts)
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
            f"{allowed}) over {format_window(start, end)}",
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
