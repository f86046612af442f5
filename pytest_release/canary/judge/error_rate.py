"""``error_rate``: the canary's HTTP error rate is at most ``judge.max_error_rate``, judged
on all the canary requests the chosen sources saw since the hold began (always-valid
test) and in the current interval (the late-fault window), see
:mod:`.statistics`."""

from __future__ import annotations

from dataclasses import dataclass

from pytest_release.canary.judge.config import JudgeConfig
from pytest_release.canary.judge.evidence import Evidence, canary_http
from pytest_release.canary.judge.labels import labelled, unavailable
from pytest_release.canary.judge.statistics import ThresholdPlan, errors_of, share_test
from pytest_release.canary.judge.threshold import (
    ThresholdFinding,
    nothing_since_the_hold_began,
    pass_needs_the_minimum,
    threshold_result,
)
from pytest_release.canary.judge.verdicts import CheckResult, format_percent


@dataclass(frozen=True)
class ErrorRate:
    config: JudgeConfig
    plan: ThresholdPlan
    needs: tuple[str, ...] = ("sampler",)
    name: str = "error_rate"

    def result(self, evidence: Evidence) -> CheckResult:
        requests = evidence.joined(self.needs)
        start, end = evidence.start, evidence.end
        if requests.unavailable:
            return unavailable(requests, self.name, start, end)
        limit = self.config.max_error_rate
        so_far = len(canary_http(requests.everything))
        contributions = requests.contributions()
        hold = (requests.hold_start, end)
        if so_far == 0:
            none = nothing_since_the_hold_began(
                self.config, "error_rate", "requests", limit * 100.0, "%", hold
            )
            return labelled(requests, self.name, none)
        test = share_test(requests.windows(start, end), limit, errors_of, self.plan, evidence.look)
        rate = test.k / test.n if test.n else 0.0
        stable_rate = test.stable_k / test.stable_n if test.stable_n else None
        found = ThresholdFinding(
            name="error_rate",
            test=test,
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
            details=contributions,
        )
        result = threshold_result(self.config, found)
        result = pass_needs_the_minimum(self.config, result, so_far, "requests", hold)
        return labelled(requests, self.name, result)
