"""``p95_latency`` on the sampler's requests: "p95 <= L" is "at most 5 % of responses
slower than L", judged like the error rate (see :mod:`.statistics`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pytest_release.canary.judge.config import JudgeConfig
from pytest_release.canary.judge.evidence import Evidence, canary_http
from pytest_release.canary.judge.labels import labelled
from pytest_release.canary.judge.statistics import P95, ThresholdPlan, share_test
from pytest_release.canary.judge.threshold import ThresholdFinding, threshold_result
from pytest_release.canary.judge.verdicts import (
    CheckResult,
    format_ms,
    format_percent,
    format_window,
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
        if so_far == 0:
            return labelled(
                requests,
                self.name,
                CheckResult.insufficient(
                    "p95_latency",
                    threshold=limit,
                    unit="ms",
                    window=(requests.hold_start, end),
                    samples=0,
                    message=f"no canary responses since the hold began "
                    f"({format_window(requests.hold_start, end)}), need at least "
                    f"{self.config.min_requests} (judge.min_requests)",
                    pending=True,
                ),
            )

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
        if result.verdict == "pass" and so_far < self.config.min_requests:
            # The test is valid at any sample size, so a credible excess fails at once (a
            # crash loop at the first look); a pass needs the hold's minimum.
            result = CheckResult.insufficient(
                "p95_latency",
                threshold=result.threshold,
                unit=result.unit,
                window=(requests.hold_start, end),
                samples=so_far,
                message=f"{result.message}; but only {so_far} canary responses since the hold "
                f"began ({format_window(requests.hold_start, end)}), need at least "
                f"{self.config.min_requests} to pass (judge.min_requests)",
                pending=True,
            )
        return labelled(requests, self.name, result)
