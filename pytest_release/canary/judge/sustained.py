"""The sustained alarm rules (the seed's deterministic rules, over the whole hold):
``sustained_error_rate`` -- the canary's rolling error rate did not stay above
``judge.sustained_error_rate`` for ``judge.sustained_error_window``; ``slow_responses`` --
its rolling median latency did not stay above ``judge.slow_response_ms`` for
``judge.slow_response_window``.  Each rolls over a quarter of its window."""

from __future__ import annotations

import bisect
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from pytest_release.canary.judge.config import JudgeConfig
from pytest_release.canary.judge.evidence import Evidence, alarm_requests
from pytest_release.canary.judge.verdicts import (
    CheckResult,
    clock_text,
    format_ms,
    format_percent,
    format_seconds,
    format_window,
)
from pytest_release.canary.samples import Sample
from pytest_release.canary.stats import median


def rate_of(samples: Sequence[Sample]) -> float:
    return sum(1 for s in samples if not s.ok) / len(samples) if samples else 0.0


def sustained_runs(
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


def sustained_result(
    name: str,
    runs: Sequence[tuple[float, float]],
    canary: Sequence[Sample],
    start: float,
    end: float,
    limit: float,
    what: str,
    describe: Callable[[Sequence[Sample]], str],
) -> CheckResult:
    """fail when the longest run reaching ``[start, end]`` lasted ``limit`` seconds."""
    relevant = [(a, b) for a, b in runs if b >= start]
    longest, run_start, run_end = 0.0, start, start
    for a, b in relevant:
        if b - a >= longest:
            longest, run_start, run_end = b - a, a, b
    failed = longest >= limit
    n = sum(1 for s in canary if start <= s.timestamp <= end)
    if relevant:
        chosen = [s for s in canary if run_start <= s.timestamp <= run_end]
        span = f"from {clock_text(run_start)} to {clock_text(run_end)} UTC, {describe(chosen)}"
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


@dataclass(frozen=True)
class SustainedErrorRate:
    config: JudgeConfig
    name: str = "sustained_error_rate"

    @property
    def needs(self) -> tuple[str, ...]:
        return self.config.evidence

    def result(self, evidence: Evidence) -> CheckResult:
        canary, source = alarm_requests(evidence, self.config.evidence)
        start, end = evidence.start, evidence.end
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
        runs = sustained_runs(canary, window_s / 4.0, add, remove, above)
        found = sustained_result(
            "sustained_error_rate",
            runs,
            canary,
            start,
            end,
            window_s,
            f"canary error rate above {format_percent(cfg.sustained_error_rate)}",
            lambda chosen: f"{format_percent(rate_of(chosen))} errors",
        )
        return replace(found, source=source)


@dataclass(frozen=True)
class SlowResponses:
    """On the sampler's per-request latencies (counted sources carry none)."""

    config: JudgeConfig
    name: str = "slow_responses"
    needs: tuple[str, ...] = ("sampler",)

    def result(self, evidence: Evidence) -> CheckResult:
        canary, _ = alarm_requests(evidence, self.config.evidence)
        start, end = evidence.start, evidence.end
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
        runs = sustained_runs(canary, window_s / 4.0, add, remove, slow)

        def describe(chosen: Sequence[Sample]) -> str:
            latencies = [s.latency_ms for s in chosen if s.latency_ms is not None]
            return f"median {format_ms(median(latencies))}" if latencies else "no responses"

        return sustained_result(
            "slow_responses",
            runs,
            canary,
            start,
            end,
            window_s,
            f"canary median response time above {format_ms(cfg.slow_response_ms)}",
            describe,
        )
