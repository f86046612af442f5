"""The canary judge: a verdict per interval and for the stage, from live measurements.

Every verdict is one of ``pass``, ``fail`` or ``insufficient`` (not enough evidence).
Insufficient evidence is never a pass: an interval is ``insufficient`` as soon as one
check lacks data (and none failed), and a stage passes only when at least one interval
passed and no more than ``max_insufficient_intervals`` were insufficient.

Checks per interval (names are stable; the gate, plot and reports key on them):

==============================  ====================================================
``error_rate``                  canary HTTP error rate <= ``max_error_rate``, judged with
                                evidence on all chosen sources (see below; pending below
                                ``min_requests`` canary requests since the hold began)
``p95_latency``                 canary p95 latency <= ``max_p95_latency_ms``, judged with
                                evidence: "p95 <= L" is "at most 5 % of responses slower
                                than L"
``health_failure_share``        share of failed /health probes per canary replica
                                <= ``max_health_failure_share``, judged with evidence
``restarts``                    restarts of canary replicas (platform status) <= ``max_restarts``
``health_consecutive_failures`` consecutive failed canary /health probes per replica
                                <= ``max_consecutive_health_failures``
``no_success``                  no stretch of ``no_success_window`` seconds without a
                                successful canary request
``sustained_error_rate``        the error rate (rolling over a quarter of the window) did
                                not stay above ``sustained_error_rate`` for
                                ``sustained_error_window`` seconds
``slow_responses``              the median latency (rolling likewise) did not stay above
                                ``slow_response_ms`` for ``slow_response_window`` seconds
``compare_error_rate``          canary error rate not significantly higher than stable's
``compare_latency``             canary latency not significantly higher than stable's
``alerts``                      no matching Alertmanager alert fired (``judge.alertmanager``;
                                made by the hold, see :mod:`.alerts`)
==============================  ====================================================

``judge.evidence`` chooses what ``error_rate``, ``p95_latency`` and the comparison judge:
the sampler's requests, the router's per-version counters, Prometheus counters, or several
(:func:`evidence_sources`): the sampler's and the first counted source's requests are one
sample (:meth:`.evidence.Evidence.joined`: no request counted twice); a second counted
source gets ``<source>.<check>`` checks; every check's ``source`` says which evidence it
judged and its details how many requests each source contributed.

The alarm rules (restarts, health, no-success, sustained, slow) are the seed's
deterministic rules: they look at the whole history so a condition that began in an
earlier interval is measured in full, and report a condition that is still going on in,
or ended in, the current interval.

Threshold checks with evidence
------------------------------
``error_rate``, ``p95_latency`` and ``health_failure_share`` keep the user's contract
("error rate <= 1 %", "p95 <= 500 ms", "at most 5 % of /health probes fail") but judge
it with evidence: **fail** when the data say, at the configured confidence, that the
canary is over the threshold; **pass** when they are consistent with being within it and
the hold so far has ``min_requests`` canary requests; **insufficient** otherwise
(*pending* while the hold so far is too short: a later look decides).  Each look tests
the evidence since the hold began with an always-valid mixture test and the current
interval (the late-fault window) with an exact binomial test; how ``judge.alpha`` and
``judge.comparison.alpha`` are spent over checks, windows and looks is
:mod:`.statistics`, the guarantee and its assumptions are docs/judge.md.

Stable is the control
---------------------
Stable is measured in the same window by the same sampler.  When a threshold check finds
the canary over the limit and stable's own estimate in that window is over it too, the
check says "stable also exceeds ...: the environment, not the canary" and does not blame
the canary: ``judge.stable_exceeds`` decides the verdict -- ``insufficient`` (default; it
counts against ``max_insufficient_intervals``), ``hold`` (insufficient, but the interval
does not count against ``max_insufficient_intervals``; the stage still needs a passing
interval) or ``fail`` (the absolute contract wins).  Never ``pass``.  A canary that is
worse than stable is caught by the comparison regardless.

Canary-versus-stable comparison
-------------------------------
Two one-sided tests on the same two windows:

* errors: Fisher's exact test (hypergeometric tail) that the canary's error proportion is
  higher than stable's; it fails only when also ``canary rate - stable rate >
  error_rate_margin``;
* latency: Mann-Whitney U (normal approximation, tie and continuity corrections) that the
  canary's latencies are stochastically greater than stable's *shifted by the tolerance*
  (``stable * (1 + latency_tolerance) + latency_tolerance_ms``), i.e. the null hypothesis is
  "the canary is at most that much slower".  Host load that slows both versions in the
  window slows stable too, so it does not fail the canary.  The tolerance is a practical
  margin, not what makes the test valid (an A/A canary is within it at any tolerance,
  0 included): the relative ``latency_tolerance`` (20 %) is the slowdown a release may
  bring unremarked; ``latency_tolerance_ms`` (1 ms) only absorbs the jitter of timing a
  request.  A larger absolute margin blinds the test on fast services (5 ms is +60 % on
  an 8 ms service: a latency growing 20 ms a minute went unseen in the first minute at
  2 requests/s; the benchmark, docs/benchmarks.md section 4, measures it).  The router's
  and Prometheus' averages have no distribution to test: their comparison uses at least
  ``average_latency_tolerance_ms`` (5 ms, see :mod:`.counted_latency`).

Below ``min_samples`` per version since the hold began the comparison is pending.

Stopping early
--------------
:meth:`Judge.stage_can_still_pass` tells the controller, after each interval, whether
the stage can still pass with the looks that remain (a failed interval, or more
insufficient intervals than ``max_insufficient_intervals`` allows, or no look left
without a pass): if not, roll back at once.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import TYPE_CHECKING

from pytest_release.canary.judge.check import Check
from pytest_release.canary.judge.compare_errors import CompareErrorRate
from pytest_release.canary.judge.compare_latency import CompareLatency
from pytest_release.canary.judge.config import JudgeConfig
from pytest_release.canary.judge.consecutive_health import ConsecutiveHealthFailures
from pytest_release.canary.judge.counted_latency import (
    CountedCompareLatency,
    CountedP95Latency,
)
from pytest_release.canary.judge.error_rate import ErrorRate
from pytest_release.canary.judge.evidence import SAMPLER, Evidence
from pytest_release.canary.judge.health_share import HealthFailureShare
from pytest_release.canary.judge.no_success import NoSuccess
from pytest_release.canary.judge.p95_latency import P95Latency
from pytest_release.canary.judge.restarts import Restarts
from pytest_release.canary.judge.statistics import (
    ComparisonPlan,
    ThresholdPlan,
    comparison_plan,
    threshold_plan,
    threshold_tests,
)
from pytest_release.canary.judge.sustained import SlowResponses, SustainedErrorRate
from pytest_release.canary.judge.verdicts import (
    VERDICTS,
    CanaryVerdict,
    CheckResult,
    Verdict,
    format_window,
    worst,
)

if TYPE_CHECKING:
    from pytest_release.canary.evidence.router_stats import RouterEvidence
    from pytest_release.canary.samples import ReplicaStatus, Sample


def evidence_sources(config: JudgeConfig) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The sources joined for the plainly named checks (the sampler, when it sends
    requests, and the first counted source), and the further counted sources, which count
    the same front traffic again and so get their own ``<source>.<check>`` checks."""
    counted = tuple(source for source in config.evidence if source != SAMPLER)
    sampler = (SAMPLER,) if SAMPLER in config.evidence and config.http_checks else ()
    return sampler + counted[:1], counted[1:]


def checks_for(config: JudgeConfig, planned_looks: int) -> list[Check]:
    """The judge's checks, in the order of a verdict's results (the extra checks, such as
    ``alerts``, join after ``restarts``)."""
    plan = threshold_plan(config, planned_looks)
    checks = _per_source(
        config,
        ("error_rate", "p95_latency"),
        errors=partial(ErrorRate, config, plan),
        sampler_latency=partial(P95Latency, config, plan),
        counted_latency=partial(CountedP95Latency, config),
    )
    if config.max_restarts is not None:
        checks.append(Restarts(config.max_restarts))
    return checks


def late_checks_for(config: JudgeConfig, planned_looks: int) -> list[Check]:
    """The checks after ``restarts`` and the extra checks."""
    plan = threshold_plan(config, planned_looks)
    comparison = comparison_plan(config, planned_looks)
    sampler = SAMPLER in evidence_sources(config)[0]
    checks: list[Check] = []
    if config.http_checks:
        if config.max_health_failure_share is not None:
            checks.append(HealthFailureShare(config, plan))
        if config.max_consecutive_health_failures is not None:
            checks.append(ConsecutiveHealthFailures(config.max_consecutive_health_failures))
        checks += [NoSuccess(config), SustainedErrorRate(config)]
        if sampler:  # counted sources carry no per-request latency
            checks.append(SlowResponses(config))
    if not config.comparison.enabled:
        return checks
    return checks + _per_source(
        config,
        ("compare_error_rate", "compare_latency"),
        errors=partial(CompareErrorRate, config, comparison),
        sampler_latency=partial(CompareLatency, config, comparison),
        counted_latency=partial(CountedCompareLatency, config),
    )


def _per_source(
    config: JudgeConfig,
    names: tuple[str, str],
    *,
    errors: Callable[[tuple[str, ...], str], Check],
    sampler_latency: Callable[[], Check],
    counted_latency: Callable[[str, str], Check],
) -> list[Check]:
    """An error check (built from its sources and name) over the joined sources, a latency
    check for each joined source (the sampler's; a counted source's, named
    ``<source>.<check>`` when the sampler's judges too), and both again, named
    ``<source>.<check>``, for each further counted source."""
    error_name, latency_name = names
    joined, further = evidence_sources(config)
    sampler = SAMPLER in joined
    checks: list[Check] = []
    if joined:
        checks.append(errors(joined, error_name))
    if sampler:
        checks.append(sampler_latency())
    for source in joined:
        if source != SAMPLER:
            name = f"{source}.{latency_name}" if sampler else latency_name
            checks.append(counted_latency(source, name))
    for source in further:
        checks += [
            errors((source,), f"{source}.{error_name}"),
            counted_latency(source, f"{source}.{latency_name}"),
        ]
    return checks


class Judge:
    """Turns samples and replica statuses into verdicts (see the module docstring)."""

    def __init__(self, config: JudgeConfig, *, planned_looks: int | None = None) -> None:
        if planned_looks is not None and planned_looks < 1:
            raise ValueError(f"planned_looks must be at least 1, got {planned_looks}")
        self.config = config
        self.planned_looks = planned_looks or config.comparison.planned_looks
        self.looks = 0
        self.checks = checks_for(config, self.planned_looks)
        self.late_checks = late_checks_for(config, self.planned_looks)

    @property
    def threshold_checks(self) -> int:
        """Statistical threshold checks sharing ``judge.alpha``."""
        return threshold_tests(self.config)

    @property
    def threshold_plan(self) -> ThresholdPlan:
        """How each threshold check spends its share of ``judge.alpha``."""
        return threshold_plan(self.config, self.planned_looks)

    @property
    def comparison_plan(self) -> ComparisonPlan:
        """How each comparison test spends its share of ``judge.comparison.alpha``."""
        return comparison_plan(self.config, self.planned_looks)

    # -- interval ----------------------------------------------------------------------
    def judge_interval(
        self,
        samples: Sequence[Sample],
        statuses: Sequence[ReplicaStatus],
        window_start: float,
        window_end: float,
        history: Sequence[Sample] = (),
        *,
        look: int | None = None,
        router: RouterEvidence | None = None,
        prometheus: RouterEvidence | None = None,
        extra: Sequence[CheckResult] = (),
        counted: Mapping[str, RouterEvidence] | None = None,
    ) -> CanaryVerdict:
        """Verdict for ``[window_start, window_end)``.

        ``samples`` are the interval's samples; ``history`` all samples of the hold so far
        (with or without the current interval: only its part before ``window_start`` is
        used).  ``look`` is the 1-based interval number; by default the judge counts calls.
        ``counted`` is the counted evidence of the hold so far of each counted source
        ``judge.evidence`` names (``router`` and ``prometheus`` the built-ins' by
        keyword); ``extra`` checks made outside the judge (the ``alerts`` check) join the
        verdict.
        """
        if window_end < window_start:
            raise ValueError(f"window ends before it starts: {window_start!r} > {window_end!r}")
        self.looks += 1
        evidence = Evidence.at_look(
            look=look if look is not None else self.looks,
            samples=samples,
            statuses=statuses,
            start=window_start,
            end=window_end,
            history=history,
            counted={"router": router, "prometheus": prometheus, **(counted or {})},
            extra=extra,
        )
        return self.judge(evidence)

    def judge(self, evidence: Evidence) -> CanaryVerdict:
        """The verdict of one look: every check's result, the worst decides."""
        results = [r for r in (check.result(evidence) for check in self.checks) if r]
        results += evidence.extra
        results += [r for r in (check.result(evidence) for check in self.late_checks) if r]
        return CanaryVerdict(
            verdict=worst(c.verdict for c in results) if results else "insufficient",
            checks=tuple(results),
            window_start=evidence.start,
            window_end=evidence.end,
        )

    # -- stage -------------------------------------------------------------------------
    def held(self, verdict: CanaryVerdict) -> bool:
        """An insufficient interval only because stable exceeds a threshold too, with
        ``judge.stable_exceeds = "hold"``: it does not count against
        ``max_insufficient_intervals``."""
        if self.config.stable_exceeds != "hold" or verdict.verdict != "insufficient":
            return False
        lacking = [c for c in verdict.checks if c.verdict == "insufficient"]
        return bool(lacking) and all(c.stable_exceeds for c in lacking)

    def counts(self, verdicts: Sequence[CanaryVerdict]) -> dict[str, int]:
        counts = {name: 0 for name in (*VERDICTS, "held", "pending")}
        for verdict in verdicts:
            if verdict.pending:
                kind = "pending"
            else:
                kind = "held" if self.held(verdict) else verdict.verdict
            counts[kind] += 1
        return counts

    def stage_can_still_pass(
        self, verdicts: Sequence[CanaryVerdict], remaining_looks: int
    ) -> str | None:
        """``None`` while the stage can still pass; otherwise the reason it cannot, for
        the controller to roll back at once instead of keeping the canary for the rest
        of the hold.  Call it after every interval with the verdicts so far and the
        number of intervals still to come.

        It cannot pass when an interval failed, when more intervals were insufficient
        than ``max_insufficient_intervals`` allows (an insufficient interval never turns
        into a pass later), or when no look remains and none passed.  An interval that
        is insufficient only because the hold has not gathered enough evidence yet
        (:attr:`CanaryVerdict.pending`) counts neither way: a later look can decide.
        """
        if remaining_looks < 0:
            raise ValueError(f"remaining_looks must not be negative, got {remaining_looks}")
        counts = self.counts(verdicts)
        allowed = self.config.max_insufficient_intervals
        if counts["fail"]:
            first = next(v for v in verdicts if v.verdict == "fail")
            return (
                f"an interval failed ({format_window(first.window_start, first.window_end)}): "
                + "; ".join(c.message for c in first.failed_checks)
            )
        if counts["insufficient"] > allowed:
            return (
                f"{counts['insufficient']} of {len(verdicts)} intervals so far had insufficient "
                f"evidence, more than judge.max_insufficient_intervals = {allowed} allows: "
                f"the stage can no longer pass, {remaining_looks} looks early"
            )
        if remaining_looks == 0 and counts["pass"] == 0:
            return f"no interval passed in {len(verdicts)} looks and none remains"
        return None

    def judge_stage(self, verdicts: Sequence[CanaryVerdict]) -> CanaryVerdict:
        """Overall verdict: any failing interval fails the stage; otherwise the stage
        passes only if an interval passed and at most ``max_insufficient_intervals`` were
        insufficient (intervals held because stable exceeded a threshold too, with
        ``judge.stable_exceeds = "hold"``, do not count).  Checks: an ``intervals``
        summary, then per check name its first failure, else (insufficient stage) its
        first insufficient result, else its latest.
        """
        if not verdicts:
            now = time.time()
            return CanaryVerdict(
                verdict="insufficient",
                checks=(
                    CheckResult(
                        name="intervals",
                        verdict="insufficient",
                        value=0.0,
                        threshold=1.0,
                        unit="intervals",
                        window_start=now,
                        window_end=now,
                        samples=0,
                        message="no interval was judged: the canary was not observed",
                    ),
                ),
                window_start=now,
                window_end=now,
            )
        start = min(v.window_start for v in verdicts)
        end = max(v.window_end for v in verdicts)
        counts = self.counts(verdicts)
        allowed = self.config.max_insufficient_intervals
        if counts["fail"]:
            overall: Verdict = "fail"
        elif counts["insufficient"] > allowed or counts["pass"] == 0:
            overall = "insufficient"
        else:
            overall = "pass"
        total = len(verdicts)
        held = (
            f", {counts['held']} held (stable also exceeded a threshold: the environment)"
            if counts["held"]
            else ""
        )
        pending = (
            f", {counts['pending']} still gathering evidence (judge.min_requests and "
            "judge.comparison.min_samples count the whole hold)"
            if counts["pending"]
            else ""
        )
        summary = CheckResult(
            name="intervals",
            verdict=overall,
            value=float(counts["pass"]),
            threshold=float(total - allowed if total > allowed else 1),
            unit="intervals",
            window_start=start,
            window_end=end,
            samples=total,
            message=f"{counts['pass']} of {total} intervals passed, {counts['fail']} failed, "
            f"{counts['insufficient']} insufficient (judge.max_insufficient_intervals="
            f"{allowed}){held}{pending} over {format_window(start, end)}",
        )
        by_name: dict[str, list[CheckResult]] = {}
        for verdict in verdicts:
            for check in verdict.checks:
                by_name.setdefault(check.name, []).append(check)
        checks = [summary]
        for results in by_name.values():
            failing = [c for c in results if c.verdict == "fail"]
            lacking = [c for c in results if c.verdict == "insufficient"]
            if failing:
                checks.append(failing[0])
            elif overall == "insufficient" and lacking:
                checks.append(lacking[0])
            else:
                checks.append(results[-1])
        return CanaryVerdict(
            verdict=overall, checks=tuple(checks), window_start=start, window_end=end
        )


def planned_looks(hold: float, interval: float) -> int:
    """Number of intervals in a hold: what the gate passes as ``planned_looks``."""
    if interval <= 0:
        raise ValueError(f"interval must be longer than 0 s, got {interval!r}")
    return max(1, math.ceil(hold / interval - 1e-9))
