"""The judge's checks on router evidence (``judge.evidence`` includes ``"router"``): what
the router counted for each version over the interval (real traffic).

* ``error_rate`` and ``compare_error_rate`` are the same tests as for the sampler (exact
  binomial; Fisher), on the router's counts: requests and errors per version (see
  :mod:`pytest_release.canary.evidence.router_stats`).  Too few real canary requests in
  the interval is ``insufficient``.
* ``p95_latency``: HAProxy keeps only the average response time of a server's last 1024
  requests, not a percentile.  The check passes when that average is at most 5 % of the
  p95 limit (then, by Markov's inequality, at most 5 % of those requests are slower than
  the limit: p95 <= limit), fails when the average itself is above the limit (a heuristic:
  a few very slow outliers can pull an average up while the p95 stays below; the message
  says so), and is ``insufficient`` in between.
* ``compare_latency``: the canary's average against stable's, shifted by the tolerance
  (``stable * (1 + latency_tolerance) + max(latency_tolerance_ms,
  average_latency_tolerance_ms)``); averages only, no significance test (the router keeps
  no distribution), so the absolute margin is at least ``average_latency_tolerance_ms``
  (5 ms by default) where the sampler's per-request test needs only 1 ms.

With both sampler and router evidence the router checks are named ``router.<check>``;
every check's ``source`` says which evidence it judged.  A failed read of the router's
counters in the interval makes the router checks ``insufficient`` with the reason.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from pytest_release.canary.comparison import CanaryComparison
from pytest_release.canary.judge_config import Verdict
from pytest_release.canary.samples import Sample
from pytest_release.canary.thresholds import ThresholdChecks
from pytest_release.canary.verdicts import (
    CheckResult,
    _canary_http,
    format_ms,
    format_window,
)

if TYPE_CHECKING:
    from pytest_release.canary.evidence.router_stats import RouterEvidence, RouterLatency

_MARKOV_SHARE = 0.05  # mean <= 5 % of the limit: at most 5 % of requests slower than it


def _mean(reads: list[RouterLatency]) -> float | None:
    weight = sum(x.requests for x in reads)
    return sum(x.mean_ms * x.requests for x in reads) / weight if weight else None


class RouterChecks(ThresholdChecks, CanaryComparison):
    """Error-rate, latency and comparison checks on the router's per-version counts."""

    def _source_name(self, source: str, name: str) -> str:
        """Checks of the first source in ``judge.evidence`` keep their names; the others'
        are ``<source>.<check>``."""
        return name if self.config.evidence[0] == source else f"{source}.{name}"

    def _router_http(
        self,
        router: RouterEvidence | None,
        hold_start: float,
        start: float,
        end: float,
        look: int,
        source: str = "router",
    ) -> tuple[list[CheckResult], list[Sample]]:
        """The threshold and comparison checks (if enabled) on counted evidence (router or
        Prometheus), and all its samples of the hold up to ``end`` (for the alarm rules)."""
        label = router.label if router is not None else source

        def name_of(name: str) -> str:
            return self._source_name(source, name)

        def labelled(check: CheckResult) -> CheckResult:
            return replace(
                check, name=name_of(check.name), source=source, message=f"{label}: {check.message}"
            )

        latency = router is None or router.has_latency
        names = ["error_rate", "p95_latency"]
        if self.config.comparison.enabled:
            names += ["compare_error_rate", "compare_latency"]
        if not latency:
            names = [name for name in names if "latency" not in name]
        failed_reads = [
            reason for at, reason in (router.errors if router else ()) if start <= at < end
        ]
        if router is None or router.reads == 0 or failed_reads:
            why = (
                f"the {source} evidence could not be read in the interval: "
                + "; ".join(failed_reads[:3])
                if failed_reads
                else f"the {source} evidence was never read"
            )
            return [
                CheckResult.insufficient(
                    name_of(name),
                    threshold=None,
                    unit="",
                    window=(start, end),
                    samples=0,
                    message=f"{label}: {name}: {why}",
                    source=source,
                )
                for name in names
            ], []
        everything = [s for s in router.samples if s.timestamp < end]
        current = [s for s in everything if s.timestamp >= start]
        hold_start = min([hold_start, *(s.timestamp for s in everything[:1])])
        windows = self._windows(everything, current, hold_start, start, end)
        n_current = len(_canary_http(current))
        checks = [labelled(self._error_rate(windows, n_current, start, end, look))]
        if latency:
            checks.append(self._router_latency(router, n_current, start, end, look, source))
        if self.config.comparison.enabled:
            alpha = self._look_alpha(self.alpha_per_test, windows)
            beyond = self._beyond_plan(
                look, f"judge.comparison.alpha {self.config.comparison.alpha}"
            )
            if beyond:
                checks += [
                    CheckResult.insufficient(
                        name_of(name),
                        threshold=alpha,
                        unit="p",
                        window=(hold_start, end),
                        samples=len(everything),
                        message=f"{label}: {beyond}",
                        source=source,
                    )
                    for name in names
                    if name.startswith("compare_")
                ]
            else:
                checks.append(labelled(self._compare_errors(windows, alpha)))
                if latency:
                    checks.append(self._router_compare_latency(router, current, start, end, source))
        return checks, everything

    def _router_latency(
        self,
        router: RouterEvidence,
        n_current: int,
        start: float,
        end: float,
        look: int,
        source: str,
    ) -> CheckResult:
        cfg = self.config
        limit = cfg.max_p95_latency_ms
        name = self._source_name(source, "p95_latency")
        label = router.label
        reads = [x for x in router.latencies if start <= x.timestamp <= end]
        canary = _mean([x for x in reads if x.target == "canary"])
        stable = _mean([x for x in reads if x.target == "stable"])
        beyond = self._beyond_plan(look, f"judge.alpha {cfg.alpha}")
        if n_current < cfg.min_requests or canary is None or beyond:
            return CheckResult.insufficient(
                name,
                threshold=limit,
                unit="ms",
                window=(start, end),
                samples=n_current,
                message=f"{label}: "
                + (
                    beyond
                    or f"canary latency: only {n_current} real canary requests over "
                    f"{format_window(start, end)}, need at least {cfg.min_requests} "
                    "(judge.min_requests)"
                ),
                source=source,
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
        elif canary <= _MARKOV_SHARE * limit:
            verdict = "pass"
            message = (
                f"{what} <= {format_ms(_MARKOV_SHARE * limit)} (5 % of the p95 limit "
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

    def _router_compare_latency(
        self, router: RouterEvidence, current: list[Sample], start: float, end: float, source: str
    ) -> CheckResult:
        cmp = self.config.comparison
        name = self._source_name(source, "compare_latency")
        label = router.label
        reads = [x for x in router.latencies if start <= x.timestamp <= end]
        canary = _mean([x for x in reads if x.target == "canary"])
        stable = _mean([x for x in reads if x.target == "stable"])
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
                f"real requests over {format_window(start, end)}, need {cmp.min_samples} each "
                "(judge.comparison.min_samples)",
                source=source,
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
