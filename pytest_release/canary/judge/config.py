"""The judge's table, ``[tool.pytest-release.gates.<name>.judge]``: thresholds, the
false-alarm budget and the canary-versus-stable comparison (see docs/judge.md).

Which evidence sources exist is the registry's (entry points ``pytest_release.evidence``):
the canary gate validates the table with a subclass of :class:`JudgeConfig` that checks
``judge.evidence`` against the registered sources and adds each one's own table
``judge.<name>`` (Prometheus' is ``judge.prometheus``), validated by the source's model
(``gates/canary/judge_tables.py``).  The engine reads such a table with
:meth:`JudgeConfig.source_table`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from pytest_release.config.types import parse_positive_duration

# The name of a registered evidence source, as ``judge.evidence`` lists it.
EvidenceSource = str


class ComparisonConfig(BaseModel):
    """Statistical canary-versus-stable comparison (the ``judge.comparison`` table)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    """Run the compare_error_rate and compare_latency checks of the canary against stable; false:
    thresholds only."""
    alpha: float = Field(default=0.005, gt=0.0, lt=1.0)
    """False-alarm budget of the comparison over the whole hold: a canary that behaves like stable
    fails compare_error_rate or compare_latency at some look with probability at most this (split
    over both tests; each spends half on the hold so far by Lan-DeMets Pocock-type spending over
    the planned looks, half on the late-fault window). Together with judge.alpha: 1 % false
    rollbacks of an A/A canary at most."""
    planned_looks: int = Field(default=15, ge=1)
    """Intervals alpha is spread over (ceil(hold/interval))."""
    min_samples: int = Field(default=30, ge=2)
    """Per version, else insufficient."""
    error_rate_margin: float = Field(default=0.0, ge=0.0, le=1.0)
    """Fail only if canary error rate exceeds stable's by more than this."""
    latency_tolerance: float = Field(default=0.2, ge=0.0)
    """Relative slowdown tolerated (0.2 = 20 %): compare_latency tests the null hypothesis 'the
    canary is at most stable * (1 + this) + latency_tolerance_ms', so a canary within that (e.g.
    one like stable) fails it with probability at most its share of judge.comparison.alpha."""
    latency_tolerance_ms: float = Field(default=1.0, ge=0.0)
    """Absolute slowdown tolerated by compare_latency's per-request test, in ms (default 1 ms: the
    jitter of timing a request, not a practical margin; the relative latency_tolerance is that)."""
    average_latency_tolerance_ms: float = Field(default=5.0, ge=0.0)
    """Absolute slowdown tolerated, in ms, by compare_latency on router or Prometheus evidence,
    which compares averages without a significance test and so needs a margin above their noise:
    it uses the larger of this and latency_tolerance_ms."""


def _false_disables(value: object, refusal_of_true: str) -> object:
    """TOML has no null: ``false`` switches a check off (None); ``true`` means nothing."""
    if value is False:
        return None
    if value is True:
        raise ValueError(refusal_of_true)
    return value


class JudgeConfig(BaseModel):
    """Thresholds of the canary judge (the ``judge`` sub-table of the canary gate)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_error_rate: float = Field(default=0.01, ge=0.0, le=1.0)
    """The canary's HTTP error rate must be at most this fraction (default 0.01: error rate <= 1 %).
    Judged with evidence: an interval fails when the lower confidence bound of the error rate
    (since the hold began, or in the interval) is above it."""
    max_p95_latency_ms: float = Field(default=500.0, gt=0.0)
    """The canary's p95 latency must be at most this, in ms (default: p95 <= 500 ms). Judged with
    evidence: an interval fails when the data show, at the configured confidence, more than 5 %
    of canary responses slower than this."""
    alpha: float = Field(default=0.005, gt=0.0, lt=1.0)
    """False-alarm budget of the threshold checks (error_rate, p95_latency, health_failure_share)
    over the whole hold: a canary within all of them fails one at some look with probability at
    most this (split over the checks; each spends three quarters on an always-valid test of the
    hold so far and a quarter on the late-fault window; see docs/judge.md)."""
    stable_exceeds: Literal["insufficient", "hold", "fail"] = "insufficient"
    """Verdict of a threshold check when the canary is over the threshold and stable, measured in
    the same window, is over it too (the environment, not the canary): insufficient (counts
    against max_insufficient_intervals), hold (insufficient, but the interval does not count
    against max_insufficient_intervals) or fail (the absolute threshold wins). Never pass."""
    max_health_failure_share: float | None = Field(default=0.05, ge=0.0, le=1.0)
    """Share of failed /health probes allowed per canary replica (default 0.05: 5 %), judged with
    evidence like the error rate; false: check off. At 5 % random failures a 3-failures-in-a-row
    readiness rule evicts a replica about once in 8000 probes (2 h at 1 s probes); at 20 % every
    2 minutes: flapping shows above 5 %."""
    max_restarts: int | None = Field(default=0, ge=0)
    """Canary replica restarts allowed in total (default 0: any restart fails); false: check off."""
    max_consecutive_health_failures: int | None = Field(default=3, ge=0)
    """Fail when more than this many /health probes of one canary replica fail in a row (default 3);
    false: check off."""
    no_success_window: float = 30.0
    """Fail when this many seconds pass without a successful canary request."""
    sustained_error_rate: float = Field(default=0.05, ge=0.0, le=1.0)
    """Alarm error rate, a fraction (0.05 = 5 %): fail when the canary's rolling error rate stays
    above it for sustained_error_window."""
    sustained_error_window: float = 120.0
    """Seconds the error rate must stay above sustained_error_rate to fail (the rate rolls over a
    quarter of this window)."""
    slow_response_ms: float = Field(default=5000.0, gt=0.0)
    """Alarm latency, in ms: fail when the canary's rolling median latency stays above it for
    slow_response_window."""
    slow_response_window: float = 60.0
    """Seconds the median latency must stay above slow_response_ms to fail (the median rolls over a
    quarter of this window)."""
    min_requests: int = Field(default=20, ge=1)
    """Canary requests the hold needs so far (all chosen sources together) before error_rate and
    p95_latency can pass; until then a look is pending (neither a pass nor a reason to stop; a
    credible excess still fails at once). Counted over the whole hold since 2026-12 (it was per
    interval)."""
    max_insufficient_intervals: int = Field(default=0, ge=0)
    """Insufficient intervals a passing stage may contain."""
    comparison: ComparisonConfig = Field(default_factory=ComparisonConfig)
    """Statistical comparison of the canary with stable."""
    evidence: tuple[EvidenceSource, ...] = ("sampler",)
    """Which measurements the error-rate, latency and comparison checks judge: 'sampler' (the
    sampler's own requests, default), 'router' (what the router counted per version: real
    traffic; HAProxy only; its latency is HAProxy's average of the last 1024 requests, see
    docs/canary-metrics.md), 'prometheus' (counts from Prometheus queries, judge.prometheus), a
    plug-in's source (entry point group pytest_release.evidence; its table is judge.<name>), or
    several: the sampler's requests and the first counted source's are judged together as one
    sample (no request counted twice; each source's contribution is reported); a second counted
    source gets its own <source>.<check> checks; the false-alarm budget is shared."""
    http_checks: bool = True
    """false: judge the canary on platform status only (restarts, and Prometheus queries if any),
    for platforms whose pods this process cannot send requests to."""

    @field_validator("evidence")
    @classmethod
    def _evidence(cls, value: tuple[EvidenceSource, ...]) -> tuple[EvidenceSource, ...]:
        if not value:
            raise ValueError("name at least one evidence source, e.g. ['sampler'] or ['router']")
        if len(set(value)) != len(value):
            raise ValueError(f"each evidence source at most once, got {list(value)!r}")
        return value

    def source_table(self, name: str) -> BaseModel | None:
        """The validated ``judge.<name>`` table of the evidence source ``name`` (None when
        it has none: the table is not one of the judge's own keys)."""
        if name in JudgeConfig.model_fields:
            return None
        table = getattr(self, name, None)
        return table if isinstance(table, BaseModel) else None

    @field_validator("max_health_failure_share", mode="before")
    @classmethod
    def _disable_share(cls, value: object) -> object:
        return _false_disables(
            value, "expected a fraction such as 0.05, or false to disable the check"
        )

    @field_validator("max_restarts", "max_consecutive_health_failures", mode="before")
    @classmethod
    def _disable(cls, value: object) -> object:
        return _false_disables(
            value, "expected a whole number, or false to disable the check, got true"
        )

    @field_validator(
        "no_success_window", "sustained_error_window", "slow_response_window", mode="before"
    )
    @classmethod
    def _window(cls, value: object) -> float:
        return parse_positive_duration(value, "a window must be longer than 0 s")
