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
from pytest_release.canary.judge.threshold import ThresholdFinding, threshold_result
from pytest_release.canary.judge.verdicts import CheckResult, format_percent, format_window


@dataclass(frozen=True)
class ErrorRate:
    config: JudgeConfig
    plan: ThresholdPlan
    sources: tuple[str, ...] = ("sampler",)
    name: str = "error_rate"

    @property
    def needs(self) -> tuple[str, ...]:
        return self.sources

    def result(self, evidence: Evidence) -> CheckResult:
        requests = evidence.joined(self.sources)
        start, end = evidence.start, evidence.end
        if requests.unavailable:
            return unavailable(requests, self.name, start, end)
        limit = self.config.max_error_rate
        so_far = len(canary_http(requests.everything))
        contributions = requests.contributions()
        if so_far == 0:
            return labelled(
                requests,
                self.name,
                CheckResult.insufficient(
                    "error_rate",
                    threshold=limit * 100.0,
                    unit="%",
                    window=(requests.hold_start, end),
                    samples=0,
                    message=f"no canary requests since the hold began "
                    f"({format_window(requests.hold_start, end)}), need at least "
                    f"{self.config.min_requests} (judge.min_requests)",
                    pending=True,
                ),
            )
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
        if result.verdict == "pass" and so_far < self.config.min_requests:
            # The test is valid at any sample size, so a credible excess fails at once (a
            # crash loop at the first look); a pass needs the hold's minimum.
            result = CheckResult.insufficient(
                "error_rate",
                threshold=result.threshold,
                unit=result.unit,
                window=(requests.hold_start, end),
                samples=so_far,
                message=f"{result.message}; but only {so_far} canary requests since the hold "
                f"began ({format_window(requests.hold_start, end)}), need at least "
                f"{self.config.min_requests} to pass (judge.min_requests)",
                pending=True,
            )
        return labelled(requests, self.name, result)
