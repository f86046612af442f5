"""The canary judge: a verdict per interval and for the stage, from live measurements.

Every verdict is one of ``pass``, ``fail`` or ``insufficient`` (not enough evidence).
Insufficient evidence is never a pass: an interval is ``insufficient`` as soon as one
check lacks data (and none failed), and a stage passes only when at least one interval
passed and no more than ``max_insufficient_intervals`` were insufficient.

Checks per interval (names are stable; the gate, plot and reports key on them):

==============================  ====================================================
``error_rate``                  canary HTTP error rate <= ``max_error_rate``, judged with
                                evidence (see below; insufficient below ``min_requests``
                                canary requests in the interval)
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
                                made by the hold, see :mod:`.evidence.alertmanager`)
==============================  ====================================================

``judge.evidence`` chooses what ``error_rate``, ``p95_latency`` and the comparison judge:
the sampler's requests, the router's per-version counters, Prometheus counters, or several
(see :mod:`.judge_router`); the first source's checks keep these names, the others' are
``<source>.<check>``, and every check's ``source`` says which evidence it judged.

The alarm rules (restarts, health, no-success, sustained, slow) are the seed's
deterministic rules: they look at the whole history so a condition that began in an
earlier interval is measured in full, and report a condition that is still going on in,
or ended in, the current interval.

Threshold checks with evidence
------------------------------
``error_rate``, ``p95_latency`` and ``health_failure_share`` keep the user's contract
("error rate <= 1 %", "p95 <= 500 ms", "at most 5 % of /health probes fail") but judge
it with a one-sided exact binomial test (Clopper-Pearson bound) instead of a point
estimate:

* **fail** when the data say, at the configured confidence, that the canary is over the
  threshold: the lower confidence bound of the canary's error rate (share of responses
  slower than the limit; share of failed probes of a replica) is above the limit;
* **pass** when the data are consistent with being within it (the lower bound is at or
  below the limit) and there is enough data (``min_requests`` canary requests in the
  interval; at least one /health probe);
* **insufficient** otherwise (too little data, or the look is beyond the planned ones).

At every look each check tests two windows: everything since the hold began (power for
small excesses) and the current interval (a fault that starts late is not diluted by
the good part of the hold).

False-alarm guarantee over all looks
------------------------------------
``judge.alpha`` (default 0.005) is the false-alarm budget of the threshold checks over
the whole hold; ``judge.comparison.alpha`` (default 0.005) that of the comparison.  Each
budget is spent by Bonferroni over its tests, the two windows and the planned looks
(``ceil(hold / interval)``, passed by the gate): a threshold test runs at ``alpha / (checks
* 2 * planned_looks)`` (the first look has one window and uses both shares).  By the
union bound, whatever the correlation between looks:

* a canary whose true error rate, share of responses slower than the p95 limit and share
  of failed /health probes are all within their limits fails a threshold check at some
  look of the hold with probability at most ``judge.alpha``;
* a canary whose error rate is at most stable's and whose latencies are at most stable's
  stretched by the tolerance (``stable * (1 + latency_tolerance) + latency_tolerance_ms``,
  in distribution; a canary that behaves exactly like stable is one) fails the comparison
  at some look with probability at most ``judge.comparison.alpha``;

so an A/A canary is rolled back by the statistical checks with probability at most
``judge.alpha + judge.comparison.alpha`` (1 % by default).  A look beyond the plan has no
alpha left: the statistical checks report ``insufficient`` instead of testing.  The bound
assumes independent requests; it is conservative (Bonferroni ignores the overlap of the
looks and the binomial is discrete), the benchmark measures the real rate.

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
  ``average_latency_tolerance_ms`` (5 ms, see :mod:`.judge_router`).

Below ``min_samples`` per version the comparison is ``insufficient``.

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
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from pytest_release.canary.alarms import AlarmRules
from pytest_release.canary.judge_config import VERDICTS, ComparisonConfig, JudgeConfig, Verdict
from pytest_release.canary.judge_router import RouterChecks
from pytest_release.canary.samples import ReplicaStatus, Sample
from pytest_release.canary.verdicts import (
    CanaryVerdict,
    CheckResult,
    _canary_http,
    _worst,
    format_ms,
    format_percent,
    format_seconds,
    format_window,
)

if TYPE_CHECKING:
    from pytest_release.canary.evidence.router_stats import RouterEvidence

__all__ = [
    "VERDICTS",
    "CanaryVerdict",
    "CheckResult",
    "ComparisonConfig",
    "Judge",
    "JudgeConfig",
    "Verdict",
    "format_ms",
    "format_percent",
    "format_seconds",
    "format_window",
    "planned_looks",
]


class Judge(RouterChecks, AlarmRules):
    """Turns samples and replica statuses into verdicts (see the module docstring)."""

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
    ) -> CanaryVerdict:
        """Verdict for ``[window_start, window_end)``.

        ``samples`` are the interval's samples; ``history`` all samples of the hold so far
        (with or without the current interval: only its part before ``window_start`` is
        used).  ``look`` is the 1-based interval number; by default the judge counts calls.
        ``router`` and ``prometheus`` are the counted evidence of the hold so far when
        ``judge.evidence`` names them (see :mod:`.judge_router`); ``extra`` checks made
        outside the judge (the ``alerts`` trigger) join the verdict.
        """
        if window_end < window_start:
            raise ValueError(f"window ends before it starts: {window_start!r} > {window_end!r}")
        self._looks += 1
        look_number = look if look is not None else self._looks
        earlier = [s for s in history if s.timestamp < window_start]
        everything = sorted([*earlier, *samples], key=lambda s: s.timestamp)
        hold_start = min(window_start, everything[0].timestamp) if everything else window_start
        current = _canary_http(samples)
        windows = self._windows(everything, samples, hold_start, window_start, window_end)
        cfg = self.config
        sampler = "sampler" in cfg.evidence
        checks: list[CheckResult] = []
        if sampler:
            checks += [
                self._error_rate(windows, len(current), window_start, window_end, look_number),
                self._p95(windows, current, window_start, window_end, look_number),
            ]
        counted_checks: list[CheckResult] = []
        counted_samples: list[Sample] = []  # the first counted source's, for the alarms
        counted = {"router": router, "prometheus": prometheus}
        for source in cfg.evidence:
            if source == "sampler":
                continue
            found, source_samples = self._router_http(
                counted[source], hold_start, window_start, window_end, look_number, source
            )
            counted_checks += found
            counted_samples = counted_samples or source_samples
        counted_compare = [c for c in counted_checks if "compare_" in c.name]
        checks += [c for c in counted_checks if "compare_" not in c.name]
        if cfg.max_restarts is not None:
            checks.append(self._restarts(statuses, cfg.max_restarts, window_start, window_end))
        checks += extra
        if not cfg.http_checks:
            checks = [c for c in checks if c.name == "restarts" or c.source != "sampler"]
            checks += counted_compare
            return CanaryVerdict(
                verdict=_worst(c.verdict for c in checks) if checks else "insufficient",
                checks=tuple(checks),
                window_start=window_start,
                window_end=window_end,
            )
        if cfg.max_health_failure_share is not None:
            checks.append(
                self._health_share(everything, hold_start, window_start, window_end, look_number)
            )
        if cfg.max_consecutive_health_failures is not None:
            checks.append(
                self._health(
                    everything, cfg.max_consecutive_health_failures, window_start, window_end
                )
            )
        # The alarm rules watch the sampler's requests, or else the first counted source's.
        canary_all = _canary_http(everything if sampler else counted_samples)
        alarms = [
            self._no_success(canary_all, hold_start, window_start, window_end),
            self._sustained_errors(canary_all, window_start, window_end),
        ]
        if sampler:  # the router's counts carry no per-request latency
            alarms.append(self._slow(canary_all, window_start, window_end))
        else:
            first = next(source for source in cfg.evidence if source != "sampler")
            alarms = [replace(c, source=first) for c in alarms]
        checks += alarms
        if cfg.comparison.enabled and sampler:
            checks.extend(self._compare(windows, hold_start, window_end, look_number))
        checks += counted_compare
        if sampler and cfg.evidence[0] != "sampler":
            names = {"error_rate", "p95_latency", "compare_error_rate", "compare_latency"}
            checks = [
                replace(c, name=f"sampler.{c.name}")
                if c.name in names and c.source == "sampler"
                else c
                for c in checks
            ]
        return CanaryVerdict(
            verdict=_worst(c.verdict for c in checks),
            checks=tuple(checks),
            window_start=window_start,
            window_end=window_end,
        )

    # -- stage -------------------------------------------------------------------------
    def _held(self, verdict: CanaryVerdict) -> bool:
        """An insufficient interval only because stable exceeds a threshold too, with
        ``judge.stable_exceeds = "hold"``: it does not count against
        ``max_insufficient_intervals``."""
        if self.config.stable_exceeds != "hold" or verdict.verdict != "insufficient":
            return False
        lacking = [c for c in verdict.checks if c.verdict == "insufficient"]
        return bool(lacking) and all(c.stable_exceeds for c in lacking)

    def _counts(self, verdicts: Sequence[CanaryVerdict]) -> dict[str, int]:
        counts = {name: 0 for name in (*VERDICTS, "held")}
        for verdict in verdicts:
            counts["held" if self._held(verdict) else verdict.verdict] += 1
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
        into a pass later), or when no look remains and none passed.
        """
        if remaining_looks < 0:
            raise ValueError(f"remaining_looks must not be negative, got {remaining_looks}")
        counts = self._counts(verdicts)
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
        counts = self._counts(verdicts)
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
            f"{allowed}){held} over {format_window(start, end)}",
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
