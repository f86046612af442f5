"""Alarm rules over the whole hold: restarts, consecutive /health failures, no success,
sustained errors, sustained slow responses."""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Callable, Sequence

from pytest_release.canary.judge_base import JudgeBase
from pytest_release.canary.samples import ReplicaStatus, Sample
from pytest_release.canary.stats import (
    median,
)
from pytest_release.canary.verdicts import (
    CheckResult,
    _clock,
    _rate,
    _sustained_runs,
    format_ms,
    format_percent,
    format_seconds,
    format_window,
)


class AlarmRules(JudgeBase):
    """Alarm rules over the whole hold: restarts, consecutive /health failures, no success,"""

    @staticmethod
    def _restarts(
        statuses: Sequence[ReplicaStatus], limit: int, start: float, end: float
    ) -> CheckResult:
        canary = [s for s in statuses if s.version == "canary"]
        window = format_window(start, end)
        if not canary:
            return CheckResult.insufficient(
                "restarts",
                threshold=float(limit),
                unit="restarts",
                window=(start, end),
                samples=0,
                message=f"canary restarts: the platform reported no canary replica over "
                f"{window} (set judge.max_restarts = false to disable this check)",
            )
        per_replica: dict[str, int] = {}
        evidence: dict[str, tuple[str, ...]] = {}  # the newest report's, per replica
        for status in sorted(canary, key=lambda s: s.timestamp):
            per_replica[status.name] = max(per_replica.get(status.name, 0), status.restarts)
            evidence[status.name] = status.events or evidence.get(status.name, ())
        total = sum(per_replica.values())
        failed = total > limit
        restarted = ", ".join(f"{name} x{count}" for name, count in per_replica.items() if count)
        detail = f" ({restarted})" if restarted else ""
        return CheckResult(
            name="restarts",
            verdict="fail" if failed else "pass",
            value=float(total),
            threshold=float(limit),
            unit="restarts",
            window_start=start,
            window_end=end,
            samples=len(canary),
            message=f"canary replicas restarted {total} times{detail} "
            f"{'>' if failed else '<='} {limit} over {window} "
            f"({len(per_replica)} replicas, {len(canary)} status reports)"
            + "".join(f"\n  {n}: {'; '.join(e)}" for n, e in evidence.items() if e),
            source="platform",
        )

    @staticmethod
    def _health(everything: Sequence[Sample], limit: int, start: float, end: float) -> CheckResult:
        probes = [s for s in everything if s.target == "canary" and s.kind == "health"]
        in_window = sum(1 for s in probes if s.timestamp >= start)
        window = format_window(start, end)
        # A loaded sampler can miss the probes of one short interval; runs of failures
        # are measured over the whole hold, so only no probe at all is insufficient.
        if not probes:
            return CheckResult.insufficient(
                "health_consecutive_failures",
                threshold=float(limit),
                unit="probes",
                window=(start, end),
                samples=0,
                message=f"canary health: no /health probe of the canary over {window} (set "
                "judge.max_consecutive_health_failures = false to disable this check)",
            )
        by_replica: dict[str, list[Sample]] = {}
        for probe in probes:
            by_replica.setdefault(probe.replica or "canary", []).append(probe)
        worst = (0, start, start, "")
        for replica, replica_probes in by_replica.items():
            run = 0
            run_start = run_end = 0.0
            pending: list[Sample | None] = [*replica_probes, None]
            for maybe in pending:
                if maybe is not None and not maybe.ok:
                    probe = maybe
                    if run == 0:
                        run_start = probe.timestamp
                    run += 1
                    run_end = probe.timestamp
                    continue
                # A run ended (or the probes did): count it if it reaches this window.
                if run and run_end >= start and run > worst[0]:
                    worst = (run, run_start, run_end, replica)
                run = 0
        longest, run_start, run_end, replica = worst
        failed = longest > limit
        where = (
            f" on {replica} from {_clock(run_start)} to {_clock(run_end)} UTC" if longest else ""
        )
        return CheckResult(
            name="health_consecutive_failures",
            verdict="fail" if failed else "pass",
            value=float(longest),
            threshold=float(limit),
            unit="probes",
            window_start=run_start if longest else start,
            window_end=run_end if longest else end,
            samples=in_window,
            message=f"canary /health failed {longest} times in a row{where} "
            f"({'>' if failed else '<='} {limit} allowed; {in_window} probes over {window})",
        )

    def _no_success(
        self, canary: Sequence[Sample], hold_start: float, start: float, end: float
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

    def _sustained_errors(self, canary: Sequence[Sample], start: float, end: float) -> CheckResult:
        cfg = self.config
        counts = [0, 0]  # requests, errors

        def add(s: Sample) -> None:
            counts[0] += 1
            counts[1] += 0 if s.ok else 1

        def remove(s: Sample) -> None:
            counts[0] -= 1
            counts[1] -= 0 if s.ok else 1

        def above() -> bool:
            return counts[0] > 0 and counts[1] / counts[0] > cfg.sustained_error_rate

        window_s = cfg.sustained_error_window
        runs = _sustained_runs(canary, window_s / 4.0, add, remove, above)
        return self._sustained_result(
            "sustained_error_rate",
            runs,
            canary,
            start,
            end,
            window_s,
            f"canary error rate above {format_percent(cfg.sustained_error_rate)}",
            lambda chosen: f"{format_percent(_rate(chosen))} errors",
        )

    def _slow(self, canary: Sequence[Sample], start: float, end: float) -> CheckResult:
        cfg = self.config
        ordered: list[float] = []

        def add(s: Sample) -> None:
            if s.latency_ms is not None:
                bisect.insort(ordered, s.latency_ms)

        def remove(s: Sample) -> None:
            if s.latency_ms is not None:
                del ordered[bisect.bisect_left(ordered, s.latency_ms)]

        def slow() -> bool:
            if not ordered:
                return False
            middle = len(ordered) // 2
            value = (
                ordered[middle]
                if len(ordered) % 2
                else (ordered[middle - 1] + ordered[middle]) / 2.0
            )
            return value > cfg.slow_response_ms

        window_s = cfg.slow_response_window
        runs = _sustained_runs(canary, window_s / 4.0, add, remove, slow)

        def describe(chosen: Sequence[Sample]) -> str:
            latencies = [s.latency_ms for s in chosen if s.latency_ms is not None]
            return f"median {format_ms(median(latencies))}" if latencies else "no responses"

        return self._sustained_result(
            "slow_responses",
            runs,
            canary,
            start,
            end,
            window_s,
            f"canary median response time above {format_ms(cfg.slow_response_ms)}",
            describe,
        )

    @staticmethod
    def _sustained_result(
        name: str,
        runs: Sequence[tuple[float, float]],
        canary: Sequence[Sample],
        start: float,
        end: float,
        limit: float,
        what: str,
        describe: Callable[[Sequence[Sample]], str],
    ) -> CheckResult:
        relevant = [(a, b) for a, b in runs if b >= start]
        longest, run_start, run_end = 0.0, start, start
        for a, b in relevant:
            if b - a >= longest:
                longest, run_start, run_end = b - a, a, b
        failed = longest >= limit
        n = sum(1 for s in canary if start <= s.timestamp <= end)
        if relevant:
            chosen = [s for s in canary if run_start <= s.timestamp <= run_end]
            span = f"from {_clock(run_start)} to {_clock(run_end)} UTC, {describe(chosen)}"
        else:
            span = f"not at any time over {format_window(start, end)}"
        return CheckResult(
            name=name,
            verdict="fail" if failed else "pass",
            value=longest,
            threshold=limit,
            unit="s",
            window_start=run_start if relevant else start,
            window_end=run_end if relevant else end,
            samples=n,
            message=f"{what} for {format_seconds(longest)} "
            f"({'>=' if failed else '<'} {format_seconds(limit)}): {span}",
        )
