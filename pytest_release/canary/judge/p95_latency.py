"""``p95_latency`` on the sampler's requests: "p95 <= L" is "at most 5 % of responses
slower than L", judged like the error rate (see :mod:`.statistics`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pytest_release.canary.judge.config import JudgeConfig
from pytest_release.canary.judge.evidence import Evidence, canary_http
from pytest_release.canary.judge.labels import labelled
from pytest_release.canary.judge.statistics import P95, ThresholdPlan, share_test
from pytest_release.canary.judge.threshold import (
    ThresholdFinding,
    nothing_since_the_hold_began,
    pass_needs_the_minimum,
    threshold_result,
)
from pytest_release.canary.judge.verdicts import (
    CheckResult,
    format_ms,
    format_percent,
)
from pytest_release.canary.samples import Sample
from pytest_release.canary.stats import percentile


@dataclass(frozen=True)
class P95Latency:
    config: JudgeConfig
    plan: ThresholdPlan
    name: str = "p95_latency"
    needs: tuple[str, ...] = ("sampler",)

    def result(self, evidence: Evidence) -> CheckResult:
        requests = evidence.requests("sampler")
        start, end = evidence.start, evidence.end
        limit = self.config.max_p95_latency_ms
        so_far = sum(1 for s in canary_http(requests.everything) if s.latency_ms is not None)
        hold = (requests.hold_start, end)
        if so_far == 0:
            none = nothing_since_the_hold_began(
                self.config, "p95_latency", "responses", limit, "ms", hold
            )
            return labelled(requests, self.name, none)

        def count(chosen: Sequence[Sample]) -> tuple[int, int]:
            latencies = [s.latency_ms for s in chosen if s.latency_ms is not None]
            return sum(1 for v in latencies if v > limit), len(latencies)

        share = 1.0 - P95 / 100.0
        test = share_test(requests.windows(start, end), share, count, self.plan, evidence.look)
        canary_latencies = [s.latency_ms for s in test.window.canary if s.latency_ms is not None]
        stable_latencies = [s.latency_ms for s in test.window.stable if s.latency_ms is not None]
        p95 = percentile(canary_latencies, P95)
        stable_p95 = percentile(stable_latencies, P95) if stable_latencies else None
        found = ThresholdFinding(
            name="p95_latency",
            test=test,
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
        result = threshold_result(self.config, found)
        result = pass_needs_the_minimum(self.config, result, so_far, "responses", hold)
        return labelled(requests, self.name, result)
