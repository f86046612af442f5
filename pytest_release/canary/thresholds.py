"""Threshold checks judged with evidence: error rate, p95 latency, share of failed /health
probes (exact binomial tests, alpha spent over the planned looks)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from pytest_release.canary.judge_base import JudgeBase, _BinomialTest, _Window
from pytest_release.canary.judge_config import _P95, Verdict
from pytest_release.canary.samples import Sample
from pytest_release.canary.stats import (
    binomial_lower_bound,
    binomial_sf,
    percentile,
)
from pytest_release.canary.verdicts import (
    CheckResult,
    _number,
    format_confidence,
    format_ms,
    format_percent,
    format_window,
    threshold_text,
)


class ThresholdChecks(JudgeBase):
    """Threshold checks judged with evidence: error rate, p95 latency, share of failed /health"""

    def _binomial(
        self,
        windows: Sequence[_Window],
        limit: float,
        count: Callable[[Sequence[Sample]], tuple[int, int]],
    ) -> _BinomialTest:
        """The window with the smallest p-value of "the canary's share is at most
        ``limit``" (exact binomial), with stable's counts in the same window."""
        best: _BinomialTest | None = None
        for window in windows:
            k, n = count(window.canary)
            stable_k, stable_n = count(window.stable)
            p = binomial_sf(k, n, limit) if n else 1.0
            test = _BinomialTest(window, k, n, p, stable_k, stable_n)
            if best is None or test.p_value < best.p_value:
                best = test
        assert best is not None
        return best

    def _threshold_result(
        self,
        *,
        name: str,
        test: _BinomialTest,
        alpha: float,
        limit: float,
        value: float | None,
        threshold: float,
        unit: str,
        estimate: str,
        over: str,
        within: str,
        stable_estimate: str,
        stable_over: bool,
        counts: str,
        details: tuple[tuple[str, str], ...] = (),
    ) -> CheckResult:
        lower = binomial_lower_bound(test.k, test.n, alpha) if test.n else 0.0
        confidence = f"{format_confidence(alpha)} confidence"
        window = test.window
        where = f"over {format_window(window.start, window.end)} ({window.label})"
        credible = test.p_value < alpha
        verdict: Verdict
        if credible and stable_over:
            mode = self.config.stable_exceeds
            verdict = "fail" if mode == "fail" else "insufficient"
            message = (
                f"{estimate} {over}, but stable also exceeds {threshold_text(name, limit, unit)} "
                f"({stable_estimate}) in the same window: the environment, not the canary "
                f"(judge.stable_exceeds = {mode}) {where} ({counts})"
            )
        elif credible:
            verdict = "fail"
            message = (
                f"{estimate} {over}: the lower {confidence} bound {format_percent(lower)} is "
                f"above {format_percent(limit)} {where} ({counts})"
            )
        else:
            verdict = "pass"
            message = (
                f"{estimate} consistent with {within} (lower {confidence} bound "
                f"{format_percent(lower)}) {where} ({counts})"
            )
        return CheckResult(
            name=name,
            verdict=verdict,
            value=value,
            threshold=threshold,
            unit=unit,
            window_start=window.start,
            window_end=window.end,
            samples=test.n,
            message=message,
            stable_exceeds=credible and stable_over,
            details=details,
        )

    def _error_rate(
        self, windows: Sequence[_Window], in_interval: int, start: float, end: float, look: int
    ) -> CheckResult:
        limit = self.config.max_error_rate
        window = format_window(start, end)
        beyond = self._beyond_plan(look, f"judge.alpha {self.config.alpha}")
        if in_interval < self.config.min_requests or beyond:
            return CheckResult.insufficient(
                "error_rate",
                threshold=limit * 100.0,
                unit="%",
                window=(start, end),
                samples=in_interval,
                message=beyond
                or f"canary error rate: only {in_interval} canary requests over {window}, "
                f"need at least {self.config.min_requests} (judge.min_requests)",
            )

        def count(chosen: Sequence[Sample]) -> tuple[int, int]:
            return sum(1 for s in chosen if not s.ok), len(chosen)

        test = self._binomial(windows, limit, count)
        rate = test.k / test.n
        stable_rate = test.stable_k / test.stable_n if test.stable_n else None
        return self._threshold_result(
            name="error_rate",
            test=test,
            alpha=self._look_alpha(self.threshold_alpha_per_test, windows),
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

    def _p95(
        self,
        windows: Sequence[_Window],
        current: Sequence[Sample],
        start: float,
        end: float,
        look: int,
    ) -> CheckResult:
        limit = self.config.max_p95_latency_ms
        window = format_window(start, end)
        n_current = sum(1 for s in current if s.latency_ms is not None)
        beyond = self._beyond_plan(look, f"judge.alpha {self.config.alpha}")
        if n_current < self.config.min_requests or beyond:
            return CheckResult.insufficient(
                "p95_latency",
                threshold=limit,
                unit="ms",
                window=(start, end),
                samples=n_current,
                message=beyond
                or f"canary p95 latency: only {n_current} canary responses over {window}, "
                f"need at least {self.config.min_requests} (judge.min_requests)",
            )

        def count(chosen: Sequence[Sample]) -> tuple[int, int]:
            latencies = [s.latency_ms for s in chosen if s.latency_ms is not None]
            return sum(1 for v in latencies if v > limit), len(latencies)

        share = 1.0 - _P95 / 100.0
        test = self._binomial(windows, share, count)
        canary_latencies = [s.latency_ms for s in test.window.canary if s.latency_ms is not None]
        stable_latencies = [s.latency_ms for s in test.window.stable if s.latency_ms is not None]
        p95 = percentile(canary_latencies, _P95)
        stable_p95 = percentile(stable_latencies, _P95) if stable_latencies else None
        return self._threshold_result(
            name="p95_latency",
            test=test,
            alpha=self._look_alpha(self.threshold_alpha_per_test, windows),
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

    def _health_share(
        self,
        everything: Sequence[Sample],
        hold_start: float,
        start: float,
        end: float,
        look: int,
    ) -> CheckResult:
        limit = self.config.max_health_failure_share
        assert limit is not None
        probes = [s for s in everything if s.kind == "health" and s.timestamp < end]
        canary = [s for s in probes if s.target == "canary"]
        stable = [s for s in probes if s.target == "stable"]
        in_window = sum(1 for s in canary if s.timestamp >= start)
        beyond = self._beyond_plan(look, f"judge.alpha {self.config.alpha}")
        # A loaded sampler can miss the probes of one short interval: the hold's probes
        # so far are the evidence; none at all is insufficient.
        if not canary or beyond:
            return CheckResult.insufficient(
                "health_failure_share",
                threshold=limit * 100.0,
                unit="%",
                window=(start, end),
                samples=in_window,
                message=beyond
                or f"canary health: no /health probe of the canary since the hold began "
                f"({format_window(hold_start, end)}; set judge.max_health_failure_share = "
                "false to disable this check)",
            )
        by_replica: dict[str, list[Sample]] = {}
        for probe in canary:
            by_replica.setdefault(probe.replica or "canary", []).append(probe)
        details: list[tuple[str, str]] = []
        per_replica: list[str] = []
        for replica, replica_probes in sorted(by_replica.items()):
            failed = sum(1 for s in replica_probes if not s.ok)
            details += [
                (f"{replica}.probes", str(len(replica_probes))),
                (f"{replica}.failed", str(failed)),
                (f"{replica}.failed_share", _number(failed / len(replica_probes))),
            ]
            per_replica.append(
                f"{replica} {failed} of {len(replica_probes)} failed "
                f"({format_percent(failed / len(replica_probes))})"
            )
        # Bonferroni over the replicas too: the worst replica is tested.
        replicas = len(by_replica)
        worst: tuple[_BinomialTest, str] | None = None
        for replica, replica_probes in by_replica.items():
            windows = [
                _Window("since the hold began", hold_start, end, tuple(replica_probes), ()),
            ]
            if hold_start < start:
                recent = tuple(s for s in replica_probes if s.timestamp >= start)
                windows.append(_Window("in the interval", start, end, recent, ()))

            def count(chosen: Sequence[Sample]) -> tuple[int, int]:
                return sum(1 for s in chosen if not s.ok), len(chosen)

            test = self._binomial(windows, limit, count)
            if worst is None or test.p_value < worst[0].p_value:
                worst = (test, replica)
        assert worst is not None
        test, replica = worst
        n_windows = 2 if hold_start < start else 1
        alpha = self.threshold_alpha_per_test * 2 / n_windows / replicas
        stable_failed = sum(1 for s in stable if not s.ok)
        stable_share = stable_failed / len(stable) if stable else None
        return self._threshold_result(
            name="health_failure_share",
            test=test,
            alpha=alpha,
            limit=limit,
            value=test.k / test.n * 100.0 if test.n else 0.0,
            threshold=limit * 100.0,
            unit="%",
            estimate=f"canary /health failures on {replica} "
            f"{format_percent(test.k / test.n if test.n else 0.0)} of probes",
            over=f"> {format_percent(limit)}",
            within=f"<= {format_percent(limit)}",
            stable_estimate="no stable probes"
            if stable_share is None
            else f"stable {format_percent(stable_share)} of {len(stable)} probes failed",
            stable_over=stable_share is not None and stable_share > limit,
            counts="; ".join(per_replica),
            details=tuple(details),
        )
