"""``no_success``: no stretch of ``judge.no_success_window`` seconds without a successful
canary request (the seed's deterministic rule, over the whole hold)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace

from pytest_release.canary.judge.config import JudgeConfig
from pytest_release.canary.judge.evidence import Evidence, alarm_requests
from pytest_release.canary.judge.verdicts import CheckResult, format_seconds, format_window
from pytest_release.canary.samples import Sample


@dataclass(frozen=True)
class NoSuccess:
    config: JudgeConfig
    name: str = "no_success"

    @property
    def needs(self) -> tuple[str, ...]:
        return self.config.evidence

    def result(self, evidence: Evidence) -> CheckResult:
        canary, source = alarm_requests(evidence, self.config.evidence)
        hold_start, start, end = evidence.hold_start, evidence.start, evidence.end
        return replace(self._result(canary, hold_start, start, end), source=source)

    def _result(
        self, canary: list[Sample], hold_start: float, start: float, end: float
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
