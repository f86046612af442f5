"""Latency checks on counted evidence (router or Prometheus), which has per-version
averages but no per-request latencies; both look at the hold so far (every read since
the hold began, weighted by its requests) and are no statistical tests, so they spend no
false-alarm budget.

* ``p95_latency``: HAProxy keeps only the average response time of a server's last 1024
  requests, not a percentile.  The check passes when that average is at most 5 % of the
  p95 limit (then, by Markov's inequality, at most 5 % of those requests are slower than
  the limit: p95 <= limit), fails when the average itself is above the limit (a
  heuristic: a few very slow outliers can pull an average up while the p95 stays below;
  the message says so), and is ``insufficient`` in between.
* ``compare_latency``: the canary's average against stable's, shifted by the tolerance
  (``stable * (1 + latency_tolerance) + max(latency_tolerance_ms,
  average_latency_tolerance_ms)``); averages only, no significance test (the router keeps
  no distribution), so the absolute margin is at least ``average_latency_tolerance_ms``.
"""

from __future__ import annotations

from dataclasses import dataclass

from pytest_release.canary.evidence.router_stats import RouterEvidence, RouterLatency
from pytest_release.canary.judge.config import JudgeConfig
from pytest_release.canary.judge.evidence import Evidence, SourceRequests, canary_http
from pytest_release.canary.judge.labels import unavailable
from pytest_release.canary.judge.verdicts import (
    CheckResult,
    Verdict,
    format_ms,
    format_window,
)

MARKOV_SHARE = 0.05  # mean <= 5 % of the limit: at most 5 % of requests slower than it


def mean_latency(reads: list[RouterLatency]) -> float | None:
    weight = sum(x.requests for x in reads)
    return sum(x.mean_ms * x.requests for x in reads) / weight if weight else None


@dataclass(frozen=True)
class HoldMeans:
    """A counted source's average response times per version over the hold so far: every
    read from the hold's start (the source's first read) to the look's end, weighted by
    its requests."""

    requests: SourceRequests
    router: RouterEvidence
    start: float
    end: float
    canary: float | None
    stable: float | None


def hold_means(evidence: Evidence, source: str, name: str) -> HoldMeans | CheckResult | None:
    """``source``'s :class:`HoldMeans` at the look ``evidence`` describes; ``None`` when
    the source measures no latency (the check ``name`` does not apply), or ``name``'s
    result saying why the source cannot be judged at this look."""
    requests = evidence.requests(source)
    if requests.counted is not None and not requests.counted.has_latency:
        return None  # this source measures no latency: nothing to check
    if requests.unavailable or requests.counted is None:
        return unavailable(requests, name, evidence.start, evidence.end)
    reads = [x for x in requests.counted.latencies if x.timestamp <= evidence.end]
    return HoldMeans(
        requests,
        requests.counted,
        requests.hold_start,
        evidence.end,
        canary=mean_latency([x for x in reads if x.target == "canary"]),
        stable=mean_latency([x for x in reads if x.target == "stable"]),
    )


@dataclass(frozen=True)
class CountedLatencyCheck:
    """A latency check on one counted source's :class:`HoldMeans` (both below): the check
    applies when the source measures latency, and is judged on the means when the source
    can be judged at this look."""

    config: JudgeConfig
    source: str
    name: str

    @property
    def needs(self) -> tuple[str, ...]:
        return (self.source,)

    def result(self, evidence: Evidence) -> CheckResult | None:
        held = hold_means(evidence, self.source, self.name)
        return self.judged(held) if isinstance(held, HoldMeans) else held

    def judged(self, held: HoldMeans) -> CheckResult:
        raise NotImplementedError


@dataclass(frozen=True)
class CountedP95Latency(CountedLatencyCheck):
    name: str = "p95_latency"

    def judged(self, held: HoldMeans) -> CheckResult:
        router, canary, stable = held.router, held.canary, held.stable
        start, end, source = held.start, held.end, self.source
        # judge.min_requests is a whole-hold minimum: every request the source counted.
        n_current = len(canary_http(held.requests.everything))
        cfg = self.config
        limit = cfg.max_p95_latency_ms
        name = self.name
        label = router.label
        if n_current < cfg.min_requests or canary is None:
            return CheckResult.insufficient(
                name,
                threshold=limit,
                unit="ms",
                window=(start, end),
                samples=n_current,
                message=f"{label}: canary latency: only {n_current} real canary requests "
                f"since the hold began ({format_window(start, end)}), need at least "
                f"{cfg.min_requests} (judge.min_requests)",
                source=source,
                pending=n_current < cfg.min_requests,
            )
        what = f"canary average response time {format_ms(canary)} ({router.latency_note})"
        stable_text = "no stable reads" if stable is None else f"stable {format_ms(stable)}"
        counts = f"{n_current} canary requests, {stable_text}, over {format_window(start, end)}"
        stable_over = stable is not None and stable > limit
        verdict: Verdict
        if canary > limit and stable_over:
            mode = cfg.stable_exceeds
            verdict = "fail" if mode == "fail" else "insufficient"
            message = (
                f"{what} > p95 limit {format_ms(limit)}, but stable's average is over it too: "
                f"the environment, not the canary (judge.stable_exceeds = {mode}) ({counts})"
            )
        elif canary > limit:
            verdict = "fail"
            message = (
                f"{what} > p95 limit {format_ms(limit)}: the average itself is over the limit "
                f"(an average, not a percentile: rare very slow outliers can do this too) "
                f"({counts})"
            )
        elif canary <= MARKOV_SHARE * limit:
            verdict = "pass"
            message = (
                f"{what} <= {format_ms(MARKOV_SHARE * limit)} (5 % of the p95 limit "
                f"{format_ms(limit)}): at most 5 % of those requests can be slower than the "
                f"limit (Markov's inequality), so p95 <= {format_ms(limit)} ({counts})"
            )
        else:
            verdict = "insufficient"
            message = (
                f"{what} is between 5 % of the p95 limit and the limit {format_ms(limit)}: an "
                f"average cannot tell whether p95 <= {format_ms(limit)}; add 'sampler' to "
                f"judge.evidence for per-request latencies ({counts})"
            )
        return CheckResult(
            name=name,
            verdict=verdict,
            value=canary,
            threshold=limit,
            unit="ms",
            window_start=start,
            window_end=end,
            samples=n_current,
            message=f"{label}: {message}",
            stable_exceeds=canary > limit and stable_over,
            details=(("statistic", router.latency_note),),
            source=source,
        )


@dataclass(frozen=True)
class CountedCompareLatency(CountedLatencyCheck):
    name: str = "compare_latency"

    def judged(self, held: HoldMeans) -> CheckResult:
        router, canary, stable = held.router, held.canary, held.stable
        start, end, source = held.start, held.end, self.source
        current = list(held.requests.everything)
        cmp = self.config.comparison
        name = self.name
        label = router.label
        n_c = sum(1 for s in current if s.target == "canary")
        n_s = sum(1 for s in current if s.target == "stable")
        if min(n_c, n_s) < cmp.min_samples or canary is None or stable is None:
            return CheckResult.insufficient(
                name,
                threshold=None,
                unit="ms",
                window=(start, end),
                samples=n_c + n_s,
                message=f"{label}: canary vs stable latency: {n_c} canary and {n_s} stable "
                f"real requests since the hold began ({format_window(start, end)}), need "
                f"{cmp.min_samples} each (judge.comparison.min_samples)",
                source=source,
                pending=min(n_c, n_s) < cmp.min_samples,
            )
        margin_ms = max(cmp.latency_tolerance_ms, cmp.average_latency_tolerance_ms)
        allowed = stable * (1.0 + cmp.latency_tolerance) + margin_ms
        failed = canary > allowed
        relation = "above" if failed else "within"
        return CheckResult(
            name=name,
            verdict="fail" if failed else "pass",
            value=canary,
            threshold=allowed,
            unit="ms",
            window_start=start,
            window_end=end,
            samples=n_c + n_s,
            message=f"{label}: canary average response time {format_ms(canary)} {relation} "
            f"stable's {format_ms(stable)} +{cmp.latency_tolerance * 100:.0f}% "
            f"+{format_ms(margin_ms)} = {format_ms(allowed)} "
            f"({router.latency_note}; no significance test without a distribution) over "
            f"{format_window(start, end)} (n={n_c} canary, {n_s} stable)",
            details=(("statistic", router.latency_note),),
            source=source,
        )
