"""``error_rate``: the canary's HTTP error rate is at most ``judge.max_error_rate``,
judged with an exact binomial test on one source's requests."""

from __future__ import annotations

from dataclasses import dataclass

from pytest_release.canary.judge.config import JudgeConfig
from pytest_release.canary.judge.evidence import Evidence, canary_http
from pytest_release.canary.judge.labels import labelled, unavailable
from pytest_release.canary.judge.statistics import Budget, binomial_in_windows, errors_of
from pytest_release.canary.judge.threshold import ThresholdFinding, threshold_result
from pytest_release.canary.judge.verdicts import CheckResult, format_percent, format_window


@dataclass(frozen=True)
class ErrorRate:
    config: JudgeConfig
    budget: Budget
    source: str = "sampler"
    name: str = "error_rate"

    @property
    def needs(self) -> tuple[str, ...]:
        return (self.source,)

    def result(self, evidence: Evidence) -> CheckResult:
        requests = evidence.requests(self.source)
        start, end = evidence.start, evidence.end
        if requests.unavailable:
            return unavailable(self.config, requests, self.name, requests.unavailable, start, end)
        limit = self.config.max_error_rate
        in_interval = len(canary_http(requests.interval))
        beyond = self.budget.beyond_plan(evidence.look)
        if in_interval < self.config.min_requests or beyond:
            return labelled(
                self.config,
                requests,
                CheckResult.insufficient(
                    self.name,
                    threshold=limit * 100.0,
                    unit="%",
                    window=(start, end),
                    samples=in_interval,
                    message=beyond
                    or f"canary error rate: only {in_interval} canary requests over "
                    f"{format_window(start, end)}, need at least {self.config.min_requests} "
                    "(judge.min_requests)",
                ),
            )
        windows = requests.windows(start, end)
        test = binomial_in_windows(windows, limit, errors_of)
        rate = test.k / test.n
        stable_rate = test.stable_k / test.stable_n if test.stable_n else None
        found = ThresholdFinding(
            name=self.name,
            test=test,
            alpha=self.budget.at_look(len(windows)),
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
        return labelled(self.config, requests, threshold_result(self.config, found))
